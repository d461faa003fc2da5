//! A domU that dom0 builds by hand and runs: the toolstack's domctls from
//! `createdomain` to `destroydomain` with the domain running in between.
//!
//! Dom0 populates seven pages of a new domain, writes through foreign
//! mappings its four page-table levels, a few instructions and a data
//! page, pins its L4 on its behalf, has the hypervisor write its
//! hypercall page (`hypercall_init`) and gives vCPU 0 a context
//! (`setvcpucontext`: the errors first, then `getvcpucontext` reads it
//! back; a reset takes it away again). The domU does not run while it is
//! paused; unpaused, it asks for `sysctl` and `domctl` (an unprivileged
//! domain gets `-EPERM`), stores what it got in its data page, and shuts
//! down through its hypercall page. Dom0 hears `VIRQ_DOM_EXC`, sees the
//! shutdown flag and reason in `getdomaininfo`, reads the answers, and
//! destroys the domain: every frame comes back (exactly, on hv).
//! A second domU executes `ud2` with no trap table: it crashes, and only
//! it (its reason is `SHUTDOWN_crash`; dom0 runs on). A third spins:
//! paused, its CPU time stands still; it is destroyed while it runs, after
//! a toolstack's bad requests (another page table or GDT for a running
//! vCPU, contexts from and to unmapped memory, dom0's frame as its
//! hypercall page) changed nothing. The free pages are counted after a
//! first run.
//!
//! @covers: domctl.setvcpucontext domctl.getvcpucontext domctl.hypercall_init
//! @covers: domctl.unpausedomain domctl.pausedomain
//! @variant: smp2 smp=2
#![no_std]
#![no_main]

use guest_abi::arch::{pfn_to_cr3, FLAT_KERNEL_SS, VGCF_IN_KERNEL, VGCF_ONLINE};
use guest_abi::domctl::*;
use guest_abi::errno::*;
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::sched::SHUTDOWN_CRASH;
use guest_abi::sysctl::{XenSysctl, XenSysctlPhysinfo, XEN_SYSCTL_PHYSINFO};
use guest_abi::xen::VIRQ_DOM_EXC;
use tests::check;
use tests::control::{
    check_free_back, domctl_on as domctl, free_pages, idle_10ms, settle, XEN_SLACK,
};
use tests::domu::{
    build, code_between, context, info, put_value, simple, vcpucontext, CODE_VA, DATA_VA, HCALL_VA,
    STACK_TOP,
};
use tests::evtchn::{bind_virq, close, Words};
use tests::pvmm::{read_u64, Window};

guest_abi::pv_guest!(main, name = "domu_run");

/// What the domU leaves in its data page: the two answers, at 0 and 8.
const SENTINEL: u64 = 0x5a5a_5a5a;

// The domU's code, copied into its code page: position-independent but
// for the absolute addresses of its own pages.
core::arch::global_asm!(
    ".pushsection .rodata.domu_code,\"a\"",
    ".global domu_hello_start",
    ".global domu_hello_end",
    ".global domu_crash_start",
    ".global domu_crash_end",
    "domu_hello_start:",
    "mov rdi, {data} + 0x100",
    "mov eax, 35",
    "syscall",
    "mov qword ptr [{data}], rax",
    "mov rdi, {data} + 0x800",
    "mov eax, 36",
    "syscall",
    "mov qword ptr [{data} + 8], rax",
    // Some milliseconds of work, so its CPU time shows whatever the
    // skew between the CPUs' clocks.
    "mov ecx, 3000000",
    "3: dec ecx",
    "jnz 3b",
    "mov edi, 2",
    "mov rsi, {data} + 0x10",
    "mov rax, {hcall} + 29 * 32",
    "call rax",
    "2: jmp 2b",
    "domu_hello_end:",
    "domu_crash_start:",
    "ud2",
    "domu_crash_end:",
    ".popsection",
    data = const DATA_VA,
    hcall = const HCALL_VA,
);

unsafe extern "C" {
    static domu_hello_start: u8;
    static domu_hello_end: u8;
    static domu_crash_start: u8;
    static domu_crash_end: u8;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Asks for sysctl and domctl, then powers off.
    Hello,
    /// `ud2` with no trap table.
    Crash,
}

/// Builds, runs and destroys one domU; false after a failed check that
/// leaves nothing to go on with.
fn run(r: &mut Report, w: &Window, words: Words, poll_port: u32, kind: Kind) -> bool {
    let name = if kind == Kind::Hello {
        "hello"
    } else {
        "crash"
    };
    let (start, end) = match kind {
        Kind::Hello => (&raw const domu_hello_start, &raw const domu_hello_end),
        Kind::Crash => (&raw const domu_crash_start, &raw const domu_crash_end),
    };
    // SAFETY: two labels of the block above, in order.
    let body = unsafe { code_between(start, end) };
    let Some(t) = build(r, w, 1, 1, body) else {
        return false;
    };
    let (d, l4) = (t.id, t.l4);
    let data = t.data_va(w);
    put_value(data, SENTINEL);
    put_value(data + 8, SENTINEL);
    put_value(
        data + 0x100,
        XenSysctl::new(XEN_SYSCTL_PHYSINFO, &XenSysctlPhysinfo::default()),
    );
    put_value(
        data + 0x800,
        XenDomctl::new(XEN_DOMCTL_GETDOMAININFO, 0, &0u64),
    );
    let init = |gmfn: u64| {
        domctl(XenDomctl::new(
            XEN_DOMCTL_HYPERCALL_INIT,
            d,
            &XenDomctlHypercallInit { gmfn },
        ))
        .0
    };
    check!(r, "hypercall_init: its L1 table", init(t.l1) => -EPERM);
    check!(r, "hypercall_init: a frame beyond memory", init(1 << 40) => -EINVAL);

    // The context: the errors, then a round trip.
    let mut good = context(l4);
    check!(r, "getvcpucontext before any", vcpucontext(XEN_DOMCTL_GETVCPUCONTEXT, d, 0, Some(&mut context(0))) => -ENODATA);
    check!(r, "setvcpucontext: vCPU 1 of 1", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, d, 1, Some(&mut good)) => -EINVAL);
    check!(r, "setvcpucontext: our own domain", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, 0, 0, Some(&mut good)) => -EINVAL);
    let mut bad_rip = context(l4);
    bad_rip.user_regs.rip = 0x8000_0000_0000;
    check!(r, "setvcpucontext: a non-canonical rip", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, d, 0, Some(&mut bad_rip)) => -EINVAL);
    check!(r, "setvcpucontext: cr3 a frame that is no L4", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, d, 0, Some(&mut context(t.data))) => -EINVAL);
    check!(r, "setvcpucontext", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, d, 0, Some(&mut good)) => 0);
    let mut got = context(0);
    check!(r, "getvcpucontext", vcpucontext(XEN_DOMCTL_GETVCPUCONTEXT, d, 0, Some(&mut got)) => 0);
    check!(r, "it has the rip", got.user_regs.rip => CODE_VA);
    check!(r, "the stack", got.user_regs.rsp => STACK_TOP);
    check!(r, "the page table", got.ctrlreg[3] => pfn_to_cr3(l4));
    check!(r, "kernel mode and online", got.flags & (VGCF_IN_KERNEL | VGCF_ONLINE) => VGCF_IN_KERNEL | VGCF_ONLINE);
    check!(r, "the kernel stack", (got.kernel_ss, got.kernel_sp) => (u64::from(FLAT_KERNEL_SS), STACK_TOP));
    check!(r, "its code selector (RPL 3)", got.user_regs.cs & 3 => 3);
    check!(r, "setvcpucontext again, another page table", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, d, 0, Some(&mut context(t.l3))) => -EOPNOTSUPP);
    check!(r, "reset (no context)", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, d, 0, None) => 0);
    check!(r, "getvcpucontext after the reset", vcpucontext(XEN_DOMCTL_GETVCPUCONTEXT, d, 0, Some(&mut got)) => -ENODATA);
    check!(r, "setvcpucontext once more", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, d, 0, Some(&mut good)) => 0);

    // Paused, it does not run.
    let before = info(d);
    check!(r, "paused, one vCPU online, not shut down",
        before.map(|i| (i.flags & (XEN_DOMINF_PAUSED | XEN_DOMINF_SHUTDOWN), i.nr_online_vcpus))
        => Some((XEN_DOMINF_PAUSED, 1)));
    idle_10ms(words.va, poll_port);
    check!(r, "paused, it did not run", read_u64(data) => SENTINEL);

    let Ok(virq) = bind_virq(VIRQ_DOM_EXC, 0) else {
        r.check("bind VIRQ_DOM_EXC", false);
        return false;
    };
    // (A port reused from an earlier run may still be pending.)
    words.clear_pending(virq);
    check!(r, "unpause it", simple(XEN_DOMCTL_UNPAUSEDOMAIN, d) => 0);
    let mut after = None;
    let mut heard = false;
    for _ in 0..500 {
        after = info(d);
        if after.is_some_and(|i| i.flags & XEN_DOMINF_SHUTDOWN != 0) {
            break;
        }
        idle_10ms(words.va, virq);
        if words.pending(virq) {
            heard = true;
            words.clear_pending(virq);
        }
    }
    // Xen may show the shutdown a moment before it sends the VIRQ (a vCPU
    // still on its way off a CPU): wait for it a while.
    for _ in 0..100 {
        heard |= words.pending(virq);
        if heard {
            break;
        }
        idle_10ms(words.va, virq);
    }
    let after = after.unwrap_or_default();
    println!(
        "{name}: flags {:#x}, cpu_time {} ns",
        after.flags, after.cpu_time
    );
    check!(r, "it shut down", after.flags & XEN_DOMINF_SHUTDOWN => XEN_DOMINF_SHUTDOWN);
    check!(r, "dom0 heard VIRQ_DOM_EXC", heard => true);
    check!(r, "it ran", after.cpu_time > 0 => true);
    match kind {
        Kind::Hello => {
            check!(r, "its reason: poweroff", after.shutdown_reason() => 0);
            check!(r, "sysctl from the domU", read_u64(data).cast_signed() => -EPERM);
            check!(r, "domctl from the domU", read_u64(data + 8).cast_signed() => -EPERM);
        }
        Kind::Crash => {
            check!(r, "its reason: crash", after.shutdown_reason() => SHUTDOWN_CRASH);
        }
    }
    check!(r, "getvcpucontext after it ran: the same page table",
        (vcpucontext(XEN_DOMCTL_GETVCPUCONTEXT, d, 0, Some(&mut got)), got.ctrlreg[3]) => (0, pfn_to_cr3(l4)));
    check!(r, "close the VIRQ", close(virq) => 0);
    check!(r, "destroy it and unmap its data page", t.destroy(w) => (0, 0));
    true
}

/// A domU that spins for ever: `pausedomain` stops it (its CPU time
/// stands still), `unpausedomain` lets it go on, and it is destroyed while
/// it runs (on the other CPU, in the two-CPU variant). Then what a
/// toolstack may not do: a context naming dom0's page table or GDT, a
/// context read into memory that is not there, dom0's frame as its
/// hypercall page.
fn spin(r: &mut Report, w: &Window, si: StartInfoRef, shared: u64, port: u32) -> bool {
    let Some(t) = build(r, w, 1, 1, &[0xeb, 0xfe]) else {
        return false;
    };
    let d = t.id;
    check!(r, "spin: setvcpucontext", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, d, 0, Some(&mut context(t.l4))) => 0);
    check!(r, "spin: unpause", simple(XEN_DOMCTL_UNPAUSEDOMAIN, d) => 0);
    idle_10ms(shared, port);
    idle_10ms(shared, port);
    let cpu = || info(d).map_or(0, |i| i.cpu_time);
    check!(r, "spin: it runs", cpu() > 0 => true);
    check!(r, "spin: pause it", simple(XEN_DOMCTL_PAUSEDOMAIN, d) => 0);
    let paused = cpu();
    let flags = info(d).map_or(0, |i| i.flags);
    check!(r, "spin: paused, not running", flags & (XEN_DOMINF_PAUSED | XEN_DOMINF_RUNNING) => XEN_DOMINF_PAUSED);
    for _ in 0..3 {
        idle_10ms(shared, port);
    }
    check!(r, "spin: paused, its CPU time stands still", cpu() => paused);
    check!(r, "spin: unpause it again", simple(XEN_DOMCTL_UNPAUSEDOMAIN, d) => 0);
    idle_10ms(shared, port);
    idle_10ms(shared, port);
    check!(r, "spin: it runs again", cpu() > paused => true);

    // Hostile toolstack inputs change nothing.
    let own_l4 = si.pt_base;
    let env_l4 = read_u64(si.mfn_list + ((own_l4 - guest_abi::rt::VIRT_BASE) >> 12) * 8);
    let mut ours = context(env_l4);
    check!(r, "setvcpucontext on a running vCPU, dom0's page table", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, d, 0, Some(&mut ours)) => -EOPNOTSUPP);
    let mut gdt = context(t.l4);
    gdt.gdt_ents = 16;
    gdt.gdt_frames[0] = env_l4;
    check!(r, "setvcpucontext naming another GDT", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, d, 0, Some(&mut gdt)) => -EOPNOTSUPP);
    let unmapped = XenDomctlVcpucontext {
        vcpu: 0,
        _pad: 0,
        ctxt: 0x10,
    };
    check!(r, "getvcpucontext into unmapped memory",
        domctl(XenDomctl::new(XEN_DOMCTL_GETVCPUCONTEXT, d, &unmapped)).0 => -EFAULT);
    check!(r, "setvcpucontext from unmapped memory",
        domctl(XenDomctl::new(XEN_DOMCTL_SETVCPUCONTEXT, d, &unmapped)).0 => -EFAULT);
    let init = XenDomctlHypercallInit { gmfn: env_l4 };
    check!(r, "hypercall_init: dom0's frame", domctl(XenDomctl::new(XEN_DOMCTL_HYPERCALL_INIT, d, &init)).0 => -EINVAL);
    check!(r, "pausedomain of ourselves", simple(XEN_DOMCTL_PAUSEDOMAIN, 0) => -EINVAL);
    check!(r, "spin: still runs after all that", info(d).map_or(0, |i| i.flags) & XEN_DOMINF_SHUTDOWN => 0);
    check!(r, "spin: destroy it while it runs", t.destroy(w) => (0, 0));
    check!(r, "spin: gone", info(d).is_none() => true);
    true
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("domu_run");
    let Some((w, shared, port)) = tests::domu::toolstack_env(&mut r, si) else {
        r.finish()
    };
    let words = Words::new(shared.va);
    // A first run: hv's heap and both hypervisors' tables grow the first
    // time a domain runs (and a VIRQ is bound), and keep what they grew.
    if !run(&mut r, &w, words, port, Kind::Hello) {
        r.finish()
    }
    let base = settle(shared.va, port, free_pages());
    for kind in [Kind::Hello, Kind::Crash] {
        if !run(&mut r, &w, words, port, kind) {
            r.finish()
        }
    }
    if !spin(&mut r, &w, si, shared.va, port) {
        r.finish()
    }
    check_free_back(&mut r, shared.va, port, base, XEN_SLACK);
    r.finish()
}
