//! Host tests of `hv::page_info`.

use super::*;

fn table(n: usize) -> FrameTable<Vec<PageInfo>> {
    FrameTable::new(vec![PageInfo::default(); n])
}

#[test]
fn a_page_table_cannot_also_be_writable() {
    let mut t = table(4);
    t.assign_free(1, 0, 0).unwrap();
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
    t.assign_free(2, 7, 5).unwrap();
    assert_eq!(t.assign_free(2, 8, 0), Err(PageError::AlreadyOwned));
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
        t.assign_free(m, 3, m).unwrap();
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
    t.assign_free(0, 0, 0).unwrap();
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

/// The freed list, collected: (frame, whose it was).
fn collect(t: &mut FrameTable<Vec<PageInfo>>) -> Vec<(u64, u16)> {
    std::iter::from_fn(|| t.take_freed()).collect()
}

#[test]
fn an_unreferenced_frame_given_back_is_freed_at_once() {
    let mut t = table(4);
    t.assign_free(1, 3, 7).unwrap();
    assert!(t.get(1).unwrap().allocated);
    assert_eq!(t.give_back(1, 4), Err(PageError::NotOwner));
    assert_eq!(t.give_back(9, 3), Err(PageError::NoSuchFrame));
    assert_eq!(t.give_back(1, 3), Ok(GiveBack::Freed));
    // Unowned at once: no reference, no second give-back, no reuse
    // until it is collected.
    assert_eq!(t.get(1).unwrap().owner, None);
    assert_eq!(t.get_page(1, 3), Err(PageError::NotOwner));
    assert_eq!(t.give_back(1, 3), Err(PageError::NotOwner));
    assert_eq!(t.assign_free(1, 5, 0), Err(PageError::AlreadyOwned));
    assert!(t.has_freed());
    assert_eq!(collect(&mut t), [(1, 3)]);
    assert!(!t.has_freed());
    assert_eq!(*t.get(1).unwrap(), PageInfo::default());
    assert_eq!(t.assign_free(1, 5, 0), Ok(()));
}

#[test]
fn a_referenced_frame_given_back_is_freed_with_its_last_reference() {
    let mut t = table(4);
    t.assign_free(2, 3, 7).unwrap();
    t.get_page(2, 3).unwrap();
    t.get_page_and_type(2, 3, PageType::Writable).unwrap();
    assert_eq!(t.give_back(2, 3), Ok(GiveBack::Deferred));
    // Still the owner's, still referenced: more references may be
    // taken (as on Xen), and giving it back again changes nothing.
    assert_eq!(t.give_back(2, 3), Ok(GiveBack::AlreadyGivenBack));
    assert_eq!(t.get_page(2, 3), Ok(()));
    assert_eq!(t.set_pfn(2, 3, 8), Ok(()));
    // Nobody can take it over whole any more.
    assert_eq!(t.check_unused(&[2], 1, 3), Err(PageError::GivenBack));
    t.put_page(2).unwrap();
    t.put_page(2).unwrap();
    assert!(!t.has_freed());
    assert_eq!(t.get(2).unwrap().owner, Some(3));
    t.put_page_and_type(2).unwrap();
    let p = *t.get(2).unwrap();
    assert_eq!((p.owner, p.freed_from, p.refs), (None, Some(3), 0));
    assert_eq!(collect(&mut t), [(2, 3)]);
    assert_eq!(t.put_page(2), Err(PageError::Underflow));
}

#[test]
fn frames_freed_together_are_all_collected() {
    let owner = |m: u64| if m.is_multiple_of(2) { 1 } else { 2 };
    let mut t = table(6);
    for m in 0..6 {
        t.assign_free(m, owner(m), m).unwrap();
    }
    for m in [4, 1, 3] {
        t.give_back(m, owner(m)).unwrap();
    }
    let mut got = collect(&mut t);
    got.sort_unstable();
    assert_eq!(got, [(1, 2), (3, 2), (4, 1)]);
    assert!((0..6).all(|m| t.get(m).unwrap().freed_from.is_none()));
}

#[test]
fn a_page_hv_shares_is_kept_when_given_back() {
    let mut t = table(2);
    t.assign_free(0, 3, 0).unwrap();
    t.mark_special(0, 3).unwrap();
    assert_eq!(t.give_back(0, 3), Ok(GiveBack::Kept));
    let p = *t.get(0).unwrap();
    assert!(p.allocated && p.owner == Some(3));
    assert!(!t.has_freed());
}

use std::cell::RefCell;

std::thread_local! {
    static HOME: RefCell<Option<FrameTable<Vec<PageInfo>>>> = const { RefCell::new(None) };
}

/// A per-test-thread frame table for the handles.
struct TestHome;
impl FrameHome for TestHome {
    type Store = Vec<PageInfo>;
    fn with<R>(f: impl FnOnce(&mut FrameTable<Vec<PageInfo>>) -> R) -> Option<R> {
        HOME.with(|h| h.borrow_mut().as_mut().map(f))
    }
}

fn home(n: usize, owner: u16) {
    let mut t = table(n);
    for m in 0..n as u64 {
        t.assign_free(m, owner, m).unwrap();
    }
    HOME.with(|h| *h.borrow_mut() = Some(t));
}

fn info(mfn: u64) -> PageInfo {
    TestHome::with(|t| *t.get(mfn).unwrap()).unwrap()
}

#[test]
fn a_dropped_frame_ref_gives_its_reference_back() {
    home(4, 1);
    let before = info(2);
    {
        let a = FrameRef::<TestHome>::take(2, 1).unwrap();
        let b = FrameRef::<TestHome>::take(2, 1).unwrap();
        assert_eq!((a.mfn(), info(2).refs), (2, before.refs + 2));
        drop(b);
        assert_eq!(info(2).refs, before.refs + 1);
    }
    assert_eq!(info(2), before);
    // Refused: another owner's frame, or none at all; nothing counted.
    assert_eq!(
        FrameRef::<TestHome>::take(2, 9).unwrap_err(),
        PageError::NotOwner
    );
    assert_eq!(
        FrameRef::<TestHome>::take(99, 1).unwrap_err(),
        PageError::NoSuchFrame
    );
    assert_eq!(info(2), before);
}

#[test]
fn a_dropped_typed_ref_frees_the_type_with_its_last_count() {
    home(4, 1);
    let before = info(1);
    let w1 = TypedRef::<TestHome, Writable>::take(1, 1).unwrap();
    let w2 = TypedRef::<TestHome, Writable>::take(1, 1).unwrap();
    let p = info(1);
    assert_eq!((p.ty, p.type_count, p.refs), (PageType::Writable, 2, 2));
    // While writable, the frame cannot become a descriptor table.
    assert_eq!(
        TypedRef::<TestHome, SegDesc>::take_validated(1, 1, |_| true).unwrap_err(),
        PageError::TypeConflict {
            current: PageType::Writable
        }
    );
    drop(w1);
    assert_eq!(info(1).type_count, 1);
    drop(w2);
    let p = info(1);
    assert_eq!((p.type_count, p.refs), (before.type_count, before.refs));
    // The last count gone, another type may be taken.
    let s = TypedRef::<TestHome, SegDesc>::take_validated(1, 1, |_| true)
        .unwrap()
        .unwrap();
    assert_eq!(info(1).ty, PageType::SegDesc);
    drop(s);
    assert_eq!((info(1).type_count, info(1).refs), (0, 0));
}

#[test]
fn a_refused_validation_keeps_no_reference() {
    home(2, 1);
    let r = TypedRef::<TestHome, SegDesc>::take_validated(0, 1, |h| h.mfn() != 0).unwrap();
    assert!(r.is_none());
    assert_eq!((info(0).type_count, info(0).refs), (0, 0));
    // A type that is not new is not validated again.
    let a = TypedRef::<TestHome, SegDesc>::take_validated(1, 1, |_| true)
        .unwrap()
        .unwrap();
    let b = TypedRef::<TestHome, SegDesc>::take_validated(1, 1, |_| false)
        .unwrap()
        .unwrap();
    assert_eq!(info(1).type_count, 2);
    drop((a, b));
    assert_eq!(info(1).type_count, 0);
}

#[test]
fn counted_and_in_table_forms_balance() {
    home(2, 1);
    let r = TypedRef::<TestHome, SegDesc>::take(0, 1).unwrap();
    let mfn = r.into_counted();
    assert_eq!(info(0).type_count, 1);
    TestHome::with(|t| t.put_page_and_type(mfn))
        .unwrap()
        .unwrap();
    assert_eq!((info(0).type_count, info(0).refs), (0, 0));
    TestHome::with(|t| {
        let (w, fresh) = TypedRef::<TestHome, Writable>::take_in(t, 1, 1).unwrap();
        assert!(fresh);
        let g = FrameRef::<TestHome>::take_in(t, 1, 1).unwrap();
        assert_eq!(t.get(1).unwrap().refs, 2);
        g.release_in(t);
        w.release_in(t);
        assert_eq!(
            (t.get(1).unwrap().refs, t.get(1).unwrap().type_count),
            (0, 0)
        );
    })
    .unwrap();
}

#[test]
fn a_dropped_handle_frees_a_frame_given_back() {
    home(2, 1);
    let r = FrameRef::<TestHome>::take(1, 1).unwrap();
    let w = TypedRef::<TestHome, Writable>::take(1, 1).unwrap();
    let got = TestHome::with(|t| t.give_back(1, 1)).unwrap();
    assert_eq!(got, Ok(GiveBack::Deferred));
    drop(w);
    assert_eq!(info(1).owner, Some(1));
    drop(r);
    let p = info(1);
    assert_eq!((p.owner, p.freed_from), (None, Some(1)));
    assert_eq!(TestHome::with(|t| t.take_freed()).unwrap(), Some((1, 1)));
}

#[test]
fn assign_extent_is_all_or_nothing() {
    let mut t = table(8);
    t.assign_free(5, 2, 0).unwrap();
    assert_eq!(
        t.assign_extent_free(4, 2, 3, |j| 10 + j),
        Err(PageError::AlreadyOwned)
    );
    assert_eq!(t.get(4).unwrap().owner, None);
    assert_eq!(
        t.assign_extent_free(7, 2, 3, |j| j),
        Err(PageError::NoSuchFrame)
    );
    assert_eq!(t.get(7).unwrap().owner, None);
    assert_eq!(t.assign_extent_free(0, 4, 3, |j| 10 + j), Ok(()));
    assert!((0..4).all(|m| t.get(m).unwrap().owner == Some(3)));
    assert_eq!(t.get(3).unwrap().pfn, 13);
}
