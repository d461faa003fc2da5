//! Xen 4.17's x86_64 PV guest ABI, for guests and for the hypervisor.
//!
//! Everything a PV guest and `hv` must agree on is declared here once: the
//! hypercall numbers ([`hypercall`]), error numbers ([`errno`]), the shared
//! structures ([`xen`], [`version`], [`sched`]), one module per sub-op
//! header ([`event_channel`], [`grant_table`], [`memory`], [`vcpu`],
//! [`callback`], [`physdev`], [`nmi`], and the toolstack subset of
//! [`domctl`] and [`sysctl`]), the split-driver protocols ([`io`]), and the
//! constants of the public headers. Struct layouts mirror Xen's C headers (interface version
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
//! use guest_abi::println;
//! use guest_abi::rt::{report::Report, StartInfoRef};
//!
//! guest_abi::pv_guest!(main, name = "myguest");
//!
//! fn main(si: StartInfoRef) -> ! {
//!     println!("hello from myguest, {} pages", si.nr_pages);
//!     let mut r = Report::new("myguest");
//!     r.check("start_info magic", si.magic_ok());
//!     r.finish() // prints "Test result: SUCCESS" and powers off
//! }
//! ```
//!
//! `pv_guest!(MAIN, name = "NAME")` takes a function `fn(&'static
//! StartInfo) -> !` and a string literal (the `GUEST_OS` note). It emits, into
//! the guest's own crate: the Xen ELF notes (section `.note.Xen`), the entry
//! point `_start` (section `.text.entry`) with a 64 KiB stack in `.bss`, the
//! 4 KiB `hypercall_page`, and the `#[panic_handler]` (which prints the
//! message and shuts down with `SHUTDOWN_crash`). Emitting them from a
//! macro rather than from this crate keeps `hv`'s kernel, which also links
//! this crate, free of a second entry point and panic handler.
//!
//! `println!` goes to `console_io` in the initial domain and to the PV
//! console ring (`start_info.console.domU`, notified through its event
//! channel) in any other; `rt::report::Report` prints the one-line-per-check
//! format `cargo xtask test` judges.
//!
//! ## Layouts and linking
//!
//! Xen loads a PV kernel in one of two layouts, and the guest picks one in
//! the macro and links with the matching script, `--no-pie`:
//!
//! | declared with | linked at | linker script |
//! | --- | --- | --- |
//! | `pv_guest!(main, name = "x")` (`layout = virt_base`) | `0xffffffff80000000`, paddr from 0 | `guest-abi/pv64.ld` |
//! | `pv_guest!(main, name = "x", layout = physical)` | 1 MiB, paddr = vaddr, no `VIRT_BASE` note | `guest-abi/pv64-low.ld` |
//!
//! A dependency cannot choose its dependents' linker script, so the guest
//! crate's `build.rs` passes it. This crate's build script (`links =
//! "guest-abi"`) hands the paths to it as `DEP_GUEST_ABI_PV64_LD` and
//! `DEP_GUEST_ABI_PV64_LOW_LD`:
//!
//! ```ignore
//! fn main() {
//!     let ld = std::env::var("DEP_GUEST_ABI_PV64_LD").unwrap();
//!     println!("cargo:rustc-link-arg-bins=-T{ld}");
//!     println!("cargo:rustc-link-arg-bins=--no-pie");
//! }
//! ```
//!
//! A crate with several guests passes the script per binary
//! (`cargo:rustc-link-arg-bin=NAME=-T...`), as the `tests` crate's
//! `build.rs` does. A script that does not match the macro's layout fails
//! the link with a message saying so. Build with `cargo build --release
//! --target x86_64-unknown-none` (the target aborts on panic, so no profile
//! settings are needed). The target's code model is `kernel` (top 2 GiB),
//! but it generates position-independent code, which addresses everything
//! RIP-relative, so the low layout works too.
#![no_std]

pub mod arch;
pub mod callback;
pub mod console;
pub mod domctl;
pub mod elfnote;
pub mod errno;
pub mod event_channel;
pub mod features;
pub mod grant_table;
pub mod hypercall;
pub mod io;
pub mod memory;
pub mod nmi;
pub mod physdev;
pub mod sched;
pub mod sysctl;
pub mod types;
pub mod vcpu;
pub mod verdict;
pub mod version;
pub mod xen;

#[cfg(target_os = "none")]
pub mod rt;
