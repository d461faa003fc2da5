//! A domU kernel for `dom0_hostile_store` (not a case of its own): it
//! lies to dom0's xenstore. It sends a request whose header announces a
//! payload longer than the protocol allows, then sets its request ring's
//! producer index past anything it could have produced, notifies, waits
//! a little and powers off. dom0 must stop serving it, say so, and still
//! destroy it and go on.
//!
//! @role: domu
#![no_std]
#![no_main]

use guest_abi::hypercall::{hypercall2, SCHED_OP};
use guest_abi::println;
use guest_abi::rt::{shutdown, StartInfoRef};
use guest_abi::sched::{SCHEDOP_YIELD, SHUTDOWN_POWEROFF};

guest_abi::pv_guest!(main, name = "xs_hostile");

fn pause() {
    for _ in 0..200 {
        // SAFETY: no argument.
        unsafe { hypercall2(SCHED_OP, u64::from(SCHEDOP_YIELD), 0) };
    }
}

fn main(si: StartInfoRef) -> ! {
    // No upcalls: it has no callback.
    let _ = dom0::support::mask_upcalls(si);
    let page = dom0::support::store_page_va(si);
    let word = |off: u64| (page + off) as *mut u32;
    // A header (XS_WRITE, req 1, tx 0) announcing 5000 bytes of payload.
    let header: [u32; 4] = [11, 1, 0, 5000];
    for (i, w) in header.iter().enumerate() {
        // SAFETY: the store page's request ring, mapped writable.
        unsafe { word(i as u64 * 4).write_volatile(*w) };
    }
    // SAFETY: `req_prod` of the store page.
    unsafe { word(2052).write_volatile(16) };
    println!("xs_hostile: sent a header announcing 5000 bytes");
    toolstack::serve::notify(si.store_evtchn);
    pause();
    // SAFETY: as above.
    unsafe { word(2052).write_volatile(0x7fff_0000) };
    println!("xs_hostile: set req_prod far past req_cons");
    toolstack::serve::notify(si.store_evtchn);
    pause();
    println!("xs_hostile: powering off");
    shutdown(SHUTDOWN_POWEROFF)
}
