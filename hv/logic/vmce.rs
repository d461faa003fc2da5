//! The virtual machine-check MSRs of a PV vCPU, as Xen 4.17's vMCE
//! (`xen/arch/x86/cpu/mcheck/vmce.c`, routed from `guest_rdmsr`/
//! `guest_wrmsr`) presents them.
//!
//! Each vCPU has two banks (`GUEST_MC_BANK_NUM`; bank 0 stays unused for
//! the "bank 0 quirk" of old CPUs, bank 1 would carry an injected error)
//! and an `MCG_STATUS`. hv never injects a machine check, so the banks'
//! STATUS/ADDR/MISC only ever hold 0 (the guest may write nothing else);
//! what the guest can change is `MCG_STATUS` and, on Intel, each bank's
//! CMCI control `MCi_CTL2`.
//!
//! The range Xen routes here is `MCG_CAP..=MCG_CTL`, `MCi_CTL2` for 32
//! banks, `MCi_CTL..MCi_MISC` for 32 banks, `MCG_EXT_CTL` and the Pentium
//! `P5_MC_ADDR`/`P5_MC_TYPE` (reads only: writing those is #GP). Inside it, an MSR Xen's vMCE does not handle
//! (a bank past the guest's last, `MCi_CTL2` on AMD) reads 0 and ignores
//! writes; outside it, [`Vmce::read`] and [`Vmce::write`] answer `None`.

/// `MCG_CAP.COUNT`: the banks a guest has.
pub const GUEST_MC_BANKS: u32 = 2;

pub const MSR_P5_MC_ADDR: u32 = 0;
pub const MSR_P5_MC_TYPE: u32 = 1;
pub const MSR_MCG_CAP: u32 = 0x179;
pub const MSR_MCG_STATUS: u32 = 0x17a;
pub const MSR_MCG_CTL: u32 = 0x17b;
pub const MSR_MC0_CTL2: u32 = 0x280;
pub const MSR_MC0_CTL: u32 = 0x400;
pub const MSR_MCG_EXT_CTL: u32 = 0x4d0;
/// Xen routes 32 banks' worth of MSRs here.
const BANK_RANGE: u32 = 32;

const MCG_CMCI_P: u64 = 1 << 10;
const MCG_TES_P: u64 = 1 << 11;
const MCG_SER_P: u64 = 1 << 24;

/// Which of Xen's vendor paths applies (the CPU's vendor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum McaVendor {
    Intel,
    /// AMD, Hygon and every other vendor: Xen gives them the plain
    /// capability (banks only).
    Other,
}

/// An MSR access the hardware would fault: the guest gets #GP(0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

/// One vCPU's machine-check state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vmce {
    mcg_status: u64,
    /// `MCi_CTL2` of the guest's banks (Intel only).
    ctl2: [u64; GUEST_MC_BANKS as usize],
}

/// The guest's `MCG_CAP`: its bank count and, on Intel, software error
/// recovery, threshold-based status and CMCI (which is never raised).
pub fn mcg_cap(vendor: McaVendor) -> u64 {
    let banks = u64::from(GUEST_MC_BANKS);
    match vendor {
        McaVendor::Intel => MCG_SER_P | MCG_TES_P | MCG_CMCI_P | banks,
        McaVendor::Other => banks,
    }
}

/// Where an MSR of the bank ranges falls.
enum BankMsr {
    /// `MCi_CTL` .. `MCi_MISC` (register 0-3) of a bank the guest has.
    Bank { reg: u32 },
    /// `MCi_CTL2` of a bank the guest has.
    Ctl2 { bank: usize },
    /// In Xen's range but not one of the guest's banks: Xen's vMCE does
    /// not claim it, so it reads 0 and writes are dropped.
    Unclaimed,
}

fn bank_msr(msr: u32) -> Option<BankMsr> {
    if let Some(off) = msr.checked_sub(MSR_MC0_CTL).filter(|o| *o < 4 * BANK_RANGE) {
        return Some(if off / 4 < GUEST_MC_BANKS {
            BankMsr::Bank { reg: off % 4 }
        } else {
            BankMsr::Unclaimed
        });
    }
    let off = msr.checked_sub(MSR_MC0_CTL2).filter(|o| *o < BANK_RANGE)?;
    Some(match usize::try_from(off) {
        Ok(bank) if off < GUEST_MC_BANKS => BankMsr::Ctl2 { bank },
        _ => BankMsr::Unclaimed,
    })
}

impl Vmce {
    /// `rdmsr msr`: `None` when the MSR is not a machine-check one.
    pub fn read(&self, vendor: McaVendor, msr: u32) -> Option<Result<u64, Refused>> {
        let v = match msr {
            MSR_MCG_CAP => mcg_cap(vendor),
            MSR_MCG_STATUS => self.mcg_status,
            // No MCG_CTL_P in the capability: 0.
            MSR_MCG_CTL => 0,
            // No LMCE_P.
            MSR_MCG_EXT_CTL => return Some(Err(Refused)),
            // Intel reads bank 1's address and status (0 here); others
            // are unclaimed.
            MSR_P5_MC_ADDR | MSR_P5_MC_TYPE => 0,
            _ => match bank_msr(msr)? {
                // MCi_CTL sticks at all ones; STATUS/ADDR/MISC stay 0.
                BankMsr::Bank { reg: 0 } => u64::MAX,
                BankMsr::Bank { .. } => 0,
                BankMsr::Ctl2 { bank } if vendor == McaVendor::Intel => {
                    self.ctl2.get(bank).copied().unwrap_or(0)
                }
                BankMsr::Ctl2 { .. } | BankMsr::Unclaimed => 0,
            },
        };
        Some(Ok(v))
    }

    /// `wrmsr msr, v`: `None` when the MSR is not a machine-check one.
    pub fn write(&mut self, vendor: McaVendor, msr: u32, v: u64) -> Option<Result<(), Refused>> {
        let ok = match msr {
            // Read-only and its own: the write changes nothing.
            MSR_MCG_CAP | MSR_MCG_CTL => true,
            MSR_MCG_STATUS => {
                self.mcg_status = v;
                true
            }
            MSR_MCG_EXT_CTL => false,
            // Xen routes only reads of these here: a write is #GP.
            MSR_P5_MC_ADDR | MSR_P5_MC_TYPE => false,
            _ => match bank_msr(msr)? {
                // A cleared MCi_CTL bit is ignored.
                BankMsr::Bank { reg: 0 } => true,
                // No error was ever injected: only 0 is a value to keep.
                BankMsr::Bank { .. } => v == 0,
                BankMsr::Ctl2 { bank } if vendor == McaVendor::Intel => {
                    // Kept as written: Xen checks no bit of it.
                    if let Some(c) = self.ctl2.get_mut(bank) {
                        *c = v;
                    }
                    true
                }
                BankMsr::Ctl2 { .. } | BankMsr::Unclaimed => true,
            },
        };
        Some(if ok { Ok(()) } else { Err(Refused) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMD: McaVendor = McaVendor::Other;

    #[test]
    fn globals_as_xen() {
        let mut m = Vmce::default();
        assert_eq!(m.read(AMD, MSR_MCG_CAP), Some(Ok(2)));
        assert_eq!(m.read(McaVendor::Intel, MSR_MCG_CAP), Some(Ok(0x100_0c02)));
        assert_eq!(m.write(AMD, MSR_MCG_CAP, 0xff), Some(Ok(())));
        assert_eq!(m.read(AMD, MSR_MCG_CAP), Some(Ok(2)));
        assert_eq!(m.write(AMD, MSR_MCG_STATUS, 5), Some(Ok(())));
        assert_eq!(m.read(AMD, MSR_MCG_STATUS), Some(Ok(5)));
        assert_eq!(m.read(AMD, MSR_MCG_CTL), Some(Ok(0)));
        assert_eq!(m.read(AMD, MSR_MCG_EXT_CTL), Some(Err(Refused)));
        assert_eq!(m.write(AMD, MSR_MCG_EXT_CTL, 0), Some(Err(Refused)));
    }

    #[test]
    fn banks_and_past_them() {
        let mut m = Vmce::default();
        assert_eq!(m.read(AMD, 0x404), Some(Ok(u64::MAX)));
        assert_eq!(m.write(AMD, 0x405, 0), Some(Ok(())));
        assert_eq!(m.write(AMD, 0x405, 1), Some(Err(Refused)));
        assert_eq!(m.write(AMD, 0x407, 1 << 63), Some(Err(Refused)));
        assert_eq!(m.read(AMD, 0x408), Some(Ok(0)));
        assert_eq!(m.write(AMD, 0x409, 1), Some(Ok(())));
        assert_eq!(m.read(AMD, 0x47f), Some(Ok(0)));
        assert_eq!(m.read(AMD, 0x480), None);
        assert_eq!(m.read(AMD, 0x3ff), None);
        assert_eq!(m.read(AMD, 0x29f), Some(Ok(0)));
        assert_eq!(m.read(AMD, 0x2a0), None);
        assert_eq!(m.read(AMD, 0xc000_0408), None);
    }

    #[test]
    fn intel_ctl2_kept_as_written() {
        let mut m = Vmce::default();
        let intel = McaVendor::Intel;
        assert_eq!(m.write(intel, 0x281, u64::MAX), Some(Ok(())));
        assert_eq!(m.read(intel, 0x281), Some(Ok(u64::MAX)));
        assert_eq!(m.read(intel, 0x280), Some(Ok(0)));
        assert_eq!(m.write(AMD, 0x280, 1), Some(Ok(())));
        assert_eq!(m.read(AMD, 0x280), Some(Ok(0)));
    }
}
