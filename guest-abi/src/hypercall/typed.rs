//! Typed wrappers for every hypercall a 64-bit PV guest can make, generated
//! from the one list in [`super`] (`hypercall_list!`).
//!
//! Each row of the list that carries `[fn(...)]` becomes an `unsafe fn`
//! here with those parameters, in register order (`rdi`, `rsi`, `rdx`,
//! `r10`, `r8`), each turned into its register value by
//! [`IntoArg`] (zero-extension for unsigned integers,
//! sign-extension for `i32`/`i64`, the exposed address for pointers). The
//! wrappers issue `syscall` inline ([`super::hypercall0`] ..
//! [`super::hypercall5`]), so they work without a hypercall page, and
//! return the hypervisor's `rax` as `i64`: 0 or a positive value on
//! success, `-errno` on failure (see [`crate::errno`]).
//!
//! The rows marked `[excluded "why"]` have no wrapper; [`super::EXCLUDED`]
//! lists them with the reason. For Xen 4.17 that is only `tmem_op`: every
//! other number in the list has a `pv64` handler in Xen's
//! `xen/include/hypercall-defs.c` (some only when Xen is built with the
//! feature, such as `xenoprof_op`, `kexec_op`, `argo_op`, `hypfs_op` or
//! `hvm_op`; those fail with `-ENOSYS` otherwise, which the wrapper
//! reports like any other error).
//!
//! `iret` is the one wrapper that does not return; see [`iret`].
//!
//! Pointers are raw and the functions `unsafe` on purpose: which structure
//! an argument points to often depends on the command in another argument,
//! so the wrappers cannot check it. The safe helpers next to the raw
//! instruction sequences (for example [`super::sched_op_yield`]) are the
//! place for checked, per-command forms.
//!
//! Only built for `target_os = "none"`.

use core::arch::asm;

use super::IntoArg;
use crate::domctl::XenDomctl;
use crate::event_channel::EvtchnOp;
use crate::physdev::PhysdevOp;
use crate::sysctl::XenSysctl;
use crate::xen::{IretContext, MmuUpdate, MmuextOp, MulticallEntry, TrapInfo, XenPfn};

/// Calls `hypercall0`..`hypercall5` by the number of arguments.
macro_rules! call {
    ($nr:expr;) => {
        super::hypercall0($nr)
    };
    ($nr:expr; $a1:expr) => {
        super::hypercall1($nr, $a1)
    };
    ($nr:expr; $a1:expr, $a2:expr) => {
        super::hypercall2($nr, $a1, $a2)
    };
    ($nr:expr; $a1:expr, $a2:expr, $a3:expr) => {
        super::hypercall3($nr, $a1, $a2, $a3)
    };
    ($nr:expr; $a1:expr, $a2:expr, $a3:expr, $a4:expr) => {
        super::hypercall4($nr, $a1, $a2, $a3, $a4)
    };
    ($nr:expr; $a1:expr, $a2:expr, $a3:expr, $a4:expr, $a5:expr) => {
        super::hypercall5($nr, $a1, $a2, $a3, $a4, $a5)
    };
}

/// One wrapper (or none) per row of the list.
macro_rules! typed_wrapper {
    ($konst:ident $name:ident $args:literal $doc:literal $args_doc:literal $errors:literal
        [excluded $why:literal]) => {};

    // A hypercall that takes its arguments from a frame on the guest stack
    // and does not return (`iret`).
    ($konst:ident $name:ident $args:literal $doc:literal $args_doc:literal $errors:literal
        [fn($frame:ident: $ty:ty) -> !]) => {
        #[doc = $doc]
        #[doc = ""]
        #[doc = concat!("`__HYPERVISOR_", stringify!($name), "` (C arguments: `", $args, "`).")]
        #[doc = ""]
        #[doc = "# Arguments"]
        #[doc = ""]
        #[doc = concat!("`", stringify!($frame), "`: the frame to resume, read by the hypervisor")]
        #[doc = "from the stack pointer. The wrapper points `rsp` at it and issues `syscall`"]
        #[doc = concat!("with `rax` = [`super::", stringify!($konst), "`]: the state the hypercall")]
        #[doc = "page's entry creates after pushing `rcx`, `r11` and `rax` onto a stack that"]
        #[doc = "already holds the other six fields. So the frame's `rax`, `r11` and `rcx` are"]
        #[doc = "what the resumed context gets, and no hypercall page is needed."]
        #[doc = ""]
        #[doc = "# Returns"]
        #[doc = ""]
        #[doc = $errors]
        #[doc = ""]
        #[doc = "# Safety"]
        #[doc = ""]
        #[doc = "Must run in PV guest kernel mode. The caller guarantees that:"]
        #[doc = ""]
        #[doc = concat!("1. `", stringify!($frame), "` points to a readable, 8-byte aligned [`IretContext`]")]
        #[doc = "   whose `rip`, `cs`, `rflags`, `rsp` and `ss` describe a context that is"]
        #[doc = "   sound to resume (Xen forces the RPL and IOPL bits it must);"]
        #[doc = "2. abandoning the current call stack is sound: nothing on it is dropped or"]
        #[doc = "   used again;"]
        #[doc = "3. the memory just below the frame may be used as stack: between setting"]
        #[doc = "   `rsp` and `syscall` the hypervisor may deliver an event there if upcalls"]
        #[doc = "   are unmasked."]
        #[inline]
        pub unsafe fn $name($frame: $ty) -> ! {
            // SAFETY: by the caller's guarantees (1) the hypervisor reads a
            // valid frame at the new `rsp` and resumes a sound context, (2)
            // nothing left on the old stack is needed, and (3) the only
            // other use of the new stack is event delivery into memory the
            // caller set aside for it. `syscall` from guest kernel mode
            // enters the hypervisor, which never returns here.
            unsafe {
                asm!(
                    "mov rsp, {frame}",
                    "syscall",
                    frame = in(reg) $frame.into_arg(),
                    in("rax") super::$konst,
                    options(noreturn),
                )
            }
        }
    };

    ($konst:ident $name:ident $args:literal $doc:literal $args_doc:literal $errors:literal
        [fn($($arg:ident: $ty:ty),*)]) => {
        #[doc = $doc]
        #[doc = ""]
        #[doc = concat!("`__HYPERVISOR_", stringify!($name), "`, number [`super::", stringify!($konst), "`].")]
        #[doc = ""]
        #[doc = "# Arguments"]
        #[doc = ""]
        #[doc = concat!("C prototype: `", stringify!($name), "(", $args, ")`. The Rust parameters are")]
        #[doc = "the C arguments in the same (register) order; where a name differs, the"]
        #[doc = "position says which is which."]
        #[doc = ""]
        #[doc = $args_doc]
        #[doc = ""]
        #[doc = "# Returns"]
        #[doc = ""]
        #[doc = "Returns 0 or a positive value on success, or `-errno` (see [`crate::errno`])."]
        #[doc = ""]
        #[doc = concat!("Notable errors: ", $errors)]
        #[doc = ""]
        #[doc = "# Safety"]
        #[doc = ""]
        #[doc = "Must run in PV guest kernel mode. Each pointer argument must be null where the"]
        #[doc = "argument description allows it, or else point to what it describes (for the"]
        #[doc = "command another argument selects, where there is one), valid for every read"]
        #[doc = "and write the hypervisor makes through it for the duration of the call, and"]
        #[doc = "not accessed concurrently by other code. The call's effects (on page tables"]
        #[doc = "and page types, descriptor tables, callbacks, vCPU state or the domain's life)"]
        #[doc = "must be ones the rest of the program is prepared for: see [`super::hypercall0`]."]
        #[inline]
        pub unsafe fn $name($($arg: $ty),*) -> i64 {
            // SAFETY: this function's contract is the raw call's: kernel
            // mode, pointers valid for what the hypercall does through
            // them, and effects the caller expects.
            unsafe { call!(super::$konst; $($arg.into_arg()),*) }
        }
    };
}

/// Hands each row of the list to [`typed_wrapper!`].
macro_rules! typed_wrappers {
    ($( $nr:literal $konst:ident $name:ident ($args:literal) $doc:literal $args_doc:literal
        $wrapper:tt $errors:literal; )*) => {
        $( typed_wrapper!($konst $name $args $doc $args_doc $errors $wrapper); )*
    };
}

hypercall_list!(typed_wrappers);
