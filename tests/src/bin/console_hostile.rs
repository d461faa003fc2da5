//! A domU kernel for `dom0_hostile_console` (not a case of its own): it
//! writes a line, then moves its console ring's producer index 2^30
//! bytes past the consumer and notifies, then writes another line and
//! powers off. dom0 must drop what the lie claims (not copy a gigabyte
//! of ring), say so, and go on relaying.
//!
//! @role: domu
#![no_std]
#![no_main]

use guest_abi::hypercall::{hypercall2, SCHED_OP};
use guest_abi::println;
use guest_abi::rt::{console, shutdown, Console, StartInfoRef};
use guest_abi::sched::{SCHEDOP_YIELD, SHUTDOWN_POWEROFF};

guest_abi::pv_guest!(main, name = "console_hostile");

fn pause() {
    for _ in 0..200 {
        // SAFETY: no argument.
        unsafe { hypercall2(SCHED_OP, u64::from(SCHEDOP_YIELD), 0) };
    }
}

fn main(_si: StartInfoRef) -> ! {
    println!("console_hostile: before the lie");
    pause();
    if let Console::Ring { va, port } = console() {
        let prod = (va + 3084) as *mut u32;
        // SAFETY: `out_prod` of our mapped console ring.
        unsafe { prod.write_volatile(prod.read_volatile().wrapping_add(1 << 30)) };
        toolstack::serve::notify(port);
        pause();
    }
    println!("console_hostile: still here");
    pause();
    shutdown(SHUTDOWN_POWEROFF)
}
