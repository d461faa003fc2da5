//! Grant copies both ways and a transfer between dom0 and a running domU.
//!
//! dom0 grants a page of its own to a domU (`tests::domu`) and offers two
//! entries accepting a transfer from it; it gives the domU two more frames
//! (populated for it, the first written through a foreign mapping), and
//! makes room for exactly one more frame in its own reservation (it gives
//! a frame back: dom0's reservation is at its maximum). The domU,
//! running, makes one `GNTTABOP_copy` batch and one `GNTTABOP_transfer`
//! batch and powers off:
//! - copy dom0's granted page into its own data page (source by grant);
//! - copy a word of its data page into dom0's page (destination by grant);
//! - a hostile element: dom0's page named by frame number, not by grant
//!   (`GNTST_permission_denied`, nothing written);
//! - transfer its first extra frame into dom0's entry;
//! - transfer the second: dom0 has no room left (`GNTST_general_error`,
//!   the frame is freed as on Xen, dom0's second entry untouched);
//! - a hostile element: transfer dom0's page, which is not its own
//!   (`GNTST_bad_page`).
//!
//! dom0 then sees: the bytes on both sides, its grant no longer in use,
//! the transferred frame its own with the domU's contents, as the pfn its
//! entry named (M2P), its reservation one frame up and the domU's two
//! down. It destroys the domU and gives the frame back: hv's free pages
//! are exactly where they were before the domU was built.
//!
//! @covers: grant_table_op.copy grant_table_op.transfer
#![no_std]
#![no_main]

use guest_abi::arch::MACH2PHYS_VIRT_START;
use guest_abi::domctl::*;
use guest_abi::grant_table::*;
use guest_abi::memory::XENMEM_CURRENT_RESERVATION;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use tests::check;
use tests::control::{check_free_back, free_pages, idle_10ms, populate, XEN_SLACK};
use tests::domu::{
    build, code_between, context, get_value, info, put_value, set_window_page, simple, vcpucontext,
    DATA_VA, HCALL_VA,
};
use tests::grants::{by_frame, by_ref, copy_op, entry};
use tests::pvmm::{decrease, read_u64, reservation, write_u64, A, D, P, RW, US};

guest_abi::pv_guest!(main, name = "grant_domu_copy");

const PATTERN: u64 = 0x636f_7079_2d66_726f;
const PATTERN2: u64 = 0x6d2d_6465_6d6f_6e21;
const WRITTEN: u64 = 0x6261_636b_2d74_6f30;
const GIFT: u64 = 0x6769_6674_2d66_726d;
/// dom0's entries: the page it grants, the one accepting a transfer.
const GREF: u32 = 9;
const GREF_T: u32 = 10;
const GREF_T2: u32 = 11;
/// The pfn dom0's transfer entry names.
const PFN: u64 = 0x2_3456;
/// dom0's window pages: its grant table, its granted page, the gift.
const W_TABLE: u64 = 20;
const W_PAGE: u64 = 21;
const W_GIFT: u64 = 22;

// The domU: a copy batch of 3 at DATA+0x400 (result at DATA+0x20), a
// transfer batch of 3 at DATA+0x600 (result at DATA+0x28), then power
// off (the shutdown reason at DATA+0x10 is 0).
core::arch::global_asm!(
    ".pushsection .rodata.grant_domu_copy,\"a\"",
    ".global grant_domu_copy_start",
    ".global grant_domu_copy_end",
    "grant_domu_copy_start:",
    "mov edi, 5",
    "mov rsi, {data} + 0x400",
    "mov edx, 3",
    "mov eax, 20",
    "syscall",
    "mov qword ptr [{data} + 0x20], rax",
    "mov edi, 4",
    "mov rsi, {data} + 0x600",
    "mov edx, 3",
    "mov eax, 20",
    "syscall",
    "mov qword ptr [{data} + 0x28], rax",
    "mov edi, 2",
    "mov rsi, {data} + 0x10",
    "mov rax, {hcall} + 29 * 32",
    "call rax",
    "5: jmp 5b",
    "grant_domu_copy_end:",
    ".popsection",
    data = const DATA_VA,
    hcall = const HCALL_VA,
);

unsafe extern "C" {
    static grant_domu_copy_start: u8;
    static grant_domu_copy_end: u8;
}

/// A copy end naming dom0's frame by number (not by grant).
fn dom0_frame(mfn: u64, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr {
        u: mfn,
        domid: 0,
        offset,
        ..Default::default()
    }
}

fn transfer(mfn: u64, gref: u32) -> GnttabTransfer {
    GnttabTransfer {
        mfn,
        domid: 0,
        ref_: gref,
        status: 99,
        ..Default::default()
    }
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("grant_domu_copy");
    let Some(g) = tests::grants::domu_grants(&mut r, si, W_TABLE, W_PAGE) else {
        r.finish()
    };
    let (w, shared, port, table, page, mut env) = (g.w, g.shared, g.port, g.table, g.page, g.env);
    let flags_of = |gref: u32| read_u64(table + u64::from(gref) * 8) & 0xffff;
    write_u64(w.va(W_PAGE), PATTERN);
    write_u64(w.va(W_PAGE) + 8, PATTERN2);
    write_u64(w.va(W_PAGE) + 0x100, 0);
    write_u64(w.va(W_PAGE) + 0x200, 0);
    // Room for one frame: our reservation is at its maximum.
    let (_, room) = env.spare();
    check!(r, "give a frame back", decrease(room, 0) => 1);
    let base = free_pages();
    let ours_before = reservation(XENMEM_CURRENT_RESERVATION);

    // SAFETY: two labels of the block above, in order.
    let code = unsafe {
        code_between(
            &raw const grant_domu_copy_start,
            &raw const grant_domu_copy_end,
        )
    };
    let Some(t) = build(&mut r, &w, 1, 1, code) else {
        r.finish()
    };
    // Its extra frames, the first with something in it.
    let mut gifts = [7u64, 8];
    check!(r, "populate two more frames for it", populate(t.id, &mut gifts, 0) => 2);
    let [gift, gift2] = gifts;
    check!(r, "map it through a foreign mapping",
        set_window_page(&w, W_GIFT, (gift << 12) | P | RW | US | A | D, t.id) => 0);
    write_u64(w.va(W_GIFT), GIFT);
    check!(r, "unmap it", w.unmap(W_GIFT) => 0);
    let theirs_before = info(t.id).map_or(0, |i| i.tot_pages);
    check!(r, "its reservation", theirs_before => 9);

    let data = t.data_va(&w);
    write_u64(
        table + u64::from(GREF) * 8,
        entry(t.id, GTF_PERMIT_ACCESS, page),
    );
    write_u64(
        table + u64::from(GREF_T) * 8,
        entry(t.id, GTF_ACCEPT_TRANSFER, PFN),
    );
    write_u64(
        table + u64::from(GREF_T2) * 8,
        entry(t.id, GTF_ACCEPT_TRANSFER, PFN + 1),
    );
    write_u64(data + 0x20, u64::MAX);
    write_u64(data + 0x28, u64::MAX);
    write_u64(data + 0x900, WRITTEN);
    let copies = [
        copy_op(
            by_ref(0, GREF, 0),
            by_frame(t.data, 0x800),
            16,
            GNTCOPY_SOURCE_GREF,
        ),
        copy_op(
            by_frame(t.data, 0x900),
            by_ref(0, GREF, 0x100),
            8,
            GNTCOPY_DEST_GREF,
        ),
        copy_op(by_frame(t.data, 0x900), dom0_frame(page, 0x200), 8, 0),
    ];
    put_value(data + 0x400, copies);
    let transfers = [
        transfer(gift, GREF_T),
        transfer(gift2, GREF_T2),
        transfer(page, GREF_T2),
    ];
    put_value(data + 0x600, transfers);

    check!(r, "setvcpucontext", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, t.id, 0, Some(&mut context(t.l4))) => 0);
    check!(r, "unpause it", simple(XEN_DOMCTL_UNPAUSEDOMAIN, t.id) => 0);
    for _ in 0..500 {
        if info(t.id).is_some_and(|i| i.flags & XEN_DOMINF_SHUTDOWN != 0) {
            break;
        }
        idle_10ms(shared.va, port);
    }
    check!(r, "it powered off", info(t.id).map(|i| i.flags & XEN_DOMINF_SHUTDOWN) => Some(XEN_DOMINF_SHUTDOWN));

    let done: [GnttabCopy; 3] = get_value(data + 0x400);
    check!(r, "its copy batch", read_u64(data + 0x20).cast_signed() => 0);
    check!(r, "each copy's status", (done[0].status, done[1].status, done[2].status)
        => (GNTST_OKAY, GNTST_OKAY, GNTST_PERMISSION_DENIED));
    check!(r, "it copied our page through the grant",
        (read_u64(data + 0x800), read_u64(data + 0x808)) => (PATTERN, PATTERN2));
    check!(r, "it copied its word into our page", read_u64(w.va(W_PAGE) + 0x100) => WRITTEN);
    check!(r, "our page by frame number got nothing", read_u64(w.va(W_PAGE) + 0x200) => 0);
    check!(r, "our grant is no longer in use", flags_of(GREF) => u64::from(GTF_PERMIT_ACCESS));

    let sent: [GnttabTransfer; 3] = get_value(data + 0x600);
    check!(r, "its transfer batch", read_u64(data + 0x28).cast_signed() => 0);
    check!(r, "each transfer's status", (sent[0].status, sent[1].status, sent[2].status)
        => (GNTST_OKAY, GNTST_GENERAL_ERROR, GNTST_BAD_PAGE));
    check!(r, "our second transfer entry is untouched", flags_of(GREF_T2)
        => u64::from(GTF_ACCEPT_TRANSFER));
    check!(r, "our transfer entry says committed and completed", flags_of(GREF_T)
        => u64::from(GTF_ACCEPT_TRANSFER | GTF_TRANSFER_COMMITTED | GTF_TRANSFER_COMPLETED));
    check!(r, "it names the frame", read_u64(table + u64::from(GREF_T) * 8) >> 32 => gift & 0xffff_ffff);
    check!(r, "the frame is ours to map", w.map(W_GIFT, gift, P | RW | US | A | D) => 0);
    check!(r, "with the contents it had", read_u64(w.va(W_GIFT)) => GIFT);
    check!(r, "the M2P gives it our entry's pfn", read_u64(MACH2PHYS_VIRT_START + gift * 8) => PFN);
    check!(r, "our reservation grew by one", reservation(XENMEM_CURRENT_RESERVATION) => ours_before + 1);
    check!(r, "its reservation shrank by two", info(t.id).map_or(0, |i| i.tot_pages) => theirs_before - 2);
    check!(r, "our page is still ours", read_u64(w.va(W_PAGE)) => PATTERN);

    check!(r, "destroy it", t.destroy(&w) => (0, 0));
    check!(r, "unmap the frame", w.unmap(W_GIFT) => 0);
    check!(r, "give the frame back", decrease(gift, 0) => 1);
    check!(r, "our reservation is back", reservation(XENMEM_CURRENT_RESERVATION) => ours_before);
    check_free_back(&mut r, shared.va, port, base, XEN_SLACK);
    write_u64(table + u64::from(GREF) * 8, 0);
    write_u64(table + u64::from(GREF_T) * 8, 0);
    write_u64(table + u64::from(GREF_T2) * 8, 0);
    check!(r, "unmap our page", w.unmap(W_PAGE) => 0);
    check!(r, "unmap our table", w.unmap(W_TABLE) => 0);
    r.finish()
}
