//! The scheduler: which vCPU each physical CPU runs, and the switch.
//!
//! Each CPU has a run queue (`hv::sched::RunQueue`: Xen credit1's
//! accounting, host-tested) behind its own lock (`Level::RunQueue`, after
//! the event channels, since raising an event wakes the vCPU it is for).
//! A vCPU's scheduling record (credit, priority, hard affinity, runstate)
//! lives in the queue of the CPU it is assigned to; [`balance`] moves
//! waiting records from a busier queue to an idle CPU's when more than one
//! CPU runs guests (today one does: the boot CPU).
//!
//! Decisions are taken under the queue's lock; the switch itself
//! ([`reschedule`]) happens after letting go, on the full frame of the
//! guest entry that asked for it: the running vCPU's context is saved
//! from the frame (`domain::vcpu::save`) and the next one's loaded into it
//! (`domain::vcpu::load`: registers, FPU/XSAVE, FS/GS bases, CR0.TS, its
//! GDT and LDT windows, its page table, its `vcpu_info` for the exit
//! path's event test), so the guest entry returns into the other vCPU.
//! Two things ask for a switch: a hypercall's [`Outcome::Switch`]
//! (`SCHEDOP_yield` with a vCPU waiting somewhere, a vCPU taking itself
//! down or blocking), which the entry completes through
//! `hypercall::complete` ([`switch_from_hypercall`]); and the timer tick
//! ([`tick`], every 10 ms), when the running vCPU's slice is over. A vCPU
//! woken or brought up waits for one of them (Xen may preempt at once for
//! a waking vCPU of higher priority: with BOOST left out, none is). With
//! nothing to run, the CPU idles in [`reschedule`] (`sti; hlt`) until an
//! interrupt makes a vCPU runnable.
//!
//! Runstate: each transition is timed in the record (`hv::sched::Runstate`),
//! and a vCPU's registered runstate area
//! (`VCPUOP_register_runstate_memory_area`) is rewritten as it leaves and
//! as it enters a CPU, through its own page tables (Xen's
//! `update_runstate_area`, with `XEN_RUNSTATE_UPDATE` set around the
//! write under `VMASST_TYPE_runstate_update_flag`).
//!
//! [`Outcome::Switch`]: crate::hypercall::Outcome

use core::sync::atomic::{AtomicU32, Ordering};

use guest_abi::errno::Errno;
use guest_abi::types::{DomId, VcpuId};
use guest_abi::vcpu::{VcpuRunstateInfo, XEN_RUNSTATE_UPDATE};
use hv::lock_levels::Level;
use hv::sched::{Decision, RunQueue, Runstate, State, Unit, UnitId};

use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::percpu::{self, MAX_CPUS};
use crate::domain::{self, Domain};
use crate::sync::{Ordered, OrderedGuard};
use crate::timer::{self, Kind};

pub use hv::pollers::Pollers;

/// `VMASST_TYPE_runstate_update_flag`.
const VMASST_RUNSTATE_UPDATE_FLAG: u64 = 1 << 5;

/// Each CPU's run queue.
static QUEUES: [Ordered<RunQueue>; MAX_CPUS] =
    [const { Ordered::new(Level::RunQueue, RunQueue::new(0)) }; MAX_CPUS];
/// Each CPU's count of waiting vCPUs, mirrored from its queue for the
/// yield's fast test (no lock when nobody waits).
static WAITING: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// vCPUs blocked, on every CPU: raising an event looks for one to wake
/// only when some are (a load on the send path otherwise).
static BLOCKED: AtomicU32 = AtomicU32::new(0);

fn unit_id(dom: DomId, vcpu: VcpuId) -> UnitId {
    UnitId {
        dom: dom.get(),
        vcpu: vcpu.get(),
    }
}

fn queue(cpu: usize) -> OrderedGuard<'static, RunQueue> {
    QUEUES[cpu % MAX_CPUS].lock()
}

/// Waiting vCPUs on all CPUs together: the yield's first test, one load
/// of a global (finding this CPU's count costs more).
static ALL_WAITING: AtomicU32 = AtomicU32::new(0);

/// Publishes the queue's waiting count for the lock-free yield test.
fn publish(cpu: usize, q: &RunQueue) {
    let n = u32::try_from(q.waiting()).unwrap_or(u32::MAX);
    let old = WAITING[cpu % MAX_CPUS].swap(n, Ordering::Relaxed);
    if n >= old {
        ALL_WAITING.fetch_add(n - old, Ordering::Relaxed);
    } else {
        ALL_WAITING.fetch_sub(old - n, Ordering::Relaxed);
    }
}

/// Readies CPU `cpu`'s queue (at its bring-up, before it schedules).
pub fn init_cpu(cpu: usize) {
    let mut q = queue(cpu);
    *q = RunQueue::new(u32::try_from(cpu).unwrap_or(0));
}

/// Gives the scheduler domain `d`'s vCPUs (at its creation, or when the
/// toolstack makes them): each up vCPU runnable, the others offline, all
/// on this CPU; `paused` ones (a domain its controller paused) wait for
/// [`set_paused`].
pub fn add_domain(d: &Domain, paused: bool) {
    let now = crate::time::now_ns();
    let cpu = percpu::cpu_id();
    let params = d.with_state(|s| s.sched);
    let mut units = alloc::vec::Vec::new();
    for i in 0..d.max_vcpus() {
        let vid = VcpuId::new(i);
        if let Some(up) = d.with_vcpu(vid, |v| v.run != domain::VcpuRun::Down) {
            let state = if up { State::Runnable } else { State::Offline };
            let mut u = Unit::new(unit_id(d.id, vid), state, now);
            (u.weight, u.cap) = (params.weight, params.cap);
            units.push(u);
        }
    }
    let mut q = queue(cpu);
    for u in units {
        let id = u.id;
        q.add(u, now);
        if paused {
            let _ = q.pause(id, now);
        }
    }
    publish(cpu, &q);
}

/// Pauses (`paused`) or unpauses the units of `dom`'s first `nr` vCPUs,
/// wherever they are: a paused unit is not picked (Xen's
/// `vcpu_sleep_nosync`); an unpaused one that would run waits for a CPU
/// again (`vcpu_wake`). The CPUs that run one of them, or may now pick
/// one, are kicked, so they look at their queue at once. Returns the
/// CPUs where one of them is the running unit.
pub fn set_paused(dom: DomId, nr: u32, paused: bool) -> u64 {
    let now = crate::time::now_ns();
    let mut running = 0u64;
    let mut kick = 0u64;
    for cpu in (0..MAX_CPUS).filter(|&c| percpu::CPUS[c].is_online()) {
        let mut q = queue(cpu);
        for v in 0..nr {
            let id = unit_id(dom, VcpuId::new(v));
            if paused {
                if q.pause(id, now) == Some(true) {
                    running |= 1 << cpu;
                }
            } else if q.unpause(id, now) {
                kick |= 1 << cpu;
            }
        }
        publish(cpu, &q);
    }
    for cpu in (0..MAX_CPUS).filter(|&c| (running | kick) & (1 << c) != 0) {
        crate::arch::x86_64::smp::kick(Some(cpu));
    }
    running
}

/// Gives the units of `dom`'s first `nr` vCPUs, wherever they are, the
/// domain's credit weight and cap (`XEN_DOMCTL_scheduler_op`).
pub fn set_params(dom: DomId, nr: u32, params: hv::domctl::SchedParams) {
    for cpu in (0..MAX_CPUS).filter(|&c| percpu::CPUS[c].is_online()) {
        let mut q = queue(cpu);
        for v in 0..nr {
            if let Some(u) = q.get_mut(unit_id(dom, VcpuId::new(v))) {
                (u.weight, u.cap) = (params.weight, params.cap);
            }
        }
    }
}

/// [`set_paused`] `d`, then waits until none of its vCPUs runs or is in
/// a CPU (Xen's `domain_pause`, `vcpu_sleep_sync`). Not for the caller's
/// own domain (the caller's vCPU would wait for itself). No lock held.
pub fn pause_sync(d: &Domain) {
    let nr = d.max_vcpus();
    set_paused(d.id, nr, true);
    loop {
        let running = (0..MAX_CPUS)
            .filter(|&c| percpu::CPUS[c].is_online())
            .filter(|&c| queue(c).current().is_some_and(|u| u.dom == d.id.get()))
            .fold(0u64, |m, c| m | 1 << c);
        let loaded = (0..nr).any(|v| d.with_vcpu(VcpuId::new(v), |v| v.loaded) == Some(true));
        if running == 0 && !loaded {
            return;
        }
        for cpu in (0..MAX_CPUS).filter(|&c| running & (1 << c) != 0) {
            crate::arch::x86_64::smp::kick(Some(cpu));
        }
        crate::arch::x86_64::ipi::relax_serving();
    }
}

/// Forgets the units of `dom`'s first `nr` vCPUs (a destroyed domain's,
/// after [`pause_sync`]: none runs).
pub fn remove_domain(dom: DomId, nr: u32) {
    for cpu in (0..MAX_CPUS).filter(|&c| percpu::CPUS[c].is_online()) {
        let mut q = queue(cpu);
        for v in 0..nr {
            if let Some(u) = q.remove(unit_id(dom, VcpuId::new(v))) {
                count_blocked(u.runstate.state == State::Blocked, false);
            }
        }
        publish(cpu, &q);
    }
}

/// After an interrupt that came from a guest (with `regs` its frame):
/// switches away if the running vCPU may no longer run here (its domain
/// was paused or shut down from another CPU, or by a timer).
pub fn resched_if_stopped(regs: &mut GuestRegs) {
    if !regs.is_guest_context() {
        return;
    }
    let stopped = {
        let q = queue(percpu::cpu_id());
        q.current()
            .and_then(|id| q.get(id))
            .is_some_and(|u| u.runstate.state != State::Running)
    };
    if stopped {
        reschedule(regs);
    }
}

/// Leaves the running vCPU for good (its domain crashed, with `regs` its
/// frame, and was shut down so it is paused): saves it, picks another and
/// enters it on a fresh stack. What the abandoned stack held is not
/// dropped, so the caller holds no lock and no reference.
pub fn leave(regs: &GuestRegs) -> ! {
    let mut frame = *regs;
    reschedule(&mut frame);
    crate::arch::x86_64::enter_guest(crate::arch::x86_64::cpu::read_cr3(), &frame)
}

/// Runs `f` on each queue in turn, with its CPU, until it answers: `f`
/// answers `None` (changing nothing) for a queue that does not hold the
/// record it is after, so one search finds the record and acts on it.
fn with_unit<R>(mut f: impl FnMut(&mut RunQueue, usize) -> Option<R>) -> Option<R> {
    let here = percpu::cpu_id();
    // This CPU first: where a domain's vCPUs usually are.
    let order = core::iter::once(here).chain((0..MAX_CPUS).filter(move |&c| c != here));
    for cpu in order {
        if cpu != here && !percpu::CPUS[cpu].is_online() {
            continue;
        }
        let mut q = queue(cpu);
        if let Some(r) = f(&mut q, cpu) {
            publish(cpu, &q);
            return Some(r);
        }
    }
    None
}

/// Sets vCPU `vcpu` of `dom` to `state` (up: runnable, down: offline,
/// block, wake). When that stops the vCPU running on this CPU, the caller
/// answers [`Outcome::Switch`](crate::hypercall::Outcome) so the entry
/// switches away.
pub fn set_state(dom: DomId, vcpu: VcpuId, state: State) {
    let id = unit_id(dom, vcpu);
    let now = crate::time::now_ns();
    let _ = with_unit(|q, _| {
        let was_blocked = q.get(id)?.runstate.state == State::Blocked;
        q.set_state(id, state, now);
        count_blocked(was_blocked, state == State::Blocked);
        Some(())
    });
}

/// Whether any vCPU is blocked (so an event may have one to wake).
#[inline(always)]
pub fn any_blocked() -> bool {
    BLOCKED.load(Ordering::Relaxed) != 0
}

/// Wakes vCPU `vcpu` of `dom` if it is blocked (an event became pending
/// for it); up and running or offline vCPUs are left as they are.
#[cold]
#[inline(never)]
pub fn wake(dom: DomId, vcpu: VcpuId) {
    let id = unit_id(dom, vcpu);
    let now = crate::time::now_ns();
    let woken = with_unit(|q, cpu| {
        let blocked = q.wake(id, now)?;
        if blocked {
            count_blocked(true, false);
        }
        Some(blocked.then_some(cpu))
    });
    // Its CPU may be idling: it looks at its queue at once.
    if let Some(cpu) = woken.flatten() {
        crate::arch::x86_64::smp::kick(Some(cpu));
    }
}

/// Deschedules the running vCPU until [`wake`] (`SCHEDOP_block`'s
/// primitive): marks it blocked; the hypercall then answers
/// [`Outcome::Switch`](crate::hypercall::Outcome) so the entry completes
/// the switch. The caller checks for events already pending
/// first, as Xen's `vcpu_block` does.
pub fn block_current() {
    block_running(unit_id(
        domain::current_id(),
        VcpuId::new(current_vcpu_id()),
    ));
}

/// [`block_current`] for a caller that knows the running vCPU's `id`.
fn block_running(id: UnitId) {
    let cpu = percpu::cpu_id();
    let now = crate::time::now_ns();
    let mut q = queue(cpu);
    if let Some(was_blocked) = q.block_running(id, now) {
        count_blocked(was_blocked, true);
    }
    publish(cpu, &q);
}

/// Keeps [`BLOCKED`] right across one unit's change.
fn count_blocked(was: bool, is: bool) {
    match (was, is) {
        (false, true) => {
            BLOCKED.fetch_add(1, Ordering::Relaxed);
        }
        (true, false) => {
            BLOCKED.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

fn current_vcpu_id() -> u32 {
    u32::try_from(percpu::this_cpu().current_vcpu()).unwrap_or(u32::MAX)
}

/// Whether vCPU `vcpu` of `dom` may run on one CPU only (its hard
/// affinity, among the CPUs online, has one).
pub fn pinned(dom: DomId, vcpu: VcpuId) -> bool {
    let id = unit_id(dom, vcpu);
    let online = (0..MAX_CPUS)
        .filter(|&c| percpu::CPUS[c].is_online())
        .fold(0u64, |m, c| m | 1 << c);
    with_unit(|q, _| q.get(id).map(|u| (u.affinity & online).count_ones() == 1)).unwrap_or(false)
}

/// The runstate of vCPU `vcpu` of `dom` as at `now` (Xen's
/// `vcpu_runstate_get`: the time in the current state counted up to now).
pub fn runstate(dom: DomId, vcpu: VcpuId) -> Option<VcpuRunstateInfo> {
    let id = unit_id(dom, vcpu);
    let now = crate::time::now_ns();
    with_unit(|q, _| q.get(id).map(|u| info_at(&u.runstate, now)))
}

fn info_at(r: &Runstate, now: u64) -> VcpuRunstateInfo {
    let mut time = r.time;
    let slot = &mut time[r.state as usize];
    *slot = slot.saturating_add(now.saturating_sub(r.entry_time));
    VcpuRunstateInfo {
        state: r.state as i32,
        _pad: 0,
        state_entry_time: r.entry_time,
        time,
    }
}

fn recorded(r: &Runstate) -> VcpuRunstateInfo {
    VcpuRunstateInfo {
        state: r.state as i32,
        _pad: 0,
        state_entry_time: r.entry_time,
        time: r.time,
    }
}

/// Writes runstate `r` (a vCPU's record as it leaves or enters a CPU) to
/// its runstate area at guest address `va`: [`write_runstate_area`].
pub fn write_recorded_runstate(va: u64, r: &Runstate, vm_assist: u64) {
    write_runstate_area(va, &recorded(r), vm_assist);
}

/// Writes `info` to the runstate area at guest address `va` through the
/// loaded page tables (failures ignored, as Xen ignores them), with
/// `XEN_RUNSTATE_UPDATE` set in `state_entry_time` around the write when
/// the domain asked for the flag.
pub fn write_runstate_area(va: u64, info: &VcpuRunstateInfo, vm_assist: u64) {
    use crate::guest_mem::{GuestPtr, Loaded};
    let Ok(area) = GuestPtr::<VcpuRunstateInfo>::new(va) else {
        return;
    };
    let flag = vm_assist & VMASST_RUNSTATE_UPDATE_FLAG != 0;
    let entry = crate::guest_mem::guest_field!(area, VcpuRunstateInfo, state_entry_time);
    if flag {
        let _ = entry.write(&Loaded, &(info.state_entry_time | XEN_RUNSTATE_UPDATE));
        core::sync::atomic::fence(Ordering::Release);
        let marked = VcpuRunstateInfo {
            state_entry_time: info.state_entry_time | XEN_RUNSTATE_UPDATE,
            ..*info
        };
        let _ = area.write(&Loaded, &marked);
        core::sync::atomic::fence(Ordering::Release);
        let _ = entry.write(&Loaded, &info.state_entry_time);
    } else {
        let _ = area.write(&Loaded, info);
    }
}

/// `SCHEDOP_yield`'s test: whether a vCPU waits for some CPU (one load
/// of a global; no call, so a lone vCPU's yield stays as cheap as a null
/// hypercall). When one does, the hypercall answers
/// [`Outcome::Switch`](crate::hypercall::Outcome) and the entry's full
/// path calls [`switch_from_hypercall`], which looks at this CPU's queue.
#[inline(always)]
pub fn yield_wanted() -> bool {
    ALL_WAITING.load(Ordering::Relaxed) != 0
}

/// A hypercall answered [`Outcome::Switch`](crate::hypercall::Outcome),
/// with `regs` its full frame: the running vCPU yields if it is still
/// runnable (a yield, or a batch with one) and this CPU switches to the
/// vCPU its queue picks (the same one when none other waits here); one
/// that took itself down or blocked is switched away from.
pub fn switch_from_hypercall(regs: &mut GuestRegs) {
    queue(percpu::cpu_id()).yield_current();
    reschedule(regs);
}

/// The 10 ms tick on this CPU (from the timer interrupt, with the frame
/// it interrupted): credit accounting, then a switch if the running
/// vCPU's slice is over and the interrupt came from a guest (in hv the
/// CPU idles: [`reschedule`]'s loop looks again).
pub fn tick(regs: &mut GuestRegs) {
    let cpu = percpu::cpu_id();
    let now = crate::time::now_ns();
    let switch = {
        let mut q = queue(cpu);
        q.tick(now)
    };
    balance(cpu);
    if switch && regs.is_guest_context() {
        reschedule(regs);
    }
}

/// Load balancing: an idle CPU takes a waiting vCPU (allowed on it) from
/// the busiest other queue. With one CPU running guests, never finds one.
fn balance(cpu: usize) {
    let idle = {
        let q = queue(cpu);
        q.current().is_none() && q.waiting() == 0
    };
    if !idle {
        return;
    }
    let busiest = (0..MAX_CPUS)
        .filter(|&c| c != cpu && percpu::CPUS[c].is_online())
        .max_by_key(|&c| WAITING[c].load(Ordering::Relaxed))
        .filter(|&c| WAITING[c].load(Ordering::Relaxed) > 0);
    let Some(from) = busiest else {
        return;
    };
    let now = crate::time::now_ns();
    // Two queues: lower CPU first (the same level, so taken one at a time).
    let stolen = {
        let mut q = queue(from);
        let u = q.steal(u32::try_from(cpu).unwrap_or(0));
        publish(from, &q);
        u
    };
    if let Some(u) = stolen {
        let mut q = queue(cpu);
        q.add(u, now);
        publish(cpu, &q);
    }
}

/// Switches this CPU to the vCPU its queue picks, with `regs` the full
/// frame of the running vCPU (if any runs): saved into it, then replaced
/// by the next one's. With nothing to run, idles until something is.
pub fn reschedule(regs: &mut GuestRegs) {
    let cpu = percpu::cpu_id();
    let mut loaded = domain::has_current();
    loop {
        let now = crate::time::now_ns();
        let (d, prev_info, next_info) = {
            let mut q = queue(cpu);
            let (d, prev, next): (Decision, _, _) = q.schedule_runstates(now);
            publish(cpu, &q);
            (d, prev, next)
        };
        if loaded && d.prev == d.next {
            return;
        }
        if loaded {
            domain::save_current(regs, prev_info.as_ref());
            loaded = false;
        }
        match d.next {
            Some(next) => {
                let dom = DomId::try_new(next.dom).ok();
                let entered = dom.is_some_and(|dom| {
                    domain::enter(dom, VcpuId::new(next.vcpu), regs, next_info.as_ref())
                });
                if entered {
                    return;
                }
                // Its domain is gone: forget the record and look again.
                let mut q = queue(cpu);
                q.set_state(next, State::Offline, now);
                let _ = q.schedule(now);
                let _ = q.remove(next);
                publish(cpu, &q);
            }
            None => {
                // Nothing of a guest stays loaded while the CPU idles: a
                // destroyed domain's L4 may be freed meanwhile.
                crate::arch::x86_64::mm::load_idle_table();
                idle();
            }
        }
    }
}

/// Waits for an interrupt with nothing loaded: `sti; hlt`, then
/// interrupts off again (hv runs with them off).
fn idle() {
    crate::arch::x86_64::cpu::wait_for_interrupt();
}

/// The first entry on this CPU: picks a vCPU and returns the page table
/// and registers to enter it with (idling until one is runnable).
pub fn first_entry() -> (u64, GuestRegs) {
    let mut regs = GuestRegs::default();
    reschedule(&mut regs);
    (crate::arch::x86_64::cpu::read_cr3(), regs)
}

/// `SCHEDOP_block`: enables event delivery (clears `evtchn_upcall_mask`,
/// Xen's `local_event_delivery_enable`), then blocks the vCPU until an
/// event makes its upcall pending ([`wake`], from the event paths). An
/// upcall due already (tested before and, as Xen's `vcpu_block`, after
/// marking the vCPU blocked) returns at once; the upcall goes out on the
/// way back to the guest. The answer is 0 either way; true when the
/// hypercall is to answer [`Outcome::Switch`](crate::hypercall::Outcome) (the vCPU was marked
/// blocked), false for a plain answer.
pub fn block() -> bool {
    let cpu = percpu::this_cpu();
    domain::with_current(|c| c.vcpu.vcpu_info.set_upcall_mask(false));
    if cpu.upcall_due() {
        return false;
    }
    block_current();
    if cpu.upcall_due() {
        wake(domain::current_id(), VcpuId::new(current_vcpu_id()));
    }
    true
}

/// Xen's limit on `SCHEDOP_poll`'s ports ("fairly arbitrary").
pub const MAX_POLL_PORTS: u32 = 128;

/// `SCHEDOP_poll` on ports read one by one through `port_at(i)` (a guest
/// copy, which may fault), with `timeout` an absolute system time (0:
/// none), in Xen 4.17's order (the caller refused more than 128 ports
/// and a list that is not guest memory): the vCPU is marked blocked and
/// polling; an upcall due returns 0 at once; then each port is read
/// (`-EFAULT`) and looked at (`-EINVAL` for one not valid or not bound,
/// and a pending one returns 0 at once); otherwise the poll timer is set
/// and the vCPU blocks until one of its ports becomes pending (any port
/// when it polls several), its upcall becomes pending, or the timeout
/// (`hv::pollers`, [`poll_timeout`]), and the answer is 0. `Ok(true)`:
/// the hypercall answers [`Outcome::Switch`](crate::hypercall::Outcome)
/// (the vCPU blocked).
pub fn poll(
    nr_ports: u32,
    port_at: impl Fn(u32) -> Result<u32, Errno>,
    timeout: u64,
) -> Result<bool, Errno> {
    let current = domain::current();
    let d = current.domain();
    let vcpu = current.vcpu_id();
    let poll_timer = Kind::Poll { dom: d.id, vcpu };
    if d.pollers.take_timer(vcpu) {
        timer::stop(poll_timer);
    }
    d.pollers.start(vcpu);
    block_running(unit_id(d.id, VcpuId::new(vcpu)));
    let checked = (|| {
        if percpu::this_cpu().upcall_due() {
            return Ok(false);
        }
        let mut last = 0;
        for i in 0..nr_ports {
            let port = port_at(i)?;
            let mut ev = d.events.lock();
            let crate::event::Events { table, words } = &mut *ev;
            if table.poll(port, words)? {
                return Ok(false);
            }
            last = port;
        }
        if nr_ports == 1 {
            d.pollers.set_port(vcpu, last);
        }
        Ok(true)
    })();
    match checked {
        Ok(true) => {}
        other => {
            d.pollers.stop(vcpu);
            wake(d.id, VcpuId::new(vcpu));
            return other.map(|_| false);
        }
    }
    if timeout != 0 {
        d.pollers.timer_set(vcpu);
        timer::set(poll_timer, timeout);
    }
    Ok(true)
}

/// A poll timer ran out (Xen's `poll_timer_fn`): the poll ends, if the
/// vCPU still polls.
pub fn poll_timeout(dom: DomId, vcpu: u32) {
    if let Some(d) = domain::lookup(dom) {
        if d.pollers.stop(vcpu) {
            wake(dom, VcpuId::new(vcpu));
        }
    }
}
