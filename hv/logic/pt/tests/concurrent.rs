//! The rules engine on several CPUs at once: threads sharing one frame
//! table and one memory, each with its own engine (as each hv CPU makes
//! its own in `with_page_tables`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::*;

/// Table frames shared by the threads, written with atomics.
struct Shared(Vec<[AtomicU64; 512]>);

/// One thread's view of [`Shared`].
struct View<'a>(&'a Shared);

impl TableMemory for View<'_> {
    fn read(&self, mfn: u64, index: usize) -> u64 {
        self.0 .0[mfn as usize][index].load(Ordering::SeqCst)
    }
    fn write(&mut self, mfn: u64, index: usize, value: u64) {
        self.0 .0[mfn as usize][index].store(value, Ordering::SeqCst);
    }
}

const FRAMES: u64 = 24;
/// The two L1 tables the updaters write.
const TABLES: [u64; 2] = [1, 2];
/// Frames the pinners pin as L1s and the updaters map (RW or not).
const CONTESTED: std::ops::Range<u64> = 3..7;
/// Plain data frames the updaters map.
const DATA: std::ops::Range<u64> = 10..16;

/// A tiny deterministic generator per thread.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn err_ok(e: PtError) -> bool {
    matches!(
        e,
        PtError::Busy { .. }
            | PtError::Page {
                error: PageError::TypeConflict { .. } | PageError::AlreadyOwned,
                ..
            }
            | PtError::NotPageTable { .. }
    )
}

#[test]
fn racing_updates_and_pins_keep_every_count() {
    let ft = Arc::new(FrameTable::new(FrameSlot::unowned(FRAMES as usize)));
    for mfn in 0..FRAMES {
        ft.assign_free(mfn, DOM, mfn).unwrap();
    }
    let mem = Arc::new(Shared(
        (0..FRAMES)
            .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
            .collect(),
    ));
    {
        let mut view = View(&mem);
        let mut pt = PageTables::new(&*ft, &mut view, DOM, false);
        for t in TABLES {
            pt.pin(t, 1).unwrap();
        }
    }
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            let (ft, mem) = (Arc::clone(&ft), Arc::clone(&mem));
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((i + 1) * 0x1234_5678));
                let mut view = View(&mem);
                let mut pt = PageTables::new(&*ft, &mut view, DOM, false);
                // Updaters keep their table locked between updates, as
                // hv's batches do.
                pt.keep_locked = true;
                let mut pinned = Vec::new();
                for _ in 0..20_000 {
                    if i < 2 {
                        // An updater: one entry of a shared L1.
                        let table = TABLES[rng.below(2) as usize];
                        let target = if rng.below(3) == 0 {
                            CONTESTED.start + rng.below(4)
                        } else {
                            DATA.start + rng.below(6)
                        };
                        let new = match rng.below(3) {
                            0 => 0,
                            1 => e(target, PTE_P | PTE_US),
                            _ => e(target, PTE_P | PTE_RW | PTE_US),
                        };
                        let index = rng.below(8) as usize;
                        if let Err(err) = pt.update_entry(table, index, new) {
                            assert!(err_ok(err), "{err:?}");
                        }
                    } else {
                        // A pinner: pin a contested frame as an L1, check
                        // nothing maps it writable, maybe unpin one.
                        let f = CONTESTED.start + rng.below(4);
                        match pt.pin(f, 1) {
                            Ok(()) => {
                                for t in TABLES {
                                    for index in 0..8 {
                                        let entry = pt.mem.read(t, index);
                                        let rw = PTE_P | PTE_RW;
                                        assert!(
                                            !(entry & rw == rw && entry_mfn(entry) == f),
                                            "pinned L1 {f} mapped writable by {t}[{index}]"
                                        );
                                    }
                                }
                                pinned.push(f);
                            }
                            Err(err) => assert!(err_ok(err), "{err:?}"),
                        }
                        if !pinned.is_empty() && rng.below(2) == 0 {
                            let f = pinned.swap_remove(rng.below(pinned.len() as u64) as usize);
                            pt.unpin(f).unwrap();
                        }
                    }
                }
                for f in pinned {
                    pt.unpin(f).unwrap();
                }
                pt.unlock();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut view = View(&mem);
    let mut pt = PageTables::new(&*ft, &mut view, DOM, false);
    for t in TABLES {
        for index in 0..8 {
            pt.update_entry(t, index, 0).unwrap();
        }
        pt.unpin(t).unwrap();
    }
    for mfn in 0..FRAMES {
        let p = ft.get(mfn).unwrap();
        assert_eq!(
            (p.owner, p.refs, p.type_count, p.pinned, p.linear),
            (Some(DOM), 0, 0, false, 0),
            "frame {mfn}"
        );
    }
    assert!(!ft.has_freed());
}
