//! Each CPU's APIC and ACPI processor ids as `VCPUOP_get_physid` reports
//! them (APIC id in the low half, ACPI id in the high half), or all ones
//! for a CPU hv does not run (Xen's `BAD_APICID` and its "no ACPI id").

use core::sync::atomic::{AtomicU64, Ordering};

use super::percpu::MAX_CPUS;

static PHYS_IDS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

/// Records CPU `cpu`'s ids (at its bring-up).
pub fn record(cpu: usize, apic_id: u32, acpi_id: u32) {
    if let Some(slot) = PHYS_IDS.get(cpu) {
        slot.store(
            u64::from(apic_id) | u64::from(acpi_id) << 32,
            Ordering::Relaxed,
        );
    }
}

/// CPU `cpu`'s ids; all ones for a CPU that does not run.
pub fn of(cpu: u64) -> u64 {
    usize::try_from(cpu)
        .ok()
        .and_then(|c| PHYS_IDS.get(c))
        .map_or(u64::MAX, |s| s.load(Ordering::Relaxed))
}
