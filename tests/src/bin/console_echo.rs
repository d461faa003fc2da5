//! A domU kernel for `dom0_console_input` (not a case of its own): it
//! says it waits for input, reads its console ring's `in` (polling, no
//! event callback) up to a carriage return or newline, prints the line
//! back as `console_echo: got <line>` and powers off; with no input for
//! a long while it says so and powers off.
//!
//! @role: domu
#![no_std]
#![no_main]

use guest_abi::println;
use guest_abi::rt::{shutdown, StartInfoRef};
use guest_abi::sched::SHUTDOWN_POWEROFF;
use tests::frontend::yield_now;

guest_abi::pv_guest!(main, name = "console_echo");

/// `xencons_interface`: `in` and its indexes.
const IN_SIZE: u32 = 1024;
const IN_CONS: u64 = 3072;
const IN_PROD: u64 = 3076;

fn main(si: StartInfoRef) -> ! {
    let _ = dom0::support::mask_upcalls(si);
    let ring = dom0::support::console_page_va(si);
    let word = |off: u64| (ring + off) as *mut u32;
    println!("console_echo: waiting for input (ECHO-READY)");
    let mut line = [0u8; 128];
    let mut len = 0;
    for _ in 0..2_000_000 {
        // SAFETY: the console ring page, mapped writable for good; its
        // indexes are u32s dom0 and we share.
        let (cons, prod) =
            unsafe { (word(IN_CONS).read_volatile(), word(IN_PROD).read_volatile()) };
        if cons == prod {
            yield_now();
            continue;
        }
        let mut c = cons;
        while c != prod && prod.wrapping_sub(c) <= IN_SIZE {
            // SAFETY: inside the ring's `in` array.
            let b = unsafe { ((ring + u64::from(c % IN_SIZE)) as *const u8).read_volatile() };
            c = c.wrapping_add(1);
            if b == b'\r' || b == b'\n' {
                println!(
                    "console_echo: got {}",
                    core::str::from_utf8(&line[..len]).unwrap_or("<not utf-8>")
                );
                shutdown(SHUTDOWN_POWEROFF);
            }
            if let Some(slot) = line.get_mut(len) {
                *slot = b;
                len += 1;
            }
        }
        // SAFETY: `in_cons`, ours to move.
        unsafe { word(IN_CONS).write_volatile(c) };
    }
    println!("console_echo: no input");
    shutdown(SHUTDOWN_POWEROFF)
}
