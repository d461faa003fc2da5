//! XCR0, the register that enables XSAVE-managed state components, as a
//! 64-bit PV guest has it on Xen 4.17.
//!
//! A PV guest kernel runs in ring 3, so its `xsetbv` faults and the
//! hypervisor emulates it (Xen's `handle_xsetbv`): the value must stay
//! within the components the guest's CPUID policy offers (leaf 0xd
//! subleaf 0, `eax`/`edx`) and obey the architecture's dependencies
//! ([`valid`]); otherwise the guest gets #GP(0). `xgetbv` is not
//! privileged: the guest reads the hardware register, which holds the
//! vCPU's value while it runs. A vCPU starts with [`PV_INITIAL`]
//! (observed on Xen: `xgetbv(0)` reads 3 before the kernel's first
//! `xsetbv`).
//!
//! The components offered are Xen 4.17's PV set: x87, SSE, and AVX and
//! AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM) when the CPU has the features.
//! MPX (BNDREGS, BNDCSR) and PKRU are not offered to PV guests (seen on
//! Xen under QEMU `-cpu max`, whose CPU has both: `xsetbv` of either is
//! #GP), nor AMX.

/// State components, by their XCR0 bit.
pub const X87: u64 = 1 << 0;
pub const SSE: u64 = 1 << 1;
pub const YMM: u64 = 1 << 2;
pub const BNDREGS: u64 = 1 << 3;
pub const BNDCSR: u64 = 1 << 4;
pub const OPMASK: u64 = 1 << 5;
pub const ZMM_HI256: u64 = 1 << 6;
pub const HI16_ZMM: u64 = 1 << 7;
pub const PKRU: u64 = 1 << 9;
pub const TILE_CFG: u64 = 1 << 17;
pub const TILE_DATA: u64 = 1 << 18;

/// The three AVX-512 components, which go together.
pub const AVX512: u64 = OPMASK | ZMM_HI256 | HI16_ZMM;

/// What a PV vCPU's XCR0 holds before its first `xsetbv`.
pub const PV_INITIAL: u64 = X87 | SSE;

/// Size of the legacy region (the `fxsave` image) and the XSAVE header:
/// where the first extended component may start.
pub const LEGACY_AND_HEADER: u32 = 512 + 64;

/// Whether `xcr0` is a value the architecture allows (Xen's `valid_xcr0`):
/// x87 always set; AVX only with SSE; the AVX-512 components all or none,
/// and only with AVX; the MPX pair together; the AMX pair together.
pub fn valid(xcr0: u64) -> bool {
    let together = |pair: u64| xcr0 & pair == 0 || xcr0 & pair == pair;
    xcr0 & X87 != 0
        && (xcr0 & YMM == 0 || xcr0 & SSE != 0)
        && together(AVX512)
        && (xcr0 & AVX512 == 0 || xcr0 & YMM != 0)
        && together(BNDREGS | BNDCSR)
        && together(TILE_CFG | TILE_DATA)
}

/// Why a guest's `xsetbv` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XsetbvError {
    /// The guest's CR4.OSXSAVE is clear: #UD (checked before privilege).
    NotEnabled,
    /// From guest user mode, an XCR other than 0, a component not
    /// offered, or a value [`valid`] refuses: #GP(0).
    Refused,
}

/// Decides a guest's `xsetbv`: `ecx` is the register's low 32 bits (the
/// CPU ignores the rest), `value` is `edx:eax`, `max` the components the
/// guest's policy offers. In Xen's order: CR4.OSXSAVE, then privilege,
/// then the register and the value.
pub fn decide_xsetbv(
    guest_osxsave: bool,
    kernel_mode: bool,
    ecx: u32,
    value: u64,
    max: u64,
) -> Result<u64, XsetbvError> {
    if !guest_osxsave {
        return Err(XsetbvError::NotEnabled);
    }
    if !kernel_mode || ecx != 0 || value & !max != 0 || !valid(value) {
        return Err(XsetbvError::Refused);
    }
    Ok(value)
}

/// Bytes of a standard-format XSAVE area holding the components in
/// `xcr0`, from CPUID leaf 0xd (`host(0xd, i)` gives component `i`'s size
/// in `eax` and offset in `ebx`): at least the legacy region and header.
pub fn area_size(xcr0: u64, host: &dyn Fn(u32, u32) -> [u32; 4]) -> u32 {
    (2..63u32)
        .filter(|&c| xcr0 & (1 << c) != 0)
        .map(|c| {
            let [size, offset, _, _] = host(0xd, c);
            offset.saturating_add(size)
        })
        .fold(LEGACY_AND_HEADER, u32::max)
}

/// Bytes of a compacted-format area (`xsavec`) holding the components in
/// `xcr0`: the components from 2 up follow one another, each aligned to
/// 64 bytes when CPUID leaf 0xd subleaf `i` says so (`ecx` bit 1).
pub fn compacted_size(xcr0: u64, host: &dyn Fn(u32, u32) -> [u32; 4]) -> u32 {
    (2..63u32)
        .filter(|&c| xcr0 & (1 << c) != 0)
        .fold(LEGACY_AND_HEADER, |end, c| {
            let [size, _, flags, _] = host(0xd, c);
            let start = if flags & 2 != 0 {
                end.next_multiple_of(64)
            } else {
                end
            };
            start.saturating_add(size)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        assert!(valid(X87));
        assert!(valid(X87 | SSE));
        assert!(valid(X87 | SSE | YMM));
        assert!(valid(X87 | SSE | YMM | AVX512));
        assert!(!valid(0), "x87 is required");
        assert!(!valid(SSE | YMM), "x87 is required");
        assert!(!valid(X87 | YMM), "AVX needs SSE");
        assert!(!valid(X87 | SSE | YMM | OPMASK), "AVX-512 goes whole");
        assert!(!valid(X87 | SSE | AVX512), "AVX-512 needs AVX");
        assert!(!valid(X87 | BNDREGS), "MPX goes in pairs");
        assert!(valid(X87 | BNDREGS | BNDCSR));
        assert!(!valid(X87 | SSE | TILE_DATA), "AMX goes in pairs");
    }

    #[test]
    fn xsetbv_decisions() {
        let max = X87 | SSE | YMM;
        let ok = |ecx, v| decide_xsetbv(true, true, ecx, v, max);
        assert_eq!(ok(0, 7), Ok(7));
        assert_eq!(ok(0, 3), Ok(3));
        assert_eq!(ok(0, 1), Ok(1));
        for bad in [0, 5, 6, 0x1f, 0xe7, 0x207, 7 | 1 << 62, 7 | 1 << 63] {
            assert_eq!(ok(0, bad), Err(XsetbvError::Refused), "{bad:#x}");
        }
        assert_eq!(ok(1, 7), Err(XsetbvError::Refused), "XCR1");
        assert_eq!(
            decide_xsetbv(false, true, 0, 7, max),
            Err(XsetbvError::NotEnabled)
        );
        // #UD wins over the privilege check, as in Xen's emulator.
        assert_eq!(
            decide_xsetbv(false, false, 1, 0, max),
            Err(XsetbvError::NotEnabled)
        );
        assert_eq!(
            decide_xsetbv(true, false, 0, 7, max),
            Err(XsetbvError::Refused)
        );
    }

    #[test]
    fn sizes() {
        // QEMU's `-cpu max`: AVX at 576 (256 bytes), PKRU at 2688 (8).
        let host = |leaf: u32, sub: u32| match (leaf, sub) {
            (0xd, 2) => [256, 576, 0, 0],
            (0xd, 9) => [8, 2688, 0, 0],
            _ => [0; 4],
        };
        assert_eq!(area_size(X87 | SSE, &host), 576);
        assert_eq!(area_size(X87 | SSE | YMM, &host), 832);
        assert_eq!(area_size(X87 | SSE | YMM | PKRU, &host), 2696);
        assert_eq!(compacted_size(X87 | SSE | YMM, &host), 832);
        assert_eq!(compacted_size(X87 | SSE | YMM | PKRU, &host), 840);
        // A 64-byte-aligned component after PKRU starts at 896, not 840.
        let aligned = |leaf: u32, sub: u32| match (leaf, sub) {
            (0xd, 17) => [64, 2752, 2, 0],
            _ => host(leaf, sub),
        };
        assert_eq!(
            compacted_size(X87 | SSE | YMM | PKRU | TILE_CFG, &aligned),
            960
        );
    }
}
