//! Privileged instructions a 64-bit PV kernel may use, as Xen 4.17
//! emulates them.
//!
//! A PV kernel runs in ring 3: its privileged instructions fault and the
//! hypervisor emulates a fixed set. Checked here, from the guest kernel:
//!
//! - the forced-emulation prefix (`ud2; .ascii "xen"; cpuid`): Xen's leaves
//!   0x40000000–0x40000005 ("XenVMMXenVMM", max leaf 0x40000005, version
//!   4.17, one hypercall page at MSR 0x40000000, the PV feature
//!   MMU_PT_UPDATE_PRESERVE_AD, a time leaf for a native TSC, an empty HVM
//!   leaf, a machine address width), the PV policy of leaf 1 (hypervisor
//!   bit set; VMX, PCID,
//!   x2APIC, MONITOR, PSE, PGE and the APIC id hidden; MTRR leaked to the
//!   hardware domain's kernel as the host has it), empty leaves 5 and 6,
//!   the basic-leaf limit of 0xd, long mode without 1 GiB pages, and that
//!   only the low halves of rax/rcx count;
//! - `mov` from cr0 (PE, PG, no TS), cr2 (what `mov` to cr2 wrote), cr3
//!   (the machine address of `pt_base`) and cr4 (Xen's PV value: PAE,
//!   OSFXSR, OSXMMEXCPT, and MCE); `mov` to cr4 of that value; TS set by `mov` to
//!   cr0 and cleared by `clts`; `wbinvd`;
//! - MSRs: EFER (LME/LMA/NXE/SCE, no SVME; writing it back), APIC_BASE
//!   (0xfee00900), PAT (Xen's 0x50100070406), the hypercall-page MSR
//!   (reads 0), FS_BASE and SHADOW_GS_BASE (write, read back), TSC;
//! - `physdev_op` set_iopl (`-EINVAL` above 3, `-EFAULT` on a bad
//!   pointer) and set_iobitmap (`-EINVAL` for a bitmap in Xen's range or
//!   more than 65536 ports), an unknown sub-op (`-ENOSYS`);
//! - port I/O with IOPL 1: a port the hypervisor keeps (PIC 0x21) reads
//!   0xff, the PCI address port 0xcf8 keeps a dword, 0xcfc reads the host
//!   bridge's vendor 0x8086, `rep insb` fills memory and updates
//!   rdi/rcx, `cli`/`sti` are accepted; with IOPL 0, the I/O bitmap alone
//!   grants 0xcf8-0xcff.
//!
//! The guest has no trap table, so a #GP the hypervisor does not emulate
//! crashes it; the variants check three such cases: `in` without IOPL or
//! bitmap, `wrmsr` of an MSR neither emulates, and `mov` to cr0 changing a
//! bit other than TS.
//!
//! @covers: physdev_op.set_iopl physdev_op.set_iobitmap
//! @variant: noiopl cmdline=crash=in expect-result=none expect-exit=crash expect-line="about to crash: in" expect-line="(hv) ERROR: CPU0: domain 0 crashed: #GP (vector 13)" expect-line="(XEN) d0v0 Unhandled: vec 13, #GP[0000]"
//! @variant: wrmsr cmdline=crash=wrmsr expect-result=none expect-exit=crash expect-line="about to crash: wrmsr" expect-line="(hv) ERROR: CPU0: domain 0 crashed: #GP (vector 13)" expect-line="(XEN) d0v0 Unhandled: vec 13, #GP[0000]"
//! @variant: cr0 cmdline=crash=cr0 expect-result=none expect-exit=crash expect-line="about to crash: cr0" expect-line="(hv) ERROR: CPU0: domain 0 crashed: #GP (vector 13)" expect-line="(XEN) d0v0 Unhandled: vec 13, #GP[0000]"
//! @variant: refused_loop cmdline=refused=4000 max-lines="12 unmodifiable CR0"
//! @variant: cr3 cmdline=crash=cr3 expect-result=none expect-exit=crash expect-line="about to crash: cr3" expect-line="(hv) ERROR: CPU0: domain 0 crashed: #GP (vector 13)" expect-line="(XEN) d0v0 Unhandled: vec 13, #GP[0000]"
#![no_std]
#![no_main]

use core::arch::asm;

use guest_abi::errno;
use guest_abi::hypercall::{hypercall2, PHYSDEV_OP};
use guest_abi::physdev::{PHYSDEVOP_SET_IOBITMAP, PHYSDEVOP_SET_IOPL};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::{StartInfoRef, VIRT_BASE};
use tests::check;
use tests::cpuid::{forced as forced_cpuid, native as native_cpuid};
use tests::expect;

guest_abi::pv_guest!(main, name = "emulation");

/// The low 32 bits of a register.
fn lo32(v: u64) -> u32 {
    u32::try_from(v & 0xffff_ffff).unwrap_or(0)
}

macro_rules! read_cr {
    ($cr:literal) => {{
        let v: u64;
        // SAFETY: the hypervisor emulates reads of this control register.
        unsafe { asm!(concat!("mov {}, ", $cr), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the hypervisor emulates this MSR read.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    u64::from(hi) << 32 | u64::from(lo)
}

fn wrmsr(msr: u32, v: u64) {
    // SAFETY: the hypervisor emulates (or refuses) this MSR write.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") lo32(v), in("edx") lo32(v >> 32), options(nomem, nostack))
    };
}

fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: emulated port read.
    unsafe { asm!("in al, dx", in("dx") port, out("al") v, options(nomem, nostack)) };
    v
}

fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: emulated port read.
    unsafe { asm!("in eax, dx", in("dx") port, out("eax") v, options(nomem, nostack)) };
    v
}

fn outl(port: u16, v: u32) {
    // SAFETY: emulated port write.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") v, options(nomem, nostack)) };
}

fn physdev(cmd: u32, arg: u64) -> i64 {
    // SAFETY: the argument is a pointer to a live struct of the sub-op or
    // a deliberately bad pointer the hypervisor must refuse.
    unsafe { hypercall2(PHYSDEV_OP, u64::from(cmd), arg) }
}

fn set_iopl(iopl: u32) -> i64 {
    physdev(PHYSDEVOP_SET_IOPL, &iopl as *const u32 as u64)
}

#[repr(C)]
struct SetIobitmap {
    bitmap: u64,
    nr_ports: u32,
    pad: u32,
}

fn set_iobitmap(bitmap: u64, nr_ports: u32) -> i64 {
    let a = SetIobitmap {
        bitmap,
        nr_ports,
        pad: 0,
    };
    physdev(PHYSDEVOP_SET_IOBITMAP, &a as *const SetIobitmap as u64)
}

const CR0_PE: u64 = 1;
const CR0_TS: u64 = 1 << 3;
const CR0_PG: u64 = 1 << 31;
/// PAE, OSFXSR, OSXMMEXCPT; MCE (bit 6) too when the CPU has it.
const CR4_PV: u64 = (1 << 5) | (1 << 9) | (1 << 10);
const CR4_MCE: u64 = 1 << 6;

fn check_cpuid(r: &mut Report) {
    let [a, b, c, d] = forced_cpuid(0x4000_0000, 0);
    let mut sig = [0u8; 12];
    sig[..4].copy_from_slice(&lo32(b).to_le_bytes());
    sig[4..8].copy_from_slice(&lo32(c).to_le_bytes());
    sig[8..].copy_from_slice(&lo32(d).to_le_bytes());
    r.check(
        format_args!(
            "cpuid 0x40000000: max leaf {a:#x}, signature {:?}",
            expect::text(&sig)
        ),
        a == 0x4000_0005 && &sig == b"XenVMMXenVMM",
    );
    let v = forced_cpuid(0x4000_0001, 0);
    r.check(
        format_args!(
            "cpuid 0x40000001: version {:#x} (4.17), rest {:x?}",
            v[0],
            &v[1..]
        ),
        v == [0x4_0011, 0, 0, 0],
    );
    let v = forced_cpuid(0x4000_0002, 0);
    r.check(
        format_args!("cpuid 0x40000002: 1 hypercall page, MSR 0x40000000, PRESERVE_AD: {v:x?}"),
        v == [1, 0x4000_0000, 1, 0],
    );
    let v = forced_cpuid(0x4000_0003, 0);
    let rdtscp = if native_cpuid(0x8000_0001, 0)[3] & (1 << 27) != 0 {
        4
    } else {
        0
    };
    r.check(
        format_args!(
            "cpuid 0x40000003.0 (time): native TSC, RDTSCP as the host, tsc_mode 0: {v:x?}"
        ),
        v[0] == rdtscp && v[1] == 0 && v[3] == 0,
    );
    let v = forced_cpuid(0x4000_0004, 0);
    r.check(
        format_args!("cpuid 0x40000004 (HVM leaf) empty for PV: {v:x?}"),
        v == [0; 4],
    );
    let v = forced_cpuid(0x4000_0005, 0);
    r.check(
        format_args!("cpuid 0x40000005: machine address width {} bits", v[1]),
        v[0] == 0 && (20..=52).contains(&v[1]) && v[2] == 0 && v[3] == 0,
    );
    for leaf in [0x4000_0006u64, 0x4000_0100, 0x5000_0000] {
        let v = forced_cpuid(leaf, 0);
        r.check(
            format_args!("cpuid {leaf:#x} all zero: {v:x?}"),
            v == [0; 4],
        );
    }
    let v = forced_cpuid((0xdead_u64 << 32) | 0x4000_0001, 0xbeef_u64 << 32);
    r.check(
        format_args!("cpuid with junk in the upper halves of rax/rcx: {v:x?}"),
        v == [0x4_0011, 0, 0, 0],
    );

    let native0 = native_cpuid(0, 0);
    let v = forced_cpuid(0, 0);
    r.check(
        format_args!(
            "cpuid 0: max basic leaf {:#x} <= 0xd, vendor as native",
            v[0]
        ),
        v[0] <= 0xd
            && v[0] == u64::from(native0[0].min(0xd))
            && [v[1], v[2], v[3]]
                == [
                    u64::from(native0[1]),
                    u64::from(native0[2]),
                    u64::from(native0[3]),
                ],
    );
    let native1 = native_cpuid(1, 0);
    let [a, b, c, d] = forced_cpuid(1, 0);
    println!("cpuid 1: native {native1:08x?}, emulated [{a:08x}, {b:08x}, {c:08x}, {d:08x}]");
    r.check("cpuid 1: hypervisor bit (ecx 31) set", c & (1 << 31) != 0);
    r.check("cpuid 1: APIC id (ebx 31:24) hidden", b >> 24 == 0);
    for (bit, name) in [(3, "MONITOR"), (5, "VMX"), (17, "PCID"), (21, "x2APIC")] {
        r.check(
            format_args!("cpuid 1: {name} (ecx {bit}) hidden"),
            c & (1 << bit) == 0,
        );
    }
    for (bit, name) in [(3, "PSE"), (13, "PGE"), (16, "PAT")] {
        let want = bit == 16 && native1[3] & (1 << 16) != 0;
        r.check(
            format_args!(
                "cpuid 1: {name} (edx {bit}) {}",
                if want { "offered" } else { "hidden" }
            ),
            (d & (1 << bit) != 0) == want,
        );
    }
    r.check(
        "cpuid 1: MTRR (edx 12) leaked to the hardware domain's kernel as the host has it",
        (d & (1 << 12) != 0) == (native1[3] & (1 << 12) != 0),
    );
    r.check(
        "cpuid 1: SSE2 and FXSR as the host has them",
        d & (3 << 25) == u64::from(native1[3] & (3 << 25)) && d & (1 << 24) != 0,
    );
    for leaf in [5u64, 6] {
        let v = forced_cpuid(leaf, 0);
        r.check(
            format_args!("cpuid {leaf} empty for a PV guest: {v:x?}"),
            v == [0; 4],
        );
    }
    let [_, _, _, d] = forced_cpuid(0x8000_0001, 0);
    r.check(
        format_args!("cpuid 0x80000001: long mode, no 1 GiB pages (edx {d:#x})"),
        d & (1 << 29) != 0 && d & (1 << 26) == 0,
    );
}

fn check_control_registers(r: &mut Report, si: StartInfoRef) {
    let cr0 = read_cr!("cr0");
    r.check(
        format_args!("mov from cr0: {cr0:#x} has PE and PG, no TS"),
        cr0 & (CR0_PE | CR0_PG) == CR0_PE | CR0_PG && cr0 & CR0_TS == 0,
    );
    let cr3 = read_cr!("cr3");
    let pfn = (si.pt_base - VIRT_BASE) / 4096;
    // SAFETY: mfn_list maps the domain's nr_pages entries; pfn is in the
    // initial mapping.
    let mfn = unsafe { *(si.mfn_list as *const u64).add(pfn as usize) };
    r.check(
        format_args!("mov from cr3: {cr3:#x} = machine address of pt_base (mfn {mfn:#x})"),
        cr3 == mfn << 12,
    );
    // `mov` to cr3 is emulated as MMUEXT_NEW_BASEPTR; the current table
    // again is allowed and changes nothing.
    // SAFETY: cr3 is written with the value just read: the same page table.
    unsafe { asm!("mov cr3, {}", in(reg) cr3, options(nostack)) };
    let again = read_cr!("cr3");
    r.check(
        format_args!("mov to cr3 of the current table is emulated (cr3 now {again:#x})"),
        again == cr3,
    );
    let cr4 = read_cr!("cr4");
    let mce = if native_cpuid(1, 0)[3] & (1 << 7) != 0 {
        CR4_MCE
    } else {
        0
    };
    r.check(
        format_args!("mov from cr4: {cr4:#x} = PAE|OSFXSR|OSXMMEXCPT, and MCE as the CPU has it"),
        cr4 == CR4_PV | mce,
    );
    // SAFETY: writing back the value read is emulated and changes nothing.
    unsafe { asm!("mov cr4, {}", in(reg) cr4, options(nomem, nostack)) };
    r.check(
        "mov to cr4 of the value read: accepted",
        read_cr!("cr4") == cr4,
    );

    let cr2_before = read_cr!("cr2");
    println!("mov from cr2 at start: {cr2_before:#x}");
    let want = 0xffff_ffff_8012_3000u64;
    // SAFETY: cr2 is only a record of the last page fault.
    unsafe { asm!("mov cr2, {}", in(reg) want, options(nomem, nostack)) };
    let cr2 = read_cr!("cr2");
    r.check(
        format_args!("mov to cr2 then from cr2: {cr2:#x}"),
        cr2 == want,
    );

    let (with_ts, after_clts): (u64, u64);
    // SAFETY: TS only makes FPU/SSE instructions fault, and none run
    // between setting it and clts.
    unsafe {
        asm!(
            "mov cr0, {v}",
            "mov {a}, cr0",
            "clts",
            "mov {b}, cr0",
            v = in(reg) cr0 | CR0_TS,
            a = out(reg) with_ts,
            b = out(reg) after_clts,
            options(nomem, nostack),
        );
    }
    r.check(
        format_args!("mov to cr0 setting TS: cr0 reads {with_ts:#x}"),
        with_ts == cr0 | CR0_TS,
    );
    r.check(
        format_args!("clts: cr0 reads {after_clts:#x}"),
        after_clts == cr0,
    );
    // SAFETY: wbinvd is emulated (flushed or ignored).
    unsafe { asm!("wbinvd", options(nostack)) };
    r.check("wbinvd: emulated", true);
}

unsafe extern "C" {
    /// The hypercall page `pv_guest!` reserves (filled by the hypervisor).
    static hypercall_page: u8;
}

/// Xen's hypercall-page MSR (0x40000000): a write of the page's machine
/// address (re)fills it with the hypercall stubs.
fn check_hypercall_page_msr(r: &mut Report, si: StartInfoRef) {
    let va = core::ptr::addr_of!(hypercall_page) as u64;
    let pfn = (va - VIRT_BASE) / 4096;
    // SAFETY: mfn_list maps the domain's nr_pages entries; pfn is in the
    // initial mapping.
    let mfn = unsafe { *(si.mfn_list as *const u64).add(pfn as usize) };
    let page = va as *mut u8;
    // SAFETY: the hypercall page lies in the initial mapping, which is
    // writable; stub 17 (xen_version) is overwritten with int3 and must be
    // restored by the MSR write before it is called again.
    let saved = unsafe {
        let saved: [u8; 32] = core::ptr::read_volatile(page.add(17 * 32).cast());
        core::ptr::write_bytes(page.add(17 * 32), 0xcc, 32);
        saved
    };
    wrmsr(0x4000_0000, mfn << 12);
    // SAFETY: as above; reading the stub back.
    let now: [u8; 32] = unsafe { core::ptr::read_volatile(page.add(17 * 32).cast()) };
    r.check(
        format_args!("wrmsr 0x40000000 (mfn {mfn:#x}) refilled the hypercall page"),
        now == saved,
    );
    let v = if now == saved {
        // SAFETY: stub 17 is restored (checked above) before it is called;
        // XENVER_version takes no buffer.
        unsafe { guest_abi::hypercall::hypercall_page_call2(17, 0, 0) }
    } else {
        -1
    };
    r.check(
        format_args!("xen_version through the refilled page: {v:#x}"),
        v == 0x40011,
    );
}

fn check_msrs(r: &mut Report) {
    let efer = rdmsr(0xc000_0080);
    r.check(
        format_args!("rdmsr EFER: {efer:#x} has SCE, LME, LMA, NXE, no SVME"),
        efer & 0xd01 == 0xd01 && efer & (1 << 12) == 0,
    );
    wrmsr(0xc000_0080, efer);
    r.check(
        "wrmsr EFER with the value read: accepted",
        rdmsr(0xc000_0080) == efer,
    );
    let apic = rdmsr(0x1b);
    r.check(
        format_args!("rdmsr APIC_BASE: {apic:#x}"),
        apic == 0xfee0_0900,
    );
    let pat = rdmsr(0x277);
    r.check(
        format_args!("rdmsr PAT: {pat:#x}"),
        pat == 0x0000_0501_0007_0406,
    );
    let hc = rdmsr(0x4000_0000);
    r.check(
        format_args!("rdmsr 0x40000000 (hypercall page): {hc:#x}"),
        hc == 0,
    );
    let t1 = rdmsr(0x10);
    let t2 = rdmsr(0x10);
    r.check(
        format_args!("rdmsr TSC: {t1:#x} then {t2:#x}"),
        t1 != 0 && t2 >= t1,
    );

    let fs = rdmsr(0xc000_0100);
    wrmsr(0xc000_0100, 0x1234_5000);
    let fs_new = rdmsr(0xc000_0100);
    wrmsr(0xc000_0100, fs);
    r.check(
        format_args!("wrmsr/rdmsr FS_BASE: {fs_new:#x}"),
        fs_new == 0x1234_5000,
    );
    let sgs = rdmsr(0xc000_0102);
    wrmsr(0xc000_0102, 0x7654_3000);
    let sgs_new = rdmsr(0xc000_0102);
    wrmsr(0xc000_0102, sgs);
    r.check(
        format_args!("wrmsr/rdmsr SHADOW_GS_BASE: {sgs_new:#x}"),
        sgs_new == 0x7654_3000,
    );
}

fn check_io(r: &mut Report) {
    check!(r, "physdev_op set_iopl 4", set_iopl(4) => -errno::EINVAL);
    check!(r, "physdev_op set_iopl, unmapped argument",
        physdev(PHYSDEVOP_SET_IOPL, 0x1000) => -errno::EFAULT);
    check!(r, "physdev_op set_iobitmap in the hypervisor's range",
        set_iobitmap(0xffff_8000_0000_0000, 16) => -errno::EINVAL);
    let bitmap = [0xffu8; 8192];
    let mut allow_cf8 = [0xffu8; 8192];
    allow_cf8[0xcf8 / 8] = 0;
    let bm = &bitmap as *const u8 as u64;
    check!(r, "physdev_op set_iobitmap, 65537 ports", set_iobitmap(bm, 65537) => -errno::EINVAL);
    check!(r, "physdev_op unknown sub-op 0xffff", physdev(0xffff, 0) => -errno::ENOSYS);

    check!(r, "physdev_op set_iopl 1", set_iopl(1) => 0);
    let pic = inb(0x21);
    r.check(
        format_args!("in 0x21 (PIC, kept by the hypervisor): {pic:#x}"),
        pic == 0xff,
    );
    outl(0xcf8, 0x8000_0000);
    let cf8 = inl(0xcf8);
    r.check(
        format_args!("out/in dword 0xcf8: {cf8:#x}"),
        cf8 == 0x8000_0000,
    );
    let id = inl(0xcfc);
    r.check(
        format_args!("in dword 0xcfc (00:00.0 vendor/device): {id:#x}"),
        id & 0xffff == 0x8086,
    );
    let mut buf = [0u8; 4];
    let (rdi, rcx): (u64, u64);
    // SAFETY: rep insb writes 4 bytes into buf.
    unsafe {
        asm!(
            "cld",
            "rep insb",
            inout("rdi") buf.as_mut_ptr() as u64 => rdi,
            inout("rcx") 4u64 => rcx,
            in("dx") 0x21u16,
            options(nostack),
        );
    }
    r.check(
        format_args!(
            "rep insb x4 from 0x21: {buf:x?}, rcx {rcx}, rdi advanced by {}",
            rdi - buf.as_ptr() as u64
        ),
        buf == [0xff; 4] && rcx == 0 && rdi == buf.as_ptr() as u64 + 4,
    );
    // SAFETY: with IOPL the hypervisor accepts cli/sti as no-ops.
    unsafe { asm!("cli", "sti", options(nomem, nostack)) };
    r.check("cli; sti with IOPL 1: emulated", true);

    check!(r, "physdev_op set_iopl 0", set_iopl(0) => 0);
    let abm = &allow_cf8 as *const u8 as u64;
    check!(r, "physdev_op set_iobitmap allowing 0xcf8-0xcff", set_iobitmap(abm, 65536) => 0);
    let cf8 = inl(0xcf8);
    r.check(
        format_args!("in dword 0xcf8 through the bitmap: {cf8:#x}"),
        cf8 == 0x8000_0000,
    );
    check!(r, "physdev_op set_iobitmap, no ports", set_iobitmap(bm, 0) => 0);
    let _ = bitmap;
}

fn crash(kind: &str) -> ! {
    println!("about to crash: {kind}");
    match kind {
        "in" => {
            let _ = inb(0x80);
        }
        "wrmsr" => wrmsr(0x0000_0123, 0),
        "cr0" => {
            let cr0 = read_cr!("cr0");
            // SAFETY: the write is refused with #GP.
            unsafe { asm!("mov cr0, {}", in(reg) cr0 ^ (1 << 16), options(nomem, nostack)) };
        }
        "cr3" => {
            // SAFETY: machine frame 0 is not the domain's and cannot become
            // its page table: the emulated switch is refused with #GP.
            unsafe { asm!("mov cr3, {}", in(reg) 0u64, options(nostack)) };
        }
        _ => {}
    }
    let mut r = Report::new("emulation");
    r.check(format_args!("{kind}: faulted"), false);
    r.finish()
}

core::arch::global_asm!(
    r#"
    .pushsection .text.emulation, "ax"
    .globl emulation_body_cr0_write
emulation_body_cr0_write:
    mov cr0, rdi
    ret
    .popsection
"#
);

unsafe extern "C" {
    /// A `tests::fixup` body: `mov cr0, a0`.
    fn emulation_body_cr0_write(a0: u64, a1: u64, a2: u64, a3: u64) -> u64;
}

/// `n` refused writes to CR0 (changing WP, which a PV guest may not),
/// each a #GP the guest catches: the hypervisor must not print a line per
/// write (its log lines a guest can cause are rate-limited; Xen prints
/// nothing in release builds). The run's `max-lines` bounds the log.
fn refused_loop(n: u64) -> ! {
    let mut r = Report::new("emulation");
    check!(r, "trap table with the #GP catcher", tests::fixup::install() => 0);
    let cr0 = read_cr!("cr0");
    let mut faults = 0u64;
    for _ in 0..n {
        // SAFETY: the body writes cr0, which the hypervisor refuses with
        // #GP (caught); nothing else changes.
        let got =
            unsafe { tests::fixup::catch(emulation_body_cr0_write, [cr0 ^ (1 << 16), 0, 0, 0]) };
        if got.is_err_and(|f| f.vector == 13 && f.error_code == 0) {
            faults += 1;
        }
    }
    check!(r, "refused CR0 writes, each #GP(0)", faults => n);
    check!(r, "cr0 unchanged", read_cr!("cr0") => cr0);
    r.finish()
}

fn main(si: StartInfoRef) -> ! {
    let cmdline = expect::text(si.cmd_line_bytes());
    if let Some(kind) = cmdline.split(' ').find_map(|w| w.strip_prefix("crash=")) {
        crash(kind)
    }
    if let Some(n) = cmdline.split(' ').find_map(|w| w.strip_prefix("refused=")) {
        refused_loop(n.parse().unwrap_or(1))
    }
    let mut r = Report::new("emulation");
    check_cpuid(&mut r);
    check_control_registers(&mut r, si);
    check_msrs(&mut r);
    check_hypercall_page_msr(&mut r, si);
    check_io(&mut r);
    r.finish()
}
