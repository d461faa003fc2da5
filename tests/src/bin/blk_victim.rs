//! A domU kernel for `dom0_hostile_backend` (not a case of its own): our
//! block front end (`pv_drivers::blkfront`) facing a back end that lies
//! (dom0's `vbd_hostile=`). It connects, sends reads and says what it
//! met: no answer (it gives up after a while and goes on), answers only
//! under ids it never sent (ignored and counted: no read completes), or
//! a producer index past anything sent (the ring's error: it stops using
//! the disk). Either way it then checks that it still
//! runs and its xenstore still answers, and powers off.
//!
//! @role: domu
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;

use guest_abi::rt::StartInfoRef;
use pv_drivers::blkfront::{BlkFront, Page as BlkPage};
use tests::frontend::{self as fe, yield_now, Checks, GrantTable};
use tests::pages::Pages;

guest_abi::pv_guest!(main, name = "blk_victim");

static RING: Pages<1> = Pages::new();
static DATA: Pages<1> = Pages::new();
const RING_REF: u32 = 8;
const DATA_REF: u32 = 9;
const DEV: &str = "device/vbd/51712";

fn main(si: StartInfoRef) -> ! {
    let mut c = Checks {
        name: "blk_victim",
        passed: 0,
    };
    let store = fe::store_page(&mut c, si);
    let mut xs = fe::client(&store, si.store_evtchn);
    let state = fe::back_end_waiting(&mut c, &mut xs, DEV, "the back end");
    let gt = GrantTable::new(&mut c, si);
    gt.grant(si, RING_REF, RING.addr());
    gt.grant(si, DATA_REF, DATA.addr());
    let ring = fe::shared(&RING);
    let Some(mut f) = BlkFront::new(&ring) else {
        c.check("a ring", false);
        c.done()
    };
    let port = fe::connect(
        &mut c,
        &mut xs,
        (DEV, &state),
        &[("ring-ref", format!("{RING_REF}"))],
        "3",
    );
    let page = BlkPage {
        gref: DATA_REF,
        first_sect: 0,
        last_sect: 7,
    };
    let (mut completed, mut lie) = (0, None);
    for sector in [0u64, 8, 16] {
        let Ok(id) = f.read(sector, &[page]) else {
            break;
        };
        f.push();
        let _ = tests::evtchn::send(port);
        for _ in 0..20_000 {
            match f.completions() {
                Ok(done) if done.iter().any(|d| d.id == id) => {
                    completed += 1;
                    break;
                }
                Ok(_) => yield_now(),
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
    match (lie, completed, f.bogus()) {
        (Some(e), _, _) => {
            guest_abi::println!("blk_victim: the back end's ring lies ({e:?}): the disk is not used any more");
        }
        (None, 0, bogus) => guest_abi::println!(
            "blk_victim: the back end never answered: gave up on {} reads; {bogus} answers under ids never sent ignored",
            f.in_flight()
        ),
        (None, n, bogus) => guest_abi::println!(
            "blk_victim: {n} reads completed, {bogus} answers under ids never sent ignored"
        ),
    }
    c.check(
        "still running, its xenstore answers",
        xs.write("data/after", b"alive").is_ok()
            && xs.read("data/after").ok().as_deref() == Some(&b"alive"[..]),
    );
    c.done()
}
