//! Time as a PV guest reads it: vCPU 0's `vcpu_time_info` in the mapped
//! shared-info page, copied with the version protocol (retry while the
//! version is odd or changed), and system time computed from the TSC as
//! Xen's public header describes.

use core::sync::atomic::{compiler_fence, Ordering::SeqCst};

/// Offset of vCPU 0's `vcpu_info.time` in shared_info.
const TIME: u64 = 32;

fn rd32(va: u64) -> u32 {
    // SAFETY: `va` lies in the mapped shared-info page.
    unsafe { (va as *const u32).read_volatile() }
}

fn rd64(va: u64) -> u64 {
    // SAFETY: `va` lies in the mapped shared-info page.
    unsafe { (va as *const u64).read_volatile() }
}

pub fn tsc() -> u64 {
    // SAFETY: rdtsc has no side effects (and is not trapped for PV guests).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// One copy of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeInfo {
    pub version: u32,
    pub tsc_timestamp: u64,
    pub system_time: u64,
    pub mul: u32,
    pub shift: i8,
    pub flags: u8,
}

/// One unchecked copy of the record at shared-info address `shared`, and
/// the version read again after it: a copy is consistent when the two
/// versions are equal and even.
pub fn read_once(shared: u64) -> (TimeInfo, u32) {
    let t = shared + TIME;
    let version = rd32(t);
    compiler_fence(SeqCst);
    let tail = rd32(t + 28).to_le_bytes();
    let info = TimeInfo {
        version,
        tsc_timestamp: rd64(t + 8),
        system_time: rd64(t + 16),
        mul: rd32(t + 24),
        shift: tail[0].cast_signed(),
        flags: tail[1],
    };
    compiler_fence(SeqCst);
    (info, rd32(t))
}

/// A consistent copy of the record.
pub fn time_info(shared: u64) -> TimeInfo {
    loop {
        let (info, again) = read_once(shared);
        if info.version.is_multiple_of(2) && again == info.version {
            return info;
        }
    }
}

/// System time at TSC value `tsc` under the record `t`.
pub fn at(t: &TimeInfo, tsc: u64) -> u64 {
    let delta = tsc.wrapping_sub(t.tsc_timestamp);
    let delta = if t.shift >= 0 {
        delta << t.shift
    } else {
        delta >> -t.shift
    };
    t.system_time + u64::try_from((u128::from(delta) * u128::from(t.mul)) >> 32).unwrap_or(u64::MAX)
}

/// System time now.
pub fn now(shared: u64) -> u64 {
    let t = time_info(shared);
    at(&t, tsc())
}
