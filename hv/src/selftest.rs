//! `selftest=vcpu-switch`: a boot-time check of the vCPU context switch.
//!
//! Before domain 0 first runs, hv gives it a second vCPU and switches the
//! boot CPU from vCPU 0 to vCPU 1 and back with the real save/load code
//! (`domain::vcpu`), with distinct register frames, FPU/SSE contents, FS
//! and GS bases and CR0.TS on each side, and, when hv manages AVX state,
//! YMM0's upper half and XCR0: vCPU 0 runs with AVX enabled, vCPU 1 starts
//! as a new vCPU does (x87|SSE, YMM zero) and enables it while it runs. Every value must come back as it
//! was and none may leak into the other vCPU. The result is one log line;
//! a failure stops boot naming the check. The conformance guest
//! `vcpu_switch` boots with the option and then runs normally on vCPU 0.

use guest_abi::types::VcpuId;
use hv::xcr0;

use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::guest_state;
use crate::arch::x86_64::xstate::{self, FpuState};
use crate::domain::{vcpu, Domain, Vcpu, VcpuRun};

/// A vCPU's extended state with XMM0 filled with `xmm0`, and, when hv
/// manages AVX state and `ymm0_hi` is given, YMM0's upper half filled
/// with it and XCR0 = x87|SSE|AVX.
fn state_with(xmm0: u8, ymm0_hi: Option<u8>) -> FpuState {
    let mut s = FpuState::new()
        .unwrap_or_else(|| crate::fatal(format_args!("selftest: no heap for an XSAVE area")));
    s.set_xmm(0, [xmm0; 16]);
    if let Some(y) = ymm0_hi {
        if s.set_ymm_hi(0, [y; 16]) {
            s.set_xcr0(xcr0::X87 | xcr0::SSE | xcr0::YMM);
        }
    }
    s
}

/// What the CPU holds now: XMM0, YMM0's upper half (zeros without AVX)
/// and XCR0.
fn live() -> ([u8; 16], [u8; 16], u64) {
    let s = xstate::snapshot()
        .unwrap_or_else(|| crate::fatal(format_args!("selftest: no heap for an XSAVE area")));
    (
        s.xmm(0),
        s.ymm_hi(0).unwrap_or([0; 16]),
        xstate::live_xcr0(),
    )
}

/// The running vCPU changes its extended state to `s` (and its XCR0 to
/// `s`'s, as its `xsetbv` would).
fn run_with(v: &mut Vcpu, s: &FpuState) {
    if s.xcr0() != v.fpu.xcr0() {
        xstate::guest_xsetbv(&mut v.fpu, s.xcr0());
    }
    let was_ts = guest_state::cr0_ts();
    guest_state::set_cr0_ts(false);
    xstate::restore(s);
    guest_state::set_cr0_ts(was_ts);
}

struct Checks(u32);

impl Checks {
    fn check(&mut self, what: &str, ok: bool) {
        if !ok {
            crate::fatal(format_args!("selftest: vCPU switch: {what}"));
        }
        self.0 += 1;
    }
}

/// Runs the switch test on `dom0` (not yet registered) and returns it with
/// its second vCPU (left down) and vCPU 0 as it was built.
pub fn vcpu_switch(dom0: Domain) -> Domain {
    let (cr3, regs0) = dom0
        .with_vcpu(VcpuId::new(0), |v| (v.cr3, v.regs))
        .unwrap_or_else(|| crate::fatal(format_args!("selftest: domain 0 has no vCPU 0")));
    let new_vcpu = |id, regs, info| {
        Vcpu::new(VcpuId::new(id), cr3, regs, info)
            .unwrap_or_else(|| crate::fatal(format_args!("selftest: no vCPU window left")))
    };
    let info = |offset| {
        crate::mm::WritableRef::take(dom0.shared_info.mfn(), dom0.id.get())
            .ok()
            .and_then(|r| crate::mm::VcpuInfoRef::new(r, offset).ok())
            .unwrap_or_else(|| crate::fatal(format_args!("selftest: no vcpu_info reference")))
    };
    let mut v0 = new_vcpu(0, regs0, info(0));
    let regs1 = GuestRegs {
        rax: 0x1111,
        rip: regs0.rip.wrapping_add(0x10),
        ..regs0
    };
    let mut v1 = new_vcpu(1, regs1, info(64));
    // vCPU 1 starts as a new vCPU does (x87|SSE, YMM zero) but for XMM0.
    v1.fpu.set_xmm(0, [0xbb; 16]);
    let avx = xstate::config().ymm_offset != 0;
    let (x87_sse, with_avx) = (xcr0::PV_INITIAL, xcr0::PV_INITIAL | xcr0::YMM);
    v1.traps.fs_base = 0xb000;
    v1.traps.gs_base_kernel = 0xb100;
    v1.traps.gs_base_user = 0xb200;

    let mut c = Checks(0);
    // vCPU 0 "runs": its live state is A.
    let _ = vcpu::load(&mut v0);
    run_with(&mut v0, &state_with(0xaa, Some(0xa5)));
    let _ = guest_state::write_fs_base(0xa000);
    let _ = guest_state::write_gs_base(0xa100);
    let _ = guest_state::write_inactive_gs_base(0xa200);
    guest_state::set_cr0_ts(true);
    let frame0 = GuestRegs {
        rax: 0xaaaa,
        r15: 0xa15,
        ..regs0
    };

    vcpu::save(&mut v0, &frame0);
    c.check(
        "vCPU 0's registers saved",
        v0.regs.rax == 0xaaaa && v0.regs.r15 == 0xa15,
    );
    c.check("vCPU 0's XMM0 saved", v0.fpu.xmm(0) == [0xaa; 16]);
    if avx {
        c.check(
            "vCPU 0's YMM0 upper half saved",
            v0.fpu.ymm_hi(0) == Some([0xa5; 16]),
        );
        c.check("vCPU 0's XCR0 saved", v0.fpu.xcr0() == with_avx);
        c.check(
            "hv's XCR0 while no vCPU is loaded",
            xstate::live_xcr0() == xstate::config().mask,
        );
    }
    c.check("vCPU 0's FS base saved", v0.traps.fs_base == 0xa000);
    c.check(
        "vCPU 0's GS bases saved",
        v0.traps.gs_base_kernel == 0xa100 && v0.traps.gs_base_user == 0xa200,
    );
    c.check("vCPU 0's CR0.TS saved", v0.traps.virtual_ts);

    let frame1 = vcpu::load(&mut v1);
    c.check(
        "vCPU 1's registers loaded",
        frame1.rax == 0x1111 && frame1.rip == regs1.rip,
    );
    let (xmm0, ymm0_hi, live_xcr0) = live();
    c.check("vCPU 1's XMM0 loaded", xmm0 == [0xbb; 16]);
    if avx {
        c.check(
            "vCPU 1's YMM0 upper half loaded (zero: none of vCPU 0's)",
            ymm0_hi == [0; 16],
        );
        c.check("vCPU 1's XCR0 loaded (x87|SSE)", live_xcr0 == x87_sse);
    }
    c.check("vCPU 1's CR0.TS loaded (clear)", !guest_state::cr0_ts());
    let (fs, gs, inactive) = guest_state::read_bases();
    c.check(
        "vCPU 1's segment bases loaded",
        (fs, gs, inactive) == (0xb000, 0xb100, 0xb200),
    );
    // vCPU 1 runs and changes its state, enabling AVX.
    run_with(&mut v1, &state_with(0xcc, Some(0xc5)));
    let _ = guest_state::write_fs_base(0xc000);
    let frame1 = GuestRegs {
        rbx: 0xcccc,
        ..frame1
    };
    vcpu::save(&mut v1, &frame1);

    let back = vcpu::load(&mut v0);
    c.check(
        "vCPU 0's registers back",
        back.rax == 0xaaaa && back.r15 == 0xa15,
    );
    let (xmm0, ymm0_hi, live_xcr0) = live();
    c.check("vCPU 0's XMM0 back", xmm0 == [0xaa; 16]);
    if avx {
        c.check("vCPU 0's YMM0 upper half back", ymm0_hi == [0xa5; 16]);
        c.check("vCPU 0's XCR0 back", live_xcr0 == with_avx);
    }
    c.check("vCPU 0's CR0.TS back (set)", guest_state::cr0_ts());
    let (fs, gs, inactive) = guest_state::read_bases();
    c.check(
        "vCPU 0's segment bases back",
        (fs, gs, inactive) == (0xa000, 0xa100, 0xa200),
    );
    c.check(
        "vCPU 1 kept its own state",
        v1.regs.rbx == 0xcccc && v1.fpu.xmm(0) == [0xcc; 16] && v1.traps.fs_base == 0xc000,
    );
    if avx {
        c.check(
            "vCPU 1 kept its YMM0 upper half and XCR0",
            v1.fpu.ymm_hi(0) == Some([0xc5; 16]) && v1.fpu.xcr0() == with_avx,
        );
    }

    // Leave the CPU holding no vCPU: domain 0's own vCPU 0 is loaded when
    // it is entered.
    vcpu::save(&mut v0, &frame0);
    v1.run = VcpuRun::Down;
    if avx {
        crate::hvlog!(
            info,
            "selftest: vCPU switch 0 -> 1 -> 0 kept registers, FPU/SSE/AVX state, XCR0, FS/GS bases and CR0.TS ({} checks)",
            c.0
        );
    } else {
        crate::hvlog!(
            info,
            "selftest: vCPU switch 0 -> 1 -> 0 kept registers, FPU/SSE, FS/GS bases and CR0.TS ({} checks; no AVX state to check)",
            c.0
        );
    }
    dom0.add_vcpu(v1)
        .unwrap_or_else(|e| crate::fatal(format_args!("selftest: adding vCPU 1: {e}")))
}
