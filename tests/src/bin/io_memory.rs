//! The hardware domain maps I/O memory, as Xen 4.17 lets it.
//!
//! Memory that is not RAM (the BIOS area, ROMs, MMIO holes) belongs to no
//! domain: Xen's `dom_io`. A PV dom0, which Xen gives I/O-memory rights to
//! every frame below the CPU's physical address width but those Xen keeps,
//! maps such frames with `update_va_mapping` and no reference is taken.
//! Linux does it at its first steps: `dmi_setup` reads the SMBIOS entry
//! point through an early fixmap of machine address 0xF0000 (on hv that
//! mapping was refused and Linux took a #PF in `memcpy_fromio`).
//!
//! Checked here: the BIOS area 0xF0000-0xFFFFF maps read-only, and reads
//! the same bytes on hv and Xen under QEMU (SeaBIOS' SMBIOS anchor `_SM_`
//! or `_SM3_` on a 16-byte boundary, found by scanning); the legacy VGA
//! window 0xA0000 maps writable and uncached; remapping and unmapping work
//! and leave no trace; the local APIC page (0xFEE00000), which the
//! hypervisor keeps, is refused with `-EPERM`; the I/O APIC page
//! (0xFEC00000) maps, but read-only even when asked writable.
//!
//! @covers: update_va_mapping
#![no_std]
#![no_main]

use guest_abi::errno::EPERM;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use tests::check;
use tests::pvmm::{read_u64, Env, Window, A, D, P, PCD, PWT, RW, US};

guest_abi::pv_guest!(main, name = "io_memory");

const KRO: u64 = P | US | A;
const UNCACHED_RW: u64 = P | RW | US | A | D | PCD | PWT;

/// Pages of the window used: 1-16 for the BIOS area, 17 for VGA, 18 for
/// the refused ones.
const BIOS_PAGES: u64 = 16;

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("io_memory");
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(w) = Window::new(&mut r, &mut env) else {
        r.finish()
    };

    for i in 0..BIOS_PAGES {
        let mfn = 0xf0 + i;
        check!(r, "map BIOS frame {mfn:#x} read-only", w.map(1 + i, mfn, KRO) => 0);
    }
    // The SMBIOS anchor, on a 16-byte boundary in 0xF0000-0xFFFFF.
    let mut anchor = None;
    for off in (0..BIOS_PAGES * 4096).step_by(16) {
        let word = read_u64(w.va(1) + off);
        let sm = word & 0xffff_ffff == u64::from(u32::from_le_bytes(*b"_SM_"));
        let sm3 = word & 0xff_ffff_ffff == 0x5f_334d_535f; // "_SM3_"
        if sm || sm3 {
            anchor = Some((0xf_0000 + off, word));
            break;
        }
    }
    r.check(
        format_args!("SMBIOS anchor in the BIOS area: {anchor:x?}"),
        anchor.is_some(),
    );
    let pte = w.pte(1);
    r.check(
        format_args!("BIOS page's entry {pte:#x}: frame 0xf0, read-only"),
        pte >> 12 & 0xff_ffff_ffff == 0xf0 && pte & RW == 0 && pte & P != 0,
    );
    for i in 0..BIOS_PAGES {
        check!(r, "unmap BIOS page {i}", w.unmap(1 + i) => 0);
    }

    // VGA memory, writable and uncached, as a console driver maps it.
    check!(r, "map VGA frame 0xa0 RW uncached", w.map(17, 0xa0, UNCACHED_RW) => 0);
    let pte = w.pte(17);
    r.check(
        format_args!("VGA page's entry {pte:#x}: frame 0xa0, RW, PCD|PWT"),
        pte >> 12 & 0xff_ffff_ffff == 0xa0 && pte & (RW | PCD | PWT) == RW | PCD | PWT,
    );
    check!(r, "remap it read-only", w.map(17, 0xa0, KRO) => 0);
    check!(r, "unmap it", w.unmap(17) => 0);

    // What the hypervisor keeps: the local APIC, refused; the I/O APIC,
    // readable (Xen forces a writable mapping read-only).
    for (how, flags) in [("RW uncached", UNCACHED_RW), ("read-only", KRO)] {
        check!(r, "map the local APIC page 0xfee00 {how}", w.map(18, 0xfee00, flags) => -EPERM);
    }
    check!(r, "page 18 still empty", w.pte(18) => 0u64);
    check!(r, "map the I/O APIC page 0xfec00 RW uncached", w.map(18, 0xfec00, UNCACHED_RW) => 0);
    let pte = w.pte(18);
    r.check(
        format_args!("its entry {pte:#x}: frame 0xfec00, RW taken away, PCD|PWT kept"),
        pte >> 12 & 0xff_ffff_ffff == 0xfec00 && pte & (RW | PCD | PWT) == PCD | PWT,
    );
    check!(r, "unmap it", w.unmap(18) => 0);
    r.finish()
}
