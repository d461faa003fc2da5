//! `set_debugreg` / `get_debugreg` as on Xen 4.17: start-of-day values,
//! breakpoint addresses (guest ranges only), DR6/DR7 fixed bits, DR7.GD and
//! I/O breakpoints refused, DR4/DR5 aliasing DR6/DR7 (CR4.DE clear),
//! unknown register numbers.
//!
//! @covers: set_debugreg get_debugreg
#![no_std]
#![no_main]

use guest_abi::errno::{EINVAL, ENODEV, EPERM};
use guest_abi::hypercall::{hypercall1, hypercall2, GET_DEBUGREG, SET_DEBUGREG};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;

use tests::check;

guest_abi::pv_guest!(main, name = "debugreg");

fn set(reg: u64, v: u64) -> i64 {
    // SAFETY: the debug registers are virtual; nothing in memory changes.
    unsafe { hypercall2(SET_DEBUGREG, reg, v) }
}

fn get(reg: u64) -> i64 {
    // SAFETY: only reads.
    unsafe { hypercall1(GET_DEBUGREG, reg) }
}

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("debugreg");
    let h = |v: u64| v.cast_signed();

    // Start of day.
    for reg in 0..4 {
        check!(r, "get_debugreg({reg}) at start", get(reg) => 0);
    }
    check!(r, "get_debugreg(6) at start", get(6) => 0xffff_0ff0);
    check!(r, "get_debugreg(7) at start", get(7) => 0x400);

    // Breakpoint addresses.
    let addrs: [(&str, u64, i64); 7] = [
        ("a kernel address", 0xffff_ffff_8000_1000, 0),
        ("a user address", 0x0000_4000_1234, 0),
        ("the top of the lower half", 0x0000_7fff_ffff_ffff, 0),
        (
            "the first non-canonical address",
            0x0000_8000_0000_0000,
            -EPERM,
        ),
        ("hv's range (RO M2P)", 0xffff_8000_0000_0000, -EPERM),
        ("hv's last byte", 0xffff_87ff_ffff_ffff, -EPERM),
        ("just above hv", 0xffff_8800_0000_0000, 0),
    ];
    for (reg, &(name, va, want)) in (0..4u64).cycle().zip(addrs.iter()) {
        let before = get(reg);
        let got = set(reg, va);
        check!(r, "set_debugreg({reg}, {name} {va:#x})", got => want);
        let after = get(reg);
        let expect = if want == 0 { h(va) } else { before };
        check!(r, "get_debugreg({reg}) after it", after => expect);
    }

    // DR6.
    check!(r, "set_debugreg(6, 0)", set(6, 0) => 0);
    check!(r, "get_debugreg(6): fixed ones set", get(6) => 0xffff_0ff0);
    check!(r, "set_debugreg(6, B0|B2|BS)", set(6, 0x4005) => 0);
    check!(r, "get_debugreg(6)", get(6) => 0xffff_4ff5);
    check!(r, "set_debugreg(6, bit 12)", set(6, 0x1000) => 0);
    check!(r, "get_debugreg(6): bit 12 reads 0", get(6) => 0xffff_0ff0);
    check!(r, "set_debugreg(6, 1 << 32)", set(6, 1 << 32) => -EINVAL);

    // DR7.
    check!(r, "set_debugreg(7, 0)", set(7, 0) => 0);
    check!(r, "get_debugreg(7): bit 10 set", get(7) => 0x400);
    check!(r, "set_debugreg(7, L0, write, 4 bytes)", set(7, 0x000d_0001) => 0);
    check!(r, "get_debugreg(7)", get(7) => 0x000d_0401);
    check!(r, "set_debugreg(7, bits 12, 14, 15)", set(7, 0xd000) => 0);
    check!(r, "get_debugreg(7): reserved bits read 0", get(7) => 0x400);
    check!(r, "set_debugreg(7, GD)", set(7, 0x2000) => -EPERM);
    check!(r, "set_debugreg(7, G1, I/O breakpoint)", set(7, 0x0020_0008) => -EPERM);
    check!(r, "set_debugreg(7, I/O type, disabled)", set(7, 0x0020_0000) => 0);
    check!(r, "get_debugreg(7)", get(7) => 0x0020_0400);
    check!(r, "set_debugreg(7, 1 << 32)", set(7, 1 << 32) => -EINVAL);
    check!(r, "set_debugreg(7, 0) again", set(7, 0) => 0);

    // DR4/DR5 alias DR6/DR7 (CR4.DE clear).
    check!(r, "set_debugreg(4, B1)", set(4, 2) => 0);
    check!(r, "get_debugreg(6) after DR4", get(6) => 0xffff_0ff2);
    check!(r, "get_debugreg(4)", get(4) => 0xffff_0ff2);
    check!(r, "set_debugreg(5, L3)", set(5, 0x40) => 0);
    check!(r, "get_debugreg(7) after DR5", get(7) => 0x440);
    check!(r, "get_debugreg(5)", get(5) => 0x440);
    check!(r, "set_debugreg(5, GD)", set(5, 0x2000) => -EPERM);
    check!(r, "set_debugreg(7, 0) to finish", set(7, 0) => 0);

    // Unknown registers.
    for reg in [8u64, 15, 0xffff_ffff, 0x1_0000_0006] {
        let want_set = if reg == 0x1_0000_0006 { 0 } else { -ENODEV };
        check!(r, "set_debugreg({reg:#x}, 0)", set(reg, 0) => want_set);
        let want_get = if reg == 0x1_0000_0006 {
            0xffff_0ff0
        } else {
            -ENODEV
        };
        check!(r, "get_debugreg({reg:#x})", get(reg) => want_get);
    }
    r.finish()
}
