//! Tells guest crates where the PV linker scripts are.
//!
//! A dependency's build script cannot add link arguments to its dependents,
//! so each guest crate's own `build.rs` passes the script to the linker.
//! Through the `links = "guest-abi"` key, cargo hands it the paths as
//! `DEP_GUEST_ABI_PV64_LD` (VIRT_BASE layout) and `DEP_GUEST_ABI_PV64_LOW_LD`
//! (virtual = physical layout):
//!
//! ```ignore
//! fn main() {
//!     let ld = std::env::var("DEP_GUEST_ABI_PV64_LD").unwrap();
//!     println!("cargo:rustc-link-arg-bins=-T{ld}");
//!     println!("cargo:rustc-link-arg-bins=--no-pie");
//! }
//! ```

use std::env;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    for (key, file) in [("pv64_ld", "pv64.ld"), ("pv64_low_ld", "pv64-low.ld")] {
        let path = dir.join(file);
        println!("cargo:{key}={}", path.display());
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
