//! Domains and their vCPUs.
//!
//! The domain table maps a [`DomId`] to a counted reference (`Arc`) to its
//! [`Domain`]: whoever holds one may use the domain even while it is being
//! destroyed, and its memory goes only when the last holder lets go. A
//! `Domain` keeps what never changes after it is built (id, privilege,
//! handle, shared-info frame) outside any lock, its mutable state in
//! [`DomainState`] behind one lock, and its vCPUs, each behind its own
//! lock: a vCPU's context (registers, segment bases, FPU state, page-table
//! bases, trap table, LDT) is touched by the CPU running it, and by others
//! only while it does not run.
//!
//! Each CPU knows the domain it runs (a counted reference in a per-CPU
//! slot) and which of its vCPUs; [`with_current`] hands both, locked, to a
//! hypercall or trap handler.
//!
//! ## Lock order
//!
//! Taken in this order, never the reverse (debug builds check every
//! acquisition: `crate::sync`, `hv::lock_levels`):
//! 1. the domain table ([`TABLE`]);
//! 2. a vCPU of one domain (two vCPUs: lower id first);
//! 3. that domain's grant table ([`Domain::grants`]);
//! 4. that domain's state (two domains: lower `DomId` first);
//! 5. that domain's event channels ([`Domain::events`]);
//! 6. a CPU's timer queue (`timer`; held only to change the queue);
//! 7. the frame allocator, then the heap;
//! 8. the console.
//!
//! The frame table has no lock: each frame's words are changed by atomic
//! swaps, and a page table being updated is held by its own lock bit
//! (`hv::page_info`), taken under any of the locks above and never
//! across another table's; a CPU waiting for a frame's bit, like one
//! waiting for a lock, serves IPIs. No lock is held across a guest
//! entry; an IPI wait (a TLB flush of stale CPUs when a frame changes
//! type) may come under the locks above, which cannot deadlock since
//! every hv lock serves IPIs while it spins. Copies to and from
//! guest memory made inside [`with_current`] fault at most into hv's own
//! fixup (they never sleep or re-enter the domain layer).
//!
//! Invariant: every frame in a domain's P2M is owned by that domain and by
//! no other party until the domain is destroyed or gives the frame back
//! (`decrease_reservation`: then it is freed with its last reference).

pub mod boot_kernel;
pub mod builder;
pub mod control;
pub mod ldt;
pub mod vcpu;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

pub use guest_abi::types::{DomId, VcpuId};
pub use vcpu::{TrapState, Vcpu, VcpuRun, DR6_DEFAULT, DR7_DEFAULT};

use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::percpu::{self, PerCpuArc};
use crate::event::Events;
use crate::mm::Mfn;
use crate::sync::{Level, Ordered};

/// Most vCPUs a domain gets: one `vcpu_info` slot each in `shared_info`
/// (`XEN_LEGACY_MAX_VCPUS`; more would need `VCPUOP_register_vcpu_info`
/// before their first use, which hv does not offer yet).
pub const MAX_VCPUS: u32 = 32;
const _: () = assert!(MAX_VCPUS as usize == guest_abi::xen::XEN_LEGACY_MAX_VCPUS);

/// Why and how a domain stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Shutdown(u32),
}

/// A domain's mutable state, behind the domain's lock.
#[derive(Debug)]
pub struct DomainState {
    /// Pseudo-physical to machine frame.
    pub p2m: Vec<Mfn>,
    pub run_state: RunState,
    /// Reason latched by `SCHEDOP_shutdown_code`, used by a later shutdown.
    pub shutdown_code: Option<u8>,
    /// Frames the domain owns now (`current_reservation`).
    pub tot_pages: u64,
    /// The most it may own (`maximum_reservation`).
    pub max_pages: u64,
    /// `SCHEDOP_watchdog` timers (the earliest armed as a timer on the
    /// CPU that set it).
    pub watchdogs: hv::watchdog::Watchdogs,
    /// Xen's 16-byte domain handle (`XEN_DOMCTL_setdomainhandle`).
    pub handle: [u8; 16],
    /// The toolstack's pause count (Xen's `controller_pause_count`): 1
    /// from `createdomain` until the toolstack's first unpause, at most
    /// 255.
    pub controller_pauses: u8,
    /// hv's own pauses of the domain while it changes a vCPU's context
    /// (Xen's `pause_count`).
    pub pauses: u32,
    /// Its credit weight and cap (`XEN_DOMCTL_scheduler_op`), which its
    /// vCPUs' scheduling records carry.
    pub sched: hv::domctl::SchedParams,
    /// `destroydomain` has begun: the domain's memory is going back.
    pub dying: bool,
    /// How far `destroydomain` has looked through the frame table for the
    /// domain's frames (machine frames below this are let go).
    pub relinquished_to: u64,
}

impl DomainState {
    /// The state of a domain that has `p2m` for memory, may own
    /// `max_pages` and carries `handle`.
    pub fn new(p2m: Vec<Mfn>, max_pages: u64, handle: [u8; 16]) -> Self {
        Self {
            tot_pages: p2m.len() as u64,
            p2m,
            run_state: RunState::Running,
            shutdown_code: None,
            max_pages,
            watchdogs: hv::watchdog::Watchdogs::default(),
            handle,
            controller_pauses: 0,
            pauses: 0,
            sched: hv::domctl::SchedParams::default(),
            dying: false,
            relinquished_to: 0,
        }
    }
}

impl DomainState {
    /// Whether none of the domain's vCPUs may run: its controller or hv
    /// paused it, it shut down, or it is being destroyed.
    pub fn paused(&self) -> bool {
        self.controller_pauses > 0
            || self.pauses > 0
            || self.dying
            || matches!(self.run_state, RunState::Shutdown(_))
    }
}

/// Changes `d`'s state with `f` and gives its vCPUs' scheduling the
/// pause that follows ([`DomainState::paused`]), in one step under the
/// domain's lock (so two changes cannot apply their pauses out of
/// order). Returns `f`'s answer and the CPUs that run one of its vCPUs
/// (kicked: they switch away from a paused one).
pub fn repause<R>(d: &Domain, f: impl FnOnce(&mut DomainState) -> R) -> (R, u64) {
    let nr = d.max_vcpus();
    d.with_state(|s| {
        let r = f(s);
        let running = crate::sched::set_paused(d.id, nr, s.paused());
        (r, running)
    })
}

/// What a domain is once built; fixed for its life.
#[derive(Debug)]
pub struct DomainConfig {
    pub id: DomId,
    /// Holds `SIF_PRIVILEGED`: may use privileged hypercalls.
    pub privileged: bool,
    /// Is the initial (hardware) domain.
    pub initial: bool,
    /// The shared-info page (hv-allocated, shared with the guest): the
    /// writable type reference hv holds on it for the domain's life, given
    /// back when the domain is dropped.
    pub shared_info: crate::mm::WritableRef,
    /// VM assists enabled from the start (bit per VMASST_TYPE_*).
    pub vm_assist: u64,
}

/// A domain.
///
/// Per-domain state hangs here, each concern behind its own lock (so that
/// a vCPU's bounce never waits for a grant copy): the event channels
/// ([`Domain::events`], with the per-vCPU pending bits in each vCPU's
/// `vcpu_info`) and, next, the grant table and maptrack,
/// and the per-domain mappings beyond the vCPUs' descriptor-table windows
/// (`mm::page_table::VcpuArea`). A domain's memory is its `DomainState`'s
/// P2M. How many vCPUs it may have is fixed at creation
/// ([`Domain::vcpu_limit`]); the vCPUs themselves are made once, at once
/// for a boot-time domain, by `XEN_DOMCTL_max_vcpus` for one the
/// toolstack creates ([`Domain::make_vcpus`]).
#[derive(Debug)]
pub struct Domain {
    pub id: DomId,
    pub privileged: bool,
    pub initial: bool,
    pub shared_info: crate::mm::WritableRef,
    /// The vCPU count fixed at creation (`createdomain.max_vcpus`).
    vcpu_limit: u32,
    /// Enabled VM assists (bit per VMASST_TYPE_*): read on every bounce,
    /// so kept out of the state lock.
    vm_assist: AtomicU64,
    state: Ordered<DomainState>,
    /// The event channels: the port table and the guest words it works
    /// on (`crate::event`).
    pub events: Ordered<Events>,
    /// Its grant table (`crate::grant`).
    pub grants: Ordered<crate::grant::Grants>,
    /// Its vCPUs in `SCHEDOP_poll` (atomics: the event paths test them
    /// with the event lock held).
    pub pollers: crate::sched::Pollers,
    vcpus: spin::Once<Vcpus>,
}

/// A domain's vCPUs, made once.
#[derive(Debug)]
struct Vcpus {
    each: Box<[Ordered<Vcpu>]>,
    /// The CPU each vCPU last ran on ([`NO_CPU`]: none yet), read without
    /// a lock by the TLB flushes a vCPU bitmap names (Xen's
    /// `vcpu->dirty_cpu`).
    cpus: Box<[AtomicU32]>,
}

impl Vcpus {
    fn new(vcpus: Vec<Vcpu>) -> Self {
        Self {
            cpus: no_cpus(vcpus.len()),
            each: vcpus
                .into_iter()
                .map(|v| Ordered::new(Level::Vcpu, v))
                .collect(),
        }
    }
}

/// [`Domain::vcpu_cpu`] of a vCPU that never ran.
const NO_CPU: u32 = u32::MAX;

fn no_cpus(n: usize) -> Box<[AtomicU32]> {
    (0..n).map(|_| AtomicU32::new(NO_CPU)).collect()
}

impl Domain {
    /// A domain from its configuration, state, vCPUs (at least one) and
    /// event channels (made for as many vCPUs).
    pub fn new(
        config: DomainConfig,
        state: DomainState,
        vcpus: Vec<Vcpu>,
        events: Events,
        grants: crate::grant::Grants,
    ) -> Self {
        let d = Self::without_vcpus(
            config,
            state,
            u32::try_from(vcpus.len()).unwrap_or(u32::MAX),
            events,
            grants,
        );
        d.vcpus.call_once(|| Vcpus::new(vcpus));
        d
    }

    /// A domain that may have `vcpu_limit` vCPUs and has none yet
    /// ([`Self::make_vcpus`] makes them), its event channels made for as
    /// many.
    pub fn without_vcpus(
        config: DomainConfig,
        state: DomainState,
        vcpu_limit: u32,
        events: Events,
        grants: crate::grant::Grants,
    ) -> Self {
        Self {
            vm_assist: AtomicU64::new(config.vm_assist),
            id: config.id,
            privileged: config.privileged,
            initial: config.initial,
            shared_info: config.shared_info,
            vcpu_limit,
            state: Ordered::new(Level::DomainState, state),
            events: Ordered::new(Level::Events, events),
            grants: Ordered::new(Level::Grants, grants),
            pollers: crate::sched::Pollers::default(),
            vcpus: spin::Once::new(),
        }
    }

    /// The vCPU count fixed at creation.
    pub fn vcpu_limit(&self) -> u32 {
        self.vcpu_limit
    }

    /// Makes the domain's vCPUs with `make` (given each id, in order), if
    /// it has none: `XEN_DOMCTL_max_vcpus`. False if `make` failed for
    /// one (the domain then still has none).
    pub fn make_vcpus(&self, make: impl Fn(VcpuId) -> Option<Vcpu>) -> bool {
        let mut ok = true;
        self.vcpus.call_once(|| {
            let made: Option<Vec<Vcpu>> =
                (0..self.vcpu_limit).map(|i| make(VcpuId::new(i))).collect();
            match made {
                Some(v) => Vcpus::new(v),
                None => {
                    ok = false;
                    Vcpus::new(Vec::new())
                }
            }
        });
        ok && self.nr_vcpus() == self.vcpu_limit
    }

    fn vcpu_slots(&self) -> &[Ordered<Vcpu>] {
        self.vcpus.get().map_or(&[], |v| &v.each)
    }

    /// The CPU vCPU `i` last ran on, if it ran.
    pub fn vcpu_cpu(&self, i: usize) -> Option<usize> {
        let c = self.vcpus.get()?.cpus.get(i)?.load(Ordering::Relaxed);
        (c != NO_CPU).then_some(c as usize)
    }

    /// Records that vCPU `i` runs on this CPU: its TLB may now hold the
    /// domain's translations (`arch::x86_64::mm::note_running`).
    pub fn note_vcpu_running(&self, i: usize) {
        let cpu = percpu::cpu_id();
        if let Some(c) = self.vcpus.get().and_then(|v| v.cpus.get(i)) {
            c.store(u32::try_from(cpu).unwrap_or(NO_CPU), Ordering::Relaxed);
        }
        crate::arch::x86_64::mm::note_running(self.id.get());
    }

    /// The enabled VM assists (bit per VMASST_TYPE_*).
    #[inline]
    pub fn vm_assist(&self) -> u64 {
        self.vm_assist.load(Ordering::Relaxed)
    }

    /// Sets the VM assists of a domain that does not run (vCPU 0's
    /// context from the toolstack); the running domain's change through
    /// [`Cur::set_vm_assist`].
    pub fn set_vm_assist(&self, bits: u64) {
        self.vm_assist.store(bits, Ordering::Relaxed);
    }

    /// How many vCPUs the domain has (ids 0 to this, exclusive).
    pub fn nr_vcpus(&self) -> u32 {
        u32::try_from(self.vcpu_slots().len()).unwrap_or(u32::MAX)
    }

    /// Pages in the domain's P2M.
    pub fn nr_pages(&self) -> u64 {
        self.with_state(|s| s.p2m.len() as u64)
    }

    /// Runs `f` on the domain's state, locked.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut DomainState) -> R) -> R {
        f(&mut self.state.lock())
    }

    /// How many vCPUs the domain has (`max_vcpus`; none before
    /// `XEN_DOMCTL_max_vcpus` made them).
    pub fn max_vcpus(&self) -> u32 {
        self.nr_vcpus()
    }

    /// Runs `f` on vCPU `id`, locked; `None` if there is no such vCPU.
    pub fn with_vcpu<R>(&self, id: VcpuId, f: impl FnOnce(&mut Vcpu) -> R) -> Option<R> {
        let each = self.vcpu_slots();
        let i = hv::nospec::index(usize::try_from(id.get()).ok()?, each.len())?;
        Some(f(&mut each[i].lock()))
    }

    /// The domain with one more vCPU (at boot, before it is registered,
    /// so before any port is bound: its event channels are made anew for
    /// the new count).
    pub fn add_vcpu(mut self, v: Vcpu) -> Result<Self, &'static str> {
        let old = core::mem::replace(&mut self.vcpus, spin::Once::new());
        let mut vcpus: Vec<Ordered<Vcpu>> = old
            .try_into_inner()
            .map(|v| v.each.into_vec())
            .unwrap_or_default();
        vcpus.push(Ordered::new(Level::Vcpu, v));
        let n = u32::try_from(vcpus.len()).map_err(|_| "vCPU count")?;
        let shared = crate::mm::WritableRef::take(self.shared_info.mfn(), self.id.get())
            .map_err(|_| "no reference to shared_info")?;
        let max_port = self.events.lock().table.max_port();
        let events = Events::new(self.id, n, max_port, shared)?;
        let all = Vcpus {
            cpus: no_cpus(vcpus.len()),
            each: vcpus.into_boxed_slice(),
        };
        Ok(Self {
            vcpu_limit: n,
            vcpus: spin::Once::initialized(all),
            events: Ordered::new(Level::Events, events),
            ..self
        })
    }
}

/// The running domain and vCPU: what [`with_current`] gives a handler. The
/// vCPU is locked; the domain's fixed fields are read through `d.dom`; its
/// state is reached through `Deref` (`d.p2m`, `d.tot_pages`), which takes the
/// domain's lock on first use (after the vCPU's, as the order wants) and
/// keeps it until the handler returns, so the many handlers that touch
/// only their vCPU never take it.
pub struct Cur<'a> {
    /// The domain (its fixed fields: `d.dom.id`, `d.dom.privileged`, ...).
    pub dom: &'a Domain,
    /// The enabled VM assists when the handler started
    /// ([`Cur::set_vm_assist`] changes them).
    pub vm_assist: u64,
    pub vcpu: crate::sync::OrderedGuard<'a, Vcpu>,
    /// The block of the CPU running the vCPU (this CPU).
    pub cpu: &'static percpu::CpuLocal,
    state: core::cell::OnceCell<crate::sync::OrderedGuard<'a, DomainState>>,
}

impl Cur<'_> {
    /// Sets the domain's VM assists (`vm_assist` hypercall).
    pub fn set_vm_assist(&mut self, bits: u64) {
        self.vm_assist = bits;
        self.dom.vm_assist.store(bits, Ordering::Relaxed);
    }
}

impl core::ops::Deref for Cur<'_> {
    type Target = DomainState;
    fn deref(&self) -> &DomainState {
        self.state.get_or_init(|| self.dom.state.lock())
    }
}

impl core::ops::DerefMut for Cur<'_> {
    fn deref_mut(&mut self) -> &mut DomainState {
        if self.state.get().is_none() {
            let _ = self.state.set(self.dom.state.lock());
        }
        match self.state.get_mut() {
            Some(g) => g,
            None => unreachable!("set just above"),
        }
    }
}

/// Number of entries the table may grow to: every ordinary domain id.
const TABLE_MAX: usize = guest_abi::xen::DOMID_FIRST_RESERVED as usize;

/// The domain table: index = domain id.
static TABLE: Ordered<Vec<Option<Arc<Domain>>>> = Ordered::new(Level::DomainTable, Vec::new());

/// The domain each CPU runs, with the lock of the vCPU it runs.
static CURRENT: PerCpuArc<Domain, Ordered<Vcpu>> = PerCpuArc::new();

/// Adds a built domain to the table; false if its id is taken.
pub fn register(d: Domain) -> bool {
    let i = usize::from(d.id.get());
    if i >= TABLE_MAX {
        return false;
    }
    let mut t = TABLE.lock();
    if t.len() <= i {
        t.resize_with(i + 1, || None);
    }
    match t.get_mut(i) {
        Some(slot @ None) => {
            *slot = Some(Arc::new(d));
            true
        }
        _ => false,
    }
}

/// A counted reference to domain `id`, if it exists. The index is clamped
/// against speculation before the table is read.
pub fn lookup(id: DomId) -> Option<Arc<Domain>> {
    let t = TABLE.lock();
    let i = hv::nospec::index(usize::from(id.get()), t.len())?;
    t[i].clone()
}

/// Every domain, in id order (a snapshot: counted references).
pub fn all() -> Vec<Arc<Domain>> {
    TABLE.lock().iter().flatten().cloned().collect()
}

/// A frame of domain `owner` was freed (given back, then its last
/// reference went: `mm::collect_freed`): it leaves the domain's
/// reservation, as on Xen when the frame goes back to the heap. Takes the
/// domain table's lock, then the domain's: call with no lock held.
pub fn frame_freed(owner: u16) {
    if let Some(d) = DomId::try_new(owner).ok().and_then(lookup) {
        d.with_state(|s| s.tot_pages = s.tot_pages.saturating_sub(1));
    }
}

/// Runs `f` on the domain and vCPU running on this CPU, both locked.
///
/// Panics (an hv bug) if there is none: only guest entries call this.
#[inline(always)]
pub fn with_current<R>(f: impl FnOnce(&mut Cur<'_>) -> R) -> R {
    let current = current();
    let mut cur = current.lock();
    f(&mut cur)
}

/// The domain and vCPU running on this CPU, lent for the rest of an hv
/// entry ([`current`]); [`Current::lock`] gives what [`with_current`]
/// gives its closure. For the hot entry paths, which a closure would put
/// out of line.
pub struct Current(percpu::Lent<'static, Domain, Ordered<Vcpu>>);

/// Borrows the domain and vCPU running on this CPU.
///
/// Panics (an hv bug) if there is none: only guest entries call this.
#[inline(always)]
pub fn current() -> Current {
    Current(
        CURRENT
            .lend()
            .expect("a guest entry with no current domain"),
    )
}

impl Current {
    /// The running domain's fixed fields, without locking anything.
    #[inline(always)]
    pub fn domain(&self) -> &Domain {
        self.0.get().0
    }

    /// The number of the vCPU this CPU runs (without locking it).
    #[inline(always)]
    pub fn vcpu_id(&self) -> u32 {
        u32::try_from(self.0.cpu().current_vcpu()).unwrap_or(u32::MAX)
    }

    /// Locks the vCPU (and, on first use, the domain's state): see [`Cur`].
    #[inline(always)]
    pub fn lock(&self) -> Cur<'_> {
        let (d, v) = self.0.get();
        Cur {
            dom: d,
            vm_assist: d.vm_assist.load(Ordering::Relaxed),
            vcpu: v.lock(),
            cpu: self.0.cpu(),
            state: core::cell::OnceCell::new(),
        }
    }
}

/// Rewrites the `vcpu_time_info` of the vCPU this CPU runs, if any, from
/// the CPU's time (after a calibration).
pub fn update_current_time() {
    CURRENT.with(|cur| {
        if let Some((_, v)) = cur {
            let v = v.lock();
            crate::time::update_vcpu_time(&v.vcpu_info, false);
            if v.time_area != 0 {
                crate::hypercall::write_time_area(v.time_area);
            }
        }
    });
}

/// Id of the current domain (`DOMID_IDLE` when none runs).
pub fn current_id() -> DomId {
    CURRENT.with(|cur| cur.map_or(DomId::IDLE, |(d, _)| d.id))
}

/// Whether this CPU has a vCPU loaded.
pub fn has_current() -> bool {
    CURRENT.with(|cur| cur.is_some())
}

/// Saves the vCPU running on this CPU from `frame` (the full frame of
/// its entry) and leaves the CPU with none: its runstate area gets
/// `runstate` (its record as it leaves) first, through its own page
/// tables. The scheduler's half of a switch.
pub fn save_current(frame: &GuestRegs, runstate: Option<&hv::sched::Runstate>) {
    {
        let current = current();
        let mut d = current.lock();
        if let (Some(info), area @ 1..) = (runstate, d.vcpu.runstate_area) {
            crate::sched::write_recorded_runstate(area, info, d.vm_assist);
        }
        // Xen stops the periodic timer of a vCPU switched out.
        crate::timer::periodic_pause(d.dom, &d.vcpu);
        vcpu::save(&mut d.vcpu, frame);
    }
    drop(CURRENT.replace(None, |_| None));
}

/// Makes vCPU `vcpu` of domain `id` current on this CPU, loads its
/// context into the CPU and its registers into `frame`, and writes its
/// runstate area (`runstate`) through its page tables, now loaded. False
/// (nothing changed) if the domain or the vCPU does not exist. The
/// other half of a switch; the CPU must have no vCPU loaded.
pub fn enter(
    id: DomId,
    vcpu: VcpuId,
    frame: &mut GuestRegs,
    runstate: Option<&hv::sched::Runstate>,
) -> bool {
    let Some(d) = lookup(id) else {
        return false;
    };
    let vm_assist = d.vm_assist();
    let vid = loop {
        let entered = d.with_vcpu(vcpu, |v| {
            if v.loaded {
                // Still in the CPU it ran on, which is saving it (taken
                // from that CPU's queue in the middle of its switch).
                return None;
            }
            vcpu::load(v, frame);
            if let (Some(info), area @ 1..) = (runstate, v.runstate_area) {
                crate::sched::write_recorded_runstate(area, info, vm_assist);
            }
            scheduled_in(&d, v);
            Some(v.id)
        });
        match entered {
            None => return false,
            Some(Some(vid)) => break vid,
            // No lock held: the other CPU saves it, serving our IPIs
            // meanwhile as we serve its.
            Some(None) => crate::arch::x86_64::ipi::relax_serving(),
        }
    };
    let Ok(i) = usize::try_from(vid.get()) else {
        return false;
    };
    percpu::this_cpu().set_current_vcpu(vid.get());
    d.note_vcpu_running(i);
    drop(CURRENT.replace(Some(d), |d| d.vcpu_slots().get(i)));
    true
}

/// What a vCPU of `d` gets when it is loaded onto this CPU: its
/// `vcpu_time_info` from this CPU's time (forced, as Xen's context switch
/// does) and its periodic timer, caught up (`timer::periodic_work`).
fn scheduled_in(d: &Domain, v: &mut Vcpu) {
    crate::time::update_vcpu_time(&v.vcpu_info, true);
    if v.time_area != 0 {
        crate::hypercall::write_time_area(v.time_area);
    }
    crate::timer::periodic_work(d, v);
}

/// Records that domain `id` shut down (the first reason stays), pauses
/// its vCPUs, and returns how many domains still run, in one step under
/// the table's lock.
///
/// The caller must not hold any domain lock (no shutdown happens inside
/// `with_current`): waiting for the table is right, since another CPU may
/// hold it for a moment, but guessing "no domain left" when it is busy
/// would power the machine off under running domains.
pub fn mark_shutdown(id: DomId, reason: u32) -> usize {
    let t = TABLE.lock();
    let mut running = 0;
    for d in t.iter().flatten() {
        if d.id == id {
            repause(d, |s| {
                if s.run_state == RunState::Running {
                    s.run_state = RunState::Shutdown(reason);
                }
            });
        }
        if d.with_state(|s| s.run_state == RunState::Running) {
            running += 1;
        }
    }
    running
}
