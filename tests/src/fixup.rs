//! Catching a guest's own faults: probes that read or write an address
//! and come back with the fault instead of crashing the guest, the trap
//! table that makes them work, and the pieces every guest with a trap
//! table shares (entries, `set_trap_table`, `vcpu_info.arch.cr2`).
//!
//! Every probe runs through one trampoline, [`catch`]: it saves the
//! callee-saved registers and the stack pointer, then calls a body (an
//! assembly routine taking up to four arguments). A body that returns
//! normally yields `Ok(rax)`. If it faults on a vector [`install`] (or a
//! table built with [`catcher`]) routes here, the hypervisor bounces to
//! the handler (Xen's 64-bit PV frame: rcx, r11, [error code], rip, cs,
//! rflags, rsp, ss), which records the vector, its stack pointer and 8
//! words from there ([`last_frame`]), and jumps to `fixup_unwind`: that
//! restores the saved stack pointer and registers and returns the fault.
//! A body that leaves by some other road (an `iret` to elsewhere, user
//! mode) ends by jumping to `fixup_unwind` itself with rax = its result
//! and rdx = 0, or from Rust through [`unwind`].
//!
//! `cr2` of a #PF is what the hypervisor wrote into `vcpu_info.arch.cr2`,
//! which [`SharedInfo`] reads after mapping the shared-info page.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use guest_abi::arch::FLAT_KERNEL_CS;
use guest_abi::hypercall::{hypercall1, hypercall3, SET_TRAP_TABLE, UPDATE_VA_MAPPING};
use guest_abi::rt::{StartInfoRef, VIRT_BASE};
use guest_abi::xen::TrapInfo;

/// A fault a probe ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub vector: u64,
    /// The error code (0 for vectors without one).
    pub error_code: u64,
    /// Where it happened.
    pub rip: u64,
}

/// What the handler saw of the last fault it caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The handler's stack pointer: where the hypervisor wrote the frame.
    pub rsp: u64,
    /// 8 words from there: rcx, r11, error code, rip, cs, rflags, rsp, ss
    /// (for a vector without an error code, everything from rip on is one
    /// word lower and the last word is not part of the frame).
    pub words: [u64; 8],
}

static VECTOR: AtomicU64 = AtomicU64::new(0);
static FRAME_RSP: AtomicU64 = AtomicU64::new(0);
static FRAME: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
static SAVED_RSP: AtomicU64 = AtomicU64::new(0);

global_asm!(
    r#"
    .pushsection .text.fixup, "ax"
    /* fixup_catch(a0, a1, a2, a3, body) -> (value, faulted) in rax:rdx:
       calls body(a0, a1, a2, a3) with the registers it may lose saved. */
    .globl fixup_catch
fixup_catch:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov [rip + {saved_rsp}], rsp
    sub rsp, 8
    call r8
    xor edx, edx
    .globl fixup_unwind
fixup_unwind:
    mov rsp, [rip + {saved_rsp}]
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret

    /* fixup_unwind_with(value): unwind with (value, 0). */
    .globl fixup_unwind_with
fixup_unwind_with:
    mov rax, rdi
    xor edx, edx
    jmp fixup_unwind

    /* Bodies: one access each. */
    .globl fixup_body_read
fixup_body_read:
    mov rax, [rdi]
    ret
    .globl fixup_body_write
fixup_body_write:
    mov [rdi], rsi
    xor eax, eax
    ret
    .globl fixup_body_load_fs
fixup_body_load_fs:
    mov fs, edi
    xor eax, eax
    ret
    .globl fixup_body_load_es
fixup_body_load_es:
    mov es, edi
    xor eax, eax
    ret

    /* Handlers: record the vector and the frame, unwind with faulted = 1. */
    .globl fixup_trap_1
fixup_trap_1:
    mov qword ptr [rip + {vector}], 1
    jmp 3f
    .globl fixup_trap_6
fixup_trap_6:
    mov qword ptr [rip + {vector}], 6
    jmp 3f
    .globl fixup_trap_13
fixup_trap_13:
    mov qword ptr [rip + {vector}], 13
    jmp 3f
    .globl fixup_trap_14
fixup_trap_14:
    mov qword ptr [rip + {vector}], 14
3:
    mov [rip + {frame_rsp}], rsp
    lea rcx, [rip + {frame}]
    xor edx, edx
4:
    mov rax, [rsp + rdx * 8]
    mov [rcx + rdx * 8], rax
    inc edx
    cmp edx, 8
    jb 4b
    xor eax, eax
    mov edx, 1
    jmp fixup_unwind
    .popsection
"#,
    saved_rsp = sym SAVED_RSP,
    vector = sym VECTOR,
    frame_rsp = sym FRAME_RSP,
    frame = sym FRAME,
);

/// A body for [`catch`]: an assembly routine called with the C ABI.
pub type Body = unsafe extern "C" fn(u64, u64, u64, u64) -> u64;

#[repr(C)]
struct Pair {
    value: u64,
    faulted: u64,
}

// SAFETY: the declarations match the assembly above: `fixup_catch` takes
// its arguments in rdi/rsi/rdx/rcx/r8, returns `Pair` in rax:rdx and
// preserves the callee-saved registers and rsp whichever way the body
// ends; the bodies follow the C ABI; the trap handlers are only ever
// entered by the hypervisor's bounce, never called.
unsafe extern "C" {
    fn fixup_catch(a0: u64, a1: u64, a2: u64, a3: u64, body: Body) -> Pair;
    fn fixup_unwind_with(value: u64) -> !;
    fn fixup_body_read(addr: u64, _: u64, _: u64, _: u64) -> u64;
    fn fixup_body_write(addr: u64, value: u64, _: u64, _: u64) -> u64;
    fn fixup_body_load_fs(selector: u64, _: u64, _: u64, _: u64) -> u64;
    fn fixup_body_load_es(selector: u64, _: u64, _: u64, _: u64) -> u64;
    fn fixup_trap_1();
    fn fixup_trap_6();
    fn fixup_trap_13();
    fn fixup_trap_14();
}

/// Runs `body(args)`, coming back with the fault if it takes one on a
/// vector routed to this module's handlers.
///
/// # Safety
/// 1. `body` is an assembly routine that either returns with the C ABI,
///    faults on a vector whose trap-table entry is [`catcher`]'s, or
///    (in guest kernel mode, on any stack) jumps to `fixup_unwind` with
///    rax = its result and rdx = 0;
/// 2. what it does to memory and registers other than the callee-saved
///    ones and rsp is harmless to the caller (the faulting instruction
///    and everything after it in the body never completes);
/// 3. it does not call `catch` itself (there is one saved stack pointer).
pub unsafe fn catch(body: Body, args: [u64; 4]) -> Result<u64, Fault> {
    let [a0, a1, a2, a3] = args;
    // SAFETY: the caller vouches for the body (1-3); the trampoline
    // restores the stack and the callee-saved registers either way.
    let p = unsafe { fixup_catch(a0, a1, a2, a3, body) };
    if p.faulted == 0 {
        return Ok(p.value);
    }
    let vector = VECTOR.load(SeqCst);
    let words = last_frame().words;
    // Exceptions with an error code: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP.
    let ec = usize::from(matches!(vector, 8 | 10..=14 | 17 | 21));
    Err(Fault {
        vector,
        error_code: if ec == 1 { words[2] } else { 0 },
        rip: words[2 + ec],
    })
}

/// Ends the body [`catch`] is running: `catch` returns `Ok(value)`.
///
/// # Safety
/// A `catch` is running, and the caller is in guest kernel mode (a body,
/// or a handler the hypervisor entered while one ran); everything between
/// is abandoned without being dropped.
pub unsafe fn unwind(value: u64) -> ! {
    // SAFETY: the caller vouches that a `catch` saved the stack pointer and
    // registers this restores.
    unsafe { fixup_unwind_with(value) }
}

/// What the handler saw of the last fault [`catch`] caught.
pub fn last_frame() -> Frame {
    Frame {
        rsp: FRAME_RSP.load(SeqCst),
        words: core::array::from_fn(|i| FRAME[i].load(SeqCst)),
    }
}

/// A trap-table entry: `handler` for `vector` in the guest kernel's code
/// segment. `flags` bits 0-1 are the DPL (the least privileged ring that
/// may raise the vector with `int n`; 0 for exceptions only), bit 2 masks
/// events on entry.
pub fn trap(vector: u8, flags: u8, handler: unsafe extern "C" fn()) -> TrapInfo {
    TrapInfo {
        vector,
        flags,
        cs: FLAT_KERNEL_CS,
        _pad: [0; 4],
        address: handler as usize as u64,
    }
}

/// The entry that sends `vector` (1, 6, 13 or 14: #DB, #UD, #GP, #PF) to the
/// handlers [`catch`] relies on.
pub fn catcher(vector: u8) -> TrapInfo {
    let handler = match vector {
        1 => fixup_trap_1,
        6 => fixup_trap_6,
        13 => fixup_trap_13,
        14 => fixup_trap_14,
        _ => panic!("tests::fixup has no handler for vector {vector}"),
    };
    trap(vector, 0, handler)
}

/// Registers the probes' handlers (#UD, #GP, #PF) as the guest's trap
/// table; returns `set_trap_table`'s result.
pub fn install() -> i64 {
    set_trap_table(&[catcher(6), catcher(13), catcher(14), TrapInfo::default()])
}

/// `set_trap_table(table)`; `table` ends with a zero entry.
pub fn set_trap_table(table: &[TrapInfo]) -> i64 {
    assert!(
        table.last().is_some_and(|e| e.address == 0),
        "a trap table ends with a zero entry"
    );
    set_trap_table_at(table.as_ptr() as u64)
}

/// `set_trap_table` with a raw address: null clears the table, other
/// values test the hypervisor's checks.
pub fn set_trap_table_at(va: u64) -> i64 {
    // SAFETY: the hypervisor only reads the table.
    unsafe { hypercall1(SET_TRAP_TABLE, va) }
}

/// Reads 8 bytes at `addr`, or reports the fault.
///
/// Only for addresses whose contents no Rust object depends on (hypervisor
/// ranges, unmapped or test-owned pages): the read itself is harmless.
pub fn read(addr: u64) -> Result<u64, Fault> {
    // SAFETY: the body reads one word and returns (or faults).
    unsafe { catch(fixup_body_read, [addr, 0, 0, 0]) }
}

/// Writes 8 bytes at `addr`, or reports the fault.
///
/// # Safety
/// `addr` must not hold anything a Rust object depends on.
pub unsafe fn write(addr: u64, value: u64) -> Result<(), Fault> {
    // SAFETY: as for `read`; the caller vouches for the target.
    unsafe { catch(fixup_body_write, [addr, value, 0, 0]) }.map(|_| ())
}

/// Loads `%fs` with `selector`, or reports the fault.
pub fn load_fs(selector: u64) -> Result<(), Fault> {
    // SAFETY: as for `read`; a segment load changes no memory, and the
    // guest's code addresses nothing through %fs behind the caller's back.
    unsafe { catch(fixup_body_load_fs, [selector, 0, 0, 0]) }.map(|_| ())
}

/// Loads `%es` with `selector`, or reports the fault.
pub fn load_es(selector: u64) -> Result<(), Fault> {
    // SAFETY: as for `load_fs`; 64-bit code ignores %es for addressing.
    unsafe { catch(fixup_body_load_es, [selector, 0, 0, 0]) }.map(|_| ())
}

/// The shared-info page, mapped at the last page of the initial 4 MiB
/// mapping (padding on both Xen and hv), or wherever a guest put it.
pub struct SharedInfo {
    pub va: u64,
}

impl SharedInfo {
    /// Maps the domain's shared-info frame; `None` if the mapping failed.
    pub fn map(si: StartInfoRef) -> Option<Self> {
        let va = VIRT_BASE + (4 << 20) - 4096;
        // SAFETY: replaces the mapping of an unused padding page with the
        // shared-info frame (P|RW|US|A|D).
        let rc = unsafe { hypercall3(UPDATE_VA_MAPPING, va, si.shared_info | 0x67, 2) };
        (rc == 0).then_some(Self { va })
    }

    /// vCPU 0's `arch.cr2`: the address of the last #PF bounced to it.
    pub fn cr2(&self) -> u64 {
        crate::pvmm::read_u64(self.va + 16)
    }
}
