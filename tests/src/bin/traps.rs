//! Exceptions and software interrupts bounced to the guest kernel through
//! its virtual IDT (`set_trap_table`), returns through `iret`, and the
//! calls around them (`stack_switch`, `set_callbacks`, `callback_op`,
//! `nmi_op`, `set_segment_base`, `fpu_taskswitch`), as on Xen 4.17.
//!
//! The handlers are assembly stubs that copy the frame Xen writes
//! (`rcx, r11, [error code,] rip, cs, rflags, rsp, ss`, 16-byte aligned
//! below the interrupted rsp), count the event, and return with the
//! `iret` hypercall to the instruction after the one that trapped. The
//! `cs` slot holds the interrupted cs with RPL 0 (the guest kernel was
//! interrupted) and, in bits 32-39, the event mask at the time; rflags.IF
//! is the inverse of that mask. `iret` restores the mask from the IF it
//! is given. #PF delivers the error code with the user bit cleared (the
//! fault was in guest kernel mode) and the address in `vcpu_info.arch.cr2`
//! (checked when the shared-info page can be mapped with
//! `update_va_mapping`). `int $n` reaches vector n when the entry's DPL is
//! at least 1 (from the guest kernel); otherwise the guest gets #GP with
//! error code n*8+2.
//!
//! With `missing`, the table lacks #DE and a division by zero crashes the
//! domain; with `cleared`, a null `set_trap_table` removes the table and a
//! `ud2` crashes it.
//!
//! @covers: set_trap_table iret stack_switch set_callbacks callback_op.register callback_op.unregister nmi_op.register_callback nmi_op.unregister_callback set_segment_base fpu_taskswitch
//! @variant: missing cmdline=missing expect-result=none expect-exit=crash expect-line="about to divide by zero" expect-line="(hv) ERROR: CPU0: domain 0 crashed: #DE (vector 0)" expect-line="(XEN) d0v0 Unhandled: vec 0, #DE" expect-line="(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds."
//! @variant: cleared cmdline=cleared expect-result=none expect-exit=crash expect-line="about to ud2 with no table" expect-line="(hv) ERROR: CPU0: domain 0 crashed: #UD (vector 6)" expect-line="(XEN) d0v0 Unhandled: vec 6, #UD" expect-line="(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds."
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use guest_abi::arch::{SEGBASE_FS, SEGBASE_GS_KERNEL, SEGBASE_GS_USER, SEGBASE_GS_USER_SEL};
use guest_abi::callback::{
    CallbackRegister, CallbackUnregister, CALLBACKOP_REGISTER, CALLBACKOP_UNREGISTER,
    CALLBACKTYPE_EVENT, CALLBACKTYPE_FAILSAFE, CALLBACKTYPE_NMI, CALLBACKTYPE_SYSCALL,
};
use guest_abi::errno;
use guest_abi::hypercall::{
    hypercall1, hypercall2, hypercall3, CALLBACK_OP, FPU_TASKSWITCH, NMI_OP, SET_CALLBACKS,
    SET_SEGMENT_BASE, STACK_SWITCH,
};
use guest_abi::nmi::{XennmiCallback, XENNMI_REGISTER_CALLBACK, XENNMI_UNREGISTER_CALLBACK};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::TrapInfo;
use tests::check;
use tests::expect;
use tests::fixup::{set_trap_table, set_trap_table_at, trap, SharedInfo};

guest_abi::pv_guest!(main, name = "traps");

/// What the last handler saw: its vector, its rsp, and 10 words from there.
static TRAP_VECTOR: AtomicU64 = AtomicU64::new(0);
static TRAP_RSP: AtomicU64 = AtomicU64::new(0);
static TRAP_FRAME: [AtomicU64; 10] = [const { AtomicU64::new(0) }; 10];
static TRAP_COUNT: AtomicU64 = AtomicU64::new(0);
/// Where the handler returns to (0: where the frame says).
static TRAP_RESUME: AtomicU64 = AtomicU64::new(0);
/// ORed into the returned rflags (0x200 unmasks events through iret).
static TRAP_FORCE_IF: AtomicU64 = AtomicU64::new(0);
/// The `flags` word of the iret frame (VGCF_in_syscall or 0).
static TRAP_IRET_FLAGS: AtomicU64 = AtomicU64::new(0);
static TRAP_SAVED_RAX: AtomicU64 = AtomicU64::new(0);

global_asm!(
    r#"
    .macro TRAP_STUB vec, ec
    .pushsection .text.traps_stubs, "ax"
    .globl traps_handler_\vec
traps_handler_\vec:
    mov [rip + {saved_rax}], rax
    lea rcx, [rip + {frame}]
    xor r11d, r11d
3:
    mov rax, [rsp + r11 * 8]
    mov [rcx + r11 * 8], rax
    inc r11
    cmp r11, 10
    jb 3b
    mov qword ptr [rip + {vector}], \vec
    mov [rip + {entry_rsp}], rsp
    inc qword ptr [rip + {count}]
    pop rcx
    pop r11
    .if \ec
    add rsp, 8
    .endif
    mov rax, [rip + {resume}]
    test rax, rax
    jz 4f
    mov [rsp], rax
    mov qword ptr [rip + {resume}], 0
4:
    mov rax, [rip + {force_if}]
    or [rsp + 16], rax
    mov rax, [rip + {saved_rax}]
    push qword ptr [rip + {iret_flags}]
    jmp hypercall_page + 23 * 32
    .popsection
    .endm

    TRAP_STUB 0, 0
    TRAP_STUB 3, 0
    TRAP_STUB 6, 0
    TRAP_STUB 7, 0
    TRAP_STUB 13, 1
    TRAP_STUB 14, 1
    TRAP_STUB 0x80, 0
    TRAP_STUB 0x81, 0
    TRAP_STUB 0x82, 0

    /* Vector 0x83 (events masked on entry): takes a nested #BP, then
       returns. */
    .pushsection .text.traps_stubs, "ax"
    .globl traps_handler_nest
traps_handler_nest:
    mov qword ptr [rip + {resume}], 0
    int3
    pop rcx
    pop r11
    push 0
    jmp hypercall_page + 23 * 32
    .popsection
"#,
    saved_rax = sym TRAP_SAVED_RAX,
    frame = sym TRAP_FRAME,
    vector = sym TRAP_VECTOR,
    entry_rsp = sym TRAP_RSP,
    count = sym TRAP_COUNT,
    resume = sym TRAP_RESUME,
    force_if = sym TRAP_FORCE_IF,
    iret_flags = sym TRAP_IRET_FLAGS,
);

unsafe extern "C" {
    fn traps_handler_0();
    fn traps_handler_3();
    fn traps_handler_6();
    fn traps_handler_7();
    fn traps_handler_13();
    fn traps_handler_14();
    fn traps_handler_0x80();
    fn traps_handler_0x81();
    fn traps_handler_0x82();
    fn traps_handler_nest();
}

const KERNEL_CS: u16 = 0xe033;
const KERNEL_SS: u64 = 0xe02b;
const IF: u64 = 0x200;

/// What a trapping instruction left behind.
#[derive(Clone, Copy, Debug, Default)]
struct Trapped {
    /// Address of the instruction and of the one after it.
    at: u64,
    after: u64,
    /// rsp just before it.
    rsp: u64,
    /// rcx and r11 after the return (set to known values before).
    rcx: u64,
    r11: u64,
}

const RCX_MARK: u64 = 0x1111_2222_3333_4444;
const R11_MARK: u64 = 0x5555_6666_7777_8888;

/// Runs one trapping instruction with known rcx/r11, the handler told to
/// resume after it.
macro_rules! trap {
    ($($insn:literal),+) => {{
        let (at, after, rsp, rcx, r11): (u64, u64, u64, u64, u64);
        // SAFETY: the instruction traps into a handler of this file that
        // returns to label 2 with every register but rcx/r11 (declared)
        // preserved; the scratch registers are declared as outputs.
        unsafe {
            asm!(
                "lea {at}, [rip + 7f]",
                "lea {after}, [rip + 8f]",
                "mov [{resume}], {after}",
                "mov {rsp}, rsp",
                "mov rcx, {c}",
                "mov r11, {e}",
                "7:",
                $($insn,)+
                "8:",
                at = out(reg) at,
                after = out(reg) after,
                rsp = out(reg) rsp,
                resume = in(reg) TRAP_RESUME.as_ptr(),
                c = const RCX_MARK,
                e = const R11_MARK,
                out("rcx") rcx,
                out("r11") r11,
            );
        }
        Trapped { at, after, rsp, rcx, r11 }
    }};
}

fn frame() -> [u64; 10] {
    core::array::from_fn(|i| TRAP_FRAME[i].load(SeqCst))
}

/// Checks the bounce frame of the last trap.
fn check_frame(
    r: &mut Report,
    what: &str,
    t: Trapped,
    vector: u64,
    error_code: Option<u64>,
    rip: u64,
    mask: u64,
) {
    let f = frame();
    check!(r, "{what}: vector of the handler that ran", TRAP_VECTOR.load(SeqCst) => vector);
    let (ec_words, rest) = match error_code {
        Some(_) => (1, &f[3..]),
        None => (0, &f[2..]),
    };
    r.check(
        format_args!(
            "{what}: frame rcx/r11 are the interrupted ones ({:#x}, {:#x})",
            f[0], f[1]
        ),
        f[0] == RCX_MARK && f[1] == R11_MARK,
    );
    if let Some(ec) = error_code {
        check!(r, "{what}: error code", f[2] => ec);
    }
    let want_cs = u64::from(KERNEL_CS & !3) | mask << 32;
    r.check(
        format_args!(
            "{what}: rip {rip:#x}, cs {want_cs:#x} (got {:#x}, {:#x})",
            rest[0], rest[1]
        ),
        rest[0] == rip && rest[1] == want_cs,
    );
    let fl = rest[2];
    r.check(
        format_args!("{what}: rflags {fl:#x}: IF = !mask ({mask}), IOPL 0"),
        (fl & IF != 0) == (mask == 0) && fl & 0x3000 == 0 && fl & 2 != 0,
    );
    r.check(
        format_args!(
            "{what}: rsp {:#x} / ss {:#x} are the interrupted ones ({:#x})",
            rest[3], rest[4], t.rsp
        ),
        rest[3] == t.rsp && rest[4] == KERNEL_SS,
    );
    let want_sp = (t.rsp & !0xf) - 8 * (7 + ec_words);
    let got_sp = TRAP_RSP.load(SeqCst);
    check!(r, "{what}: frame 16-byte aligned below rsp", got_sp => want_sp);
    r.check(
        format_args!("{what}: iret restored rcx/r11 ({:#x}, {:#x})", t.rcx, t.r11),
        t.rcx == RCX_MARK && t.r11 == R11_MARK,
    );
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("traps");
    let cmdline = expect::text(si.cmd_line_bytes());

    let full = [
        trap(0, 0, traps_handler_0),
        trap(3, 3, traps_handler_3),
        trap(6, 0, traps_handler_6),
        trap(7, 0, traps_handler_7),
        trap(13, 0, traps_handler_13),
        trap(14, 0, traps_handler_14),
        trap(0x80, 3, traps_handler_0x80),
        trap(0x81, 0, traps_handler_0x81),
        trap(0x82, 1, traps_handler_0x82),
        // DPL 3, events masked on entry.
        trap(0x83, 4 | 3, traps_handler_nest),
        TrapInfo::default(),
    ];

    if cmdline.contains("missing") {
        let rc = set_trap_table(&full[1..]);
        check!(r, "set_trap_table without #DE", rc => 0);
        println!("about to divide by zero");
        // SAFETY: raises #DE, which has no handler: the domain crashes.
        unsafe {
            asm!("xor ecx, ecx", "xor edx, edx", "div ecx", out("rcx") _, out("rdx") _, out("rax") _)
        };
        r.check("division by zero did not return", false);
        r.finish()
    }
    if cmdline.contains("cleared") {
        check!(r, "set_trap_table(full)", set_trap_table(&full) => 0);
        check!(r, "set_trap_table(NULL)", set_trap_table_at(0) => 0);
        println!("about to ud2 with no table");
        // SAFETY: raises #UD, which no longer has a handler.
        unsafe { asm!("ud2") };
        r.check("ud2 did not return", false);
        r.finish()
    }

    // Bad tables.
    for &(name, va) in &expect::BAD_POINTERS[1..] {
        let rc = set_trap_table_at(va);
        check!(r, "set_trap_table({name})", rc => -errno::EFAULT);
    }
    let noncanon = [
        TrapInfo {
            address: 0x8000_0000_0000,
            ..trap(5, 0, traps_handler_0)
        },
        TrapInfo::default(),
    ];
    check!(r, "set_trap_table with a non-canonical handler",
        set_trap_table(&noncanon) => -errno::EINVAL);
    check!(r, "set_trap_table(full)", set_trap_table(&full) => 0);

    // SAFETY: stack_switch only records the values.
    let rc = unsafe { hypercall2(STACK_SWITCH, KERNEL_SS, 0xffff_ffff_8020_0000) };
    check!(r, "stack_switch", rc => 0);

    // int3 at start of day: events masked (mask 1, IF clear in the frame).
    let t = trap!("int3");
    check_frame(&mut r, "int3 (masked)", t, 3, None, t.after, 1);

    // Unmask through iret: the handler returns with IF set.
    TRAP_FORCE_IF.store(IF, SeqCst);
    let _ = trap!("int3");
    TRAP_FORCE_IF.store(0, SeqCst);
    let t = trap!("int3");
    check_frame(&mut r, "int3 (after iret with IF)", t, 3, None, t.after, 0);

    let t = trap!("ud2");
    check_frame(&mut r, "ud2", t, 6, None, t.at, 0);
    let t = trap!("hlt");
    check_frame(&mut r, "hlt (#GP(0))", t, 13, Some(0), t.at, 0);
    let t = trap!("xor ecx, ecx", "div ecx");
    r.check("div by zero: #DE", TRAP_VECTOR.load(SeqCst) == 0);
    let _ = t;

    // Software interrupts.
    let t = trap!("int 0x80");
    check_frame(&mut r, "int $0x80 (DPL 3)", t, 0x80, None, t.after, 0);
    let t = trap!("int 0x82");
    check_frame(&mut r, "int $0x82 (DPL 1)", t, 0x82, None, t.after, 0);
    let t = trap!("int 0x81");
    check_frame(
        &mut r,
        "int $0x81 (DPL 0)",
        t,
        13,
        Some(0x81 * 8 + 2),
        t.at,
        0,
    );
    let t = trap!("int 0x84");
    check_frame(
        &mut r,
        "int $0x84 (no entry)",
        t,
        13,
        Some(0x84 * 8 + 2),
        t.at,
        0,
    );
    let t = trap!("int 0x0e");
    check_frame(
        &mut r,
        "int $0x0e (DPL 0)",
        t,
        13,
        Some(0x0e * 8 + 2),
        t.at,
        0,
    );

    // Page faults: error code without the user bit.
    let shared = SharedInfo::map(si);
    if shared.is_none() {
        r.skip("update_va_mapping unavailable: vcpu_info.arch.cr2 not checked");
    }
    let t = trap!("mov rax, [0x1000]");
    check_frame(&mut r, "read of unmapped 0x1000", t, 14, Some(0), t.at, 0);
    if let Some(s) = &shared {
        r.check(
            format_args!("cr2 {:#x} = 0x1000", s.cr2()),
            s.cr2() == 0x1000,
        );
    }
    let pt = si.pt_base;
    // SAFETY (inside the macro): writes the L4's first entry back to itself
    // through the read-only mapping: a #PF, and no change if not.
    let t = {
        let (at, after, rsp, rcx, r11): (u64, u64, u64, u64, u64);
        // SAFETY: as in `trap!`; the write faults (read-only page).
        unsafe {
            asm!(
                "mov rax, [{pt}]",
                "lea {at}, [rip + 7f]",
                "lea {after}, [rip + 8f]",
                "mov [{resume}], {after}",
                "mov {rsp}, rsp",
                "mov rcx, {c}",
                "mov r11, {e}",
                "7:",
                "mov [{pt}], rax",
                "8:",
                pt = in(reg) pt,
                at = out(reg) at,
                after = out(reg) after,
                rsp = out(reg) rsp,
                resume = in(reg) TRAP_RESUME.as_ptr(),
                c = const RCX_MARK,
                e = const R11_MARK,
                out("rax") _,
                out("rcx") rcx,
                out("r11") r11,
            );
        }
        Trapped {
            at,
            after,
            rsp,
            rcx,
            r11,
        }
    };
    check_frame(&mut r, "write to the read-only L4", t, 14, Some(3), t.at, 0);
    if let Some(s) = &shared {
        r.check(format_args!("cr2 {:#x} = pt_base", s.cr2()), s.cr2() == pt);
    }
    let t = trap!("mov rax, [0xffff830000000000]");
    check_frame(&mut r, "read of hv's direct map", t, 14, Some(1), t.at, 0);

    // Events masked on entry (flag bit 2): a nested #BP sees mask 1, and
    // the outer iret restores mask 0.
    let before = TRAP_COUNT.load(SeqCst);
    let t = trap!("int 0x83");
    r.check(
        "int $0x83 (mask events): nested int3 ran once",
        TRAP_COUNT.load(SeqCst) == before + 1 && TRAP_VECTOR.load(SeqCst) == 3,
    );
    let f = frame();
    r.check(
        format_args!(
            "nested int3 frame: cs {:#x} carries mask 1, rflags {:#x} IF clear",
            f[3], f[4]
        ),
        f[3] == u64::from(KERNEL_CS & !3) | 1 << 32 && f[4] & IF == 0,
    );
    r.check(
        "int $0x83: rcx/r11 restored",
        t.rcx == RCX_MARK && t.r11 == R11_MARK,
    );
    let t = trap!("int3");
    check_frame(
        &mut r,
        "int3 after the masked handler",
        t,
        3,
        None,
        t.after,
        0,
    );

    // iret with VGCF_in_syscall: rcx/r11 become rip/rflags.
    TRAP_IRET_FLAGS.store(guest_abi::arch::VGCF_IN_SYSCALL, SeqCst);
    let t = trap!("int3");
    TRAP_IRET_FLAGS.store(0, SeqCst);
    r.check(
        format_args!(
            "iret with VGCF_in_syscall: rcx {:#x} = return rip {:#x}, r11 {:#x} has IF",
            t.rcx, t.after, t.r11
        ),
        t.rcx == t.after && t.r11 & IF != 0,
    );

    // fpu_taskswitch: #NM once, then the instruction runs.
    // SAFETY: only sets the virtual CR0.TS.
    let rc = unsafe { hypercall1(FPU_TASKSWITCH, 1) };
    check!(r, "fpu_taskswitch(1)", rc => 0);
    let before = TRAP_COUNT.load(SeqCst);
    let t = trap!("movaps xmm1, xmm0");
    check_frame(&mut r, "SSE with TS set (#NM)", t, 7, None, t.at, 0);
    let _ = trap!("movaps xmm1, xmm0");
    r.check(
        "SSE after the #NM runs without another trap",
        TRAP_COUNT.load(SeqCst) == before + 1,
    );
    // SAFETY: clears the virtual CR0.TS.
    let rc = unsafe { hypercall1(FPU_TASKSWITCH, 0) };
    check!(r, "fpu_taskswitch(0)", rc => 0);

    callbacks(&mut r);
    segment_bases(&mut r);
    r.finish()
}

fn callback_op(cmd: u32, arg: *const u8) -> i64 {
    // SAFETY: the hypervisor only reads the argument.
    unsafe { hypercall2(CALLBACK_OP, u64::from(cmd), arg as u64) }
}

fn callbacks(r: &mut Report) {
    let h = traps_handler_3 as *const () as u64;
    // SAFETY: records addresses only.
    let rc = unsafe { hypercall3(SET_CALLBACKS, h, h, h) };
    check!(r, "set_callbacks", rc => 0);
    // SAFETY: as above; a non-canonical address is ignored, not refused.
    let rc = unsafe { hypercall3(SET_CALLBACKS, 1 << 47, h, h) };
    check!(r, "set_callbacks with a non-canonical event address", rc => 0);
    for (ty, name) in [
        (CALLBACKTYPE_EVENT, "event"),
        (CALLBACKTYPE_FAILSAFE, "failsafe"),
        (CALLBACKTYPE_SYSCALL, "syscall"),
        (CALLBACKTYPE_NMI, "nmi"),
    ] {
        let reg = CallbackRegister {
            type_: ty,
            flags: 1,
            address: h,
            ..Default::default()
        };
        let rc = callback_op(
            CALLBACKOP_REGISTER,
            (&reg as *const CallbackRegister).cast(),
        );
        check!(r, "callback_op register {name}", rc => 0);
        let unreg = CallbackUnregister {
            type_: ty,
            _unused: 0,
        };
        let rc = callback_op(
            CALLBACKOP_UNREGISTER,
            (&unreg as *const CallbackUnregister).cast(),
        );
        let want = if ty == CALLBACKTYPE_NMI {
            0
        } else {
            -errno::EINVAL
        };
        check!(r, "callback_op unregister {name}", rc => want);
    }
    let bad = CallbackRegister {
        type_: CALLBACKTYPE_SYSCALL,
        address: 0xdead_0000_0000_0000,
        ..Default::default()
    };
    let rc = callback_op(
        CALLBACKOP_REGISTER,
        (&bad as *const CallbackRegister).cast(),
    );
    check!(r, "callback_op register non-canonical", rc => -errno::EINVAL);
    let bad = CallbackRegister {
        type_: 6,
        address: h,
        ..Default::default()
    };
    let rc = callback_op(
        CALLBACKOP_REGISTER,
        (&bad as *const CallbackRegister).cast(),
    );
    check!(r, "callback_op register type 6", rc => -errno::ENOSYS);
    let unreg = CallbackUnregister {
        type_: 6,
        _unused: 0,
    };
    let rc = callback_op(
        CALLBACKOP_UNREGISTER,
        (&unreg as *const CallbackUnregister).cast(),
    );
    check!(r, "callback_op unregister type 6", rc => -errno::ENOSYS);
    let rc = callback_op(2, (&unreg as *const CallbackUnregister).cast());
    check!(r, "callback_op cmd 2", rc => -errno::ENOSYS);
    for &(name, va) in expect::BAD_POINTERS {
        let rc = callback_op(CALLBACKOP_REGISTER, va as *const u8);
        check!(r, "callback_op register({name})", rc => -errno::EFAULT);
    }

    let cb = XennmiCallback {
        handler_address: h,
        pad: 0,
    };
    // SAFETY: the hypervisor only reads the argument.
    let rc = unsafe {
        hypercall2(
            NMI_OP,
            u64::from(XENNMI_REGISTER_CALLBACK),
            &cb as *const _ as u64,
        )
    };
    check!(r, "nmi_op register", rc => 0);
    // SAFETY: no argument.
    let rc = unsafe { hypercall2(NMI_OP, u64::from(XENNMI_UNREGISTER_CALLBACK), 0) };
    check!(r, "nmi_op unregister", rc => 0);
    let cb = XennmiCallback {
        handler_address: 1 << 47,
        pad: 0,
    };
    // SAFETY: as above.
    let rc = unsafe {
        hypercall2(
            NMI_OP,
            u64::from(XENNMI_REGISTER_CALLBACK),
            &cb as *const _ as u64,
        )
    };
    check!(r, "nmi_op register non-canonical", rc => -errno::EINVAL);
    // SAFETY: bad pointer: the hypervisor must refuse it.
    let rc = unsafe { hypercall2(NMI_OP, u64::from(XENNMI_REGISTER_CALLBACK), 0x1000) };
    check!(r, "nmi_op register(unmapped)", rc => -errno::EFAULT);
    // SAFETY: no argument.
    let rc = unsafe { hypercall2(NMI_OP, 2, 0) };
    check!(r, "nmi_op cmd 2", rc => -errno::ENOSYS);
}

static FS_WORD: u64 = 0x0f5b_a5e0_f5ba_5e00;
static GS_WORD: u64 = 0x065b_a5e0_65ba_5e00;

fn segment_bases(r: &mut Report) {
    let seg = |which: u32, base: u64| -> i64 {
        // SAFETY: changes only this guest's segment bases.
        unsafe { hypercall2(SET_SEGMENT_BASE, u64::from(which), base) }
    };
    let fs_addr = &FS_WORD as *const u64 as u64;
    let gs_addr = &GS_WORD as *const u64 as u64;
    check!(r, "set_segment_base(FS, &FS_WORD)", seg(SEGBASE_FS, fs_addr) => 0);
    let v: u64;
    // SAFETY: fs points at FS_WORD.
    unsafe { asm!("mov {}, fs:[0]", out(reg) v) };
    r.check(format_args!("fs:0 reads FS_WORD ({v:#x})"), v == FS_WORD);
    check!(r, "set_segment_base(GS_KERNEL, &GS_WORD)", seg(SEGBASE_GS_KERNEL, gs_addr) => 0);
    let v: u64;
    // SAFETY: gs points at GS_WORD.
    unsafe { asm!("mov {}, gs:[0]", out(reg) v) };
    r.check(
        format_args!("gs:0 reads GS_WORD in kernel mode ({v:#x})"),
        v == GS_WORD,
    );
    check!(r, "set_segment_base(GS_USER, 0)", seg(SEGBASE_GS_USER, 0) => 0);
    check!(r, "set_segment_base(GS_USER_SEL, 0)", seg(SEGBASE_GS_USER_SEL, 0) => 0);
    check!(r, "set_segment_base(GS_USER_SEL, 0xe02b)", seg(SEGBASE_GS_USER_SEL, 0xe02b) => 0);
    check!(r, "set_segment_base(GS_USER_SEL, 0x1230 (bad))", seg(SEGBASE_GS_USER_SEL, 0x1230) => 0);
    let v: u64;
    // SAFETY: the kernel GS base is unchanged by the user calls.
    unsafe { asm!("mov {}, gs:[0]", out(reg) v) };
    r.check(
        format_args!("kernel gs base survives the GS_USER calls ({v:#x})"),
        v == GS_WORD,
    );
    for which in [SEGBASE_FS, SEGBASE_GS_USER, SEGBASE_GS_KERNEL] {
        check!(r, "set_segment_base({which}, non-canonical)",
            seg(which, 0x8000_0000_0000) => -errno::EINVAL);
    }
    check!(r, "set_segment_base(4, 0)", seg(4, 0) => -errno::EINVAL);
    check!(r, "set_segment_base(FS, 0)", seg(SEGBASE_FS, 0) => 0);
    check!(r, "set_segment_base(GS_KERNEL, 0)", seg(SEGBASE_GS_KERNEL, 0) => 0);
}
