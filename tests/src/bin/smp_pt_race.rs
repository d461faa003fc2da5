//! Reference counts stay balanced when several CPUs change the same page
//! table at once. Four vCPUs on four physical CPUs share one L1 table T,
//! hooked into an L2 slot S of the bootstrap L2 now and then. In each of
//! 320 steps:
//!
//! - vCPU 3 changes T's state once, cycling through pin, hook, unpin,
//!   unhook, hook, pin, unhook, unpin, so that T is validated, in use, and
//!   torn down (its entries' references dropped) again and again;
//! - at the same moment vCPUs 0, 1 and 2 each rewrite the same entry of T
//!   six times: a mapping of their own data frame writable, read-only,
//!   then nothing, by `mmu_update` of the entry's machine address in
//!   every other step and by `update_va_mapping` (no flush) of its virtual
//!   address in S in the others (5760 updates in all).
//!
//! An entry update that read the old entry outside the table's lock, or
//! raced with T's validation or teardown, would drop a reference twice or
//! not at all, or leave a writable mapping of a frame uncounted. While T
//! is not a page table, `mmu_update` writes it as plain memory, and
//! `update_va_mapping` finds no L1 (S is empty, or T is not validated yet):
//! Xen answers those with -EINVAL, and so do a pin or a hook that meet T
//! typed writable for a moment by such a write. Every other result is 0:
//! unpinning and unhooking always succeed. Afterwards the entry is
//! cleared and T unhooked and unpinned, and T and the three data frames
//! have all their references back (`tests::pvmm::check_released`).
//!
//! @vcpus: 4
//! @smp: 4
//! @timeout: 120
//! @covers: mmu_update.normal_pt_update update_va_mapping mmuext_op.pin_l1_table
//! @covers: mmuext_op.unpin_table
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use guest_abi::errno::EINVAL;
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{MMUEXT_CLEAR_PAGE, MMUEXT_PIN_L1_TABLE, MMUEXT_UNPIN_TABLE, UVMF_NONE};
use tests::check;
use tests::pages::Pages;
use tests::pvmm::{self, mmuext1, pt_write, uvm, Slot, A, KRO, KRW, P, RW, US};
use tests::vcpu;

guest_abi::pv_guest!(main, name = "smp_pt_race");

const NR_VCPUS: u32 = 4;
const PINNER: u32 = 3;
/// The pinner's steps (cycles of 8); in each, every writer rewrites the
/// entry `BURST` times.
const STEPS: u64 = 8 * 40;
const BURST: u64 = 6;
/// The entry of T every writer rewrites.
const ENTRY: u64 = 5;
const SPINS: u64 = 1 << 30;

/// What vCPU 0 hands the others: T, S's L2 entry and virtual address, and
/// each writer's data frame.
static T_MFN: AtomicU64 = AtomicU64::new(0);
static S_L2E_MA: AtomicU64 = AtomicU64::new(0);
static S_BASE: AtomicU64 = AtomicU64::new(0);
static DATA: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
static GO: AtomicU64 = AtomicU64::new(0);
/// Results per vCPU and operation ([`OPS`]): answered 0, -EINVAL (where
/// allowed), anything else; and the last such other result.
static COUNTS: [[[AtomicU64; 3]; 6]; 4] =
    [const { [const { [const { AtomicU64::new(0) }; 3] }; 6] }; 4];
static LAST_OTHER: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
const OPS: [&str; 6] = [
    "mmu_update of the entry",
    "update_va_mapping of the entry",
    "unhook T",
    "hook T",
    "unpin T",
    "pin T",
];
/// The pinner's current step; the last step each writer finished its
/// burst of; the pinner's final state (bit 0 pinned, bit 1 hooked) plus 4
/// once it has stopped.
static STEP: AtomicU64 = AtomicU64::new(0);
static BURST_DONE: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
static PINNER_STATE: AtomicU64 = AtomicU64::new(0);
static STACKS: Pages<{ 4 * NR_VCPUS as usize }> = Pages::new();

/// Counts `rc` for vCPU `id` as op `what`: 0 is fine, -EINVAL is fine
/// where `einval_ok`, anything else is not.
fn count(id: usize, op: usize, rc: i64, einval_ok: bool) {
    let kind = match rc {
        0 => 0,
        _ if rc == -EINVAL && einval_ok => 1,
        _ => {
            LAST_OTHER[id].store(rc.unsigned_abs(), SeqCst);
            2
        }
    };
    COUNTS[id][op][kind].fetch_add(1, SeqCst);
}

/// A writer: in each of the pinner's steps, as soon as it starts,
/// rewrites T's entry `BURST` times.
fn write_entry(id: usize) {
    let t = T_MFN.load(SeqCst);
    let data = DATA[id].load(SeqCst);
    let ma = (t << 12) + ENTRY * 8;
    let va = S_BASE.load(SeqCst) + ENTRY * 4096;
    for step in 1..=STEPS {
        while STEP.load(SeqCst) < step {
            core::hint::spin_loop();
        }
        for i in 0..BURST {
            let val = match i % 3 {
                0 => (data << 12) | KRW,
                1 => (data << 12) | KRO,
                _ => 0,
            };
            // Both answer -EINVAL when T is not a validated, hooked L1
            // (see the module comment); mmu_update also when T is being
            // validated.
            if (step + id as u64).is_multiple_of(2) {
                count(id, 0, pt_write(ma, val), true);
            } else {
                count(id, 1, uvm(va, val, UVMF_NONE), true);
            }
        }
        BURST_DONE[id].store(step, SeqCst);
    }
}

/// vCPU 3: cycles T through pins and hooks, one change a step, each
/// step once every writer has finished the last one's burst.
fn pinner() {
    let id = PINNER as usize;
    let t = T_MFN.load(SeqCst);
    let l2e = S_L2E_MA.load(SeqCst);
    let (mut pinned, mut hooked) = (false, false);
    for step in 0..STEPS {
        while BURST_DONE.iter().any(|b| b.load(SeqCst) < step) {
            core::hint::spin_loop();
        }
        STEP.store(step + 1, SeqCst);
        // pin, hook, unpin, unhook, hook, pin, unhook, unpin.
        let (pin, on) = match step % 8 {
            0 | 5 => (true, true),
            1 | 4 => (false, true),
            2 | 7 => (true, false),
            _ => (false, false),
        };
        let now = if pin { pinned } else { hooked };
        if now == on {
            // A pin or a hook refused earlier: nothing to undo.
            continue;
        }
        let rc = match (pin, on) {
            (true, true) => mmuext1(MMUEXT_PIN_L1_TABLE, t, 0),
            (true, false) => mmuext1(MMUEXT_UNPIN_TABLE, t, 0),
            (false, true) => pt_write(l2e, (t << 12) | P | RW | US | A),
            (false, false) => pt_write(l2e, 0),
        };
        // Only taking a reference may meet T typed writable.
        count(id, 2 + usize::from(pin) * 2 + usize::from(on), rc, on);
        if rc == 0 {
            if pin {
                pinned = on;
            } else {
                hooked = on;
            }
        }
    }
    PINNER_STATE.store(4 | u64::from(pinned) | u64::from(hooked) << 1, SeqCst);
}

extern "C" fn worker(id: u64) -> ! {
    while GO.load(SeqCst) == 0 {
        core::hint::spin_loop();
    }
    if id == u64::from(PINNER) {
        pinner();
    } else {
        write_entry(usize::try_from(id).unwrap_or(0));
    }
    loop {
        core::hint::spin_loop();
    }
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("smp_pt_race");
    let Some((mut env, w, s)) = pvmm::env_window_slot(&mut r, si) else {
        r.finish()
    };
    let t = env.spare().1;
    let data: [u64; 3] = core::array::from_fn(|_| env.spare().1);
    let mut ok = check!(r, "CLEAR_PAGE T (mfn {t:#x})", mmuext1(MMUEXT_CLEAR_PAGE, t, 0) => 0);
    for (i, &d) in data.iter().enumerate() {
        ok &= check!(r, "CLEAR_PAGE data frame {i} (mfn {d:#x})", mmuext1(MMUEXT_CLEAR_PAGE, d, 0) => 0);
        DATA[i].store(d, SeqCst);
    }
    T_MFN.store(t, SeqCst);
    S_L2E_MA.store(s.l2e_ma, SeqCst);
    S_BASE.store(s.base, SeqCst);
    for v in 1..NR_VCPUS {
        let top = STACKS.addr() + u64::from(v) * 4 * 4096;
        ok &= check!(r, "bring up vCPU {v}", vcpu::start(v, worker, top, env.l4_mfn) => 0);
    }
    if !ok {
        r.finish()
    }
    GO.store(1, SeqCst);
    write_entry(0);
    let done = vcpu::wait_until(SPINS, || PINNER_STATE.load(SeqCst) & 4 != 0);
    check!(r, "all four vCPUs finished", done => true);
    report_counts(&mut r);
    let state = PINNER_STATE.load(SeqCst);
    cleanup(&mut r, t, &s, state & 1 != 0, state & 2 != 0);
    pvmm::check_released(
        &mut r,
        &w,
        8,
        &[
            ("T", t),
            ("data 0", data[0]),
            ("data 1", data[1]),
            ("data 2", data[2]),
        ],
    );
    r.finish()
}

fn report_counts(r: &mut Report) {
    for (v, ops) in COUNTS.iter().enumerate() {
        let mut other = 0;
        for (op, c) in OPS.iter().zip(ops) {
            let [ok, einval, bad] = core::array::from_fn(|k| c[k].load(SeqCst));
            if ok + einval + bad != 0 {
                println!("vCPU {v}: {op}: {ok} answered 0, {einval} -EINVAL, {bad} other");
            }
            other += bad;
        }
        let last = LAST_OTHER[v].load(SeqCst);
        r.check(
            format_args!("vCPU {v}: unexpected results: {other} (the last -{last})"),
            other == 0,
        );
    }
    // Without pins and hooks that took, and entry updates that took while
    // T was in use, the race did not happen.
    let pinner = &COUNTS[PINNER as usize];
    let (pins, hooks) = (pinner[5][0].load(SeqCst), pinner[3][0].load(SeqCst));
    r.check(
        format_args!("vCPU {PINNER} pinned T {pins} times and hooked it {hooks} times"),
        pins >= 8 && hooks >= 8,
    );
    let typed = (0..3).map(|v| COUNTS[v][1][0].load(SeqCst)).sum::<u64>();
    r.check(
        format_args!("update_va_mapping through hooked T took {typed} times"),
        typed >= 8,
    );
}

/// Clears T's entry, unhooks and unpins T as the pinner left it.
fn cleanup(r: &mut Report, t: u64, s: &Slot, pinned: bool, hooked: bool) {
    check!(r, "clear T's entry {ENTRY}", pt_write((t << 12) + ENTRY * 8, 0) => 0);
    if hooked {
        check!(r, "unhook T from S", pt_write(s.l2e_ma, 0) => 0);
    }
    if pinned {
        check!(r, "unpin T", mmuext1(MMUEXT_UNPIN_TABLE, t, 0) => 0);
    }
}
