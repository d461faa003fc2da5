//! A domU kernel for `dom0_hostile_net` (not a case of its own): a
//! network front end that lies to dom0's network back end. It connects as
//! Linux's `xen-netfront` does (two rings granted to dom0, one channel,
//! `request-rx-copy`, `Connected`), sends one honest frame, then what a
//! hostile front end sends: a first slot smaller than an Ethernet header,
//! later slots holding more than the packet's size, a packet of 19 slots,
//! a grant it never made, and a flood of notifications; each slot must be
//! answered (with its id) by `NETIF_RSP_ERROR` and the next honest frame
//! must still go. Last it sends a slot that crosses its page, which ends
//! the back end's service of it: dom0 must say so, answer nothing more,
//! and still serve its xenstore.
//!
//! @role: domu
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;

use dom0::support::MappedPage;
use guest_abi::io::netif::{
    NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse, NETIF_RSP_ERROR,
    NETIF_RSP_OKAY, NETTXF_MORE_DATA,
};
use guest_abi::rt::{shutdown, StartInfoRef};
use guest_abi::sched::SHUTDOWN_POWEROFF;
use pv_drivers::ring::{Front, SharedRing};
use tests::frontend::{self as fe, yield_now, Checks, GrantTable};
use tests::pages::Pages;

guest_abi::pv_guest!(main, name = "net_hostile");

const TX_REF: u32 = 8;
const RX_REF: u32 = 9;
const DATA_REF: u32 = 10;
const BOGUS_REF: u32 = 500;
const DEV: &str = "device/vif/0";

static TX: Pages<1> = Pages::new();
static RX: Pages<1> = Pages::new();
static DATA: Pages<1> = Pages::new();

/// Its transmit ring.
struct Net<'a> {
    tx: Front<'a, MappedPage, NetifTxRequest, NetifTxResponse>,
    port: u32,
    next_id: u16,
}

impl Net<'_> {
    /// Sends the slots `slots` (their ids given here) as one batch: each
    /// slot's id and the statuses answered, in slot order, if all came.
    fn send(&mut self, slots: &[NetifTxRequest]) -> Option<Vec<(u16, i16)>> {
        let mut ids = Vec::new();
        for s in slots {
            self.next_id = self.next_id.wrapping_add(1);
            let mut s = *s;
            s.id = self.next_id;
            ids.push(s.id);
            if !self.tx.queue(&s) {
                return None;
            }
        }
        self.tx.push();
        let _ = tests::evtchn::send(self.port);
        let mut got = Vec::new();
        for _ in 0..20_000 {
            while let Ok(Some(r)) = self.tx.next_response() {
                got.push((r.id, r.status));
            }
            if got.len() >= ids.len() {
                break;
            }
            yield_now();
        }
        (got.len() == ids.len() && got.iter().zip(&ids).all(|(g, id)| g.0 == *id)).then_some(got)
    }

    /// Whether every slot of `slots` is answered, with its id, by `status`.
    fn answered(&mut self, slots: &[NetifTxRequest], status: i16) -> bool {
        self.send(slots)
            .is_some_and(|got| got.iter().all(|&(_, s)| s == status))
    }
}

fn slot(gref: u32, offset: u16, size: u16, flags: u16) -> NetifTxRequest {
    NetifTxRequest {
        gref,
        offset,
        flags,
        id: 0,
        size,
    }
}

/// A 60-byte broadcast frame at the start of the data page.
fn honest() -> [NetifTxRequest; 1] {
    [slot(DATA_REF, 0, 60, 0)]
}

fn main(si: StartInfoRef) -> ! {
    let mut c = Checks {
        name: "net_hostile",
        passed: 0,
    };
    let store = fe::store_page(&mut c, si);
    let mut xs = fe::client(&store, si.store_evtchn);
    let backend = fe::read(&mut xs, &format!("{DEV}/backend"));
    c.check(
        "the toolstack named the interface's back end",
        !backend.is_empty(),
    );
    c.check(
        "the toolstack gave it its MAC address",
        fe::read(&mut xs, &format!("{DEV}/mac")) == "00:16:3e:00:00:01",
    );
    let state = format!("{backend}/state");
    c.check(
        "the back end is InitWait",
        fe::wait_for(&mut xs, &state, b"2"),
    );
    c.check(
        "the back end offers receive by copy",
        fe::read(&mut xs, &format!("{backend}/feature-rx-copy")) == "1",
    );
    let gt = GrantTable::new(&mut c, si);
    gt.grant(si, TX_REF, TX.addr());
    gt.grant(si, RX_REF, RX.addr());
    gt.grant(si, DATA_REF, DATA.addr());
    // The honest frame: broadcast, from its MAC, a made-up EtherType.
    let data = fe::shared(&DATA);
    data.write(0, &[0xff; 6]);
    data.write(6, &[0x00, 0x16, 0x3e, 0, 0, 1]);
    data.write(12, &[0x88, 0xb5]);
    let (tx_page, rx_page) = (fe::shared(&TX), fe::shared(&RX));
    let tx = Front::<_, NetifTxRequest, NetifTxResponse>::new(&tx_page);
    let rx = Front::<_, NetifRxRequest, NetifRxResponse>::new(&rx_page);
    let (Some(tx), Some(_rx)) = (tx, rx) else {
        c.check("both rings", false);
        shutdown(SHUTDOWN_POWEROFF)
    };
    let port = fe::connect_vif(&mut c, &mut xs, (DEV, &state), TX_REF, RX_REF);

    let mut net = Net {
        tx,
        port,
        next_id: 0,
    };
    c.check(
        "an honest frame: NETIF_RSP_OKAY with its id",
        net.answered(&honest(), NETIF_RSP_OKAY),
    );
    let mut nineteen = [slot(DATA_REF, 0, 60, NETTXF_MORE_DATA); 19];
    nineteen[0].size = 19 * 60;
    nineteen[18].flags = 0;
    let dropped: [(&str, Vec<NetifTxRequest>); 4] = [
        (
            "a first slot smaller than an Ethernet header",
            [slot(DATA_REF, 0, 10, 0)].into(),
        ),
        (
            "later slots holding more than the packet's size",
            [
                slot(DATA_REF, 0, 60, NETTXF_MORE_DATA),
                slot(DATA_REF, 100, 200, 0),
            ]
            .into(),
        ),
        ("a packet of 19 slots", nineteen.into()),
        (
            "a frame from a grant never made",
            [slot(BOGUS_REF, 0, 60, 0)].into(),
        ),
    ];
    for (what, slots) in dropped {
        c.check(
            &format!("{what}: NETIF_RSP_ERROR for each slot, with its id"),
            net.answered(&slots, NETIF_RSP_ERROR),
        );
    }
    for _ in 0..5000 {
        let _ = tests::evtchn::send(port);
    }
    c.check(
        "after 5000 notifications in a row, an honest frame still goes",
        net.answered(&honest(), NETIF_RSP_OKAY),
    );
    // The fatal one: a slot crossing its page.
    let rsp_prod = tx_page_rsp_prod(&tx_page);
    let _ = net.send(&[slot(DATA_REF, 4000, 200, 0)]);
    c.check(
        "a slot crossing its page is not answered",
        tx_page_rsp_prod(&tx_page) == rsp_prod,
    );
    c.check(
        "after it, dom0 answers nothing on the ring",
        net.send(&honest()).is_none() && tx_page_rsp_prod(&tx_page) == rsp_prod,
    );
    c.check(
        "after it, dom0 still serves its xenstore",
        xs.write("data/after", b"still here").is_ok()
            && xs.read("data/after").ok().as_deref() == Some(&b"still here"[..]),
    );
    c.done()
}

/// The transmit ring's `rsp_prod`.
fn tx_page_rsp_prod(page: &MappedPage) -> u32 {
    page.load(8)
}
