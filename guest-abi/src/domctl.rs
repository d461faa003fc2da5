//! The `domctl` subset a toolstack needs to build and run PV domains
//! (`domctl.h`, interface version 0x15 as in Xen 4.17).
//!
//! `xen_domctl` ends in a 128-byte union of every sub-op's argument. It is
//! stored here as [`DomctlPayload`], an 8-byte-aligned byte block with typed
//! accessors: a sub-op argument is read out with [`DomctlPayload::get`] and
//! written with [`DomctlPayload::set`], both checked at compile time to fit.
//! Sub-ops whose argument is not mirrored can still be issued by filling
//! the payload bytes directly.
//!
//! The hypervisor refuses a `xen_domctl` whose `interface_version` is not
//! [`XEN_DOMCTL_INTERFACE_VERSION`] with `-EACCES`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// The domctl interface version of Xen 4.17.
pub const XEN_DOMCTL_INTERFACE_VERSION: u32 = 0x0000_0015;

/// Create a domain. Argument: [`XenDomctlCreatedomain`]; `domain` IN is the
/// wanted id (or 0 for any), OUT the id given.
pub const XEN_DOMCTL_CREATEDOMAIN: u32 = 1;
/// Destroy a domain (restartable with `-ERESTART`). No argument.
pub const XEN_DOMCTL_DESTROYDOMAIN: u32 = 2;
/// Pause a domain. No argument.
pub const XEN_DOMCTL_PAUSEDOMAIN: u32 = 3;
/// Unpause a domain. No argument.
pub const XEN_DOMCTL_UNPAUSEDOMAIN: u32 = 4;
/// A domain's state. Argument: [`XenDomctlGetdomaininfo`].
pub const XEN_DOMCTL_GETDOMAININFO: u32 = 5;
/// Set a vCPU's affinity. Argument: `xen_domctl_vcpuaffinity`.
pub const XEN_DOMCTL_SETVCPUAFFINITY: u32 = 9;
/// Shadow paging and log-dirty control. Argument: [`XenDomctlShadowOp`].
pub const XEN_DOMCTL_SHADOW_OP: u32 = 10;
/// Set the memory limit. Argument: [`XenDomctlMaxMem`].
pub const XEN_DOMCTL_MAX_MEM: u32 = 11;
/// Set a vCPU's context. Argument: [`XenDomctlVcpucontext`].
pub const XEN_DOMCTL_SETVCPUCONTEXT: u32 = 12;
/// Get a vCPU's context. Argument: [`XenDomctlVcpucontext`].
pub const XEN_DOMCTL_GETVCPUCONTEXT: u32 = 13;
/// A vCPU's state. Argument: [`XenDomctlGetvcpuinfo`].
pub const XEN_DOMCTL_GETVCPUINFO: u32 = 14;
/// Set the number of vCPUs. Argument: [`XenDomctlMaxVcpus`].
pub const XEN_DOMCTL_MAX_VCPUS: u32 = 15;
/// Scheduler parameters. Argument: `xen_domctl_scheduler_op`.
pub const XEN_DOMCTL_SCHEDULER_OP: u32 = 16;
/// Set the domain's UUID. Argument: [`XenDomctlSetdomainhandle`].
pub const XEN_DOMCTL_SETDOMAINHANDLE: u32 = 17;
/// Turn debugging on or off. Argument: [`XenDomctlSetdebugging`].
pub const XEN_DOMCTL_SETDEBUGGING: u32 = 18;
/// Grant or revoke a physical IRQ. Argument: `xen_domctl_irq_permission`.
pub const XEN_DOMCTL_IRQ_PERMISSION: u32 = 19;
/// Grant or revoke MMIO frames. Argument: `xen_domctl_iomem_permission`.
pub const XEN_DOMCTL_IOMEM_PERMISSION: u32 = 20;
/// Grant or revoke I/O ports. Argument: `xen_domctl_ioport_permission`.
pub const XEN_DOMCTL_IOPORT_PERMISSION: u32 = 21;
/// Write the hypercall page into a guest frame. Argument: [`XenDomctlHypercallInit`].
pub const XEN_DOMCTL_HYPERCALL_INIT: u32 = 22;
/// Set the wallclock offset. Argument: [`XenDomctlSettimeoffset`].
pub const XEN_DOMCTL_SETTIMEOFFSET: u32 = 24;
/// Get a vCPU's affinity. Argument: `xen_domctl_vcpuaffinity`.
pub const XEN_DOMCTL_GETVCPUAFFINITY: u32 = 25;
/// Obsolete (PowerPC).
pub const XEN_DOMCTL_REAL_MODE_AREA: u32 = 26;
/// Resume a suspended domain. No argument.
pub const XEN_DOMCTL_RESUMEDOMAIN: u32 = 27;
/// Send a virtual trigger (NMI, reset, ...). Argument: `xen_domctl_sendtrigger`.
pub const XEN_DOMCTL_SENDTRIGGER: u32 = 28;
/// Name the event channel for suspend notification. Argument: `xen_domctl_subscribe`.
pub const XEN_DOMCTL_SUBSCRIBE: u32 = 29;
/// Save HVM context. Argument: `xen_domctl_hvmcontext`.
pub const XEN_DOMCTL_GETHVMCONTEXT: u32 = 33;
/// Restore HVM context. Argument: `xen_domctl_hvmcontext`.
pub const XEN_DOMCTL_SETHVMCONTEXT: u32 = 34;
/// Set a PV guest's address size (32 or 64). Argument: [`XenDomctlAddressSize`].
pub const XEN_DOMCTL_SET_ADDRESS_SIZE: u32 = 35;
/// Get a PV guest's address size. Argument: [`XenDomctlAddressSize`].
pub const XEN_DOMCTL_GET_ADDRESS_SIZE: u32 = 36;
/// Pass a device through. Argument: `xen_domctl_assign_device`.
pub const XEN_DOMCTL_ASSIGN_DEVICE: u32 = 37;
/// Bind a passed-through IRQ. Argument: `xen_domctl_bind_pt_irq`.
pub const XEN_DOMCTL_BIND_PT_IRQ: u32 = 38;
/// Map MMIO into a guest. Argument: `xen_domctl_memory_mapping`.
pub const XEN_DOMCTL_MEMORY_MAPPING: u32 = 39;
/// Map I/O ports into an HVM guest. Argument: `xen_domctl_ioport_mapping`.
pub const XEN_DOMCTL_IOPORT_MAPPING: u32 = 40;
/// Set extended vCPU context. Argument: `xen_domctl_ext_vcpucontext`.
pub const XEN_DOMCTL_SET_EXT_VCPUCONTEXT: u32 = 42;
/// Get extended vCPU context. Argument: `xen_domctl_ext_vcpucontext`.
pub const XEN_DOMCTL_GET_EXT_VCPUCONTEXT: u32 = 43;
/// Obsolete (IA64).
pub const XEN_DOMCTL_SET_OPT_FEATURE: u32 = 44;
/// Whether a device can be assigned. Argument: `xen_domctl_assign_device`.
pub const XEN_DOMCTL_TEST_ASSIGN_DEVICE: u32 = 45;
/// Make a domain the target of another (device models). Argument: `xen_domctl_set_target`.
pub const XEN_DOMCTL_SET_TARGET: u32 = 46;
/// Take a device back. Argument: `xen_domctl_assign_device`.
pub const XEN_DOMCTL_DEASSIGN_DEVICE: u32 = 47;
/// Unbind a passed-through IRQ. Argument: `xen_domctl_bind_pt_irq`.
pub const XEN_DOMCTL_UNBIND_PT_IRQ: u32 = 48;
/// Devices sharing an IOMMU context. Argument: `xen_domctl_get_device_group`.
pub const XEN_DOMCTL_GET_DEVICE_GROUP: u32 = 50;
/// Single-step control. Argument: `xen_domctl_debug_op`.
pub const XEN_DOMCTL_DEBUG_OP: u32 = 54;
/// Save part of the HVM context. Argument: `xen_domctl_hvmcontext_partial`.
pub const XEN_DOMCTL_GETHVMCONTEXT_PARTIAL: u32 = 55;
/// VM-event rings. Argument: `xen_domctl_vm_event_op`.
pub const XEN_DOMCTL_VM_EVENT_OP: u32 = 56;
/// Memory-sharing control. Argument: `xen_domctl_mem_sharing_op`.
pub const XEN_DOMCTL_MEM_SHARING_OP: u32 = 57;
/// TSC mode. Argument: `xen_domctl_tsc_info`.
pub const XEN_DOMCTL_GETTSCINFO: u32 = 59;
/// Set TSC mode. Argument: `xen_domctl_tsc_info`.
pub const XEN_DOMCTL_SETTSCINFO: u32 = 60;
/// Page types of a batch of frames. Argument: [`XenDomctlGetpageframeinfo3`].
pub const XEN_DOMCTL_GETPAGEFRAMEINFO3: u32 = 61;
/// Set extended (XSAVE) state. Argument: `xen_domctl_vcpuextstate`.
pub const XEN_DOMCTL_SETVCPUEXTSTATE: u32 = 62;
/// Get extended (XSAVE) state. Argument: `xen_domctl_vcpuextstate`.
pub const XEN_DOMCTL_GETVCPUEXTSTATE: u32 = 63;
/// Require a memory-access listener. Argument: `xen_domctl_set_access_required`.
pub const XEN_DOMCTL_SET_ACCESS_REQUIRED: u32 = 64;
/// Audit the P2M (debug). Argument: `xen_domctl_audit_p2m`.
pub const XEN_DOMCTL_AUDIT_P2M: u32 = 65;
/// Route a global VIRQ to a domain. Argument: `xen_domctl_set_virq_handler`.
pub const XEN_DOMCTL_SET_VIRQ_HANDLER: u32 = 66;
/// Mark a frame broken. Argument: `xen_domctl_set_broken_page_p2m`.
pub const XEN_DOMCTL_SET_BROKEN_PAGE_P2M: u32 = 67;
/// Set NUMA node affinity. Argument: `xen_domctl_nodeaffinity`.
pub const XEN_DOMCTL_SETNODEAFFINITY: u32 = 68;
/// Get NUMA node affinity. Argument: `xen_domctl_nodeaffinity`.
pub const XEN_DOMCTL_GETNODEAFFINITY: u32 = 69;
/// Cache maintenance over guest frames (Arm). Argument: `xen_domctl_cacheflush`.
pub const XEN_DOMCTL_CACHEFLUSH: u32 = 71;
/// Get a vCPU's MSRs. Argument: `xen_domctl_vcpu_msrs`.
pub const XEN_DOMCTL_GET_VCPU_MSRS: u32 = 72;
/// Set a vCPU's MSRs. Argument: `xen_domctl_vcpu_msrs`.
pub const XEN_DOMCTL_SET_VCPU_MSRS: u32 = 73;
/// Set virtual NUMA. Argument: `xen_domctl_vnuma`.
pub const XEN_DOMCTL_SETVNUMAINFO: u32 = 74;
/// Cache monitoring. Argument: `xen_domctl_psr_cmt_op`.
pub const XEN_DOMCTL_PSR_CMT_OP: u32 = 75;
/// VM introspection events. Argument: `xen_domctl_monitor_op`.
pub const XEN_DOMCTL_MONITOR_OP: u32 = 77;
/// Cache allocation. Argument: `xen_domctl_psr_alloc`.
pub const XEN_DOMCTL_PSR_ALLOC: u32 = 78;
/// Reset a domain in place. No argument.
pub const XEN_DOMCTL_SOFT_RESET: u32 = 79;
/// Virtual UART (Arm). Argument: `xen_domctl_vuart_op`.
pub const XEN_DOMCTL_VUART_OP: u32 = 81;
/// Get the CPUID/MSR policy. Argument: `xen_domctl_cpu_policy`.
pub const XEN_DOMCTL_GET_CPU_POLICY: u32 = 82;
/// Set the CPUID/MSR policy. Argument: `xen_domctl_cpu_policy`.
pub const XEN_DOMCTL_SET_CPU_POLICY: u32 = 83;
/// Processor trace. Argument: `xen_domctl_vmtrace_op`.
pub const XEN_DOMCTL_VMTRACE_OP: u32 = 84;
/// Paging pool size. Argument: `xen_domctl_paging_mempool`.
pub const XEN_DOMCTL_GET_PAGING_MEMPOOL_SIZE: u32 = 85;
/// Set the paging pool size. Argument: `xen_domctl_paging_mempool`.
pub const XEN_DOMCTL_SET_PAGING_MEMPOOL_SIZE: u32 = 86;
/// gdbsx: read or write guest memory.
pub const XEN_DOMCTL_GDBSX_GUESTMEMIO: u32 = 1000;
/// gdbsx: pause a vCPU.
pub const XEN_DOMCTL_GDBSX_PAUSEVCPU: u32 = 1001;
/// gdbsx: unpause a vCPU.
pub const XEN_DOMCTL_GDBSX_UNPAUSEVCPU: u32 = 1002;
/// gdbsx: domain status.
pub const XEN_DOMCTL_GDBSX_DOMSTATUS: u32 = 1003;

/// `createdomain.flags`: HVM guest.
pub const XEN_DOMCTL_CDF_HVM: u32 = 1 << 0;
/// `createdomain.flags`: use hardware-assisted paging.
pub const XEN_DOMCTL_CDF_HAP: u32 = 1 << 1;
/// `createdomain.flags`: tboot verifies memory over S3.
pub const XEN_DOMCTL_CDF_S3_INTEGRITY: u32 = 1 << 2;
/// `createdomain.flags`: no out-of-sync shadows.
pub const XEN_DOMCTL_CDF_OOS_OFF: u32 = 1 << 3;
/// `createdomain.flags`: the xenstore domain.
pub const XEN_DOMCTL_CDF_XS_DOMAIN: u32 = 1 << 4;
/// `createdomain.flags`: may use the IOMMU.
pub const XEN_DOMCTL_CDF_IOMMU: u32 = 1 << 5;
/// `createdomain.flags`: nested virtualisation.
pub const XEN_DOMCTL_CDF_NESTED_VIRT: u32 = 1 << 6;
/// `createdomain.flags`: virtual PMU.
pub const XEN_DOMCTL_CDF_VPMU: u32 = 1 << 7;
/// The highest `XEN_DOMCTL_CDF_*` bit.
pub const XEN_DOMCTL_CDF_MAX: u32 = XEN_DOMCTL_CDF_VPMU;
/// `createdomain.iommu_opts`: do not share page tables with the IOMMU.
pub const XEN_DOMCTL_IOMMU_NO_SHAREPT: u32 = 1 << 0;
/// The highest `XEN_DOMCTL_IOMMU_*` bit.
pub const XEN_DOMCTL_IOMMU_MAX: u32 = XEN_DOMCTL_IOMMU_NO_SHAREPT;
/// `createdomain.grant_opts`: mask of the maximum grant version.
pub const XEN_DOMCTL_GRANT_VERSION_MASK: u32 = 0xf;

/// `xen_arch_domainconfig.emulation_flags`: local APIC.
pub const XEN_X86_EMU_LAPIC: u32 = 1 << 0;
/// `emulation_flags`: HPET.
pub const XEN_X86_EMU_HPET: u32 = 1 << 1;
/// `emulation_flags`: ACPI PM timer and registers.
pub const XEN_X86_EMU_PM: u32 = 1 << 2;
/// `emulation_flags`: RTC.
pub const XEN_X86_EMU_RTC: u32 = 1 << 3;
/// `emulation_flags`: I/O APIC.
pub const XEN_X86_EMU_IOAPIC: u32 = 1 << 4;
/// `emulation_flags`: PIC.
pub const XEN_X86_EMU_PIC: u32 = 1 << 5;
/// `emulation_flags`: VGA.
pub const XEN_X86_EMU_VGA: u32 = 1 << 6;
/// `emulation_flags`: IOMMU.
pub const XEN_X86_EMU_IOMMU: u32 = 1 << 7;
/// `emulation_flags`: PIT.
pub const XEN_X86_EMU_PIT: u32 = 1 << 8;
/// `emulation_flags`: route interrupts through PIRQs.
pub const XEN_X86_EMU_USE_PIRQ: u32 = 1 << 9;
/// `emulation_flags`: virtual PCI.
pub const XEN_X86_EMU_VPCI: u32 = 1 << 10;
/// `emulation_flags`: everything (a full HVM guest).
pub const XEN_X86_EMU_ALL: u32 = (1 << 11) - 1;
/// `xen_arch_domainconfig.misc_flags`: ignore accesses to unknown MSRs.
pub const XEN_X86_MSR_RELAXED: u32 = 1 << 0;

/// `getdomaininfo.flags`: dying.
pub const XEN_DOMINF_DYING: u32 = 1 << 0;
/// `getdomaininfo.flags`: HVM guest.
pub const XEN_DOMINF_HVM_GUEST: u32 = 1 << 1;
/// `getdomaininfo.flags`: shut down (reason in the shutdown field).
pub const XEN_DOMINF_SHUTDOWN: u32 = 1 << 2;
/// `getdomaininfo.flags`: paused by the toolstack.
pub const XEN_DOMINF_PAUSED: u32 = 1 << 3;
/// `getdomaininfo.flags`: blocked.
pub const XEN_DOMINF_BLOCKED: u32 = 1 << 4;
/// `getdomaininfo.flags`: running.
pub const XEN_DOMINF_RUNNING: u32 = 1 << 5;
/// `getdomaininfo.flags`: being debugged.
pub const XEN_DOMINF_DEBUGGED: u32 = 1 << 6;
/// `getdomaininfo.flags`: the xenstore domain.
pub const XEN_DOMINF_XS_DOMAIN: u32 = 1 << 7;
/// `getdomaininfo.flags`: uses hardware-assisted paging.
pub const XEN_DOMINF_HAP: u32 = 1 << 8;
/// `getdomaininfo.flags`: mask of the shutdown reason (after the shift).
pub const XEN_DOMINF_SHUTDOWNMASK: u32 = 255;
/// `getdomaininfo.flags`: shift of the shutdown reason.
pub const XEN_DOMINF_SHUTDOWNSHIFT: u32 = 16;
/// `getdomaininfo.max_vcpu_id` of a domain without vCPUs.
pub const XEN_INVALID_MAX_VCPU_ID: u32 = !0;

/// Scheduler id (`XEN_SYSCTL_sched_id`, `scheduler_op`): credit.
pub const XEN_SCHEDULER_CREDIT: u32 = 5;
/// Scheduler id: credit2 (Xen 4.17's default).
pub const XEN_SCHEDULER_CREDIT2: u32 = 6;
/// Scheduler id: RTDS.
pub const XEN_SCHEDULER_RTDS: u32 = 8;
/// Scheduler id: null.
pub const XEN_SCHEDULER_NULL: u32 = 9;

/// `getpageframeinfo3` type shift.
pub const XEN_DOMCTL_PFINFO_LTAB_SHIFT: u32 = 28;
/// Page type: not a page table.
pub const XEN_DOMCTL_PFINFO_NOTAB: u32 = 0x0 << 28;
/// Page type: L1 table.
pub const XEN_DOMCTL_PFINFO_L1TAB: u32 = 0x1 << 28;
/// Page type: L2 table.
pub const XEN_DOMCTL_PFINFO_L2TAB: u32 = 0x2 << 28;
/// Page type: L3 table.
pub const XEN_DOMCTL_PFINFO_L3TAB: u32 = 0x3 << 28;
/// Page type: L4 table.
pub const XEN_DOMCTL_PFINFO_L4TAB: u32 = 0x4 << 28;
/// Mask of the page-table level.
pub const XEN_DOMCTL_PFINFO_LTABTYPE_MASK: u32 = 0x7 << 28;
/// The table is pinned.
pub const XEN_DOMCTL_PFINFO_LPINTAB: u32 = 0x1 << 31;
/// Invalid page.
pub const XEN_DOMCTL_PFINFO_XTAB: u32 = 0xf << 28;
/// Allocate-only page.
pub const XEN_DOMCTL_PFINFO_XALLOC: u32 = 0xe << 28;
/// Broken page.
pub const XEN_DOMCTL_PFINFO_BROKEN: u32 = 0xd << 28;
/// Mask of the type field.
pub const XEN_DOMCTL_PFINFO_LTAB_MASK: u32 = 0xf << 28;

/// Shadow op: disable shadow mode.
pub const XEN_DOMCTL_SHADOW_OP_OFF: u32 = 0;
/// Shadow op: enable with `mode` flags.
pub const XEN_DOMCTL_SHADOW_OP_ENABLE: u32 = 32;
/// Shadow op: return the dirty bitmap and clear it.
pub const XEN_DOMCTL_SHADOW_OP_CLEAN: u32 = 11;
/// Shadow op: return the dirty bitmap.
pub const XEN_DOMCTL_SHADOW_OP_PEEK: u32 = 12;
/// Shadow op: get the allocation in MiB.
pub const XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION: u32 = 30;
/// Shadow op: set the allocation in MiB.
pub const XEN_DOMCTL_SHADOW_OP_SET_ALLOCATION: u32 = 31;
/// Shadow op: enable, no mode flags.
pub const XEN_DOMCTL_SHADOW_OP_ENABLE_TEST: u32 = 1;
/// Shadow op: enable log-dirty.
pub const XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY: u32 = 2;
/// Shadow mode: refcounted.
pub const XEN_DOMCTL_SHADOW_ENABLE_REFCOUNT: u32 = 1 << 1;
/// Shadow mode: log dirty pages.
pub const XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY: u32 = 1 << 2;
/// Shadow mode: translate.
pub const XEN_DOMCTL_SHADOW_ENABLE_TRANSLATE: u32 = 1 << 3;
/// Shadow mode: external.
pub const XEN_DOMCTL_SHADOW_ENABLE_EXTERNAL: u32 = 1 << 4;
/// Log-dirty: the final round.
pub const XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL: u32 = 1 << 0;

/// `xen_arch_domainconfig` (x86).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenArchDomainconfig {
    /// `XEN_X86_EMU_*` (0 for PV).
    pub emulation_flags: u32,
    /// `XEN_X86_MSR_*`.
    pub misc_flags: u32,
}
assert_layout!(XenArchDomainconfig, 8; emulation_flags = 0, misc_flags = 4);

/// `xen_domctl_createdomain`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlCreatedomain {
    /// Security label.
    pub ssidref: u32,
    /// UUID.
    pub handle: [u8; 16],
    /// `XEN_DOMCTL_CDF_*`.
    pub flags: u32,
    /// `XEN_DOMCTL_IOMMU_*`.
    pub iommu_opts: u32,
    /// vCPUs.
    pub max_vcpus: u32,
    /// Highest event-channel port.
    pub max_evtchn_port: u32,
    /// Grant-table frames (negative: the hypervisor's default).
    pub max_grant_frames: i32,
    /// Maptrack frames (negative: the hypervisor's default).
    pub max_maptrack_frames: i32,
    /// Highest grant version (`XEN_DOMCTL_GRANT_version_mask`).
    pub grant_opts: u32,
    /// Per-vCPU trace buffer bytes (0: none).
    pub vmtrace_size: u32,
    /// CPU pool.
    pub cpupool_id: u32,
    /// Architecture configuration.
    pub arch: XenArchDomainconfig,
}
assert_layout!(XenDomctlCreatedomain, 64; ssidref = 0, handle = 4, flags = 20,
    iommu_opts = 24, max_vcpus = 28, max_evtchn_port = 32, max_grant_frames = 36,
    max_maptrack_frames = 40, grant_opts = 44, vmtrace_size = 48, cpupool_id = 52, arch = 56);

impl XenDomctlCreatedomain {
    /// An empty PV domain with `max_vcpus` vCPUs, as xl asks for one: 1024
    /// event channels, the hypervisor's default grant-table limits, grant
    /// tables up to version 2.
    pub fn pv(max_vcpus: u32, handle: [u8; 16]) -> Self {
        Self {
            handle,
            max_vcpus,
            max_evtchn_port: 1023,
            max_grant_frames: -1,
            max_maptrack_frames: -1,
            grant_opts: 2,
            ..Default::default()
        }
    }
}

/// `xen_domctl_getdomaininfo` (also the record of `XEN_SYSCTL_getdomaininfolist`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlGetdomaininfo {
    /// The domain.
    pub domain: u16,
    /// Reserved.
    pub pad1: u16,
    /// `XEN_DOMINF_*`, with the shutdown reason.
    pub flags: u32,
    /// Pages held.
    pub tot_pages: u64,
    /// Page limit.
    pub max_pages: u64,
    /// Pages claimed but not yet allocated.
    pub outstanding_pages: u64,
    /// Shared pages.
    pub shr_pages: u64,
    /// Paged-out pages.
    pub paged_pages: u64,
    /// Guest frame of the shared-info page.
    pub shared_info_frame: u64,
    /// CPU time used (ns).
    pub cpu_time: u64,
    /// vCPUs online.
    pub nr_online_vcpus: u32,
    /// Highest vCPU id (`XEN_INVALID_MAX_VCPU_ID` if none).
    pub max_vcpu_id: u32,
    /// Security label.
    pub ssidref: u32,
    /// UUID.
    pub handle: [u8; 16],
    /// CPU pool.
    pub cpupool: u32,
    /// Guest physical address bits.
    pub gpaddr_bits: u8,
    /// Reserved.
    pub pad2: [u8; 7],
    /// Architecture configuration.
    pub arch_config: XenArchDomainconfig,
}
assert_layout!(XenDomctlGetdomaininfo, 112; domain = 0, pad1 = 2, flags = 4, tot_pages = 8,
    max_pages = 16, outstanding_pages = 24, shr_pages = 32, paged_pages = 40,
    shared_info_frame = 48, cpu_time = 56, nr_online_vcpus = 64, max_vcpu_id = 68,
    ssidref = 72, handle = 76, cpupool = 92, gpaddr_bits = 96, pad2 = 97, arch_config = 104);

impl XenDomctlGetdomaininfo {
    /// The shutdown reason (`SHUTDOWN_*`), meaningful with `XEN_DOMINF_shutdown`.
    pub const fn shutdown_reason(&self) -> u32 {
        (self.flags >> XEN_DOMINF_SHUTDOWNSHIFT) & XEN_DOMINF_SHUTDOWNMASK
    }
}

/// `xen_domctl_getpageframeinfo3`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlGetpageframeinfo3 {
    /// Entries in `array`.
    pub num: u64,
    /// Guest pointer to `xen_pfn_t`s: frames in, frames ORed with `PFINFO` types out.
    pub array: u64,
}
assert_layout!(XenDomctlGetpageframeinfo3, 16; num = 0, array = 8);

/// `xen_domctl_shadow_op_stats`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlShadowOpStats {
    /// Faults.
    pub fault_count: u32,
    /// Dirty pages.
    pub dirty_count: u32,
}
assert_layout!(XenDomctlShadowOpStats, 8; fault_count = 0, dirty_count = 4);

/// `xen_domctl_shadow_op`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlShadowOp {
    /// `XEN_DOMCTL_SHADOW_OP_*`.
    pub op: u32,
    /// `XEN_DOMCTL_SHADOW_ENABLE_*` or `LOGDIRTY_*`.
    pub mode: u32,
    /// Allocation in MiB.
    pub mb: u32,
    /// Padding.
    pub _pad: u32,
    /// Guest pointer to the dirty bitmap.
    pub dirty_bitmap: u64,
    /// Bitmap size in pages (bits); updated.
    pub pages: u64,
    /// OUT: statistics.
    pub stats: XenDomctlShadowOpStats,
}
assert_layout!(XenDomctlShadowOp, 40; op = 0, mode = 4, mb = 8, dirty_bitmap = 16,
    pages = 24, stats = 32);

/// `xen_domctl_max_mem`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlMaxMem {
    /// Limit in KiB.
    pub max_memkb: u64,
}
assert_layout!(XenDomctlMaxMem, 8; max_memkb = 0);

/// `xen_domctl_vcpucontext`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlVcpucontext {
    /// The vCPU.
    pub vcpu: u32,
    /// Padding.
    pub _pad: u32,
    /// Guest pointer to a [`crate::xen::VcpuGuestContext`].
    pub ctxt: u64,
}
assert_layout!(XenDomctlVcpucontext, 16; vcpu = 0, ctxt = 8);

/// `xen_domctl_getvcpuinfo`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlGetvcpuinfo {
    /// IN: the vCPU.
    pub vcpu: u32,
    /// OUT: online.
    pub online: u8,
    /// OUT: blocked.
    pub blocked: u8,
    /// OUT: running.
    pub running: u8,
    /// Padding.
    pub _pad0: u8,
    /// OUT: CPU time used (ns).
    pub cpu_time: u64,
    /// OUT: the physical CPU it runs on.
    pub cpu: u32,
    /// Padding.
    pub _pad1: u32,
}
assert_layout!(XenDomctlGetvcpuinfo, 24; vcpu = 0, online = 4, blocked = 5, running = 6,
    cpu_time = 8, cpu = 16);

/// `xen_domctl_max_vcpus`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlMaxVcpus {
    /// vCPUs.
    pub max: u32,
}
assert_layout!(XenDomctlMaxVcpus, 4; max = 0);

/// `xen_domctl_setdomainhandle`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlSetdomainhandle {
    /// UUID.
    pub handle: [u8; 16],
}
assert_layout!(XenDomctlSetdomainhandle, 16; handle = 0);

/// `xen_domctl_setdebugging`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlSetdebugging {
    /// Non-zero: on.
    pub enable: u8,
}
assert_layout!(XenDomctlSetdebugging, 1; enable = 0);

/// `xen_domctl_hypercall_init`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlHypercallInit {
    /// The guest frame to fill.
    pub gmfn: u64,
}
assert_layout!(XenDomctlHypercallInit, 8; gmfn = 0);

/// `xen_domctl_settimeoffset`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlSettimeoffset {
    /// Seconds added to the domain's wallclock.
    pub time_offset_seconds: i64,
}
assert_layout!(XenDomctlSettimeoffset, 8; time_offset_seconds = 0);

/// `XEN_DOMCTL_SCHEDOP_*`: `xen_domctl_scheduler_op.cmd`.
pub const XEN_DOMCTL_SCHEDOP_PUTINFO: u32 = 0;
pub const XEN_DOMCTL_SCHEDOP_GETINFO: u32 = 1;
pub const XEN_DOMCTL_SCHEDOP_PUTVCPUINFO: u32 = 2;
pub const XEN_DOMCTL_SCHEDOP_GETVCPUINFO: u32 = 3;

/// `xen_domctl_scheduler_op` with its union read as credit's (and
/// credit2's) `{ weight, cap }`; the rest of the 16-byte union (rtds, the
/// per-vCPU handle) is padding here.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlSchedulerOp {
    /// `XEN_SCHEDULER_*`: must be the domain's scheduler.
    pub sched_id: u32,
    /// `XEN_DOMCTL_SCHEDOP_*`.
    pub cmd: u32,
    /// The domain's weight (put: 0 leaves it).
    pub weight: u16,
    /// Percent of one CPU at most (0: no cap; put: `0xffff` leaves it).
    pub cap: u16,
    pub _pad: [u8; 12],
}
assert_layout!(XenDomctlSchedulerOp, 24; sched_id = 0, cmd = 4, weight = 8, cap = 10);

/// `xen_domctl_address_size`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlAddressSize {
    /// 32 or 64.
    pub size: u32,
}
assert_layout!(XenDomctlAddressSize, 4; size = 0);

/// Bytes in the `xen_domctl` and `xen_sysctl` argument unions.
pub const PAYLOAD_BYTES: usize = 128;

/// The 128-byte union at the end of `xen_domctl` and `xen_sysctl`
/// (8-byte aligned, like the C union with its 64-bit members).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DomctlPayload {
    /// The raw union, as words for the alignment.
    pub words: [u64; PAYLOAD_BYTES / 8],
}
assert_layout!(DomctlPayload, 128; words = 0);

impl Default for DomctlPayload {
    fn default() -> Self {
        Self {
            words: [0; PAYLOAD_BYTES / 8],
        }
    }
}

impl DomctlPayload {
    /// A payload holding `arg` followed by zeros.
    pub fn new<T: IntoBytes + Immutable>(arg: &T) -> Self {
        let mut p = Self::default();
        p.set(arg);
        p
    }

    /// Reads the union as sub-op argument `T`.
    pub fn get<T: FromBytes>(&self) -> T {
        const { assert!(core::mem::size_of::<T>() <= PAYLOAD_BYTES) };
        match T::read_from_prefix(self.words.as_bytes()) {
            Ok((v, _)) => v,
            // The size is checked above, and T: FromBytes accepts any bytes.
            Err(_) => unreachable!(),
        }
    }

    /// Overwrites the start of the union with `arg` (the rest is unchanged).
    pub fn set<T: IntoBytes + Immutable>(&mut self, arg: &T) {
        const { assert!(core::mem::size_of::<T>() <= PAYLOAD_BYTES) };
        let src = arg.as_bytes();
        self.words.as_mut_bytes()[..src.len()].copy_from_slice(src);
    }
}

/// `xen_domctl`: the argument of the `domctl` hypercall (144 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctl {
    /// `XEN_DOMCTL_*`.
    pub cmd: u32,
    /// [`XEN_DOMCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    /// The domain operated on.
    pub domain: u16,
    /// Reserved (C `_pad`).
    pub _pad: [u16; 3],
    /// The sub-op argument.
    pub u: DomctlPayload,
}
assert_layout!(XenDomctl, 144; cmd = 0, interface_version = 4, domain = 8, _pad = 10, u = 16);

impl XenDomctl {
    /// A domctl for `cmd` on `domain` carrying `arg`, at this interface version.
    pub fn new<T: IntoBytes + Immutable>(cmd: u32, domain: u16, arg: &T) -> Self {
        Self {
            cmd,
            interface_version: XEN_DOMCTL_INTERFACE_VERSION,
            domain,
            _pad: [0; 3],
            u: DomctlPayload::new(arg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let mv = XenDomctlMaxVcpus { max: 4 };
        let d = XenDomctl::new(XEN_DOMCTL_MAX_VCPUS, 3, &mv);
        assert_eq!(d.u.get::<XenDomctlMaxVcpus>(), mv);
        assert_eq!(&d.as_bytes()[16..20], &[4, 0, 0, 0]);
        let info = XenDomctlGetdomaininfo {
            flags: XEN_DOMINF_SHUTDOWN | (3 << XEN_DOMINF_SHUTDOWNSHIFT),
            ..Default::default()
        };
        assert_eq!(
            DomctlPayload::new(&info)
                .get::<XenDomctlGetdomaininfo>()
                .shutdown_reason(),
            3
        );
    }
}
