//! dom0's block back end against a lying front end: dom0's own `main`,
//! booted with `blk_hostile` as its module and a 64 KiB test disk for it
//! (`domu_disk_kib=64`). A ring larger than offered is refused once (the
//! back end Closing, with an error), and closing and starting again
//! works. Every bad request gets an error with its id and
//! changes nothing (grants revoked early too); the ring whose producer
//! index lies is dropped with a line saying so; started again with
//! persistent grants, dom0 keeps 128 of its grants mapped and serves the
//! rest by grant copy; the ring's frame given back while dom0 maps it
//! stays the domU's until dom0 unmaps it; dom0 still serves the domU's
//! xenstore, destroys it at its poweroff and goes on, on hv and on Xen.
//! Variant `read-only` offers the disk read-only (`domu_disk_ro=1`):
//! every check holds, and an honest write is refused.
//!
//! @module: guest:blk_hostile
//! @cmdline: domu_disk_kib=64
//! @expect-result: none
//! @expect-line: dom0: disk xvda (65536 bytes, writable) for domain 1
//! @expect-line: domU1| blk_hostile: 43 checks passed
//! @expect-line: dom0: vbd of domain 1: ring-page-order Some(5) over 2
//! @max-lines: 1 ring-page-order Some(5)
//! @expect-line: dom0: vbd of domain 1: the ring's indices lie
//! @expect-line: dom0: vbd of domain 1: connected, a ring of 1 page (32 slots), persistent grants (up to 128 kept mapped)
//! @expect-line: dom0: vbd of domain 1: 128 persistent grants were kept mapped
//! @expect-line: domU1| blk_hostile: ok: the disk is writable: a write of what it holds is answered BLKIF_RSP_OKAY
//! @variant: read-only cmdline="domu_disk_kib=64 domu_disk_ro=1" expect-line="dom0: disk xvda (65536 bytes, read-only) for domain 1" expect-line="domU1| blk_hostile: ok: the disk is read-only: a write of what it holds is answered BLKIF_RSP_ERROR" expect-line="domU1| blk_hostile: 43 checks passed" expect-line="dom0: vbd of domain 1: the ring's indices lie" expect-line="dom0: vbd of domain 1: 128 persistent grants were kept mapped" expect-line="dom0: domain 1 shut down (poweroff) and is destroyed"
//! @expect-line: dom0: domain 1 shut down (poweroff) and is destroyed
//! @reject-line: blk_hostile: FAILED
//! @reject-line: panicked
//! @covers: grant_table_op.copy grant_table_op.map_grant_ref
#![no_std]
#![no_main]

guest_abi::pv_guest!(dom0::main, name = "dom0_hostile_blk");
