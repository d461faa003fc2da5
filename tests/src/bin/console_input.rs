//! Serial input reaching the initial domain, as on Xen 4.17: `VIRQ_CONSOLE`
//! (a global VIRQ: bound on vCPU 0 only) becomes pending when the serial
//! line receives bytes, and `CONSOLEIO_read` hands them over in order.
//!
//! xtask types `hv-typed-42` and a carriage return once the guest prints
//! that it is ready (`@serial-input`). Before that, reads find nothing
//! (even into a bad buffer, which is never touched). With input waiting: a
//! read into a bad buffer is `-EFAULT` and consumes nothing; a read of 4
//! bytes takes exactly 4; the rest follows; then nothing is left.
//!
//! Variant `debug-key`: xtask types three CTRL-a (input to the
//! hypervisor), `q` (its "dump domain info" key, which raises
//! `VIRQ_DEBUG` on every vCPU), three CTRL-a again (input back to the
//! domain) and a carriage return: `VIRQ_DEBUG` becomes pending, and the
//! domain reads only the carriage return.
//!
//! @covers: console_io.read event_channel_op.bind_virq
//! @serial-input: CONSOLE-INPUT-READY hv-typed-42
//! @variant: debug-key cmdline=debug-key serial-input="CONSOLE-INPUT-READY \\x01\\x01\\x01q\\x01\\x01\\x01" expect-line="'q' pressed -> dumping domain info"
//! @timeout: 60
#![no_std]
#![no_main]

use guest_abi::console::CONSOLEIO_READ;
use guest_abi::errno::{EFAULT, EINVAL};
use guest_abi::hypercall::console_io;
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{VIRQ_CONSOLE, VIRQ_DEBUG};

use tests::check;
use tests::evtchn::{self, Words};
use tests::expect;
use tests::fixup::SharedInfo;

guest_abi::pv_guest!(main, name = "console_input");

const TYPED: &[u8] = b"hv-typed-42\r";

fn read(buf: *mut u8, count: u32) -> i64 {
    // SAFETY: the hypervisor writes at most `count` bytes at `buf`, which
    // is either a buffer of at least that size or an address it must
    // refuse.
    unsafe { console_io(CONSOLEIO_READ, count, buf) }
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("console_input");
    let Some(shared) = SharedInfo::map(si) else {
        r.check("map shared_info", false);
        r.finish()
    };
    let w = Words::new(shared.va);
    w.set_upcall_mask(true);
    check!(r, "bind_virq(CONSOLE) on vCPU 1: a global VIRQ", evtchn::bind_virq(VIRQ_CONSOLE, 1) => Err(-EINVAL));
    let port = match evtchn::bind_virq(VIRQ_CONSOLE, 0) {
        Ok(p) => p,
        Err(e) => {
            check!(r, "bind_virq(CONSOLE) on vCPU 0", e => 0);
            r.finish()
        }
    };
    r.check(
        format_args!("bind_virq(CONSOLE) on vCPU 0: port {port}"),
        port > 0,
    );
    w.clear_all();
    if expect::text(si.cmd_line_bytes())
        .split(' ')
        .any(|a| a == "debug-key")
    {
        debug_key(r, w, port);
    }
    let mut buf = [0u8; 64];
    check!(r, "read before any input", read(buf.as_mut_ptr(), 16) => 0);
    check!(r, "read before any input, null buffer", read(core::ptr::null_mut(), 16) => 0);
    check!(r, "port not pending yet", w.pending(port) => false);

    println!("CONSOLE-INPUT-READY");
    // Until the input arrives (the run's timeout bounds the wait).
    while !w.pending(port) {
        core::hint::spin_loop();
    }
    r.check("VIRQ_CONSOLE pending once input arrived", true);
    check!(r, "read into a null buffer with input waiting", read(core::ptr::null_mut(), 4) => -EFAULT);
    check!(r, "read into an unmapped buffer", read(0x1000 as *mut u8, 4) => -EFAULT);

    // The bytes may arrive over several polls or interrupts.
    let mut got = 0usize;
    let mut first = true;
    while got < TYPED.len() {
        let room = u32::try_from(buf.len() - got).unwrap_or(0);
        let want = if first { 4 } else { room };
        let n = read(buf[got..].as_mut_ptr(), want);
        let Ok(n) = usize::try_from(n) else {
            check!(r, "read", n => 0);
            break;
        };
        if first && n > 0 {
            r.check(format_args!("a read of 4 takes at most 4 ({n})"), n <= 4);
            first = false;
        }
        got += n;
    }
    check!(r, "the typed text, in order", &buf[..got] == TYPED => true);
    check!(r, "nothing left", read(buf.as_mut_ptr(), 64) => 0);
    r.finish()
}

fn debug_key(mut r: Report, w: Words, console: u32) -> ! {
    let debug = match evtchn::bind_virq(VIRQ_DEBUG, 0) {
        Ok(p) => p,
        Err(e) => {
            check!(r, "bind_virq(DEBUG) on vCPU 0", e => 0);
            r.finish()
        }
    };
    r.check(
        format_args!("bind_virq(DEBUG) on vCPU 0: port {debug}"),
        debug > 0,
    );
    println!("CONSOLE-INPUT-READY");
    // The key's work may finish after the switch back (the run's timeout
    // bounds the wait).
    while !(w.pending(debug) && w.pending(console)) {
        core::hint::spin_loop();
    }
    r.check("VIRQ_DEBUG pending after the 'q' key", true);
    let mut buf = [0u8; 16];
    check!(r, "the domain reads only the carriage return", read(buf.as_mut_ptr(), 16) => 1);
    check!(r, "which is", buf[0] => b'\r');
    r.finish()
}
