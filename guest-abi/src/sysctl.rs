//! The `sysctl` subset a toolstack needs (`sysctl.h`, interface version
//! 0x15 as in Xen 4.17): the console ring, host facts and the domain list.
//!
//! Like `xen_domctl`, `xen_sysctl` ends in a 128-byte union, stored as a
//! [`DomctlPayload`] with typed accessors. A `xen_sysctl` with another
//! `interface_version` is refused with `-EACCES`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub use crate::domctl::DomctlPayload;
use crate::xen::assert_layout;

/// The sysctl interface version of Xen 4.17.
pub const XEN_SYSCTL_INTERFACE_VERSION: u32 = 0x0000_0015;

/// Read the hypervisor console ring. Argument: [`XenSysctlReadconsole`].
pub const XEN_SYSCTL_READCONSOLE: u32 = 1;
/// Trace buffers. Argument: `xen_sysctl_tbuf_op`.
pub const XEN_SYSCTL_TBUF_OP: u32 = 2;
/// Host facts. Argument: [`XenSysctlPhysinfo`].
pub const XEN_SYSCTL_PHYSINFO: u32 = 3;
/// Scheduler id. Argument: `xen_sysctl_sched_id`.
pub const XEN_SYSCTL_SCHED_ID: u32 = 4;
/// Performance counters. Argument: `xen_sysctl_perfc_op`.
pub const XEN_SYSCTL_PERFC_OP: u32 = 5;
/// A range of domains' info. Argument: [`XenSysctlGetdomaininfolist`].
pub const XEN_SYSCTL_GETDOMAININFOLIST: u32 = 6;
/// Inject debug keys. Argument: `xen_sysctl_debug_keys`.
pub const XEN_SYSCTL_DEBUG_KEYS: u32 = 7;
/// Per-CPU idle time. Argument: `xen_sysctl_getcpuinfo`.
pub const XEN_SYSCTL_GETCPUINFO: u32 = 8;
/// Free heap memory. Argument: `xen_sysctl_availheap`.
pub const XEN_SYSCTL_AVAILHEAP: u32 = 9;
/// Power-management statistics. Argument: `xen_sysctl_get_pmstat`.
pub const XEN_SYSCTL_GET_PMSTAT: u32 = 10;
/// CPU online/offline. Argument: `xen_sysctl_cpu_hotplug`.
pub const XEN_SYSCTL_CPU_HOTPLUG: u32 = 11;
/// Power-management control. Argument: `xen_sysctl_pm_op`.
pub const XEN_SYSCTL_PM_OP: u32 = 12;
/// Offline or online pages. Argument: `xen_sysctl_page_offline_op`.
pub const XEN_SYSCTL_PAGE_OFFLINE_OP: u32 = 14;
/// Lock profiling. Argument: `xen_sysctl_lockprof_op`.
pub const XEN_SYSCTL_LOCKPROF_OP: u32 = 15;
/// CPU topology. Argument: `xen_sysctl_cputopoinfo`.
pub const XEN_SYSCTL_CPUTOPOINFO: u32 = 16;
/// NUMA topology. Argument: `xen_sysctl_numainfo`.
pub const XEN_SYSCTL_NUMAINFO: u32 = 17;
/// CPU pools. Argument: `xen_sysctl_cpupool_op`.
pub const XEN_SYSCTL_CPUPOOL_OP: u32 = 18;
/// Scheduler control. Argument: `xen_sysctl_scheduler_op`.
pub const XEN_SYSCTL_SCHEDULER_OP: u32 = 19;
/// Code coverage. Argument: `xen_sysctl_coverage_op`.
pub const XEN_SYSCTL_COVERAGE_OP: u32 = 20;
/// Cache monitoring. Argument: `xen_sysctl_psr_cmt_op`.
pub const XEN_SYSCTL_PSR_CMT_OP: u32 = 21;
/// PCI topology. Argument: `xen_sysctl_pcitopoinfo`.
pub const XEN_SYSCTL_PCITOPOINFO: u32 = 22;
/// Cache allocation. Argument: `xen_sysctl_psr_alloc`.
pub const XEN_SYSCTL_PSR_ALLOC: u32 = 23;
/// CPUID levelling capabilities. Argument: `xen_sysctl_cpu_levelling_caps`.
pub const XEN_SYSCTL_GET_CPU_LEVELLING_CAPS: u32 = 25;
/// A CPU feature set. Argument: `xen_sysctl_cpu_featureset`.
pub const XEN_SYSCTL_GET_CPU_FEATURESET: u32 = 26;
/// Live patching. Argument: `xen_sysctl_livepatch_op`.
pub const XEN_SYSCTL_LIVEPATCH_OP: u32 = 27;
/// A CPUID/MSR policy. Argument: `xen_sysctl_cpu_policy`.
pub const XEN_SYSCTL_GET_CPU_POLICY: u32 = 29;

/// `physinfo.capabilities`: HVM guests supported.
pub const XEN_SYSCTL_PHYSCAP_HVM: u32 = 1 << 0;
/// `physinfo.capabilities`: PV guests supported.
pub const XEN_SYSCTL_PHYSCAP_PV: u32 = 1 << 1;
/// `physinfo.capabilities`: device pass-through (IOMMU).
pub const XEN_SYSCTL_PHYSCAP_DIRECTIO: u32 = 1 << 2;
/// `physinfo.capabilities`: hardware-assisted paging.
pub const XEN_SYSCTL_PHYSCAP_HAP: u32 = 1 << 3;
/// `physinfo.capabilities`: shadow paging.
pub const XEN_SYSCTL_PHYSCAP_SHADOW: u32 = 1 << 4;
/// `physinfo.capabilities`: IOMMU may share HAP page tables.
pub const XEN_SYSCTL_PHYSCAP_IOMMU_HAP_PT_SHARE: u32 = 1 << 5;
/// `physinfo.capabilities`: processor trace.
pub const XEN_SYSCTL_PHYSCAP_VMTRACE: u32 = 1 << 6;
/// `physinfo.capabilities`: virtual PMU.
pub const XEN_SYSCTL_PHYSCAP_VPMU: u32 = 1 << 7;
/// `physinfo.capabilities`: grant-table v1.
pub const XEN_SYSCTL_PHYSCAP_GNTTAB_V1: u32 = 1 << 8;
/// `physinfo.capabilities`: grant-table v2.
pub const XEN_SYSCTL_PHYSCAP_GNTTAB_V2: u32 = 1 << 9;
/// The highest `XEN_SYSCTL_PHYSCAP_*` bit.
pub const XEN_SYSCTL_PHYSCAP_MAX: u32 = XEN_SYSCTL_PHYSCAP_GNTTAB_V2;

/// `xen_sysctl_readconsole`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlReadconsole {
    /// IN: non-zero clears the ring after reading.
    pub clear: u8,
    /// IN: non-zero starts at `index`.
    pub incremental: u8,
    /// Reserved.
    pub pad0: u8,
    /// Reserved.
    pub pad1: u8,
    /// IN: start index (with `incremental`); OUT: the index after the last byte read.
    pub index: u32,
    /// IN: guest pointer to the buffer.
    pub buffer: u64,
    /// IN: buffer size; OUT: bytes written.
    pub count: u32,
    /// Padding.
    pub _pad: u32,
}
assert_layout!(XenSysctlReadconsole, 24; clear = 0, incremental = 1, pad0 = 2, pad1 = 3,
    index = 4, buffer = 8, count = 16);

/// `xen_sysctl_physinfo`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlPhysinfo {
    /// Hardware threads per core.
    pub threads_per_core: u32,
    /// Cores per socket.
    pub cores_per_socket: u32,
    /// Online CPUs.
    pub nr_cpus: u32,
    /// Highest possible CPU id.
    pub max_cpu_id: u32,
    /// Online NUMA nodes.
    pub nr_nodes: u32,
    /// Highest possible node id.
    pub max_node_id: u32,
    /// CPU frequency in kHz.
    pub cpu_khz: u32,
    /// `XEN_SYSCTL_PHYSCAP_*`.
    pub capabilities: u32,
    /// Architecture-specific capabilities.
    pub arch_capabilities: u32,
    /// Reserved.
    pub pad: u32,
    /// Pages of RAM.
    pub total_pages: u64,
    /// Free pages.
    pub free_pages: u64,
    /// Pages awaiting scrubbing.
    pub scrub_pages: u64,
    /// Pages claimed by domains being built.
    pub outstanding_pages: u64,
    /// Highest machine frame.
    pub max_mfn: u64,
    /// CPU feature words.
    pub hw_cap: [u32; 8],
}
assert_layout!(XenSysctlPhysinfo, 112; threads_per_core = 0, cores_per_socket = 4,
    nr_cpus = 8, max_cpu_id = 12, nr_nodes = 16, max_node_id = 20, cpu_khz = 24,
    capabilities = 28, arch_capabilities = 32, pad = 36, total_pages = 40, free_pages = 48,
    scrub_pages = 56, outstanding_pages = 64, max_mfn = 72, hw_cap = 80);

/// `xen_sysctl_sched_id`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlSchedId {
    /// OUT: the scheduler, `XEN_SCHEDULER_*` ([`crate::domctl`]).
    pub sched_id: u32,
}
assert_layout!(XenSysctlSchedId, 4; sched_id = 0);

/// `xen_sysctl_getdomaininfolist`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlGetdomaininfolist {
    /// IN: the first domain id to report.
    pub first_domain: u16,
    /// Padding.
    pub _pad0: u16,
    /// IN: records the buffer holds.
    pub max_domains: u32,
    /// IN: guest pointer to [`crate::domctl::XenDomctlGetdomaininfo`] records.
    pub buffer: u64,
    /// OUT: records written.
    pub num_domains: u32,
    /// Padding.
    pub _pad1: u32,
}
assert_layout!(XenSysctlGetdomaininfolist, 24; first_domain = 0, max_domains = 4,
    buffer = 8, num_domains = 16);

/// `xen_sysctl`: the argument of the `sysctl` hypercall (136 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctl {
    /// `XEN_SYSCTL_*`.
    pub cmd: u32,
    /// [`XEN_SYSCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    /// The sub-op argument.
    pub u: DomctlPayload,
}
assert_layout!(XenSysctl, 136; cmd = 0, interface_version = 4, u = 8);

impl XenSysctl {
    /// A sysctl for `cmd` carrying `arg`, at this interface version.
    pub fn new<T: IntoBytes + Immutable>(cmd: u32, arg: &T) -> Self {
        Self {
            cmd,
            interface_version: XEN_SYSCTL_INTERFACE_VERSION,
            u: DomctlPayload::new(arg),
        }
    }
}
