//! dom0's network back end against a lying front end: dom0's own `main`,
//! booted with `net_hostile` as its module and a network interface for
//! it (`domu_vif=1`). Every bad packet is dropped with an error for each
//! of its slots (with their ids) and the next honest frame still goes; a
//! slot crossing its page ends the back end's service of that front end,
//! with a line saying so; dom0 still serves the domU's xenstore, destroys
//! it at its poweroff and goes on, on hv and on Xen.
//!
//! @module: guest:net_hostile
//! @cmdline: domu_vif=1
//! @expect-result: none
//! @expect-line: dom0: vif for domain 1: 00:16:3e:00:00:01
//! @expect-line: domU1| net_hostile: 18 checks passed
//! @expect-line: dom0: vif of domain 1: a slot crosses its page: not served any more
//! @expect-line: dom0: vif of domain 1: 2 packets sent, 4 dropped
//! @expect-line: dom0: domain 1 shut down (poweroff) and is destroyed
//! @reject-line: net_hostile: FAILED
//! @reject-line: panicked
//! @covers: grant_table_op.copy grant_table_op.map_grant_ref
#![no_std]
#![no_main]

guest_abi::pv_guest!(dom0::main, name = "dom0_hostile_net");
