//! A translation cached in another CPU's TLB outlives the mapping it came
//! from; the frame it points to must not change type while it may be
//! used. Two vCPUs on two physical CPUs, over 30 rounds:
//!
//! - Forward (rounds of the kinds L1, L2, L3, GDT): vCPU 1 maps a cleared
//!   frame F writable at X and writes a mark through it (its TLB now
//!   holds X -> F writable), says so and spins without a hypercall.
//!   vCPU 0 removes the mapping without asking for a flush (`mmu_update`
//!   of the L1 entry, `update_va_mapping` with `UVMF_NONE`, or, when the
//!   mapping is in an L1 T2 that only an L2 entry holds, clearing that
//!   entry, which tears T2 down and drops its entries' references) and at
//!   once pins F as an L1, L2 or L3 table or makes it its GDT
//!   (`set_gdt`). Then vCPU 1 writes a poison word through X: the write
//!   must take a #PF (not present, write) and F must hold the mark only.
//!   Without the flush Xen does at the type change (F's TLB-flush
//!   timestamp, taken when its last writable reference went, is newer
//!   than vCPU 1's CPU's last flush, so that CPU is flushed before F is
//!   validated), the write would land in a validated page table or GDT:
//!   a guest could then write any entry into a live table and map any
//!   machine frame, or write any descriptor.
//! - Reverse (the fifth kind): F is a pinned L1 that vCPU 1 maps
//!   read-only at X and reads. vCPU 0 removes that mapping (as above),
//!   unpins F and maps it writable elsewhere, the type change from L1 to
//!   writable; vCPU 1's next read through X must take a #PF (not
//!   present, read): the frame is written as data while no CPU may
//!   still use a translation of it (as Xen flushes at every type change,
//!   which is what keeps a paging-structure cache of the old L1 from
//!   being walked after the guest has rewritten it).
//!
//! The poison and the marks are not-present entries and descriptors, so
//! a write that lands leaves every table valid.
//!
//! @vcpus: 2
//! @smp: 2
//! @timeout: 120
//! @covers: mmu_update.normal_pt_update update_va_mapping mmuext_op.pin_l1_table
//! @covers: mmuext_op.pin_l2_table mmuext_op.pin_l3_table mmuext_op.unpin_table set_gdt
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};

use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{
    MMUEXT_CLEAR_PAGE, MMUEXT_PIN_L1_TABLE, MMUEXT_PIN_L2_TABLE, MMUEXT_PIN_L3_TABLE,
    MMUEXT_UNPIN_TABLE, UVMF_INVLPG, UVMF_NONE,
};
use tests::check;
use tests::fixup::{self, Fault};
use tests::pages::Pages;
use tests::pvmm::{
    self, mmuext1, pt_write, read_u64, uvm, Slot, Window, A, KRO, KRW, P, PAGE, RW, US,
};
use tests::vcpu::{self, Rounds};

guest_abi::pv_guest!(main, name = "smp_stale_tlb");

const ROUNDS: u64 = 30;
/// Not-present entries (bit 0 clear, no address): valid in any table.
const POISON: u64 = 0xbad0;
const fn mark(round: u64) -> u64 {
    (round + 1) << 1
}
/// Window pages: where vCPU 1 maps F (one of 8), where vCPU 0 looks at it.
const X_FIRST: u64 = 16;
const Y: u64 = 40;
/// Spins before a wait for the other vCPU counts as a hang.
const SPINS: u64 = 1 << 28;

/// The rounds; what vCPU 0 asks of vCPU 1 in one: map `F_MFN` at `X_VA`
/// (`REVERSE`: read-only, and read) and touch word `OFF` through it.
static ROUNDS_SYNC: Rounds = Rounds::new();
static F_MFN: AtomicU64 = AtomicU64::new(0);
static X_VA: AtomicU64 = AtomicU64::new(0);
static OFF: AtomicU64 = AtomicU64::new(0);
static REVERSE: AtomicU64 = AtomicU64::new(0);
/// vCPU 1's answers: its trap table's result, the map's result and the
/// first touch's fault, if any (when ready), and the second access's
/// fault (when done).
static TRAPS_RC: AtomicI64 = AtomicI64::new(i64::MIN);
static MAP_RC: AtomicI64 = AtomicI64::new(0);
static FIRST: AtomicU64 = AtomicU64::new(0);
static SECOND: AtomicU64 = AtomicU64::new(0);
static SECOND_EC: AtomicU64 = AtomicU64::new(0);
static STACK: Pages<4> = Pages::new();

/// A probe's outcome as a word: 0 if it went through, else the vector.
fn outcome<T>(r: &Result<T, Fault>) -> u64 {
    r.as_ref().map_or_else(|f| f.vector, |_| 0)
}

/// vCPU 1: each round, map and touch F, then (no hypercall in between)
/// touch it again when told.
extern "C" fn victim(_: u64) -> ! {
    TRAPS_RC.store(fixup::install(), SeqCst);
    let mut k = 0;
    loop {
        k += 1;
        ROUNDS_SYNC.wait_round(k);
        let (x, f) = (X_VA.load(SeqCst), F_MFN.load(SeqCst));
        let at = x + OFF.load(SeqCst) * 8;
        let reverse = REVERSE.load(SeqCst) != 0;
        let rc = uvm(x, (f << 12) | if reverse { KRO } else { KRW }, UVMF_INVLPG);
        MAP_RC.store(rc, SeqCst);
        let first = if rc != 0 {
            u64::MAX
        } else if reverse {
            outcome(&fixup::read(at))
        } else {
            // SAFETY: `at` is in F, a frame of the test's mapped at X.
            outcome(&unsafe { fixup::write(at, mark(k - 1)) })
        };
        FIRST.store(first, SeqCst);
        // No hypercall from here on: the translation stays cached.
        ROUNDS_SYNC.ready_wait_go(k);
        let second = if reverse {
            fixup::read(at).map(|_| ())
        } else {
            // SAFETY: as above; if the write lands, the poison is a
            // not-present entry.
            unsafe { fixup::write(at, POISON) }
        };
        SECOND.store(outcome(&second), SeqCst);
        SECOND_EC.store(second.err().map_or(0, |f| f.error_code), SeqCst);
        ROUNDS_SYNC.done(k);
    }
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("smp_stale_tlb");
    let Some((mut env, w, s)) = pvmm::env_window_slot(&mut r, si) else {
        r.finish()
    };
    let t2 = env.spare().1;
    check!(r, "CLEAR_PAGE T2 (mfn {t2:#x})", mmuext1(MMUEXT_CLEAR_PAGE, t2, 0) => 0);
    let at = Places { w, s, t2 };
    let frames = [env.spare().1, env.spare().1];
    check!(r, "bring up vCPU 1", vcpu::start(1, victim, STACK.top(), env.l4_mfn) => 0);
    let installed = vcpu::wait_until(SPINS, || TRAPS_RC.load(SeqCst) != i64::MIN);
    check!(r, "vCPU 1's trap table", installed.then(|| TRAPS_RC.load(SeqCst)) => Some(0));
    let kinds = [
        Kind::Pin("L1", MMUEXT_PIN_L1_TABLE),
        Kind::Pin("L2", MMUEXT_PIN_L2_TABLE),
        Kind::Pin("L3", MMUEXT_PIN_L3_TABLE),
        Kind::Gdt,
        Kind::Reverse,
    ];
    let mut ok = true;
    for k in 0..ROUNDS {
        let kind = kinds[(k % 5) as usize];
        let f = frames[(k % 2) as usize];
        let xi = X_FIRST + k % 8;
        let removal = [Removal::MmuUpdate, Removal::Uvm, Removal::Teardown][(k / 5 % 3) as usize];
        ok &= round(&mut r, &at, k, kind, removal, f, xi);
        if !ok {
            break;
        }
    }
    r.check("every round as expected", ok);
    let released = [("F0", frames[0]), ("F1", frames[1]), ("T2", at.t2)];
    pvmm::check_released(&mut r, &at.w, Y, &released);
    r.finish()
}

/// The window; for teardown rounds, an L1 T2 hooked into the slot after it.
struct Places {
    w: Window,
    s: Slot,
    t2: u64,
}

/// How vCPU 0 removes vCPU 1's mapping of F, without a flush.
#[derive(Clone, Copy)]
enum Removal {
    /// `mmu_update` of the window's L1 entry.
    MmuUpdate,
    /// `update_va_mapping` with `UVMF_NONE`.
    Uvm,
    /// The mapping is in T2, which only the slot's L2 entry holds:
    /// clearing that entry tears T2 down (its type goes, and with it the
    /// references its entries held).
    Teardown,
}

/// The type change vCPU 0 makes right after removing vCPU 1's mapping.
#[derive(Clone, Copy)]
enum Kind {
    /// Pin F as a page table (name, `MMUEXT_PIN_L*_TABLE`).
    Pin(&'static str, u32),
    /// Make F vCPU 0's GDT (`set_gdt`).
    Gdt,
    /// F, a pinned L1 mapped read-only, unpinned and mapped writable.
    Reverse,
}

impl Kind {
    const fn name(self) -> &'static str {
        match self {
            Self::Pin(name, _) => name,
            Self::Gdt => "GDT",
            Self::Reverse => "reverse",
        }
    }

    /// Gives F its new type: the result, and that of mapping it writable
    /// and writing the poison (reverse only).
    fn change(self, w: &Window, f: u64, off: u64) -> (i64, i64) {
        match self {
            Self::Pin(_, cmd) => (mmuext1(cmd, f, 0), 0),
            Self::Gdt => (pvmm::set_gdt(&[f], 512), 0),
            Self::Reverse => {
                let unpinned = mmuext1(MMUEXT_UNPIN_TABLE, f, 0);
                let mapped = w.map(Y, f, KRW);
                if mapped == 0 {
                    pvmm::write_u64(w.va(Y) + off * 8, POISON);
                }
                (unpinned, mapped)
            }
        }
    }

    /// Takes the type away again.
    fn undo(self, f: u64) -> i64 {
        match self {
            Self::Pin(..) => mmuext1(MMUEXT_UNPIN_TABLE, f, 0),
            Self::Gdt => pvmm::set_gdt(&[], 0),
            Self::Reverse => 0,
        }
    }
}

/// One round; false after a failed check.
fn round(
    r: &mut Report,
    at: &Places,
    k: u64,
    kind: Kind,
    removal: Removal,
    f: u64,
    xi: u64,
) -> bool {
    let w = &at.w;
    let reverse = matches!(kind, Kind::Reverse);
    let name = kind.name();
    let off = (k * 37) % 512;
    let ok = check!(r, "round {k} ({name}): CLEAR_PAGE F {f:#x}", mmuext1(MMUEXT_CLEAR_PAGE, f, 0) => 0)
        && (!reverse || check!(r, "pin F as an L1", mmuext1(MMUEXT_PIN_L1_TABLE, f, 0) => 0));
    let (x, how) = match removal {
        Removal::MmuUpdate => (w.va(xi), "mmu_update"),
        Removal::Uvm => (w.va(xi), "update_va_mapping(UVMF_NONE)"),
        Removal::Teardown => (at.s.base + xi * PAGE, "unhooking T2, the L1 holding it"),
    };
    let ok = ok
        && (!matches!(removal, Removal::Teardown)
            || check!(r, "hook T2 into the slot", pt_write(at.s.l2e_ma, (at.t2 << 12) | P | RW | US | A) => 0));
    if !ok {
        return false;
    }
    F_MFN.store(f, SeqCst);
    X_VA.store(x, SeqCst);
    OFF.store(off, SeqCst);
    REVERSE.store(u64::from(reverse), SeqCst);
    let ready = ROUNDS_SYNC.publish(k + 1, SPINS);
    let ok = check!(r, "vCPU 1 mapped F at {x:#x} and touched word {off}",
        ready.then(|| (MAP_RC.load(SeqCst), FIRST.load(SeqCst))) => Some((0, 0)));
    if !ok {
        return false;
    }
    let removed = match removal {
        Removal::MmuUpdate => pt_write(w.pte_ma(xi), 0),
        Removal::Uvm => uvm(x, 0, UVMF_NONE),
        Removal::Teardown => pt_write(at.s.l2e_ma, 0),
    };
    let changed = kind.change(w, f, off);
    ROUNDS_SYNC.go(k + 1);
    let done = ROUNDS_SYNC.wait_done(k + 1, SPINS);
    let (vector, ec) = (SECOND.load(SeqCst), SECOND_EC.load(SeqCst));
    let ok = check!(r, "remove the mapping by {how}, no flush", removed => 0)
        && (!matches!(removal, Removal::Teardown)
            || check!(r, "clear T2's entry, T2 now plain memory", pt_write((at.t2 << 12) + xi * 8, 0) => 0));
    let ok = if reverse {
        check!(r, "unpin F and map it writable at page {Y}", changed => (0, 0))
            // #PF, not present, a read from kernel mode.
            && check!(r, "vCPU 1's read through its stale translation",
                done.then_some((vector, ec & 7)) => Some((14, 0)))
    } else {
        check!(r, "give F the type {name}", changed.0 => 0)
            // #PF, not present, a write from kernel mode.
            && check!(r, "vCPU 1's write through its stale translation",
                done.then_some((vector, ec & 7)) => Some((14, 2)))
    } && ok;
    if !ok {
        return false;
    }
    if reverse {
        return check!(r, "unmap page {Y}", w.unmap(Y) => 0);
    }
    // F as vCPU 0 sees it, read-only: the mark and nothing else.
    let ok = check!(r, "map F ({name}) read-only at page {Y}", w.map(Y, f, KRO) => 0);
    let stray = (0..512)
        .filter(|&i| read_u64(w.va(Y) + i * 8) != if i == off { mark(k) } else { 0 })
        .count();
    ok && check!(r, "words of F other than the mark, or a lost mark", stray => 0)
        && check!(r, "unmap page {Y}", w.unmap(Y) => 0)
        && check!(r, "take the type {name} from F", kind.undo(f) => 0)
}
