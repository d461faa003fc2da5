//! Host tests: the client against the daemon over one store page.

extern crate std;

use super::*;
use crate::testing::Area;
use crate::xenstored::daemon::Daemon;
use crate::xenstored::{Access, Conn, Perm};
use core::cell::RefCell;
use std::string::ToString;
use std::vec;

const DOM0: Conn = Conn {
    domid: 0,
    privileged: true,
};

fn daemon() -> RefCell<Daemon> {
    let mut d = Daemon::new();
    d.store.mkdir(DOM0, "/local/domain/1").unwrap();
    let owner = Perm {
        access: Access::None,
        domid: 1,
    };
    d.store
        .set_perms(DOM0, "/local/domain/1", &[owner])
        .unwrap();
    d.store
        .write(DOM0, "/local/domain/1/name", b"guest")
        .unwrap();
    d.connect(1, false);
    RefCell::new(d)
}

#[test]
fn a_client_talks_to_the_daemon() {
    let d = daemon();
    let page = Area::new(4096);
    let serve = || {
        let _ = d.borrow_mut().service(1, &StoreRing::new(&page));
    };
    let mut c = XsClient::new(&page, || {}, serve, 10);
    assert_eq!(c.read("name"), Ok(b"guest".to_vec()));
    assert_eq!(c.write("device/vbd/768/state", b"1"), Ok(()));
    assert_eq!(c.directory("device/vbd"), Ok(vec!["768".to_string()]));
    assert_eq!(c.write("device/vbd/769/state", b"1"), Ok(()));
    assert_eq!(c.rm("device/vbd/769"), Ok(()));
    assert_eq!(c.directory("device/vbd"), Ok(vec!["768".to_string()]));
    assert_eq!(
        c.read("/local/domain/0"),
        Err(XsError::Store("EACCES".to_string()))
    );
    assert_eq!(c.read("nothing"), Err(XsError::Store("ENOENT".to_string())));
    assert_eq!(c.watch("device", "tok"), Ok(()));
    // The watch's first event came with its reply, or comes with the next.
    assert_eq!(c.write("device/vbd/768/state", b"4"), Ok(()));
    let events = c.events();
    assert_eq!(
        events,
        [
            ("device".to_string(), "tok".to_string()),
            ("device/vbd/768/state".to_string(), "tok".to_string())
        ]
    );
    // Long values stream through the 1 KiB ring both ways.
    let big: std::vec::Vec<u8> = (0..2000u32)
        .map(|i| b"0123456789"[(i % 10) as usize])
        .collect();
    assert_eq!(c.write("big", &big), Ok(()));
    assert_eq!(c.read("big"), Ok(big));
}

#[test]
fn no_reply_ends_the_wait() {
    let page = Area::new(4096);
    let mut notified = 0;
    let mut c = XsClient::new(&page, || notified += 1, || {}, 3);
    assert_eq!(c.read("name"), Err(XsError::NoReply));
    drop(c);
    assert_eq!(notified, 1);
    let long = [b'a'; 5000];
    let mut c = XsClient::new(&page, || {}, || {}, 3);
    assert_eq!(c.write("x", &long), Err(XsError::TooLong));
}
