//! Firmware tables through the `acpi` crate: the MADT (CPUs, I/O APICs) and
//! the FADT (the PM1a control block used to power off).
//!
//! Tables are reached through hv's direct map, so "mapping" a region is just
//! address arithmetic and unmapping does nothing.

use core::ptr::NonNull;

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use heapless::Vec;

use crate::mm::frame_access;

#[derive(Clone, Copy)]
struct DirectMap;

impl AcpiHandler for DirectMap {
    /// # Safety
    /// The trait's: `physical_address` holds a valid `T` of `size` bytes.
    unsafe fn map_physical_region<T>(
        &self,
        physical_address: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let va = frame_access::virt_of(physical_address as u64).unwrap_or(0);
        // The direct map covers the whole table (firmware tables lie below
        // 4 GiB here); a null pointer would only come from an address outside
        // it, which `virt_of` reports as 0 and NonNull rejects.
        let ptr = NonNull::new(va as *mut T).unwrap_or(NonNull::dangling());
        // SAFETY: `ptr` maps `size` bytes at `physical_address` for as long as
        // hv runs (the direct map is never torn down); the acpi crate only
        // reads through it.
        unsafe { PhysicalMapping::new(physical_address, ptr, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// What hv takes from the firmware tables.
#[derive(Debug, Default)]
pub struct Platform {
    /// Local APIC ids of the enabled (or online-capable) processors.
    pub cpus: Vec<u32, 64>,
    /// Their ACPI processor ids, in the same order.
    pub acpi_ids: Vec<u32, 64>,
    pub io_apics: usize,
    /// The I/O APICs' register pages (physical addresses).
    pub io_apic_addrs: Vec<u64, 8>,
    /// I/O port of the PM1a control register, for ACPI poweroff.
    pub pm1a_control: Option<u16>,
}

/// Records one processor (the first 64).
fn add_cpu(p: &mut Platform, apic_id: u32, acpi_id: u32) {
    if p.cpus.push(apic_id).is_ok() {
        let _ = p.acpi_ids.push(acpi_id);
    }
}

/// Reads the tables from the RSDP (or by scanning the BIOS area).
pub fn read(rsdp: Option<u64>) -> Result<Platform, acpi::AcpiError> {
    // SAFETY: the address comes from the loader (or the BIOS scan) and names
    // an RSDP; the crate validates its checksum and every table's before use.
    let tables = unsafe {
        match rsdp {
            Some(a) => AcpiTables::from_rsdp(DirectMap, usize::try_from(a).unwrap_or(usize::MAX))?,
            None => AcpiTables::search_for_rsdp_bios(DirectMap)?,
        }
    };
    let mut p = Platform::default();
    if let Ok(madt) = tables.find_table::<Madt>() {
        for entry in madt.get().entries() {
            match entry {
                MadtEntry::LocalApic(e) if e.flags & 0b11 != 0 => {
                    add_cpu(&mut p, u32::from(e.apic_id), u32::from(e.processor_id));
                }
                MadtEntry::LocalX2Apic(e) if e.flags & 0b11 != 0 => {
                    add_cpu(&mut p, e.x2apic_id, e.processor_uid);
                }
                MadtEntry::IoApic(e) => {
                    p.io_apics += 1;
                    let _ = p.io_apic_addrs.push(u64::from(e.io_apic_address));
                }
                _ => {}
            }
        }
    }
    if let Ok(fadt) = tables.find_table::<acpi::fadt::Fadt>() {
        if let Ok(block) = fadt.pm1a_control_block() {
            if block.address_space == acpi::address::AddressSpace::SystemIo {
                p.pm1a_control = u16::try_from(block.address).ok();
            }
        }
    }
    Ok(p)
}
