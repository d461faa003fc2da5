//! A guest's own loads and stores in the hypervisor's LDT window are
//! ordinary page faults at the address touched, with or without an LDT.
//!
//! Xen maps a PV vCPU's LDT pages on demand in its per-domain area (L4 slot
//! 260), but only for the CPU's own descriptor reads: implicit supervisor
//! accesses, which carry no user bit in the error code even from ring 3.
//! Any other fault there (a guest `mov` from the window) is delivered to
//! the guest as #PF with `cr2` = the address it touched. The probes cover
//! hv's LDT area (the start of slot 260) and Xen's (64 KiB further), before
//! an LDT exists and after one was set and its page demand-mapped by a
//! segment load: a hypervisor that took every fault there for an LDT miss
//! reports a wrong `cr2` in the first case and, in the second, maps the
//! page and retries the same protection fault for ever.
//!
//! @covers: mmuext_op.set_ldt
#![no_std]
#![no_main]

use core::arch::asm;

use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{MMUEXT_CLEAR_PAGE, MMUEXT_SET_LDT};
use tests::check;
use tests::fixup::{self, SharedInfo};
use tests::pvmm::{mmuext1, pt_write, Env, Window, A, P, US};

guest_abi::pv_guest!(main, name = "ldt_window");

const KRO: u64 = P | US | A;
/// L4 slot 260: hv's LDT area starts here; Xen's vCPU 0 GDT area too,
/// with its LDT 64 KiB further.
const SLOT_260: u64 = 0xffff_8200_0000_0000;
const PROBES: [u64; 5] = [
    SLOT_260,
    SLOT_260 + 0x8,
    SLOT_260 + 0x1ff8,
    SLOT_260 + 0x1_0000,
    SLOT_260 + 0x1_0008,
];
/// A data segment, DPL 0 (Xen raises it to 3), base 0, 4 GiB.
const DATA: u64 = 0x00cf_9300_0000_ffff;

fn probe_all(r: &mut Report, shared: &SharedInfo, when: &str) {
    for &addr in &PROBES {
        let got = fixup::read(addr);
        let cr2 = shared.cr2();
        r.check(
            format_args!(
                "{when}: load from {addr:#x} is #PF with cr2 = it (got {got:x?}, cr2 {cr2:#x})"
            ),
            matches!(got, Err(f) if f.vector == 14) && cr2 == addr,
        );
        // SAFETY: the target is hypervisor memory the guest cannot
        // reach; the write faults.
        let got = unsafe { fixup::write(addr, 0x5a5a) };
        let cr2 = shared.cr2();
        r.check(
            format_args!(
                "{when}: store to {addr:#x} is #PF with cr2 = it (got {got:x?}, cr2 {cr2:#x})"
            ),
            matches!(got, Err(f) if f.vector == 14) && cr2 == addr,
        );
    }
}

fn null_fs() {
    // SAFETY: the null selector always loads.
    unsafe { asm!("mov fs, {z:e}", z = in(reg) 0u32) };
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("ldt_window");
    if !check!(r, "set_trap_table(#UD, #GP, #PF)", fixup::install() => 0) {
        r.finish()
    }
    let Some(shared) = SharedInfo::map(si) else {
        r.check("map shared info", false);
        r.finish()
    };
    probe_all(&mut r, &shared, "no LDT");

    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(w) = Window::new(&mut r, &mut env) else {
        r.finish()
    };
    let l = env.spare().1;
    check!(r, "MMUEXT_CLEAR_PAGE ldt frame", mmuext1(MMUEXT_CLEAR_PAGE, l, 0) => 0);
    check!(r, "raw write ldt[1] = data segment", pt_write((l << 12) + 8, DATA) => 0);
    check!(r, "map it read-only", w.map(2, l, KRO) => 0);
    check!(r, "SET_LDT(va, 2)", mmuext1(MMUEXT_SET_LDT, w.va(2), 2) => 0);
    let got = fixup::load_fs(0x0f);
    r.check(
        format_args!("mov %fs, 0x0f loads (the LDT page is mapped now) ({got:x?})"),
        got.is_ok(),
    );
    probe_all(&mut r, &shared, "LDT set");
    null_fs();
    check!(r, "SET_LDT(0, 0)", mmuext1(MMUEXT_SET_LDT, 0, 0) => 0);
    r.finish()
}
