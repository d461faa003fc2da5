    .section .note.GNU-stack, "", @progbits
/* Entry, ELF notes and the hypercall page of a minimal C PV kernel. */
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

NOTE(6, .asciz, "CTest")                    /* GUEST_OS */
NOTE(15, .quad, 0x8000000000)               /* INIT_P2M: the P2M list at 512 GiB, as Linux asks */
NOTE(7, .asciz, "1")                        /* GUEST_VERSION */
NOTE(5, .asciz, "xen-3.0")                  /* XEN_VERSION */
NOTE(8, .asciz, "generic")                  /* LOADER */
NOTE(3, .quad, 0xffffffff80000000)          /* VIRT_BASE */
NOTE(4, .quad, 0)                           /* PADDR_OFFSET */
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
