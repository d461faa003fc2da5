//! `x86_decode`: the privileged-instruction decoder; `segdesc`: the
//! descriptor checks of `set_gdt`/`update_descriptor`; `pv_cpuid`: the PV
//! CPUID policy over a host CPU the input describes.

use crate::input::Input;
use hv::pv_cpuid::{pv_cpuid as cpuid, Context, XEN_LEAF_BASE, XEN_VERSION};
use hv::segdesc::{check_descriptor, FIRST_RESERVED_GDT_ENTRY};
use hv::x86_decode::{
    decode, int_n, is_forced_cpuid, DecodeError, Insn, FORCED_CPUID, MAX_INSN_LEN,
};

/// Input: the bytes at the guest's `rip`.
pub fn x86_decode(data: &[u8]) {
    let got = decode(data);
    if let Ok(d) = got {
        assert!(
            (1..=MAX_INSN_LEN).contains(&d.len) && d.len <= data.len(),
            "{d:?}"
        );
        // Only the instruction's own bytes decide.
        assert_eq!(decode(&data[..d.len]), got);
        let mut longer = data[..d.len].to_vec();
        longer.extend_from_slice(&[0x0f; MAX_INSN_LEN]);
        assert_eq!(decode(&longer), got);
        // x86 encodings are prefix-free: no proper prefix is complete.
        for short in 0..d.len {
            assert_eq!(decode(&data[..short]), Err(DecodeError::Truncated), "{d:?}");
        }
        match d.insn {
            Insn::In { size, .. }
            | Insn::Out { size, .. }
            | Insn::Ins { size, .. }
            | Insn::Outs { size, .. } => assert!(matches!(size, 1 | 2 | 4), "{d:?}"),
            Insn::MovFromCr { gpr, .. } | Insn::MovToCr { gpr, .. } => assert!(gpr < 16),
            _ => {}
        }
    } else if data.len() >= MAX_INSN_LEN {
        // More bytes cannot help.
        assert_eq!(decode(&data[..MAX_INSN_LEN]), got);
    }
    if let Some(n) = int_n(data) {
        assert_eq!(data.get(..2), Some([0xcd, n].as_slice()));
    }
    assert_eq!(is_forced_cpuid(data), data.starts_with(&FORCED_CPUID));
}

const P: u64 = 1 << 47;
const S: u64 = 1 << 44;
const DPL: u64 = 3 << 45;
const TYPE: u64 = 0xf << 40;

/// Input: descriptors, 8 bytes each.
pub fn segdesc(data: &[u8]) {
    for chunk in data.chunks(8) {
        let mut raw = [0u8; 8];
        raw[..chunk.len()].copy_from_slice(chunk);
        let d = u64::from_le_bytes(raw);
        let Some(f) = check_descriptor(d) else {
            // Only present system descriptors other than type 0 are refused.
            assert!(d & P != 0 && d & S == 0 && d & TYPE != 0, "{d:#x} refused");
            continue;
        };
        assert_eq!(
            check_descriptor(f),
            Some(f),
            "{d:#x} -> {f:#x} is not stable"
        );
        // Only the DPL and a call gate's selector RPL may change.
        assert_eq!((d ^ f) & !(DPL | (3 << 16)), 0, "{d:#x} -> {f:#x}");
        if f & P == 0 || (f & S == 0 && f & TYPE == 0) {
            assert_eq!(f, d);
        } else if f & S != 0 {
            assert_eq!(f & DPL, DPL, "{d:#x} -> {f:#x}: code/data below DPL 3");
        } else {
            // A 64-bit call gate, unusable without hv (DPL 0), to a
            // selector the guest owns, with the requested DPL in its RPL.
            assert_eq!(f & TYPE, 0xc << 40, "{d:#x} -> {f:#x}");
            assert_eq!(f & DPL, 0);
            let sel = (f >> 16) & 0xffff;
            assert_eq!(sel & 3, 3);
            assert!(
                sel >> 3 < u64::from(FIRST_RESERVED_GDT_ENTRY) || sel & 4 != 0 || sel == 0xe033,
                "{d:#x} -> {f:#x}"
            );
        }
    }
}

const INTEL: [u32; 3] = [0x756e_6547, 0x6c65_746e, 0x4965_6e69]; // ebx ecx edx
const AMD: [u32; 3] = [0x6874_7541, 0x444d_4163, 0x6974_6e65];

/// Input: a host CPU (vendor, maximum leaves and up to 24 leaves' values),
/// the vCPU's context, then the leaves to ask for.
pub fn pv_cpuid(data: &[u8]) {
    let mut input = Input::new(data);
    let odd = [input.u32(), 0, 0];
    let vendor = input.pick(&[INTEL, AMD, odd]);
    let any = input.u32();
    let max_basic = input.pick(&[0xd, 0x20, 1, 7, any]);
    let any = input.u32();
    let max_extd = input.pick(&[0x8000_0008, 0x8000_0021, 0x8000_0028, any]);
    let mut leaves = vec![
        ((0, 0), [max_basic, vendor[0], vendor[1], vendor[2]]),
        ((0x8000_0000, 0), [max_extd, 0, 0, 0]),
    ];
    for _ in 0..input.below(24) {
        let leaf = input.pick(&[1, 5, 6, 7, 0xb, 0xd, 0x8000_0001, 0x8000_0008, 0x8000_0021]);
        let sub = u32::from(input.below(4)) * u32::from(input.bool())
            + u32::from(input.below(64)) * u32::from(input.below(8) == 0);
        let v = [input.u32(), input.u32(), input.u32(), input.u32()];
        leaves.push(((leaf, sub), v));
    }
    let host_fn = move |leaf: u32, sub: u32| {
        // As on a real CPU, only leaves with subleaves look at ecx.
        let sub = if matches!(leaf, 7 | 0xb | 0xd) {
            sub
        } else {
            0
        };
        leaves
            .iter()
            .rev()
            .find(|(k, _)| *k == (leaf, sub))
            .map_or([0; 4], |&(_, v)| v)
    };
    let host: hv::pv_cpuid::HostCpuid<'_> = &host_fn;
    let ctx = Context {
        hardware_domain: input.bool(),
        kernel_mode: input.bool(),
        forced: input.bool(),
        guest_cr4: input.u64(),
        host_osxsave: input.bool(),
        tsc_khz: input.u32(),
        host_rdtscp: input.bool(),
        machine_address_bits: input.u32(),
        xcr0: input.u64(),
    };
    let mut asks = vec![(0, 0), (1, 0), (7, 0), (0xd, 0), (0xd, 1), (0x8000_0001, 0)];
    while !input.is_empty() {
        let leaf = match input.below(4) {
            0 => input.u32(),
            1 => XEN_LEAF_BASE + u32::from(input.below(8)),
            2 => 0x8000_0000 + u32::from(input.below(0x30)),
            _ => u32::from(input.below(0x20)),
        };
        asks.push((leaf, u32::from(input.below(70))));
    }
    for (leaf, sub) in asks {
        let r = cpuid(leaf, sub, host, &ctx);
        assert_eq!(cpuid(leaf, sub, host, &ctx), r);
        let h = host(leaf, sub);
        let ctx_s = || format!("leaf {leaf:#x}.{sub}: {r:#x?} from {h:#x?}");
        match leaf {
            0 => assert!(r[0] <= 0xd, "{}", ctx_s()),
            1 => {
                // (A host without leaf 1 gets zeros, HYPERVISOR bit and all.)
                let has_leaf_1 = host(0, 0)[0] >= 1;
                assert!(!has_leaf_1 || r[2] & (1 << 31) != 0, "no HYPERVISOR bit");
                assert_eq!(r[1] >> 24, 0, "APIC id shown");
                assert_eq!(r[2] & (1 << 5), 0, "VMX shown");
                let own = (1 << 31) | (1 << 27);
                assert_eq!(r[2] & !own & !h[2], 0, "{}", ctx_s());
                assert_eq!(r[3] & !h[3], 0, "{}", ctx_s());
            }
            7 if sub == 0 => {
                assert_eq!(
                    r[3] & ((1 << 26) | (1 << 27) | (1 << 31)),
                    0,
                    "SPEC_CTRL shown"
                );
                assert_eq!(r[1] & !h[1], 0, "{}", ctx_s());
                assert_eq!(r[3] & !h[3], 0, "{}", ctx_s());
            }
            0xd if sub == 0 => {
                // Only components the host has; the size for the vCPU's
                // XCR0 never exceeds the size for all of them.
                assert_eq!(r[0] & !h[0], 0, "{}", ctx_s());
                assert_eq!(r[3] & !h[3], 0, "{}", ctx_s());
                assert!(r[1] <= r[2], "{}", ctx_s());
            }
            0x8000_0008 => assert_eq!(r[1] & (1 << 14), 0, "IBRS shown"),
            l if l == XEN_LEAF_BASE => {
                assert_eq!(
                    r,
                    [XEN_LEAF_BASE + 5, 0x566e_6558, 0x6558_4d4d, 0x4d4d_566e]
                );
            }
            l if l == XEN_LEAF_BASE + 1 => assert_eq!(r[0], XEN_VERSION),
            0xe..=0x3fff_ffff | 0x4000_0200..=0x7fff_ffff | 0x8000_0022.. => {
                assert_eq!(r, [0; 4], "{}", ctx_s())
            }
            _ => {}
        }
    }
}
