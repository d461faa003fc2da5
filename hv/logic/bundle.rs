//! The boot bundle: several images packed into the one module QEMU's PVH
//! loader passes, written by `cargo xtask` and read here. The format, its
//! parser and its checks live in the `boot-bundle` crate, shared with the
//! writer in `cargo xtask`; this module keeps the name `hv::bundle`.

pub use boot_bundle::{
    parse, Bundle, BundleEntry, BundleError, MAGIC, MAX_CMDLINE_LEN, MAX_ENTRIES,
};
