//! A raw `syscall` with every general-purpose register under the test's
//! control, and every register captured on return.
//!
//! [`syscall_with`] loads all sixteen GPRs except `rsp` from a [`Gprs`]
//! (so a test can give each a distinct value), records `rsp`, `rflags` and
//! the address of the instruction after the `syscall`, issues the `syscall`
//! and stores every register as the hypervisor left it. The callee-saved
//! registers the compiler relies on (`rbx`, `rbp`, `r12`–`r15`) are pushed
//! before and popped after, so the test may set them freely.

use core::arch::asm;
use core::mem::offset_of;

/// The general-purpose registers other than `rsp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gprs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

impl Gprs {
    /// Each register (name, value), for reporting.
    pub fn named(&self) -> [(&'static str, u64); 15] {
        [
            ("rax", self.rax),
            ("rbx", self.rbx),
            ("rcx", self.rcx),
            ("rdx", self.rdx),
            ("rsi", self.rsi),
            ("rdi", self.rdi),
            ("rbp", self.rbp),
            ("r8", self.r8),
            ("r9", self.r9),
            ("r10", self.r10),
            ("r11", self.r11),
            ("r12", self.r12),
            ("r13", self.r13),
            ("r14", self.r14),
            ("r15", self.r15),
        ]
    }

    /// Distinct recognisable values in every register (`0x5eed_0000_0000_00NN`
    /// plus `seed`), with `rax` = `nr` and the first arguments as given.
    pub fn distinct(seed: u64, nr: u64, args: &[u64]) -> Self {
        let v = |n: u64| 0x5eed_0000_0000_0000 | (seed << 16) | n;
        let mut g = Self {
            rax: nr,
            rbx: v(1),
            rcx: v(2),
            rdx: v(3),
            rsi: v(4),
            rdi: v(5),
            rbp: v(6),
            r8: v(7),
            r9: v(8),
            r10: v(9),
            r11: v(10),
            r12: v(11),
            r13: v(12),
            r14: v(13),
            r15: v(14),
        };
        let slots = [&mut g.rdi, &mut g.rsi, &mut g.rdx, &mut g.r10, &mut g.r8];
        for (slot, &a) in slots.into_iter().zip(args) {
            *slot = a;
        }
        g
    }
}

/// What [`syscall_with`] saw around the `syscall`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Capture {
    /// Registers loaded just before the `syscall`.
    pub before: Gprs,
    /// Registers right after it.
    pub after: Gprs,
    /// `rsp` just before and just after.
    pub rsp_before: u64,
    pub rsp_after: u64,
    /// `rflags` just before the `syscall`.
    pub rflags_before: u64,
    /// Address of the instruction after the `syscall`.
    pub next_rip: u64,
}

/// Issues `syscall` with every GPR but `rsp` set from `regs`.
///
/// # Safety
///
/// As for `guest_abi::hypercall::hypercall5`: the hypercall `regs.rax` with
/// these argument registers must not change memory or mappings Rust relies
/// on, and any pointer in them must be valid for what the hypercall does
/// with it.
pub unsafe fn syscall_with(regs: Gprs) -> Capture {
    let mut c = Capture {
        before: regs,
        ..Capture::default()
    };
    let p: *mut Capture = &mut c;
    // SAFETY: the sequence saves and restores every register the compiler
    // expects preserved (rbx, rbp, r12-r15 pushed and popped; the others are
    // declared clobbered), keeps the stack balanced (no red zone on this
    // target), and writes only into `c` through `p`. The hypercall's own
    // effects are the caller's responsibility.
    unsafe {
        asm!(
            "push rbx",
            "push rbp",
            "push r12",
            "push r13",
            "push r14",
            "push r15",
            "push r11",
            "pushfq",
            "pop rax",
            "mov [r11 + {rflags}], rax",
            "lea rax, [rip + 2f]",
            "mov [r11 + {rip}], rax",
            "mov [r11 + {rsp_b}], rsp",
            "mov rbx, [r11 + {b} + {rbx}]",
            "mov rcx, [r11 + {b} + {rcx}]",
            "mov rdx, [r11 + {b} + {rdx}]",
            "mov rsi, [r11 + {b} + {rsi}]",
            "mov rdi, [r11 + {b} + {rdi}]",
            "mov rbp, [r11 + {b} + {rbp}]",
            "mov r8, [r11 + {b} + {r8}]",
            "mov r9, [r11 + {b} + {r9}]",
            "mov r10, [r11 + {b} + {r10}]",
            "mov r12, [r11 + {b} + {r12}]",
            "mov r13, [r11 + {b} + {r13}]",
            "mov r14, [r11 + {b} + {r14}]",
            "mov r15, [r11 + {b} + {r15}]",
            "mov rax, [r11 + {b} + {rax}]",
            "mov r11, [r11 + {b} + {r11}]",
            "syscall",
            "2:",
            "push r11",
            "mov r11, [rsp + 8]",
            "mov [r11 + {a} + {rax}], rax",
            "mov [r11 + {a} + {rbx}], rbx",
            "mov [r11 + {a} + {rcx}], rcx",
            "mov [r11 + {a} + {rdx}], rdx",
            "mov [r11 + {a} + {rsi}], rsi",
            "mov [r11 + {a} + {rdi}], rdi",
            "mov [r11 + {a} + {rbp}], rbp",
            "mov [r11 + {a} + {r8}], r8",
            "mov [r11 + {a} + {r9}], r9",
            "mov [r11 + {a} + {r10}], r10",
            "mov [r11 + {a} + {r12}], r12",
            "mov [r11 + {a} + {r13}], r13",
            "mov [r11 + {a} + {r14}], r14",
            "mov [r11 + {a} + {r15}], r15",
            "pop rax",
            "mov [r11 + {a} + {r11}], rax",
            "mov [r11 + {rsp_a}], rsp",
            "pop r11",
            "pop r15",
            "pop r14",
            "pop r13",
            "pop r12",
            "pop rbp",
            "pop rbx",
            b = const offset_of!(Capture, before),
            a = const offset_of!(Capture, after),
            rflags = const offset_of!(Capture, rflags_before),
            rip = const offset_of!(Capture, next_rip),
            rsp_b = const offset_of!(Capture, rsp_before),
            rsp_a = const offset_of!(Capture, rsp_after),
            rax = const offset_of!(Gprs, rax),
            rbx = const offset_of!(Gprs, rbx),
            rcx = const offset_of!(Gprs, rcx),
            rdx = const offset_of!(Gprs, rdx),
            rsi = const offset_of!(Gprs, rsi),
            rdi = const offset_of!(Gprs, rdi),
            rbp = const offset_of!(Gprs, rbp),
            r8 = const offset_of!(Gprs, r8),
            r9 = const offset_of!(Gprs, r9),
            r10 = const offset_of!(Gprs, r10),
            r11 = const offset_of!(Gprs, r11),
            r12 = const offset_of!(Gprs, r12),
            r13 = const offset_of!(Gprs, r13),
            r14 = const offset_of!(Gprs, r14),
            r15 = const offset_of!(Gprs, r15),
            inout("r11") p => _,
            out("rax") _, out("rcx") _, out("rdx") _, out("rsi") _, out("rdi") _,
            out("r8") _, out("r9") _, out("r10") _,
        );
    }
    c
}

/// The registers other than `rax`, `rcx` and `r11` that differ between
/// `before` and `after` (name, before, after); `syscall` itself destroys
/// `rcx` and `r11` and `rax` carries the result.
pub fn changed(c: &Capture) -> impl Iterator<Item = (&'static str, u64, u64)> {
    c.before
        .named()
        .into_iter()
        .zip(c.after.named())
        .filter(|((name, b), (_, a))| !matches!(*name, "rax" | "rcx" | "r11") && a != b)
        .map(|((name, b), (_, a))| (name, b, a))
}
