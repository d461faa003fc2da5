//! The virtual debug registers: `set_debugreg` and `get_debugreg`.
//!
//! Xen's rules: DR0-DR3 take a breakpoint address the guest may use (below
//! the canonical hole, or above hv's range; else `-EPERM`). DR6 and DR7 are
//! 32-bit (`-EINVAL` for upper bits) and get their fixed bits forced (DR6:
//! bits 4-11 and 16-31 read as one, bit 12 as zero; DR7: bit 10 one, bits
//! 11, 12, 14 and 15 zero); DR7.GD is refused (`-EPERM`), and so are I/O
//! breakpoints, which need CR4.DE. DR4 and DR5 alias DR6 and DR7 while the
//! guest's CR4.DE is clear (hv lets no guest set it yet). Any other register
//! number is `-ENODEV`. `get_debugreg` returns the stored values (`-ENODEV`
//! for an unknown number).
//!
//! hv keeps the values per vCPU but does not load them into the CPU's
//! debug registers: a guest breakpoint would also fire on hv's own accesses
//! to guest memory, and hv has no #DB handling for its own context yet. A
//! #DB the guest raises itself (single-step, `int1`) is bounced to its
//! handler like any exception.

use guest_abi::errno::Errno;

use super::{HcResult, Outcome};
use crate::domain::{self, DR6_DEFAULT, DR7_DEFAULT};

/// DR6 bit 12 reads as zero.
const DR6_ZEROS: u64 = 1 << 12;
/// DR7 bits 11, 12, 14, 15 read as zero.
const DR7_ZEROS: u64 = 0xd800;
const DR7_GD: u64 = 1 << 13;
const DR7_ENABLES: u64 = 0xff;
/// The R/W field value of an I/O breakpoint.
const DR_RW_IO: u64 = 2;

/// An address a guest breakpoint may name (Xen's `__addr_ok`).
use crate::guest_mem::addr_ok as breakpoint_addr_ok;

/// The value to store for DR`reg`, or the errno.
fn check(reg: u32, value: u64, cr4_de: bool) -> Result<(usize, u64), Errno> {
    match reg {
        0..=3 => {
            if !breakpoint_addr_ok(value) {
                return Err(Errno::EPERM);
            }
            Ok((usize::try_from(reg).unwrap_or(0), value))
        }
        4 | 6 => {
            if reg == 4 && cr4_de {
                return Err(Errno::ENODEV);
            }
            if value >> 32 != 0 {
                return Err(Errno::EINVAL);
            }
            Ok((6, (value | DR6_DEFAULT) & !DR6_ZEROS))
        }
        5 | 7 => {
            if reg == 5 && cr4_de {
                return Err(Errno::ENODEV);
            }
            if value >> 32 != 0 {
                return Err(Errno::EINVAL);
            }
            let v = (value & !DR7_ZEROS) | DR7_DEFAULT;
            if v & DR7_GD != 0 {
                return Err(Errno::EPERM);
            }
            if v & DR7_ENABLES != 0 {
                let io = (0..4).any(|bp| (v >> (16 + 4 * bp)) & 3 == DR_RW_IO);
                if io && !cr4_de {
                    return Err(Errno::EPERM);
                }
            }
            Ok((7, v))
        }
        _ => Err(Errno::ENODEV),
    }
}

/// CR4.DE as the guest set it (never, for now: hv accepts no guest CR4
/// bits).
fn cr4_de(d: &domain::Cur<'_>) -> bool {
    d.vcpu.priv_state.cr4_guest & (1 << 3) != 0
}

/// `reg` is an `int`: a negative one names no register.
pub fn set_debugreg(reg: i32, value: u64) -> Outcome {
    set(reg.cast_unsigned(), value).into()
}

pub fn get_debugreg(reg: i32) -> Outcome {
    get(reg.cast_unsigned()).into()
}

fn set(reg: u32, value: u64) -> HcResult {
    domain::with_current(|d| {
        let (i, v) = check(reg, value, cr4_de(d))?;
        let slot = d.vcpu.traps.debugreg.get_mut(i).ok_or(Errno::ENODEV)?;
        *slot = v;
        Ok(0)
    })
}

fn get(reg: u32) -> HcResult {
    domain::with_current(|d| {
        let i = match reg {
            0..=3 | 6 | 7 => reg,
            4 | 5 if !cr4_de(d) => reg + 2,
            _ => return Err(Errno::ENODEV),
        };
        let i = usize::try_from(i).map_err(|_| Errno::ENODEV)?;
        d.vcpu.traps.debugreg.get(i).copied().ok_or(Errno::ENODEV)
    })
}
