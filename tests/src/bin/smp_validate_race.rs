//! Two vCPUs on two physical CPUs give page-table types to the same
//! frames at the same moment. The tables: L1 C, all 512 entries mapping
//! a data frame G read-only (so validating C takes a while), and two L2s
//! P and Q whose entry 0 is C; none of them typed between rounds. In each
//! round both vCPUs start together (vCPU 0 a little later each round of
//! a kind, so that either may come first), one of three ways (24 rounds
//! each):
//!
//! 1. vCPU 0 pins P and vCPU 1 pins Q: both validate C, fresh, as their
//!    child. Both pins succeed: the second to take C's L1 type waits until
//!    the first has validated it (or takes it validated), never uses a
//!    half-validated C nor fails on it. Unpinning both leaves C untyped.
//! 2. Both pin P: exactly one succeeds; the other gets Xen's answer for
//!    a table already pinned, -EINVAL, and P is pinned once (one unpin
//!    succeeds, a second is -EINVAL).
//! 3. vCPU 0 pins P while vCPU 1 maps C writable: exactly one succeeds
//!    (C is an L1 or writable, never both); the pin that loses gets
//!    -EINVAL, the mapping that loses -EBUSY.
//!
//! A frame table whose type changes were not atomic with their
//! validation would fail a pin in 1, let both pins succeed in 2 (or drop
//! P's type count below its pins), or let both succeed in 3: a page
//! table mapped writable. Afterwards every frame has all its references
//! back (`tests::pvmm::check_released`).
//!
//! @vcpus: 2
//! @smp: 2
//! @timeout: 120
//! @covers: mmuext_op.pin_l2_table mmuext_op.unpin_table update_va_mapping
//! @covers: mmu_update.normal_pt_update
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};

use guest_abi::errno::{EBUSY, EINVAL};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{
    MmuUpdate, MMUEXT_CLEAR_PAGE, MMUEXT_PIN_L2_TABLE, MMUEXT_UNPIN_TABLE, MMU_NORMAL_PT_UPDATE,
    UVMF_INVLPG,
};
use tests::check;
use tests::pages::Pages;
use tests::pvmm::{self, mmu_update, mmuext1, pt_write, Env, Window, A, KRO, KRW, P, RW, US};
use tests::vcpu::{self, Rounds};

guest_abi::pv_guest!(main, name = "smp_validate_race");

const ROUNDS: u64 = 72;
/// vCPU 0 starts first; in the `j`th round of a kind it waits `j` times
/// this many spins before its call, sweeping the race's window so that
/// either side wins some rounds.
const DELAY: u64 = 1500;
/// The window page vCPU 1 maps C at; the one the final checks use.
const MAP_AT: u64 = 20;
const CHECK_AT: u64 = 21;
const SPINS: u64 = 1 << 28;

/// The rounds; what vCPU 1 does in one (its kind, the frame it acts on,
/// where it maps it) and its result.
static ROUNDS_SYNC: Rounds = Rounds::new();
static KIND: AtomicU64 = AtomicU64::new(0);
static FRAME: AtomicU64 = AtomicU64::new(0);
static MAP_VA: AtomicU64 = AtomicU64::new(0);
static RC: AtomicI64 = AtomicI64::new(0);
static STACK: Pages<4> = Pages::new();

const PIN_OTHER: u64 = 0;
const PIN_SAME: u64 = 1;
const PIN_VS_MAP: u64 = 2;

/// vCPU 1: each round, pins `FRAME` as an L2 or maps it writable at
/// `MAP_VA`, the moment vCPU 0 says go.
extern "C" fn racer(_: u64) -> ! {
    let mut k = 0;
    loop {
        k += 1;
        ROUNDS_SYNC.wait_round(k);
        let (kind, frame, va) = (KIND.load(SeqCst), FRAME.load(SeqCst), MAP_VA.load(SeqCst));
        ROUNDS_SYNC.ready_wait_go(k);
        let rc = if kind == PIN_VS_MAP {
            pvmm::uvm(va, (frame << 12) | KRW, UVMF_INVLPG)
        } else {
            mmuext1(MMUEXT_PIN_L2_TABLE, frame, 0)
        };
        RC.store(rc, SeqCst);
        ROUNDS_SYNC.done(k);
    }
}

/// The frames: data G, L1 C, L2s P and Q.
struct Tables {
    g: u64,
    c: u64,
    p: u64,
    q: u64,
}

/// Builds the tables as plain memory (raw `mmu_update` writes to
/// untyped frames); `None` after a failed check.
fn build(r: &mut Report, env: &mut Env) -> Option<Tables> {
    let [g, c, p, q] = core::array::from_fn(|_| env.spare().1);
    let mut ok = true;
    for (what, m) in [("G", g), ("C", c), ("P", p), ("Q", q)] {
        ok &= check!(r, "CLEAR_PAGE {what} (mfn {m:#x})", mmuext1(MMUEXT_CLEAR_PAGE, m, 0) => 0);
    }
    for chunk in 0..8u64 {
        let reqs: [MmuUpdate; 64] = core::array::from_fn(|i| MmuUpdate {
            ptr: ((c << 12) + (chunk * 64 + i as u64) * 8) | MMU_NORMAL_PT_UPDATE,
            val: (g << 12) | KRO,
        });
        let (lo, hi) = (chunk * 64, chunk * 64 + 63);
        ok &= check!(r, "C[{lo}..={hi}] = G read-only", mmu_update(&reqs, None) => 0);
    }
    let l2e = (c << 12) | P | RW | US | A;
    ok &= check!(r, "P[0] = C", pt_write(p << 12, l2e) => 0)
        && check!(r, "Q[0] = C", pt_write(q << 12, l2e) => 0);
    ok.then_some(Tables { g, c, p, q })
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("smp_validate_race");
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(w) = Window::new(&mut r, &mut env) else {
        r.finish()
    };
    let Some(t) = build(&mut r, &mut env) else {
        r.finish()
    };
    if !check!(r, "bring up vCPU 1", vcpu::start(1, racer, STACK.top(), env.l4_mfn) => 0) {
        r.finish()
    }
    // Per kind: rounds won by vCPU 0 and by vCPU 1.
    let mut wins = [[0u64; 2]; 3];
    let mut ok = true;
    for k in 0..ROUNDS {
        let kind = k % 3;
        let Some(won) = round(&mut r, &w, &t, k, kind) else {
            ok = false;
            break;
        };
        wins[kind as usize][won] += 1;
    }
    r.check("every round as expected", ok);
    for (kind, [a, b]) in ["same L2", "pin against map"].iter().zip(&wins[1..]) {
        println!("{kind}: vCPU 0 won {a} rounds, vCPU 1 {b}");
    }
    pvmm::check_released(
        &mut r,
        &w,
        CHECK_AT,
        &[("G", t.g), ("C", t.c), ("P", t.p), ("Q", t.q)],
    );
    r.finish()
}

/// Runs round `k` of `kind` and undoes it; the winner (0 or 1; 0 where
/// both succeed), or `None` after a failed check.
fn round(r: &mut Report, w: &Window, t: &Tables, k: u64, kind: u64) -> Option<usize> {
    let theirs = match kind {
        PIN_OTHER => t.q,
        PIN_SAME => t.p,
        _ => t.c,
    };
    KIND.store(kind, SeqCst);
    FRAME.store(theirs, SeqCst);
    MAP_VA.store(w.va(MAP_AT), SeqCst);
    if !check!(r, "round {k}: vCPU 1 ready", ROUNDS_SYNC.publish(k + 1, SPINS) => true) {
        return None;
    }
    ROUNDS_SYNC.go(k + 1);
    for _ in 0..(k / 3) * DELAY {
        core::hint::spin_loop();
    }
    let mine = mmuext1(MMUEXT_PIN_L2_TABLE, t.p, 0);
    let done = ROUNDS_SYNC.wait_done(k + 1, SPINS);
    let theirs_rc = done.then(|| RC.load(SeqCst));
    let ok = match kind {
        PIN_OTHER => {
            check!(r, "round {k}: pin P and, on vCPU 1, Q, sharing C", (mine, theirs_rc) => (0, Some(0)))
                && check!(r, "unpin P", mmuext1(MMUEXT_UNPIN_TABLE, t.p, 0) => 0)
                && check!(r, "unpin Q", mmuext1(MMUEXT_UNPIN_TABLE, t.q, 0) => 0)
        }
        PIN_SAME => {
            let one = match (mine, theirs_rc) {
                (0, Some(rc)) => rc,
                (rc, Some(0)) => rc,
                _ => 1,
            };
            check!(r, "round {k}: both pin P ({mine}, {theirs_rc:?}): the loser's answer", one => -EINVAL)
                && check!(r, "unpin P", mmuext1(MMUEXT_UNPIN_TABLE, t.p, 0) => 0)
                && check!(r, "unpin P again", mmuext1(MMUEXT_UNPIN_TABLE, t.p, 0) => -EINVAL)
        }
        _ => {
            let ok = match (mine, theirs_rc) {
                (0, Some(rc)) => {
                    check!(r, "round {k}: pin P won, mapping C writable", rc => -EBUSY)
                }
                (rc, Some(0)) => {
                    check!(r, "round {k}: mapping C writable won, pin P", rc => -EINVAL)
                }
                (rc, got) => check!(r, "round {k}: pin P against map C writable: one succeeds",
                    (rc, got) => (0, Some(-EBUSY))),
            };
            let undo = if mine == 0 {
                check!(r, "unpin P", mmuext1(MMUEXT_UNPIN_TABLE, t.p, 0) => 0)
            } else {
                check!(r, "unmap C", w.unmap(MAP_AT) => 0)
            };
            ok && undo
        }
    };
    ok.then_some(usize::from(mine != 0))
}
