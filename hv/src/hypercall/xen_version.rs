//! `xen_version`: hv answers as Xen 4.17 does, so guests that check the
//! version see 4.17.
//!
//! @implements: xen_version.version xen_version.extraversion xen_version.compile_info
//! @implements: xen_version.capabilities xen_version.changeset
//! @implements: xen_version.platform_parameters xen_version.get_features
//! @implements: xen_version.pagesize xen_version.guest_handle
//! @implements: xen_version.commandline xen_version.build_id

use guest_abi::errno;
use guest_abi::version::*;

use super::HcResult;

const VERSION: u64 = (4 << 16) | 17;
const EXTRAVERSION: &[u8] = b".0-hv";
/// Xen lists each supported guest type followed by a space; hv runs 64-bit
/// PV guests only.
const CAPABILITIES: &[u8] = b"xen-3.0-x86_64 ";
const CHANGESET: &[u8] = b"hv";
/// HYPERVISOR_VIRT_START for 64-bit PV guests.
const VIRT_START: u64 = 0xffff_8000_0000_0000;

/// XENFEAT bits hv reports, as Xen 4.17 does for a 64-bit PV guest where hv
/// has the feature: pae_pgdir_above_4gb (4) while the pae_extended_cr3
/// assist is on, mmu_pt_update_preserve_ad (5: `MMU_PT_UPDATE_PRESERVE_AD`),
/// highmem_assist (6), dom0 (11) for the initial domain, direct_mapped (17:
/// PV guests see machine frames). Xen's other bits — gnttab_map_avail_bits
/// (7) and memory_op_vnode_supported (13) — arrive with grant tables and
/// NUMA.
fn features(initial: bool, vm_assist: u64) -> u32 {
    let pae = if vm_assist & (1 << 3) != 0 { 1 << 4 } else { 0 };
    pae | (1 << 5) | (1 << 6) | if initial { 1 << 11 } else { 0 } | (1 << 17)
}

/// What a guest without the privilege reads for hv's command line.
const DENIED: &[u8] = b"<denied>";

/// Copies a NUL-padded string into a fixed-size guest buffer of `size` bytes.
fn put_str(arg: u64, s: &[u8], size: usize) -> HcResult {
    let mut buf = [0u8; 1024];
    let n = s.len().min(size - 1);
    buf[..n].copy_from_slice(&s[..n]);
    super::copy_out(arg, &buf[..size])?;
    Ok(0)
}

pub fn xen_version(cmd: u32, arg: u64) -> HcResult {
    match cmd {
        XENVER_VERSION => Ok(VERSION),
        // Takes no argument: a non-null one is refused, as on Xen.
        XENVER_PAGESIZE if arg != 0 => Err(-errno::EINVAL),
        XENVER_PAGESIZE => Ok(4096),
        _ => with_buffer(cmd, arg),
    }
}

/// The sub-operations that read or write a guest buffer. Kept out of line so
/// the register-only answers above (the null hypercall) do not pay for
/// these buffers' stack frame.
#[inline(never)]
fn with_buffer(cmd: u32, arg: u64) -> HcResult {
    match cmd {
        XENVER_EXTRAVERSION => put_str(arg, EXTRAVERSION, 16),
        XENVER_COMPILE_INFO => {
            let mut info = [0u8; 144];
            let fields: [(&[u8], usize, usize); 4] = [
                (b"rustc", 0, 64),
                (b"hv", 64, 16),
                (b"localdomain", 80, 32),
                (b"unknown", 112, 32),
            ];
            for (s, off, len) in fields {
                let n = s.len().min(len - 1);
                info[off..off + n].copy_from_slice(&s[..n]);
            }
            super::copy_out(arg, &info)?;
            Ok(0)
        }
        XENVER_CAPABILITIES => put_str(arg, CAPABILITIES, 1024),
        XENVER_CHANGESET => put_str(arg, CHANGESET, 64),
        XENVER_PLATFORM_PARAMETERS => {
            super::copy_out(arg, &VIRT_START.to_le_bytes())?;
            Ok(0)
        }
        XENVER_GET_FEATURES => {
            let mut fi = [0u8; 8];
            super::copy_in(arg, &mut fi)?;
            let idx = u32::from_le_bytes([fi[0], fi[1], fi[2], fi[3]]);
            if idx != 0 {
                return Err(-errno::EINVAL);
            }
            let (initial, assists) = crate::domain::with_current(|d| (d.dom.initial, d.vm_assist));
            fi[4..8].copy_from_slice(&features(initial, assists).to_le_bytes());
            super::copy_out(arg, &fi)?;
            Ok(0)
        }
        XENVER_GUEST_HANDLE => {
            let handle = crate::domain::with_current(|d| d.dom.handle);
            super::copy_out(arg, &handle)?;
            Ok(0)
        }
        XENVER_COMMANDLINE => {
            if crate::domain::with_current(|d| d.dom.privileged) {
                put_str(arg, crate::hv_cmdline().as_bytes(), 1024)
            } else {
                put_str(arg, DENIED, 1024)
            }
        }
        XENVER_BUILD_ID => {
            // struct xen_build_id { u32 len; u8 buf[]; }: with no buffer the
            // size is returned; otherwise the header is read, a zero length
            // refused, a short one answered -ENOBUFS, as on Xen.
            let id = crate::arch::x86_64::build_id();
            if id.is_empty() {
                return Err(-errno::ENODATA);
            }
            let size = id.len() as u64;
            if arg == 0 {
                return Ok(size);
            }
            let mut len = [0u8; 4];
            super::copy_in(arg, &mut len)?;
            match u64::from(u32::from_le_bytes(len)) {
                0 => Err(-errno::EINVAL),
                n if n < size => Err(-errno::ENOBUFS),
                _ => {
                    let buf = arg.checked_add(4).ok_or(-errno::EFAULT)?;
                    super::copy_out(buf, id)?;
                    Ok(size)
                }
            }
        }
        _ => Err(-errno::ENOSYS),
    }
}
