//! Hypercall numbers, the raw x86_64 calling convention, and typed wrappers.
//!
//! Every hypercall is declared once, in `hypercall_list!`: number, name, C
//! arguments, documentation, the typed wrapper's Rust parameters (or why
//! there is none) and its notable errors. That list yields the `pub const`
//! numbers `hv` dispatches on, [`ALL`] (which `cargo xtask
//! conformance-table` turns into the README's table), [`TYPED`] and
//! [`EXCLUDED`], one [`Signature`] per hypercall a 64-bit PV guest can make
//! (the argument types `hv`'s dispatcher decodes the registers as, see
//! [`FromRegs`]), and, on the guest target, one typed `unsafe fn` per
//! such hypercall in the `typed` module. The sub-operations of the
//! hypercalls that multiplex on a command are listed next to it, in
//! [`sub_ops`]. So a
//! hypercall cannot be known to one of them and missing from another; a host
//! test checks that every row has a wrapper or a reason, and that each
//! wrapper's parameters match its C prototype in number and pointer-ness.
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
//! and on `hv`. The typed wrappers (here and in `typed`) use the inline
//! form, so they work even in a guest that declares no hypercall page.

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

/// The one list of hypercalls. `hypercall_list!(m)` hands every row to
/// macro `m`; [`hypercalls!`] makes the numbers, [`ALL`], [`TYPED`] and
/// [`EXCLUDED`] from it, and `typed.rs` the guest wrappers.
///
/// A row is `NR CONST name ("C arguments") "doc" "argument doc" [wrapper]
/// "errors";` where `[wrapper]` is either `[fn(arg: RustType, ...)]` (the
/// typed wrapper's parameters, in register order; `-> !` for a hypercall
/// that does not return) or `[excluded "why"]` for a hypercall a 64-bit PV
/// guest cannot make. The errors are the notable `-errno` values Xen 4.17
/// returns, as the public headers and Xen's handlers give them.
///
/// Argument types follow the C prototypes of Xen's
/// `xen/include/hypercall-defs.c`: `unsigned int` is `u32`; an `int` that
/// carries a command is `u32` (the commands are small and non-negative, and
/// Xen reads only the register's low 32 bits for an `int`), one that
/// carries a number is `i32`; `unsigned long`, `uint64_t` and `s_time_t`
/// are `u64`; `domid_t` is `u16`; `void *` is `*mut u8`, `const void *`
/// and `const char *` are `*const u8`, and a pointer to a mirrored struct
/// points to the `guest-abi` type.
macro_rules! hypercall_list {
    ($m:ident) => {
        $m! {
            0 SET_TRAP_TABLE set_trap_table ("const trap_info_t *table")
                "Install the guest's virtual IDT (a zero-vector-terminated trap_info list)."
                "`table`: guest pointer to a `xen::TrapInfo` array ended by a zero `address` entry (a null pointer clears the table)."
                [fn(table: *const TrapInfo)]
                "`-EFAULT` if an entry cannot be read, `-EINVAL` for a non-canonical handler address (entries before it stay installed).";
            1 MMU_UPDATE mmu_update ("mmu_update_t *reqs, unsigned count, unsigned *pdone, unsigned foreigndom")
                "Batch of validated page-table entry writes and M2P updates."
                "`reqs`: guest pointer to `count` `xen::MmuUpdate`s; `pdone`: guest pointer (or null) receiving how many were applied; `foreigndom`: `DOMID_SELF` or the domain owning the frames (privileged), a `domid_t` in the low 16 bits."
                [fn(reqs: *const MmuUpdate, count: u32, pdone: *mut u32, foreigndom: u32)]
                "`-EINVAL` for an unknown command or an entry that fails validation, `-EFAULT` for an unreadable request or unwritable `pdone`, `-ESRCH` or `-EPERM` for a foreign domain that does not exist or may not be named. On failure `*pdone` says how many requests were applied.";
            2 SET_GDT set_gdt ("xen_pfn_t *frames, unsigned entries")
                "Install a guest GDT built from validated frames."
                "`frames`: guest pointer to the frames of the GDT (`xen::XenPfn`s); `entries`: descriptors (at most `FIRST_RESERVED_GDT_ENTRY`)."
                [fn(frames: *const XenPfn, entries: u32)]
                "`-EINVAL` for too many entries or a frame that cannot become a descriptor page, `-EFAULT` if `frames` cannot be read.";
            3 STACK_SWITCH stack_switch ("unsigned long ss, unsigned long esp")
                "Set the kernel stack used when bouncing from guest user to guest kernel."
                "`ss`: kernel stack selector; `esp`: kernel stack pointer used on the next bounce from user mode."
                [fn(ss: u64, sp: u64)]
                "None: always returns 0 (a selector with RPL 0 is fixed up to the guest kernel's ring).";
            4 SET_CALLBACKS set_callbacks ("unsigned long event, unsigned long failsafe, unsigned long syscall")
                "Register the event, failsafe and syscall callback addresses."
                "`event`, `failsafe`, `syscall`: entry addresses (superseded by `callback_op`, see `callback::CallbackRegister`)."
                [fn(event: u64, failsafe: u64, syscall: u64)]
                "None: always returns 0, even if an address is refused (use `callback_op` to learn that).";
            5 FPU_TASKSWITCH fpu_taskswitch ("int set")
                "Set or clear the virtual CR0.TS flag."
                "`set`: non-zero sets CR0.TS, zero clears it."
                [fn(set: i32)]
                "None: always returns 0.";
            6 SCHED_OP_COMPAT sched_op_compat ("int cmd, unsigned long arg")
                "Pre-3.0.2 scheduler operations (superseded by sched_op)."
                "`cmd`: `SCHEDOP_*` (yield, block, shutdown only); `arg`: the shutdown reason for `SCHEDOP_shutdown`."
                [fn(cmd: u32, arg: u64)]
                "`-ENOSYS` for any other command; `SCHEDOP_shutdown` does not return.";
            7 PLATFORM_OP platform_op ("xen_platform_op_t *op")
                "Privileged platform operations (time, microcode, power management)."
                "`op`: guest pointer to a `xen_platform_op` (not mirrored; dom0 only)."
                [fn(op: *mut u8)]
                "`-EPERM` for an unprivileged caller, `-EACCES` for a wrong `interface_version`, `-EFAULT`, `-ENOSYS` for an unknown command; see Xen's `public/platform.h` for the rest.";
            8 SET_DEBUGREG set_debugreg ("int reg, unsigned long value")
                "Write a virtual debug register."
                "`reg`: 0-7; `value`: the new DR value (validated)."
                [fn(reg: i32, value: u64)]
                "`-ENODEV` for a register number that names no register (4 and 5 with CR4.DE set), `-EPERM` for a breakpoint address in the hypervisor's range or a DR7 the guest may not set, `-EINVAL` for DR6/DR7 bits above 31.";
            9 GET_DEBUGREG get_debugreg ("int reg")
                "Read a virtual debug register."
                "`reg`: 0-7. Returns the value."
                [fn(reg: i32)]
                "`-ENODEV` for a register number that names no register. The success value is the register's contents.";
            10 UPDATE_DESCRIPTOR update_descriptor ("uint64_t ma, uint64_t desc")
                "Write one validated GDT/LDT descriptor at a machine address."
                "`ma`: machine address of the 8-byte descriptor slot in a GDT/LDT frame; `desc`: the descriptor."
                [fn(ma: u64, desc: u64)]
                "`-EINVAL` for a misaligned address, a frame that is not this domain's descriptor page, or a descriptor that fails validation.";
            12 MEMORY_OP memory_op ("unsigned long cmd, void *arg")
                "Memory reservation, exchange, and physmap operations."
                "`cmd`: `memory::XENMEM_*`; `arg`: guest pointer to that sub-op's struct (`memory::XenMemoryReservation`, `XenMemoryMap`, ...). The high bits of `cmd` carry the restart point of a preempted call."
                [fn(cmd: u64, arg: *mut u8)]
                "`-ENOSYS` for an unknown command, `-EFAULT`, `-EINVAL`, `-ESRCH` or `-EPERM` for a foreign domain; the reservation commands return how many extents they processed, which may be fewer than asked. See Xen's `public/memory.h` per command.";
            13 MULTICALL multicall ("multicall_entry_t *calls, unsigned count")
                "Issue a batch of hypercalls in one entry."
                "`calls`: guest pointer to `count` `xen::MulticallEntry`s; each `result` is written back."
                [fn(calls: *mut MulticallEntry, nr: u32)]
                "`-EFAULT` if the list cannot be read or written. Each call's own result goes to its entry's `result`; a nested `multicall` gets `-EINVAL` there.";
            14 UPDATE_VA_MAPPING update_va_mapping ("unsigned long va, uint64_t pte, unsigned long flags")
                "Write the L1 entry mapping a virtual address, with optional TLB flush."
                "`va`: the virtual address; `pte`: the new L1 entry; `flags`: `UVMF_*`, ORed with a guest pointer to a vCPU bitmap for `UVMF_MULTI`."
                [fn(va: u64, val: u64, flags: u64)]
                "`-EINVAL` for a `va` with no L1 table or a PTE that fails validation, `-EFAULT` for an unreadable `UVMF_MULTI` bitmap.";
            15 SET_TIMER_OP set_timer_op ("uint64_t timeout")
                "Arm (or with 0, cancel) the vCPU's single-shot timer, in system-time ns."
                "`timeout`: absolute system time in ns; 0 cancels."
                [fn(timeout: u64)]
                "None: always returns 0 (a deadline in the past fires at once).";
            16 EVENT_CHANNEL_OP_COMPAT event_channel_op_compat ("evtchn_op_t *op")
                "Pre-3.0.2 event-channel operations (superseded by event_channel_op)."
                "`op`: guest pointer to an `event_channel::EvtchnOp`."
                [fn(op: *mut EvtchnOp)]
                "As `event_channel_op`, plus `-EFAULT` if `op` cannot be read or written back.";
            17 XEN_VERSION xen_version ("int cmd, void *arg")
                "Version, capability and feature queries (XENVER_*)."
                "`cmd`: `version::XENVER_*`; `arg`: guest pointer to that command's buffer (null for `XENVER_version`)."
                [fn(cmd: u32, arg: *mut u8)]
                "`-ENOSYS` for an unknown command, `-EFAULT` for an unwritable buffer, `-EINVAL` for a bad `XENVER_get_features` index. `XENVER_version` returns `major << 16 | minor`.";
            18 CONSOLE_IO console_io ("unsigned cmd, unsigned count, char *buffer")
                "Read from or write to the hypervisor's console."
                "`cmd`: `console::CONSOLEIO_*`; `count`: bytes; `buffer`: guest pointer to the bytes."
                [fn(cmd: u32, count: u32, buffer: *mut u8)]
                "`-EPERM` where the domain may not use the console, `-EFAULT` for an unreadable or unwritable buffer, `-ENOSYS` for an unknown command. `CONSOLEIO_read` returns the bytes read.";
            19 PHYSDEV_OP_COMPAT physdev_op_compat ("physdev_op_t *op")
                "Pre-3.0.2 physical-device operations (superseded by physdev_op)."
                "`op`: guest pointer to a `physdev::PhysdevOp`."
                [fn(op: *mut PhysdevOp)]
                "As `physdev_op`, plus `-EFAULT` if `op` cannot be read or written back.";
            20 GRANT_TABLE_OP grant_table_op ("unsigned cmd, void *args, unsigned count")
                "Grant-table setup, mapping, copying and transfer."
                "`cmd`: `grant_table::GNTTABOP_*`; `args`: guest pointer to `count` structs of that sub-op (`GnttabMapGrantRef`, `GnttabCopy`, ...)."
                [fn(cmd: u32, uop: *mut u8, count: u32)]
                "`-ENOSYS` for an unknown command, `-EFAULT`, `-EINVAL` for a count that is too large. Most per-entry failures are reported in each struct's `status` (`GNTST_*`), not here.";
            21 VM_ASSIST vm_assist ("unsigned cmd, unsigned type")
                "Enable or disable an optional hypervisor assist (VMASST_TYPE_*)."
                "`cmd`: `VMASST_CMD_*`; `type`: `VMASST_TYPE_*`."
                [fn(cmd: u32, type_: u32)]
                "`-EINVAL` for an assist this guest type may not use (checked first), `-ENOSYS` for an unknown command.";
            22 UPDATE_VA_MAPPING_OTHERDOMAIN update_va_mapping_otherdomain ("unsigned long va, uint64_t pte, unsigned long flags, domid_t dom")
                "update_va_mapping with the PTE's frame owned by another domain."
                "As `update_va_mapping`, plus `dom`: the domain owning the frame the PTE maps."
                [fn(va: u64, val: u64, flags: u64, domid: u16)]
                "As `update_va_mapping`, plus `-ESRCH` or `-EPERM` for a domain that does not exist or may not be named.";
            23 IRET iret ("(frame on the guest stack)")
                "Return from a bounced exception or event; does not return to the caller."
                "No register arguments: the guest stack holds an `xen::IretContext`."
                [fn(frame: *const IretContext) -> !]
                "None: it does not return. A frame the hypervisor cannot read crashes the domain.";
            24 VCPU_OP vcpu_op ("int cmd, unsigned vcpuid, void *arg")
                "Bring vCPUs up and down, register vcpu_info, runstate and timers."
                "`cmd`: `vcpu::VCPUOP_*`; `vcpuid`: the target vCPU; `arg`: guest pointer to that sub-op's struct (`vcpu::VcpuRegisterRunstateMemoryArea`, `xen::VcpuGuestContext`, ...) or null."
                [fn(cmd: u32, vcpu: u32, arg: *mut u8)]
                "`-EINVAL` for a `vcpuid` at or above the domain's vCPU limit, `-ENOENT` for one that was never allocated, `-ENOSYS` for an unknown command, `-EFAULT`; see Xen's `public/vcpu.h` per command.";
            25 SET_SEGMENT_BASE set_segment_base ("unsigned which, unsigned long base")
                "Set the FS base, the user or kernel GS base, or the user GS selector."
                "`which`: `arch::SEGBASE_*`; `base`: the base address (or selector for `SEGBASE_GS_USER_SEL`)."
                [fn(which: u32, base: u64)]
                "`-EINVAL` for an unknown `which` or a non-canonical base.";
            26 MMUEXT_OP mmuext_op ("mmuext_op_t *ops, unsigned count, unsigned *pdone, unsigned foreigndom")
                "Pin and unpin page tables, switch base pointers, flush TLBs, set the LDT."
                "`ops`: guest pointer to `count` `xen::MmuextOp`s; `pdone`: guest pointer (or null) for the number applied; `foreigndom`: `DOMID_SELF` or a foreign domain (privileged), a `domid_t` in the low 16 bits."
                [fn(ops: *const MmuextOp, count: u32, pdone: *mut u32, foreigndom: u32)]
                "`-EINVAL` for an unknown command or a frame of the wrong type or owner, `-EFAULT`, `-ESRCH` or `-EPERM` for a foreign domain. On failure `*pdone` says how many operations were applied.";
            27 XSM_OP xsm_op ("void *op")
                "Security-module (XSM/FLASK) operations."
                "`op`: guest pointer to an XSM/FLASK operation (not mirrored)."
                [fn(op: *mut u8)]
                "`-ENOSYS` when no security module is active; FLASK's errors are in Xen's `public/xsm/flask_op.h`.";
            28 NMI_OP nmi_op ("unsigned cmd, void *arg")
                "Register an NMI callback."
                "`cmd`: `nmi::XENNMI_*`; `arg`: guest pointer to an `nmi::XennmiCallback` (register) or null."
                [fn(cmd: u32, arg: *mut u8)]
                "`-EINVAL` when registering anywhere but dom0's vCPU 0 or with a non-canonical handler, `-EFAULT`, `-ENOSYS` for an unknown command.";
            29 SCHED_OP sched_op ("int cmd, void *arg")
                "Yield, block, shut down, poll, and other scheduler operations (SCHEDOP_*)."
                "`cmd`: `sched::SCHEDOP_*`; `arg`: guest pointer to that sub-op's struct (`sched::SchedShutdown`, `SchedPoll`, ...) or null."
                [fn(cmd: u32, arg: *mut u8)]
                "`-ENOSYS` for an unknown command, `-EFAULT`, `-EINVAL` (for example an unknown shutdown reason or too many poll ports), `-EPERM` for `SCHEDOP_remote_shutdown` by an unprivileged domain. `SCHEDOP_shutdown` returns only for `SHUTDOWN_suspend`.";
            30 CALLBACK_OP callback_op ("int cmd, const void *arg")
                "Register or unregister one event/failsafe/syscall/NMI callback."
                "`cmd`: `callback::CALLBACKOP_*`; `arg`: guest pointer to `callback::CallbackRegister` or `CallbackUnregister`."
                [fn(cmd: u32, arg: *const u8)]
                "`-EINVAL` for a non-canonical address or a callback that cannot be unregistered, `-ENOSYS` for an unknown command or callback type, `-EFAULT`.";
            31 XENOPROF_OP xenoprof_op ("int op, void *arg")
                "System-wide profiling (xenoprof)."
                "`op`: `XENOPROF_*`; `arg`: guest pointer to its struct (not mirrored)."
                [fn(op: u32, arg: *mut u8)]
                "`-ENOSYS` when Xen is built without xenoprof; otherwise see Xen's `public/xenoprof.h`.";
            32 EVENT_CHANNEL_OP event_channel_op ("int cmd, void *arg")
                "Allocate, bind, send on, and close event channels (EVTCHNOP_*)."
                "`cmd`: `event_channel::EVTCHNOP_*`; `arg`: guest pointer to that sub-op's struct (`EvtchnAllocUnbound`, `EvtchnSend`, ...)."
                [fn(cmd: u32, arg: *mut u8)]
                "`-ENOSYS` for an unknown command, `-EINVAL` for a bad port or argument, `-ENOSPC` when no port is free, `-ESRCH` for an unknown remote domain, `-EPERM`, `-EFAULT`; see Xen's `public/event_channel.h` per command.";
            33 PHYSDEV_OP physdev_op ("int cmd, void *arg")
                "Physical IRQs, I/O-privilege level and port access, PCI device reporting."
                "`cmd`: `physdev::PHYSDEVOP_*`; `arg`: guest pointer to that sub-op's struct (`PhysdevEoi`, `PhysdevSetIopl`, `PhysdevMapPirq`, ...)."
                [fn(cmd: u32, arg: *mut u8)]
                "`-ENOSYS` for an unknown command, `-EINVAL` for a bad argument (for example an IOPL above 3), `-EPERM` for an operation the domain is not privileged for, `-EFAULT`.";
            34 HVM_OP hvm_op ("unsigned long op, void *arg")
                "HVM parameters and operations (mostly for HVM guests and their tools)."
                "`op`: `HVMOP_*`; `arg`: guest pointer to its struct (not mirrored)."
                [fn(op: u64, arg: *mut u8)]
                "`-ENOSYS` for an unknown command or a Xen built without HVM, `-EINVAL` for a target that is not an HVM domain, `-ESRCH`, `-EPERM`; see Xen's `public/hvm/hvm_op.h`.";
            35 SYSCTL sysctl ("xen_sysctl_t *op")
                "Host-wide toolstack operations (privileged)."
                "`op`: guest pointer to a `sysctl::XenSysctl` with `interface_version` = `XEN_SYSCTL_INTERFACE_VERSION`."
                [fn(op: *mut XenSysctl)]
                "`-EACCES` for a wrong `interface_version`, `-EPERM` for an unprivileged caller, `-EFAULT`, `-ENOSYS` for an unknown command.";
            36 DOMCTL domctl ("xen_domctl_t *op")
                "Per-domain toolstack operations: create, configure, pause, destroy (privileged)."
                "`op`: guest pointer to a `domctl::XenDomctl` with `interface_version` = `XEN_DOMCTL_INTERFACE_VERSION`."
                [fn(op: *mut XenDomctl)]
                "`-EACCES` for a wrong `interface_version`, `-EPERM` for an unprivileged caller, `-ESRCH` for a domain that does not exist, `-EFAULT`, `-ENOSYS` for an unknown command.";
            37 KEXEC_OP kexec_op ("unsigned long op, void *arg")
                "Load and execute a kexec or crash kernel."
                "`op`: `KEXEC_CMD_*`; `arg`: guest pointer to its struct (not mirrored)."
                [fn(op: u64, arg: *mut u8)]
                "`-ENOSYS` when Xen is built without kexec, `-EPERM` for a caller other than the hardware domain; see Xen's `public/kexec.h`.";
            38 TMEM_OP tmem_op ("tmem_op_t *op")
                "Transcendent memory (removed; always fails)."
                "`op`: guest pointer to a `tmem_op` (the interface is gone; fails with `-ENOSYS`)."
                [excluded "removed from Xen (4.13): no guest type has a handler, so it can only fail with -ENOSYS"]
                "";
            39 ARGO_OP argo_op ("unsigned cmd, void *arg1, void *arg2, unsigned long arg3, unsigned long arg4")
                "Argo hypervisor-mediated inter-domain messaging."
                "`cmd`: `XEN_ARGO_OP_*`; `arg1`-`arg4`: per-command pointers and values (not mirrored)."
                [fn(cmd: u32, arg1: *mut u8, arg2: *mut u8, arg3: u64, arg4: u64)]
                "`-ENOSYS` when Xen is built without Argo, `-EOPNOTSUPP` when Argo is not enabled at boot; see Xen's `public/argo.h` (for example `-EAGAIN` when a destination ring is full).";
            40 XENPMU_OP xenpmu_op ("unsigned op, void *arg")
                "Virtual performance-monitoring unit."
                "`op`: `XENPMU_*`; `arg`: guest pointer to a `xen_pmu_params` (not mirrored)."
                [fn(op: u32, arg: *mut u8)]
                "`-EOPNOTSUPP` when the vPMU is disabled, `-EINVAL` for a wrong `version` in the parameters, `-EFAULT`; see Xen's `public/pmu.h`.";
            41 DM_OP dm_op ("domid_t dom, unsigned nr_bufs, xen_dm_op_buf_t *bufs")
                "Device-model operations on behalf of an HVM guest."
                "`dom`: the target HVM domain; `bufs`: guest pointer to `nr_bufs` `xen_dm_op_buf`s (not mirrored)."
                [fn(domid: u16, nr_bufs: u32, bufs: *mut u8)]
                "`-ESRCH` for an unknown domain, `-EPERM` for a caller that may not act as its device model, `-EINVAL` for a target that is not HVM or malformed buffers, `-EFAULT`, `-EOPNOTSUPP` for an unknown operation; see Xen's `public/hvm/dm_op.h`.";
            42 HYPFS_OP hypfs_op ("unsigned cmd, const char *path, unsigned long path_len, void *arg, unsigned long arg_len")
                "Read and write the hypervisor file system."
                "`cmd`: `XEN_HYPFS_OP_*`; `path`/`path_len`: the node's path; `arg`/`arg_len`: the data buffer."
                [fn(cmd: u32, path: *const u8, path_len: u64, arg: *mut u8, arg_len: u64)]
                "`XEN_HYPFS_OP_get_version` returns the highest interface version. `-ENOBUFS` when a read's buffer is too small (the direntry then says the size needed), `-ENOSYS` when Xen is built without hypfs; see Xen's `public/hypfs.h`.";
            48 MCA mca ("xen_mc_t *op")
                "Machine-check architecture operations (x86 arch hypercall 0)."
                "`op`: guest pointer to an `xen_mc` (not mirrored; dom0 only)."
                [fn(op: *mut u8)]
                "`-EPERM` for an unprivileged caller, `-EACCES` for a wrong `interface_version`, `-EFAULT`; see Xen's `public/arch-x86/xen-mca.h`.";
        }
    };
}

/// Declares the numbers, [`ALL`], [`TYPED`] and [`EXCLUDED`] from the rows
/// of [`hypercall_list!`].
macro_rules! hypercalls {
    ($( $nr:literal $konst:ident $name:ident ($args:literal) $doc:literal $args_doc:literal
        $wrapper:tt $errors:literal; )*) => {
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

        split_wrappers!([] [] $( $name $wrapper )*);

        $( signature!($konst $wrapper); )*
    };
}

/// Hypercall number `NR`, as a type: [`Signature`] is implemented for the
/// numbers a 64-bit PV guest can call.
#[derive(Debug)]
pub struct Nr<const NR: u64>;

/// How a hypercall's argument registers read: `Args` is the tuple of its C
/// argument types in register order, as the list declares them, and
/// [`FromRegs`] turns the registers into the values a handler takes (low 32
/// bits for an `unsigned int`, ...). A hypercall with no `[fn ...]` row has
/// no `Signature`, so no handler can be attached to it.
pub trait Signature {
    /// The C argument types, as a tuple.
    type Args: FromRegs;
}

/// One row's [`Signature`] (none for an `[excluded ...]` row; none of the
/// register arguments for `iret`, which reads the guest stack).
macro_rules! signature {
    ($konst:ident [excluded $why:literal]) => {};
    ($konst:ident [fn($frame:ident: $ty:ty) -> !]) => {
        impl Signature for Nr<$konst> {
            type Args = ();
        }
    };
    ($konst:ident [fn($($arg:ident: $ty:ty),*)]) => {
        impl Signature for Nr<$konst> {
            type Args = ($($ty,)*);
        }
    };
}

/// Sorts the rows' `[fn(...)]` / `[excluded "why"]` markers into [`TYPED`]
/// and [`EXCLUDED`] (a token muncher: a repetition cannot drop elements).
macro_rules! split_wrappers {
    ([$( ($t:expr, $sig:expr) )*] [$( $e:expr )*]) => {
        /// The hypercalls that have a typed wrapper in `typed` (guest
        /// builds only), by name, in numeric order.
        pub const TYPED: &[&str] = &[$( $t, )*];

        /// Each typed wrapper's Rust parameters, as written in the list.
        pub const TYPED_SIGNATURES: &[(&str, &str)] = &[$( ($t, $sig), )*];

        /// The hypercalls of [`ALL`] with no typed wrapper, as (name, why).
        pub const EXCLUDED: &[(&str, &str)] = &[$( $e, )*];
    };
    ([$($t:tt)*] [$($e:tt)*] $name:ident [fn $($sig:tt)*] $($rest:tt)*) => {
        split_wrappers!(
            [$($t)* (stringify!($name), stringify!($($sig)*))] [$($e)*] $($rest)*
        );
    };
    ([$($t:tt)*] [$($e:tt)*] $name:ident [excluded $why:literal] $($rest:tt)*) => {
        split_wrappers!([$($t)*] [$($e)* (stringify!($name), $why)] $($rest)*);
    };
}

use crate::domctl::XenDomctl;
use crate::event_channel::EvtchnOp;
use crate::physdev::PhysdevOp;
use crate::sysctl::XenSysctl;
use crate::xen::{MmuUpdate, MmuextOp, MulticallEntry, TrapInfo, XenPfn};

hypercall_list!(hypercalls);

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

mod arg;
pub use arg::{FromArg, FromRegs, IntoArg};

pub mod sub_ops;

#[cfg(target_os = "none")]
mod raw;
#[cfg(target_os = "none")]
pub use raw::*;

#[cfg(target_os = "none")]
pub mod typed;

#[cfg(test)]
mod tests {
    use super::*;

    extern crate std;
    use std::vec::Vec;

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

    /// The hypercalls a 64-bit PV guest cannot make on Xen 4.17, with no
    /// typed wrapper: `xen/include/hypercall-defs.c` gives each of them no
    /// `pv64` handler.
    const EXPECTED_EXCLUDED: &[&str] = &["tmem_op"];

    #[test]
    fn every_hypercall_has_a_typed_wrapper_or_a_reason() {
        for h in ALL {
            let typed = TYPED.contains(&h.name);
            let excluded = EXCLUDED.iter().find(|(n, _)| *n == h.name);
            match (typed, excluded) {
                (true, None) => {}
                (false, Some((_, why))) => assert!(!why.is_empty(), "{}: no reason", h.name),
                (true, Some(_)) => panic!("{} is both typed and excluded", h.name),
                (false, None) => panic!("{} has no typed wrapper and no reason", h.name),
            }
        }
        assert_eq!(TYPED.len() + EXCLUDED.len(), ALL.len());
        let excluded: Vec<&str> = EXCLUDED.iter().map(|(n, _)| *n).collect();
        assert_eq!(excluded, EXPECTED_EXCLUDED);
    }

    #[test]
    fn typed_signatures_match_the_c_arguments() {
        assert_eq!(TYPED_SIGNATURES.len(), TYPED.len());
        for &(name, sig) in TYPED_SIGNATURES {
            let h = ALL.iter().find(|h| h.name == name).unwrap();
            let rust_args = sig.matches(':').count();
            assert!(rust_args <= 5, "{name}: more arguments than registers");
            if h.nr == IRET {
                // No register arguments: the wrapper takes the stack frame.
                assert_eq!((rust_args, sig.contains('!')), (1, true), "{name}: {sig}");
                continue;
            }
            let c_args = h.args.split(',').count();
            assert_eq!(rust_args, c_args, "{name}: `{sig}` vs `{}`", h.args);
            assert!(!sig.contains('!'), "{name} is declared not to return");
            // A pointer in C is a pointer in Rust, and the other way round.
            let c_ptrs = h.args.matches('*').count();
            let tight = sig.replace(' ', "");
            let rust_ptrs = tight.matches("*const").count() + tight.matches("*mut").count();
            assert_eq!(rust_ptrs, c_ptrs, "{name}: `{sig}` vs `{}`", h.args);
        }
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
