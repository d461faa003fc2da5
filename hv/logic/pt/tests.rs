//! Host tests of `hv::pt`.

use super::*;
use crate::page_info::{GiveBack, PageInfo};

mod concurrent;
mod tlb_model;

/// Frame contents for the tests: 512 entries per frame, frames by
/// number (the tests' frames are few and small-numbered).
#[derive(Default)]
struct Mem(Vec<[u64; 512]>);

impl TableMemory for Mem {
    fn read(&self, mfn: u64, index: usize) -> u64 {
        self.0.get(mfn as usize).map_or(0, |t| t[index])
    }
    fn write(&mut self, mfn: u64, index: usize, value: u64) {
        let m = mfn as usize;
        if self.0.len() <= m {
            self.0.resize(m + 1, [0; 512]);
        }
        self.0[m][index] = value;
    }
}

const DOM: u16 = 1;
const OTHER: u16 = 2;
const N: u64 = 24;

fn setup() -> (FrameTable<Vec<FrameSlot>>, Mem) {
    let ft = FrameTable::new(FrameSlot::unowned(N as usize + 4));
    for mfn in 0..N {
        ft.assign_free(mfn, DOM, mfn).unwrap();
    }
    ft.assign_free(N, OTHER, 0).unwrap(); // someone else's frame
    (ft, Mem::default())
}

fn e(mfn: u64, flags: u64) -> u64 {
    (mfn << 12) | flags
}

#[test]
fn pinning_validates_the_whole_tree() {
    let (ft, mut mem) = setup();
    // L4(1) -> L3(2) -> L2(3) -> L1(4) -> data 5 (RW), 6 (RO)
    mem.write(1, 0, e(2, PTE_P | PTE_RW | PTE_US));
    mem.write(2, 0, e(3, PTE_P | PTE_RW | PTE_US));
    mem.write(3, 0, e(4, PTE_P | PTE_RW | PTE_US));
    mem.write(4, 0, e(5, PTE_P | PTE_RW | PTE_US));
    mem.write(4, 1, e(6, PTE_P | PTE_US));
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.pin(1, 4).unwrap();
    assert_eq!(ft.get(4).unwrap().ty, PageType::L1);
    assert_eq!(ft.get(5).unwrap().ty, PageType::Writable);
    assert_eq!(ft.get(6).unwrap().refs, 1);
    assert_eq!(ft.get(6).unwrap().type_count, 0);
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.unpin(1).unwrap();
    for mfn in 0..N {
        let p = ft.get(mfn).unwrap();
        assert_eq!((p.refs, p.type_count), (0, 0), "frame {mfn}");
    }
}

#[test]
fn a_table_that_maps_itself_writable_cannot_be_pinned() {
    let (ft, mut mem) = setup();
    mem.write(4, 7, e(4, PTE_P | PTE_RW | PTE_US));
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    assert_eq!(pt.pin(4, 1).map_err(PtError::errno), Err(Errno::EBUSY)); // as Xen
    assert_eq!(ft.get(4).unwrap().type_count, 0);
    assert_eq!(ft.get(4).unwrap().refs, 0);
}

#[test]
fn bad_entries_are_refused_and_change_nothing() {
    let (ft, mut mem) = setup();
    mem.write(4, 0, e(5, PTE_P | PTE_RW));
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.pin(4, 1).unwrap();
    let stored = pt.mem.read(4, 0);
    let cases = [
        e(N, PTE_P),           // another domain's frame
        e(N + 100, PTE_P),     // beyond memory
        e(6, PTE_P | PTE_PCD), // caching choice without I/O rights
        e(4, PTE_P | PTE_RW),  // the table itself, writable
    ];
    for new in cases {
        let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
        assert!(pt.update_entry(4, 0, new).is_err(), "{new:#x}");
        assert_eq!(mem.read(4, 0), stored);
        assert_eq!(ft.get(5).unwrap().type_count, 1);
    }
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    assert_eq!(pt.update_entry(4, 0, e(6, PTE_P)), Ok(stored));
    assert_eq!(ft.get(5).unwrap().refs, 0);
    assert_eq!(ft.get(6).unwrap().refs, 1);
}

#[test]
fn superpages_and_hypervisor_slots_are_refused() {
    let (ft, mut mem) = setup();
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.pin(3, 2).unwrap();
    pt.pin(1, 4).unwrap();
    assert!(matches!(
        pt.update_entry(3, 0, e(8, PTE_P | PTE_PSE)),
        Err(PtError::BadFlags { .. })
    ));
    assert!(matches!(
        pt.update_entry(3, 0, e(8, PTE_P | PTE_G)),
        Err(PtError::BadFlags { .. })
    ));
    assert_eq!(
        pt.update_entry(1, 256, e(2, PTE_P)),
        Err(PtError::HypervisorSlot { index: 256 })
    );
    assert_eq!(
        pt.update_entry(7, 0, e(2, PTE_P)),
        Err(PtError::NotPageTable { mfn: 7 })
    );
}

#[test]
fn errnos_follow_xen() {
    let (ft, mut mem) = setup();
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.pin(4, 1).unwrap();
    pt.pin(3, 2).unwrap();
    let busy = pt.update_entry(4, 0, e(N, PTE_P)).unwrap_err(); // another domain's page
    let pt_rw = pt.update_entry(4, 0, e(3, PTE_P | PTE_RW)).unwrap_err(); // a page table, writable
    let hole = pt.update_entry(4, 0, e(N + 100, PTE_P)).unwrap_err(); // not memory
    let flags = pt.update_entry(4, 0, e(5, PTE_P | PTE_PWT)).unwrap_err();
    assert_eq!(
        (busy.errno(), pt_rw.errno(), hole.errno(), flags.errno()),
        (Errno::EBUSY, Errno::EBUSY, Errno::EPERM, Errno::EINVAL)
    );
    // An L2 entry naming a frame mapped writable: a type conflict.
    pt.update_entry(4, 1, e(6, PTE_P | PTE_RW)).unwrap(); // frame 6 writable
    assert_eq!(
        pt.update_entry(3, 1, e(6, PTE_P)).unwrap_err().errno(),
        Errno::EINVAL
    );
}

#[test]
fn entries_are_stored_as_xen_adjusts_them() {
    let (ft, mut mem) = setup();
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.pin(4, 1).unwrap();
    pt.update_entry(4, 0, e(5, PTE_P | PTE_RW)).unwrap();
    pt.update_entry(4, 1, e(6, PTE_P | PTE_US)).unwrap();
    assert_eq!(
        pt.mem.read(4, 0),
        e(5, PTE_P | PTE_RW | PTE_US | PTE_GUEST_KERNEL)
    );
    assert_eq!(pt.mem.read(4, 1), e(6, PTE_P | PTE_US | PTE_G));
    pt.pin(1, 4).unwrap();
    pt.update_entry(1, 0, e(2, PTE_P)).unwrap();
    assert_eq!(pt.mem.read(1, 0), e(2, PTE_P | PTE_US | PTE_A));
}

#[test]
fn linear_entries_follow_xen() {
    let (ft, mut mem) = setup();
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.pin(1, 4).unwrap();
    pt.pin(2, 4).unwrap();
    // Self-reference, read-only: allowed and holds nothing.
    pt.update_entry(1, 5, e(1, PTE_P)).unwrap();
    assert_eq!(pt.frames.get(1).unwrap().type_count, 1);
    // Writable self-reference: refused.
    assert_eq!(
        pt.update_entry(1, 6, e(1, PTE_P | PTE_RW))
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    // Read-only link to another validated L4: a type reference.
    pt.update_entry(1, 7, e(2, PTE_P)).unwrap();
    assert_eq!(pt.frames.get(2).unwrap().type_count, 2);
    pt.update_entry(1, 7, 0).unwrap();
    assert_eq!(pt.frames.get(2).unwrap().type_count, 1);
    pt.update_entry(1, 5, 0).unwrap();
    pt.unpin(1).unwrap();
    assert_eq!(pt.frames.get(1).unwrap().type_count, 0);
}

#[test]
fn a_pinned_tree_given_back_is_freed_by_the_unpin() {
    let (ft, mut mem) = setup();
    // L2(3) -> L1(4) -> data 5 (RW), 6 (RO); all given back while in use.
    mem.write(3, 0, e(4, PTE_P | PTE_RW | PTE_US));
    mem.write(4, 0, e(5, PTE_P | PTE_RW | PTE_US));
    mem.write(4, 1, e(6, PTE_P | PTE_US));
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.pin(3, 2).unwrap();
    for m in [3, 4, 5, 6] {
        assert_eq!(pt.frames.give_back(m, DOM), Ok(GiveBack::Deferred));
    }
    // Still in use: a data page may be mapped again, the L1 stays one.
    pt.update_entry(4, 2, e(6, PTE_P | PTE_US)).unwrap();
    assert_eq!(pt.frames.get(4).unwrap().ty, PageType::L1);
    assert!(!pt.frames.has_freed());
    // The unpin devalidates the tree, and each frame goes with its
    // last reference.
    pt.unpin(3).unwrap();
    let mut freed: Vec<(u64, u16)> = std::iter::from_fn(|| ft.take_freed()).collect();
    freed.sort_unstable();
    assert_eq!(freed, [(3, DOM), (4, DOM), (5, DOM), (6, DOM)]);
    for m in [3, 4, 5, 6] {
        assert_eq!(ft.get(m).unwrap(), PageInfo::default(), "frame {m}");
    }
}

#[test]
fn a_table_that_maps_itself_is_freed_with_its_last_type() {
    let (ft, mut mem) = setup();
    mem.write(4, 9, e(4, PTE_P | PTE_US)); // the L1 maps itself read-only
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.pin(4, 1).unwrap();
    assert_eq!(pt.frames.get(4).unwrap().refs, 2);
    assert_eq!(pt.frames.give_back(4, DOM), Ok(GiveBack::Deferred));
    pt.unpin(4).unwrap();
    assert_eq!(ft.take_freed(), Some((4, DOM)));
    assert_eq!(ft.take_freed(), None);
}

/// A tiny deterministic PRNG for the property tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Recomputes every frame's expected counts from the pins and the
/// entries of validated tables, and checks the frame table agrees and
/// that no page table is mapped writable. (The random tests only write
/// entries 0..4, so only the first 8 of each table are scanned.)
fn check_invariants(ft: &FrameTable<Vec<FrameSlot>>, mem: &Mem) {
    let mut refs = vec![0u32; ft.len()];
    let mut types = vec![0u32; ft.len()];
    for mfn in 0..ft.len() as u64 {
        let p = ft.get(mfn).unwrap();
        if p.pinned {
            refs[mfn as usize] += 1;
            types[mfn as usize] += 1;
        }
        let Some(level) = type_level(p.ty) else {
            continue;
        };
        if p.type_count == 0 {
            continue;
        }
        for index in 0..8 {
            let entry = mem.read(mfn, index);
            if entry & PTE_P == 0 {
                continue;
            }
            let t = entry_mfn(entry) as usize;
            if t as u64 == mfn && level > 1 {
                continue; // a self-referencing linear entry holds nothing
            }
            refs[t] += 1;
            if level > 1 || entry & PTE_RW != 0 {
                types[t] += 1;
            }
            if level == 1 && entry & PTE_RW != 0 {
                assert!(
                    !ft.get(t as u64).unwrap().ty.is_page_table(),
                    "page table {t} mapped writable"
                );
            }
        }
    }
    for mfn in 0..ft.len() {
        let p = ft.get(mfn as u64).unwrap();
        assert_eq!(p.refs, refs[mfn], "refs of frame {mfn}");
        assert_eq!(p.type_count, types[mfn], "type count of frame {mfn}");
        // An owned frame is held by its allocation or a reference; a
        // freed one (waiting to be collected) by nothing, so no entry
        // of a validated table (no translation) names it.
        assert!(
            p.owner.is_none() || p.allocated || p.refs > 0,
            "frame {mfn} owned by nothing: {p:?}"
        );
        if p.freed_from.is_some() {
            assert!(p.owner.is_none() && p.refs == 0, "freed frame {mfn}: {p:?}");
        }
    }
}

#[test]
fn random_operations_never_break_an_invariant() {
    for seed in 1..=120u64 {
        let (ft, mut mem) = setup();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut log: Vec<String> = Vec::new();
        // Random initial contents, so pins validate arbitrary trees.
        for _ in 0..40 {
            let flags = [PTE_P, PTE_P | PTE_RW, 0, PTE_P | PTE_PSE, PTE_P | (1 << 60)]
                [rng.below(5) as usize];
            mem.write(
                rng.below(N),
                rng.below(4) as usize,
                e(rng.below(N + 2), flags | PTE_US),
            );
        }
        for _ in 0..200 {
            let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
            let mfn = rng.below(N + 2);
            match rng.below(6) {
                0 => {
                    let level = 1 + rng.below(4) as u8;
                    let r = pt.pin(mfn, level);
                    log.push(format!("pin {mfn} L{level} -> {r:?}"));
                }
                1 => {
                    let r = pt.unpin(mfn);
                    log.push(format!("unpin {mfn} -> {r:?}"));
                }
                2 => {
                    let r = pt.frames.give_back(mfn, DOM);
                    log.push(format!("give back {mfn} -> {r:?}"));
                }
                3 => {
                    // The allocator hands freed frames out again,
                    // zeroed (here: to the same domain).
                    while let Some((m, owner)) = pt.frames.take_freed() {
                        assert_eq!(owner, DOM, "frame {m} freed from another domain");
                        if let Some(t) = pt.mem.0.get_mut(m as usize) {
                            *t = [0; 512];
                        }
                        pt.frames.assign_free(m, DOM, m).unwrap();
                        log.push(format!("reuse {m}"));
                    }
                }
                _ => {
                    let flags = [PTE_P, PTE_P | PTE_RW, 0, PTE_P | PTE_PSE][rng.below(4) as usize];
                    let new = e(rng.below(N + 2), flags | PTE_US);
                    let index = rng.below(4) as usize;
                    let before = pt.mem.read(mfn, index);
                    let r = pt.update_entry(mfn, index, new);
                    log.push(format!("update {mfn}[{index}] = {new:#x} -> {r:?}"));
                    if r.is_err() {
                        assert_eq!(
                            pt.mem.read(mfn, index),
                            before,
                            "a refused update changed the entry"
                        );
                    }
                }
            }
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                check_invariants(&ft, &mem)
            }));
            if ok.is_err() {
                for l in &log {
                    eprintln!("{l}");
                }
                for m in 0..ft.len() as u64 {
                    let p = ft.get(m).unwrap();
                    if p.type_count > 0 || p.refs > 0 {
                        let es: Vec<String> =
                            (0..4).map(|i| format!("{:#x}", mem.read(m, i))).collect();
                        eprintln!("frame {m}: {p:?} entries {es:?}");
                    }
                }
                panic!("invariant broken with seed {seed}");
            }
        }
    }
}

/// RAM is frames 0..N+4 (the test frame table); frames 0x100.. are a ROM
/// hole, 0x200 is an MMIO page hv keeps.
const IO_E820: &[(u64, u64, u32)] = &[(0, (N + 4) * 4096, 1), (0x100 * 4096, 0x10 * 4096, 2)];
const IO_DENIED: &[(u64, u64)] = &[(0x200, 0x200)];
const IO_READ_ONLY: &[(u64, u64)] = &[(0x300, 0x300)];

const IO: IoMemory<'static> = IoMemory {
    e820: IO_E820,
    denied: IO_DENIED,
    read_only: IO_READ_ONLY,
    end_mfn: 1 << 28,
};

fn io_memory() -> IoMemory<'static> {
    IO
}

#[test]
fn io_memory_classifies_frames_as_xen_does() {
    let io = io_memory();
    assert_eq!(io.classify(0), FrameKind::Ram);
    assert_eq!(io.classify(N + 3), FrameKind::Ram);
    assert_eq!(io.classify(N + 4), FrameKind::Io, "a hole");
    assert_eq!(io.classify(0x100), FrameKind::Io, "reserved");
    assert_eq!(io.classify(0x200), FrameKind::Denied);
    assert_eq!(io.classify(0x300), FrameKind::IoReadOnly);
    assert_eq!(io.classify((1 << 28) - 1), FrameKind::Io);
    assert_eq!(io.classify(1 << 28), FrameKind::Denied, "past MAXPHYADDR");
    assert_eq!(io.classify(u64::MAX), FrameKind::Denied);
    // A page only partly RAM is I/O memory.
    let partial = IoMemory {
        e820: &[(0, 0x9fc00, 1)],
        denied: &[],
        read_only: &[],
        end_mfn: 1 << 28,
    };
    assert_eq!(partial.classify(0x9e), FrameKind::Ram);
    assert_eq!(partial.classify(0x9f), FrameKind::Io);
}

#[test]
fn io_memory_is_mapped_without_references_by_the_hardware_domain_only() {
    let (ft, mut mem) = setup();
    let before: Vec<PageInfo> = (0..N + 4).map(|m| ft.get(m).unwrap()).collect();
    for (io_caps, want) in [(true, Ok(())), (false, Err(Errno::EPERM))] {
        let mut pt = PageTables::new(&ft, &mut mem, DOM, io_caps);
        pt.io_memory = || Some(&IO);
        // ROM read-only and MMIO writable (uncached where the domain may
        // choose caching), as dom0 maps them.
        let rom = e(0x100, PTE_P | PTE_US);
        let uncached = if io_caps { PTE_PCD } else { 0 };
        let mmio = e(N + 5, PTE_P | PTE_RW | PTE_US | uncached);
        for entry in [rom, mmio] {
            let got = pt.get_entry(1, 4, entry, DOM).map_err(PtError::errno);
            assert_eq!(got, want, "io_caps {io_caps}, entry {entry:#x}");
            if got.is_ok() {
                pt.put_entry(1, 4, entry);
            }
        }
        // The frames hv keeps: refused even to the hardware domain.
        let apic = e(0x200, PTE_P | PTE_RW | PTE_US | uncached);
        assert_eq!(
            pt.get_entry(1, 4, apic, DOM).map_err(PtError::errno),
            Err(Errno::EPERM)
        );
        // RAM still goes by ownership: another domain's frame is busy.
        let other = e(N, PTE_P | PTE_US);
        assert_eq!(
            pt.get_entry(1, 4, other, DOM).map_err(PtError::errno),
            Err(Errno::EBUSY)
        );
    }
    let after: Vec<PageInfo> = (0..N + 4).map(|m| ft.get(m).unwrap()).collect();
    assert_eq!(before, after, "no reference taken or dropped");
}

#[test]
fn read_only_io_memory_loses_rw_as_xen_forces_it() {
    let (ft, mut mem) = setup();
    // An L1 (frame 4) in use, then an update mapping the read-only page RW.
    let mut pt = PageTables::new(&ft, &mut mem, DOM, true);
    pt.io_memory = || Some(&IO);
    pt.get_type(4, PageType::L1).unwrap();
    let rw = e(0x300, PTE_P | PTE_RW | PTE_US | PTE_PCD);
    assert_eq!(pt.update_entry(4, 3, rw), Ok(0));
    assert_eq!(mem.read(4, 3) & (PTE_RW | PTE_P), PTE_P, "stored read-only");
    // Ordinary I/O memory keeps RW.
    let mut pt = PageTables::new(&ft, &mut mem, DOM, true);
    pt.io_memory = || Some(&IO);
    assert_eq!(
        pt.update_entry(4, 5, e(0x100, PTE_P | PTE_RW | PTE_US)),
        Ok(0)
    );
    assert_ne!(mem.read(4, 5) & PTE_RW, 0);
    // A table validated with such an entry stores it read-only too.
    mem.write(7, 0, e(0x300, PTE_P | PTE_RW | PTE_US));
    let mut pt = PageTables::new(&ft, &mut mem, DOM, true);
    pt.io_memory = || Some(&IO);
    pt.get_type(7, PageType::L1).unwrap();
    assert_eq!(mem.read(7, 0) & (PTE_RW | PTE_P), PTE_P);
}

#[test]
fn a_descriptor_type_taken_through_the_engine_is_usable_again() {
    let (ft, mut mem) = setup();
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.get_type(7, PageType::SegDesc).unwrap();
    // A second taker does not wait for a validation nobody does.
    pt.get_type(7, PageType::SegDesc).unwrap();
    assert_eq!(ft.get(7).unwrap().type_count, 2);
}

#[test]
fn a_grant_mapping_of_another_domains_frame_holds_what_the_caller_took() {
    let (ft, mut mem) = setup();
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.pin(4, 1).unwrap();
    // The grant code's references on OTHER's frame N, for a writable map.
    ft.get_page_and_type(N, OTHER, PageType::Writable).unwrap();
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    assert_eq!(
        pt.install_granted(4, 3, e(N, PTE_P | PTE_RW | PTE_US)),
        Ok(0)
    );
    assert_eq!(ft.get(N).unwrap().refs, 1);
    assert_eq!(ft.get(N).unwrap().ty, PageType::Writable);
    // Only an entry mapping that frame is taken out.
    assert_eq!(
        pt.remove_granted(4, 3, 5, true),
        Err(PtError::NotMapping { mfn: 5 })
    );
    assert_eq!(
        pt.remove_granted(4, 2, N, true),
        Err(PtError::NotMapping { mfn: N })
    );
    assert_eq!(
        pt.remove_granted(4, 3, N, false),
        Err(PtError::NotMapping { mfn: N }),
        "a writable mapping is not the read-only one asked for"
    );
    assert_eq!(ft.get(N).unwrap().refs, 1);
    assert!(pt.remove_granted(4, 3, N, true).is_ok());
    let p = ft.get(N).unwrap();
    assert_eq!((p.refs, p.type_count), (0, 0));
    // Overwritten by an ordinary update instead: the references go too.
    ft.get_page(N, OTHER).unwrap();
    assert_eq!(pt.install_granted(4, 3, e(N, PTE_P | PTE_US)), Ok(0));
    assert!(pt.update_l1_entry(4, 3, 0).is_ok());
    assert_eq!(ft.get(N).unwrap().refs, 0);
    // Not into a table that is not an L1, nor a not-present entry.
    ft.get_page(N, OTHER).unwrap();
    assert_eq!(
        pt.install_granted(5, 0, e(N, PTE_P)),
        Err(PtError::NotPageTable { mfn: 5 })
    );
    assert!(pt.install_granted(4, 0, e(N, 0)).is_err());
    assert_eq!(
        ft.get(N).unwrap().refs,
        1,
        "the caller still holds its reference"
    );
    ft.put_page(N).unwrap();
}

#[test]
fn a_grant_mapping_replaced_by_a_stolen_entry_keeps_the_stolen_entrys_references() {
    let (ft, mut mem) = setup();
    // L1 4 maps DOM's frame 9 writable at entry 7; frame 10 read-only at 8.
    mem.write(4, 7, e(9, PTE_P | PTE_RW | PTE_US));
    mem.write(4, 8, e(10, PTE_P | PTE_US));
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.pin(4, 1).unwrap();
    ft.get_page_and_type(N, OTHER, PageType::Writable).unwrap();
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    let granted = e(N, PTE_P | PTE_RW | PTE_US);
    assert_eq!(pt.install_granted(4, 3, granted), Ok(0));
    let stolen = pt.steal_l1_entry(4, 7).unwrap();
    assert_eq!((entry_mfn(stolen), stolen & PTE_RW), (9, PTE_RW));
    // A replace naming another frame changes nothing, the stolen entry
    // stays the caller's.
    assert_eq!(
        pt.replace_granted(4, 3, 5, true, stolen),
        Err(PtError::NotMapping { mfn: 5 })
    );
    assert!(pt.replace_granted(4, 3, N, true, stolen).is_ok());
    let p = ft.get(N).unwrap();
    assert_eq!(
        (p.refs, p.type_count),
        (0, 0),
        "the grant's references went"
    );
    let p = ft.get(9).unwrap();
    assert_eq!((p.refs, p.type_count), (1, 1), "the moved entry's stayed");
    assert_eq!((mem.read(4, 3), mem.read(4, 7)), (stolen, 0));
    // A stolen entry nobody takes is dropped with its references.
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    let ro = pt.steal_l1_entry(4, 8).unwrap();
    assert_eq!(ft.get(10).unwrap().refs, 1);
    pt.drop_l1_entry(ro);
    assert_eq!(ft.get(10).unwrap().refs, 0);
    assert_eq!(mem.read(4, 8), 0);
    // Only from an L1.
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    assert_eq!(
        pt.steal_l1_entry(5, 0),
        Err(PtError::NotPageTable { mfn: 5 })
    );
}

#[test]
fn a_foreign_owner_applies_to_the_entry_updated_only() {
    let (ft, mut mem) = setup();
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.pin(4, 1).unwrap();
    // OTHER's frame N, mapped by DOM's L1 4 with pg_owner OTHER.
    let mut pt = PageTables::new(&ft, &mut mem, DOM, false);
    pt.pg_owner = OTHER;
    assert!(pt.update_l1_entry(4, 0, e(N, PTE_P | PTE_RW)).is_ok());
    assert_eq!(ft.get(N).unwrap().refs, 1);
    assert_eq!(ft.get(N).unwrap().ty, PageType::Writable);
    // DOM's own frame is not OTHER's.
    assert_eq!(
        pt.update_l1_entry(4, 1, e(5, PTE_P))
            .map_err(PtError::errno),
        Err(Errno::EBUSY)
    );
    // An L1 validated on the way (hooked into L2 3) holds DOM's frames
    // only: one naming OTHER's frame fails validation.
    pt.pin(3, 2).unwrap();
    mem_fill_l1(&mut pt, 6, N);
    assert!(pt.update_entry(3, 0, e(6, PTE_P | PTE_RW)).is_err());
    assert_eq!(
        ft.get(N).unwrap().refs,
        1,
        "no reference from the failed validation"
    );
    // The same L1 naming DOM's frame validates.
    mem_fill_l1(&mut pt, 6, 7);
    assert!(pt.update_entry(3, 0, e(6, PTE_P | PTE_RW)).is_ok());
    // Taken out again by an ordinary update: the reference goes.
    pt.pg_owner = DOM;
    assert!(pt.update_l1_entry(4, 0, 0).is_ok());
    assert_eq!(ft.get(N).unwrap().refs, 0);
}

/// Writes entry 0 of frame `l1` (not yet a table) to map `target`.
fn mem_fill_l1<S: AsRef<[FrameSlot]>>(pt: &mut PageTables<'_, S, Mem>, l1: u64, target: u64) {
    pt.mem.write(l1, 0, e(target, PTE_P));
}

#[test]
fn set_bits_walks_both_ways() {
    let mut words = [0u64; 8];
    for i in [0usize, 5, 63, 64, 200, 511] {
        words[i / 64] |= 1 << (i % 64);
    }
    let fwd: alloc::vec::Vec<usize> = super::set_bits(&words).collect();
    assert_eq!(fwd, [0, 5, 63, 64, 200, 511]);
    let back: alloc::vec::Vec<usize> = super::set_bits(&words).rev().collect();
    assert_eq!(back, [511, 200, 64, 63, 5, 0]);
    assert_eq!(super::set_bits(&[0; 8]).next(), None);
}
