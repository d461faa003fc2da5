//! Our network front end against a back end that lies: dom0's own
//! `main`, booted with `net_victim` as its module, a network interface
//! for it (`domu_vif=1`), and that interface's back end told to lie
//! (`vif_hostile=`). By default it answers every transmit request under
//! an id never sent and every posted receive buffer under an id never
//! posted, which the front end ignores and counts, giving up on its
//! frames; variant `silent` never answers, and the front end gives up and
//! goes on; variant `lie` claims a thousand responses more than it made,
//! which is the ring's error for the front end, which stops using the
//! interface; variant `bad-rx` answers the receive buffers with bytes
//! that do not fit their pages, which the front end refuses and counts.
//! Variant `bystander` runs two domUs (`domu_count=2`), the first behind
//! the lying back end: the second's frames are answered as ever. The
//! domUs survive each, on hv and on Xen.
//!
//! @module: guest:net_victim
//! @cmdline: domu_vif=1 vif_hostile=bogus-ids
//! @expect-result: none
//! @expect-line: domU1| net_victim: the back end never answered: gave up on 3 frames and 4 receive buffers; 7 answers under ids never sent or posted ignored
//! @expect-line: domU1| net_victim: ok: still running, its xenstore answers
//! @expect-line: dom0: domain 1 shut down (poweroff) and is destroyed
//! @expect-line: dom0: vif of domain 1: 3 packets sent, 0 dropped; 0 received, 0 dropped
//! @reject-line: net_victim: FAILED
//! @reject-line: panicked
//! @variant: silent cmdline="domu_vif=1 vif_hostile=silent" expect-line="domU1| net_victim: the back end never answered: gave up on 3 frames and 4 receive buffers; 0 answers under ids never sent or posted ignored" expect-line="domU1| net_victim: ok: still running, its xenstore answers" expect-line="dom0: domain 1 shut down (poweroff) and is destroyed"
//! @variant: lie cmdline="domu_vif=1 vif_hostile=lie" expect-line="domU1| net_victim: the back end's ring lies (Overflow): the interface is not used any more" expect-line="domU1| net_victim: ok: still running, its xenstore answers" expect-line="dom0: vif of domain 1: 1 packets sent, 0 dropped; 0 received, 0 dropped"
//! @variant: bad-rx cmdline="domu_vif=1 vif_hostile=bad-rx" expect-line="domU1| net_victim: 3 frames answered, 3 NETIF_RSP_OKAY; 4 receive answers refused as errors; 0 answers under ids never sent or posted ignored" expect-line="domU1| net_victim: ok: still running, its xenstore answers" expect-line="dom0: vif of domain 1: 3 packets sent, 0 dropped; 0 received, 0 dropped"
//! @variant: bystander cmdline="domu_count=2 domu_vif=1 vif_hostile=bogus-ids" expect-line="domU1| net_victim: the back end never answered: gave up on 3 frames and 4 receive buffers; 7 answers under ids never sent or posted ignored" expect-line="domU1| net_victim: ok: still running, its xenstore answers" expect-line="domU2| net_victim: 3 frames answered, 3 NETIF_RSP_OKAY; 0 receive answers refused as errors; 0 answers under ids never sent or posted ignored" expect-line="domU2| net_victim: ok: still running, its xenstore answers" expect-line="dom0: domain 2 shut down (poweroff) and is destroyed"
//! @covers: grant_table_op.copy grant_table_op.map_grant_ref
#![no_std]
#![no_main]

guest_abi::pv_guest!(dom0::main, name = "dom0_hostile_netback");
