//! The shared-info frame stays what it is for the domain's life.
//!
//! The hypervisor writes a domain's shared-info page on its behalf (the
//! upcall mask on every bounce, `cr2` on a page-fault bounce, time), so it
//! must never become anything the guest could forge through those writes.
//! Xen holds its own writable type reference on the page: pinning it as a
//! page table (any level) or using it as a GDT frame is refused with
//! `-EINVAL`, as is exchanging it (`XENMEM_exchange`), and handing it back
//! (`decrease_reservation`) succeeds without changing anything: the
//! reservation count stays, and the page keeps working as shared info
//! (a later #PF still reports its `cr2` there). The pins are tried while
//! the guest has no mapping of the page (its own writable mapping would
//! refuse them anyway), so only the hypervisor's reference stands in the
//! way.
//!
//! @covers: mmuext_op.pin_l1_table mmuext_op.pin_l4_table set_gdt memory_op.decrease_reservation memory_op.exchange
#![no_std]
#![no_main]

use guest_abi::errno::EINVAL;
use guest_abi::hypercall::{hypercall2, SET_GDT};
use guest_abi::memory::{XENMEM_CURRENT_RESERVATION, XENMEM_DECREASE_RESERVATION};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{
    DOMID_SELF, MMUEXT_PIN_L1_TABLE, MMUEXT_PIN_L2_TABLE, MMUEXT_PIN_L3_TABLE, MMUEXT_PIN_L4_TABLE,
    MMUEXT_UNPIN_TABLE,
};
use tests::check;
use tests::fixup::{self, SharedInfo};
use tests::pvmm::{exchange1, extents, memory_op, mmuext1};

guest_abi::pv_guest!(main, name = "shared_info_frame");

fn current_reservation() -> i64 {
    let mut dom = DOMID_SELF;
    memory_op(
        u64::from(XENMEM_CURRENT_RESERVATION),
        core::ptr::addr_of_mut!(dom) as u64,
    )
}

/// Touches an unmapped address and returns the `cr2` the hypervisor
/// reported in the shared-info page.
fn fault_cr2(shared: &SharedInfo, addr: u64) -> Option<u64> {
    matches!(fixup::read(addr), Err(f) if f.vector == 14).then(|| shared.cr2())
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("shared_info_frame");
    let mfn = si.shared_info >> 12;
    if !check!(r, "set_trap_table(#UD, #GP, #PF)", fixup::install() => 0) {
        r.finish()
    }
    for (name, cmd) in [
        ("L1", MMUEXT_PIN_L1_TABLE),
        ("L2", MMUEXT_PIN_L2_TABLE),
        ("L3", MMUEXT_PIN_L3_TABLE),
        ("L4", MMUEXT_PIN_L4_TABLE),
    ] {
        let got = mmuext1(cmd, mfn, 0);
        check!(r, "MMUEXT_PIN_{name}_TABLE of shared info (mfn {mfn:#x}), not mapped",
            got => -EINVAL);
        if got == 0 {
            mmuext1(MMUEXT_UNPIN_TABLE, mfn, 0);
        }
    }
    let frames = [mfn];
    // SAFETY: the hypervisor reads one frame number.
    let got = unsafe { hypercall2(SET_GDT, frames.as_ptr() as u64, 16) };
    check!(r, "set_gdt([shared info], 16)", got => -EINVAL);

    let Some(shared) = SharedInfo::map(si) else {
        r.check("map shared info writable", false);
        r.finish()
    };
    let before = fault_cr2(&shared, 0x1000);
    r.check(
        format_args!("a #PF at 0x1000 reports cr2 in shared info ({before:x?})"),
        before == Some(0x1000),
    );

    let start = current_reservation();
    let (got, nr_exchanged) = exchange1(mfn);
    check!(r, "exchange of shared info for a new frame", got => -EINVAL);
    r.check(
        format_args!("nothing exchanged (nr_exchanged {nr_exchanged})"),
        nr_exchanged == 0,
    );
    check!(r, "current_reservation unchanged", current_reservation() => start);

    let mut list = [mfn];
    let mut res = extents(&mut list, 0);
    let got = memory_op(
        u64::from(XENMEM_DECREASE_RESERVATION),
        core::ptr::addr_of_mut!(res) as u64,
    );
    check!(r, "decrease_reservation of shared info", got => 1);
    check!(r, "current_reservation unchanged", current_reservation() => start);
    let after = fault_cr2(&shared, 0x2000);
    r.check(
        format_args!("shared info still works: a #PF at 0x2000 reports its cr2 ({after:x?})"),
        after == Some(0x2000),
    );
    for (name, cmd) in [("L1", MMUEXT_PIN_L1_TABLE), ("L4", MMUEXT_PIN_L4_TABLE)] {
        check!(r, "MMUEXT_PIN_{name}_TABLE of it afterwards", mmuext1(cmd, mfn, 0) => -EINVAL);
    }
    r.finish()
}
