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

/// TSC ticks (rounded up) for `ns` nanoseconds of a TSC of `tsc_khz`:
/// a deadline programmed this far ahead is never early.
pub fn ns_to_ticks_ceil(ns: u64, tsc_khz: u64) -> u64 {
    let t = (u128::from(ns) * u128::from(tsc_khz)).div_ceil(1_000_000);
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// The version a writer stores before changing `vcpu_time_info` (odd:
/// a reader retries), from the version it found; Xen's
/// `version_update_begin` (ORed with 1 in case the count got out of step).
pub fn version_begin(v: u32) -> u32 {
    v.wrapping_add(1) | 1
}

/// The version a writer stores when done (even again).
pub fn version_end(begun: u32) -> u32 {
    begun.wrapping_add(1)
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
    fn ticks_round_up_and_invert_the_scale() {
        for khz in [1_000_000u64, 2_300_000, 2_633_012, 999] {
            let (mul, shift) = scale(khz).unwrap();
            for ns in [0u64, 1, 999, 1_000_000, 10_000_000, 123_456_789_012] {
                let t = ns_to_ticks_ceil(ns, khz);
                // Never early: those ticks are at least `ns` (to the
                // scale's rounding of one part in 2^31).
                let back = ticks_to_ns(t, mul, shift);
                assert!(
                    back + 1 + ns / (1 << 30) >= ns,
                    "{khz} kHz {ns} ns: {t} ticks -> {back}"
                );
                assert!(t == 0 || ticks_to_ns(t - 1, mul, shift) <= ns + 1);
            }
        }
        assert_eq!(ns_to_ticks_ceil(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn version_protocol() {
        assert_eq!(version_begin(0), 1);
        assert_eq!(version_end(version_begin(0)), 2);
        assert_eq!(version_begin(2), 3);
        // Out of step (odd): still odd while writing, even after.
        assert_eq!(version_begin(5), 7);
        assert_eq!(version_end(7), 8);
        assert_eq!(version_begin(u32::MAX), 1);
        assert_eq!(version_end(version_begin(u32::MAX - 1)), 0);
    }

    #[test]
    fn calendar() {
        assert_eq!(unix_seconds(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(unix_seconds(2000, 3, 1, 0, 0, 0), 951_868_800);
        assert_eq!(unix_seconds(2026, 11, 27, 1, 18, 7), 1_795_742_287);
    }
}
