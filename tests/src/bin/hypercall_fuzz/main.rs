//! Random hypercalls, deterministic per seed: the guest survives and every
//! result is a non-negative value or one of Xen's `-errno`s.
//!
//! A seeded xorshift (`seed=N` on the command line; `calls=N` sets how many,
//! `from=N` prints every call from index N on, to replay a failure;
//! `check=N` runs the deep checks every N calls, default 1; `probe=N` the
//! hypercall probes of mapped frames every N deep checks, default 16) picks
//! a number and arguments biased toward the interesting (`random`):
//! sub-command numbers valid and not, pointers that are null, unmapped,
//! non-canonical, in the hypervisor's range, in the read-only bootstrap
//! page tables (`pt_base`) or the read-only M2P, or in a scratch buffer of
//! random words (so structures get random contents, laced with counts near
//! 0/2^31/2^32-1, domids and MFNs), and MFNs that are the guest's own,
//! spare, the hypervisor's, past the end of memory or all-ones.
//!
//! The pieces, one module each: `calls` builds each call (and leaves out
//! what would end or wreck the run rather than test the hypervisor);
//! `restore` puts back right after a call whatever changes how the next
//! fault or event would be delivered; `results` counts every result in a
//! histogram (numbers with no handler must give `-ENOSYS`) and prints what
//! a failing call acted on; `reservation` checks after every top-level call
//! that hv answered with the reservation the calls reported, and keeps the
//! spare pool stocked; `integrity` checks that the guest's code, its own
//! page tables and its window are intact, and walks its live page tables
//! for a writable mapping of a page table. `cargo xtask fuzz` runs this
//! guest over many seeds (see the README's Fuzzing section).
//!
//! @cmdline: seed=1
//! @timeout: 150
//! @variant: seed5 cmdline=seed=5
//! @variant: seed12 cmdline=seed=12
#![no_std]
#![no_main]

mod calls;
mod integrity;
mod random;
mod reservation;
mod restore;
mod results;

use guest_abi::hypercall::hypercall5;
use guest_abi::memory::{XENMEM_CURRENT_RESERVATION, XENMEM_MAXIMUM_RESERVATION};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use tests::expect::Rc;
use tests::pvmm::{self, m2p_mfn, max_page, Env, Window, A, ALL_ONES_MFN, D, P, RW, US};

use results::Histogram;

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
/// Spare frames the calls may clobber, map, pin and give back.
const POOL: usize = 32;

/// One hypercall: its number, its arguments, and what to put back after
/// it (`restore`).
#[derive(Clone, Copy, Default)]
struct Call {
    nr: u64,
    a: [u64; 5],
    undo: u32,
}

/// The fuzzer: its random state, the guest's memory it works in, the
/// result histogram and what the checks remember between calls.
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
    hist: Histogram,
    snapshot: [u64; 12],
    /// The reservation the guest believes it has, and its ceiling.
    reserved: i64,
    max_reserved: i64,
    /// At least as many as the frames given back while in use that have
    /// not left the reservation yet (see `reservation`).
    given_back: i64,
    /// Frames seen to leave the reservation after the call that gave them
    /// back (at least), for the summary.
    late_frees: i64,
    /// Deep checks so far, and how often they probe with hypercalls.
    deep_checks: u64,
    probe: u64,
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
        let mut ok = f.hist.record(c.nr, got);
        if let Some((list, n)) = entries {
            ok &= got != 0 || f.hist.multicall_results(list, n);
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
    f.hist.print();
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
    // changes `Fuzz::undo` reverts (see the `calls` module documentation).
    unsafe { hypercall5(c.nr, c.a[0], c.a[1], c.a[2], c.a[3], c.a[4]) }
}

fn poke(va: u64, v: u64) {
    // SAFETY: only called for blob and array addresses, window pages mapped
    // writable to spare frames no Rust object lives in.
    unsafe { (va as *mut u64).write_unaligned(v) }
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
            hist: Histogram::new(),
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
}
