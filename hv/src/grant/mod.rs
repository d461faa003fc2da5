//! A domain's grant table: the frames it shares with hv for its grant
//! entries (and, version 2, the status frames), hv's active entries and
//! the domain's maptrack (the rules: `hv::grant`).
//!
//! The frames are the domain's as far as mappings go, with no pfn, as its
//! `shared_info`: hv allocates them, holds a writable type reference on
//! each for the table's life (so the domain can never give one another
//! type, exchange it or free it), and the domain maps them by the machine
//! frames `GNTTABOP_setup_table` and `get_status_frames` return. A table
//! starts with one grant frame and grows, never shrinks, up to its
//! domain's `max_grant_frames`. Status frames made for version 2 stay
//! allocated when the domain goes back to version 1 (Xen frees them; the
//! difference is memory only) and are used again if it switches back.
//! Everything goes with the domain.
//!
//! Missing: mapping, unmapping and copying grants (`hv::grant` has their
//! rules; the hypercalls answer `-ENOSYS`).

use alloc::vec::Vec;

use guest_abi::errno::Errno;
use guest_abi::grant_table::GNTTAB_NR_RESERVED_ENTRIES;
use hv::grant::{status_frames, Active, Version, V1_PER_FRAME};

use crate::mm::{self, FrameWrite, WritableRef};

/// A domain's grant table.
#[derive(Debug)]
pub struct Grants {
    owner: u16,
    version: Version,
    /// Highest version the domain may choose (`createdomain.grant_opts`).
    max_version: u32,
    max_frames: u32,
    /// The grant frames, in order.
    frames: Vec<WritableRef>,
    /// Status frames made so far (version 2 uses the first
    /// [`status_frames`] of the grant frames' count).
    status: Vec<WritableRef>,
    /// One per version 1 entry the frames hold (version 2 uses half).
    active: Vec<Active>,
}

/// Why a table could not grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

impl Grants {
    /// The table of a new domain `owner` with one grant frame.
    /// (`max_maptrack_frames` bounds the mappings it makes, once there
    /// are any.)
    pub fn new(owner: u16, max_frames: u32, max_version: u32) -> Result<Self, NoRoom> {
        let mut g = Self {
            owner,
            version: Version::V1,
            max_version,
            max_frames: max_frames.max(1),
            frames: Vec::new(),
            status: Vec::new(),
            active: Vec::new(),
        };
        g.grow(1)?;
        Ok(g)
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn nr_frames(&self) -> u32 {
        u32::try_from(self.frames.len()).unwrap_or(u32::MAX)
    }

    pub fn max_frames(&self) -> u32 {
        self.max_frames
    }

    /// Status frames in use: none for version 1.
    pub fn nr_status_frames(&self) -> u32 {
        match self.version {
            Version::V1 => 0,
            Version::V2 => status_frames(self.nr_frames()),
        }
    }

    /// Machine frame of grant frame `i`.
    pub fn frame(&self, i: u32) -> Option<u64> {
        self.frames.get(i as usize).map(FrameWrite::frame)
    }

    /// Machine frame of status frame `i` (in use or not).
    pub fn status_frame(&self, i: u32) -> Option<u64> {
        self.status.get(i as usize).map(FrameWrite::frame)
    }

    /// Grows the table to `nr` grant frames (and, version 2, their status
    /// frames); at most `max_frames` (the caller checks), nothing changes
    /// if hv has no memory for all of them.
    pub fn grow(&mut self, nr: u32) -> Result<(), NoRoom> {
        let nr = nr.max(1).min(self.max_frames);
        let want_status = match self.version {
            Version::V1 => 0,
            Version::V2 => status_frames(nr),
        };
        let have = self.nr_frames();
        let have_status = u32::try_from(self.status.len()).unwrap_or(u32::MAX);
        let mut frames = Vec::new();
        let mut status = Vec::new();
        for _ in have..nr {
            frames.push(shared_frame(self.owner).ok_or(NoRoom)?);
        }
        for _ in have_status..want_status {
            status.push(shared_frame(self.owner).ok_or(NoRoom)?);
        }
        let entries = (nr.max(have) * V1_PER_FRAME) as usize;
        self.active
            .try_reserve(entries.saturating_sub(self.active.len()))
            .map_err(|_| NoRoom)?;
        self.active
            .resize(entries.max(self.active.len()), Active::default());
        self.frames.extend(frames);
        self.status.extend(status);
        Ok(())
    }

    /// `GNTTABOP_set_version`: `-EINVAL` for a version that does not
    /// exist, `-ENOSYS` for 2 if the domain may not use it, `-EBUSY` if an
    /// entry beyond the reserved 8 is in use or (leaving version 2) a
    /// status frame is still mapped. The reserved entries (toolstack
    /// grants: console, xenstore) are carried over into the new layout,
    /// the rest of the table is cleared.
    pub fn set_version(&mut self, wanted: u32) -> Result<(), Errno> {
        let to = match wanted {
            1 => Version::V1,
            2 if self.max_version >= 2 => Version::V2,
            2 => return Err(Errno::ENOSYS),
            _ => return Err(Errno::EINVAL),
        };
        if to == self.version {
            return Ok(());
        }
        let reserved = GNTTAB_NR_RESERVED_ENTRIES as usize;
        if self.active.iter().skip(reserved).any(|a| !a.pin.is_free()) {
            return Err(Errno::EBUSY);
        }
        if to == Version::V1 && self.status_mapped() {
            return Err(Errno::EBUSY);
        }
        if to == Version::V2 {
            let want = status_frames(self.nr_frames()) as usize;
            while self.status.len() < want {
                let f = shared_frame(self.owner).ok_or(Errno::ENOMEM)?;
                self.status.push(f);
            }
        }
        let kept = self.reserved_entries();
        for f in &self.frames {
            f.zero().map_err(|_| Errno::EFAULT)?;
        }
        for f in &self.status {
            f.zero().map_err(|_| Errno::EFAULT)?;
        }
        self.version = to;
        self.restore_reserved(&kept).map_err(|_| Errno::EFAULT)?;
        Ok(())
    }

    /// Whether something besides hv refers to a status frame (the domain
    /// still maps one).
    fn status_mapped(&self) -> bool {
        mm::with_frame_table(|ft| {
            self.status
                .iter()
                .any(|f| ft.get(f.frame()).is_none_or(|p| p.refs > 1))
        })
        .unwrap_or(true)
    }

    /// The reserved entries as (flags with access bits, domid, frame).
    fn reserved_entries(&self) -> [(u16, u16, u64); GNTTAB_NR_RESERVED_ENTRIES as usize] {
        let mut out = [(0, 0, 0); GNTTAB_NR_RESERVED_ENTRIES as usize];
        let Some(first) = self.frames.first() else {
            return out;
        };
        for (i, e) in (0u64..).zip(out.iter_mut()) {
            let (flags, domid, frame, status) = match self.version {
                Version::V1 => {
                    let word = read_u64(first, i * 8);
                    let (flags, domid) = hv::grant::split(low32(word));
                    (flags, domid, word >> 32, 0)
                }
                Version::V2 => {
                    let (flags, domid) = hv::grant::split(low32(read_u64(first, i * 16)));
                    let status = self.status.first().map_or(0, |s| {
                        let word = read_u64(s, (i / 4) * 8) >> ((i % 4) * 16);
                        u16::try_from(word & 0xffff).unwrap_or(0)
                    });
                    (flags, domid, read_u64(first, i * 16 + 8), status)
                }
            };
            // Only ordinary grants carry over (Xen clears any other kind).
            if flags & guest_abi::grant_table::GTF_TYPE_MASK
                == guest_abi::grant_table::GTF_PERMIT_ACCESS
            {
                *e = (flags | status, domid, frame);
            }
        }
        out
    }

    fn restore_reserved(
        &self,
        kept: &[(u16, u16, u64)],
    ) -> Result<(), mm::frame_access::OutOfRange> {
        use guest_abi::grant_table::{GTF_READING, GTF_WRITING};
        let Some(first) = self.frames.first() else {
            return Ok(());
        };
        for (i, &(flags, domid, frame)) in (0u64..).zip(kept) {
            let header = |f: u16| u64::from(f) | u64::from(domid) << 16;
            match self.version {
                Version::V1 => {
                    let frame32 = frame & 0xffff_ffff;
                    first.write_u64(i * 8, header(flags) | frame32 << 32)?;
                }
                Version::V2 => {
                    let access = flags & (GTF_READING | GTF_WRITING);
                    first.write_u64(i * 16, header(flags & !(GTF_READING | GTF_WRITING)))?;
                    first.write_u64(i * 16 + 8, frame)?;
                    if let Some(s) = self.status.first() {
                        s.write(i * 2, &access.to_le_bytes())?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn low32(word: u64) -> u32 {
    u32::try_from(word & 0xffff_ffff).unwrap_or(0)
}

/// The aligned 8 bytes at `offset` of a held frame.
fn read_u64(f: &WritableRef, offset: u64) -> u64 {
    mm::frame_access::read_u64(f.frame() * mm::PAGE_SIZE + offset).unwrap_or(0)
}

/// A zeroed frame of domain `owner` with no pfn, held writable by hv.
fn shared_frame(owner: u16) -> Option<WritableRef> {
    let f = mm::alloc_zeroed_frame()?;
    mm::with_frame_table(|ft| {
        let mfn = f.assign(ft, owner, u64::MAX).ok()?;
        let held = WritableRef::take_in(ft, mfn, owner).ok()?;
        ft.mark_special(mfn, owner).ok()?;
        Some(held)
    })
    .flatten()
}
