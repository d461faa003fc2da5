//! A guest's extended state (x87, SSE, AVX, AVX-512: what XSAVE manages)
//! and XCR0: enabling XSAVE on each CPU, and the per-vCPU save area.
//!
//! At bring-up every CPU whose CPUID reports XSAVE sets CR4.OSXSAVE and
//! loads XCR0 with the components the PV policy offers guests
//! ([`hv::pv_cpuid::xcr0_max`]: x87, SSE, and AVX / AVX-512 when present,
//! as on Xen 4.17) — hv's mask. The first CPU fixes the [`Config`] (mask,
//! area size from CPUID leaf 0xd, whether `xsaveopt` exists); every later
//! one must find the same, since a vCPU's area moves between CPUs. A CPU
//! without XSAVE keeps `fxsave` and a 512-byte area.
//!
//! A vCPU's [`FpuState`] is its XCR0 and a heap area of the size CPUID
//! gives for hv's mask, 64-byte aligned, in the standard (not compacted)
//! format, so every component sits at the offset CPUID names. A new one is
//! clean: a zeroed header, so `xrstor` puts every component in its initial
//! configuration (x87 after `fninit`, XMM/YMM zero; MXCSR is 0x1f80 in the
//! legacy region, which `xrstor` loads whenever it restores SSE or AVX).
//! Its XCR0 starts as x87|SSE, as a PV vCPU's does on Xen.
//!
//! Invariants:
//! - hv's mask is in XCR0 whenever no vCPU is loaded, and [`save`] and
//!   [`restore`] load it before they work, so they always cover every
//!   component, whatever the vCPU's own XCR0 (a vCPU that enabled
//!   AVX, dropped it and enables it again finds its YMM state, and a
//!   vCPU that never enabled it restores it to zeros: nothing of another
//!   vCPU stays in the registers);
//! - an area only ever holds an XSTATE_BV within hv's mask, a zero
//!   XCOMP_BV and a valid MXCSR (it is written by `xsave` or by the
//!   accessors here), so `xrstor` cannot fault;
//! - nothing writes the area of a vCPU loaded on a CPU: [`save`] may use
//!   `xsaveopt`, which skips components unmodified since the `xrstor`
//!   from the same address.

use core::arch::asm;

use alloc::boxed::Box;
use alloc::vec::Vec;
use hv::xcr0;
use x86_64::registers::control::{Cr4, Cr4Flags};
use x86_64::registers::xcontrol::{XCr0, XCr0Flags};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::cpu;

/// How hv saves guest extended state; the same on every CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// hv's XCR0 (the components saved and restored); 0: no XSAVE, the
    /// area is an `fxsave` image.
    pub mask: u64,
    /// Bytes of a vCPU's area.
    pub size: usize,
    /// Offset of the YMM_Hi128 component (0 when hv's mask lacks AVX).
    pub ymm_offset: usize,
    /// The CPU has `xsaveopt`.
    pub xsaveopt: bool,
}

/// The `fxsave` fallback.
const FXSAVE: Config = Config {
    mask: 0,
    size: 512,
    ymm_offset: 0,
    xsaveopt: false,
};

static CONFIG: spin::Once<Config> = spin::Once::new();

/// hv's configuration (the `fxsave` one before the first CPU's bring-up).
pub fn config() -> &'static Config {
    CONFIG.get().unwrap_or(&FXSAVE)
}

/// Whether hv runs with XSAVE (and guests may use `xsetbv`).
pub fn enabled() -> bool {
    config().mask != 0
}

/// A CPU whose XSAVE features differ from the first CPU's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    pub first: Config,
    pub this: Config,
}

/// Enables XSAVE on the CPU running this (when it has it) and returns the
/// configuration every CPU shares. Called once per CPU at bring-up, before
/// any vCPU is loaded on it.
pub fn init_this_cpu() -> Result<Config, Mismatch> {
    let mask = hv::pv_cpuid::xcr0_max(&cpu::cpuid);
    let this = if mask == 0 {
        FXSAVE
    } else {
        // SAFETY: CPUID reports XSAVE (`xcr0_max` is 0 otherwise);
        // OSXSAVE only lets XGETBV/XSETBV/XSAVE run and makes CPUID report
        // it, nothing hv's paging or memory depends on.
        unsafe { Cr4::update(|f| f.insert(Cr4Flags::OSXSAVE)) };
        // The mask is within leaf 0xd's components and keeps x87, and the
        // AVX-512 trio together with AVX (`xcr0::valid`), which the crate
        // asserts as well.
        let flags = XCr0Flags::from_bits_truncate(mask);
        // SAFETY: the components are ones the CPU supports (leaf 0xd) and
        // form a valid XCR0; hv itself uses no FPU/SIMD state.
        unsafe { XCr0::write(flags) };
        // The crate keeps bits it has no name for: if firmware left any,
        // this clears them.
        load_xcr0(mask);
        Config {
            mask,
            size: cpu::cpuid(0xd, 0)[1] as usize,
            ymm_offset: if mask & xcr0::YMM != 0 {
                cpu::cpuid(0xd, 2)[1] as usize
            } else {
                0
            },
            xsaveopt: cpu::cpuid(0xd, 1)[0] & 1 != 0,
        }
    };
    let first = *CONFIG.call_once(|| this);
    if first == this {
        Ok(this)
    } else {
        Err(Mismatch { first, this })
    }
}

/// Loads `value` into this CPU's XCR0 unless it holds it already (`xgetbv`
/// is cheap and unprivileged; `xsetbv` is not, and a vCPU that keeps hv's
/// mask, as Linux does, needs none on a switch). Only with XSAVE on.
fn load_xcr0(value: u64) {
    if XCr0::read_raw() != value {
        // SAFETY: `value` is hv's mask or a vCPU's XCR0, which is
        // `xcr0::PV_INITIAL` or a value `xcr0::valid` accepted within
        // hv's mask: the CPU supports it. hv uses no extended state.
        unsafe { XCr0::write_raw(value) };
    }
}

/// 64 bytes of an area: the unit of its alignment and size.
#[repr(C, align(64))]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Block([u8; 64]);

/// Byte offsets in the legacy region and header.
const FCW: usize = 0;
const MXCSR: usize = 24;
const XMM0: usize = 160;
const XSTATE_BV: usize = 512;

/// A vCPU's extended state while it does not run, and its XCR0.
pub struct FpuState {
    /// The vCPU's XCR0: x87|SSE until its first `xsetbv`; 0 without XSAVE.
    xcr0: u64,
    area: Box<[Block]>,
}

impl core::fmt::Debug for FpuState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FpuState(xcr0 {:#x})", self.xcr0)
    }
}

impl FpuState {
    /// The state a new vCPU starts with (see the module doc); `None` when
    /// the heap has no room for the area.
    pub fn new() -> Option<Self> {
        let cfg = config();
        let mut v = Vec::new();
        v.try_reserve_exact(cfg.size.div_ceil(64)).ok()?;
        v.resize(cfg.size.div_ceil(64), Block([0; 64]));
        let mut s = Self {
            xcr0: if cfg.mask != 0 { xcr0::PV_INITIAL } else { 0 },
            area: v.into_boxed_slice(),
        };
        // FCW for `fxrstor` (`xrstor` of an x87 component absent from
        // XSTATE_BV initialises it anyway), MXCSR for both.
        s.put(FCW, &0x037f_u16.to_le_bytes());
        s.put(MXCSR, &0x1f80_u32.to_le_bytes());
        Some(s)
    }

    /// The vCPU's XCR0 (0 without XSAVE).
    pub fn xcr0(&self) -> u64 {
        self.xcr0
    }

    /// Sets the XCR0 of a vCPU that is not loaded; `false` (nothing
    /// changed) for a value outside hv's mask or not [`xcr0::valid`].
    pub fn set_xcr0(&mut self, value: u64) -> bool {
        let ok = enabled() && value & !config().mask == 0 && xcr0::valid(value);
        if ok {
            self.xcr0 = value;
        }
        ok
    }

    fn bytes(&self) -> &[u8] {
        self.area.as_bytes()
    }

    fn put(&mut self, at: usize, v: &[u8]) {
        if let Some(dst) = self.area.as_mut_bytes().get_mut(at..at + v.len()) {
            dst.copy_from_slice(v);
        }
    }

    fn get16(&self, at: usize) -> [u8; 16] {
        let mut v = [0; 16];
        if let Some(src) = self.bytes().get(at..at + 16) {
            v.copy_from_slice(src);
        }
        v
    }

    fn xstate_bv(&self) -> u64 {
        let mut b = [0; 8];
        if let Some(src) = self.bytes().get(XSTATE_BV..XSTATE_BV + 8) {
            b.copy_from_slice(src);
        }
        u64::from_le_bytes(b)
    }

    /// Whether component `bit` holds saved values (rather than its
    /// initial configuration, which reads as zeros).
    fn holds(&self, bit: u64) -> bool {
        !enabled() || self.xstate_bv() & bit != 0
    }

    /// Marks component `bit` as holding values, zeroing its registers
    /// first if it was in its initial configuration (`xsaveopt` leaves the
    /// bytes of such a component as they were).
    fn materialise(&mut self, bit: u64, at: usize, len: usize) {
        if self.holds(bit) {
            return;
        }
        if let Some(dst) = self.area.as_mut_bytes().get_mut(at..at + len) {
            dst.fill(0);
        }
        let bv = self.xstate_bv() | bit;
        self.put(XSTATE_BV, &bv.to_le_bytes());
    }

    /// XMM register `n` (0-15) as saved.
    pub fn xmm(&self, n: usize) -> [u8; 16] {
        if n < 16 && self.holds(xcr0::SSE) {
            self.get16(XMM0 + 16 * n)
        } else {
            [0; 16]
        }
    }

    /// Sets XMM register `n` (0-15) of a vCPU that is not loaded.
    pub fn set_xmm(&mut self, n: usize, v: [u8; 16]) {
        if n < 16 {
            self.materialise(xcr0::SSE, XMM0, 256);
            self.put(XMM0 + 16 * n, &v);
        }
    }

    /// The upper half of YMM register `n` (0-15) as saved; `None` when hv
    /// does not manage AVX state.
    pub fn ymm_hi(&self, n: usize) -> Option<[u8; 16]> {
        let at = config().ymm_offset;
        if at == 0 || n >= 16 {
            return None;
        }
        Some(if self.holds(xcr0::YMM) {
            self.get16(at + 16 * n)
        } else {
            [0; 16]
        })
    }

    /// Sets the upper half of YMM register `n` of a vCPU that is not
    /// loaded; `false` when hv does not manage AVX state.
    pub fn set_ymm_hi(&mut self, n: usize, v: [u8; 16]) -> bool {
        let at = config().ymm_offset;
        if at == 0 || n >= 16 {
            return false;
        }
        self.materialise(xcr0::YMM, at, 256);
        self.put(at + 16 * n, &v);
        true
    }
}

/// The `edx:eax` requested-feature bitmap for `xsave`/`xrstor`.
fn rfbm(mask: u64) -> (u32, u32) {
    ((mask & 0xffff_ffff) as u32, (mask >> 32) as u32)
}

/// How [`save_into`] may save.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SaveKind {
    /// `xsaveopt` when the CPU has it: only into the area this CPU last
    /// restored, unwritten since.
    Optimised,
    /// `xsave`: into any area.
    Full,
}

/// Saves every component hv manages into `s`'s area (the `fxsave` image
/// without XSAVE), leaving hv's mask in XCR0. CR0.TS must be clear.
fn save_into(s: &mut FpuState, kind: SaveKind) {
    let cfg = config();
    let p = s.area.as_mut_ptr();
    if cfg.mask == 0 {
        // SAFETY: the area is at least 512 bytes, 64-byte aligned and
        // exclusively borrowed; fxsave only writes it.
        unsafe { asm!("fxsave64 [{}]", in(reg) p, options(nostack, preserves_flags)) };
        return;
    }
    load_xcr0(cfg.mask);
    let (lo, hi) = rfbm(cfg.mask);
    if kind == SaveKind::Optimised && cfg.xsaveopt {
        // SAFETY: the area is `cfg.size` bytes (CPUID's size for hv's
        // mask, now in XCR0), 64-byte aligned and exclusively borrowed;
        // xsaveopt only writes it. The caller passes the area this CPU
        // last restored, unwritten since (module invariant), so skipping
        // unmodified components leaves their saved values right.
        unsafe {
            asm!("xsaveopt64 [{}]", in(reg) p, in("eax") lo, in("edx") hi,
                 options(nostack, preserves_flags))
        };
    } else {
        // SAFETY: as above; xsave writes every requested component.
        unsafe {
            asm!("xsave64 [{}]", in(reg) p, in("eax") lo, in("edx") hi,
                 options(nostack, preserves_flags))
        };
    }
}

/// Moves this CPU's extended state into `s`, the state of the vCPU
/// loaded on it, and leaves hv's mask in XCR0. CR0.TS must be clear.
pub fn save(s: &mut FpuState) {
    save_into(s, SaveKind::Optimised);
}

/// Puts `s` into this CPU: every component hv manages, then the vCPU's
/// XCR0. CR0.TS must be clear.
pub fn restore(s: &FpuState) {
    let cfg = config();
    let p = s.area.as_ptr();
    if cfg.mask == 0 {
        // SAFETY: 512 aligned bytes whose MXCSR came from fxsave or
        // `FpuState::new` (reserved bits clear), so fxrstor cannot fault.
        // hv itself uses no FPU state.
        unsafe { asm!("fxrstor64 [{}]", in(reg) p, options(nostack, preserves_flags)) };
        return;
    }
    load_xcr0(cfg.mask);
    let (lo, hi) = rfbm(cfg.mask);
    // SAFETY: the area is `cfg.size` aligned bytes with XSTATE_BV within
    // hv's mask (now in XCR0), XCOMP_BV and the reserved header bytes zero
    // and a valid MXCSR (module invariant), so xrstor cannot fault; it
    // only reads the area. hv itself uses no extended state.
    unsafe {
        asm!("xrstor64 [{}]", in(reg) p, in("eax") lo, in("edx") hi,
             options(nostack, preserves_flags, readonly))
    };
    load_xcr0(s.xcr0);
}

/// The guest's `xsetbv`, already decided ([`xcr0::decide_xsetbv`] within
/// hv's mask): `s` is the state of the vCPU loaded on this CPU, whose XCR0
/// becomes `value` in the CPU and in `s`.
pub fn guest_xsetbv(s: &mut FpuState, value: u64) {
    if enabled() && value & !config().mask == 0 && xcr0::valid(value) {
        s.xcr0 = value;
        load_xcr0(value);
    }
}

/// A copy of this CPU's extended state and XCR0 (for checks: the vCPU
/// loaded, if any, keeps running with them); `None` without heap room.
pub fn snapshot() -> Option<FpuState> {
    let live = live_xcr0();
    let mut s = FpuState::new()?;
    let was_ts = super::guest_state::cr0_ts();
    super::guest_state::set_cr0_ts(false);
    // A fresh area, not the one last restored: no `xsaveopt`.
    save_into(&mut s, SaveKind::Full);
    if enabled() {
        load_xcr0(live);
        s.xcr0 = live;
    }
    super::guest_state::set_cr0_ts(was_ts);
    Some(s)
}

/// The XCR0 this CPU holds, read from the CPU (0 without XSAVE).
pub fn live_xcr0() -> u64 {
    if enabled() {
        XCr0::read_raw()
    } else {
        0
    }
}
