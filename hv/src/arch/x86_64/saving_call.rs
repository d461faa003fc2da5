//! Calls into Rust from places where no register may change: the guest
//! copy routines' TLB settling (`uaccess`) and the IPI service of a lock
//! wait (`ipi::relax_serving`), whose callers hold live values in every
//! register.
//!
//! Each stub saves the scratch registers a C call may change (the
//! callee-saved ones the callee keeps itself), aligns the stack to 16
//! bytes for the call (rbp, which the callee keeps, holds the old stack
//! pointer), calls its function and restores everything but the flags.
//! hv's target has no red zone and no vector registers in use, so a stub
//! may push below any stack pointer it is called with.

use core::arch::global_asm;

global_asm!(
    r#"
    .macro hv_saving_call_stub name, target
    .section .text.\name, "ax"
    .balign 16
    .global \name
\name:
    push %rbp
    mov %rsp, %rbp
    and $-16, %rsp
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    sub $8, %rsp
    call \target
    add $8, %rsp
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    mov %rbp, %rsp
    pop %rbp
    ret
    .endm

    hv_saving_call_stub hv_uaccess_settle, {settle}
    hv_saving_call_stub hv_ipi_relax, {serve}
    .text
"#,
    settle = sym settle_debt,
    serve = sym serve_ipis,
    options(att_syntax)
);

/// `hv_uaccess_settle`'s function: pays this CPU's TLB debt.
extern "C" fn settle_debt() {
    super::mm::settle();
}

/// `hv_ipi_relax`'s function: runs the calls in this CPU's IPI inbox.
extern "C" fn serve_ipis() {
    super::ipi::serve();
}
