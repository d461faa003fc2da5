//! `vm_assist`: per-domain assists. hv records the flags; the assists that
//! change behaviour arrive with the MMU issue.

use guest_abi::errno;

use super::HcResult;

/// VM assists valid for a 64-bit PV guest (Xen's native set): 4gb_segments,
/// 4gb_segments_notify, writable_pagetables, pae_extended_cr3,
/// architectural_iopl, runstate_update_flag, m2p_strict.
const VALID: u64 = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 8);

pub fn vm_assist(cmd: u32, ty: u32) -> HcResult {
    if ty >= 64 || VALID & (1 << ty) == 0 {
        return Err(-errno::EINVAL);
    }
    match cmd {
        0 => crate::domain::with_current(|d| d.vm_assist |= 1 << ty),
        1 => crate::domain::with_current(|d| d.vm_assist &= !(1 << ty)),
        _ => return Err(-errno::ENOSYS),
    }
    Ok(0)
}
