//! Boot-time self-tests: `selftest=vcpu-switch` (below) and
//! `selftest=smp` ([`smp`]).
//!
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

use core::sync::atomic::{AtomicU64, Ordering};

use hv::smp::CpuMask;

use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::guest_state;
use crate::arch::x86_64::mm as tlb;
use crate::arch::x86_64::percpu::MAX_CPUS;
use crate::arch::x86_64::xstate::{self, FpuState};
use crate::arch::x86_64::{ipi, smp};
use crate::domain::{vcpu, Domain, Vcpu, VcpuRun};
use crate::mm::page_table;

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
    let mut loaded = GuestRegs::default();
    vcpu::load(&mut v0, &mut loaded);
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

    let mut frame1 = GuestRegs::default();
    vcpu::load(&mut v1, &mut frame1);
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

    let mut back = GuestRegs::default();
    vcpu::load(&mut v0, &mut back);
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

/// `selftest=smp`: every CPU answers a call-function IPI with its own
/// identity, and a shootdown reaches a CPU that cached a translation.
///
/// The call: [`ipi::call_on`] runs a function on every online CPU (this
/// one directly, the others by IPI) that records, in the slot of the CPU
/// number its stack names, the APIC id its own local APIC reports; each
/// slot must hold the id that CPU reported at bring-up, and no other
/// slot may be written. Each other CPU takes an event check, and answers
/// a call while it spins on a lock the caller holds (hv's lock waits
/// serve IPIs: without that, the two would wait for each other for ever).
///
/// The shootdown, with each other CPU in turn as A and this CPU as B: a
/// spare vCPU window's first GDT page maps frame X (holding one word); A
/// reads the page by IPI, caching the translation; B maps frame Y there
/// instead (flushing only its own TLB), shoots down every other CPU as a
/// frame changing type does (`arch::x86_64::mm::shoot_down`, which
/// `flush_stale` calls), then A reads again and must see Y's word. Whether
/// A still saw X before the shootdown is reported, not checked (a TLB may
/// drop an entry whenever it likes). A failure stops boot naming it.
pub fn smp() {
    let online = smp::online();
    let me = crate::arch::x86_64::percpu::cpu_id();
    for a in &ANSWERS {
        a.store(0, Ordering::Relaxed);
    }
    ipi::call_on(online, answer, 0);
    for (cpu, answer) in ANSWERS.iter().enumerate() {
        let got = answer.load(Ordering::Relaxed);
        let want = if online.contains(cpu) {
            ANSWERED | u64::from(smp::apic_id_of(cpu))
        } else {
            0
        };
        if got != want {
            crate::fatal(format_args!(
                "selftest: SMP: CPU{cpu} answered {got:#x}, expected {want:#x}"
            ));
        }
    }
    // The event check: each other CPU takes the interrupt (within 1 s).
    let others = online.without(me);
    let before: [u64; MAX_CPUS] = core::array::from_fn(ipi::event_checks);
    ipi::event_check(online);
    for cpu in others.iter() {
        let mut waited = 0;
        while ipi::event_checks(cpu) == before[cpu] {
            if waited == 1000 {
                crate::fatal(format_args!("selftest: SMP: CPU{cpu} took no event check"));
            }
            crate::arch::x86_64::apic::delay_ms(1);
            waited += 1;
        }
    }
    // A CPU spinning on a lock held by a caller still answers its call.
    for cpu in others.iter() {
        let held = TEST_LOCK.lock();
        SPINNING.store(0, Ordering::Relaxed);
        smp::post_idle_job(cpu, take_test_lock, 0);
        ipi::event_check(CpuMask::one(cpu));
        let mut waited = 0;
        while SPINNING.load(Ordering::Acquire) != 1 {
            if waited == 1000 {
                crate::fatal(format_args!(
                    "selftest: SMP: CPU{cpu} did not run its idle job"
                ));
            }
            crate::arch::x86_64::apic::delay_ms(1);
            waited += 1;
        }
        crate::arch::x86_64::apic::delay_ms(1);
        ANSWERS[cpu].store(0, Ordering::Relaxed);
        ipi::call_on(CpuMask::one(cpu), answer, 0);
        if ANSWERS[cpu].load(Ordering::Relaxed) != ANSWERED | u64::from(smp::apic_id_of(cpu)) {
            crate::fatal(format_args!(
                "selftest: SMP: CPU{cpu} spinning on a lock answered wrong"
            ));
        }
        drop(held);
        while SPINNING.load(Ordering::Acquire) != 2 {
            core::hint::spin_loop();
        }
    }
    let area = page_table::alloc_vcpu_area()
        .unwrap_or_else(|| crate::fatal(format_args!("selftest: no vCPU window left")));
    let frames = crate::mm::alloc_contiguous(2, 1)
        .unwrap_or_else(|| crate::fatal(format_args!("selftest: no frames")));
    const OLD: u64 = 0x01d_f4a3e;
    const NEW: u64 = 0x4e3_f4a3e;
    if frames.write_u64(0, OLD).is_err() || frames.write_u64(PAGE, NEW).is_err() {
        crate::fatal(format_args!("selftest: frames unwritable"));
    }
    let va = area.gdt();
    let map = |mfn: Option<u64>| {
        area.set_gdt_page(0, mfn)
            .unwrap_or_else(|_| crate::fatal(format_args!("selftest: window unmappable")))
    };
    let mut stale = 0;
    for a in others.iter() {
        map(Some(frames.first()));
        let read = |cpu: usize| {
            ipi::call_on(CpuMask::one(cpu), probe, va);
            ANSWERS[cpu].load(Ordering::Relaxed)
        };
        let before = read(a);
        if before != OLD {
            crate::fatal(format_args!(
                "selftest: shootdown: CPU{a} read {before:#x} through the window, expected {OLD:#x}"
            ));
        }
        map(Some(frames.first() + 1));
        if read(a) == OLD {
            stale += 1;
        }
        tlb::shoot_down(online);
        let after = read(a);
        if after != NEW {
            crate::fatal(format_args!(
                "selftest: shootdown: CPU{a} read {after:#x} after the shootdown, expected {NEW:#x}"
            ));
        }
    }
    // Unmapped and shot down before the window and frames go back.
    map(None);
    tlb::shoot_down(online);
    page_table::free_vcpu_area(area);
    drop(frames);
    crate::hvlog!(
        info,
        "selftest: SMP: {} CPUs answered a call-function IPI with their own APIC ids, the others took an event check and answered while spinning on a held lock; a shootdown reached each of the {} others ({} still saw the old frame before it)",
        online.count(),
        online.count() - 1,
        stale
    );
}

/// What each CPU answered (`ANSWERED` | its APIC id, or a probed word).
static ANSWERS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
const ANSWERED: u64 = 1 << 63;
const PAGE: u64 = 4096;

/// The lock an AP spins on while the boot CPU, holding it, calls it.
static TEST_LOCK: crate::sync::Ordered<()> =
    crate::sync::Ordered::new(crate::sync::Level::DomainTable, ());
/// 1: the AP is about to wait for `TEST_LOCK`; 2: it had it.
static SPINNING: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

fn take_test_lock(_: u64) {
    SPINNING.store(1, Ordering::Release);
    let g = TEST_LOCK.lock();
    drop(g);
    SPINNING.store(2, Ordering::Release);
}

fn answer(_: u64) {
    let cpu = crate::arch::x86_64::percpu::cpu_id();
    ANSWERS[cpu].store(
        ANSWERED | u64::from(crate::arch::x86_64::apic::apic_id()),
        Ordering::Relaxed,
    );
}

fn probe(va: u64) {
    let cpu = crate::arch::x86_64::percpu::cpu_id();
    ANSWERS[cpu].store(tlb::probe_gdt_window(va), Ordering::Relaxed);
}
