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

use guest_abi::xen::TrapInfo;

use crate::arch::x86_64::entry::GuestRegs;
use crate::mm::Mfn;

/// Domain identifier (Xen's `domid_t`).
pub type DomId = u16;

/// One virtual CPU.
#[derive(Debug)]
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
    /// The virtual IDT, callbacks, kernel stack and segment bases: what hv
    /// needs to bounce exceptions and `syscall`s to the guest kernel.
    pub traps: TrapState,
    /// The guest's LDT (`MMUEXT_SET_LDT`) and the pages hv mapped for it.
    pub ldt: crate::mm::ldt::Ldt,
    /// Emulated privileged state: I/O bitmap, CR4 guest bits, PCI cf8.
    pub priv_state: crate::emulate::PrivState,
}

/// DR6 and DR7 as a vCPU starts (their fixed-1 bits).
pub const DR6_DEFAULT: u64 = 0xffff_0ff0;
pub const DR7_DEFAULT: u64 = 0x400;

/// A vCPU's trap, callback, descriptor-table and debug-register state
/// (Xen's `arch.pv` fields and `arch.dr`).
#[derive(Debug, Clone)]
pub struct TrapState {
    /// The virtual IDT (`set_trap_table`), one entry per vector; an entry
    /// with address 0 is absent. Entry 2 doubles as the NMI callback, as in
    /// Xen.
    pub table: [TrapInfo; 256],
    /// Kernel stack selector and pointer (`stack_switch`), used when a
    /// bounce leaves guest user mode.
    pub kernel_ss: u64,
    pub kernel_sp: u64,
    /// Callback entry points (`set_callbacks`, `callback_op`); 0 = none.
    pub event_callback: u64,
    pub failsafe_callback: u64,
    pub syscall_callback: u64,
    pub syscall32_callback: u64,
    pub sysenter_callback: u64,
    /// `CALLBACKF_mask_events` of the callbacks that have it.
    pub failsafe_masks_events: bool,
    pub syscall_masks_events: bool,
    pub syscall32_masks_events: bool,
    pub sysenter_masks_events: bool,
    /// The guest's segment bases: FS, and GS for each guest mode. The live
    /// values are in the CPU's MSRs while the vCPU runs.
    pub fs_base: u64,
    pub gs_base_kernel: u64,
    pub gs_base_user: u64,
    /// The guest's virtual CR0.TS (`fpu_taskswitch`, `clts`).
    pub virtual_ts: bool,
    /// Virtual IOPL, in rflags position (bits 12-13): what `in`/`out`
    /// emulation checks and bounce frames show with
    /// `VMASST_TYPE_architectural_iopl`.
    pub iopl: u64,
    /// The guest's GDT (`set_gdt`): its frames, each holding a SegDesc
    /// type reference, and how many there are.
    pub gdt_frames: [u64; hv::segdesc::GDT_FRAMES],
    pub gdt_nr_frames: usize,
    /// Virtual debug registers DR0-DR7 (`set_debugreg`); DR4/DR5 unused.
    pub debugreg: [u64; 8],
}

impl TrapState {
    pub const fn new() -> Self {
        Self {
            table: [TrapInfo {
                vector: 0,
                flags: 0,
                cs: 0,
                _pad: [0; 4],
                address: 0,
            }; 256],
            kernel_ss: 0,
            kernel_sp: 0,
            event_callback: 0,
            failsafe_callback: 0,
            syscall_callback: 0,
            syscall32_callback: 0,
            sysenter_callback: 0,
            failsafe_masks_events: false,
            syscall_masks_events: false,
            syscall32_masks_events: false,
            sysenter_masks_events: false,
            fs_base: 0,
            gs_base_kernel: 0,
            gs_base_user: 0,
            virtual_ts: false,
            iopl: 0,
            gdt_frames: [0; hv::segdesc::GDT_FRAMES],
            gdt_nr_frames: 0,
            debugreg: [0, 0, 0, 0, 0, 0, DR6_DEFAULT, DR7_DEFAULT],
        }
    }
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
    pub shared_info: Mfn,
    /// Enabled VM assists (bit per VMASST_TYPE_*).
    pub vm_assist: u64,
    pub vcpu: Vcpu,
    pub state: RunState,
    /// Xen's 16-byte domain handle (zero for boot-time domains).
    pub handle: [u8; 16],
    /// Reason latched by `SCHEDOP_shutdown_code`, used by a later shutdown.
    pub shutdown_code: Option<u8>,
    /// Frames the domain owns now (`current_reservation`).
    pub tot_pages: u64,
    /// The most it may own (`maximum_reservation`).
    pub max_pages: u64,
}

impl Domain {
    pub fn nr_pages(&self) -> u64 {
        self.p2m.len() as u64
    }
}

static DOMAINS: spin::Mutex<Vec<Domain>> = spin::Mutex::new(Vec::new());
static CURRENT: core::sync::atomic::AtomicU16 = core::sync::atomic::AtomicU16::new(0);
/// Position of the current domain in `DOMAINS` (entries are never removed
/// or reordered, so it stays valid).
static CURRENT_SLOT: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Adds a built domain to the table.
pub fn register(d: Domain) {
    DOMAINS.lock().push(d);
}

/// Runs `f` on the domain whose vCPU is running on this CPU.
///
/// Panics (an hv bug) if there is none: only guest entries call this.
pub fn with_current<R>(f: impl FnOnce(&mut Domain) -> R) -> R {
    let slot = CURRENT_SLOT.load(core::sync::atomic::Ordering::Relaxed);
    let mut table = DOMAINS.lock();
    let d = table
        .get_mut(slot)
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
    let slot = table.iter().position(|d| d.id == id)?;
    let d = table.get(slot)?;
    CURRENT.store(id, core::sync::atomic::Ordering::Relaxed);
    CURRENT_SLOT.store(slot, core::sync::atomic::Ordering::Relaxed);
    Some((d.vcpu.cr3, d.vcpu.initial_regs))
}

/// Records that domain `id` shut down (the first reason stays) and
/// returns how many domains still run, in one step under the table's lock.
///
/// The caller must not hold the table (no shutdown happens inside
/// `with_current`): waiting for the lock is right, since another CPU may
/// hold it for a moment, but guessing "no domain left" when it is busy
/// would power the machine off under running domains.
pub fn mark_shutdown(id: DomId, reason: u32) -> usize {
    let mut table = DOMAINS.lock();
    if let Some(d) = table.iter_mut().find(|d| d.id == id) {
        if d.state == RunState::Running {
            d.state = RunState::Shutdown(reason);
        }
    }
    table
        .iter()
        .filter(|d| d.state == RunState::Running)
        .count()
}
