//! Host tests of the xenstore wire: messages across the ring's wrap, a
//! 4 KiB payload through the 1 KiB ring, pipelined requests, and a lying
//! peer.

extern crate std;

use super::*;
use crate::testing::Area;
use std::vec::Vec;

fn page() -> Area {
    Area::new(4096)
}

#[test]
fn a_message_round_trips_and_its_header_is_xens() {
    let p = page();
    let r = StoreRing::new(&p);
    let m = Message::new(ty::WRITE, 7, 0, b"device/vbd\0hello").unwrap();
    let bytes = m.to_bytes();
    assert_eq!(
        &bytes[..16],
        &[11, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0]
    );
    assert_eq!(r.write(Direction::Requests, &bytes), Ok(bytes.len()));
    assert_eq!(r.available(Direction::Requests), Ok(32));
    assert_eq!(r.available(Direction::Responses), Ok(0));
    let mut a = Assembler::default();
    assert_eq!(a.pull(&r, Direction::Requests), Ok(Some(m)));
    assert_eq!(a.pull(&r, Direction::Requests), Ok(None));
    assert!(Message::new(ty::WRITE, 1, 0, &[0; PAYLOAD_MAX + 1]).is_none());
}

#[test]
fn a_full_payload_streams_through_the_ring_across_its_wrap() {
    let p = page();
    let r = StoreRing::new(&p);
    // Start near the end of the ring so that everything wraps.
    let _ = r.write(Direction::Responses, &[0; 1000]);
    let mut sink = [0u8; 1000];
    assert_eq!(r.read(Direction::Responses, &mut sink), Ok(1000));
    let payload: Vec<u8> = (0..PAYLOAD_MAX)
        .map(|i| (i * 7 % 251).to_le_bytes()[0])
        .collect();
    let m = Message::new(ty::READ, 3, 9, &payload).unwrap();
    let bytes = m.to_bytes();
    let mut a = Assembler::default();
    let (mut sent, mut got) = (0, None);
    while got.is_none() {
        sent += r.write(Direction::Responses, &bytes[sent..]).unwrap();
        got = a.pull(&r, Direction::Responses).unwrap();
    }
    assert_eq!(sent, bytes.len());
    assert_eq!(got, Some(m));
}

#[test]
fn pipelined_requests_come_out_one_by_one_in_order() {
    let p = page();
    let r = StoreRing::new(&p);
    let msgs: Vec<Message> = (0..5u32)
        .map(|i| Message::new(ty::READ, 100 + i, 0, &[b'a'; 30][..i as usize * 5]).unwrap())
        .collect();
    let all: Vec<u8> = msgs.iter().flat_map(Message::to_bytes).collect();
    assert_eq!(r.write(Direction::Requests, &all), Ok(all.len()));
    let mut a = Assembler::default();
    for m in &msgs {
        assert_eq!(
            a.pull(&r, Direction::Requests).as_ref(),
            Ok(&Some(m.clone()))
        );
    }
    assert_eq!(a.pull(&r, Direction::Requests), Ok(None));
}

#[test]
fn a_full_ring_takes_what_fits() {
    let p = page();
    let r = StoreRing::new(&p);
    assert_eq!(r.write(Direction::Requests, &[1; 1500]), Ok(1024));
    assert_eq!(r.write(Direction::Requests, &[1; 10]), Ok(0));
    let mut out = [0u8; 24];
    assert_eq!(r.read(Direction::Requests, &mut out), Ok(24));
    assert_eq!(r.write(Direction::Requests, &[2; 100]), Ok(24));
}

#[test]
fn a_lying_peer_is_caught() {
    let p = page();
    let r = StoreRing::new(&p);
    // A producer more than a ring ahead, or behind its consumer.
    p.store(REQ_PROD, 1025);
    assert_eq!(
        r.read(Direction::Requests, &mut [0; 8]),
        Err(WireError::BadIndex {
            prod: 1025,
            cons: 0
        })
    );
    p.store(REQ_PROD, 0);
    p.store(REQ_CONS, 5);
    assert!(r.write(Direction::Requests, b"x").is_err());
    p.store(REQ_CONS, 0);
    // A header announcing more than the protocol allows is refused before
    // any payload is taken.
    let h = Header {
        type_: ty::WRITE,
        req_id: 1,
        tx_id: 0,
        len: 4097,
    };
    assert_eq!(r.write(Direction::Requests, h.as_bytes()), Ok(16));
    assert_eq!(r.write(Direction::Requests, &[0; 100]), Ok(100));
    let mut a = Assembler::default();
    assert_eq!(
        a.pull(&r, Direction::Requests),
        Err(WireError::TooLong(4097))
    );
    assert_eq!(
        r.available(Direction::Requests),
        Ok(100),
        "the payload stays"
    );
    // Indices wrapping past 2^32 are fine.
    let p = page();
    let r = StoreRing::new(&p);
    p.store(RSP_CONS, u32::MAX - 3);
    p.store(RSP_PROD, u32::MAX - 3);
    let m = Message::new(ty::WATCH_EVENT, 0, 0, b"a\0tok\0").unwrap();
    assert_eq!(r.write(Direction::Responses, &m.to_bytes()), Ok(22));
    assert_eq!(
        Assembler::default().pull(&r, Direction::Responses),
        Ok(Some(m))
    );
}
