//! The core of a block back end (the protocol's types are
//! `guest_abi::io::blkif`'s):
//! each request, copied off the ring, is checked against the disk before
//! anything is read or written, and then carried out through grant copies
//! the caller makes ([`Grants`]) on a disk it provides ([`Disk`]).
//!
//! Checks (a hostile front end meets them; each is `BLKIF_RSP_ERROR`,
//! nothing done): 1 to 11 segments for a read or write; each segment's
//! sectors within its page (`first_sect <= last_sect <= 7`); the whole
//! range inside the disk (no wrap); no write, flush or discard to a
//! read-only disk; a discard inside the disk; an indirect request (its
//! segment descriptors in pages it grants, copied in once) a read or write
//! of 1 to [`MAX_INDIRECT_SEGMENTS`] segments whose descriptor pages copy.
//! An operation the back end does not offer (barriers) is
//! `BLKIF_RSP_EOPNOTSUPP`.

use zerocopy::IntoBytes;

use zerocopy::FromBytes;

pub use guest_abi::io::blkif::{
    BlkifRequest as Request, BlkifRequestIndirect as RequestIndirect,
    BlkifRequestSegment as Segment, BlkifResponse as Response,
    BLKIF_MAX_SEGMENTS_PER_REQUEST as MAX_SEGMENTS, BLKIF_OP_DISCARD as OP_DISCARD,
    BLKIF_OP_FLUSH_DISKCACHE as OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT as OP_INDIRECT,
    BLKIF_OP_READ as OP_READ, BLKIF_OP_WRITE as OP_WRITE,
    BLKIF_OP_WRITE_BARRIER as OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP as RSP_EOPNOTSUPP,
    BLKIF_RSP_ERROR as RSP_ERROR, BLKIF_RSP_OKAY as RSP_OKAY,
    BLKIF_SEGS_PER_INDIRECT_FRAME as SEGS_PER_INDIRECT_FRAME,
};

/// Bytes of a sector, and sectors of a page.
pub const SECTOR: u64 = 512;
pub const SECTORS_PER_PAGE: u8 = 8;

/// An I/O that failed (the disk's or a grant copy's): the request's
/// response is `BLKIF_RSP_ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoError;

/// The disk behind a back end, in sectors.
pub trait Disk {
    fn sectors(&self) -> u64;
    fn read_only(&self) -> bool;
    /// Copies `out.len()` bytes from byte `offset`.
    fn read(&mut self, offset: u64, out: &mut [u8]) -> Result<(), IoError>;
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), IoError>;
    fn flush(&mut self) -> Result<(), IoError>;
    /// Forgets the bytes of the range (a hint: zeroing is fine).
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), IoError>;
}

/// One segment of a request: `len` bytes at `offset` of the front end's
/// granted page `gref`. It is staged at the same offset of the back
/// end's staging page of the segment's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Piece {
    pub gref: u32,
    pub offset: u16,
    pub len: u16,
}

/// The front end's granted pages, reached by grant copy (`GNTTABOP_copy`
/// with the reference on the front end's side), and the back end's
/// staging pages, [`MAX_INDIRECT_SEGMENTS`] of them, where a request's
/// data waits between the disk and the grants.
pub trait Grants {
    /// Copies `out.len()` bytes from byte `offset` of granted page `gref`.
    fn copy_from(&mut self, gref: u32, offset: u16, out: &mut [u8]) -> Result<(), IoError>;
    /// Copies `data` to byte `offset` of granted page `gref`.
    fn copy_to(&mut self, gref: u32, offset: u16, data: &[u8]) -> Result<(), IoError>;
    /// Copies every piece from its granted page to its staging page (the
    /// `i`th piece to page `i`), all in one batch: an error if any fails.
    fn gather(&mut self, pieces: &[Piece]) -> Result<(), IoError>;
    /// Copies every piece from its staging page to its granted page, all
    /// in one batch: an error if any fails.
    fn scatter(&mut self, pieces: &[Piece]) -> Result<(), IoError>;
    /// Staging page `i` (below [`MAX_INDIRECT_SEGMENTS`]).
    fn staging(&mut self, i: usize) -> Option<&mut [u8; 4096]>;
}

/// Most segments an indirect request may carry here
/// (`feature-max-indirect-segments`; Linux's front end asks for 32 by
/// default): one page of descriptors.
pub const MAX_INDIRECT_SEGMENTS: usize = 32;

/// A request's segments, kept without allocating (a ring loop serves
/// one request after another): the first `len` of `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segments {
    list: [Segment; MAX_INDIRECT_SEGMENTS],
    len: usize,
}

impl Segments {
    fn of(segs: &[Segment]) -> Self {
        let mut list = [Segment::default(); MAX_INDIRECT_SEGMENTS];
        let len = segs.len().min(MAX_INDIRECT_SEGMENTS);
        list[..len].copy_from_slice(&segs[..len]);
        Self { list, len }
    }

    fn as_slice(&self) -> &[Segment] {
        &self.list[..self.len]
    }
}

/// A request that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a plan lives on the stack for one request; boxing would allocate per request"
)]
enum Plan {
    Transfer {
        write: bool,
        sector: u64,
        segs: Segments,
    },
    Flush,
    Discard {
        sector: u64,
        count: u64,
    },
}

/// The checks of the module documentation; an indirect request's
/// descriptors are copied in first (through `grants`).
fn check(req: &Request, disk: &impl Disk, grants: &mut impl Grants) -> Result<Plan, i16> {
    let (op, segs) = match req.operation {
        OP_INDIRECT => indirect_segments(req, grants)?,
        OP_READ | OP_WRITE => {
            let n = usize::from(req.nr_segments);
            if n == 0 || n > MAX_SEGMENTS {
                return Err(RSP_ERROR);
            }
            (req.operation, Segments::of(&req.seg[..n]))
        }
        OP_FLUSH_DISKCACHE | OP_DISCARD => (req.operation, Segments::of(&[])),
        _ => return Err(RSP_EOPNOTSUPP),
    };
    let writes = matches!(op, OP_WRITE | OP_FLUSH_DISKCACHE | OP_DISCARD);
    if writes && disk.read_only() {
        return Err(RSP_ERROR);
    }
    match op {
        OP_FLUSH_DISKCACHE => return Ok(Plan::Flush),
        OP_DISCARD => {
            // `nr_sectors` sits where the first segment is.
            let count =
                u64::from_le_bytes(req.seg[0].as_bytes().try_into().map_err(|_| RSP_ERROR)?);
            let end = req.sector_number.checked_add(count).ok_or(RSP_ERROR)?;
            if end > disk.sectors() {
                return Err(RSP_ERROR);
            }
            return Ok(Plan::Discard {
                sector: req.sector_number,
                count,
            });
        }
        _ => {}
    }
    let mut total = 0u64;
    for s in segs.as_slice() {
        if s.first_sect > s.last_sect || s.last_sect >= SECTORS_PER_PAGE {
            return Err(RSP_ERROR);
        }
        total += u64::from(s.last_sect - s.first_sect) + 1;
    }
    let end = req.sector_number.checked_add(total).ok_or(RSP_ERROR)?;
    if end > disk.sectors() {
        return Err(RSP_ERROR);
    }
    Ok(Plan::Transfer {
        write: op == OP_WRITE,
        sector: req.sector_number,
        segs,
    })
}

/// An indirect request's operation and segments: 1 to
/// [`MAX_INDIRECT_SEGMENTS`] of a read or write, their descriptors copied
/// once from the front end's pages (one grant copy each, into private
/// memory).
fn indirect_segments(req: &Request, grants: &mut impl Grants) -> Result<(u8, Segments), i16> {
    let ind = RequestIndirect::read_from_prefix(req.as_bytes())
        .map_err(|_| RSP_ERROR)?
        .0;
    if !matches!(ind.indirect_op, OP_READ | OP_WRITE) {
        return Err(RSP_ERROR);
    }
    let n = usize::from(ind.nr_segments);
    if n == 0 || n > MAX_INDIRECT_SEGMENTS {
        return Err(RSP_ERROR);
    }
    // One page of descriptors holds them all.
    const _: () = assert!(MAX_INDIRECT_SEGMENTS <= SEGS_PER_INDIRECT_FRAME);
    let mut segs = Segments::of(&[]);
    grants
        .copy_from(ind.indirect_grefs[0], 0, segs.list[..n].as_mut_bytes())
        .map_err(|IoError| RSP_ERROR)?;
    segs.len = n;
    Ok((ind.indirect_op, segs))
}

/// Carries out `req` (a private copy) on `disk` through `grants`: the
/// response to queue.
pub fn serve(req: &Request, disk: &mut impl Disk, grants: &mut impl Grants) -> Response {
    let status = match check(req, disk, grants) {
        Err(status) => status,
        Ok(plan) => match execute(plan, disk, grants) {
            Ok(()) => RSP_OKAY,
            Err(IoError) => RSP_ERROR,
        },
    };
    // An indirect request is answered with the operation it carried, as
    // Linux's back end answers (its front end checks it).
    let operation = match req.operation {
        OP_INDIRECT => RequestIndirect::read_from_prefix(req.as_bytes())
            .map_or(req.operation, |(ind, _)| ind.indirect_op),
        op => op,
    };
    Response {
        id: req.id,
        operation,
        status,
        ..Default::default()
    }
}

fn execute<G: Grants>(plan: Plan, disk: &mut impl Disk, grants: &mut G) -> Result<(), IoError> {
    match plan {
        Plan::Flush => disk.flush(),
        Plan::Discard { sector, count } => disk.discard(sector * SECTOR, count * SECTOR),
        Plan::Transfer {
            write,
            sector,
            segs,
        } => {
            let mut pieces = [Piece::default(); MAX_INDIRECT_SEGMENTS];
            let segs = segs.as_slice();
            for (p, s) in pieces.iter_mut().zip(segs) {
                *p = Piece {
                    gref: s.gref,
                    offset: u16::from(s.first_sect) * 512,
                    len: (u16::from(s.last_sect - s.first_sect) + 1) * 512,
                };
            }
            let pieces = &pieces[..segs.len()];
            // Each piece's bytes on the disk, in order from `sector`.
            let mut disk_at = sector * SECTOR;
            let mut each = |i: usize, p: &Piece, grants: &mut G| {
                let at = disk_at;
                disk_at += u64::from(p.len);
                let page = grants.staging(i).ok_or(IoError)?;
                let r = usize::from(p.offset)..usize::from(p.offset) + usize::from(p.len);
                let bytes = page.get_mut(r).ok_or(IoError)?;
                if write {
                    disk.write(at, bytes)
                } else {
                    disk.read(at, bytes)
                }
            };
            if write {
                // Every granted page first: a grant that fails leaves the
                // disk untouched.
                grants.gather(pieces)?;
                for (i, p) in pieces.iter().enumerate() {
                    each(i, p, grants)?;
                }
                Ok(())
            } else {
                for (i, p) in pieces.iter().enumerate() {
                    each(i, p, grants)?;
                }
                grants.scatter(pieces)
            }
        }
    }
}

#[cfg(test)]
mod tests;
