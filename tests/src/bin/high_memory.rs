//! RAM above 4 GiB is counted and used.
//!
//! The machine has 3 GiB, which q35 splits into 2 GiB below the PCI hole
//! and 1 GiB from 4 GiB up; domain 0 gets 2200 MiB, more than fits below
//! 4 GiB. Checked: the machine memory map shows RAM above 4 GiB;
//! `maximum_ram_page` covers all of it; domain 0 owns frames above 4 GiB,
//! whose M2P entries name their pfns; such a frame can be cleared, mapped,
//! written and read back.
//!
//! A hypervisor that managed only the first 4 GiB answered a smaller
//! `maximum_ram_page`, could not build this domain, and gave it no frame
//! above 4 GiB.
//!
//! @mem: 3072
//! @dom0-mem: 2200
//! @timeout: 180
//! @covers: memory_op.maximum_ram_page memory_op.machine_memory_map
#![no_std]
#![no_main]

use guest_abi::memory::{E820Entry, XenMemoryMap, XENMEM_MACHINE_MEMORY_MAP};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::MMUEXT_CLEAR_PAGE;
use tests::check;
use tests::pvmm::{
    max_page, memory_op, mmuext1, read_u64, write_u64, Env, Window, A, D, M2P, P, RW, US,
};

guest_abi::pv_guest!(main, name = "high_memory");

const FOUR_GIB_MFN: u64 = 0x10_0000;

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("high_memory");
    let mut map = [E820Entry::default(); 32];
    let mut mm = XenMemoryMap {
        nr_entries: 32,
        _pad: 0,
        buffer: map.as_mut_ptr() as u64,
    };
    let got = memory_op(
        u64::from(XENMEM_MACHINE_MEMORY_MAP),
        core::ptr::addr_of_mut!(mm) as u64,
    );
    check!(r, "machine_memory_map", got => 0);
    let n = usize::try_from(mm.nr_entries).unwrap_or(0).min(32);
    let (mut ram, mut top) = (0u64, 0u64);
    for e in &map[..n] {
        let (addr, size) = (u64::from_le_bytes(e.addr), u64::from_le_bytes(e.size));
        if u32::from_le_bytes(e.type_) == 1 {
            ram += size;
            top = top.max(addr + size);
        }
    }
    println!("machine RAM {} MiB, top {top:#x}", ram >> 20);
    r.check(
        format_args!(
            "the map shows about 3 GiB of RAM ({} MiB), some above 4 GiB (top {top:#x})",
            ram >> 20
        ),
        (3000 << 20..=3072 << 20).contains(&ram) && top > 1 << 32,
    );
    let mp = u64::try_from(max_page()).unwrap_or(0);
    r.check(
        format_args!("maximum_ram_page {mp:#x} covers RAM up to {top:#x}"),
        mp >= top >> 12,
    );

    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let nr = si.nr_pages;
    let (mut high, mut first_high) = (0u64, None);
    let mut m2p_ok = true;
    for pfn in 0..nr {
        let mfn = env.mfn(pfn);
        if mfn >= FOUR_GIB_MFN {
            high += 1;
            first_high.get_or_insert(pfn);
            m2p_ok &= read_u64(M2P + mfn * 8) == pfn;
        }
    }
    r.check(
        format_args!("{high} of {nr} frames are above 4 GiB"),
        high > 0,
    );
    r.check("the M2P names their pfns", high > 0 && m2p_ok);

    let Some(w) = Window::new(&mut r, &mut env) else {
        r.finish()
    };
    let Some(pfn) = first_high else { r.finish() };
    let mfn = env.mfn(pfn);
    check!(r, "MMUEXT_CLEAR_PAGE of mfn {mfn:#x}", mmuext1(MMUEXT_CLEAR_PAGE, mfn, 0) => 0);
    check!(r, "map it writable", w.map(2, mfn, P | RW | US | A | D) => 0);
    let va = w.va(2);
    let cleared = read_u64(va) == 0 && read_u64(va + 4088) == 0;
    write_u64(va + 8, 0x4869_6768_4d65_6d21);
    r.check(
        "it reads back cleared, then as written",
        cleared && read_u64(va + 8) == 0x4869_6768_4d65_6d21,
    );
    check!(r, "unmap it", w.unmap(2) => 0);
    r.finish()
}
