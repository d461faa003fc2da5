    .section .note.GNU-stack, "", @progbits
/* Entry, ELF notes and the hypercall page of a minimal C PV kernel that
 * carries no VIRT_BASE (virtual = physical, linked at 1 MiB). */
#define NOTE(type, desctype, desc)      \
    .pushsection .note.Xen, "a", @note; \
    .balign 4;                          \
    .long 4f - 3f;                      \
    .long 6f - 5f;                      \
    .long type;                         \
3:  .asciz "Xen";                       \
4:  .balign 4;                          \
5:  desctype desc;                      \
6:  .balign 4;                          \
    .popsection

NOTE(6, .asciz, "CTestLow")                    /* GUEST_OS */
NOTE(7, .asciz, "1")                        /* GUEST_VERSION */
NOTE(5, .asciz, "xen-3.0")                  /* XEN_VERSION */
NOTE(8, .asciz, "generic")                  /* LOADER */
/* No VIRT_BASE or PADDR_OFFSET: virtual = physical, as Xen allows. */
NOTE(1, .quad, _start)                      /* ENTRY */
NOTE(2, .quad, hypercall_page)              /* HYPERCALL_PAGE */
NOTE(9, .asciz, "yes")                      /* PAE_MODE */
NOTE(17, .long, (1 << 11))                  /* SUPPORTED_FEATURES: dom0 */

    .section .text.head, "ax"
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    mov %rsi, %rdi
    call c_main
1:  hlt
    jmp 1b

    .text
    .balign 4096
    .globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0xcc

    .bss
    .balign 16
    .space 16384
stack_top:
