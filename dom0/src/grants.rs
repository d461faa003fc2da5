//! Grant work dom0's back ends share: copies to and from a front end's
//! granted pages (`GNTTABOP_copy`), and mapping one granted page (a ring)
//! at a page of ours.

use alloc::boxed::Box;

use guest_abi::grant_table::{
    GnttabCopy, GnttabCopyPtr, GnttabMapGrantRef, GnttabUnmapGrantRef, GNTCOPY_DEST_GREF,
    GNTCOPY_SOURCE_GREF, GNTMAP_HOST_MAP, GNTTABOP_COPY, GNTTABOP_MAP_GRANT_REF,
    GNTTABOP_UNMAP_GRANT_REF,
};
use guest_abi::hypercall::typed;
use guest_abi::xen::DOMID_SELF;
use pv_drivers::blkif::{Grants, IoError};

const PAGE: usize = 4096;

/// A page of ours, page aligned, for grant copies.
#[repr(C, align(4096))]
struct Bounce([u8; PAGE]);

/// The front end's pages reached by `GNTTABOP_copy`, one segment at a
/// time, through a bounce page of ours.
pub struct CopyGrants {
    front: u16,
    bounce: Box<Bounce>,
    bounce_mfn: u64,
}

impl CopyGrants {
    /// Copies to and from domain `front`'s grants, through a bounce page
    /// of ours.
    pub fn new(si: &guest_abi::xen::StartInfo, front: u16) -> Self {
        let bounce = Box::new(Bounce([0; PAGE]));
        let bounce_mfn = own_mfn(si, core::ptr::from_ref(&*bounce) as u64);
        Self {
            front,
            bounce,
            bounce_mfn,
        }
    }

    fn copy(&mut self, op: GnttabCopy) -> Result<(), IoError> {
        let mut ops = [op];
        // SAFETY: `ops` is a live gnttab_copy; its local end is our bounce
        // page.
        let rc = unsafe { typed::grant_table_op(GNTTABOP_COPY, ops.as_mut_ptr().cast(), 1) };
        if rc == 0 && ops[0].status == 0 {
            Ok(())
        } else {
            Err(IoError)
        }
    }

    fn ends(&self, gref: u32, offset: u16) -> (GnttabCopyPtr, GnttabCopyPtr) {
        let theirs = GnttabCopyPtr {
            u: u64::from(gref),
            domid: self.front,
            offset,
            _pad: 0,
        };
        let ours = GnttabCopyPtr {
            u: self.bounce_mfn,
            domid: DOMID_SELF,
            offset: 0,
            _pad: 0,
        };
        (theirs, ours)
    }
}

impl Grants for CopyGrants {
    fn copy_from(&mut self, gref: u32, offset: u16, out: &mut [u8]) -> Result<(), IoError> {
        let len = u16::try_from(out.len()).map_err(|_| IoError)?;
        let (source, dest) = self.ends(gref, offset);
        self.copy(GnttabCopy {
            source,
            dest,
            len,
            flags: GNTCOPY_SOURCE_GREF,
            ..Default::default()
        })?;
        out.copy_from_slice(self.bounce.0.get(..out.len()).ok_or(IoError)?);
        Ok(())
    }

    fn copy_to(&mut self, gref: u32, offset: u16, data: &[u8]) -> Result<(), IoError> {
        let len = u16::try_from(data.len()).map_err(|_| IoError)?;
        self.bounce
            .0
            .get_mut(..data.len())
            .ok_or(IoError)?
            .copy_from_slice(data);
        let (dest, source) = self.ends(gref, offset);
        self.copy(GnttabCopy {
            source,
            dest,
            len,
            flags: GNTCOPY_DEST_GREF,
            ..Default::default()
        })
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
