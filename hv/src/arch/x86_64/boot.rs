//! The way in: boot headers, the 32-bit stub and the jump to 64-bit Rust.
//!
//! Two loaders can start hv, and both enter [`hv_start32`] in 32-bit protected
//! mode with paging off:
//! - QEMU's `-kernel` finds the PVH entry through the `XEN_ELFNOTE_PHYS32_ENTRY`
//!   note (an 8-byte address) and passes `ebx` = physical address of
//!   `hvm_start_info`;
//! - GRUB finds the multiboot2 header and passes `eax` = 0x36d76289 and
//!   `ebx` = physical address of the multiboot2 information.
//!
//! The image must not carry a multiboot1 header: QEMU would take that path
//! instead of PVH.
//!
//! The stub builds the boot page tables (statically laid out in `.boot.data`):
//! an identity map of the first 4 GiB (needed for the instant paging turns on),
//! the same 4 GiB at the direct-map base (L4 slot 262) and the first 1 GiB at
//! hv's link base (slot 261), all with 2 MiB global pages. It then enters long
//! mode, jumps to the high half, zeroes `.bss`, takes the boot CPU's stack and
//! calls `hv_main(magic, info_paddr)`.

use core::arch::global_asm;

/// Multiboot2 magic in `eax` when GRUB starts us.
pub const MULTIBOOT2_BOOTLOADER_MAGIC: u32 = 0x36d7_6289;

global_asm!(
    r#"
    .section .multiboot2, "a"
    .balign 8
mb2_header_start:
    .long 0xe85250d6                    /* magic */
    .long 0                             /* architecture: i386 protected mode */
    .long mb2_header_end - mb2_header_start
    .long 0x100000000 - (0xe85250d6 + (mb2_header_end - mb2_header_start))
    /* entry address tag: where GRUB jumps (the ELF entry would do too) */
    .balign 8
    .short 3, 0
    .long 12
    .long hv_start32
    /* end tag */
    .balign 8
    .short 0, 0
    .long 8
mb2_header_end:

    .section .note.Xen, "a", @note
    .balign 4
    .long 4                             /* namesz */
    .long 8                             /* descsz */
    .long 18                            /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad hv_start32

    .section .boot.text, "ax"
    .code32
    .global hv_start32
hv_start32:
    cli
    cld
    mov %eax, %ebp                      /* loader magic */
    mov %ebx, %esi                      /* loader information (physical) */

    /* 2 MiB pages for the first 4 GiB: global, present, writable */
    mov $boot_pd, %edi
    xor %ecx, %ecx
1:
    mov %ecx, %eax
    shl $21, %eax
    or $0x183, %eax
    mov %ecx, %edx
    shr $11, %edx
    mov %eax, (%edi,%ecx,8)
    mov %edx, 4(%edi,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jb 1b

    /* CR4: PAE | PGE */
    mov %cr4, %eax
    or $((1 << 5) | (1 << 7)), %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    /* EFER.LME */
    mov $0xc0000080, %ecx
    rdmsr
    or $(1 << 8), %eax
    wrmsr
    /* CR0: PG | WP | NE | MP | PE */
    mov %cr0, %eax
    or $((1 << 31) | (1 << 16) | (1 << 5) | (1 << 1) | 1), %eax
    mov %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x08, $boot_long

    .code64
boot_long:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    movabs $hv_start64, %rax
    jmp *%rax

    .section .boot.data, "aw"
    .balign 4096
    .global boot_pml4
boot_pml4:
    .quad boot_pdpt_low + 3
    .fill 260, 8, 0
    .quad boot_pdpt_image + 3           /* slot 261: hv image */
    .quad boot_pdpt_low + 3             /* slot 262: direct map */
    .fill 249, 8, 0
boot_pdpt_low:
    .quad boot_pd + 0x0000 + 3
    .quad boot_pd + 0x1000 + 3
    .quad boot_pd + 0x2000 + 3
    .quad boot_pd + 0x3000 + 3
    .fill 508, 8, 0
boot_pdpt_image:
    .fill 322, 8, 0
    .quad boot_pd + 3                   /* 0xffff82d080000000 -> physical 0 */
    .fill 189, 8, 0
    .global boot_pd
boot_pd:
    .fill 2048, 8, 0
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff            /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff            /* 0x10: data */
boot_gdt_ptr:
    .short boot_gdt_ptr - boot_gdt - 1
    .long boot_gdt

    .section .text.hv_entry, "ax"
    .code64
hv_start64:
    mov %ebp, %r12d
    mov %esi, %r13d
    lea __bss_start(%rip), %rdi
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    rep stosb
    lea {stack}+{stack_size}-{trailer}-{reserve}(%rip), %rsp
    xor %ebp, %ebp
    mov %r12d, %edi
    mov %r13d, %esi
    call {main}
2:
    hlt
    jmp 2b
"#,
    stack = sym super::percpu::BSP_MAIN,
    stack_size = const super::percpu::STACK_SIZE,
    trailer = const super::percpu::STACK_TRAILER,
    reserve = const super::entry::FRAME_RESERVE,
    main = sym super::hv_entry,
    options(att_syntax)
);
