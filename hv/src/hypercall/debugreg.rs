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
//! The values are the vCPU's and reach the CPU while it runs, as on Xen:
//! DR0-DR3 and DR7 (less its I/O breakpoint enables, which only emulated
//! port I/O could honour) whenever DR7 enables a breakpoint. DR6 is kept
//! as Xen keeps it: the CPU's is reset after every #DB, and what a #DB in
//! the guest recorded there is merged into the vCPU's ([`note_guest_db`]:
//! new status bits set, Xen 4.17's sticky merge) before the guest's
//! handler runs. A guest breakpoint on data hv itself touches (a guest
//! buffer it copies) raises #DB in hv, which discards it (`traps`), as
//! Xen ignores watchpoints that trigger within Xen.

use guest_abi::errno::Errno;

use super::{HcResult, Outcome};
use crate::arch::x86_64::guest_state::{self, Dr};
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

/// CR4.DE as the guest set it.
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

/// `set_debugreg(reg, value)` for the running vCPU (also the emulated
/// `mov` to a debug register).
fn set(reg: u32, value: u64) -> HcResult {
    domain::with_current(|d| set_locked(d, reg, value))
}

/// [`set`] with the running vCPU locked.
pub fn set_locked(d: &mut domain::Cur<'_>, reg: u32, value: u64) -> HcResult {
    let (i, v) = check(reg, value, cr4_de(d))?;
    let regs = &mut d.vcpu.traps.debugreg;
    let slot = regs.get_mut(i).ok_or(Errno::ENODEV)?;
    *slot = v;
    match i {
        6 => {}
        7 => {
            // DR0-DR3 reach the CPU with the first enable (a vCPU
            // loaded with none enabled left the CPU's as they were).
            if hardware_dr7(v) & DR7_ENABLES != 0 {
                load_breakpoints(regs);
            }
            guest_state::write_dr(Dr::Dr7, hardware_dr7(v));
        }
        n => {
            if let Some(dr) = Dr::breakpoint(n) {
                guest_state::write_dr(dr, v);
            }
        }
    }
    Ok(0)
}

/// `get_debugreg(reg)` for the running vCPU (also the emulated `mov` from
/// a debug register).
fn get(reg: u32) -> HcResult {
    domain::with_current(|d| get_locked(d, reg))
}

/// [`get`] with the running vCPU locked.
pub fn get_locked(d: &domain::Cur<'_>, reg: u32) -> HcResult {
    let i = match reg {
        0..=3 | 6 | 7 => reg,
        4 | 5 if !cr4_de(d) => reg + 2,
        _ => return Err(Errno::ENODEV),
    };
    let i = usize::try_from(i).map_err(|_| Errno::ENODEV)?;
    d.vcpu.traps.debugreg.get(i).copied().ok_or(Errno::ENODEV)
}

/// A #DB in the running guest: moves what the CPU recorded in DR6 into
/// the vCPU's (Xen's merge: status bits the CPU set are set, the
/// active-low ones it cleared are cleared) and resets the CPU's.
pub fn note_guest_db() {
    let hw = guest_state::read_dr(Dr::Dr6) & 0xffff_ffff;
    guest_state::write_dr(Dr::Dr6, DR6_DEFAULT);
    domain::with_current(|d| {
        let dr6 = &mut d.vcpu.traps.debugreg[6];
        *dr6 = (*dr6 | (hw & !DR6_DEFAULT)) & (hw | !DR6_DEFAULT);
    });
}

/// A #DB in hv itself (a guest breakpoint on data hv touched for it, or
/// one deferred across `syscall` by `mov ss`): discarded, as Xen does.
pub fn discard_hv_db() {
    guest_state::write_dr(Dr::Dr6, DR6_DEFAULT);
}

/// DR7 as the CPU gets it: without the enables of I/O breakpoints (hv
/// does not raise #DB for emulated port I/O; see the README).
pub fn hardware_dr7(dr7: u64) -> u64 {
    let mut v = dr7;
    for bp in 0..4 {
        if (dr7 >> (16 + 4 * bp)) & 3 == DR_RW_IO {
            v &= !(3 << (2 * bp));
        }
    }
    v
}

/// Whether `dr7` enables a breakpoint the CPU gets. Asked at every
/// switch, in and out: a DR7 enabling nothing (as nearly every guest's)
/// answers from one test, without [`hardware_dr7`]'s walk.
#[inline(always)]
pub fn breakpoints_enabled(dr7: u64) -> bool {
    dr7 & DR7_ENABLES != 0 && hardware_dr7(dr7) & DR7_ENABLES != 0
}

/// Puts DR0-DR3 of `regs` into the CPU.
pub fn load_breakpoints(regs: &[u64; 8]) {
    for (n, &v) in regs.iter().take(4).enumerate() {
        if let Some(dr) = Dr::breakpoint(n) {
            guest_state::write_dr(dr, v);
        }
    }
}
