//! Domain 0, the management domain ([`main`]; the `dom0` binary is it).
//!
//! It reports what the domain builder gave it (start_info, its memory,
//! its command line and boot module) and what the hypervisor says it is.
//! The domUs its boot module names ([`domus`]: a PV kernel, or a boot
//! bundle of kernels with their command lines, ramdisks, disks and
//! network interfaces) it builds with the toolstack (crate `toolstack`)
//! and runs until they shut down, then destroys them: their consoles
//! shown here as `domU<id>| ...`, their xenstore served, their disks by
//! the block back end ([`blkback`]), their interfaces by the network back
//! end and switch ([`netback`]). Then it powers the machine off. Its
//! device drivers come in a later issue.
//!
//! Command line: `halt` powers off (the default); `reboot` and `crash` end
//! with those shutdown reasons instead.
#![no_std]

extern crate alloc;

pub mod blkback;
pub mod consback;
pub mod domus;
pub mod grants;
pub mod handshake;
pub mod netback;
pub mod support;
pub mod window;

use guest_abi::hypercall::{
    xen_version_capabilities, xen_version_extraversion, xen_version_version,
};
use guest_abi::rt::{shutdown, StartInfoRef};
use guest_abi::sched::{SHUTDOWN_CRASH, SHUTDOWN_POWEROFF, SHUTDOWN_REBOOT};
use guest_abi::{println, xen};

pub(crate) fn c_str(bytes: &[u8]) -> &str {
    let n = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..n]).unwrap_or("<not utf-8>")
}

/// dom0's whole life.
pub fn main(si: StartInfoRef) -> ! {
    let mut extra = [0u8; 16];
    let mut caps = [0u8; 1024];
    let v = xen_version_version();
    let _ = xen_version_extraversion(&mut extra);
    let _ = xen_version_capabilities(&mut caps);
    println!(
        "dom0: running on Xen-compatible hypervisor {}.{}{} ({})",
        v >> 16,
        v & 0xffff,
        c_str(&extra),
        c_str(&caps).trim_end()
    );
    println!("dom0: start_info magic {}", si.magic_str());
    println!(
        "dom0: flags {:#x}{}{}",
        si.flags,
        if si.flags & xen::SIF_PRIVILEGED != 0 {
            " privileged"
        } else {
            ""
        },
        if si.flags & xen::SIF_INITDOMAIN != 0 {
            " initial-domain"
        } else {
            ""
        }
    );
    println!(
        "dom0: memory {} pages ({} MiB)",
        si.nr_pages,
        (si.nr_pages * 4096) >> 20
    );
    println!("dom0: shared_info at machine address {:#x}", si.shared_info);
    println!(
        "dom0: page tables at {:#x} ({} frames), P2M list at {:#x}",
        si.pt_base, si.nr_pt_frames, si.mfn_list
    );
    if si.mod_len != 0 {
        println!(
            "dom0: boot module: {} bytes at {:#x}",
            si.mod_len, si.mod_start
        );
        domus::run(si);
    } else {
        println!("dom0: no boot module");
    }
    let cmdline = c_str(&si.cmd_line);
    println!("dom0: command line: \"{cmdline}\"");
    let reason = if cmdline.split_ascii_whitespace().any(|w| w == "reboot") {
        SHUTDOWN_REBOOT
    } else if cmdline.split_ascii_whitespace().any(|w| w == "crash") {
        SHUTDOWN_CRASH
    } else {
        SHUTDOWN_POWEROFF
    };
    println!(
        "dom0: nothing else to do yet; shutting down ({})",
        guest_abi::sched::shutdown_reason_name(reason)
    );
    shutdown(reason)
}
