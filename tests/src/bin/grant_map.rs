//! Mapping grants (`map_grant_ref`, `unmap_grant_ref`), as a domain does
//! with its own: dom0 grants a frame of its own to itself and maps it at a
//! virtual address (writable and read-only) and through a PTE's machine
//! address (`GNTMAP_contains_pte`). The mapping shows the frame, the
//! granter's entry shows `GTF_reading`/`GTF_writing` while it is mapped
//! and loses each with the last mapping that needs it, handles are
//! distinct and die with their unmap. Every misuse gets Xen's status: no
//! such flag, reference, domain, handle or frame; a grant to another
//! domain, a revoked or read-only one mapped writable, a page table mapped
//! writable, an address without an L1, a misaligned PTE address, an unmap
//! at an address that does not map the grant (also after a plain
//! `update_va_mapping` took the mapping away, which Xen's release build
//! allows), bad batch pointers.
//!
//! @covers: grant_table_op.map_grant_ref grant_table_op.unmap_grant_ref
#![no_std]
#![no_main]

use guest_abi::errno::*;
use guest_abi::grant_table::*;
use guest_abi::hypercall::typed;
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::UVMF_INVLPG;
use tests::check;
use tests::expect::BAD_POINTERS;
use tests::grants::{entry, gnt, own_table, unmap};
use tests::pvmm::{mfn_of, read_u64, uvm, write_u64, A, P, RW, US};

guest_abi::pv_guest!(main, name = "grant_map");

const ME: u16 = 0;
const NX: u64 = 1 << 63;
const PATTERN: u64 = 0x6772_616e_7465_6421;

/// Maps grant `gref` of `dom` at `host_addr` with `flags`: the result,
/// the status and the handle.
fn map(dom: u16, gref: u32, flags: u32, host_addr: u64) -> (i64, i16, u32) {
    let mut op = [GnttabMapGrantRef {
        host_addr,
        flags,
        ref_: gref,
        dom,
        status: 99,
        ..Default::default()
    }];
    let rc = gnt(GNTTABOP_MAP_GRANT_REF, &mut op);
    (rc, op[0].status, op[0].handle)
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("grant_map");
    let Some((mut env, w)) = own_table(&mut r, si) else {
        r.finish()
    };
    let table = w.va(1);
    let slot = |gref: u64| table + gref * 8;
    let flags_of = |gref: u64| read_u64(table + gref * 8) & 0xffff;

    // A frame of our own with something in it.
    let (_, data) = env.spare();
    check!(r, "map the data frame", w.map(3, data, P | RW | US | A) => 0);
    write_u64(w.va(3), PATTERN);
    check!(r, "unmap it", w.unmap(3) => 0);

    write_u64(slot(10), entry(ME, GTF_PERMIT_ACCESS, data));
    let (rc, st, h1) = map(ME, 10, GNTMAP_HOST_MAP, w.va(4));
    check!(r, "map grant 10 writable", (rc, st) => (0, GNTST_OKAY));
    check!(r, "the mapping shows the frame", read_u64(w.va(4)) => PATTERN);
    let pte = w.pte(4);
    println!("grant PTE {pte:#x}");
    r.check(
        "the PTE maps the frame writable, not executable",
        mfn_of(pte) == data && pte & (P | RW | NX) == P | RW | NX,
    );
    check!(r, "the entry shows reading and writing",
        flags_of(10) => u64::from(GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING));
    write_u64(w.va(4) + 8, !PATTERN);
    let (rc, st, h2) = map(ME, 10, GNTMAP_HOST_MAP | GNTMAP_READONLY, w.va(5));
    check!(r, "map grant 10 again read-only", (rc, st) => (0, GNTST_OKAY));
    r.check("a second handle", h2 != h1);
    check!(r, "it shows the write through the first", read_u64(w.va(5) + 8) => !PATTERN);
    check!(r, "its PTE is read-only", w.pte(5) & (P | RW) => P);

    check!(r, "unmap the writable one", unmap(h1, w.va(4)) => (0, GNTST_OKAY));
    check!(r, "its PTE is gone", w.pte(4) => 0);
    check!(r, "the entry shows reading only",
        flags_of(10) => u64::from(GTF_PERMIT_ACCESS | GTF_READING));
    check!(r, "unmap it again: the handle is gone", unmap(h1, w.va(4)) => (0, GNTST_BAD_HANDLE));
    check!(r, "unmap the read-only one at the wrong address",
        unmap(h2, w.va(4)) => (0, GNTST_GENERAL_ERROR));
    check!(r, "unmap with no address: nothing done", unmap(h2, 0) => (0, GNTST_OKAY));
    check!(r, "the read-only one still maps", read_u64(w.va(5)) => PATTERN);
    check!(r, "unmap the read-only one", unmap(h2, w.va(5)) => (0, GNTST_OKAY));
    // Map flags from GNTMAP_guest_avail0 up go to the PTE's available bits
    // 9-11 (the low three of them; the rest are dropped).
    let avail = 0xfd << GNTMAP_GUEST_AVAIL0;
    let (rc, st, h3) = map(ME, 10, GNTMAP_HOST_MAP | GNTMAP_READONLY | avail, w.va(4));
    check!(r, "map grant 10 with guest-available bits", (rc, st) => (0, GNTST_OKAY));
    check!(r, "its PTE has them in bits 9-11", w.pte(4) & 0xe02 => 0xa00);
    check!(r, "unmap it", unmap(h3, w.va(4)) => (0, GNTST_OKAY));
    check!(r, "the entry is as the granter wrote it",
        flags_of(10) => u64::from(GTF_PERMIT_ACCESS));
    check!(r, "an unknown handle", unmap(4000, w.va(5)) => (0, GNTST_BAD_HANDLE));

    // Through a PTE's machine address.
    let (rc, st, h3) = map(ME, 10, GNTMAP_HOST_MAP | GNTMAP_CONTAINS_PTE, w.pte_ma(6));
    check!(r, "map through the PTE's machine address", (rc, st) => (0, GNTST_OKAY));
    check!(r, "it maps there", read_u64(w.va(6)) => PATTERN);
    check!(r, "a misaligned PTE address",
        map(ME, 10, GNTMAP_HOST_MAP | GNTMAP_CONTAINS_PTE, w.pte_ma(7) + 4).1 => GNTST_GENERAL_ERROR);
    check!(r, "unmap through the PTE", unmap(h3, w.pte_ma(6)) => (0, GNTST_OKAY));
    check!(r, "its PTE is gone", w.pte(6) => 0);

    // Misuse.
    let (rc, st, _) = map(ME, 10, 0, w.va(4));
    check!(r, "no map flag", (rc, st) => (0, GNTST_BAD_GNTREF));
    check!(r, "a reference past the table", map(ME, 5000, GNTMAP_HOST_MAP, w.va(4)).1 => GNTST_BAD_GNTREF);
    check!(r, "no such domain", map(0x7000, 10, GNTMAP_HOST_MAP, w.va(4)).1 => GNTST_BAD_DOMAIN);
    write_u64(slot(11), entry(5, GTF_PERMIT_ACCESS, data));
    check!(r, "a grant to another domain", map(ME, 11, GNTMAP_HOST_MAP, w.va(4)).1 => GNTST_GENERAL_ERROR);
    write_u64(slot(12), entry(ME, GTF_PERMIT_ACCESS | GTF_READONLY, data));
    check!(r, "a read-only grant mapped writable",
        map(ME, 12, GNTMAP_HOST_MAP, w.va(4)).1 => GNTST_GENERAL_ERROR);
    check!(r, "the refusal left the entry alone",
        flags_of(12) => u64::from(GTF_PERMIT_ACCESS | GTF_READONLY));
    let (_, st, h4) = map(ME, 12, GNTMAP_HOST_MAP | GNTMAP_READONLY, w.va(4));
    check!(r, "a read-only grant mapped read-only", st => GNTST_OKAY);
    check!(r, "unmap it", unmap(h4, w.va(4)).1 => GNTST_OKAY);
    write_u64(slot(13), entry(ME, 0, data));
    check!(r, "a revoked grant", map(ME, 13, GNTMAP_HOST_MAP, w.va(4)).1 => GNTST_GENERAL_ERROR);
    write_u64(slot(14), entry(ME, GTF_PERMIT_ACCESS, 0x0fff_ffff));
    check!(r, "a frame that is not ours", map(ME, 14, GNTMAP_HOST_MAP, w.va(4)).1 => GNTST_BAD_PAGE);
    check!(r, "the refusal took its access bits back", flags_of(14) => u64::from(GTF_PERMIT_ACCESS));
    write_u64(slot(15), entry(ME, GTF_PERMIT_ACCESS, w.l1_mfn));
    check!(r, "a page table mapped writable",
        map(ME, 15, GNTMAP_HOST_MAP, w.va(4)).1 => GNTST_GENERAL_ERROR);
    check!(r, "an address with no L1",
        map(ME, 10, GNTMAP_HOST_MAP, 0x1000).1 => GNTST_GENERAL_ERROR);
    check!(r, "no access bits left behind", flags_of(10) => u64::from(GTF_PERMIT_ACCESS));

    // A plain update takes the mapping (and its references) away; the grant
    // stays pinned and its unmap finds nothing to take.
    write_u64(slot(16), entry(ME, GTF_PERMIT_ACCESS, data));
    let (_, st, h5) = map(ME, 16, GNTMAP_HOST_MAP, w.va(7));
    check!(r, "map grant 16", st => GNTST_OKAY);
    check!(r, "update_va_mapping over it", uvm(w.va(7), 0, UVMF_INVLPG) => 0);
    check!(r, "its unmap finds no mapping", unmap(h5, w.va(7)).1 => GNTST_GENERAL_ERROR);
    check!(r, "the entry stays in use",
        flags_of(16) => u64::from(GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING));

    let mut none: [GnttabMapGrantRef; 0] = [];
    check!(r, "an empty batch", gnt(GNTTABOP_MAP_GRANT_REF, &mut none) => 0);
    for &(name, addr) in BAD_POINTERS {
        // SAFETY: the hypervisor must refuse the address without using it.
        let rc = unsafe { typed::grant_table_op(GNTTABOP_MAP_GRANT_REF, addr as *mut u8, 1) };
        check!(r, "map batch at {name}", rc => -EFAULT);
        // SAFETY: as above.
        let rc = unsafe { typed::grant_table_op(GNTTABOP_UNMAP_GRANT_REF, addr as *mut u8, 1) };
        check!(r, "unmap batch at {name}", rc => -EFAULT);
    }
    check!(r, "unmap the grant table", w.unmap(1) => 0);
    r.finish()
}
