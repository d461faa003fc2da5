//! `vcpu_op` (24): a domain's vCPUs, as Xen 4.17's `do_vcpu_op` and
//! `arch_do_vcpu_op` have them.
//!
//! The vCPU id comes first: one the domain does not have is `-ENOENT`,
//! whatever the command (then a command Xen defines and hv does not
//! implement is `-ENOSYS`). Each sub-op is its own function:
//!
//! - `initialise`: copies a `vcpu_guest_context` in (`-EFAULT`), `-EEXIST`
//!   for a vCPU that has a context, then Xen's `arch_set_info_guest`
//!   checks in Xen's order (`-EINVAL`): canonical rip, rsp, kernel_sp,
//!   LDT base (with entries), segment bases and callbacks; selectors get
//!   RPL 3 (Xen's fixups refuse none); canonical trap handlers; the LDT
//!   base page-aligned and in the guest's range with at most 8192
//!   entries; a user page table unless the vCPU starts in kernel mode;
//!   the GDT frames (at most 14 frames' worth of entries, each taking a
//!   SegDesc reference); `ctrlreg[3]` a frame of the domain that
//!   validates as an L4, on which the vCPU holds a type reference for as
//!   long as it is its base (and `ctrlreg[1]`, the user table, likewise).
//!   A failure lets go of everything taken. `VGCF_online` brings the vCPU
//!   up at once. Not taken from the context: the FPU image
//!   (`VGCF_I387_VALID`; the vCPU starts with a clean FPU) and the debug
//!   registers (their defaults).
//! - `up` (`-EINVAL` without a context), `down` (the last vCPU going down
//!   powers the domain off, as on Xen; a vCPU taking itself down switches
//!   away), `is_up`.
//! - `get_runstate_info` and `register_runstate_memory_area` (a guest
//!   virtual address, `-EFAULT` outside the guest's range; written at
//!   once and at every switch, `crate::sched`).
//! - `register_vcpu_info`: moves the `vcpu_info` to `offset` in frame
//!   `mfn`: `-ENXIO` past the end of the frame or misaligned, `-EINVAL`
//!   when registered already, for another vCPU that is up, or for a frame
//!   that cannot be writable memory of the domain (a page table, not
//!   its own); the old contents move along, then every event is marked
//!   pending (Xen's "spurious event"). The event words, the vCPU's
//!   handle and, if it runs, the CPU's copy follow.
//! - `register_vcpu_time_memory_area`: a guest virtual address where the
//!   vCPU's `vcpu_time_info` is copied (written at once when the vCPU is
//!   the caller).
//! - `get_physid`: `-EINVAL` unless the caller is the hardware domain and
//!   the vCPU is pinned to one CPU (Xen's `is_hwdom_pinned_vcpu`; hv
//!   pins none).
//! - The timers, with Xen's rules (`hv::timer`): the periodic timer
//!   (`VIRQ_TIMER` every period while the vCPU runs; 1 ms to
//!   `STIME_DELTA_MAX`, else `-EINVAL`; any vCPU of the caller) and the
//!   single-shot timer (the calling vCPU only, else `-EINVAL`; a past
//!   timeout sends the event at once). A vCPU's timers are in the timer
//!   queue of the CPU it runs on (`crate::timer`).
//! - `send_nmi`: `-ENOSYS`.

use guest_abi::arch::{VGCF_IN_KERNEL, VGCF_ONLINE};
use guest_abi::errno::Errno;
use guest_abi::vcpu::*;
use guest_abi::xen::{VcpuGuestContext, VcpuTimeInfo};
use hv::sched::State;
use hv::timer::Singleshot;

use super::{HcResult, Outcome};
use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::guest_state::is_canonical;
use crate::domain::{self, Domain, TrapState, Vcpu, VcpuId, VcpuRun};
use crate::guest_mem::{GuestPtr, Loaded};
use crate::timer::Kind;

/// EFLAGS bits `initialise` sets and takes away.
const RFLAGS_MBS: u64 = 1 << 1;
const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_IOPL: u64 = 3 << 12;

pub fn vcpu_op(cmd: u32, vcpuid: u32, arg: u64) -> Outcome {
    let current = domain::current();
    let d = current.domain();
    if vcpuid >= d.max_vcpus() {
        return Outcome::Err(Errno::ENOENT);
    }
    if super::refused::<{ guest_abi::hypercall::VCPU_OP }>(cmd) {
        return Outcome::Err(Errno::ENOSYS);
    }
    let vid = VcpuId::new(vcpuid);
    let caller = VcpuId::new(
        u32::try_from(crate::arch::x86_64::percpu::this_cpu().current_vcpu()).unwrap_or(u32::MAX),
    );
    match cmd {
        VCPUOP_INITIALISE => initialise(d, vid, arg).into(),
        VCPUOP_UP => up(d, vid).into(),
        VCPUOP_DOWN => down(d, vid, caller),
        VCPUOP_IS_UP => is_up(d, vid).into(),
        VCPUOP_GET_RUNSTATE_INFO => get_runstate_info(d, vid, arg).into(),
        VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => register_runstate_memory_area(d, vid, arg).into(),
        VCPUOP_SET_PERIODIC_TIMER => set_periodic_timer(d, vid, caller, arg).into(),
        VCPUOP_STOP_PERIODIC_TIMER => stop_periodic_timer(d, vid, caller).into(),
        VCPUOP_SET_SINGLESHOT_TIMER => set_singleshot_timer(d, vid, caller, arg).into(),
        VCPUOP_STOP_SINGLESHOT_TIMER => stop_singleshot_timer(d, vid, caller).into(),
        VCPUOP_REGISTER_VCPU_INFO => register_vcpu_info(d, vid, caller, arg).into(),
        VCPUOP_GET_PHYSID => get_physid(d, vid, arg).into(),
        VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA => {
            register_vcpu_time_memory_area(d, vid, caller, arg).into()
        }
        _ => Outcome::Err(Errno::ENOSYS),
    }
}

/// Xen's `vcpu_set_periodic_timer`: the timer stops, takes the new period
/// and, for the calling vCPU (running here), catches up at once (an
/// event if a period has passed since the last). Another vCPU starts its
/// timer when it is switched in (`domain::enter`).
fn set_periodic(d: &Domain, vid: VcpuId, caller: VcpuId, period: u64) -> Result<(), Errno> {
    crate::timer::stop(Kind::Periodic {
        dom: d.id,
        vcpu: vid.get(),
    });
    with_vcpu(d, vid, |v| {
        v.periodic.period = period;
        if vid == caller {
            crate::timer::periodic_work(d, v);
        }
    })
}

/// `VCPUOP_set_periodic_timer`: `-EFAULT`, then `-EINVAL` for a period
/// below 1 ms or beyond `STIME_DELTA_MAX`.
fn set_periodic_timer(d: &Domain, vid: VcpuId, caller: VcpuId, arg: u64) -> HcResult {
    let VcpuSetPeriodicTimer { period_ns } = super::read_arg(arg)?;
    set_periodic(d, vid, caller, hv::timer::periodic_period(period_ns)?)?;
    Ok(0)
}

/// `VCPUOP_stop_periodic_timer`.
fn stop_periodic_timer(d: &Domain, vid: VcpuId, caller: VcpuId) -> HcResult {
    set_periodic(d, vid, caller, 0)?;
    Ok(0)
}

/// `VCPUOP_set_singleshot_timer`: `-EINVAL` for another vCPU (before the
/// argument is read), `-EFAULT`; a timeout in the past stops the timer
/// and sends the event at once, whatever the flags (Xen 4.17.0 answered
/// `-ETIME` with `VCPU_SSHOTTMR_future`; the 4.17 stable releases, the
/// oracle, do not).
fn set_singleshot_timer(d: &Domain, vid: VcpuId, caller: VcpuId, arg: u64) -> HcResult {
    if vid != caller {
        return Err(Errno::EINVAL);
    }
    let VcpuSetSingleshotTimer { timeout_abs_ns, .. } = super::read_arg(arg)?;
    let kind = Kind::Singleshot {
        dom: d.id,
        vcpu: vid.get(),
    };
    match hv::timer::singleshot(timeout_abs_ns, crate::time::now_ns()) {
        Singleshot::FireNow => {
            crate::timer::stop(kind);
            crate::event::send_vcpu_virq(d, vid.get(), guest_abi::xen::VIRQ_TIMER);
        }
        Singleshot::At(deadline) => crate::timer::set(kind, deadline),
    }
    Ok(0)
}

/// `VCPUOP_stop_singleshot_timer`: `-EINVAL` for another vCPU.
fn stop_singleshot_timer(d: &Domain, vid: VcpuId, caller: VcpuId) -> HcResult {
    if vid != caller {
        return Err(Errno::EINVAL);
    }
    crate::timer::stop(Kind::Singleshot {
        dom: d.id,
        vcpu: vid.get(),
    });
    Ok(0)
}

/// Runs `f` on vCPU `v` of `d` (which exists: the dispatcher checked).
fn with_vcpu<R>(d: &Domain, v: VcpuId, f: impl FnOnce(&mut Vcpu) -> R) -> Result<R, Errno> {
    d.with_vcpu(v, f).ok_or(Errno::ENOENT)
}

/// The context's checks that change nothing (Xen's order), and the
/// selector fixups; `-EINVAL` for the first that fails.
fn check_context(c: &mut VcpuGuestContext) -> Result<(), Errno> {
    let r = &c.user_regs;
    let canonical = [
        r.rip,
        r.rsp,
        c.kernel_sp,
        if c.ldt_ents != 0 { c.ldt_base } else { 0 },
        c.fs_base,
        c.gs_base_kernel,
        c.gs_base_user,
        c.event_callback_eip,
        c.syscall_callback_eip,
        c.failsafe_callback_eip,
    ];
    if !canonical.into_iter().all(is_canonical) {
        return Err(Errno::EINVAL);
    }
    c.user_regs.ss |= 3;
    c.kernel_ss |= 3;
    c.user_regs.cs |= 3;
    for t in c.trap_ctxt.iter_mut() {
        if !is_canonical(t.address) {
            return Err(Errno::EINVAL);
        }
        t.cs |= 3;
    }
    if !crate::guest_mem::addr_ok(c.ldt_base) || c.ldt_base & 0xfff != 0 || c.ldt_ents > 8192 {
        return Err(Errno::EINVAL);
    }
    if c.flags & VGCF_IN_KERNEL == 0 && c.ctrlreg[1] == 0 {
        return Err(Errno::EINVAL);
    }
    if c.gdt_ents > u64::from(hv::segdesc::FIRST_RESERVED_GDT_ENTRY) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `VCPUOP_initialise`.
fn initialise(d: &Domain, vid: VcpuId, arg: u64) -> HcResult {
    let mut c: VcpuGuestContext = super::read_arg(arg)?;
    if with_vcpu(d, vid, |v| v.initialised)? {
        return Err(Errno::EEXIST);
    }
    check_context(&mut c)?;
    install_first(d, vid, &c).map_err(|e| if e == Errno::EBUSY { Errno::EEXIST } else { e })?;
    set_online(d, vid, c.flags & VGCF_ONLINE != 0);
    Ok(0)
}

/// Gives vCPU `vid` of `d`, which has no context, the checked context
/// `c` with the references it names; `-EBUSY` (nothing taken) if it got
/// one meanwhile (checked without the vCPU's lock before).
fn install_first(d: &Domain, vid: VcpuId, c: &VcpuGuestContext) -> Result<(), Errno> {
    let refs = ContextRefs::take(d, c)?;
    let installed = with_vcpu(d, vid, |v| {
        if v.initialised {
            return false;
        }
        install_context(v, c, refs.gdt());
        true
    });
    if installed != Ok(true) {
        refs.give_back();
        return Err(Errno::EBUSY);
    }
    Ok(())
}

/// The references a context's vCPU holds: its GDT frames (a SegDesc type
/// each) and its page-table bases (an L4 type each).
struct ContextRefs<'c> {
    dom: u16,
    io_caps: bool,
    gdt: &'c [u64],
    kernel: u64,
    user: u64,
}

impl<'c> ContextRefs<'c> {
    /// Takes them for `d`, in Xen's order: the GDT frames, then the kernel
    /// and the user table, each given back if a later one fails.
    fn take(d: &Domain, c: &'c VcpuGuestContext) -> Result<Self, Errno> {
        let dom = d.id.get();
        let io_caps = d.privileged;
        let nr_gdt = usize::try_from(c.gdt_ents.div_ceil(512)).unwrap_or(usize::MAX);
        let gdt = c.gdt_frames.get(..nr_gdt).ok_or(Errno::EINVAL)?;
        super::descriptors::get_gdt_frames(dom, gdt)?;
        let mut refs = Self {
            dom,
            io_caps,
            gdt,
            kernel: 0,
            user: 0,
        };
        let m2p_strict = d.vm_assist() & (1 << 32) != 0;
        let kernel = c.ctrlreg[3] >> 12;
        if let Err(e) = super::mmu::get_base_table(dom, io_caps, kernel, false, m2p_strict) {
            refs.give_back();
            return Err(e);
        }
        refs.kernel = kernel;
        let user = c.ctrlreg[1] >> 12;
        if user != 0 {
            if let Err(e) = super::mmu::get_base_table(dom, io_caps, user, true, m2p_strict) {
                refs.give_back();
                return Err(e);
            }
            refs.user = user;
        }
        Ok(refs)
    }

    fn gdt(&self) -> &'c [u64] {
        self.gdt
    }

    fn give_back(self) {
        for base in [self.user, self.kernel] {
            if base != 0 {
                super::mmu::put_base_table(self.dom, self.io_caps, base);
            }
        }
        crate::mm::with_frame_table(|ft| {
            for &mfn in self.gdt {
                let _ = ft.put_page_and_type(mfn);
            }
        });
    }
}

/// Brings vCPU `vid` of `d` up (`online`) or takes it down, as a context
/// with or without `VGCF_online` does (Xen's `_VPF_down`).
fn set_online(d: &Domain, vid: VcpuId, online: bool) {
    let changed = d.with_vcpu(vid, |v| {
        let was_up = v.run != VcpuRun::Down;
        if online && !was_up {
            v.run = VcpuRun::Runnable;
        } else if !online && was_up {
            v.run = VcpuRun::Down;
        }
        was_up != online
    });
    if changed == Some(true) {
        let state = if online {
            State::Runnable
        } else {
            State::Offline
        };
        crate::sched::set_state(d.id, vid, state);
    }
}

/// `XEN_DOMCTL_setvcpucontext` on vCPU `vid` of `d` (another domain,
/// paused by the caller around this): a context for a vCPU that has none
/// takes its references as `VCPUOP_initialise` does; one for a vCPU that
/// has one must name the same page tables, GDT and LDT (`-EOPNOTSUPP`,
/// Xen's rule) and replaces the rest. vCPU 0's context sets the domain's
/// VM assists (`-EINVAL` for one a 64-bit PV guest cannot have).
pub(super) fn set_context(d: &Domain, vid: VcpuId, c: &mut VcpuGuestContext) -> Result<(), Errno> {
    check_context(c)?;
    let vcpu0 = vid.get() == 0;
    if vcpu0 && c.vm_assist & !super::vm_assist::VALID != 0 {
        return Err(Errno::EINVAL);
    }
    // A vCPU with a context is checked and changed under one hold of its
    // lock: a reset in between would leave it a context whose tables it
    // holds no reference on.
    let replaced = with_vcpu(d, vid, |v| {
        if !v.initialised {
            return None;
        }
        if !same_tables(v, c) {
            return Some(Err(Errno::EOPNOTSUPP));
        }
        let (gdt, nr) = (v.traps.gdt_frames, v.traps.gdt_nr_frames);
        install_context(v, c, gdt.get(..nr).unwrap_or(&[]));
        Some(Ok(()))
    })?;
    match replaced {
        Some(r) => r?,
        None => install_first(d, vid, c)?,
    }
    if vcpu0 {
        d.set_vm_assist(c.vm_assist);
    }
    set_online(d, vid, c.flags & VGCF_ONLINE != 0);
    Ok(())
}

/// `XEN_DOMCTL_setvcpucontext` with no context (Xen's `vcpu_reset`): vCPU
/// `vid` of `d` (paused by the caller) lets go of its page tables, GDT
/// and LDT mappings and goes down with no context, as a vCPU the
/// toolstack just made.
pub(super) fn reset(d: &Domain, vid: VcpuId) -> Result<(), Errno> {
    let (bases, gdt, nr) = with_vcpu(d, vid, |v| {
        crate::domain::ldt::destroy(&mut v.ldt);
        v.ldt.base = 0;
        v.ldt.ents = 0;
        let bases = [v.kernel_cr3 >> 12, v.user_cr3 >> 12];
        (v.kernel_cr3, v.user_cr3, v.cr3) = (0, 0, 0);
        let t = &mut v.traps;
        let gdt = (t.gdt_frames, t.gdt_nr_frames);
        for slot in 0..t.gdt_nr_frames {
            let _ = v.ldt.area.set_gdt_page(slot, None);
        }
        v.traps = TrapState::new();
        v.initialised = false;
        (bases, gdt.0, gdt.1)
    })?;
    for base in bases.into_iter().filter(|&b| b != 0) {
        super::mmu::put_base_table(d.id.get(), d.privileged, base);
    }
    crate::mm::with_frame_table(|ft| {
        for &mfn in gdt.get(..nr).unwrap_or(&[]) {
            let _ = ft.put_page_and_type(mfn);
        }
    });
    set_online(d, vid, false);
    Ok(())
}

/// Whether context `c` names the page tables, GDT and LDT vCPU `v` has
/// (Xen's test before it changes the context of an initialised vCPU).
fn same_tables(v: &Vcpu, c: &VcpuGuestContext) -> bool {
    let t = &v.traps;
    let user_ok = if v.user_cr3 == 0 {
        c.ctrlreg[1] == 0 && c.flags & VGCF_IN_KERNEL != 0
    } else {
        c.ctrlreg[1] == v.user_cr3
    };
    let nr = usize::try_from(c.gdt_ents.div_ceil(512)).unwrap_or(usize::MAX);
    c.ctrlreg[3] == v.kernel_cr3
        && user_ok
        && t.gdt_ents == c.gdt_ents
        && t.gdt_frames.get(..nr) == c.gdt_frames.get(..nr)
        && u64::from(v.ldt.ents) == c.ldt_ents
        && (v.ldt.ents == 0 || v.ldt.base == c.ldt_base)
}

/// `XEN_DOMCTL_getvcpucontext`: vCPU `vid` of `d` (another domain,
/// paused by the caller) as Xen's `arch_get_info_guest` reports a 64-bit
/// PV vCPU; `-ENODATA` for one that has no context.
pub(super) fn get_context(d: &Domain, vid: VcpuId, c: &mut VcpuGuestContext) -> Result<(), Errno> {
    let vm_assist = d.vm_assist();
    with_vcpu(d, vid, |v| {
        if !v.initialised {
            return Err(Errno::ENODATA);
        }
        let r = &v.regs;
        let t = &v.traps;
        c.flags = t.vgc_flags & !(guest_abi::arch::VGCF_I387_VALID | VGCF_IN_KERNEL);
        c.trap_ctxt = t.table;
        (c.ldt_base, c.ldt_ents) = (v.ldt.base, u64::from(v.ldt.ents));
        c.gdt_ents = t.gdt_ents;
        (c.kernel_ss, c.kernel_sp) = (t.kernel_ss, t.kernel_sp);
        c.event_callback_eip = t.event_callback;
        c.failsafe_callback_eip = t.failsafe_callback;
        c.syscall_callback_eip = t.syscall_callback;
        c.vm_assist = vm_assist;
        (c.fs_base, c.gs_base_kernel, c.gs_base_user) =
            (t.fs_base, t.gs_base_kernel, t.gs_base_user);
        c.debugreg = t.debugreg;
        for (out, &mfn) in c
            .gdt_frames
            .iter_mut()
            .zip(t.gdt_frames.get(..t.gdt_nr_frames).unwrap_or(&[]))
        {
            *out = mfn;
        }
        c.ctrlreg[3] = v.kernel_cr3;
        c.ctrlreg[1] = v.user_cr3;
        if v.run != VcpuRun::Down {
            c.flags |= VGCF_ONLINE;
        }
        if v.in_kernel {
            c.flags |= VGCF_IN_KERNEL;
        }
        let u = &mut c.user_regs;
        (u.r15, u.r14, u.r13, u.r12, u.rbp, u.rbx) = (r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx);
        (u.r11, u.r10, u.r9, u.r8) = (r.r11, r.r10, r.r9, r.r8);
        (u.rax, u.rcx, u.rdx, u.rsi, u.rdi) = (r.rax, r.rcx, r.rdx, r.rsi, r.rdi);
        u.rip = r.rip;
        u.rsp = r.rsp;
        u.cs = u16::try_from(r.cs).unwrap_or(0);
        u.ss = u16::try_from(r.ss).unwrap_or(0);
        // The virtual IOPL merged back, as on Xen.
        u.rflags = r.rflags | t.iopl;
        Ok(())
    })?
}

/// Puts a checked context into a vCPU that never ran (its references
/// taken: `gdt` frames and the page-table bases).
fn install_context(v: &mut Vcpu, c: &VcpuGuestContext, gdt: &[u64]) {
    let r = &c.user_regs;
    let rflags = r.rflags | RFLAGS_MBS;
    v.regs = GuestRegs {
        r15: r.r15,
        r14: r.r14,
        r13: r.r13,
        r12: r.r12,
        rbp: r.rbp,
        rbx: r.rbx,
        r11: r.r11,
        r10: r.r10,
        r9: r.r9,
        r8: r.r8,
        rax: r.rax,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        error_code: 0,
        entry_vector: 0,
        rip: r.rip,
        cs: u64::from(r.cs),
        rflags: (rflags & !RFLAGS_IOPL) | RFLAGS_IF,
        rsp: r.rsp,
        ss: u64::from(r.ss),
    };
    let mut t = TrapState::new();
    t.table = c.trap_ctxt;
    t.iopl = rflags & RFLAGS_IOPL;
    t.kernel_ss = c.kernel_ss;
    t.kernel_sp = c.kernel_sp;
    t.event_callback = c.event_callback_eip;
    t.failsafe_callback = c.failsafe_callback_eip;
    t.syscall_callback = c.syscall_callback_eip;
    t.failsafe_masks_events = c.flags & guest_abi::arch::VGCF_FAILSAFE_DISABLES_EVENTS != 0;
    t.syscall_masks_events = c.flags & guest_abi::arch::VGCF_SYSCALL_DISABLES_EVENTS != 0;
    t.fs_base = c.fs_base;
    t.gs_base_kernel = c.gs_base_kernel;
    t.gs_base_user = c.gs_base_user;
    for (slot, &mfn) in t.gdt_frames.iter_mut().zip(gdt) {
        *slot = mfn;
    }
    t.gdt_nr_frames = gdt.len();
    t.gdt_ents = c.gdt_ents;
    t.vgc_flags = c.flags;
    for (slot, &mfn) in gdt.iter().enumerate() {
        let _ = v.ldt.area.set_gdt_page(slot, Some(mfn));
    }
    v.traps = t;
    v.ldt.base = if c.ldt_ents == 0 { 0 } else { c.ldt_base };
    v.ldt.ents = u32::try_from(c.ldt_ents).unwrap_or(0);
    v.kernel_cr3 = c.ctrlreg[3] & !0xfff;
    v.user_cr3 = c.ctrlreg[1] & !0xfff;
    v.in_kernel = c.flags & VGCF_IN_KERNEL != 0;
    v.cr3 = if v.in_kernel {
        v.kernel_cr3
    } else {
        v.user_cr3
    };
    v.initialised = true;
}

/// `VCPUOP_up`.
fn up(d: &Domain, vid: VcpuId) -> HcResult {
    let was_down = with_vcpu(d, vid, |v| {
        if !v.initialised {
            return Err(Errno::EINVAL);
        }
        let down = v.run == VcpuRun::Down;
        if down {
            v.run = VcpuRun::Runnable;
        }
        Ok(down)
    })??;
    if was_down {
        crate::sched::set_state(d.id, vid, State::Runnable);
    }
    Ok(0)
}

/// `VCPUOP_down`: the last vCPU up going down powers the domain off.
fn down(d: &Domain, vid: VcpuId, caller: VcpuId) -> Outcome {
    let others_up = (0..d.max_vcpus())
        .map(VcpuId::new)
        .filter(|&o| o != vid)
        .any(|o| d.with_vcpu(o, |v| v.run != VcpuRun::Down) == Some(true));
    if !others_up {
        crate::shutdown::domain_shutdown(d.id, guest_abi::sched::SHUTDOWN_POWEROFF);
    }
    // A domain that stopped (its vCPUs paused) leaves the CPU.
    let stopped = !others_up;
    let went_down = d.with_vcpu(vid, |v| {
        let up = v.run != VcpuRun::Down;
        v.run = VcpuRun::Down;
        up
    });
    if went_down == Some(true) {
        crate::sched::set_state(d.id, vid, State::Offline);
        if vid == caller {
            return Outcome::Switch(0);
        }
    }
    if stopped {
        return Outcome::Switch(0);
    }
    Outcome::Done(0)
}

/// `VCPUOP_is_up`.
fn is_up(d: &Domain, vid: VcpuId) -> HcResult {
    with_vcpu(d, vid, |v| u64::from(v.run != VcpuRun::Down))
}

/// `VCPUOP_get_runstate_info`.
fn get_runstate_info(d: &Domain, vid: VcpuId, arg: u64) -> HcResult {
    let info = crate::sched::runstate(d.id, vid).ok_or(Errno::ENOENT)?;
    super::write_arg(arg, &info)?;
    Ok(0)
}

/// `VCPUOP_register_runstate_memory_area`: the area is written at once
/// (through the caller's page tables; a failure is ignored, as on Xen).
fn register_runstate_memory_area(d: &Domain, vid: VcpuId, arg: u64) -> HcResult {
    let VcpuRegisterRunstateMemoryArea { addr } = super::read_arg(arg)?;
    if !crate::guest_mem::addr_ok(addr) {
        return Err(Errno::EFAULT);
    }
    with_vcpu(d, vid, |v| v.runstate_area = addr)?;
    if addr != 0 {
        if let Some(info) = crate::sched::runstate(d.id, vid) {
            crate::sched::write_runstate_area(addr, &info, d.vm_assist());
        }
    }
    Ok(0)
}

/// `VCPUOP_register_vcpu_info`.
fn register_vcpu_info(d: &Domain, vid: VcpuId, caller: VcpuId, arg: u64) -> HcResult {
    let VcpuRegisterVcpuInfo { mfn, offset, .. } = super::read_arg(arg)?;
    let size = size_of::<guest_abi::xen::VcpuInfo>() as u64;
    let offset = u64::from(offset);
    if offset > crate::mm::PAGE_SIZE - size || !offset.is_multiple_of(8) {
        return Err(Errno::ENXIO);
    }
    with_vcpu(d, vid, |v| {
        if v.vcpu_info_registered || (vid != caller && v.run != VcpuRun::Down) {
            return Err(Errno::EINVAL);
        }
        let frame = crate::mm::WritableRef::take(mfn, d.id.get()).map_err(|_| Errno::EINVAL)?;
        let info = crate::mm::VcpuInfoRef::new(frame, offset).map_err(|_| Errno::EINVAL)?;
        info.copy_from(&v.vcpu_info);
        if !d.events.lock().words.move_vcpu_info(vid.get(), &info) {
            return Err(Errno::ENOENT);
        }
        info.mark_all_pending();
        if vid == caller {
            crate::arch::x86_64::percpu::this_cpu().set_vcpu_info(info.va());
        }
        v.vcpu_info = info;
        v.vcpu_info_registered = true;
        Ok(0)
    })?
}

/// `VCPUOP_register_vcpu_time_memory_area`.
fn register_vcpu_time_memory_area(d: &Domain, vid: VcpuId, caller: VcpuId, arg: u64) -> HcResult {
    let VcpuRegisterTimeMemoryArea { addr } = super::read_arg(arg)?;
    if !crate::guest_mem::addr_ok(addr) {
        return Err(Errno::EFAULT);
    }
    with_vcpu(d, vid, |v| v.time_area = addr)?;
    if vid == caller && addr != 0 {
        write_time_area(addr);
    }
    Ok(0)
}

/// Writes this moment's `vcpu_time_info` at `va` of the running vCPU,
/// with the version odd while it is written; failures are ignored.
pub fn write_time_area(va: u64) {
    let Ok(p) = GuestPtr::<VcpuTimeInfo>::new(va) else {
        return;
    };
    let version = crate::guest_mem::guest_field!(p, VcpuTimeInfo, version);
    let old = version.read(&Loaded).unwrap_or(0);
    let odd = old | 1;
    let _ = version.write(&Loaded, &odd);
    if let Some(info) = crate::time::time_info(odd) {
        let _ = p.write(&Loaded, &info);
    }
    let _ = version.write(&Loaded, &odd.wrapping_add(1));
}

/// `VCPUOP_get_physid`: Xen answers only for a vCPU of the hardware
/// domain pinned to one CPU (`is_hwdom_pinned_vcpu`: its hard affinity
/// has one CPU, which every vCPU's has while one CPU runs guests), with
/// the APIC and ACPI ids of the CPU numbered like the vCPU (all ones
/// for one that does not run), as Xen indexes them.
fn get_physid(d: &Domain, vid: VcpuId, arg: u64) -> HcResult {
    if !d.initial || !crate::sched::pinned(d.id, vid) {
        return Err(Errno::EINVAL);
    }
    let phys_id = crate::arch::x86_64::physid::of(u64::from(vid.get()));
    super::write_arg(arg, &VcpuGetPhysid { phys_id })?;
    Ok(0)
}
