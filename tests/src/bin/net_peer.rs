//! A domU kernel for `dom0_frontends` (not a case of its own): our own
//! front ends (`pv_drivers::blkfront`, `pv_drivers::netfront`) against
//! dom0's back ends. dom0 runs two of it (`domu_count=2`), each with a
//! network interface, the first with a test disk. The first reads the
//! disk through its block front end (sector `n` holds `7n + 1` in every
//! byte), writes a page and reads it back. Both connect their network
//! front ends and send frames to each other's MAC address
//! (`00:16:3e:00:00:<id>`) through dom0's switch until each has heard
//! the other and the other has said it heard it. Its disk is connected
//! with persistent grants (its data page stays granted), which dom0
//! offers and keeps mapped.
//!
//! @role: domu
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;

use dom0::support::MappedPage;
use guest_abi::io::netif::NETIF_RSP_OKAY;
use guest_abi::rt::StartInfoRef;
use pv_drivers::blkfront::{BlkFront, Page as BlkPage};
use pv_drivers::netfront::NetFront;
use pv_drivers::ring::SharedRing;
use tests::frontend::{self as fe, Checks, GrantTable, PAGE};
use tests::pages::Pages;

guest_abi::pv_guest!(main, name = "net_peer");

static BLK_RING: Pages<1> = Pages::new();
static BLK_DATA: Pages<1> = Pages::new();
static TX_RING: Pages<1> = Pages::new();
static RX_RING: Pages<1> = Pages::new();
static TX_BUF: Pages<1> = Pages::new();
/// Four receive buffers, a page each.
static RX_BUF: Pages<4> = Pages::new();

const BLK_RING_REF: u32 = 8;
const BLK_DATA_REF: u32 = 9;
const TX_RING_REF: u32 = 10;
const RX_RING_REF: u32 = 11;
const TX_BUF_REF: u32 = 12;
const RX_BUF_REF: u32 = 13;
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

/// The bytes it writes to its disk.
fn pattern(i: usize) -> u8 {
    u8::try_from(i % 253).unwrap_or(0)
}

fn mac(id: u16) -> [u8; 6] {
    [0x00, 0x16, 0x3e, 0, 0, u8::try_from(id).unwrap_or(0)]
}

fn main(si: StartInfoRef) -> ! {
    let mut c = Checks {
        name: "net_peer",
        passed: 0,
    };
    let store = fe::store_page(&mut c, si);
    let mut xs = fe::client(&store, si.store_evtchn);
    let id: u16 = fe::read(&mut xs, "domid").parse().unwrap_or(0);
    c.check("its domain id from its home", id == 1 || id == 2);
    let peer = 3 - id;
    let gt = GrantTable::new(&mut c, si);

    if id == 1 {
        let dev = "device/vbd/51712";
        let state = fe::back_end_waiting(&mut c, &mut xs, dev, "the disk's back end");
        gt.grant(si, BLK_RING_REF, BLK_RING.addr());
        gt.grant(si, BLK_DATA_REF, BLK_DATA.addr());
        let ring = fe::shared(&BLK_RING);
        let Some(mut f) = BlkFront::new(&ring) else {
            c.check("a block ring", false);
            c.done()
        };
        let port = fe::connect(
            &mut c,
            &mut xs,
            (dev, &state),
            &[
                ("ring-ref", format!("{BLK_RING_REF}")),
                ("protocol", "x86_64-abi".into()),
                // Its data page stays granted: dom0 may keep it mapped.
                ("feature-persistent", "1".into()),
            ],
            "3",
        );
        let page = BlkPage {
            gref: BLK_DATA_REF,
            first_sect: 0,
            last_sect: 7,
        };
        let io = |f: &mut BlkFront<'_, MappedPage>, id: Result<u64, _>| {
            let Ok(id) = id else { return false };
            f.push();
            let _ = tests::evtchn::send(port);
            let mut status = None;
            let done = fe::until(|| {
                if let Ok(done) = f.completions() {
                    status = done.iter().find(|d| d.id == id).map(|d| d.status);
                }
                status.is_some()
            });
            done && status == Some(pv_drivers::blkif::RSP_OKAY)
        };
        // dom0 writes the data page only while a read is in flight.
        let data = fe::shared(&BLK_DATA);
        let mut buf = [0u8; PAGE];
        let read = f.read(5, &[page]);
        let read = io(&mut f, read);
        data.read(0, &mut buf);
        c.check(
            "blkfront: sectors 5-12 read, as dom0's test disk holds them",
            read && buf
                .chunks(512)
                .zip(5u64..)
                .all(|(s, n)| s.iter().all(|&b| b == dom0::domus::test_disk_byte(n))),
        );
        for (i, b) in buf.iter_mut().enumerate() {
            *b = pattern(i);
        }
        data.write(0, &buf);
        let write = f.write(64, &[page]);
        let wrote = io(&mut f, write);
        data.write(0, &[0; PAGE]);
        let read = f.read(64, &[page]);
        let read = io(&mut f, read);
        data.read(0, &mut buf);
        c.check(
            "blkfront: a page written and read back",
            wrote && read && buf.iter().enumerate().all(|(i, &b)| b == pattern(i)),
        );
    }

    let dev = "device/vif/0";
    let state = fe::back_end_waiting(&mut c, &mut xs, dev, "the interface's back end");
    gt.grant(si, TX_RING_REF, TX_RING.addr());
    gt.grant(si, RX_RING_REF, RX_RING.addr());
    gt.grant(si, TX_BUF_REF, TX_BUF.addr());
    for i in 0..4u32 {
        gt.grant(
            si,
            RX_BUF_REF + i,
            RX_BUF.addr() + u64::from(i) * PAGE as u64,
        );
    }
    let (txp, rxp) = (fe::shared(&TX_RING), fe::shared(&RX_RING));
    let rx_bufs = fe::shared(&RX_BUF);
    let Some(mut net) = NetFront::new(&txp, &rxp) else {
        c.check("network rings", false);
        c.done()
    };
    let port = fe::connect_vif(&mut c, &mut xs, (dev, &state), TX_RING_REF, RX_RING_REF);
    for i in 0..4 {
        let _ = net.post(RX_BUF_REF + i);
    }
    net.push();
    let _ = tests::evtchn::send(port);
    // Frames to the peer: "net_peer <id> heard=<0|1>".
    let tx = fe::shared(&TX_BUF);
    let (mut heard, mut heard_back, mut sent_ok) = (false, false, 0u32);
    let send = |net: &mut NetFront<'_, MappedPage>, heard: bool| {
        if net.sending() != 0 {
            return;
        }
        let text = format!("net_peer {id} heard={}", u8::from(heard));
        tx.write(0, &mac(peer));
        tx.write(6, &mac(id));
        tx.write(12, &ETHERTYPE);
        tx.write(14, text.as_bytes());
        let len = u16::try_from((14 + text.len()).max(60)).unwrap_or(60);
        if net.send(TX_BUF_REF, 0, len, false).is_ok() {
            net.push();
            let _ = tests::evtchn::send(port);
        }
    };
    let mut round = 0u32;
    let mut extra = 0;
    let done = fe::until(|| {
        round += 1;
        if round % 500 == 1 {
            send(&mut net, heard);
        }
        if let Ok(s) = net.sent() {
            sent_ok += u32::try_from(s.iter().filter(|&&(_, st)| st == NETIF_RSP_OKAY).count())
                .unwrap_or(0);
        }
        if let Ok(got) = net.received() {
            for r in got {
                // The buffer was filled and handed back to us.
                let at = (r.gref - RX_BUF_REF) as usize * PAGE + usize::from(r.offset);
                let mut b = [0u8; 128];
                let frame = &mut b[..usize::from(r.len).min(128)];
                rx_bufs.read(at, frame);
                let frame = &*frame;
                let want = format!("net_peer {peer} heard=");
                if frame.get(6..12) == Some(&mac(peer)[..])
                    && frame.get(14..14 + want.len()) == Some(want.as_bytes())
                {
                    heard = true;
                    heard_back |= frame.get(14 + want.len()) == Some(&b'1');
                }
                let _ = net.post(r.gref);
            }
            net.push();
            let _ = tests::evtchn::send(port);
        }
        if heard && heard_back {
            // A few more frames saying so, for a peer still waiting.
            if round % 500 == 1 {
                extra += 1;
            }
            return extra > 3;
        }
        false
    });
    c.check(
        &format!("netfront: heard domU{peer} through dom0's switch"),
        heard,
    );
    c.check(
        &format!("netfront: domU{peer} heard us"),
        done && heard_back,
    );
    c.check("netfront: frames answered NETIF_RSP_OKAY", sent_ok > 0);
    c.check("netfront: no response it did not ask for", net.bogus() == 0);
    c.done()
}
