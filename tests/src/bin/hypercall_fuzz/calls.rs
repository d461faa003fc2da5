//! Building the calls: a top-level call is one hypercall or, one time in
//! twelve, a multicall of up to six; each number gets arguments shaped for
//! it (sub-commands valid and not, structures in the blobs, arrays of
//! requests in the arrays page, well-formed reservations now and then).
//!
//! What the guest does not fire, because it would end or wreck the run
//! rather than test the hypervisor: `iret`; shutdown, block and watchdog
//! (`sched_op` 1/2/4/5/6 and `sched_op_compat` 1/2 only get unreadable
//! arguments or are skipped); `SCHEDOP_poll` other than with a timeout in
//! the past; `VCPUOP_down`/`send_nmi` of vCPU 0 and `register_vcpu_info`
//! with a readable argument (a vcpu_info in memory the fuzzer scribbles on
//! would unmask events into a null callback); the calls that on a real
//! dom0 can hurt the host (`platform_op`, `sysctl`, `domctl`, `kexec_op`,
//! `hvm_op`, `dm_op`, `xenpmu_op`, `mca`, `xsm_op`, `hypfs_op`, `argo_op`,
//! `xenoprof_op`, `paging_domctl_cont`, `physdev_op` other than
//! set_iopl/set_iobitmap, `EVTCHNOP_bind_pirq`) get only unreadable
//! pointers; console writes of random bytes. Page-table changes may only
//! target the scratch window's L1 (pages 8-511), spare frames and
//! deliberately bad frames; `NEW_BASEPTR` only the live L4 or frames that
//! cannot be an L4; `CLEAR_PAGE`/`COPY_PAGE` never write the image's own
//! frames other than its page tables (which must be refused). Calls that
//! change how the next fault or event would be delivered are marked for
//! `restore`; DR7 never gets enable bits (a breakpoint would kill the
//! guest); `stack_switch` is left random (never used: the guest never
//! enters user mode).

use guest_abi::hypercall as hc;
use guest_abi::xen::DOMID_SELF;

use crate::random::choose;
use crate::restore::{
    UNDO_CALLBACKS, UNDO_FPU, UNDO_GDT, UNDO_LDT, UNDO_NMI, UNDO_SEG, UNDO_TRAPS,
};
use crate::{low, poke, Call, Fuzz, ARRAYS, FIRST_RANDOM, PAGE, SINK};

impl Fuzz {
    /// A top-level call; for a multicall also (list, entries to check).
    pub(crate) fn gen_top(&mut self) -> (Call, Option<(u64, u64)>) {
        self.arr_end = self.w.va(ARRAYS + 1);
        self.nested = false;
        if !self.one_in(12) {
            return (self.gen(), None);
        }
        let n = 1 + self.below(6);
        let list = self.array(n * 64);
        self.nested = true;
        let mut undo = 0;
        for e in 0..n {
            let c = self.gen();
            undo |= c.undo;
            let sixth = self.word();
            let words = [c.nr, 0x5a5a].into_iter().chain(c.a).chain([sixth]);
            for (k, v) in (0..).zip(words) {
                poke(list + e * 64 + 8 * k, v);
            }
        }
        let count = match self.below(6) {
            0 => self.count(),
            1 => n + 1,
            _ => n,
        };
        let ptr = choose(self.one_in(8), self.unreadable(), list);
        let call = Call {
            nr: hc::MULTICALL,
            a: [ptr, count, 0, 0, 0],
            undo,
        };
        (call, (ptr == list && count <= n).then_some((list, count)))
    }

    fn gen(&mut self) -> Call {
        const BIG: u64 = 0x7fff_ffff;
        const NRS: &[u64] = &[
            0, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 11, 12, 12, 12, 13, 14, 14, 14, 15, 16, 17,
            18, 19, 20, 20, 20, 21, 22, 24, 24, 25, 26, 26, 26, 27, 28, 29, 30, 31, 32, 32, 32, 33,
            34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 48, 49, 50, 63, 64, BIG,
        ];
        let mut nr = self.pick(NRS);
        if self.one_in(50) {
            // The whole of rax is the number: these must all be -ENOSYS
            // (the low half is one that would be harmless if truncated).
            nr = self.pick(&[1 << 32, 1 << 63, u64::MAX << 8]) | self.pick(&[11, 17, 38]);
        }
        let mut c = Call {
            nr,
            a: core::array::from_fn(|_| self.word()),
            undo: 0,
        };
        match nr {
            hc::SET_TRAP_TABLE => {
                c.a[0] = if self.one_in(6) { 0 } else { self.pointer() };
                c.undo = UNDO_TRAPS;
            }
            hc::MMU_UPDATE => self.mmu_update(&mut c),
            hc::SET_GDT => {
                c.a[0] = self.pointer();
                for k in 0..16 {
                    let m = self.mfn_safe();
                    if (self.blob..self.blob_end).contains(&(c.a[0] + 8 * k)) {
                        poke(c.a[0] + 8 * k, m);
                    }
                }
                c.a[1] = choose(self.one_in(2), self.below(16 * 512), self.count());
                c.undo = UNDO_GDT;
            }
            hc::STACK_SWITCH => c.a[0] = self.pick(&[0xe02b, 0xe028, 0, c.a[0]]),
            hc::SET_CALLBACKS => c.undo = UNDO_CALLBACKS,
            hc::FPU_TASKSWITCH => c.undo = UNDO_FPU,
            hc::SCHED_OP_COMPAT => {
                c.a[0] = self.pick(&[0, 3, 4, 0xffff_ffff, c.a[0]]);
                if matches!(low(c.a[0]), 1 | 2) {
                    c.a[0] = 0;
                }
            }
            hc::SET_DEBUGREG => {
                c.a[0] = choose(self.one_in(4), c.a[0], self.below(8));
                if matches!(low(c.a[0]), 5 | 7) {
                    c.a[1] &= !0x20ff; // no breakpoint enables, no GD
                }
            }
            hc::GET_DEBUGREG => c.a[0] = choose(self.one_in(4), c.a[0], self.below(9)),
            hc::UPDATE_DESCRIPTOR => {
                let off = choose(self.one_in(4), self.below(PAGE), 8 * self.below(512));
                c.a[0] = (self.mfn_pt() << 12).wrapping_add(off);
            }
            hc::MEMORY_OP if self.one_in(4) => {
                // A reservation call that does something.
                c.a[0] = self.pick(&[0, 1, 1, 6]);
                c.a[1] = self.reservation(c.a[0]);
            }
            hc::MEMORY_OP => {
                c.a[0] = self.below(31) | if self.one_in(8) { self.next() << 6 } else { 0 };
                c.a[1] = if self.one_in(10) { 0 } else { self.pointer() };
            }
            hc::MULTICALL => c.a[0] = self.unreadable(), // nested: -EINVAL anyway
            hc::UPDATE_VA_MAPPING | hc::UPDATE_VA_MAPPING_OTHERDOMAIN => {
                c.a[0] = self.scratch_va();
                c.a[1] = self.pte();
                let mask = choose(self.one_in(4), self.pointer() & !7, 0);
                c.a[2] = self.below(8) | mask;
                c.a[3] = self.domid();
            }
            hc::EVENT_CHANNEL_OP_COMPAT | hc::PHYSDEV_OP_COMPAT => {
                let cmd = if nr == hc::PHYSDEV_OP_COMPAT {
                    self.pick(&[6, 7])
                } else {
                    self.evtchn_cmd()
                };
                c.a[0] = choose(self.one_in(4), self.unreadable(), self.blob());
                if c.a[0] >= self.blob {
                    poke(c.a[0], cmd | (self.next() << 32));
                }
            }
            hc::XEN_VERSION => {
                c.a[0] = choose(self.one_in(5), c.a[0], self.below(14));
                c.a[1] = self.pointer();
            }
            hc::CONSOLE_IO => {
                c.a[0] = self.pick(&[0, 1, 1, 2, c.a[0]]);
                c.a[1] = self.count();
                c.a[2] = self.pointer();
                if low(c.a[0]) == 0 && c.a[2] >= self.env.v_start {
                    c.a[1] &= !0xffff_ffff; // no console writes of random bytes
                }
            }
            hc::GRANT_TABLE_OP => {
                c.a[0] = choose(self.one_in(6), c.a[0], self.below(13));
                c.a[1] = self.pointer();
                c.a[2] = self.count();
            }
            hc::VM_ASSIST => {
                c.a[0] = self.pick(&[0, 1, 2, c.a[0]]);
                c.a[1] = self.pick(&[0, 1, 2, 3, 4, 5, 6, 32, 33, c.a[1]]);
            }
            hc::VCPU_OP => self.vcpu_op(&mut c),
            hc::SET_SEGMENT_BASE => {
                c.a[0] = choose(self.one_in(5), c.a[0], self.below(5));
                c.undo = UNDO_SEG;
            }
            hc::MMUEXT_OP => self.mmuext_op(&mut c),
            hc::NMI_OP => {
                c.a[0] = self.pick(&[0, 1, 2, c.a[0]]);
                c.a[1] = self.pointer();
                c.undo = UNDO_NMI;
            }
            hc::SCHED_OP => self.sched_op(&mut c),
            hc::CALLBACK_OP => {
                c.a[0] = self.pick(&[0, 1, 2, c.a[0]]);
                c.a[1] = self.blob();
                let ty = self.pick(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 0xffff]);
                poke(c.a[1], ty | (self.next() << 16));
                c.undo = UNDO_CALLBACKS | UNDO_NMI;
            }
            hc::EVENT_CHANNEL_OP => {
                c.a[0] = self.evtchn_cmd() | (c.a[0] & !0xffff_ffff);
                c.a[1] = self.pointer();
            }
            hc::PHYSDEV_OP => {
                c.a[0] = self.pick(&[6, 7, 6, 7, c.a[0]]);
                c.a[1] = if matches!(low(c.a[0]), 6 | 7) {
                    self.pointer()
                } else {
                    self.unreadable()
                };
            }
            // Host-wide, privileged or not worth the risk: only unreadable
            // pointers (each of these copies its argument in first).
            7 | 27 | 35 | 36 | 48 | 49 => c.a[0] = self.unreadable(),
            31 | 34 | 37 | 40 => c.a[1] = self.unreadable(),
            41 => c.a[2] = self.unreadable(),
            39 | 42 => {
                c.a[1] = self.unreadable();
                c.a[if nr == 39 { 2 } else { 3 }] = self.unreadable();
            }
            _ => {}
        }
        c
    }

    /// A well-formed `xen_memory_reservation` of the calling domain for
    /// `cmd` (increase, decrease or populate) in the blobs, its extent list
    /// right after it: 1-3 extents of order 0 (now and then 1); a
    /// decrease names spare frames, a populate low gpfns.
    fn reservation(&mut self, cmd: u64) -> u64 {
        let n = 1 + self.below(3);
        let p = self.blob + 8 * self.below(2 * 512 - 4 - n);
        let list = p + 32;
        for k in 0..n {
            let v = match cmd {
                1 => self.pool_mfn(),
                6 => self.below(2 * self.env.si.nr_pages),
                _ => self.word(),
            };
            poke(list + 8 * k, v);
        }
        let order = u64::from(self.one_in(8));
        for (k, v) in (0..).zip([list, n, order, u64::from(DOMID_SELF)]) {
            poke(p + 8 * k, v);
        }
        p
    }

    /// An event-channel command, never `bind_pirq` (a real dom0 could
    /// take a host interrupt with it).
    fn evtchn_cmd(&mut self) -> u64 {
        let cmd = choose(self.one_in(8), low(self.next()), self.below(15));
        if cmd == 2 {
            3
        } else {
            cmd
        }
    }

    fn mmu_update(&mut self, c: &mut Call) {
        let n = 1 + self.below(8);
        let reqs = self.array(n * 16);
        for k in 0..n {
            let target = match self.below(6) {
                0..=3 => {
                    let page = FIRST_RANDOM + self.below(512 - FIRST_RANDOM);
                    self.w.pte_ma(page)
                }
                4 => (self.pool_mfn() << 12) + 8 * self.below(512),
                _ => self.bad_mfn() << 12,
            };
            let cmd = self.pick(&[0, 0, 0, 0, 1, 2, 3, 4, 7]);
            let val = if cmd == 1 { self.word() } else { self.pte() };
            poke(reqs + 16 * k, (target & !7) | cmd);
            poke(reqs + 16 * k + 8, val);
        }
        self.array_args(c, reqs, n);
    }

    fn mmuext_op(&mut self, c: &mut Call) {
        let n = 1 + self.below(6);
        let ops = self.array(n * 24);
        for k in 0..n {
            let cmd = choose(self.one_in(16), low(self.next()), self.below(22));
            let (a1, a2) = match cmd {
                // NEW_BASEPTR: the live L4, or frames that cannot be an L4.
                5 => {
                    let m = choose(self.one_in(3), self.env.l4_mfn, self.bad_mfn());
                    (self.pick(&[m, self.env.l2_mfn, self.w.l1_mfn]), self.word())
                }
                7 | 9 | 11 | 13 => {
                    let va = self.scratch_va();
                    let own = self.env.v_start + PAGE * self.below(64);
                    let a2 = if cmd == 13 {
                        self.count()
                    } else {
                        self.pointer() & !7
                    };
                    (self.pick(&[va, own, 0]), a2)
                }
                8 => (self.word(), self.pointer()),
                17 => (self.mfn_pt(), self.mfn_map()),
                0..=4 | 15 | 16 | 19 | 20 => (self.mfn_pt(), self.word()),
                _ => (self.word(), self.word()),
            };
            if cmd == 13 {
                c.undo |= UNDO_LDT;
            }
            poke(ops + 24 * k, cmd | (self.next() << 32));
            poke(ops + 24 * k + 8, a1);
            poke(ops + 24 * k + 16, a2);
        }
        self.array_args(c, ops, n);
    }

    /// `(list, count, pdone, foreigndom)` of mmu_update/mmuext_op.
    fn array_args(&mut self, c: &mut Call, list: u64, n: u64) {
        c.a[0] = choose(self.one_in(10), self.unreadable(), list);
        c.a[1] = match self.below(8) {
            // In a multicall the next bytes are another entry's array.
            _ if self.nested => self.below(n + 1),
            0 => self.count(),
            1 => n + 1 + self.below(3),
            2 => n | 0x8000_0000,
            _ => n,
        };
        c.a[2] = if self.one_in(3) { 0 } else { self.pointer() };
        c.a[3] = match self.below(6) {
            0..=2 => DOMID_SELF.into(),
            3 => (1 << 16) | u64::from(DOMID_SELF),
            _ => self.domid(),
        };
    }

    fn vcpu_op(&mut self, c: &mut Call) {
        c.a[0] = choose(self.one_in(8), c.a[0], self.below(15));
        c.a[1] = choose(self.one_in(4), c.a[1], self.below(3));
        c.a[2] = self.pointer();
        match low(c.a[0]) {
            2 | 11 if low(c.a[1]) == 0 => c.a[1] = 1,
            5 | 13 => {
                // Areas the hypervisor writes at every context switch go
                // to the sink page (or straddle into the guard after it).
                let p = self.blob();
                let sink = self.w.va(SINK) + 8 * self.below(512);
                let bad = self.unreadable();
                let area = self.pick(&[sink, sink, self.env.si.pt_base, bad]);
                poke(p, area);
                c.a[2] = p;
            }
            10 => c.a[2] = self.unreadable(),
            _ => {}
        }
    }

    fn sched_op(&mut self, c: &mut Call) {
        c.a[0] = choose(self.one_in(6), c.a[0], self.below(10));
        match low(c.a[0]) {
            1 => c.a[0] = 0,
            2 | 4..=6 => c.a[1] = self.unreadable(),
            3 => {
                // Poll with a timeout in the past: it cannot wait for ever.
                let p = self.blob();
                if p + 24 <= self.blob_end {
                    let nports = self.pick(&[0, 1, 2, 3, 129, 1 << 32]);
                    poke(p + 8, nports);
                    poke(p + 16, 1 + self.below(1000));
                    c.a[1] = p;
                } else {
                    c.a[1] = self.unreadable();
                }
            }
            _ => c.a[1] = self.pointer(),
        }
    }
}
