//! dom0's side of a domU it built ([`crate::build`]), until the domU
//! shuts down: the same code on hv and on Xen.
//!
//! - [`Scratch`]: a page of dom0's address space the builder maps each
//!   frame of the new domain at in turn (`update_va_mapping_otherdomain`,
//!   flushing the page's translation each time).
//! - [`Relay`]: the domU's console ring read out line by line.
//! - [`run`]: binds the domU's console channel and `VIRQ_DOM_EXC`, maps
//!   its console ring, unpauses it and relays its lines, sleeping in
//!   `SCHEDOP_poll` on the two ports, until it has shut down; then closes
//!   both ports and destroys it.
//! - [`run_many`]: the same for up to [`MAX_GUESTS`] domains at once, each
//!   destroyed as it shuts down; at every wake-up the caller serves its
//!   own work (store, devices) and names its [`Ports`] to wake for, and
//!   may [`Ports::feed`] console input to one domain ([`feed_ring`]).

use core::sync::atomic::{AtomicU64, Ordering};

use guest_abi::domctl::*;
use guest_abi::event_channel::{
    EvtchnBindInterdomain, EvtchnBindVirq, EvtchnClose, EVTCHNOP_BIND_INTERDOMAIN,
    EVTCHNOP_BIND_VIRQ, EVTCHNOP_CLOSE,
};
use guest_abi::hypercall::{
    hypercall2, hypercall3, hypercall4, typed, EVENT_CHANNEL_OP, SCHED_OP, UPDATE_VA_MAPPING,
    UPDATE_VA_MAPPING_OTHERDOMAIN,
};
use guest_abi::sched::{SchedPoll, SCHEDOP_POLL};
use guest_abi::xen::{UVMF_INVLPG, VIRQ_DOM_EXC};

use crate::{Built, Error, FrameMapper};

const PAGE: usize = 4096;
/// Present, writable, user, accessed, dirty.
const RW_PTE: u64 = 0x67;

/// Maps frame `mfn` of domain `dom` writable at `va` (a page of ours that
/// has an L1 entry) and drops any old translation of `va`.
fn map_foreign(va: u64, mfn: u64, dom: u16) -> i64 {
    // SAFETY: the hypervisor checks the frame and the entry.
    unsafe {
        hypercall4(
            UPDATE_VA_MAPPING_OTHERDOMAIN,
            va,
            (mfn << 12) | RW_PTE,
            UVMF_INVLPG,
            u64::from(dom),
        )
    }
}

/// Unmaps `va` (and drops its translation).
fn unmap(va: u64) -> i64 {
    // SAFETY: as above.
    unsafe { hypercall3(UPDATE_VA_MAPPING, va, 0, UVMF_INVLPG) }
}

/// Maps frame `mfn` of domain `dom` writable at our page `va` (which
/// has an L1 entry; its old translation is dropped).
pub fn map_page(va: u64, mfn: u64, dom: u16) -> Result<(), Error> {
    step("update_va_mapping_otherdomain", map_foreign(va, mfn, dom))
}

/// Unmaps our page `va`.
pub fn unmap_page(va: u64) -> Result<(), Error> {
    step("update_va_mapping: unmap", unmap(va))
}

/// Binds port `port` of domain `dom` (allocated unbound for us): our end.
pub fn bind(dom: u16, port: u32) -> Result<u32, Error> {
    let mut b = EvtchnBindInterdomain {
        remote_dom: dom,
        _pad: 0,
        remote_port: port,
        local_port: 0,
    };
    step(
        "bind_interdomain",
        evtchn(EVTCHNOP_BIND_INTERDOMAIN, &mut b),
    )?;
    Ok(b.local_port)
}

/// Notifies the other end of our port `port`.
pub fn notify(port: u32) {
    let mut s = guest_abi::event_channel::EvtchnSend { port };
    evtchn(guest_abi::event_channel::EVTCHNOP_SEND, &mut s);
}

/// Closes our port `port`.
pub fn close_port(port: u32) {
    close(port);
}

fn step(what: &'static str, rc: i64) -> Result<(), Error> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::new(what, rc))
    }
}

/// A page of the caller's address space (with an L1 entry, the frame it
/// mapped given up) that the builder maps each frame at in turn.
#[derive(Debug, Clone, Copy)]
pub struct Scratch {
    pub va: u64,
}

impl FrameMapper for Scratch {
    fn with_frame(
        &mut self,
        dom: u16,
        mfn: u64,
        f: &mut dyn FnMut(&mut [u8; PAGE]),
    ) -> Result<(), Error> {
        step(
            "update_va_mapping_otherdomain: map a frame of it",
            map_foreign(self.va, mfn, dom),
        )?;
        // SAFETY: `va` maps the frame writable until the unmap below, and
        // nothing else of ours refers to the page meanwhile.
        f(unsafe { &mut *(self.va as *mut [u8; PAGE]) });
        step("update_va_mapping: unmap", unmap(self.va))
    }
}

/// Offsets in a console ring page (`xencons_interface`).
const OUT: u64 = 1024;
const OUT_SIZE: u32 = 2048;
const OUT_CONS: u64 = 3080;
const OUT_PROD: u64 = 3084;

/// A console ring's output, line by line (a line longer than 200 bytes
/// is cut; a producer index more than the ring ahead of the consumer
/// drops what it claims, with a line saying so).
#[derive(Debug)]
pub struct Relay {
    buf: [u8; 200],
    len: usize,
}

impl Default for Relay {
    fn default() -> Self {
        Self {
            buf: [0; 200],
            len: 0,
        }
    }
}

impl Relay {
    /// Consumes what the ring mapped at `ring` holds, handing each whole
    /// line (without its newline) to `line`: whether it consumed any.
    pub fn drain(&mut self, ring: u64, mut line: impl FnMut(&[u8])) -> bool {
        let word = |off: u64| {
            // SAFETY: the ring page is mapped at `ring`; its indexes are
            // u32s the domU writes.
            unsafe { ((ring + off) as *const u32).read_volatile() }
        };
        let prod = word(OUT_PROD);
        let mut c = word(OUT_CONS);
        // A producer more than the ring ahead (or behind) is a lie: what
        // it claims is dropped, not read (a domU must not keep dom0
        // copying for ever).
        if prod.wrapping_sub(c) > OUT_SIZE {
            line(b"<console ring index out of range: output dropped>");
            self.len = 0;
            c = prod;
        }
        while c != prod {
            // SAFETY: inside the ring's `out` array.
            let b =
                unsafe { ((ring + OUT + u64::from(c % OUT_SIZE)) as *const u8).read_volatile() };
            if b == b'\n' {
                line(self.buf.get(..self.len).unwrap_or(&[]));
                self.len = 0;
            } else if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
            c = c.wrapping_add(1);
        }
        let consumed = word(OUT_CONS) != prod;
        // SAFETY: `out_cons`, a u32 of the mapped ring.
        unsafe { ((ring + OUT_CONS) as *mut u32).write_volatile(prod) };
        consumed
    }
}

/// Offsets of a console ring's input (`xencons_interface`).
const IN: u64 = 0;
const IN_SIZE: u32 = 1024;
const IN_CONS: u64 = 3072;
const IN_PROD: u64 = 3076;

/// Writes what fits of `bytes` into the `in` ring of the console ring
/// mapped at `ring`: the bytes written. A consumer index the domU moved
/// more than the ring ahead of the producer is a lie: nothing is written.
pub fn feed_ring(ring: u64, bytes: &[u8]) -> usize {
    let word = |off: u64| {
        // SAFETY: the ring page is mapped at `ring`; its indexes are u32s.
        unsafe { ((ring + off) as *const u32).read_volatile() }
    };
    let cons = word(IN_CONS);
    let mut prod = word(IN_PROD);
    let used = prod.wrapping_sub(cons);
    if used > IN_SIZE {
        return 0;
    }
    let n = bytes.len().min((IN_SIZE - used) as usize);
    for &b in &bytes[..n] {
        // SAFETY: inside the ring's `in` array.
        unsafe { ((ring + IN + u64::from(prod % IN_SIZE)) as *mut u8).write_volatile(b) };
        prod = prod.wrapping_add(1);
    }
    core::sync::atomic::fence(Ordering::SeqCst);
    // SAFETY: `in_prod`, a u32 of the mapped ring.
    unsafe { ((ring + IN_PROD) as *mut u32).write_volatile(prod) };
    n
}

fn evtchn<T>(cmd: u32, arg: &mut T) -> i64 {
    // SAFETY: `arg` is the live struct of the command.
    unsafe {
        hypercall2(
            EVENT_CHANNEL_OP,
            u64::from(cmd),
            core::ptr::from_mut(arg) as u64,
        )
    }
}

fn close(port: u32) -> i64 {
    evtchn(EVTCHNOP_CLOSE, &mut EvtchnClose { port })
}

fn domctl(cmd: u32, dom: u16) -> Result<XenDomctl, i64> {
    let mut op = XenDomctl::new(cmd, dom, &0u64);
    // SAFETY: `op` is a live xen_domctl with no handle in it.
    match unsafe { typed::domctl(&mut op) } {
        0 => Ok(op),
        rc => Err(rc),
    }
}

/// Clears `port`'s pending bit in our shared-info page (mapped at
/// `shared`): `evtchn_pending` is 64 words from byte 2048.
fn clear_pending(shared: u64, port: u32) {
    let word = shared + 2048 + u64::from(port / 64) * 8;
    // SAFETY: an aligned word of the mapped shared-info page, which the
    // hypervisor changes only atomically.
    let w = unsafe { &*(word as *const AtomicU64) };
    w.fetch_and(!(1u64 << (port % 64)), Ordering::SeqCst);
}

/// Sleeps until one of `ports` is pending.
fn poll(ports: &[u32]) {
    let p = SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: u32::try_from(ports.len()).unwrap_or(0),
        _pad: 0,
        timeout: 0,
    };
    // SAFETY: `p` and its port list are live.
    unsafe {
        hypercall2(
            SCHED_OP,
            u64::from(SCHEDOP_POLL),
            core::ptr::from_ref(&p) as u64,
        )
    };
}

/// Runs the built, paused domain `b` until it shuts down, relaying each
/// line of its console to `line`, then destroys it: its shutdown reason
/// (`SHUTDOWN_*`). `shared` is where our shared-info page is mapped,
/// `ring` a page of ours (as [`Scratch`]) for its console ring. On an
/// error the domain is destroyed too.
pub fn run(b: &Built, shared: u64, ring: u64, line: impl FnMut(&[u8])) -> Result<u32, Error> {
    run_with(b, shared, ring, |_: &mut Ports| {}, line)
}

/// Most ports [`run_with`]'s caller may add besides its own two.
pub const MAX_EXTRA_PORTS: usize = 32;

/// Bytes [`Ports::feed`] takes in one wake-up.
pub const MAX_INPUT: usize = 256;

/// The caller's ports [`run_with`] also wakes for, named afresh at every
/// wake-up (a device's channel is bound only once its front end is
/// ready), and console input for one of the domains.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    list: [u32; MAX_EXTRA_PORTS],
    n: usize,
    input: [u8; MAX_INPUT],
    input_len: usize,
    input_to: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            list: [0; MAX_EXTRA_PORTS],
            n: 0,
            input: [0; MAX_INPUT],
            input_len: 0,
            input_to: 0,
        }
    }
}

impl Ports {
    /// Console input for domain `domid`: written into its console ring's
    /// `in` after this wake-up, as far as there is room (the rest is
    /// dropped: a domU that does not read its input cannot hold dom0
    /// up), and the domain notified. At most [`MAX_INPUT`] bytes, for one
    /// domain, per wake-up; more is dropped. The bytes taken.
    pub fn feed(&mut self, domid: u16, bytes: &[u8]) -> usize {
        if self.input_len != 0 && self.input_to != domid {
            return 0;
        }
        self.input_to = domid;
        let room = &mut self.input[self.input_len..];
        let n = room.len().min(bytes.len());
        room[..n].copy_from_slice(&bytes[..n]);
        self.input_len += n;
        n
    }

    /// Adds `port`; false when [`MAX_EXTRA_PORTS`] are there already.
    pub fn push(&mut self, port: u32) -> bool {
        match self.list.get_mut(self.n) {
            Some(slot) => {
                *slot = port;
                self.n += 1;
                true
            }
            None => false,
        }
    }

    fn as_slice(&self) -> &[u32] {
        &self.list[..self.n]
    }
}

/// [`run`], also serving the caller: `on_wake` runs at every wake-up,
/// after the pending bits were cleared, and names the caller's ports
/// (say, the domU's xenstore channel and its devices' channels, bound by
/// the caller) to wake for next.
pub fn run_with(
    b: &Built,
    shared: u64,
    ring: u64,
    on_wake: impl FnMut(&mut Ports),
    mut line: impl FnMut(&[u8]),
) -> Result<u32, Error> {
    let mut reason = Err(Error::new("the domain did not shut down", 0));
    run_many(
        &[(*b, ring)],
        shared,
        on_wake,
        |_, l| line(l),
        |_, r| reason = r,
    )?;
    reason
}

/// One domU [`run_many`] runs.
struct Guest {
    built: Built,
    /// Our page its console ring is mapped at.
    ring: u64,
    /// Our end of its console channel.
    console: u32,
    relay: Relay,
    down: bool,
}

/// Runs the built, paused domains `guests` (each with a page of ours for
/// its console ring, as [`Scratch`]) until every one has shut down: their
/// console lines go to `line` with their domain's id; as each shuts down
/// it is destroyed and `down` gets its shutdown reason (`SHUTDOWN_*`), or
/// the error that ended it. `on_wake` is [`run_with`]'s. An error before
/// the domains run destroys them all.
pub fn run_many(
    guests: &[(Built, u64)],
    shared: u64,
    mut on_wake: impl FnMut(&mut Ports),
    mut line: impl FnMut(u16, &[u8]),
    mut down: impl FnMut(u16, Result<u32, Error>),
) -> Result<(), Error> {
    let mut virq = EvtchnBindVirq {
        virq: VIRQ_DOM_EXC,
        vcpu: 0,
        port: 0,
    };
    let rc = evtchn(EVTCHNOP_BIND_VIRQ, &mut virq);
    let started = if rc == 0 {
        start(guests)
    } else {
        Err(Error::new("bind_virq: VIRQ_DOM_EXC", rc))
    };
    let mut running = match started {
        Ok(r) => r,
        Err(e) => {
            for (b, _) in guests {
                let _ = domctl(XEN_DOMCTL_DESTROYDOMAIN, b.domid);
            }
            if rc == 0 {
                close(virq.port);
            }
            return Err(e);
        }
    };
    let mut polled = Ports::default();
    while running.iter().any(|g| !g.down) {
        // Cleared before looking: a notification after the look leaves
        // its port pending, and the poll returns at once (a port new this
        // time is looked at before it was cleared: at worst one more
        // turn).
        clear_pending(shared, virq.port);
        for &p in polled.as_slice() {
            clear_pending(shared, p);
        }
        let mut extra = Ports::default();
        on_wake(&mut extra);
        if extra.input_len != 0 {
            let input = &extra.input[..extra.input_len];
            if let Some(g) = running
                .iter_mut()
                .find(|g| !g.down && g.built.domid == extra.input_to)
            {
                if feed_ring(g.ring, input) != 0 {
                    notify(g.console);
                }
            }
        }
        for g in running.iter_mut().filter(|g| !g.down) {
            let id = g.built.domid;
            g.relay.drain(g.ring, |l| line(id, l));
            let shut = match domctl(XEN_DOMCTL_GETDOMAININFO, id) {
                Ok(op) => {
                    let info = op.u.get::<XenDomctlGetdomaininfo>();
                    if info.domain != id {
                        Some(Err(Error::new("getdomaininfo: the domain is gone", 0)))
                    } else if info.flags & XEN_DOMINF_SHUTDOWN != 0 {
                        g.relay.drain(g.ring, |l| line(id, l));
                        Some(Ok(info.shutdown_reason()))
                    } else {
                        None
                    }
                }
                Err(rc) => Some(Err(Error::new("getdomaininfo", rc))),
            };
            if let Some(r) = shut {
                g.down = true;
                close(g.console);
                let unmapped = unmap(g.ring);
                let destroyed = domctl(XEN_DOMCTL_DESTROYDOMAIN, id).err().unwrap_or(0);
                let r = r.and_then(|reason| {
                    step("destroydomain", destroyed)?;
                    step("update_va_mapping: unmap its console ring", unmapped)?;
                    Ok(reason)
                });
                down(id, r);
            }
        }
        polled = extra;
        for g in running.iter().filter(|g| !g.down) {
            polled.push(g.console);
        }
        if running.iter().any(|g| !g.down) {
            let mut all = [virq.port; 1 + MAX_EXTRA_PORTS];
            let n = all[1..]
                .iter_mut()
                .zip(polled.as_slice())
                .map(|(slot, &p)| *slot = p)
                .count();
            poll(&all[..=n]);
        }
    }
    close(virq.port);
    Ok(())
}

/// Most domains [`run_many`] runs at once.
pub const MAX_GUESTS: usize = 4;

/// The guests being run (no allocator needed).
struct Guests {
    list: [Option<Guest>; MAX_GUESTS],
}

impl Guests {
    fn iter(&self) -> impl Iterator<Item = &Guest> {
        self.list.iter().flatten()
    }
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Guest> {
        self.list.iter_mut().flatten()
    }
    fn push(&mut self, g: Guest) {
        if let Some(slot) = self.list.iter_mut().find(|s| s.is_none()) {
            *slot = Some(g);
        }
    }
}

/// Binds each guest's console, maps its ring and unpauses it; undoes
/// what it did on an error.
fn start(guests: &[(Built, u64)]) -> Result<Guests, Error> {
    if guests.len() > MAX_GUESTS {
        return Err(Error::new("more domains than run_many runs at once", 0));
    }
    let mut running = Guests {
        list: [const { None }; MAX_GUESTS],
    };
    let undo = |running: &mut Guests| {
        for g in running.list.iter_mut().filter_map(Option::take) {
            close(g.console);
            unmap(g.ring);
        }
    };
    for &(built, ring) in guests {
        let mut bind = EvtchnBindInterdomain {
            remote_dom: built.domid,
            _pad: 0,
            remote_port: built.console_port,
            local_port: 0,
        };
        let rc = evtchn(EVTCHNOP_BIND_INTERDOMAIN, &mut bind);
        if rc != 0 {
            undo(&mut running);
            return Err(Error::new("bind_interdomain: its console", rc));
        }
        let rc = map_foreign(ring, built.console_mfn, built.domid);
        if rc != 0 {
            close(bind.local_port);
            undo(&mut running);
            return Err(Error::new(
                "update_va_mapping_otherdomain: its console ring",
                rc,
            ));
        }
        running.push(Guest {
            built,
            ring,
            console: bind.local_port,
            relay: Relay::default(),
            down: false,
        });
    }
    let ids = running.iter().map(|g| g.built.domid);
    let mut ids_copy = [0u16; MAX_GUESTS];
    let n = ids_copy.iter_mut().zip(ids).map(|(s, id)| *s = id).count();
    for &id in &ids_copy[..n] {
        let rc = domctl(XEN_DOMCTL_UNPAUSEDOMAIN, id).err().unwrap_or(0);
        if rc != 0 {
            undo(&mut running);
            return Err(Error::new("unpausedomain", rc));
        }
    }
    Ok(running)
}
