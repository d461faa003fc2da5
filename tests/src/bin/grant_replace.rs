//! `unmap_and_replace` and `swap_grant_ref` on dom0's own grants.
//!
//! `unmap_and_replace` takes the L1 entry at `new_addr` out (with the
//! references it holds) and puts it where the grant mapping was:
//! - the granter's entry loses its access bits, the handle goes, and the
//!   moved entry is an ordinary mapping afterwards (unmapped, its frame can
//!   be pinned as a page table again: no reference was lost or doubled);
//! - an empty `new_addr` is a plain unmap;
//! - a wrong `host_addr` fails (`GNTST_general_error`) after the entry at
//!   `new_addr` was taken: `new_addr` is left unmapped, as on Xen, and the
//!   grant stays mapped;
//! - a mapping made through a PTE's machine address cannot be replaced
//!   (nothing changes), but can be unmapped with no `new_addr`;
//! - a `new_addr` without an L1, an unknown handle, bad batch pointers.
//!
//! `swap_grant_ref` swaps two entries of the caller's table: the same
//! entry is left alone, a reference past the table is `GNTST_bad_gntref`,
//! an entry in use (mapped) is `GNTST_eagain`; a batch gets a status per
//! element.
//!
//! @covers: grant_table_op.unmap_and_replace grant_table_op.swap_grant_ref
#![no_std]
#![no_main]

use guest_abi::errno::*;
use guest_abi::grant_table::*;
use guest_abi::hypercall::typed;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{MMUEXT_CLEAR_PAGE, MMUEXT_PIN_L1_TABLE, MMUEXT_UNPIN_TABLE};
use tests::check;
use tests::expect::BAD_POINTERS;
use tests::grants::{entry, gnt, own_table, unmap};
use tests::pvmm::{mfn_of, mmuext1, read_u64, write_u64, A, P, RW, US};

guest_abi::pv_guest!(main, name = "grant_replace");

const ME: u16 = 0;
const PATTERN: u64 = 0x6772_616e_7465_6421;
const OTHER: u64 = 0x7265_706c_6163_6564;

/// Maps grant `gref` of ours at `host_addr` with `flags`: status, handle.
fn map(gref: u32, flags: u32, host_addr: u64) -> (i16, u32) {
    let mut op = [GnttabMapGrantRef {
        host_addr,
        flags,
        ref_: gref,
        dom: ME,
        status: 99,
        ..Default::default()
    }];
    let rc = gnt(GNTTABOP_MAP_GRANT_REF, &mut op);
    (if rc == 0 { op[0].status } else { 98 }, op[0].handle)
}

fn replace(handle: u32, host_addr: u64, new_addr: u64) -> (i64, i16) {
    let mut op = [GnttabUnmapAndReplace {
        host_addr,
        new_addr,
        handle,
        status: 99,
        ..Default::default()
    }];
    let rc = gnt(GNTTABOP_UNMAP_AND_REPLACE, &mut op);
    (rc, op[0].status)
}

fn swap(a: u32, b: u32) -> (i64, i16) {
    let mut op = [GnttabSwapGrantRef {
        ref_a: a,
        ref_b: b,
        status: 99,
        ..Default::default()
    }];
    let rc = gnt(GNTTABOP_SWAP_GRANT_REF, &mut op);
    (rc, op[0].status)
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("grant_replace");
    let Some((mut env, w)) = own_table(&mut r, si) else {
        r.finish()
    };
    let table = w.va(1);
    let slot = |gref: u64| table + gref * 8;
    let flags_of = |gref: u64| read_u64(slot(gref)) & 0xffff;
    let granted = u64::from(GTF_PERMIT_ACCESS);
    let in_use = u64::from(GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING);

    // Two frames of our own: the granted one and the one that moves.
    let (_, data) = env.spare();
    let (_, other) = env.spare();
    check!(r, "map the data frame", w.map(3, data, P | RW | US | A) => 0);
    write_u64(w.va(3), PATTERN);
    check!(r, "unmap it", w.unmap(3) => 0);
    write_u64(slot(10), entry(ME, GTF_PERMIT_ACCESS, data));

    // The entry at new_addr moves into the grant mapping's place.
    let (st, h) = map(10, GNTMAP_HOST_MAP, w.va(4));
    check!(r, "map grant 10 writable at page 4", st => GNTST_OKAY);
    check!(r, "map the other frame writable at page 5", w.map(5, other, P | RW | US | A) => 0);
    write_u64(w.va(5), OTHER);
    check!(r, "the entry shows the grant in use", flags_of(10) => in_use);
    check!(r, "unmap_and_replace page 4 with page 5", replace(h, w.va(4), w.va(5)) => (0, GNTST_OKAY));
    let pte4 = w.pte(4);
    r.check(
        "page 4's PTE now maps the other frame writable",
        mfn_of(pte4) == other && pte4 & (P | RW) == P | RW,
    );
    check!(r, "page 4 reads the other frame", read_u64(w.va(4)) => OTHER);
    check!(r, "page 5's PTE is gone", w.pte(5) => 0);
    check!(r, "the grant entry is no longer in use", flags_of(10) => granted);
    check!(r, "the handle is gone", unmap(h, w.va(4)) => (0, GNTST_BAD_HANDLE));
    check!(r, "unmap the moved entry", w.unmap(4) => 0);
    check!(r, "the other frame can be cleared", mmuext1(MMUEXT_CLEAR_PAGE, other, 0) => 0);
    check!(r, "and pinned as an L1: no writable reference is left",
        mmuext1(MMUEXT_PIN_L1_TABLE, other, 0) => 0);
    check!(r, "unpin it", mmuext1(MMUEXT_UNPIN_TABLE, other, 0) => 0);

    // Nothing at new_addr: a plain unmap.
    let (st, h) = map(10, GNTMAP_HOST_MAP | GNTMAP_READONLY, w.va(4));
    check!(r, "map grant 10 read-only at page 4", st => GNTST_OKAY);
    check!(r, "replace with the empty page 6", replace(h, w.va(4), w.va(6)) => (0, GNTST_OKAY));
    check!(r, "page 4's PTE is gone", w.pte(4) => 0);
    check!(r, "page 6 stays empty", w.pte(6) => 0);
    check!(r, "the grant entry is no longer in use", flags_of(10) => granted);

    // A host_addr that does not map the grant: the entry at new_addr was
    // already taken and is dropped; the grant stays mapped.
    let (st, h) = map(10, GNTMAP_HOST_MAP | GNTMAP_READONLY, w.va(4));
    check!(r, "map grant 10 read-only at page 4 again", st => GNTST_OKAY);
    check!(r, "map the other frame at page 5", w.map(5, other, P | RW | US | A) => 0);
    check!(r, "replace naming page 7, which does not map it",
        replace(h, w.va(7), w.va(5)) => (0, GNTST_GENERAL_ERROR));
    check!(r, "page 5's entry was taken and dropped", w.pte(5) => 0);
    check!(r, "the grant still maps at page 4", read_u64(w.va(4)) => PATTERN);
    check!(r, "replace at the right address, no new_addr",
        replace(h, w.va(4), 0) => (0, GNTST_OKAY));
    check!(r, "no access bits left", flags_of(10) => granted);
    check!(r, "the other frame can be pinned as an L1 (its writable reference went)",
        mmuext1(MMUEXT_PIN_L1_TABLE, other, 0) => 0);
    check!(r, "unpin it", mmuext1(MMUEXT_UNPIN_TABLE, other, 0) => 0);

    // A mapping through a PTE's machine address cannot be replaced.
    let (st, h) = map(10, GNTMAP_HOST_MAP | GNTMAP_CONTAINS_PTE, w.pte_ma(6));
    check!(r, "map grant 10 through page 6's PTE", st => GNTST_OKAY);
    check!(r, "map the other frame at page 5", w.map(5, other, P | RW | US | A) => 0);
    check!(r, "replace a contains_pte mapping",
        replace(h, w.pte_ma(6), w.va(5)) => (0, GNTST_GENERAL_ERROR));
    check!(r, "page 5 still maps the other frame", mfn_of(w.pte(5)) => other);
    check!(r, "page 6 still maps the grant", read_u64(w.va(6)) => PATTERN);
    check!(r, "unmap it through unmap_and_replace without new_addr",
        replace(h, w.pte_ma(6), 0) => (0, GNTST_OKAY));
    check!(r, "page 6's PTE is gone", w.pte(6) => 0);
    check!(r, "unmap page 5", w.unmap(5) => 0);

    // A new_addr without an L1, an unknown handle.
    let (st, h) = map(10, GNTMAP_HOST_MAP, w.va(4));
    check!(r, "map grant 10 at page 4", st => GNTST_OKAY);
    check!(r, "replace from an address with no L1",
        replace(h, w.va(4), 0x1000) => (0, GNTST_GENERAL_ERROR));
    check!(r, "the grant still maps", read_u64(w.va(4)) => PATTERN);
    check!(r, "an unknown handle", replace(4000, w.va(4), w.va(5)) => (0, GNTST_BAD_HANDLE));
    check!(r, "unmap it", unmap(h, w.va(4)) => (0, GNTST_OKAY));
    for &(name, addr) in BAD_POINTERS {
        // SAFETY: the hypervisor must refuse the address without using it.
        let rc = unsafe { typed::grant_table_op(GNTTABOP_UNMAP_AND_REPLACE, addr as *mut u8, 1) };
        check!(r, "unmap_and_replace batch at {name}", rc => -EFAULT);
        // SAFETY: as above.
        let rc = unsafe { typed::grant_table_op(GNTTABOP_SWAP_GRANT_REF, addr as *mut u8, 1) };
        check!(r, "swap_grant_ref batch at {name}", rc => -EFAULT);
    }

    // swap_grant_ref.
    let a = entry(ME, GTF_PERMIT_ACCESS, data);
    let b = entry(7, GTF_PERMIT_ACCESS | GTF_READONLY, other);
    write_u64(slot(20), a);
    write_u64(slot(21), b);
    check!(r, "swap 20 and 21", swap(20, 21) => (0, GNTST_OKAY));
    check!(r, "they swapped", (read_u64(slot(20)), read_u64(slot(21))) => (b, a));
    check!(r, "swap 21 with itself", swap(21, 21) => (0, GNTST_OKAY));
    check!(r, "it is unchanged", read_u64(slot(21)) => a);
    check!(r, "a first reference past the table", swap(5000, 20) => (0, GNTST_BAD_GNTREF));
    check!(r, "a second reference past the table", swap(20, 5000) => (0, GNTST_BAD_GNTREF));
    let (st, h) = map(21, GNTMAP_HOST_MAP, w.va(4));
    check!(r, "map grant 21", st => GNTST_OKAY);
    check!(r, "swap an entry in use", swap(21, 20) => (0, GNTST_EAGAIN));
    check!(r, "swap with an entry in use", swap(20, 21) => (0, GNTST_EAGAIN));
    check!(r, "nothing moved", (read_u64(slot(20)), read_u64(slot(21)) & !0x18) => (b, a));
    check!(r, "unmap grant 21", unmap(h, w.va(4)) => (0, GNTST_OKAY));
    let mut batch = [
        GnttabSwapGrantRef {
            ref_a: 20,
            ref_b: 21,
            status: 99,
            ..Default::default()
        },
        GnttabSwapGrantRef {
            ref_a: 20,
            ref_b: 9000,
            status: 99,
            ..Default::default()
        },
        GnttabSwapGrantRef {
            ref_a: 22,
            ref_b: 20,
            status: 99,
            ..Default::default()
        },
    ];
    check!(r, "a batch of three swaps", gnt(GNTTABOP_SWAP_GRANT_REF, &mut batch) => 0);
    check!(r, "each has its status",
        (batch[0].status, batch[1].status, batch[2].status) => (GNTST_OKAY, GNTST_BAD_GNTREF, GNTST_OKAY));
    check!(r, "20 ends empty, 21 and 22 hold the two entries",
        (read_u64(slot(20)), read_u64(slot(21)), read_u64(slot(22))) => (0, b, a));
    check!(r, "unmap the grant table", w.unmap(1) => 0);
    r.finish()
}
