//! `sysctl` (35) and `domctl` (36): the toolstack's view of the host and
//! its control of domains, at Xen 4.17's interface versions (0x15 both).
//!
//! Both copy the whole request in (`-EFAULT`) and check its
//! `interface_version` (`-EACCES`) first; `domctl` then looks up its
//! target (`-ESRCH`; `DOMID_SELF` names no domain here, as on Xen), and
//! only then asks for the [`Privileged`] capability (`-EPERM`), which
//! every operation takes: Xen's order, so an unprivileged caller learns
//! as much as on Xen and no more. A command Xen defines and hv does not
//! implement is `-ENOSYS` ([`super::refused`]), as is one Xen does not
//! define (Xen 4.17 answers `-ENOSYS` for those on dom0). Results go back
//! by copying the whole request out again, as Xen's `copyback` does.
//!
//! - sysctl `physinfo`: the online CPUs (one socket, one thread per
//!   core), one NUMA node (`max_node_id` = `MAX_NUMNODES` - 1 = 63, as
//!   Xen), the TSC's kHz, the allocator's frames and free frames, and
//!   `XEN_SYSCTL_PHYSCAP_pv` and grant tables v1 and v2 (no HVM);
//!   `hw_cap` is left zero.
//! - sysctl `sched_id`: credit (`XEN_SCHEDULER_CREDIT`, what hv's
//!   scheduler implements; Xen 4.17 defaults to credit2).
//! - sysctl `readconsole`: hv's console ring (`crate::console`).
//! - sysctl `getdomaininfolist`: the records of up to `max_domains`
//!   domains from `first_domain` up.
//! - domctl `createdomain`, `max_vcpus`, `destroydomain`: see
//!   `domain::control`; `getdomaininfo` (the next domain up for a free
//!   id, `-EINVAL` for a reserved one, as Xen 4.17), `pausedomain` /
//!   `unpausedomain` (the controller's count, not of the caller itself),
//!   `max_mem`, `setdomainhandle`, `set_address_size` (64 only: hv has no
//!   32-bit PV) and `get_address_size`.

use guest_abi::domctl::*;
use guest_abi::errno::Errno;
use guest_abi::hypercall as nr;
use guest_abi::sysctl::*;
use guest_abi::vcpu::{RUNSTATE_BLOCKED, RUNSTATE_RUNNING};
use hv::domctl::{self as rules, DomainFlags, VcpuState};

use super::{read_arg, write_arg, Outcome, Privileged};
use crate::domain::control::{self, Destroy, NewDomain};
use crate::domain::{self, DomId, Domain, RunState, VcpuId};
use crate::guest_mem::{GuestSlice, Loaded};

/// `MAX_NUMNODES` - 1 of Xen 4.17's x86 build (`physinfo.max_node_id`).
const MAX_NODE_ID: u32 = 63;

pub fn sysctl(op: u64) -> Outcome {
    sysctl_request(op).unwrap_or_else(Outcome::Err)
}

fn sysctl_request(op: u64) -> Result<Outcome, Errno> {
    let mut s: XenSysctl = read_request(op, |s: &XenSysctl| {
        s.interface_version == XEN_SYSCTL_INTERFACE_VERSION
    })?;
    let cap = allowed::<{ nr::SYSCTL }>(s.cmd)?;
    match s.cmd {
        XEN_SYSCTL_PHYSINFO => s.u.set(&physinfo(cap)),
        XEN_SYSCTL_SCHED_ID => s.u.set(&XenSysctlSchedId {
            sched_id: XEN_SCHEDULER_CREDIT,
        }),
        XEN_SYSCTL_GETDOMAININFOLIST => getdomaininfolist(cap, &mut s)?,
        XEN_SYSCTL_READCONSOLE => readconsole(cap, &mut s)?,
        _ => return Err(Errno::ENOSYS),
    }
    write_arg(op, &s)?;
    Ok(Outcome::Done(0))
}

/// The request at `op` (`-EFAULT`), if `version_ok` says its interface
/// version is 0x15 (`-EACCES`).
fn read_request<T: crate::guest_mem::GuestValue>(
    op: u64,
    version_ok: impl Fn(&T) -> bool,
) -> Result<T, Errno> {
    let r: T = read_arg(op)?;
    if version_ok(&r) {
        Ok(r)
    } else {
        Err(Errno::EACCES)
    }
}

/// The capability every command takes (`-EPERM`), for a command hv
/// implements (`-ENOSYS` for one Xen defines and hv does not).
fn allowed<const NR: u64>(cmd: u32) -> Result<Privileged, Errno> {
    let cap = Privileged::check().ok_or(Errno::EPERM)?;
    if super::refused::<NR>(cmd) {
        return Err(Errno::ENOSYS);
    }
    Ok(cap)
}

fn physinfo(_: Privileged) -> XenSysctlPhysinfo {
    let nr_cpus = u32::try_from(crate::arch::x86_64::smp::online().iter().count()).unwrap_or(1);
    XenSysctlPhysinfo {
        threads_per_core: 1,
        cores_per_socket: nr_cpus,
        nr_cpus,
        max_cpu_id: nr_cpus.saturating_sub(1),
        nr_nodes: 1,
        max_node_id: MAX_NODE_ID,
        cpu_khz: u32::try_from(crate::arch::x86_64::apic::tsc_khz()).unwrap_or(u32::MAX),
        capabilities: XEN_SYSCTL_PHYSCAP_PV
            | XEN_SYSCTL_PHYSCAP_GNTTAB_V1
            | XEN_SYSCTL_PHYSCAP_GNTTAB_V2,
        total_pages: crate::mm::frame_access::nr_frames(),
        // Frames whose last reference went since the last collection
        // (a dead domain's page unmapped, say) are free on Xen at once.
        free_pages: {
            crate::mm::collect_freed(crate::domain::frame_freed);
            crate::mm::frame_access::free_frames()
        },
        max_mfn: crate::mm::frame_access::nr_frames().saturating_sub(1),
        ..Default::default()
    }
}

/// The records of the domains from `first_domain` up, at most
/// `max_domains`, copied out one by one (`-EFAULT` stops the list).
fn getdomaininfolist(_: Privileged, s: &mut XenSysctl) -> Result<(), Errno> {
    let mut arg: XenSysctlGetdomaininfolist = s.u.get();
    let out =
        GuestSlice::<XenDomctlGetdomaininfo>::per_element(arg.buffer, u64::from(arg.max_domains));
    let mut n = 0u32;
    for d in domain::all() {
        if d.id.get() < arg.first_domain {
            continue;
        }
        if n == arg.max_domains {
            break;
        }
        out.set(&Loaded, u64::from(n), &info_of(&d))?;
        n += 1;
    }
    arg.num_domains = n;
    s.u.set(&arg);
    Ok(())
}

/// hv's console ring ([`crate::console::read_ring`]): as many bytes as
/// the buffer holds, `-EFAULT` (nothing cleared) if it cannot take them;
/// `count` and `index` say how many and where the next read starts.
fn readconsole(_: Privileged, s: &mut XenSysctl) -> Result<(), Errno> {
    let mut arg: XenSysctlReadconsole = s.u.get();
    let (read, bytes) = crate::console::read_ring(arg.incremental != 0, arg.index, arg.count);
    crate::guest_mem::copy_to_loaded(arg.buffer, &bytes).map_err(|_| Errno::EFAULT)?;
    if arg.clear != 0 {
        crate::console::clear_ring(read.end());
    }
    arg.count = read.len;
    arg.index = read.end();
    s.u.set(&arg);
    Ok(())
}

pub fn domctl(op: u64) -> Outcome {
    domctl_request(op).unwrap_or_else(Outcome::Err)
}

fn domctl_request(op: u64) -> Result<Outcome, Errno> {
    let mut c: XenDomctl = read_request(op, |c: &XenDomctl| {
        c.interface_version == XEN_DOMCTL_INTERFACE_VERSION
    })?;
    let target = match c.cmd {
        XEN_DOMCTL_CREATEDOMAIN => None,
        cmd => {
            let d = DomId::try_new(c.domain).ok().and_then(domain::lookup);
            if d.is_none() && cmd != XEN_DOMCTL_GETDOMAININFO {
                return Err(Errno::ESRCH);
            }
            d
        }
    };
    let cap = allowed::<{ nr::DOMCTL }>(c.cmd)?;
    let copy_back = match (c.cmd, target) {
        (XEN_DOMCTL_CREATEDOMAIN, _) => createdomain(cap, &mut c).map(|()| true)?,
        (XEN_DOMCTL_GETDOMAININFO, d) => getdomaininfo(cap, &mut c, d).map(|()| true)?,
        (XEN_DOMCTL_DESTROYDOMAIN, Some(d)) => match control::destroy(d)? {
            Destroy::Done => false,
            Destroy::More => return Ok(Outcome::again([op])),
        },
        (cmd, Some(d)) => on_domain(cap, cmd, &mut c, &d)?,
        (_, None) => return Err(Errno::ESRCH),
    };
    if copy_back {
        write_arg(op, &c)?;
    }
    Ok(Outcome::Done(0))
}

/// A domctl on an existing domain `d`; whether the request goes back.
fn on_domain(_: Privileged, cmd: u32, c: &mut XenDomctl, d: &Domain) -> Result<bool, Errno> {
    let is_caller = d.id == domain::current_id();
    match cmd {
        XEN_DOMCTL_PAUSEDOMAIN => {
            if is_caller {
                return Err(Errno::EINVAL);
            }
            domain::repause(d, |s| {
                rules::pause(s.controller_pauses).map(|n| s.controller_pauses = n)
            })
            .0?;
            // As Xen's: done when none of its vCPUs is on a CPU.
            crate::sched::pause_sync(d);
            Ok(false)
        }
        XEN_DOMCTL_UNPAUSEDOMAIN => {
            domain::repause(d, |s| {
                rules::unpause(s.controller_pauses).map(|n| s.controller_pauses = n)
            })
            .0?;
            Ok(false)
        }
        XEN_DOMCTL_MAX_MEM => {
            let XenDomctlMaxMem { max_memkb } = c.u.get();
            d.with_state(|s| s.max_pages = rules::max_pages(max_memkb));
            Ok(false)
        }
        XEN_DOMCTL_MAX_VCPUS => {
            let XenDomctlMaxVcpus { max } = c.u.get();
            if is_caller || max != d.vcpu_limit() {
                return Err(Errno::EINVAL);
            }
            control::make_vcpus(d)?;
            Ok(false)
        }
        XEN_DOMCTL_SETVCPUCONTEXT | XEN_DOMCTL_GETVCPUCONTEXT => {
            let XenDomctlVcpucontext { vcpu, ctxt, .. } = c.u.get();
            // Xen's order: not the caller's own domain (it cannot pause
            // itself), a vCPU it has, then the context.
            if is_caller || vcpu >= d.max_vcpus() {
                return Err(Errno::EINVAL);
            }
            let vid = VcpuId::new(vcpu);
            // A context is 5 KiB: on the heap, not copied down the stack.
            if cmd == XEN_DOMCTL_GETVCPUCONTEXT {
                let mut got = alloc::boxed::Box::new(empty_context());
                paused(d, || super::vcpu_op::get_context(d, vid, &mut got))?;
                write_arg(ctxt, &*got)?;
                return Ok(true);
            }
            if ctxt == 0 {
                paused(d, || super::vcpu_op::reset(d, vid))?;
                return Ok(false);
            }
            let mut new = alloc::boxed::Box::new(empty_context());
            GuestSlice::<guest_abi::xen::VcpuGuestContext>::new(ctxt, 1)?.read_into(
                &Loaded,
                0,
                core::slice::from_mut(&mut *new),
            )?;
            paused(d, || super::vcpu_op::set_context(d, vid, &mut new))?;
            // A destruction that began meanwhile may have let go of the
            // vCPUs' tables already: these go too, and the domain gets
            // no context.
            if d.with_state(|s| s.dying) {
                let _ = super::vcpu_op::reset(d, vid);
                return Err(Errno::EINVAL);
            }
            Ok(false)
        }
        XEN_DOMCTL_SCHEDULER_OP => {
            let mut op: XenDomctlSchedulerOp = c.u.get();
            // Under the domain's lock, so two puts apply in one order.
            let nr = d.max_vcpus();
            d.with_state(|s| {
                let new = rules::sched_op(&mut op, XEN_SCHEDULER_CREDIT, s.sched)?;
                if new != s.sched {
                    s.sched = new;
                    crate::sched::set_params(d.id, nr, new);
                }
                Ok::<_, Errno>(())
            })?;
            c.u.set(&op);
            Ok(true)
        }
        XEN_DOMCTL_HYPERCALL_INIT => {
            let XenDomctlHypercallInit { gmfn } = c.u.get();
            hypercall_init(d, gmfn)?;
            Ok(false)
        }
        XEN_DOMCTL_SETDOMAINHANDLE => {
            let XenDomctlSetdomainhandle { handle } = c.u.get();
            d.with_state(|s| s.handle = handle);
            Ok(false)
        }
        XEN_DOMCTL_SET_ADDRESS_SIZE => match c.u.get::<XenDomctlAddressSize>().size {
            64 => Ok(false),
            // A 32-bit PV guest: hv has none, as Xen booted without `pv32`.
            32 => Err(Errno::EOPNOTSUPP),
            _ => Err(Errno::EINVAL),
        },
        XEN_DOMCTL_GET_ADDRESS_SIZE => {
            c.u.set(&XenDomctlAddressSize { size: 64 });
            Ok(true)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `XEN_DOMCTL_hypercall_init`: hv's hypercall page written into frame
/// `gmfn` of `d` (a PV guest's frame number is the machine one):
/// `-EINVAL` for a frame that is not `d`'s, `-EPERM` for one that cannot
/// be writable memory (a page or descriptor table), as Xen 4.17.
fn hypercall_init(d: &Domain, gmfn: u64) -> Result<(), Errno> {
    use crate::mm::FrameWrite;
    use hv::page_info::PageError;
    let page = crate::mm::WritableRef::take(gmfn, d.id.get()).map_err(|e| match e {
        PageError::TypeConflict { .. } | PageError::Overflow => Errno::EPERM,
        _ => Errno::EINVAL,
    })?;
    page.write(0, &crate::domain::builder::hypercall_page())
        .map_err(|_| Errno::EINVAL)
}

fn empty_context() -> guest_abi::xen::VcpuGuestContext {
    <guest_abi::xen::VcpuGuestContext as zerocopy::FromZeros>::new_zeroed()
}

/// Runs `f` with `d` paused by hv, none of its vCPUs on a CPU (Xen's
/// `domain_pause` around a context's change or read).
fn paused<R>(d: &Domain, f: impl FnOnce() -> R) -> R {
    domain::repause(d, |s| s.pauses += 1);
    crate::sched::pause_sync(d);
    let r = f();
    domain::repause(d, |s| s.pauses -= 1);
    r
}

fn createdomain(_: Privileged, c: &mut XenDomctl) -> Result<(), Errno> {
    let cfg: XenDomctlCreatedomain = c.u.get();
    // Xen picks the id (and refuses a taken one) before the checks.
    let id = control::choose_id(c.domain)?;
    let ok = rules::check_create(&cfg, &rules::HOST)?;
    let new = NewDomain {
        max_vcpus: ok.max_vcpus,
        max_evtchn_port: ok.max_evtchn_port,
        max_grant_frames: ok.max_grant_frames,
        max_maptrack_frames: ok.max_maptrack_frames,
        max_grant_version: cfg.grant_opts & XEN_DOMCTL_GRANT_VERSION_MASK,
        handle: cfg.handle,
    };
    control::create(id, &new)?;
    c.domain = id.get();
    Ok(())
}

/// Domain `d`'s record, or (none by that id) the next one up (Xen 4.17;
/// `-EINVAL` for a reserved id, `-ESRCH` if none is above).
fn getdomaininfo(
    _: Privileged,
    c: &mut XenDomctl,
    d: Option<alloc::sync::Arc<Domain>>,
) -> Result<(), Errno> {
    let d = match d {
        Some(d) => d,
        None => {
            if c.domain >= guest_abi::xen::DOMID_FIRST_RESERVED {
                return Err(Errno::EINVAL);
            }
            domain::all()
                .into_iter()
                .find(|d| d.id.get() >= c.domain)
                .ok_or(Errno::ESRCH)?
        }
    };
    let info = info_of(&d);
    c.domain = info.domain;
    c.u.set(&info);
    Ok(())
}

/// Domain `d` as `getdomaininfo` reports it.
fn info_of(d: &Domain) -> XenDomctlGetdomaininfo {
    let mut cpu_time = 0u64;
    // Online means brought up (Xen's `VPF_down` clear), paused or not;
    // blocked and running as the scheduler has it.
    let states: alloc::vec::Vec<VcpuState> = (0..d.max_vcpus())
        .map(|i| {
            let r = crate::sched::runstate(d.id, VcpuId::new(i));
            if let Some(r) = &r {
                cpu_time = cpu_time.saturating_add(r.time[RUNSTATE_RUNNING as usize]);
            }
            let up = d.with_vcpu(VcpuId::new(i), |v| v.run != domain::VcpuRun::Down);
            match (up, r.map(|r| r.state)) {
                (Some(true), Some(RUNSTATE_RUNNING)) => VcpuState::Running,
                (Some(true), Some(RUNSTATE_BLOCKED)) => VcpuState::Blocked,
                (Some(true), _) => VcpuState::Runnable,
                _ => VcpuState::Offline,
            }
        })
        .collect();
    let (tot_pages, max_pages, handle, flags) = d.with_state(|s| {
        let shutdown = match s.run_state {
            RunState::Shutdown(r) => Some(r),
            RunState::Running => None,
        };
        let flags = DomainFlags {
            paused: s.controller_pauses > 0,
            shutdown: shutdown.is_some(),
            shutdown_code: s
                .shutdown_code
                .or(shutdown.and_then(|r| u8::try_from(r).ok())),
        };
        (s.tot_pages, s.max_pages, s.handle, flags)
    });
    let (flags, nr_online_vcpus, max_vcpu_id) = rules::info_flags(flags, states.into_iter());
    XenDomctlGetdomaininfo {
        domain: d.id.get(),
        flags,
        tot_pages,
        max_pages,
        // A PV domain's frame numbers are machine ones (Xen's
        // `mfn_to_gmfn` of a domain that is not translated).
        shared_info_frame: d.shared_info.mfn(),
        cpu_time,
        nr_online_vcpus,
        max_vcpu_id,
        ssidref: 0,
        handle,
        cpupool: 0,
        // A PV guest's frames are machine frames: the CPU's width, as Xen.
        gpaddr_bits: u8::try_from(crate::mm::paddr_bits()).unwrap_or(52),
        ..Default::default()
    }
}
