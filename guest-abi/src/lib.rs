//! Xen 4.17's x86_64 PV guest ABI, for guests and for the hypervisor.
//!
//! Everything a PV guest and `hv` must agree on is declared here once: the
//! hypercall numbers ([`hypercall`]), error numbers ([`errno`]), the shared
//! structures ([`xen`], [`version`], [`sched`]) and the constants of the
//! public headers. Struct layouts mirror Xen's C headers (interface version
//! `0x00040e00`, the latest the 4.17 headers know): `#[repr(C)]`, padding made
//! explicit as `_pad` fields, a `const` size/offset assertion under each
//! struct, and `tests/layout.rs` comparing every one of them with the C
//! compiler's view of `/usr/include/xen`.
//!
//! The crate is `no_std` and builds for the host (so `hv`'s host tests can
//! use the types) and for `x86_64-unknown-none`. The hypercall wrappers and
//! the guest runtime (`rt`) exist only on `target_os = "none"`.
//!
//! # Writing a PV guest
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//!
//! use guest_abi::{println, rt::StartInfoRef};
//!
//! guest_abi::pv_guest!(main, name = "hello");
//!
//! fn main(si: StartInfoRef) -> ! {
//!     println!("hello from {}", si.magic_str());
//!     guest_abi::rt::poweroff()
//! }
//! ```
//!
//! `pv_guest!(MAIN, name = "NAME")` takes a function `fn(&'static
//! StartInfo) -> !` and a string literal (the `GUEST_OS` note). It emits, into
//! the guest's own crate: the Xen ELF notes (section `.note.Xen`), the entry
//! point `_start` (section `.text.entry`) with a 64 KiB stack in `.bss`, the
//! 4 KiB `hypercall_page`, and the `#[panic_handler]`. Emitting them from a
//! macro rather than from this crate keeps `hv`'s kernel, which also links
//! this crate, free of a second entry point and panic handler.
//!
//! The guest binary links with `guest-abi/pv64.ld` and `--no-pie`; the
//! `tests` crate's `build.rs` shows how.
#![no_std]

pub mod arch;
pub mod console;
pub mod elfnote;
pub mod errno;
pub mod features;
pub mod hypercall;
pub mod sched;
pub mod types;
pub mod verdict;
pub mod version;
pub mod xen;

#[cfg(target_os = "none")]
pub mod rt;
