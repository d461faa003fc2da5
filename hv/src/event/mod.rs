//! Event channels as hv runs them: each domain's port table (the pure
//! logic, `hv::evtchn`) and the guest words it works on
//! ([`EventWords`](crate::mm::EventWords)), together behind the domain's
//! event lock (`Level::Events`, after the domain's state and before the
//! frame table, which registering a FIFO frame takes).
//!
//! The hypercall (`hypercall::event_channel`) copies its argument in,
//! resolves the domain, takes the lock, runs one operation of the table
//! and copies the answer out after letting go: no lock is held across a
//! guest copy. What follows here is what the table leaves to the kernel:
//! the FIFO frames (`init_control`'s control block and `expand_array`'s
//! pages: the guest names them by frame number, which for a PV guest is
//! the machine frame itself; hv takes a writable type reference, so a
//! frame the domain does not own, or one that is a page table or
//! descriptor table, is refused with `-EINVAL` as Xen's `map_guest_page`
//! refuses it, and while registered the frame can never be pinned or
//! validated as a table), when a reset preempts, and what a raised event
//! asks for.
//!
//! A raised event asks for two things ([`hv::evtchn::Raised`]): a kick of
//! the vCPU whose `evtchn_upcall_pending` went up, and a wake-up of vCPUs
//! polling the port (`sched::Pollers`). The kick wakes that vCPU if it
//! blocked or polls (`crate::sched::wake`); a port newly pending wakes
//! the vCPUs polling it. One load tells whether any vCPU is blocked
//! ([`raised`]); one that runs or waits for a CPU sees the upcall on its
//! way back to the guest (`traps::upcall`).
//!
//! VIRQs: every one binds as on Xen (the table's rules). Sources:
//! `VIRQ_TIMER` is raised by a vCPU's single-shot and periodic timers
//! (`timer`, through [`send_vcpu_virq`]); `VIRQ_DOM_EXC` is raised in the
//! initial domain when another domain shuts down or crashes (`shutdown`,
//! Xen's default handler of global VIRQs; unreachable while hv runs one
//! domain); `VIRQ_CONSOLE` by serial input for domain 0 and `VIRQ_DEBUG`
//! by the debug key `q` (`console_input`).

use guest_abi::errno::Errno;
use guest_abi::types::DomId;
use hv::evtchn::{EventTable, ExpandArray, InitControl, Peers, Raised, ResetProgress};

use crate::domain::{self, Domain};
use crate::mm::{EventWords, WritableRef};

/// Ports a reset closes before it lets hv take interrupts: the table asks
/// every 64 ports, and every 16th time the answer is yes.
const RESET_PORTS_PER_CALL: u32 = 1024;

/// One domain's event channels: the table and the words it works on.
pub struct Events {
    pub table: EventTable,
    pub words: EventWords,
}

impl core::fmt::Debug for Events {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Events")
            .field("active", &self.table.active())
            .field("abi", &self.table.abi())
            .field("words", &self.words)
            .finish()
    }
}

impl Events {
    /// The event channels of a new domain `id` with `nr_vcpus` vCPUs, at
    /// most `max_port` as its highest port, whose `shared_info` frame
    /// `shared_info` holds (a reference of the caller's, now these
    /// words').
    pub fn new(
        id: DomId,
        nr_vcpus: u32,
        max_port: u32,
        shared_info: WritableRef,
    ) -> Result<Self, &'static str> {
        let table = EventTable::new(id, nr_vcpus, max_port).map_err(|_| "no heap for the ports")?;
        let words = EventWords::new(shared_info, nr_vcpus)
            .map_err(|_| "event words outside shared_info (more than 32 vCPUs?)")?;
        Ok(Self { table, words })
    }

    /// `EVTCHNOP_init_control` for the domain `owner`: the table's checks,
    /// then the control block's frame, then the commit. Returns
    /// `link_bits`.
    pub fn init_control(
        &mut self,
        owner: DomId,
        vcpu: u32,
        gfn: u64,
        offset: u32,
    ) -> Result<u8, Errno> {
        let token: InitControl = self.table.fifo_init_control_check(vcpu, offset)?;
        let frame = guest_frame(owner, gfn)?;
        self.words
            .set_control_block(token.vcpu(), frame, offset)
            .map_err(|_| Errno::EINVAL)?;
        self.table.fifo_init_control_commit(token, &self.words)
    }

    /// `EVTCHNOP_expand_array` for the domain `owner`: the next page of
    /// event words; the ports it covers that were raised while it was
    /// missing are raised now.
    pub fn expand_array(&mut self, dom: &Domain, gfn: u64) -> Result<(), Errno> {
        let token: ExpandArray = self.table.fifo_expand_check()?;
        let frame = guest_frame(dom.id, gfn)?;
        if self.words.event_pages() != token.slot() as usize {
            return Err(Errno::EINVAL);
        }
        self.words
            .add_event_page(frame)
            .map_err(|_| Errno::ENOMEM)?;
        self.table
            .fifo_expand_commit(token, &self.words, |r| raised(dom, r));
        Ok(())
    }

    /// One step of `EVTCHNOP_reset` (`resuming`: `reset_cont`) of this
    /// table, up to the end, a preemption or a port joined to another
    /// domain, which [`reset`] closes with both tables locked.
    fn reset_step(&mut self, resuming: bool) -> Result<ResetStep, Errno> {
        let mut asked = 0u32;
        let preempt = || {
            asked += 1;
            asked.is_multiple_of(RESET_PORTS_PER_CALL / 64)
        };
        Ok(match self.table.reset(resuming, &self.words, preempt)? {
            ResetProgress::Done { fifo_released } => {
                if fifo_released {
                    self.words.release_fifo();
                }
                ResetStep::Done
            }
            ResetProgress::Preempted => ResetStep::Preempted,
            ResetProgress::ForeignPeer { port, .. } => ResetStep::Peer(port.get()),
        })
    }
}

/// Where a reset step stopped.
enum ResetStep {
    Done,
    Preempted,
    /// At this port, joined to another domain.
    Peer(u32),
}

/// `EVTCHNOP_reset` (`resuming`: `reset_cont`) of `d`'s table: every port
/// closes (a channel to another domain with that domain's end going back
/// to unbound, as a close from either side), then a FIFO table goes back
/// to 2-level. `Ok(true)` when done, `Ok(false)` when preempted (the
/// caller continues with `reset_cont`). Call with no lock held.
pub fn reset(d: &Domain, resuming: bool) -> Result<bool, Errno> {
    let mut resuming = resuming;
    let mut last_peer = None;
    loop {
        let step = d.events.lock().reset_step(resuming)?;
        match step {
            ResetStep::Done => return Ok(true),
            ResetStep::Preempted => return Ok(false),
            ResetStep::Peer(port) => {
                // The same port again: its close keeps failing (cannot
                // happen while the table is this domain's alone to change;
                // a bound on the loop all the same).
                if last_peer == Some(port) {
                    return Err(Errno::EAGAIN);
                }
                last_peer = Some(port);
                let _ = close(d, port);
                resuming = true;
            }
        }
    }
}

/// A guest frame named by number for the event channels to hold: a PV
/// guest's frame number is the machine frame (Xen's `get_page_from_gfn`
/// without translation); `-EINVAL` unless `owner` owns it and it can be
/// ordinary writable memory (not a page table, not a descriptor table).
fn guest_frame(owner: DomId, gfn: u64) -> Result<WritableRef, Errno> {
    WritableRef::take(gfn, owner.get()).map_err(|_| Errno::EINVAL)
}

/// Acts on what raising an event in `dom` asks for: the vCPU whose
/// upcall became pending is woken if it blocked or polls, and the vCPUs
/// polling a port newly pending (`crate::sched`; one load when no vCPU
/// anywhere is blocked). Call with at most the event lock held.
#[inline(always)]
pub fn raised(dom: &Domain, r: Raised) {
    // A vCPU running on another CPU gets its upcall at that CPU's next
    // exit: the kick makes that now (Xen's `vcpu_kick`).
    if let Some(v) = r.upcall {
        crate::arch::x86_64::smp::kick(dom.vcpu_cpu(v as usize));
    }
    if crate::sched::any_blocked() {
        wake_for(dom, r);
    }
}

/// After a send in the running domain with some vCPU blocked: wakes
/// every blocked vCPU of the domain with an upcall pending, and every
/// polling vCPU whose port is pending (no argument, so the send path
/// keeps nothing live for it). Called with no lock held. The sender
/// itself is passed over: it runs here, so it neither blocks nor polls
/// (a poll ends before its vCPU runs again).
#[cold]
#[inline(never)]
pub fn wake_pending_here() {
    let current = crate::domain::current();
    let d = current.domain();
    let sender = current.vcpu_id();
    for i in 0..d.max_vcpus() {
        if i == sender {
            continue;
        }
        let v = guest_abi::types::VcpuId::new(i);
        if d.with_vcpu(v, |v| v.vcpu_info.upcall_pending() != 0) == Some(true) {
            d.pollers.stop(i);
            crate::sched::wake(d.id, v);
        }
    }
    if d.pollers.any() {
        let pending = |port: u32| {
            let ev = d.events.lock();
            ev.table.is_pending(port, &ev.words)
        };
        for v in d.pollers.woken_by(pending) {
            crate::sched::wake(d.id, guest_abi::types::VcpuId::new(v));
        }
    }
}

#[cold]
#[inline(never)]
fn wake_for(dom: &Domain, r: Raised) {
    if let Some(vcpu) = r.upcall {
        dom.pollers.stop(vcpu);
        crate::sched::wake(dom.id, guest_abi::types::VcpuId::new(vcpu));
    }
    if let Some(port) = r.newly_pending {
        for v in dom.pollers.port_raised(port) {
            crate::sched::wake(dom.id, guest_abi::types::VcpuId::new(v));
        }
    }
}

/// Raises the per-vCPU VIRQ `virq` of `dom`'s vCPU `vcpu`, if it bound it
/// (Xen's `send_guest_vcpu_virq`).
pub fn send_vcpu_virq(dom: &Domain, vcpu: u32, virq: u32) {
    let r = {
        let mut ev = dom.events.lock();
        let Events { table, words } = &mut *ev;
        table.send_vcpu_virq(vcpu, virq, words)
    };
    raised(dom, r);
}

/// Raises the global VIRQ `virq` in `dom` on the vCPU its port notifies,
/// if the domain bound it (Xen's `send_global_virq`).
pub fn send_global_virq(dom: &Domain, virq: u32) {
    let r = {
        let mut ev = dom.events.lock();
        let Events { table, words } = &mut *ev;
        table.send_global_virq(virq, words)
    };
    raised(dom, r);
}

/// Runs `f` on the tables of `own` and `other` (another domain), both
/// locked, lower `DomId` first, with `own`'s words.
pub fn with_peers<R>(
    own: &Domain,
    other: &Domain,
    f: impl FnOnce(Peers<'_>, &crate::mm::EventWords) -> R,
) -> R {
    let (mut mine, mut theirs) = if own.id < other.id {
        own.events.lock_pair(&other.events)
    } else {
        let (o, m) = other.events.lock_pair(&own.events);
        (m, o)
    };
    let Events { table, words } = &mut *mine;
    let peers = Peers::two(table, &mut theirs.table);
    match peers {
        Some(p) => f(p, words),
        // The same domain: callers pass another.
        None => f(Peers::same(table), words),
    }
}

/// Closes `port` of `own`: with the other end's table too if that is in
/// another domain (looked for unlocked, then checked again under both
/// locks by the table: `-EINVAL` if the channel changed meanwhile).
pub fn close(own: &Domain, port: u32) -> Result<(), Errno> {
    let peer = own.events.lock().table.close_needs(port);
    match peer.and_then(domain::lookup) {
        Some(other) => with_peers(own, &other, |peers, words| {
            EventTable::close(peers, port, words)
        }),
        None => {
            let mut ev = own.events.lock();
            let Events { table, words } = &mut *ev;
            table.close_local(port, words)
        }
    }
}

/// Closes every channel of `d`, a dying domain (Xen's `evtchn_destroy`):
/// its table first stops giving out ports, so that no port is allocated
/// or bound to it from here on (every bind needs one of its unbound
/// ports, and those close below); the other ends of its channels to
/// other domains go back to unbound.
pub fn close_all(d: &Domain) {
    let n = {
        let mut ev = d.events.lock();
        ev.table.set_dying();
        ev.table.valid_ports()
    };
    for port in 1..n {
        // Free and reserved ports answer -EINVAL: nothing to close.
        let _ = close(d, port);
    }
}
