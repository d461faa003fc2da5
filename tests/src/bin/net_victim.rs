//! A domU kernel for `dom0_hostile_netback` (not a case of its own): our
//! network front end (`pv_drivers::netfront`) facing a back end that may
//! lie (dom0's `vif_hostile=`, the first domU's interface only). It
//! connects, posts four receive buffers, sends three broadcast frames,
//! waiting a while for each answer, and says in one line what it met: no
//! answer (it gives up and goes on), answers only under ids it never sent
//! or posted (ignored and counted), a producer index past anything sent
//! (the ring's error: it stops using the interface), or receive answers
//! that do not fit their buffers (refused and counted). Either way it then
//! checks that it still runs and its xenstore still answers, and powers
//! off. A buffer that comes back holding a frame is posted again; one
//! refused is not, so a lying back end cannot keep it busy.
//!
//! @role: domu
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;

use guest_abi::io::netif::NETIF_RSP_OKAY;
use guest_abi::println;
use guest_abi::rt::StartInfoRef;
use pv_drivers::netfront::NetFront;
use pv_drivers::ring::SharedRing;
use tests::frontend::{self as fe, yield_now, Checks, GrantTable, PAGE};
use tests::pages::Pages;

guest_abi::pv_guest!(main, name = "net_victim");

static TX_RING: Pages<1> = Pages::new();
static RX_RING: Pages<1> = Pages::new();
/// The frames it sends, [`SLOT`] bytes apart: none is written while
/// another may still be read.
static TX_BUF: Pages<1> = Pages::new();
static RX_BUF: Pages<{ RX_BUFS as usize }> = Pages::new();

const TX_RING_REF: u32 = 8;
const RX_RING_REF: u32 = 9;
const TX_BUF_REF: u32 = 10;
const RX_BUF_REF: u32 = 11;
const RX_BUFS: u32 = 4;
const FRAMES: u16 = 3;
const SLOT: u16 = 128;
const LEN: u16 = 60;
/// Yields it waits for a frame's answer.
const PATIENCE: u32 = 20_000;
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

fn main(si: StartInfoRef) -> ! {
    let mut c = Checks {
        name: "net_victim",
        passed: 0,
    };
    let store = fe::store_page(&mut c, si);
    let mut xs = fe::client(&store, si.store_evtchn);
    let id: u16 = fe::read(&mut xs, "domid").parse().unwrap_or(0);
    let dev = "device/vif/0";
    let state = fe::back_end_waiting(&mut c, &mut xs, dev, "the back end");
    let gt = GrantTable::new(&mut c, si);
    gt.grant(si, TX_RING_REF, TX_RING.addr());
    gt.grant(si, RX_RING_REF, RX_RING.addr());
    gt.grant(si, TX_BUF_REF, TX_BUF.addr());
    for i in 0..RX_BUFS {
        gt.grant(
            si,
            RX_BUF_REF + i,
            RX_BUF.addr() + u64::from(i) * PAGE as u64,
        );
    }
    let (txp, rxp) = (fe::shared(&TX_RING), fe::shared(&RX_RING));
    let Some(mut net) = NetFront::new(&txp, &rxp) else {
        c.check("network rings", false);
        c.done()
    };
    let port = fe::connect_vif(&mut c, &mut xs, (dev, &state), TX_RING_REF, RX_RING_REF);
    let kick = |net: &mut NetFront<'_, _>| {
        net.push();
        let _ = tests::evtchn::send(port);
    };
    for i in 0..RX_BUFS {
        let _ = net.post(RX_BUF_REF + i);
    }
    kick(&mut net);
    let tx = fe::shared(&TX_BUF);
    let mac = [0x00, 0x16, 0x3e, 0, 0, u8::try_from(id).unwrap_or(0)];
    let (mut answered, mut okay, mut lie) = (0u32, 0u32, None);
    for n in 0..FRAMES {
        let at = usize::from(n * SLOT);
        tx.write(at, &[0xff; 6]);
        tx.write(at + 6, &mac);
        tx.write(at + 12, &ETHERTYPE);
        tx.write(at + 14, format!("net_victim {id} frame {n}").as_bytes());
        let Ok(sent) = net.send(TX_BUF_REF, n * SLOT, LEN, false) else {
            break;
        };
        kick(&mut net);
        for _ in 0..PATIENCE {
            // Buffers that came back holding a frame go out again.
            match net.received() {
                Ok(got) if !got.is_empty() => {
                    for r in got {
                        let _ = net.post(r.gref);
                    }
                    kick(&mut net);
                }
                Ok(_) => {}
                Err(e) => {
                    lie = Some(e);
                    break;
                }
            }
            let answer = net
                .sent()
                .map(|done| done.into_iter().find(|&(i, _)| i == sent));
            match answer {
                Ok(Some((_, status))) => {
                    answered += 1;
                    okay += u32::from(status == NETIF_RSP_OKAY);
                    break;
                }
                Ok(None) => yield_now(),
                Err(e) => {
                    lie = Some(e);
                    break;
                }
            }
        }
        if lie.is_some() {
            break;
        }
    }
    if lie.is_none() {
        lie = net.received().err();
    }
    let (bogus, errors) = (net.bogus(), net.rx_errors());
    match (lie, answered) {
        (Some(e), _) => {
            println!("net_victim: the back end's ring lies ({e:?}): the interface is not used any more");
        }
        (None, 0) => println!(
            "net_victim: the back end never answered: gave up on {} frames and {} receive buffers; {bogus} answers under ids never sent or posted ignored",
            net.sending(),
            net.posted()
        ),
        (None, n) => println!(
            "net_victim: {n} frames answered, {okay} NETIF_RSP_OKAY; {errors} receive answers refused as errors; {bogus} answers under ids never sent or posted ignored"
        ),
    }
    c.check(
        "still running, its xenstore answers",
        xs.write("data/after", b"alive").is_ok()
            && xs.read("data/after").ok().as_deref() == Some(&b"alive"[..]),
    );
    c.done()
}
