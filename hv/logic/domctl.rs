//! The checks of `XEN_DOMCTL_createdomain` and the pure arithmetic of the
//! other domain controls, in Xen 4.17's order and with its errnos
//! (`sanitise_domain_config`, `arch_sanitise_domain_config`,
//! `arch_domain_create`'s emulation check, `grant_table_init`; the
//! controller's pause count; `max_mem`'s page limit; `getdomaininfo`'s
//! flags).

use guest_abi::domctl::*;
use guest_abi::errno::Errno;

/// What the host offers a new domain.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    /// Most vCPUs a PV domain may have.
    pub max_vcpus: u32,
    /// Highest grant-table version (`gnttab=max-ver:`, 2 by default).
    pub max_grant_version: u32,
    /// `gnttab_max_frames` (64 by default).
    pub max_grant_frames: u32,
    /// `gnttab_max_maptrack_frames` (1024 by default).
    pub max_maptrack_frames: u32,
}

/// Xen 4.17's defaults, and hv's limit of vCPUs.
pub const HOST: Host = Host {
    max_vcpus: 32,
    max_grant_version: 2,
    max_grant_frames: 64,
    max_maptrack_frames: 1024,
};

/// A `createdomain` request that passed the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub max_vcpus: u32,
    /// At most `i32::MAX`, as Xen clamps it.
    pub max_evtchn_port: u32,
    pub max_grant_frames: u32,
    pub max_maptrack_frames: u32,
}

/// Every `XEN_DOMCTL_CDF_*` flag Xen 4.17 knows.
const KNOWN_FLAGS: u32 = XEN_DOMCTL_CDF_HVM
    | XEN_DOMCTL_CDF_HAP
    | XEN_DOMCTL_CDF_S3_INTEGRITY
    | XEN_DOMCTL_CDF_OOS_OFF
    | XEN_DOMCTL_CDF_XS_DOMAIN
    | XEN_DOMCTL_CDF_IOMMU
    | XEN_DOMCTL_CDF_NESTED_VIRT
    | XEN_DOMCTL_CDF_VPMU;

/// Checks a `createdomain` request for a host with no HVM, IOMMU,
/// processor trace or virtual PMU (hv), in Xen's order: unknown flags,
/// grant options, no vCPU, HAP without HVM, IOMMU options, trace, vPMU
/// (`-EINVAL` each), then the architecture's (HVM unavailable, too many
/// vCPUs, nested virtualisation without HAP, unknown MSR flags:
/// `-EINVAL`), the emulation flags (unknown: `-EINVAL`, any for PV:
/// `-EOPNOTSUPP`) and the grant-table limits (`-EINVAL`).
pub fn check_create(c: &XenDomctlCreatedomain, host: &Host) -> Result<Checked, Errno> {
    let hvm = c.flags & XEN_DOMCTL_CDF_HVM != 0;
    let hap = c.flags & XEN_DOMCTL_CDF_HAP != 0;
    let iommu = c.flags & XEN_DOMCTL_CDF_IOMMU != 0;
    let refuse = |bad: bool| if bad { Err(Errno::EINVAL) } else { Ok(()) };
    refuse(c.flags & !KNOWN_FLAGS != 0)?;
    refuse(c.grant_opts & !XEN_DOMCTL_GRANT_VERSION_MASK != 0)?;
    refuse(c.max_vcpus < 1)?;
    refuse(hap && !hvm)?;
    // No IOMMU: asking for it is refused, and so are its options without it.
    refuse(iommu || c.iommu_opts != 0)?;
    refuse(c.vmtrace_size != 0)?;
    refuse(c.flags & XEN_DOMCTL_CDF_VPMU != 0)?;
    // The architecture's checks: HVM is not available.
    refuse(hvm)?;
    refuse(c.max_vcpus > host.max_vcpus)?;
    refuse(c.flags & XEN_DOMCTL_CDF_NESTED_VIRT != 0 && !hap)?;
    refuse(c.arch.misc_flags & !XEN_X86_MSR_RELAXED != 0)?;
    refuse(c.arch.emulation_flags & !XEN_X86_EMU_ALL != 0)?;
    if c.arch.emulation_flags != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let version = c.grant_opts & XEN_DOMCTL_GRANT_VERSION_MASK;
    refuse(version < 1 || version > host.max_grant_version)?;
    let or_default = |v: i32, default: u32| u32::try_from(v).unwrap_or(default);
    let max_grant_frames = or_default(c.max_grant_frames, host.max_grant_frames);
    let max_maptrack_frames = or_default(c.max_maptrack_frames, host.max_maptrack_frames);
    refuse(
        max_grant_frames < 1
            || max_grant_frames > host.max_grant_frames
            || max_maptrack_frames > host.max_maptrack_frames,
    )?;
    Ok(Checked {
        max_vcpus: c.max_vcpus,
        max_evtchn_port: c.max_evtchn_port.min(i32::MAX as u32),
        max_grant_frames,
        max_maptrack_frames,
    })
}

/// The id `createdomain` picks by itself: the first free one after
/// `rover` (the last it picked), wrapping from `DOMID_FIRST_RESERVED` - 1
/// to 1 (Xen's rover); `None` when every ordinary id but perhaps the
/// rover's is taken (Xen does not try the rover's own).
pub fn next_id(rover: u16, free: impl Fn(u16) -> bool) -> Option<u16> {
    let first_reserved = guest_abi::xen::DOMID_FIRST_RESERVED;
    let mut id = rover;
    loop {
        id = if id + 1 >= first_reserved { 1 } else { id + 1 };
        // Xen stops at the rover without trying its id.
        if id == rover {
            return None;
        }
        if free(id) {
            return Some(id);
        }
        if rover == 0 && id == first_reserved - 1 {
            return None;
        }
    }
}

/// The controller's pause count after one more `pausedomain`: at most
/// 255 (`-EOVERFLOW` past it, as Xen limits it).
pub fn pause(count: u8) -> Result<u8, Errno> {
    count.checked_add(1).ok_or(Errno::EOVERFLOW)
}

/// The count after an `unpausedomain`: `-EINVAL` at 0.
pub fn unpause(count: u8) -> Result<u8, Errno> {
    count.checked_sub(1).ok_or(Errno::EINVAL)
}

/// `max_mem`'s page limit from KiB: 4 KiB pages, clamped to Xen's 32-bit
/// `max_pages`.
pub fn max_pages(max_memkb: u64) -> u64 {
    (max_memkb >> 2).min(u64::from(u32::MAX))
}

/// What `getdomaininfo` needs of one vCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuState {
    Offline,
    Blocked,
    Runnable,
    Running,
}

/// A domain as `getdomaininfo` reports its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DomainFlags {
    pub paused: bool,
    pub shutdown: bool,
    /// The shutdown code (`SHUTDOWN_*`), if one was set.
    pub shutdown_code: Option<u8>,
}

/// A domain's credit parameters (`XEN_DOMCTL_scheduler_op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedParams {
    pub weight: u16,
    /// Percent of one CPU; 0: none.
    pub cap: u16,
}

impl Default for SchedParams {
    fn default() -> Self {
        Self {
            weight: crate::sched::DEFAULT_WEIGHT,
            cap: 0,
        }
    }
}

/// `XEN_DOMCTL_scheduler_op` on a domain whose parameters are `now`, for
/// a scheduler whose id is `sched_id` (Xen 4.17's `sched_adjust`, then
/// credit's `csched_dom_cntl`): `-EINVAL` for another scheduler's id or a
/// command it does not know, and for the per-vCPU commands (credit has
/// none); get answers `now`; put sets a non-zero weight and any cap but
/// `0xffff` (no bound on either, as Xen). Returns the new parameters and
/// whether they changed.
pub fn sched_op(
    op: &mut XenDomctlSchedulerOp,
    sched_id: u32,
    now: SchedParams,
) -> Result<SchedParams, Errno> {
    if op.sched_id != sched_id {
        return Err(Errno::EINVAL);
    }
    match op.cmd {
        XEN_DOMCTL_SCHEDOP_GETINFO => {
            op.weight = now.weight;
            op.cap = now.cap;
            Ok(now)
        }
        XEN_DOMCTL_SCHEDOP_PUTINFO => Ok(SchedParams {
            weight: if op.weight != 0 {
                op.weight
            } else {
                now.weight
            },
            cap: if op.cap != u16::MAX { op.cap } else { now.cap },
        }),
        _ => Err(Errno::EINVAL),
    }
}

/// `getdomaininfo`'s flags, online vCPUs and highest vCPU id (Xen's
/// `getdomaininfo`): blocked only if every online vCPU is, running if
/// any runs, neither without an online vCPU; the shutdown code from bit
/// 16 (-1, so all ones there, when none was set).
pub fn info_flags(d: DomainFlags, vcpus: impl Iterator<Item = VcpuState>) -> (u32, u32, u32) {
    let mut flags = XEN_DOMINF_BLOCKED;
    let (mut online, mut max_id) = (0u32, XEN_INVALID_MAX_VCPU_ID);
    for (i, v) in vcpus.enumerate() {
        max_id = u32::try_from(i).unwrap_or(XEN_INVALID_MAX_VCPU_ID);
        if v == VcpuState::Offline {
            continue;
        }
        online += 1;
        if v != VcpuState::Blocked {
            flags &= !XEN_DOMINF_BLOCKED;
        }
        if v == VcpuState::Running {
            flags |= XEN_DOMINF_RUNNING;
        }
    }
    let mut flags = if online > 0 { flags } else { 0 };
    if d.paused {
        flags |= XEN_DOMINF_PAUSED;
    }
    if d.shutdown {
        flags |= XEN_DOMINF_SHUTDOWN;
    }
    let code = d.shutdown_code.map_or(u32::MAX, u32::from);
    flags |= code << XEN_DOMINF_SHUTDOWNSHIFT;
    (flags, online, max_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xl(max_vcpus: u32) -> XenDomctlCreatedomain {
        XenDomctlCreatedomain::pv(max_vcpus, [0; 16])
    }

    #[test]
    fn scheduler_op_as_credit() {
        let op = |sched_id, cmd, weight, cap| XenDomctlSchedulerOp {
            sched_id,
            cmd,
            weight,
            cap,
            ..Default::default()
        };
        let credit = XEN_SCHEDULER_CREDIT;
        let now = SchedParams::default();
        let mut get = op(credit, XEN_DOMCTL_SCHEDOP_GETINFO, 0, 0);
        assert_eq!(sched_op(&mut get, credit, now), Ok(now));
        assert_eq!((get.weight, get.cap), (256, 0));
        let mut put = op(credit, XEN_DOMCTL_SCHEDOP_PUTINFO, 512, 25);
        let new = sched_op(&mut put, credit, now).unwrap();
        assert_eq!(
            new,
            SchedParams {
                weight: 512,
                cap: 25
            }
        );
        let mut keep = op(credit, XEN_DOMCTL_SCHEDOP_PUTINFO, 0, u16::MAX);
        assert_eq!(sched_op(&mut keep, credit, new), Ok(new));
        let mut any = op(credit, XEN_DOMCTL_SCHEDOP_PUTINFO, u16::MAX - 1, 5000);
        assert_eq!(
            sched_op(&mut any, credit, new),
            Ok(SchedParams {
                weight: u16::MAX - 1,
                cap: 5000
            })
        );
        for bad in [
            op(XEN_SCHEDULER_CREDIT2, XEN_DOMCTL_SCHEDOP_GETINFO, 0, 0),
            op(credit, XEN_DOMCTL_SCHEDOP_PUTVCPUINFO, 0, 0),
            op(credit, XEN_DOMCTL_SCHEDOP_GETVCPUINFO, 0, 0),
            op(credit, 4, 0, 0),
        ] {
            let mut bad = bad;
            assert_eq!(sched_op(&mut bad, credit, now), Err(Errno::EINVAL));
        }
    }

    #[test]
    fn createdomain_checks_in_xens_order() {
        let ok = check_create(&xl(2), &HOST).unwrap();
        assert_eq!(
            (ok.max_vcpus, ok.max_grant_frames, ok.max_maptrack_frames),
            (2, 64, 1024)
        );
        let bad = |f: &dyn Fn(&mut XenDomctlCreatedomain)| {
            let mut c = xl(1);
            f(&mut c);
            check_create(&c, &HOST).err()
        };
        assert_eq!(bad(&|c| c.max_vcpus = 0), Some(Errno::EINVAL));
        assert_eq!(bad(&|c| c.max_vcpus = 33), Some(Errno::EINVAL));
        assert_eq!(bad(&|c| c.max_vcpus = 0x8000_0000), Some(Errno::EINVAL));
        assert_eq!(bad(&|c| c.flags = 1 << 20), Some(Errno::EINVAL));
        assert_eq!(bad(&|c| c.flags = XEN_DOMCTL_CDF_HAP), Some(Errno::EINVAL));
        assert_eq!(bad(&|c| c.flags = XEN_DOMCTL_CDF_HVM), Some(Errno::EINVAL));
        assert_eq!(bad(&|c| c.iommu_opts = 1), Some(Errno::EINVAL));
        assert_eq!(bad(&|c| c.grant_opts = 0), Some(Errno::EINVAL));
        assert_eq!(bad(&|c| c.grant_opts = 3), Some(Errno::EINVAL));
        assert_eq!(bad(&|c| c.grant_opts = 0x12), Some(Errno::EINVAL));
        assert_eq!(bad(&|c| c.max_grant_frames = 65), Some(Errno::EINVAL));
        assert_eq!(bad(&|c| c.max_grant_frames = 0), Some(Errno::EINVAL));
        assert_eq!(bad(&|c| c.max_maptrack_frames = 1025), Some(Errno::EINVAL));
        assert_eq!(
            bad(&|c| c.arch.emulation_flags = XEN_X86_EMU_LAPIC),
            Some(Errno::EOPNOTSUPP)
        );
        assert_eq!(
            bad(&|c| c.arch.emulation_flags = 1 << 11),
            Some(Errno::EINVAL)
        );
        assert_eq!(bad(&|c| c.arch.misc_flags = 2), Some(Errno::EINVAL));
        // An unknown flag is refused before a missing vCPU count.
        assert_eq!(
            bad(&|c| {
                c.flags = 1 << 20;
                c.arch.emulation_flags = XEN_X86_EMU_LAPIC;
            }),
            Some(Errno::EINVAL)
        );
        let mut c = xl(1);
        c.max_evtchn_port = u32::MAX;
        assert_eq!(
            check_create(&c, &HOST).map(|k| k.max_evtchn_port),
            Ok(0x7fff_ffff)
        );
    }

    #[test]
    fn ids_come_from_the_rover_and_wrap_to_1() {
        assert_eq!(next_id(0, |_| true), Some(1));
        assert_eq!(next_id(7, |_| true), Some(8));
        assert_eq!(next_id(7, |id| id != 8), Some(9));
        assert_eq!(next_id(0x7fee, |_| true), Some(0x7fef));
        assert_eq!(next_id(0x7fef, |_| true), Some(1));
        assert_eq!(next_id(0x7fef, |id| id > 3), Some(4));
        // Only the rover's own id free: not tried, as on Xen.
        assert_eq!(next_id(5, |id| id == 5), None);
        assert_eq!(next_id(5, |_| false), None);
        assert_eq!(next_id(0, |_| false), None);
    }

    #[test]
    fn pause_count_limits() {
        assert_eq!(pause(0), Ok(1));
        assert_eq!(pause(254), Ok(255));
        assert_eq!(pause(255), Err(Errno::EOVERFLOW));
        assert_eq!(unpause(1), Ok(0));
        assert_eq!(unpause(0), Err(Errno::EINVAL));
    }

    #[test]
    fn max_mem_rounds_down_and_clamps() {
        assert_eq!(max_pages(8195), 2048);
        assert_eq!(max_pages(3), 0);
        assert_eq!(max_pages(u64::MAX), 0xffff_ffff);
    }

    #[test]
    fn getdomaininfo_flags_as_xen() {
        use VcpuState::*;
        let none = DomainFlags::default();
        let paused = DomainFlags {
            paused: true,
            ..none
        };
        assert_eq!(
            info_flags(paused, core::iter::empty()),
            (0xffff_0000 | XEN_DOMINF_PAUSED, 0, XEN_INVALID_MAX_VCPU_ID)
        );
        assert_eq!(
            info_flags(paused, [Offline, Offline].into_iter()),
            (0xffff_0000 | XEN_DOMINF_PAUSED, 0, 1)
        );
        assert_eq!(
            info_flags(none, [Running, Offline].into_iter()),
            (0xffff_0000 | XEN_DOMINF_RUNNING, 1, 1)
        );
        assert_eq!(
            info_flags(none, [Blocked, Blocked].into_iter()),
            (0xffff_0000 | XEN_DOMINF_BLOCKED, 2, 1)
        );
        assert_eq!(
            info_flags(none, [Blocked, Runnable].into_iter()).0,
            0xffff_0000
        );
        let down = DomainFlags {
            shutdown: true,
            shutdown_code: Some(1),
            ..none
        };
        assert_eq!(
            info_flags(down, [Blocked].into_iter()).0,
            (1 << 16) | XEN_DOMINF_SHUTDOWN | XEN_DOMINF_BLOCKED
        );
    }
}
