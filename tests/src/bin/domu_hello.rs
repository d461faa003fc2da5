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
use guest_abi::rt::{console, Console, StartInfoRef, VIRT_BASE};
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
    // The ramdisk domu_build gives it, at the virtual address mod_start.
    let len = tests::domu::RAMDISK_LEN as u64;
    check!(r, "its ramdisk's length", si.mod_len => len);
    r.check(
        "its ramdisk is mapped after its kernel, page aligned",
        si.mod_start > VIRT_BASE && si.mod_start.is_multiple_of(4096) && si.mod_start < si.mfn_list,
    );
    let bytes_ok = (0..len).all(|i| {
        // SAFETY: inside the ramdisk the builder mapped (checked above).
        let b = unsafe { core::ptr::read_volatile((si.mod_start + i) as *const u8) };
        b == tests::domu::ramdisk_byte(usize::try_from(i).unwrap_or(0))
    });
    r.check("every byte of it is the one dom0 gave", bytes_ok);
    // SAFETY: the rest of the ramdisk's last page, mapped with it.
    let tail = unsafe { core::ptr::read_volatile((si.mod_start + len) as *const u8) };
    check!(r, "the rest of its last page is zero", tail => 0);
    let mut dc = XenDomctl::new(XEN_DOMCTL_GETDOMAININFO, 0, &0u64);
    // SAFETY: `dc` is a live xen_domctl.
    check!(r, "domctl: not privileged", unsafe { typed::domctl(&mut dc) } => -EPERM);
    let mut sc = XenSysctl::new(XEN_SYSCTL_PHYSINFO, &XenSysctlPhysinfo::default());
    // SAFETY: `sc` is a live xen_sysctl.
    check!(r, "sysctl: not privileged", unsafe { typed::sysctl(&mut sc) } => -EPERM);
    check!(r, "console_io: not for a domU", console_io_write(b"domU on console_io\n") => -EPERM);
    r.finish()
}
