//! `xenpmu_op` (hypercall 40) as Xen 4.17 answers it with its default
//! command line (no `vpmu=`): every op is `-EOPNOTSUPP`, whatever the op
//! and whatever the argument (Xen refuses before it reads either). Linux
//! calls `XENPMU_init` at boot and goes on without a virtual PMU.
//!
//! @covers: xenpmu_op
#![no_std]
#![no_main]

use guest_abi::errno::EOPNOTSUPP;
use guest_abi::hypercall::{hypercall2, XENPMU_OP};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use tests::check;

guest_abi::pv_guest!(main, name = "xenpmu");

/// XENPMU_* ops: mode_get/set, feature_get/set, init, finish, lvtpc_set,
/// flush; and numbers past them.
const OPS: &[(u64, &str)] = &[
    (0, "mode_get"),
    (1, "mode_set"),
    (2, "feature_get"),
    (3, "feature_set"),
    (4, "init"),
    (5, "finish"),
    (6, "lvtpc_set"),
    (7, "flush"),
    (8, "past the last"),
    (0xffff_ffff, "0xffffffff"),
];

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("xenpmu");
    // A zeroed xen_pmu_params (version, val, vcpu, pad: 24 bytes).
    let params = [0u64; 3];
    for &(op, name) in OPS {
        for (what, arg) in [
            ("params", params.as_ptr() as u64),
            ("null", 0),
            ("hv range", 0xffff_8000_0000_0000),
        ] {
            // SAFETY: the hypervisor refuses before touching the argument;
            // at most it would read the zeroed params.
            let rc = unsafe { hypercall2(XENPMU_OP, op, arg) };
            check!(r, "xenpmu_op {name} ({op:#x}), {what} argument", rc => -EOPNOTSUPP);
        }
    }
    r.finish()
}
