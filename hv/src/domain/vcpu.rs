//! A virtual CPU: everything hv must keep for it while it does not run, and
//! the switch between two of them on one CPU.
//!
//! While a vCPU runs, part of its context lives in the CPU: general
//! registers (in the frame at the top of hv's stack), FS/GS bases (MSRs),
//! CR0.TS, the FPU/SSE/AVX registers and XCR0 (saved to and restored from
//! the vCPU's XSAVE area, `arch::x86_64::xstate`), the page-table base,
//! and the GDT and LDT registers, which point at the vCPU's own descriptor-table windows
//! (`mm::page_table::VcpuArea`: its GDT frames and LDT pages stay mapped
//! there while it does not run). [`save`] moves the rest into the `Vcpu`;
//! [`load`] puts another vCPU's back and points the CPU at its windows.
//! Dropping a `Vcpu` releases its GDT and LDT frame references and its
//! window.
//! Together they are the context switch the scheduler will use; today a
//! boot-time self-test (`selftest=vcpu-switch`) exercises them.

use crate::arch::x86_64::entry::{self, GuestRegs};
use crate::arch::x86_64::guest_state::Dr;
use crate::arch::x86_64::xstate::{self, FpuState};
use crate::arch::x86_64::{gdt, guest_state, percpu};
use crate::hypercall::debugreg;
use guest_abi::xen::TrapInfo;

use super::VcpuId;

/// Per-vCPU state of the emulated privileged architecture that the trap
/// state (`Vcpu::traps`: virtual IOPL, virtual CR0.TS, segment bases) does
/// not already hold.
#[derive(Debug, Clone, Default)]
pub struct PrivState {
    /// Guest virtual address of the I/O permission bitmap
    /// (`PHYSDEVOP_set_iobitmap`); a set bit denies the port.
    pub iobmp: u64,
    /// Ports the bitmap covers; 0 = no bitmap.
    pub iobmp_limit: u32,
    /// The guest-controlled CR4 bits (TSD, DE, FSGSBASE, OSXSAVE); hv
    /// accepts OSXSAVE (when it runs with XSAVE) and none of the others
    /// yet.
    pub cr4_guest: u64,
    /// The last dword written to port 0xcf8 (PCI CONFIG_ADDRESS).
    pub pci_cf8: u32,
    /// The last RTC index the hardware domain wrote to port 0x70 (Xen
    /// keeps one per domain: Linux writes it and reads 0x71 on one CPU
    /// under its `rtc_lock`).
    pub cmos_idx: u8,
}

/// Whether a vCPU is up, and running or waiting for a CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuRun {
    /// Not brought up (`VCPUOP_down`, or never initialised).
    Down,
    /// Up, waiting for a CPU.
    Runnable,
    /// Running on a CPU now.
    Running,
}

/// One virtual CPU.
#[derive(Debug)]
pub struct Vcpu {
    pub id: VcpuId,
    /// Its context is in a CPU now (from [`load`] to [`save`]): no other
    /// CPU may load it meanwhile. A vCPU left runnable in its CPU's queue
    /// while that CPU switches away from it can be taken by another CPU's
    /// load balancing before the first one has saved it (Xen's
    /// `is_running`, checked in `domain::enter`).
    pub loaded: bool,
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
    /// General registers while the vCPU does not run (and the ones it
    /// starts from).
    pub regs: GuestRegs,
    /// FPU/SSE/AVX state (its XSAVE area) and XCR0 while the vCPU does
    /// not run; XCR0 also while it runs (the CPU holds a copy).
    pub fpu: FpuState,
    /// The virtual IDT, callbacks, kernel stack, segment bases and virtual
    /// CR0.TS: what hv needs to bounce exceptions and `syscall`s to the
    /// guest kernel.
    pub traps: TrapState,
    /// The guest's LDT (`MMUEXT_SET_LDT`) and the pages hv mapped for it.
    pub ldt: crate::domain::ldt::Ldt,
    /// Emulated privileged state: I/O bitmap, CR4 guest bits, PCI cf8.
    pub priv_state: PrivState,
    /// This vCPU's `vcpu_info` (in shared_info until the guest registers
    /// another place), with the writable reference that keeps its frame
    /// plain memory.
    pub vcpu_info: crate::mm::VcpuInfoRef,
    pub run: VcpuRun,
    /// Has a context (built with its domain, or `VCPUOP_initialise`):
    /// only then may it be brought up.
    pub initialised: bool,
    /// `VCPUOP_register_vcpu_info` moved its `vcpu_info` (once only).
    pub vcpu_info_registered: bool,
    /// Guest address of its registered runstate area (0: none), rewritten
    /// at every switch (`crate::sched`).
    pub runstate_area: u64,
    /// Guest address of its registered `vcpu_time_info` copy (0: none),
    /// written wherever hv writes the vCPU's time (`crate::time`).
    pub time_area: u64,
    /// The periodic timer (`VCPUOP_set_periodic_timer`; 100 Hz from the
    /// start, as on Xen). Its single-shot and poll timers are only in
    /// the timer queue of the CPU that runs it (`timer`).
    pub periodic: hv::timer::Periodic,
    /// Its virtual machine-check MSRs (`MCG_STATUS`, the banks' `CTL2`),
    /// per vCPU as on Xen.
    pub vmce: hv::vmce::Vmce,
    /// Which CPU's two reserved GDT pages its GDT window maps, named by
    /// that CPU's own table (`gdt::own_table`, whose address fixes the
    /// frames); 0 until [`load`] first maps them. A vCPU loaded again on
    /// the CPU it last ran on finds them there.
    gdt_window_cpu: u64,
}

impl Vcpu {
    /// A vCPU that will start at `regs` on page table `cr3`, in guest
    /// kernel mode, with `vcpu_info`; `None` when no descriptor-table
    /// window is left or the heap has no room for its XSAVE area.
    pub fn new(
        id: VcpuId,
        cr3: u64,
        regs: GuestRegs,
        vcpu_info: crate::mm::VcpuInfoRef,
    ) -> Option<Self> {
        Self::with_context(id, cr3, regs, vcpu_info)
    }

    /// A vCPU with no context yet, down (a domain's vCPUs past the first:
    /// `VCPUOP_initialise` gives it one).
    pub fn new_down(id: VcpuId, vcpu_info: crate::mm::VcpuInfoRef) -> Option<Self> {
        let mut v = Self::with_context(id, 0, GuestRegs::default(), vcpu_info)?;
        v.run = VcpuRun::Down;
        v.initialised = false;
        Some(v)
    }

    fn with_context(
        id: VcpuId,
        cr3: u64,
        regs: GuestRegs,
        vcpu_info: crate::mm::VcpuInfoRef,
    ) -> Option<Self> {
        let fpu = FpuState::new()?;
        let area = crate::mm::page_table::alloc_vcpu_area()?;
        Some(Self {
            id,
            cr3,
            kernel_cr3: cr3,
            user_cr3: 0,
            in_kernel: true,
            regs,
            fpu,
            traps: TrapState::new(),
            ldt: crate::domain::ldt::Ldt::new(area),
            priv_state: PrivState::default(),
            vcpu_info,
            run: VcpuRun::Runnable,
            initialised: true,
            vcpu_info_registered: false,
            runstate_area: 0,
            time_area: 0,
            periodic: hv::timer::Periodic::default(),
            vmce: hv::vmce::Vmce::default(),
            loaded: false,
            gdt_window_cpu: 0,
        })
    }
}

impl Drop for Vcpu {
    fn drop(&mut self) {
        crate::domain::ldt::destroy(&mut self.ldt);
        let t = &self.traps;
        let frames = t.gdt_frames.get(..t.gdt_nr_frames).unwrap_or(&[]);
        for (slot, &mfn) in frames.iter().enumerate() {
            let _ = self.ldt.area.set_gdt_page(slot, None);
            crate::mm::with_frame_table(|ft| ft.put_page_and_type(mfn));
        }
        crate::mm::page_table::free_vcpu_area(self.ldt.area);
    }
}

/// Moves the running vCPU's context out of the CPU into `v`; `frame` is
/// the guest frame at the top of this CPU's stack. Afterwards the CPU holds
/// nothing of `v`: no LDT mapping, no guest GDT entries, TS clear, hv's
/// own XCR0.
pub fn save(v: &mut Vcpu, frame: &GuestRegs) {
    v.regs = *frame;
    let (fs, gs, inactive_gs) = guest_state::read_bases();
    let t = &mut v.traps;
    t.fs_base = fs;
    // The live GS base is the running guest mode's.
    if v.in_kernel {
        (t.gs_base_kernel, t.gs_base_user) = (gs, inactive_gs);
    } else {
        (t.gs_base_user, t.gs_base_kernel) = (gs, inactive_gs);
    }
    t.virtual_ts = guest_state::cr0_ts();
    guest_state::set_cr0_ts(false);
    // The vCPU's breakpoints stop firing.
    if debugreg::breakpoints_enabled(t.debugreg[7]) {
        guest_state::write_dr(Dr::Dr7, DR7_DEFAULT);
    }
    xstate::save(&mut v.fpu);
    // The CPU stops using the vCPU's windows (which stay mapped).
    gdt::load_own_gdt();
    gdt::load_ldt(0, 0);
    percpu::this_cpu().set_ldt_window(0);
    percpu::this_cpu().clear_vcpu_info();
    if v.run == VcpuRun::Running {
        v.run = VcpuRun::Runnable;
    }
    v.loaded = false;
}

/// Puts `v`'s context into the CPU and its registers into `frame`, the
/// frame to enter it with.
pub fn load(v: &mut Vcpu, frame: &mut GuestRegs) {
    guest_state::set_cr0_ts(false);
    xstate::restore(&v.fpu);
    guest_state::set_cr0_ts(v.traps.virtual_ts);
    let t = &v.traps;
    guest_state::set_cr4_per_vcpu(v.priv_state.cr4_guest);
    // The CPU's breakpoints are off (`save` turned them off, and hv never
    // sets any): only a vCPU with some enabled needs them loaded.
    if debugreg::breakpoints_enabled(t.debugreg[7]) {
        debugreg::load_breakpoints(&t.debugreg);
        guest_state::write_dr(Dr::Dr7, debugreg::hardware_dr7(t.debugreg[7]));
    }
    let (live_gs, inactive_gs) = if v.in_kernel {
        (t.gs_base_kernel, t.gs_base_user)
    } else {
        (t.gs_base_user, t.gs_base_kernel)
    };
    // The bases were canonical when the guest set them.
    let _ = guest_state::write_fs_base(t.fs_base);
    let _ = guest_state::write_gs_base(live_gs);
    let _ = guest_state::write_inactive_gs_base(inactive_gs);
    let area = v.ldt.area;
    // Mapping this CPU's reserved pages cannot fail: the window's page
    // table was built with it. Only ever mapped here, so the window still
    // has them when the vCPU comes back to the CPU it left.
    let cpu_table = gdt::own_table();
    if v.gdt_window_cpu != cpu_table && area.set_cpu_pages(gdt::reserved_frames()).is_ok() {
        v.gdt_window_cpu = cpu_table;
    }
    gdt::load_vcpu_gdt(area.gdt());
    gdt::load_ldt(area.ldt(), u64::from(v.ldt.ents));
    percpu::this_cpu().set_ldt_window(area.ldt());
    percpu::this_cpu().set_vcpu_info(v.vcpu_info.va());
    guest_state::load_guest_cr3(v.cr3);
    // Global entries (guest user pages are global, as on Xen) of the vCPU
    // this CPU ran before go too, as at Xen's `write_ptbase`: another
    // domain's, or another process's of the same domain.
    crate::arch::x86_64::mm::flush_tlb_all_local();
    entry::set_guest_user_mode(!v.in_kernel);
    v.run = VcpuRun::Running;
    v.loaded = true;
    *frame = v.regs;
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
    /// The GDT's entries, as the guest gave them.
    pub gdt_ents: u64,
    /// The `VGCF_*` flags its context was last set with (Xen's
    /// `vgc_flags`, reported back by `getvcpucontext`).
    pub vgc_flags: u64,
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
            gdt_ents: 0,
            vgc_flags: 0,
            debugreg: [0, 0, 0, 0, 0, 0, DR6_DEFAULT, DR7_DEFAULT],
        }
    }
}
