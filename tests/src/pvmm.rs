//! What the PV memory-management guests share: the bootstrap page tables
//! found from `pt_base`, spare frames of the domain's own memory, a 2 MiB
//! window of fresh virtual address space to map them in, and thin wrappers
//! of `mmu_update`, `mmuext_op`, `update_va_mapping` and `memory_op`.
//!
//! Spare frames are the pfns from `first_p2m_pfn` up to `nr_pages`: Xen's
//! dom0 builder gives the domain those frames but maps none of them, so they
//! are plain untyped pages the test may clear, type and map as it likes.
//!
//! The window: the bootstrap L1s cover `[v_start, v_end)` only, and `v_end`
//! is 4 MiB aligned, so the L2 slot covering `v_end` is empty. [`Window`]
//! clears a spare frame with `MMUEXT_CLEAR_PAGE` (no mapping needed), pins
//! it as an L1, hooks it into that L2 slot with `mmu_update`, and maps the
//! L1 itself read-only at the window's first page so its entries can be
//! read back. Nothing here touches an address it has not first checked is
//! mapped: these guests have no trap handlers, and any fault crashes them.

use guest_abi::hypercall::{
    hypercall2, hypercall3, hypercall4, MEMORY_OP, MMUEXT_OP, MMU_UPDATE, SET_GDT,
    UPDATE_VA_MAPPING,
};
use guest_abi::rt::report::Report;
use guest_abi::xen::{
    MmuUpdate, MmuextOp, StartInfo, DOMID_SELF, MMUEXT_CLEAR_PAGE, MMUEXT_PIN_L1_TABLE,
    MMU_NORMAL_PT_UPDATE, UVMF_INVLPG,
};

use crate::expect;

pub const PAGE: u64 = 4096;
pub const P: u64 = 1 << 0;
pub const RW: u64 = 1 << 1;
pub const US: u64 = 1 << 2;
pub const PWT: u64 = 1 << 3;
pub const PCD: u64 = 1 << 4;
pub const A: u64 = 1 << 5;
pub const D: u64 = 1 << 6;
pub const PSE: u64 = 1 << 7;
pub const G: u64 = 1 << 8;
/// A kernel mapping, writable (accessed and dirty), and read-only.
pub const KRW: u64 = P | RW | US | A | D;
pub const KRO: u64 = P | US | A;
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// The read-only M2P every PV guest sees (L4 slot 256).
pub const M2P: u64 = 0xffff_8000_0000_0000;
/// An MFN no machine has: Xen's `INVALID_MFN` within the 40-bit PFN field.
pub const ALL_ONES_MFN: u64 = 0xff_ffff_ffff;

/// Reads the 8 bytes at `va`.
pub fn read_u64(va: u64) -> u64 {
    // SAFETY: callers pass addresses inside the initial mapping, the M2P, or
    // a window page they mapped (and checked the result of) themselves.
    unsafe { (va as *const u64).read_volatile() }
}

/// Writes the 8 bytes at `va`.
pub fn write_u64(va: u64, v: u64) {
    // SAFETY: callers pass only window pages they mapped writable, holding
    // frames no Rust object lives in.
    unsafe { (va as *mut u64).write_volatile(v) }
}

/// The frame a page-table entry points to.
pub const fn mfn_of(pte: u64) -> u64 {
    (pte & ADDR_MASK) >> 12
}

/// `mmu_update(reqs, count, pdone, dom)` with raw arguments.
pub fn mmu_update_raw(reqs: u64, count: u64, pdone: u64, dom: u64) -> i64 {
    // SAFETY: the requests are checked by the hypervisor; callers pass
    // buffers that are theirs (or deliberately bad ones) and never ask for
    // a change to a mapping Rust relies on.
    unsafe { hypercall4(MMU_UPDATE, reqs, count, pdone, dom) }
}

/// `mmu_update` of `reqs` for `DOMID_SELF`, with `done` as `pdone`.
pub fn mmu_update(reqs: &[MmuUpdate], done: Option<&mut u32>) -> i64 {
    let pdone = done.map_or(0, |d| core::ptr::from_mut(d) as u64);
    mmu_update_raw(
        reqs.as_ptr() as u64,
        reqs.len() as u64,
        pdone,
        u64::from(DOMID_SELF),
    )
}

/// One `MMU_NORMAL_PT_UPDATE` of the entry at machine address `ma`.
pub fn pt_write(ma: u64, val: u64) -> i64 {
    mmu_update(
        &[MmuUpdate {
            ptr: ma | MMU_NORMAL_PT_UPDATE,
            val,
        }],
        None,
    )
}

/// `mmuext_op(ops, count, pdone, dom)` with raw arguments.
pub fn mmuext_raw(ops: u64, count: u64, pdone: u64, dom: u64) -> i64 {
    // SAFETY: as for `mmu_update_raw`.
    unsafe { hypercall4(MMUEXT_OP, ops, count, pdone, dom) }
}

/// `mmuext_op` of `ops` for `DOMID_SELF`.
pub fn mmuext(ops: &[MmuextOp], done: Option<&mut u32>) -> i64 {
    let pdone = done.map_or(0, |d| core::ptr::from_mut(d) as u64);
    mmuext_raw(
        ops.as_ptr() as u64,
        ops.len() as u64,
        pdone,
        u64::from(DOMID_SELF),
    )
}

/// One `mmuext_op` command.
pub fn mmuext1(cmd: u32, arg1: u64, arg2: u64) -> i64 {
    mmuext(&[op(cmd, arg1, arg2)], None)
}

/// An `MmuextOp`.
pub const fn op(cmd: u32, arg1: u64, arg2: u64) -> MmuextOp {
    MmuextOp {
        cmd,
        _pad: 0,
        arg1,
        arg2,
    }
}

/// `update_va_mapping(va, pte, flags)`.
pub fn uvm(va: u64, pte: u64, flags: u64) -> i64 {
    // SAFETY: callers only change window pages, which hold no Rust object.
    unsafe { hypercall3(UPDATE_VA_MAPPING, va, pte, flags) }
}

/// `memory_op(cmd, arg)`.
pub fn memory_op(cmd: u64, arg: u64) -> i64 {
    // SAFETY: `arg` points to the sub-op's struct owned by the caller (or is
    // deliberately bad); the extents it names are the caller's spare frames.
    unsafe { hypercall2(MEMORY_OP, cmd, arg) }
}

/// The domain's bootstrap page tables and spare frames.
pub struct Env {
    pub si: &'static StartInfo,
    pub v_start: u64,
    pub v_end: u64,
    /// Virtual address and MFN of the L4 (`pt_base`).
    pub l4: u64,
    pub l4_mfn: u64,
    /// The bootstrap L2 covering the initial mapping.
    pub l2: u64,
    pub l2_mfn: u64,
    next_spare: u64,
}

impl Env {
    /// Walks the bootstrap tables from `pt_base` down to the L2 of `v_start`.
    pub fn new(r: &mut Report, si: &'static StartInfo) -> Option<Self> {
        let v_start = guest_abi::rt::VIRT_BASE;
        let v_end = v_start + si.first_p2m_pfn * PAGE;
        let l4 = si.pt_base;
        let mut env = Self {
            si,
            v_start,
            v_end,
            l4,
            l4_mfn: 0,
            l2: 0,
            l2_mfn: 0,
            next_spare: si.first_p2m_pfn,
        };
        env.l4_mfn = env.mfn((l4 - v_start) / PAGE);
        let e4 = read_u64(l4 + idx(v_start, 39) * 8);
        let l3 = env.bootstrap_va(mfn_of(e4))?;
        let e3 = read_u64(l3 + idx(v_start, 30) * 8);
        env.l2_mfn = mfn_of(e3);
        env.l2 = env.bootstrap_va(env.l2_mfn)?;
        let ok = r.check(
            format_args!(
                "bootstrap tables: L4 {l4:#x} (mfn {:#x}), L3 {l3:#x}, L2 {:#x} (mfn {:#x}); v_end {v_end:#x}",
                env.l4_mfn, env.l2, env.l2_mfn
            ),
            e4 & P != 0 && e3 & P != 0,
        );
        ok.then_some(env)
    }

    /// `mfn_list[pfn]`.
    pub fn mfn(&self, pfn: u64) -> u64 {
        read_u64(self.si.mfn_list + pfn * 8)
    }

    /// The virtual address of a frame of the initial mapping, by its M2P
    /// entry.
    pub fn bootstrap_va(&self, mfn: u64) -> Option<u64> {
        let pfn = read_u64(M2P + mfn * 8);
        (pfn < self.si.first_p2m_pfn && self.mfn(pfn) == mfn).then(|| self.v_start + pfn * PAGE)
    }

    /// The next unused spare frame: (pfn, mfn).
    pub fn spare(&mut self) -> (u64, u64) {
        let pfn = self.next_spare;
        self.next_spare += 1;
        (pfn, self.mfn(pfn))
    }
}

/// The environment, a window, and the `tests::fixup` catchers for #UD,
/// #GP and #PF as the trap table: what a guest probing its own page
/// tables with faulting accesses starts from (`None` after a failed
/// check).
pub fn env_window_catching(r: &mut Report, si: &'static StartInfo) -> Option<(Env, Window)> {
    let mut env = Env::new(r, si)?;
    let w = Window::new(r, &mut env)?;
    let rc = crate::fixup::install();
    expect::rc(r, "set_trap_table(#UD, #GP, #PF)", rc, 0).then_some((env, w))
}

/// The environment, a window, and the empty slot after it: what a guest
/// that hooks a table of its own in and out starts from (`None` after a
/// failed check).
pub fn env_window_slot(r: &mut Report, si: &'static StartInfo) -> Option<(Env, Window, Slot)> {
    let mut env = Env::new(r, si)?;
    let w = Window::new(r, &mut env)?;
    let s = w.next_slot(r)?;
    Some((env, w, s))
}

/// Index of `va` in the table at level `shift` (39, 30, 21, 12).
pub const fn idx(va: u64, shift: u32) -> u64 {
    (va >> shift) & 511
}

/// A fresh 2 MiB of virtual address space backed by a pinned L1 the test
/// built; page 0 maps the L1 itself read-only.
pub struct Window {
    pub base: u64,
    pub l1_mfn: u64,
    /// Machine address of the L2 entry that points to the L1.
    pub l2e_ma: u64,
    /// Virtual address of that L2 entry (the bootstrap L2 is mapped).
    pub l2e_va: u64,
}

impl Window {
    /// Builds the window just past `v_end` (`None` after a failed check).
    pub fn new(r: &mut Report, env: &mut Env) -> Option<Self> {
        let base = env.v_end.next_multiple_of(2 << 20);
        let slot = idx(base, 21);
        let (_, l1_mfn) = env.spare();
        let w = Self {
            base,
            l1_mfn,
            l2e_ma: (env.l2_mfn << 12) + slot * 8,
            l2e_va: env.l2 + slot * 8,
        };
        let same_l2 = idx(base, 30) == idx(env.v_start, 30) && slot != 0;
        let before = read_u64(w.l2e_va);
        if !r.check(
            format_args!(
                "window {base:#x}: L2[{slot}] {before:#x} is empty and in the bootstrap L2"
            ),
            same_l2 && before == 0,
        ) {
            return None;
        }
        let ok = expect::rc(
            r,
            format_args!("MMUEXT_CLEAR_PAGE spare mfn {l1_mfn:#x}"),
            mmuext1(MMUEXT_CLEAR_PAGE, l1_mfn, 0),
            0,
        ) && expect::rc(
            r,
            "MMUEXT_PIN_L1_TABLE of it",
            mmuext1(MMUEXT_PIN_L1_TABLE, l1_mfn, 0),
            0,
        ) && expect::rc(
            r,
            format_args!("mmu_update L2[{slot}] = L1 {l1_mfn:#x} P|RW|US|A"),
            pt_write(w.l2e_ma, (l1_mfn << 12) | P | RW | US | A),
            0,
        );
        if !ok {
            return None;
        }
        let e = read_u64(w.l2e_va);
        let ok = r.check(
            format_args!("L2[{slot}] reads back {e:#x}: the L1, P|RW|US"),
            mfn_of(e) == l1_mfn && e & (P | RW | US | PSE) == P | RW | US,
        ) && expect::rc(
            r,
            "update_va_mapping window page 0 = the L1, read-only",
            uvm(base, (l1_mfn << 12) | P | US | A, UVMF_INVLPG),
            0,
        );
        ok.then_some(w)
    }

    /// Virtual address of page `i`.
    pub const fn va(&self, i: u64) -> u64 {
        self.base + i * PAGE
    }

    /// Machine address of the L1 entry for page `i`.
    pub const fn pte_ma(&self, i: u64) -> u64 {
        (self.l1_mfn << 12) + i * 8
    }

    /// The L1 entry for page `i`, read through page 0.
    pub fn pte(&self, i: u64) -> u64 {
        read_u64(self.base + i * 8)
    }

    /// Maps `mfn` at page `i` with `flags` (`update_va_mapping`, INVLPG).
    pub fn map(&self, i: u64, mfn: u64, flags: u64) -> i64 {
        uvm(self.va(i), (mfn << 12) | flags, UVMF_INVLPG)
    }

    /// Unmaps page `i`.
    pub fn unmap(&self, i: u64) -> i64 {
        uvm(self.va(i), 0, UVMF_INVLPG)
    }
}

/// The 2 MiB just after a [`Window`], whose L2 entry (in the same
/// bootstrap L2) is empty: a place to hook a table in and out again.
pub struct Slot {
    pub base: u64,
    /// Machine and virtual address of its L2 entry.
    pub l2e_ma: u64,
    pub l2e_va: u64,
}

impl Window {
    /// The slot after the window (`None` after a failed check that its
    /// L2 entry is empty).
    pub fn next_slot(&self, r: &mut Report) -> Option<Slot> {
        let s = Slot {
            base: self.base + (2 << 20),
            l2e_ma: self.l2e_ma + 8,
            l2e_va: self.l2e_va + 8,
        };
        let slot = idx(s.base, 21);
        let e = if slot == 0 {
            u64::MAX
        } else {
            read_u64(s.l2e_va)
        };
        r.check(
            format_args!("L2[{slot}] after the window is empty ({e:#x})"),
            e == 0,
        )
        .then_some(s)
    }

    /// A spare frame, cleared and mapped writable and dirty at page `i`
    /// (dirty, so that a read through the mapping caches a translation
    /// that allows writes too): (pfn, mfn).
    pub fn map_fresh(
        &self,
        r: &mut Report,
        env: &mut Env,
        what: &str,
        i: u64,
    ) -> Option<(u64, u64)> {
        let (pfn, mfn) = env.spare();
        let ok = expect::rc(
            r,
            format_args!("MMUEXT_CLEAR_PAGE {what} (mfn {mfn:#x})"),
            mmuext1(MMUEXT_CLEAR_PAGE, mfn, 0),
            0,
        ) && expect::rc(
            r,
            format_args!("map {what} writable at window page {i}"),
            self.map(i, mfn, P | RW | US | A | D),
            0,
        );
        ok.then_some((pfn, mfn))
    }
}

/// Records a rejected request: `got == want` (an errno) and the entry at
/// `entry_va` still holding `before`.
pub fn rejected(
    r: &mut Report,
    what: impl core::fmt::Display,
    got: i64,
    want: i64,
    entry_va: u64,
    before: u64,
) -> bool {
    let after = read_u64(entry_va);
    let ok = got == want && after == before;
    let rc = expect::Rc;
    if ok {
        r.check(
            format_args!("{what} -> {}, entry still {before:#x}", rc(want)),
            true,
        )
    } else {
        r.check(
            format_args!(
                "{what} -> {}, entry still {before:#x} (got {}, entry {after:#x})",
                rc(want),
                rc(got)
            ),
            false,
        )
    }
}

/// `XENMEM_maximum_ram_page`: one past the highest machine frame.
pub fn max_page() -> i64 {
    memory_op(u64::from(guest_abi::memory::XENMEM_MAXIMUM_RAM_PAGE), 0)
}

/// The first MFN of the M2P table (`XENMEM_machphys_mfn_list`), a frame
/// the hypervisor owns.
pub fn m2p_mfn() -> Option<u64> {
    let mut mfns = [0u64; 4];
    let mut list = guest_abi::memory::XenMachphysMfnList {
        max_extents: 4,
        extent_start: mfns.as_mut_ptr() as u64,
        ..Default::default()
    };
    let rc = memory_op(
        u64::from(guest_abi::memory::XENMEM_MACHPHYS_MFN_LIST),
        core::ptr::from_mut(&mut list) as u64,
    );
    (rc == 0 && list.nr_extents > 0).then_some(mfns[0])
}

/// A `xen_memory_reservation` of the calling domain for the extents in
/// `list`, `1 << order` frames each (the list is read, or written, by the
/// call it is passed to).
pub fn extents(list: &mut [u64], order: u32) -> guest_abi::memory::XenMemoryReservation {
    guest_abi::memory::XenMemoryReservation {
        extent_start: list.as_mut_ptr() as u64,
        nr_extents: list.len() as u64,
        extent_order: order,
        mem_flags: 0,
        domid: DOMID_SELF,
        _pad: [0; 3],
    }
}

/// `set_gdt(frames, entries)` for the calling vCPU.
pub fn set_gdt(frames: &[u64], entries: u64) -> i64 {
    // SAFETY: the hypervisor reads the frame list; callers pass frames of
    // their own (or deliberately bad ones), and no selector a guest here
    // uses lies below Xen's reserved entries.
    unsafe { hypercall2(SET_GDT, frames.as_ptr() as u64, entries) }
}

/// `decrease_reservation` of one extent of `1 << order` frames at `mfn`.
pub fn decrease(mfn: u64, order: u32) -> i64 {
    let mut list = [mfn];
    let mut res = extents(&mut list, order);
    memory_op(
        u64::from(guest_abi::memory::XENMEM_DECREASE_RESERVATION),
        core::ptr::from_mut(&mut res) as u64,
    )
}

/// Checks that every frame in `frames` (name, mfn) carries no reference
/// but the domain's allocation: each pins as an L1 and unpins (no other
/// type held; the frames must hold valid L1 contents), maps writable at
/// window page `page` and unmaps (no page-table type held), and then
/// `decrease_reservation` of each lowers `current_reservation` by one at
/// once (no mapping or other reference left anywhere). The frames are
/// given back. Returns whether everything held.
pub fn check_released(r: &mut Report, w: &Window, page: u64, frames: &[(&str, u64)]) -> bool {
    use guest_abi::memory::XENMEM_CURRENT_RESERVATION;
    use guest_abi::xen::MMUEXT_UNPIN_TABLE;
    let mut ok = true;
    for &(what, m) in frames {
        ok &= expect::rc(
            r,
            format_args!("{what} (mfn {m:#x}) pins as an L1"),
            mmuext1(MMUEXT_PIN_L1_TABLE, m, 0),
            0,
        ) && expect::rc(
            r,
            format_args!("and unpins"),
            mmuext1(MMUEXT_UNPIN_TABLE, m, 0),
            0,
        ) && expect::rc(
            r,
            format_args!("{what} maps writable at window page {page}"),
            w.map(page, m, KRW),
            0,
        ) && expect::rc(r, format_args!("and unmaps"), w.unmap(page), 0);
    }
    for &(what, m) in frames {
        let before = reservation(XENMEM_CURRENT_RESERVATION);
        ok &= expect::rc(
            r,
            format_args!("decrease_reservation of {what}"),
            decrease(m, 0),
            1,
        ) && expect::rc(
            r,
            format_args!("current_reservation one lower: {what}'s last reference went"),
            reservation(XENMEM_CURRENT_RESERVATION),
            before - 1,
        );
    }
    ok
}

/// `XENMEM_exchange` of the frame `mfn` for a fresh one: the result and
/// `nr_exchanged`.
pub fn exchange1(mfn: u64) -> (i64, u64) {
    let (mut input, mut output) = ([mfn], [0u64]);
    let mut x = guest_abi::memory::XenMemoryExchange {
        in_: extents(&mut input, 0),
        out: extents(&mut output, 0),
        nr_exchanged: 0,
    };
    let rc = memory_op(
        u64::from(guest_abi::memory::XENMEM_EXCHANGE),
        core::ptr::from_mut(&mut x) as u64,
    );
    (rc, x.nr_exchanged)
}

/// `XENMEM_current_reservation` (or another sub-op taking a domid, such as
/// `XENMEM_maximum_reservation`) of this domain.
pub fn reservation(cmd: u32) -> i64 {
    let domid: u16 = guest_abi::xen::DOMID_SELF;
    memory_op(u64::from(cmd), core::ptr::from_ref(&domid) as u64)
}

/// Walks the guest's part (every L4 slot but hv's, 256-271) of the live
/// tables under `l4`
/// (the L4's machine frame), reading each table through `table_va` (its
/// virtual address, if the guest can read it). Calls `table(level, mfn)`
/// for every table below the L4 and `leaf(va, entry, writable)` for every
/// present L1 entry, `writable` being the effective right (RW at every
/// level). Fails with the frame of a table it cannot read or of a
/// superpage entry (PSE), which a PV guest cannot have.
pub fn walk_guest_tables(
    l4: u64,
    table_va: impl Fn(u64) -> Option<u64>,
    mut table: impl FnMut(u32, u64),
    mut leaf: impl FnMut(u64, u64, bool),
) -> Result<(), u64> {
    struct Walk<'a> {
        table_va: &'a dyn Fn(u64) -> Option<u64>,
        table: &'a mut dyn FnMut(u32, u64),
        leaf: &'a mut dyn FnMut(u64, u64, bool),
    }
    fn walk(w: &mut Walk<'_>, level: u32, mfn: u64, base: u64, rw: bool) -> Result<(), u64> {
        let va = (w.table_va)(mfn).ok_or(mfn)?;
        for i in 0..512 {
            if level == 4 && (256..272).contains(&i) {
                continue;
            }
            let e = read_u64(va + 8 * i);
            if e & P == 0 {
                continue;
            }
            let mut at = base | (i << (12 + 9 * (level - 1)));
            if level == 4 && i >= 256 {
                at |= 0xffff_0000_0000_0000; // canonical upper half
            }
            let rw = rw && e & RW != 0;
            if level == 1 {
                (w.leaf)(at, e, rw);
            } else if e & PSE != 0 {
                return Err(mfn);
            } else {
                // Depth is bounded by the level, so a linear entry (a
                // table seen again one level down) cannot loop.
                (w.table)(level - 1, mfn_of(e));
                walk(w, level - 1, mfn_of(e), at, rw)?;
            }
        }
        Ok(())
    }
    let mut w = Walk {
        table_va: &table_va,
        table: &mut table,
        leaf: &mut leaf,
    };
    walk(&mut w, 4, l4, 0, true)
}
