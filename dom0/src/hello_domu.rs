//! `hello-domu`: the smallest domU, the one `cargo xtask run` gives dom0
//! as its boot module. It says what its start of day is on its console
//! ring (a domU has no other console on a non-debug Xen) and powers off.
#![no_std]
#![no_main]

use guest_abi::println;
use guest_abi::rt::{shutdown, StartInfoRef};
use guest_abi::sched::SHUTDOWN_POWEROFF;
use guest_abi::xen::SIF_INITDOMAIN;

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
    println!("hello-domu: powering off");
    shutdown(SHUTDOWN_POWEROFF)
}
