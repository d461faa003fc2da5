//! The GDT and TSS, laid out as Xen 4.17 lays them out for 64-bit PV guests.
//!
//! Xen reserves the last entries of a full 8192-entry GDT for itself
//! (entries from 0xe000 >> 3 on), leaving the first 14 pages to the guest's
//! own descriptors (`set_gdt`). Each CPU has its own table whose last two
//! pages hold hv's descriptors, its TSS and the LDT descriptor; while a
//! vCPU runs, the CPU uses that vCPU's GDT window instead
//! (`mm::page_table::VcpuArea`): the guest's own validated frames mapped in
//! the first 14 pages and this CPU's two reserved pages in the last two
//! ([`load_vcpu_gdt`]), so guest descriptors are never copied. The
//! selectors a PV guest sees
//! are therefore fixed: 0xe033 (64-bit ring-3 code), 0xe02b (ring-3 data),
//! 0xe023 (32-bit ring-3 code). hv's own are 0xe008 (code) and 0xe010
//! (data). `syscall`/`sysret` derive their selectors from MSR_STAR, which
//! only works with exactly this order: 0xe008, 0xe010 for entry; 0xe020 + 8
//! (data, RPL 3) and + 16 (64-bit code, RPL 3) for return. The TSS is at
//! 0xe040 and the guest's LDT, when it has one, at 0xe050 ([`load_ldt`]).

use core::arch::asm;
use core::cell::UnsafeCell;

use super::percpu::{self, CpuLocal, Tss};

pub const HV_CS: u16 = 0xe008;
pub const HV_DS: u16 = 0xe010;
pub const RING3_CS32: u16 = 0xe023;
pub const RING3_DS: u16 = 0xe02b;
pub const RING3_CS64: u16 = 0xe033;
pub const TSS_SEL: u16 = 0xe040;
/// The guest's LDT, when it has one (Xen's `LDT_ENTRY`): a 16-byte system
/// descriptor right after the TSS's.
pub const LDT_SEL: u16 = 0xe050;

/// IST slots (1-based, as the IDT encodes them).
pub const IST_DF: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_MC: u8 = 3;
/// #DB: a #DB raised in ring 0 right after `syscall` (a guest's MOV SS or
/// POP SS shadow) would otherwise run on the guest's stack pointer.
pub const IST_DB: u8 = 4;

const ENTRIES: usize = 8192;
/// `lgdt` limit of the full 8192-entry table.
const GDT_LIMIT: u16 = 0xffff;
const _: () = assert!(GDT_LIMIT as usize == ENTRIES * 8 - 1);

/// A full 8192-entry GDT. Each CPU has its own (the boot CPU's is
/// [`BSP_GDT`]), holding hv's selectors, that CPU's TSS descriptor and the
/// guest descriptors of the vCPU it runs.
#[repr(C, align(4096))]
pub struct Gdt(UnsafeCell<[u64; ENTRIES]>);

// SAFETY: a GDT is written by its own CPU only (at bring-up, and one
// aligned 8-byte store per guest descriptor afterwards); the CPU hardware
// reads it and sets the TSS busy bit.
unsafe impl Sync for Gdt {}

impl Gdt {
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; ENTRIES]))
    }

    pub fn as_ptr(&self) -> *mut u64 {
        self.0.get().cast()
    }
}

/// The boot CPU's GDT.
pub static BSP_GDT: Gdt = Gdt::new();

/// This CPU's own GDT, as a pointer to its first entry (its reserved
/// pages are the same frames the running vCPU's window maps).
#[inline(always)]
fn this_gdt() -> *mut u64 {
    percpu::this_cpu().gdt()
}

/// This CPU's own GDT, by address: it names the CPU's reserved frames
/// ([`reserved_frames`] is a function of it), so a vCPU window can
/// remember whose pages it maps.
#[inline(always)]
pub fn own_table() -> u64 {
    this_gdt() as u64
}

/// hv's image is linked at this address plus its physical address.
const HV_VIRT_BASE: u64 = 0xffff_82d0_8000_0000;

/// Machine frames of this CPU's two reserved GDT pages (entries from
/// 0xe000 >> 3), for the vCPU windows.
pub fn reserved_frames() -> [u64; 2] {
    use crate::mm::frame_access::{DIRECT_MAP_BASE, DIRECT_MAP_SIZE};
    let first = this_gdt() as u64 + (GUEST_ENTRIES * 8) as u64;
    // The boot CPU's table is a static in hv's image; a table allocated
    // later (an AP's) lies in the direct map.
    let pa = if (DIRECT_MAP_BASE..DIRECT_MAP_BASE + DIRECT_MAP_SIZE).contains(&first) {
        first - DIRECT_MAP_BASE
    } else {
        first.wrapping_sub(HV_VIRT_BASE)
    };
    [pa / 4096, pa / 4096 + 1]
}

/// Loads the GDT at `base` (a vCPU's window whose last two pages map this
/// CPU's reserved pages, or this CPU's own table) with the full limit.
#[inline(always)]
pub fn load_vcpu_gdt(base: u64) {
    let ptr = DescriptorPointer {
        limit: GDT_LIMIT,
        base,
    };
    // SAFETY: `base` is this CPU's table or a vCPU window mapped (by the
    // caller) with this CPU's reserved pages at the end, so hv's selectors
    // and the TSS descriptor keep their values; the cached segment
    // registers and TR are unaffected by `lgdt`.
    unsafe { asm!("lgdt [{}]", in(reg) &ptr, options(nostack, preserves_flags)) };
    percpu::this_cpu().set_gdt_base(base);
}

/// Loads this CPU's own GDT (no vCPU's window).
#[inline(always)]
pub fn load_own_gdt() {
    load_vcpu_gdt(this_gdt() as u64);
}

const fn index(sel: u16) -> usize {
    (sel >> 3) as usize
}

/// Builds `cpu`'s GDT and TSS (its rsp0 and IST stacks), loads them,
/// and reloads every segment register. Runs on that CPU, after
/// `percpu::bring_up`.
pub fn init(cpu: &CpuLocal) {
    let Some(stacks) = cpu.stacks() else {
        return;
    };
    let tss_ptr = cpu.tss();
    let tss_base = tss_ptr as u64;
    let gdt = cpu.gdt();
    let limit = (core::mem::size_of::<Tss>() - 1) as u64;
    let entries: [(u16, u64); 7] = [
        (HV_CS, 0x00af_9b00_0000_ffff),      // 64-bit code, DPL 0
        (HV_DS, 0x00cf_9300_0000_ffff),      // data, DPL 0
        (RING3_CS32, 0x00cf_fb00_0000_ffff), // 32-bit code, DPL 3
        (RING3_DS, 0x00cf_f300_0000_ffff),   // data, DPL 3
        (RING3_CS64, 0x00af_fb00_0000_ffff), // 64-bit code, DPL 3
        (
            TSS_SEL,
            (limit & 0xffff)
                | (tss_base & 0xff_ffff) << 16
                | 0x89 << 40 // present, 64-bit available TSS
                | ((limit >> 16) & 0xf) << 48
                | ((tss_base >> 24) & 0xff) << 56,
        ),
        (TSS_SEL + 8, tss_base >> 32),
    ];
    // SAFETY: this CPU, before its GDT/TSS are in use; the block's TSS
    // and GDT are this CPU's alone, and every index is below 8192.
    unsafe {
        (*tss_ptr).rsp[0] = cpu.rsp0();
        (*tss_ptr).ist[usize::from(IST_DF - 1)] = stacks.df.usable_top();
        (*tss_ptr).ist[usize::from(IST_NMI - 1)] = stacks.nmi.usable_top();
        (*tss_ptr).ist[usize::from(IST_MC - 1)] = stacks.mc.usable_top();
        (*tss_ptr).ist[usize::from(IST_DB - 1)] = stacks.db.usable_top();
        for (sel, desc) in entries {
            gdt.add(index(sel)).write(desc);
        }
    }
    let ptr = DescriptorPointer {
        limit: GDT_LIMIT,
        base: gdt as u64,
    };
    // SAFETY: the GDT is fully built, lives for ever, and holds HV_CS/HV_DS
    // and the TSS at the selectors loaded here; the far return reloads CS
    // with HV_CS.
    unsafe {
        asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ss, {ds:e}",
            "mov ds, {ds:e}",
            "mov es, {ds:e}",
            "ltr {tss:x}",
            ptr = in(reg) &ptr,
            cs = const HV_CS as u64,
            tmp = out(reg) _,
            ds = in(reg) u32::from(HV_DS),
            tss = in(reg) TSS_SEL,
        );
    }
    cpu.set_gdt_base(gdt as u64);
    // The CPU comes out of reset with an LDT of 64 KiB at address 0; no
    // guest selector may reach that.
    load_ldt(0, 0);
}

/// Operand of `lgdt`/`lidt`.
#[repr(C, packed)]
pub struct DescriptorPointer {
    pub limit: u16,
    pub base: u64,
}

/// Whether ring 0 can load `sel` (RPL forced to 3) into a data segment
/// register without faulting, as the guest's own load would: null, or a
/// present descriptor in the GDT that is data or readable code with DPL 3
/// (or conforming readable code). LDT selectors are refused: hv does not
/// read the guest's LDT from ring 0, whose pages may not be mapped yet
/// (Xen would load them).
pub fn loadable_by_guest(sel: u16) -> bool {
    if sel < 4 {
        return true;
    }
    if sel & 4 != 0 {
        return false;
    }
    let i = index(sel);
    let base = percpu::this_cpu().gdt_base() as *const u64;
    // SAFETY: `i` < 8192 (a 13-bit index) and the loaded GDT (this CPU's
    // table or the running vCPU's window, fully mapped: guest frames or
    // the zero frame, then the reserved pages) has 8192 entries; a plain
    // read of one descriptor, which only the guest's validated updates
    // change.
    let d = unsafe { base.add(i).read_volatile() };
    let access = (d >> 40) & 0xff;
    let present = access & 0x80 != 0;
    let user_segment = access & 0x10 != 0;
    let code = access & 0x08 != 0;
    let readable_or_data = !code || access & 0x02 != 0;
    let conforming_code = code && access & 0x04 != 0;
    let dpl = (access >> 5) & 3;
    present && user_segment && readable_or_data && (dpl == 3 || conforming_code)
}

/// Loads the LDT register: the null LDT when `nr_ents` is 0, else an LDT
/// of `nr_ents` descriptors at `base` (hv's per-vCPU LDT area, which hv
/// maps from the guest's validated LDT pages).
#[inline(always)]
pub fn load_ldt(base: u64, nr_ents: u64) {
    if nr_ents == 0 {
        // SAFETY: a null LDT selector is always valid; afterwards any LDT
        // selector faults in the guest, as the guest expects.
        unsafe { asm!("lldt {0:x}", in(reg) 0u16, options(nomem, nostack, preserves_flags)) };
        return;
    }
    let limit = nr_ents.saturating_mul(8).saturating_sub(1) & 0xf_ffff;
    let low = (limit & 0xffff)
        | (base & 0xff_ffff) << 16
        | 0x82 << 40 // present, DPL 0, LDT
        | ((limit >> 16) & 0xf) << 48
        | ((base >> 24) & 0xff) << 56;
    let slots = this_gdt();
    // SAFETY: (1) LDT_SEL's two entries are hv's own, in bounds and used
    // for nothing else; (2) the descriptor is a present LDT descriptor
    // whose base is hv's LDT area, mapped supervisor-only, so the CPU
    // reads guest descriptors only from pages hv validated; (3) `lldt`
    // only changes which descriptors LDT selectors name.
    unsafe {
        slots.add(index(LDT_SEL)).write_volatile(low);
        slots.add(index(LDT_SEL) + 1).write_volatile(base >> 32);
        asm!("lldt {0:x}", in(reg) LDT_SEL, options(nostack, preserves_flags));
    }
}

/// Entries of the GDT that hold the guest's own descriptors (`set_gdt`):
/// everything below hv's selectors at 0xe000.
pub const GUEST_ENTRIES: usize = 0xe000 >> 3;
const _: () = assert!(GUEST_ENTRIES <= index(HV_CS));
