//! A domU kernel for `domu_build` (not a case of its own): it checks its
//! start of day as a domU sees it and that it holds no privilege, prints
//! its report on the PV console ring (the runtime picks the ring
//! `start_info` names, as a non-debug Xen refuses `console_io` to a
//! domU) and powers off.
//!
//! @role: domu
#![no_std]
#![no_main]

use guest_abi::domctl::{XenDomctl, XEN_DOMCTL_GETDOMAININFO};
use guest_abi::errno::EPERM;
use guest_abi::hypercall::{console_io_write, typed};
use guest_abi::rt::report::Report;
use guest_abi::rt::{console, Console, StartInfoRef};
use guest_abi::sysctl::{XenSysctl, XenSysctlPhysinfo, XEN_SYSCTL_PHYSINFO};
use guest_abi::xen::SIF_INITDOMAIN;
use tests::check;
use tests::pvmm::{read_u64, M2P};

guest_abi::pv_guest!(main, name = "domu_hello");

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("domu_hello");
    let cmdline = core::str::from_utf8(si.cmd_line_bytes()).unwrap_or("");
    check!(r, "its command line", cmdline => "pages=2048");
    check!(r, "not the initial domain", si.flags & SIF_INITDOMAIN => 0);
    check!(r, "its memory", si.nr_pages => 2048);
    r.check(
        "its console is the ring start_info names",
        matches!(console(), Console::Ring { .. }),
    );
    // The P2M list and the M2P agree.
    let agree = (0..si.nr_pages).all(|pfn| {
        let mfn = read_u64(si.mfn_list + pfn * 8);
        read_u64(M2P + mfn * 8) == pfn
    });
    r.check("every frame's P2M and M2P entries agree", agree);
    let mut dc = XenDomctl::new(XEN_DOMCTL_GETDOMAININFO, 0, &0u64);
    // SAFETY: `dc` is a live xen_domctl.
    check!(r, "domctl: not privileged", unsafe { typed::domctl(&mut dc) } => -EPERM);
    let mut sc = XenSysctl::new(XEN_SYSCTL_PHYSINFO, &XenSysctlPhysinfo::default());
    // SAFETY: `sc` is a live xen_sysctl.
    check!(r, "sysctl: not privileged", unsafe { typed::sysctl(&mut sc) } => -EPERM);
    check!(r, "console_io: not for a domU", console_io_write(b"domU on console_io\n") => -EPERM);
    r.finish()
}
