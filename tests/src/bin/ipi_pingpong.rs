//! Two vCPUs on two physical CPUs ping-pong IPIs (`EVTCHNOP_bind_ipi`)
//! through `SCHEDOP_poll`, as Xen 4.17 runs them: vCPU 0 sends on the
//! port that notifies vCPU 1 and polls its own; vCPU 1 polls, clears, and
//! sends back. Each round trip needs the sleeping poller on the other CPU
//! woken by the send (a kick across CPUs); 200 of them complete, each
//! side seeing every ping, and none takes the 1 s poll timeout.
//!
//! @vcpus: 2
//! @smp: 2
//! @timeout: 120
//! @covers: event_channel_op.bind_ipi event_channel_op.send sched_op.poll
#![no_std]
#![no_main]

use guest_abi::hypercall::{hypercall2, hypercall3, SCHED_OP, VCPU_OP};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::sched::{SchedPoll, SCHEDOP_POLL};
use guest_abi::vcpu::{VCPUOP_INITIALISE, VCPUOP_UP};
use guest_abi::xen::VcpuGuestContext;
use tests::check;
use tests::clock;
use tests::evtchn::{self, Words};
use tests::fixup::SharedInfo;
use tests::pages::Pages;
use tests::pvmm::{read_u64, write_u64, Env};
use tests::vcpu::kernel_context;

guest_abi::pv_guest!(main, name = "ipi_pingpong");

const ROUNDS: u64 = 200;
/// A poll gives up after this long (a lost wake-up shows as a timeout).
const POLL_NS: u64 = 1_000_000_000;

/// Shared words: the shared-info address, the two ports, vCPU 1's
/// counts of pings seen and of timeouts, and its ready flag.
static SHARED: Pages<1> = Pages::new();
const SHARED_VA: u64 = 0;
const PORT_TO_1: u64 = 1;
const PORT_TO_0: u64 = 2;
const SEEN_1: u64 = 3;
const TIMEOUTS_1: u64 = 4;
const READY_1: u64 = 5;
static STACK: Pages<4> = Pages::new();

fn word(i: u64) -> u64 {
    SHARED.addr() + i * 8
}

fn poll(port: u32, timeout: u64) -> i64 {
    let ports = [port];
    let p = SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: 1,
        _pad: 0,
        timeout,
    };
    // SAFETY: the hypervisor reads `p` and the port list.
    unsafe {
        hypercall2(
            SCHED_OP,
            u64::from(SCHEDOP_POLL),
            core::ptr::from_ref(&p) as u64,
        )
    }
}

/// Polls until `port` is pending (clearing it); false after a timeout.
fn wait(w: Words, shared: u64, port: u32) -> bool {
    loop {
        if w.pending(port) {
            w.clear_pending(port);
            return true;
        }
        let deadline = clock::now(shared).saturating_add(POLL_NS);
        let _ = poll(port, deadline);
        if !w.pending(port) && clock::now(shared) >= deadline {
            return false;
        }
    }
}

extern "C" fn secondary(_: u64) -> ! {
    let shared = read_u64(word(SHARED_VA));
    // vCPU 1's own upcall mask (vcpu_info[1] at 64, the mask its second
    // byte): events stay masked, polls only.
    write_u64(shared + 64, read_u64(shared + 64) | 0x100);
    let w = Words::new(shared);
    let to_0 = u32::try_from(read_u64(word(PORT_TO_0))).unwrap_or(0);
    let to_1 = u32::try_from(read_u64(word(PORT_TO_1))).unwrap_or(0);
    write_u64(word(READY_1), 1);
    loop {
        if wait(w, shared, to_1) {
            write_u64(word(SEEN_1), read_u64(word(SEEN_1)) + 1);
            let _ = evtchn::send(to_0);
        } else {
            write_u64(word(TIMEOUTS_1), read_u64(word(TIMEOUTS_1)) + 1);
        }
    }
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("ipi_pingpong");
    let Some(env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(shared) = SharedInfo::map(si) else {
        r.check("map shared_info", false);
        r.finish()
    };
    let w = Words::new(shared.va);
    w.set_upcall_mask(true);
    let (Ok(to_1), Ok(to_0)) = (evtchn::bind_ipi(1), evtchn::bind_ipi(0)) else {
        r.check("bind_ipi for vCPUs 1 and 0", false);
        r.finish()
    };
    w.clear_all();
    write_u64(word(SHARED_VA), shared.va);
    write_u64(word(PORT_TO_1), u64::from(to_1));
    write_u64(word(PORT_TO_0), u64::from(to_0));
    let c: VcpuGuestContext = {
        let rip = secondary as extern "C" fn(u64) -> ! as usize as u64;
        kernel_context(rip, STACK.addr() + 4 * 4096 - 8, env.l4_mfn)
    };
    // SAFETY: the context names this guest's code, stack and page table.
    let rc = unsafe {
        hypercall3(
            VCPU_OP,
            u64::from(VCPUOP_INITIALISE),
            1,
            core::ptr::from_ref(&c) as u64,
        )
    };
    check!(r, "initialise(1)", rc => 0);
    // SAFETY: brings up the vCPU just initialised.
    let rc = unsafe { hypercall3(VCPU_OP, u64::from(VCPUOP_UP), 1, 0) };
    check!(r, "up(1)", rc => 0);
    while read_u64(word(READY_1)) == 0 {
        core::hint::spin_loop();
    }
    let t0 = clock::now(shared.va);
    let mut back = 0u64;
    let mut timeouts = 0u64;
    for _ in 0..ROUNDS {
        let _ = evtchn::send(to_1);
        if wait(w, shared.va, to_0) {
            back += 1;
        } else {
            timeouts += 1;
        }
    }
    let t = clock::now(shared.va).saturating_sub(t0);
    guest_abi::println!("{ROUNDS} round trips in {t} ns");
    check!(r, "pongs received", back => ROUNDS);
    check!(r, "pings vCPU 1 saw", read_u64(word(SEEN_1)) => ROUNDS);
    check!(r, "polls that timed out (vCPU 0)", timeouts => 0);
    check!(r, "polls that timed out (vCPU 1)", read_u64(word(TIMEOUTS_1)) => 0);
    r.finish()
}
