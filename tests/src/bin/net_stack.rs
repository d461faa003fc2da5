//! A domU kernel for `dom0_net_stack` (not a case of its own): a TCP/IP
//! stack (`smoltcp`, through `tests::netstack`) over our network front
//! end. dom0 runs two of it (`domu_count=2`, `domu_vif=1`); each takes
//! its MAC address from its `device/vif/0/mac` node and the IP address
//! `10.0.0.<domid>/24`. The first (the client) pings the second three
//! times (its first packet waits for ARP), has a UDP datagram echoed,
//! and sends 256 KiB of a pseudo-random stream over TCP, then closes its
//! half; the second (the server) answers (smoltcp's interface answers
//! echo requests itself), echoes datagrams on port 7, takes the stream on
//! port 5001 and checks every byte of it, sends back the count and the
//! FNV-1a hash of what it received, and closes its half. Both check what
//! they saw, then power off; the client only after a second in TIME-WAIT,
//! or its ACK of the server's FIN (which smoltcp may delay) would never
//! go and the server would wait in LAST-ACK.
//!
//! @role: domu
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use guest_abi::rt::StartInfoRef;
use pv_drivers::netfront::NetFront;
use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::storage::{PacketBuffer, PacketMetadata};
use smoltcp::wire::{
    ArpOperation, EthernetAddress, Icmpv4Packet, Icmpv4Repr, IpEndpoint, Ipv4Address,
};
use tests::frontend::{self as fe, Checks, GrantTable, PAGE};
use tests::netstack::{Buffers, NetDevice, Stack};
use tests::pages::Pages;

guest_abi::pv_guest!(main, name = "net_stack");

static TX_RING: Pages<1> = Pages::new();
static RX_RING: Pages<1> = Pages::new();
/// Pages frames go out from.
static TX_BUF: Pages<{ TX_PAGES as usize }> = Pages::new();
/// Pages posted for frames to come in.
static RX_BUF: Pages<{ RX_PAGES as usize }> = Pages::new();

const TX_PAGES: u32 = 8;
const RX_PAGES: u32 = 16;
const TX_RING_REF: u32 = 10;
const RX_RING_REF: u32 = 11;
const TX_BUF_REF: u32 = 12;
const RX_BUF_REF: u32 = TX_BUF_REF + TX_PAGES;

const PINGS: u16 = 3;
const PING_IDENT: u16 = 0x5e7;
const ECHO_PORT: u16 = 7;
const UDP_PORT: u16 = 40_000;
const TCP_PORT: u16 = 5001;
const TCP_LOCAL_PORT: u16 = 49_152;
/// Bytes of the stream sent over TCP.
const STREAM: usize = 256 * 1024;
/// The server's answer: the bytes it took and their FNV-1a hash (each a
/// little-endian u64).
const ANSWER: usize = 16;
/// How long the client stays in TIME-WAIT (smoltcp would for 10 s).
const LINGER_MS: u64 = 1000;

fn ip(id: u16) -> Ipv4Address {
    Ipv4Address::new(10, 0, 0, u8::try_from(id).unwrap_or(0))
}

fn mac(id: u16) -> EthernetAddress {
    EthernetAddress([0x00, 0x16, 0x3e, 0, 0, u8::try_from(id).unwrap_or(0)])
}

/// `m` as xenstore and dom0 write it (smoltcp's `Display` uses dashes).
fn colons(m: EthernetAddress) -> String {
    let [a, b, c, d, e, f] = m.0;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// `xx:xx:xx:xx:xx:xx` as a MAC address.
fn parse_mac(s: &str) -> Option<EthernetAddress> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut m {
        let p = parts.next().filter(|p| p.len() == 2)?;
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(EthernetAddress(m))
}

/// The stream's bytes from offset `at` into `buf`: splitmix64 of each
/// 8-byte word's index, little-endian.
fn stream(at: usize, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let pos = at + i;
        let mut z = u64::try_from(pos / 8)
            .unwrap_or(0)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        *b = z.to_le_bytes()[pos % 8];
    }
}

/// FNV-1a (64-bit), going on from `h`.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn main(si: StartInfoRef) -> ! {
    let mut c = Checks {
        name: "net_stack",
        passed: 0,
    };
    let store = fe::store_page(&mut c, si);
    // `store_page` mapped our shared-info page at the padding page after
    // the boot stack (`dom0::support::mask_upcalls`): the clock.
    let shared_info = si.pt_base + (si.nr_pt_frames + 2) * PAGE as u64;
    let mut xs = fe::client(&store, si.store_evtchn);
    let id: u16 = fe::read(&mut xs, "domid").parse().unwrap_or(0);
    c.check("its domain id from its home", id == 1 || id == 2);
    let peer = 3 - id;
    let gt = GrantTable::new(&mut c, si);

    let dev = "device/vif/0";
    let our_mac = parse_mac(&fe::read(&mut xs, &format!("{dev}/mac")));
    c.check(
        &format!("its MAC address {} from {dev}/mac", colons(mac(id))),
        our_mac == Some(mac(id)),
    );
    let state = fe::back_end_waiting(&mut c, &mut xs, dev, "the interface's back end");
    gt.grant(si, TX_RING_REF, TX_RING.addr());
    gt.grant(si, RX_RING_REF, RX_RING.addr());
    for (i, page) in (0u64..).zip(TX_BUF_REF..RX_BUF_REF) {
        gt.grant(si, page, TX_BUF.addr() + i * PAGE as u64);
    }
    for (i, page) in (0u64..).zip(RX_BUF_REF..RX_BUF_REF + RX_PAGES) {
        gt.grant(si, page, RX_BUF.addr() + i * PAGE as u64);
    }
    let (txp, rxp) = (fe::shared(&TX_RING), fe::shared(&RX_RING));
    let Some(net) = NetFront::new(&txp, &rxp) else {
        c.check("network rings", false);
        c.done()
    };
    let port = fe::connect_vif(&mut c, &mut xs, (dev, &state), TX_RING_REF, RX_RING_REF);
    let rx = Buffers {
        pages: fe::shared(&RX_BUF),
        first_ref: RX_BUF_REF,
        count: RX_PAGES,
    };
    let tx = Buffers {
        pages: fe::shared(&TX_BUF),
        first_ref: TX_BUF_REF,
        count: TX_PAGES,
    };
    let Some(dev) = NetDevice::new(net, port, rx, tx) else {
        c.check("netfront: every receive page posted", false);
        c.done()
    };
    let mut s = Stack::new(dev, mac(id), ip(id), shared_info);

    if id == 1 {
        client(&mut c, &mut s, peer);
    } else {
        server(&mut c, &mut s, peer);
    }

    let t = &s.dev.traffic;
    let (bogus, rx_errors) = s.dev.bogus_and_rx_errors();
    c.check(
        &format!(
            "netfront: {} frames sent answered NETIF_RSP_OKAY, none otherwise or dropped, \
             no receive errors or unasked responses",
            t.tx_ok
        ),
        t.tx_ok > 0
            && t.tx_errors == 0
            && t.tx_dropped == 0
            && !t.ring_broken
            && bogus == 0
            && rx_errors == 0,
    );
    c.done()
}

/// A socket's buffer for `slots` packets of `bytes` in all.
fn packet_buffer<H: Clone>(
    empty: PacketMetadata<H>,
    slots: usize,
    bytes: usize,
) -> PacketBuffer<'static, H> {
    PacketBuffer::new(vec![empty; slots], vec![0; bytes])
}

/// Domain 1: pings, a datagram, the stream.
fn client(c: &mut Checks, s: &mut Stack<'_>, peer: u16) {
    let (peer_ip, peer_mac) = (ip(peer), mac(peer));

    // ICMP: one echo request at a time, each waiting for its reply.
    let icmp = s.sockets.add(icmp::Socket::new(
        packet_buffer(icmp::PacketMetadata::EMPTY, 4, 1024),
        packet_buffer(icmp::PacketMetadata::EMPTY, 4, 1024),
    ));
    let bound = s
        .sockets
        .get_mut::<icmp::Socket>(icmp)
        .bind(icmp::Endpoint::Ident(PING_IDENT));
    c.check("icmp: a socket for echo replies", bound.is_ok());
    let mut answered = 0;
    for seq_no in 0..PINGS {
        let mut data = [0u8; 56];
        stream(usize::from(seq_no) * 56, &mut data);
        let repr = Icmpv4Repr::EchoRequest {
            ident: PING_IDENT,
            seq_no,
            data: &data,
        };
        let sock = s.sockets.get_mut::<icmp::Socket>(icmp);
        if let Ok(buf) = sock.send(repr.buffer_len(), peer_ip.into()) {
            repr.emit(
                &mut Icmpv4Packet::new_unchecked(buf),
                &ChecksumCapabilities::default(),
            );
        }
        let replied = s.wait(3000, |s| {
            let sock = s.sockets.get_mut::<icmp::Socket>(icmp);
            let mut got = false;
            while let Ok((bytes, from)) = sock.recv() {
                let reply = Icmpv4Packet::new_checked(bytes)
                    .ok()
                    .and_then(|p| Icmpv4Repr::parse(&p, &ChecksumCapabilities::default()).ok());
                got |= from == peer_ip.into()
                    && matches!(reply, Some(Icmpv4Repr::EchoReply { ident, seq_no: n, data: d })
                        if ident == PING_IDENT && n == seq_no && d == data);
            }
            got
        });
        if seq_no == 0 {
            c.check(
                &format!(
                    "arp: {peer_ip} is at {}, as its reply to our request says",
                    colons(peer_mac)
                ),
                s.dev.traffic.rx.arp_replies >= 1
                    && s.dev.traffic.tx.arp_requests >= 1
                    && s.dev
                        .traffic
                        .arp_heard(peer_ip, peer_mac, ArpOperation::Reply),
            );
        }
        answered += u16::from(replied);
    }
    c.check(
        &format!("icmp: {answered} of {PINGS} echo requests to {peer_ip} answered"),
        answered == PINGS,
    );

    // UDP: a datagram to the echo port comes back the same.
    let udp = s.sockets.add(udp::Socket::new(
        packet_buffer(udp::PacketMetadata::EMPTY, 4, 4096),
        packet_buffer(udp::PacketMetadata::EMPTY, 4, 4096),
    ));
    let bound = s.sockets.get_mut::<udp::Socket>(udp).bind(UDP_PORT);
    c.check("udp: a socket", bound.is_ok());
    let mut datagram = vec![0u8; 1024];
    stream(STREAM, &mut datagram);
    let mut echoed = false;
    for _ in 0..3 {
        let sock = s.sockets.get_mut::<udp::Socket>(udp);
        let _ = sock.send_slice(&datagram, (peer_ip, ECHO_PORT));
        echoed = s.wait(2000, |s| {
            let sock = s.sockets.get_mut::<udp::Socket>(udp);
            let mut same = false;
            while let Ok((bytes, meta)) = sock.recv() {
                same |= meta.endpoint == (peer_ip, ECHO_PORT).into() && bytes == &datagram[..];
            }
            same
        });
        if echoed {
            break;
        }
    }
    c.check(
        &format!(
            "udp: a {}-byte datagram to {peer_ip}:{ECHO_PORT} came back the same",
            datagram.len()
        ),
        echoed,
    );

    // TCP: the stream, then our FIN, then the server's answer and FIN.
    let tcp = s.sockets.add(tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 4096]),
        tcp::SocketBuffer::new(vec![0; 64 * 1024]),
    ));
    let connecting = {
        let sock = s.sockets.get_mut::<tcp::Socket>(tcp);
        sock.connect(s.iface.context(), (peer_ip, TCP_PORT), TCP_LOCAL_PORT)
    };
    let connected = connecting.is_ok()
        && s.wait(5000, |s| {
            s.sockets.get_mut::<tcp::Socket>(tcp).state() == tcp::State::Established
        });
    c.check(
        &format!("tcp: connected to {peer_ip}:{TCP_PORT}"),
        connected,
    );
    let (mut sent, mut hash) = (0usize, FNV_OFFSET);
    let t0 = s.now();
    let all_sent = s.wait(40_000, |s| {
        let sock = s.sockets.get_mut::<tcp::Socket>(tcp);
        if sock.can_send() && sent < STREAM {
            let _ = sock.send(|buf| {
                let n = buf.len().min(STREAM - sent);
                stream(sent, &mut buf[..n]);
                hash = fnv1a(hash, &buf[..n]);
                sent += n;
                (n, ())
            });
        }
        // Sent and acknowledged.
        sent == STREAM && sock.send_queue() == 0
    });
    let ms = (s.now() - t0).total_millis();
    c.check(
        &format!("tcp: {STREAM} bytes of the stream sent and acknowledged ({ms} ms)"),
        all_sent,
    );
    s.sockets.get_mut::<tcp::Socket>(tcp).close();
    let mut answer = Vec::new();
    let answered = s.wait(10_000, |s| {
        let sock = s.sockets.get_mut::<tcp::Socket>(tcp);
        while sock.can_recv() {
            let _ = sock.recv(|buf| {
                answer.extend_from_slice(buf);
                (buf.len(), ())
            });
        }
        !sock.may_recv()
    });
    let word = |i: usize| {
        answer
            .get(i * 8..i * 8 + 8)
            .and_then(|w| w.try_into().ok())
            .map(u64::from_le_bytes)
    };
    c.check(
        &format!(
            "tcp: {peer_ip} counted {STREAM} bytes with our FNV-1a hash {hash:#018x}, then closed"
        ),
        answered
            && answer.len() == ANSWER
            && word(0) == u64::try_from(STREAM).ok()
            && word(1) == Some(hash),
    );
    let closed = s.wait(5000, |s| {
        s.sockets.get_mut::<tcp::Socket>(tcp).state() == tcp::State::TimeWait
    });
    c.check("tcp: closed cleanly, FIN both ways (TIME-WAIT)", closed);
    // TIME-WAIT's work before we power off: our ACK of the server's FIN
    // (smoltcp may delay it) goes out, and a FIN sent again is answered.
    s.wait(LINGER_MS, |_| false);
}

/// Sends every datagram `udp` holds back to its sender, noting the
/// sender in `echoed`: how many so far.
fn echo(s: &mut Stack<'_>, udp: SocketHandle, echoed: &mut Vec<IpEndpoint>) -> usize {
    let sock = s.sockets.get_mut::<udp::Socket>(udp);
    while let Ok((bytes, meta)) = sock.recv() {
        let bytes = bytes.to_vec();
        if sock.send_slice(&bytes, meta.endpoint).is_ok() {
            echoed.push(meta.endpoint);
        }
    }
    echoed.len()
}

/// Domain 2: answers pings (smoltcp does), echoes datagrams, takes the
/// stream.
fn server(c: &mut Checks, s: &mut Stack<'_>, peer: u16) {
    let (peer_ip, peer_mac) = (ip(peer), mac(peer));
    let udp = s.sockets.add(udp::Socket::new(
        packet_buffer(udp::PacketMetadata::EMPTY, 4, 4096),
        packet_buffer(udp::PacketMetadata::EMPTY, 4, 4096),
    ));
    let tcp = s.sockets.add(tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 64 * 1024]),
        tcp::SocketBuffer::new(vec![0; 4096]),
    ));
    let bound = s.sockets.get_mut::<udp::Socket>(udp).bind(ECHO_PORT);
    let listening = s.sockets.get_mut::<tcp::Socket>(tcp).listen(TCP_PORT);
    c.check(
        &format!("udp: echo on port {ECHO_PORT}, tcp: listening on port {TCP_PORT}"),
        bound.is_ok() && listening.is_ok(),
    );
    // Every datagram goes back to its sender (`echo`), in every round of
    // every wait below.
    let mut echoed = Vec::new();
    let pinged = s.wait(20_000, |s| {
        echo(s, udp, &mut echoed);
        s.dev.traffic.tx.echo_replies >= u32::from(PINGS)
    });
    let t = &s.dev.traffic;
    c.check(
        &format!(
            "arp: answered {peer_ip} ({}) asking for our address",
            colons(peer_mac)
        ),
        t.arp_heard(peer_ip, peer_mac, ArpOperation::Request) && t.tx.arp_replies >= 1,
    );
    c.check(
        &format!(
            "icmp: {} echo requests came, {} replies went",
            t.rx.echo_requests, t.tx.echo_replies
        ),
        pinged && t.rx.echo_requests == u32::from(PINGS) && t.tx.echo_replies == t.rx.echo_requests,
    );

    let got_datagram = s.wait(20_000, |s| echo(s, udp, &mut echoed) > 0);
    c.check(
        &format!("udp: echoed a datagram from {peer_ip}"),
        got_datagram && echoed.first().is_some_and(|e| e.addr == peer_ip.into()),
    );

    let accepted = s.wait(20_000, |s| {
        echo(s, udp, &mut echoed);
        s.sockets.get_mut::<tcp::Socket>(tcp).state() == tcp::State::Established
    });
    let from = s.sockets.get_mut::<tcp::Socket>(tcp).remote_endpoint();
    c.check(
        &format!("tcp: accepted a connection from {peer_ip}"),
        accepted && from.is_some_and(|e| e.addr == peer_ip.into()),
    );
    // The stream until the client's FIN, each byte checked.
    let (mut taken, mut hash, mut wrong) = (0usize, FNV_OFFSET, 0usize);
    let mut want = vec![0u8; 4096];
    let drained = s.wait(40_000, |s| {
        echo(s, udp, &mut echoed);
        let sock = s.sockets.get_mut::<tcp::Socket>(tcp);
        while sock.can_recv() {
            let _ = sock.recv(|buf| {
                let n = buf.len().min(want.len());
                stream(taken, &mut want[..n]);
                wrong += buf[..n].iter().zip(&want).filter(|(a, b)| a != b).count();
                hash = fnv1a(hash, &buf[..n]);
                taken += n;
                (n, ())
            });
        }
        !sock.may_recv()
    });
    c.check(
        &format!("tcp: {taken} bytes taken until the FIN, each the stream's, FNV-1a {hash:#018x}"),
        drained && taken == STREAM && wrong == 0,
    );
    let mut answer = [0u8; ANSWER];
    answer[..8].copy_from_slice(&u64::try_from(taken).unwrap_or(0).to_le_bytes());
    answer[8..].copy_from_slice(&hash.to_le_bytes());
    let sock = s.sockets.get_mut::<tcp::Socket>(tcp);
    let queued = sock.send_slice(&answer) == Ok(ANSWER);
    sock.close();
    let closed = s.wait(10_000, |s| {
        echo(s, udp, &mut echoed);
        s.sockets.get_mut::<tcp::Socket>(tcp).state() == tcp::State::Closed
    });
    c.check(
        "tcp: the count and hash sent, closed cleanly, FIN both ways",
        queued && closed,
    );
}
