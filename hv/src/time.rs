//! Time as guests see it: `vcpu_time_info` (TSC scale, system time) and the
//! wallclock in `shared_info`, filled as Xen fills them before a vCPU
//! first runs.
//!
//! System time is nanoseconds since hv booted, from the TSC (which hv
//! calibrates against the PIT and treats as constant-rate); the wallclock
//! is the CMOS clock read at boot. Both fields use Xen's version protocol
//! (odd while being written, even once stable), so a guest reading
//! concurrently retries.

use core::sync::atomic::{AtomicU64, Ordering};

use guest_abi::xen::{SharedInfo, VcpuInfo, VcpuTimeInfo};
use hv::time_scale;

use crate::arch::x86_64::{apic, cpu, rtc};
use crate::mm::{frame_access as phys, FrameWrite};

static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
/// Wallclock at `BOOT_TSC`, in seconds since 1970.
static BOOT_WALLCLOCK: AtomicU64 = AtomicU64::new(0);

/// Records the boot instant: called first thing in `main`.
pub fn mark_boot() {
    BOOT_TSC.store(cpu::rdtsc(), Ordering::Relaxed);
}

/// Reads the wallclock (after the TSC is calibrated).
pub fn init() -> (u64, u64, u64, u64, u64, u64) {
    let (y, mo, d, h, mi, s) = rtc::read();
    let secs = time_scale::unix_seconds(y, mo, d, h, mi, s);
    // Refer the wallclock back to the boot instant.
    let since_boot = now_ns() / 1_000_000_000;
    BOOT_WALLCLOCK.store(secs.saturating_sub(since_boot), Ordering::Relaxed);
    (y, mo, d, h, mi, s)
}

/// Nanoseconds since boot.
pub fn now_ns() -> u64 {
    let ticks = cpu::rdtsc().saturating_sub(BOOT_TSC.load(Ordering::Relaxed));
    match time_scale::scale(apic::tsc_khz()) {
        Some((mul, shift)) => time_scale::ticks_to_ns(ticks, mul, shift),
        None => 0,
    }
}

/// This moment's `vcpu_time_info` with version `version` (for a copy hv
/// writes elsewhere: `VCPUOP_register_vcpu_time_memory_area`); `None`
/// before the TSC is calibrated.
pub fn time_info(version: u32) -> Option<VcpuTimeInfo> {
    let (mul, shift) = time_scale::scale(apic::tsc_khz())?;
    let tsc = cpu::rdtsc();
    Some(VcpuTimeInfo {
        version,
        pad0: 0,
        tsc_timestamp: tsc,
        system_time: time_scale::ticks_to_ns(
            tsc.saturating_sub(BOOT_TSC.load(Ordering::Relaxed)),
            mul,
            shift,
        ),
        tsc_to_system_mul: mul,
        tsc_shift: shift,
        flags: 0,
        pad1: [0; 2],
    })
}

const TIME: u64 = core::mem::offset_of!(VcpuInfo, time) as u64;
const WC_VERSION: u64 = core::mem::offset_of!(SharedInfo, wc_version) as u64;

/// Fills vCPU `vcpu`'s `vcpu_time_info` and the wallclock in the
/// shared-info frame `shared_info`.
pub fn fill(shared_info: &impl FrameWrite, vcpu: u64) -> Result<(), phys::OutOfRange> {
    let base = shared_info.frame() * phys::PAGE_SIZE;
    let Some((mul, shift)) = time_scale::scale(apic::tsc_khz()) else {
        return Ok(());
    };
    let t = vcpu * core::mem::size_of::<VcpuInfo>() as u64 + TIME;
    let version = phys::read_u32(base + t)?;
    shared_info.write_u32(t, version | 1)?;
    let tsc = cpu::rdtsc();
    let system_time = time_scale::ticks_to_ns(
        tsc.saturating_sub(BOOT_TSC.load(Ordering::Relaxed)),
        mul,
        shift,
    );
    let mut info = [0u8; 32];
    info[8..16].copy_from_slice(&tsc.to_le_bytes());
    info[16..24].copy_from_slice(&system_time.to_le_bytes());
    info[24..28].copy_from_slice(&mul.to_le_bytes());
    info[28] = shift.to_le_bytes()[0];
    shared_info.write(t + 8, &info[8..32])?;
    shared_info.write_u32(t, (version | 1).wrapping_add(1))?;
    const _: () = assert!(core::mem::size_of::<VcpuTimeInfo>() == 32);

    let wc = WC_VERSION;
    let wc_version = phys::read_u32(base + wc)?;
    shared_info.write_u32(wc, wc_version | 1)?;
    let secs = BOOT_WALLCLOCK.load(Ordering::Relaxed);
    shared_info.write_u32(wc + 4, (secs & 0xffff_ffff) as u32)?;
    shared_info.write_u32(wc + 8, 0)?;
    shared_info.write_u32(wc + 12, (secs >> 32) as u32)?;
    shared_info.write_u32(wc, (wc_version | 1).wrapping_add(1))
}
