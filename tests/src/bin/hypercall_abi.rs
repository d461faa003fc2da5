//! The x86_64 PV hypercall calling convention, independent of any one call.
//!
//! Numbers with no 64-bit PV handler in Xen 4.17 return `-ENOSYS`, including
//! numbers at or above 64 and numbers whose upper 32 bits are set (the whole
//! of `rax` is the number, so `(1 << 32) | 17` is not `xen_version`); 48
//! (`mca`) and 49 (`paging_domctl_cont`) do have handlers and are left out.
//! Across a hypercall every register except `rax` (the result), `rcx` and
//! `r11` keeps its value, `rsp` included (Xen's release build does not
//! scribble on argument registers; a debug build would); `rcx` comes back as
//! the address after the `syscall` and `r11` as the `rflags` the guest had,
//! as `sysret` leaves them. Arguments declared `int`/`unsigned int` ignore
//! the upper half of their register.
//!
//! @covers: xen_version.version sched_op.yield

#![no_std]
#![no_main]

use guest_abi::errno::ENOSYS;
use guest_abi::hypercall::{hypercall0, hypercall1, hypercall2, SCHED_OP, XEN_VERSION};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::sched::SCHEDOP_YIELD;
use guest_abi::version::XENVER_VERSION;
use tests::check;
use tests::regs::{changed, syscall_with, Capture, Gprs};

guest_abi::pv_guest!(main, name = "hypercall_abi");

/// Hypercall numbers Xen 4.17 has no 64-bit PV handler for.
const NO_HANDLER: &[u64] = &[
    11,
    43,
    44,
    45,
    46,
    47,
    50,
    51,
    52,
    53,
    54,
    55,
    56,
    57,
    58,
    59,
    60,
    61,
    62,
    63,
    64,
    65,
    127,
    128,
    1000,
    0xffff,
    0xffff_ffff,
    (1 << 32) | 17,
    (1 << 32) | 29,
    (1 << 63) | 17,
    u64::MAX,
];

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("hypercall_abi");
    unknown_numbers(&mut r);
    let version = guest_abi::hypercall::xen_version_version();
    r.check(
        format_args!("XENVER_version {version:#x} is positive"),
        version > 0,
    );
    preserved(
        &mut r,
        "xen_version(VERSION)",
        Gprs::distinct(1, XEN_VERSION, &[0, 0]),
        version,
    );
    preserved(
        &mut r,
        "unknown hypercall 11",
        Gprs::distinct(2, 11, &[]),
        -ENOSYS,
    );
    preserved(
        &mut r,
        "sched_op(yield)",
        Gprs::distinct(3, SCHED_OP, &[0, 0]),
        0,
    );
    int_args(&mut r, version);
    r.finish()
}

fn unknown_numbers(r: &mut Report) {
    for &nr in NO_HANDLER {
        // SAFETY: a number with no handler does nothing.
        let got = unsafe { hypercall0(nr) };
        check!(r, "hypercall {nr:#x}", got => -ENOSYS);
        // SAFETY: as above; arguments of a call with no handler are unused.
        let got = unsafe { hypercall2(nr, 0xffff_8000_0000_0000, u64::MAX) };
        check!(r, "hypercall {nr:#x} with junk arguments", got => -ENOSYS);
    }
}

/// Issues `regs` and checks the result, that every register but rax, rcx
/// and r11 survived, and what rcx and r11 hold.
fn preserved(r: &mut Report, what: &str, regs: Gprs, want: i64) {
    // SAFETY: the callers pass calls that take no buffers (xen_version
    // VERSION, yield, a number with no handler).
    let c: Capture = unsafe { syscall_with(regs) };
    check!(r, what, c.after.rax.cast_signed() => want);
    let mut n = 0;
    for (name, before, after) in changed(&c) {
        guest_abi::println!("  {what}: {name} {before:#x} -> {after:#x}");
        n += 1;
    }
    r.check(
        format_args!("{what}: rbx rdx rsi rdi rbp r8-r10 r12-r15 preserved ({n} changed)"),
        n == 0,
    );
    r.check(
        format_args!(
            "{what}: rsp {:#x} preserved ({:#x})",
            c.rsp_before, c.rsp_after
        ),
        c.rsp_before == c.rsp_after,
    );
    r.check(
        format_args!(
            "{what}: rcx {:#x} is the return rip {:#x}",
            c.after.rcx, c.next_rip
        ),
        c.after.rcx == c.next_rip,
    );
    r.check(
        format_args!(
            "{what}: r11 {:#x} is the rflags before the call {:#x}",
            c.after.r11, c.rflags_before
        ),
        c.after.r11 == c.rflags_before,
    );
}

/// `int` and `unsigned int` arguments take only the low half of a register.
fn int_args(r: &mut Report, version: i64) {
    // SAFETY: XENVER_version ignores its buffer argument.
    let got = unsafe { hypercall2(XEN_VERSION, (1 << 32) | u64::from(XENVER_VERSION), 0) };
    check!(r, "xen_version(cmd = (1<<32)|VERSION)", got => version);
    // SAFETY: as above.
    let got = unsafe { hypercall2(XEN_VERSION, 0xffff_ffff_0000_0000, 0) };
    check!(r, "xen_version(cmd = 0xffffffff00000000)", got => version);
    // SAFETY: yield takes no argument.
    let got = unsafe { hypercall2(SCHED_OP, (7 << 32) | u64::from(SCHEDOP_YIELD), 0) };
    check!(r, "sched_op(cmd = (7<<32)|yield)", got => 0);
    // SAFETY: -1 in the low half is an unknown command whatever the upper half.
    let got = unsafe { hypercall1(XEN_VERSION, 0x0000_0000_ffff_ffff) };
    check!(r, "xen_version(cmd = 0xffffffff, i.e. -1)", got => -ENOSYS);
}
