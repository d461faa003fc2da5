//! `xen_version`: hv answers as Xen 4.17 does, so guests that check the
//! version see 4.17.

use guest_abi::errno::Errno;
use guest_abi::version::*;

use super::{read_arg, write_arg, HcResult, Outcome, Privileged};
use crate::guest_mem::{GuestSlice, Loaded};

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
/// highmem_assist (6), gnttab_map_avail_bits (7), dom0 (11) for the initial
/// domain, direct_mapped (17: PV guests see machine frames).
///
/// Linux 6.1 (Debian 12's, from 6.1.119 on) panics at its first steps
/// without 5 and 7 ("Xen PV: gnttab_map_avail_bits missing"), so hv
/// reports 7 although it has no grant mapping yet: the bit promises that
/// `GNTTABOP_map_grant_ref` keeps the PTE's available bits, and a grant
/// table op that only ever answers `-ENOSYS` keeps that promise; grant
/// mapping must keep it when it comes. memory_op_vnode_supported (13)
/// waits for NUMA.
fn features(initial: bool, vm_assist: u64) -> u32 {
    let pae = if vm_assist & (1 << 3) != 0 { 1 << 4 } else { 0 };
    pae | (1 << 5) | (1 << 6) | (1 << 7) | if initial { 1 << 11 } else { 0 } | (1 << 17)
}

/// What a guest without the privilege reads for hv's command line.
const DENIED: &[u8] = b"<denied>";

/// `s`, truncated and NUL-padded to a string buffer of `N` bytes.
fn padded<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut buf = [0u8; N];
    for (b, &c) in buf.iter_mut().take(N.saturating_sub(1)).zip(s) {
        *b = c;
    }
    buf
}

/// Copies a NUL-padded string out to a guest string buffer (`[u8; N]`).
fn put_str<const N: usize>(arg: u64, s: &[u8]) -> HcResult {
    write_arg::<[u8; N]>(arg, &padded(s))?;
    Ok(0)
}

pub fn xen_version(cmd: u32, arg: u64) -> Outcome {
    match cmd {
        XENVER_VERSION => Outcome::Done(VERSION),
        // Takes no argument: a non-null one is refused, as on Xen.
        XENVER_PAGESIZE if arg != 0 => Outcome::Err(Errno::EINVAL),
        XENVER_PAGESIZE => Outcome::Done(4096),
        _ => with_buffer(cmd, arg).into(),
    }
}

/// hv's command line, for a privileged caller.
fn commandline<const N: usize>(_: Privileged, arg: u64) -> HcResult {
    put_str::<N>(arg, crate::hv_cmdline().as_bytes())
}

/// The sub-operations that read or write a guest buffer. Kept out of line so
/// the register-only answers above (the null hypercall) do not pay for
/// these buffers' stack frame.
#[inline(never)]
fn with_buffer(cmd: u32, arg: u64) -> HcResult {
    match cmd {
        XENVER_EXTRAVERSION => put_str::<{ size_of::<XenExtraversion>() }>(arg, EXTRAVERSION),
        XENVER_COMPILE_INFO => {
            let info = XenCompileInfo {
                compiler: padded(b"rustc"),
                compile_by: padded(b"hv"),
                compile_domain: padded(b"localdomain"),
                compile_date: padded(b"unknown"),
            };
            write_arg(arg, &info)?;
            Ok(0)
        }
        XENVER_CAPABILITIES => put_str::<{ size_of::<XenCapabilitiesInfo>() }>(arg, CAPABILITIES),
        XENVER_CHANGESET => put_str::<{ size_of::<XenChangesetInfo>() }>(arg, CHANGESET),
        XENVER_PLATFORM_PARAMETERS => {
            let params = XenPlatformParameters {
                virt_start: VIRT_START,
            };
            write_arg(arg, &params)?;
            Ok(0)
        }
        XENVER_GET_FEATURES => {
            let mut fi: XenFeatureInfo = read_arg(arg)?;
            if fi.submap_idx != 0 {
                return Err(Errno::EINVAL);
            }
            let (initial, assists) = crate::domain::with_current(|d| (d.dom.initial, d.vm_assist));
            fi.submap = features(initial, assists);
            write_arg(arg, &fi)?;
            Ok(0)
        }
        XENVER_GUEST_HANDLE => {
            let handle: XenDomainHandle = crate::domain::with_current(|d| d.handle);
            write_arg(arg, &handle)?;
            Ok(0)
        }
        XENVER_COMMANDLINE => {
            const N: usize = size_of::<XenCommandline>();
            match Privileged::check() {
                Some(privileged) => commandline::<N>(privileged, arg),
                None => put_str::<N>(arg, DENIED),
            }
        }
        XENVER_BUILD_ID => {
            // struct xen_build_id { u32 len; u8 buf[]; }: with no buffer the
            // size is returned; otherwise the header is read, a zero length
            // refused, a short one answered -ENOBUFS, as on Xen.
            let id = crate::arch::x86_64::build_id();
            if id.is_empty() {
                return Err(Errno::ENODATA);
            }
            let size = id.len() as u64;
            if arg == 0 {
                return Ok(size);
            }
            let XenBuildId { len } = read_arg(arg)?;
            match u64::from(len) {
                0 => Err(Errno::EINVAL),
                n if n < size => Err(Errno::ENOBUFS),
                _ => {
                    // The buffer follows the header (C's flexible `buf[]`).
                    let buf = arg
                        .checked_add(size_of::<XenBuildId>() as u64)
                        .ok_or(Errno::EFAULT)?;
                    GuestSlice::<u8>::per_element(buf, size).write_from(&Loaded, 0, id)?;
                    Ok(size)
                }
            }
        }
        _ => Err(Errno::ENOSYS),
    }
}
