//! Random hypercalls, deterministic per seed: the guest survives and every
//! result is a non-negative value or one of Xen's `-errno`s.
//!
//! A seeded xorshift (`seed=N` on the command line; `calls=N` sets how many,
//! `from=N` prints every call from index N on, to replay a failure;
//! `check=N` runs the deep checks every N calls, default 1; `probe=N` the
//! hypercall probes of mapped frames every N deep checks, default 16) picks a
//! number and arguments biased toward the interesting: sub-command numbers
//! valid and not, pointers that are null, unmapped, non-canonical, in the
//! hypervisor's range, in the read-only bootstrap page tables (`pt_base`)
//! or the read-only M2P, or in a scratch buffer of random words (so structures get random contents,
//! laced with counts near 0/2^31/2^32-1, domids and MFNs), and MFNs that
//! are the guest's own, spare, the hypervisor's, past the end of memory or
//! all-ones. Numbers with no handler must give `-ENOSYS`.
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
//! frames other than its page tables (which must be refused). Whatever changes how the next fault or event would be delivered
//! (trap table, callbacks, NMI callback, CR0.TS, LDT, GDT, segment bases)
//! is put back right after; DR7 never gets enable bits (a breakpoint would
//! kill the guest); `stack_switch` is left random (never used: the guest
//! never enters user mode). Between calls the guest checks its code, its
//! own page-table entries and the window are unchanged, and that each live
//! page table (bootstrap tables, window L1) still has its type: copying it
//! onto itself with `MMUEXT_COPY_PAGE` must fail.
//!
//! After every top-level call the guest also checks that hv answered with
//! its reservation intact: `XENMEM_current_reservation` is what the guest
//! believes (it changes only by what an increase/decrease/populate call
//! reported done, or through a multicall, another memory_op or a grant
//! transfer, and stays within `XENMEM_maximum_reservation`), but for the
//! deferred frees: a frame given back while still in use (mapped, pinned,
//! a descriptor page) leaves the reservation only when its last use goes,
//! which may be any later call. The guest keeps a bound on such frames
//! (those a decrease reported done that did not leave at once; after a
//! call it cannot predict, every frame that has been in the spare pool,
//! the only frames both named in a mapping, a pin or a descriptor table
//! and given back) and lets any call lower the reservation by no more
//! than the bound, which that lowers in turn. On the
//! deep checks it walks its live page tables (its own slots of the L4
//! down to every L1, the effective write right taken at each level) and
//! fails on a writable mapping of any page table it walked or of a
//! bootstrap table; every `probe` deep checks each spare frame mapped
//! writable must still take a writable type (`MMUEXT_COPY_PAGE` onto
//! itself succeeds), so none of them is also a page table or descriptor
//! frame. `cargo xtask fuzz` runs this guest over many seeds (see the
//! README's Fuzzing section).
//!
//! @cmdline: seed=1
//! @timeout: 150
//! @variant: seed5 cmdline=seed=5
//! @variant: seed12 cmdline=seed=12
#![no_std]
#![no_main]

use guest_abi::errno::{self, ENOSYS};
use guest_abi::hypercall::{self as hc, hypercall5};
use guest_abi::memory::{XENMEM_CURRENT_RESERVATION, XENMEM_MAXIMUM_RESERVATION};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{DOMID_IO, DOMID_SELF, DOMID_XEN};
use tests::expect::{Rc, BAD_POINTERS};
use tests::pvmm::{
    self, idx, m2p_mfn, max_page, read_u64, Env, Window, A, ALL_ONES_MFN, D, P, RW, US,
};

guest_abi::pv_guest!(main, name = "hypercall_fuzz");

const PAGE: u64 = pvmm::PAGE;
/// Window pages: 0 maps the L1; 1-2 hold random structures ("blobs"); 3 is
/// the sink for the runstate and time areas the hypervisor writes at every
/// context switch; 5 holds the arrays that act (`mmu_update` requests,
/// `mmuext_op` ops, multicall lists), which no pointer given to any other
/// call can reach: 4 and 6 are unmapped, so neither a count running off
/// the blobs nor one running off an array reaches the other. Random
/// page-table changes use pages 8-511.
const BLOBS: u64 = 1;
const SINK: u64 = 3;
const ARRAYS: u64 = 5;
const FIRST_RANDOM: u64 = 8;
const POOL: usize = 32;
const HIST_NR: usize = 65;
const HIST_CLASSES: usize = 56;
/// Calls that change how faults or events would be delivered, to undo.
const UNDO_TRAPS: u32 = 1;
const UNDO_CALLBACKS: u32 = 2;
const UNDO_FPU: u32 = 4;
const UNDO_LDT: u32 = 8;
const UNDO_GDT: u32 = 16;
const UNDO_SEG: u32 = 32;
const UNDO_NMI: u32 = 64;

const _: () = assert!(errno::ALL.len() + 2 <= HIST_CLASSES);

#[derive(Clone, Copy, Default)]
struct Call {
    nr: u64,
    a: [u64; 5],
    undo: u32,
}

struct Fuzz {
    rng: u64,
    env: Env,
    w: Window,
    /// The blob pages `[blob, blob_end)`.
    blob: u64,
    blob_end: u64,
    /// Arrays are carved downwards from the end of the arrays page; when a
    /// call is a multicall's entry, counts may not run past its array.
    arr_end: u64,
    nested: bool,
    pool: [u64; POOL],
    /// Pool slots whose frame was given back: refilled with frames a
    /// reservation call hands out.
    pool_given: u32,
    /// Frames that have been in the pool.
    ever_pooled: i64,
    pt_mfns: [u64; 4],
    max_page: u64,
    m2p: u64,
    hist: [[u32; HIST_CLASSES]; HIST_NR],
    snapshot: [u64; 12],
    /// The reservation the guest believes it has, and its ceiling.
    reserved: i64,
    max_reserved: i64,
    /// At least as many as the frames given back while in use that have
    /// not left the reservation yet (see the module documentation).
    given_back: i64,
    /// Frames seen to leave the reservation after the call that gave them
    /// back (at least), for the summary.
    late_frees: i64,
    /// Deep checks so far, and how often they probe with hypercalls.
    deep_checks: u64,
    probe: u64,
}

/// What a reservation call asked for, read before it runs (the call may
/// write extents over its own arguments).
#[derive(Clone, Copy)]
struct ResvArgs {
    /// +1 for increase/populate, -1 for decrease.
    sign: i64,
    order: u32,
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("hypercall_fuzz");
    let cmdline = tests::expect::text(si.cmd_line_bytes());
    let arg = |key: &str, default: u64| {
        cmdline
            .split(' ')
            .filter_map(|w| w.split_once('='))
            .find(|&(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(default)
    };
    let (seed, calls, from) = (arg("seed", 1), arg("calls", 20_000), arg("from", u64::MAX));
    let check = arg("check", 1).max(1);
    let Some(mut f) = Fuzz::new(&mut r, si, seed) else {
        r.finish()
    };
    f.probe = arg("probe", 16).max(1);
    println!("fuzz: seed {seed}, {calls} calls");
    let mut bad = 0u32;
    for i in 0..calls {
        if i % 2000 == 0 || i >= from {
            println!("fuzz: seed {seed} call {i}");
        }
        let (c, entries) = f.gen_top();
        if i >= from {
            println!("  nr {:#x} args {:#x?}", c.nr, c.a);
        }
        let resv = f.resv_args(&c, entries.is_some());
        let got = fire(&c);
        f.track_pool(&c, resv, got);
        let mut ok = f.record(c.nr, got);
        if let Some((list, n)) = entries {
            ok &= got != 0 || f.multicall_results(list, n);
        }
        f.undo(c.undo);
        if !ok {
            bad += 1;
            let what = format_args!("nr {:#x} args {:#x?} -> {}", c.nr, c.a, Rc(got));
            r.check(format_args!("seed {seed} call {i}: {what}"), false);
        }
        if !ok || i >= from {
            f.dump(&c);
        }
        if let Err(what) = f.invariants(i % check == 0, (c.nr, resv, got)) {
            let call = format_args!("nr {:#x} args {:#x?}", c.nr, c.a);
            r.check(format_args!("seed {seed} call {i} ({call}): {what}"), false);
            f.dump(&c);
            break;
        }
    }
    f.print_histogram();
    println!(
        "fuzz: {} frames left the reservation after the call that gave them back",
        f.late_frees
    );
    r.check(
        format_args!("seed {seed}: {calls} calls, {bad} unexpected results, guest intact"),
        bad == 0,
    );
    r.finish()
}

fn fire(c: &Call) -> i64 {
    // SAFETY: `Fuzz::gen*` only builds calls whose effects stay inside the
    // scratch window, the spare frames and the buffer pages, or whose state
    // changes `Fuzz::undo` reverts (see the module documentation).
    unsafe { hypercall5(c.nr, c.a[0], c.a[1], c.a[2], c.a[3], c.a[4]) }
}

/// Numbers Xen 4.17 has no 64-bit PV handler for.
fn no_handler(nr: u64) -> bool {
    nr >= 64 || matches!(nr, 11 | 38 | 43..=47 | 50..=63)
}

/// Histogram class of a result: 0 success, 1.. an errno, last invalid.
fn class(nr: u64, rc: i64) -> usize {
    if rc >= 0 || nr == hc::GET_DEBUGREG {
        return 0;
    }
    let e = rc.unsigned_abs();
    errno::ALL
        .iter()
        .position(|&(name, v)| v.unsigned_abs() == e && name != "EINTR" && name != "ERESTART")
        .map_or(HIST_CLASSES - 1, |i| i + 1)
}

fn poke(va: u64, v: u64) {
    // SAFETY: only called for blob and array addresses, window pages mapped
    // writable to spare frames no Rust object lives in.
    unsafe { (va as *mut u64).write_unaligned(v) }
}

/// `rare` if `is_rare`, else `usual` (both already evaluated).
fn choose(is_rare: bool, rare: u64, usual: u64) -> u64 {
    if is_rare {
        rare
    } else {
        usual
    }
}

fn low(v: u64) -> u64 {
    v & 0xffff_ffff
}

impl Fuzz {
    fn new(r: &mut Report, si: StartInfoRef, seed: u64) -> Option<Self> {
        let mut env = Env::new(r, si)?;
        let w = Window::new(r, &mut env)?;
        for i in [BLOBS, BLOBS + 1, SINK, ARRAYS] {
            let m = env.spare().1;
            if w.map(i, m, P | RW | US | A | D) != 0 {
                r.check(format_args!("map window page {i} (mfn {m:#x})"), false);
                return None;
            }
        }
        let pool = core::array::from_fn(|_| env.spare().1);
        let pt0 = (si.pt_base - env.v_start) / PAGE;
        let pt_last = pt0 + si.nr_pt_frames.saturating_sub(1);
        let pt_mfns = [env.l4_mfn, env.l2_mfn, env.mfn(pt0 + 1), env.mfn(pt_last)];
        let mut f = Self {
            rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            blob: w.va(BLOBS),
            blob_end: w.va(BLOBS + 2),
            arr_end: w.va(ARRAYS + 1),
            nested: false,
            env,
            w,
            pool,
            pool_given: 0,
            ever_pooled: i64::try_from(POOL).unwrap_or(i64::MAX),
            pt_mfns,
            max_page: max_page().max(0).unsigned_abs(),
            m2p: m2p_mfn().unwrap_or(ALL_ONES_MFN),
            hist: [[0; HIST_CLASSES]; HIST_NR],
            snapshot: [0; 12],
            reserved: pvmm::reservation(XENMEM_CURRENT_RESERVATION),
            max_reserved: pvmm::reservation(XENMEM_MAXIMUM_RESERVATION),
            given_back: 0,
            late_frees: 0,
            deep_checks: 0,
            probe: 16,
        };
        f.snapshot = f.state();
        let walked = f.check_mappings(true);
        if !r.check(
            format_args!("walk of the live tables: {walked:?} (tables, writable pages)"),
            walked.is_ok_and(|(tables, pages)| tables >= 3 && pages > 0),
        ) {
            return None;
        }
        if !r.check(
            format_args!("reservation {} of at most {}", f.reserved, f.max_reserved),
            f.reserved > 0 && f.reserved <= f.max_reserved,
        ) {
            return None;
        }
        Some(f)
    }

    // ---- random choices -------------------------------------------------

    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
    fn pick<T: Copy>(&mut self, s: &[T]) -> T {
        let i = self.below(s.len() as u64);
        s[usize::try_from(i).unwrap_or(0)]
    }

    /// A count: near 0, near the 31- and 32-bit limits, or anything.
    fn count(&mut self) -> u64 {
        match self.below(8) {
            0..=2 => self.below(4),
            3 => self.below(64),
            4 => self.pick(&[1 << 31, (1 << 31) - 1, 0xffff_ffff, 0xffff_fffe, 1 << 32]),
            5 => low(self.next()),
            _ => self.next(),
        }
    }
    /// A pointer no hypercall can read or write through.
    fn unreadable(&mut self) -> u64 {
        self.pick(BAD_POINTERS).1
    }
    /// A pointer into the blob pages, whose next 256 bytes are random words.
    fn blob(&mut self) -> u64 {
        let p = choose(
            self.one_in(4),
            self.blob_end - 8 * (1 + self.below(32)),
            self.blob + 8 * self.below(2 * 512 - 32),
        );
        for k in 0..32 {
            if p + 8 * k < self.blob_end {
                let v = self.word();
                poke(p + 8 * k, v);
            }
        }
        p
    }
    /// A pointer for a call that reads or writes a structure through it.
    fn pointer(&mut self) -> u64 {
        match self.below(11) {
            0..=2 => self.unreadable(),
            3 => self.env.si.pt_base + 8 * self.below(self.env.si.nr_pt_frames * 512),
            4 => pvmm::M2P + 8 * self.below(self.max_page.max(1)),
            _ => self.blob(),
        }
    }
    /// A word for a random structure.
    fn word(&mut self) -> u64 {
        match self.below(12) {
            0..=3 => self.next(),
            4 | 5 => self.below(17),
            6 => self.count(),
            7 => self.mfn_safe(),
            8 => self.blob + 8 * self.below(2 * 512),
            9 => self.unreadable(),
            10 => self
                .pick(&[DOMID_SELF, DOMID_IO, DOMID_XEN, 0, 1, 0x7fff, 0xffff])
                .into(),
            _ => self.next() & 0xffff,
        }
    }
    fn pool_mfn(&mut self) -> u64 {
        self.pick(&{ self.pool })
    }
    fn bad_mfn(&mut self) -> u64 {
        let beyond = self.max_page + self.below(1 << 20);
        self.pick(&[ALL_ONES_MFN, u64::MAX, beyond, self.m2p, 0])
    }
    /// A frame nothing may write to but a test: spare, or not ours.
    fn mfn_safe(&mut self) -> u64 {
        choose(self.one_in(2), self.pool_mfn(), self.bad_mfn())
    }
    /// A frame for page-table operations: also the live tables.
    fn mfn_pt(&mut self) -> u64 {
        match self.below(6) {
            0 => self.pick(&{ self.pt_mfns }),
            1 => self.w.l1_mfn,
            _ => self.mfn_safe(),
        }
    }
    /// A frame to map: also the image's own frames.
    fn mfn_map(&mut self) -> u64 {
        if self.one_in(5) {
            let pfn = self.below(self.env.si.first_p2m_pfn);
            self.env.mfn(pfn)
        } else {
            self.mfn_pt()
        }
    }
    fn pte(&mut self) -> u64 {
        if self.one_in(10) {
            return 0;
        }
        let flags = match self.below(6) {
            0 => self.next() & 0xfff,
            1 => P | US | A,
            2 => P | RW,
            _ => P | RW | US | A | D,
        };
        let high = choose(self.one_in(8), self.next() & (0xfff << 52), 0);
        ((self.mfn_map() << 12) & pvmm::ADDR_MASK) | flags | high
    }
    /// A linear address for page-table changes: random window pages or bad.
    fn scratch_va(&mut self) -> u64 {
        if self.one_in(5) {
            self.unreadable()
        } else {
            let page = FIRST_RANDOM + self.below(512 - FIRST_RANDOM);
            self.w.va(page)
        }
    }
    fn domid(&mut self) -> u64 {
        match self.below(4) {
            0 | 1 => DOMID_SELF.into(),
            _ => low(self.word()),
        }
    }
    /// `bytes` at the top of what is left of the arrays page.
    fn array(&mut self, bytes: u64) -> u64 {
        self.arr_end -= bytes;
        self.arr_end
    }

    // ---- generation -----------------------------------------------------

    /// A top-level call; for a multicall also (list, entries to check).
    fn gen_top(&mut self) -> (Call, Option<(u64, u64)>) {
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

    // ---- results and state ----------------------------------------------

    fn record(&mut self, nr: u64, rc: i64) -> bool {
        let class = class(nr, rc);
        let row = usize::try_from(nr.min(64)).unwrap_or(64);
        self.hist[row][class] += 1;
        class != HIST_CLASSES - 1 && (!no_handler(nr) || rc == -ENOSYS)
    }

    fn multicall_results(&mut self, list: u64, n: u64) -> bool {
        let mut ok = true;
        for e in 0..n {
            let (nr, res) = (read_u64(list + e * 64), read_u64(list + e * 64 + 8));
            if !self.record(nr, res.cast_signed()) {
                println!(
                    "  multicall entry {e}: nr {nr:#x} -> {}",
                    Rc(res.cast_signed())
                );
                ok = false;
            }
        }
        ok
    }

    fn undo(&mut self, undo: u32) {
        let b = self.blob;
        let fix = |bit: u32, nr: u64, a: [u64; 4]| {
            if undo & bit != 0 {
                fire(&Call {
                    nr,
                    a: [a[0], a[1], a[2], a[3], 0],
                    undo: 0,
                });
            }
        };
        fix(UNDO_TRAPS, hc::SET_TRAP_TABLE, [0; 4]);
        fix(UNDO_CALLBACKS, hc::SET_CALLBACKS, [0; 4]);
        fix(UNDO_FPU, hc::FPU_TASKSWITCH, [0; 4]);
        fix(UNDO_GDT, hc::SET_GDT, [b, 0, 0, 0]);
        fix(UNDO_NMI, hc::NMI_OP, [1, 0, 0, 0]);
        for which in 0..4 {
            fix(UNDO_SEG, hc::SET_SEGMENT_BASE, [which, 0, 0, 0]);
        }
        if undo & UNDO_LDT != 0 {
            [13, 0, 0]
                .into_iter()
                .zip(0..)
                .for_each(|(v, k)| poke(b + 8 * k, v));
            fix(UNDO_LDT, hc::MMUEXT_OP, [b, 1, 0, DOMID_SELF.into()]);
        }
        if undo & UNDO_CALLBACKS != 0 {
            for ty in [3, 5, 7] {
                poke(b, ty);
                poke(b + 8, 0);
                fire(&Call {
                    nr: hc::CALLBACK_OP,
                    a: [0, b, 0, 0, 0],
                    undo: 0,
                });
            }
        }
    }

    /// What must not change: code, own page-table entries, the window.
    fn state(&self) -> [u64; 12] {
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

    /// For a reservation call whose effect the guest can predict: its
    /// direction and extent order. `None` for any other call.
    fn resv_args(&self, c: &Call, multicall: bool) -> Option<ResvArgs> {
        if multicall || c.nr != hc::MEMORY_OP {
            return None;
        }
        let sign = match c.a[0] {
            0 | 6 => 1,
            1 => -1,
            _ => return None,
        };
        let p = c.a[1];
        if !(self.blob..self.blob_end.saturating_sub(32)).contains(&p) {
            return None;
        }
        // struct xen_memory_reservation: extent_order at 16, domid at 24.
        let order = read_u64(p + 16) & 0xffff_ffff;
        let domid = read_u64(p + 24) & 0xffff;
        let ours = domid == u64::from(DOMID_SELF) || domid == 0;
        let order = u32::try_from(order).ok().filter(|&o| o < 32 && ours)?;
        Some(ResvArgs { sign, order })
    }

    /// Keeps the spare pool stocked: a frame a predicted decrease reported
    /// given back frees its slot (the frame may go any time), and frames a
    /// predicted increase or populate reported handed out (fresh, unused)
    /// fill free slots.
    fn track_pool(&mut self, c: &Call, resv: Option<ResvArgs>, rc: i64) {
        let Some(a) = resv else {
            return;
        };
        let p = c.a[1];
        let (list, n) = (read_u64(p), read_u64(p + 8));
        let done = u64::try_from(rc).unwrap_or(0).min(n).min(512);
        let in_blobs = list >= self.blob
            && list
                .checked_add(8 * done)
                .is_some_and(|end| end <= self.blob_end);
        if !in_blobs {
            return;
        }
        for k in 0..done {
            let first = read_u64(list + 8 * k);
            for m in (0..1u64 << a.order).map(|j| first.wrapping_add(j)) {
                if a.sign < 0 {
                    for (slot, _) in self.pool.iter().enumerate().filter(|&(_, &f)| f == m) {
                        self.pool_given |= 1 << slot;
                    }
                } else if self.pool_given != 0 {
                    let slot = self.pool_given.trailing_zeros();
                    self.pool[slot as usize] = m;
                    self.pool_given &= !(1 << slot);
                    self.ever_pooled += 1;
                }
            }
        }
    }

    /// The reservation is what the guest believes after call `nr` (`resv`
    /// its arguments if it was a predictable reservation call, `rc` its
    /// result): what the call reported received or given back, less up to
    /// [`Fuzz::given_back`] frames freed late.
    fn check_reservation(
        &mut self,
        (nr, resv, rc): (u64, Option<ResvArgs>, i64),
    ) -> Result<(), &'static str> {
        let now = pvmm::reservation(XENMEM_CURRENT_RESERVATION);
        // Frames received and frames given back, as the call reported.
        let (got, gave) = match resv {
            Some(a) => {
                let done = rc.max(0) << a.order;
                if a.sign > 0 {
                    (done, 0)
                } else {
                    (0, done)
                }
            }
            // A multicall may hold reservation calls; a memory_op with
            // another layout (a start extent, an argument outside the
            // blobs, exchange) and a grant-table op (GNTTABOP_transfer
            // gives a page away on Xen) are not predicted: their change is
            // only bounded, and any frame that has been in the pool may
            // have been given back.
            None if matches!(nr, hc::MULTICALL | hc::MEMORY_OP | hc::GRANT_TABLE_OP) => {
                self.given_back = self.ever_pooled;
                self.reserved = now;
                return self.check_bounds(now);
            }
            None => (0, 0),
        };
        let prev = self.reserved;
        self.reserved = now;
        self.check_bounds(now)?;
        // Frames that left: given back by this call, or freed late.
        let left = prev + got - now;
        let may_leave = self.given_back + gave;
        if !(0..=may_leave).contains(&left) {
            println!(
                "  reservation {prev} -> {now}: {got} received, {left} left, at most {may_leave} may"
            );
            return Err("reservation changed other than the call reported");
        }
        // Only frames in use can leave late, and those have been spare
        // frames (which the guest may give back more than once).
        self.given_back = (may_leave - left).min(self.ever_pooled);
        self.late_frees += (left - gave).max(0);
        Ok(())
    }

    fn check_bounds(&self, now: i64) -> Result<(), &'static str> {
        if now <= 0 || now > self.max_reserved {
            println!("  reservation {now}, maximum {}", self.max_reserved);
            return Err("reservation out of bounds");
        }
        Ok(())
    }

    /// Walks the live tables: no writable mapping of a table walked or of
    /// a bootstrap table; with `probe`, every spare frame mapped writable
    /// must still take a writable type.
    fn check_mappings(&self, probe: bool) -> Result<(usize, u32), &'static str> {
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

    fn invariants(
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

    /// Prints the array a call acts on (the rest is replayed by the seed).
    fn dump(&self, c: &Call) {
        let arrays = self.w.va(ARRAYS)..self.w.va(ARRAYS + 1);
        let (list, n) = (c.a[0], low(c.a[1]).min(8));
        let stride = match c.nr {
            hc::MMU_UPDATE => 2,
            hc::MMUEXT_OP => 3,
            hc::MULTICALL => 8,
            hc::SET_GDT if (self.blob..self.blob_end).contains(&list) => {
                let frames = (low(c.a[1]).div_ceil(512)).min(16);
                for k in 0..frames {
                    println!("  frame {k}: {:#x}", read_u64(list + 8 * k));
                }
                return;
            }
            _ => return,
        };
        for e in 0..n {
            if arrays.contains(&(list + e * stride * 8)) {
                let words: [u64; 8] =
                    core::array::from_fn(|k| read_u64(list + 8 * (e * stride + k as u64 % stride)));
                println!(
                    "  [{e}] {:#x?}",
                    &words[..usize::try_from(stride).unwrap_or(0)]
                );
            }
        }
    }

    fn print_histogram(&self) {
        for (nr, row) in (0u64..).zip(&self.hist) {
            if row.iter().all(|&n| n == 0) {
                continue;
            }
            let name = hc::info(nr).map_or(if nr == 64 { ">=64" } else { "-" }, |h| h.name);
            guest_abi::print!("hist {nr:2} {name}: ok={}", row[0]);
            for (k, &n) in row.iter().enumerate().skip(1) {
                if n > 0 {
                    let what = errno::ALL.get(k - 1).map_or("INVALID", |e| e.0);
                    guest_abi::print!(" {what}={n}");
                }
            }
            println!();
        }
    }
}
