//! The smallest PV guest: prints what it was given, checks a few start-of-day
//! facts, and powers off. With `panic` on its command line it panics after
//! the checks instead (to exercise the panic handler).
//!
//! # Walkthrough: a PV guest on `guest-abi`
//!
//! - `#![no_std]` and `#![no_main]`: a PV kernel has no OS under it and no
//!   Rust `main` shim. Built for `x86_64-unknown-none`, which aborts on
//!   panic, so no profile settings are needed.
//! - `guest_abi::pv_guest!(main, name = "hello")` emits everything that makes
//!   the binary a Xen PV kernel: the ELF notes Xen's domain builder reads
//!   (`GUEST_OS` "hello", `VIRT_BASE`, `ENTRY`, `HYPERCALL_PAGE`, ...), the
//!   entry point `_start` (records the entry registers, switches to a 64 KiB
//!   stack, calls `main`), the hypercall page and the panic handler. With
//!   `layout = physical` the guest is instead linked virtual = physical (see
//!   `low_layout.rs`).
//! - The binary links with `guest-abi/pv64.ld` and `--no-pie`: this crate's
//!   `build.rs` passes them (a guest crate of your own does the same with
//!   three lines, see the README's "Write your own PV guest").
//! - `main` receives Xen's `start_info` ([`StartInfoRef`]) and never returns.
//! - `println!` writes to the console: `console_io` for the initial domain
//!   (as here), the PV console ring `start_info` names for any other.
//! - Hypercalls: typed wrappers such as [`xen_version_version`] issue an
//!   inline `syscall`; `hypercall_page_call*` go through the page Xen
//!   filled in. Both work on Xen and on hv.
//! - [`Report`] prints `Test: hello`, one `PASS:`/`FAIL:` line per check and
//!   `Test result: SUCCESS` (or the worst outcome), then powers off, which is
//!   what `cargo xtask test` judges. A `panic!` prints `panic: ... at
//!   file:line` and shuts the domain down with `SHUTDOWN_crash`.
//!
//! Run it alone with `cargo xtask run --guest
//! target/x86_64-unknown-none/release/hello`, or as a test on hv and real
//! Xen with `cargo xtask test --filter hello`.
//!
//! @covers: xen_version.version xen_version.extraversion
//! @variant: bzimage-elf bzimage=none expect-line="(hv)  Dom0 kernel: bzImage v2.15, uncompressed ELF payload"
//! @variant: bzimage-gzip bzimage=gzip expect-line="(hv)  Dom0 kernel: bzImage v2.15, gzip payload"
//! @variant: bzimage-xz bzimage=xz expect-line="(hv)  Dom0 kernel: bzImage v2.15, XZ payload"
//! @variant: bzimage-lz4 bzimage=lz4 expect-line="(hv)  Dom0 kernel: bzImage v2.15, LZ4 payload"
//! @variant: bzimage-gzip-corrupt bzimage=gzip:corrupt expect-exit=panic expect-result=none expect-line="crc error" expect-line="(hv) FATAL: CPU0: Could not construct domain 0: unpacking the kernel: gzip: crc error"
//! @variant: bzimage-xz-corrupt bzimage=xz:corrupt expect-exit=panic expect-result=none expect-line="Could not construct domain 0" expect-line="XZ-compressed data is corrupt" expect-line="(hv) FATAL: CPU0: Could not construct domain 0: unpacking the kernel: XZ:"
//! @variant: smp4 smp=4
#![no_std]
#![no_main]

use guest_abi::hypercall::{
    hypercall_page_call2, xen_version_extraversion, xen_version_version, XEN_VERSION,
};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::{println, xen};

guest_abi::pv_guest!(main, name = "hello");

fn main(si: StartInfoRef) -> ! {
    println!("hello from a PV guest");
    println!("magic: {}", si.magic_str());
    println!(
        "nr_pages {} flags {:#x} pt_base {:#x} mfn_list {:#x}",
        si.nr_pages, si.flags, si.pt_base, si.mfn_list
    );
    let cmdline = core::str::from_utf8(si.cmd_line_bytes()).unwrap_or("<not utf-8>");
    println!("cmdline: {cmdline}");

    let mut r = Report::new("hello");
    r.check("start_info magic is xen-3.0-x86_64", si.magic_ok());
    r.check("nr_pages is non-zero", si.nr_pages != 0);
    let version = xen_version_version();
    let mut extra = [0u8; 16];
    let rc = xen_version_extraversion(&mut extra);
    let len = extra.iter().position(|&b| b == 0).unwrap_or(extra.len());
    println!(
        "xen version {}.{}{}",
        version >> 16,
        version & 0xffff,
        core::str::from_utf8(&extra[..len]).unwrap_or("?")
    );
    r.check("XENVER_version is positive", version > 0);
    r.check("XENVER_extraversion returns 0", rc == 0);
    // SAFETY: the HYPERCALL_PAGE note makes the loader fill the page before
    // entry; XENVER_version takes no buffer.
    let via_page = unsafe { hypercall_page_call2(XEN_VERSION, 0, 0) };
    r.check(
        "XENVER_version via the hypercall page agrees",
        via_page == version,
    );
    if cmdline.split(' ').any(|w| w == "panic") {
        panic!("asked to panic by the command line");
    }
    if si.flags & xen::SIF_INITDOMAIN != 0 {
        println!("running as the initial domain");
    }
    r.finish()
}
