//! Grant work dom0's back ends share: copies to and from a front end's
//! granted pages (`GNTTABOP_copy`, a request's segments in one batch),
//! and mapping one granted page (a ring) at a page of ours.
//!
//! A block back end may keep the front end's grants mapped (persistent
//! grants, Linux's `feature-persistent`): [`CopyGrants::keep_mapped`].
//! The first use of a reference maps it at one of our slots
//! (`window::SLOTS_VA`), and later uses copy with the CPU; a reference
//! that will not map, or one past the slots' room, goes by grant copy.
//! As with Linux's back end, a front end that grants another page under
//! a reference we keep mapped still gets the first page: it harms only
//! itself.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use guest_abi::grant_table::{
    GnttabCopy, GnttabCopyPtr, GnttabMapGrantRef, GnttabUnmapGrantRef, GNTCOPY_DEST_GREF,
    GNTCOPY_SOURCE_GREF, GNTMAP_HOST_MAP, GNTTABOP_COPY, GNTTABOP_MAP_GRANT_REF,
    GNTTABOP_UNMAP_GRANT_REF,
};
use guest_abi::hypercall::typed;
use guest_abi::xen::DOMID_SELF;
use pv_drivers::blkif::{Grants, IoError, Piece, MAX_INDIRECT_SEGMENTS};

const PAGE: usize = 4096;

/// A page of ours, page aligned, for grant copies.
#[repr(C, align(4096))]
struct Bounce([u8; PAGE]);

/// The front end's pages reached by `GNTTABOP_copy`, through staging
/// pages of ours: a request's segments in one batch.
pub struct CopyGrants {
    front: u16,
    staging: Box<[Bounce]>,
    /// Each staging page's machine frame.
    mfns: Vec<u64>,
    kept: Option<Kept>,
}

/// Grants kept mapped: reference to (slot, handle), the slots from `base`.
struct Kept {
    base: u64,
    room: usize,
    mapped: BTreeMap<u32, (usize, u32)>,
}

impl CopyGrants {
    /// Copies to and from domain `front`'s grants, through `pages`
    /// staging pages of ours (at least 1).
    pub fn new(si: &guest_abi::xen::StartInfo, front: u16, pages: usize) -> Self {
        let staging: Box<[Bounce]> = (0..pages.max(1)).map(|_| Bounce([0; PAGE])).collect();
        let mfns = staging
            .iter()
            .map(|b| own_mfn(si, core::ptr::from_ref(b) as u64))
            .collect();
        Self {
            front,
            staging,
            mfns,
            kept: None,
        }
    }

    /// From now on, keeps each grant used mapped, at our slots from
    /// `base` (pages with page-table entries and nothing mapped), at most
    /// `room` of them.
    pub fn keep_mapped(&mut self, base: u64, room: usize) {
        self.unmap_kept();
        self.kept = Some(Kept {
            base,
            room,
            mapped: BTreeMap::new(),
        });
    }

    /// Grants kept mapped now.
    pub fn kept(&self) -> usize {
        self.kept.as_ref().map_or(0, |k| k.mapped.len())
    }

    /// Unmaps every grant kept and keeps none from now on.
    pub fn unmap_kept(&mut self) {
        if let Some(k) = self.kept.take() {
            for (slot, handle) in k.mapped.into_values() {
                unmap_ring(k.base + slot as u64 * PAGE as u64, handle);
            }
        }
    }

    /// Where grant `gref` is mapped, if it is kept (mapped now if there
    /// is room and it maps writable).
    fn kept_va(&mut self, gref: u32) -> Option<u64> {
        let front = self.front;
        let k = self.kept.as_mut()?;
        let slot = match k.mapped.get(&gref) {
            Some(&(slot, _)) => slot,
            None if k.mapped.len() < k.room => {
                let slot = k.mapped.len();
                let handle = map_ring(k.base + slot as u64 * PAGE as u64, front, gref).ok()?;
                k.mapped.insert(gref, (slot, handle));
                slot
            }
            None => return None,
        };
        Some(k.base + slot as u64 * PAGE as u64)
    }

    /// Carries out `ops` (at most [`MAX_INDIRECT_SEGMENTS`]) in one
    /// `GNTTABOP_copy`: whether every one copied.
    fn copy(&mut self, ops: &mut [GnttabCopy]) -> Result<(), IoError> {
        let n = u32::try_from(ops.len()).map_err(|_| IoError)?;
        // SAFETY: `ops` are live gnttab_copy entries; each local end is
        // one of our staging pages.
        let rc = unsafe { typed::grant_table_op(GNTTABOP_COPY, ops.as_mut_ptr().cast(), n) };
        if rc == 0 && ops.iter().all(|o| o.status == 0) {
            Ok(())
        } else {
            Err(IoError)
        }
    }

    /// A copy of `len` bytes between byte `theirs` of their `gref` and
    /// byte `ours` of our staging page `i`; `to_them`: towards their page.
    fn op(
        &self,
        (gref, theirs): (u32, u16),
        (i, ours): (usize, u16),
        len: u16,
        to_them: bool,
    ) -> Result<GnttabCopy, IoError> {
        let theirs = GnttabCopyPtr {
            u: u64::from(gref),
            domid: self.front,
            offset: theirs,
            _pad: 0,
        };
        let ours = GnttabCopyPtr {
            u: *self.mfns.get(i).ok_or(IoError)?,
            domid: DOMID_SELF,
            offset: ours,
            _pad: 0,
        };
        let (source, dest, flags) = if to_them {
            (ours, theirs, GNTCOPY_DEST_GREF)
        } else {
            (theirs, ours, GNTCOPY_SOURCE_GREF)
        };
        Ok(GnttabCopy {
            source,
            dest,
            len,
            flags,
            ..Default::default()
        })
    }

    /// One batch of copies, each piece between their grant and the same
    /// offset of our staging page of its index.
    fn batch(&mut self, pieces: &[Piece], to_them: bool) -> Result<(), IoError> {
        // Only the copies made (a ring loop's batch: no array zeroed).
        let mut ops = heapless::Vec::<GnttabCopy, MAX_INDIRECT_SEGMENTS>::new();
        for (i, p) in pieces.iter().enumerate() {
            let (at, len) = (usize::from(p.offset), usize::from(p.len));
            if at + len > PAGE {
                return Err(IoError);
            }
            if let Some(va) = self.kept_va(p.gref) {
                let ours = self.staging.get_mut(i).ok_or(IoError)?;
                let ours = ours.0.get_mut(at..at + len).ok_or(IoError)?;
                let theirs = (va + u64::from(p.offset)) as *mut u8;
                // SAFETY: `theirs` is `len` bytes inside the page their
                // grant is mapped at (writable, until `unmap_kept`); they
                // may change it meanwhile, so no reference to it is
                // formed: the bytes are copied to or from our staging
                // page, and nothing here reads them twice.
                unsafe {
                    if to_them {
                        core::ptr::copy_nonoverlapping(ours.as_ptr(), theirs, len);
                    } else {
                        core::ptr::copy_nonoverlapping(theirs, ours.as_mut_ptr(), len);
                    }
                }
                continue;
            }
            let op = self.op((p.gref, p.offset), (i, p.offset), p.len, to_them)?;
            ops.push(op).map_err(|_| IoError)?;
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.copy(&mut ops)
    }
}

impl Grants for CopyGrants {
    fn copy_from(&mut self, gref: u32, offset: u16, out: &mut [u8]) -> Result<(), IoError> {
        let len = u16::try_from(out.len()).map_err(|_| IoError)?;
        let mut op = [self.op((gref, offset), (0, 0), len, false)?];
        self.copy(&mut op)?;
        let page = self.staging.first().ok_or(IoError)?;
        out.copy_from_slice(page.0.get(..out.len()).ok_or(IoError)?);
        Ok(())
    }

    fn copy_to(&mut self, gref: u32, offset: u16, data: &[u8]) -> Result<(), IoError> {
        let len = u16::try_from(data.len()).map_err(|_| IoError)?;
        let page = self.staging.first_mut().ok_or(IoError)?;
        page.0
            .get_mut(..data.len())
            .ok_or(IoError)?
            .copy_from_slice(data);
        let mut op = [self.op((gref, offset), (0, 0), len, true)?];
        self.copy(&mut op)
    }

    fn gather(&mut self, pieces: &[Piece]) -> Result<(), IoError> {
        self.batch(pieces, false)
    }

    fn scatter(&mut self, pieces: &[Piece]) -> Result<(), IoError> {
        self.batch(pieces, true)
    }

    fn staging(&mut self, i: usize) -> Option<&mut [u8; PAGE]> {
        self.staging.get_mut(i).map(|b| &mut b.0)
    }
}

/// `va`'s machine frame: our initial mapping maps pseudo-physical frame
/// `(va - VIRT_BASE) / 4096` there, and the P2M list names its frame.
pub fn own_mfn(si: &guest_abi::xen::StartInfo, va: u64) -> u64 {
    let pfn = va.wrapping_sub(guest_abi::rt::VIRT_BASE) / PAGE as u64;
    let Some(i) = usize::try_from(pfn).ok().filter(|_| pfn < si.nr_pages) else {
        return 0;
    };
    // SAFETY: the builder maps the P2M list, one entry per page of ours,
    // and `i` is below `nr_pages`.
    unsafe { (si.mfn_list as *const u64).add(i).read_volatile() }
}

/// Maps domain `dom`'s grant `gref` at our page `va`: the handle.
pub fn map_ring(va: u64, dom: u16, gref: u32) -> Result<u32, alloc::string::String> {
    let mut map = [GnttabMapGrantRef {
        host_addr: va,
        flags: GNTMAP_HOST_MAP,
        ref_: gref,
        dom,
        ..Default::default()
    }];
    // SAFETY: `map` is a live gnttab_map_grant_ref naming a page of ours.
    let rc = unsafe { typed::grant_table_op(GNTTABOP_MAP_GRANT_REF, map.as_mut_ptr().cast(), 1) };
    if rc != 0 || map[0].status != 0 {
        return Err(alloc::format!(
            "mapping grant {gref} of domain {dom}: {rc}, status {}",
            map[0].status
        ));
    }
    Ok(map[0].handle)
}

/// Unmaps what [`map_ring`] mapped at `va`.
pub fn unmap_ring(va: u64, handle: u32) {
    let mut op = [GnttabUnmapGrantRef {
        host_addr: va,
        handle,
        ..Default::default()
    }];
    // SAFETY: `op` is a live gnttab_unmap_grant_ref.
    unsafe { typed::grant_table_op(GNTTABOP_UNMAP_GRANT_REF, op.as_mut_ptr().cast(), 1) };
}
