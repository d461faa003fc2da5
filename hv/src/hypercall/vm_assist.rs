//! `vm_assist`: per-domain assists. hv records the flags; the assists that
//! change behaviour arrive with the MMU issue.
//!
//! @implements: vm_assist.enable vm_assist.disable

use guest_abi::errno;

use super::HcResult;

/// VM assists valid for a 64-bit PV guest (Xen 4.17's set): 4gb_segments (0),
/// 4gb_segments_notify (1), writable_pagetables (2), pae_extended_cr3 (3),
/// architectural_iopl (4), runstate_update_flag (5), m2p_strict (32).
const VALID: u64 = 0x3f | (1 << 32);

pub fn vm_assist(cmd: u32, ty: u32) -> HcResult {
    // The type is checked before the command, as on Xen.
    if ty >= 64 || VALID & (1 << ty) == 0 {
        return Err(-errno::EINVAL);
    }
    match cmd {
        0 => crate::domain::with_current(|d| d.set_vm_assist(d.vm_assist | 1 << ty)),
        1 => crate::domain::with_current(|d| d.set_vm_assist(d.vm_assist & !(1 << ty))),
        _ => return Err(-errno::ENOSYS),
    }
    Ok(0)
}
