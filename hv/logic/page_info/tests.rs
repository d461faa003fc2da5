//! Host tests of `hv::page_info`.

use super::*;

fn table(n: usize) -> FrameTable<Vec<FrameSlot>> {
    FrameTable::new(FrameSlot::unowned(n))
}

#[test]
fn a_page_table_cannot_also_be_writable() {
    let t = table(4);
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
    let t = table(4);
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
    let t = table(8);
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
    t.mark_special(2, 3).unwrap();
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
    let t = table(2);
    t.assign_free(0, 0, 0).unwrap();
    assert_eq!(t.put_page(0), Err(PageError::Underflow));
    assert_eq!(t.put_page_and_type(0), Err(PageError::Underflow));
    t.pin(0, 0, PageType::L4).unwrap();
    let p = t.get(0).unwrap();
    assert!(p.pinned && p.type_count == 1 && p.refs == 1 && p.ty == PageType::L4);
    assert_eq!(
        t.pin(0, 0, PageType::Writable),
        Err(PageError::TypeConflict {
            current: PageType::Writable
        })
    );
}

/// The freed list, collected: (frame, whose it was).
fn collect(t: &FrameTable<Vec<FrameSlot>>) -> Vec<(u64, u16)> {
    std::iter::from_fn(|| t.take_freed()).collect()
}

#[test]
fn an_unreferenced_frame_given_back_is_freed_at_once() {
    let t = table(4);
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
    assert_eq!(collect(&t), [(1, 3)]);
    assert!(!t.has_freed());
    assert_eq!(t.get(1).unwrap(), PageInfo::default());
    assert_eq!(t.assign_free(1, 5, 0), Ok(()));
}

#[test]
fn a_referenced_frame_given_back_is_freed_with_its_last_reference() {
    let t = table(4);
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
    let p = t.get(2).unwrap();
    assert_eq!((p.owner, p.freed_from, p.refs), (None, Some(3), 0));
    assert_eq!(collect(&t), [(2, 3)]);
    assert_eq!(t.put_page(2), Err(PageError::Underflow));
}

#[test]
fn frames_freed_together_are_all_collected() {
    let owner = |m: u64| if m.is_multiple_of(2) { 1 } else { 2 };
    let t = table(6);
    for m in 0..6 {
        t.assign_free(m, owner(m), m).unwrap();
    }
    for m in [4, 1, 3] {
        t.give_back(m, owner(m)).unwrap();
    }
    let mut got = collect(&t);
    got.sort_unstable();
    assert_eq!(got, [(1, 2), (3, 2), (4, 1)]);
    assert!((0..6).all(|m| t.get(m).unwrap().freed_from.is_none()));
}

#[test]
fn a_page_hv_shares_is_kept_when_given_back() {
    let t = table(2);
    t.assign_free(0, 3, 0).unwrap();
    t.mark_special(0, 3).unwrap();
    assert_eq!(t.give_back(0, 3), Ok(GiveBack::Kept));
    let p = t.get(0).unwrap();
    assert!(p.allocated && p.owner == Some(3));
    assert!(!t.has_freed());
}

use std::cell::RefCell;

std::thread_local! {
    static HOME: RefCell<Option<FrameTable<Vec<FrameSlot>>>> = const { RefCell::new(None) };
}

/// A per-test-thread frame table for the handles.
struct TestHome;
impl FrameHome for TestHome {
    type Store = Vec<FrameSlot>;
    fn with<R>(f: impl FnOnce(&FrameTable<Vec<FrameSlot>>) -> R) -> Option<R> {
        HOME.with(|h| h.borrow().as_ref().map(f))
    }
}

fn home(n: usize, owner: u16) {
    let t = table(n);
    for m in 0..n as u64 {
        t.assign_free(m, owner, m).unwrap();
    }
    HOME.with(|h| *h.borrow_mut() = Some(t));
}

fn info(mfn: u64) -> PageInfo {
    TestHome::with(|t| t.get(mfn).unwrap()).unwrap()
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
    let r = TypedRef::<TestHome, SegDesc>::take_validated(0, 1, |_| true)
        .unwrap()
        .unwrap();
    let mfn = r.into_counted();
    assert_eq!(info(0).type_count, 1);
    TestHome::with(|t| t.put_page_and_type(mfn))
        .unwrap()
        .unwrap();
    assert_eq!((info(0).type_count, info(0).refs), (0, 0));
    TestHome::with(|t| {
        let w = TypedRef::<TestHome, Writable>::take_in(t, 1, 1).unwrap();
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
    let t = table(8);
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

// ---------------------------------------------------------------------------
// Several CPUs at once (threads on one table).

use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Arc;

const THREADS: u32 = 4;

/// Runs `f(thread number)` on `THREADS` threads at once.
fn race(f: impl Fn(u32) + Send + Sync + 'static) {
    let f = Arc::new(f);
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let f = Arc::clone(&f);
            std::thread::spawn(move || f(i))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

fn shared_table(n: usize, owner: u16) -> Arc<FrameTable<Vec<FrameSlot>>> {
    let t = table(n);
    for m in 0..n as u64 {
        t.assign_free(m, owner, m).unwrap();
    }
    Arc::new(t)
}

#[test]
fn two_types_are_never_held_at_once_by_racing_takers() {
    let t = shared_table(2, 1);
    // Holders of each type right now: a taker counts itself in, then
    // looks at the other type's count (sequentially consistent: if two
    // held at once, one of them sees the other).
    let holders = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
    let (t2, h2) = (Arc::clone(&t), Arc::clone(&holders));
    race(move |i| {
        let (mine, ty) = if i % 2 == 0 {
            (0, PageType::Writable)
        } else {
            (1, PageType::L1)
        };
        for _ in 0..20_000 {
            match t2.get_page_and_type(0, 1, ty) {
                Ok(fresh) => {
                    if fresh && ty.validates() {
                        t2.set_validated(0);
                    }
                    h2[mine].fetch_add(1, Ordering::SeqCst);
                    assert_eq!(h2[1 - mine].load(Ordering::SeqCst), 0, "both types held");
                    assert_eq!(t2.get(0).unwrap().ty, ty);
                    h2[mine].fetch_sub(1, Ordering::SeqCst);
                    t2.put_page_and_type(0).unwrap();
                }
                Err(PageError::TypeConflict { current }) => assert_ne!(current, ty),
                Err(e) => panic!("{e:?}"),
            }
        }
    });
    let p = t.get(0).unwrap();
    assert_eq!((p.refs, p.type_count, p.owner), (0, 0, Some(1)));
}

#[test]
fn a_second_taker_waits_for_the_validation() {
    let t = shared_table(1, 1);
    let checked = Arc::new(AtomicBool::new(false));
    let (t2, c2) = (Arc::clone(&t), Arc::clone(&checked));
    assert_eq!(t.get_page_and_type(0, 1, PageType::L2), Ok(true));
    let other = std::thread::spawn(move || {
        // Not fresh, and only once the first taker is done checking.
        assert_eq!(t2.get_page_and_type(0, 1, PageType::L2), Ok(false));
        assert!(c2.load(Ordering::SeqCst), "used before validation");
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    checked.store(true, Ordering::SeqCst);
    t.set_validated(0);
    other.join().unwrap();
    assert_eq!(t.get(0).unwrap().type_count, 2);
}

#[test]
fn a_failed_validation_hands_the_type_to_a_waiter() {
    let t = shared_table(1, 1);
    assert_eq!(t.get_page_and_type(0, 1, PageType::L1), Ok(true));
    let t2 = Arc::clone(&t);
    // The waiter finds the count back at zero and validates itself.
    let other = std::thread::spawn(move || t2.get_page_and_type(0, 1, PageType::L1));
    std::thread::sleep(std::time::Duration::from_millis(20));
    t.put_page_and_type(0).unwrap();
    assert_eq!(other.join().unwrap(), Ok(true));
    assert!(!t.get(0).unwrap().validated);
}

#[test]
fn a_locked_table_is_updated_by_one_cpu_at_a_time() {
    let t = shared_table(1, 1);
    t.get_page_and_built_type(0, 1, PageType::L1).unwrap();
    let counter = Arc::new(AtomicU32::new(0));
    let (t2, c2) = (Arc::clone(&t), Arc::clone(&counter));
    race(move |_| {
        for _ in 0..10_000 {
            assert_eq!(t2.lock_table(0, 1), Ok(PageType::L1));
            // A read and a write apart: lost if two CPUs were inside.
            let n = c2.load(Ordering::Relaxed);
            std::hint::spin_loop();
            c2.store(n + 1, Ordering::Relaxed);
            t2.unlock_table(0);
        }
    });
    assert_eq!(counter.load(Ordering::Relaxed), 10_000 * THREADS);
    let p = t.get(0).unwrap();
    assert_eq!((p.refs, p.type_count), (1, 1));
}

#[test]
fn racing_last_puts_free_a_frame_given_back_once() {
    for _ in 0..200 {
        let t = shared_table(1, 1);
        for _ in 0..THREADS {
            t.get_page_and_type(0, 1, PageType::Writable).unwrap();
        }
        assert_eq!(t.give_back(0, 1), Ok(GiveBack::Deferred));
        let t2 = Arc::clone(&t);
        race(move |_| t2.put_page_and_type(0).unwrap());
        assert_eq!(collect(&t), [(0, 1)]);
        assert!(!t.has_freed());
    }
}

#[test]
fn one_of_two_racing_pins_wins() {
    for _ in 0..200 {
        let t = shared_table(1, 1);
        let wins = Arc::new(AtomicU32::new(0));
        let (t2, w2) = (Arc::clone(&t), Arc::clone(&wins));
        race(move |_| {
            if t2.pin(0, 1, PageType::L2).is_ok() {
                w2.fetch_add(1, Ordering::SeqCst);
            }
        });
        assert_eq!(wins.load(Ordering::SeqCst), 1);
        let p = t.get(0).unwrap();
        assert_eq!((p.pinned, p.type_count, p.refs), (true, 1, 1));
    }
}

/// The TLB clock of the stamp test, and the stamps it was asked to flush.
static CLOCK: AtomicU64 = AtomicU64::new(10);
static FLUSHED: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

#[test]
fn a_type_change_flushes_the_cpus_stale_since_the_last_drop() {
    let mut t = table(2);
    t.hooks.clock = &CLOCK;
    t.hooks.flush_stale = |stamp| FLUSHED.lock().unwrap().push(stamp);
    t.assign_free(0, 1, 0).unwrap();
    // Fresh from the allocator: nothing to flush.
    assert_eq!(t.get_page_and_type(0, 1, PageType::Writable), Ok(true));
    CLOCK.store(11, Ordering::SeqCst);
    t.put_page_and_type(0).unwrap();
    assert_eq!(t.stamp_of(0), 11);
    // The same type again: no flush.
    CLOCK.store(12, Ordering::SeqCst);
    assert_eq!(t.get_page_and_type(0, 1, PageType::Writable), Ok(true));
    assert!(t.get(0).unwrap().validated);
    CLOCK.store(13, Ordering::SeqCst);
    t.put_page_and_type(0).unwrap();
    assert!(FLUSHED.lock().unwrap().is_empty());
    // Another type: the CPUs that may cache the writable mapping dropped
    // at 13 are flushed, before the type is usable.
    CLOCK.store(20, Ordering::SeqCst);
    assert_eq!(t.get_page_and_type(0, 1, PageType::L1), Ok(true));
    assert_eq!(*FLUSHED.lock().unwrap(), [13]);
    assert!(!t.get(0).unwrap().validated);
}

#[test]
fn the_last_reference_of_a_locked_table_waits_for_the_lock() {
    let t = shared_table(1, 1);
    t.get_page_and_built_type(0, 1, PageType::L2).unwrap();
    assert_eq!(t.lock_table(0, 1), Ok(PageType::L2));
    let unlocked = Arc::new(AtomicBool::new(false));
    let (t2, u2) = (Arc::clone(&t), Arc::clone(&unlocked));
    let other = std::thread::spawn(move || {
        // Entries are being updated: the table is not let go meanwhile.
        assert_eq!(t2.put_type_begin(0), Ok(PutType::Last(PageType::L2)));
        assert!(u2.load(Ordering::SeqCst), "devalidated under an update");
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    unlocked.store(true, Ordering::SeqCst);
    t.unlock_table(0);
    other.join().unwrap();
    assert!(!t.get(0).unwrap().validated);
    t.put_type_end(0).unwrap();
    t.put_page(0).unwrap();
    // Nobody locks a table let go.
    assert!(t.lock_table(0, 1).is_err());
    // Nor another owner's.
    t.get_page_and_built_type(0, 1, PageType::L2).unwrap();
    assert_eq!(t.lock_table(0, 2), Err(PageError::NotOwner));
    assert_eq!(t.lock_table(0, 1), Ok(PageType::L2));
}

#[test]
fn a_dying_domain_relinquishes_its_shared_page_after_hvs_last_reference() {
    let t = table(4);
    t.assign_free(1, 5, u64::MAX).unwrap();
    t.mark_special(1, 5).unwrap();
    assert_eq!(t.get_page_and_type(1, 5, PageType::Writable), Ok(true));
    // Giving it back keeps it; only the owner may relinquish it.
    assert_eq!(t.give_back(1, 5), Ok(GiveBack::Kept));
    assert_eq!(t.relinquish(1, 6), Err(PageError::NotOwner));
    assert_eq!(t.relinquish(1, 5), Ok(GiveBack::Deferred));
    assert_eq!(t.relinquish(1, 5), Ok(GiveBack::AlreadyGivenBack));
    assert!(!t.has_freed());
    t.put_page_and_type(1).unwrap();
    assert_eq!(t.take_freed(), Some((1, 5)));
    assert_eq!(t.get(1).unwrap().owner, None);
    // An unreferenced one goes at once.
    t.assign_free(2, 5, 0).unwrap();
    assert_eq!(t.relinquish(2, 5), Ok(GiveBack::Freed));
    assert_eq!(t.take_freed(), Some((2, 5)));
}

#[test]
fn another_domain_never_waits_on_or_locks_a_table() {
    let t = table(1);
    t.assign_free(0, 1, 0).unwrap();
    // Being validated: its owner's updates would wait; another domain's
    // is refused at once, without touching the table's bits.
    assert_eq!(t.get_page_and_type(0, 1, PageType::L2), Ok(true));
    assert_eq!(t.lock_table(0, 2), Err(PageError::NotOwner));
    t.set_validated(0);
    assert_eq!(t.lock_table(0, 2), Err(PageError::NotOwner));
    assert_eq!(t.lock_table(0, 1), Ok(PageType::L2));
}
