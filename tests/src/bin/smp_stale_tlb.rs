//! A translation cached in another CPU's TLB outlives the mapping it came
//! from; the frame it points to must not change type while it may be
//! used. Two vCPUs on two physical CPUs, over 30 rounds:
//!
//! - Forward (rounds of the kinds L1, L2, L3, GDT): vCPU 1 maps a cleared
//!   frame F writable at window page X and writes a mark through it (its
//!   TLB now holds X -> F writable), says so and spins without a
//!   hypercall. vCPU 0 removes the mapping without asking for a flush
//!   (`mmu_update` of the L1 entry, or `update_va_mapping` with
//!   `UVMF_NONE`, alternately) and at once pins F as an L1, L2 or L3
//!   table or makes it its GDT (`set_gdt`). Then vCPU 1 writes a poison word through X: the write must
//!   take a #PF (not present, write) and F must hold the mark only.
//!   Without the flush Xen does at the type change (F's TLB-flush
//!   timestamp is newer than vCPU 1's CPU's last flush, so that CPU is
//!   flushed before the pin validates F), the write would land in a
//!   validated page table: a guest could then write any entry into a
//!   live table and map any machine frame.
//! - Reverse (the fourth kind): F is a pinned L1 that vCPU 1 maps
//!   read-only at X and reads. vCPU 0 removes that mapping (no flush),
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
use tests::pvmm::{self, mmuext1, pt_write, read_u64, uvm, Env, Window, KRO, KRW};
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
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(w) = Window::new(&mut r, &mut env) else {
        r.finish()
    };
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
        let by_uvm = (k / 5) % 2 == 1;
        ok &= round(&mut r, &w, k, kind, f, xi, by_uvm);
        if !ok {
            break;
        }
    }
    r.check("every round as expected", ok);
    pvmm::check_released(&mut r, &w, Y, &[("F0", frames[0]), ("F1", frames[1])]);
    r.finish()
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
fn round(r: &mut Report, w: &Window, k: u64, kind: Kind, f: u64, xi: u64, by_uvm: bool) -> bool {
    let reverse = matches!(kind, Kind::Reverse);
    let name = kind.name();
    let off = (k * 37) % 512;
    let how = if by_uvm {
        "update_va_mapping(UVMF_NONE)"
    } else {
        "mmu_update"
    };
    let ok = check!(r, "round {k} ({name}): CLEAR_PAGE F {f:#x}", mmuext1(MMUEXT_CLEAR_PAGE, f, 0) => 0)
        && (!reverse || check!(r, "pin F as an L1", mmuext1(MMUEXT_PIN_L1_TABLE, f, 0) => 0));
    if !ok {
        return false;
    }
    F_MFN.store(f, SeqCst);
    X_VA.store(w.va(xi), SeqCst);
    OFF.store(off, SeqCst);
    REVERSE.store(u64::from(reverse), SeqCst);
    let ready = ROUNDS_SYNC.publish(k + 1, SPINS);
    let ok = check!(r, "vCPU 1 mapped F at page {xi} and touched word {off}",
        ready.then(|| (MAP_RC.load(SeqCst), FIRST.load(SeqCst))) => Some((0, 0)));
    if !ok {
        return false;
    }
    let removed = if by_uvm {
        uvm(w.va(xi), 0, UVMF_NONE)
    } else {
        pt_write(w.pte_ma(xi), 0)
    };
    let changed = kind.change(w, f, off);
    ROUNDS_SYNC.go(k + 1);
    let done = ROUNDS_SYNC.wait_done(k + 1, SPINS);
    let (vector, ec) = (SECOND.load(SeqCst), SECOND_EC.load(SeqCst));
    let ok = check!(r, "remove the mapping by {how}, no flush", removed => 0);
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
