//! `cli` and `sti` from a 64-bit PV kernel, as Xen 4.17 treats them.
//!
//! The kernel runs in ring 3 with the real IOPL 0, so both instructions
//! fault; the hypervisor looks at the vCPU's virtual IOPL
//! (`PHYSDEVOP_set_iopl`, 0 at start of day) against the ring it counts the
//! guest kernel as (1, or 0 with the `architectural_iopl` VM assist). If
//! the IOPL covers it, the instruction is a no-op (Xen's `validate` hook:
//! it does not touch `evtchn_upcall_mask`); otherwise the #GP(0) goes to
//! the guest at the instruction. Checked here: at IOPL 0 both fault at
//! their own rip with error code 0 and leave the event mask alone; at
//! IOPL 1 and 3 both complete, the mask unchanged whether it was set or
//! clear; at IOPL 0 with `architectural_iopl` both complete, and without
//! it they fault again.
//!
//! The `nohandler` variant runs a `cli` at IOPL 0 with no trap table: the
//! domain is crashed with #GP on both hypervisors. This is where Debian
//! 12's Linux 6.1 stopped on hv when hv left out a feature bit Linux
//! requires: its panic path runs the native `cli` before it has installed
//! its Xen interrupt ops or raised its IOPL, exactly as here.
//!
//! @covers: physdev_op.set_iopl vm_assist.enable
//! @variant: nohandler cmdline=crash=cli expect-result=none expect-exit=crash expect-line="about to crash: cli" expect-line="(hv) ERROR: CPU0: domain 0 crashed: #GP (vector 13)" expect-line="(XEN) d0v0 Unhandled: vec 13, #GP[0000]"
#![no_std]
#![no_main]

use core::arch::asm;

use guest_abi::hypercall::{hypercall2, vm_assist, PHYSDEV_OP};
use guest_abi::physdev::PHYSDEVOP_SET_IOPL;
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{VMASST_CMD_DISABLE, VMASST_CMD_ENABLE, VMASST_TYPE_ARCHITECTURAL_IOPL};
use tests::fixup::{self, Fault, SharedInfo};
use tests::{check, expect};

guest_abi::pv_guest!(main, name = "cli_sti");

core::arch::global_asm!(
    r#"
    .pushsection .text.cli_sti, "ax"
    .globl cli_sti_body_cli
cli_sti_body_cli:
    lea rax, [rip + cli_sti_body_cli]
    cli
    ret
    .globl cli_sti_body_sti
cli_sti_body_sti:
    lea rax, [rip + cli_sti_body_sti]
    sti
    ret
    .popsection
"#
);

unsafe extern "C" {
    /// A `tests::fixup` body: `cli`; returns its own address.
    fn cli_sti_body_cli(a0: u64, a1: u64, a2: u64, a3: u64) -> u64;
    /// A `tests::fixup` body: `sti`; returns its own address.
    fn cli_sti_body_sti(a0: u64, a1: u64, a2: u64, a3: u64) -> u64;
}

/// Offset of `cli`/`sti` in its body (after the 7-byte `lea`).
const INSN_OFFSET: u64 = 7;

fn set_iopl(iopl: u32) -> i64 {
    // SAFETY: set_iopl reads one u32 from the argument.
    unsafe {
        hypercall2(
            PHYSDEV_OP,
            u64::from(PHYSDEVOP_SET_IOPL),
            &iopl as *const u32 as u64,
        )
    }
}

/// vCPU 0's `evtchn_upcall_mask` (byte 1 of its vcpu_info).
fn upcall_mask(sh: &SharedInfo) -> u8 {
    // SAFETY: the shared-info page is mapped at `sh.va`; a volatile byte
    // read of memory the hypervisor may write.
    unsafe { core::ptr::read_volatile((sh.va + 1) as *const u8) }
}

fn set_upcall_mask(sh: &SharedInfo, v: u8) {
    // SAFETY: as for `upcall_mask`; no event channel is bound and no
    // callback registered, so unmasking delivers nothing.
    unsafe { core::ptr::write_volatile((sh.va + 1) as *mut u8, v) }
}

type Body = unsafe extern "C" fn(u64, u64, u64, u64) -> u64;

const BODIES: [(&str, Body); 2] = [("cli", cli_sti_body_cli), ("sti", cli_sti_body_sti)];

/// Runs one body; `Ok` if the instruction completed.
fn run(body: Body) -> Result<u64, Fault> {
    // SAFETY: the body runs one cli/sti (a no-op or a #GP the catcher
    // takes) and returns its address.
    unsafe { fixup::catch(body, [0; 4]) }
}

/// Both instructions fault with #GP(0) at their own rip, mask unchanged.
fn expect_gp(r: &mut Report, sh: &SharedInfo, when: &str) {
    for (name, body) in BODIES {
        let before = upcall_mask(sh);
        let got = run(body);
        let at = body as usize as u64 + INSN_OFFSET;
        r.check(
            format_args!("{when}: {name} is #GP(0) at the instruction ({got:x?})"),
            got == Err(Fault {
                vector: 13,
                error_code: 0,
                rip: at,
            }),
        );
        check!(r, "{when}: {name} leaves evtchn_upcall_mask", upcall_mask(sh) => before);
    }
}

/// Both instructions complete as no-ops, whatever the mask was.
fn expect_noop(r: &mut Report, sh: &SharedInfo, when: &str) {
    for mask in [1u8, 0] {
        set_upcall_mask(sh, mask);
        for (name, body) in BODIES {
            let got = run(body);
            r.check(
                format_args!("{when}: {name} completes (mask {mask}; {got:x?})"),
                got == Ok(body as usize as u64),
            );
            check!(r, "{when}: {name} leaves evtchn_upcall_mask {mask}", upcall_mask(sh) => mask);
        }
    }
    set_upcall_mask(sh, 1);
}

fn crash() -> ! {
    println!("about to crash: cli");
    // SAFETY: faults (IOPL 0, no trap table): the domain is crashed.
    unsafe { asm!("cli", options(nomem, nostack)) };
    let mut r = Report::new("cli_sti");
    r.check("cli at IOPL 0 without a handler: faulted", false);
    r.finish()
}

fn main(si: StartInfoRef) -> ! {
    let cmdline = expect::text(si.cmd_line_bytes());
    if cmdline.split(' ').any(|w| w == "crash=cli") {
        crash()
    }
    let mut r = Report::new("cli_sti");
    check!(r, "trap table with the #GP catcher", fixup::install() => 0);
    let Some(sh) = SharedInfo::map(si) else {
        r.check("map shared_info", false);
        r.finish()
    };
    check!(r, "evtchn_upcall_mask at start of day", upcall_mask(&sh) => 1);

    expect_gp(&mut r, &sh, "IOPL 0 (start of day)");
    check!(r, "physdev_op set_iopl 1", set_iopl(1) => 0);
    expect_noop(&mut r, &sh, "IOPL 1");
    check!(r, "physdev_op set_iopl 3", set_iopl(3) => 0);
    expect_noop(&mut r, &sh, "IOPL 3");
    check!(r, "physdev_op set_iopl 0", set_iopl(0) => 0);
    expect_gp(&mut r, &sh, "IOPL 0 again");

    let rc = vm_assist(VMASST_CMD_ENABLE, VMASST_TYPE_ARCHITECTURAL_IOPL);
    check!(r, "vm_assist enable architectural_iopl", rc => 0);
    expect_noop(&mut r, &sh, "IOPL 0, architectural_iopl (kernel is ring 0)");
    let rc = vm_assist(VMASST_CMD_DISABLE, VMASST_TYPE_ARCHITECTURAL_IOPL);
    check!(r, "vm_assist disable architectural_iopl", rc => 0);
    expect_gp(&mut r, &sh, "IOPL 0, assist off again");
    r.finish()
}
