//! `vm_assist` (hypercall 21) for a 64-bit PV guest, as Xen 4.17 answers.
//!
//! The valid assists for a 64-bit PV domain are types 0–5 and 32
//! (`m2p_strict`); enabling and disabling each is 0, and doing it twice is
//! still 0 (the call sets or clears a bit). Any other type (including ≥ 64)
//! is `-EINVAL`, any command other than enable/disable is `-ENOSYS`, and
//! Xen checks the type before the command, so a bad type with a bad
//! command is `-EINVAL`. Both arguments are C `unsigned int`s: the upper
//! halves of their registers do not count.
//!
//! @covers: vm_assist.enable vm_assist.disable
#![no_std]
#![no_main]

use guest_abi::errno;
use guest_abi::hypercall::{hypercall2, vm_assist, VM_ASSIST};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{VMASST_CMD_DISABLE, VMASST_CMD_ENABLE};
use tests::check;

guest_abi::pv_guest!(main, name = "vm_assist");

/// Types Xen 4.17 accepts for a 64-bit PV domain, with their names.
const VALID_TYPES: &[(u32, &str)] = &[
    (0, "4gb_segments"),
    (1, "4gb_segments_notify"),
    (2, "writable_pagetables"),
    (3, "pae_extended_cr3"),
    (4, "architectural_iopl"),
    (5, "runstate_update_flag"),
    (32, "m2p_strict"),
];

/// Types that are not assists for a 64-bit PV domain (33 became
/// `mode_switch_no_ibpb` only after 4.17).
const INVALID_TYPES: &[u32] = &[6, 7, 8, 31, 33, 63, 64, 65, 0x8000_0000, 0xffff_ffff];

/// Commands other than enable (0) and disable (1).
const INVALID_CMDS: &[u32] = &[2, 3, 0x8000_0000, 0xffff_ffff];

fn cmd_name(cmd: u32) -> &'static str {
    match cmd {
        VMASST_CMD_ENABLE => "enable",
        VMASST_CMD_DISABLE => "disable",
        _ => "bad cmd",
    }
}

/// `vm_assist` with raw 64-bit registers.
fn raw(cmd: u64, ty: u64) -> i64 {
    // SAFETY: vm_assist only flips per-domain flags; it takes no pointer.
    unsafe { hypercall2(VM_ASSIST, cmd, ty) }
}

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("vm_assist");

    for &(ty, name) in VALID_TYPES {
        for cmd in [
            VMASST_CMD_ENABLE,
            VMASST_CMD_ENABLE,
            VMASST_CMD_DISABLE,
            VMASST_CMD_DISABLE,
        ] {
            let rc = vm_assist(cmd, ty);
            check!(r, format_args!("{} type {ty} ({name})", cmd_name(cmd)), rc => 0);
        }
    }
    for &ty in INVALID_TYPES {
        for cmd in [VMASST_CMD_ENABLE, VMASST_CMD_DISABLE] {
            let rc = vm_assist(cmd, ty);
            check!(r, format_args!("{} type {ty:#x}", cmd_name(cmd)), rc => -errno::EINVAL);
        }
    }

    for &cmd in INVALID_CMDS {
        for ty in [0, 5, 32] {
            let rc = vm_assist(cmd, ty);
            check!(r, "cmd {cmd:#x} with valid type {ty}", rc => -errno::ENOSYS);
        }
        // The type is checked first.
        for ty in [6, 64, 0xffff_ffff] {
            let rc = vm_assist(cmd, ty);
            check!(r, "cmd {cmd:#x} with invalid type {ty:#x}", rc => -errno::EINVAL);
        }
    }

    // Only the low 32 bits of each register are the argument.
    let high = 1u64 << 32;
    check!(r, "enable, type register 1<<32 | 5 (type 5)", raw(0, high | 5) => 0);
    check!(r, "disable, type register 1<<32 | 5 (type 5)", raw(1, high | 5) => 0);
    check!(r, "enable, type register 1<<32 | 6 (type 6)", raw(0, high | 6) => -errno::EINVAL);
    check!(r, "cmd register 1<<32 | 1 (disable), type 4", raw(high | 1, 4) => 0);
    check!(r, "cmd register 1<<32 | 2 (bad cmd), type 4", raw(high | 2, 4) => -errno::ENOSYS);

    r.finish()
}
