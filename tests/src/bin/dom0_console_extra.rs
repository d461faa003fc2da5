//! Extra consoles (`device/console/<n>`) served by dom0: dom0's own
//! `main`, booted with `console_extra` as its module and told to give it
//! two extra consoles (`domu_consoles=2`). The domU connects both as
//! Linux's `hvc_xen` does (a granted page, a channel, `ring-ref` and
//! `port`); dom0 maps them, relays their lines as `domU1.<n>| ...`,
//! keeps draining while the domU writes twice the ring's size, drops
//! what a lying producer index claims and goes on serving, on hv and on
//! Xen.
//!
//! @module: guest:console_extra
//! @cmdline: domu_consoles=2
//! @expect-result: none
//! @expect-line: dom0: console 1 for domain 1
//! @expect-line: dom0: console 2 for domain 1
//! @expect-line: domU1.1| console_extra: line 1 of 40 ...
//! @expect-line: domU1.1| console_extra: line 40 of 40 ...
//! @expect-line: domU1.1| <console ring index out of range: output dropped>
//! @expect-line: domU1.1| console_extra: still served after the lie
//! @expect-line: domU1.2| console_extra: hello on console 2
//! @expect-line: domU1| console_extra: ok: both consoles drained
//! @expect-line: dom0: domain 1 shut down (poweroff) and is destroyed
//! @reject-line: console_extra: FAILED
//! @reject-line: panicked
//! @covers: grant_table_op.map_grant_ref
#![no_std]
#![no_main]

guest_abi::pv_guest!(dom0::main, name = "dom0_console_extra");
