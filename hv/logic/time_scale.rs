//! The TSC-to-nanoseconds scale of `vcpu_time_info`, and calendar
//! arithmetic for the wallclock.
//!
//! A PV guest turns a TSC reading into system time (ns) as
//! `system_time + ((tsc - tsc_timestamp) << shift) * mul >> 32` (a negative
//! shift shifts right): `mul` is a 32-bit binary fraction, so the shift is
//! chosen to bring ns-per-tick into [0.5, 1) before it is stored — the
//! scheme Xen's public `vcpu_time_info` documents.

/// `(tsc_to_system_mul, tsc_shift)` for a TSC of `tsc_khz`.
///
/// Returns `None` for a zero frequency.
pub fn scale(tsc_khz: u64) -> Option<(u32, i8)> {
    if tsc_khz == 0 {
        return None;
    }
    // ns per tick = num / den = 1_000_000 / tsc_khz; bring it into
    // [0.5, 1) by doubling numerator or denominator (no precision lost),
    // counting the doublings in the shift the guest applies to ticks.
    let mut num: u128 = 1_000_000;
    let mut den: u128 = u128::from(tsc_khz);
    let mut shift: i8 = 0;
    while num * 2 < den {
        num *= 2;
        shift -= 1;
    }
    while num >= den {
        den *= 2;
        shift += 1;
    }
    let mul = (num << 32) / den;
    Some((u32::try_from(mul).ok()?, shift))
}

/// Nanoseconds for `ticks` under a scale, as a guest computes them.
pub fn ticks_to_ns(ticks: u64, mul: u32, shift: i8) -> u64 {
    let t = if shift >= 0 {
        ticks << shift
    } else {
        ticks >> (-shift)
    };
    let ns = (u128::from(t) * u128::from(mul)) >> 32;
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Seconds since 1970-01-01 for a UTC calendar time (proleptic Gregorian).
pub fn unix_seconds(year: u64, month: u64, day: u64, hour: u64, min: u64, sec: u64) -> u64 {
    // Days from the civil date, with March as the first month so the leap
    // day ends the year.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hour * 3600 + min * 60 + sec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_give_nanoseconds() {
        for khz in [
            1_000_000u64,
            2_300_000,
            2_633_012,
            3_000_000,
            999,
            25_000_000,
        ] {
            let (mul, shift) = scale(khz).unwrap();
            assert!(mul >= 1 << 31, "mul {mul:#x} for {khz} kHz is normalised");
            // One second of ticks is one second of nanoseconds, to 1 ppm.
            let ns = ticks_to_ns(khz * 1000, mul, shift);
            assert!(ns.abs_diff(1_000_000_000) <= 1000, "{khz} kHz: {ns} ns");
        }
        assert_eq!(scale(0), None);
    }

    #[test]
    fn xen_facts_scale_at_2_3_ghz() {
        // xen-facts.md: Xen gives mul 3734754300, shift -1 for its 2.3 GHz
        // TCG TSC; the same frequency must give the same scale (±1 for
        // rounding of the calibrated frequency).
        let (mul, shift) = scale(2_300_000).unwrap();
        assert_eq!(shift, -1);
        assert!(mul.abs_diff(3_734_754_300) < 3_000_000, "{mul}");
    }

    #[test]
    fn calendar() {
        assert_eq!(unix_seconds(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(unix_seconds(2000, 3, 1, 0, 0, 0), 951_868_800);
        assert_eq!(unix_seconds(2026, 11, 27, 1, 18, 7), 1_795_742_287);
    }
}
