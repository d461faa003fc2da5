//! A TCP/IP stack in our own test domUs: dom0's own `main`, booted with
//! `net_stack` as its module and told to run two of it
//! (`domu_count=2`), each with a network interface (`domu_vif=1`). Each
//! runs `smoltcp` over `pv_drivers::netfront` (`tests::netstack`), at
//! `10.0.0.<domid>/24` and the MAC address its store node names; through
//! dom0's network back end and switch, domain 1 finds domain 2 by ARP,
//! pings it three times, has a UDP datagram echoed and sends it 256 KiB
//! over TCP, whose count and FNV-1a hash domain 2 sends back before both
//! close, on hv and on Xen.
//!
//! @module: guest:net_stack
//! @cmdline: domu_count=2 domu_vif=1
//! @expect-result: none
//! @expect-line: domU1| net_stack: ok: its MAC address 00:16:3e:00:00:01 from device/vif/0/mac
//! @expect-line: domU2| net_stack: ok: its MAC address 00:16:3e:00:00:02 from device/vif/0/mac
//! @expect-line: domU1| net_stack: ok: arp: 10.0.0.2 is at 00:16:3e:00:00:02, as its reply to our request says
//! @expect-line: domU1| net_stack: ok: icmp: 3 of 3 echo requests to 10.0.0.2 answered
//! @expect-line: domU1| net_stack: ok: udp: a 1024-byte datagram to 10.0.0.2:7 came back the same
//! @expect-line: domU1| net_stack: ok: tcp: connected to 10.0.0.2:5001
//! @expect-line: domU1| net_stack: ok: tcp: 262144 bytes of the stream sent and acknowledged
//! @expect-line: domU1| net_stack: ok: tcp: 10.0.0.2 counted 262144 bytes with our FNV-1a hash
//! @expect-line: domU1| net_stack: ok: tcp: closed cleanly, FIN both ways (TIME-WAIT)
//! @expect-line: domU1| net_stack: ok: netfront:
//! @expect-line: domU2| net_stack: ok: arp: answered 10.0.0.1 (00:16:3e:00:00:01) asking for our address
//! @expect-line: domU2| net_stack: ok: icmp: 3 echo requests came, 3 replies went
//! @expect-line: domU2| net_stack: ok: udp: echoed a datagram from 10.0.0.1
//! @expect-line: domU2| net_stack: ok: tcp: accepted a connection from 10.0.0.1
//! @expect-line: domU2| net_stack: ok: tcp: 262144 bytes taken until the FIN, each the stream's
//! @expect-line: domU2| net_stack: ok: tcp: the count and hash sent, closed cleanly, FIN both ways
//! @expect-line: domU2| net_stack: ok: netfront:
//! @expect-line: dom0: domain 1 shut down (poweroff) and is destroyed
//! @expect-line: dom0: domain 2 shut down (poweroff) and is destroyed
//! @reject-line: net_stack: FAILED
//! @reject-line: panicked
//! @covers: grant_table_op.copy grant_table_op.map_grant_ref
#![no_std]
#![no_main]

guest_abi::pv_guest!(dom0::main, name = "dom0_net_stack");
