//! dom0's network back end: one virtual interface of a domU, as Linux's
//! `xen-netback` serves `xen-netfront`, and the switch between the
//! interfaces ([`switch`]: no traffic leaves the machine).
//!
//! - The handshake is `pv_drivers::xenbus::Backend`'s, from the front
//!   end's `state` after every pass of the store. At `InitWait` the back
//!   end offers `feature-rx-copy` (the receive path by grant copy, which
//!   Linux's front end requires) and nothing else: no scatter-gather, no
//!   GSO, no split or multi-queue channels, so a packet is at most a
//!   frame (it may still take two slots when it crosses a page). Once the
//!   front end is `Connected` (Linux's skips `Initialised`) it maps the
//!   `tx-ring-ref` and `rx-ring-ref` rings and binds `event-channel`.
//! - Transmit: requests are copied off the ring, assembled into packets
//!   and checked as `pv_drivers::netback::assemble` says; every slot is
//!   answered; the packet's bytes come by grant copy. A front end that
//!   breaks the protocol (or lies about an index) is reported and not
//!   served any more.
//! - Receive: packets for the interface wait (at most [`INBOX`]; more are
//!   dropped and counted) until the front end has posted receive
//!   requests, and go into their pages by grant copy with the checksum
//!   flags the sender gave (`NETRXF_csum_blank`/`data_validated`, as
//!   Linux's netback passes them on).
//! - For tests of front ends, an interface's back end can lie
//!   ([`Hostile`], dom0's `vif_hostile=`); the switch still carries what
//!   it transmits.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use guest_abi::io::netif::{
    NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse, NETIF_RSP_ERROR,
};
use guest_abi::io::ring::BackRing;
use guest_abi::println;
use pv_drivers::netback::{self, Tx};
use pv_drivers::ring::{Back, RingError, SharedRing};
use pv_drivers::xenstored::Store;

use crate::grants::{map_ring, unmap_ring, CopyGrants};
use crate::handshake::{BackEnd, Handshake};
use crate::support::MappedPage;

/// Packets that may wait for an interface's receive requests.
pub const INBOX: usize = 256;

/// A packet on its way through the switch.
#[derive(Debug, Clone)]
pub struct Frame {
    pub data: Vec<u8>,
    pub csum_blank: bool,
    pub data_validated: bool,
}

impl Frame {
    fn destination(&self) -> [u8; 6] {
        let mut d = [0; 6];
        if let Some(b) = self.data.get(..6) {
            d.copy_from_slice(b);
        }
        d
    }
}

/// Both rings once connected.
struct Connection {
    tx_handle: u32,
    rx_handle: u32,
    port: u32,
    tx: BackRing,
    rx: BackRing,
    /// The front end broke the protocol: not served any more.
    broken: bool,
}

/// What an interface has moved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub tx_packets: u64,
    pub tx_dropped: u64,
    pub rx_packets: u64,
    pub rx_dropped: u64,
}

/// How a back end lies, for tests of front ends (dom0's `vif_hostile=`),
/// as `blkback::Hostile` does for disks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// Takes every request and answers none: no transmit response, no
    /// receive buffer filled.
    Silent,
    /// Answers each transmit request under an id never sent, and each
    /// posted receive buffer at once, a frame's length under an id never
    /// posted.
    BogusIds,
    /// Claims a thousand responses more than it made on a ring.
    Lie,
    /// Answers each posted receive buffer at once with bytes that do not
    /// fit its page: alternately running past its end and longer than a
    /// page.
    BadRx,
}

impl Hostile {
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "silent" => Some(Self::Silent),
            "bogus-ids" => Some(Self::BogusIds),
            "lie" => Some(Self::Lie),
            "bad-rx" => Some(Self::BadRx),
            _ => None,
        }
    }

    /// The transmit response this back end gives for `rsp`, if any.
    fn tx(self, rsp: &NetifTxResponse) -> Option<NetifTxResponse> {
        match self {
            Self::Silent => None,
            Self::BogusIds => Some(NetifTxResponse {
                id: rsp.id.wrapping_add(BOGUS),
                ..*rsp
            }),
            Self::Lie | Self::BadRx => Some(*rsp),
        }
    }

    /// What this back end does with a posted receive buffer.
    fn rx(self, req: NetifRxRequest) -> Posted {
        let frame = |id, offset, len| {
            Posted::Answer(NetifRxResponse {
                id,
                offset,
                flags: 0,
                status: len,
            })
        };
        match self {
            Self::Silent => Posted::Drop,
            Self::BogusIds => frame(req.id.wrapping_add(BOGUS), 0, 60),
            Self::BadRx if req.id.is_multiple_of(2) => frame(req.id, 4000, 200),
            Self::BadRx => frame(req.id, 0, 5000),
            Self::Lie => Posted::Keep(req),
        }
    }
}

/// What becomes of a posted receive buffer.
enum Posted {
    /// Kept for a packet (an honest back end's way).
    Keep(NetifRxRequest),
    /// Answered at once, with no packet.
    Answer(NetifRxResponse),
    /// Never answered.
    Drop,
}

/// How far a lying back end's ids are from the true ones.
const BOGUS: u16 = 1000;

/// After the real responses on the ring at `page`, a producer index
/// (`rsp_prod`, at byte 8) a thousand past what was produced
/// (`Hostile::Lie`).
fn overclaim(page: &MappedPage) {
    page.store(8, page.load(8).wrapping_add(1000));
}

/// Network interface `handle` of domain `front`.
pub struct Vif {
    /// A test's lying back end (`None`: an honest one).
    pub hostile: Option<Hostile>,
    pub front: u16,
    pub mac: [u8; 6],
    hs: Handshake,
    connection: Option<Connection>,
    /// Our pages the rings are mapped at.
    tx_va: u64,
    rx_va: u64,
    grants: CopyGrants,
    /// Transmit requests taken off the ring, not yet a whole packet.
    tx_pending: Vec<NetifTxRequest>,
    /// Receive requests taken off the ring: buffers to fill.
    rx_posted: VecDeque<NetifRxRequest>,
    inbox: VecDeque<Frame>,
    pub counters: Counters,
}

impl Vif {
    /// Interface `handle` of domain `front` (its store nodes made by
    /// `xenstored::toolstack::add_vif` with `mac`), its rings to be mapped
    /// at our pages `tx_va` and `rx_va`.
    pub fn new(
        si: &guest_abi::xen::StartInfo,
        front: u16,
        handle: u32,
        mac: [u8; 6],
        tx_va: u64,
        rx_va: u64,
    ) -> Self {
        Self {
            hostile: None,
            front,
            mac,
            hs: Handshake::new("vif", front, handle),
            connection: None,
            tx_va,
            rx_va,
            grants: CopyGrants::new(si, front, 1),
            tx_pending: Vec::new(),
            rx_posted: VecDeque::new(),
            inbox: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// Our event channel, once connected.
    pub fn port(&self) -> Option<u32> {
        self.connection.as_ref().map(|c| c.port)
    }

    fn fail(&mut self, why: &str) {
        println!(
            "dom0: vif of domain {}: {why}: not served any more",
            self.front
        );
        if let Some(c) = &mut self.connection {
            c.broken = true;
        }
    }

    /// The packets the front end sent, answered on its ring.
    pub fn transmit(&mut self) -> Vec<Frame> {
        let mut out = Vec::new();
        let Some(c) = self.connection.as_mut().filter(|c| !c.broken) else {
            return out;
        };
        // SAFETY: the ring page is mapped while connected.
        let page = unsafe { MappedPage::new(self.tx_va) };
        let mut back = Back::<_, NetifTxRequest, NetifTxResponse>::resume(&page, c.tx);
        let mut notify = false;
        let mut fatal = None;
        let hostile = self.hostile;
        let r: Result<(), RingError> = (|| loop {
            while let Some(req) = back.next_request()? {
                self.tx_pending.push(req);
            }
            loop {
                let (used, tx) = netback::assemble(&self.tx_pending);
                let responses = match tx {
                    Tx::Incomplete => break,
                    Tx::Fatal(why) => {
                        fatal = Some(why);
                        return Ok(());
                    }
                    Tx::Dropped(_, responses) => {
                        self.counters.tx_dropped += 1;
                        responses
                    }
                    Tx::Packet(p, mut responses) => {
                        match netback::copy(&p, &mut self.grants) {
                            Ok(data) => {
                                self.counters.tx_packets += 1;
                                out.push(Frame {
                                    data,
                                    csum_blank: p.csum_blank,
                                    data_validated: p.data_validated,
                                });
                            }
                            // A grant that would not copy: the packet is
                            // dropped and every slot says so, as Linux's
                            // netback answers a failed copy.
                            Err(_) => {
                                self.counters.tx_dropped += 1;
                                for r in &mut responses {
                                    r.status = NETIF_RSP_ERROR;
                                }
                            }
                        }
                        responses
                    }
                };
                for rsp in &responses {
                    if let Some(rsp) = hostile.map_or(Some(*rsp), |h| h.tx(rsp)) {
                        back.queue(&rsp);
                    }
                }
                self.tx_pending.drain(..used.min(self.tx_pending.len()));
            }
            notify |= back.push();
            if !back.final_check()? {
                return Ok(());
            }
        })();
        c.tx = back.indices();
        if hostile == Some(Hostile::Lie) && notify {
            overclaim(&page);
        }
        let port = c.port;
        if notify {
            toolstack::serve::notify(port);
        }
        match (r, fatal) {
            (Err(e), _) => self.fail(&format!("the transmit ring's indices lie ({e:?})")),
            (_, Some(why)) => self.fail(why),
            _ => {}
        }
        out
    }

    /// Queues `f` for the front end (dropped if [`INBOX`] are waiting).
    pub fn enqueue(&mut self, f: Frame) {
        if self.connection.is_none() || self.inbox.len() >= INBOX {
            self.counters.rx_dropped += 1;
        } else {
            self.inbox.push_back(f);
        }
    }

    /// Fills the front end's posted buffers with the waiting packets.
    pub fn receive(&mut self) {
        let Some(c) = self.connection.as_mut().filter(|c| !c.broken) else {
            return;
        };
        // SAFETY: the ring page is mapped while connected.
        let page = unsafe { MappedPage::new(self.rx_va) };
        let mut back = Back::<_, NetifRxRequest, NetifRxResponse>::resume(&page, c.rx);
        let mut notify = false;
        let hostile = self.hostile;
        let r: Result<(), RingError> = (|| loop {
            while let Some(req) = back.next_request()? {
                match hostile.map_or(Posted::Keep(req), |h| h.rx(req)) {
                    Posted::Keep(req) => self.rx_posted.push_back(req),
                    Posted::Answer(rsp) => {
                        back.queue(&rsp);
                    }
                    Posted::Drop => {}
                }
            }
            while let Some(f) = self.inbox.front() {
                let posted = self.rx_posted.make_contiguous();
                match netback::deliver(
                    &f.data,
                    f.csum_blank,
                    f.data_validated,
                    posted,
                    &mut self.grants,
                ) {
                    Ok(responses) => {
                        for rsp in &responses {
                            back.queue(rsp);
                        }
                        self.rx_posted.drain(..responses.len());
                        self.counters.rx_packets += 1;
                        self.inbox.pop_front();
                    }
                    Err(netback::RxError::NoRoom(_)) => break,
                    Err(netback::RxError::TooBig) => {
                        self.counters.rx_dropped += 1;
                        self.inbox.pop_front();
                    }
                }
            }
            notify |= back.push();
            if !back.final_check()? {
                return Ok(());
            }
        })();
        c.rx = back.indices();
        if hostile == Some(Hostile::Lie) && notify {
            overclaim(&page);
        }
        if notify {
            toolstack::serve::notify(c.port);
        }
        if let Err(e) = r {
            self.fail(&format!("the receive ring's indices lie ({e:?})"));
        }
    }
}

impl BackEnd for Vif {
    fn handshake(&mut self) -> &mut Handshake {
        &mut self.hs
    }

    fn publish(&mut self, s: &mut Store) {
        self.hs.write(s, "feature-rx-copy", b"1");
        self.hs.write(s, "feature-rx-flip", b"0");
    }

    fn connect(&mut self, s: &Store) -> Result<(), String> {
        let tx_ref = self.hs.front_number(s, "tx-ring-ref")?;
        let rx_ref = self.hs.front_number(s, "rx-ring-ref")?;
        let evtchn = self.hs.front_number(s, "event-channel")?;
        if self.hs.front_number(s, "request-rx-copy") != Ok(1) {
            return Err("the front end does not ask for receive by copy".into());
        }
        let tx_handle = map_ring(self.tx_va, self.front, tx_ref)?;
        let rx_handle = match map_ring(self.rx_va, self.front, rx_ref) {
            Ok(h) => h,
            Err(e) => {
                unmap_ring(self.tx_va, tx_handle);
                return Err(e);
            }
        };
        let undo = || {
            unmap_ring(self.tx_va, tx_handle);
            unmap_ring(self.rx_va, rx_handle);
        };
        let port = match toolstack::serve::bind(self.front, evtchn) {
            Ok(p) => p,
            Err(e) => {
                undo();
                return Err(format!("binding event-channel {evtchn}: {e}"));
            }
        };
        // SAFETY: both ring pages are mapped until `disconnect`.
        let (tx_page, rx_page) =
            unsafe { (MappedPage::new(self.tx_va), MappedPage::new(self.rx_va)) };
        let tx = Back::<_, NetifTxRequest, NetifTxResponse>::new(&tx_page).map(|b| b.indices());
        let rx = Back::<_, NetifRxRequest, NetifRxResponse>::new(&rx_page).map(|b| b.indices());
        let (Some(tx), Some(rx)) = (tx, rx) else {
            undo();
            toolstack::serve::close_port(port);
            return Err("no ring fits".into());
        };
        self.connection = Some(Connection {
            tx_handle,
            rx_handle,
            port,
            tx,
            rx,
            broken: false,
        });
        Ok(())
    }

    /// Unmaps the rings and closes the channel.
    fn disconnect(&mut self) {
        if let Some(c) = self.connection.take() {
            unmap_ring(self.tx_va, c.tx_handle);
            unmap_ring(self.rx_va, c.rx_handle);
            toolstack::serve::close_port(c.port);
        }
        self.tx_pending.clear();
        self.rx_posted.clear();
        self.inbox.clear();
    }
}

/// One pass of the switch: what each interface sent goes to the interface
/// whose MAC address it is for, or to every other one for a broadcast,
/// multicast or unknown address; then each interface takes what waits.
pub fn switch(vifs: &mut [&mut Vif]) {
    let mut sent: Vec<(usize, Frame)> = Vec::new();
    for (i, v) in vifs.iter_mut().enumerate() {
        sent.extend(v.transmit().into_iter().map(|f| (i, f)));
    }
    for (from, f) in sent {
        let to = f.destination();
        let known = vifs.iter().position(|v| v.mac == to);
        let group = to[0] & 1 != 0;
        let wants = |i: usize| i != from && (group || known.is_none() || known == Some(i));
        // The last interface that wants it takes the frame itself; any
        // before it (a flood) a copy.
        let Some(last) = (0..vifs.len()).rev().find(|&i| wants(i)) else {
            continue;
        };
        for (i, v) in vifs.iter_mut().enumerate() {
            if i == last {
                v.enqueue(f);
                break;
            }
            if wants(i) {
                v.enqueue(f.clone());
            }
        }
    }
    for v in vifs.iter_mut() {
        v.receive();
    }
}
