//! Host tests of the block back end's core: Xen's layouts, reads and
//! writes through grants, and every check a lying front end meets.

extern crate std;

use super::*;
use crate::testing::{MemDisk, Pages};
use std::vec;
use zerocopy::FromBytes;

fn seg(gref: u32, first: u8, last: u8) -> Segment {
    Segment {
        gref,
        first_sect: first,
        last_sect: last,
        _pad: 0,
    }
}

fn req(op: u8, sector: u64, segs: &[Segment]) -> Request {
    let mut r = Request {
        operation: op,
        nr_segments: u8::try_from(segs.len()).unwrap(),
        id: 77,
        sector_number: sector,
        ..Default::default()
    };
    r.seg[..segs.len()].copy_from_slice(segs);
    r
}

#[test]
fn layouts_are_xens() {
    assert_eq!(core::mem::size_of::<Request>(), 112);
    assert_eq!(core::mem::size_of::<Response>(), 16);
    assert_eq!(core::mem::size_of::<Segment>(), 8);
    let r = Response {
        id: 1,
        operation: 1,
        status: -1,
        ..Default::default()
    };
    assert_eq!(&r.as_bytes()[8..12], &[1, 0, 0xff, 0xff]);
    assert_eq!(crate::ring::ring_size(4096, 112), 32);
}

#[test]
fn reads_and_writes_go_through_the_granted_sectors() {
    let mut disk = MemDisk::new(64, false);
    let mut pages = Pages::default();
    pages.0.insert(5, vec![0; 4096]);
    pages.0.insert(6, vec![0; 4096]);
    // Sectors 10-12 into page 5 (its sectors 2-4), 13-20 into page 6.
    let r = serve(
        &req(OP_READ, 10, &[seg(5, 2, 4), seg(6, 0, 7)]),
        &mut disk,
        &mut pages,
    );
    assert_eq!((r.id, r.operation, r.status), (77, OP_READ, RSP_OKAY));
    assert_eq!(&pages.0[&5][1024..2560], &disk.bytes[10 * 512..13 * 512]);
    assert_eq!(pages.0[&5][1023], 0, "sector 1 of the page untouched");
    assert_eq!(&pages.0[&6][..], &disk.bytes[13 * 512..21 * 512]);
    // Write page 6's last sector to sector 63, the disk's last.
    pages.0.get_mut(&6).unwrap()[3584..].fill(0xab);
    let r = serve(&req(OP_WRITE, 63, &[seg(6, 7, 7)]), &mut disk, &mut pages);
    assert_eq!(r.status, RSP_OKAY);
    assert!(disk.bytes[63 * 512..].iter().all(|&b| b == 0xab));
    let r = serve(&req(OP_FLUSH_DISKCACHE, 0, &[]), &mut disk, &mut pages);
    assert_eq!((r.status, disk.flushed), (RSP_OKAY, 1));
    let mut d = req(OP_DISCARD, 60, &[]);
    d.seg[0] = Segment::read_from_bytes(&4u64.to_le_bytes()).unwrap();
    assert_eq!(serve(&d, &mut disk, &mut pages).status, RSP_OKAY);
    assert!(disk.bytes[60 * 512..].iter().all(|&b| b == 0));
}

#[test]
fn every_lie_is_an_error_and_changes_nothing() {
    let mut disk = MemDisk::new(64, false);
    let before = disk.bytes.clone();
    let mut pages = Pages::default();
    pages.0.insert(5, vec![0xcc; 4096]);
    let mut discard_past = req(OP_DISCARD, 60, &[]);
    discard_past.seg[0] = Segment::read_from_bytes(&5u64.to_le_bytes()).unwrap();
    let mut twelve = req(OP_WRITE, 0, &[seg(5, 0, 0)]);
    twelve.nr_segments = 12;
    let cases = [
        ("no segment", req(OP_WRITE, 0, &[]), RSP_ERROR),
        ("twelve segments", twelve, RSP_ERROR),
        (
            "first after last",
            req(OP_WRITE, 0, &[seg(5, 3, 2)]),
            RSP_ERROR,
        ),
        (
            "a sector past the page",
            req(OP_WRITE, 0, &[seg(5, 0, 8)]),
            RSP_ERROR,
        ),
        (
            "past the disk's end",
            req(OP_WRITE, 63, &[seg(5, 0, 1)]),
            RSP_ERROR,
        ),
        (
            "wrapping",
            req(OP_WRITE, u64::MAX, &[seg(5, 0, 0)]),
            RSP_ERROR,
        ),
        (
            "an ungranted page",
            req(OP_WRITE, 0, &[seg(9, 0, 0)]),
            RSP_ERROR,
        ),
        ("a discard past the end", discard_past, RSP_ERROR),
        (
            "a barrier",
            req(OP_WRITE_BARRIER, 0, &[seg(5, 0, 0)]),
            RSP_EOPNOTSUPP,
        ),
        (
            "an indirect request of no segment",
            req(OP_INDIRECT, 0, &[seg(5, 0, 0)]),
            RSP_ERROR,
        ),
        (
            "an unknown operation",
            req(200, 0, &[seg(5, 0, 0)]),
            RSP_EOPNOTSUPP,
        ),
    ];
    for (what, r, want) in cases {
        assert_eq!(serve(&r, &mut disk, &mut pages).status, want, "{what}");
        assert_eq!(disk.bytes, before, "{what} changed the disk");
    }
    // A read-only disk: reads only.
    let mut ro = MemDisk::new(8, true);
    let before = ro.bytes.clone();
    for op in [OP_WRITE, OP_FLUSH_DISKCACHE, OP_DISCARD] {
        assert_eq!(
            serve(&req(op, 0, &[seg(5, 0, 0)]), &mut ro, &mut pages).status,
            RSP_ERROR
        );
    }
    assert_eq!(ro.bytes, before);
    assert_eq!(
        serve(&req(OP_READ, 0, &[seg(5, 0, 0)]), &mut ro, &mut pages).status,
        RSP_OKAY
    );
}

/// An indirect request of `op` for `n` segments whose descriptors are in
/// page `desc` (put there by the caller), from `sector`.
fn indirect(op: u8, n: u16, sector: u64, desc: u32) -> Request {
    let ind = RequestIndirect {
        operation: OP_INDIRECT,
        indirect_op: op,
        nr_segments: n,
        id: 88,
        sector_number: sector,
        indirect_grefs: [desc, 0, 0, 0, 0, 0, 0, 0],
        ..Default::default()
    };
    let mut r = Request::default();
    r.as_mut_bytes()[..64].copy_from_slice(ind.as_bytes());
    r
}

/// Page `desc` holding descriptors of whole pages `first..first + n`.
fn descriptors(pages: &mut Pages, desc: u32, first: u32, n: u32) {
    let mut page = vec![0u8; 4096];
    for i in 0..n {
        let s = seg(first + i, 0, 7);
        page[i as usize * 8..][..8].copy_from_slice(s.as_bytes());
    }
    pages.0.insert(desc, page);
}

#[test]
fn an_indirect_read_and_write_of_twenty_pages() {
    let mut disk = MemDisk::new(256, false);
    let mut pages = Pages::default();
    descriptors(&mut pages, 50, 100, 20);
    for g in 100..120 {
        pages.0.insert(g, vec![0; 4096]);
    }
    let rsp = serve(&indirect(OP_READ, 20, 16, 50), &mut disk, &mut pages);
    // Answered with the operation it carried, as Linux's front end checks.
    assert_eq!((rsp.id, rsp.operation, rsp.status), (88, OP_READ, RSP_OKAY));
    for (i, g) in (100..120).enumerate() {
        let at = (16 + i * 8) * 512;
        assert_eq!(pages.0[&g], disk.bytes[at..at + 4096], "page {g}");
    }
    // The twenty pages moved in one batch of copies.
    assert_eq!(pages.1.batches, 1);
    for g in 100..120u32 {
        pages.0.insert(g, vec![u8::try_from(g).unwrap(); 4096]);
    }
    let rsp = serve(&indirect(OP_WRITE, 20, 40, 50), &mut disk, &mut pages);
    assert_eq!(rsp.status, RSP_OKAY);
    assert!(disk.bytes[40 * 512..][..4096].iter().all(|&b| b == 100));
    assert!(disk.bytes[(40 + 19 * 8) * 512..][..4096]
        .iter()
        .all(|&b| b == 119));
    assert_eq!(pages.1.batches, 2);
}

#[test]
fn lying_indirect_requests_are_errors_and_change_nothing() {
    let mut disk = MemDisk::new(256, false);
    let mut pages = Pages::default();
    descriptors(&mut pages, 50, 100, 33);
    for g in 100..133 {
        pages.0.insert(g, vec![9; 4096]);
    }
    // Descriptors naming an ungranted page for a write.
    descriptors(&mut pages, 51, 500, 2);
    // A descriptor out of order.
    let mut bad = vec![0u8; 4096];
    bad[..8].copy_from_slice(seg(100, 6, 2).as_bytes());
    pages.0.insert(52, bad);
    let before = disk.bytes.clone();
    for (what, r) in [
        ("33 segments", indirect(OP_WRITE, 33, 0, 50)),
        ("no segment", indirect(OP_WRITE, 0, 0, 50)),
        (
            "a descriptor page never granted",
            indirect(OP_WRITE, 2, 0, 77),
        ),
        ("a flush inside", indirect(OP_FLUSH_DISKCACHE, 2, 0, 50)),
        ("an indirect inside", indirect(OP_INDIRECT, 2, 0, 50)),
        (
            "a segment from an ungranted page",
            indirect(OP_WRITE, 2, 0, 51),
        ),
        ("a segment out of order", indirect(OP_WRITE, 1, 0, 52)),
        (
            "past the disk's end",
            indirect(OP_WRITE, 20, 256 - 8 * 19, 50),
        ),
    ] {
        assert_eq!(serve(&r, &mut disk, &mut pages).status, RSP_ERROR, "{what}");
        assert_eq!(disk.bytes, before, "{what} changed the disk");
    }
}
