//! The scheduler's decisions, without the machine: one CPU's run queue
//! with Xen's credit accounting (credit1's defaults and rules), and each
//! vCPU's runstate times.
//!
//! A [`RunQueue`] belongs to one physical CPU. It holds a [`Unit`] (the
//! scheduling record of one vCPU: its credit, priority, hard affinity and
//! runstate) for every vCPU that lives on that CPU, whatever its state;
//! only the runnable ones wait in its order. A unit moves between queues
//! only whole ([`RunQueue::remove`], [`RunQueue::add`], and
//! [`RunQueue::steal`] for load balancing), so there is one record per
//! vCPU and a CPU decides alone from its own queue.
//!
//! Credit, as Xen's credit scheduler has it: a tick every 10 ms burns
//! [`CREDITS_PER_TICK`] from the running unit; every
//! [`TICKS_PER_ACCT`] ticks the queue hands out one accounting period's
//! worth ([`CREDITS_PER_ACCT`], this CPU's 30 ms) among the domains with
//! active units in proportion to their weight (default
//! [`DEFAULT_WEIGHT`]), each domain's share split evenly over its active
//! units and bounded by its cap (a percentage of one CPU; 0 = none). A unit
//! with credit left is [`Prio::Under`], one in debt [`Prio::Over`]; the
//! queue runs Under before Over, FIFO within a priority. A capped unit
//! deeper in debt than its domain's cap per period is parked (not run)
//! until an accounting pays it back. Credit saturates at one period's
//! worth, as Xen's does, so an idle unit cannot hoard. A running unit is
//! preempted at the end of its 30 ms time slice when another is waiting,
//! or at once when it falls Over while an Under unit waits. A yield puts
//! the unit behind the others of its priority (Xen's `CSCHED_FLAG_YIELD`).
//! What is left out of credit1: the BOOST priority of a waking unit and
//! the per-domain accounting across CPUs (here each queue shares its own
//! CPU; with several CPUs, balancing moves the load).

use alloc::vec::Vec;

/// A vCPU as the scheduler names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitId {
    pub dom: u16,
    pub vcpu: u32,
}

/// Xen credit's defaults.
pub const DEFAULT_WEIGHT: u16 = 256;
pub const TICK_NS: u64 = 10_000_000;
pub const TICKS_PER_TSLICE: u32 = 3;
pub const TICKS_PER_ACCT: u32 = 3;
pub const CREDITS_PER_MSEC: i32 = 10;
pub const CREDITS_PER_TICK: i32 = 100;
/// One accounting period of one CPU (30 ms).
pub const CREDITS_PER_ACCT: i32 = 300;

/// Runstates as the ABI numbers them (`RUNSTATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Running = 0,
    Runnable = 1,
    Blocked = 2,
    Offline = 3,
}

/// A vCPU's runstate: the state, when it was entered (system time, ns)
/// and the time spent in each state before that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runstate {
    pub state: State,
    pub entry_time: u64,
    pub time: [u64; 4],
}

impl Runstate {
    pub const fn new(state: State, now: u64) -> Self {
        Self {
            state,
            entry_time: now,
            time: [0; 4],
        }
    }

    /// Enters `to` at `now` (the time since the last change goes to the
    /// state left; a clock that went back adds nothing).
    pub fn change(&mut self, to: State, now: u64) {
        let spent = now.saturating_sub(self.entry_time);
        let slot = &mut self.time[self.state as usize];
        *slot = slot.saturating_add(spent);
        self.state = to;
        self.entry_time = now.max(self.entry_time);
    }
}

/// Priority: Under runs before Over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Prio {
    Under,
    Over,
}

/// One vCPU's scheduling record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub id: UnitId,
    pub weight: u16,
    /// Percent of one CPU the domain may use; 0 = no cap.
    pub cap: u16,
    pub credit: i32,
    /// Hard affinity: bit n = may run on CPU n.
    pub affinity: u64,
    pub runstate: Runstate,
    yielded: bool,
    parked: bool,
    /// Its domain is paused ([`RunQueue::pause`]): never picked, and
    /// shown offline while it would be runnable.
    paused: bool,
    /// Paused while runnable (or made runnable while paused): runnable
    /// again when the pause ends.
    held: bool,
}

impl Unit {
    /// A new unit (Xen's defaults: no credit yet, all CPUs), in `state`.
    pub fn new(id: UnitId, state: State, now: u64) -> Self {
        Self {
            id,
            weight: DEFAULT_WEIGHT,
            cap: 0,
            credit: 0,
            affinity: u64::MAX,
            runstate: Runstate::new(state, now),
            yielded: false,
            parked: false,
            paused: false,
            held: false,
        }
    }

    pub fn prio(&self) -> Prio {
        if self.credit >= 0 {
            Prio::Under
        } else {
            Prio::Over
        }
    }

    /// Wants a CPU (running or waiting for one).
    pub fn active(&self) -> bool {
        matches!(self.runstate.state, State::Running | State::Runnable)
    }

    pub fn parked(&self) -> bool {
        self.parked
    }

    pub fn paused(&self) -> bool {
        self.paused
    }
}

/// What [`RunQueue::schedule`] decided: the unit that ran (if any) and
/// the one to run now (`None`: idle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub prev: Option<UnitId>,
    pub next: Option<UnitId>,
}

/// One physical CPU's units and the order of its runnable ones.
#[derive(Debug)]
pub struct RunQueue {
    cpu: u32,
    units: Vec<Unit>,
    /// Runnable units, the next to run first (never the running one).
    order: Vec<UnitId>,
    current: Option<UnitId>,
    /// Ticks the current unit has run in its slice.
    slice_ticks: u32,
    /// Ticks since the last accounting.
    acct_ticks: u32,
}

impl RunQueue {
    pub const fn new(cpu: u32) -> Self {
        Self {
            cpu,
            units: Vec::new(),
            order: Vec::new(),
            current: None,
            slice_ticks: 0,
            acct_ticks: 0,
        }
    }

    fn index(&self, id: UnitId) -> Option<usize> {
        self.units.iter().position(|u| u.id == id)
    }

    pub fn get(&self, id: UnitId) -> Option<&Unit> {
        self.units.iter().find(|u| u.id == id)
    }

    pub fn get_mut(&mut self, id: UnitId) -> Option<&mut Unit> {
        self.units.iter_mut().find(|u| u.id == id)
    }

    pub fn current(&self) -> Option<UnitId> {
        self.current
    }

    /// Runnable units waiting (the running one not counted).
    pub fn waiting(&self) -> usize {
        self.order.len()
    }

    /// Units on this CPU.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Takes `unit` in (a new vCPU, or one moved here); a runnable one
    /// joins the order. A unit running elsewhere comes in runnable.
    pub fn add(&mut self, mut unit: Unit, now: u64) {
        if unit.runstate.state == State::Running {
            unit.runstate.change(State::Runnable, now);
        }
        let runnable = unit.runstate.state == State::Runnable;
        let id = unit.id;
        self.units.push(unit);
        if runnable {
            self.enqueue(id);
        }
    }

    /// Lets `id` go (to another CPU, or the vCPU is destroyed); `None` if
    /// it is not here or is running here.
    pub fn remove(&mut self, id: UnitId) -> Option<Unit> {
        if self.current == Some(id) {
            return None;
        }
        let i = self.index(id)?;
        self.order.retain(|&o| o != id);
        Some(self.units.swap_remove(i))
    }

    /// Inserts a runnable unit behind every unit of its priority or a
    /// better one (Xen's `runq_insert`: FIFO within a priority); one that
    /// yielded goes one further, behind the first unit of a lower
    /// priority, if one waits.
    fn enqueue(&mut self, id: UnitId) {
        if let Some(i) = self.index(id) {
            self.enqueue_at(i);
        }
    }

    /// [`Self::enqueue`] for the unit at `i` in `units`.
    fn enqueue_at(&mut self, i: usize) {
        let Some((id, prio, yielded)) = self.units.get(i).map(|u| (u.id, u.prio(), u.yielded))
        else {
            return;
        };
        let mut at = self
            .order
            .iter()
            .position(|&o| self.get(o).is_some_and(|u| u.prio() > prio))
            .unwrap_or(self.order.len());
        if yielded && at < self.order.len() {
            at += 1;
        }
        self.order.insert(at, id);
    }

    /// Changes `id`'s state to `to` at `now` (up, down, block, wake);
    /// false if the unit is not here. A unit that becomes runnable joins
    /// the order; one that stops being runnable leaves it. The running
    /// unit stays current until [`Self::schedule`] picks another.
    pub fn set_state(&mut self, id: UnitId, to: State, now: u64) -> bool {
        match self.index(id) {
            Some(i) => {
                self.set_state_at(i, to, now);
                true
            }
            None => false,
        }
    }

    /// [`Self::set_state`] for the unit at `i` in `units` (one search for
    /// the unit, by the caller).
    fn set_state_at(&mut self, i: usize, to: State, now: u64) {
        let Some(u) = self.units.get_mut(i) else {
            return;
        };
        if u.paused {
            // Runnable waits for the end of the pause, shown offline (Xen's
            // runstate of a vCPU that is up but not runnable).
            u.held = to == State::Runnable;
            let to = if u.held { State::Offline } else { to };
            if u.runstate.state != to && to != State::Running {
                u.runstate.change(to, now);
            }
            return;
        }
        let from = u.runstate.state;
        if from == to || (to == State::Running) {
            return;
        }
        if from == State::Running && to == State::Runnable {
            // Only `schedule` puts the running unit back.
            return;
        }
        u.runstate.change(to, now);
        let id = u.id;
        if to == State::Runnable {
            self.enqueue_at(i);
        } else {
            self.order.retain(|&o| o != id);
        }
    }

    /// Pauses unit `id` (its domain is paused, shut down or dying): it is
    /// not picked again until [`Self::unpause`]; a runnable one is shown
    /// offline meanwhile and runnable again after. The running unit stays
    /// current until [`Self::schedule`] (the caller makes its CPU
    /// reschedule). `None` if the unit is not here, else whether it is
    /// the running one.
    pub fn pause(&mut self, id: UnitId, now: u64) -> Option<bool> {
        let i = self.index(id)?;
        let u = self.units.get_mut(i)?;
        if !u.paused {
            u.paused = true;
            if matches!(u.runstate.state, State::Running | State::Runnable) {
                u.held = true;
                u.runstate.change(State::Offline, now);
            }
            self.order.retain(|&o| o != id);
        }
        Some(self.current == Some(id))
    }

    /// Ends [`Self::pause`] for `id`: a unit held runnable joins the
    /// order. False if the unit is not here.
    pub fn unpause(&mut self, id: UnitId, now: u64) -> bool {
        let Some(i) = self.index(id) else {
            return false;
        };
        let Some(u) = self.units.get_mut(i) else {
            return false;
        };
        if u.paused {
            u.paused = false;
            if core::mem::take(&mut u.held) {
                self.set_state_at(i, State::Runnable, now);
            }
        }
        true
    }

    /// Wakes `id` if it is blocked (it becomes runnable and joins the
    /// order): `None` if the unit is not here, else whether it was
    /// blocked. Nothing changes unless it was.
    pub fn wake(&mut self, id: UnitId, now: u64) -> Option<bool> {
        let i = self.index(id)?;
        let blocked = self.units.get(i)?.runstate.state == State::Blocked;
        if blocked {
            self.set_state_at(i, State::Runnable, now);
        }
        Some(blocked)
    }

    /// Blocks `id` if it is the running unit (it stays current until
    /// [`Self::schedule`]): `None` (nothing changed) if it is not, else
    /// whether it was blocked already.
    pub fn block_running(&mut self, id: UnitId, now: u64) -> Option<bool> {
        if self.current != Some(id) {
            return None;
        }
        let i = self.index(id)?;
        let was = self.units.get(i)?.runstate.state == State::Blocked;
        self.set_state_at(i, State::Blocked, now);
        Some(was)
    }

    /// Marks the running unit as yielding: it goes behind the other
    /// units of its priority at the next [`Self::schedule`].
    pub fn yield_current(&mut self) {
        if let Some(id) = self.current {
            if let Some(u) = self.get_mut(id) {
                u.yielded = true;
            }
        }
    }

    /// Picks the unit to run at `now`: the running one goes back in the
    /// order if still runnable (behind its equals, see `enqueue`), then
    /// the first eligible one runs: not parked, its affinity naming this
    /// CPU. The running unit keeps the CPU if it is the first eligible
    /// one.
    pub fn schedule(&mut self, now: u64) -> Decision {
        self.schedule_runstates(now).0
    }

    /// [`Self::schedule`], with the runstates of the unit that ran and of
    /// the one to run, as they are after the decision (what the switch
    /// writes to their runstate areas).
    pub fn schedule_runstates(
        &mut self,
        now: u64,
    ) -> (Decision, Option<Runstate>, Option<Runstate>) {
        let prev = self.current.take();
        let mut prev_at = None;
        if let Some(id) = prev {
            prev_at = self.index(id);
            if let Some(i) = prev_at {
                if let Some(u) = self.units.get_mut(i) {
                    if u.runstate.state == State::Running {
                        u.runstate.change(State::Runnable, now);
                        self.enqueue_at(i);
                    }
                }
                if let Some(u) = self.units.get_mut(i) {
                    u.yielded = false;
                }
            }
        }
        let cpu_bit = 1u64.checked_shl(self.cpu).unwrap_or(0);
        let pick = self.order.iter().enumerate().find_map(|(at, &o)| {
            let i = self.index(o)?;
            let u = self.units.get(i)?;
            (!u.parked && u.affinity & cpu_bit != 0).then_some((at, i))
        });
        let mut next = None;
        let mut next_runstate = None;
        if let Some((at, i)) = pick {
            // The last one waiting (often the only one) comes off without
            // a call to move the rest up.
            next = if at + 1 == self.order.len() {
                self.order.pop()
            } else {
                Some(self.order.remove(at))
            };
            if let Some(u) = self.units.get_mut(i) {
                u.runstate.change(State::Running, now);
                next_runstate = Some(u.runstate);
            }
        }
        if next != prev {
            self.slice_ticks = 0;
        }
        self.current = next;
        let prev_runstate = prev_at.and_then(|i| self.units.get(i)).map(|u| u.runstate);
        (Decision { prev, next }, prev_runstate, next_runstate)
    }

    /// One 10 ms tick at `now`: the running unit pays for it, and every
    /// third tick the queue's credit is handed out. True when the running
    /// unit should give the CPU up (its slice is over and another waits,
    /// the accounting left it Over with an Under unit waiting, or it was
    /// parked), or when this CPU idles and a unit waits.
    pub fn tick(&mut self, now: u64) -> bool {
        let _ = now;
        self.acct_ticks += 1;
        if let Some(u) = self.current.and_then(|id| self.get_mut(id)) {
            u.credit = u.credit.saturating_sub(CREDITS_PER_TICK);
        }
        let accounted = self.acct_ticks >= TICKS_PER_ACCT;
        if accounted {
            self.acct_ticks = 0;
            self.account();
        }
        let Some(cur) = self.current.and_then(|id| self.get(id)) else {
            return !self.order.is_empty();
        };
        let (prio, parked) = (cur.prio(), cur.parked);
        // Blocked or taken down while it ran, and not switched away yet.
        let stopped = cur.runstate.state != State::Running;
        self.slice_ticks += 1;
        let under_waits = self
            .order
            .first()
            .and_then(|&o| self.get(o))
            .is_some_and(|u| u.prio() == Prio::Under && !u.parked);
        stopped
            || parked
            || (self.slice_ticks >= TICKS_PER_TSLICE && !self.order.is_empty())
            || (accounted && prio == Prio::Over && under_waits)
    }

    /// Hands out one accounting period: each domain with active units
    /// gets `CREDITS_PER_ACCT * weight * active / total` (bounded by its
    /// cap), split evenly over its active units. Units then re-sort by
    /// their new priority.
    pub fn account(&mut self) {
        let mut doms: Vec<(u16, u16, u16, u32)> = Vec::new(); // dom, weight, cap, active
        for u in self.units.iter().filter(|u| u.active()) {
            match doms.iter_mut().find(|d| d.0 == u.id.dom) {
                Some(d) => d.3 += 1,
                None => doms.push((u.id.dom, u.weight, u.cap, 1)),
            }
        }
        let total: i64 = doms.iter().map(|d| i64::from(d.1) * i64::from(d.3)).sum();
        if total == 0 {
            return;
        }
        for &(dom, weight, cap, active) in &doms {
            let mut fair =
                i64::from(CREDITS_PER_ACCT) * i64::from(weight) * i64::from(active) / total;
            let cap_credit = (i64::from(cap) * i64::from(CREDITS_PER_ACCT) + 99) / 100;
            if cap != 0 {
                fair = fair.min(cap_credit);
            }
            let active = i64::from(active);
            let each = i32::try_from((fair + active - 1) / active).unwrap_or(i32::MAX);
            let cap_credit = i32::try_from(cap_credit).unwrap_or(i32::MAX);
            for u in self
                .units
                .iter_mut()
                .filter(|u| u.id.dom == dom && u.active())
            {
                u.credit = u.credit.saturating_add(each).min(CREDITS_PER_ACCT);
                u.parked = cap != 0 && u.credit < -cap_credit;
            }
        }
        // Priorities may have changed: re-sort, stable within a priority.
        let mut order = core::mem::take(&mut self.order);
        order.sort_by_key(|&o| self.get(o).map_or(Prio::Over, Unit::prio));
        self.order = order;
    }

    /// For load balancing: takes the first waiting unit (Under first, as
    /// the order runs) that may run on `cpu`, out of this queue; the
    /// caller adds it to `cpu`'s.
    pub fn steal(&mut self, cpu: u32) -> Option<Unit> {
        let bit = 1u64.checked_shl(cpu).unwrap_or(0);
        let i = self
            .order
            .iter()
            .position(|&o| self.get(o).is_some_and(|u| u.affinity & bit != 0))?;
        let id = self.order.remove(i);
        let at = self.index(id)?;
        Some(self.units.swap_remove(at))
    }
}

/// `dom0_max_vcpus=` as Xen 4.17 reads it: `N` (exactly N), `N-M`, `N-`
/// (at least N), `-M` (at most M); 0 as a minimum means 1. Returns the
/// (min, max) bounds, or `None` for a malformed value (Xen then keeps
/// what it parsed so far; hv keeps its defaults).
pub fn parse_dom0_max_vcpus(s: &str) -> Option<(u32, u32)> {
    let num = |t: &str| t.parse::<u32>().ok();
    if let Some(max) = s.strip_prefix('-') {
        return Some((1, num(max)?));
    }
    let (min, rest) = match s.split_once('-') {
        Some((a, b)) => (num(a)?, Some(b)),
        None => (num(s)?, None),
    };
    let min = min.max(1);
    match rest {
        None => Some((min, min)),
        Some("") => Some((min, u32::MAX)),
        Some(m) => Some((min, num(m)?)),
    }
}

/// Domain 0's vCPU count (Xen's `dom0_max_vcpus()`): the CPUs it may run
/// on, raised to the minimum, lowered to the maximum, then to `limit`
/// (the most hv can give it).
pub fn dom0_vcpus(cpus: u32, (min, max): (u32, u32), limit: u32) -> u32 {
    cpus.max(min).min(max).min(limit).max(1)
}

#[cfg(test)]
mod tests;
