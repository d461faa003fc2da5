//! A domain's maptrack limit, at the limit and one past it.
//!
//! dom0 creates a domU (`tests::domu`) with `max_maptrack_frames` 1 and
//! grants it 300 entries of its table (all naming one page of dom0's).
//! The running domU maps them one after another (`GNTMAP_device_map`: a
//! maptrack handle and a pin each, no PTE) and keeps every status. 255
//! mappings succeed (a maptrack frame holds 256 handles and Xen's free
//! list always keeps one), the next one is `GNTST_no_space`, and so are
//! the rest; the refusals leave
//! dom0's entries untouched. Destroying the domU while it holds all the
//! mappings gives every entry back (no access bits left).
//!
//! @covers: grant_table_op.map_grant_ref domctl.createdomain
#![no_std]
#![no_main]

use guest_abi::domctl::*;
use guest_abi::grant_table::*;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use tests::check;
use tests::control::idle_10ms;
use tests::domu::{
    code_between, context, get_value, info, put_value, simple, try_build_with, vcpucontext,
    DATA_VA, HCALL_VA,
};
use tests::grants::entry;
use tests::pvmm::{read_u64, write_u64};

guest_abi::pv_guest!(main, name = "grant_maptrack");

/// Grants dom0 gives, from entry `FIRST` on.
const FIRST: u32 = 16;
const COUNT: u32 = 300;
/// dom0's window pages: its grant table, the granted page.
const W_TABLE: u64 = 20;
const W_PAGE: u64 = 21;

// The domU: maps grant FIRST + i of dom0 (the request at DATA+0x400) for
// i = 0..COUNT, keeping each status at DATA+0x800 + 2i; then powers off.
core::arch::global_asm!(
    ".pushsection .rodata.grant_maptrack,\"a\"",
    ".global grant_maptrack_start",
    ".global grant_maptrack_end",
    "grant_maptrack_start:",
    "xor r12d, r12d",
    "2:",
    "lea eax, [r12d + {first}]",
    "mov dword ptr [{data} + 0x400 + 12], eax",
    "mov word ptr [{data} + 0x400 + 18], 99",
    "xor edi, edi",
    "mov rsi, {data} + 0x400",
    "mov edx, 1",
    "mov eax, 20",
    "syscall",
    "mov ax, word ptr [{data} + 0x400 + 18]",
    "mov word ptr [{data} + 0x800 + r12 * 2], ax",
    "inc r12d",
    "cmp r12d, {count}",
    "jb 2b",
    "mov edi, 2",
    "mov rsi, {data} + 0x10",
    "mov rax, {hcall} + 29 * 32",
    "call rax",
    "5: jmp 5b",
    "grant_maptrack_end:",
    ".popsection",
    first = const FIRST,
    count = const COUNT,
    data = const DATA_VA,
    hcall = const HCALL_VA,
);

unsafe extern "C" {
    static grant_maptrack_start: u8;
    static grant_maptrack_end: u8;
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("grant_maptrack");
    let Some(g) = tests::grants::domu_grants(&mut r, si, W_TABLE, W_PAGE) else {
        r.finish()
    };
    let (w, shared, port, table, page) = (g.w, g.shared, g.port, g.table, g.page);

    let mut config = XenDomctlCreatedomain::pv(1, [0; 16]);
    config.max_maptrack_frames = 1;
    // SAFETY: two labels of the block above, in order.
    let code = unsafe {
        code_between(
            &raw const grant_maptrack_start,
            &raw const grant_maptrack_end,
        )
    };
    let t = match try_build_with(&w, 1, &config, code) {
        Ok(t) => t,
        Err((what, rc)) => {
            r.check(
                format_args!("build a domU with one maptrack frame: {what} returned {rc}"),
                false,
            );
            r.finish()
        }
    };
    r.check(
        format_args!("build domain {} with one maptrack frame", t.id),
        true,
    );
    let slot = |i: u32| table + u64::from(FIRST + i) * 8;
    for i in 0..COUNT {
        write_u64(slot(i), entry(t.id, GTF_PERMIT_ACCESS, page));
    }
    let data = t.data_va(&w);
    put_value(
        data + 0x400,
        GnttabMapGrantRef {
            flags: GNTMAP_DEVICE_MAP,
            dom: 0,
            ..Default::default()
        },
    );
    check!(r, "setvcpucontext", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, t.id, 0, Some(&mut context(t.l4))) => 0);
    check!(r, "unpause it", simple(XEN_DOMCTL_UNPAUSEDOMAIN, t.id) => 0);
    for _ in 0..500 {
        if info(t.id).is_some_and(|i| i.flags & XEN_DOMINF_SHUTDOWN != 0) {
            break;
        }
        idle_10ms(shared.va, port);
    }
    check!(r, "it mapped and powered off", info(t.id).map(|i| i.flags & XEN_DOMINF_SHUTDOWN) => Some(XEN_DOMINF_SHUTDOWN));
    let statuses: [i16; COUNT as usize] = get_value(data + 0x800);
    let ok = statuses.iter().take_while(|&&s| s == GNTST_OKAY).count();
    let rest = &statuses[ok..];
    check!(r, "mappings that fit one maptrack frame", ok => 255);
    check!(r, "the next one is refused", rest.first().copied() => Some(GNTST_NO_SPACE));
    r.check(
        "and so is every later one",
        rest.iter().all(|&s| s == GNTST_NO_SPACE),
    );
    let flags = |i: u32| read_u64(slot(i)) & 0xffff;
    let busy = u64::from(GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING);
    check!(r, "a mapped entry shows it", flags(0) => busy);
    check!(r, "a refused one does not", flags(COUNT - 1) => u64::from(GTF_PERMIT_ACCESS));
    check!(r, "destroy it while it holds them", t.destroy(&w) => (0, 0));
    r.check(
        "every entry is free again",
        (0..COUNT).all(|i| flags(i) == u64::from(GTF_PERMIT_ACCESS)),
    );
    for i in 0..COUNT {
        write_u64(slot(i), 0);
    }
    check!(r, "unmap our page", w.unmap(W_PAGE) => 0);
    check!(r, "unmap our table", w.unmap(W_TABLE) => 0);
    r.finish()
}
