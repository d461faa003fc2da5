//! Our own front ends against dom0's back ends: dom0's own `main`, booted
//! with `net_peer` as its module and told to run two of it
//! (`domu_count=2`), each with a network interface (`domu_vif=1`), the
//! first with a 64 KiB test disk (`domu_disk_kib=64`). The first reads,
//! writes and reads back its disk through `pv_drivers::blkfront`, with
//! persistent grants (dom0 keeps its data page mapped); both
//! exchange frames through `pv_drivers::netfront`, dom0's network back
//! end and its switch, on hv and on Xen.
//!
//! @module: guest:net_peer
//! @cmdline: domu_count=2 domu_vif=1 domu_disk_kib=64
//! @expect-result: none
//! @expect-line: domU1| net_peer: ok: blkfront: sectors 5-12 read, as dom0's test disk holds them
//! @expect-line: dom0: vbd of domain 1: connected, a ring of 1 page (32 slots), persistent grants (up to 128 kept mapped)
//! @expect-line: domU1| net_peer: ok: blkfront: a page written and read back
//! @expect-line: dom0: vbd of domain 1: 1 persistent grants were kept mapped
//! @expect-line: domU1| net_peer: ok: netfront: domU2 heard us
//! @expect-line: domU2| net_peer: ok: netfront: domU1 heard us
//! @expect-line: dom0: domain 1 shut down (poweroff) and is destroyed
//! @expect-line: dom0: domain 2 shut down (poweroff) and is destroyed
//! @reject-line: net_peer: FAILED
//! @reject-line: panicked
//! @covers: grant_table_op.copy grant_table_op.map_grant_ref
#![no_std]
#![no_main]

guest_abi::pv_guest!(dom0::main, name = "dom0_frontends");
