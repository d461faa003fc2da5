//! `selftest=vcpu-switch`: a boot-time check of the vCPU context switch.
//!
//! Before domain 0 first runs, hv gives it a second vCPU and switches the
//! boot CPU from vCPU 0 to vCPU 1 and back with the real save/load code
//! (`domain::vcpu`), with distinct register frames, FPU/SSE contents, FS
//! and GS bases and CR0.TS on each side. Every value must come back as it
//! was and none may leak into the other vCPU. The result is one log line;
//! a failure stops boot naming the check. The conformance guest
//! `vcpu_switch` boots with the option and then runs normally on vCPU 0.

use guest_abi::types::VcpuId;

use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::guest_state::{self, FpuArea};
use crate::domain::{vcpu, Domain, Vcpu, VcpuRun};

/// Offset of XMM0 in the `fxsave` layout.
const XMM0: usize = 160;

fn area_with_xmm0(pattern: u8) -> FpuArea {
    let mut a = FpuArea::initial();
    a.0[XMM0..XMM0 + 16].fill(pattern);
    a
}

fn live_xmm0() -> [u8; 16] {
    let was_ts = guest_state::cr0_ts();
    guest_state::set_cr0_ts(false);
    let mut a = FpuArea::initial();
    guest_state::fpu_save(&mut a);
    guest_state::set_cr0_ts(was_ts);
    let mut x = [0u8; 16];
    x.copy_from_slice(&a.0[XMM0..XMM0 + 16]);
    x
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
    v1.fpu = area_with_xmm0(0xbb);
    v1.traps.fs_base = 0xb000;
    v1.traps.gs_base_kernel = 0xb100;
    v1.traps.gs_base_user = 0xb200;

    let mut c = Checks(0);
    // vCPU 0 "runs": its live state is A.
    let _ = vcpu::load(&mut v0);
    guest_state::fpu_restore(&area_with_xmm0(0xaa));
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
    c.check(
        "vCPU 0's XMM0 saved",
        v0.fpu.0[XMM0..XMM0 + 16] == [0xaa; 16],
    );
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
    c.check("vCPU 1's XMM0 loaded", live_xmm0() == [0xbb; 16]);
    c.check("vCPU 1's CR0.TS loaded (clear)", !guest_state::cr0_ts());
    let (fs, gs, inactive) = guest_state::read_bases();
    c.check(
        "vCPU 1's segment bases loaded",
        (fs, gs, inactive) == (0xb000, 0xb100, 0xb200),
    );
    // vCPU 1 runs and changes its state.
    guest_state::fpu_restore(&area_with_xmm0(0xcc));
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
    c.check("vCPU 0's XMM0 back", live_xmm0() == [0xaa; 16]);
    c.check("vCPU 0's CR0.TS back (set)", guest_state::cr0_ts());
    let (fs, gs, inactive) = guest_state::read_bases();
    c.check(
        "vCPU 0's segment bases back",
        (fs, gs, inactive) == (0xa000, 0xa100, 0xa200),
    );
    c.check(
        "vCPU 1 kept its own state",
        v1.regs.rbx == 0xcccc
            && v1.fpu.0[XMM0..XMM0 + 16] == [0xcc; 16]
            && v1.traps.fs_base == 0xc000,
    );

    // Leave the CPU holding no vCPU: domain 0's own vCPU 0 is loaded when
    // it is entered.
    vcpu::save(&mut v0, &frame0);
    v1.run = VcpuRun::Down;
    crate::hvlog!(
        info,
        "selftest: vCPU switch 0 -> 1 -> 0 kept registers, FPU/SSE, FS/GS bases and CR0.TS ({} checks)",
        c.0
    );
    dom0.add_vcpu(v1)
}
