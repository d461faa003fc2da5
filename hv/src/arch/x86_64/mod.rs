//! x86_64: boot stub, CPU primitives, descriptor tables, entry paths, APIC.

pub mod acpi;
pub mod apic;
pub mod boot;
pub mod cpu;
pub mod entry;
pub mod gdt;
pub mod guest_state;
pub mod ipi;
pub mod mm;
pub mod percpu;
pub mod physid;
pub mod power;
pub mod rtc;
pub mod saving_call;
pub mod serial;
pub mod smp;
pub mod uaccess;
pub mod xstate;

/// Called by the boot stub on the boot CPU's stack, in long mode, with `.bss`
/// zeroed. `magic`/`info` are the loader's `eax`/`ebx`.
extern "C" fn hv_entry(magic: u32, info: u32) -> ! {
    crate::main(magic, info)
}

use cpu::{rdmsr, wrmsr, CR4_OSFXSR, CR4_OSXMMEXCPT, CR4_SMAP, CR4_SMEP, EFER_NXE, EFER_SCE};

unsafe extern "C" {
    static __hv_phys_start: u8;
    static __hv_phys_end: u8;
    static __build_id_start: u8;
    static __build_id_end: u8;
}

/// hv's build id: the descriptor of the GNU build-id note the linker wrote
/// (empty if there is none).
pub fn build_id() -> &'static [u8] {
    let start = core::ptr::addr_of!(__build_id_start);
    let end = core::ptr::addr_of!(__build_id_end) as usize;
    let len = end.saturating_sub(start as usize);
    // SAFETY: the linker script brackets the note section, which is part of
    // hv's read-only image and lives for ever.
    let note = unsafe { core::slice::from_raw_parts(start, len) };
    // namesz, descsz, type, "GNU\0", descriptor.
    let word = |i: usize| {
        note.get(i..i + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (namesz, descsz) = (word(0) as usize, word(4) as usize);
    let desc = 12 + namesz.next_multiple_of(4);
    note.get(desc..desc + descsz).unwrap_or(&[])
}

/// Physical extent of hv's image (boot stub to end of .bss).
pub fn image_range() -> (u64, u64) {
    (
        core::ptr::addr_of!(__hv_phys_start) as u64,
        core::ptr::addr_of!(__hv_phys_end) as u64,
    )
}

/// CPU features hv uses or reports.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    pub nx: bool,
    pub smep: bool,
    pub smap: bool,
    /// How guest extended state is saved (XSAVE and its components, or
    /// `fxsave`).
    pub xstate: xstate::Config,
}

/// Per-CPU setup of the boot CPU: its per-CPU block, descriptor tables,
/// `syscall`, protection features (NX, SMEP, SMAP: hv never runs or
/// touches guest memory through guest mappings), SSE for guests, and
/// XSAVE when the CPU has it (`xstate`).
pub fn init_cpu() -> Features {
    // SAFETY: the boot CPU, once, before any guest entry: BSP_GDT and the
    // boot stacks (trailers zero from .bss: CPU 0) are its alone.
    let me = unsafe { percpu::bring_up(0, &percpu::BSP_STACKS, gdt::BSP_GDT.as_ptr()) };
    init_this_cpu(me)
}

/// The setup every CPU makes for itself (the boot CPU from [`init_cpu`],
/// an AP from `smp`), after `percpu::bring_up`: the first CPU fills the
/// shared IDT, the others load it.
pub fn init_this_cpu(me: &'static percpu::CpuLocal) -> Features {
    gdt::init(me);
    let ext = cpu::cpuid(0x8000_0001, 0);
    let leaf7 = cpu::cpuid(7, 0);
    let mut f = Features {
        nx: ext[3] & (1 << 20) != 0,
        smep: leaf7[1] & (1 << 7) != 0,
        smap: leaf7[1] & (1 << 20) != 0,
        xstate: *xstate::config(),
    };
    if me.id() == 0 {
        entry::init_idt(f.smap);
    } else {
        entry::load_idt();
    }
    let (lstar, cstar) = entry::syscall_entries(me.id());
    let star = (u64::from(gdt::RING3_CS32 & !3) << 48) | (u64::from(gdt::HV_CS) << 32);
    // SAFETY: (1) EFER: SCE enables syscall, whose MSRs are set right after
    // and before any guest runs; NXE only if the CPU has NX. (2) STAR's
    // selectors exist in the GDT just loaded. (3) LSTAR/CSTAR point at hv's
    // entry code. (4) FMASK clears TF, IF, DF, IOPL, NT and AC on entry.
    unsafe {
        let efer = rdmsr(cpu::MSR_EFER) | EFER_SCE | if f.nx { EFER_NXE } else { 0 };
        wrmsr(cpu::MSR_EFER, efer);
        wrmsr(cpu::MSR_STAR, star);
        wrmsr(cpu::MSR_LSTAR, lstar);
        wrmsr(cpu::MSR_CSTAR, cstar);
        wrmsr(cpu::MSR_FMASK, 0x4_7700);
    }
    let mut cr4 = cpu::read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT;
    if f.smep {
        cr4 |= CR4_SMEP;
    }
    if f.smap {
        cr4 |= CR4_SMAP;
    }
    uaccess::set_smap(f.smap);
    // SAFETY: only bits the CPU reported are set; hv never executes or
    // accesses user pages through their user mappings, so SMEP/SMAP cannot
    // fault hv itself.
    unsafe { cpu::write_cr4(cr4) };
    // CR0: MP on, EM off (SSE for guests), TS off.
    let cr0 = (cpu::read_cr0() | (1 << 1)) & !((1 << 2) | (1 << 3));
    // SAFETY: changes only FPU trapping behaviour.
    unsafe { cpu::write_cr0(cr0) };
    f.xstate = xstate::init_this_cpu().unwrap_or_else(|m| {
        crate::fatal(format_args!(
            "CPU{}: XSAVE features {:?} differ from the first CPU's {:?}",
            me.id(),
            m.this,
            m.first
        ))
    });
    f
}

/// Loads a guest's page table and enters it with `regs`.
pub fn enter_guest(cr3: u64, regs: &entry::GuestRegs) -> ! {
    // SAFETY: `cr3` is a domain's L4 built by the domain builder, which
    // copied hv's slots into it, so hv (and this stack) stays mapped.
    unsafe { cpu::write_cr3(cr3) };
    entry::enter_guest(regs)
}
