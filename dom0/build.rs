//! Link dom0 with guest-abi's PV linker script (the VIRT_BASE layout), whose
//! path guest-abi's build script hands over as `DEP_GUEST_ABI_PV64_LD`.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("TARGET").as_deref() == Ok("x86_64-unknown-none") {
        let script = env::var("DEP_GUEST_ABI_PV64_LD").expect("guest-abi's build script sets it");
        println!("cargo:rustc-link-arg-bins=-T{script}");
        println!("cargo:rustc-link-arg-bins=--no-pie");
    }
}
