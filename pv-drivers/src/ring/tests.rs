//! Host tests of the rings: the geometry Xen's headers give, two threads
//! over one shared area, event suppression, and peers that lie.

extern crate std;

use super::*;
use crate::testing::Area;
use std::sync::Arc;
use std::vec::Vec;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
struct Req {
    id: u64,
    value: u64,
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
struct Rsp {
    id: u64,
    status: i32,
    pad: u32,
}

#[test]
fn ring_sizes_are_xens() {
    // blkif (112-byte requests): 32 per page; netif tx (12-byte
    // requests) and rx (8-byte): 256; console-sized slots in 4 pages.
    assert_eq!(ring_size(4096, 112), 32);
    assert_eq!(ring_size(4096, 12), 256);
    assert_eq!(ring_size(4096, 8), 256);
    assert_eq!(ring_size(4 * 4096, 112), 128);
    assert_eq!(ring_size(64, 8), 0);
    assert_eq!(ring_size(4096, 0), 0);
    assert_eq!(ring_size(4096, 5000), 0);
}

#[test]
fn init_sets_the_events_to_one() {
    let a = Area::new(4096);
    a.write(0, &[0xff; 64]);
    let f = Front::<_, Req, Rsp>::new(&a).unwrap();
    assert_eq!(f.size(), 128);
    assert_eq!((a.load(0), a.load(4), a.load(8), a.load(12)), (0, 1, 0, 1));
    let mut pad = [1u8; 48];
    a.read(16, &mut pad);
    assert_eq!(pad, [0; 48]);
}

#[test]
fn requests_and_responses_round_trip_with_notifications() {
    let a = Area::new(4096);
    let mut f = Front::<_, Req, Rsp>::new(&a).unwrap();
    let mut b = Back::<_, Req, Rsp>::new(&a).unwrap();
    // Nothing yet; the back end asks to hear of the first request.
    assert_eq!(b.final_check(), Ok(false));
    assert!(f.queue(&Req { id: 1, value: 10 }));
    assert!(f.queue(&Req { id: 2, value: 20 }));
    assert!(f.push(), "the back end waits for request 1");
    assert!(f.queue(&Req { id: 3, value: 30 }));
    assert!(!f.push(), "it has not looked again: no second notification");
    let mut got = Vec::new();
    while let Some(r) = b.next_request().unwrap() {
        got.push(r);
    }
    assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(f.final_check(), Ok(false));
    for r in &got {
        assert!(b.queue(&Rsp {
            id: r.id,
            status: i32::try_from(r.value).unwrap(),
            pad: 0
        }));
    }
    assert!(!b.queue(&Rsp::default()), "no request left to answer");
    assert!(b.push(), "the front end waits for response 1");
    let mut rsps = Vec::new();
    while let Some(r) = f.next_response().unwrap() {
        rsps.push((r.id, r.status));
    }
    assert_eq!(rsps, [(1, 10), (2, 20), (3, 30)]);
    assert_eq!(f.outstanding(), 0);
}

#[test]
fn a_full_ring_takes_no_more_requests() {
    let a = Area::new(4096);
    let mut f = Front::<_, Req, Rsp>::new(&a).unwrap();
    for i in 0..128 {
        assert!(f.queue(&Req { id: i, value: 0 }));
    }
    assert!(!f.queue(&Req::default()));
    f.push();
    let mut b = Back::<_, Req, Rsp>::new(&a).unwrap();
    let n = core::iter::from_fn(|| b.next_request().unwrap()).count();
    assert_eq!(n, 128);
}

#[test]
fn a_request_is_read_once_into_private_memory() {
    let a = Area::new(4096);
    let mut f = Front::<_, Req, Rsp>::new(&a).unwrap();
    let mut b = Back::<_, Req, Rsp>::new(&a).unwrap();
    f.queue(&Req { id: 7, value: 1 });
    f.push();
    let r = b.next_request().unwrap().unwrap();
    // The front end rewrites the slot after the back end took it.
    a.write(HEADER, Req { id: 7, value: 999 }.as_bytes());
    assert_eq!(r.value, 1);
}

#[test]
fn a_lying_front_end_is_caught() {
    let a = Area::new(4096);
    let _f = Front::<_, Req, Rsp>::new(&a).unwrap();
    let mut b = Back::<_, Req, Rsp>::new(&a).unwrap();
    // More requests than the ring holds.
    a.store(0, 129);
    assert_eq!(b.next_request(), Err(RingError::Overflow));
    assert_eq!(b.final_check(), Err(RingError::Overflow));
    // A producer index behind the consumer (wrapped): also a lie.
    a.store(0, u32::MAX);
    assert!(b.next_request().is_err());
    // Exactly a ring's worth is taken, then no more until answered.
    a.store(0, 128);
    let n = core::iter::from_fn(|| b.next_request().unwrap()).count();
    assert_eq!(n, 128);
    assert_eq!(b.next_request(), Ok(None), "all taken");
    // Past a ring ahead of the responses: a lie (Xen's
    // RING_REQUEST_PROD_OVERFLOW).
    a.store(0, 129);
    assert_eq!(b.next_request(), Err(RingError::Overflow));
    assert!(b.queue(&Rsp::default()));
    assert!(b.next_request().unwrap().is_some(), "one slot freed");
}

#[test]
fn a_lying_back_end_is_caught() {
    let a = Area::new(4096);
    let mut f = Front::<_, Req, Rsp>::new(&a).unwrap();
    f.queue(&Req::default());
    f.queue(&Req::default());
    f.push();
    // Three responses to two requests.
    a.store(8, 3);
    assert_eq!(f.next_response(), Err(RingError::Overflow));
    a.store(8, 2);
    assert!(f.next_response().unwrap().is_some());
    assert!(f.next_response().unwrap().is_some());
    assert_eq!(f.next_response(), Ok(None));
}

/// xorshift64: the lying peer's dice.
fn dice(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_lies_never_yield_more_than_the_ring_holds() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        let a = Area::new(4096);
        let _f = Front::<_, Req, Rsp>::new(&a).unwrap();
        let mut b = Back::<_, Req, Rsp>::new(&a).unwrap();
        let mut taken = 0u32;
        for _ in 0..50 {
            let roll = dice(&mut seed);
            let lie = u32::from_le_bytes(roll.to_le_bytes()[1..5].try_into().unwrap());
            match roll % 4 {
                0 => a.store(0, lie),
                1 => a.store(0, a.load(0).wrapping_add(lie % 8)),
                2 if b.queue(&Rsp::default()) => taken -= 1,
                _ => {}
            }
            match b.next_request() {
                Ok(Some(_)) => taken += 1,
                Ok(None) | Err(RingError::Overflow) => {}
            }
            assert!(taken <= b.size(), "more requests held than slots");
        }
    }
}

#[test]
fn two_threads_over_one_ring() {
    const N: u64 = 20_000;
    let a = Arc::new(Area::new(4096));
    let mut f = Front::<_, Req, Rsp>::new(&*a).unwrap();
    let back = {
        let a = Arc::clone(&a);
        std::thread::spawn(move || {
            let mut b = Back::<_, Req, Rsp>::new(&*a).unwrap();
            let mut served = 0;
            while served < N {
                while let Some(r) = b.next_request().unwrap() {
                    assert!(b.queue(&Rsp {
                        id: r.id,
                        status: (r.value % 1000) as i32,
                        pad: 0
                    }));
                    served += 1;
                }
                b.push();
                if !b.final_check().unwrap() {
                    std::thread::yield_now();
                }
            }
        })
    };
    let (mut sent, mut next) = (0u64, 0u64);
    while next < N {
        while sent < N
            && f.queue(&Req {
                id: sent,
                value: sent * 3,
            })
        {
            sent += 1;
        }
        f.push();
        while let Some(r) = f.next_response().unwrap() {
            assert_eq!((r.id, r.status), (next, ((next * 3) % 1000) as i32));
            next += 1;
        }
        if !f.final_check().unwrap() {
            std::thread::yield_now();
        }
    }
    back.join().unwrap();
    assert_eq!(f.outstanding(), 0);
}

#[test]
fn a_resumed_front_end_goes_on_where_it_stopped() {
    let a = Area::new(4096);
    let idx = {
        let mut f = Front::<_, Req, Rsp>::new(&a).unwrap();
        assert!(f.queue(&Req { id: 1, value: 0 }));
        f.push();
        f.indices()
    };
    let mut f = Front::<_, Req, Rsp>::resume(&a, idx);
    assert!(f.queue(&Req { id: 2, value: 0 }));
    f.push();
    // Not initialised again: both requests are there, in order.
    let mut b = Back::<_, Req, Rsp>::new(&a).unwrap();
    assert_eq!(b.next_request().unwrap().map(|r| r.id), Some(1));
    assert_eq!(b.next_request().unwrap().map(|r| r.id), Some(2));
    assert_eq!(b.next_request().unwrap(), None);
}

#[test]
fn a_resumed_back_end_goes_on_where_it_stopped() {
    let a = Area::new(4096);
    let mut f = Front::<_, Req, Rsp>::new(&a).unwrap();
    for id in 0..3 {
        assert!(f.queue(&Req { id, value: id * 10 }));
    }
    f.push();
    let idx = {
        let mut b = Back::<_, Req, Rsp>::new(&a).unwrap();
        assert_eq!(b.next_request().unwrap().map(|r| r.id), Some(0));
        b.indices()
    };
    // A fresh back end would take request 0 again; the resumed one takes
    // request 1, and answers in the slot after nothing was answered.
    let mut b = Back::<_, Req, Rsp>::resume(&a, idx);
    assert_eq!(b.next_request().unwrap().map(|r| r.id), Some(1));
    assert!(b.queue(&Rsp {
        id: 0,
        status: 0,
        pad: 0
    }));
    b.push();
    assert_eq!(f.next_response().unwrap().map(|r| r.id), Some(0));
}
