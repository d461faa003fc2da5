//! XSAVE-managed state (x87, SSE, AVX) and XCR0 as a 64-bit PV guest
//! kernel sees them on Xen 4.17.
//!
//! The hypervisor runs with CR4.OSXSAVE set, so the guest's own `cpuid`
//! (not faulted) reports OSXSAVE, `xgetbv` works from the start and reads
//! the vCPU's XCR0, x87|SSE (3), and the forced-emulation `cpuid` from the
//! kernel reports OSXSAVE as well (Xen's documented leak of its own CR4),
//! while the guest's virtual CR4 has OSXSAVE clear. Leaf 0xd subleaf 0
//! offers x87, SSE and AVX (and AVX-512 where the CPU has it; never MPX,
//! PKRU or AMX), and its `ebx` is the area size for the vCPU's XCR0.
//!
//! `xsetbv` is emulated: #UD while the guest's CR4.OSXSAVE is clear (a
//! `mov` to cr4 sets and clears it), then #GP(0) for an XCR other than 0
//! (the high half of rcx is ignored), a value with x87 clear, AVX without
//! SSE, nothing, a component not offered (MPX, AVX-512 where absent, PKRU,
//! bits 62 and 63); XCR0 is then unchanged. Accepted values are what
//! `xgetbv` reads next. With XCR0 = 3, `vmovdqu` on a ymm register is
//! #UD; with 7 it works, the registers start at zero when AVX is first
//! enabled, and all 32 bytes survive hypercalls and a bounced exception.
//! Clearing CR4.OSXSAVE again leaves XCR0 and AVX as they were but makes
//! `xsetbv` #UD. The FPU starts in its initial state (FCW 0x37f, MXCSR
//! 0x1f80, XMM zero).
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::fmt;

use guest_abi::hypercall::{sched_op_yield, xen_version_version};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use tests::check;
use tests::cpuid;
use tests::expect::Shown;
use tests::fixup;

guest_abi::pv_guest!(main, name = "xsave");

const CR4_OSXSAVE: u64 = 1 << 18;
const F1C_XSAVE: u32 = 1 << 26;
const F1C_OSXSAVE: u32 = 1 << 27;
const F1C_AVX: u32 = 1 << 28;

const X87_SSE: u64 = 3;
const X87_SSE_AVX: u64 = 7;
const AVX512: u64 = 0xe0;

global_asm!(
    r#"
    /* Bodies for tests::fixup::catch. */
    xs_xgetbv:
    mov ecx, edi
    xgetbv
    shl rdx, 32
    or rax, rdx
    ret
    /* xsetbv with rcx = rdi (all 64 bits), edx:eax = rsi. */
    xs_xsetbv:
    mov rcx, rdi
    mov eax, esi
    mov rdx, rsi
    shr rdx, 32
    xsetbv
    xor eax, eax
    ret
    /* ymm1 := [rdi] */
    xs_ymm_load:
    vmovdqu ymm1, [rdi]
    xor eax, eax
    ret
    /* [rdi] := ymm1 */
    xs_ymm_store:
    vmovdqu [rdi], ymm1
    xor eax, eax
    ret
    xs_write_cr4:
    mov cr4, rdi
    xor eax, eax
    ret
    /* A #GP (wrmsr of an MSR nobody emulates), to bounce an exception. */
    xs_gp:
    mov ecx, 0x12345678
    xor eax, eax
    xor edx, edx
    wrmsr
    ret
"#
);

// SAFETY: the bodies above follow the C ABI (arguments in rdi/rsi, result
// in rax, only caller-saved registers and ymm1 changed, memory written
// only at the pointer given to `xs_ymm_store`) and either return or fault
// on one instruction.
unsafe extern "C" {
    fn xs_xgetbv(xcr: u64, _: u64, _: u64, _: u64) -> u64;
    fn xs_xsetbv(rcx: u64, value: u64, _: u64, _: u64) -> u64;
    fn xs_ymm_load(src: u64, _: u64, _: u64, _: u64) -> u64;
    fn xs_ymm_store(dst: u64, _: u64, _: u64, _: u64) -> u64;
    fn xs_write_cr4(value: u64, _: u64, _: u64, _: u64) -> u64;
    fn xs_gp(_: u64, _: u64, _: u64, _: u64) -> u64;
}

/// How an instruction ended: it completed (with a value), or it faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok(u64),
    Ud,
    Gp(u64),
    Other(u64),
}

impl Shown for Outcome {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok(v) => write!(f, "ok {v:#x}"),
            Self::Ud => f.write_str("#UD"),
            Self::Gp(ec) => write!(f, "#GP({ec:#x})"),
            Self::Other(v) => write!(f, "vector {v}"),
        }
    }
}

const DONE: Outcome = Outcome::Ok(0);

fn run(body: fixup::Body, a0: u64, a1: u64) -> Outcome {
    // SAFETY: every body here is one of the routines above, and the
    // pointers passed are to live buffers of 32 bytes.
    match unsafe { fixup::catch(body, [a0, a1, 0, 0]) } {
        Ok(v) => Outcome::Ok(v),
        Err(f) if f.vector == 6 => Outcome::Ud,
        Err(f) if f.vector == 13 => Outcome::Gp(f.error_code),
        Err(f) => Outcome::Other(f.vector),
    }
}

fn xgetbv(xcr: u64) -> Outcome {
    run(xs_xgetbv, xcr, 0)
}

fn xsetbv(rcx: u64, v: u64) -> Outcome {
    run(xs_xsetbv, rcx, v)
}

fn write_cr4(v: u64) -> Outcome {
    run(xs_write_cr4, v, 0)
}

fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: the hypervisor emulates reads of cr4 from the guest kernel.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack)) };
    v
}

/// `cpuid` through Xen's forced-emulation prefix, 32-bit values.
fn forced_cpuid(leaf: u32, sub: u32) -> [u32; 4] {
    cpuid::forced(leaf.into(), sub.into()).map(|r| u32::try_from(r & 0xffff_ffff).unwrap_or(0))
}

#[repr(C, align(32))]
struct Ymm([u8; 32]);

fn ymm1_load(v: &Ymm) -> Outcome {
    run(xs_ymm_load, v.0.as_ptr() as u64, 0)
}

fn ymm1_store(v: &mut Ymm) -> Outcome {
    run(xs_ymm_store, v.0.as_mut_ptr() as u64, 0)
}

/// x87 control word, MXCSR and XMM0 as the guest starts with them.
fn fpu_start_state() -> (u16, u32, [u8; 16]) {
    let mut fcw: u16 = 0;
    let mut mxcsr: u32 = 0;
    let mut xmm0 = [0xffu8; 16];
    // SAFETY: the stores write the three locals; SSE is enabled for PV
    // guests and CR0.TS is clear at start of day.
    unsafe {
        asm!(
            "fnstcw [{fcw}]",
            "stmxcsr [{mxcsr}]",
            "movdqu [{xmm0}], xmm0",
            fcw = in(reg) &mut fcw,
            mxcsr = in(reg) &mut mxcsr,
            xmm0 = in(reg) xmm0.as_mut_ptr(),
            options(nostack),
        )
    };
    (fcw, mxcsr, xmm0)
}

/// Checks leaf 0xd subleaf 0 `ebx` (the area size for the current XCR0),
/// from the forced-emulation path and from the CPU.
fn check_sizes(r: &mut Report, xcr0: u64, want: u32) {
    check!(r, "forced leaf 0xd.0 ebx with XCR0 = {xcr0}", forced_cpuid(0xd, 0)[1] => want);
    check!(r, "native leaf 0xd.0 ebx with XCR0 = {xcr0}", cpuid::native(0xd, 0)[1] => want);
}

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("xsave");
    check!(r, "set_trap_table(#UD, #GP, #PF catchers)", fixup::install() => 0);

    let (fcw, mxcsr, xmm0) = fpu_start_state();
    check!(r, "x87 control word at start", fcw => 0x37f);
    check!(r, "MXCSR at start", mxcsr => 0x1f80);
    r.check("XMM0 is zero at start", xmm0 == [0; 16]);

    let native1 = cpuid::native(1, 0)[2];
    let forced1 = forced_cpuid(1, 0)[2];
    if !r.check(
        format_args!("CPUID.1 reports XSAVE (forced ecx {forced1:#x})"),
        forced1 & F1C_XSAVE != 0,
    ) {
        r.finish();
    }
    check!(r, "native CPUID.1:ECX.OSXSAVE (the hypervisor's CR4)", native1 & F1C_OSXSAVE != 0 => true);
    check!(r, "forced CPUID.1:ECX.OSXSAVE from the kernel", forced1 & F1C_OSXSAVE != 0 => true);
    let cr4 = read_cr4();
    check!(r, "CR4.OSXSAVE as the guest reads it at start", cr4 & CR4_OSXSAVE => 0);

    let [a, _, c, d] = forced_cpuid(0xd, 0);
    let offered = u64::from(a) | u64::from(d) << 32;
    check!(r, "leaf 0xd.0 offers x87 and SSE", offered & X87_SSE => X87_SSE);
    check!(r, "leaf 0xd.0 offers nothing but x87, SSE, AVX, AVX-512", offered & !(X87_SSE_AVX | AVX512) => 0);
    let [ymm_size, ymm_offset, _, _] = forced_cpuid(0xd, 2);
    let avx = forced1 & F1C_AVX != 0;
    check!(r, "leaf 0xd.0 offers AVX as CPUID.1 does", offered & 4 != 0 => avx);
    check_sizes(&mut r, X87_SSE, 576);
    if offered == X87_SSE_AVX {
        check!(r, "leaf 0xd.0 ecx for x87|SSE|AVX", c => ymm_offset + ymm_size);
    }

    check!(r, "xgetbv(0) at start", xgetbv(0) => Outcome::Ok(X87_SSE));
    if forced_cpuid(0xd, 1)[0] & 4 != 0 {
        let x1 = xgetbv(1);
        r.check(
            format_args!("xgetbv(1) works (XGETBV_ECX1 offered; got {x1:?})"),
            matches!(x1, Outcome::Ok(_)),
        );
    }
    if !avx {
        r.skip("no AVX: the ymm checks need it");
        r.finish();
    }
    let pat = Ymm(*b"AVX state: 32 bytes, all kept. \n");
    check!(r, "vmovdqu to ymm1 with XCR0 = 3", ymm1_load(&pat) => Outcome::Ud);
    check!(r, "xsetbv(0, 7) with CR4.OSXSAVE clear", xsetbv(0, X87_SSE_AVX) => Outcome::Ud);
    check!(r, "xgetbv(0) after it", xgetbv(0) => Outcome::Ok(X87_SSE));

    check!(r, "mov to cr4 setting OSXSAVE", write_cr4(cr4 | CR4_OSXSAVE) => DONE);
    check!(r, "cr4 reads back with OSXSAVE", read_cr4() => cr4 | CR4_OSXSAVE);
    check!(r, "forced CPUID.1:ECX.OSXSAVE after it", forced_cpuid(1, 0)[2] & F1C_OSXSAVE != 0 => true);

    check!(r, "xsetbv(0, 7)", xsetbv(0, X87_SSE_AVX) => DONE);
    check!(r, "xgetbv(0) after it", xgetbv(0) => Outcome::Ok(X87_SSE_AVX));
    let avx_size = ymm_offset + ymm_size;
    check_sizes(&mut r, X87_SSE_AVX, avx_size);
    let mut first = Ymm([0xff; 32]);
    check!(r, "vmovdqu from ymm1 once AVX is enabled", ymm1_store(&mut first) => DONE);
    r.check("ymm1 reads zero once AVX is enabled", first.0 == [0; 32]);
    check!(r, "vmovdqu to ymm1", ymm1_load(&pat) => DONE);
    xen_version_version();
    sched_op_yield();
    check!(r, "a #GP bounced to the guest", run(xs_gp, 0, 0) => Outcome::Gp(0));
    let mut back = Ymm([0; 32]);
    check!(r, "vmovdqu from ymm1", ymm1_store(&mut back) => DONE);
    r.check(
        "ymm1 kept all 32 bytes across two hypercalls and a bounce",
        back.0 == pat.0,
    );

    let refused: [(&str, u64, u64); 9] = [
        ("x87 clear (6)", 0, 6),
        ("AVX without SSE (5)", 0, 5),
        ("nothing (0)", 0, 0),
        ("MPX (0x1f)", 0, 0x1f),
        ("AVX-512 where not offered (0xe7)", 0, 0xe7),
        ("PKRU (0x207)", 0, 0x207),
        ("bit 62 (0x4000000000000007)", 0, 7 | 1 << 62),
        ("bit 63 (0x8000000000000007)", 0, 7 | 1 << 63),
        ("of XCR1", 1, 7),
    ];
    for (what, rcx, v) in refused {
        if v & AVX512 != 0 && offered & AVX512 != 0 {
            continue;
        }
        check!(r, "xsetbv {what}", xsetbv(rcx, v) => Outcome::Gp(0));
        check!(r, "xgetbv(0) after it", xgetbv(0) => Outcome::Ok(X87_SSE_AVX));
    }
    check!(r, "xsetbv with rcx = 1 << 32 (XCR0: the high half is ignored)", xsetbv(1 << 32, X87_SSE_AVX) => DONE);

    check!(r, "xsetbv(0, 3)", xsetbv(0, X87_SSE) => DONE);
    check!(r, "xgetbv(0) after it", xgetbv(0) => Outcome::Ok(X87_SSE));
    check_sizes(&mut r, X87_SSE, 576);
    check!(r, "vmovdqu to ymm1 with XCR0 = 3", ymm1_load(&pat) => Outcome::Ud);
    check!(r, "xsetbv(0, 7) again", xsetbv(0, X87_SSE_AVX) => DONE);

    check!(r, "mov to cr4 clearing OSXSAVE", write_cr4(cr4) => DONE);
    check!(r, "cr4 reads back without OSXSAVE", read_cr4() => cr4);
    check!(r, "xgetbv(0) after it (XCR0 unchanged)", xgetbv(0) => Outcome::Ok(X87_SSE_AVX));
    check!(r, "xsetbv(0, 3) with CR4.OSXSAVE clear again", xsetbv(0, X87_SSE) => Outcome::Ud);
    check!(r, "vmovdqu to ymm1 (AVX still enabled)", ymm1_load(&pat) => DONE);
    r.finish()
}
