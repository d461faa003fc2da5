//! Timers: one queue per CPU (`hv::timer::TimerQueue`), driven by that
//! CPU's local-APIC timer in one-shot or TSC-deadline mode. Tickless:
//! the APIC is programmed for the queue's earliest deadline only, and a
//! CPU with nothing queued takes no timer interrupt at all.
//!
//! What a timer does is its [`Kind`]: a vCPU's single-shot, periodic and
//! poll timers (Xen's `singleshot_timer`, `periodic_timer`,
//! `poll_timer`), a domain's watchdogs, the CPU's time calibration
//! (every second, `time::calibrate`), CPU 0's serial input poll and
//! the scheduler's tick
//! ([`Kind::Sched`], for `sched::tick`). A vCPU's timers live in the
//! queue of the CPU that runs it (Xen's `migrate_timer` to the current
//! CPU when set): when vCPUs move between CPUs, their timers move with
//! them. Setting a timer that is set moves it.
//!
//! The interrupt ([`on_interrupt`]) takes due timers out one at a time,
//! the queue's lock let go before each one runs (a timer's work raises
//! events, locks vCPUs and domains, may shut a domain down), then
//! programs the next deadline. Interrupts reach hv in guest context
//! (the vCPU's upcall then goes out on the way back, `traps::upcall`) or
//! in an idle wait (`sched`); hv code never runs with interrupts on
//! otherwise, so no lock is ever held when a timer runs. Hypercall entry
//! and exit pay nothing for timers.

use guest_abi::types::DomId;
use hv::timer::TimerQueue;

use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::{apic, percpu};
use crate::sync::{Level, Ordered};

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A vCPU's single-shot timer: `VIRQ_TIMER` when due.
    Singleshot { dom: DomId, vcpu: u32 },
    /// A vCPU's periodic timer: `VIRQ_TIMER` every period while it runs.
    Periodic { dom: DomId, vcpu: u32 },
    /// A vCPU's `SCHEDOP_poll` timeout: ends the poll.
    Poll { dom: DomId, vcpu: u32 },
    /// The earliest of a domain's watchdogs.
    Watchdog { dom: DomId },
    /// The CPU's time calibration (every second).
    Calibration,
    /// CPU 0's poll of the serial line for domain 0's console input
    /// (`console_input`: hv takes no UART interrupt), every 10 ms.
    ConsoleInput,
    /// The scheduler's tick (`sched::tick`, every 10 ms: Xen credit1's
    /// accounting period), run last, with the interrupted frame.
    Sched,
}

impl Kind {
    /// The queue's key: a tag in the top byte, the domain in bits 32-47,
    /// the vCPU in bits 0-31 (one compare per slot when a timer is set).
    /// Inlined into [`set`] and [`stop`]'s callers, where the kind is
    /// known: the tag is then a constant, not a jump table.
    #[inline(always)]
    fn key(self) -> u64 {
        let (tag, dom, vcpu) = match self {
            Kind::Singleshot { dom, vcpu } => (1, dom.get(), vcpu),
            Kind::Periodic { dom, vcpu } => (2, dom.get(), vcpu),
            Kind::Poll { dom, vcpu } => (3, dom.get(), vcpu),
            Kind::Watchdog { dom } => (4, dom.get(), 0),
            Kind::Calibration => (5, 0, 0),
            Kind::ConsoleInput => (6, 0, 0),
            Kind::Sched => (7, 0, 0),
        };
        tag << 56 | u64::from(dom) << 32 | u64::from(vcpu)
    }

    /// The kind a key names.
    fn of_key(key: u64) -> Option<Self> {
        let [v0, v1, v2, v3, d0, d1, _, tag] = key.to_le_bytes();
        let dom = DomId::try_new(u16::from_le_bytes([d0, d1])).ok();
        let vcpu = u32::from_le_bytes([v0, v1, v2, v3]);
        Some(match tag {
            1 => Kind::Singleshot { dom: dom?, vcpu },
            2 => Kind::Periodic { dom: dom?, vcpu },
            3 => Kind::Poll { dom: dom?, vcpu },
            4 => Kind::Watchdog { dom: dom? },
            5 => Kind::Calibration,
            6 => Kind::ConsoleInput,
            7 => Kind::Sched,
            _ => return None,
        })
    }
}

/// Timers one CPU can hold: the single-shot, periodic and poll timers of
/// the vCPUs it runs (a vCPU's periodic timer is armed only while it
/// runs, its poll timer only while it polls; a single-shot timer stays
/// where it was set), the watchdogs of the domains that set them there,
/// the calibration, the console poll and the scheduler's tick. One vCPU
/// per CPU needs at most seven; a full queue refuses a new timer with an
/// error line (a scheduler sharing CPUs moves a vCPU's timers with it).
const CAPACITY: usize = 64;

/// One CPU's timers and the deadline its APIC timer is programmed for
/// (`None`: stopped). The APIC may interrupt before the queue's earliest
/// deadline (a timer was moved later or stopped), never after it.
struct CpuTimers {
    queue: TimerQueue<u64, CAPACITY>,
    programmed: Option<u64>,
}

static TIMERS: [Ordered<CpuTimers>; percpu::MAX_CPUS] = [const {
    Ordered::new(
        Level::Timers,
        CpuTimers {
            queue: TimerQueue::new(0),
            programmed: None,
        },
    )
}; percpu::MAX_CPUS];

fn timers() -> &'static Ordered<CpuTimers> {
    &TIMERS[percpu::cpu_id()]
}

/// Programs this CPU's APIC timer for `next` (system time), or stops it.
/// Out of line: arming a timer rarely moves the deadline earlier, and
/// the set path then keeps no registers for it.
#[inline(never)]
fn program(t: &mut CpuTimers, next: Option<u64>) {
    t.programmed = next;
    match next {
        Some(ns) => apic::set_deadline(crate::time::tsc_at(ns)),
        None => apic::stop_timer(),
    }
}

/// Arms timer `kind` on this CPU for system time `deadline` (moving it if
/// armed; in the past: it fires at the next interrupt, which comes at
/// once). The APIC is programmed again only when the deadline comes
/// before the one it has.
#[inline(always)]
pub fn set(kind: Kind, deadline: u64) {
    set_key(kind.key(), deadline);
}

/// [`set`] for the timer whose key is `key`.
fn set_key(key: u64, deadline: u64) {
    let mut t = timers().lock();
    if t.queue.set(key, deadline).is_err() {
        drop(t);
        queue_full(key);
        return;
    }
    if t.programmed.is_none_or(|p| deadline < p) {
        program(&mut t, Some(deadline));
    }
}

/// The error line of a timer that found its CPU's queue full (out of
/// line: the set path keeps no registers for it).
#[cold]
#[inline(never)]
fn queue_full(key: u64) {
    if let Some(kind) = Kind::of_key(key) {
        crate::hvlog!(
            error,
            "CPU{}: timer queue full: {kind:?} not set",
            percpu::cpu_id()
        );
    }
}

/// Disarms timer `kind` on this CPU. The APIC stays programmed: an
/// interrupt that finds nothing due programs the next deadline.
#[inline(always)]
pub fn stop(kind: Kind) {
    stop_key(kind.key());
}

/// [`stop`] for the timer whose key is `key`.
fn stop_key(key: u64) {
    timers().lock().queue.cancel(key);
}

/// Disarms every timer of domain `dom` (its vCPUs' and its watchdog) on
/// every CPU: a destroyed domain's timers would otherwise hold their
/// queue slots until they fired, and a domain's timer may be set days
/// ahead. Takes each CPU's timer lock in turn (interrupts are off in hv:
/// no CPU holds its own across an interrupt).
pub fn forget_domain(dom: DomId) {
    let gone = |key: u64| {
        matches!(
            Kind::of_key(key),
            Some(
                Kind::Singleshot { dom: d, .. }
                    | Kind::Periodic { dom: d, .. }
                    | Kind::Poll { dom: d, .. }
                    | Kind::Watchdog { dom: d }
            ) if d == dom
        )
    };
    for cpu in &TIMERS {
        cpu.lock().queue.cancel_where(gone);
    }
}

/// How often CPU 0 polls the serial line for console input.
const CONSOLE_POLL_NS: u64 = 10_000_000;
/// The scheduler's tick.
const SCHED_TICK_NS: u64 = 10_000_000;

/// Starts this CPU's housekeeping timers (the calibration; on CPU 0 the
/// console input poll).
pub fn start_cpu() {
    let now = crate::time::now_ns();
    set(
        Kind::Calibration,
        now.saturating_add(crate::time::CALIBRATION_PERIOD_NS),
    );
    if percpu::cpu_id() == 0 {
        set(Kind::ConsoleInput, now.saturating_add(CONSOLE_POLL_NS));
    }
    set(Kind::Sched, now.saturating_add(SCHED_TICK_NS));
}

/// The APIC timer's interrupt, with the frame it interrupted: runs every
/// due timer, programs the next deadline, then (if due) the scheduler's
/// tick, which may switch the frame to another vCPU.
pub fn on_interrupt(regs: &mut GuestRegs) {
    apic::eoi();
    let mut tick = false;
    let mut watchdog = false;
    loop {
        let now = crate::time::now_ns();
        // The lock goes with the statement: the timer runs unlocked.
        let due = timers().lock().queue.pop_due(now);
        match due.and_then(|e| Kind::of_key(e.key).map(|k| (k, e))) {
            Some((Kind::Sched, _)) => {
                tick = true;
                set(Kind::Sched, now.saturating_add(SCHED_TICK_NS));
            }
            Some((kind, _)) => {
                watchdog |= matches!(kind, Kind::Watchdog { .. });
                run(kind, now);
            }
            None if due.is_some() => {}
            None => break,
        }
    }
    {
        let mut t = timers().lock();
        let next = t.queue.next_deadline();
        program(&mut t, next);
    }
    if tick {
        crate::sched::tick(regs);
    }
    // A watchdog may have shut down the domain this CPU runs (the tick
    // switches away from a stopped vCPU by itself).
    if watchdog {
        crate::sched::resched_if_stopped(regs);
    }
}

fn run(kind: Kind, now: u64) {
    match kind {
        Kind::Singleshot { dom, vcpu } => send_timer_event(dom, vcpu),
        Kind::Periodic { dom, vcpu } => {
            if let Some(d) = crate::domain::lookup(dom) {
                let _ = d.with_vcpu(guest_abi::types::VcpuId::new(vcpu), |v| {
                    periodic_work(&d, v);
                });
            }
        }
        Kind::Poll { dom, vcpu } => crate::sched::poll_timeout(dom, vcpu),
        Kind::Watchdog { dom } => crate::hypercall::watchdog_timer(dom),
        Kind::Calibration => {
            crate::time::calibrate();
            crate::domain::update_current_time();
            set(
                Kind::Calibration,
                now.saturating_add(crate::time::CALIBRATION_PERIOD_NS),
            );
        }
        Kind::ConsoleInput => {
            crate::console_input::poll();
            set(Kind::ConsoleInput, now.saturating_add(CONSOLE_POLL_NS));
        }
        // Run by the caller, last.
        Kind::Sched => {}
    }
}

/// Raises `VIRQ_TIMER` on vCPU `vcpu` of domain `dom` (Xen's
/// `send_timer_event`), if it still exists.
pub fn send_timer_event(dom: DomId, vcpu: u32) {
    if let Some(d) = crate::domain::lookup(dom) {
        crate::event::send_vcpu_virq(&d, vcpu, guest_abi::xen::VIRQ_TIMER);
    }
}

/// Xen's `vcpu_periodic_timer_work` for vCPU `v` of `d`, running (or
/// about to run) on this CPU: an event if a period has passed since the
/// last, and the timer armed for the next.
pub fn periodic_work(d: &crate::domain::Domain, v: &mut crate::domain::Vcpu) {
    let p = v.periodic;
    if p.period == 0 {
        return;
    }
    let (fire, last, next) = hv::timer::periodic_step(p.last, p.period, crate::time::now_ns());
    v.periodic.last = last;
    let vcpu = v.id.get();
    if fire {
        crate::event::send_vcpu_virq(d, vcpu, guest_abi::xen::VIRQ_TIMER);
    }
    set(Kind::Periodic { dom: d.id, vcpu }, next);
}

/// Stops vCPU `v`'s periodic timer while it does not run (Xen stops it
/// when a vCPU is switched out; [`periodic_work`] catches up when it is
/// switched in).
pub fn periodic_pause(d: &crate::domain::Domain, v: &crate::domain::Vcpu) {
    stop(Kind::Periodic {
        dom: d.id,
        vcpu: v.id.get(),
    });
}
