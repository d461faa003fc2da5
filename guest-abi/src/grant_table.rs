//! `grant_table_op` sub-commands, their argument structs, and the version-1
//! grant entry (`grant_table.h`).
//!
//! A grant entry lives in a page the granting domain writes and the
//! hypervisor reads (and updates `GTF_reading`/`GTF_writing` in) at the same
//! time: access its `flags` with atomic compare-exchange on the 32-bit word
//! `flags | domid << 16`, never through a Rust reference held across the
//! other side's writes. Version 2 entries are not mirrored (see the
//! constants only); `hv` offers version 1.
//!
//! Every `status` field is a `GNTST_*` value (`i16`), written per entry of
//! a batch: the hypercall's own return value only says whether the batch
//! itself could be processed.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// Map a granted frame. Argument: [`GnttabMapGrantRef`] array.
pub const GNTTABOP_MAP_GRANT_REF: u32 = 0;
/// Undo a mapping. Argument: [`GnttabUnmapGrantRef`] array.
pub const GNTTABOP_UNMAP_GRANT_REF: u32 = 1;
/// Size the caller's grant table and get its frames. Argument: [`GnttabSetupTable`].
pub const GNTTABOP_SETUP_TABLE: u32 = 2;
/// Dump a table to the hypervisor console (debug). Argument: [`GnttabDumpTable`].
pub const GNTTABOP_DUMP_TABLE: u32 = 3;
/// Give a frame to another domain. Argument: [`GnttabTransfer`] array.
pub const GNTTABOP_TRANSFER: u32 = 4;
/// Copy bytes between granted or owned frames. Argument: [`GnttabCopy`] array.
pub const GNTTABOP_COPY: u32 = 5;
/// Current and maximum table size. Argument: [`GnttabQuerySize`].
pub const GNTTABOP_QUERY_SIZE: u32 = 6;
/// Unmap, putting another mapping in its place. Argument: [`GnttabUnmapAndReplace`] array.
pub const GNTTABOP_UNMAP_AND_REPLACE: u32 = 7;
/// Choose entry format 1 or 2. Argument: [`GnttabSetVersion`].
pub const GNTTABOP_SET_VERSION: u32 = 8;
/// Frames of the v2 status array. Argument: [`GnttabGetStatusFrames`].
pub const GNTTABOP_GET_STATUS_FRAMES: u32 = 9;
/// Entry format in use. Argument: [`GnttabGetVersion`].
pub const GNTTABOP_GET_VERSION: u32 = 10;
/// Swap two entries of the caller's table. Argument: [`GnttabSwapGrantRef`] array.
pub const GNTTABOP_SWAP_GRANT_REF: u32 = 11;
/// Clean or invalidate the cache over a grant (Arm). Argument: [`GnttabCacheFlush`] array.
pub const GNTTABOP_CACHE_FLUSH: u32 = 12;

/// Entries at the start of each table reserved for the toolstack.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// Reserved entry: the console ring.
pub const GNTTAB_RESERVED_CONSOLE: u32 = 0;
/// Reserved entry: the xenstore ring.
pub const GNTTAB_RESERVED_XENSTORE: u32 = 1;

/// Entry type: not granted.
pub const GTF_INVALID: u16 = 0;
/// Entry type: `domid` may map or copy `frame`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// Entry type: `domid` may transfer a frame into this slot.
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
/// Entry type: the grant passes on another (v2 only).
pub const GTF_TRANSITIVE: u16 = 3;
/// Mask of the entry type.
pub const GTF_TYPE_MASK: u16 = 3;
/// Access flag: read-only.
pub const GTF_READONLY: u16 = 1 << 2;
/// Status (set by the hypervisor): mapped or being copied for reading.
pub const GTF_READING: u16 = 1 << 3;
/// Status (set by the hypervisor): mapped or being copied for writing.
pub const GTF_WRITING: u16 = 1 << 4;
/// Cache attribute of the mapping: PWT.
pub const GTF_PWT: u16 = 1 << 5;
/// Cache attribute of the mapping: PCD.
pub const GTF_PCD: u16 = 1 << 6;
/// Cache attribute of the mapping: PAT.
pub const GTF_PAT: u16 = 1 << 7;
/// v2: the grant covers only part of the page.
pub const GTF_SUB_PAGE: u16 = 1 << 8;
/// Transfer status: the hypervisor committed to the transfer.
pub const GTF_TRANSFER_COMMITTED: u16 = 1 << 2;
/// Transfer status: `frame` holds the transferred frame.
pub const GTF_TRANSFER_COMPLETED: u16 = 1 << 3;

/// `gnttab_copy.flags`: `source` is a grant reference, not a frame.
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
/// `gnttab_copy.flags`: `dest` is a grant reference, not a frame.
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;

/// `gnttab_cache_flush.op`: clean.
pub const GNTTAB_CACHE_CLEAN: u32 = 1 << 0;
/// `gnttab_cache_flush.op`: invalidate.
pub const GNTTAB_CACHE_INVAL: u32 = 1 << 1;
/// `gnttab_cache_flush.op`: `a` is a grant reference.
pub const GNTTAB_CACHE_SOURCE_GREF: u32 = 1 << 31;

/// Map flag: map for device (bus) access.
pub const GNTMAP_DEVICE_MAP: u32 = 1 << 0;
/// Map flag: map into the host address space.
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// Map flag: read-only.
pub const GNTMAP_READONLY: u32 = 1 << 2;
/// Map flag: user-accessible mapping (with `GNTMAP_HOST_MAP`).
pub const GNTMAP_APPLICATION_MAP: u32 = 1 << 3;
/// Map flag: `host_addr` is the machine address of the PTE to write.
pub const GNTMAP_CONTAINS_PTE: u32 = 1 << 4;
/// First PTE bit the guest may set through the map flags.
pub const GNTMAP_GUEST_AVAIL0: u32 = 16;
/// Map flags copied into the PTE's guest-available bits.
pub const GNTMAP_GUEST_AVAIL_MASK: u32 = !0 << GNTMAP_GUEST_AVAIL0;

/// Grant status: success.
pub const GNTST_OKAY: i16 = 0;
/// Grant status: undefined error.
pub const GNTST_GENERAL_ERROR: i16 = -1;
/// Grant status: unrecognised domain id.
pub const GNTST_BAD_DOMAIN: i16 = -2;
/// Grant status: invalid grant reference.
pub const GNTST_BAD_GNTREF: i16 = -3;
/// Grant status: invalid mapping handle.
pub const GNTST_BAD_HANDLE: i16 = -4;
/// Grant status: invalid virtual address.
pub const GNTST_BAD_VIRT_ADDR: i16 = -5;
/// Grant status: invalid device address.
pub const GNTST_BAD_DEV_ADDR: i16 = -6;
/// Grant status: no spare translation slot in the I/O MMU.
pub const GNTST_NO_DEVICE_SPACE: i16 = -7;
/// Grant status: permission denied.
pub const GNTST_PERMISSION_DENIED: i16 = -8;
/// Grant status: bad page.
pub const GNTST_BAD_PAGE: i16 = -9;
/// Grant status: copy arguments cross a page boundary.
pub const GNTST_BAD_COPY_ARG: i16 = -10;
/// Grant status: page address too large.
pub const GNTST_ADDRESS_TOO_BIG: i16 = -11;
/// Grant status: not done; try again.
pub const GNTST_EAGAIN: i16 = -12;
/// Grant status: out of space.
pub const GNTST_NO_SPACE: i16 = -13;

/// Xen's one-line description of a `GNTST_*` status, or `"unknown"`.
pub fn status_message(status: i16) -> &'static str {
    match status {
        GNTST_OKAY => "okay",
        GNTST_GENERAL_ERROR => "undefined error",
        GNTST_BAD_DOMAIN => "unrecognised domain id",
        GNTST_BAD_GNTREF => "invalid grant reference",
        GNTST_BAD_HANDLE => "invalid mapping handle",
        GNTST_BAD_VIRT_ADDR => "invalid virtual address",
        GNTST_BAD_DEV_ADDR => "invalid device address",
        GNTST_NO_DEVICE_SPACE => "no spare translation slot in the I/O MMU",
        GNTST_PERMISSION_DENIED => "permission denied",
        GNTST_BAD_PAGE => "bad page",
        GNTST_BAD_COPY_ARG => "copy arguments cross page boundary",
        GNTST_ADDRESS_TOO_BIG => "page address size too large",
        GNTST_EAGAIN => "operation not done; try again",
        GNTST_NO_SPACE => "out of space",
        _ => "unknown",
    }
}

/// `grant_entry_v1`: one entry of a version-1 grant table (8 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GrantEntryV1 {
    /// `GTF_*`: type, access and status bits.
    pub flags: u16,
    /// The domain being granted access (or allowed to transfer).
    pub domid: u16,
    /// The granted frame (for a transfer, the frame received).
    pub frame: u32,
}
assert_layout!(GrantEntryV1, 8; flags = 0, domid = 2, frame = 4);

/// Version-1 entries in one 4 KiB grant frame.
pub const GRANT_ENTRIES_V1_PER_FRAME: usize = 4096 / core::mem::size_of::<GrantEntryV1>();

/// `gnttab_map_grant_ref`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabMapGrantRef {
    /// IN: virtual address, or PTE machine address with `GNTMAP_contains_pte`.
    pub host_addr: u64,
    /// IN: `GNTMAP_*`.
    pub flags: u32,
    /// IN: the grant reference in `dom`'s table.
    pub ref_: u32,
    /// IN: the granting domain.
    pub dom: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// OUT: handle for the unmap.
    pub handle: u32,
    /// OUT: bus address for device mappings.
    pub dev_bus_addr: u64,
}
assert_layout!(GnttabMapGrantRef, 32; host_addr = 0, flags = 8, ref_ = 12, dom = 16,
    status = 18, handle = 20, dev_bus_addr = 24);

/// `gnttab_unmap_grant_ref`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabUnmapGrantRef {
    /// IN: the address given to the map.
    pub host_addr: u64,
    /// IN: the bus address the map returned.
    pub dev_bus_addr: u64,
    /// IN: the handle the map returned.
    pub handle: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad: u16,
}
assert_layout!(GnttabUnmapGrantRef, 24; host_addr = 0, dev_bus_addr = 8, handle = 16,
    status = 20);

/// `gnttab_setup_table`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabSetupTable {
    /// IN: the domain (`DOMID_SELF` or, privileged, another).
    pub dom: u16,
    /// Padding.
    pub _pad0: u16,
    /// IN: frames wanted.
    pub nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad1: [u16; 3],
    /// IN: guest pointer to `nr_frames` `xen_pfn_t`s, filled with the frames.
    pub frame_list: u64,
}
assert_layout!(GnttabSetupTable, 24; dom = 0, nr_frames = 4, status = 8, frame_list = 16);

/// `gnttab_dump_table`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabDumpTable {
    /// IN: the domain.
    pub dom: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
}
assert_layout!(GnttabDumpTable, 4; dom = 0, status = 2);

/// `gnttab_transfer`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabTransfer {
    /// IN: the frame to give away.
    pub mfn: u64,
    /// IN: the receiving domain.
    pub domid: u16,
    /// Padding.
    pub _pad0: u16,
    /// IN: the `GTF_accept_transfer` entry in the receiver's table.
    pub ref_: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad1: [u16; 3],
}
assert_layout!(GnttabTransfer, 24; mfn = 0, domid = 8, ref_ = 12, status = 16);

/// `gnttab_copy_ptr`: one end of a [`GnttabCopy`] (16 bytes).
///
/// `u` is the C union: a grant reference (low 32 bits, with
/// `GNTCOPY_*_gref`) or a frame number.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabCopyPtr {
    /// The union `u`: `ref` or `gmfn`.
    pub u: u64,
    /// The domain owning the frame or the grant.
    pub domid: u16,
    /// Byte offset in the page.
    pub offset: u16,
    /// Padding.
    pub _pad: u32,
}
assert_layout!(GnttabCopyPtr, 16; u = 0, domid = 8, offset = 10);

impl GnttabCopyPtr {
    /// `u.ref`.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the union member is the low 32 bits"
    )]
    pub const fn gref(&self) -> u32 {
        self.u as u32
    }

    /// `u.gmfn`.
    pub const fn gmfn(&self) -> u64 {
        self.u
    }
}

/// `gnttab_copy`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabCopy {
    /// IN: where to copy from.
    pub source: GnttabCopyPtr,
    /// IN: where to copy to.
    pub dest: GnttabCopyPtr,
    /// IN: bytes; neither end may cross a page boundary.
    pub len: u16,
    /// IN: `GNTCOPY_*`.
    pub flags: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad: u16,
}
assert_layout!(GnttabCopy, 40; source = 0, dest = 16, len = 32, flags = 34, status = 36);

/// `gnttab_query_size`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabQuerySize {
    /// IN: the domain.
    pub dom: u16,
    /// Padding.
    pub _pad0: u16,
    /// OUT: frames in use.
    pub nr_frames: u32,
    /// OUT: the most frames allowed.
    pub max_nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad1: u16,
}
assert_layout!(GnttabQuerySize, 16; dom = 0, nr_frames = 4, max_nr_frames = 8, status = 12);

/// `gnttab_unmap_and_replace`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabUnmapAndReplace {
    /// IN: the grant mapping's address.
    pub host_addr: u64,
    /// IN: the address whose mapping moves to `host_addr` (and is cleared).
    pub new_addr: u64,
    /// IN: the map's handle.
    pub handle: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad: u16,
}
assert_layout!(GnttabUnmapAndReplace, 24; host_addr = 0, new_addr = 8, handle = 16,
    status = 20);

/// `gnttab_set_version`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabSetVersion {
    /// IN/OUT: 1 or 2; on return the version in force.
    pub version: u32,
}
assert_layout!(GnttabSetVersion, 4; version = 0);

/// `gnttab_get_status_frames`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabGetStatusFrames {
    /// IN: frames wanted.
    pub nr_frames: u32,
    /// IN: the domain.
    pub dom: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// IN: guest pointer to `nr_frames` `u64`s, filled with the frames.
    pub frame_list: u64,
}
assert_layout!(GnttabGetStatusFrames, 16; nr_frames = 0, dom = 4, status = 6, frame_list = 8);

/// `gnttab_get_version`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabGetVersion {
    /// IN: the domain.
    pub dom: u16,
    /// Reserved.
    pub pad: u16,
    /// OUT: 1 or 2.
    pub version: u32,
}
assert_layout!(GnttabGetVersion, 8; dom = 0, pad = 2, version = 4);

/// `gnttab_swap_grant_ref`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabSwapGrantRef {
    /// IN: one entry.
    pub ref_a: u32,
    /// IN: the other entry.
    pub ref_b: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad: u16,
}
assert_layout!(GnttabSwapGrantRef, 12; ref_a = 0, ref_b = 4, status = 8);

/// `gnttab_cache_flush`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabCacheFlush {
    /// IN: the union `a`: `dev_bus_addr`, or `ref` (low 32 bits) with
    /// `GNTTAB_CACHE_SOURCE_GREF`.
    pub a: u64,
    /// IN: byte offset in the page.
    pub offset: u16,
    /// IN: bytes.
    pub length: u16,
    /// IN: `GNTTAB_CACHE_*`.
    pub op: u32,
}
assert_layout!(GnttabCacheFlush, 16; a = 0, offset = 8, length = 10, op = 12);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ptr_union_and_messages() {
        let p = GnttabCopyPtr {
            u: 0x1_0000_0007,
            ..Default::default()
        };
        assert_eq!((p.gref(), p.gmfn()), (7, 0x1_0000_0007));
        assert_eq!(status_message(GNTST_BAD_GNTREF), "invalid grant reference");
        assert_eq!(status_message(-100), "unknown");
        assert_eq!(GRANT_ENTRIES_V1_PER_FRAME, 512);
    }
}
