//! What hv implements of the hypercall ABI: the hypercalls its dispatch
//! table has a handler for and, for those that multiplex on a command, the
//! commands it handles.
//!
//! This is data the code runs on, not a description of it: the dispatch
//! table must name exactly the hypercalls listed here (a compile-time check
//! next to the table), and a command Xen defines that is not listed is
//! `-ENOSYS` before any handler sees it ([`refused_mask`]: the dispatcher
//! checks a command in the first argument, the batch handlers each
//! element's). So the list cannot claim more or less than hv does, and `cargo xtask conformance-table`
//! reads it (hv's lib is a host crate) for the README's "on hv" column.
//! Sub-operation numbers and names are `guest-abi`'s
//! ([`guest_abi::hypercall::sub_ops`]).

use guest_abi::callback::*;
use guest_abi::console::*;
use guest_abi::domctl::*;
use guest_abi::event_channel::*;
use guest_abi::grant_table::*;
use guest_abi::hypercall as nr;
use guest_abi::hypercall::sub_ops::{self, mmu, OpMask};
use guest_abi::memory::*;
use guest_abi::nmi::*;
use guest_abi::physdev::*;
use guest_abi::sched::*;
use guest_abi::sysctl::*;
use guest_abi::vcpu::*;
use guest_abi::version::*;
use guest_abi::xen::*;

/// How much of a hypercall hv implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// All of it (it has no sub-operations).
    Whole,
    /// The sub-operations whose bits are set ([`sub_ops::mask`]).
    SubOps(sub_ops::OpMask),
}

/// One hypercall hv dispatches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Implemented {
    pub hypercall: u64,
    pub support: Support,
}

const fn whole(hypercall: u64) -> Implemented {
    Implemented {
        hypercall,
        support: Support::Whole,
    }
}

const fn some(hypercall: u64, ops: &[u32]) -> Implemented {
    Implemented {
        hypercall,
        support: Support::SubOps(sub_ops::mask(ops)),
    }
}

/// Every hypercall hv dispatches, in number order.
pub const IMPLEMENTED: &[Implemented] = &[
    whole(nr::SET_TRAP_TABLE),
    some(
        nr::MMU_UPDATE,
        &[
            mmu(MMU_NORMAL_PT_UPDATE),
            mmu(MMU_MACHPHYS_UPDATE),
            mmu(MMU_PT_UPDATE_PRESERVE_AD),
            mmu(MMU_PT_UPDATE_NO_TRANSLATE),
        ],
    ),
    whole(nr::SET_GDT),
    whole(nr::STACK_SWITCH),
    whole(nr::SET_CALLBACKS),
    whole(nr::FPU_TASKSWITCH),
    some(
        nr::SCHED_OP_COMPAT,
        &[SCHEDOP_YIELD, SCHEDOP_BLOCK, SCHEDOP_SHUTDOWN],
    ),
    whole(nr::SET_DEBUGREG),
    whole(nr::GET_DEBUGREG),
    whole(nr::UPDATE_DESCRIPTOR),
    some(
        nr::MEMORY_OP,
        &[
            XENMEM_INCREASE_RESERVATION,
            XENMEM_DECREASE_RESERVATION,
            XENMEM_MAXIMUM_RAM_PAGE,
            XENMEM_CURRENT_RESERVATION,
            XENMEM_MAXIMUM_RESERVATION,
            XENMEM_MACHPHYS_MFN_LIST,
            XENMEM_POPULATE_PHYSMAP,
            XENMEM_ADD_TO_PHYSMAP,
            XENMEM_MACHINE_MEMORY_MAP,
            XENMEM_EXCHANGE,
            XENMEM_MACHPHYS_MAPPING,
            XENMEM_MAXIMUM_GPFN,
        ],
    ),
    whole(nr::MULTICALL),
    whole(nr::UPDATE_VA_MAPPING),
    whole(nr::SET_TIMER_OP),
    // Forwards the pre-3.0.2 commands to `event_channel_op`, which refuses
    // those missing from its list below.
    whole(nr::EVENT_CHANNEL_OP_COMPAT),
    some(
        nr::XEN_VERSION,
        &[
            XENVER_VERSION,
            XENVER_EXTRAVERSION,
            XENVER_COMPILE_INFO,
            XENVER_CAPABILITIES,
            XENVER_CHANGESET,
            XENVER_PLATFORM_PARAMETERS,
            XENVER_GET_FEATURES,
            XENVER_PAGESIZE,
            XENVER_GUEST_HANDLE,
            XENVER_COMMANDLINE,
            XENVER_BUILD_ID,
        ],
    ),
    some(nr::CONSOLE_IO, &[CONSOLEIO_WRITE, CONSOLEIO_READ]),
    some(
        nr::GRANT_TABLE_OP,
        &[
            GNTTABOP_MAP_GRANT_REF,
            GNTTABOP_UNMAP_GRANT_REF,
            GNTTABOP_SETUP_TABLE,
            GNTTABOP_COPY,
            GNTTABOP_QUERY_SIZE,
            GNTTABOP_SET_VERSION,
            GNTTABOP_GET_STATUS_FRAMES,
            GNTTABOP_GET_VERSION,
            GNTTABOP_UNMAP_AND_REPLACE,
            GNTTABOP_SWAP_GRANT_REF,
            GNTTABOP_TRANSFER,
        ],
    ),
    some(nr::VM_ASSIST, &[VMASST_CMD_ENABLE, VMASST_CMD_DISABLE]),
    whole(nr::UPDATE_VA_MAPPING_OTHERDOMAIN),
    whole(nr::IRET),
    some(
        nr::VCPU_OP,
        &[
            VCPUOP_INITIALISE,
            VCPUOP_UP,
            VCPUOP_DOWN,
            VCPUOP_IS_UP,
            VCPUOP_GET_RUNSTATE_INFO,
            VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA,
            VCPUOP_SET_PERIODIC_TIMER,
            VCPUOP_STOP_PERIODIC_TIMER,
            VCPUOP_SET_SINGLESHOT_TIMER,
            VCPUOP_STOP_SINGLESHOT_TIMER,
            VCPUOP_REGISTER_VCPU_INFO,
            VCPUOP_GET_PHYSID,
            VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA,
        ],
    ),
    whole(nr::SET_SEGMENT_BASE),
    some(
        nr::MMUEXT_OP,
        &[
            MMUEXT_PIN_L1_TABLE,
            MMUEXT_PIN_L2_TABLE,
            MMUEXT_PIN_L3_TABLE,
            MMUEXT_PIN_L4_TABLE,
            MMUEXT_UNPIN_TABLE,
            MMUEXT_NEW_BASEPTR,
            MMUEXT_TLB_FLUSH_LOCAL,
            MMUEXT_INVLPG_LOCAL,
            MMUEXT_TLB_FLUSH_MULTI,
            MMUEXT_INVLPG_MULTI,
            MMUEXT_TLB_FLUSH_ALL,
            MMUEXT_INVLPG_ALL,
            MMUEXT_FLUSH_CACHE,
            MMUEXT_SET_LDT,
            MMUEXT_NEW_USER_BASEPTR,
            MMUEXT_CLEAR_PAGE,
            MMUEXT_COPY_PAGE,
            MMUEXT_FLUSH_CACHE_GLOBAL,
            // Refused with -EOPNOTSUPP, as Xen 4.17 refuses them (it has
            // no superpage support for PV guests).
            MMUEXT_MARK_SUPER,
            MMUEXT_UNMARK_SUPER,
        ],
    ),
    some(
        nr::NMI_OP,
        &[XENNMI_REGISTER_CALLBACK, XENNMI_UNREGISTER_CALLBACK],
    ),
    some(
        nr::SCHED_OP,
        &[
            SCHEDOP_YIELD,
            SCHEDOP_BLOCK,
            SCHEDOP_SHUTDOWN,
            SCHEDOP_POLL,
            SCHEDOP_SHUTDOWN_CODE,
            SCHEDOP_REMOTE_SHUTDOWN,
            SCHEDOP_WATCHDOG,
        ],
    ),
    some(
        nr::CALLBACK_OP,
        &[CALLBACKOP_REGISTER, CALLBACKOP_UNREGISTER],
    ),
    some(
        nr::EVENT_CHANNEL_OP,
        &[
            EVTCHNOP_BIND_INTERDOMAIN,
            EVTCHNOP_BIND_VIRQ,
            EVTCHNOP_CLOSE,
            EVTCHNOP_SEND,
            EVTCHNOP_STATUS,
            EVTCHNOP_ALLOC_UNBOUND,
            EVTCHNOP_BIND_IPI,
            EVTCHNOP_BIND_VCPU,
            EVTCHNOP_UNMASK,
            EVTCHNOP_RESET,
            EVTCHNOP_INIT_CONTROL,
            EVTCHNOP_EXPAND_ARRAY,
            EVTCHNOP_SET_PRIORITY,
            EVTCHNOP_RESET_CONT,
        ],
    ),
    some(
        nr::PHYSDEV_OP,
        &[PHYSDEVOP_SET_IOPL, PHYSDEVOP_SET_IOBITMAP],
    ),
    some(
        nr::SYSCTL,
        &[
            XEN_SYSCTL_PHYSINFO,
            XEN_SYSCTL_SCHED_ID,
            XEN_SYSCTL_GETDOMAININFOLIST,
            XEN_SYSCTL_READCONSOLE,
        ],
    ),
    some(
        nr::DOMCTL,
        &[
            XEN_DOMCTL_CREATEDOMAIN,
            XEN_DOMCTL_DESTROYDOMAIN,
            XEN_DOMCTL_PAUSEDOMAIN,
            XEN_DOMCTL_UNPAUSEDOMAIN,
            XEN_DOMCTL_GETDOMAININFO,
            XEN_DOMCTL_MAX_MEM,
            XEN_DOMCTL_MAX_VCPUS,
            XEN_DOMCTL_SETVCPUCONTEXT,
            XEN_DOMCTL_GETVCPUCONTEXT,
            XEN_DOMCTL_HYPERCALL_INIT,
            XEN_DOMCTL_SCHEDULER_OP,
            XEN_DOMCTL_SETDOMAINHANDLE,
            XEN_DOMCTL_SET_ADDRESS_SIZE,
            XEN_DOMCTL_GET_ADDRESS_SIZE,
        ],
    ),
    // Answers -EOPNOTSUPP to everything, as Xen 4.17 without `vpmu=`.
    whole(nr::XENPMU_OP),
];

/// What hv implements of `hypercall` (`None`: it is `-ENOSYS`).
pub const fn support(hypercall: u64) -> Option<Support> {
    let mut i = 0;
    while i < IMPLEMENTED.len() {
        if IMPLEMENTED[i].hypercall == hypercall {
            return Some(IMPLEMENTED[i].support);
        }
        i += 1;
    }
    None
}

/// The implemented sub-operations of `hypercall` as a bit mask (all ones
/// for one without sub-operations, none for one hv does not dispatch).
pub const fn sub_op_mask(hypercall: u64) -> OpMask {
    match support(hypercall) {
        Some(Support::Whole) => OpMask::MAX,
        Some(Support::SubOps(m)) => m,
        None => 0,
    }
}

/// Whether command `cmd` is in `mask` ([`sub_op_mask`],
/// [`refused_mask`]).
#[inline(always)]
pub const fn has_sub_op(mask: OpMask, cmd: u32) -> bool {
    cmd < OpMask::BITS && mask & (1 << cmd) != 0
}

/// The commands of `hypercall` that Xen defines (`guest-abi`'s list) and
/// hv does not implement: the dispatcher answers them `-ENOSYS` before
/// the handler runs, so the handler cannot implement one behind the list's
/// back. Commands Xen does not define are in no list and reach the
/// handler, which refuses them with `-ENOSYS` as Xen does; so where hv
/// implements every defined command (`xen_version`, `mmu_update`) the
/// check costs nothing.
pub const fn refused_mask(hypercall: u64) -> OpMask {
    let Some(ops) = sub_ops::of(hypercall) else {
        return 0;
    };
    let mut defined: OpMask = 0;
    let mut i = 0;
    while i < ops.ops.len() {
        defined |= 1 << ops.ops[i].nr;
        i += 1;
    }
    defined & !sub_op_mask(hypercall)
}

/// Whether `dispatched` names exactly the hypercalls of [`IMPLEMENTED`]
/// (for the compile-time check next to the dispatch table).
pub const fn is_dispatch_list(dispatched: &[u64]) -> bool {
    if dispatched.len() != IMPLEMENTED.len() {
        return false;
    }
    let mut i = 0;
    while i < dispatched.len() {
        if support(dispatched[i]).is_none() {
            return false;
        }
        let mut j = 0;
        while j < i {
            if dispatched[j] == dispatched[i] {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_real_sorted_and_match_the_sub_operation_lists() {
        for pair in IMPLEMENTED.windows(2) {
            assert!(pair[0].hypercall < pair[1].hypercall);
        }
        for i in IMPLEMENTED {
            assert!(nr::info(i.hypercall).is_some(), "{}", i.hypercall);
            let listed = sub_ops::of(i.hypercall);
            match (i.support, listed) {
                (Support::Whole, None) => {}
                (Support::SubOps(mask), Some(ops)) => {
                    assert_ne!(mask, 0, "{}: no sub-operation", i.hypercall);
                    for bit in 0..OpMask::BITS {
                        if has_sub_op(mask, bit) {
                            assert!(ops.get(bit).is_some(), "{}.{bit}", i.hypercall);
                        }
                    }
                }
                (s, l) => panic!("{}: {s:?} vs sub-operations {l:?}", i.hypercall),
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(sub_op_mask(nr::TMEM_OP), 0);
        assert_eq!(sub_op_mask(nr::IRET), OpMask::MAX);
        let sched = sub_op_mask(nr::SCHED_OP);
        assert!(has_sub_op(sched, SCHEDOP_YIELD) && !has_sub_op(sched, SCHEDOP_PIN_OVERRIDE));
        assert!(!has_sub_op(OpMask::MAX, 128));
        let domctl = sub_op_mask(nr::DOMCTL);
        assert!(has_sub_op(domctl, XEN_DOMCTL_MAX_VCPUS));
        assert!(has_sub_op(
            refused_mask(nr::DOMCTL),
            XEN_DOMCTL_SET_PAGING_MEMPOOL_SIZE
        ));
        assert_eq!(refused_mask(nr::XEN_VERSION), 0);
        assert_eq!(refused_mask(nr::IRET), 0);
        let refused = refused_mask(nr::SCHED_OP);
        assert!(has_sub_op(refused, SCHEDOP_PIN_OVERRIDE) && !has_sub_op(refused, SCHEDOP_YIELD));
        assert!(!has_sub_op(refused, 99));
        let all: Vec<u64> = IMPLEMENTED.iter().map(|i| i.hypercall).collect();
        assert!(is_dispatch_list(&all));
        assert!(!is_dispatch_list(&all[1..]));
        let mut twice = all.clone();
        twice[1] = twice[0];
        assert!(!is_dispatch_list(&twice));
    }
}
