//! The smallest PV guest: prints what it was given, checks a few start-of-day
//! facts, and powers off. With `panic` on its command line it panics after
//! the checks instead (to exercise the panic handler).
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
