//! `vm_assist`: per-domain assists. hv records the flags; the assists that
//! change behaviour arrive with the MMU issue.
//!
//! The type is checked before the command, as on Xen, so this handler
//! checks the command against hv's list itself.

use guest_abi::errno::Errno;
use guest_abi::xen::{VMASST_CMD_DISABLE, VMASST_CMD_ENABLE};

use guest_abi::hypercall::VM_ASSIST;

use super::{refused, Outcome};

/// VM assists valid for a 64-bit PV guest (Xen 4.17's set): 4gb_segments (0),
/// 4gb_segments_notify (1), writable_pagetables (2), pae_extended_cr3 (3),
/// architectural_iopl (4), runstate_update_flag (5), m2p_strict (32).
pub(super) const VALID: u64 = 0x3f | (1 << 32);

pub fn vm_assist(cmd: u32, ty: u32) -> Outcome {
    // The type is checked before the command, as on Xen.
    if ty >= 64 || VALID & (1 << ty) == 0 {
        return Outcome::Err(Errno::EINVAL);
    }
    if refused::<VM_ASSIST>(cmd) {
        return Outcome::Err(Errno::ENOSYS);
    }
    match cmd {
        VMASST_CMD_ENABLE => {
            crate::domain::with_current(|d| d.set_vm_assist(d.vm_assist | 1 << ty))
        }
        VMASST_CMD_DISABLE => {
            crate::domain::with_current(|d| d.set_vm_assist(d.vm_assist & !(1 << ty)))
        }
        _ => return Outcome::Err(Errno::ENOSYS),
    }
    Outcome::Done(0)
}
