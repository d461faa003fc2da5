//! `GNTTABOP_transfer`, dom0 transferring frames to itself (Xen 4.17
//! permits transfer for PV domains by default).
//!
//! - A frame of ours with nothing on it goes into an entry that accepts a
//!   transfer from us: the entry then says committed and completed and
//!   names the frame, the frame keeps its contents and is ours as the pfn
//!   the entry named (the M2P says so), the reservation is unchanged.
//! - A frame that is mapped, one that is not ours, a grant frame:
//!   `GNTST_bad_page`, nothing changes (the mapped frame is still mapped
//!   and ours).
//! - Once the frame has left us, every later refusal frees it, as Xen
//!   does: no such domain or `DOMID_SELF` (`GNTST_bad_domain`), a
//!   reference past the table, an entry that does not accept a transfer
//!   or accepts one from another domain or was completed already
//!   (`GNTST_general_error`). Each costs one frame of the reservation and
//!   the frame can no longer be used.
//! - A batch gets a status per element; bad batch pointers are `-EFAULT`.
//!
//! @covers: grant_table_op.transfer
#![no_std]
#![no_main]

use guest_abi::arch::MACH2PHYS_VIRT_START;
use guest_abi::errno::*;
use guest_abi::grant_table::*;
use guest_abi::hypercall::typed;
use guest_abi::memory::XENMEM_CURRENT_RESERVATION;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{DOMID_SELF, MMUEXT_CLEAR_PAGE};
use tests::check;
use tests::expect::BAD_POINTERS;
use tests::grants::{entry, gnt, own_table};
use tests::pvmm::{mmuext1, read_u64, reservation, write_u64, A, P, RW, US};

guest_abi::pv_guest!(main, name = "grant_transfer");

const ME: u16 = 0;
const PATTERN: u64 = 0x7472_616e_7366_6572;
const PFN: u64 = 0x1_2345;

fn op(mfn: u64, domid: u16, gref: u32) -> GnttabTransfer {
    GnttabTransfer {
        mfn,
        domid,
        ref_: gref,
        status: 99,
        ..Default::default()
    }
}

fn transfer(mfn: u64, domid: u16, gref: u32) -> (i64, i16) {
    let mut o = [op(mfn, domid, gref)];
    let rc = gnt(GNTTABOP_TRANSFER, &mut o);
    (rc, o[0].status)
}

fn reserved() -> i64 {
    reservation(XENMEM_CURRENT_RESERVATION)
}

/// Whether `mfn` is still ours: `MMUEXT_CLEAR_PAGE` works only on our
/// own frames (`-EINVAL` otherwise).
fn ours(mfn: u64) -> i64 {
    mmuext1(MMUEXT_CLEAR_PAGE, mfn, 0)
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("grant_transfer");
    let Some((mut env, w)) = own_table(&mut r, si) else {
        r.finish()
    };
    let table = w.va(1);
    let slot = |gref: u64| table + gref * 8;
    let flags_of = |gref: u64| read_u64(slot(gref)) & 0xffff;
    let accept = |gref: u64, domid: u16| {
        write_u64(slot(gref), entry(domid, GTF_ACCEPT_TRANSFER, PFN));
    };
    let before = reserved();
    r.check(format_args!("current reservation {before}"), before > 0);

    // The transfer that works.
    let (_, frame) = env.spare();
    check!(r, "map a spare frame", w.map(3, frame, P | RW | US | A) => 0);
    write_u64(w.va(3), PATTERN);
    check!(r, "unmap it", w.unmap(3) => 0);
    accept(30, ME);
    check!(r, "transfer it into entry 30", transfer(frame, ME, 30) => (0, GNTST_OKAY));
    check!(r, "entry 30 says committed and completed", flags_of(30)
        => u64::from(GTF_ACCEPT_TRANSFER | GTF_TRANSFER_COMMITTED | GTF_TRANSFER_COMPLETED));
    check!(r, "its frame field names the frame", read_u64(slot(30)) >> 32 => frame & 0xffff_ffff);
    check!(r, "the M2P gives the frame the entry's pfn",
        read_u64(MACH2PHYS_VIRT_START + frame * 8) => PFN);
    check!(r, "the reservation is unchanged", reserved() => before);
    check!(r, "map the frame again", w.map(3, frame, P | RW | US | A) => 0);
    check!(r, "it kept its contents", read_u64(w.va(3)) => PATTERN);

    // Refused before the frame leaves: nothing changes.
    accept(31, ME);
    check!(r, "a mapped frame", transfer(frame, ME, 31) => (0, GNTST_BAD_PAGE));
    check!(r, "it is still mapped", read_u64(w.va(3)) => PATTERN);
    check!(r, "entry 31 is untouched", flags_of(31) => u64::from(GTF_ACCEPT_TRANSFER));
    check!(r, "unmap it", w.unmap(3) => 0);
    check!(r, "a frame that is not ours", transfer(0x0fff_ffff, ME, 31) => (0, GNTST_BAD_PAGE));
    let mut frames = [0u64; 1];
    check!(r, "setup_table lists the grant frame",
        tests::control::setup_table(ME, &mut frames) => (0, GNTST_OKAY));
    check!(r, "the grant frame itself", transfer(frames[0], ME, 31) => (0, GNTST_BAD_PAGE));
    check!(r, "the reservation is unchanged", reserved() => before);
    check!(r, "the first frame is still ours", ours(frame) => 0);

    // Refused after the frame left: the frame is gone.
    let cases: [(&str, u16, u32, i16); 6] = [
        ("no such domain", 0x7000, 31, GNTST_BAD_DOMAIN),
        ("DOMID_SELF", DOMID_SELF, 31, GNTST_BAD_DOMAIN),
        ("a reference past the table", ME, 5000, GNTST_GENERAL_ERROR),
        (
            "an entry that grants access instead",
            ME,
            32,
            GNTST_GENERAL_ERROR,
        ),
        (
            "an entry accepting from another domain",
            ME,
            33,
            GNTST_GENERAL_ERROR,
        ),
        ("the completed entry 30", ME, 30, GNTST_GENERAL_ERROR),
    ];
    write_u64(slot(32), entry(ME, GTF_PERMIT_ACCESS, PFN));
    accept(33, 5);
    let mut expected = before;
    for (name, domid, gref, status) in cases {
        let (_, lost) = env.spare();
        check!(r, "{name}", transfer(lost, domid, gref) => (0, status));
        expected -= 1;
        check!(r, "{name}: the frame left the reservation", reserved() => expected);
        check!(r, "{name}: the frame is no longer ours", ours(lost) => -EINVAL);
    }
    check!(r, "entry 31 was never taken", flags_of(31) => u64::from(GTF_ACCEPT_TRANSFER));
    check!(r, "entry 33 was never taken", flags_of(33) => u64::from(GTF_ACCEPT_TRANSFER));

    // A batch: one transfer that works, one of a frame that is not ours.
    let (_, second) = env.spare();
    accept(34, ME);
    let mut batch = [op(second, ME, 34), op(0x0fff_ffff, ME, 31)];
    check!(r, "a batch of two transfers", gnt(GNTTABOP_TRANSFER, &mut batch) => 0);
    check!(r, "each has its status", (batch[0].status, batch[1].status)
        => (GNTST_OKAY, GNTST_BAD_PAGE));
    check!(r, "the first went through", flags_of(34)
        => u64::from(GTF_ACCEPT_TRANSFER | GTF_TRANSFER_COMMITTED | GTF_TRANSFER_COMPLETED));
    check!(r, "its frame is ours", ours(second) => 0);
    for &(name, addr) in BAD_POINTERS {
        // SAFETY: the hypervisor must refuse the address without using it.
        let rc = unsafe { typed::grant_table_op(GNTTABOP_TRANSFER, addr as *mut u8, 1) };
        check!(r, "transfer batch at {name}", rc => -EFAULT);
    }
    check!(r, "the reservation lost only the refused frames", reserved() => expected);
    check!(r, "unmap the grant table", w.unmap(1) => 0);
    r.finish()
}
