//! Per-frame bookkeeping: who owns a machine frame, what it is used as, and
//! how many references keep it so — Xen's page-type rules, as plain data.
//!
//! Rules (Xen's): a frame has at most one type at a time; the type may only
//! change when its type count is zero; a frame in use as a page table (L1–L4)
//! is never also writable, and a frame with writable mappings is never used
//! as a page table; references of any kind keep a frame owned. The MMU
//! hypercalls (a later issue) drive these operations from guest requests;
//! the domain builder uses them for the bootstrap page tables.

/// What a frame is currently used as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PageType {
    /// No typed use.
    #[default]
    None,
    /// Mapped writable somewhere.
    Writable,
    L1,
    L2,
    L3,
    L4,
    /// Holds GDT/LDT descriptors.
    SegDesc,
}

impl PageType {
    /// Whether this is a page-table type.
    pub fn is_page_table(self) -> bool {
        matches!(self, Self::L1 | Self::L2 | Self::L3 | Self::L4)
    }
}

/// Why a reference was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageError {
    /// The frame number is beyond the table.
    NoSuchFrame,
    /// The frame is not owned by the domain that asked.
    NotOwner,
    /// The frame is already owned.
    AlreadyOwned,
    /// The frame has another type with live references.
    TypeConflict { current: PageType },
    /// A count would overflow.
    Overflow,
    /// Dropping a reference that does not exist.
    Underflow,
}

/// One frame's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PageInfo {
    /// Owning domain, if any.
    pub owner: Option<u16>,
    pub ty: PageType,
    /// References that depend on `ty`.
    pub type_count: u32,
    /// All references (mappings, pins, hv's own uses).
    pub refs: u32,
    /// Pinned by the guest (or the builder) as its type.
    pub pinned: bool,
    /// The pseudo-physical frame the owner knows it by (the M2P entry).
    pub pfn: u64,
    /// Linear page-table use, Xen's sign rule: > 0 counts the linear
    /// entries this table holds, < 0 counts linear entries elsewhere that
    /// point at it. A table is never both, so linear links cannot form a
    /// cycle that would keep frames alive for ever.
    pub linear: i16,
    /// A page hv shares with the domain (shared_info): mappable, but only
    /// with ordinary (write-back) caching.
    pub special: bool,
}

/// The table of every machine frame.
pub struct FrameTable<S: AsMut<[PageInfo]> + AsRef<[PageInfo]>> {
    frames: S,
}

impl<S: AsMut<[PageInfo]> + AsRef<[PageInfo]>> FrameTable<S> {
    pub fn new(frames: S) -> Self {
        Self { frames }
    }

    pub fn get(&self, mfn: u64) -> Option<&PageInfo> {
        self.frames.as_ref().get(usize::try_from(mfn).ok()?)
    }

    /// Mutable access for the page-table engine (pin bookkeeping).
    pub fn get_mut(&mut self, mfn: u64) -> Option<&mut PageInfo> {
        self.frames.as_mut().get_mut(usize::try_from(mfn).ok()?)
    }

    /// Number of frames the table covers.
    pub fn len(&self) -> usize {
        self.frames.as_ref().len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.as_ref().is_empty()
    }

    fn entry(&mut self, mfn: u64) -> Result<&mut PageInfo, PageError> {
        let i = usize::try_from(mfn).map_err(|_| PageError::NoSuchFrame)?;
        self.frames
            .as_mut()
            .get_mut(i)
            .ok_or(PageError::NoSuchFrame)
    }

    /// Gives an unowned frame to `owner` as its frame `pfn`.
    pub fn assign(&mut self, mfn: u64, owner: u16, pfn: u64) -> Result<(), PageError> {
        let p = self.entry(mfn)?;
        if p.owner.is_some() {
            return Err(PageError::AlreadyOwned);
        }
        *p = PageInfo {
            owner: Some(owner),
            pfn,
            ..PageInfo::default()
        };
        Ok(())
    }

    /// Takes a frame back from `owner` (it must hold no references).
    pub fn release(&mut self, mfn: u64, owner: u16) -> Result<(), PageError> {
        let p = self.entry(mfn)?;
        if p.owner != Some(owner) {
            return Err(PageError::NotOwner);
        }
        if p.refs != 0 || p.type_count != 0 {
            return Err(PageError::AlreadyOwned);
        }
        *p = PageInfo::default();
        Ok(())
    }

    /// Takes back from `owner` every frame of the extents starting at
    /// `firsts`, `pages` frames each, in one step: either `owner` owns all
    /// of them and none holds a reference (nor is one hv shares with the
    /// domain), and all are released, or nothing changes. Checking and
    /// releasing in one operation leaves no window in which a reference
    /// could be taken in between.
    pub fn release_unused(
        &mut self,
        firsts: &[u64],
        pages: u64,
        owner: u16,
    ) -> Result<(), PageError> {
        self.check_unused(firsts, pages, owner)?;
        for &first in firsts {
            for mfn in first..first + pages {
                self.release(mfn, owner)?;
            }
        }
        Ok(())
    }

    /// Whether [`release_unused`](Self::release_unused) would succeed now:
    /// `owner` owns every frame of the extents and none is referenced or
    /// shared by hv. Only a hint once the table's lock is dropped.
    pub fn check_unused(&self, firsts: &[u64], pages: u64, owner: u16) -> Result<(), PageError> {
        for &first in firsts {
            let end = first.checked_add(pages).ok_or(PageError::NoSuchFrame)?;
            for mfn in first..end {
                let p = self.get(mfn).ok_or(PageError::NoSuchFrame)?;
                if p.owner != Some(owner) {
                    return Err(PageError::NotOwner);
                }
                if p.refs != 0 || p.type_count != 0 || p.special {
                    return Err(PageError::AlreadyOwned);
                }
            }
        }
        Ok(())
    }

    /// Takes a general reference to a frame `owner` owns.
    pub fn get_page(&mut self, mfn: u64, owner: u16) -> Result<(), PageError> {
        let p = self.entry(mfn)?;
        if p.owner != Some(owner) {
            return Err(PageError::NotOwner);
        }
        p.refs = p.refs.checked_add(1).ok_or(PageError::Overflow)?;
        Ok(())
    }

    /// Drops a general reference.
    pub fn put_page(&mut self, mfn: u64) -> Result<(), PageError> {
        let p = self.entry(mfn)?;
        p.refs = p.refs.checked_sub(1).ok_or(PageError::Underflow)?;
        Ok(())
    }

    /// Takes a general and a typed reference: the frame becomes (or already
    /// is) of type `ty`. Returns whether the type is new (the caller must
    /// then validate the contents for that type).
    pub fn get_page_and_type(
        &mut self,
        mfn: u64,
        owner: u16,
        ty: PageType,
    ) -> Result<bool, PageError> {
        let p = self.entry(mfn)?;
        if p.owner != Some(owner) {
            return Err(PageError::NotOwner);
        }
        let fresh = if p.type_count == 0 {
            true
        } else if p.ty == ty {
            false
        } else {
            return Err(PageError::TypeConflict { current: p.ty });
        };
        let refs = p.refs.checked_add(1).ok_or(PageError::Overflow)?;
        let count = p.type_count.checked_add(1).ok_or(PageError::Overflow)?;
        p.ty = ty;
        p.refs = refs;
        p.type_count = count;
        Ok(fresh)
    }

    /// Drops a typed reference (and its general one). The type stays
    /// recorded but may change once the count is zero.
    pub fn put_page_and_type(&mut self, mfn: u64) -> Result<(), PageError> {
        let p = self.entry(mfn)?;
        if p.type_count == 0 || p.refs == 0 {
            return Err(PageError::Underflow);
        }
        p.type_count -= 1;
        p.refs -= 1;
        if p.type_count == 0 {
            p.pinned = false;
        }
        Ok(())
    }

    /// Pins a frame as page-table type `ty` (one more typed reference).
    pub fn pin(&mut self, mfn: u64, owner: u16, ty: PageType) -> Result<(), PageError> {
        if !ty.is_page_table() {
            return Err(PageError::TypeConflict { current: ty });
        }
        self.get_page_and_type(mfn, owner, ty)?;
        self.entry(mfn)?.pinned = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: usize) -> FrameTable<Vec<PageInfo>> {
        FrameTable::new(vec![PageInfo::default(); n])
    }

    #[test]
    fn a_page_table_cannot_also_be_writable() {
        let mut t = table(4);
        t.assign(1, 0, 0).unwrap();
        assert_eq!(t.get_page_and_type(1, 0, PageType::L1), Ok(true));
        assert_eq!(
            t.get_page_and_type(1, 0, PageType::Writable),
            Err(PageError::TypeConflict {
                current: PageType::L1
            })
        );
        t.put_page_and_type(1).unwrap();
        assert_eq!(t.get_page_and_type(1, 0, PageType::Writable), Ok(true));
        assert_eq!(t.get_page_and_type(1, 0, PageType::Writable), Ok(false));
        assert_eq!(
            t.get_page_and_type(1, 0, PageType::L2),
            Err(PageError::TypeConflict {
                current: PageType::Writable
            })
        );
    }

    #[test]
    fn only_the_owner_takes_references() {
        let mut t = table(4);
        t.assign(2, 7, 5).unwrap();
        assert_eq!(t.assign(2, 8, 0), Err(PageError::AlreadyOwned));
        assert_eq!(t.get_page(2, 8), Err(PageError::NotOwner));
        assert_eq!(
            t.get_page_and_type(2, 8, PageType::L4),
            Err(PageError::NotOwner)
        );
        assert_eq!(t.get_page(3, 7), Err(PageError::NotOwner));
        assert_eq!(t.get_page(99, 7), Err(PageError::NoSuchFrame));
        assert_eq!(t.get(2).unwrap().pfn, 5);
    }

    #[test]
    fn release_unused_is_all_or_nothing() {
        let mut t = table(8);
        for m in 0..8 {
            t.assign(m, 3, m).unwrap();
        }
        t.get_page(5, 3).unwrap();
        // Frame 5 is referenced: nothing of either extent is released.
        assert_eq!(
            t.release_unused(&[0, 4], 2, 3),
            Err(PageError::AlreadyOwned)
        );
        assert!((0..8).all(|m| t.get(m).unwrap().owner == Some(3)));
        // Another owner, or a range past the end: refused, unchanged.
        assert_eq!(t.release_unused(&[0], 2, 4), Err(PageError::NotOwner));
        assert_eq!(t.release_unused(&[7], 2, 3), Err(PageError::NoSuchFrame));
        assert_eq!(
            t.release_unused(&[u64::MAX], 2, 3),
            Err(PageError::NoSuchFrame)
        );
        assert!((0..8).all(|m| t.get(m).unwrap().owner == Some(3)));
        // A special (hv-shared) frame is never released.
        t.get_mut(2).unwrap().special = true;
        assert_eq!(t.release_unused(&[2], 1, 3), Err(PageError::AlreadyOwned));
        t.put_page(5).unwrap();
        assert_eq!(t.release_unused(&[0, 4], 2, 3), Ok(()));
        assert!([0, 1, 4, 5]
            .iter()
            .all(|&m| t.get(m).unwrap().owner.is_none()));
        assert_eq!(t.get(2).unwrap().owner, Some(3));
    }

    #[test]
    fn counts_never_underflow() {
        let mut t = table(2);
        t.assign(0, 0, 0).unwrap();
        assert_eq!(t.put_page(0), Err(PageError::Underflow));
        assert_eq!(t.put_page_and_type(0), Err(PageError::Underflow));
        t.pin(0, 0, PageType::L4).unwrap();
        let p = *t.get(0).unwrap();
        assert!(p.pinned && p.type_count == 1 && p.refs == 1 && p.ty == PageType::L4);
        assert_eq!(
            t.pin(0, 0, PageType::Writable),
            Err(PageError::TypeConflict {
                current: PageType::Writable
            })
        );
    }
}
