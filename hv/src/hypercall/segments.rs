//! `set_segment_base`: the guest's FS base and its two GS bases.
//!
//! While the guest kernel runs, the live GS base is the kernel's and the
//! inactive one the user's (see `arch::x86_64::guest_state`); hypercalls
//! come only from guest kernel mode, so `SEGBASE_GS_KERNEL` sets the live
//! base and `SEGBASE_GS_USER` the inactive one. Bases must be canonical
//! (`-EINVAL`). `SEGBASE_GS_USER_SEL` loads a selector (RPL forced to 3,
//! except for null selectors) into user mode's GS and takes its base from
//! the descriptor; a selector the CPU would refuse loads the null selector
//! instead and still returns 0, as on Xen. Unknown `which`: `-EINVAL`.

use guest_abi::arch::{SEGBASE_FS, SEGBASE_GS_KERNEL, SEGBASE_GS_USER, SEGBASE_GS_USER_SEL};
use guest_abi::errno::Errno;

use super::{HcResult, Outcome};
use crate::arch::x86_64::guest_state;
use crate::domain;

pub fn set_segment_base(which: u32, base: u64) -> Outcome {
    perform(which, base).into()
}

fn perform(which: u32, base: u64) -> HcResult {
    let einval = |_| Errno::EINVAL;
    match which {
        SEGBASE_FS => {
            guest_state::write_fs_base(base).map_err(einval)?;
            domain::with_current(|d| d.vcpu.traps.fs_base = base);
        }
        SEGBASE_GS_USER => {
            guest_state::write_inactive_gs_base(base).map_err(einval)?;
            domain::with_current(|d| d.vcpu.traps.gs_base_user = base);
        }
        SEGBASE_GS_KERNEL => {
            guest_state::write_gs_base(base).map_err(einval)?;
            domain::with_current(|d| d.vcpu.traps.gs_base_kernel = base);
        }
        SEGBASE_GS_USER_SEL => {
            let sel = (base & 0xffff) as u16;
            let sel = if sel > 3 { sel | 3 } else { sel };
            let (_, base) = guest_state::load_inactive_gs_selector(sel);
            domain::with_current(|d| d.vcpu.traps.gs_base_user = base);
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}
