//! Link each conformance guest with the PV linker script of its layout.
//!
//! Every guest uses `guest-abi/pv64.ld` (the VIRT_BASE layout) except those
//! in [`PHYSICAL_LAYOUT`], which declare `pv_guest!(..., layout = physical)`
//! and link with `guest-abi/pv64-low.ld`. guest-abi's build script hands
//! over both paths (`DEP_GUEST_ABI_PV64_LD`, `DEP_GUEST_ABI_PV64_LOW_LD`);
//! the script is passed per binary because it differs between them.

use std::env;
use std::fs;
use std::path::Path;

/// Guests linked virtual = physical (`pv64-low.ld`).
const PHYSICAL_LAYOUT: &[&str] = &["low_layout"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // New binaries need their link arguments.
    println!("cargo:rerun-if-changed=src/bin");
    if env::var("TARGET").as_deref() != Ok("x86_64-unknown-none") {
        return;
    }
    let high = env::var("DEP_GUEST_ABI_PV64_LD").expect("guest-abi's build script sets it");
    let low = env::var("DEP_GUEST_ABI_PV64_LOW_LD").expect("guest-abi's build script sets it");
    println!("cargo:rustc-link-arg-bins=--no-pie");
    let bins = fs::read_dir(Path::new("src/bin")).expect("tests/src/bin exists");
    for entry in bins.flatten() {
        let path = entry.path();
        let name = if path.is_dir() && path.join("main.rs").is_file() {
            path.file_name()
        } else if path.extension().is_some_and(|e| e == "rs") {
            path.file_stem()
        } else {
            None
        };
        let Some(name) = name.and_then(|n| n.to_str()) else {
            continue;
        };
        let script = if PHYSICAL_LAYOUT.contains(&name) {
            &low
        } else {
            &high
        };
        println!("cargo:rustc-link-arg-bin={name}=-T{script}");
    }
}
