//! The guest's own integrity, checked after every top-level call: its
//! code, its own page-table entries and the window are unchanged, and each
//! live page table (bootstrap tables, window L1) still has its type:
//! copying it onto itself with `MMUEXT_COPY_PAGE` must fail. On the
//! deep checks it walks its live page tables (its own slots of the L4
//! down to every L1, the effective write right taken at each level) and
//! fails on a writable mapping of any page table it walked or of a
//! bootstrap table; every `probe` deep checks each spare frame mapped
//! writable must still take a writable type (`MMUEXT_COPY_PAGE` onto
//! itself succeeds), so none of them is also a page table or descriptor
//! frame.

use guest_abi::println;
use tests::pvmm::{self, idx, read_u64, A, D};

use crate::reservation::ResvArgs;
use crate::{Fuzz, ARRAYS, PAGE, SINK};

impl Fuzz {
    /// What must not change: code, own page-table entries, the window.
    pub(crate) fn state(&self) -> [u64; 12] {
        let e = &self.env;
        let l2 = |k: u64| read_u64(e.l2 + 8 * (idx(e.v_start, 21) + k)) & !(A | D);
        let pte = |k: u64| self.w.pte(k) & !(A | D);
        [
            read_u64(e.v_start),
            read_u64(e.v_start + 0x1008),
            read_u64(e.l4 + 8 * idx(e.v_start, 39)) & !(A | D),
            l2(0),
            read_u64(self.w.l2e_va) & !(A | D),
            pte(0),
            pte(1),
            pte(2),
            pte(SINK),
            pte(4),
            pte(ARRAYS),
            pte(6) | pte(7),
        ]
    }

    /// Walks the live tables: no writable mapping of a table walked or of
    /// a bootstrap table; with `probe`, every spare frame mapped writable
    /// must still take a writable type.
    pub(crate) fn check_mappings(&self, probe: bool) -> Result<(usize, u32), &'static str> {
        let (e, w) = (&self.env, &self.w);
        // Tables are found through the P2M, not the M2P: a user base table
        // set to the live L4 under m2p_strict takes the M2P out of it (as
        // on Xen), and the guest must not read it then.
        let pt0 = (e.si.pt_base - e.v_start) / PAGE;
        let table_va = |m: u64| {
            if m == w.l1_mfn {
                return Some(w.va(0));
            }
            (pt0..pt0 + e.si.nr_pt_frames)
                .find(|&pfn| e.mfn(pfn) == m)
                .map(|pfn| e.v_start + pfn * PAGE)
        };
        let mut tables = [0u64; 64];
        let mut n = 0usize;
        let mut overflow = false;
        let walked = pvmm::walk_guest_tables(
            e.l4_mfn,
            table_va,
            |_, m| match tables.get_mut(n) {
                Some(t) => {
                    *t = m;
                    n += 1;
                }
                None => overflow = true,
            },
            |_, _, _| {},
        );
        if let Err(m) = walked {
            println!("  table mfn {m:#x} unreadable or a superpage");
            return Err("live page tables not walkable");
        }
        if overflow {
            return Err("more than 64 live page tables");
        }
        let tables = &tables[..n];
        let mut bad = None;
        let mut pool_mapped = 0u32;
        let mut writable_leaves = 0u32;
        let _ = pvmm::walk_guest_tables(
            e.l4_mfn,
            table_va,
            |_, _| {},
            |va, pte, writable| {
                let m = pvmm::mfn_of(pte);
                if !writable {
                    return;
                }
                writable_leaves += 1;
                if m == e.l4_mfn || tables.contains(&m) || self.pt_mfns.contains(&m) {
                    bad = Some((va, pte));
                }
                if let Some(k) = self.pool.iter().position(|&p| p == m) {
                    pool_mapped |= 1 << k;
                }
            },
        );
        if let Some((va, pte)) = bad {
            println!("  {va:#x} -> {pte:#x}");
            return Err("a live page table is mapped writable");
        }
        if probe {
            for (k, &m) in self.pool.iter().enumerate() {
                if pool_mapped & (1 << k) != 0
                    && pvmm::mmuext1(guest_abi::xen::MMUEXT_COPY_PAGE, m, m) < 0
                {
                    println!("  spare mfn {m:#x} is mapped writable but cannot be written");
                    return Err("a frame mapped writable has another type");
                }
            }
        }
        Ok((n, writable_leaves))
    }

    pub(crate) fn invariants(
        &mut self,
        deep: bool,
        call: (u64, Option<ResvArgs>, i64),
    ) -> Result<(), &'static str> {
        self.check_reservation(call)?;
        let now = self.state();

        if now != self.snapshot {
            for (k, (a, b)) in self.snapshot.iter().zip(now).enumerate() {
                if *a != b {
                    println!("  state word {k}: {a:#x} -> {b:#x}");
                }
            }
            return Err("code, own page tables or the window changed");
        }
        // The window's L1 and the bootstrap tables must still be page
        // tables: copying one onto itself (harmless if it were not) needs
        // a writable type and fails.
        let pt0 = (self.env.si.pt_base - self.env.v_start) / PAGE;
        let tables = (pt0..pt0 + self.env.si.nr_pt_frames).map(|pfn| self.env.mfn(pfn));
        for m in tables.chain([self.w.l1_mfn]).filter(|_| deep) {
            if pvmm::mmuext1(guest_abi::xen::MMUEXT_COPY_PAGE, m, m) >= 0 {
                println!("  page table mfn {m:#x} is no longer typed");
                return Err("a live page table lost its type");
            }
        }
        if deep {
            self.deep_checks += 1;
            self.check_mappings(self.deep_checks.is_multiple_of(self.probe))?;
        }
        Ok(())
    }
}
