//! Host tests: the front end against the back-end core (`netback`) over
//! two rings.

extern crate std;

use super::*;
use crate::netback::{assemble, copy, deliver, Tx};
use crate::ring::Back;
use crate::testing::{Area, Pages};
use guest_abi::io::netif::{NETIF_RSP_ERROR, NETIF_RSP_OKAY};
use std::vec;

#[test]
fn a_frame_goes_out_and_one_comes_in() {
    let (ta, ra) = (Area::new(4096), Area::new(4096));
    let mut f = NetFront::new(&ta, &ra).unwrap();
    let mut tb = Back::<_, NetifTxRequest, NetifTxResponse>::new(&ta).unwrap();
    let mut rb = Back::<_, NetifRxRequest, NetifRxResponse>::new(&ra).unwrap();
    let mut pages = Pages::default();
    let frame: std::vec::Vec<u8> = (0..60u8).collect();
    let mut page = vec![0u8; 4096];
    page[100..160].copy_from_slice(&frame);
    pages.0.insert(7, page);
    pages.0.insert(20, vec![0; 4096]);
    pages.0.insert(21, vec![0; 4096]);
    let id = f.send(7, 100, 60, true).unwrap();
    assert_eq!((f.post(20), f.post(21)), (Ok(0), Ok(1)));
    f.push();
    // The back end takes the frame, copies it out and answers.
    let req = tb.next_request().unwrap().unwrap();
    let (used, tx) = assemble(&[req]);
    assert_eq!(used, 1);
    let Tx::Packet(p, responses) = tx else {
        panic!("not a packet")
    };
    assert!(p.csum_blank && p.data_validated);
    assert_eq!(copy(&p, &mut pages).unwrap(), frame);
    for r in &responses {
        assert!(tb.queue(r));
    }
    tb.push();
    assert_eq!(f.sent().unwrap(), [(id, NETIF_RSP_OKAY)]);
    assert_eq!(f.sending(), 0);
    // And delivers a frame into the first posted buffer.
    let posted = [
        rb.next_request().unwrap().unwrap(),
        rb.next_request().unwrap().unwrap(),
    ];
    let incoming = [0xabu8; 90];
    let rsps = deliver(&incoming, false, true, &posted, &mut pages).unwrap();
    for r in &rsps {
        assert!(rb.queue(r));
    }
    rb.push();
    let got = f.received().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].gref, got[0].offset, got[0].len), (20, 0, 90));
    assert_eq!(&pages.0[&20][..90], &incoming[..]);
    assert_eq!(f.posted(), 1, "buffer 21 is still posted");
}

#[test]
fn a_lying_back_end_completes_nothing_it_was_not_given() {
    let (ta, ra) = (Area::new(4096), Area::new(4096));
    let mut f = NetFront::new(&ta, &ra).unwrap();
    let mut tb = Back::<_, NetifTxRequest, NetifTxResponse>::new(&ta).unwrap();
    let mut rb = Back::<_, NetifRxRequest, NetifRxResponse>::new(&ra).unwrap();
    let id = f.send(7, 0, 60, false).unwrap();
    f.post(20).unwrap();
    f.push();
    let _ = tb.next_request().unwrap().unwrap();
    let _ = rb.next_request().unwrap().unwrap();
    // An answer for an id never sent, then the real one.
    assert!(tb.queue(&NetifTxResponse {
        id: id + 5,
        status: NETIF_RSP_OKAY,
    }));
    tb.push();
    assert_eq!(f.sent().unwrap(), []);
    assert_eq!(f.bogus(), 1);
    assert_eq!(f.sending(), 1);
    // A receive answer claiming more than its page holds, for the posted
    // buffer: an error, the buffer free again.
    assert!(rb.queue(&NetifRxResponse {
        id: 0,
        offset: 4000,
        flags: 0,
        status: 200,
    }));
    rb.push();
    assert_eq!(f.received().unwrap(), []);
    assert_eq!((f.rx_errors(), f.posted()), (1, 0));
    // A producer index far past what was sent is the ring's error.
    ta.store(8, 1000);
    assert!(f.sent().is_err());
}

#[test]
fn frames_outside_their_page_or_empty_are_refused() {
    let (ta, ra) = (Area::new(4096), Area::new(4096));
    let mut f = NetFront::new(&ta, &ra).unwrap();
    assert_eq!(f.send(1, 0, 0, false), Err(QueueError::BadFrame));
    assert_eq!(f.send(1, 4000, 200, false), Err(QueueError::BadFrame));
    assert_eq!(f.send(1, 4036, 60, false).map(|_| ()), Ok(()));
    // An error status on the transmit side is the frame's answer.
    let mut tb = Back::<_, NetifTxRequest, NetifTxResponse>::new(&ta).unwrap();
    f.push();
    let r = tb.next_request().unwrap().unwrap();
    assert!(tb.queue(&NetifTxResponse {
        id: r.id,
        status: NETIF_RSP_ERROR,
    }));
    tb.push();
    assert_eq!(f.sent().unwrap(), [(r.id, NETIF_RSP_ERROR)]);
}

#[test]
fn receive_answers_that_do_not_fit_their_page_are_errors() {
    let (ta, ra) = (Area::new(4096), Area::new(4096));
    let mut f = NetFront::new(&ta, &ra).unwrap();
    let mut rb = Back::<_, NetifRxRequest, NetifRxResponse>::new(&ra).unwrap();
    for gref in 20..24 {
        f.post(gref).unwrap();
    }
    f.push();
    // Longer than a page, starting past its end, running one byte past
    // it, and one that fits exactly to the page's last byte.
    for (offset, status) in [(0, 5000), (4096, 1), (4000, 97), (4000, 96)] {
        let id = rb.next_request().unwrap().unwrap().id;
        assert!(rb.queue(&NetifRxResponse {
            id,
            offset,
            flags: 0,
            status,
        }));
    }
    rb.push();
    let got = f.received().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].gref, got[0].offset, got[0].len), (23, 4000, 96));
    assert_eq!((f.rx_errors(), f.posted(), f.bogus()), (3, 0, 0));
}
