//! Returning to a frame the CPU refuses, with a failsafe callback
//! registered, as on Xen 4.17 for a 64-bit PV guest.
//!
//! Xen calls the failsafe callback (frame `rcx, r11, ds, es, fs, gs, rip,
//! cs, rflags, rsp, ss`) only when reloading the guest's data segments on
//! a context switch fails. An `iret` hypercall whose frame the CPU then
//! refuses is not that case: the fault is handled as the guest's own,
//! raised at the frame being returned to. So with a bogus cs (0xfff0) or
//! ss (0xfff3) the guest gets #GP with the selector as error code, and
//! with a non-canonical rip #GP(0), each time in a bounce frame that shows
//! the refused context (cs with RPL 0: guest kernel mode); the failsafe
//! callback never runs. (With `VGCF_in_syscall` and a canonical rip, Xen
//! returns with `sysret`, which ignores the frame's selectors; hv does not
//! model that yet, so that case is not checked here.)
//!
//! With `nohandler` there is no #GP entry in the trap table: the same bad
//! `iret` crashes the domain, failsafe callback or not.
//!
//! @covers: iret callback_op.register
//! @variant: nohandler cmdline=nohandler expect-result=none expect-exit=crash expect-line="about to iret to cs 0xfff0 with no #GP handler" expect-line="(hv) ERROR: CPU0: domain 0 crashed: #GP (vector 13)" expect-line="(XEN) d0v0 Unhandled: vec 13, #GP[fff0]" expect-line="(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds."
#![no_std]
#![no_main]

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use guest_abi::arch::VGCF_IN_SYSCALL;
use guest_abi::callback::{CallbackRegister, CALLBACKOP_REGISTER, CALLBACKTYPE_FAILSAFE};
use guest_abi::hypercall::{hypercall2, CALLBACK_OP};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::TrapInfo;
use tests::check;
use tests::expect;
use tests::fixup;
use tests::pages::Pages;

guest_abi::pv_guest!(main, name = "failsafe");

const KERNEL_CS: u64 = 0xe033;
const KERNEL_SS: u64 = 0xe02b;
/// The kernel's cs as an iret frame gives it: RPL 0 stays in guest
/// kernel mode (RPL 3 would mean guest user mode).
const IRET_KERNEL_CS: u64 = 0xe030;
const RCX_MARK: u64 = 0x0c0c_0c0c_0c0c_0c0c;
const R11_MARK: u64 = 0x1111_1111_1111_1111;

/// How often the failsafe callback ran.
static FS_COUNT: AtomicU64 = AtomicU64::new(0);
/// After a normal return: cs, rsp, rcx.
static LANDED: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];

/// The stack the iret frames name (the bounce frames are written there).
static IRET_STACK: Pages<1> = Pages::new();

global_asm!(
    r#"
    .pushsection .text.failsafe_probe, "ax"
    /* failsafe_iret(cs, rip, flags, ss), a body for tests::fixup::catch:
       iret hypercall to rip (0: the landing below) with cs and ss, rflags
       0x2 (events stay masked) and rsp the top of IRET_STACK. Unwinds
       with 1 if it landed normally, 3 from the failsafe callback; a #GP
       is caught by tests::fixup. */
    .globl failsafe_iret
failsafe_iret:
    lea rax, [rip + {stack} + 4096]
    push rcx
    push rax
    push 2
    push rdi
    lea r8, [rip + 5f]
    test rsi, rsi
    cmovnz r8, rsi
    push r8
    push rdx
    movabs rcx, {rcx_mark}
    movabs r11, {r11_mark}
    xor eax, eax
    jmp hypercall_page + 23 * 32
5:
    mov rax, cs
    mov [rip + {landed}], rax
    mov [rip + {landed} + 8], rsp
    mov [rip + {landed} + 16], rcx
    mov eax, 1
    xor edx, edx
    jmp fixup_unwind

    .globl failsafe_callback
failsafe_callback:
    inc qword ptr [rip + {fs_count}]
    mov eax, 3
    xor edx, edx
    jmp fixup_unwind
    .popsection
"#,
    stack = sym IRET_STACK,
    landed = sym LANDED,
    fs_count = sym FS_COUNT,
    rcx_mark = const RCX_MARK,
    r11_mark = const R11_MARK,
);

unsafe extern "C" {
    fn failsafe_iret(cs: u64, rip: u64, flags: u64, ss: u64) -> u64;
    fn failsafe_callback();
}

/// 1 if the iret landed, 2 if it raised #GP (the only vector the trap
/// table routes to `tests::fixup`), 3 if the failsafe callback ran.
fn iret_to(cs: u64, rip: u64, flags: u64, ss: u64) -> u64 {
    // SAFETY: `failsafe_iret` is a body `catch` can run: the iret lands
    // in it on IRET_STACK, or raises #GP (caught), or enters the failsafe
    // callback; all three of its own endings jump to `fixup_unwind` with rdx 0,
    // and it writes only IRET_STACK, LANDED and FS_*.
    unsafe { fixup::catch(failsafe_iret, [cs, rip, flags, ss]) }.unwrap_or(2)
}

fn stack_top() -> u64 {
    IRET_STACK.top()
}

/// Checks the #GP bounce frame of a refused iret.
fn check_gp(r: &mut Report, what: &str, ec: u64, rip: Option<u64>, cs: u64, ss: u64) {
    let fault = fixup::last_frame();
    let f = fault.words;
    r.check(
        format_args!(
            "{what}: rcx/r11 from the iret frame ({:#x}, {:#x})",
            f[0], f[1]
        ),
        f[0] == RCX_MARK && f[1] == R11_MARK,
    );
    check!(r, "{what}: error code", f[2] => ec);
    r.check(
        format_args!("{what}: rip of the refused frame (got {:#x})", f[3]),
        rip.is_none_or(|rip| f[3] == rip),
    );
    let want_cs = (cs & !3) | 1 << 32;
    r.check(
        format_args!(
            "{what}: cs {want_cs:#x}: RPL 0, events masked (got {:#x})",
            f[4]
        ),
        f[4] == want_cs,
    );
    // RF (bit 16) as the CPU left it: QEMU's fetch fault at a
    // non-canonical rip sets it, on Xen as on hv.
    r.check(
        format_args!(
            "{what}: rflags 0x2: IF clear as events are masked (got {:#x})",
            f[5]
        ),
        f[5] & !0x1_0000 == 2,
    );
    r.check(
        format_args!(
            "{what}: rsp {:#x}, ss {ss:#x} of the refused frame (got {:#x}, {:#x})",
            stack_top(),
            f[6],
            f[7]
        ),
        f[6] == stack_top() && f[7] == ss,
    );
    let want_sp = stack_top() - 8 * 8;
    check!(r, "{what}: frame below the refused rsp", fault.rsp => want_sp);
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("failsafe");
    let nohandler = expect::text(si.cmd_line_bytes())
        .split(' ')
        .any(|w| w == "nohandler");
    let gp = if nohandler {
        TrapInfo::default()
    } else {
        fixup::catcher(13)
    };
    let trc = fixup::set_trap_table(&[gp, TrapInfo::default()]);
    check!(r, "set_trap_table", trc => 0);
    let reg = CallbackRegister {
        type_: CALLBACKTYPE_FAILSAFE,
        address: failsafe_callback as *const () as usize as u64,
        ..CallbackRegister::default()
    };
    // SAFETY: the hypervisor reads the struct.
    let crc = unsafe {
        hypercall2(
            CALLBACK_OP,
            u64::from(CALLBACKOP_REGISTER),
            core::ptr::addr_of!(reg) as u64,
        )
    };
    if !check!(r, "callback_op(register failsafe)", crc => 0) {
        r.finish()
    }

    if nohandler {
        println!("about to iret to cs 0xfff0 with no #GP handler");
        let got = iret_to(0xfff0, 0, 0, KERNEL_SS);
        r.check(
            format_args!("the bad iret crashed the domain (got {got})"),
            false,
        );
        r.finish()
    }

    // A good frame first: the probe itself works.
    let got = iret_to(IRET_KERNEL_CS, 0, 0, KERNEL_SS);
    r.check(
        format_args!("iret to a good frame lands (got {got})"),
        got == 1,
    );
    let land_rip = LANDED[2].load(SeqCst);
    r.check(
        format_args!(
            "landed with cs {:#x}, rsp {:#x}",
            LANDED[0].load(SeqCst),
            LANDED[1].load(SeqCst)
        ),
        LANDED[0].load(SeqCst) == KERNEL_CS && LANDED[1].load(SeqCst) == stack_top(),
    );
    r.check(
        format_args!("rcx is the iret frame's ({land_rip:#x})"),
        land_rip == RCX_MARK,
    );

    // The label's address, from a sysret landing (rcx = rip).
    let got = iret_to(IRET_KERNEL_CS, 0, VGCF_IN_SYSCALL, KERNEL_SS);
    r.check(
        format_args!("iret with VGCF_in_syscall lands (got {got})"),
        got == 1,
    );
    let label = LANDED[2].load(SeqCst);

    // With VGCF_in_syscall the return is a sysret, which ignores the
    // frame's selectors: bogus ones land all the same, with sysret's.
    let got = iret_to(0xfff0, 0, VGCF_IN_SYSCALL, 0xfff0);
    r.check(
        format_args!(
            "iret with VGCF_in_syscall and bogus cs/ss 0xfff0 lands (got {got}), cs {:#x}",
            LANDED[0].load(SeqCst)
        ),
        got == 1 && LANDED[0].load(SeqCst) == KERNEL_CS,
    );

    let got = iret_to(0xfff0, 0, 0, KERNEL_SS);
    r.check(
        format_args!("iret to cs 0xfff0: #GP handler (got {got})"),
        got == 2,
    );
    check_gp(&mut r, "cs 0xfff0", 0xfff0, Some(label), 0xfff0, KERNEL_SS);

    let got = iret_to(IRET_KERNEL_CS, 0, 0, 0xfff3);
    r.check(
        format_args!("iret to ss 0xfff3: #GP handler (got {got})"),
        got == 2,
    );
    check_gp(&mut r, "ss 0xfff3", 0xfff0, Some(label), KERNEL_CS, 0xfff3);

    let bad_rip = 0x8000_0000_0000_0000;
    let got = iret_to(IRET_KERNEL_CS, bad_rip, 0, KERNEL_SS);
    r.check(
        format_args!("iret to rip {bad_rip:#x}: #GP handler (got {got})"),
        got == 2,
    );
    check_gp(
        &mut r,
        "non-canonical rip",
        0,
        Some(bad_rip),
        KERNEL_CS,
        KERNEL_SS,
    );

    r.check(
        format_args!(
            "the failsafe callback never ran (ran {} times)",
            FS_COUNT.load(SeqCst)
        ),
        FS_COUNT.load(SeqCst) == 0,
    );
    r.finish()
}
