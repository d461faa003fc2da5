//! A guest linked virtual = physical: the second kernel layout Xen's PV
//! builder accepts, with no `VIRT_BASE` or `PADDR_OFFSET` note.
//!
//! Declared with `pv_guest!(main, name = "low_layout", layout = physical)`
//! and linked with `guest-abi/pv64-low.ld` at 1 MiB, paddr = vaddr
//! (`tests/build.rs` picks the script per binary). The builder then takes
//! VIRT_BASE = 0: pseudo-physical frame `pfn` is mapped at `pfn << 12`.
//! Checks that the runtime knows its layout; that entry, `start_info`, the
//! boot stack, the P2M list and the bootstrap page tables are all low,
//! inside the initial mapping; that walking the page tables for the kernel's
//! text, data and stack finds each page at the frame whose pfn equals its
//! virtual page number (through the M2P, and back through the P2M); and
//! that code compiled for the `kernel` code model works here: data holding
//! link-time addresses, a function-pointer table, `dyn` calls, zeroed
//! `.bss`, the hypercall page.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::ptr::addr_of;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_abi::arch::MACH2PHYS_VIRT_START;
use guest_abi::hypercall::{hypercall_page_call2, xen_version_version, XEN_VERSION};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::{entry_regs, layout, Console, Layout, StartInfoRef, LOW_LINK_BASE};

guest_abi::pv_guest!(main, name = "low_layout", layout = physical);

const PAGE: u64 = 4096;
const P: u64 = 1 << 0;
const PS: u64 = 1 << 7;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

extern "C" {
    /// The entry point `pv_guest!` emits (first in `.text`).
    static _start: u8;
    /// End of `.bss`: the end of the loaded image (`pv64-low.ld`).
    static __bss_end: u8;
}

/// Initialised data holding a link-time address (an absolute relocation
/// the linker resolves under `--no-pie`).
static VALUE: u32 = 0x1234_5678;
static POINTER: &u32 = &VALUE;

/// A table of function pointers, indexed at run time.
static OPS: [fn(u64) -> u64; 3] = [|x| x + 1, |x| x * 2, |x| x ^ 0xff];

/// Must be zero: `.bss` is beyond the file image and the loader clears it.
static ZEROED: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];

trait Shape {
    fn sides(&self) -> u32;
}
struct Triangle;
struct Square;
impl Shape for Triangle {
    fn sides(&self) -> u32 {
        3
    }
}
impl Shape for Square {
    fn sides(&self) -> u32 {
        4
    }
}

fn read_u64(va: u64) -> u64 {
    // SAFETY: callers pass addresses inside the initial mapping or the
    // read-only M2P, both mapped for the guest's whole life.
    unsafe { (va as *const u64).read_volatile() }
}

/// Walks the bootstrap page tables for `va`: the MFN mapping it, if any.
/// Table frames are reached at `pfn << 12` (virtual = physical), their pfn
/// read from the M2P.
fn walk(si: StartInfoRef, va: u64) -> Option<u64> {
    let mut table = si.pt_base;
    for shift in [39_u32, 30, 21, 12] {
        let e = read_u64(table + ((va >> shift) & 511) * 8);
        if e & P == 0 {
            return None;
        }
        let mfn = (e & ADDR_MASK) / PAGE;
        if shift == 12 || (shift == 21 && e & PS != 0) {
            return Some(mfn + ((va >> 12) & ((1 << (shift - 12)) - 1)));
        }
        table = m2p(mfn) * PAGE;
    }
    None
}

fn m2p(mfn: u64) -> u64 {
    read_u64(MACH2PHYS_VIRT_START + mfn * 8)
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("low_layout");
    let start = addr_of!(_start) as u64;
    let bss_end = addr_of!(__bss_end) as u64;
    let si_va = si as *const _ as u64;
    let v_end = si.first_p2m_pfn * PAGE;
    let regs = entry_regs();
    let local = 0_u8;
    let stack_va = addr_of!(local) as u64;
    println!(
        "_start {start:#x}, image end {bss_end:#x}, start_info {si_va:#x}, pt_base {:#x}, \
         mfn_list {:#x}, entry rsp {:#x}, stack {stack_va:#x}, initial mapping end {v_end:#x}",
        si.pt_base, si.mfn_list, regs.rsp
    );

    r.check("rt::layout() is Physical", layout() == Layout::Physical);
    r.check("initial mapping starts at 0", layout().virt_base() == 0);
    r.check(
        format_args!("_start is at the link base {LOW_LINK_BASE:#x}"),
        start == LOW_LINK_BASE,
    );
    r.check("start_info magic is xen-3.0-x86_64", si.magic_ok());
    r.check("rsi at entry was start_info", regs.rsi == si_va);
    let low = |va: u64| (bss_end..v_end).contains(&va);
    r.check(
        "start_info, P2M list and page tables lie between the image and the mapping's end",
        low(si_va) && low(si.mfn_list) && low(si.pt_base),
    );
    r.check(
        "the builder's boot stack is in the initial mapping",
        regs.rsp > bss_end && regs.rsp <= v_end,
    );
    r.check(
        "the runtime's stack is inside the image",
        (start..bss_end).contains(&stack_va),
    );
    r.check(
        "the initial domain writes with console_io",
        guest_abi::rt::console() == Console::ConsoleIo,
    );

    for (what, va) in [
        ("_start", start),
        ("rodata", addr_of!(VALUE) as u64),
        ("data", addr_of!(POINTER) as u64),
        ("bss", addr_of!(ZEROED) as u64),
        ("stack", stack_va),
        ("start_info", si_va),
        ("page tables", si.pt_base),
    ] {
        let page = va / PAGE;
        match walk(si, va) {
            Some(mfn) => {
                let pfn = m2p(mfn);
                let p2m = read_u64(si.mfn_list + page * 8);
                r.check(
                    format_args!(
                        "{what} {va:#x} is mapped at mfn {mfn:#x}, pfn {pfn:#x} = its virtual page, P2M agrees"
                    ),
                    pfn == page && p2m == mfn,
                );
            }
            None => {
                r.check(format_args!("{what} {va:#x} is mapped"), false);
            }
        }
    }

    r.check(
        format_args!("a pointer in .data points at its target ({:p})", POINTER),
        *black_box(POINTER) == 0x1234_5678
            && (start..bss_end).contains(&(POINTER as *const u32 as u64)),
    );
    let ops = black_box(&OPS);
    r.check(
        "a function-pointer table calls the right functions",
        (ops[0](10), ops[1](10), ops[2](10)) == (11, 20, 0xf5),
    );
    let shapes: [&dyn Shape; 2] = [&Triangle, &Square];
    let sides: u32 = black_box(&shapes).iter().map(|s| s.sides()).sum();
    r.check("dyn calls go through the right vtables", sides == 7);
    r.check(
        ".bss is zeroed",
        ZEROED.iter().all(|z| z.load(Ordering::Relaxed) == 0),
    );
    let version = xen_version_version();
    // SAFETY: the HYPERCALL_PAGE note makes the loader fill the page before
    // entry; XENVER_version takes no buffer.
    let via_page = unsafe { hypercall_page_call2(XEN_VERSION, 0, 0) };
    r.check(
        format_args!("XENVER_version through the hypercall page ({via_page:#x}) agrees"),
        version > 0 && via_page == version,
    );
    r.finish()
}
