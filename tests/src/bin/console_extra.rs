//! A domU kernel for `dom0_console_extra` (not a case of its own): the
//! front end of two extra consoles (`device/console/1` and `/2`), as
//! Linux's `hvc_xen` is one: for each it grants a page of its own (an
//! `xencons_interface`), allocates a channel for dom0, publishes
//! `ring-ref` and `port`, is `Initialised`, and is `Connected` once the
//! back end is.
//!
//! On console 1 it writes 40 lines of 100 bytes (twice the 2 KiB `out`
//! ring), waiting for room as dom0 drains it and notifies; then it lies,
//! claiming 5000 bytes more than it wrote, and writes one more line. On
//! console 2 it writes one line. Its checks go to its first console.
//!
//! @role: domu
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;

use dom0::support::MappedPage;
use pv_drivers::ring::SharedRing;
use tests::frontend::{self as fe, yield_now, Checks, GrantTable};
use tests::pages::Pages;

guest_abi::pv_guest!(main, name = "console_extra");

static CONSOLE1: Pages<1> = Pages::new();
static CONSOLE2: Pages<1> = Pages::new();

const CONSOLE1_REF: u32 = 8;
const CONSOLE2_REF: u32 = 9;

/// `xencons_interface`: `out` and its indexes.
const OUT: usize = 1024;
const OUT_SIZE: u32 = 2048;
const OUT_CONS: usize = 3080;
const OUT_PROD: usize = 3084;

/// Puts `text` into the `out` ring of `page`, waiting (a while) for room
/// as the back end drains it: whether all of it went in.
fn put(page: &MappedPage, port: u32, text: &[u8]) -> bool {
    let mut rest = text;
    for _ in 0..200_000 {
        if rest.is_empty() {
            return true;
        }
        let cons = page.load(OUT_CONS);
        let mut prod = page.load(OUT_PROD);
        let room = OUT_SIZE.saturating_sub(prod.wrapping_sub(cons)) as usize;
        let n = room.min(rest.len());
        if n == 0 {
            yield_now();
            continue;
        }
        for &b in &rest[..n] {
            page.write(OUT + (prod % OUT_SIZE) as usize, &[b]);
            prod = prod.wrapping_add(1);
        }
        page.fence();
        page.store(OUT_PROD, prod);
        let _ = tests::evtchn::send(port);
        rest = &rest[n..];
    }
    false
}

fn main(si: guest_abi::rt::StartInfoRef) -> ! {
    let mut c = Checks {
        name: "console_extra",
        passed: 0,
    };
    let store = fe::store_page(&mut c, si);
    let mut xs = fe::client(&store, si.store_evtchn);
    let gt = GrantTable::new(&mut c, si);
    let mut ports = [0u32; 2];
    for (i, (pages, gref)) in [(&CONSOLE1, CONSOLE1_REF), (&CONSOLE2, CONSOLE2_REF)]
        .into_iter()
        .enumerate()
    {
        let dev = format!("device/console/{}", i + 1);
        let backend = fe::read(&mut xs, &format!("{dev}/backend"));
        c.check(
            &format!("{dev} names its back end"),
            backend.ends_with(&format!(
                "/backend/console/{}/{}",
                fe::read(&mut xs, "domid"),
                i + 1
            )),
        );
        gt.grant(si, gref, pages.addr());
        let port = tests::evtchn::alloc_unbound(guest_abi::xen::DOMID_SELF, 0).unwrap_or(0);
        c.check("an unbound channel for dom0", port != 0);
        let published = [
            ("ring-ref", format!("{gref}")),
            ("port", format!("{port}")),
            ("state", "3".into()),
        ]
        .iter()
        .all(|(k, v)| xs.write(&format!("{dev}/{k}"), v.as_bytes()).is_ok());
        c.check(
            &format!("{dev}: its page and port published, Initialised"),
            published,
        );
        c.check(
            &format!("{dev}: the back end is Connected"),
            fe::wait_for(&mut xs, &format!("{backend}/state"), b"4"),
        );
        c.check(
            &format!("{dev}: Connected"),
            xs.write(&format!("{dev}/state"), b"4").is_ok(),
        );
        ports[i] = port;
    }
    let one = fe::shared(&CONSOLE1);
    let two = fe::shared(&CONSOLE2);
    let mut all = true;
    for n in 1..=40 {
        let mut line = format!("console_extra: line {n} of 40 ");
        while line.len() < 99 {
            line.push('.');
        }
        line.push('\n');
        all &= put(&one, ports[0], line.as_bytes());
    }
    c.check(
        "console 1: 40 lines of 100 bytes written as dom0 drained them",
        all,
    );
    // Room for all of it, once dom0 has drained the ring.
    let drained = fe::until(|| one.load(OUT_CONS) == one.load(OUT_PROD));
    c.check("console 1: dom0 consumed every byte", drained);
    // A producer 5000 bytes ahead of what we wrote: dom0 drops it.
    let lie = one.load(OUT_PROD).wrapping_add(5000);
    one.store(OUT_PROD, lie);
    let _ = tests::evtchn::send(ports[0]);
    let skipped = fe::until(|| one.load(OUT_CONS) == lie);
    c.check("console 1: dom0 skipped the bytes we lied about", skipped);
    c.check(
        "console 1: a line after the lie",
        put(
            &one,
            ports[0],
            b"console_extra: still served after the lie\n",
        ),
    );
    c.check(
        "console 2: a line",
        put(&two, ports[1], b"console_extra: hello on console 2\n"),
    );
    let empty = |p: &MappedPage| p.load(OUT_CONS) == p.load(OUT_PROD);
    c.check(
        "both consoles drained",
        fe::until(|| empty(&one) && empty(&two)),
    );
    c.done()
}
