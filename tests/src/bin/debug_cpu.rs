//! The PV CPU's debug and CR4 interface at work, as on Xen 4.17:
//!
//! - CR4's guest-controlled bits: TSD, DE and FSGSBASE are the guest's to
//!   set when its CPUID offers the feature (other bits of a write are
//!   ignored); with FSGSBASE set, `{rd,wr}{fs,gs}base` work and agree with
//!   `set_segment_base` and the base MSRs, without it they are #UD; with
//!   TSD set, the guest kernel's `rdtsc`/`rdtscp` still work (emulated);
//!   with DE set, DR4/DR5 stop aliasing DR6/DR7 (`-ENODEV`, #UD for `mov`)
//!   and I/O breakpoints may be enabled.
//! - The debug registers reach the CPU: a data breakpoint on a guest
//!   variable and an instruction breakpoint on a guest function raise #DB
//!   in the guest with DR6 saying which; single-stepping sets DR6.BS.
//! - A breakpoint on a buffer the hypervisor writes for the guest fires
//!   inside the hypervisor, which discards it: the hypercall succeeds, no
//!   #DB reaches the guest, DR6 does not show it.
//! - A data breakpoint on the operand of a `mov ss` right before the
//!   `syscall` of a hypercall (the CVE-2018-8897 shape): under QEMU the
//!   #DB is taken before the `syscall`, in the guest.
//! - `mov` to and from DR0-DR7 in the guest kernel is emulated with
//!   `set_debugreg`/`get_debugreg`'s rules (#GP for what they refuse).
//!
//! @covers: set_debugreg get_debugreg
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use guest_abi::arch::SEGBASE_FS;
use guest_abi::errno::{ENODEV, EPERM};
use guest_abi::hypercall::{
    hypercall1, hypercall2, GET_DEBUGREG, SET_DEBUGREG, SET_SEGMENT_BASE, XEN_VERSION,
};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::version::XENVER_EXTRAVERSION;

use tests::check;
use tests::fixup::{self, catch, catcher, Fault};
use tests::pages::Pages;

guest_abi::pv_guest!(main, name = "debug_cpu");

const CR4_TSD: u64 = 1 << 2;
const CR4_DE: u64 = 1 << 3;
const CR4_PGE: u64 = 1 << 7;
const CR4_FSGSBASE: u64 = 1 << 16;

const DR6_DEFAULT: i64 = 0xffff_0ff0;
const DR6_B0: i64 = 1;
const DR6_B1: i64 = 2;
const DR6_BS: i64 = 1 << 14;

/// DR7: L0, write, 8 bytes.
const DR7_L0_WRITE8: u64 = 1 | (1 << 16) | (2 << 18);
/// DR7: L0, read or write, 8 bytes.
const DR7_L0_RW8: u64 = 1 | (3 << 16) | (2 << 18);
/// DR7: L1, instruction.
const DR7_L1_EXEC: u64 = 1 << 2;
/// DR7: G1, I/O breakpoint, 1 byte.
const DR7_G1_IO: u64 = (1 << 3) | (2 << 20);

const VEC_DB: u64 = 1;
const VEC_UD: u64 = 6;
const VEC_GP: u64 = 13;

/// What the breakpoints watch.
static WATCHED: AtomicU64 = AtomicU64::new(0);
/// The operand of the `mov ss` before a hypercall.
static SS_VALUE: AtomicU64 = AtomicU64::new(0);
/// Written by the hypervisor (`XENVER_extraversion`: 16 bytes), never
/// by this guest's code.
static XEN_BUF: Pages<1> = Pages::new();

global_asm!(
    r#"
    .pushsection .text.debug_cpu, "ax"
    .globl dc_rdfsbase
dc_rdfsbase:
    rdfsbase rax
    ret
    .globl dc_wrfsbase
dc_wrfsbase:
    wrfsbase rdi
    xor eax, eax
    ret
    .globl dc_rdgsbase
dc_rdgsbase:
    rdgsbase rax
    ret
    .globl dc_wrgsbase
dc_wrgsbase:
    wrgsbase rdi
    xor eax, eax
    ret
    .globl dc_rdtsc
dc_rdtsc:
    rdtsc
    shl rdx, 32
    or rax, rdx
    ret
    .globl dc_rdtscp
dc_rdtscp:
    rdtscp
    shl rdx, 32
    or rax, rdx
    ret
    .globl dc_load
dc_load:
    mov rax, [rdi]
    ret
    .globl dc_store
dc_store:
    mov [rdi], rsi
    xor eax, eax
    ret
    .globl dc_call
dc_call:
    call rdi
    ret
    .globl dc_target
dc_target:
    mov eax, 0x7a
    ret
    /* Sets TF with popf; the #DB comes after the next instruction. */
    .globl dc_single_step
dc_single_step:
    pushfq
    or qword ptr [rsp], 0x100
    popfq
    nop
    .globl dc_single_step_after
dc_single_step_after:
    nop
    pushfq
    and qword ptr [rsp], ~0x100
    popfq
    xor eax, eax
    ret
    /* hypercall(nr = rdi, a1 = rsi, a2 = rdx) by `syscall`. */
    .globl dc_hypercall2
dc_hypercall2:
    mov eax, edi
    mov rdi, rsi
    mov rsi, rdx
    syscall
    ret
    /* The same, with `mov ss` from [rcx] right before the `syscall`. */
    .globl dc_hypercall2_mov_ss
dc_hypercall2_mov_ss:
    mov eax, edi
    mov rdi, rsi
    mov rsi, rdx
    mov ss, [rcx]
    .globl dc_mov_ss_syscall
dc_mov_ss_syscall:
    syscall
    ret
    .globl dc_mov_to_dr0
dc_mov_to_dr0:
    mov dr0, rdi
    xor eax, eax
    ret
    .globl dc_mov_from_dr0
dc_mov_from_dr0:
    mov rax, dr0
    ret
    .globl dc_mov_to_dr7
dc_mov_to_dr7:
    mov dr7, rdi
    xor eax, eax
    ret
    .globl dc_mov_from_dr6
dc_mov_from_dr6:
    mov rax, dr6
    ret
    .globl dc_mov_from_dr4
dc_mov_from_dr4:
    mov rax, dr4
    ret
    .popsection
"#
);

// SAFETY: each is an assembly routine above following the C ABI (the
// argument registers in order, the result in rax), usable as a
// `fixup::catch` body.
unsafe extern "C" {
    fn dc_rdfsbase(_: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_wrfsbase(v: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_rdgsbase(_: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_wrgsbase(v: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_rdtsc(_: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_rdtscp(_: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_load(addr: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_store(addr: u64, v: u64, _: u64, _: u64) -> u64;
    fn dc_call(f: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_target();
    fn dc_single_step(_: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_single_step_after();
    fn dc_hypercall2(nr: u64, a1: u64, a2: u64, _: u64) -> u64;
    fn dc_hypercall2_mov_ss(nr: u64, a1: u64, a2: u64, ss: u64) -> u64;
    fn dc_mov_ss_syscall();
    fn dc_mov_to_dr0(v: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_mov_from_dr0(_: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_mov_to_dr7(v: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_mov_from_dr6(_: u64, _: u64, _: u64, _: u64) -> u64;
    fn dc_mov_from_dr4(_: u64, _: u64, _: u64, _: u64) -> u64;
}

type Body = unsafe extern "C" fn(u64, u64, u64, u64) -> u64;

/// Runs one of the bodies above.
fn run(body: Body, args: [u64; 4]) -> Result<u64, Fault> {
    // SAFETY: the bodies return with the C ABI or fault on a vector the
    // trap table routes to `fixup`; what they change (debug state, FS/GS
    // bases, the watched variables) is what this test checks.
    unsafe { catch(body, args) }
}

/// A body's result, or the vector it faulted on (as a negative number).
fn ok(res: Result<u64, Fault>) -> Result<u64, i64> {
    res.map_err(|f| -f.vector.cast_signed())
}

fn vector(res: Result<u64, Fault>) -> Option<u64> {
    res.err().map(|f| f.vector)
}

fn set_dr(reg: u64, v: u64) -> i64 {
    // SAFETY: breakpoints only make the guest's own accesses trap.
    unsafe { hypercall2(SET_DEBUGREG, reg, v) }
}

fn get_dr(reg: u64) -> i64 {
    // SAFETY: only reads.
    unsafe { hypercall1(GET_DEBUGREG, reg) }
}

fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: emulated read of CR4.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack)) };
    v
}

fn write_cr4(v: u64) {
    // SAFETY: emulated; only the guest-controlled bits take effect, and
    // the test restores them.
    unsafe { asm!("mov cr4, {}", in(reg) v, options(nomem, nostack)) };
}

fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: emulated read of a base MSR.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    u64::from(hi) << 32 | u64::from(lo)
}

fn addr<T>(p: &T) -> u64 {
    core::ptr::from_ref(p) as u64
}

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("debug_cpu");
    let table = [
        catcher(1),
        catcher(6),
        catcher(13),
        catcher(14),
        guest_abi::xen::TrapInfo::default(),
    ];
    check!(r, "set_trap_table(#DB, #UD, #GP, #PF)", fixup::set_trap_table(&table) => 0);
    let base_cr4 = read_cr4();
    check!(r, "CR4 at start has none of TSD, DE, FSGSBASE", base_cr4 & (CR4_TSD | CR4_DE | CR4_FSGSBASE) => 0);
    let [_, _, _, d1] = tests::cpuid::forced(1, 0);
    let [_, b7, _, _] = tests::cpuid::forced(7, 0);

    // Bits outside the guest's are ignored.
    write_cr4(base_cr4 | CR4_PGE);
    check!(r, "mov to cr4 with PGE: ignored", read_cr4() => base_cr4);

    fsgsbase(&mut r, base_cr4, b7 & 1 != 0);
    tsd(&mut r, base_cr4, d1 & (1 << 4) != 0);
    debug_extensions(&mut r, base_cr4, d1 & (1 << 2) != 0);
    breakpoints(&mut r);
    in_the_hypervisor(&mut r);
    emulated_mov(&mut r);
    write_cr4(base_cr4);
    r.finish()
}

fn fsgsbase(r: &mut Report, base_cr4: u64, offered: bool) {
    r.check(format_args!("CPUID offers FSGSBASE: {offered}"), true);
    check!(r, "rdfsbase with CR4.FSGSBASE clear: #UD", vector(run(dc_rdfsbase, [0; 4])) => Some(VEC_UD));
    if !offered {
        write_cr4(base_cr4 | CR4_FSGSBASE);
        check!(r, "CR4.FSGSBASE without the feature: dropped", read_cr4() => base_cr4);
        return;
    }
    write_cr4(base_cr4 | CR4_FSGSBASE);
    check!(r, "mov to cr4 with FSGSBASE: reads back", read_cr4() => base_cr4 | CR4_FSGSBASE);
    // SAFETY: the FS base is the guest's; nothing here uses FS.
    let rc = unsafe { hypercall2(SET_SEGMENT_BASE, u64::from(SEGBASE_FS), 0x1234_5000) };
    check!(r, "set_segment_base(FS, 0x12345000)", rc => 0);
    check!(r, "rdfsbase reads it", ok(run(dc_rdfsbase, [0; 4])) => Ok(0x1234_5000));
    check!(r, "wrfsbase 0x6789a000", ok(run(dc_wrfsbase, [0x6789_a000, 0, 0, 0])) => Ok(0));
    check!(r, "rdmsr(FS_BASE) after wrfsbase", rdmsr(0xc000_0100) => 0x6789_a000);
    let gs = run(dc_rdgsbase, [0; 4]);
    check!(r, "rdgsbase = rdmsr(GS_BASE)", ok(gs) => Ok(rdmsr(0xc000_0101)));
    check!(r, "wrgsbase 0xabc000", ok(run(dc_wrgsbase, [0xabc000, 0, 0, 0])) => Ok(0));
    check!(r, "rdmsr(GS_BASE) after wrgsbase", rdmsr(0xc000_0101) => 0xabc000);
    if let Ok(g) = gs {
        let _ = run(dc_wrgsbase, [g, 0, 0, 0]);
    }
    let _ = run(dc_wrfsbase, [0, 0, 0, 0]);
    write_cr4(base_cr4);
    check!(r, "CR4.FSGSBASE cleared", read_cr4() => base_cr4);
    check!(r, "rdfsbase again: #UD", vector(run(dc_rdfsbase, [0; 4])) => Some(VEC_UD));
    check!(r, "wrgsbase again: #UD", vector(run(dc_wrgsbase, [0; 4])) => Some(VEC_UD));
}

fn tsd(r: &mut Report, base_cr4: u64, offered: bool) {
    r.check(format_args!("CPUID offers TSC: {offered}"), true);
    if !offered {
        return;
    }
    write_cr4(base_cr4 | CR4_TSD);
    check!(r, "mov to cr4 with TSD: reads back", read_cr4() => base_cr4 | CR4_TSD);
    let a = run(dc_rdtsc, [0; 4]);
    let b = run(dc_rdtsc, [0; 4]);
    r.check(
        format_args!("kernel rdtsc with CR4.TSD: emulated ({a:?}, then {b:?})"),
        matches!((a, b), (Ok(x), Ok(y)) if y > x),
    );
    let [_, _, _, e1] = tests::cpuid::forced(0x8000_0001, 0);
    if e1 & (1 << 27) != 0 {
        let c = run(dc_rdtscp, [0; 4]);
        r.check(
            format_args!("kernel rdtscp with CR4.TSD: emulated ({c:?})"),
            matches!((b, c), (Ok(y), Ok(z)) if z > y),
        );
    }
    write_cr4(base_cr4);
    check!(r, "CR4.TSD cleared", read_cr4() => base_cr4);
    r.check("rdtsc without TSD", run(dc_rdtsc, [0; 4]).is_ok());
}

fn debug_extensions(r: &mut Report, base_cr4: u64, offered: bool) {
    r.check(format_args!("CPUID offers DE: {offered}"), true);
    if !offered {
        return;
    }
    check!(r, "I/O breakpoint without CR4.DE: -EPERM", set_dr(7, DR7_G1_IO) => -EPERM);
    write_cr4(base_cr4 | CR4_DE);
    check!(r, "mov to cr4 with DE: reads back", read_cr4() => base_cr4 | CR4_DE);
    check!(r, "get_debugreg(4) with CR4.DE: -ENODEV", get_dr(4) => -ENODEV);
    check!(r, "set_debugreg(5) with CR4.DE: -ENODEV", set_dr(5, 0) => -ENODEV);
    check!(r, "mov from dr4 with CR4.DE: #UD", vector(run(dc_mov_from_dr4, [0; 4])) => Some(VEC_UD));
    check!(r, "I/O breakpoint with CR4.DE", set_dr(7, DR7_G1_IO) => 0);
    check!(r, "get_debugreg(7) keeps it", get_dr(7) => (DR7_G1_IO | 0x400).cast_signed());
    check!(r, "set_debugreg(7, 0)", set_dr(7, 0) => 0);
    write_cr4(base_cr4);
    check!(r, "CR4.DE cleared", read_cr4() => base_cr4);
    check!(r, "get_debugreg(4) aliases DR6 again", get_dr(4) => get_dr(6));
    check!(r, "mov from dr4 without CR4.DE: DR6", ok(run(dc_mov_from_dr4, [0; 4])) => Ok(get_dr(6).cast_unsigned()));
}

fn breakpoints(r: &mut Report) {
    let watched = addr(&WATCHED);
    check!(r, "set_debugreg(6, 0)", set_dr(6, 0) => 0);
    check!(r, "set_debugreg(0, &WATCHED)", set_dr(0, watched) => 0);
    check!(r, "set_debugreg(7, L0 write 8)", set_dr(7, DR7_L0_WRITE8) => 0);
    let res = run(dc_store, [watched, 5, 0, 0]);
    check!(r, "a store to the watched variable: #DB", vector(res) => Some(VEC_DB));
    check!(r, "the store was done (a trap)", WATCHED.load(SeqCst) => 5);
    check!(r, "DR6 after it: B0", get_dr(6) => DR6_DEFAULT | DR6_B0);
    check!(r, "a load does not trigger a write breakpoint", ok(run(dc_load, [watched, 0, 0, 0])) => Ok(5));
    check!(r, "set_debugreg(6, 0) clears", set_dr(6, 0) => 0);
    check!(r, "get_debugreg(6)", get_dr(6) => DR6_DEFAULT);

    let target = dc_target as *const () as u64;
    check!(r, "set_debugreg(1, dc_target)", set_dr(1, target) => 0);
    check!(r, "set_debugreg(7, L1 exec)", set_dr(7, DR7_L1_EXEC) => 0);
    let res = run(dc_call, [target, 0, 0, 0]);
    check!(r, "calling the watched function: #DB", vector(res) => Some(VEC_DB));
    check!(r, "at its first instruction (a fault)", res.err().map(|f| f.rip) => Some(target));
    check!(r, "DR6: B1", get_dr(6) => DR6_DEFAULT | DR6_B1);
    check!(r, "set_debugreg(7, 0)", set_dr(7, 0) => 0);
    check!(r, "the function runs with the breakpoint off", ok(run(dc_call, [target, 0, 0, 0])) => Ok(0x7a));
    check!(r, "set_debugreg(6, 0)", set_dr(6, 0) => 0);

    let res = run(dc_single_step, [0; 4]);
    check!(r, "single step: #DB", vector(res) => Some(VEC_DB));
    check!(
        r,
        "after the instruction following popf",
        res.err().map(|f| f.rip) => Some(dc_single_step_after as *const () as u64)
    );
    check!(r, "DR6: BS", get_dr(6) => DR6_DEFAULT | DR6_BS);
    check!(r, "set_debugreg(6, 0)", set_dr(6, 0) => 0);
}

fn in_the_hypervisor(r: &mut Report) {
    let buf = XEN_BUF.addr();
    check!(r, "set_debugreg(0, the version buffer)", set_dr(0, buf) => 0);
    check!(r, "set_debugreg(7, L0 write 8)", set_dr(7, DR7_L0_WRITE8) => 0);
    let res = run(
        dc_hypercall2,
        [XEN_VERSION, u64::from(XENVER_EXTRAVERSION), buf, 0],
    );
    check!(r, "xen_version(extraversion) into the watched buffer: no #DB for the guest", ok(res) => Ok(0));
    check!(r, "DR6: the hypervisor's hit is not the guest's", get_dr(6) => DR6_DEFAULT);
    check!(r, "set_debugreg(6, 0)", set_dr(6, 0) => 0);

    let ss: u64;
    // SAFETY: reads the stack segment selector.
    unsafe { asm!("mov {0:x}, ss", out(reg) ss, options(nomem, nostack)) };
    SS_VALUE.store(ss & 0xffff, SeqCst);
    let ss_at = addr(&SS_VALUE);
    check!(r, "set_debugreg(0, the mov ss operand)", set_dr(0, ss_at) => 0);
    check!(r, "set_debugreg(7, L0 read/write 8)", set_dr(7, DR7_L0_RW8) => 0);
    let res = run(dc_hypercall2_mov_ss, [XEN_VERSION, 0, 0, ss_at]);
    // Under QEMU's TCG (which both hypervisors run on here) the data
    // breakpoint of the `mov ss` is taken before the `syscall` rather than
    // deferred past it into the hypervisor's entry; either way the guest
    // gets its #DB in its own context and the hypervisor carries on.
    let syscall_at = dc_mov_ss_syscall as *const () as u64;
    check!(r, "mov ss then syscall: #DB", vector(res) => Some(VEC_DB));
    check!(r, "at the syscall", res.err().map(|f| f.rip) => Some(syscall_at));
    check!(r, "DR6: B0", get_dr(6) => DR6_DEFAULT | DR6_B0);
    check!(r, "set_debugreg(7, 0)", set_dr(7, 0) => 0);
    check!(r, "set_debugreg(6, 0)", set_dr(6, 0) => 0);
}

fn emulated_mov(r: &mut Report) {
    check!(r, "mov to dr0", ok(run(dc_mov_to_dr0, [0x4000, 0, 0, 0])) => Ok(0));
    check!(r, "get_debugreg(0) after it", get_dr(0) => 0x4000);
    check!(r, "set_debugreg(0, 0x5000)", set_dr(0, 0x5000) => 0);
    check!(r, "mov from dr0", ok(run(dc_mov_from_dr0, [0; 4])) => Ok(0x5000));
    check!(r, "mov to dr0 of hv's range: #GP", vector(run(dc_mov_to_dr0, [0xffff_8000_0000_0000, 0, 0, 0])) => Some(VEC_GP));
    check!(r, "get_debugreg(0) unchanged", get_dr(0) => 0x5000);
    check!(r, "mov to dr7 with GD: #GP", vector(run(dc_mov_to_dr7, [0x2000, 0, 0, 0])) => Some(VEC_GP));
    check!(r, "mov to dr7 with bit 32: #GP", vector(run(dc_mov_to_dr7, [1 << 32, 0, 0, 0])) => Some(VEC_GP));
    check!(r, "mov to dr7 of 0", ok(run(dc_mov_to_dr7, [0, 0, 0, 0])) => Ok(0));
    check!(r, "get_debugreg(7) after it", get_dr(7) => 0x400);
    check!(r, "mov from dr6", ok(run(dc_mov_from_dr6, [0; 4])) => Ok(DR6_DEFAULT.cast_unsigned()));
    check!(r, "set_debugreg(0, 0)", set_dr(0, 0) => 0);
}
