//! Entry and exit paths: the IDT, the `syscall` entry, and the return to a
//! guest.
//!
//! Every entry from a guest (exception, interrupt, `syscall`) leaves one
//! [`GuestRegs`] frame at the very top of the CPU's stack (TSS.rsp0), so hv
//! always finds the running vCPU's registers at the same place and may edit
//! them before the return. Entries from ring 0 (faults inside hv) nest on the
//! current stack; the handler tells them apart by `cs`.
//!
//! The return is always `iretq` from that frame. `iretq` faults in ring 0 on a
//! non-canonical `rip` or a selector the CPU refuses (or #PF reading an LDT
//! page hv has yet to map) before it changes privilege; the trap handler
//! recognises the faulting address [`hv_iretq`] and treats the fault as the
//! guest's, raised at the context being returned to ([`returning_frame`]),
//! so the fast path needs no checks of its own.
//!
//! EFLAGS.AC is clear in hv from the first instruction of every entry:
//! `syscall` clears it through FMASK, and with SMAP the IDT's stubs start
//! with `clac` (a guest may set AC in ring 3, which would let hv touch
//! user pages unchecked). Only the copy routines (`uaccess`) set it,
//! around their string instructions. #DB, NMI, #MC and #DF arrive on their
//! own IST stacks, so a #DB deferred by `mov ss` onto the first instruction
//! of an entry never runs on a stack the guest chose.
//!
//! A `syscall` from guest user mode is not a hypercall: one byte flag
//! ([`set_guest_user_mode`]), tested after the registers are saved, sends
//! it to the trap handler, which bounces it to the guest kernel.
//!
//! Hypercalls, exceptions and `syscall` from guest user mode take a light
//! path that saves only the scratch registers (rax, rcx, rdx, rsi, rdi,
//! r8–r11): the callee-saved ones (rbx, rbp, r12–r15) stay in their
//! registers and their slots in the frame are stale (left by an earlier
//! entry). The light handler (a hypercall's table entry,
//! `traps::handle_light`, `traps::handle_user_syscall_light`) is an
//! `extern "C"` function, so those registers come back from it unchanged,
//! and the exit skips their slots. Its invariants: it reads and writes only
//! the scratch registers and the CPU's part of the frame, never passes the
//! frame on (no vCPU switch, emulation or crash report, the readers of a
//! full frame), and either finishes or returns false having changed
//! nothing but what the full handler is told about (a hypercall's crash
//! reason, in the CPU's block). On false the entry code writes the
//! callee-saved registers into their slots and calls the full handler
//! with a complete frame, which then returns through the full exit (it
//! may have rewritten any register, a vCPU switch all of them). Xen saves
//! every register on every entry; what this saves is the second copy of
//! the callee-saved registers, the first being the light handler's own
//! prologue.
//!
//! The hypercall path is written for instruction count: 15 pushes, the
//! user-mode test, a bounds-checked (and speculation-clamped) indirect call
//! straight into the handler from `hypercall::TABLE`, one test of its
//! answer, the event check, 9 pops and `iretq`.
//!
//! The event check is Xen's on every return to a guest: an upcall is due
//! when the running vCPU's `evtchn_upcall_mask` is clear and its
//! `evtchn_upcall_pending` set. A guest that unmasks events in memory and
//! finds one pending makes any hypercall to get it (Linux's
//! `xen_force_evtchn_callback` uses `xen_version`), so every hypercall
//! exit must test, which the CPU's copy of the entry does with the
//! `vcpu_info` address its block keeps: three instructions while events
//! are masked, five while not. When one is due, the upcall goes through
//! the light path (`traps::upcall::deliver_light`) or, when that cannot
//! make the frame, the full one, which crashes the domain with a report.
//! The other exits test where they can do it cheaper: a bounce (which
//! knows the mask it found) in `traps::bounce`, the full trap path at its
//! end (`traps::upcall`).

use super::gdt::{HV_CS, IST_DB, IST_DF, IST_MC, IST_NMI};
use super::percpu;
use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;

/// The registers of the interrupted context, in the order the entry code
/// pushes them (the layout of Xen's `cpu_user_regs` up to `ss`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub error_code: u32,
    /// Exception/interrupt vector, or [`ENTRY_SYSCALL`] / [`ENTRY_SYSCALL32`].
    pub entry_vector: u32,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

pub const GUEST_REGS_SIZE: usize = core::mem::size_of::<GuestRegs>();
const _: () = assert!(GUEST_REGS_SIZE == 21 * 8);
/// Room the boot code leaves unused at the top of the stack, so the first
/// guest frame can be written there while boot code still runs below it.
pub const FRAME_RESERVE: usize = 256;
const _: () = assert!(GUEST_REGS_SIZE <= FRAME_RESERVE);

/// `entry_vector` of a 64-bit `syscall` (Xen's TRAP_syscall).
pub const ENTRY_SYSCALL: u32 = 0x100;
/// `entry_vector` of a `syscall` from 32-bit compatibility mode.
pub const ENTRY_SYSCALL32: u32 = 0x101;

impl GuestRegs {
    /// Whether the context ran in ring 3 (a guest) rather than in hv.
    pub fn is_guest_context(&self) -> bool {
        self.cs & 3 != 0
    }
}

/// `lidt` limit: 256 gates of 16 bytes.
const IDT_LIMIT: u16 = 256 * 16 - 1;

/// Exceptions for which the CPU pushes an error code (Xen's
/// `X86_EXC_HAVE_EC`): 8, 10–14, 17, 21, 29, 30. The vector stubs below
/// push a dummy one for every other vector; keep the two lists equal.
pub const HAVE_ERROR_CODE: u32 = 1 << 8
    | 1 << 10
    | 1 << 11
    | 1 << 12
    | 1 << 13
    | 1 << 14
    | 1 << 17
    | 1 << 21
    | 1 << 29
    | 1 << 30;

global_asm!(
    r#"
    /* The scratch (caller-saved) registers, in the reverse order of
       GuestRegs' fields. */
    .macro hv_push_scratch
    push %rdi
    push %rsi
    push %rdx
    push %rcx
    push %rax
    push %r8
    push %r9
    push %r10
    push %r11
    .endm

    /* The callee-saved registers below them: the full frame. */
    .macro hv_push_callee_saved
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    .endm

    /* On the light path, with rsp 8 below the frame: the callee-saved
       registers (still the interrupted context's, the light handler
       having preserved them) into their slots, making the frame full. */
    .macro hv_spill_callee_saved
    mov %r15, 8(%rsp)
    mov %r14, 16(%rsp)
    mov %r13, 24(%rsp)
    mov %r12, 32(%rsp)
    mov %rbp, 40(%rsp)
    mov %rbx, 48(%rsp)
    .endm

    /* After `syscall` on CPU `cpu`: move to the top of that CPU's stack
       and build the frame an interrupt from ring 3 would have left, then
       the registers. The operands name that CPU's block (`percpu::CPUS`). */
    .macro hv_syscall_frame cs, vector
    mov %rsp, {cpus}+cpu*{cpu_size}+{off_scratch}(%rip)
    mov {cpus}+cpu*{cpu_size}+{off_rsp0}(%rip), %rsp
    pushq ${ss}
    pushq {cpus}+cpu*{cpu_size}+{off_scratch}(%rip)
    push %r11
    pushq \cs
    push %rcx
    pushq $0
    movl \vector, 4(%rsp)
    hv_push_scratch
    .endm

    /* 256 stubs of 16 bytes: the vector's number (and a dummy error
       code where the CPU pushes none), then the common entry. */
    .macro hv_vector_table name, common
    .balign 16
    .global \name
\name:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushq $0
    .endif
    movl $vec, 4(%rsp)
    jmp \common
    .set vec, vec + 1
    .endr
    .endm

    .section .text.hv_entry, "ax"
    hv_vector_table hv_vector_stubs, hv_trap_common
    hv_vector_table hv_vector_stubs_smap, hv_trap_common_smap

    /* With SMAP, an entry clears EFLAGS.AC first: a guest may enter with
       AC set (it can set it in ring 3), which would switch SMAP off for
       hv until the next copy routine's CLAC. The gate does not clear it
       (only `syscall`'s FMASK does). */
    .balign 16
hv_trap_common_smap:
    clac
hv_trap_common:
    hv_push_scratch
    lea -48(%rsp), %rdi                 /* the frame: its callee-saved slots stale */
    sub $56, %rsp                       /* past them, and 16-byte alignment */
    cld
    movl {off_vector}(%rdi), %eax       /* the stub's vector: below 256 */
    lea {trap_light}(%rip), %rcx
    call *(%rcx,%rax,8)
    test %al, %al
    jz 1f
    add $56, %rsp
    jmp hv_return_scratch
1:
    hv_spill_callee_saved
    lea 8(%rsp), %rdi
    call {trap}
    add $8, %rsp
    .global hv_return_to_guest
hv_return_to_guest:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
hv_return_scratch:
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rax
    pop %rcx
    pop %rdx
    pop %rsi
    pop %rdi
    add $8, %rsp
    .global hv_iretq
hv_iretq:
    iretq

    /* One copy of each `syscall` entry per CPU, {entry_stride} bytes
       apart: MSR_LSTAR/CSTAR of CPU n point at copy n. */
    .balign 4096
    .global hv_syscall_entries
hv_syscall_entries:
    .set cpu, 0
    .rept {max_cpus}
1000:
    hv_syscall_frame ${cs}, ${vsyscall}
    cmpb $0, {cpus}+cpu*{cpu_size}+{off_user_mode}(%rip)
    jne 2f
    lea -48(%rsp), %rdi                 /* the frame: its callee-saved slots stale */
    sub $56, %rsp                       /* past them, and 16-byte alignment */
    cmp ${table_len}, %rax
    jae 1f
    sbb %rcx, %rcx                      /* all ones here; 0 if the jae was mispredicted */
    and %rcx, %rax
    lea {table}(%rip), %rcx
    call *(%rcx,%rax,8)
    test %al, %al
    jz hv_hypercall_full
5:
    /* An event upcall is due when evtchn_upcall_mask is clear and
       evtchn_upcall_pending is set (Xen's exit test). */
    mov {cpus}+cpu*{cpu_size}+{off_vcpu_info}(%rip), %rcx
    cmpb $0, {off_upcall_mask}(%rcx)
    jne 6f
    cmpb $0, {off_upcall_pending}(%rcx)
    jne hv_hypercall_upcall
6:
    add $56, %rsp
    jmp hv_return_scratch
1:
    call {enosys}
    jmp 5b
2:
    lea -48(%rsp), %rdi
    sub $56, %rsp
    call {user_syscall_light}
    test %al, %al
    jz hv_user_syscall_full
    add $56, %rsp
    jmp hv_return_scratch
    .org 1000b + {entry_stride}, 0xcc   /* fails to assemble if the copy outgrew its slot */
    .set cpu, cpu + 1
    .endr

    /* The full paths the copies fall back to (rsp as after the light
       handler's call: the frame 8 above, its callee-saved slots stale,
       those registers still the guest's). */
    .balign 16
hv_hypercall_full:
    hv_spill_callee_saved
    lea 8(%rsp), %rdi
    call {hypercall_complete}
    add $8, %rsp
    jmp hv_return_to_guest
hv_user_syscall_full:
    hv_spill_callee_saved
    lea 8(%rsp), %rdi
    call {user_syscall}
    add $8, %rsp
    jmp hv_return_to_guest

    /* The hypercall exit found an event upcall due. */
hv_hypercall_upcall:
    lea 8(%rsp), %rdi
    call {upcall_light}
    test %al, %al
    jz 1f
    add $56, %rsp
    jmp hv_return_scratch
1:
    hv_spill_callee_saved
    lea 8(%rsp), %rdi
    call {upcall}
    add $8, %rsp
    jmp hv_return_to_guest

    .balign 4096
    .global hv_syscall32_entries
hv_syscall32_entries:
    .set cpu, 0
    .rept {max_cpus}
1000:
    hv_syscall_frame ${cs32}, ${vsyscall32}
    hv_push_callee_saved
    mov %rsp, %rdi
    sub $8, %rsp
    call {trap}
    add $8, %rsp
    jmp hv_return_to_guest
    .org 1000b + {entry32_stride}, 0xcc
    .set cpu, cpu + 1
    .endr
"#,
    trap = sym crate::traps::handle,
    trap_light = sym crate::traps::LIGHT,
    off_vector = const core::mem::offset_of!(GuestRegs, entry_vector),
    user_syscall = sym crate::traps::handle_user_syscall,
    user_syscall_light = sym crate::traps::handle_user_syscall_light,
    table = sym crate::hypercall::TABLE,
    table_len = const crate::hypercall::TABLE_LEN,
    enosys = sym crate::hypercall::enosys,
    hypercall_complete = sym crate::hypercall::complete,
    cpus = sym super::percpu::CPUS,
    cpu_size = const super::percpu::CPU_LOCAL_SIZE,
    off_scratch = const super::percpu::OFF_SCRATCH,
    off_rsp0 = const super::percpu::OFF_RSP0,
    off_user_mode = const super::percpu::OFF_USER_MODE,
    off_vcpu_info = const super::percpu::OFF_VCPU_INFO,
    off_upcall_mask = const core::mem::offset_of!(guest_abi::xen::VcpuInfo, evtchn_upcall_mask),
    off_upcall_pending = const core::mem::offset_of!(guest_abi::xen::VcpuInfo, evtchn_upcall_pending),
    upcall_light = sym crate::traps::upcall::deliver_light,
    upcall = sym crate::traps::upcall::deliver,
    max_cpus = const super::percpu::MAX_CPUS,
    entry_stride = const ENTRY_STRIDE,
    entry32_stride = const ENTRY32_STRIDE,
    ss = const super::gdt::RING3_DS,
    cs = const super::gdt::RING3_CS64,
    cs32 = const super::gdt::RING3_CS32,
    vsyscall = const ENTRY_SYSCALL,
    vsyscall32 = const ENTRY_SYSCALL32,
    options(att_syntax)
);

unsafe extern "C" {
    static hv_vector_stubs: [u8; 256 * 16];
    static hv_vector_stubs_smap: [u8; 256 * 16];
    static hv_iretq: u8;
    static hv_syscall_entries: u8;
    static hv_syscall32_entries: u8;
    static hv_return_to_guest: u8;
}

/// Bytes between two CPUs' copies of the 64-bit and 32-bit `syscall`
/// entries.
const ENTRY_STRIDE: usize = 256;
const ENTRY32_STRIDE: usize = 128;

/// Records the running vCPU's guest mode for this CPU's syscall entry,
/// which tests this one byte: in guest user mode a `syscall` is a call
/// into the guest kernel, not a hypercall, and the hypercall path pays a
/// single compare and a well-predicted branch for knowing.
#[inline]
pub fn set_guest_user_mode(user: bool) {
    percpu::this_cpu().set_guest_user_mode(user);
}

/// Address of the `iretq` that returns to guests (see the module docs).
pub fn iretq_address() -> u64 {
    core::ptr::addr_of!(hv_iretq) as u64
}

/// Entry points for CPU `cpu`'s MSR_LSTAR and MSR_CSTAR: its own copies.
pub fn syscall_entries(cpu: usize) -> (u64, u64) {
    let cpu = (cpu % percpu::MAX_CPUS) as u64;
    (
        core::ptr::addr_of!(hv_syscall_entries) as u64 + cpu * ENTRY_STRIDE as u64,
        core::ptr::addr_of!(hv_syscall32_entries) as u64 + cpu * ENTRY32_STRIDE as u64,
    )
}

#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    _reserved: u32,
}

struct Idt(UnsafeCell<[Gate; 256]>);

// SAFETY: written by `init_idt` on the boot CPU before `lidt` and before
// any other CPU starts; read-only after.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new(
    [Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        attributes: 0,
        offset_mid: 0,
        offset_high: 0,
        _reserved: 0,
    }; 256],
));

/// Fills and loads the IDT: interrupt gates for all 256 vectors (interrupts
/// stay off in hv), #BP and #OF reachable from ring 3 as in Xen, #DB, #DF,
/// NMI and #MC on their own stacks. With `smap` the stubs clear EFLAGS.AC
/// first.
pub fn init_idt(smap: bool) {
    let base = if smap {
        core::ptr::addr_of!(hv_vector_stubs_smap) as u64
    } else {
        core::ptr::addr_of!(hv_vector_stubs) as u64
    };
    // SAFETY: boot CPU, before `lidt`; nothing else references the IDT.
    let idt = unsafe { &mut *IDT.0.get() };
    for (vec, gate) in idt.iter_mut().enumerate() {
        let handler = base + 16 * vec as u64;
        let dpl: u8 = if vec == 3 || vec == 4 { 3 } else { 0 };
        let ist = match vec {
            1 => IST_DB,
            2 => IST_NMI,
            8 => IST_DF,
            18 => IST_MC,
            _ => 0,
        };
        *gate = Gate {
            offset_low: (handler & 0xffff) as u16,
            selector: HV_CS,
            ist,
            attributes: 0x8e | dpl << 5,
            offset_mid: ((handler >> 16) & 0xffff) as u16,
            offset_high: (handler >> 32) as u32,
            _reserved: 0,
        };
    }
    load_idt();
}

/// Loads the IDT (filled by [`init_idt`] on the boot CPU) on this CPU.
pub fn load_idt() {
    let ptr = super::gdt::DescriptorPointer {
        limit: IDT_LIMIT,
        base: IDT.0.get() as u64,
    };
    // SAFETY: the IDT is complete (the boot CPU filled it before starting
    // any other) and static; every gate points at a stub in hv's text.
    unsafe { asm!("lidt [{}]", in(reg) &ptr, options(nostack)) };
}

/// The frame at the top of this CPU's stack: the registers of the guest
/// context that last entered hv.
fn top_frame() -> *mut GuestRegs {
    (percpu::this_cpu().rsp0() - GUEST_REGS_SIZE as u64) as *mut GuestRegs
}

/// Starts (or resumes) a guest context: writes `regs` as the top frame and
/// returns to it. Does not return.
pub fn enter_guest(regs: &GuestRegs) -> ! {
    let frame = top_frame();
    let ret = core::ptr::addr_of!(hv_return_to_guest);
    // SAFETY: (1) the top FRAME_RESERVE bytes of the stack are never used by
    // boot code (hv_start64 starts below them) and a guest frame is only ever
    // live between an entry and its return, so writing there clobbers no
    // live data; (2) `regs` was built by hv (selectors RPL 3), so the iretq
    // at the end of hv_return_to_guest drops to ring 3; (3) rsp moves to the
    // frame and the current stack contents are abandoned for good.
    unsafe {
        frame.write(*regs);
        asm!("mov rsp, {frame}", "jmp {ret}", frame = in(reg) frame, ret = in(reg) ret, options(noreturn));
    }
}

/// The guest context an `iretq` at [`hv_iretq`] was returning to when it
/// faulted in ring 0 with `regs` (the fault's own frame): the general
/// registers as they were (already popped, so the fault saved them in
/// `regs`) and the `iretq` frame still at `regs.rsp`. `None` if `regs.rsp`
/// is not inside hv's stack.
pub fn returning_frame(regs: &GuestRegs) -> Option<GuestRegs> {
    let iret_part = regs.rsp;
    let main = percpu::this_cpu().stacks()?.main;
    if !main.contains(iret_part, 40) || !iret_part.is_multiple_of(8) {
        return None;
    }
    let words = iret_part as *const u64;
    // SAFETY: the five words lie inside hv's stack (checked above), which
    // is always mapped, and are 8-byte aligned; `iretq` had not consumed
    // them yet and the fault's frame was pushed below them.
    let [rip, cs, rflags, rsp, ss] = unsafe { core::array::from_fn(|i| words.add(i).read()) };
    Some(GuestRegs {
        rip,
        cs,
        rflags,
        rsp,
        ss,
        ..*regs
    })
}

/// Calls `f` with each return address on the frame-pointer chain from `rbp`,
/// while the chain stays inside one of hv's stacks (at most 32 frames).
pub fn backtrace(mut rbp: u64, mut f: impl FnMut(u64)) {
    let Some(stacks) = percpu::this_cpu().stacks() else {
        return;
    };
    let stacks = stacks.all();
    for _ in 0..32 {
        let inside = stacks.iter().any(|s| s.contains(rbp, 16));
        if !inside || !rbp.is_multiple_of(8) {
            return;
        }
        // SAFETY: [rbp, rbp+16) lies inside one of hv's stacks (checked
        // above), which are always mapped; reading stale words is harmless.
        let (next, ret) = unsafe {
            (
                (rbp as *const u64).read(),
                (rbp as *const u64).add(1).read(),
            )
        };
        if ret == 0 {
            return;
        }
        f(ret);
        if next <= rbp {
            return;
        }
        rbp = next;
    }
}
