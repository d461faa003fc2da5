//! Inter-processor interrupts: running a function on other CPUs and
//! waiting for them (the call-function vector), and poking a CPU so that
//! it looks for pending work on its way back to a guest (the event-check
//! vector).
//!
//! Each CPU has one outgoing request (a function, its argument, and the
//! set of CPUs yet to run it) and an inbox (the set of CPUs whose request
//! it has to run). [`call_on`] fills the caller's request, adds the caller
//! to every target's inbox, interrupts them and runs the function itself
//! if it is a target, then waits until every target has run it. Only the
//! caller writes its request, and only while no target may read it (its
//! set is empty between calls), so one request per CPU is enough: a
//! caller waits for its own call to end before starting another.
//!
//! hv runs with interrupts off, so a target may be inside hv when the
//! interrupt comes and take it only on its return to a guest, or when it
//! idles. Two CPUs waiting for each other would never get there: every
//! wait here therefore serves the waiting CPU's own inbox ([`serve`]), and
//! so do hv's spin locks while they spin (`crate::sync`), so a CPU that
//! waits on a lock held by a caller that waits on it still answers.
//! What a called function may do follows: it runs in any context, on any
//! CPU, possibly in the middle of another hv path of that CPU, so it
//! takes no lock and touches nothing but atomics and the CPU itself (a
//! TLB flush, a record of an answer).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

use hv::smp::CpuMask;

use super::apic;
use super::percpu::{self, MAX_CPUS};

/// The call-function vector: the target serves its inbox.
pub const CALL_FUNCTION_VECTOR: u32 = 0xf2;
/// The event-check (reschedule) vector: an empty handler; the return to
/// the guest that follows tests for pending work (events, a vCPU switch).
pub const EVENT_CHECK_VECTOR: u32 = 0xf1;

/// A function to run on other CPUs, with its argument.
pub type CallFn = fn(u64);

/// One CPU's outgoing request.
struct Request {
    /// The function and argument; written by the owning CPU only while
    /// `pending` is empty (see the module docs).
    call: UnsafeCell<(CallFn, u64)>,
    /// The CPUs that have not yet run it.
    pending: AtomicU64,
}

fn nothing(_: u64) {}

// SAFETY: `call` is written by its CPU only while `pending` is empty, and
// read by a target only between its inbox bit (set after the write, with
// release) and its clearing its `pending` bit (before the caller may write
// again): the accesses never overlap.
unsafe impl Sync for Request {}

static REQUESTS: [Request; MAX_CPUS] = [const {
    Request {
        call: UnsafeCell::new((nothing, 0)),
        pending: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// Each CPU's inbox: the callers whose request it has to run.
static INBOX: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Runs `f(arg)` on every CPU of `targets` that is online (`smp::online`)
/// and returns once all of them have. This CPU runs it directly if it is
/// a target; the others by IPI. Call with no lock held that a target
/// could wait for outside a spin (the waits serve this CPU's own inbox).
pub fn call_on(targets: CpuMask, f: CallFn, arg: u64) {
    let me = percpu::cpu_id();
    let others = targets.intersection(super::smp::online()).without(me);
    if !others.is_empty() {
        let req = &REQUESTS[me];
        // SAFETY: this CPU's request, whose `pending` is empty: no target
        // reads `call` now (module docs).
        unsafe { *req.call.get() = (f, arg) };
        req.pending.store(others.0, Ordering::Relaxed);
        for cpu in others.iter() {
            INBOX[cpu].fetch_or(CpuMask::one(me).0, Ordering::Release);
            apic::send_fixed(super::smp::apic_id_of(cpu), CALL_FUNCTION_VECTOR);
        }
    }
    if targets.contains(me) {
        f(arg);
    }
    if !others.is_empty() {
        let req = &REQUESTS[me];
        while req.pending.load(Ordering::Acquire) != 0 {
            serve();
            core::hint::spin_loop();
        }
    }
}

/// Interrupts every online CPU of `targets` but this one with the
/// event-check vector, without waiting.
pub fn event_check(targets: CpuMask) {
    let me = percpu::cpu_id();
    for cpu in targets
        .intersection(super::smp::online())
        .without(me)
        .iter()
    {
        apic::send_fixed(super::smp::apic_id_of(cpu), EVENT_CHECK_VECTOR);
    }
}

/// Runs the requests waiting in this CPU's inbox (the call-function
/// handler, and every wait that must not block other CPUs' calls).
#[inline]
pub fn serve() {
    let me = percpu::cpu_id();
    if INBOX[me].load(Ordering::Relaxed) != 0 {
        serve_inbox(me);
    }
}

#[cold]
#[inline(never)]
fn serve_inbox(me: usize) {
    let callers = CpuMask(INBOX[me].swap(0, Ordering::Acquire));
    for caller in callers.iter() {
        let req = &REQUESTS[caller];
        // SAFETY: our inbox bit for `caller` was set after it wrote its
        // request, and it does not write again before we clear our bit of
        // `pending` below.
        let (f, arg) = unsafe { *req.call.get() };
        f(arg);
        req.pending
            .fetch_and(!CpuMask::one(me).0, Ordering::Release);
    }
}

/// One turn of a CPU's wait for a held lock (`crate::sync`): serves its
/// inbox, then pauses. The call goes through a stub that keeps every
/// register (`saving_call`), so to the compiler this is an instruction
/// that touches memory and flags only: the lock's uncontended path,
/// inlined everywhere, keeps the code it had.
#[inline(always)]
pub fn relax_serving() {
    // SAFETY: `hv_ipi_relax` preserves every general register but the
    // flags and returns (`saving_call`); it may read and write memory
    // (the inbox, the called functions' effects), which this asm block is
    // assumed to do.
    unsafe { core::arch::asm!("call {stub}", stub = sym hv_ipi_relax) };
    core::hint::spin_loop();
}

unsafe extern "C" {
    fn hv_ipi_relax();
}

/// The call-function interrupt.
pub fn on_call_function() {
    apic::eoi();
    serve();
}

/// Event-check interrupts each CPU has taken.
static EVENT_CHECKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// How many event-check interrupts CPU `cpu` has taken.
pub fn event_checks(cpu: usize) -> u64 {
    EVENT_CHECKS[cpu & (MAX_CPUS - 1)].load(Ordering::Relaxed)
}

/// The event-check interrupt: nothing to do here but count it; the exit
/// path that follows looks for the work.
pub fn on_event_check() {
    apic::eoi();
    EVENT_CHECKS[percpu::cpu_id()].fetch_add(1, Ordering::Relaxed);
}
