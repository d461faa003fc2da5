//! The hypervisor console (`console_io`, hypercall 18) from a PV dom0.
//!
//! CONSOLEIO_write returns 0 (not a byte count) and the text appears raw on
//! the console; a count of 0 returns 0 without reading the buffer (even a
//! null one); a 300-byte write arrives intact. CONSOLEIO_read returns 0 when
//! no input is pending (`console_input` types some) and -E2BIG for a count above INT_MAX. An unknown
//! sub-command is -ENOSYS. `cmd` and `count` are `unsigned int`: the upper
//! halves of their registers are ignored.
//!
//! Bad buffers give -EFAULT: null, unmapped lower-half addresses,
//! non-canonical ones, Xen's own range (even its guest-readable M2P), the
//! first page past the initial mapping (`v_end`), and buffers that start
//! mapped and run into unmapped memory. Xen copies and prints in chunks of
//! 127 bytes: chunks before the fault are printed, the faulting chunk is not
//! printed at all. The markers written just below `v_end` show that: the
//! head of a partially bad buffer appears (`@expect-line`), its tail and a
//! buffer whose only chunk straddles `v_end` never do (`@reject-line`).
//! After each failure the guest runs on, every register but rax, rcx and
//! r11 is unchanged, and the next write works.
//!
//! @covers: console_io.write console_io.read
//! @expect-line: console: plain write
//! @expect-line: long-300:01234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789
//! @expect-line: console: upper half of cmd ignored
//! @expect-line: console: upper half of count ignored
//! @expect-line: QX7-HEAD
//! @reject-line: QX7-TAIL
//! @reject-line: QX7-NONE
//! @reject-line: console: zero-count text

#![no_std]
#![no_main]

use guest_abi::console::{CONSOLEIO_READ, CONSOLEIO_WRITE};
use guest_abi::errno::{E2BIG, EFAULT, ENOSYS};
use guest_abi::hypercall::{console_io, hypercall3, CONSOLE_IO};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::{StartInfoRef, VIRT_BASE};
use tests::check;
use tests::expect::BAD_POINTERS;
use tests::regs::{changed, syscall_with, Gprs};

guest_abi::pv_guest!(main, name = "console");

const PAGE: u64 = 4096;
/// Xen's `guest_console_write` copies at most this many bytes at a time.
const CHUNK: usize = 127;

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("console");
    good_writes(&mut r);
    reads_and_commands(&mut r);
    // The initial mapping ends at v_end = VIRT_BASE + first_p2m_pfn pages
    // (checked in start_of_day); the page at v_end is not mapped.
    let v_end = VIRT_BASE + si.first_p2m_pfn * PAGE;
    r.check(
        format_args!("v_end {v_end:#x} lies past pt_base {:#x}", si.pt_base),
        v_end > si.pt_base + si.nr_pt_frames * PAGE,
    );
    for &(name, addr) in BAD_POINTERS {
        bad_write(&mut r, name, addr, 16);
    }
    bad_write(
        &mut r,
        "v_end (first page past the initial mapping)",
        v_end,
        16,
    );
    bad_write(&mut r, "v_end + 4 MiB", v_end + (4 << 20), 16);
    partially_bad(&mut r, v_end);
    r.finish()
}

/// Writes `bytes` with one CONSOLEIO_write and returns the result.
fn write(bytes: &[u8]) -> i64 {
    let count = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    // SAFETY: CONSOLEIO_write only reads `count` bytes of `bytes`.
    unsafe { console_io(CONSOLEIO_WRITE, count, bytes.as_ptr().cast_mut()) }
}

fn good_writes(r: &mut Report) {
    check!(r, "write of 21 bytes", write(b"console: plain write\n") => 0);
    check!(r, "write with count 0", write(&b"console: zero-count text\n"[..0]) => 0);
    // SAFETY: with count 0 nothing is read, so the null buffer is never used.
    let got = unsafe { console_io(CONSOLEIO_WRITE, 0, core::ptr::null_mut()) };
    check!(r, "write with count 0 and a null buffer", got => 0);
    let mut long = [0u8; 300];
    let head = b"long-300:";
    long[..head.len()].copy_from_slice(head);
    for (i, b) in long[head.len()..299].iter_mut().enumerate() {
        *b = b"0123456789"[i % 10];
    }
    long[299] = b'\n';
    check!(r, "write of 300 bytes (three chunks)", write(&long) => 0);

    let text = b"console: upper half of cmd ignored\n";
    // SAFETY: the low half of cmd is CONSOLEIO_write; it reads `text` only.
    let got = unsafe {
        hypercall3(
            CONSOLE_IO,
            (1 << 32) | u64::from(CONSOLEIO_WRITE),
            text.len() as u64,
            text.as_ptr() as u64,
        )
    };
    check!(r, "write with cmd (1<<32)|WRITE", got => 0);
    let text = b"console: upper half of count ignored\n";
    // SAFETY: the low half of count is the length of `text`.
    let got = unsafe {
        hypercall3(
            CONSOLE_IO,
            u64::from(CONSOLEIO_WRITE),
            (1 << 32) | text.len() as u64,
            text.as_ptr() as u64,
        )
    };
    check!(r, "write with count (1<<32)|len", got => 0);
}

fn reads_and_commands(r: &mut Report) {
    let mut buf = [0u8; 16];
    // SAFETY: CONSOLEIO_read writes at most 16 bytes into `buf`.
    let got = unsafe { console_io(CONSOLEIO_READ, 16, buf.as_mut_ptr()) };
    check!(r, "read with no input pending", got => 0);
    // SAFETY: a count above INT_MAX is refused before anything is copied;
    // should the hypervisor copy anyway, no input is pending, so nothing is.
    let got = unsafe { console_io(CONSOLEIO_READ, 0x8000_0000, buf.as_mut_ptr()) };
    check!(r, "read with count 0x80000000 (> INT_MAX)", got => -E2BIG);
    for cmd in [2u32, 3, 0xff, 0x8000_0000, u32::MAX] {
        // SAFETY: an unknown command touches no memory; `buf` is valid anyway.
        let got = unsafe { console_io(cmd, 16, buf.as_mut_ptr()) };
        check!(r, "unknown sub-command {cmd:#x}", got => -ENOSYS);
    }
}

/// CONSOLEIO_write of `count` bytes at `addr` fails with -EFAULT, leaves
/// every other register alone, and the console still works afterwards.
fn bad_write(r: &mut Report, name: &str, addr: u64, count: u64) {
    let regs = Gprs::distinct(7, CONSOLE_IO, &[u64::from(CONSOLEIO_WRITE), count, addr]);
    // SAFETY: CONSOLEIO_write only reads; the buffer is bad on purpose.
    let c = unsafe { syscall_with(regs) };
    check!(r, "write of {count} bytes at {name} ({addr:#x})", c.after.rax.cast_signed() => -EFAULT);
    // A write longer than one chunk may be preempted and continued; the
    // continuation then carries the rest in the argument registers (count
    // in rsi, buffer in rdx), as Xen's continuations do. Those two may
    // change, consistently; nothing else may.
    let continued = count > 127
        && c.after.rdx >= addr
        && c.after.rsi.checked_add(c.after.rdx - addr) == Some(count);
    let mut n = 0;
    for (reg, before, after) in changed(&c) {
        println!("  {reg} {before:#x} -> {after:#x}");
        if continued && (reg == "rsi" || reg == "rdx") {
            continue;
        }
        n += 1;
    }
    r.check(
        format_args!("  registers preserved after it ({n} changed), rcx = return rip"),
        n == 0 && c.after.rcx == c.next_rip && c.rsp_after == c.rsp_before,
    );
    check!(r, "  a following write", write(b"console: still alive\n") => 0);
}

/// Writes marker text just below `v_end` and checks how much of a buffer
/// running from there into the unmapped page is printed.
fn partially_bad(r: &mut Report, v_end: u64) {
    // [v_end - 200, v_end) is padding of the initial mapping: writable and
    // unused. The first chunk (127 bytes) is a line starting QX7-HEAD, the
    // rest a line starting QX7-TAIL that the faulting second chunk holds.
    let base = v_end - 200;
    // SAFETY: the 200 bytes below v_end are mapped RW (the initial mapping's
    // padding) and nothing else in this guest uses them.
    let area = unsafe { core::slice::from_raw_parts_mut(base as *mut u8, 200) };
    area.fill(b'.');
    area[..8].copy_from_slice(b"QX7-HEAD");
    area[CHUNK - 1] = b'\n';
    area[CHUNK..CHUNK + 8].copy_from_slice(b"QX7-TAIL");
    area[199] = b'\n';
    bad_write(r, "v_end - 200 (first chunk mapped)", base, 300);

    // One chunk of 100 bytes that starts with 16 mapped bytes: nothing of it
    // may be printed.
    area[184..192].copy_from_slice(b"QX7-NONE");
    area[199] = b'\n';
    bad_write(
        r,
        "v_end - 16 (one chunk, 16 bytes mapped)",
        v_end - 16,
        100,
    );
}
