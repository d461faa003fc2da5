use super::*;
use crate::pt::PTE_G;
use std::collections::HashMap;

/// Physical memory for the walks: entries by physical address (absent ones
/// read as zero) up to `LIMIT`, beyond which the reader fails, as hv's
/// direct map does past its end. Every read is logged.
#[derive(Default)]
struct Mem {
    words: HashMap<u64, u64>,
    reads: Vec<u64>,
}

const LIMIT: u64 = 1 << 32;
const FULL: u64 = GUEST_WRITE;

impl Mem {
    fn set(&mut self, table_mfn: u64, index: u64, entry: u64) {
        self.words.insert(table_mfn * 4096 + index * 8, entry);
    }

    fn reader(&mut self) -> impl FnMut(u64) -> Option<u64> + '_ {
        |pa| {
            self.reads.push(pa);
            (pa < LIMIT).then(|| self.words.get(&pa).copied().unwrap_or(0))
        }
    }

    fn translate(&mut self, va: u64, need: u64) -> Result<Leaf, WalkError> {
        self.reads.clear();
        translate(ROOT, va, need, self.reader())
    }

    fn walk_upper(&mut self, va: u64, need: u64) -> Result<Upper, WalkError> {
        self.reads.clear();
        walk_upper(ROOT, va, need, self.reader())
    }
}

/// L4 in frame 1, L3 in 2, L2 in 3, L1 in 4; the data page is frame 0x100.
const ROOT: u64 = 1 << 12;
const DATA: u64 = 0x100;
const VA: u64 = 0x0000_1234_5678_9abc;

fn e(mfn: u64, flags: u64) -> u64 {
    (mfn << 12) | flags
}

fn idx(level: u8, va: u64) -> u64 {
    super::index(level, va)
}

/// The tables mapping `va` to `DATA` with `flags[n]` in the entry of level
/// `4 - n`.
fn chain(va: u64, flags: [u64; 4]) -> Mem {
    let mut m = Mem::default();
    m.set(1, idx(4, va), e(2, flags[0]));
    m.set(2, idx(3, va), e(3, flags[1]));
    m.set(3, idx(2, va), e(4, flags[2]));
    m.set(4, idx(1, va), e(DATA, flags[3]));
    m
}

/// `FULL` at every level but `level`, which has `flags`.
fn chain_with(va: u64, level: u8, flags: u64) -> Mem {
    let mut all = [FULL; 4];
    all[usize::from(4 - level)] = flags;
    chain(va, all)
}

/// The addresses a whole walk of `va` reads, L4 first.
fn path(va: u64) -> Vec<u64> {
    vec![
        ROOT + idx(4, va) * 8,
        (2 << 12) + idx(3, va) * 8,
        (3 << 12) + idx(2, va) * 8,
        (4 << 12) + idx(1, va) * 8,
    ]
}

#[test]
fn a_4k_page_translates_with_the_offset_reading_each_entry_once() {
    let mut m = chain(VA, [FULL; 4]);
    for need in [PRESENT, GUEST_READ, GUEST_WRITE] {
        assert_eq!(
            m.translate(VA, need),
            Ok(Leaf {
                level: 1,
                entry: e(DATA, FULL),
                paddr: (DATA << 12) | 0xabc,
                rights: FULL,
            })
        );
        assert_eq!(m.reads, path(VA));
    }
}

#[test]
fn every_level_must_be_present() {
    for level in 1..=4u8 {
        let mut m = chain_with(VA, level, PTE_RW | PTE_US);
        for need in [PRESENT, GUEST_READ, GUEST_WRITE] {
            let r = m.translate(VA, need);
            assert!(
                matches!(r, Err(WalkError::Denied { level: l, .. }) if l == level),
                "level {level}: {r:?}"
            );
            // Nothing below the refusing level is read.
            assert_eq!(m.reads, path(VA)[..usize::from(5 - level)]);
        }
    }
}

#[test]
fn guest_accesses_need_the_user_bit_at_every_level() {
    for level in 1..=4u8 {
        let mut m = chain_with(VA, level, PTE_P | PTE_RW);
        for need in [GUEST_READ, GUEST_WRITE] {
            assert_eq!(
                m.translate(VA, need),
                Err(WalkError::Denied {
                    level,
                    entry: if level == 1 {
                        e(DATA, PTE_P | PTE_RW)
                    } else {
                        e(6 - u64::from(level), PTE_P | PTE_RW)
                    },
                }),
                "level {level}"
            );
        }
        let leaf = m.translate(VA, PRESENT).unwrap();
        assert_eq!(leaf.rights, PTE_P | PTE_RW, "level {level}");
    }
}

#[test]
fn writes_need_the_writable_bit_at_every_level() {
    for level in 1..=4u8 {
        let mut m = chain_with(VA, level, PTE_P | PTE_US);
        assert!(
            matches!(m.translate(VA, GUEST_WRITE), Err(WalkError::Denied { level: l, .. }) if l == level),
            "level {level}"
        );
        let leaf = m.translate(VA, GUEST_READ).unwrap();
        assert_eq!(leaf.paddr, (DATA << 12) | 0xabc);
        assert_eq!(leaf.rights, PTE_P | PTE_US, "level {level}");
    }
}

#[test]
fn nx_at_any_level_shows_in_the_rights() {
    for level in 1..=4u8 {
        let mut m = chain_with(VA, level, FULL | PTE_NX);
        let leaf = m.translate(VA, GUEST_WRITE).unwrap();
        assert_eq!(leaf.rights, FULL | PTE_NX, "level {level}");
        assert_eq!(leaf.paddr, (DATA << 12) | 0xabc);
    }
}

#[test]
fn a_1g_page_at_l3_ends_the_walk() {
    let mut m = Mem::default();
    // The PAT bit of a large page (bit 12) is not part of its address.
    let l3e = 0x4_8000_0000 | (1 << 12) | PTE_PSE | FULL;
    m.set(1, idx(4, VA), e(2, FULL));
    m.set(2, idx(3, VA), l3e);
    let leaf = Leaf {
        level: 3,
        entry: l3e,
        paddr: 0x4_8000_0000 | (VA & 0x3fff_ffff),
        rights: FULL,
    };
    assert_eq!(m.translate(VA, GUEST_WRITE), Ok(leaf));
    assert_eq!(m.reads, path(VA)[..2]);
    assert_eq!(m.walk_upper(VA, PRESENT), Ok(Upper::Large(leaf)));
    assert_eq!(m.reads, path(VA)[..2]);
}

#[test]
fn a_2m_page_at_l2_ends_the_walk() {
    let mut m = chain(VA, [FULL; 4]);
    let l2e = 0x1_2340_0000 | (1 << 12) | PTE_PSE | GUEST_READ | PTE_NX;
    m.set(3, idx(2, VA), l2e);
    let leaf = Leaf {
        level: 2,
        entry: l2e,
        paddr: 0x1_2340_0000 | (VA & 0x1f_ffff),
        rights: GUEST_READ | PTE_NX,
    };
    assert_eq!(m.translate(VA, GUEST_READ), Ok(leaf));
    assert_eq!(m.reads, path(VA)[..3]);
    assert_eq!(m.walk_upper(VA, PRESENT), Ok(Upper::Large(leaf)));
    // A large page needs the rights as any level does.
    assert_eq!(
        m.translate(VA, GUEST_WRITE),
        Err(WalkError::Denied {
            level: 2,
            entry: l2e
        })
    );
}

#[test]
fn pse_in_l4_and_pat_in_l1_do_not_end_the_walk() {
    let mut m = chain(VA, [FULL | PTE_PSE, FULL, FULL, FULL | PTE_PSE]);
    let leaf = m.translate(VA, GUEST_READ).unwrap();
    assert_eq!((leaf.level, leaf.paddr), (1, (DATA << 12) | 0xabc));
    assert_eq!(m.reads, path(VA));
}

#[test]
fn walk_upper_finds_the_l1_entry_without_reading_it() {
    let mut m = chain_with(VA, 3, PTE_P);
    assert_eq!(
        m.walk_upper(VA, PRESENT),
        Ok(Upper::L1 {
            table: 4 << 12,
            index: 0x189,
            rights: PTE_P,
        })
    );
    assert_eq!(idx(1, VA), 0x189);
    assert_eq!(m.reads, path(VA)[..3]);
    // Present is all it asks for; the L1 entry itself may be anything.
    m.set(4, idx(1, VA), 0);
    assert!(matches!(m.walk_upper(VA, PRESENT), Ok(Upper::L1 { .. })));
    assert!(matches!(
        m.walk_upper(VA, GUEST_READ),
        Err(WalkError::Denied { level: 3, .. })
    ));
}

#[test]
fn missing_levels_are_denied_where_they_are_missing() {
    // An empty L4.
    let mut m = Mem::default();
    assert_eq!(
        m.translate(VA, PRESENT),
        Err(WalkError::Denied { level: 4, entry: 0 })
    );
    assert_eq!(m.reads, path(VA)[..1]);
    // An L3 that maps nothing there.
    m.set(1, idx(4, VA), e(2, FULL));
    assert_eq!(
        m.walk_upper(VA, PRESENT),
        Err(WalkError::Denied { level: 3, entry: 0 })
    );
    // An address next to a mapped one shares the upper levels only.
    let mut m = chain(VA, [FULL; 4]);
    assert_eq!(
        m.translate(VA + 0x1000, PRESENT),
        Err(WalkError::Denied { level: 1, entry: 0 })
    );
    assert_eq!(
        m.translate(VA ^ (1 << 30), PRESENT),
        Err(WalkError::Denied { level: 3, entry: 0 })
    );
}

#[test]
fn an_unreadable_entry_stops_the_walk_at_its_level() {
    for level in 1..=4u8 {
        // The table of `level` lies beyond readable memory.
        let mut m = chain(VA, [FULL; 4]);
        let far = LIMIT >> 12;
        let root = match level {
            4 => far << 12,
            3 => {
                m.set(1, idx(4, VA), e(far, FULL));
                ROOT
            }
            2 => {
                m.set(2, idx(3, VA), e(far, FULL));
                ROOT
            }
            _ => {
                m.set(3, idx(2, VA), e(far, FULL));
                ROOT
            }
        };
        assert_eq!(
            translate(root, VA, PRESENT, m.reader()),
            Err(WalkError::Unreadable { level }),
            "level {level}"
        );
    }
}

#[test]
fn addresses_outside_guest_space_are_refused_unread() {
    let hv_start = guest_abi::arch::HYPERVISOR_VIRT_START;
    for va in [
        1 << 47,
        0x0000_ffff_ffff_f000,
        0x8000_0000_0000_0000,
        0xffff_7fff_ffff_ffff,
        hv_start,
        0xffff_8300_0000_0000, // hv's direct map
        HV_END - 1,
    ] {
        let mut m = chain(va, [FULL; 4]);
        assert_eq!(
            m.translate(va, PRESENT),
            Err(WalkError::NotGuestAddress),
            "{va:#x}"
        );
        assert_eq!(
            m.walk_upper(va, PRESENT),
            Err(WalkError::NotGuestAddress),
            "{va:#x}"
        );
        assert!(m.reads.is_empty());
        assert!(!guest_va_ok(va));
    }
}

#[test]
fn both_halves_of_guest_space_are_walked() {
    for va in [0, (1 << 47) - 1, HV_END, HV_END + 0x1234, u64::MAX] {
        assert!(guest_va_ok(va));
        let mut m = chain(va, [FULL; 4]);
        let leaf = m.translate(va, GUEST_WRITE).unwrap();
        assert_eq!(leaf.paddr, (DATA << 12) | (va & 0xfff), "{va:#x}");
        assert_eq!(m.reads, path(va));
    }
    assert_eq!(idx(4, HV_END), 272);
    assert_eq!(idx(4, u64::MAX), 511);
}

#[test]
fn flag_bits_of_cr3_and_high_bits_of_entries_are_not_addresses() {
    let high = PTE_NX | 0x7ff0_0000_0000_0000 | 0xe00 | PTE_G;
    let mut m = chain(VA, [FULL | high; 4]);
    // PWT, PCD and a PCID in the low bits, the no-flush bit on top.
    let cr3 = ROOT | 0x18 | 0x5 | (1 << 63);
    let leaf = translate(cr3, VA, GUEST_WRITE, m.reader()).unwrap();
    assert_eq!(leaf.paddr, (DATA << 12) | 0xabc);
    assert_eq!(leaf.rights, FULL | PTE_NX);
    assert_eq!(m.reads, path(VA));
}
