//! `hello-domu`: the smallest domU, the one `cargo xtask run` gives dom0
//! as its boot module. It says what its start of day is on its console
//! ring (a domU has no other console on a non-debug Xen), talks to dom0's
//! xenstore over its store page (reads the name the toolstack gave it,
//! writes and reads back a node of its own, is refused dom0's) and
//! powers off.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use dom0::support::MappedPage;
use guest_abi::hypercall::{hypercall2, SCHED_OP};
use guest_abi::println;
use guest_abi::rt::{shutdown, StartInfoRef};
use guest_abi::sched::{SCHEDOP_YIELD, SHUTDOWN_POWEROFF};
use guest_abi::xen::SIF_INITDOMAIN;
use pv_drivers::xs_client::{XsClient, XsError};

guest_abi::pv_guest!(main, name = "hello-domu");

fn main(si: StartInfoRef) -> ! {
    println!("hello-domu: hello from a domU");
    println!(
        "hello-domu: {} pages ({} MiB), {}",
        si.nr_pages,
        (si.nr_pages * 4096) >> 20,
        if si.flags & SIF_INITDOMAIN != 0 {
            "the initial domain"
        } else {
            "not the initial domain"
        }
    );
    xenstore(si);
    println!("hello-domu: powering off");
    shutdown(SHUTDOWN_POWEROFF)
}

fn xenstore(si: StartInfoRef) {
    // No event upcalls: it has no callback; it polls its store ring.
    let rc = dom0::support::mask_upcalls(si);
    if rc != 0 {
        println!("hello-domu: cannot map shared_info ({rc})");
        return;
    }
    // SAFETY: the builder mapped the store page writable there for good;
    // nothing of ours refers into it.
    let page = unsafe { MappedPage::new(dom0::support::store_page_va(si)) };
    let port = si.store_evtchn;
    let notify = || toolstack::serve::notify(port);
    let idle = || {
        // SAFETY: no argument.
        unsafe { hypercall2(SCHED_OP, u64::from(SCHEDOP_YIELD), 0) };
    };
    let mut xs = XsClient::new(&page, notify, idle, 100_000);
    let show = |what: &str, r: Result<Vec<u8>, XsError>| match r {
        Ok(v) => println!("hello-domu: xenstore: {what} = {}", text(&v)),
        Err(XsError::Store(name)) => println!("hello-domu: xenstore: {what}: {name}"),
        Err(e) => println!("hello-domu: xenstore: {what}: {e:?}"),
    };
    show("name", xs.read("name"));
    if xs.write("data/greeting", b"hello from a domU").is_ok() {
        show("data/greeting", xs.read("data/greeting"));
    }
    show("/local/domain/0/name", xs.read("/local/domain/0/name"));
}

fn text(b: &[u8]) -> &str {
    core::str::from_utf8(b).unwrap_or("<not utf-8>")
}
