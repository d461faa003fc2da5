//! Domain 0, the management domain ([`main`]; the `dom0` binary is it).
//!
//! It reports what the domain builder gave it (start_info, its memory,
//! its command line and boot module) and what the hypervisor says it is.
//! A boot module that is a PV kernel (ELF with Xen's notes) it builds and
//! runs as a domU with the toolstack (crate `toolstack`): 8 MiB, the
//! module's kernel, its console lines shown here as `domU<id>| ...`,
//! until it shuts down; then destroys it. Then it powers the machine off.
//! Later issues grow it into the driver, xenstore and backend domain.
//!
//! Command line: `halt` powers off (the default); `reboot` and `crash` end
//! with those shutdown reasons instead.
#![no_std]

use guest_abi::hypercall::{
    xen_version_capabilities, xen_version_extraversion, xen_version_version,
};
use guest_abi::rt::{shutdown, StartInfoRef};
use guest_abi::sched::{SHUTDOWN_CRASH, SHUTDOWN_POWEROFF, SHUTDOWN_REBOOT};
use guest_abi::{println, xen};

fn c_str(bytes: &[u8]) -> &str {
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
        run_module(si);
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

/// Memory of the domU built from the boot module.
const DOMU_PAGES: u64 = 2048;

/// Builds the boot module as a domU and runs it to its shutdown, if it is
/// a PV kernel.
fn run_module(si: StartInfoRef) {
    let len = usize::try_from(si.mod_len).unwrap_or(0);
    // SAFETY: the domain builder mapped the module at `mod_start`,
    // `mod_len` bytes, for good.
    let image = unsafe { core::slice::from_raw_parts(si.mod_start as *const u8, len) };
    if toolstack::elf::parse(image).is_err() {
        println!("dom0: the boot module is not a PV kernel: nothing to run");
        return;
    }
    // Three pages of our initial mapping's padding (at least 512 KiB,
    // after the bootstrap tables and the boot stack page, on hv as on
    // Xen; nothing of ours uses it): our shared-info page, the domU's
    // console ring and the builder's scratch page.
    let padding = si.pt_base + (si.nr_pt_frames + 2) * 4096;
    let (shared, ring, scratch) = (padding, padding + 4096, padding + 2 * 4096);
    // SAFETY: the hypervisor checks the frame (our own shared-info page).
    let rc = unsafe {
        guest_abi::hypercall::hypercall3(
            guest_abi::hypercall::UPDATE_VA_MAPPING,
            shared,
            si.shared_info | 0x67,
            xen::UVMF_INVLPG,
        )
    };
    if rc != 0 {
        println!("dom0: cannot map our shared-info page at {shared:#x} ({rc})");
        return;
    }
    let cfg = toolstack::Config {
        image,
        pages: DOMU_PAGES,
        cmdline: b"",
        ramdisk: &[],
    };
    let built = match toolstack::build(&cfg, &mut toolstack::serve::Scratch { va: scratch }) {
        Ok(b) => b,
        Err(e) => {
            println!("dom0: building the domU: {e}");
            return;
        }
    };
    let id = built.domid;
    println!("dom0: built domain {id} from the boot module ({DOMU_PAGES} pages); running it");
    let shown = |line: &[u8]| {
        println!(
            "domU{id}| {}",
            core::str::from_utf8(line).unwrap_or("<not utf-8>")
        );
    };
    match toolstack::serve::run(&built, shared, ring, shown) {
        Ok(reason) => println!(
            "dom0: domain {id} shut down ({}) and is destroyed",
            guest_abi::sched::shutdown_reason_name(reason)
        ),
        Err(e) => println!("dom0: running domain {id}: {e}"),
    }
}
