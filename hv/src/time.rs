//! Time as guests see it: system time, each vCPU's `vcpu_time_info`, and
//! the wallclock in `shared_info`.
//!
//! System time is nanoseconds since hv booted, from the TSC (which hv
//! calibrates against the PIT once and treats as constant-rate). As on
//! Xen, each CPU keeps a stamp, a TSC value and the system time at it
//! (Xen's `cpu_time.stamp`), and system time is `stime + scale(tsc -
//! tsc_stamp)`: [`now_ns`] is exactly what a guest computes from its
//! `vcpu_time_info`, so a deadline a guest sets from its own reading is
//! never reached early by hv's. The stamp moves on every second
//! ([`calibrate`], from the CPU's timer queue), the new one being the old
//! formula's value at the new TSC, and the running vCPU's
//! `vcpu_time_info` is rewritten then and whenever a vCPU is loaded onto
//! a CPU ([`update_vcpu_time`]). Monotonic for the guest: it reads only
//! while hv does not run on its CPU (one vCPU per CPU), and at the new
//! stamp's TSC both formulas agree.
//!
//! `vcpu_time_info` is written with Xen's version protocol (odd while
//! being written, even once stable; `hv::time_scale::version_begin`),
//! and only when it changed unless forced, as Xen's
//! `__update_vcpu_system_time`. `flags` stays 0: Xen sets
//! `XEN_PVCLOCK_TSC_STABLE_BIT` only with its TSC clocksource. The
//! writer is generic over [`TimeArea`], so a second area
//! (`VCPUOP_register_vcpu_time_memory_area`) is one more implementation.
//!
//! The wallclock is the CMOS clock read at boot, referred back to system
//! time 0, written once when a domain is built (Xen updates it only when
//! dom0 sets the time).

use core::sync::atomic::{AtomicU64, Ordering};

use guest_abi::xen::{SharedInfo, VcpuInfo, VcpuTimeInfo};
use hv::time_scale;

use crate::arch::x86_64::percpu::{self, MAX_CPUS};
use crate::arch::x86_64::{apic, cpu, rtc};
use crate::mm::{frame_access as phys, FrameWrite};

static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
/// Wallclock at system time 0, in seconds since 1970.
static BOOT_WALLCLOCK: AtomicU64 = AtomicU64::new(0);
/// The TSC scale: `tsc_to_system_mul` in the low 32 bits, `tsc_shift` in
/// the next 8 (set once, by [`init`]).
static SCALE: AtomicU64 = AtomicU64::new(0);

/// How often each CPU moves its stamp on (Xen's `EPOCH`).
pub const CALIBRATION_PERIOD_NS: u64 = 1_000_000_000;

/// One CPU's stamp: the TSC and the system time at it. Written only by
/// its CPU, with interrupts off; read by its CPU.
struct Stamp {
    tsc: AtomicU64,
    stime: AtomicU64,
}

static STAMPS: [Stamp; MAX_CPUS] = [const {
    Stamp {
        tsc: AtomicU64::new(0),
        stime: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// Records the boot instant: called first thing in `main`.
pub fn mark_boot() {
    BOOT_TSC.store(cpu::rdtsc(), Ordering::Relaxed);
}

#[inline(always)]
fn scale() -> (u32, i8) {
    let [m0, m1, m2, m3, shift, ..] = SCALE.load(Ordering::Relaxed).to_le_bytes();
    (u32::from_le_bytes([m0, m1, m2, m3]), shift.cast_signed())
}

/// Sets the scale from the calibrated TSC, this CPU's first stamp (the
/// boot instant, system time 0), and reads the wallclock.
pub fn init() -> (u64, u64, u64, u64, u64, u64) {
    if let Some((mul, shift)) = time_scale::scale(apic::tsc_khz()) {
        SCALE.store(
            u64::from(mul) | u64::from(shift.cast_unsigned()) << 32,
            Ordering::Relaxed,
        );
    }
    start_cpu(BOOT_TSC.load(Ordering::Relaxed), 0);
    let (y, mo, d, h, mi, s) = rtc::read();
    let secs = time_scale::unix_seconds(y, mo, d, h, mi, s);
    // Refer the wallclock back to the boot instant.
    let since_boot = now_ns() / 1_000_000_000;
    BOOT_WALLCLOCK.store(secs.saturating_sub(since_boot), Ordering::Relaxed);
    (y, mo, d, h, mi, s)
}

/// Starts an AP's clock as the boot CPU's: the boot instant's stamp, so
/// every CPU reads the same system time from the same TSC (the TSCs run
/// together, as QEMU's and an invariant TSC's do). Without it an AP
/// counted from TSC 0 and ran ahead by the TSC at boot, tens of
/// milliseconds under QEMU, which broke runstate times across CPUs.
pub fn start_ap() {
    start_cpu(BOOT_TSC.load(Ordering::Relaxed), 0);
}

/// Starts this CPU's clock at (`tsc`, `stime`).
pub fn start_cpu(tsc: u64, stime: u64) {
    let st = &STAMPS[percpu::cpu_id()];
    st.tsc.store(tsc, Ordering::Relaxed);
    st.stime.store(stime, Ordering::Relaxed);
}

/// System time at TSC value `tsc` on this CPU.
#[inline(always)]
fn at_tsc(tsc: u64) -> u64 {
    let st = &STAMPS[percpu::cpu_id()];
    let (mul, shift) = scale();
    let ticks = tsc.saturating_sub(st.tsc.load(Ordering::Relaxed));
    st.stime
        .load(Ordering::Relaxed)
        .saturating_add(time_scale::ticks_to_ns(ticks, mul, shift))
}

/// Nanoseconds since boot (Xen's `NOW()`).
#[inline(always)]
pub fn now_ns() -> u64 {
    at_tsc(cpu::rdtsc())
}

/// The TSC value at which this CPU's system time reaches `ns` (the
/// current TSC if it has).
pub fn tsc_at(ns: u64) -> u64 {
    let st = &STAMPS[percpu::cpu_id()];
    let stime = st.stime.load(Ordering::Relaxed);
    let ahead = ns.saturating_sub(stime);
    st.tsc
        .load(Ordering::Relaxed)
        .saturating_add(time_scale::ns_to_ticks_ceil(ahead, apic::tsc_khz()))
}

/// Moves this CPU's stamp on to now (the per-second calibration).
pub fn calibrate() {
    let tsc = cpu::rdtsc();
    let stime = at_tsc(tsc);
    start_cpu(tsc, stime);
}

/// This CPU's time as a vCPU running on it sees it (version left 0).
pub fn snapshot() -> VcpuTimeInfo {
    let st = &STAMPS[percpu::cpu_id()];
    let (mul, shift) = scale();
    VcpuTimeInfo {
        tsc_timestamp: st.tsc.load(Ordering::Relaxed),
        system_time: st.stime.load(Ordering::Relaxed),
        tsc_to_system_mul: mul,
        tsc_shift: shift,
        ..VcpuTimeInfo::default()
    }
}

/// This CPU's `vcpu_time_info` with version `version` (for the copy
/// `VCPUOP_register_vcpu_time_memory_area` registers, which
/// `hypercall::vcpu_op::write_time_area` writes with its own version
/// steps); `None` before the TSC is calibrated.
pub fn time_info(version: u32) -> Option<VcpuTimeInfo> {
    let t = snapshot();
    (t.tsc_to_system_mul != 0).then_some(VcpuTimeInfo { version, ..t })
}

/// A `vcpu_time_info` hv keeps current: in the vCPU's `vcpu_info`, or a
/// second area the guest registers. Implementations write the guest's
/// memory with volatile stores (the guest reads concurrently).
pub trait TimeArea {
    /// The area's current contents.
    fn read_time(&self) -> VcpuTimeInfo;
    /// Stores `version` (the first word).
    fn write_time_version(&self, version: u32);
    /// Stores everything but the version.
    fn write_time_body(&self, t: &VcpuTimeInfo);
}

/// Writes this CPU's time into `area` with the version protocol: unless
/// `force`, only if it changed (Xen's `__update_vcpu_system_time`).
pub fn update_vcpu_time(area: &impl TimeArea, force: bool) {
    let new = snapshot();
    let old = area.read_time();
    if !force && (VcpuTimeInfo { version: 0, ..old }) == new {
        return;
    }
    let begun = time_scale::version_begin(old.version);
    area.write_time_version(begun);
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    area.write_time_body(&new);
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    area.write_time_version(time_scale::version_end(begun));
}

const TIME: u64 = core::mem::offset_of!(VcpuInfo, time) as u64;
const WC_VERSION: u64 = core::mem::offset_of!(SharedInfo, wc_version) as u64;

/// Fills vCPU `vcpu`'s `vcpu_time_info` and the wallclock in the
/// shared-info frame `shared_info` (a domain being built).
pub fn fill(shared_info: &impl FrameWrite, vcpu: u64) -> Result<(), phys::OutOfRange> {
    let base = shared_info.frame() * phys::PAGE_SIZE;
    let t = vcpu * core::mem::size_of::<VcpuInfo>() as u64 + TIME;
    let version = phys::read_u32(base + t)?;
    let begun = time_scale::version_begin(version);
    shared_info.write_u32(t, begun)?;
    let now = snapshot();
    let mut info = [0u8; 32];
    info[8..16].copy_from_slice(&now.tsc_timestamp.to_le_bytes());
    info[16..24].copy_from_slice(&now.system_time.to_le_bytes());
    info[24..28].copy_from_slice(&now.tsc_to_system_mul.to_le_bytes());
    info[28] = now.tsc_shift.to_le_bytes()[0];
    shared_info.write(t + 8, &info[8..32])?;
    shared_info.write_u32(t, time_scale::version_end(begun))?;
    const _: () = assert!(core::mem::size_of::<VcpuTimeInfo>() == 32);

    let wc = WC_VERSION;
    let wc_version = phys::read_u32(base + wc)?;
    let begun = time_scale::version_begin(wc_version);
    shared_info.write_u32(wc, begun)?;
    let secs = BOOT_WALLCLOCK.load(Ordering::Relaxed);
    shared_info.write_u32(wc + 4, (secs & 0xffff_ffff) as u32)?;
    shared_info.write_u32(wc + 8, 0)?;
    shared_info.write_u32(wc + 12, (secs >> 32) as u32)?;
    shared_info.write_u32(wc, time_scale::version_end(begun))
}
