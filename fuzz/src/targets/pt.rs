//! `pt`: the page-table rules engine (`hv::pt`) driven by a sequence of
//! operations on a small machine: initial table contents, then pins,
//! unpins, entry updates and bare type references, as the MMU hypercalls
//! make them, and frames given back (`decrease_reservation`), freed with
//! their last reference and handed out again. After every operation the harness recounts, from the pins,
//! its own references and the entries of every validated table, what each
//! frame's counts must be, and checks the engine's invariants: no page
//! table is mapped writable, no L2-L4 entry names anything but a table one
//! level down (or a read-only linear table), Xen's linear sign rule holds,
//! an owned frame has its allocation or some reference and a freed one
//! none, and a refused operation changed no count and no entry (but for the
//! bits Xen's adjustment adds to the entries of a child table that
//! validated before its parent failed: Xen leaves those too).

use crate::input::Input;
use hv::page_info::{FrameSlot, FrameTable, PageInfo, PageType};
use hv::pt::{
    type_level, PageTables, TableMemory, HV_L4_END, HV_L4_FIRST, PTE_A, PTE_ADDR, PTE_D, PTE_G,
    PTE_GUEST_KERNEL, PTE_NX, PTE_P, PTE_PCD, PTE_PSE, PTE_PWT, PTE_RW, PTE_US,
};

const DOM: u16 = 1;
const OTHER: u16 = 2;
/// Frames 0..OWN are the domain's, OWN is another domain's, OWN + 1 is
/// free; the table ends at FRAMES, and entries may name frames beyond.
const OWN: u64 = 14;
const FRAMES: u64 = OWN + 2;
const NAMED: u64 = FRAMES + 2;
const MAX_OPS: usize = 96;
const INDICES: [usize; 12] = [0, 1, 2, 3, 4, 5, 255, 256, 271, 272, 510, 511];

#[derive(Clone, PartialEq)]
struct Mem(Vec<[u64; 512]>);

impl TableMemory for Mem {
    fn read(&self, mfn: u64, index: usize) -> u64 {
        usize::try_from(mfn)
            .ok()
            .and_then(|m| self.0.get(m))
            .map_or(0, |t| t[index])
    }
    fn write(&mut self, mfn: u64, index: usize, value: u64) {
        let t = usize::try_from(mfn).ok().and_then(|m| self.0.get_mut(m));
        t.expect("the engine writes only frames it validated")[index] = value;
    }
}

fn level_of(ty: PageType) -> u8 {
    type_level(ty).unwrap_or(0)
}

fn entry(input: &mut Input<'_>) -> u64 {
    let target = u64::from(input.below(u8::try_from(NAMED).unwrap() + 1));
    let target = if target == NAMED {
        PTE_ADDR >> 12
    } else {
        target
    };
    let mut flags = input.pick(&[
        PTE_P,
        PTE_P | PTE_RW,
        PTE_P | PTE_US,
        PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D,
        0,
        PTE_P | PTE_PSE,
        PTE_P | PTE_PCD,
        PTE_P | PTE_PWT | PTE_RW,
        PTE_P | PTE_G,
    ]);
    if input.below(4) == 0 {
        flags |= u64::from(input.u16()) & 0xfff;
    }
    flags |= input.pick(&[0, 0, 0, PTE_NX, 1 << 52, 1 << 60, 0x7ff0 << 48]);
    (target << 12) | flags
}

fn frame(input: &mut Input<'_>) -> u64 {
    u64::from(input.below(u8::try_from(NAMED).unwrap()))
}

/// Every frame's state, less the type of an untyped frame (a type whose
/// count is zero is a leftover the next typing overwrites: a refused
/// typing may leave one).
fn snapshot(ft: &FrameTable<Vec<FrameSlot>>) -> Vec<PageInfo> {
    (0..FRAMES)
        .map(|m| {
            let mut p = ft.get(m).unwrap();
            if p.type_count == 0 {
                p.ty = PageType::None;
            }
            p
        })
        .collect()
}

pub fn pt(data: &[u8]) {
    let mut input = Input::new(data);
    let ft = FrameTable::new(FrameSlot::unowned(usize::try_from(FRAMES).unwrap()));
    for mfn in 0..OWN {
        // SAFETY: a host frame table over no real memory: nothing can be
        // written through these frames but the harness's `Mem`.
        unsafe { ft.assign(mfn, DOM, mfn) }.unwrap();
    }
    // SAFETY: as above.
    unsafe { ft.assign(OWN, OTHER, 0) }.unwrap();
    let mut mem = Mem(vec![[0; 512]; usize::try_from(NAMED).unwrap()]);
    for _ in 0..input.below(48) {
        let (m, i) = (
            usize::from(input.below(u8::try_from(OWN).unwrap())),
            input.pick(&INDICES),
        );
        mem.0[m][i] = entry(&mut input);
    }
    let io_caps = input.below(4) == 0;
    // Type references the harness holds (as a CR3 or a writable use would).
    let mut held: Vec<u64> = Vec::new();
    let mut ops = 0;
    while !input.is_empty() && ops < MAX_OPS {
        ops += 1;
        let (ft_before, mem_before) = (snapshot(&ft), mem.clone());
        let mfn = frame(&mut input);
        let op = input.below(10);
        if op == 5 {
            // The allocator hands freed frames out again, zeroed.
            let mut freed = ft.take_all_freed();
            while let Some((m, owner)) = ft.take_freed_frame(&mut freed) {
                assert_eq!(owner, DOM, "frame {m} freed from another domain");
                mem.0[usize::try_from(m).unwrap()] = [0; 512];
                // SAFETY: as for the frames assigned above.
                unsafe { ft.assign(m, DOM, m) }.unwrap();
            }
            check(&ft, &mem, &held);
            continue;
        }
        let mut pt = PageTables::new(&ft, &mut mem, DOM, io_caps);
        let refused = match op {
            0 => pt.pin(mfn, 1 + input.below(4)).is_err(),
            1 => pt.unpin(mfn).is_err(),
            2 => {
                let ty = input.pick(&[
                    PageType::L1,
                    PageType::L2,
                    PageType::L3,
                    PageType::L4,
                    PageType::Writable,
                    PageType::SegDesc,
                ]);
                let r = pt.get_type(mfn, ty);
                if r.is_ok() {
                    held.push(mfn);
                }
                r.is_err()
            }
            3 => {
                if let Some(m) = held.pop() {
                    pt.put_type(m)
                        .expect("dropping a reference the harness holds");
                }
                false
            }
            4 => pt.frames.give_back(mfn, DOM).is_err(),
            _ => {
                let index = if input.bool() {
                    input.pick(&INDICES)
                } else {
                    usize::from(input.u16() & 0x3ff)
                };
                let new = entry(&mut input);
                pt.update_entry(mfn, index, new).is_err()
            }
        };
        if refused {
            let now = snapshot(&ft);
            for (m, (a, b)) in ft_before.iter().zip(&now).enumerate() {
                assert_eq!(a, b, "a refused operation changed frame {m}");
            }
            // Entries may only have gained the bits Xen's adjustment adds:
            // a parent's validation that fails after a child table
            // validated leaves the child's entries adjusted (as Xen's
            // do), which changes no right and no reference.
            let adjust = PTE_US | PTE_A | PTE_G | PTE_GUEST_KERNEL;
            for (m, (was, now)) in mem_before.0.iter().zip(&mem.0).enumerate() {
                for (i, (&a, &b)) in was.iter().zip(now).enumerate() {
                    let only_adjusted = a & PTE_P != 0 && b & !a & !adjust == 0 && a & !b == 0;
                    assert!(
                        a == b || only_adjusted,
                        "a refused operation changed {m}[{i}]: {a:#x} -> {b:#x}"
                    );
                }
            }
        }
        check(&ft, &mem, &held);
    }
    // Letting go of everything leaves every frame unreferenced.
    while let Some(m) = held.pop() {
        PageTables::new(&ft, &mut mem, DOM, io_caps)
            .put_type(m)
            .unwrap();
    }
    for m in 0..FRAMES {
        if ft.get(m).unwrap().pinned {
            PageTables::new(&ft, &mut mem, DOM, io_caps)
                .unpin(m)
                .unwrap();
        }
    }
    check(&ft, &mem, &held);
    for m in 0..FRAMES {
        let p = ft.get(m).unwrap();
        assert_eq!(
            (p.refs, p.type_count, p.linear),
            (0, 0, 0),
            "frame {m} leaked: {p:?}"
        );
    }
}

fn is_guest_slot(level: u8, index: usize) -> bool {
    level != 4 || !(HV_L4_FIRST..HV_L4_END).contains(&index)
}

/// Recounts every reference and checks the frame table agrees.
fn check(ft: &FrameTable<Vec<FrameSlot>>, mem: &Mem, held: &[u64]) {
    let n = usize::try_from(FRAMES).unwrap();
    let (mut refs, mut types) = (vec![0u32; n], vec![0u32; n]);
    let (mut holds, mut pointed) = (vec![0i32; n], vec![0i32; n]);
    let idx = |m: u64| usize::try_from(m).unwrap();
    for &m in held {
        refs[idx(m)] += 1;
        types[idx(m)] += 1;
    }
    for mfn in 0..FRAMES {
        let p = ft.get(mfn).unwrap();
        if p.pinned {
            assert!(
                p.ty.is_page_table() && p.type_count > 0,
                "frame {mfn}: {p:?}"
            );
            refs[idx(mfn)] += 1;
            types[idx(mfn)] += 1;
        }
        let level = level_of(p.ty);
        if level == 0 || p.type_count == 0 {
            continue;
        }
        assert_eq!(p.owner, Some(DOM), "a table of another domain: {mfn}");
        for index in (0..512).filter(|&i| is_guest_slot(level, i)) {
            let e = mem.read(mfn, index);
            if e & PTE_P == 0 {
                continue;
            }
            let t = (e & PTE_ADDR) >> 12;
            let at = || format!("L{level} {mfn}[{index}] = {e:#x}");
            assert!(t < FRAMES, "{}: names a frame beyond memory", at());
            let target = ft.get(t).unwrap();
            assert_eq!(target.owner, Some(DOM), "{}: names a foreign frame", at());
            if level == 1 {
                refs[idx(t)] += 1;
                if e & PTE_RW != 0 {
                    types[idx(t)] += 1;
                    assert_eq!(target.ty, PageType::Writable, "{}: {target:?}", at());
                }
                continue;
            }
            assert_eq!(e & (PTE_PSE | PTE_G | PTE_PCD | PTE_PWT), 0, "{}", at());
            if t == mfn {
                assert_eq!(e & PTE_RW, 0, "{}: writable self-map", at());
                continue;
            }
            refs[idx(t)] += 1;
            types[idx(t)] += 1;
            let tl = level_of(target.ty);
            if tl == level {
                assert_eq!(e & PTE_RW, 0, "{}: writable linear entry", at());
                holds[idx(mfn)] += 1;
                pointed[idx(t)] += 1;
            } else {
                assert_eq!(tl + 1, level, "{}: names a {:?}", at(), target.ty);
            }
        }
    }
    for m in 0..n {
        let p = ft.get(u64::try_from(m).unwrap()).unwrap();
        assert_eq!(
            (p.refs, p.type_count),
            (refs[m], types[m]),
            "counts of frame {m}: {p:?}"
        );
        assert!(
            p.owner.is_none() || p.allocated || p.refs > 0,
            "frame {m} owned by nothing: {p:?}"
        );
        assert!(
            p.freed_from.is_none() || (p.owner.is_none() && p.refs == 0),
            "freed frame {m}: {p:?}"
        );
        assert_eq!(
            i32::from(p.linear),
            holds[m] - pointed[m],
            "linear count of {m}"
        );
        assert!(
            holds[m] == 0 || pointed[m] == 0,
            "frame {m} both holds and is a linear target"
        );
    }
}
