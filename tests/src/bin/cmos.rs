//! The RTC/CMOS ports 0x70-0x71 from domain 0, as Xen 4.17 mediates them
//! (`rtc_guest_read`/`rtc_guest_write`): a write to 0x70 latches the
//! index (all 8 bits), a read of 0x70 gives the latched index back, and
//! 0x71 reads and writes the real RTC register at that index. Linux's
//! `rtc_cmos` probes through them.
//!
//! @covers: physdev_op.set_iopl
#![no_std]
#![no_main]

use core::arch::asm;

use guest_abi::hypercall::{hypercall2, PHYSDEV_OP};
use guest_abi::physdev::PHYSDEVOP_SET_IOPL;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use tests::check;

guest_abi::pv_guest!(main, name = "cmos");

fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: emulated port read.
    unsafe { asm!("in al, dx", in("dx") port, out("al") v, options(nomem, nostack)) };
    v
}

fn outb(port: u16, v: u8) {
    // SAFETY: emulated port write of an RTC index (no register changes).
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack)) };
}

/// RTC register `idx` through the two ports.
fn cmos(idx: u8) -> u8 {
    outb(0x70, idx);
    inb(0x71)
}

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("cmos");
    let iopl = 1u32;
    // SAFETY: the argument is a live u32.
    let rc = unsafe {
        hypercall2(
            PHYSDEV_OP,
            u64::from(PHYSDEVOP_SET_IOPL),
            &iopl as *const u32 as u64,
        )
    };
    check!(r, "physdev_op set_iopl 1", rc => 0);
    outb(0x70, 0x0d);
    check!(r, "out 0x70 0x0d, in 0x70: the index", inb(0x70) => 0x0d);
    outb(0x70, 0x8b);
    check!(r, "out 0x70 0x8b, in 0x70: the index with the NMI bit", inb(0x70) => 0x8b);
    check!(r, "register 0x0d (status D): valid RAM and time", cmos(0x0d) => 0x80);
    let b = cmos(0x0b);
    check!(r, "register 0x0b (status B): 24-hour mode", b & 0x02 => 0x02);
    let sec = cmos(0x00);
    let secs = if b & 0x04 != 0 {
        sec
    } else {
        (sec >> 4) * 10 + (sec & 0xf)
    };
    r.check(format_args!("register 0x00 (seconds): {sec:#x}"), secs < 60);
    check!(r, "register 0x0d again, after 0x80 | 0x0d", cmos(0x8d) => 0x80);
    r.finish()
}
