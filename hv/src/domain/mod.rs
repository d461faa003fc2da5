//! Domains and their vCPUs.
//!
//! For now a domain has one vCPU and hv runs one domain at a time (the boot
//! domain); the table is still a list keyed by domain id so that later issues
//! (domain creation by the toolstack, the scheduler) extend rather than
//! replace it.
//!
//! Invariant: every frame in a domain's P2M is owned by that domain and by no
//! other party until the domain is destroyed.

pub mod builder;

use alloc::vec::Vec;

use crate::arch::x86_64::entry::GuestRegs;
use crate::mm::Mfn;

/// Domain identifier (Xen's `domid_t`).
pub type DomId = u16;

/// One virtual CPU.
#[derive(Debug)]
#[allow(dead_code, reason = "kernel_cr3/user_cr3/in_kernel are read by the MMU and trap work in progress")]
pub struct Vcpu {
    /// Physical address of the L4 loaded now: `kernel_cr3` while the guest
    /// kernel runs, `user_cr3` while guest user mode runs.
    pub cr3: u64,
    /// The guest kernel's page table (`MMUEXT_NEW_BASEPTR`).
    pub kernel_cr3: u64,
    /// The guest user page table (`MMUEXT_NEW_USER_BASEPTR`), 0 if none.
    pub user_cr3: u64,
    /// Whether the guest kernel (rather than guest user mode) runs: a PV
    /// kernel and its processes both run in ring 3, so hv tracks which.
    pub in_kernel: bool,
    /// Registers to start from.
    pub initial_regs: GuestRegs,
}

/// Why and how a domain stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Shutdown(u32),
}

/// A domain.
#[derive(Debug)]
pub struct Domain {
    pub id: DomId,
    /// Holds `SIF_PRIVILEGED`: may use privileged hypercalls.
    pub privileged: bool,
    /// Is the initial (hardware) domain.
    pub initial: bool,
    /// Pseudo-physical to machine frame.
    pub p2m: Vec<Mfn>,
    /// The shared-info page (hv-allocated, shared with the guest).
    #[expect(
        dead_code,
        reason = "read by the event-channel and time code of later issues"
    )]
    pub shared_info: Mfn,
    /// Enabled VM assists (bit per VMASST_TYPE_*).
    pub vm_assist: u64,
    pub vcpu: Vcpu,
    pub state: RunState,
    /// Xen's 16-byte domain handle (zero for boot-time domains).
    pub handle: [u8; 16],
    /// Reason latched by `SCHEDOP_shutdown_code`, used by a later shutdown.
    pub shutdown_code: Option<u8>,
}

impl Domain {
    pub fn nr_pages(&self) -> u64 {
        self.p2m.len() as u64
    }
}

static DOMAINS: spin::Mutex<Vec<Domain>> = spin::Mutex::new(Vec::new());
static CURRENT: core::sync::atomic::AtomicU16 = core::sync::atomic::AtomicU16::new(0);

/// Adds a built domain to the table.
pub fn register(d: Domain) {
    DOMAINS.lock().push(d);
}

/// Runs `f` on the domain whose vCPU is running on this CPU.
///
/// Panics (an hv bug) if there is none: only guest entries call this.
pub fn with_current<R>(f: impl FnOnce(&mut Domain) -> R) -> R {
    let id = CURRENT.load(core::sync::atomic::Ordering::Relaxed);
    let mut table = DOMAINS.lock();
    let d = table
        .iter_mut()
        .find(|d| d.id == id)
        .expect("a guest entry with no current domain");
    f(d)
}

/// Id of the current domain.
pub fn current_id() -> DomId {
    CURRENT.load(core::sync::atomic::Ordering::Relaxed)
}

/// Makes `id` current and returns the page table and registers to enter it
/// with.
pub fn switch_to(id: DomId) -> Option<(u64, GuestRegs)> {
    let table = DOMAINS.lock();
    let d = table.iter().find(|d| d.id == id)?;
    CURRENT.store(id, core::sync::atomic::Ordering::Relaxed);
    Some((d.vcpu.cr3, d.vcpu.initial_regs))
}

/// Records that domain `id` shut down; returns how many domains still run.
pub fn mark_shutdown(id: DomId, reason: u32) -> usize {
    let Some(mut table) = DOMAINS.try_lock() else {
        return 0;
    };
    if let Some(d) = table.iter_mut().find(|d| d.id == id) {
        d.state = RunState::Shutdown(reason);
    }
    table
        .iter()
        .filter(|d| d.state == RunState::Running)
        .count()
}
