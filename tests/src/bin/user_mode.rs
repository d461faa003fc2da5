//! A guest kernel that runs a small user process: the process makes
//! syscalls, takes a page fault its kernel fixes up, touches a page only
//! the kernel maps, raises `int $0x80` (gate DPL 3: delivered) and `int
//! $0x82` (DPL 1: #GP(0x412) from user mode), and is killed by its kernel
//! for a privileged instruction, as on Xen 4.17.
//!
//! Set-up: the user page table is a separate L4 holding only the kernel's
//! slot 511 (a copy of the entry, so both tables share everything below
//! it); the kernel table additionally maps a page at [`KONLY_VA`] (slot 1)
//! that user mode must not see. `MMUEXT_PIN_L4_TABLE` and
//! `MMUEXT_NEW_USER_BASEPTR` install the user table, `callback_op`
//! registers the syscall callback, `stack_switch` the kernel stack, and
//! `set_segment_base` gives the two modes different GS bases. The `iret`
//! hypercall with an RPL-3 `cs` enters user mode.
//!
//! Every entry into the kernel goes through one assembly stub that saves
//! the registers and calls [`um_handle`], which reads Xen's bounce frame
//! (`rcx, r11, [error code,] rip, cs, rflags, rsp, ss`; `cs` keeps RPL 3
//! when user mode was interrupted, with the event mask it ran with in
//! bits 32-39), decides, and writes an `iret_context`
//! the stub returns through. A syscall returned with `VGCF_in_syscall`
//! comes back by `sysret` (rcx = rip, r11 = rflags); without it rcx and
//! r11 are the ones the kernel put in the context.
//!
//! Variant `tsd`: the kernel sets CR4.TSD first, and the process's
//! privileged instruction is `rdtsc` (#GP(0) in guest user mode, as Xen
//! loads the guest's TSD into the CPU).
//!
//! @variant: tsd cmdline=tsd
//! @covers: mmuext_op.new_user_baseptr mmuext_op.pin_l4_table callback_op.register stack_switch iret set_segment_base update_va_mapping
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use guest_abi::arch::{
    FLAT_KERNEL_SS, FLAT_USER_CS, FLAT_USER_SS, SEGBASE_GS_KERNEL, SEGBASE_GS_USER,
};
use guest_abi::callback::{
    CallbackRegister, CALLBACKF_MASK_EVENTS, CALLBACKOP_REGISTER, CALLBACKTYPE_SYSCALL,
};
use guest_abi::hypercall::{hypercall2, CALLBACK_OP, IRET, SET_SEGMENT_BASE, STACK_SWITCH};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{
    MmuUpdate, TrapInfo, MMUEXT_CLEAR_PAGE, MMUEXT_NEW_USER_BASEPTR, MMUEXT_PIN_L4_TABLE,
    UVMF_INVLPG,
};
use tests::check;
use tests::expect::{self, rc};
use tests::fixup::{self, set_trap_table, trap, SharedInfo};
use tests::pages::Pages;
use tests::pvmm::{mmu_update, mmuext1, pt_write, read_u64, uvm, Env, Window, A, D, P, RW, US};

guest_abi::pv_guest!(main, name = "user_mode");

const VGCF_IN_SYSCALL: u64 = 1 << 8;
const CR4_TSD: u64 = 1 << 2;
/// Set by the kernel in the `tsd` variant: the process ends with `rdtsc`.
static U_TSD: AtomicU64 = AtomicU64::new(0);
const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_RF: u64 = 1 << 16;
const RFLAGS_IOPL: u64 = 3 << 12;

/// The page only the kernel's table maps (L4 slot 1).
const KONLY_VA: u64 = 1 << 39;
const KONLY_MARK: u64 = 0x6b65_726e_656c_2121;
/// What the #PF handler puts in rax when it skips the user's load of
/// [`KONLY_VA`].
const FAULT_MARK: u64 = 0xfa17_fa17;
/// What the user process stores through the page its kernel maps on demand.
const STORE_VALUE: u64 = 0x5107_e0ff_1ce0_0001;

/// Syscall numbers of the toy kernel. 17 is `xen_version`'s hypercall
/// number: from user mode it is a syscall like any other.
const SYS_SUM: u64 = 17;
const SYS_PLAIN: u64 = 2;
const PLAIN_RCX: u64 = 0xc0c0_c0c0_0000_0001;
const PLAIN_R11: u64 = 0x0000_0000_0000_0246;
const PLAIN_RAX: u64 = 0x600d;
const ARGS: [u64; 6] = [
    0x1111,
    0x2222_0000,
    0x3333_0000_0000,
    0x4444,
    0x5555_0000,
    0x6666_0000_0000,
];

/// What `run_user` returns when the kernel killed the process.
const KILLED_GP: u64 = 0xdead_0013;
const KILLED_OTHER: u64 = 0xdead_0000;

const GS_KERNEL_MARK: u64 = 0x6b67_736b_6773;
const GS_USER_MARK: u64 = 0x7567_7375_6773;

#[repr(C, align(4096))]
struct GsArea([u64; 512]);

static KERNEL_GS: GsArea = {
    let mut a = [0; 512];
    a[0] = GS_KERNEL_MARK;
    GsArea(a)
};
static USER_GS: GsArea = {
    let mut a = [0; 512];
    a[0] = GS_USER_MARK;
    GsArea(a)
};

/// The kernel stack user-to-kernel bounces land on (`stack_switch`).
static KERNEL_STACK: Pages<4> = Pages::new();
/// The user process's stack.
static USER_STACK: Pages<2> = Pages::new();

/// The `iret_context` the trap stub returns through: rax, r11, rcx, flags,
/// rip, cs, rflags, rsp, ss. Only `um_handle` writes it, only the stub's
/// `iret` reads it.
#[unsafe(no_mangle)]
static UM_IRET_CTX: [AtomicU64; 9] = [const { AtomicU64::new(0) }; 9];

global_asm!(
    r#"
    .pushsection .text.user_mode, "ax"
    .macro UM_STUB name, info
    .globl \name
\name:
    push rax
    mov eax, \info
    jmp um_common
    .endm

    UM_STUB um_entry_syscall, 0x100
    UM_STUB um_entry_gp, 0x20d
    UM_STUB um_entry_pf, 0x20e
    UM_STUB um_entry_ud, 0x006
    UM_STUB um_entry_de, 0x000
    UM_STUB um_entry_int80, 0x080
    UM_STUB um_entry_int82, 0x082

um_common:
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    mov esi, eax
    mov rbx, rsp
    and rsp, -16
    call {handle}
    mov rsp, rbx
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    add rsp, 8
    lea rsp, [rip + {ctx}]
    mov eax, {iret}
    syscall
    ud2

    /* um_enter_user(rip, rsp), a body for tests::fixup::catch: enters
       user mode; the kernel ends the process with tests::fixup::unwind. */
    .globl um_enter_user
um_enter_user:
    push {user_ss}
    push rsi
    push 0x2
    push {user_cs}
    push rdi
    push 0
    push 0
    push 0
    push 0
    mov eax, {iret}
    syscall
    ud2
    .popsection
"#,
    handle = sym um_handle,
    ctx = sym UM_IRET_CTX,
    iret = const IRET,
    user_ss = const FLAT_USER_SS,
    user_cs = const FLAT_USER_CS,
);

unsafe extern "C" {
    fn um_entry_syscall();
    fn um_entry_gp();
    fn um_entry_pf();
    fn um_entry_ud();
    fn um_entry_de();
    fn um_entry_int80();
    fn um_entry_int82();
    fn um_enter_user(rip: u64, rsp: u64, _: u64, _: u64) -> u64;
}

/// The registers `um_common` saved, lowest address first; the bounce
/// frame follows them.
#[repr(C)]
struct Saved {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r11: u64,
    r10: u64,
    r9: u64,
    r8: u64,
    rbp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rcx: u64,
    rbx: u64,
    rax: u64,
}

/// Xen's bounce frame, decoded.
#[derive(Clone, Copy, Default, Debug)]
struct Frame {
    rcx: u64,
    r11: u64,
    ec: Option<u64>,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

/// One slot per observation, filled by the handler or the user process.
macro_rules! slots {
    ($($name:ident),* $(,)?) => { $(static $name: AtomicU64 = AtomicU64::new(0);)* };
}
slots!(
    // Syscall SYS_SUM, as the kernel saw it.
    K_SUM_ARGS_OK,
    K_SUM_GS,
    K_SUM_RCX,
    K_SUM_R11,
    K_SUM_RIP,
    K_SUM_CS,
    K_SUM_RFLAGS,
    K_SUM_RSP,
    K_SUM_SS,
    K_SYSCALLS,
    // ... and as the user saw it.
    U_SUM_RET,
    U_SUM_REGS_OK,
    U_SUM_RCX,
    U_SUM_R11,
    U_SUM_FLAGS,
    U_SUM_AFTER,
    U_SUM_RSP,
    // SYS_PLAIN (returned without VGCF_in_syscall).
    U_PLAIN_RAX,
    U_PLAIN_RCX,
    U_PLAIN_R11,
    // GS as user mode sees it.
    U_GS,
    // The fixed-up page fault.
    K_PF_COUNT,
    K_PF_EC,
    K_PF_CR2,
    K_PF_RIP,
    K_PF_CS,
    U_PF_AT,
    U_PF_READBACK,
    // The load from the kernel-only page.
    K_KO_EC,
    K_KO_CR2,
    U_KO_RAX,
    // `int $0x80` (DPL 3) and `int $0x82` (DPL 1) from user mode.
    K_INT80_RIP,
    U_INT80_AFTER,
    K_INT82_GP_EC,
    U_INT82_AT,
    U_INT_DONE,
    // The kill.
    K_GP_EC,
    K_GP_RIP,
    K_GP_CS,
    U_HLT_AT,
    // Anything unexpected: vector | 0x1000, rip.
    K_UNEXPECTED,
    K_UNEXPECTED_RIP,
);

/// Where the user page fault is fixed up: page 1 of the window, and the
/// frame the kernel maps there.
static FIX_VA: AtomicU64 = AtomicU64::new(0);
static FIX_MFN: AtomicU64 = AtomicU64::new(0);
/// The shared-info mapping (for `vcpu_info.arch.cr2`).
static SHARED_VA: AtomicU64 = AtomicU64::new(0);

fn cr2() -> u64 {
    match SHARED_VA.load(SeqCst) {
        0 => 0,
        va => SharedInfo { va }.cr2(),
    }
}

fn kernel_gs0() -> u64 {
    let v: u64;
    // SAFETY: the kernel GS base points at KERNEL_GS (set before user mode
    // ran); reads one word.
    unsafe { asm!("mov {}, gs:[0]", out(reg) v, options(nostack, readonly)) };
    v
}

/// Called by `um_common` for every entry into the kernel.
extern "C" fn um_handle(s: &mut Saved, info: u64) {
    let vector = info & 0x1ff;
    let has_ec = info & 0x200 != 0;
    let base = core::ptr::from_mut(s).cast::<u64>().wrapping_add(15);
    // SAFETY: the bounce frame (7 or 8 words) lies right above the saved
    // registers on the kernel stack.
    let word = |i: usize| unsafe { base.add(i).read() };
    let k = usize::from(has_ec);
    let f = Frame {
        rcx: word(0),
        r11: word(1),
        ec: has_ec.then(|| word(2)),
        rip: word(2 + k),
        cs: word(3 + k),
        rflags: word(4 + k),
        rsp: word(5 + k),
        ss: word(6 + k),
    };
    let user = f.cs & 3 == 3;
    let mut ctx = [s.rax, f.r11, f.rcx, 0, f.rip, f.cs, f.rflags, f.rsp, f.ss];
    match (vector, user) {
        (0x100, true) => {
            K_SYSCALLS.fetch_add(1, SeqCst);
            match s.rax {
                SYS_SUM => {
                    let args = [s.rdi, s.rsi, s.rdx, s.r10, s.r8, s.r9];
                    K_SUM_ARGS_OK.store(u64::from(args == ARGS), SeqCst);
                    K_SUM_GS.store(kernel_gs0(), SeqCst);
                    for (slot, v) in [
                        (&K_SUM_RCX, f.rcx),
                        (&K_SUM_R11, f.r11),
                        (&K_SUM_RIP, f.rip),
                        (&K_SUM_CS, f.cs),
                        (&K_SUM_RFLAGS, f.rflags),
                        (&K_SUM_RSP, f.rsp),
                        (&K_SUM_SS, f.ss),
                    ] {
                        slot.store(v, SeqCst);
                    }
                    ctx[0] = args.iter().fold(0u64, |a, &b| a.wrapping_add(b));
                    ctx[3] = VGCF_IN_SYSCALL;
                }
                SYS_PLAIN => {
                    ctx[0] = PLAIN_RAX;
                    ctx[1] = PLAIN_R11;
                    ctx[2] = PLAIN_RCX;
                }
                _ => kill(KILLED_OTHER | 0x100, f.rip),
            }
        }
        (14, true) => {
            let cr2 = cr2();
            let ec = f.ec.unwrap_or(u64::MAX);
            if cr2 == FIX_VA.load(SeqCst) && K_PF_COUNT.fetch_add(1, SeqCst) == 0 {
                K_PF_EC.store(ec, SeqCst);
                K_PF_CR2.store(cr2, SeqCst);
                K_PF_RIP.store(f.rip, SeqCst);
                K_PF_CS.store(f.cs, SeqCst);
                let pte = (FIX_MFN.load(SeqCst) << 12) | P | RW | US | A | D;
                if uvm(cr2, pte, UVMF_INVLPG) != 0 {
                    kill(KILLED_OTHER | 14, f.rip);
                }
                // Resume at the faulting instruction: it runs again.
            } else if cr2 == KONLY_VA {
                K_KO_EC.store(ec, SeqCst);
                K_KO_CR2.store(cr2, SeqCst);
                // Skip the 3-byte `mov rax, [rbx]`, with a mark in rax.
                ctx[0] = FAULT_MARK;
                ctx[4] = f.rip.wrapping_add(3);
            } else {
                kill(KILLED_OTHER | 14, f.rip);
            }
        }
        (0x80, true) => K_INT80_RIP.store(f.rip, SeqCst),
        (13, true) if f.ec == Some(0x82 << 3 | 2) => {
            // `int $0x82` refused from user mode: skip it.
            K_INT82_GP_EC.store(0x82 << 3 | 2, SeqCst);
            K_GP_RIP.store(f.rip, SeqCst);
            ctx[4] = f.rip.wrapping_add(2);
        }
        (13, true) => {
            K_GP_EC.store(f.ec.unwrap_or(u64::MAX), SeqCst);
            K_GP_RIP.store(f.rip, SeqCst);
            K_GP_CS.store(f.cs, SeqCst);
            kill(KILLED_GP, f.rip)
        }
        _ => kill(KILLED_OTHER | vector, f.rip),
    }
    for (slot, v) in UM_IRET_CTX.iter().zip(ctx) {
        slot.store(v, SeqCst);
    }
}

/// Ends the user process: back to the kernel code that started it.
fn kill(result: u64, rip: u64) -> ! {
    if result != KILLED_GP {
        K_UNEXPECTED.store(result, SeqCst);
        K_UNEXPECTED_RIP.store(rip, SeqCst);
    }
    // SAFETY: the user process runs inside `fixup::catch` (see `main`);
    // this runs in a bounced handler, so in kernel mode again.
    unsafe { fixup::unwind(result) }
}

// ---------------------------------------------------------------------------
// The user process (runs in guest user mode, on the user page table).

extern "C" fn user_main() -> ! {
    // A syscall with six arguments, returned with VGCF_in_syscall.
    let (ret, o, rcx, r11, fl, after, sp);
    {
        let (mut a0, mut a1, mut a2, mut a3, mut a4, mut a5) =
            (ARGS[0], ARGS[1], ARGS[2], ARGS[3], ARGS[4], ARGS[5]);
        let (r, c, e, f, l, s): (u64, u64, u64, u64, u64, u64);
        // SAFETY: a syscall to this guest's own kernel, which preserves
        // every register but rax, rcx and r11.
        unsafe {
            asm!(
                "mov {s}, rsp",
                "syscall",
                "2:",
                "pushfq",
                "pop {f}",
                "lea {l}, [rip + 2b]",
                s = out(reg) s,
                f = out(reg) f,
                l = out(reg) l,
                inout("rax") SYS_SUM => r,
                inout("rdi") a0, inout("rsi") a1, inout("rdx") a2,
                inout("r10") a3, inout("r8") a4, inout("r9") a5,
                out("rcx") c, out("r11") e,
            );
        }
        ret = r;
        o = [a0, a1, a2, a3, a4, a5];
        (rcx, r11, fl, after, sp) = (c, e, f, l, s);
    }
    U_SUM_RET.store(ret, SeqCst);
    U_SUM_REGS_OK.store(u64::from(o == ARGS), SeqCst);
    U_SUM_RCX.store(rcx, SeqCst);
    U_SUM_R11.store(r11, SeqCst);
    U_SUM_FLAGS.store(fl, SeqCst);
    U_SUM_AFTER.store(after, SeqCst);
    U_SUM_RSP.store(sp, SeqCst);

    // A syscall returned without VGCF_in_syscall: rcx/r11 from the context.
    let (r, c, e): (u64, u64, u64);
    // SAFETY: as above.
    unsafe {
        asm!("syscall", inout("rax") SYS_PLAIN => r, out("rcx") c, out("r11") e);
    }
    U_PLAIN_RAX.store(r, SeqCst);
    U_PLAIN_RCX.store(c, SeqCst);
    U_PLAIN_R11.store(e, SeqCst);

    let g: u64;
    // SAFETY: the user GS base points at USER_GS.
    unsafe { asm!("mov {}, gs:[0]", out(reg) g, options(nostack, readonly)) };
    U_GS.store(g, SeqCst);

    // A store to a page nobody has mapped yet: the kernel maps it and the
    // store runs again.
    let fix = FIX_VA.load(SeqCst);
    let at: u64;
    // SAFETY: the kernel's #PF handler maps the page and resumes here.
    unsafe {
        asm!(
            "lea {at}, [rip + 2f]",
            "2:",
            "mov [{p}], {v}",
            at = out(reg) at,
            p = in(reg) fix,
            v = in(reg) STORE_VALUE,
        );
    }
    U_PF_AT.store(at, SeqCst);
    // SAFETY: mapped by the kernel a moment ago.
    U_PF_READBACK.store(unsafe { (fix as *const u64).read_volatile() }, SeqCst);

    // A load from the kernel-only page: the kernel skips it.
    let v: u64;
    // SAFETY: faults; the #PF handler resumes after the 3-byte load.
    unsafe { asm!("mov rax, [rdx]", in("rdx") KONLY_VA, out("rax") v) };
    U_KO_RAX.store(v, SeqCst);

    // Software interrupts: DPL 3 reaches the kernel's handler, DPL 1 is
    // the kernel's only and gives #GP.
    let (after80, at82): (u64, u64);
    // SAFETY: both handlers resume after the instruction.
    unsafe {
        asm!(
            "int 0x80",
            "2:",
            "lea {a}, [rip + 2b]",
            "lea {b}, [rip + 3f]",
            "3:",
            "int 0x82",
            a = out(reg) after80,
            b = out(reg) at82,
        );
    }
    U_INT80_AFTER.store(after80, SeqCst);
    U_INT82_AT.store(at82, SeqCst);
    U_INT_DONE.store(1, SeqCst);

    if U_TSD.load(SeqCst) == 1 {
        // With the kernel's CR4.TSD, `rdtsc` is privileged.
        // SAFETY: faults with #GP and never returns here.
        unsafe {
            asm!(
                "lea rax, [rip + 2f]",
                "mov [{at}], rax",
                "2:",
                "rdtsc",
                at = in(reg) U_HLT_AT.as_ptr(),
                out("rax") _,
                out("rdx") _,
            );
        }
    }
    // A privileged instruction: the kernel kills the process.
    // SAFETY: faults with #GP and never returns here.
    unsafe {
        asm!(
            "lea rax, [rip + 2f]",
            "mov [{at}], rax",
            "2:",
            "hlt",
            at = in(reg) U_HLT_AT.as_ptr(),
            out("rax") _,
        );
    }
    loop {
        core::hint::spin_loop();
    }
}

// ---------------------------------------------------------------------------
// The kernel.

fn addr<T: ?Sized>(p: *const T) -> u64 {
    p.cast::<u8>() as u64
}

/// Maps a page at [`KONLY_VA`] in the kernel table only: a fresh L3, L2
/// and L1 (written while still untyped) hooked into L4 slot 1.
fn kernel_only_page(r: &mut Report, env: &mut Env) -> bool {
    let mut frames = [0u64; 4];
    for f in &mut frames {
        *f = env.spare().1;
        if mmuext1(MMUEXT_CLEAR_PAGE, *f, 0) != 0 {
            return r.check("MMUEXT_CLEAR_PAGE for the kernel-only tables", false);
        }
    }
    let [data, l1, l2, l3] = frames;
    let ups = [
        MmuUpdate {
            ptr: l1 << 12,
            val: (data << 12) | P | RW | US | A | D,
        },
        MmuUpdate {
            ptr: l2 << 12,
            val: (l1 << 12) | P | RW | US | A,
        },
        MmuUpdate {
            ptr: l3 << 12,
            val: (l2 << 12) | P | RW | US | A,
        },
        MmuUpdate {
            ptr: (env.l4_mfn << 12) + 8,
            val: (l3 << 12) | P | RW | US | A,
        },
    ];
    if !check!(r, "mmu_update: kernel L4 slot 1 -> L3 -> L2 -> L1 -> page",
        mmu_update(&ups, None) => 0)
    {
        return false;
    }
    // SAFETY: mapped writable just now, in the lower half no Rust object uses.
    unsafe { (KONLY_VA as *mut u64).write_volatile(KONLY_MARK) };
    r.check(
        "the kernel reads its kernel-only page",
        read_u64(KONLY_VA) == KONLY_MARK,
    )
}

/// Builds, pins and installs the user L4: only slot 511 (the kernel's
/// image and the window) is shared.
fn user_table(r: &mut Report, env: &mut Env) -> bool {
    let l4 = env.spare().1;
    let e511 = read_u64(env.l4 + 511 * 8);
    check!(r, "MMUEXT_CLEAR_PAGE user L4", mmuext1(MMUEXT_CLEAR_PAGE, l4, 0) => 0)
        && check!(r, "mmu_update: user L4 slot 511 = kernel's (untyped frame)",
            pt_write((l4 << 12) + 511 * 8, e511) => 0)
        && check!(r, "MMUEXT_PIN_L4_TABLE user L4", mmuext1(MMUEXT_PIN_L4_TABLE, l4, 0) => 0)
        && check!(r, "MMUEXT_NEW_USER_BASEPTR user L4",
            mmuext1(MMUEXT_NEW_USER_BASEPTR, l4, 0) => 0)
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("user_mode");
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(w) = Window::new(&mut r, &mut env) else {
        r.finish()
    };
    // Shared info at window page 2 (for vcpu_info.arch.cr2).
    if check!(r, "map shared_info",
        uvm(w.va(2), si.shared_info | P | RW | US | A | D, UVMF_INVLPG) => 0)
    {
        SHARED_VA.store(w.va(2), SeqCst);
    }
    FIX_VA.store(w.va(1), SeqCst);
    let (_, fix_mfn) = env.spare();
    FIX_MFN.store(fix_mfn, SeqCst);
    check!(r, "MMUEXT_CLEAR_PAGE fix-up frame", mmuext1(MMUEXT_CLEAR_PAGE, fix_mfn, 0) => 0);

    let traps = [
        trap(0, 0, um_entry_de),
        trap(6, 0, um_entry_ud),
        trap(13, 0, um_entry_gp),
        trap(14, 0, um_entry_pf),
        trap(0x80, 3, um_entry_int80),
        trap(0x82, 1, um_entry_int82),
        TrapInfo::default(),
    ];
    let ok = check!(r, "set_trap_table", set_trap_table(&traps) => 0);
    let cb = CallbackRegister {
        type_: CALLBACKTYPE_SYSCALL,
        flags: CALLBACKF_MASK_EVENTS,
        address: um_entry_syscall as *const () as u64,
        ..CallbackRegister::default()
    };
    // SAFETY: registers an entry point; the hypervisor reads `cb`.
    let ok = ok
        && rc(
            &mut r,
            "callback_op(register, syscall)",
            unsafe { hypercall2(CALLBACK_OP, u64::from(CALLBACKOP_REGISTER), addr(&cb)) },
            0,
        );
    let kstack = KERNEL_STACK.top();
    // SAFETY: names the stack bounces from user mode land on.
    let ok = ok
        && rc(
            &mut r,
            "stack_switch",
            unsafe { hypercall2(STACK_SWITCH, u64::from(FLAT_KERNEL_SS), kstack) },
            0,
        );
    // SAFETY: GS is not used by this kernel's Rust code.
    let ok = ok
        && rc(&mut r, "set_segment_base(GS_KERNEL)", unsafe { hypercall2(SET_SEGMENT_BASE, u64::from(SEGBASE_GS_KERNEL), addr(&KERNEL_GS)) }, 0)
        // SAFETY: as above; the user base is inactive while the kernel runs.
        && rc(&mut r, "set_segment_base(GS_USER)", unsafe { hypercall2(SET_SEGMENT_BASE, u64::from(SEGBASE_GS_USER), addr(&USER_GS)) }, 0);
    let ok = ok && kernel_only_page(&mut r, &mut env) && user_table(&mut r, &mut env);
    if !ok {
        r.finish()
    }
    r.check("kernel GS reads its mark", kernel_gs0() == GS_KERNEL_MARK);

    let tsd = expect::text(si.cmd_line_bytes())
        .split(' ')
        .any(|w| w == "tsd");
    let cr4: u64;
    // SAFETY: emulated read of CR4.
    unsafe { asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack)) };
    if tsd {
        // SAFETY: TSD only makes user-mode `rdtsc` fault, which is the
        // point; it is cleared once the process has ended.
        unsafe { asm!("mov cr4, {}", in(reg) cr4 | CR4_TSD, options(nomem, nostack)) };
        U_TSD.store(1, SeqCst);
    }
    println!("entering user mode");
    let user_sp = USER_STACK.top() - 8;
    let args = [user_main as *const () as u64, user_sp, 0, 0];
    // SAFETY: handlers, callback, kernel stack and user table are in place;
    // `um_enter_user` only enters user mode, and the process ends in
    // `kill`, which unwinds to here. Faults in user mode go to this
    // file's handlers, not to tests::fixup's.
    let result = unsafe { fixup::catch(um_enter_user, args) }.unwrap_or(KILLED_OTHER);
    println!("user process ended: {result:#x}");
    // SAFETY: as above.
    unsafe { asm!("mov cr4, {}", in(reg) cr4, options(nomem, nostack)) };
    check(&mut r, result);
    r.finish()
}

fn check(r: &mut Report, result: u64) {
    let g = |s: &AtomicU64| s.load(SeqCst);
    r.check(
        format_args!(
            "process killed for #GP (result {result:#x}; unexpected {:#x} at {:#x})",
            g(&K_UNEXPECTED),
            g(&K_UNEXPECTED_RIP)
        ),
        result == KILLED_GP,
    );
    let sum = ARGS.iter().fold(0u64, |a, &b| a.wrapping_add(b));
    r.check(
        "syscall: the kernel got all six arguments",
        g(&K_SUM_ARGS_OK) == 1,
    );
    r.check(
        format_args!("syscall: result {sum:#x} (got {:#x})", g(&U_SUM_RET)),
        g(&U_SUM_RET) == sum,
    );
    r.check(
        "syscall: argument registers preserved",
        g(&U_SUM_REGS_OK) == 1,
    );
    let after = g(&U_SUM_AFTER);
    r.check(
        format_args!(
            "syscall frame: rcx = rip = {after:#x} (got {:#x}, {:#x}), cs {:#x} (0xe033, saved mask 1), ss {:#x}, rsp {:#x} ({:#x})",
            g(&K_SUM_RCX),
            g(&K_SUM_RIP),
            g(&K_SUM_CS),
            g(&K_SUM_SS),
            g(&K_SUM_RSP),
            g(&U_SUM_RSP)
        ),
        g(&K_SUM_RCX) == after
            && g(&K_SUM_RIP) == after
            && g(&K_SUM_CS) == u64::from(FLAT_USER_CS) | 1 << 32
            && g(&K_SUM_SS) == u64::from(FLAT_USER_SS)
            && g(&K_SUM_RSP) == g(&U_SUM_RSP),
    );
    let (fr11, frfl) = (g(&K_SUM_R11), g(&K_SUM_RFLAGS));
    r.check(
        format_args!(
            "syscall frame: r11 {fr11:#x} = user rflags, frame rflags {frfl:#x} (IF = !mask)"
        ),
        (fr11 ^ frfl) & !(RFLAGS_IF | RFLAGS_IOPL) == 0 && fr11 & 2 != 0 && frfl & RFLAGS_IF == 0,
    );
    r.check(
        format_args!("syscall: kernel GS in the callback ({:#x})", g(&K_SUM_GS)),
        g(&K_SUM_GS) == GS_KERNEL_MARK,
    );
    let (rcx, r11, fl) = (g(&U_SUM_RCX), g(&U_SUM_R11), g(&U_SUM_FLAGS));
    r.check(
        format_args!("VGCF_in_syscall: sysret gives rcx = rip ({rcx:#x}), r11 = rflags ({r11:#x}, now {fl:#x})"),
        rcx == after && r11 & RFLAGS_IF != 0 && (r11 & !RFLAGS_RF) | 2 == fl,
    );
    r.check(
        format_args!(
            "no VGCF_in_syscall: rax/rcx/r11 from the context ({:#x}, {:#x}, {:#x})",
            g(&U_PLAIN_RAX),
            g(&U_PLAIN_RCX),
            g(&U_PLAIN_R11)
        ),
        g(&U_PLAIN_RAX) == PLAIN_RAX
            && g(&U_PLAIN_RCX) == PLAIN_RCX
            && g(&U_PLAIN_R11) == PLAIN_R11,
    );
    r.check(
        format_args!("syscalls seen by the kernel: 2 (got {})", g(&K_SYSCALLS)),
        g(&K_SYSCALLS) == 2,
    );
    r.check(
        format_args!("user GS reads the user mark ({:#x})", g(&U_GS)),
        g(&U_GS) == GS_USER_MARK,
    );
    r.check(
        format_args!(
            "#PF: once (got {}), error code 6 (user write, not present; got {:#x}), cr2 {:#x} (got {:#x})",
            g(&K_PF_COUNT),
            g(&K_PF_EC),
            g(&FIX_VA),
            g(&K_PF_CR2)
        ),
        g(&K_PF_COUNT) == 1 && g(&K_PF_EC) == 6 && g(&K_PF_CR2) == g(&FIX_VA),
    );
    r.check(
        format_args!(
            "#PF frame: rip at the store {:#x} (got {:#x}), cs {:#x} (0xe033, saved mask 1)",
            g(&U_PF_AT),
            g(&K_PF_RIP),
            g(&K_PF_CS)
        ),
        g(&K_PF_RIP) == g(&U_PF_AT) && g(&K_PF_CS) == u64::from(FLAT_USER_CS) | 1 << 32,
    );
    r.check(
        format_args!(
            "the store ran again and reads back ({:#x})",
            g(&U_PF_READBACK)
        ),
        g(&U_PF_READBACK) == STORE_VALUE,
    );
    r.check(
        format_args!(
            "kernel-only page: user load faults (error code {:#x}, want 4; cr2 {:#x}), rax {:#x}",
            g(&K_KO_EC),
            g(&K_KO_CR2),
            g(&U_KO_RAX)
        ),
        g(&K_KO_EC) == 4 && g(&K_KO_CR2) == KONLY_VA && g(&U_KO_RAX) == FAULT_MARK,
    );
    r.check(
        format_args!(
            "int $0x80 (DPL 3) from user mode: handler, rip after it ({:#x}, got {:#x})",
            g(&U_INT80_AFTER),
            g(&K_INT80_RIP)
        ),
        g(&U_INT80_AFTER) != 0 && g(&K_INT80_RIP) == g(&U_INT80_AFTER),
    );
    r.check(
        format_args!(
            "int $0x82 (DPL 1) from user mode: #GP(0x412) (got {:#x}); resumed ({})",
            g(&K_INT82_GP_EC),
            g(&U_INT_DONE)
        ),
        g(&K_INT82_GP_EC) == 0x412 && g(&U_INT_DONE) == 1,
    );
    r.check(
        format_args!(
            "{} in user mode: #GP(0) (ec {:#x}) at {:#x} (got {:#x}), cs {:#x} (0xe033, saved mask 1)",
            if U_TSD.load(SeqCst) == 1 { "rdtsc with CR4.TSD" } else { "hlt" },
            g(&K_GP_EC),
            g(&U_HLT_AT),
            g(&K_GP_RIP),
            g(&K_GP_CS)
        ),
        g(&K_GP_EC) == 0 && g(&K_GP_RIP) == g(&U_HLT_AT) && g(&K_GP_CS) == u64::from(FLAT_USER_CS) | 1 << 32,
    );
    r.check(
        format_args!("back in the kernel: kernel GS ({:#x})", kernel_gs0()),
        kernel_gs0() == GS_KERNEL_MARK,
    );
    r.check(
        "back in the kernel: kernel-only page still readable",
        read_u64(KONLY_VA) == KONLY_MARK,
    );
}
