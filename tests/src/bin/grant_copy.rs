//! `GNTTABOP_copy` with a domain's own grants and frames: one batch whose
//! elements copy by frame number and by grant reference, in both
//! directions, each with its own status, and whose bad elements get
//! Xen's: a range that crosses its page, a frame number of a domain that
//! does not exist, a reference past the table, a domain that does not exist, a
//! frame that is not ours, another domain's frame by number, a grant it
//! did not make, a page table as the destination, a read-only
//! grant or another domain's grant as the destination. Afterwards no
//! grant is left marked in use; a copy into a grant that is also mapped
//! leaves the mapping's marks alone. Only an element's status is written
//! back (its other fields may lie on a read-only page).
//!
//! @covers: grant_table_op.copy
#![no_std]
#![no_main]

use guest_abi::domctl::*;
use guest_abi::errno::*;
use guest_abi::grant_table::*;
use guest_abi::hypercall::typed;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::DOMID_SELF;
use tests::check;
use tests::expect::BAD_POINTERS;
use tests::grants::{by_frame, by_ref, copy_op, entry, gnt};
use tests::pvmm::{env_window_catching, read_u64, write_u64, A, P, RW, US};

guest_abi::pv_guest!(main, name = "grant_copy");

const ME: u16 = 0;

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("grant_copy");
    let Some((mut env, w)) = env_window_catching(&mut r, si) else {
        r.finish()
    };
    let mut frames = [0u64; 1];
    let mut setup = [GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: 1,
        frame_list: frames.as_mut_ptr() as u64,
        ..Default::default()
    }];
    let rc = gnt(GNTTABOP_SETUP_TABLE, &mut setup);
    if !check!(r, "setup_table", (rc, setup[0].status) => (0, GNTST_OKAY))
        || !check!(r, "map the grant table", w.map(1, frames[0], P | RW | US | A) => 0)
    {
        r.finish()
    }
    let table = w.va(1);
    let slot = |gref: u64| table + gref * 8;
    let flags_of = |gref: u64| read_u64(slot(gref)) & 0xffff;

    let (_, a) = env.spare();
    let (_, b) = env.spare();
    check!(r, "map frame A", w.map(2, a, P | RW | US | A) => 0);
    check!(r, "map frame B", w.map(3, b, P | RW | US | A) => 0);
    for i in 0..512 {
        write_u64(w.va(2) + i * 8, 0xa000_0000_0000_0000 | i);
        write_u64(w.va(3) + i * 8, 0);
    }
    write_u64(slot(10), entry(ME, GTF_PERMIT_ACCESS, a));
    write_u64(slot(11), entry(ME, GTF_PERMIT_ACCESS, b));
    write_u64(slot(12), entry(ME, GTF_PERMIT_ACCESS | GTF_READONLY, a));
    write_u64(slot(13), entry(5, GTF_PERMIT_ACCESS, b));

    let mut batch = [
        // 0: A[0..64] by frame into B[800..] by grant 11.
        copy_op(by_frame(a, 0), by_ref(ME, 11, 800), 64, GNTCOPY_DEST_GREF),
        // 1: A[8..16] by grant 10 into B[0..8] by frame.
        copy_op(by_ref(ME, 10, 8), by_frame(b, 0), 8, GNTCOPY_SOURCE_GREF),
        // 2: from the read-only grant 12 (A[16..24]) into B[8..16].
        copy_op(
            by_ref(DOMID_SELF, 12, 16),
            by_frame(b, 8),
            8,
            GNTCOPY_SOURCE_GREF,
        ),
        // 3: both by grant, a whole page: A into B... at offset 2048, half.
        copy_op(
            by_ref(ME, 10, 2048),
            by_ref(ME, 11, 2048),
            2048,
            GNTCOPY_SOURCE_GREF | GNTCOPY_DEST_GREF,
        ),
        // 4: crosses the page.
        copy_op(by_frame(a, 1), by_frame(b, 0), 4096, 0),
        // 5: a frame number of a domain that does not exist.
        copy_op(by_ref(5, 0, 0).with_frame(a), by_frame(b, 0), 8, 0),
        // 6: a reference past the table.
        copy_op(by_ref(ME, 5000, 0), by_frame(b, 0), 8, GNTCOPY_SOURCE_GREF),
        // 7: no such domain.
        copy_op(
            by_ref(0x7000, 10, 0),
            by_frame(b, 0),
            8,
            GNTCOPY_SOURCE_GREF,
        ),
        // 8: not our frame.
        copy_op(by_frame(0x0fff_ffff, 0), by_frame(b, 0), 8, 0),
        // 9: a page table as the destination.
        copy_op(by_frame(a, 0), by_frame(w.l1_mfn, 0), 8, 0),
        // 10: the read-only grant as the destination.
        copy_op(by_frame(a, 0), by_ref(ME, 12, 0), 8, GNTCOPY_DEST_GREF),
        // 11: another domain's grant.
        copy_op(by_frame(a, 0), by_ref(ME, 13, 0), 8, GNTCOPY_DEST_GREF),
    ];
    check!(r, "a batch of 12 copies", gnt(GNTTABOP_COPY, &mut batch) => 0);
    let want = [
        GNTST_OKAY,
        GNTST_OKAY,
        GNTST_OKAY,
        GNTST_OKAY,
        GNTST_BAD_COPY_ARG,
        GNTST_BAD_DOMAIN,
        GNTST_BAD_GNTREF,
        GNTST_BAD_DOMAIN,
        GNTST_BAD_PAGE,
        GNTST_GENERAL_ERROR,
        GNTST_GENERAL_ERROR,
        GNTST_GENERAL_ERROR,
    ];
    for (i, (op, want)) in batch.iter().zip(want).enumerate() {
        check!(r, "element {i}'s status", op.status => want);
    }
    check!(r, "B[0..8] = A[8..16]", read_u64(w.va(3)) => 0xa000_0000_0000_0001);
    check!(r, "B[8..16] = A[16..24]", read_u64(w.va(3) + 8) => 0xa000_0000_0000_0002);
    check!(r, "B[800..808] = A[0..8]", read_u64(w.va(3) + 800) => 0xa000_0000_0000_0000);
    check!(r, "B[856..864] = A[56..64]", read_u64(w.va(3) + 856) => 0xa000_0000_0000_0007);
    check!(r, "B[864..] untouched", read_u64(w.va(3) + 864) => 0);
    check!(r, "B[2048..] = A[2048..]", read_u64(w.va(3) + 2048) => 0xa000_0000_0000_0100);
    check!(r, "B[4088..] = A[4088..]", read_u64(w.va(3) + 4088) => 0xa000_0000_0000_01ff);
    for gref in [10, 11, 12] {
        check!(r, "grant {gref} left unmarked",
            flags_of(gref) & u64::from(GTF_READING | GTF_WRITING) => 0);
    }

    // A copy into a grant that is mapped read-only keeps the map's mark.
    let mut m = [GnttabMapGrantRef {
        host_addr: w.va(4),
        flags: GNTMAP_HOST_MAP | GNTMAP_READONLY,
        ref_: 11,
        dom: ME,
        ..Default::default()
    }];
    check!(r, "map grant 11 read-only", (gnt(GNTTABOP_MAP_GRANT_REF, &mut m), m[0].status) => (0, GNTST_OKAY));
    let mut c = [copy_op(
        by_frame(a, 24),
        by_ref(ME, 11, 16),
        8,
        GNTCOPY_DEST_GREF,
    )];
    check!(r, "copy into it", (gnt(GNTTABOP_COPY, &mut c), c[0].status) => (0, GNTST_OKAY));
    check!(r, "the mapping sees the copy", read_u64(w.va(4) + 16) => 0xa000_0000_0000_0003);
    check!(r, "its entry keeps reading only",
        flags_of(11) & u64::from(GTF_READING | GTF_WRITING) => u64::from(GTF_READING));
    let mut u = [GnttabUnmapGrantRef {
        host_addr: w.va(4),
        handle: m[0].handle,
        ..Default::default()
    }];
    check!(r, "unmap it", (gnt(GNTTABOP_UNMAP_GRANT_REF, &mut u), u[0].status) => (0, GNTST_OKAY));
    check!(r, "grant 11 unmarked", flags_of(11) & u64::from(GTF_READING | GTF_WRITING) => 0);

    // Another domain: its frames are not ours to name by number, and its
    // (empty) table grants nothing.
    let mut create = XenDomctl::new(
        XEN_DOMCTL_CREATEDOMAIN,
        0,
        &XenDomctlCreatedomain::pv(1, [0; 16]),
    );
    // SAFETY: `create` is a live xen_domctl.
    let rc = unsafe { typed::domctl(&mut create) };
    if check!(r, "create a domain", rc => 0) {
        let other = create.domain;
        let mut c = [
            copy_op(by_ref(other, 0, 0).with_frame(a), by_frame(b, 0), 8, 0),
            copy_op(by_ref(other, 0, 0), by_frame(b, 0), 8, GNTCOPY_SOURCE_GREF),
            copy_op(by_frame(a, 0), by_ref(other, 0, 0).with_frame(b), 8, 0),
        ];
        check!(r, "copies naming it", gnt(GNTTABOP_COPY, &mut c) => 0);
        check!(r, "its frame by number", c[0].status => GNTST_PERMISSION_DENIED);
        check!(r, "its empty grant 0", c[1].status => GNTST_GENERAL_ERROR);
        check!(r, "its frame by number as the destination", c[2].status => GNTST_PERMISSION_DENIED);
        let mut destroy = XenDomctl::new(XEN_DOMCTL_DESTROYDOMAIN, other, &0u64);
        // SAFETY: as above.
        check!(r, "destroy it", unsafe { typed::domctl(&mut destroy) } => 0);
    }

    // Only the status is written back, as Xen writes it: an element
    // whose other fields lie on a read-only page still copies and gets
    // its status.
    let (_, c) = env.spare();
    let (_, d) = env.spare();
    check!(r, "map frame C", w.map(5, c, P | RW | US | A) => 0);
    check!(r, "map frame D after it", w.map(6, d, P | RW | US | A) => 0);
    // The element's 40 bytes from 36 bytes before D: its status (at 36)
    // is D's first two bytes.
    let at = w.va(6) - 36;
    write_u64(at, a);
    write_u64(at + 8, u64::from(DOMID_SELF));
    write_u64(at + 16, b);
    write_u64(at + 24, u64::from(DOMID_SELF) | 3000 << 16);
    write_u64(at + 32, 8 | 0x7777 << 32);
    check!(r, "C read-only", w.map(5, c, P | US | A) => 0);
    // SAFETY: the element is mapped (its first 36 bytes read-only).
    let rc = unsafe { typed::grant_table_op(GNTTABOP_COPY, at as *mut u8, 1) };
    check!(r, "a copy whose element straddles a read-only page", rc => 0);
    check!(r, "its status, in the writable page", read_u64(at + 32) >> 32 & 0xffff => 0);
    check!(r, "B[3000..3008] = A[0..8]", read_u64(w.va(3) + 3000) => 0xa000_0000_0000_0000);

    let mut none: [GnttabCopy; 0] = [];
    check!(r, "an empty batch", gnt(GNTTABOP_COPY, &mut none) => 0);
    for &(name, addr) in BAD_POINTERS {
        // SAFETY: the hypervisor must refuse the address without using it.
        let rc = unsafe { typed::grant_table_op(GNTTABOP_COPY, addr as *mut u8, 1) };
        check!(r, "copy batch at {name}", rc => -EFAULT);
    }
    r.finish()
}

trait WithFrame {
    fn with_frame(self, mfn: u64) -> Self;
}

impl WithFrame for GnttabCopyPtr {
    fn with_frame(mut self, mfn: u64) -> Self {
        self.u = mfn;
        self
    }
}
