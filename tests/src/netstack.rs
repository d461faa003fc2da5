//! A TCP/IP stack for our test domUs: `smoltcp` over our network front
//! end (`pv_drivers::netfront`), so two of dom0's domUs can speak ARP,
//! ICMP, UDP and TCP to each other through dom0's back end and switch.
//!
//! - [`NetDevice`] is smoltcp's `phy::Device` over a connected
//!   [`NetFront`]: receive buffers are granted pages, all posted at the
//!   start; a frame delivered into one is copied out and the page posted
//!   again at once. Frames go out from a small pool of granted pages, one
//!   frame a page (no scatter-gather, no GSO: at most [`MTU`] bytes); a
//!   page is free again when the back end answers its request. It hands
//!   smoltcp a receive token only while a transmit page is free, so the
//!   reply smoltcp makes to a frame (an ARP reply, an ACK) always has a
//!   page to go in. A receive response that is an error loses its page
//!   (`NetFront` counts it but does not say which page it was): the
//!   checks require none.
//! - The shared pages are reached only through `MappedPage` (volatile
//!   accesses), never by reference, so there is no `unsafe` here.
//! - [`Traffic`] counts what went by in each direction (ARP requests and
//!   replies, ICMP echoes, UDP, TCP) and who answered ARP, for checks that
//!   look below the sockets.
//! - [`Stack`] bundles the device, smoltcp's interface and sockets and the
//!   clock (system time from the shared-info page), and polls them,
//!   yielding the CPU between rounds, for bounded waits.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;

use dom0::support::MappedPage;
use guest_abi::io::netif::NETIF_RSP_OKAY;
use pv_drivers::netfront::NetFront;
use pv_drivers::ring::SharedRing;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    HardwareAddress, Icmpv4Message, Icmpv4Packet, IpCidr, IpProtocol, Ipv4Address, Ipv4Packet,
};

use crate::frontend::{yield_now, PAGE};

/// The largest frame, Ethernet header included (an IP MTU of 1500).
pub const MTU: usize = 1514;

/// Granted pages of ours in a row, under consecutive grant references.
#[derive(Clone, Copy)]
pub struct Buffers {
    pub pages: MappedPage,
    pub first_ref: u32,
    pub count: u32,
}

impl Buffers {
    fn refs(&self) -> core::ops::Range<u32> {
        self.first_ref..self.first_ref.saturating_add(self.count)
    }

    /// Where the page granted as `gref` starts, if it is one of these.
    fn offset(&self, gref: u32) -> Option<usize> {
        let i = gref
            .checked_sub(self.first_ref)
            .filter(|&i| i < self.count)?;
        usize::try_from(i).ok()?.checked_mul(PAGE)
    }
}

/// Frames of each kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Kinds {
    pub arp_requests: u32,
    pub arp_replies: u32,
    pub echo_requests: u32,
    pub echo_replies: u32,
    pub udp: u32,
    pub tcp: u32,
    pub other: u32,
}

/// What went by, in each direction, and the front end's own counts.
#[derive(Debug, Default, Clone)]
pub struct Traffic {
    pub rx: Kinds,
    pub tx: Kinds,
    /// Who sent us ARP packets: (IP address, MAC address, operation).
    pub arp_from: Vec<(Ipv4Address, EthernetAddress, ArpOperation)>,
    /// Transmit requests the back end answered `NETIF_RSP_OKAY`, and
    /// otherwise.
    pub tx_ok: u64,
    pub tx_errors: u64,
    /// Frames smoltcp made that did not go out (no free page, too big).
    pub tx_dropped: u64,
    /// A ring's indices lied: the device stopped.
    pub ring_broken: bool,
}

impl Traffic {
    /// Whether `ip` at `mac` sent us an ARP packet of `op`.
    pub fn arp_heard(&self, ip: Ipv4Address, mac: EthernetAddress, op: ArpOperation) -> bool {
        self.arp_from.contains(&(ip, mac, op))
    }
}

/// What kind of frame `frame` is, counted in `kinds`; an ARP packet's
/// sender is returned.
fn observe(
    frame: &[u8],
    kinds: &mut Kinds,
) -> Option<(Ipv4Address, EthernetAddress, ArpOperation)> {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        kinds.other += 1;
        return None;
    };
    match eth.ethertype() {
        EthernetProtocol::Arp => {
            let arp = ArpPacket::new_checked(eth.payload())
                .ok()
                .and_then(|p| ArpRepr::parse(&p).ok());
            let Some(ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                ..
            }) = arp
            else {
                kinds.other += 1;
                return None;
            };
            match operation {
                ArpOperation::Request => kinds.arp_requests += 1,
                ArpOperation::Reply => kinds.arp_replies += 1,
                ArpOperation::Unknown(_) => kinds.other += 1,
            }
            Some((source_protocol_addr, source_hardware_addr, operation))
        }
        EthernetProtocol::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                kinds.other += 1;
                return None;
            };
            match ip.next_header() {
                IpProtocol::Icmp => match Icmpv4Packet::new_checked(ip.payload()) {
                    Ok(p) if p.msg_type() == Icmpv4Message::EchoRequest => kinds.echo_requests += 1,
                    Ok(p) if p.msg_type() == Icmpv4Message::EchoReply => kinds.echo_replies += 1,
                    _ => kinds.other += 1,
                },
                IpProtocol::Udp => kinds.udp += 1,
                IpProtocol::Tcp => kinds.tcp += 1,
                _ => kinds.other += 1,
            }
            None
        }
        _ => {
            kinds.other += 1;
            None
        }
    }
}

/// smoltcp's device over our network front end.
pub struct NetDevice<'a> {
    net: NetFront<'a, MappedPage>,
    port: u32,
    rx: Buffers,
    tx: Buffers,
    /// Transmit pages not in flight (their grant references).
    tx_free: Vec<u32>,
    /// Transmit request id → its page.
    tx_in_flight: BTreeMap<u16, u32>,
    /// Frames copied out of the receive pages, for smoltcp.
    inbox: VecDeque<Vec<u8>>,
    pub traffic: Traffic,
}

impl<'a> NetDevice<'a> {
    /// The device over `net` (connected, its back end's channel `port`),
    /// receiving into `rx` (each posted now) and sending from `tx`;
    /// `None` if the receive ring cannot take every page of `rx`.
    pub fn new(
        mut net: NetFront<'a, MappedPage>,
        port: u32,
        rx: Buffers,
        tx: Buffers,
    ) -> Option<Self> {
        if !rx.refs().all(|g| net.post(g).is_ok()) {
            return None;
        }
        let mut d = Self {
            net,
            port,
            rx,
            tx,
            tx_free: tx.refs().collect(),
            tx_in_flight: BTreeMap::new(),
            inbox: VecDeque::new(),
            traffic: Traffic::default(),
        };
        d.publish();
        Some(d)
    }

    /// Responses the front end ignored (ids not in flight) and receive
    /// responses that were errors.
    pub fn bogus_and_rx_errors(&self) -> (u64, u64) {
        (self.net.bogus(), self.net.rx_errors())
    }

    /// Publishes what is queued and tells the back end if it asked to be.
    fn publish(&mut self) {
        if self.net.push() {
            let _ = crate::evtchn::send(self.port);
        }
    }

    /// Takes the back end's answers: transmit pages freed, frames copied
    /// out of the receive pages and the pages posted again.
    pub fn service(&mut self) {
        if self.traffic.ring_broken {
            return;
        }
        let Ok(sent) = self.net.sent() else {
            self.traffic.ring_broken = true;
            return;
        };
        for (id, status) in sent {
            if let Some(gref) = self.tx_in_flight.remove(&id) {
                self.tx_free.push(gref);
            }
            if status == NETIF_RSP_OKAY {
                self.traffic.tx_ok += 1;
            } else {
                self.traffic.tx_errors += 1;
            }
        }
        let Ok(got) = self.net.received() else {
            self.traffic.ring_broken = true;
            return;
        };
        if got.is_empty() {
            return;
        }
        for r in got {
            if let Some(at) = self.rx.offset(r.gref) {
                let mut frame = vec![0; usize::from(r.len)];
                self.rx.pages.read(at + usize::from(r.offset), &mut frame);
                if let Some(sender) = observe(&frame, &mut self.traffic.rx) {
                    if !self.traffic.arp_from.contains(&sender) {
                        self.traffic.arp_from.push(sender);
                    }
                }
                self.inbox.push_back(frame);
            }
            // The page was ours as posted: post it again (the ring has a
            // slot for each of our pages).
            let _ = self.net.post(r.gref);
        }
        self.publish();
    }

    /// Sends `frame` from a free page.
    fn send(&mut self, frame: &[u8]) {
        let len = u16::try_from(frame.len())
            .ok()
            .filter(|&l| usize::from(l) <= MTU);
        let page = self.tx_free.pop();
        let (Some(len), Some(gref)) = (len, page) else {
            self.tx_free.extend(page);
            self.traffic.tx_dropped += 1;
            return;
        };
        let Some(at) = self.tx.offset(gref) else {
            self.traffic.tx_dropped += 1;
            return;
        };
        self.tx.pages.write(at, frame);
        match self.net.send(gref, 0, len, false) {
            Ok(id) => {
                self.tx_in_flight.insert(id, gref);
                let _ = observe(frame, &mut self.traffic.tx);
                self.publish();
            }
            Err(_) => {
                self.tx_free.push(gref);
                self.traffic.tx_dropped += 1;
            }
        }
    }
}

/// A frame received.
pub struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

/// A free transmit page, to be filled.
pub struct TxToken<'d, 'a>(&'d mut NetDevice<'a>);

impl phy::TxToken for TxToken<'_, '_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.send(&frame);
        r
    }
}

impl<'a> phy::Device for NetDevice<'a> {
    type RxToken<'d>
        = RxToken
    where
        Self: 'd;
    type TxToken<'d>
        = TxToken<'d, 'a>
    where
        Self: 'd;

    fn receive(&mut self, _: Instant) -> Option<(RxToken, TxToken<'_, 'a>)> {
        self.service();
        if self.tx_free.is_empty() {
            return None;
        }
        let frame = self.inbox.pop_front()?;
        Some((RxToken(frame), TxToken(self)))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_, 'a>> {
        if self.tx_free.is_empty() {
            self.service();
        }
        (!self.tx_free.is_empty() && !self.traffic.ring_broken).then_some(TxToken(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps
    }
}

/// Rounds a wait takes at most per millisecond it may last: a bound for a
/// clock that does not move.
const ROUNDS_PER_MS: u64 = 1000;

/// An interface of ours with its sockets and clock.
pub struct Stack<'a> {
    pub dev: NetDevice<'a>,
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    /// Where our shared-info page is mapped (the clock).
    shared_info: u64,
}

impl<'a> Stack<'a> {
    /// An interface at `mac` with address `ip` (a /24) over `dev`; time
    /// from the shared-info page mapped at `shared_info`.
    pub fn new(
        mut dev: NetDevice<'a>,
        mac: EthernetAddress,
        ip: Ipv4Address,
        shared_info: u64,
    ) -> Self {
        let mut config = Config::new(HardwareAddress::Ethernet(mac));
        config.random_seed = crate::clock::tsc() ^ u64::from(ip.to_bits());
        let now = now(shared_info);
        let mut iface = Interface::new(config, &mut dev, now);
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(ip.into(), 24));
        });
        Self {
            dev,
            iface,
            sockets: SocketSet::new(Vec::new()),
            shared_info,
        }
    }

    pub fn now(&self) -> Instant {
        now(self.shared_info)
    }

    /// One round: frames in and out, sockets served.
    pub fn poll(&mut self) {
        let now = self.now();
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
    }

    /// Polls, yielding between rounds, until `done` (called after each
    /// round) says so, for at most `ms` milliseconds: whether it did.
    pub fn wait(&mut self, ms: u64, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let deadline = self.now() + smoltcp::time::Duration::from_millis(ms);
        for _ in 0..ms.saturating_mul(ROUNDS_PER_MS) {
            self.poll();
            if done(self) {
                return true;
            }
            if self.now() >= deadline {
                return false;
            }
            yield_now();
        }
        false
    }
}

/// System time as smoltcp counts it.
fn now(shared_info: u64) -> Instant {
    let us = crate::clock::now(shared_info) / 1000;
    Instant::from_micros(i64::try_from(us).unwrap_or(i64::MAX))
}
