//! Host tests: the front end against the back-end core over one ring.

extern crate std;

use super::*;
use crate::blkif::{serve, RSP_ERROR, RSP_OKAY};
use crate::ring::Back;
use crate::testing::{Area, MemDisk, Pages};
use std::vec;

/// Serves every request on the ring with the back-end core.
fn back_end(b: &mut Back<'_, Area, Request, Response>, disk: &mut MemDisk, pages: &mut Pages) {
    while let Some(req) = b.next_request().unwrap() {
        assert!(b.queue(&serve(&req, disk, pages)));
    }
    b.push();
}

#[test]
fn reads_writes_and_flushes_complete_with_their_ids() {
    let area = Area::new(4096);
    let mut f = BlkFront::new(&area).unwrap();
    let mut b = Back::<_, Request, Response>::new(&area).unwrap();
    let mut disk = MemDisk::new(64, false);
    let mut pages = Pages::default();
    pages.0.insert(3, vec![0x5a; 4096]);
    pages.0.insert(4, vec![0; 4096]);
    let w = f
        .write(
            8,
            &[Page {
                gref: 3,
                first_sect: 0,
                last_sect: 7,
            }],
        )
        .unwrap();
    let r = f
        .read(
            8,
            &[Page {
                gref: 4,
                first_sect: 0,
                last_sect: 7,
            }],
        )
        .unwrap();
    let fl = f.flush().unwrap();
    assert_eq!(f.in_flight(), 3);
    f.push();
    back_end(&mut b, &mut disk, &mut pages);
    let done = f.completions().unwrap();
    assert_eq!(
        done,
        [
            Completion {
                id: w,
                status: RSP_OKAY
            },
            Completion {
                id: r,
                status: RSP_OKAY
            },
            Completion {
                id: fl,
                status: RSP_OKAY
            }
        ]
    );
    assert!(
        pages.0[&4].iter().all(|&b| b == 0x5a),
        "read back what was written"
    );
    assert_eq!((f.in_flight(), disk.flushed), (0, 1));
    // Past the disk: the back end's error comes back with the id.
    let e = f
        .read(
            64,
            &[Page {
                gref: 4,
                first_sect: 0,
                last_sect: 0,
            }],
        )
        .unwrap();
    f.push();
    back_end(&mut b, &mut disk, &mut pages);
    assert_eq!(
        f.completions().unwrap(),
        [Completion {
            id: e,
            status: RSP_ERROR
        }]
    );
}

#[test]
fn bad_segments_are_refused_before_the_ring() {
    let area = Area::new(4096);
    let mut f = BlkFront::new(&area).unwrap();
    let p = Page {
        gref: 1,
        first_sect: 0,
        last_sect: 0,
    };
    assert_eq!(f.read(0, &[]), Err(QueueError::BadSegments));
    assert_eq!(f.read(0, &[p; 12]), Err(QueueError::BadSegments));
    let bad = Page { last_sect: 8, ..p };
    assert_eq!(f.write(0, &[bad]), Err(QueueError::BadSegments));
    for _ in 0..32 {
        f.read(0, &[p]).unwrap();
    }
    assert_eq!(f.read(0, &[p]), Err(QueueError::Full), "32 slots");
}

#[test]
fn a_back_end_answering_what_was_not_asked_is_ignored() {
    let area = Area::new(4096);
    let mut f = BlkFront::new(&area).unwrap();
    let id = f
        .read(
            0,
            &[Page {
                gref: 1,
                first_sect: 0,
                last_sect: 0,
            }],
        )
        .unwrap();
    f.push();
    // The back end answers id 999 in the slot of the one request.
    let rsp = Response {
        id: 999,
        status: RSP_OKAY,
        ..Default::default()
    };
    area.write(crate::ring::HEADER, zerocopy::IntoBytes::as_bytes(&rsp));
    area.store(8, 1);
    assert_eq!(f.completions().unwrap(), []);
    assert_eq!(
        (f.bogus(), f.in_flight()),
        (1, 1),
        "request {id} still in flight"
    );
    // More responses than requests: the ring's overflow.
    area.store(8, 5);
    assert_eq!(f.completions(), Err(RingError::Overflow));
}
