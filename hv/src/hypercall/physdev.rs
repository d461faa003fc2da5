//! `physdev_op` (33): the I/O privilege sub-ops every PV kernel may use.
//!
//! - `PHYSDEVOP_set_iopl`: the vCPU's virtual IOPL, 0–3 (`-EINVAL`
//!   above); see `emulate` for what it permits.
//! - `PHYSDEVOP_set_iobitmap`: the guest address of an I/O permission
//!   bitmap and how many ports it covers. As on Xen the bitmap is only
//!   range-checked here (8 KiB from the address must lie outside the
//!   hypervisor's range and be canonical, `nr_ports` at most 65536, else
//!   `-EINVAL`); it is read, through the kernel's page tables, at each
//!   port access.
//!
//! An unreadable argument is `-EFAULT`. Every other sub-op is `-ENOSYS`
//! until the physical-device work.

use guest_abi::errno::Errno;
use guest_abi::physdev::{
    PhysdevSetIobitmap, PhysdevSetIopl, PHYSDEVOP_SET_IOBITMAP, PHYSDEVOP_SET_IOPL,
};

use super::{read_arg, HcResult, Outcome};
use crate::domain;

/// Bytes of a full I/O bitmap (65536 ports).
const IOBMP_BYTES: u64 = 8192;
const MAX_PORTS: u32 = 65536;
/// First address above the hypervisor's range.
use crate::guest_mem::addr_ok;

pub fn physdev_op(cmd: u32, arg: u64) -> Outcome {
    perform(cmd, arg).into()
}

fn perform(cmd: u32, arg: u64) -> HcResult {
    match cmd {
        PHYSDEVOP_SET_IOPL => {
            let PhysdevSetIopl { iopl } = read_arg(arg)?;
            if iopl > 3 {
                return Err(Errno::EINVAL);
            }
            domain::with_current(|d| d.vcpu.traps.iopl = u64::from(iopl) << 12);
            Ok(0)
        }
        PHYSDEVOP_SET_IOBITMAP => {
            let PhysdevSetIobitmap {
                bitmap, nr_ports, ..
            } = read_arg(arg)?;
            let end_ok = bitmap.checked_add(IOBMP_BYTES - 1).is_some_and(addr_ok);
            if !addr_ok(bitmap) || !end_ok || nr_ports > MAX_PORTS {
                return Err(Errno::EINVAL);
            }
            domain::with_current(|d| {
                d.vcpu.priv_state.iobmp = bitmap;
                d.vcpu.priv_state.iobmp_limit = nr_ports;
            });
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}
