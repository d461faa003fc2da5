//! `hello-domu`: the smallest domU, the one `cargo xtask run` gives dom0
//! as its boot module. It says what its start of day is on its console
//! ring (a domU has no other console on a non-debug Xen), talks to dom0's
//! xenstore over its store page (reads the name the toolstack gave it,
//! writes and reads back a node of its own, is refused dom0's) and
//! powers off.
#![no_std]
#![no_main]

use dom0::support::MappedPage;
use guest_abi::arch::MACH2PHYS_VIRT_START;
use guest_abi::hypercall::{hypercall2, hypercall3, EVENT_CHANNEL_OP, SCHED_OP, UPDATE_VA_MAPPING};
use guest_abi::println;
use guest_abi::rt::{shutdown, StartInfoRef, VIRT_BASE};
use guest_abi::sched::{SCHEDOP_YIELD, SHUTDOWN_POWEROFF};
use guest_abi::xen::{SIF_INITDOMAIN, UVMF_INVLPG};
use pv_drivers::xs_wire::{ty, Assembler, Direction, Message, StoreRing};

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
    let mut xs = Client {
        ring: StoreRing::new(&page),
        input: Assembler::default(),
        port: si.store_evtchn,
        next: 1,
    };
    let show = |what: &str, reply: Option<Message>| match reply {
        Some(m) if m.header.type_ == ty::ERROR => {
            let name = m.payload.split(|&b| b == 0).next().unwrap_or(&[]);
            println!("hello-domu: xenstore: {what}: {}", text(name));
        }
        Some(m) => println!("hello-domu: xenstore: {what} = {}", text(&m.payload)),
        None => println!("hello-domu: xenstore: {what}: no reply"),
    };
    show("name", xs.request(ty::READ, b"name\0"));
    let wrote = xs.request(ty::WRITE, b"data/greeting\0hello from a domU");
    if wrote.is_some_and(|m| m.header.type_ == ty::WRITE) {
        show("data/greeting", xs.request(ty::READ, b"data/greeting\0"));
    }
    show(
        "/local/domain/0/name",
        xs.request(ty::READ, b"/local/domain/0/name\0"),
    );
}

fn text(b: &[u8]) -> &str {
    core::str::from_utf8(b).unwrap_or("<not utf-8>")
}

/// A xenstore client over the store page.
struct Client<'a> {
    ring: StoreRing<'a, MappedPage>,
    input: Assembler,
    port: u32,
    next: u32,
}

impl Client<'_> {
    /// Sends a request and waits (yielding) for its reply; watch events
    /// are skipped.
    fn request(&mut self, kind: u32, payload: &[u8]) -> Option<Message> {
        let id = self.next;
        self.next += 1;
        let bytes = Message::new(kind, id, 0, payload)?.to_bytes();
        let mut sent = 0;
        for _ in 0..100_000 {
            if sent < bytes.len() {
                sent += self
                    .ring
                    .write(Direction::Requests, bytes.get(sent..)?)
                    .ok()?;
                self.notify();
            }
            match self.input.pull(&self.ring, Direction::Responses).ok()? {
                Some(m) if m.header.req_id == id && m.header.type_ != ty::WATCH_EVENT => {
                    return Some(m)
                }
                Some(_) => {}
                None => yield_now(),
            }
        }
        None
    }

    fn notify(&self) {
        let mut send = guest_abi::event_channel::EvtchnSend { port: self.port };
        // SAFETY: a live `evtchn_send` Xen only reads.
        unsafe {
            hypercall2(
                EVENT_CHANNEL_OP,
                u64::from(guest_abi::event_channel::EVTCHNOP_SEND),
                core::ptr::from_mut(&mut send) as u64,
            )
        };
    }
}

fn yield_now() {
    // SAFETY: no argument.
    unsafe { hypercall2(SCHED_OP, u64::from(SCHEDOP_YIELD), 0) };
}
