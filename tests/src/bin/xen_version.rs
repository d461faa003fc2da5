//! `xen_version` (hypercall 17) as a 64-bit PV dom0 sees it on Xen 4.17.
//!
//! Every sub-op is checked for its value and its buffer discipline: strings
//! come back NUL-terminated and NUL-padded to the field's full size (the
//! buffers are pre-filled with 0xaa so a short copy shows), the feature map
//! holds exactly the bits Xen reports for a PV dom0 (the
//! `pae_pgdir_above_4gb` bit follows the `pae_extended_cr3` assist, so the
//! test sets that assist both ways and looks each time), unknown sub-ops are
//! `-ENOSYS`, and every sub-op that takes a pointer answers `-EFAULT` for a
//! pointer the guest could not use itself (null, unmapped, non-canonical,
//! inside the hypervisor's range, or read-only for an op that writes) and
//! leaves the guest running.
//!
//! @covers: xen_version.version xen_version.extraversion xen_version.compile_info
//! @covers: xen_version.capabilities xen_version.changeset
//! @covers: xen_version.platform_parameters xen_version.get_features
//! @covers: xen_version.pagesize xen_version.guest_handle
//! @covers: xen_version.commandline xen_version.build_id
#![no_std]
#![no_main]

use guest_abi::features::*;
use guest_abi::hypercall::{hypercall2, xen_version, XEN_VERSION};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::version::*;
use guest_abi::xen::VMASST_TYPE_PAE_EXTENDED_CR3;
use guest_abi::xen::{SIF_INITDOMAIN, VMASST_CMD_DISABLE, VMASST_CMD_ENABLE};
use guest_abi::{errno, println};
use tests::check;
use tests::expect::{self, c_str, nul_padded, text, BAD_POINTERS};

guest_abi::pv_guest!(main, name = "xen_version");

/// `HYPERVISOR_VIRT_START` for a 64-bit PV guest (`arch-x86/xen-x86_64.h`).
const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;

/// XENFEAT bits that describe how every 64-bit PV domain works, whatever
/// the hypervisor implements: highmem_assist and direct_mapped (PV guests
/// see machine frames); and the two Linux 6.1 refuses to boot without
/// (it panics at its first steps when either is clear): preserve_ad and
/// gnttab_map_avail_bits. A PV hypervisor must report them.
const PV_FEATURES: &[u32] = &[
    XENFEAT_HIGHMEM_ASSIST,
    XENFEAT_DIRECT_MAPPED,
    XENFEAT_MMU_PT_UPDATE_PRESERVE_AD,
    XENFEAT_GNTTAB_MAP_AVAIL_BITS,
];

/// XENFEAT bits that advertise optional capabilities Xen 4.17 has for PV
/// dom0: memory_op_vnode_supported. A feature bit is an offer, and a guest
/// must cope with its absence, so a hypervisor may leave it clear until it
/// has the capability; what it must not do is report a bit Xen 4.17 would
/// never report.
const OPTIONAL_FEATURES: &[u32] = &[XENFEAT_MEMORY_OP_VNODE_SUPPORTED];

/// Sub-ops that write a fixed-size result through `arg`, with its size.
const WRITING_OPS: &[(&str, u32, usize)] = &[
    ("extraversion", XENVER_EXTRAVERSION, 16),
    ("compile_info", XENVER_COMPILE_INFO, 144),
    ("capabilities", XENVER_CAPABILITIES, 1024),
    ("changeset", XENVER_CHANGESET, 64),
    ("platform_parameters", XENVER_PLATFORM_PARAMETERS, 8),
    ("get_features", XENVER_GET_FEATURES, 8),
    ("guest_handle", XENVER_GUEST_HANDLE, 16),
    ("commandline", XENVER_COMMANDLINE, 1024),
];

/// `xen_version(cmd, arg)` with `arg` a bare address the guest does not
/// own as a Rust object.
fn raw(cmd: u32, arg: u64) -> i64 {
    // SAFETY: callers pass either an address this guest cannot access at
    // all, or a read-only page no Rust reference is used to write, so a
    // correct hypervisor refuses to write there; nothing Rust relies on
    // can change.
    unsafe { hypercall2(XEN_VERSION, u64::from(cmd), arg) }
}

/// `xen_version(cmd, buf)` for a sub-op that writes at most `buf.len()`
/// bytes, after filling `buf` with 0xaa.
fn into(cmd: u32, buf: &mut [u8]) -> i64 {
    buf.fill(0xaa);
    // SAFETY: each caller sizes `buf` to what `cmd` writes (WRITING_OPS).
    unsafe { xen_version(cmd, buf.as_mut_ptr()) }
}

/// Checks a string sub-op: returns 0, NUL-terminated within the field,
/// NUL-padded to its end. Returns the string for further checks.
fn string_op<'a>(r: &mut Report, name: &str, cmd: u32, buf: &'a mut [u8]) -> &'a [u8] {
    let rc = into(cmd, buf);
    check!(r, "XENVER_{name}", rc => 0);
    let s = c_str(buf).unwrap_or(&[]);
    r.check(
        format_args!("XENVER_{name} is NUL-terminated within {} bytes", buf.len()),
        c_str(buf).is_some(),
    );
    r.check(
        format_args!("XENVER_{name} is NUL-padded to {} bytes", buf.len()),
        nul_padded(buf),
    );
    println!("XENVER_{name}: {:?}", text(s));
    s
}

/// `XENVER_get_features` for submap `idx`: (rc, submap as written back).
fn features(idx: u32) -> (i64, u32) {
    let mut fi = XenFeatureInfo {
        submap_idx: idx,
        submap: 0xaaaa_aaaa,
    };
    let rc = guest_abi::hypercall::xen_version_get_features(&mut fi);
    (rc, fi.submap)
}

fn strings(r: &mut Report) {
    let mut extra = [0u8; 16];
    let s = string_op(r, "extraversion", XENVER_EXTRAVERSION, &mut extra);
    r.check(
        "XENVER_extraversion starts with '.' or '-'",
        matches!(s.first(), Some(b'.' | b'-')),
    );

    let mut info = [0u8; 144];
    check!(r, "XENVER_compile_info", into(XENVER_COMPILE_INFO, &mut info) => 0);
    for (field, at, len) in [
        ("compiler", 0, 64),
        ("compile_by", 64, 16),
        ("compile_domain", 80, 32),
        ("compile_date", 112, 32),
    ] {
        let bytes = &info[at..at + len];
        r.check(
            format_args!("compile_info.{field} is NUL-terminated and NUL-padded"),
            nul_padded(bytes),
        );
        println!(
            "compile_info.{field}: {:?}",
            text(c_str(bytes).unwrap_or(&[]))
        );
    }

    let mut caps = [0u8; 1024];
    let s = string_op(r, "capabilities", XENVER_CAPABILITIES, &mut caps);
    r.check(
        "XENVER_capabilities lists xen-3.0-x86_64",
        text(s).split(' ').any(|w| w == "xen-3.0-x86_64"),
    );

    let mut changeset = [0u8; 64];
    string_op(r, "changeset", XENVER_CHANGESET, &mut changeset);

    let mut cmdline = [0u8; 1024];
    string_op(r, "commandline (dom0)", XENVER_COMMANDLINE, &mut cmdline);
}

fn numbers(r: &mut Report) {
    check!(r, "XENVER_version", guest_abi::hypercall::xen_version_version() => 0x0004_0011);
    check!(r, "XENVER_version ignores arg (0xdead0000)",
        raw(XENVER_VERSION, 0xdead_0000) => 0x0004_0011);

    let mut pp = XenPlatformParameters { virt_start: 0xaaaa };
    let rc = guest_abi::hypercall::xen_version_platform_parameters(&mut pp);
    check!(r, "XENVER_platform_parameters", rc => 0);
    r.check(
        format_args!(
            "platform_parameters.virt_start == {HYPERVISOR_VIRT_START:#x} (got {:#x})",
            pp.virt_start
        ),
        pp.virt_start == HYPERVISOR_VIRT_START,
    );

    check!(r, "XENVER_pagesize(NULL)", guest_abi::hypercall::xen_version_pagesize() => 4096);
    let mut dummy = [0u8; 8];
    // Xen: a non-null arg to pagesize is -EINVAL (it writes nothing).
    check!(r, "XENVER_pagesize(non-null)", into(XENVER_PAGESIZE, &mut dummy) => -errno::EINVAL);

    let mut handle = [0u8; 16];
    check!(r, "XENVER_guest_handle", into(XENVER_GUEST_HANDLE, &mut handle) => 0);
    // dom0 is created with a zeroed handle; all 16 bytes are written.
    r.check(
        format_args!("dom0's guest_handle is 16 zero bytes (got {:02x?})", handle),
        handle == [0; 16],
    );
}

fn feature_bits(r: &mut Report, si: StartInfoRef) {
    let (rc, initial) = features(0);
    check!(r, "XENVER_get_features submap 0", rc => 0);
    println!("get_features submap 0 at start of day: {initial:#x}");
    let dom0 = si.flags & SIF_INITDOMAIN != 0;
    r.check(
        format_args!("XENFEAT_dom0 set iff SIF_INITDOMAIN ({dom0})"),
        (initial & (1 << XENFEAT_DOM0) != 0) == dom0,
    );
    for &bit in PV_FEATURES {
        r.check(
            format_args!("XENFEAT bit {bit} set for a PV domain"),
            initial & (1 << bit) != 0,
        );
    }
    for &bit in OPTIONAL_FEATURES {
        println!(
            "XENFEAT bit {bit} (optional capability): {}",
            if initial & (1 << bit) != 0 {
                "offered"
            } else {
                "not offered"
            }
        );
    }
    let optional = OPTIONAL_FEATURES.iter().fold(0u32, |m, &b| m | (1 << b));
    // Whatever optional bits this hypervisor offers stay fixed.
    let base = PV_FEATURES.iter().fold(0u32, |m, &b| m | (1 << b))
        | (initial & optional)
        | if dom0 { 1 << XENFEAT_DOM0 } else { 0 };
    let pae = 1u32 << XENFEAT_PAE_PGDIR_ABOVE_4GB;

    // pae_pgdir_above_4gb mirrors the pae_extended_cr3 assist.
    for (cmd, on) in [(VMASST_CMD_DISABLE, false), (VMASST_CMD_ENABLE, true)] {
        let rc = guest_abi::hypercall::vm_assist(cmd, VMASST_TYPE_PAE_EXTENDED_CR3);
        check!(r, "vm_assist(pae_extended_cr3, on={on})", rc => 0);
        let want = base | if on { pae } else { 0 };
        let (rc, got) = features(0);
        r.check(
            format_args!(
                "with pae_extended_cr3 {}: submap 0 == {want:#x} (rc {}, got {got:#x})",
                if on { "on" } else { "off" },
                expect::Rc(rc)
            ),
            rc == 0 && got == want,
        );
    }
    // Leave the assist as the domain builder set it.
    let was_on = initial & pae != 0;
    if !was_on {
        guest_abi::hypercall::vm_assist(VMASST_CMD_DISABLE, VMASST_TYPE_PAE_EXTENDED_CR3);
    }

    for idx in [1, 2, 0x8000_0000, 0xffff_ffff] {
        let (rc, submap) = features(idx);
        check!(r, "XENVER_get_features submap {idx:#x}", rc => -errno::EINVAL);
        r.check(
            format_args!("submap {idx:#x}: nothing written back (got {submap:#x})"),
            submap == 0xaaaa_aaaa,
        );
    }
}

/// `XENVER_build_id`: the size with a null arg, then the id itself into a
/// `xen_build_id_t { uint32_t len; unsigned char buf[]; }` of the right
/// size, too small, and zero-sized.
fn build_id(r: &mut Report) {
    let size = raw(XENVER_BUILD_ID, 0);
    println!("XENVER_build_id(NULL) = {}", expect::Rc(size));
    if size == -errno::ENODATA {
        r.skip("this hypervisor has no build id (-ENODATA)");
        return;
    }
    if !r.check(
        format_args!(
            "XENVER_build_id(NULL) is a size in 1..=64 (got {})",
            expect::Rc(size)
        ),
        (1..=64).contains(&size),
    ) {
        return;
    }
    let size_u32 = u32::try_from(size).unwrap_or(0);
    let mut buf = [0xaau8; 4 + 64];
    let call = |len: u32, buf: &mut [u8; 68]| {
        buf.fill(0xaa);
        buf[..4].copy_from_slice(&len.to_ne_bytes());
        // SAFETY: `buf` has 4 + 64 bytes and Xen writes at most `len` ≤ 64
        // bytes after the length word (or none when it refuses).
        unsafe { xen_version(XENVER_BUILD_ID, buf.as_mut_ptr()) }
    };
    check!(r, "XENVER_build_id len 0", call(0, &mut buf) => -errno::EINVAL);
    check!(r, "XENVER_build_id len size-1", call(size_u32 - 1, &mut buf) => -errno::ENOBUFS);
    r.check(
        "build_id len size-1: buffer untouched",
        buf[4..].iter().all(|&b| b == 0xaa),
    );
    check!(r, "XENVER_build_id len size", call(size_u32, &mut buf) => size);
    let id = &buf[4..4 + usize::try_from(size).unwrap_or(0)];
    r.check(
        "build_id: the id was written and nothing past it",
        id.iter().any(|&b| b != 0xaa) && buf[4 + id.len()..].iter().all(|&b| b == 0xaa),
    );
    println!("build id: {:02x?}", id);
}

fn unknown_ops(r: &mut Report) {
    for cmd in [11, 12, 64, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff] {
        check!(r, "xen_version sub-op {cmd:#x}", raw(cmd, 0) => -errno::ENOSYS);
    }
}

fn bad_pointers(r: &mut Report, si: StartInfoRef) {
    for &(name, cmd, _) in WRITING_OPS {
        for &(what, addr) in BAD_POINTERS {
            check!(r, "XENVER_{name} with {what} pointer {addr:#x}",
                raw(cmd, addr) => -errno::EFAULT);
        }
        // The bootstrap L4 is mapped read-only: readable, not writable.
        // (Its slot 0 is empty, so get_features reads submap_idx 0 and
        // fails only on the write back.)
        check!(r, format_args!("XENVER_{name} into the read-only L4 at {:#x}", si.pt_base),
            raw(cmd, si.pt_base) => -errno::EFAULT);
    }
    // build_id: null means "just the size", so only the others apply.
    for &(what, addr) in BAD_POINTERS.iter().filter(|&&(_, a)| a != 0) {
        check!(r, "XENVER_build_id with {what} pointer {addr:#x}",
            raw(XENVER_BUILD_ID, addr) => -errno::EFAULT);
    }
    r.check("the guest still runs after every bad pointer", true);
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("xen_version");
    numbers(&mut r);
    strings(&mut r);
    feature_bits(&mut r, si);
    build_id(&mut r);
    unknown_ops(&mut r);
    bad_pointers(&mut r, si);
    r.finish()
}
