//! Links the kernel binary with hv's linker script (only for the bare-metal target).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=hv.ld");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("TARGET").as_deref() == Ok("x86_64-unknown-none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/hv.ld");
        // PIC code generation (the target's default) linked as a position-dependent
        // executable: hv lives at 0xffff82d0_80000000, outside the ±2 GiB windows
        // that the static relocation model's code models can address.
        println!("cargo:rustc-link-arg-bins=--no-pie");
        // A build id, for XENVER_build_id.
        println!("cargo:rustc-link-arg-bins=--build-id=sha1");
    }
}
