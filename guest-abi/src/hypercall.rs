//! Hypercall numbers, the raw x86_64 calling convention, and typed wrappers.
//!
//! The numbers come from one list ([`ALL`]), which also feeds `hv`'s dispatch
//! table and the README's conformance table, so a hypercall cannot be known
//! to one and missing from another.
//!
//! # Calling convention (x86_64 PV)
//!
//! A guest kernel enters the hypervisor with `syscall`: `rax` holds the
//! hypercall number, the arguments are in `rdi`, `rsi`, `rdx`, `r10` and `r8`,
//! and the result comes back in `rax` (a non-negative value, or `-errno`, see
//! [`crate::errno`]). `rcx` and `r11` are destroyed by `syscall` itself. Xen's
//! documented contract preserves every other register, but debug builds of
//! Xen deliberately scribble over the argument registers, so the wrappers
//! here declare all five as clobbered and never rely on them surviving.
//!
//! The hypercall page that the hypervisor writes into the guest holds one
//! 32-byte stub per number ([`HYPERCALL_STUB_SIZE`]) which saves `rcx`/`r11`
//! and issues the same `syscall`; `hypercall_page_call*` go through it, the
//! plain `hypercall*` functions issue `syscall` inline. Both are valid on Xen
//! and on `hv`. The typed wrappers use the inline form, so they work even in
//! a guest that declares no hypercall page.

/// One row of the hypercall list: what the conformance table and the
/// dispatcher know about a hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HypercallInfo {
    /// The hypercall number (`__HYPERVISOR_*` in `xen.h`).
    pub nr: u64,
    /// Xen's name for it, without the `__HYPERVISOR_` prefix.
    pub name: &'static str,
    /// What the C prototype's arguments are, in register order.
    pub args: &'static str,
    /// One line saying what it does.
    pub doc: &'static str,
    /// What each argument means and which `guest-abi` type it points to.
    pub args_doc: &'static str,
}

/// Declares every hypercall once: the `pub const` numbers and [`ALL`].
macro_rules! hypercalls {
    ($( $nr:literal $konst:ident $name:ident ($args:literal) $doc:literal $args_doc:literal; )*) => {
        $(
            #[doc = $doc]
            #[doc = ""]
            #[doc = concat!("Arguments: `", $args, "`.")]
            #[doc = ""]
            #[doc = $args_doc]
            pub const $konst: u64 = $nr;
        )*

        /// Every hypercall number Xen 4.17 defines for x86_64, in numeric order.
        pub const ALL: &[HypercallInfo] = &[
            $( HypercallInfo {
                nr: $nr,
                name: stringify!($name),
                args: $args,
                doc: $doc,
                args_doc: $args_doc,
            }, )*
        ];
    };
}

hypercalls! {
    0 SET_TRAP_TABLE set_trap_table ("const trap_info_t *table")
        "Install the guest's virtual IDT (a zero-vector-terminated trap_info list)."
        "`table`: guest pointer to a `xen::TrapInfo` array ended by a zero `address` entry (a null pointer clears the table).";
    1 MMU_UPDATE mmu_update ("mmu_update_t *reqs, unsigned count, unsigned *done, domid_t dom")
        "Batch of validated page-table entry writes and M2P updates."
        "`reqs`: guest pointer to `count` `xen::MmuUpdate`s; `done`: guest pointer (or null) receiving how many were applied; `dom`: `DOMID_SELF` or the domain owning the frames (privileged).";
    2 SET_GDT set_gdt ("xen_pfn_t *frames, unsigned entries")
        "Install a guest GDT built from validated frames."
        "`frames`: guest pointer to the frames of the GDT (`xen::XenPfn`s); `entries`: descriptors (at most `FIRST_RESERVED_GDT_ENTRY`).";
    3 STACK_SWITCH stack_switch ("unsigned long ss, unsigned long esp")
        "Set the kernel stack used when bouncing from guest user to guest kernel."
        "`ss`: kernel stack selector; `esp`: kernel stack pointer used on the next bounce from user mode.";
    4 SET_CALLBACKS set_callbacks ("unsigned long event, unsigned long failsafe, unsigned long syscall")
        "Register the event, failsafe and syscall callback addresses."
        "`event`, `failsafe`, `syscall`: entry addresses (superseded by `callback_op`, see `callback::CallbackRegister`).";
    5 FPU_TASKSWITCH fpu_taskswitch ("int set")
        "Set or clear the virtual CR0.TS flag."
        "`set`: non-zero sets CR0.TS, zero clears it.";
    6 SCHED_OP_COMPAT sched_op_compat ("int cmd, unsigned long arg")
        "Pre-3.0.2 scheduler operations (superseded by sched_op)."
        "`cmd`: `SCHEDOP_*` (yield, block, shutdown only); `arg`: the shutdown reason for `SCHEDOP_shutdown`.";
    7 PLATFORM_OP platform_op ("xen_platform_op_t *op")
        "Privileged platform operations (time, microcode, power management)."
        "`op`: guest pointer to a `xen_platform_op` (not mirrored; dom0 only).";
    8 SET_DEBUGREG set_debugreg ("int reg, unsigned long value")
        "Write a virtual debug register."
        "`reg`: 0-7; `value`: the new DR value (validated).";
    9 GET_DEBUGREG get_debugreg ("int reg")
        "Read a virtual debug register."
        "`reg`: 0-7. Returns the value.";
    10 UPDATE_DESCRIPTOR update_descriptor ("uint64_t ma, uint64_t desc")
        "Write one validated GDT/LDT descriptor at a machine address."
        "`ma`: machine address of the 8-byte descriptor slot in a GDT/LDT frame; `desc`: the descriptor.";
    12 MEMORY_OP memory_op ("unsigned cmd, void *arg")
        "Memory reservation, exchange, and physmap operations."
        "`cmd`: `memory::XENMEM_*`; `arg`: guest pointer to that sub-op's struct (`memory::XenMemoryReservation`, `XenMemoryMap`, ...). The high bits of `cmd` carry the restart point of a preempted call.";
    13 MULTICALL multicall ("multicall_entry_t *calls, unsigned count")
        "Issue a batch of hypercalls in one entry."
        "`calls`: guest pointer to `count` `xen::MulticallEntry`s; each `result` is written back.";
    14 UPDATE_VA_MAPPING update_va_mapping ("unsigned long va, uint64_t pte, unsigned long flags")
        "Write the L1 entry mapping a virtual address, with optional TLB flush."
        "`va`: the virtual address; `pte`: the new L1 entry; `flags`: `UVMF_*`, ORed with a guest pointer to a vCPU bitmap for `UVMF_MULTI`.";
    15 SET_TIMER_OP set_timer_op ("uint64_t timeout")
        "Arm (or with 0, cancel) the vCPU's single-shot timer, in system-time ns."
        "`timeout`: absolute system time in ns; 0 cancels.";
    16 EVENT_CHANNEL_OP_COMPAT event_channel_op_compat ("evtchn_op_t *op")
        "Pre-3.0.2 event-channel operations (superseded by event_channel_op)."
        "`op`: guest pointer to an `event_channel::EvtchnOp`.";
    17 XEN_VERSION xen_version ("int cmd, void *arg")
        "Version, capability and feature queries (XENVER_*)."
        "`cmd`: `version::XENVER_*`; `arg`: guest pointer to that command's buffer (null for `XENVER_version`).";
    18 CONSOLE_IO console_io ("int cmd, int count, char *buffer")
        "Read from or write to the hypervisor's console."
        "`cmd`: `console::CONSOLEIO_*`; `count`: bytes; `buffer`: guest pointer to the bytes.";
    19 PHYSDEV_OP_COMPAT physdev_op_compat ("physdev_op_t *op")
        "Pre-3.0.2 physical-device operations (superseded by physdev_op)."
        "`op`: guest pointer to a `physdev::PhysdevOp`.";
    20 GRANT_TABLE_OP grant_table_op ("unsigned cmd, void *args, unsigned count")
        "Grant-table setup, mapping, copying and transfer."
        "`cmd`: `grant_table::GNTTABOP_*`; `args`: guest pointer to `count` structs of that sub-op (`GnttabMapGrantRef`, `GnttabCopy`, ...).";
    21 VM_ASSIST vm_assist ("unsigned cmd, unsigned type")
        "Enable or disable an optional hypervisor assist (VMASST_TYPE_*)."
        "`cmd`: `VMASST_CMD_*`; `type`: `VMASST_TYPE_*`.";
    22 UPDATE_VA_MAPPING_OTHERDOMAIN update_va_mapping_otherdomain ("unsigned long va, uint64_t pte, unsigned long flags, domid_t dom")
        "update_va_mapping with the PTE's frame owned by another domain."
        "As `update_va_mapping`, plus `dom`: the domain owning the frame the PTE maps.";
    23 IRET iret ("(frame on the guest stack)")
        "Return from a bounced exception or event; does not return to the caller."
        "No register arguments: the guest stack holds an `xen::IretContext`.";
    24 VCPU_OP vcpu_op ("int cmd, unsigned vcpuid, void *arg")
        "Bring vCPUs up and down, register vcpu_info, runstate and timers."
        "`cmd`: `vcpu::VCPUOP_*`; `vcpuid`: the target vCPU; `arg`: guest pointer to that sub-op's struct (`vcpu::VcpuRegisterRunstateMemoryArea`, `xen::VcpuGuestContext`, ...) or null.";
    25 SET_SEGMENT_BASE set_segment_base ("unsigned which, unsigned long base")
        "Set the FS base, the user or kernel GS base, or the user GS selector."
        "`which`: `arch::SEGBASE_*`; `base`: the base address (or selector for `SEGBASE_GS_USER_SEL`).";
    26 MMUEXT_OP mmuext_op ("mmuext_op_t *ops, unsigned count, unsigned *done, domid_t dom")
        "Pin and unpin page tables, switch base pointers, flush TLBs, set the LDT."
        "`ops`: guest pointer to `count` `xen::MmuextOp`s; `done`: guest pointer (or null) for the number applied; `dom`: `DOMID_SELF` or a foreign domain (privileged).";
    27 XSM_OP xsm_op ("void *op")
        "Security-module (XSM/FLASK) operations."
        "`op`: guest pointer to an XSM/FLASK operation (not mirrored).";
    28 NMI_OP nmi_op ("unsigned cmd, void *arg")
        "Register an NMI callback."
        "`cmd`: `nmi::XENNMI_*`; `arg`: guest pointer to an `nmi::XennmiCallback` (register) or null.";
    29 SCHED_OP sched_op ("int cmd, void *arg")
        "Yield, block, shut down, poll, and other scheduler operations (SCHEDOP_*)."
        "`cmd`: `sched::SCHEDOP_*`; `arg`: guest pointer to that sub-op's struct (`sched::SchedShutdown`, `SchedPoll`, ...) or null.";
    30 CALLBACK_OP callback_op ("int cmd, const void *arg")
        "Register or unregister one event/failsafe/syscall/NMI callback."
        "`cmd`: `callback::CALLBACKOP_*`; `arg`: guest pointer to `callback::CallbackRegister` or `CallbackUnregister`.";
    31 XENOPROF_OP xenoprof_op ("int op, void *arg")
        "System-wide profiling (xenoprof)."
        "`op`: `XENOPROF_*`; `arg`: guest pointer to its struct (not mirrored).";
    32 EVENT_CHANNEL_OP event_channel_op ("int cmd, void *arg")
        "Allocate, bind, send on, and close event channels (EVTCHNOP_*)."
        "`cmd`: `event_channel::EVTCHNOP_*`; `arg`: guest pointer to that sub-op's struct (`EvtchnAllocUnbound`, `EvtchnSend`, ...).";
    33 PHYSDEV_OP physdev_op ("int cmd, void *arg")
        "Physical IRQs, I/O-privilege level and port access, PCI device reporting."
        "`cmd`: `physdev::PHYSDEVOP_*`; `arg`: guest pointer to that sub-op's struct (`PhysdevEoi`, `PhysdevSetIopl`, `PhysdevMapPirq`, ...).";
    34 HVM_OP hvm_op ("unsigned long op, void *arg")
        "HVM parameters and operations (mostly for HVM guests and their tools)."
        "`op`: `HVMOP_*`; `arg`: guest pointer to its struct (not mirrored).";
    35 SYSCTL sysctl ("xen_sysctl_t *op")
        "Host-wide toolstack operations (privileged)."
        "`op`: guest pointer to a `sysctl::XenSysctl` with `interface_version` = `XEN_SYSCTL_INTERFACE_VERSION`.";
    36 DOMCTL domctl ("xen_domctl_t *op")
        "Per-domain toolstack operations: create, configure, pause, destroy (privileged)."
        "`op`: guest pointer to a `domctl::XenDomctl` with `interface_version` = `XEN_DOMCTL_INTERFACE_VERSION`.";
    37 KEXEC_OP kexec_op ("unsigned long op, void *arg")
        "Load and execute a kexec or crash kernel."
        "`op`: `KEXEC_CMD_*`; `arg`: guest pointer to its struct (not mirrored).";
    38 TMEM_OP tmem_op ("tmem_op_t *op")
        "Transcendent memory (removed; always fails)."
        "`op`: guest pointer to a `tmem_op` (the interface is gone; fails with `-ENOSYS`).";
    39 ARGO_OP argo_op ("unsigned cmd, void *arg1, void *arg2, unsigned long arg3, unsigned long arg4")
        "Argo hypervisor-mediated inter-domain messaging."
        "`cmd`: `XEN_ARGO_OP_*`; `arg1`-`arg4`: per-command pointers and values (not mirrored).";
    40 XENPMU_OP xenpmu_op ("unsigned op, void *arg")
        "Virtual performance-monitoring unit."
        "`op`: `XENPMU_*`; `arg`: guest pointer to a `xen_pmu_params` (not mirrored).";
    41 DM_OP dm_op ("domid_t dom, unsigned nr_bufs, xen_dm_op_buf_t *bufs")
        "Device-model operations on behalf of an HVM guest."
        "`dom`: the target HVM domain; `bufs`: guest pointer to `nr_bufs` `xen_dm_op_buf`s (not mirrored).";
    42 HYPFS_OP hypfs_op ("unsigned cmd, const char *path, unsigned long path_len, void *arg, unsigned long arg_len")
        "Read and write the hypervisor file system."
        "`cmd`: `XEN_HYPFS_OP_*`; `path`/`path_len`: the node's path; `arg`/`arg_len`: the data buffer.";
    48 MCA mca ("xen_mc_t *op")
        "Machine-check architecture operations (x86 arch hypercall 0)."
        "`op`: guest pointer to an `xen_mc` (not mirrored; dom0 only).";
}

/// Size of the table of hypercall numbers: every valid number is below this.
pub const NR_HYPERCALLS: u64 = 64;

/// Bytes per entry in the hypercall page: entry `nr` starts at `page + nr * 32`.
pub const HYPERCALL_STUB_SIZE: u64 = 32;

/// Looks a hypercall up by number.
///
/// Returns `None` for numbers Xen 4.17 does not define (which must fail
/// with `-ENOSYS`).
pub fn info(nr: u64) -> Option<&'static HypercallInfo> {
    ALL.iter().find(|h| h.nr == nr)
}

/// The 32 bytes Xen 4.17 writes at entry `nr` of a 64-bit PV guest's
/// hypercall page.
///
/// Ordinary entries save `rcx` and `r11` around the `syscall`, so a caller
/// of the page only loses `rax`. The `iret` entry pushes `rcx`, `r11` and
/// `rax` as the frame that hypercall consumes and never returns. The rest of
/// each entry is `int3`, so a stray jump into it traps.
pub fn hypercall_page_stub(nr: u8) -> [u8; 32] {
    let mut stub = [0xcc_u8; 32];
    let code: &[u8] = if u64::from(nr) == IRET {
        // push rcx; push r11; push rax; mov eax, 23; syscall
        &[0x51, 0x41, 0x53, 0x50, 0xb8, nr, 0, 0, 0, 0x0f, 0x05]
    } else {
        // push rcx; push r11; mov eax, nr; syscall; pop r11; pop rcx; ret
        &[
            0x51, 0x41, 0x53, 0xb8, nr, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3,
        ]
    };
    stub[..code.len()].copy_from_slice(code);
    stub
}

#[cfg(target_os = "none")]
mod raw;
#[cfg(target_os = "none")]
pub use raw::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_unique_and_in_range() {
        for pair in ALL.windows(2) {
            assert!(
                pair[0].nr < pair[1].nr,
                "{} vs {}",
                pair[0].name,
                pair[1].name
            );
        }
        assert!(ALL.iter().all(|h| h.nr < NR_HYPERCALLS));
        assert_eq!(info(CONSOLE_IO).map(|h| h.name), Some("console_io"));
        assert_eq!(info(11), None);
    }

    #[test]
    fn stub_matches_observed_bytes() {
        let s = hypercall_page_stub(18);
        assert_eq!(
            &s[..14],
            &[0x51, 0x41, 0x53, 0xb8, 18, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]
        );
        assert!(s[14..].iter().all(|&b| b == 0xcc));
        let i = hypercall_page_stub(23);
        assert_eq!(
            &i[..11],
            &[0x51, 0x41, 0x53, 0x50, 0xb8, 23, 0, 0, 0, 0x0f, 0x05]
        );
    }
}
