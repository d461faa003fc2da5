//! The CMOS real-time clock, read once at boot for the guests' wallclock.

use super::cpu::{inb, outb};

fn reg(r: u8) -> u8 {
    // Keep NMIs enabled (bit 7 clear) while selecting the register.
    outb(0x70, r & 0x7f);
    inb(0x71)
}

/// The RTC's date and time as (year, month, day, hour, minute, second),
/// read twice until two reads agree outside an update cycle.
pub fn read() -> (u64, u64, u64, u64, u64, u64) {
    let snapshot = || {
        for _ in 0..1_000_000 {
            if reg(0x0a) & 0x80 == 0 {
                break;
            }
            core::hint::spin_loop();
        }
        [
            reg(0x00),
            reg(0x02),
            reg(0x04),
            reg(0x07),
            reg(0x08),
            reg(0x09),
            reg(0x32),
            reg(0x0b),
        ]
    };
    let mut a = snapshot();
    for _ in 0..10 {
        let b = snapshot();
        if a == b {
            break;
        }
        a = b;
    }
    let [sec, min, hour, day, month, year, century, status_b] = a;
    let bcd = status_b & 0x04 == 0;
    let dec = |v: u8| -> u64 { u64::from(if bcd { (v & 0x0f) + (v >> 4) * 10 } else { v }) };
    // 12-hour mode keeps PM in bit 7 of the hour.
    let mut h = dec(hour & 0x7f);
    if status_b & 0x02 == 0 && hour & 0x80 != 0 {
        h = (h % 12) + 12;
    }
    let c = dec(century);
    let year = if (19..=21).contains(&c) {
        c * 100 + dec(year)
    } else {
        2000 + dec(year)
    };
    (year, dec(month), dec(day), h, dec(min), dec(sec))
}
