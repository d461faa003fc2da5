//! Start of day of a 64-bit PV dom0, as Xen's dom0 builder leaves it.
//!
//! Covers every `start_info` field and flag, the registers at the first
//! instruction (via `guest_abi::rt::entry_regs`), the layout of the initial
//! mapping (kernel, P2M list, start_info + VGA console info, bootstrap page
//! tables, one boot-stack page, padding to a 4 MiB boundary with at least
//! 512 KiB spare) with Xen's exact arithmetic, the bootstrap page tables
//! themselves (walked from `pt_base`: every page of the initial mapping maps
//! its P2M frame, read-only for the page-table frames, nothing else mapped in
//! the guest half) and the hypercall page's stubs. The command line has a
//! space and a comma (xtask doubles the comma for Xen's module list).
//!
//! @cmdline: sod x=1,2 last
//! @expect-line: PASS: cmd_line is "sod x=1,2 last"

#![no_std]
#![no_main]

use core::ptr::addr_of;

use guest_abi::hypercall::{
    hypercall0, hypercall2, hypercall_page_call0, hypercall_page_call2, hypercall_page_stub,
    HYPERCALL_STUB_SIZE, IRET, XEN_VERSION,
};
use guest_abi::rt::report::Report;
use guest_abi::rt::{entry_regs, StartInfoRef, VIRT_BASE};
use guest_abi::xen::{Dom0VgaConsoleInfo, StartInfo, SIF_INITDOMAIN, SIF_PM_MASK, SIF_PRIVILEGED};
use guest_abi::{arch, println};

guest_abi::pv_guest!(main, name = "start_of_day");

const CMDLINE: &[u8] = b"sod x=1,2 last";
const PAGE: u64 = 4096;
/// Page-table entry bits compared here; Xen also sets A/D and a software bit.
const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PS: u64 = 1 << 7;
const FLAGS: u64 = P | RW | US | PS;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

extern "C" {
    /// End of `.bss`: the end of the loaded kernel image (`pv64.ld`).
    static __bss_end: u8;
}

/// `x` rounded up to a multiple of `to`, modulo 2^64 (the top of the
/// address space rounds up to 0, which `slots` relies on).
const fn round_up(x: u64, to: u64) -> u64 {
    x.div_ceil(to).wrapping_mul(to)
}

/// The initial mapping as Xen's PV dom0 builder lays it out, computed from
/// the kernel's end and the domain's size.
#[derive(Debug)]
struct Layout {
    v_start: u64,
    p2m: u64,
    start_info: u64,
    pt_base: u64,
    nr_pt_frames: u64,
    stack: u64,
    v_end: u64,
}

/// Number of `1 << shift` sized slots that [lo, hi) touches.
fn slots(lo: u64, hi: u64, shift: u32) -> u64 {
    let size = 1u64 << shift;
    round_up(hi, size).wrapping_sub(lo & !(size - 1)) >> shift
}

impl Layout {
    fn expected(kernel_end: u64, nr_pages: u64) -> Self {
        let v_start = VIRT_BASE;
        let p2m = round_up(kernel_end, PAGE);
        let start_info = round_up(p2m + nr_pages * 8, PAGE);
        let si_end =
            start_info + size_of::<StartInfo>() as u64 + size_of::<Dom0VgaConsoleInfo>() as u64;
        let pt_base = round_up(si_end, PAGE);
        let mut n = 2;
        loop {
            let stack = pt_base + n * PAGE;
            let stack_end = stack + PAGE;
            let mut v_end = round_up(stack_end, 4 << 20);
            if v_end - stack_end < 512 << 10 {
                v_end += 4 << 20;
            }
            let needed = 1
                + slots(v_start, v_end, 39)
                + slots(v_start, v_end, 30)
                + slots(v_start, v_end, 21);
            if needed <= n {
                return Self {
                    v_start,
                    p2m,
                    start_info,
                    pt_base,
                    nr_pt_frames: n,
                    stack,
                    v_end,
                };
            }
            n += 1;
        }
    }

    fn pages(&self) -> u64 {
        (self.v_end - self.v_start) / PAGE
    }

    fn is_page_table(&self, va: u64) -> bool {
        (self.pt_base..self.stack).contains(&va)
    }
}

fn read_u64(va: u64) -> u64 {
    // SAFETY: callers only pass addresses inside the initial mapping, which
    // stays mapped (the page tables read-only) for the whole test.
    unsafe { (va as *const u64).read_volatile() }
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("start_of_day");
    let si_va = core::ptr::from_ref(si) as u64;
    check_start_info(&mut r, si);
    // Only the linker symbol's address is taken.
    let kernel_end = addr_of!(__bss_end) as u64;
    let layout = Layout::expected(kernel_end, si.nr_pages);
    println!("kernel end {kernel_end:#x}, expected layout {layout:x?}");
    check_layout(&mut r, si, si_va, &layout);
    check_registers(&mut r, si_va, &layout);
    if check_p2m(&mut r, si, &layout) {
        check_page_tables(&mut r, si, &layout);
    }
    check_hypercall_page(&mut r);
    r.finish()
}

fn check_start_info(r: &mut Report, si: &StartInfo) {
    let magic = si.magic_str();
    r.check(
        format_args!("magic {magic:?} is \"xen-3.0-x86_64p\" (PAE_MODE yes)"),
        magic == "xen-3.0-x86_64p",
    );
    r.check(
        "magic is NUL-padded",
        si.magic[magic.len()..].iter().all(|&b| b == 0),
    );
    r.check(
        format_args!("nr_pages {} is 64 MiB (dom0_mem=64M)", si.nr_pages),
        si.nr_pages == 16384,
    );
    r.check(
        format_args!("shared_info {:#x} is a non-zero page", si.shared_info),
        si.shared_info != 0 && si.shared_info.is_multiple_of(PAGE),
    );
    let priv_init = SIF_PRIVILEGED | SIF_INITDOMAIN;
    r.check(
        format_args!("flags {:#x} has SIF_PRIVILEGED|SIF_INITDOMAIN", si.flags),
        si.flags & priv_init == priv_init,
    );
    r.check(
        format_args!(
            "flags {:#x} has nothing but those and SIF_PM bits",
            si.flags
        ),
        si.flags & !(priv_init | SIF_PM_MASK) == 0,
    );
    r.check(
        format_args!(
            "store_mfn {} and store_evtchn {} are 0",
            si.store_mfn, si.store_evtchn
        ),
        si.store_mfn == 0 && si.store_evtchn == 0,
    );
    let (off, size) = (si.console.dom0_info_off(), si.console.dom0_info_size());
    r.check(
        format_args!("console.dom0 info_off {off} / info_size {size} are 1168 / 40"),
        off as usize == size_of::<StartInfo>() && size as usize == size_of::<Dom0VgaConsoleInfo>(),
    );
    r.check(
        format_args!("console word 1 {:#x} is 0", si.console.words[1]),
        si.console.words[1] == 0,
    );
    r.check(
        format_args!(
            "mod_start {:#x} / mod_len {} are 0 (no module)",
            si.mod_start, si.mod_len
        ),
        si.mod_start == 0 && si.mod_len == 0,
    );
    r.check(
        format_args!("nr_p2m_frames {} is 0", si.nr_p2m_frames),
        si.nr_p2m_frames == 0,
    );
    let cmd = si.cmd_line_bytes();
    r.check(
        format_args!(
            "cmd_line is {:?}",
            core::str::from_utf8(cmd).unwrap_or("<not utf-8>")
        ),
        cmd == CMDLINE,
    );
    r.check(
        "cmd_line is NUL-padded",
        si.cmd_line[cmd.len()..].iter().all(|&b| b == 0),
    );
    r.check("padding fields are 0", si._pad0 == 0 && si._pad1 == 0);
}

fn check_layout(r: &mut Report, si: &StartInfo, si_va: u64, l: &Layout) {
    r.check(
        format_args!(
            "mfn_list {:#x} is right after the kernel, {:#x}",
            si.mfn_list, l.p2m
        ),
        si.mfn_list == l.p2m,
    );
    r.check(
        format_args!(
            "start_info {si_va:#x} is on the page after the P2M list, {:#x}",
            l.start_info
        ),
        si_va == l.start_info,
    );
    r.check(
        format_args!(
            "pt_base {:#x} is on the page after start_info + VGA info, {:#x}",
            si.pt_base, l.pt_base
        ),
        si.pt_base == l.pt_base,
    );
    r.check(
        format_args!(
            "nr_pt_frames {} is L4+L3s+L2s+L1s for the mapping, {}",
            si.nr_pt_frames, l.nr_pt_frames
        ),
        si.nr_pt_frames == l.nr_pt_frames,
    );
    r.check(
        format_args!(
            "first_p2m_pfn {} is the initial mapping's pages, {}",
            si.first_p2m_pfn,
            l.pages()
        ),
        si.first_p2m_pfn == l.pages(),
    );
}

fn check_registers(r: &mut Report, si_va: u64, l: &Layout) {
    let e = entry_regs();
    println!("entry registers: {e:x?}");
    r.check(
        format_args!("rsi {:#x} is start_info", e.rsi),
        e.rsi == si_va,
    );
    r.check(
        format_args!(
            "rsp {:#x} is the top of the boot-stack page {:#x}",
            e.rsp, l.stack
        ),
        e.rsp == l.stack + PAGE,
    );
    r.check(
        format_args!("rflags {:#x} is 0x202 (IF)", e.rflags),
        e.rflags == 0x202,
    );
    r.check(
        format_args!("cs {:#x} is FLAT_KERNEL_CS64", e.cs),
        e.cs == arch::FLAT_KERNEL_CS64,
    );
    r.check(
        format_args!("ss {:#x} is FLAT_KERNEL_SS64", e.ss),
        e.ss == arch::FLAT_KERNEL_SS64,
    );
    r.check(
        format_args!(
            "ds {:#x} es {:#x} fs {:#x} gs {:#x} are 0",
            e.ds, e.es, e.fs, e.gs
        ),
        e.ds == 0 && e.es == 0 && e.fs == 0 && e.gs == 0,
    );
    let others = [
        ("rax", e.rax),
        ("rbx", e.rbx),
        ("rcx", e.rcx),
        ("rdx", e.rdx),
        ("rdi", e.rdi),
        ("rbp", e.rbp),
        ("r8", e.r8),
        ("r9", e.r9),
        ("r10", e.r10),
        ("r11", e.r11),
        ("r12", e.r12),
        ("r13", e.r13),
        ("r14", e.r14),
        ("r15", e.r15),
    ];
    for (name, value) in others {
        r.check(format_args!("{name} {value:#x} is 0"), value == 0);
    }
}

/// The P2M list is readable and its first `first_p2m_pfn` MFNs distinct.
fn check_p2m(r: &mut Report, si: &StartInfo, l: &Layout) -> bool {
    let n = usize::try_from(l.pages()).unwrap_or(usize::MAX);
    let mut mfns = [0u64; 1024];
    if !r.check(
        format_args!("initial mapping has at most {} pages ({n})", mfns.len()),
        n <= mfns.len() && si.nr_pages >= l.pages(),
    ) {
        return false;
    }
    let last = read_u64(si.mfn_list + (si.nr_pages - 1) * 8);
    println!(
        "mfn_list[0] {:#x}, mfn_list[last] {last:#x}",
        read_u64(si.mfn_list)
    );
    for (pfn, slot) in mfns[..n].iter_mut().enumerate() {
        *slot = read_u64(si.mfn_list + pfn as u64 * 8);
    }
    let sorted = &mut mfns[..n];
    sorted.sort_unstable();
    r.check(
        format_args!("mfn_list[0..{n}] are distinct MFNs"),
        sorted.windows(2).all(|w| w[0] != w[1]),
    )
}

/// The pfn of `mfn` within the initial mapping, by searching the P2M list.
fn pfn_of(si: &StartInfo, l: &Layout, mfn: u64) -> Option<u64> {
    (0..l.pages()).find(|&pfn| read_u64(si.mfn_list + pfn * 8) == mfn)
}

/// The virtual address of the page-table frame an entry points to, which
/// must be one of the bootstrap page-table frames.
fn table_va(
    r: &mut Report,
    si: &StartInfo,
    l: &Layout,
    what: impl core::fmt::Display,
    entry: u64,
) -> Option<u64> {
    let mfn = (entry & ADDR_MASK) >> 12;
    let va = pfn_of(si, l, mfn).map(|pfn| l.v_start + pfn * PAGE);
    let ok = va.is_some_and(|va| l.is_page_table(va));
    r.check(
        format_args!("{what} entry {entry:#x} points at a bootstrap page-table frame ({va:x?})"),
        ok,
    )
    .then_some(va?)
}

fn check_page_tables(r: &mut Report, si: &StartInfo, l: &Layout) {
    let l4 = si.pt_base;
    let idx = |va: u64, shift: u32| (va >> shift) & 511;
    let table_flags = P | RW | US;

    // L4: the guest half holds only the slot of the initial mapping. Of
    // Xen's slots 256-271, which are present depends on its configuration;
    // only the read-only M2P (256) is reachable from the guest kernel.
    let mut stray = 0;
    let mut guest_slot = None;
    let mut hv_user = 0;
    for i in 0..512u64 {
        let e = read_u64(l4 + i * 8);
        if (256..272).contains(&i) {
            if e & P != 0 {
                println!("L4[{i}] = {e:#x} (hypervisor)");
            }
            if i != 256 && e & (P | US) == P | US {
                hv_user += 1;
            }
        } else if i == idx(l.v_start, 39) {
            guest_slot = Some(e);
        } else if e & P != 0 {
            println!("L4[{i}] = {e:#x} unexpected");
            stray += 1;
        }
    }
    r.check(
        format_args!(
            "no guest L4 slot but {} is present ({stray} others)",
            idx(l.v_start, 39)
        ),
        stray == 0,
    );
    r.check(
        format_args!("no hypervisor L4 slot 257-271 is user-accessible ({hv_user} are)"),
        hv_user == 0,
    );
    check_m2p(r, si, l);
    let Some(e4) = guest_slot else { return };
    r.check(
        format_args!("L4 entry {e4:#x} of the mapping is P|RW|US"),
        e4 & FLAGS == table_flags,
    );
    let Some(l3) = table_va(r, si, l, "L4", e4) else {
        return;
    };

    // L3 and L2: only the entries covering [v_start, v_end).
    let (l3_e, n3) = check_level(r, l3, "L3", idx(l.v_start, 30), idx(l.v_end - 1, 30));
    if !r.check(format_args!("the mapping needs one L2 ({n3})"), n3 == 1) {
        return;
    }
    let e3 = l3_e[0];
    r.check(
        format_args!("L3 entry {e3:#x} is P|RW|US"),
        e3 & FLAGS == table_flags,
    );
    let Some(l2) = table_va(r, si, l, "L3", e3) else {
        return;
    };
    let first = idx(l.v_start, 21);
    let last = idx(l.v_end - 1, 21);
    let (l2_e, n2) = check_level(r, l2, "L2", first, last);
    let mut l1_bad = 0u64;
    let mut l1_first_bad = None;
    for (k, e2) in l2_e[..n2].iter().copied().enumerate() {
        let slot = first + k as u64;
        r.check(
            format_args!("L2[{slot}] entry {e2:#x} is P|RW|US (not a superpage)"),
            e2 & FLAGS == table_flags,
        );
        let Some(l1) = table_va(r, si, l, format_args!("L2[{slot}]"), e2) else {
            continue;
        };
        let base = l.v_start + ((k as u64) << 21);
        for i in 0..512u64 {
            let va = base + i * PAGE;
            let e = read_u64(l1 + i * 8);
            let want = if va < l.v_end {
                let pfn = (va - l.v_start) / PAGE;
                let mfn = read_u64(si.mfn_list + pfn * 8);
                let rw = if l.is_page_table(va) { 0 } else { RW };
                Some((mfn, P | US | rw))
            } else {
                None
            };
            let ok = match want {
                Some((mfn, flags)) => (e & ADDR_MASK) >> 12 == mfn && e & FLAGS == flags,
                None => e & P == 0,
            };
            if !ok {
                l1_bad += 1;
                l1_first_bad.get_or_insert((va, e));
            }
        }
    }
    r.check(
        format_args!(
            "every page of [{:#x}, {:#x}) maps its P2M frame P|US, RW except page tables, nothing else mapped ({l1_bad} bad, first {l1_first_bad:x?})",
            l.v_start, l.v_end
        ),
        l1_bad == 0,
    );
}

/// The read-only M2P at `HYPERVISOR_VIRT_START` (L4 slot 256, present,
/// user, not writable) maps each of the domain's MFNs back to its pfn.
fn check_m2p(r: &mut Report, si: &StartInfo, l: &Layout) {
    let e = read_u64(si.pt_base + 256 * 8);
    if !r.check(
        format_args!("L4[256] {e:#x} (read-only M2P) is P|US, not RW"),
        e & FLAGS == P | US,
    ) {
        return;
    }
    let mut bad = 0;
    for pfn in [0, 1, l.pages() - 1, l.pages(), si.nr_pages - 1] {
        let mfn = read_u64(si.mfn_list + pfn * 8);
        let back = read_u64(arch::MACH2PHYS_VIRT_START + mfn * 8);
        if back != pfn {
            println!("M2P[{mfn:#x}] = {back:#x}, expected pfn {pfn:#x}");
            bad += 1;
        }
    }
    r.check(
        format_args!("M2P[mfn_list[pfn]] == pfn for 5 sample pfns ({bad} differ)"),
        bad == 0,
    );
}

/// Reads a table at `va`, checks that only entries `first..=last` are
/// present, and returns those (at most four) and their number.
fn check_level(r: &mut Report, va: u64, what: &str, first: u64, last: u64) -> ([u64; 4], usize) {
    let mut out = [0u64; 4];
    let mut stray = 0;
    for i in 0..512u64 {
        let e = read_u64(va + i * 8);
        if (first..=last).contains(&i) {
            if let Some(slot) = usize::try_from(i - first).ok().and_then(|k| out.get_mut(k)) {
                *slot = e;
            }
        } else if e & P != 0 {
            stray += 1;
        }
    }
    r.check(
        format_args!("{what}: only entries {first}..={last} are present ({stray} others)"),
        stray == 0 && last - first < 4,
    );
    (out, (last - first + 1).min(4) as usize)
}

/// Every 32-byte entry of the hypercall page is Xen's stub for its number
/// (`iret`'s pushes a frame and does not return), and calling through the
/// page gives what an inline `syscall` gives.
fn check_hypercall_page(r: &mut Report) {
    extern "C" {
        static hypercall_page: [u8; 4096];
    }
    // SAFETY: `pv_guest!` defines the page; the builder filled it before
    // entry and nothing writes it afterwards.
    let page = unsafe { &*addr_of!(hypercall_page) };
    const STUB: usize = 32;
    const _: () = assert!(HYPERCALL_STUB_SIZE == STUB as u64);
    let mut bad = 0;
    for (nr, stub) in page.chunks_exact(STUB).enumerate() {
        let want = hypercall_page_stub(u8::try_from(nr).unwrap_or(u8::MAX));
        if stub != want {
            if bad == 0 {
                println!("stub {nr}: {stub:02x?}, expected {want:02x?}");
            }
            bad += 1;
        }
    }
    for nr in [0u64, 17, 18, 29, IRET] {
        let at = usize::try_from(nr).unwrap_or(0) * STUB;
        println!("stub {nr}: {:02x?}", &page[at..at + 16]);
    }
    r.check(
        format_args!("all 128 hypercall-page stubs are Xen's ({bad} differ)"),
        bad == 0,
    );
    // SAFETY: XENVER_version takes no buffer; number 11 has no handler.
    let (inline, paged, inline11, paged11) = unsafe {
        (
            hypercall2(XEN_VERSION, 0, 0),
            hypercall_page_call2(XEN_VERSION, 0, 0),
            hypercall0(11),
            hypercall_page_call0(11),
        )
    };
    r.check(
        format_args!("xen_version via the page {paged:#x} = inline {inline:#x}"),
        paged == inline && inline > 0,
    );
    r.check(
        format_args!("hypercall 11 via the page {paged11} = inline {inline11}"),
        paged11 == inline11,
    );
}
