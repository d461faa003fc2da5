//! The block-device ring (`io/blkif.h`), x86_64 layouts.
//!
//! Each slot of the shared ring is 112 bytes (the size of
//! [`BlkifRequest`]), so a one-page ring has [`BLKIF_RING_SIZE`] = 32
//! slots. Discard and indirect requests reuse the same slot with another
//! layout, chosen by `operation`; read the first byte, then the whole slot
//! as the matching struct.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// Read sectors.
pub const BLKIF_OP_READ: u8 = 0;
/// Write sectors.
pub const BLKIF_OP_WRITE: u8 = 1;
/// Write with a barrier (`feature-barrier`).
pub const BLKIF_OP_WRITE_BARRIER: u8 = 2;
/// Flush the disk's write cache (`feature-flush-cache`).
pub const BLKIF_OP_FLUSH_DISKCACHE: u8 = 3;
/// Reserved (formerly a device-specific operation).
pub const BLKIF_OP_RESERVED_1: u8 = 4;
/// Discard sectors (`feature-discard`); the slot is a [`BlkifRequestDiscard`].
pub const BLKIF_OP_DISCARD: u8 = 5;
/// Indirect request (`feature-max-indirect-segments`); the slot is a
/// [`BlkifRequestIndirect`].
pub const BLKIF_OP_INDIRECT: u8 = 6;

/// Segments in a direct request.
pub const BLKIF_MAX_SEGMENTS_PER_REQUEST: usize = 11;
/// Pages of segments an indirect request can name.
pub const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: usize = 8;
/// Segment descriptors in one indirect page.
pub const BLKIF_SEGS_PER_INDIRECT_FRAME: usize = 4096 / core::mem::size_of::<BlkifRequestSegment>();

/// Discard flag: erase securely (`discard-secure`).
pub const BLKIF_DISCARD_SECURE: u8 = 1 << 0;

/// Response status: operation not supported.
pub const BLKIF_RSP_EOPNOTSUPP: i16 = -2;
/// Response status: error.
pub const BLKIF_RSP_ERROR: i16 = -1;
/// Response status: success.
pub const BLKIF_RSP_OKAY: i16 = 0;

/// `info` flag in xenstore: CD-ROM.
pub const VDISK_CDROM: u32 = 0x1;
/// `info` flag: removable.
pub const VDISK_REMOVABLE: u32 = 0x2;
/// `info` flag: read-only.
pub const VDISK_READONLY: u32 = 0x4;

/// Bytes of one ring slot (the request/response union).
pub const BLKIF_SLOT_SIZE: usize = core::mem::size_of::<BlkifRequest>();
/// Slots of a one-page block ring.
pub const BLKIF_RING_SIZE: u32 = super::ring::ring_size(4096, BLKIF_SLOT_SIZE);
const _: () = assert!(BLKIF_RING_SIZE == 32);

/// `blkif_request_segment`: a granted page and the sectors used in it.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct BlkifRequestSegment {
    /// Grant of the data page.
    pub gref: u32,
    /// First 512-byte sector in the page (0-7).
    pub first_sect: u8,
    /// Last sector in the page (`first_sect`-7).
    pub last_sect: u8,
    /// Padding.
    pub _pad: u16,
}
assert_layout!(BlkifRequestSegment, 8; gref = 0, first_sect = 4, last_sect = 5);

/// `blkif_request`: a read, write, barrier or flush (112 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct BlkifRequest {
    /// `BLKIF_OP_*`.
    pub operation: u8,
    /// Segments used (at most `BLKIF_MAX_SEGMENTS_PER_REQUEST`; 0 for a flush).
    pub nr_segments: u8,
    /// Virtual device (ignored by most backends).
    pub handle: u16,
    /// Padding.
    pub _pad: u32,
    /// Echoed in the response.
    pub id: u64,
    /// Start sector (512-byte units).
    pub sector_number: u64,
    /// The data pages.
    pub seg: [BlkifRequestSegment; BLKIF_MAX_SEGMENTS_PER_REQUEST],
}
assert_layout!(BlkifRequest, 112; operation = 0, nr_segments = 1, handle = 2, id = 8,
    sector_number = 16, seg = 24);

/// `blkif_request_discard`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct BlkifRequestDiscard {
    /// `BLKIF_OP_DISCARD`.
    pub operation: u8,
    /// `BLKIF_DISCARD_*`.
    pub flag: u8,
    /// Virtual device.
    pub handle: u16,
    /// Padding.
    pub _pad: u32,
    /// Echoed in the response.
    pub id: u64,
    /// Start sector.
    pub sector_number: u64,
    /// Sectors to discard.
    pub nr_sectors: u64,
}
assert_layout!(BlkifRequestDiscard, 32; operation = 0, flag = 1, handle = 2, id = 8,
    sector_number = 16, nr_sectors = 24);

/// `blkif_request_indirect`: segments live in granted pages of
/// [`BlkifRequestSegment`]s.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct BlkifRequestIndirect {
    /// `BLKIF_OP_INDIRECT`.
    pub operation: u8,
    /// The real operation (`BLKIF_OP_READ` or `WRITE`).
    pub indirect_op: u8,
    /// Segments in total.
    pub nr_segments: u16,
    /// Padding.
    pub _pad0: u32,
    /// Echoed in the response.
    pub id: u64,
    /// Start sector.
    pub sector_number: u64,
    /// Virtual device.
    pub handle: u16,
    /// Padding.
    pub _pad1: u16,
    /// Grants of the pages of segment descriptors.
    pub indirect_grefs: [u32; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
    /// Padding.
    pub _pad2: u32,
}
assert_layout!(BlkifRequestIndirect, 64; operation = 0, indirect_op = 1, nr_segments = 2,
    id = 8, sector_number = 16, handle = 24, indirect_grefs = 28);

/// `blkif_response`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct BlkifResponse {
    /// The request's `id`.
    pub id: u64,
    /// The request's `operation`.
    pub operation: u8,
    /// Padding.
    pub _pad0: u8,
    /// `BLKIF_RSP_*`.
    pub status: i16,
    /// Padding.
    pub _pad1: u32,
}
assert_layout!(BlkifResponse, 16; id = 0, operation = 8, status = 10);
