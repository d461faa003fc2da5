//! A boot module (initrd) next to the kernel: the builder maps it right after
//! the kernel image, page aligned, and start_info's `mod_start`/`mod_len` name
//! its virtual address and exact length (Xen 4.17, kernels without
//! `MOD_START_PFN`). The module's bytes must arrive unchanged, and the P2M
//! list must follow the module.
//!
//! @module: tests/data/boot-module.bin
//! @cmdline: module-test
#![no_std]
#![no_main]

use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::{println, xen::SIF_MOD_START_PFN};

guest_abi::pv_guest!(main, name = "boot_module");

/// The same file the runner passes as the module.
static EXPECTED: &[u8] = include_bytes!("../../data/boot-module.bin");

unsafe extern "C" {
    /// End of the image (linker script).
    static __bss_end: u8;
}

const PAGE: u64 = 4096;

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("boot_module");
    let kernel_end = core::ptr::addr_of!(__bss_end) as u64;
    println!(
        "mod_start {:#x} mod_len {} kernel end {:#x} mfn_list {:#x}",
        si.mod_start, si.mod_len, kernel_end, si.mfn_list
    );
    r.check(
        "mod_len is the module's length",
        si.mod_len == EXPECTED.len() as u64,
    );
    r.check(
        "mod_start is a virtual address (no SIF_MOD_START_PFN)",
        si.flags & SIF_MOD_START_PFN == 0,
    );
    r.check(
        "mod_start is page aligned",
        si.mod_start.is_multiple_of(PAGE),
    );
    r.check(
        "mod_start follows the kernel image",
        si.mod_start == kernel_end.next_multiple_of(PAGE),
    );
    let module_end = si.mod_start + si.mod_len;
    r.check(
        "the P2M list follows the module",
        si.mfn_list == module_end.next_multiple_of(PAGE),
    );
    if si.mod_len == EXPECTED.len() as u64 && si.mod_start != 0 {
        let len = EXPECTED.len();
        // SAFETY: the builder mapped [mod_start, mod_start + mod_len) in the
        // initial mapping (checked above against the expected length), and
        // nothing writes it while we read.
        let module = unsafe { core::slice::from_raw_parts(si.mod_start as *const u8, len) };
        r.check("the module's bytes arrived unchanged", module == EXPECTED);
        // The rest of the module's last page is zero.
        let tail_len = usize::try_from(module_end.next_multiple_of(PAGE) - module_end).unwrap_or(0);
        // SAFETY: the rest of the module's last page is part of the initial
        // mapping (the P2M list starts on the next page).
        let tail = unsafe { core::slice::from_raw_parts(module_end as *const u8, tail_len) };
        r.check(
            "the module's last page is zero-padded",
            tail.iter().all(|&b| b == 0),
        );
    }
    r.finish()
}
