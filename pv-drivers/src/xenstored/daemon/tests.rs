//! Host tests of the daemon: two domains over their store pages, watch
//! events between them, and a client that stops reading.

extern crate std;

use super::*;
use crate::testing::Area;
use crate::xs_wire::ty;
use std::vec::Vec;

/// The domain's side of its page: writes requests, reads what came back.
struct Client<'a> {
    ring: StoreRing<'a, Area>,
    input: Assembler,
}

impl<'a> Client<'a> {
    fn new(page: &'a Area) -> Self {
        Self {
            ring: StoreRing::new(page),
            input: Assembler::default(),
        }
    }

    fn send(&self, kind: u32, req_id: u32, payload: &[u8]) {
        let m = Message::new(kind, req_id, 0, payload).unwrap();
        assert_eq!(
            self.ring.write(Direction::Requests, &m.to_bytes()),
            Ok(m.to_bytes().len())
        );
    }

    fn received(&mut self) -> Vec<Message> {
        core::iter::from_fn(|| self.input.pull(&self.ring, Direction::Responses).unwrap()).collect()
    }
}

const DOM0: Conn = Conn {
    domid: 0,
    privileged: true,
};

fn setup() -> (Daemon, Area, Area) {
    let mut d = Daemon::new();
    d.connect(0, true);
    d.connect(1, false);
    d.store.mkdir(DOM0, "/local/domain/1").unwrap();
    let perms = [super::super::Perm::parse("n1").unwrap()];
    d.store.set_perms(DOM0, "/local/domain/1", &perms).unwrap();
    (d, Area::new(4096), Area::new(4096))
}

#[test]
fn requests_are_answered_in_order_and_events_reach_the_watcher() {
    let (mut d, p0, p1) = setup();
    let (mut c0, mut c1) = (Client::new(&p0), Client::new(&p1));
    c0.send(ty::WATCH, 1, b"/local/domain/1/data\0w\0");
    assert_eq!(d.service(0, &c0.ring), Ok(true));
    let got = c0.received();
    assert_eq!(
        got.iter().map(|m| m.header.type_).collect::<Vec<_>>(),
        [ty::WATCH, ty::WATCH_EVENT]
    );
    // Three pipelined requests from domain 1.
    c1.send(ty::WRITE, 10, b"data\0one");
    c1.send(ty::READ, 11, b"data\0");
    c1.send(ty::READ, 12, b"nothing\0");
    assert_eq!(d.service(1, &c1.ring), Ok(true));
    let got = c1.received();
    let ids: Vec<(u32, u32)> = got
        .iter()
        .map(|m| (m.header.req_id, m.header.type_))
        .collect();
    assert_eq!(ids, [(10, ty::WRITE), (11, ty::READ), (12, ty::ERROR)]);
    assert_eq!(got[1].payload, b"one");
    // dom0 hears of the write once its output is flushed.
    assert_eq!(d.flush(0, &c0.ring), Ok(true));
    let ev = c0.received();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].payload, b"/local/domain/1/data\0w\0");
    assert_eq!(d.service(1, &c1.ring), Ok(false), "nothing more");
}

#[test]
fn a_client_that_stops_reading_stops_being_served_and_costs_bounded_memory() {
    let (mut d, p0, p1) = setup();
    let (mut c0, c1) = (Client::new(&p0), Client::new(&p1));
    // Domain 1 watches its home and never reads; dom0 writes there a lot.
    c1.send(ty::WATCH, 1, b"w\0t\0");
    d.service(1, &c1.ring).unwrap();
    for i in 0..800 {
        let payload = std::format!("/local/domain/1/w/n{i}\0v").into_bytes();
        c0.send(ty::WRITE, i, &payload);
        d.service(0, &c0.ring).unwrap();
        let _ = c0.received();
        d.flush(1, &c1.ring).unwrap();
    }
    assert!(d.waiting(1) <= OUT_LIMIT, "{} bytes waiting", d.waiting(1));
    assert!(d.dropped(1) > 0, "events past the limit are dropped");
    // Its own requests wait on its ring while its output is full.
    for i in 0..30 {
        c1.send(ty::READ, 100 + i, b"w\0");
    }
    let before = c1.ring.available(Direction::Requests).unwrap();
    d.service(1, &c1.ring).unwrap();
    assert_eq!(
        c1.ring.available(Direction::Requests).unwrap(),
        before,
        "none taken"
    );
    // Once it reads, it is served again, at most 20 requests a call.
    let mut c1 = Client::new(&p1);
    let mut replies = 0;
    for _ in 0..50 {
        replies += c1
            .received()
            .iter()
            .filter(|m| m.header.type_ == ty::READ)
            .count();
        d.service(1, &c1.ring).unwrap();
    }
    replies += c1
        .received()
        .iter()
        .filter(|m| m.header.type_ == ty::READ)
        .count();
    assert_eq!(replies, 30);
}

#[test]
fn a_lying_ring_index_ends_the_service() {
    let (mut d, _p0, p1) = setup();
    let c1 = Client::new(&p1);
    p1.store(2052, 5000);
    assert_eq!(
        d.service(1, &c1.ring),
        Err(WireError::BadIndex {
            prod: 5000,
            cons: 0
        })
    );
    d.disconnect(1);
    assert_eq!(d.service(1, &c1.ring), Ok(false));
    assert_eq!(d.domains(), [0]);
}

#[test]
fn a_write_in_process_reaches_the_watcher_once_routed() {
    let (mut d, _p0, p1) = setup();
    let mut c1 = Client::new(&p1);
    c1.send(ty::WATCH, 1, b"/local/domain/1/backend-state\0b\0");
    assert_eq!(d.service(1, &c1.ring), Ok(true));
    assert_eq!(c1.received().len(), 2, "the reply and the first event");
    // A back end in dom0 writes through the store itself: nothing moves
    // until the daemon routes the event.
    d.store
        .write(DOM0, "/local/domain/1/backend-state", b"4")
        .unwrap();
    assert_eq!(d.flush(1, &c1.ring), Ok(false));
    d.route_events();
    assert_eq!(d.flush(1, &c1.ring), Ok(true));
    let ev = c1.received();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].header.type_, ty::WATCH_EVENT);
    assert_eq!(ev[0].payload, b"/local/domain/1/backend-state\0b\0");
}
