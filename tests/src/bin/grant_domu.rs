//! Grants between dom0 and a running domU.
//!
//! dom0 grants a page of its own to a domU (`tests::domu`) and writes a
//! pattern in it. The domU maps the grant (`GNTTABOP_map_grant_ref`, a
//! host mapping in its own page tables), reads the pattern, writes a word
//! back, unmaps it and powers off: dom0 sees both results, the word, and
//! its entry no longer in use. A second domU maps the grant and keeps it:
//! dom0's entry shows it in use (reading and writing) until dom0 destroys
//! the domU, after which the entry is free again (Xen's
//! `gnttab_release_mappings`) and dom0's page is still its own.
//!
//! @covers: grant_table_op.map_grant_ref grant_table_op.unmap_grant_ref
#![no_std]
#![no_main]

use guest_abi::domctl::*;
use guest_abi::grant_table::*;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use tests::check;
use tests::control::idle_10ms;
use tests::domu::{
    build, code_between, context, get_value, info, put_value, simple, vcpucontext, Tiny, DATA_VA,
    HCALL_VA,
};
use tests::pvmm::{read_u64, write_u64, Window};

guest_abi::pv_guest!(main, name = "grant_domu");

/// Where the domU maps the grant: its L1 slot 4.
const GRANT_VA: u64 = 0x40_4000;
const PATTERN: u64 = 0x7465_7474_6172_6721;
const WRITTEN: u64 = 0x676e_6974_6972_7721;
/// The grant dom0 gives (an entry past the reserved ones).
const GREF: u32 = 8;
/// dom0's window pages: its grant-table frame and the granted page.
const W_TABLE: u64 = 20;
const W_PAGE: u64 = 21;

// The domU: maps the grant described at DATA+0x400, keeps the result at
// DATA+0x20, the word it read at DATA+0x28; writes WRITTEN at offset 8 of
// the page; then, unless DATA+0x18 asks it to keep the mapping (it spins),
// unmaps it with the handle the map gave (result at DATA+0x30) and powers
// off.
core::arch::global_asm!(
    ".pushsection .rodata.grant_domu,\"a\"",
    ".global grant_domu_start",
    ".global grant_domu_end",
    "grant_domu_start:",
    "xor edi, edi",
    "mov rsi, {data} + 0x400",
    "mov edx, 1",
    "mov eax, 20",
    "syscall",
    "mov qword ptr [{data} + 0x20], rax",
    "cmp word ptr [{data} + 0x412], 0",
    "jne 4f",
    "mov rax, qword ptr [{grant}]",
    "mov qword ptr [{data} + 0x28], rax",
    "mov rax, {written}",
    "mov qword ptr [{grant} + 8], rax",
    "cmp byte ptr [{data} + 0x18], 0",
    "jne 5f",
    "mov eax, dword ptr [{data} + 0x414]",
    "mov dword ptr [{data} + 0x510], eax",
    "mov edi, 1",
    "mov rsi, {data} + 0x500",
    "mov edx, 1",
    "mov eax, 20",
    "syscall",
    "mov qword ptr [{data} + 0x30], rax",
    "4:",
    "mov edi, 2",
    "mov rsi, {data} + 0x10",
    "mov rax, {hcall} + 29 * 32",
    "call rax",
    "5: jmp 5b",
    "grant_domu_end:",
    ".popsection",
    data = const DATA_VA,
    grant = const GRANT_VA,
    written = const WRITTEN,
    hcall = const HCALL_VA,
);

unsafe extern "C" {
    static grant_domu_start: u8;
    static grant_domu_end: u8;
}

/// dom0's entry `GREF`, read through its mapped table.
fn entry_flags(w: &Window) -> u16 {
    (read_u64(w.va(W_TABLE) + u64::from(GREF) * 8) & 0xffff) as u16
}

/// Builds a domU, grants it our page, runs it with `keep` (it keeps the
/// mapping and spins) and waits until it mapped (and, without `keep`,
/// shut down).
fn run(
    r: &mut Report,
    w: &Window,
    shared: u64,
    port: u32,
    page_mfn: u64,
    keep: bool,
) -> Option<Tiny> {
    // SAFETY: two labels of the block above, in order.
    let code = unsafe { code_between(&raw const grant_domu_start, &raw const grant_domu_end) };
    let t = build(r, w, 1, 1, code)?;
    let data = t.data_va(w);
    let entry = u64::from(GTF_PERMIT_ACCESS) | (u64::from(t.id) << 16) | (page_mfn << 32);
    write_u64(w.va(W_TABLE) + u64::from(GREF) * 8, entry);
    write_u64(data + 0x20, u64::MAX);
    write_u64(data + 0x28, 0);
    write_u64(data + 0x30, u64::MAX);
    put_value(data + 0x18, u8::from(keep));
    put_value(
        data + 0x400,
        GnttabMapGrantRef {
            host_addr: GRANT_VA,
            flags: GNTMAP_HOST_MAP,
            ref_: GREF,
            dom: 0,
            status: 99,
            ..Default::default()
        },
    );
    put_value(
        data + 0x500,
        GnttabUnmapGrantRef {
            host_addr: GRANT_VA,
            status: 99,
            ..Default::default()
        },
    );
    check!(r, "setvcpucontext", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, t.id, 0, Some(&mut context(t.l4))) => 0);
    check!(r, "unpause it", simple(XEN_DOMCTL_UNPAUSEDOMAIN, t.id) => 0);
    for _ in 0..500 {
        let mapped = read_u64(data + 0x28) != 0;
        let down = info(t.id).is_some_and(|i| i.flags & XEN_DOMINF_SHUTDOWN != 0);
        if (keep && mapped) || down {
            break;
        }
        idle_10ms(shared, port);
    }
    let map: GnttabMapGrantRef = get_value(data + 0x400);
    check!(r, "its map_grant_ref", (read_u64(data + 0x20).cast_signed(), map.status) => (0, GNTST_OKAY));
    check!(r, "it read our pattern through the grant", read_u64(data + 0x28) => PATTERN);
    check!(r, "we see what it wrote", read_u64(w.va(W_PAGE) + 8) => WRITTEN);
    Some(t)
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("grant_domu");
    let Some(g) = tests::grants::domu_grants(&mut r, si, W_TABLE, W_PAGE) else {
        r.finish()
    };
    let (w, shared, port, page_mfn) = (g.w, g.shared, g.port, g.page);
    write_u64(w.va(W_PAGE), PATTERN);
    write_u64(w.va(W_PAGE) + 8, 0);

    // Map, write, read, unmap, power off.
    let Some(t) = run(&mut r, &w, shared.va, port, page_mfn, false) else {
        r.finish()
    };
    let data = t.data_va(&w);
    let unmap: GnttabUnmapGrantRef = get_value(data + 0x500);
    check!(r, "its unmap_grant_ref", (read_u64(data + 0x30).cast_signed(), unmap.status) => (0, GNTST_OKAY));
    check!(r, "it powered off", info(t.id).map(|i| i.flags & XEN_DOMINF_SHUTDOWN) => Some(XEN_DOMINF_SHUTDOWN));
    check!(r, "our entry is no longer in use", entry_flags(&w) & (GTF_READING | GTF_WRITING) => 0);
    check!(r, "destroy it", t.destroy(&w) => (0, 0));

    // Mapped when it dies.
    write_u64(w.va(W_PAGE) + 8, 0);
    let Some(t) = run(&mut r, &w, shared.va, port, page_mfn, true) else {
        r.finish()
    };
    check!(r, "our entry is in use while it maps it",
        entry_flags(&w) & (GTF_READING | GTF_WRITING) => GTF_READING | GTF_WRITING);
    check!(r, "destroy it while it maps our grant", t.destroy(&w) => (0, 0));
    check!(r, "our entry is free again", entry_flags(&w) & (GTF_READING | GTF_WRITING) => 0);
    write_u64(w.va(W_PAGE), 5);
    check!(r, "our page is still ours to write", read_u64(w.va(W_PAGE)) => 5);
    write_u64(w.va(W_TABLE) + u64::from(GREF) * 8, 0);
    check!(r, "unmap our page", w.unmap(W_PAGE) => 0);
    check!(r, "unmap our table", w.unmap(W_TABLE) => 0);
    r.finish()
}
