//! Host tests: packets from transmit requests, and every lie.

extern crate std;

use super::*;
use crate::testing::Pages;
use guest_abi::io::netif::{NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED, NETRXF_MORE_DATA};
use std::vec;

fn req(id: u16, gref: u32, offset: u16, size: u16, flags: u16) -> NetifTxRequest {
    NetifTxRequest {
        gref,
        offset,
        flags,
        id,
        size,
    }
}

fn extra(id: u16, ty: u8, more: bool) -> NetifTxRequest {
    let e = NetifExtraInfo {
        type_: ty,
        flags: if more { XEN_NETIF_EXTRA_FLAG_MORE } else { 0 },
        u: [0x40, 0x05, 1, 0, 0, 0],
    };
    let mut r = NetifTxRequest::default();
    r.as_mut_bytes()[..8].copy_from_slice(e.as_bytes());
    r.id = id;
    r
}

fn statuses(r: &[NetifTxResponse]) -> std::vec::Vec<(u16, i16)> {
    r.iter().map(|x| (x.id, x.status)).collect()
}

#[test]
fn a_packet_over_three_slots_with_a_gso_slot_is_copied_whole() {
    let mut pages = Pages::default();
    pages.0.insert(
        1,
        (0..4096u32).map(|i| b"0123456"[(i % 7) as usize]).collect(),
    );
    pages.0.insert(2, vec![0xbb; 4096]);
    pages.0.insert(3, vec![0xcc; 4096]);
    let reqs = [
        req(
            10,
            1,
            100,
            3000,
            NETTXF_MORE_DATA | NETTXF_EXTRA_INFO | NETTXF_CSUM_BLANK,
        ),
        extra(11, XEN_NETIF_EXTRA_TYPE_GSO, false),
        req(12, 2, 0, 1000, NETTXF_MORE_DATA),
        req(13, 3, 96, 500, 0),
        req(14, 1, 0, 60, 0), // the next packet
    ];
    let (used, tx) = assemble(&reqs);
    assert_eq!(used, 4);
    let Tx::Packet(p, rsp) = tx else {
        panic!("{tx:?}")
    };
    assert_eq!(
        statuses(&rsp),
        [
            (10, NETIF_RSP_OKAY),
            (11, NETIF_RSP_NULL),
            (12, NETIF_RSP_OKAY),
            (13, NETIF_RSP_OKAY)
        ]
    );
    assert_eq!(p.pieces, [(1, 100, 1500), (2, 0, 1000), (3, 96, 500)]);
    assert!(p.csum_blank && !p.data_validated);
    assert_eq!(p.gso.map(|g| g.size), Some(1344));
    let bytes = copy(&p, &mut pages).unwrap();
    assert_eq!(bytes.len(), 3000);
    assert_eq!(bytes[0], pages.0[&1][100]);
    assert_eq!((bytes[1500], bytes[2500]), (0xbb, 0xcc));
    // An unfinished packet waits.
    assert_eq!(assemble(&reqs[..3]), (0, Tx::Incomplete));
    assert_eq!(assemble(&[]), (0, Tx::Incomplete));
}

#[test]
fn lies_are_dropped_or_fatal_as_netbacks() {
    let tiny = assemble(&[req(1, 1, 0, 10, 0)]);
    assert!(matches!(tiny, (1, Tx::Dropped(_, ref r)) if statuses(r) == [(1, NETIF_RSP_ERROR)]));
    let bigger = assemble(&[req(1, 1, 0, 100, NETTXF_MORE_DATA), req(2, 1, 0, 200, 0)]);
    assert!(matches!(bigger, (2, Tx::Dropped(..))));
    let mut many = vec![req(0, 1, 0, 19 * 60, NETTXF_MORE_DATA)];
    for i in 1..19 {
        let flags = if i == 18 { 0 } else { NETTXF_MORE_DATA };
        many.push(req(i, 1, 0, 60, flags));
    }
    assert!(matches!(
        assemble(&many),
        (19, Tx::Dropped("too many slots for a packet", _))
    ));
    let mut fatal = vec![req(0, 1, 0, 60, NETTXF_MORE_DATA)];
    for i in 1..=u16::try_from(FATAL_SLOTS).unwrap() {
        fatal.push(req(i, 1, 0, 1, NETTXF_MORE_DATA));
    }
    assert_eq!(assemble(&fatal).1, Tx::Fatal("too many slots"));
    let crossing = assemble(&[req(1, 1, 4000, 200, 0)]);
    assert_eq!(crossing.1, Tx::Fatal("a slot crosses its page"));
    let later_crossing = assemble(&[req(1, 1, 0, 300, NETTXF_MORE_DATA), req(2, 1, 4090, 100, 0)]);
    assert_eq!(later_crossing.1, Tx::Fatal("a slot crosses its page"));
    let bad_extra = assemble(&[req(1, 1, 0, 60, NETTXF_EXTRA_INFO), extra(2, 9, false)]);
    assert_eq!(bad_extra.1, Tx::Fatal("bad extra info type"));
    let none_extra = assemble(&[req(1, 1, 0, 60, NETTXF_EXTRA_INFO), extra(2, 0, false)]);
    assert_eq!(none_extra.1, Tx::Fatal("bad extra info type"));
    // A copy from a page that is not granted fails.
    let (_, Tx::Packet(p, _)) = assemble(&[req(1, 9, 0, 60, 0)]) else {
        panic!()
    };
    assert_eq!(copy(&p, &mut Pages::default()), Err(IoError));
}

fn rx(id: u16, gref: u32) -> NetifRxRequest {
    NetifRxRequest { id, pad: 0, gref }
}

#[test]
fn a_packet_is_delivered_across_the_posted_pages() {
    let mut pages = Pages::default();
    for g in [20, 21, 22] {
        pages.0.insert(g, vec![0; 4096]);
    }
    let packet: std::vec::Vec<u8> = (0..5000u32).map(|i| b"abcdefg"[(i % 7) as usize]).collect();
    let posted = [rx(1, 20), rx(2, 21), rx(3, 22)];
    let r = deliver(&packet, true, false, &posted, &mut pages).unwrap();
    let got: std::vec::Vec<(u16, u16, i16)> = r.iter().map(|x| (x.id, x.flags, x.status)).collect();
    assert_eq!(
        got,
        [(1, NETRXF_CSUM_BLANK | NETRXF_MORE_DATA, 4096), (2, 0, 904)],
        "two pages used, the third left posted"
    );
    assert_eq!(&pages.0[&20][..], &packet[..4096]);
    assert_eq!(&pages.0[&21][..904], &packet[4096..]);
    // Not enough pages posted: nothing used.
    assert_eq!(
        deliver(&packet, false, false, &posted[..1], &mut pages),
        Err(RxError::NoRoom(2))
    );
    assert_eq!(
        deliver(&[0; 70000], false, false, &posted, &mut pages),
        Err(RxError::TooBig)
    );
    // A page not granted: that response is an error.
    let r = deliver(&packet[..100], false, true, &[rx(9, 99)], &mut pages).unwrap();
    assert_eq!(
        (r[0].id, r[0].flags, r[0].status),
        (9, NETRXF_DATA_VALIDATED, NETIF_RSP_ERROR)
    );
}
