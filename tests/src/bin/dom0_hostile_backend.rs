//! Our block front end against a back end that lies: dom0's own `main`,
//! booted with `blk_victim` as its module, a test disk for it, and its
//! block back end told to lie (`vbd_hostile=`): by default it answers
//! every request under an id never sent, which the front end ignores and
//! counts, giving up on its reads; variant `silent` never answers, and
//! the front end gives up and goes on;
//! variant `lie` claims a thousand responses more than it made, which is
//! the ring's error for the front end, which stops using the disk;
//! variant `vanish` unmaps the ring and closes its channel at the first
//! request, telling the front end nothing, which gives up on its reads
//! (its notifications go to a channel with no other end). The domU
//! survives each, on hv and on Xen.
//!
//! @module: guest:blk_victim
//! @cmdline: domu_disk_kib=64 vbd_hostile=bogus-ids
//! @expect-result: none
//! @expect-line: domU1| blk_victim: the back end never answered: gave up on 3 reads; 3 answers under ids never sent ignored
//! @expect-line: domU1| blk_victim: ok: still running, its xenstore answers
//! @expect-line: dom0: domain 1 shut down (poweroff) and is destroyed
//! @reject-line: blk_victim: FAILED
//! @reject-line: panicked
//! @variant: silent cmdline="domu_disk_kib=64 vbd_hostile=silent" expect-line="domU1| blk_victim: the back end never answered: gave up on 3 reads; 0 answers under ids never sent ignored" expect-line="domU1| blk_victim: ok: still running, its xenstore answers"
//! @variant: lie cmdline="domu_disk_kib=64 vbd_hostile=lie" expect-line="domU1| blk_victim: the back end's ring lies (Overflow): the disk is not used any more" expect-line="domU1| blk_victim: ok: still running, its xenstore answers"
//! @variant: vanish cmdline="domu_disk_kib=64 vbd_hostile=vanish" expect-line="dom0: vbd of domain 1: vanishing at the first request (vbd_hostile=vanish)" expect-line="domU1| blk_victim: the back end never answered: gave up on 3 reads; 0 answers under ids never sent ignored" expect-line="domU1| blk_victim: ok: still running, its xenstore answers"
//! @covers: grant_table_op.copy grant_table_op.map_grant_ref
#![no_std]
#![no_main]

guest_abi::pv_guest!(dom0::main, name = "dom0_hostile_backend");
