//! The local APICs (xAPIC, MMIO: every CPU reaches its own at the same
//! address) and their timers, calibrated against the PIT on the boot CPU;
//! the legacy 8259 PICs are masked. IPIs go through the ICR ([`send_fixed`],
//! INIT and startup for `smp`).
//!
//! The timer is one-shot (tickless): [`set_deadline`] programs the next
//! expiry, a TSC value, and nothing else interrupts. With the CPU's
//! TSC-deadline mode (CPUID.1:ECX[24]) that is one MSR write; without it
//! the one-shot count is worked out from the calibrated ratio of APIC
//! ticks to TSC ticks, rounded up, so the interrupt is never early by
//! more than the two clocks' calibration error (the timer module checks
//! what is due when it comes, and programs again if nothing is).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::cpu::{inb, outb, rdmsr, rdtsc, wrmsr, MSR_APIC_BASE};
use crate::mm::frame_access as phys;

const REG_ID: u64 = 0x20;
const REG_TPR: u64 = 0x80;
const REG_EOI: u64 = 0xb0;
const REG_ICR_LOW: u64 = 0x300;
const REG_ICR_HIGH: u64 = 0x310;
const REG_SVR: u64 = 0xf0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_TIMER_INIT: u64 = 0x380;
const REG_TIMER_CURRENT: u64 = 0x390;
const REG_TIMER_DIVIDE: u64 = 0x3e0;

/// Vector of the APIC timer.
pub const TIMER_VECTOR: u32 = 0x20;
/// Spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u32 = 0xff;

/// `IA32_TSC_DEADLINE`.
const MSR_TSC_DEADLINE: u32 = 0x6e0;
/// LVT timer modes (bits 17-18).
const LVT_ONE_SHOT: u32 = 0;
const LVT_TSC_DEADLINE: u32 = 2 << 17;

static BASE: AtomicU64 = AtomicU64::new(0xfee0_0000);
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
static APIC_TICKS_PER_MS: AtomicU32 = AtomicU32::new(0);
/// The timer runs in TSC-deadline mode.
static TSC_DEADLINE: AtomicBool = AtomicBool::new(false);

/// The local APIC's register page (physical address).
pub fn base() -> u64 {
    BASE.load(Ordering::Relaxed)
}

fn read(reg: u64) -> u32 {
    phys::read_u32(BASE.load(Ordering::Relaxed) + reg).unwrap_or(0)
}

fn write(reg: u64, v: u32) {
    // SAFETY: BASE is the local APIC's register page (from its MSR, made
    // uncacheable in the direct map), and `reg` one of its registers.
    let _ = unsafe { phys::write_mmio_u32(BASE.load(Ordering::Relaxed) + reg, v) };
}

/// What calibration found, for the boot log.
pub struct TimerInfo {
    pub apic_id: u32,
    pub apic_ticks_per_ms: u32,
    pub tsc_khz: u64,
    /// The timer runs in TSC-deadline mode (else one-shot counts).
    pub tsc_deadline: bool,
}

/// Masks the PICs, enables the local APIC, calibrates its timer and the TSC
/// over 10 ms of PIT time, and leaves the timer stopped in one-shot (or
/// TSC-deadline) mode.
pub fn init() -> Result<TimerInfo, &'static str> {
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    let base = rdmsr(MSR_APIC_BASE) & 0x000f_ffff_ffff_f000;
    BASE.store(base, Ordering::Relaxed);
    let va = crate::mm::page_table::make_uncacheable(base)?;
    super::cpu::invlpg(va);
    write(REG_SVR, 0x100 | SPURIOUS_VECTOR);
    write(REG_TIMER_DIVIDE, 0x3); // divide by 16
    write(REG_LVT_TIMER, 1 << 16); // masked, one-shot
    write(REG_TIMER_INIT, u32::MAX);
    let tsc0 = rdtsc();
    pit_wait_10ms();
    let tsc1 = rdtsc();
    let elapsed = u32::MAX - read(REG_TIMER_CURRENT);
    write(REG_TIMER_INIT, 0);
    let per_ms = (elapsed / 10).max(1);
    APIC_TICKS_PER_MS.store(per_ms, Ordering::Relaxed);
    TSC_KHZ.store((tsc1 - tsc0) / 10, Ordering::Relaxed);
    let deadline = super::cpu::cpuid(1, 0)[2] & (1 << 24) != 0;
    TSC_DEADLINE.store(deadline, Ordering::Relaxed);
    let mode = if deadline {
        LVT_TSC_DEADLINE
    } else {
        LVT_ONE_SHOT
    };
    write(REG_LVT_TIMER, TIMER_VECTOR | mode);
    Ok(TimerInfo {
        apic_id: read(REG_ID) >> 24,
        apic_ticks_per_ms: per_ms,
        tsc_khz: TSC_KHZ.load(Ordering::Relaxed),
        tsc_deadline: deadline,
    })
}

/// Enables this (application) processor's local APIC for IPIs, its timer
/// set up with the boot CPU's divider but masked: an AP takes no vCPU
/// yet, and the tick's work (the scheduler's accounting and balancing)
/// belongs to CPUs that do (the APIC timer's work, which starts it there
/// with `APIC_TICKS_PER_MS` when the scheduler runs on APs).
pub fn init_ap() {
    write(REG_TPR, 0);
    write(REG_SVR, 0x100 | SPURIOUS_VECTOR);
    write(REG_TIMER_DIVIDE, 0x3); // divide by 16, as `init`
    write(REG_LVT_TIMER, 1 << 16); // masked
}

/// Arms this AP's timer as the boot CPU's (one-shot or TSC-deadline,
/// [`TIMER_VECTOR`]) once it takes vCPUs: its timer queue programs it.
pub fn start_timer_ap() {
    let mode = if TSC_DEADLINE.load(Ordering::Relaxed) {
        LVT_TSC_DEADLINE
    } else {
        LVT_ONE_SHOT
    };
    write(REG_LVT_TIMER, TIMER_VECTOR | mode);
}

/// This CPU's local APIC id (xAPIC: 8 bits).
pub fn apic_id() -> u32 {
    read(REG_ID) >> 24
}

/// ICR delivery modes and flags (Intel SDM vol. 3 §11.6.1).
const ICR_FIXED: u32 = 0;
const ICR_INIT: u32 = 5 << 8;
const ICR_STARTUP: u32 = 6 << 8;
const ICR_PENDING: u32 = 1 << 12;
const ICR_ASSERT: u32 = 1 << 14;

/// Sends an IPI with ICR low word `low` to the CPU with APIC id `dest`
/// and waits until the APIC has accepted it.
fn send(dest: u32, low: u32) {
    write(REG_ICR_HIGH, (dest & 0xff) << 24);
    write(REG_ICR_LOW, low);
    while read(REG_ICR_LOW) & ICR_PENDING != 0 {
        core::hint::spin_loop();
    }
}

/// A fixed interrupt with `vector` to APIC id `dest`.
pub fn send_fixed(dest: u32, vector: u32) {
    send(dest, ICR_FIXED | ICR_ASSERT | (vector & 0xff));
}

/// INIT to APIC id `dest` (the start of INIT-SIPI-SIPI).
pub fn send_init(dest: u32) {
    send(dest, ICR_INIT | ICR_ASSERT);
}

/// A startup IPI to APIC id `dest`: the CPU starts in real mode at
/// `page` (below 1 MiB, page-aligned) with CS = page >> 4, IP = 0.
pub fn send_startup(dest: u32, page: u64) {
    let vector = u32::try_from(page >> 12).unwrap_or(0) & 0xff;
    send(dest, ICR_STARTUP | ICR_ASSERT | vector);
}

/// Programs this CPU's timer to interrupt once the TSC reaches `tsc`
/// (at once if it has).
pub fn set_deadline(tsc: u64) {
    if TSC_DEADLINE.load(Ordering::Relaxed) {
        // SAFETY: the CPU has TSC-deadline mode (CPUID) and the LVT is in
        // it; a non-zero value arms the timer, which only interrupts.
        unsafe { wrmsr(MSR_TSC_DEADLINE, tsc.max(1)) };
        return;
    }
    let delta = tsc.saturating_sub(rdtsc());
    let per_ms = u128::from(APIC_TICKS_PER_MS.load(Ordering::Relaxed));
    let khz = u128::from(tsc_khz().max(1));
    let count = (u128::from(delta) * per_ms).div_ceil(khz);
    // Too far ahead for 32 bits: the interrupt comes early, finds nothing
    // due and programs the rest.
    write(
        REG_TIMER_INIT,
        u32::try_from(count.max(1)).unwrap_or(u32::MAX),
    );
}

/// Stops this CPU's timer.
pub fn stop_timer() {
    if TSC_DEADLINE.load(Ordering::Relaxed) {
        // SAFETY: as in `set_deadline`; 0 disarms.
        unsafe { wrmsr(MSR_TSC_DEADLINE, 0) };
    } else {
        write(REG_TIMER_INIT, 0);
    }
}

/// Busy-waits 10 ms on PIT channel 2.
fn pit_wait_10ms() {
    const COUNT: u16 = 11932; // 1.193182 MHz × 10 ms
    let gate = inb(0x61) & !0x02; // speaker off
    outb(0x61, gate & !0x01); // gate low
    outb(0x43, 0xb0); // channel 2, lo/hi byte, mode 0
    outb(0x42, (COUNT & 0xff) as u8);
    outb(0x42, (COUNT >> 8) as u8);
    outb(0x61, gate | 0x01); // gate high: count down
    while inb(0x61) & 0x20 == 0 {
        core::hint::spin_loop();
    }
}

/// Signals end of interrupt.
pub fn eoi() {
    write(REG_EOI, 0);
}

/// TSC frequency in kHz as calibrated.
pub fn tsc_khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed)
}

/// Busy-waits about `ms` milliseconds on the calibrated TSC.
pub fn delay_ms(ms: u64) {
    let khz = tsc_khz().max(1_000_000);
    let end = rdtsc().saturating_add(khz.saturating_mul(ms));
    while rdtsc() < end {
        core::hint::spin_loop();
    }
}

/// Busy-waits about `us` microseconds on the calibrated TSC.
pub fn delay_us(us: u64) {
    let khz = tsc_khz().max(1_000_000);
    let end = rdtsc().saturating_add(khz.saturating_mul(us) / 1000);
    while rdtsc() < end {
        core::hint::spin_loop();
    }
}
