//! x86_64 PV constants: segment selectors, the hypervisor's reserved
//! virtual range, and paging sizes (`arch-x86/xen-x86_64.h`).
//!
//! A 64-bit PV kernel runs in ring 3, like its user space, so the "kernel"
//! selectors carry RPL 3. The hypervisor owns the flat selectors in its
//! reserved GDT entries; the data selector of 64-bit code is the null
//! selector.
//!
//! A hypercall is the `syscall` instruction issued from guest kernel mode
//! (Xen's old `TRAP_INSTR` for x86_64), either inline or through the
//! hypercall page; see [`crate::hypercall`].

/// 32-bit flat code selector, ring 3 (GDT entry 260).
pub const FLAT_RING3_CS32: u16 = 0xe023;
/// 64-bit flat code selector, ring 3 (GDT entry 262).
pub const FLAT_RING3_CS64: u16 = 0xe033;
/// 32-bit flat data selector, ring 3 (GDT entry 261).
pub const FLAT_RING3_DS32: u16 = 0xe02b;
/// 64-bit data selector: the null selector.
pub const FLAT_RING3_DS64: u16 = 0x0000;
/// 32-bit flat stack selector, ring 3 (GDT entry 261).
pub const FLAT_RING3_SS32: u16 = 0xe02b;
/// 64-bit stack selector, ring 3 (GDT entry 261).
pub const FLAT_RING3_SS64: u16 = 0xe02b;

/// Guest kernel 64-bit code selector.
pub const FLAT_KERNEL_CS64: u16 = FLAT_RING3_CS64;
/// Guest kernel 32-bit code selector.
pub const FLAT_KERNEL_CS32: u16 = FLAT_RING3_CS32;
/// Guest kernel code selector.
pub const FLAT_KERNEL_CS: u16 = FLAT_KERNEL_CS64;
/// Guest kernel 64-bit data selector (null).
pub const FLAT_KERNEL_DS64: u16 = FLAT_RING3_DS64;
/// Guest kernel 32-bit data selector.
pub const FLAT_KERNEL_DS32: u16 = FLAT_RING3_DS32;
/// Guest kernel data selector.
pub const FLAT_KERNEL_DS: u16 = FLAT_KERNEL_DS64;
/// Guest kernel 64-bit stack selector.
pub const FLAT_KERNEL_SS64: u16 = FLAT_RING3_SS64;
/// Guest kernel 32-bit stack selector.
pub const FLAT_KERNEL_SS32: u16 = FLAT_RING3_SS32;
/// Guest kernel stack selector.
pub const FLAT_KERNEL_SS: u16 = FLAT_KERNEL_SS64;

/// Guest user 64-bit code selector.
pub const FLAT_USER_CS64: u16 = FLAT_RING3_CS64;
/// Guest user 32-bit code selector.
pub const FLAT_USER_CS32: u16 = FLAT_RING3_CS32;
/// Guest user code selector.
pub const FLAT_USER_CS: u16 = FLAT_USER_CS64;
/// Guest user 64-bit data selector (null).
pub const FLAT_USER_DS64: u16 = FLAT_RING3_DS64;
/// Guest user 32-bit data selector.
pub const FLAT_USER_DS32: u16 = FLAT_RING3_DS32;
/// Guest user data selector.
pub const FLAT_USER_DS: u16 = FLAT_USER_DS64;
/// Guest user 64-bit stack selector.
pub const FLAT_USER_SS64: u16 = FLAT_RING3_SS64;
/// Guest user 32-bit stack selector.
pub const FLAT_USER_SS32: u16 = FLAT_RING3_SS32;
/// Guest user stack selector.
pub const FLAT_USER_SS: u16 = FLAT_USER_SS64;

/// First address of the range reserved for the hypervisor (L4 slot 256).
pub const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;
/// End (exclusive) of the hypervisor's range (L4 slots 256-271).
pub const HYPERVISOR_VIRT_END: u64 = 0xffff_8800_0000_0000;
/// Start of the read-only machine-to-phys table mapped into every guest.
pub const MACH2PHYS_VIRT_START: u64 = 0xffff_8000_0000_0000;
/// End (exclusive) of the machine-to-phys table.
pub const MACH2PHYS_VIRT_END: u64 = 0xffff_8040_0000_0000;
/// Entries (one `u64` per machine frame) the machine-to-phys table can hold.
pub const MACH2PHYS_NR_ENTRIES: u64 = (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) >> 3;

/// `set_segment_base`: set the FS base.
pub const SEGBASE_FS: u32 = 0;
/// `set_segment_base`: set the user GS base.
pub const SEGBASE_GS_USER: u32 = 1;
/// `set_segment_base`: set the kernel GS base.
pub const SEGBASE_GS_KERNEL: u32 = 2;
/// `set_segment_base`: load the user GS selector from `base[15:0]`.
pub const SEGBASE_GS_USER_SEL: u32 = 3;

/// `vcpu_guest_context.flags`: the FPU state is valid.
pub const VGCF_I387_VALID: u64 = 1 << 0;
/// `vcpu_guest_context.flags`: the vCPU is in guest kernel mode.
pub const VGCF_IN_KERNEL: u64 = 1 << 2;
/// `vcpu_guest_context.flags`: the failsafe callback masks events.
pub const VGCF_FAILSAFE_DISABLES_EVENTS: u64 = 1 << 3;
/// `vcpu_guest_context.flags`: the syscall callback masks events.
pub const VGCF_SYSCALL_DISABLES_EVENTS: u64 = 1 << 4;
/// `vcpu_guest_context.flags`: the vCPU is online.
pub const VGCF_ONLINE: u64 = 1 << 5;
/// `iret` frame flags: the guest left through `syscall`, return with `sysret`.
pub const VGCF_IN_SYSCALL: u64 = 1 << 8;

/// The first GDT frame the hypervisor reserves for its own descriptors.
pub const FIRST_RESERVED_GDT_PAGE: u64 = 14;
/// Byte offset of the first reserved GDT entry.
pub const FIRST_RESERVED_GDT_BYTE: u64 = FIRST_RESERVED_GDT_PAGE * 4096;
/// Index of the first reserved GDT entry.
pub const FIRST_RESERVED_GDT_ENTRY: u64 = FIRST_RESERVED_GDT_BYTE / 8;

/// log2 of the page size.
pub const PAGE_SHIFT: u32 = 12;
/// The page size: 4 KiB.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// CR3 value for a page-table root frame.
pub const fn pfn_to_cr3(pfn: u64) -> u64 {
    pfn << PAGE_SHIFT
}

/// Page-table root frame of a CR3 value.
pub const fn cr3_to_pfn(cr3: u64) -> u64 {
    cr3 >> PAGE_SHIFT
}
