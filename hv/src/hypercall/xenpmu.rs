//! `xenpmu_op` (40): the virtual PMU, which Xen 4.17 leaves off unless its
//! command line has `vpmu=`. Off, Xen answers every op `-EOPNOTSUPP`
//! before it looks at the op or the argument (`do_xenpmu_op`); hv has no
//! virtual PMU and answers the same. Linux asks at boot (`XENPMU_init`)
//! and goes on without one.

use guest_abi::errno::Errno;

use super::Outcome;

pub fn xenpmu_op(_op: u32, _arg: u64) -> Outcome {
    Outcome::Err(Errno::EOPNOTSUPP)
}
