//! The sub-operations of the hypercalls that multiplex on a command: for
//! each, where the command is ([`Selector`]) and every command Xen 4.17
//! defines, with its number and its name in Xen's public headers (without
//! the `XENVER_`, `SCHEDOP_`, `XENMEM_`, `MMUEXT_`, `EVTCHNOP_`,
//! `GNTTABOP_`, `VCPUOP_`, `XENNMI_`, `PHYSDEVOP_`, `CALLBACKOP_`,
//! `CONSOLEIO_`, `VMASST_CMD_` or `MMU_` prefix). Numbers Xen retired (for
//! example `XENMEM_translate_gpfn_list`) are left out.
//!
//! Every number is one of this crate's constants, so the names and the
//! numbers a guest uses cannot drift apart. All are below 128, so a set of
//! them fits an [`OpMask`] ([`mask`]); `domctl`'s gdbsx commands (1000 and
//! up, a debugger's) are left out.

use crate::callback::*;
use crate::console::*;
use crate::domctl::*;
use crate::event_channel::*;
use crate::grant_table::*;
use crate::hypercall as nr;
use crate::memory::*;
use crate::nmi::*;
use crate::physdev::*;
use crate::sched::*;
use crate::sysctl::*;
use crate::vcpu::*;
use crate::version::*;
use crate::xen::*;

/// Where a hypercall's command is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The first argument.
    Cmd,
    /// The low bits of the first argument under the mask (`memory_op`:
    /// the bits above carry a preempted call's restart point).
    CmdMasked(u32),
    /// Each element of the batch the call points to has its own command
    /// (`mmu_update`, `mmuext_op`).
    PerElement,
    /// The first field of the struct the first argument points to
    /// (`sysctl`, `domctl`): the handler reads it after copying the
    /// struct in.
    InStruct,
}

impl Selector {
    /// The command in first argument `arg0`, or `None` for
    /// [`Selector::PerElement`].
    pub const fn command(self, arg0: u32) -> Option<u32> {
        match self {
            Self::Cmd => Some(arg0),
            Self::CmdMasked(m) => Some(arg0 & m),
            Self::PerElement | Self::InStruct => None,
        }
    }
}

/// One sub-operation: its command number and Xen's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubOp {
    pub nr: u32,
    pub name: &'static str,
}

/// The sub-operations of one hypercall, in Xen's numbering order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubOps {
    /// The hypercall's number.
    pub hypercall: u64,
    pub selector: Selector,
    pub ops: &'static [SubOp],
}

impl SubOps {
    /// The sub-operation numbered `nr`.
    pub fn get(&self, nr: u32) -> Option<&'static SubOp> {
        self.ops.iter().find(|op| op.nr == nr)
    }

    /// The sub-operation named `name`.
    pub fn named(&self, name: &str) -> Option<&'static SubOp> {
        self.ops.iter().find(|op| op.name == name)
    }
}

/// An `MMU_*` command as a sub-operation number: they are `u64` in the
/// headers (the low bits of a request's `ptr`), and all below 4.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the MMU_* commands are 0-3"
)]
pub const fn mmu(cmd: u64) -> u32 {
    cmd as u32
}

/// A set of sub-operation numbers, bit `n` for number `n`.
pub type OpMask = u128;

/// A set of command numbers (each below 128) as a bit mask.
pub const fn mask(cmds: &[u32]) -> OpMask {
    let mut m: OpMask = 0;
    let mut i = 0;
    while i < cmds.len() {
        assert!(
            cmds[i] < OpMask::BITS,
            "a sub-operation number is below 128"
        );
        m |= 1 << cmds[i];
        i += 1;
    }
    m
}

macro_rules! sub_ops {
    ($( $hc:ident $sel:expr => [ $( $konst:expr => $name:literal ),* $(,)? ]; )*) => {
        /// Every multiplexing hypercall's sub-operations, in hypercall
        /// number order.
        pub const SUB_OPS: &[SubOps] = &[
            $( SubOps {
                hypercall: nr::$hc,
                selector: $sel,
                ops: &[ $( SubOp { nr: $konst, name: $name } ),* ],
            }, )*
        ];
    };
}

sub_ops! {
    MMU_UPDATE Selector::PerElement => [
        mmu(MMU_NORMAL_PT_UPDATE) => "normal_pt_update",
        mmu(MMU_MACHPHYS_UPDATE) => "machphys_update",
        mmu(MMU_PT_UPDATE_PRESERVE_AD) => "pt_update_preserve_ad",
        mmu(MMU_PT_UPDATE_NO_TRANSLATE) => "pt_update_no_translate",
    ];
    SCHED_OP_COMPAT Selector::Cmd => [
        SCHEDOP_YIELD => "yield",
        SCHEDOP_BLOCK => "block",
        SCHEDOP_SHUTDOWN => "shutdown",
    ];
    MEMORY_OP Selector::CmdMasked(MEMOP_CMD_MASK) => [
        XENMEM_INCREASE_RESERVATION => "increase_reservation",
        XENMEM_DECREASE_RESERVATION => "decrease_reservation",
        XENMEM_MAXIMUM_RAM_PAGE => "maximum_ram_page",
        XENMEM_CURRENT_RESERVATION => "current_reservation",
        XENMEM_MAXIMUM_RESERVATION => "maximum_reservation",
        XENMEM_MACHPHYS_MFN_LIST => "machphys_mfn_list",
        XENMEM_POPULATE_PHYSMAP => "populate_physmap",
        XENMEM_ADD_TO_PHYSMAP => "add_to_physmap",
        XENMEM_MEMORY_MAP => "memory_map",
        XENMEM_MACHINE_MEMORY_MAP => "machine_memory_map",
        XENMEM_EXCHANGE => "exchange",
        XENMEM_MACHPHYS_MAPPING => "machphys_mapping",
        XENMEM_SET_MEMORY_MAP => "set_memory_map",
        XENMEM_MAXIMUM_GPFN => "maximum_gpfn",
        XENMEM_REMOVE_FROM_PHYSMAP => "remove_from_physmap",
        XENMEM_SET_POD_TARGET => "set_pod_target",
        XENMEM_GET_POD_TARGET => "get_pod_target",
        XENMEM_GET_SHARING_FREED_PAGES => "get_sharing_freed_pages",
        XENMEM_GET_SHARING_SHARED_PAGES => "get_sharing_shared_pages",
        XENMEM_PAGING_OP => "paging_op",
        XENMEM_ACCESS_OP => "access_op",
        XENMEM_SHARING_OP => "sharing_op",
        XENMEM_ADD_TO_PHYSMAP_BATCH => "add_to_physmap_batch",
        XENMEM_CLAIM_PAGES => "claim_pages",
        XENMEM_MACHPHYS_COMPAT_MFN_LIST => "machphys_compat_mfn_list",
        XENMEM_GET_VNUMAINFO => "get_vnumainfo",
        XENMEM_RESERVED_DEVICE_MEMORY_MAP => "reserved_device_memory_map",
        XENMEM_ACQUIRE_RESOURCE => "acquire_resource",
    ];
    XEN_VERSION Selector::Cmd => [
        XENVER_VERSION => "version",
        XENVER_EXTRAVERSION => "extraversion",
        XENVER_COMPILE_INFO => "compile_info",
        XENVER_CAPABILITIES => "capabilities",
        XENVER_CHANGESET => "changeset",
        XENVER_PLATFORM_PARAMETERS => "platform_parameters",
        XENVER_GET_FEATURES => "get_features",
        XENVER_PAGESIZE => "pagesize",
        XENVER_GUEST_HANDLE => "guest_handle",
        XENVER_COMMANDLINE => "commandline",
        XENVER_BUILD_ID => "build_id",
    ];
    CONSOLE_IO Selector::Cmd => [
        CONSOLEIO_WRITE => "write",
        CONSOLEIO_READ => "read",
    ];
    GRANT_TABLE_OP Selector::Cmd => [
        GNTTABOP_MAP_GRANT_REF => "map_grant_ref",
        GNTTABOP_UNMAP_GRANT_REF => "unmap_grant_ref",
        GNTTABOP_SETUP_TABLE => "setup_table",
        GNTTABOP_DUMP_TABLE => "dump_table",
        GNTTABOP_TRANSFER => "transfer",
        GNTTABOP_COPY => "copy",
        GNTTABOP_QUERY_SIZE => "query_size",
        GNTTABOP_UNMAP_AND_REPLACE => "unmap_and_replace",
        GNTTABOP_SET_VERSION => "set_version",
        GNTTABOP_GET_STATUS_FRAMES => "get_status_frames",
        GNTTABOP_GET_VERSION => "get_version",
        GNTTABOP_SWAP_GRANT_REF => "swap_grant_ref",
        GNTTABOP_CACHE_FLUSH => "cache_flush",
    ];
    VM_ASSIST Selector::Cmd => [
        VMASST_CMD_ENABLE => "enable",
        VMASST_CMD_DISABLE => "disable",
    ];
    VCPU_OP Selector::Cmd => [
        VCPUOP_INITIALISE => "initialise",
        VCPUOP_UP => "up",
        VCPUOP_DOWN => "down",
        VCPUOP_IS_UP => "is_up",
        VCPUOP_GET_RUNSTATE_INFO => "get_runstate_info",
        VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => "register_runstate_memory_area",
        VCPUOP_SET_PERIODIC_TIMER => "set_periodic_timer",
        VCPUOP_STOP_PERIODIC_TIMER => "stop_periodic_timer",
        VCPUOP_SET_SINGLESHOT_TIMER => "set_singleshot_timer",
        VCPUOP_STOP_SINGLESHOT_TIMER => "stop_singleshot_timer",
        VCPUOP_REGISTER_VCPU_INFO => "register_vcpu_info",
        VCPUOP_SEND_NMI => "send_nmi",
        VCPUOP_GET_PHYSID => "get_physid",
        VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA => "register_vcpu_time_memory_area",
    ];
    MMUEXT_OP Selector::PerElement => [
        MMUEXT_PIN_L1_TABLE => "pin_l1_table",
        MMUEXT_PIN_L2_TABLE => "pin_l2_table",
        MMUEXT_PIN_L3_TABLE => "pin_l3_table",
        MMUEXT_PIN_L4_TABLE => "pin_l4_table",
        MMUEXT_UNPIN_TABLE => "unpin_table",
        MMUEXT_NEW_BASEPTR => "new_baseptr",
        MMUEXT_TLB_FLUSH_LOCAL => "tlb_flush_local",
        MMUEXT_INVLPG_LOCAL => "invlpg_local",
        MMUEXT_TLB_FLUSH_MULTI => "tlb_flush_multi",
        MMUEXT_INVLPG_MULTI => "invlpg_multi",
        MMUEXT_TLB_FLUSH_ALL => "tlb_flush_all",
        MMUEXT_INVLPG_ALL => "invlpg_all",
        MMUEXT_FLUSH_CACHE => "flush_cache",
        MMUEXT_SET_LDT => "set_ldt",
        MMUEXT_NEW_USER_BASEPTR => "new_user_baseptr",
        MMUEXT_CLEAR_PAGE => "clear_page",
        MMUEXT_COPY_PAGE => "copy_page",
        MMUEXT_FLUSH_CACHE_GLOBAL => "flush_cache_global",
        MMUEXT_MARK_SUPER => "mark_super",
        MMUEXT_UNMARK_SUPER => "unmark_super",
    ];
    NMI_OP Selector::Cmd => [
        XENNMI_REGISTER_CALLBACK => "register_callback",
        XENNMI_UNREGISTER_CALLBACK => "unregister_callback",
    ];
    SCHED_OP Selector::Cmd => [
        SCHEDOP_YIELD => "yield",
        SCHEDOP_BLOCK => "block",
        SCHEDOP_SHUTDOWN => "shutdown",
        SCHEDOP_POLL => "poll",
        SCHEDOP_REMOTE_SHUTDOWN => "remote_shutdown",
        SCHEDOP_SHUTDOWN_CODE => "shutdown_code",
        SCHEDOP_WATCHDOG => "watchdog",
        SCHEDOP_PIN_OVERRIDE => "pin_override",
    ];
    CALLBACK_OP Selector::Cmd => [
        CALLBACKOP_REGISTER => "register",
        CALLBACKOP_UNREGISTER => "unregister",
    ];
    EVENT_CHANNEL_OP Selector::Cmd => [
        EVTCHNOP_BIND_INTERDOMAIN => "bind_interdomain",
        EVTCHNOP_BIND_VIRQ => "bind_virq",
        EVTCHNOP_BIND_PIRQ => "bind_pirq",
        EVTCHNOP_CLOSE => "close",
        EVTCHNOP_SEND => "send",
        EVTCHNOP_STATUS => "status",
        EVTCHNOP_ALLOC_UNBOUND => "alloc_unbound",
        EVTCHNOP_BIND_IPI => "bind_ipi",
        EVTCHNOP_BIND_VCPU => "bind_vcpu",
        EVTCHNOP_UNMASK => "unmask",
        EVTCHNOP_RESET => "reset",
        EVTCHNOP_INIT_CONTROL => "init_control",
        EVTCHNOP_EXPAND_ARRAY => "expand_array",
        EVTCHNOP_SET_PRIORITY => "set_priority",
        EVTCHNOP_RESET_CONT => "reset_cont",
    ];
    PHYSDEV_OP Selector::Cmd => [
        PHYSDEVOP_IRQ_STATUS_QUERY => "irq_status_query",
        PHYSDEVOP_SET_IOPL => "set_iopl",
        PHYSDEVOP_SET_IOBITMAP => "set_iobitmap",
        PHYSDEVOP_APIC_READ => "apic_read",
        PHYSDEVOP_APIC_WRITE => "apic_write",
        PHYSDEVOP_ALLOC_IRQ_VECTOR => "alloc_irq_vector",
        PHYSDEVOP_FREE_IRQ_VECTOR => "free_irq_vector",
        PHYSDEVOP_EOI => "eoi",
        PHYSDEVOP_MAP_PIRQ => "map_pirq",
        PHYSDEVOP_UNMAP_PIRQ => "unmap_pirq",
        PHYSDEVOP_MANAGE_PCI_ADD => "manage_pci_add",
        PHYSDEVOP_MANAGE_PCI_REMOVE => "manage_pci_remove",
        PHYSDEVOP_PIRQ_EOI_GMFN_V1 => "pirq_eoi_gmfn_v1",
        PHYSDEVOP_RESTORE_MSI => "restore_msi",
        PHYSDEVOP_MANAGE_PCI_ADD_EXT => "manage_pci_add_ext",
        PHYSDEVOP_SETUP_GSI => "setup_gsi",
        PHYSDEVOP_GET_FREE_PIRQ => "get_free_pirq",
        PHYSDEVOP_PCI_MMCFG_RESERVED => "pci_mmcfg_reserved",
        PHYSDEVOP_PCI_DEVICE_ADD => "pci_device_add",
        PHYSDEVOP_PCI_DEVICE_REMOVE => "pci_device_remove",
        PHYSDEVOP_RESTORE_MSI_EXT => "restore_msi_ext",
        PHYSDEVOP_PIRQ_EOI_GMFN_V2 => "pirq_eoi_gmfn_v2",
        PHYSDEVOP_DBGP_OP => "dbgp_op",
        PHYSDEVOP_PREPARE_MSIX => "prepare_msix",
        PHYSDEVOP_RELEASE_MSIX => "release_msix",
    ];
    SYSCTL Selector::InStruct => [
        XEN_SYSCTL_READCONSOLE => "readconsole",
        XEN_SYSCTL_TBUF_OP => "tbuf_op",
        XEN_SYSCTL_PHYSINFO => "physinfo",
        XEN_SYSCTL_SCHED_ID => "sched_id",
        XEN_SYSCTL_PERFC_OP => "perfc_op",
        XEN_SYSCTL_GETDOMAININFOLIST => "getdomaininfolist",
        XEN_SYSCTL_DEBUG_KEYS => "debug_keys",
        XEN_SYSCTL_GETCPUINFO => "getcpuinfo",
        XEN_SYSCTL_AVAILHEAP => "availheap",
        XEN_SYSCTL_GET_PMSTAT => "get_pmstat",
        XEN_SYSCTL_CPU_HOTPLUG => "cpu_hotplug",
        XEN_SYSCTL_PM_OP => "pm_op",
        XEN_SYSCTL_PAGE_OFFLINE_OP => "page_offline_op",
        XEN_SYSCTL_LOCKPROF_OP => "lockprof_op",
        XEN_SYSCTL_CPUTOPOINFO => "cputopoinfo",
        XEN_SYSCTL_NUMAINFO => "numainfo",
        XEN_SYSCTL_CPUPOOL_OP => "cpupool_op",
        XEN_SYSCTL_SCHEDULER_OP => "scheduler_op",
        XEN_SYSCTL_COVERAGE_OP => "coverage_op",
        XEN_SYSCTL_PSR_CMT_OP => "psr_cmt_op",
        XEN_SYSCTL_PCITOPOINFO => "pcitopoinfo",
        XEN_SYSCTL_PSR_ALLOC => "psr_alloc",
        XEN_SYSCTL_GET_CPU_LEVELLING_CAPS => "get_cpu_levelling_caps",
        XEN_SYSCTL_GET_CPU_FEATURESET => "get_cpu_featureset",
        XEN_SYSCTL_LIVEPATCH_OP => "livepatch_op",
        XEN_SYSCTL_GET_CPU_POLICY => "get_cpu_policy",
    ];
    DOMCTL Selector::InStruct => [
        XEN_DOMCTL_CREATEDOMAIN => "createdomain",
        XEN_DOMCTL_DESTROYDOMAIN => "destroydomain",
        XEN_DOMCTL_PAUSEDOMAIN => "pausedomain",
        XEN_DOMCTL_UNPAUSEDOMAIN => "unpausedomain",
        XEN_DOMCTL_GETDOMAININFO => "getdomaininfo",
        XEN_DOMCTL_SETVCPUAFFINITY => "setvcpuaffinity",
        XEN_DOMCTL_SHADOW_OP => "shadow_op",
        XEN_DOMCTL_MAX_MEM => "max_mem",
        XEN_DOMCTL_SETVCPUCONTEXT => "setvcpucontext",
        XEN_DOMCTL_GETVCPUCONTEXT => "getvcpucontext",
        XEN_DOMCTL_GETVCPUINFO => "getvcpuinfo",
        XEN_DOMCTL_MAX_VCPUS => "max_vcpus",
        XEN_DOMCTL_SCHEDULER_OP => "scheduler_op",
        XEN_DOMCTL_SETDOMAINHANDLE => "setdomainhandle",
        XEN_DOMCTL_SETDEBUGGING => "setdebugging",
        XEN_DOMCTL_IRQ_PERMISSION => "irq_permission",
        XEN_DOMCTL_IOMEM_PERMISSION => "iomem_permission",
        XEN_DOMCTL_IOPORT_PERMISSION => "ioport_permission",
        XEN_DOMCTL_HYPERCALL_INIT => "hypercall_init",
        XEN_DOMCTL_SETTIMEOFFSET => "settimeoffset",
        XEN_DOMCTL_GETVCPUAFFINITY => "getvcpuaffinity",
        XEN_DOMCTL_RESUMEDOMAIN => "resumedomain",
        XEN_DOMCTL_SENDTRIGGER => "sendtrigger",
        XEN_DOMCTL_SUBSCRIBE => "subscribe",
        XEN_DOMCTL_GETHVMCONTEXT => "gethvmcontext",
        XEN_DOMCTL_SETHVMCONTEXT => "sethvmcontext",
        XEN_DOMCTL_SET_ADDRESS_SIZE => "set_address_size",
        XEN_DOMCTL_GET_ADDRESS_SIZE => "get_address_size",
        XEN_DOMCTL_ASSIGN_DEVICE => "assign_device",
        XEN_DOMCTL_BIND_PT_IRQ => "bind_pt_irq",
        XEN_DOMCTL_MEMORY_MAPPING => "memory_mapping",
        XEN_DOMCTL_IOPORT_MAPPING => "ioport_mapping",
        XEN_DOMCTL_SET_EXT_VCPUCONTEXT => "set_ext_vcpucontext",
        XEN_DOMCTL_GET_EXT_VCPUCONTEXT => "get_ext_vcpucontext",
        XEN_DOMCTL_TEST_ASSIGN_DEVICE => "test_assign_device",
        XEN_DOMCTL_SET_TARGET => "set_target",
        XEN_DOMCTL_DEASSIGN_DEVICE => "deassign_device",
        XEN_DOMCTL_UNBIND_PT_IRQ => "unbind_pt_irq",
        XEN_DOMCTL_GET_DEVICE_GROUP => "get_device_group",
        XEN_DOMCTL_DEBUG_OP => "debug_op",
        XEN_DOMCTL_GETHVMCONTEXT_PARTIAL => "gethvmcontext_partial",
        XEN_DOMCTL_VM_EVENT_OP => "vm_event_op",
        XEN_DOMCTL_MEM_SHARING_OP => "mem_sharing_op",
        XEN_DOMCTL_GETTSCINFO => "gettscinfo",
        XEN_DOMCTL_SETTSCINFO => "settscinfo",
        XEN_DOMCTL_GETPAGEFRAMEINFO3 => "getpageframeinfo3",
        XEN_DOMCTL_SETVCPUEXTSTATE => "setvcpuextstate",
        XEN_DOMCTL_GETVCPUEXTSTATE => "getvcpuextstate",
        XEN_DOMCTL_SET_ACCESS_REQUIRED => "set_access_required",
        XEN_DOMCTL_AUDIT_P2M => "audit_p2m",
        XEN_DOMCTL_SET_VIRQ_HANDLER => "set_virq_handler",
        XEN_DOMCTL_SET_BROKEN_PAGE_P2M => "set_broken_page_p2m",
        XEN_DOMCTL_SETNODEAFFINITY => "setnodeaffinity",
        XEN_DOMCTL_GETNODEAFFINITY => "getnodeaffinity",
        XEN_DOMCTL_CACHEFLUSH => "cacheflush",
        XEN_DOMCTL_GET_VCPU_MSRS => "get_vcpu_msrs",
        XEN_DOMCTL_SET_VCPU_MSRS => "set_vcpu_msrs",
        XEN_DOMCTL_SETVNUMAINFO => "setvnumainfo",
        XEN_DOMCTL_PSR_CMT_OP => "psr_cmt_op",
        XEN_DOMCTL_MONITOR_OP => "monitor_op",
        XEN_DOMCTL_PSR_ALLOC => "psr_alloc",
        XEN_DOMCTL_SOFT_RESET => "soft_reset",
        XEN_DOMCTL_VUART_OP => "vuart_op",
        XEN_DOMCTL_GET_CPU_POLICY => "get_cpu_policy",
        XEN_DOMCTL_SET_CPU_POLICY => "set_cpu_policy",
        XEN_DOMCTL_VMTRACE_OP => "vmtrace_op",
        XEN_DOMCTL_GET_PAGING_MEMPOOL_SIZE => "get_paging_mempool_size",
        XEN_DOMCTL_SET_PAGING_MEMPOOL_SIZE => "set_paging_mempool_size",
    ];
}

/// The sub-operations of hypercall `hypercall`, if it multiplexes (a
/// `const fn`, so a dispatcher can look its hypercall up at compile time).
pub const fn of(hypercall: u64) -> Option<&'static SubOps> {
    let mut i = 0;
    while i < SUB_OPS.len() {
        if SUB_OPS[i].hypercall == hypercall {
            return Some(&SUB_OPS[i]);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    extern crate std;
    use std::collections::BTreeSet;

    #[test]
    fn lists_are_unique_sorted_and_name_real_hypercalls() {
        for pair in SUB_OPS.windows(2) {
            assert!(pair[0].hypercall < pair[1].hypercall);
        }
        for s in SUB_OPS {
            assert!(nr::info(s.hypercall).is_some(), "{}", s.hypercall);
            for pair in s.ops.windows(2) {
                assert!(pair[0].nr < pair[1].nr, "{}", pair[1].name);
            }
            let names: BTreeSet<_> = s.ops.iter().map(|o| o.name).collect();
            assert_eq!(names.len(), s.ops.len());
            assert!(s.ops.iter().all(|o| o.nr < OpMask::BITS));
        }
        assert_eq!(
            of(nr::SCHED_OP).and_then(|s| s.get(2)).map(|o| o.name),
            Some("shutdown")
        );
        assert_eq!(
            of(nr::MEMORY_OP).map(|s| s.selector.command(0x45)),
            Some(Some(5))
        );
        assert_eq!(mask(&[0, 3]), 9);
    }
}
