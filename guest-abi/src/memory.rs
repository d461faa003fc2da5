//! `memory_op` sub-commands and their argument structs (`memory.h`).
//!
//! Guest handles (`XEN_GUEST_HANDLE(T)`) are guest virtual addresses, kept
//! here as `u64`: the hypervisor reaches them only through its checked
//! copy-in/copy-out accessors. Sharing, paging and access operations are
//! toolstack features `hv` does not offer; only their numbers are here.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// Give the domain more extents. Argument: [`XenMemoryReservation`].
/// The bits of `memory_op`'s `cmd` that are the command; the bits from
/// [`MEMOP_EXTENT_SHIFT`] up carry a preempted call's restart point.
pub const MEMOP_CMD_MASK: u32 = (1 << MEMOP_EXTENT_SHIFT) - 1;
/// Where a preempted `memory_op`'s restart point starts in `cmd`.
pub const MEMOP_EXTENT_SHIFT: u32 = 6;
pub const XENMEM_INCREASE_RESERVATION: u32 = 0;
/// Give extents back. Argument: [`XenMemoryReservation`].
pub const XENMEM_DECREASE_RESERVATION: u32 = 1;
/// Highest machine frame. No argument (a `domid_t` for the compat form).
pub const XENMEM_MAXIMUM_RAM_PAGE: u32 = 2;
/// Pages the domain holds. Argument: `domid_t`.
pub const XENMEM_CURRENT_RESERVATION: u32 = 3;
/// Pages the domain may hold. Argument: `domid_t`.
pub const XENMEM_MAXIMUM_RESERVATION: u32 = 4;
/// Frames of the M2P table. Argument: [`XenMachphysMfnList`].
pub const XENMEM_MACHPHYS_MFN_LIST: u32 = 5;
/// Populate guest frames. Argument: [`XenMemoryReservation`].
pub const XENMEM_POPULATE_PHYSMAP: u32 = 6;
/// Map a special frame into the physmap. Argument: [`XenAddToPhysmap`].
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;
/// The domain's pseudo-physical memory map. Argument: [`XenMemoryMap`].
pub const XENMEM_MEMORY_MAP: u32 = 9;
/// The machine's memory map (privileged). Argument: [`XenMemoryMap`].
pub const XENMEM_MACHINE_MEMORY_MAP: u32 = 10;
/// Trade extents for others. Argument: [`XenMemoryExchange`].
pub const XENMEM_EXCHANGE: u32 = 11;
/// Where the M2P table is mapped. Argument: [`XenMachphysMapping`].
pub const XENMEM_MACHPHYS_MAPPING: u32 = 12;
/// Set a domain's memory map (privileged). Argument: [`XenForeignMemoryMap`].
pub const XENMEM_SET_MEMORY_MAP: u32 = 13;
/// Highest guest frame in use. Argument: `domid_t`.
pub const XENMEM_MAXIMUM_GPFN: u32 = 14;
/// Remove a frame from the physmap. Argument: [`XenRemoveFromPhysmap`].
pub const XENMEM_REMOVE_FROM_PHYSMAP: u32 = 15;
/// Set the populate-on-demand target (HVM). Argument: `xen_pod_target`.
pub const XENMEM_SET_POD_TARGET: u32 = 16;
/// Get the populate-on-demand target (HVM). Argument: `xen_pod_target`.
pub const XENMEM_GET_POD_TARGET: u32 = 17;
/// Memory-sharing statistic. No argument.
pub const XENMEM_GET_SHARING_FREED_PAGES: u32 = 18;
/// Memory-sharing statistic. No argument.
pub const XENMEM_GET_SHARING_SHARED_PAGES: u32 = 19;
/// Memory paging (toolstack). Argument: `xen_mem_paging_op`.
pub const XENMEM_PAGING_OP: u32 = 20;
/// Memory access control (toolstack). Argument: `xen_mem_access_op`.
pub const XENMEM_ACCESS_OP: u32 = 21;
/// Memory sharing (toolstack). Argument: `xen_mem_sharing_op`.
pub const XENMEM_SHARING_OP: u32 = 22;
/// Batched add-to-physmap. Argument: [`XenAddToPhysmapBatch`].
pub const XENMEM_ADD_TO_PHYSMAP_BATCH: u32 = 23;
/// Claim pages for a domain being built. Argument: [`XenMemoryReservation`].
pub const XENMEM_CLAIM_PAGES: u32 = 24;
/// Frames of the 32-bit M2P table. Argument: [`XenMachphysMfnList`].
pub const XENMEM_MACHPHYS_COMPAT_MFN_LIST: u32 = 25;
/// Virtual NUMA topology. Argument: `xen_vnuma_topology_info`.
pub const XENMEM_GET_VNUMAINFO: u32 = 26;
/// Reserved device-memory regions. Argument: `xen_reserved_device_memory_map`.
pub const XENMEM_RESERVED_DEVICE_MEMORY_MAP: u32 = 27;
/// Map a resource's frames. Argument: `xen_mem_acquire_resource`.
pub const XENMEM_ACQUIRE_RESOURCE: u32 = 28;

/// `mem_flags`: address-bit restriction in the low byte (0 = none).
pub const fn xenmemf_address_bits(bits: u32) -> u32 {
    bits
}
/// `mem_flags`: the address-bit restriction.
pub const fn xenmemf_get_address_bits(flags: u32) -> u32 {
    flags & 0xff
}
/// `mem_flags`: prefer NUMA node `node`.
pub const fn xenmemf_node(node: u32) -> u32 {
    (node + 1) << 8
}
/// `mem_flags`: the preferred node (`0xff` = none).
pub const fn xenmemf_get_node(flags: u32) -> u32 {
    ((flags >> 8).wrapping_sub(1)) & 0xff
}
/// `mem_flags`: populate on demand (HVM).
pub const XENMEMF_POPULATE_ON_DEMAND: u32 = 1 << 16;
/// `mem_flags`: fail rather than use another node.
pub const XENMEMF_EXACT_NODE_REQUEST: u32 = 1 << 17;
/// `mem_flags`: the node is a virtual node.
pub const XENMEMF_VNODE: u32 = 1 << 18;

/// Map space: the shared-info page.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// Map space: a grant-table frame (`XENMAPIDX_grant_table_status` for v2 status).
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// Map space: a guest frame (move it).
pub const XENMAPSPACE_GMFN: u32 = 2;
/// Map space: a range of guest frames.
pub const XENMAPSPACE_GMFN_RANGE: u32 = 3;
/// Map space: another domain's frame.
pub const XENMAPSPACE_GMFN_FOREIGN: u32 = 4;
/// Map space: device MMIO (Arm).
pub const XENMAPSPACE_DEV_MMIO: u32 = 5;
/// `add_to_physmap.idx` flag: a v2 grant-status frame.
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 0x8000_0000;

/// `xen_memory_reservation` (32 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMemoryReservation {
    /// Guest pointer to `nr_extents` `xen_pfn_t`s (IN and/or OUT per op).
    pub extent_start: u64,
    /// Number of extents.
    pub nr_extents: u64,
    /// log2 of pages per extent.
    pub extent_order: u32,
    /// `XENMEMF_*`.
    pub mem_flags: u32,
    /// The domain (`DOMID_SELF` or, privileged, another).
    pub domid: u16,
    /// Padding.
    pub _pad: [u16; 3],
}
assert_layout!(XenMemoryReservation, 32; extent_start = 0, nr_extents = 8,
    extent_order = 16, mem_flags = 20, domid = 24);

/// `xen_memory_exchange`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMemoryExchange {
    /// IN: the extents given up.
    pub in_: XenMemoryReservation,
    /// IN/OUT: the extents wanted.
    pub out: XenMemoryReservation,
    /// OUT: input extents exchanged so far (also the restart point).
    pub nr_exchanged: u64,
}
assert_layout!(XenMemoryExchange, 72; in_ = 0, out = 32, nr_exchanged = 64);

/// `xen_memory_domain`: argument of the reservation queries.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMemoryDomain {
    /// The domain.
    pub domid: u16,
}
assert_layout!(XenMemoryDomain, 2; domid = 0);

/// `xen_machphys_mfn_list`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMachphysMfnList {
    /// IN: size of the array.
    pub max_extents: u32,
    /// Padding.
    pub _pad0: u32,
    /// IN: guest pointer to the array of frames (one per 2 MiB of M2P).
    pub extent_start: u64,
    /// OUT: entries written.
    pub nr_extents: u32,
    /// Padding.
    pub _pad1: u32,
}
assert_layout!(XenMachphysMfnList, 24; max_extents = 0, extent_start = 8, nr_extents = 16);

/// `xen_machphys_mapping`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMachphysMapping {
    /// Start of the read-only M2P mapping.
    pub v_start: u64,
    /// End of the mapping.
    pub v_end: u64,
    /// Highest machine frame the mapping covers.
    pub max_mfn: u64,
}
assert_layout!(XenMachphysMapping, 24; v_start = 0, v_end = 8, max_mfn = 16);

/// `xen_add_to_physmap`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenAddToPhysmap {
    /// The domain whose physmap changes.
    pub domid: u16,
    /// Frames, for `XENMAPSPACE_gmfn_range`.
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index in the space.
    pub idx: u64,
    /// The guest frame to map it at.
    pub gpfn: u64,
}
assert_layout!(XenAddToPhysmap, 24; domid = 0, size = 2, space = 4, idx = 8, gpfn = 16);

/// `xen_add_to_physmap_batch`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenAddToPhysmapBatch {
    /// The domain whose physmap changes.
    pub domid: u16,
    /// `XENMAPSPACE_*`.
    pub space: u16,
    /// Entries in the three arrays.
    pub size: u16,
    /// The union `u`: `foreign_domid` for `XENMAPSPACE_gmfn_foreign`,
    /// otherwise reserved (`res0`, must be 0).
    pub u: u16,
    /// Guest pointer to `size` `xen_ulong_t` indices.
    pub idxs: u64,
    /// Guest pointer to `size` `xen_pfn_t` destination frames.
    pub gpfns: u64,
    /// Guest pointer to `size` `int` per-entry results.
    pub errs: u64,
}
assert_layout!(XenAddToPhysmapBatch, 32; domid = 0, space = 2, size = 4, u = 6, idxs = 8,
    gpfns = 16, errs = 24);

/// `xen_remove_from_physmap`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenRemoveFromPhysmap {
    /// The domain.
    pub domid: u16,
    /// Padding.
    pub _pad: [u16; 3],
    /// The guest frame to unmap.
    pub gpfn: u64,
}
assert_layout!(XenRemoveFromPhysmap, 16; domid = 0, gpfn = 8);

/// `xen_memory_map`: a buffer of [`E820Entry`] records.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMemoryMap {
    /// IN: entries the buffer holds; OUT: entries written.
    pub nr_entries: u32,
    /// Padding.
    pub _pad: u32,
    /// Guest pointer to the entries.
    pub buffer: u64,
}
assert_layout!(XenMemoryMap, 16; nr_entries = 0, buffer = 8);

/// `xen_foreign_memory_map`: argument of `XENMEM_set_memory_map`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenForeignMemoryMap {
    /// The domain.
    pub domid: u16,
    /// Padding.
    pub _pad: [u16; 3],
    /// Its map.
    pub map: XenMemoryMap,
}
assert_layout!(XenForeignMemoryMap, 24; domid = 0, map = 8);

/// E820 type: usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 type: reserved.
pub const E820_RESERVED: u32 = 2;
/// E820 type: ACPI tables, reclaimable.
pub const E820_ACPI: u32 = 3;
/// E820 type: ACPI non-volatile storage.
pub const E820_NVS: u32 = 4;
/// E820 type: unusable.
pub const E820_UNUSABLE: u32 = 5;

/// One record of the map `XENMEM_memory_map` returns: the BIOS INT 15h
/// E820 entry, which is packed (20 bytes, no padding).
///
/// Xen's public headers only name the format; the layout is the PC BIOS
/// one (`hvm_memmap_table_entry` is a different, 24-byte record). The
/// fields are little-endian byte arrays so that the struct has alignment 1
/// like the packed C record, and so a slice of them can be read from any
/// guest buffer.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct E820Entry {
    /// Start address.
    pub addr: [u8; 8],
    /// Length in bytes.
    pub size: [u8; 8],
    /// `E820_*`.
    pub type_: [u8; 4],
}
assert_layout!(E820Entry, 20; addr = 0, size = 8, type_ = 16);
const _: () = assert!(core::mem::align_of::<E820Entry>() == 1);

impl E820Entry {
    /// A record.
    pub const fn new(addr: u64, size: u64, type_: u32) -> Self {
        Self {
            addr: addr.to_le_bytes(),
            size: size.to_le_bytes(),
            type_: type_.to_le_bytes(),
        }
    }

    /// Start address.
    pub const fn addr(&self) -> u64 {
        u64::from_le_bytes(self.addr)
    }

    /// Length in bytes.
    pub const fn size(&self) -> u64 {
        u64::from_le_bytes(self.size)
    }

    /// `E820_*`.
    pub const fn kind(&self) -> u32 {
        u32::from_le_bytes(self.type_)
    }
}

/// `xenmem_access_t`: no access.
pub const XENMEM_ACCESS_N: u32 = 0;
/// `xenmem_access_t`: read, write and execute.
pub const XENMEM_ACCESS_RWX: u32 = 7;
/// `xenmem_access_t`: use the domain's default.
pub const XENMEM_ACCESS_DEFAULT: u32 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e820_round_trip_and_flags() {
        let e = E820Entry::new(0x10_0000, 0x7ff0_0000, E820_RAM);
        assert_eq!((e.addr(), e.size(), e.kind()), (0x10_0000, 0x7ff0_0000, 1));
        assert_eq!(e.as_bytes().len(), 20);
        assert_eq!(xenmemf_get_node(xenmemf_node(3)), 3);
        assert_eq!(xenmemf_get_node(0), 0xff);
        assert_eq!(
            xenmemf_get_address_bits(xenmemf_address_bits(32) | XENMEMF_VNODE),
            32
        );
    }
}
