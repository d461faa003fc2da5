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
use guest_abi::arch::MACH2PHYS_VIRT_START;
use guest_abi::hypercall::{hypercall2, hypercall3, EVENT_CHANNEL_OP, SCHED_OP, UPDATE_VA_MAPPING};
use guest_abi::println;
use guest_abi::rt::{shutdown, StartInfoRef, VIRT_BASE};
use guest_abi::sched::{SCHEDOP_YIELD, SHUTDOWN_POWEROFF};
use guest_abi::xen::{SIF_INITDOMAIN, UVMF_INVLPG};
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
    let padding = si.pt_base + (si.nr_pt_frames + 2) * 4096;
    // SAFETY: replaces the mapping of a padding page nothing uses with our
    // shared-info frame.
    let rc = unsafe {
        hypercall3(
            UPDATE_VA_MAPPING,
            padding,
            si.shared_info | 0x67,
            UVMF_INVLPG,
        )
    };
    if rc != 0 {
        println!("hello-domu: cannot map shared_info ({rc})");
        return;
    }
    // SAFETY: vCPU 0's `evtchn_upcall_mask`, a byte of the mapped page.
    unsafe { ((padding + 1) as *mut u8).write_volatile(1) };
    // Its store page is in its initial mapping, at the pfn the M2P names.
    // SAFETY: the M2P is mapped read-only in every PV guest.
    let pfn = unsafe { ((MACH2PHYS_VIRT_START + si.store_mfn * 8) as *const u64).read_volatile() };
    // SAFETY: the builder mapped the store page writable at this address
    // for good; nothing of ours refers into it.
    let page = unsafe { MappedPage::new(VIRT_BASE + pfn * 4096) };
    let port = si.store_evtchn;
    let notify = || {
        let mut send = guest_abi::event_channel::EvtchnSend { port };
        // SAFETY: a live `evtchn_send` Xen only reads.
        unsafe {
            hypercall2(
                EVENT_CHANNEL_OP,
                u64::from(guest_abi::event_channel::EVTCHNOP_SEND),
                core::ptr::from_mut(&mut send) as u64,
            )
        };
    };
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
