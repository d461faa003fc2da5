//! The bench guest: times the hypervisor's hot paths with fenced `rdtsc`
//! and prints one machine-readable line per row for `cargo xtask bench`.
//!
//! Command line: `iterations=N` (default 1000), `repeats=R` (default 3: each
//! row is timed R times and the fastest run counts, so a timer interrupt
//! landing in one run does not show), `filter=A,B` (only rows whose name
//! contains one of the words). Output, one line each:
//!
//! ```text
//! bench-config iterations=1000 repeats=3
//! bench <row> iterations=<n> cycles_per_op=<c.cc> total=<t> overhead=<o>
//! bench <row> unsupported reason="<why>"
//! bench-end rows=<measured> unsupported=<count>
//! ```
//!
//! `total` is the TSC delta of n iterations of the row's loop, `overhead`
//! the delta of n iterations of the same loop with an empty body (its
//! `dec`/`jnz` and the `rdtsc` reads around it), and `cycles_per_op` is
//! `(total - overhead) / n`. Under QEMU's `-icount shift=0` the TSC counts
//! instructions, so the figure is the number of instructions one operation
//! costs: the guest's argument loads, the hypervisor's path, the return.
//!
//! Each loop is a hand-written assembly function ([`timed_loop!`]) so the
//! empty loop is exactly the row's loop minus its body. Every row first
//! probes whether its hypercalls exist: a `-ENOSYS` makes the row
//! `unsupported` (and rows that need a trap table, callbacks or user mode
//! never raise an exception the hypervisor could not bounce). A row that
//! measures nothing (per-op cost zero or less) or whose hypercall fails is a
//! failure. The rows:
//!
//! | row | one operation |
//! | --- | --- |
//! | `null_hypercall_inline` | `xen_version(XENVER_version)` through an inline `syscall` |
//! | `null_hypercall_page` | the same through the hypercall page |
//! | `update_va_mapping_invlpg` | rewrite one L1 entry (its current value) with `UVMF_INVLPG` |
//! | `mmu_update_64` | `mmu_update` of 64 L1 entries (their current values) |
//! | `mmuext_tlb_flush_local` | `mmuext_op(MMUEXT_TLB_FLUSH_LOCAL)` |
//! | `int3_bounce` | `int3` -> guest handler -> `iret` hypercall |
//! | `page_fault_bounce` | load from an unmapped address -> #PF handler skips it -> `iret` |
//! | `syscall_bounce` | guest user `syscall` -> kernel callback -> `iret` (`VGCF_in_syscall`) |
//! | `sched_yield` | `sched_op(SCHEDOP_yield)` with one vCPU |
//! | `evtchn_send_loopback` | `event_channel_op(EVTCHNOP_send)` on a loopback interdomain port, raising the other end afresh: the guest clears its pending bit, the selector and `evtchn_upcall_pending` first (events stay masked: no upcall) |
//! | `evtchn_ipi_self` | the same on an IPI port bound to vCPU 0 itself |
//! | `vcpu_switch_yield` | `sched_op(SCHEDOP_yield)` with vCPU 1 up and yielding in a loop: a switch to vCPU 1, its yield, and the switch back (dom0 has 3 vCPUs; vCPU 1 is down for every other row) |
//! | `ipi_pingpong` | a round trip of IPIs between vCPU 0 and vCPU 2 on one CPU: vCPU 0 sends on vCPU 2's IPI port and polls its own (`SCHEDOP_poll`, blocking: a switch to vCPU 2); vCPU 2, woken from its own poll, clears its port and sends back, then polls again (the switch back); each side clears its pending bit, selector and `evtchn_upcall_pending` (events masked) |
//! | `singleshot_timer_arm` | `vcpu_op(VCPUOP_set_singleshot_timer)` for a deadline far ahead (each call moves the armed timer) |
//! | `set_timer_op_arm` | `set_timer_op` for a deadline far ahead |
//! | `grant_map_unmap` | `grant_table_op(GNTTABOP_map_grant_ref)` of a grant of our own, writable, at a virtual address, then `GNTTABOP_unmap_grant_ref` of it (its handle copied from the map's result) |
//! | `grant_copy_4k` | `grant_table_op(GNTTABOP_copy)` of a whole page from a grant of our own to a frame of ours |
//! | `blk_ring_read_4k` | a 4 KiB read at a random page of the disk, a round trip on a block ring: vCPU 0, the front end (`pv_drivers::ring`), queues a one-page read and notifies vCPU 3, the back end, through an IPI port and polls its own; vCPU 3 wakes, serves it as dom0's back end does (`pv_drivers::blkif::serve` on dom0's `MemDisk`, a grant copy into the page the request grants), responds and notifies back (dom0 has 4 vCPUs; vCPU 3 keeps this context) |
//! | `blk_read_1m` | the same for 1 MiB read sequentially: 24 requests of up to 11 pages queued at once, one notification each way |
//! | `blk_ring_read_4k_persistent` | `blk_ring_read_4k` with persistent grants: the back end keeps the page the requests grant mapped (`grants::CopyGrants::keep_mapped`, at `window::SLOTS_VA`), mapped on first use, and copies with the CPU |
//! | `blk_read_1m_persistent` | `blk_read_1m` the same way |
//! | `domu_pingpong` | `ipi_pingpong` between dom0 and a domU (built with `tests::domu`, running vCPU 2's half of the loop) over an interdomain channel |
//! | `domu_create_first_byte` | `createdomain` to the first byte a new domU stores, dom0 yielding meanwhile: the whole build of `tests::domu`, `setvcpucontext`, `unpausedomain` and the domU's first instructions (10 domains, timed one by one) |
//!
//! A new row is one entry in [`ROWS`] and, for a hypercall, a call to
//! [`hypercall_row`] with its arguments.
//!
//! @cmdline: iterations=20 repeats=1
//! @timeout: 120
//! @vcpus: 4
#![no_std]
#![no_main]

use core::arch::global_asm;
use core::fmt;
use core::sync::atomic::AtomicU64;

use guest_abi::arch::{FLAT_KERNEL_SS, MACH2PHYS_VIRT_START, PAGE_SIZE};
use guest_abi::errno;
use guest_abi::event_channel::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnSend, EVTCHNOP_ALLOC_UNBOUND,
    EVTCHNOP_BIND_INTERDOMAIN, EVTCHNOP_BIND_IPI, EVTCHNOP_SEND,
};
use guest_abi::grant_table::{
    GnttabCopy, GnttabCopyPtr, GnttabMapGrantRef, GnttabSetupTable, GnttabUnmapGrantRef,
    GNTCOPY_SOURCE_GREF, GNTMAP_HOST_MAP, GNTST_OKAY, GNTTABOP_COPY, GNTTABOP_MAP_GRANT_REF,
    GNTTABOP_SETUP_TABLE, GNTTABOP_UNMAP_GRANT_REF, GTF_PERMIT_ACCESS,
};
use guest_abi::hypercall::{
    hypercall2, hypercall3, hypercall4, EVENT_CHANNEL_OP, GRANT_TABLE_OP, MMUEXT_OP, MMU_UPDATE,
    SCHED_OP, SET_CALLBACKS, SET_TIMER_OP, SET_TRAP_TABLE, STACK_SWITCH, UPDATE_VA_MAPPING,
    VCPU_OP, XEN_VERSION,
};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::{StartInfoRef, VIRT_BASE};
use guest_abi::sched::{SchedPoll, SCHEDOP_POLL, SCHEDOP_YIELD};
use guest_abi::vcpu::{
    VcpuSetSingleshotTimer, VCPUOP_DOWN, VCPUOP_INITIALISE, VCPUOP_IS_UP,
    VCPUOP_SET_SINGLESHOT_TIMER, VCPUOP_STOP_SINGLESHOT_TIMER, VCPUOP_UP,
};
use guest_abi::version::XENVER_VERSION;
use guest_abi::xen::{
    MmuUpdate, MmuextOp, TrapInfo, DOMID_SELF, MMUEXT_NEW_USER_BASEPTR, MMUEXT_TLB_FLUSH_LOCAL,
    MMU_NORMAL_PT_UPDATE, UVMF_INVLPG, UVMF_LOCAL,
};
use tests::expect::Rc;
use tests::fixup::{set_trap_table, trap, SharedInfo};
use tests::pages::Pages;
use tests::vcpu::kernel_context;

guest_abi::pv_guest!(main, name = "bench");

// ---------------------------------------------------------------------------
// Timed loops

/// Emits `extern "C" fn NAME(n: u64, arg: u64) -> u64`: reads the TSC,
/// runs BODY n times (n > 0), reads the TSC again and returns the delta.
///
/// In BODY, `r14` holds `arg`; `rax`, `rcx`, `rdx`, `rsi`, `rdi`, `r8`-`r11`
/// and `r15` are scratch; `r12` (start time) and `r13` (count) must survive.
/// Every loop shares the prologue and epilogue, so the empty loop's delta is
/// exactly what a row's delta holds besides its n bodies.
macro_rules! timed_loop {
    ($name:literal, $($body:literal),* $(,)?) => {
        global_asm!(concat!(
            ".pushsection .text.bench, \"ax\", @progbits\n",
            ".globl ", $name, "\n",
            ".type ", $name, ", @function\n",
            $name, ":\n",
            "    push rbx\n    push rbp\n    push r12\n    push r13\n    push r14\n    push r15\n",
            "    mov r13, rdi\n",
            "    mov r14, rsi\n",
            "    lfence\n    rdtsc\n    shl rdx, 32\n    or rax, rdx\n    mov r12, rax\n",
            "2:\n",
            $("    ", $body, "\n",)*
            "    dec r13\n    jnz 2b\n",
            "    lfence\n    rdtsc\n    shl rdx, 32\n    or rax, rdx\n    sub rax, r12\n",
            "    pop r15\n    pop r14\n    pop r13\n    pop r12\n    pop rbp\n    pop rbx\n",
            "    ret\n",
            ".size ", $name, ", . - ", $name, "\n",
            ".popsection\n",
        ));
    };
}

// The loop overhead every row subtracts.
timed_loop!("bench_loop_empty",);

// A hypercall whose number and five arguments are `arg[0..6]`, inline.
timed_loop!(
    "bench_loop_hypercall",
    "mov rax, [r14]",
    "mov rdi, [r14 + 8]",
    "mov rsi, [r14 + 16]",
    "mov rdx, [r14 + 24]",
    "mov r10, [r14 + 32]",
    "mov r8, [r14 + 40]",
    "syscall",
);

// The same through the hypercall page: `arg[6]` is the stub's address (the
// stub sets rax itself).
timed_loop!(
    "bench_loop_hypercall_page",
    "mov rdi, [r14 + 8]",
    "mov rsi, [r14 + 16]",
    "mov rdx, [r14 + 24]",
    "mov r10, [r14 + 32]",
    "mov r8, [r14 + 40]",
    "call qword ptr [r14 + 48]",
);

// `event_channel_op(EVTCHNOP_send)` with the event consumed first, as a
// guest's handler would have: the port's pending bit cleared (`arg[7]`:
// the word, `arg[8]`: the mask keeping the other bits), then vCPU 0's
// `evtchn_pending_sel` and `evtchn_upcall_pending` (`arg[9]`: its
// `vcpu_info`), so each send raises the event afresh. `arg[0..3]` as
// for `bench_loop_hypercall`.
timed_loop!(
    "bench_loop_evtchn_send",
    "mov rax, [r14 + 56]",
    "mov rcx, [r14 + 64]",
    "lock and [rax], rcx",
    "mov rax, [r14 + 72]",
    "mov qword ptr [rax + 8], 0",
    "mov byte ptr [rax], 0",
    "mov rax, [r14]",
    "mov rdi, [r14 + 8]",
    "mov rsi, [r14 + 16]",
    "syscall",
);

// `grant_table_op(GNTTABOP_map_grant_ref)` of the `gnttab_map_grant_ref`
// at `arg`, its handle copied into the `gnttab_unmap_grant_ref` 32 bytes
// on, and `grant_table_op(GNTTABOP_unmap_grant_ref)` of that (20 is
// `__HYPERVISOR_grant_table_op`).
timed_loop!(
    "bench_loop_grant_map_unmap",
    "mov eax, 20",
    "xor edi, edi",
    "mov rsi, r14",
    "mov edx, 1",
    "syscall",
    "mov eax, dword ptr [r14 + 20]",
    "mov dword ptr [r14 + 48], eax",
    "mov eax, 20",
    "mov edi, 1",
    "lea rsi, [r14 + 32]",
    "mov edx, 1",
    "syscall",
);

// vCPU 0's half of an IPI round trip: `event_channel_op(EVTCHNOP_send)`
// (`arg[0..3]`) to vCPU 1, `sched_op(SCHEDOP_poll)` (`arg[3..6]`) on its
// own port, then the event consumed as in `bench_loop_evtchn_send`
// (`arg[6]`: the pending word, `arg[7]`: the mask, `arg[8]`: its
// `vcpu_info`).
timed_loop!(
    "bench_loop_ipi_pingpong",
    "mov rax, [r14]",
    "mov rdi, [r14 + 8]",
    "mov rsi, [r14 + 16]",
    "syscall",
    "mov rax, [r14 + 24]",
    "mov rdi, [r14 + 32]",
    "mov rsi, [r14 + 40]",
    "syscall",
    "mov rax, [r14 + 48]",
    "mov rcx, [r14 + 56]",
    "lock and [rax], rcx",
    "mov rax, [r14 + 64]",
    "mov qword ptr [rax + 8], 0",
    "mov byte ptr [rax], 0",
);

// vCPU 1's half, for ever, its block in rdi: masks its events (`arg[5]`:
// its `vcpu_info`), then polls its port (`arg[0..3]`), consumes the event
// (`arg[3]`: the pending word, `arg[4]`: the mask) and sends back
// (`arg[6..9]`).
global_asm!(
    ".pushsection .text.bench, \"ax\", @progbits",
    ".global bench_vcpu1_pingpong_loop",
    "bench_vcpu1_pingpong_loop:",
    "mov r14, rdi",
    "mov rax, [r14 + 40]",
    "mov byte ptr [rax + 1], 1",
    "2:",
    "mov rax, [r14]",
    "mov rdi, [r14 + 8]",
    "mov rsi, [r14 + 16]",
    "syscall",
    "mov rax, [r14 + 24]",
    "mov rcx, [r14 + 32]",
    "lock and [rax], rcx",
    "mov rax, [r14 + 40]",
    "mov qword ptr [rax + 8], 0",
    "mov byte ptr [rax], 0",
    "mov rax, [r14 + 48]",
    "mov rdi, [r14 + 56]",
    "mov rsi, [r14 + 64]",
    "syscall",
    "jmp 2b",
    ".global bench_vcpu1_pingpong_end",
    "bench_vcpu1_pingpong_end:",
    ".popsection",
);

// A breakpoint, bounced to `bench_int3_handler`.
timed_loop!("bench_loop_int3", "int3");

// A 4-byte load from the unmapped address `arg`: `mov eax, [r14]` is the
// 3 bytes 41 8b 06, which `bench_pf_handler` steps over.
timed_loop!("bench_loop_page_fault", "mov eax, dword ptr [r14]");

/// Length of the faulting load in `bench_loop_page_fault`.
const PF_INSN_LEN: u64 = 3;
/// `r15` value with which guest user mode asks the syscall callback to end
/// the user-mode run instead of returning.
const USER_EXIT_MAGIC: u64 = 0x7e57;
/// `iret` flags: return with `sysret` (`VGCF_in_syscall`).
const VGCF_IN_SYSCALL: u64 = 1 << 8;
/// The `iret` hypercall.
const IRET: u64 = guest_abi::hypercall::IRET;

// Exception handlers and the user-mode syscall loop.
//
// Xen's 64-bit PV bounce frame, at the handler's rsp: rcx, r11, [error
// code], rip, cs, rflags, rsp, ss (cs with RPL 0 when the guest kernel was
// interrupted, RPL 3 for guest user mode). The `iret` hypercall takes, at
// rsp: rax, r11, rcx, flags, rip, cs, rflags, rsp, ss (`struct
// iret_context`). So a handler pops rcx and r11, drops the error code,
// pushes flags, rcx, r11 and rax, and issues hypercall 23; every other
// register is the interrupted context's, because the handler changes none.
//
// `bench_user_syscalls(n) -> cycles` enters guest user mode (the `iret`
// frame's cs has RPL 3; rflags.IF clear keeps events masked) at
// `bench_user_loop`, which times n `syscall`s the way `timed_loop!` times a
// body and ends with r15 = USER_EXIT_MAGIC; the syscall callback then, back
// in kernel mode on the `stack_switch` stack, returns the cycles to the
// caller of `bench_user_syscalls` from the stack pointer it saved.
global_asm!(
    ".pushsection .text.bench, \"ax\", @progbits",
    ".globl bench_int3_handler",
    "bench_int3_handler:",
    "    pop rcx",
    "    pop r11",
    "    push 0",
    "    push rcx",
    "    push r11",
    "    push rax",
    "    mov eax, {iret}",
    "    syscall",
    "    ud2",
    ".globl bench_pf_handler",
    "bench_pf_handler:",
    "    pop rcx",
    "    pop r11",
    "    add rsp, 8",
    "    add qword ptr [rsp], {pf_len}",
    "    push 0",
    "    push rcx",
    "    push r11",
    "    push rax",
    "    mov eax, {iret}",
    "    syscall",
    "    ud2",
    ".globl bench_syscall_callback",
    "bench_syscall_callback:",
    "    cmp r15, {magic}",
    "    je 3f",
    "    pop rcx",
    "    pop r11",
    "    push {in_syscall}",
    "    push rcx",
    "    push r11",
    "    push rax",
    "    mov eax, {iret}",
    "    syscall",
    "    ud2",
    "3:",
    "    mov rax, r12",
    "    mov rsp, [rip + {kernel_rsp}]",
    "    pop r15",
    "    pop r14",
    "    pop r13",
    "    pop r12",
    "    pop rbp",
    "    pop rbx",
    "    ret",
    ".globl bench_user_syscalls",
    "bench_user_syscalls:",
    "    push rbx",
    "    push rbp",
    "    push r12",
    "    push r13",
    "    push r14",
    "    push r15",
    "    mov [rip + {kernel_rsp}], rsp",
    "    mov r13, rdi",
    "    lea rax, [rip + {user_stack} + {user_stack_size}]",
    "    push {user_ss}",
    "    push rax",
    "    push 0x2",
    "    push {user_cs}",
    "    lea rax, [rip + 4f]",
    "    push rax",
    "    push 0",
    "    push 0",
    "    push 0",
    "    push 0",
    "    mov eax, {iret}",
    "    syscall",
    "    ud2",
    "4:",
    "    xor r15, r15",
    "    lfence",
    "    rdtsc",
    "    shl rdx, 32",
    "    or rax, rdx",
    "    mov r12, rax",
    "2:",
    "    syscall",
    "    dec r13",
    "    jnz 2b",
    "    lfence",
    "    rdtsc",
    "    shl rdx, 32",
    "    or rax, rdx",
    "    sub rax, r12",
    "    mov r12, rax",
    "    mov r15, {magic}",
    "    syscall",
    "    ud2",
    ".popsection",
    iret = const IRET,
    pf_len = const PF_INSN_LEN,
    magic = const USER_EXIT_MAGIC,
    in_syscall = const VGCF_IN_SYSCALL,
    kernel_rsp = sym KERNEL_RSP,
    user_stack = sym USER_STACK,
    user_stack_size = const USER_STACK_SIZE,
    user_ss = const FLAT_USER_SS,
    user_cs = const FLAT_USER_CS,
);

/// Guest user selectors (`FLAT_USER_SS`/`FLAT_USER_CS`: RPL 3 means user).
const FLAT_USER_SS: u16 = guest_abi::arch::FLAT_USER_SS;
const FLAT_USER_CS: u16 = guest_abi::arch::FLAT_USER_CS;

unsafe extern "C" {
    fn bench_loop_empty(n: u64, arg: u64) -> u64;
    fn bench_loop_hypercall(n: u64, arg: u64) -> u64;
    fn bench_loop_hypercall_page(n: u64, arg: u64) -> u64;
    fn bench_loop_grant_map_unmap(n: u64, arg: u64) -> u64;
    fn bench_loop_int3(n: u64, arg: u64) -> u64;
    fn bench_loop_page_fault(n: u64, arg: u64) -> u64;
    fn bench_loop_evtchn_send(n: u64, arg: u64) -> u64;
    fn bench_loop_ipi_pingpong(n: u64, arg: u64) -> u64;
    fn bench_user_syscalls(n: u64) -> u64;
    fn bench_int3_handler();
    fn bench_pf_handler();
    fn bench_syscall_callback();
    static hypercall_page: [u8; 4096];
}

/// Where `bench_user_syscalls` keeps its stack pointer while user mode runs.
/// Only that assembly reads and writes it.
#[unsafe(no_mangle)]
static KERNEL_RSP: AtomicU64 = AtomicU64::new(0);

const USER_STACK_SIZE: usize = size_of::<Pages<1>>();

/// Stack of guest user mode (its loop pushes nothing; the frame needs one).
#[unsafe(no_mangle)]
static USER_STACK: Pages<1> = Pages::new();

/// The stack the hypervisor switches to when user mode enters the kernel
/// (`stack_switch`).
static KERNEL_STACK: Pages<4> = Pages::new();

#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// 64 pages in one L1 table (256 KiB aligned, inside one 2 MiB region) whose
/// PTEs the MMU rows rewrite.
#[repr(C, align(262144))]
struct MmuArea([Page; 64]);

static MMU_AREA: MmuArea = MmuArea([const { Page([0; 4096]) }; 64]);

// ---------------------------------------------------------------------------
// Rows

/// What one row measured.
enum Outcome {
    /// TSC deltas of the row's loop and of the empty loop, n iterations each.
    Measured { total: u64, overhead: u64 },
    /// The TSC delta of `n` operations a row timed itself (no loop to
    /// subtract).
    Timed { total: u64, n: u64 },
    /// The hypervisor lacks what the row needs.
    Unsupported(&'static str),
    /// The row went wrong.
    Failed(Failure),
}

/// Why a row failed, for its report line.
enum Failure {
    /// A hypercall the row relies on returned this instead of 0.
    Hypercall(&'static str, i64),
    /// The guest could not find what it needed (e.g. a page-table entry).
    Setup(&'static str),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Hypercall(what, rc) => write!(f, "{what} returned {}", Rc(*rc)),
            Failure::Setup(what) => f.write_str(what),
        }
    }
}

/// What the rows share.
struct Ctx {
    si: StartInfoRef,
    iterations: u64,
    repeats: u32,
    traps: Traps,
    r: Report,
    /// The page window the domU rows build domains through, once made.
    window: Option<tests::pvmm::Window>,
}

struct Row {
    name: &'static str,
    run: fn(&mut Ctx) -> Outcome,
}

const ROWS: &[Row] = &[
    Row {
        name: "null_hypercall_inline",
        run: |c| {
            hypercall_row(
                c,
                "xen_version",
                [XEN_VERSION, u64::from(XENVER_VERSION), 0, 0, 0, 0],
                false,
            )
        },
    },
    Row {
        name: "null_hypercall_page",
        run: |c| {
            hypercall_row(
                c,
                "xen_version",
                [XEN_VERSION, u64::from(XENVER_VERSION), 0, 0, 0, 0],
                true,
            )
        },
    },
    Row {
        name: "update_va_mapping_invlpg",
        run: update_va_mapping,
    },
    Row {
        name: "mmu_update_64",
        run: mmu_update_64,
    },
    Row {
        name: "mmuext_tlb_flush_local",
        run: mmuext_tlb_flush_local,
    },
    Row {
        name: "int3_bounce",
        run: int3_bounce,
    },
    Row {
        name: "page_fault_bounce",
        run: page_fault_bounce,
    },
    Row {
        name: "syscall_bounce",
        run: syscall_bounce,
    },
    Row {
        name: "evtchn_send_loopback",
        run: evtchn_send_loopback,
    },
    Row {
        name: "evtchn_ipi_self",
        run: evtchn_ipi_self,
    },
    Row {
        name: "vcpu_switch_yield",
        run: vcpu_switch_yield,
    },
    Row {
        name: "ipi_pingpong",
        run: ipi_pingpong,
    },
    Row {
        name: "singleshot_timer_arm",
        run: singleshot_timer_arm,
    },
    Row {
        name: "set_timer_op_arm",
        run: set_timer_op_arm,
    },
    Row {
        name: "grant_map_unmap",
        run: grant_map_unmap,
    },
    Row {
        name: "grant_copy_4k",
        run: grant_copy_4k,
    },
    Row {
        name: "blk_ring_read_4k",
        run: |c| blk_row(c, 1, false),
    },
    Row {
        name: "blk_read_1m",
        run: |c| blk_row(c, 256, false),
    },
    Row {
        name: "blk_ring_read_4k_persistent",
        run: |c| blk_row(c, 1, true),
    },
    Row {
        name: "blk_read_1m_persistent",
        run: |c| blk_row(c, 256, true),
    },
    Row {
        name: "domu_pingpong",
        run: domu_pingpong,
    },
    Row {
        name: "domu_create_first_byte",
        run: domu_create_first_byte,
    },
    Row {
        name: "sched_yield",
        run: |c| {
            hypercall_row(
                c,
                "sched_op(SCHEDOP_yield)",
                [SCHED_OP, u64::from(SCHEDOP_YIELD), 0, 0, 0, 0],
                false,
            )
        },
    },
];

/// A pointer as a hypercall argument.
fn addr<T: ?Sized>(p: *const T) -> u64 {
    p.cast::<u8>().addr() as u64
}

/// The fastest of `repeats` runs of `f(iterations)`.
fn fastest(c: &Ctx, f: impl Fn(u64) -> u64) -> u64 {
    (0..c.repeats.max(1))
        .map(|_| f(c.iterations))
        .min()
        .unwrap_or(0)
}

/// Times `lp(n, arg)` and the empty loop.
fn measure(c: &Ctx, lp: unsafe extern "C" fn(u64, u64) -> u64, arg: u64) -> Outcome {
    // SAFETY: the caller set up what the loop's body needs (its argument
    // block, or the handler that bounces its exception); n > 0.
    let total = fastest(c, |n| unsafe { lp(n, arg) });
    // SAFETY: the empty loop only reads the TSC.
    let overhead = fastest(c, |n| unsafe { bench_loop_empty(n, 0) });
    Outcome::Measured { total, overhead }
}

/// One call of hypercall `args[0]` with `args[1..6]`.
fn call(args: &[u64; 6]) -> i64 {
    // SAFETY: only the rows' own hypercalls come here: version queries,
    // yields, flushes, and page-table writes of entries' current values
    // (which change no mapping).
    unsafe {
        guest_abi::hypercall::hypercall5(args[0], args[1], args[2], args[3], args[4], args[5])
    }
}

/// A row that times one hypercall: probes it once (`-ENOSYS` makes the row
/// unsupported, any other non-zero result a failure), then loops.
fn hypercall_row(c: &mut Ctx, what: &'static str, args: [u64; 6], via_page: bool) -> Outcome {
    match call(&args) {
        0.. => {}
        rc if rc == -errno::ENOSYS => return Outcome::Unsupported("hypercall returns -ENOSYS"),
        rc => return Outcome::Failed(Failure::Hypercall(what, rc)),
    }
    let page = addr(core::ptr::addr_of!(hypercall_page));
    let stub = page + args[0] * guest_abi::hypercall::HYPERCALL_STUB_SIZE;
    let block = [args[0], args[1], args[2], args[3], args[4], args[5], stub];
    let lp = if via_page {
        bench_loop_hypercall_page
    } else {
        bench_loop_hypercall
    };
    let outcome = measure(c, lp, addr(&block));
    match call(&args) {
        0.. => outcome,
        rc => Outcome::Failed(Failure::Hypercall(what, rc)),
    }
}

/// vCPU 1's stack in `vcpu_switch_yield`.
static VCPU1_STACK: Pages<4> = Pages::new();

global_asm!(
    ".pushsection .text.bench, \"ax\", @progbits",
    ".global bench_vcpu1_yield_loop",
    "bench_vcpu1_yield_loop:",
    "2:",
    "mov eax, {sched_op}",
    "xor edi, edi",
    "xor esi, esi",
    "syscall",
    "jmp 2b",
    ".popsection",
    sched_op = const SCHED_OP,
);

unsafe extern "C" {
    fn bench_vcpu1_yield_loop() -> !;
    fn bench_vcpu1_pingpong_loop() -> !;
    static bench_vcpu1_pingpong_end: u8;
}

/// `vcpu_op(cmd, vcpu, arg)`.
fn vcpu_op(cmd: u32, vcpu: u32, arg: u64) -> i64 {
    call(&[VCPU_OP, u64::from(cmd), u64::from(vcpu), arg, 0, 0])
}

/// Brings vCPU 1 up in a loop of yields, times vCPU 0's yields (each a
/// round trip through vCPU 1), and takes vCPU 1 down again.
fn vcpu_switch_yield(c: &mut Ctx) -> Outcome {
    match vcpu_op(VCPUOP_IS_UP, 1, 0) {
        0 => {}
        rc if rc == -errno::ENOSYS => return Outcome::Unsupported("vcpu_op returns -ENOSYS"),
        _ => return Outcome::Unsupported("no vCPU 1 down (dom0_max_vcpus=3)"),
    }
    let Some(l4_mfn) = mfn_of(c.si, c.si.pt_base) else {
        return Outcome::Failed(Failure::Setup("the L4's frame"));
    };
    let ctx = kernel_context(
        bench_vcpu1_yield_loop as unsafe extern "C" fn() -> ! as usize as u64,
        VCPU1_STACK.top() - 8,
        l4_mfn,
    );
    match vcpu_op(VCPUOP_INITIALISE, 1, addr(&ctx)) {
        0 => {}
        rc if rc == -errno::EEXIST => {}
        rc => return Outcome::Failed(Failure::Hypercall("vcpu_op(VCPUOP_initialise)", rc)),
    }
    let rc = vcpu_op(VCPUOP_UP, 1, 0);
    if rc != 0 {
        return Outcome::Failed(Failure::Hypercall("vcpu_op(VCPUOP_up)", rc));
    }
    let outcome = hypercall_row(
        c,
        "sched_op(SCHEDOP_yield)",
        [SCHED_OP, u64::from(SCHEDOP_YIELD), 0, 0, 0, 0],
        false,
    );
    match vcpu_op(VCPUOP_DOWN, 1, 0) {
        0 => outcome,
        rc => Outcome::Failed(Failure::Hypercall("vcpu_op(VCPUOP_down)", rc)),
    }
}

/// The vCPU `ipi_pingpong` runs its other half on (vCPU 1 is
/// `vcpu_switch_yield`'s, and keeps that context).
const PINGPONG_VCPU: u32 = 2;
/// Its stack.
static PINGPONG_STACK: Pages<4> = Pages::new();
/// Its argument block.
static PINGPONG_VCPU1: [AtomicU64; 9] = [const { AtomicU64::new(0) }; 9];

/// Brings vCPU 2 up in its ping-pong loop and times vCPU 0's half (each
/// a round trip through vCPU 2), then takes vCPU 2 down again.
fn ipi_pingpong(c: &mut Ctx) -> Outcome {
    use core::sync::atomic::Ordering::SeqCst;
    match vcpu_op(VCPUOP_IS_UP, PINGPONG_VCPU, 0) {
        0 => {}
        rc if rc == -errno::ENOSYS => return Outcome::Unsupported("vcpu_op returns -ENOSYS"),
        _ => return Outcome::Unsupported("no vCPU 2 down (dom0_max_vcpus=3)"),
    }
    let Some(shared) = SharedInfo::map(c.si) else {
        return Outcome::Failed(Failure::Setup("shared_info could not be mapped"));
    };
    let (mut to1, mut to0) = (
        EvtchnBindIpi {
            vcpu: PINGPONG_VCPU,
            port: 0,
        },
        EvtchnBindIpi { vcpu: 0, port: 0 },
    );
    for b in [&mut to1, &mut to0] {
        match evtchn_op(EVTCHNOP_BIND_IPI, b) {
            0 => {}
            rc if rc == -errno::ENOSYS => {
                return Outcome::Unsupported("event_channel_op returns -ENOSYS")
            }
            rc => {
                return Outcome::Failed(Failure::Hypercall(
                    "event_channel_op(EVTCHNOP_bind_ipi)",
                    rc,
                ))
            }
        }
    }
    let word = |port: u32| shared.va + SHARED_EVTCHN_PENDING + u64::from(port / 64) * 8;
    let keep = |port: u32| !(1u64 << (port % 64));
    let (ports0, ports1) = ([to0.port], [to1.port]);
    let poll = |ports: &[u32; 1]| SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: 1,
        _pad: 0,
        timeout: 0,
    };
    let (poll0, poll1) = (poll(&ports0), poll(&ports1));
    let (send1, send0) = (EvtchnSend { port: to1.port }, EvtchnSend { port: to0.port });
    let v1 = [
        SCHED_OP,
        u64::from(SCHEDOP_POLL),
        addr(&poll1),
        word(to1.port),
        keep(to1.port),
        shared.va + 64 * u64::from(PINGPONG_VCPU),
        EVENT_CHANNEL_OP,
        u64::from(EVTCHNOP_SEND),
        addr(&send0),
    ];
    for (slot, v) in PINGPONG_VCPU1.iter().zip(v1) {
        slot.store(v, SeqCst);
    }
    let Some(l4_mfn) = mfn_of(c.si, c.si.pt_base) else {
        return Outcome::Failed(Failure::Setup("the L4's frame"));
    };
    let mut ctx = kernel_context(
        bench_vcpu1_pingpong_loop as unsafe extern "C" fn() -> ! as usize as u64,
        PINGPONG_STACK.top() - 8,
        l4_mfn,
    );
    ctx.user_regs.rdi = addr(&PINGPONG_VCPU1);
    match vcpu_op(VCPUOP_INITIALISE, PINGPONG_VCPU, addr(&ctx)) {
        0 => {}
        rc if rc == -errno::EEXIST => {}
        rc => return Outcome::Failed(Failure::Hypercall("vcpu_op(VCPUOP_initialise)", rc)),
    }
    let rc = vcpu_op(VCPUOP_UP, PINGPONG_VCPU, 0);
    if rc != 0 {
        return Outcome::Failed(Failure::Hypercall("vcpu_op(VCPUOP_up)", rc));
    }
    let block = [
        EVENT_CHANNEL_OP,
        u64::from(EVTCHNOP_SEND),
        addr(&send1),
        SCHED_OP,
        u64::from(SCHEDOP_POLL),
        addr(&poll0),
        word(to0.port),
        keep(to0.port),
        shared.va,
    ];
    let outcome = measure(c, bench_loop_ipi_pingpong, addr(&block));
    core::hint::black_box((&block, &poll0, &poll1, &send0, &send1, &ports0, &ports1));
    match vcpu_op(VCPUOP_DOWN, PINGPONG_VCPU, 0) {
        0 => outcome,
        rc => Outcome::Failed(Failure::Hypercall("vcpu_op(VCPUOP_down)", rc)),
    }
}

/// A deadline far ahead (about 146 years of system time) and still a
/// positive `s_time_t`: the timer rows arm it and never see it fire.
const FAR_AHEAD_NS: u64 = 1 << 62;

/// `VCPUOP_set_singleshot_timer` for [`FAR_AHEAD_NS`], then the timer is
/// stopped.
fn singleshot_timer_arm(c: &mut Ctx) -> Outcome {
    let arg = VcpuSetSingleshotTimer {
        timeout_abs_ns: FAR_AHEAD_NS,
        flags: 0,
        _pad: 0,
    };
    let out = hypercall_row(
        c,
        "vcpu_op(VCPUOP_set_singleshot_timer)",
        [
            VCPU_OP,
            u64::from(VCPUOP_SET_SINGLESHOT_TIMER),
            0,
            addr(&arg),
            0,
            0,
        ],
        false,
    );
    let _ = call(&[VCPU_OP, u64::from(VCPUOP_STOP_SINGLESHOT_TIMER), 0, 0, 0, 0]);
    out
}

/// `set_timer_op` for [`FAR_AHEAD_NS`], then the timer is stopped.
fn set_timer_op_arm(c: &mut Ctx) -> Outcome {
    let out = hypercall_row(
        c,
        "set_timer_op",
        [SET_TIMER_OP, FAR_AHEAD_NS, 0, 0, 0, 0],
        false,
    );
    let _ = call(&[SET_TIMER_OP, 0, 0, 0, 0, 0]);
    out
}

/// Whether hypercall `nr` exists, from a call with arguments no
/// implementation accepts or acts on.
fn probe(nr: u64, args: [u64; 5]) -> bool {
    call(&[nr, args[0], args[1], args[2], args[3], args[4]]) != -errno::ENOSYS
}

/// A non-canonical address: every pointer check refuses it.
const BAD_VA: u64 = 0xdead_0000_0000_0000;

/// The machine frame of a page of the initial mapping.
fn mfn_of(si: StartInfoRef, va: u64) -> Option<u64> {
    let pfn = va.checked_sub(VIRT_BASE)? / PAGE_SIZE;
    if pfn >= si.nr_pages {
        return None;
    }
    let p2m = si.mfn_list as *const u64;
    // SAFETY: mfn_list is the P2M array of nr_pages entries, mapped for the
    // guest's life; pfn < nr_pages.
    Some(unsafe { p2m.add(usize::try_from(pfn).ok()?).read_volatile() })
}

/// The virtual address of a page-table frame of the initial mapping, from
/// the read-only M2P.
fn pt_va(si: StartInfoRef, mfn: u64) -> Option<u64> {
    let m2p = MACH2PHYS_VIRT_START as *const u64;
    // SAFETY: the M2P is mapped read-only at MACH2PHYS_VIRT_START with an
    // entry for every machine frame the domain owns; mfn came from one of
    // its page-table entries.
    let pfn = unsafe { m2p.add(usize::try_from(mfn).ok()?).read_volatile() };
    if pfn >= si.nr_pages {
        return None;
    }
    Some(VIRT_BASE + pfn * PAGE_SIZE)
}

/// Machine address and current value of the L1 entry mapping `va`, walking
/// the bootstrap page tables (which the guest may read, not write).
fn l1_entry(si: StartInfoRef, va: u64) -> Option<(u64, u64)> {
    const PRESENT: u64 = 1;
    const PSE: u64 = 1 << 7;
    const FRAME: u64 = 0x000f_ffff_ffff_f000;
    let mut table = si.pt_base;
    let mut table_mfn = mfn_of(si, table)?;
    for level in (0..4u32).rev() {
        let index = (va >> (12 + 9 * level)) & 511;
        let entry_va = table + index * 8;
        // SAFETY: `table` is a page-table frame of the initial mapping
        // (pt_base, then frames found through present entries), mapped
        // read-only; the index is below 512.
        let entry = unsafe { (entry_va as *const u64).read_volatile() };
        if level == 0 {
            return Some(((table_mfn << 12) + index * 8, entry));
        }
        if entry & PRESENT == 0 || entry & PSE != 0 {
            return None;
        }
        table_mfn = (entry & FRAME) >> 12;
        table = pt_va(si, table_mfn)?;
    }
    None
}

fn update_va_mapping(c: &mut Ctx) -> Outcome {
    if !probe(UPDATE_VA_MAPPING, [BAD_VA, 0, 0, 0, 0]) {
        return Outcome::Unsupported("update_va_mapping returns -ENOSYS");
    }
    let va = addr(&MMU_AREA);
    let Some((_, pte)) = l1_entry(c.si, va) else {
        return Outcome::Failed(Failure::Setup("no L1 entry for the bench area"));
    };
    hypercall_row(
        c,
        "update_va_mapping",
        [UPDATE_VA_MAPPING, va, pte, UVMF_INVLPG | UVMF_LOCAL, 0, 0],
        false,
    )
}

fn mmu_update_64(c: &mut Ctx) -> Outcome {
    if !probe(MMU_UPDATE, [0, 0, 0, u64::from(DOMID_SELF), 0]) {
        return Outcome::Unsupported("mmu_update returns -ENOSYS");
    }
    let base = addr(&MMU_AREA);
    let mut reqs = [MmuUpdate::default(); 64];
    for (i, req) in (0u64..).zip(reqs.iter_mut()) {
        let Some((ptr, val)) = l1_entry(c.si, base + i * PAGE_SIZE) else {
            return Outcome::Failed(Failure::Setup("no L1 entry for the bench area"));
        };
        *req = MmuUpdate {
            ptr: ptr | MMU_NORMAL_PT_UPDATE,
            val,
        };
    }
    let outcome = hypercall_row(
        c,
        "mmu_update",
        [MMU_UPDATE, addr(&reqs), 64, 0, u64::from(DOMID_SELF), 0],
        false,
    );
    core::hint::black_box(&reqs);
    outcome
}

fn mmuext_tlb_flush_local(c: &mut Ctx) -> Outcome {
    if !probe(MMUEXT_OP, [0, 0, 0, u64::from(DOMID_SELF), 0]) {
        return Outcome::Unsupported("mmuext_op returns -ENOSYS");
    }
    let op = MmuextOp {
        cmd: MMUEXT_TLB_FLUSH_LOCAL,
        ..MmuextOp::default()
    };
    let outcome = hypercall_row(
        c,
        "mmuext_op(MMUEXT_TLB_FLUSH_LOCAL)",
        [MMUEXT_OP, addr(&op), 1, 0, u64::from(DOMID_SELF), 0],
        false,
    );
    core::hint::black_box(&op);
    outcome
}

/// `event_channel_op(cmd, arg)`.
fn evtchn_op<T>(cmd: u32, arg: &mut T) -> i64 {
    call(&[
        EVENT_CHANNEL_OP,
        u64::from(cmd),
        addr(core::ptr::from_mut(arg)),
        0,
        0,
        0,
    ])
}

/// Times `EVTCHNOP_send` on `port`, whose event is raised on `raised`,
/// consumed before each send (see `bench_loop_evtchn_send`).
fn evtchn_send_row(c: &mut Ctx, port: u32, raised: u32) -> Outcome {
    let Some(shared) = SharedInfo::map(c.si) else {
        return Outcome::Failed(Failure::Setup("shared_info could not be mapped"));
    };
    let send = EvtchnSend { port };
    let args = [
        EVENT_CHANNEL_OP,
        u64::from(EVTCHNOP_SEND),
        addr(&send),
        0,
        0,
        0,
    ];
    match call(&args) {
        0 => {}
        rc if rc == -errno::ENOSYS => {
            return Outcome::Unsupported("event_channel_op returns -ENOSYS")
        }
        rc => return Outcome::Failed(Failure::Hypercall("event_channel_op(EVTCHNOP_send)", rc)),
    }
    let word = shared.va + SHARED_EVTCHN_PENDING + u64::from(raised / 64) * 8;
    let keep = !(1u64 << (raised % 64));
    let block = [args[0], args[1], args[2], 0, 0, 0, 0, word, keep, shared.va];
    let outcome = measure(c, bench_loop_evtchn_send, addr(&block));
    core::hint::black_box((&send, &block));
    match call(&args) {
        0 => outcome,
        rc => Outcome::Failed(Failure::Hypercall("event_channel_op(EVTCHNOP_send)", rc)),
    }
}

/// `evtchn_pending` in shared_info (vCPU 0's `vcpu_info` is at 0).
const SHARED_EVTCHN_PENDING: u64 = 2048;

/// A loopback channel's bound end (allocated once, kept for the rows).
fn evtchn_send_loopback(c: &mut Ctx) -> Outcome {
    let mut alloc = EvtchnAllocUnbound {
        dom: DOMID_SELF,
        remote_dom: DOMID_SELF,
        port: 0,
    };
    match evtchn_op(EVTCHNOP_ALLOC_UNBOUND, &mut alloc) {
        0 => {}
        rc if rc == -errno::ENOSYS => {
            return Outcome::Unsupported("event_channel_op returns -ENOSYS")
        }
        rc => {
            return Outcome::Failed(Failure::Hypercall(
                "event_channel_op(EVTCHNOP_alloc_unbound)",
                rc,
            ))
        }
    }
    let mut bind = EvtchnBindInterdomain {
        remote_dom: DOMID_SELF,
        _pad: 0,
        remote_port: alloc.port,
        local_port: 0,
    };
    match evtchn_op(EVTCHNOP_BIND_INTERDOMAIN, &mut bind) {
        0 => evtchn_send_row(c, alloc.port, bind.local_port),
        rc => Outcome::Failed(Failure::Hypercall(
            "event_channel_op(EVTCHNOP_bind_interdomain)",
            rc,
        )),
    }
}

fn evtchn_ipi_self(c: &mut Ctx) -> Outcome {
    let mut bind = EvtchnBindIpi { vcpu: 0, port: 0 };
    match evtchn_op(EVTCHNOP_BIND_IPI, &mut bind) {
        0 => evtchn_send_row(c, bind.port, bind.port),
        rc if rc == -errno::ENOSYS => Outcome::Unsupported("event_channel_op returns -ENOSYS"),
        rc => Outcome::Failed(Failure::Hypercall(
            "event_channel_op(EVTCHNOP_bind_ipi)",
            rc,
        )),
    }
}

/// Whether the trap table with the bench handlers is in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Traps {
    NotTried,
    Installed,
    Unsupported,
    Failed(i64),
}

/// Installs the int3 and page-fault handlers once; later rows reuse the
/// answer. `Err` is the row's outcome when there are no handlers.
fn traps(c: &mut Ctx) -> Result<(), Outcome> {
    if c.traps == Traps::NotTried {
        // A null table clears the trap table on Xen: a harmless probe.
        c.traps = if probe(SET_TRAP_TABLE, [0; 5]) {
            // DPL 3: the guest kernel (ring 3) may raise them with `int`.
            let table = [
                trap(3, 3, bench_int3_handler),
                trap(14, 3, bench_pf_handler),
                TrapInfo::default(),
            ];
            match set_trap_table(&table) {
                0 => Traps::Installed,
                rc => Traps::Failed(rc),
            }
        } else {
            Traps::Unsupported
        };
    }
    match c.traps {
        Traps::Installed => Ok(()),
        Traps::Failed(rc) => Err(Outcome::Failed(Failure::Hypercall("set_trap_table", rc))),
        Traps::NotTried | Traps::Unsupported => {
            Err(Outcome::Unsupported("set_trap_table returns -ENOSYS"))
        }
    }
}

fn int3_bounce(c: &mut Ctx) -> Outcome {
    if let Err(o) = traps(c) {
        return o;
    }
    measure(c, bench_loop_int3, 0)
}

fn page_fault_bounce(c: &mut Ctx) -> Outcome {
    if let Err(o) = traps(c) {
        return o;
    }
    // The lower half is empty in a PV dom0's initial mapping.
    let va = 0x1000;
    if l1_entry(c.si, va).is_some_and(|(_, pte)| pte & 1 != 0) {
        return Outcome::Failed(Failure::Setup("0x1000 is mapped"));
    }
    measure(c, bench_loop_page_fault, va)
}

fn syscall_bounce(c: &mut Ctx) -> Outcome {
    // Callbacks: event and failsafe stay 0 (events are masked throughout).
    let callback = addr(bench_syscall_callback as *const ());
    // SAFETY: registers entry points; changes no memory.
    match unsafe { hypercall3(SET_CALLBACKS, 0, 0, callback) } {
        0 => {}
        rc if rc == -errno::ENOSYS => return Outcome::Unsupported("set_callbacks returns -ENOSYS"),
        rc => return Outcome::Failed(Failure::Hypercall("set_callbacks", rc)),
    }
    let kstack_top = KERNEL_STACK.top();
    // SAFETY: names the stack user-to-kernel bounces land on; only the
    // hypervisor and the callback use it.
    match unsafe { hypercall2(STACK_SWITCH, u64::from(FLAT_KERNEL_SS), kstack_top) } {
        0 => {}
        rc if rc == -errno::ENOSYS => return Outcome::Unsupported("stack_switch returns -ENOSYS"),
        rc => return Outcome::Failed(Failure::Hypercall("stack_switch", rc)),
    }
    // User mode runs on the kernel's own page tables (everything a 64-bit
    // PV guest maps is user-accessible anyway).
    let Some(l4_mfn) = mfn_of(c.si, c.si.pt_base) else {
        return Outcome::Failed(Failure::Setup("no frame for pt_base"));
    };
    let op = MmuextOp {
        cmd: MMUEXT_NEW_USER_BASEPTR,
        _pad: 0,
        arg1: l4_mfn,
        arg2: 0,
    };
    // SAFETY: sets the user page-table base; the kernel's mappings are
    // unchanged.
    match unsafe { hypercall4(MMUEXT_OP, addr(&op), 1, 0, u64::from(DOMID_SELF)) } {
        0 => {}
        rc if rc == -errno::ENOSYS => return Outcome::Unsupported("mmuext_op returns -ENOSYS"),
        rc => return Outcome::Failed(Failure::Hypercall("mmuext_op(MMUEXT_NEW_USER_BASEPTR)", rc)),
    }
    // SAFETY: the callback, kernel stack and user page tables are in place;
    // `bench_user_syscalls` returns on the stack it left from.
    let total = fastest(c, |n| unsafe { bench_user_syscalls(n) });
    // SAFETY: the empty loop only reads the TSC.
    let overhead = fastest(c, |n| unsafe { bench_loop_empty(n, 0) });
    Outcome::Measured { total, overhead }
}

// ---------------------------------------------------------------------------
// Main

/// `key=value` from the command line.
fn arg<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split(' ')
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// `x / n` with two decimals, for a per-operation figure.
struct PerOp {
    cycles: u64,
    n: u64,
}

impl fmt::Display for PerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hundredths =
            (u128::from(self.cycles) * 100 + u128::from(self.n) / 2) / u128::from(self.n);
        write!(f, "{}.{:02}", hundredths / 100, hundredths % 100)
    }
}

fn main(si: StartInfoRef) -> ! {
    let cmdline = core::str::from_utf8(si.cmd_line_bytes()).unwrap_or("");
    let iterations = arg(cmdline, "iterations")
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1000);
    let repeats = arg(cmdline, "repeats")
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let filter = arg(cmdline, "filter").unwrap_or("");
    let mut c = Ctx {
        si,
        iterations,
        repeats,
        traps: Traps::NotTried,
        r: Report::new("bench"),
        window: None,
    };
    println!("bench-config iterations={iterations} repeats={repeats}");
    let (mut measured, mut unsupported) = (0u32, 0u32);
    for row in ROWS {
        if !filter.is_empty() && !filter.split(',').any(|f| row.name.contains(f)) {
            continue;
        }
        // A row that timed itself has no loop to subtract and its own count.
        let counts = match (row.run)(&mut c) {
            Outcome::Measured { total, overhead } => Ok((total, overhead, iterations)),
            Outcome::Timed { total, n } => Ok((total, 0, n)),
            other => Err(other),
        };
        let r = &mut c.r;
        match counts {
            Ok((total, overhead, n)) if total > overhead => {
                let cycles = PerOp {
                    cycles: total - overhead,
                    n,
                };
                println!(
                    "bench {} iterations={n} cycles_per_op={cycles} total={total} overhead={overhead}",
                    row.name
                );
                r.check(
                    format_args!("{}: {cycles} cycles per operation", row.name),
                    true,
                );
                measured += 1;
            }
            Ok((total, overhead, _)) => {
                // Only wall-clock timing (a test run without -icount) gets
                // here: a host that stalls the empty loop makes it longer
                // than the row's. The row ran; no time is asserted.
                println!(
                    "{}: measured nothing this time (total {total} <= overhead {overhead}): timing noise",
                    row.name
                );
                measured += 1;
            }
            Err(Outcome::Unsupported(why)) => {
                println!("bench {} unsupported reason=\"{why}\"", row.name);
                r.check(format_args!("{}: unsupported here ({why})", row.name), true);
                unsupported += 1;
            }
            Err(Outcome::Failed(why)) => {
                println!("bench {} failed reason=\"{why}\"", row.name);
                r.check(format_args!("{}: {why}", row.name), false);
            }
            // Both measured kinds are `Ok` above.
            Err(Outcome::Measured { .. } | Outcome::Timed { .. }) => {}
        }
    }
    println!("bench-end rows={measured} unsupported={unsupported}");
    c.r.check("at least one row ran", measured + unsupported > 0);
    c.r.finish()
}

// ---------------------------------------------------------------------------
// Grant rows

/// The grant both grant rows use: entry 8 of our own table, granting
/// `MMU_AREA` page 1's frame to ourselves (dom0: domain 0 on both).
const GRANT: u32 = 8;

/// A `grant_table_op` with one struct at `op`.
fn gnttab(cmd: u32, op: u64) -> i64 {
    call(&[GRANT_TABLE_OP, u64::from(cmd), op, 1, 0, 0])
}

/// Writes grant [`GRANT`]: our table's first frame is mapped for the write
/// at `MMU_AREA` page 63, whose mapping is put back after. The frame
/// granted, or why not.
fn grant_setup(si: StartInfoRef) -> Result<u64, Outcome> {
    let mut frames = [0u64; 1];
    let mut setup = GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: 1,
        frame_list: addr(&frames),
        ..Default::default()
    };
    match gnttab(GNTTABOP_SETUP_TABLE, addr(&setup)) {
        0 => {}
        rc if rc == -errno::ENOSYS => {
            return Err(Outcome::Unsupported("grant_table_op returns -ENOSYS"))
        }
        rc => return Err(Outcome::Failed(Failure::Hypercall("setup_table", rc))),
    }
    core::hint::black_box(&mut setup);
    core::hint::black_box(&mut frames);
    let base = addr(&MMU_AREA);
    let window = base + 63 * PAGE_SIZE;
    let granted =
        mfn_of(si, base + PAGE_SIZE).ok_or(Outcome::Failed(Failure::Setup("the granted frame")))?;
    let (_, old) =
        l1_entry(si, window).ok_or(Outcome::Failed(Failure::Setup("the window's PTE")))?;
    if setup.status != GNTST_OKAY {
        return Err(Outcome::Failed(Failure::Setup("setup_table's status")));
    }
    let pte = (frames[0] << 12) | 0x67; // P|RW|US|A|D
    if call(&[UPDATE_VA_MAPPING, window, pte, UVMF_INVLPG, 0, 0]) != 0 {
        return Err(Outcome::Failed(Failure::Setup("mapping the grant table")));
    }
    let entry = u64::from(GTF_PERMIT_ACCESS) | (granted << 32);
    // SAFETY: the window page now maps our grant-table frame, writable;
    // entry 8 is 8 bytes at offset 64.
    unsafe { ((window + u64::from(GRANT) * 8) as *mut u64).write_volatile(entry) };
    let _ = call(&[UPDATE_VA_MAPPING, window, old, UVMF_INVLPG, 0, 0]);
    Ok(granted)
}

/// A map and its unmap, as `bench_loop_grant_map_unmap` reads them.
#[repr(C)]
struct MapUnmap {
    map: GnttabMapGrantRef,
    unmap: GnttabUnmapGrantRef,
}
const _: () = assert!(core::mem::offset_of!(MapUnmap, unmap) == 32);

fn grant_map_unmap(c: &mut Ctx) -> Outcome {
    if let Err(o) = grant_setup(c.si) {
        return o;
    }
    // Mapped over `MMU_AREA` page 62, whose mapping is put back after.
    let host = addr(&MMU_AREA) + 62 * PAGE_SIZE;
    let Some((_, old)) = l1_entry(c.si, host) else {
        return Outcome::Failed(Failure::Setup("the mapping's PTE"));
    };
    let mut block = MapUnmap {
        map: GnttabMapGrantRef {
            host_addr: host,
            flags: GNTMAP_HOST_MAP,
            ref_: GRANT,
            dom: 0,
            ..Default::default()
        },
        unmap: GnttabUnmapGrantRef {
            host_addr: host,
            ..Default::default()
        },
    };
    // One round by hand first: both must work.
    let ok = gnttab(GNTTABOP_MAP_GRANT_REF, addr(&block.map)) == 0
        && core::hint::black_box(&block).map.status == GNTST_OKAY
        && {
            block.unmap.handle = block.map.handle;
            gnttab(GNTTABOP_UNMAP_GRANT_REF, addr(&block.unmap)) == 0
        }
        && core::hint::black_box(&block).unmap.status == GNTST_OKAY;
    let outcome = if ok {
        measure(c, bench_loop_grant_map_unmap, addr(&block))
    } else {
        Outcome::Failed(Failure::Setup("a grant map and unmap"))
    };
    let block = core::hint::black_box(&block);
    let _ = call(&[UPDATE_VA_MAPPING, host, old, UVMF_INVLPG, 0, 0]);
    if block.map.status != GNTST_OKAY || block.unmap.status != GNTST_OKAY {
        return Outcome::Failed(Failure::Setup("a timed map or unmap failed"));
    }
    outcome
}

fn grant_copy_4k(c: &mut Ctx) -> Outcome {
    if let Err(o) = grant_setup(c.si) {
        return o;
    }
    let Some(dest) = mfn_of(c.si, addr(&MMU_AREA) + 2 * PAGE_SIZE) else {
        return Outcome::Failed(Failure::Setup("the destination frame"));
    };
    let op = GnttabCopy {
        source: GnttabCopyPtr {
            u: u64::from(GRANT),
            domid: DOMID_SELF,
            ..Default::default()
        },
        dest: GnttabCopyPtr {
            u: dest,
            domid: DOMID_SELF,
            ..Default::default()
        },
        len: 4096,
        flags: GNTCOPY_SOURCE_GREF,
        status: 99,
        ..Default::default()
    };
    let outcome = hypercall_row(
        c,
        "grant_table_op(copy)",
        [GRANT_TABLE_OP, u64::from(GNTTABOP_COPY), addr(&op), 1, 0, 0],
        false,
    );
    if core::hint::black_box(&op).status != GNTST_OKAY {
        return Outcome::Failed(Failure::Setup("the copy's status"));
    }
    outcome
}

// ---------------------------------------------------------------------------
// Rows with a domU

/// Window pages the domU rows build their domain through.
const DOMU_SLOT: u64 = 1;

/// The window the domU rows build through, made on first use.
fn domu_window(c: &mut Ctx) -> Result<&tests::pvmm::Window, Outcome> {
    if c.window.is_none() {
        let mut env = tests::pvmm::Env::new(&mut c.r, c.si)
            .ok_or(Outcome::Failed(Failure::Setup("the bootstrap page tables")))?;
        c.window = Some(
            tests::pvmm::Window::new(&mut c.r, &mut env)
                .ok_or(Outcome::Failed(Failure::Setup("a page window")))?,
        );
    }
    c.window
        .as_ref()
        .ok_or(Outcome::Failed(Failure::Setup("a page window")))
}

/// Builds a domU running `code` (`tests::domu`): `-ENOSYS` from
/// `domctl` makes the row unsupported.
fn domu_build(c: &mut Ctx, code: &[u8]) -> Result<tests::domu::Tiny, Outcome> {
    let w = domu_window(c)?;
    tests::domu::try_build(w, DOMU_SLOT, 1, code).map_err(|(what, rc)| {
        if rc == -errno::ENOSYS {
            Outcome::Unsupported("domctl returns -ENOSYS")
        } else {
            Outcome::Failed(Failure::Hypercall(what, rc))
        }
    })
}

/// `domu_pingpong`: a round trip of events between dom0 and a domU on
/// one CPU, as `ipi_pingpong` between two vCPUs: dom0 sends on its
/// interdomain port and polls it; the domU (running `ipi_pingpong`'s
/// other half, copied into its code page) polls its end, consumes the
/// event and sends back.
fn domu_pingpong(c: &mut Ctx) -> Outcome {
    use tests::domu::{context, put_value, simple, vcpucontext, DATA_VA, SHARED_VA};
    // SAFETY: the loop's two labels, in order, in the bench's text.
    let code = unsafe {
        tests::domu::code_between(
            bench_vcpu1_pingpong_loop as unsafe extern "C" fn() -> ! as *const u8,
            &raw const bench_vcpu1_pingpong_end,
        )
    };
    let t = match domu_build(c, code) {
        Ok(t) => t,
        Err(o) => return o,
    };
    let outcome = domu_pingpong_with(c, &t);
    if let Some(w) = c.window.as_ref() {
        let _ = t.destroy(w);
    }
    return outcome;

    fn domu_pingpong_with(c: &mut Ctx, t: &tests::domu::Tiny) -> Outcome {
        let Some(shared) = SharedInfo::map(c.si) else {
            return Outcome::Failed(Failure::Setup("shared_info could not be mapped"));
        };
        let Ok(theirs) = tests::evtchn::alloc_unbound(t.id, 0) else {
            return Outcome::Failed(Failure::Setup("alloc_unbound for the domU"));
        };
        let Ok(mine) = tests::evtchn::bind_interdomain(t.id, theirs) else {
            return Outcome::Failed(Failure::Setup("bind_interdomain to the domU"));
        };
        let Some(w) = c.window.as_ref() else {
            return Outcome::Failed(Failure::Setup("a page window"));
        };
        // The domU's block, poll and send in its data page (its addresses).
        let data = t.data_va(w);
        let word = |base: u64, port: u32| base + SHARED_EVTCHN_PENDING + u64::from(port / 64) * 8;
        let keep = |port: u32| !(1u64 << (port % 64));
        let block_u = [
            SCHED_OP,
            u64::from(SCHEDOP_POLL),
            DATA_VA + 0x200,
            word(SHARED_VA, theirs),
            keep(theirs),
            SHARED_VA,
            EVENT_CHANNEL_OP,
            u64::from(EVTCHNOP_SEND),
            DATA_VA + 0x300,
        ];
        put_value(data + 0x100, block_u);
        put_value(
            data + 0x200,
            SchedPoll {
                ports: DATA_VA + 0x280,
                nr_ports: 1,
                _pad: 0,
                timeout: 0,
            },
        );
        put_value(data + 0x280, theirs);
        put_value(data + 0x300, EvtchnSend { port: theirs });
        let mut ctx = context(t.l4);
        ctx.user_regs.rdi = DATA_VA + 0x100;
        let rc = vcpucontext(
            guest_abi::domctl::XEN_DOMCTL_SETVCPUCONTEXT,
            t.id,
            0,
            Some(&mut ctx),
        );
        if rc != 0 {
            return Outcome::Failed(Failure::Hypercall("domctl(setvcpucontext)", rc));
        }
        let rc = simple(guest_abi::domctl::XEN_DOMCTL_UNPAUSEDOMAIN, t.id);
        if rc != 0 {
            return Outcome::Failed(Failure::Hypercall("domctl(unpausedomain)", rc));
        }
        // Its first instructions mask its events: no event may reach it
        // before (it has no callback), so dom0 yields until it polls.
        let blocked = (0..10_000).any(|_| {
            let _ = call(&[SCHED_OP, u64::from(SCHEDOP_YIELD), 0, 0, 0, 0]);
            tests::domu::info(t.id)
                .is_some_and(|i| i.flags & guest_abi::domctl::XEN_DOMINF_BLOCKED != 0)
        });
        if !blocked {
            return Outcome::Failed(Failure::Setup("the domU never blocked in its poll"));
        }
        let ports = [mine];
        let poll = SchedPoll {
            ports: ports.as_ptr() as u64,
            nr_ports: 1,
            _pad: 0,
            timeout: 0,
        };
        let send = EvtchnSend { port: mine };
        let block = [
            EVENT_CHANNEL_OP,
            u64::from(EVTCHNOP_SEND),
            addr(&send),
            SCHED_OP,
            u64::from(SCHEDOP_POLL),
            addr(&poll),
            word(shared.va, mine),
            keep(mine),
            shared.va,
        ];
        let outcome = measure(c, bench_loop_ipi_pingpong, addr(&block));
        core::hint::black_box((&block, &poll, &send, &ports));
        let _ = tests::evtchn::close(mine);
        outcome
    }
}

/// Domains `domu_create_first_byte` builds: each is a few milliseconds
/// of TCG, so fewer than the other rows' iterations.
const FIRST_BYTE_BUILDS: u64 = 10;

/// `domu_create_first_byte`: from `createdomain` until dom0 sees the first
/// byte a new domU writes: the build (`tests::domu`: createdomain,
/// max_vcpus, max_mem, populate_physmap, its tables written through
/// foreign mappings and its L4 pinned, hypercall_init), setvcpucontext,
/// unpause, and the domU's first store, which dom0 waits for by yielding.
/// The domU then shuts down and is destroyed (not timed).
fn domu_create_first_byte(c: &mut Ctx) -> Outcome {
    use tests::domu::{context, simple, vcpucontext, DATA_VA, HCALL_VA};
    let code = first_byte_code(DATA_VA, HCALL_VA);
    let n = c.iterations.min(FIRST_BYTE_BUILDS);
    let mut total = 0;
    for _ in 0..n {
        let start = tsc();
        let t = match domu_build(c, &code) {
            Ok(t) => t,
            Err(o) => return o,
        };
        let mut ctx = context(t.l4);
        let set = vcpucontext(
            guest_abi::domctl::XEN_DOMCTL_SETVCPUCONTEXT,
            t.id,
            0,
            Some(&mut ctx),
        );
        let unpaused = simple(guest_abi::domctl::XEN_DOMCTL_UNPAUSEDOMAIN, t.id);
        let Some(w) = c.window.as_ref() else {
            return Outcome::Failed(Failure::Setup("a page window"));
        };
        let data = t.data_va(w);
        let mut seen = false;
        if set == 0 && unpaused == 0 {
            for _ in 0..1_000_000 {
                // SAFETY: dom0 maps the domU's data page there.
                if unsafe { (data as *const u8).read_volatile() } != 0 {
                    seen = true;
                    break;
                }
                let _ = call(&[SCHED_OP, u64::from(SCHEDOP_YIELD), 0, 0, 0, 0]);
            }
        }
        total += tsc() - start;
        let destroyed = t.destroy(w);
        if set != 0 {
            return Outcome::Failed(Failure::Hypercall("domctl(setvcpucontext)", set));
        }
        if unpaused != 0 {
            return Outcome::Failed(Failure::Hypercall("domctl(unpausedomain)", unpaused));
        }
        if !seen {
            return Outcome::Failed(Failure::Setup("the domU's first byte never came"));
        }
        if destroyed != (0, 0) {
            return Outcome::Failed(Failure::Hypercall("domctl(destroydomain)", destroyed.0));
        }
    }
    Outcome::Timed { total, n }
}

/// The domU of `domu_create_first_byte`: stores 1 in the first byte of
/// its data page at `data`, then shuts down (`sched_op` through its
/// hypercall page at `hcall`, the reason word at `data + 8` being 0).
fn first_byte_code(data: u64, hcall: u64) -> [u8; 40] {
    let mut code = [0u8; 40];
    let mut at = 0;
    let mut emit = |bytes: &[u8]| {
        code[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    let imm32 = |v: u64| u32::try_from(v).unwrap_or(0).to_le_bytes();
    // mov byte ptr [data], 1
    emit(&[0xc6, 0x04, 0x25]);
    emit(&imm32(data));
    emit(&[0x01]);
    // mov edi, SCHEDOP_shutdown (2)
    emit(&[0xbf, 0x02, 0x00, 0x00, 0x00]);
    // mov esi, data + 8
    emit(&[0xbe]);
    emit(&imm32(data + 8));
    // mov eax, hcall + 29 * 32; call rax
    emit(&[0xb8]);
    emit(&imm32(hcall + 29 * 32));
    emit(&[0xff, 0xd0]);
    // jmp $
    emit(&[0xeb, 0xfe]);
    code
}

/// The TSC, fenced.
fn tsc() -> u64 {
    // SAFETY: `lfence; rdtsc` reads the time stamp counter only.
    unsafe {
        let (lo, hi): (u32, u32);
        core::arch::asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack));
        u64::from(hi) << 32 | u64::from(lo)
    }
}

// ---------------------------------------------------------------------------
// Block ring rows: our ring code and dom0's block back end core

/// The vCPU the block rows run the back end on (vCPUs 1 and 2 keep the
/// contexts of `vcpu_switch_yield` and `ipi_pingpong`).
const BLK_VCPU: u32 = 3;
static BLK_STACK: Pages<16> = Pages::new();
/// The ring page both ends share (one domain: no grant needed for it).
static BLK_RING: Pages<1> = Pages::new();
/// The back end's disk: 1 MiB.
static BLK_DISK: Pages<256> = Pages::new();
const BLK_DISK_SECTORS: u64 = 256 * 8;
/// What the back end's vCPU needs: its port, the front end's port, the
/// pending word and bit mask of its port, its `vcpu_info`, and start_info.
static BLK_ARGS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
/// The front end's state between runs, once the back end runs (vCPU 3
/// keeps that context).
static BLK_FRONT: spin::Mutex<Option<BlkFrontEnd>> = spin::Mutex::new(None);
/// While set, the back end keeps the front end's grants mapped
/// (persistent grants); cleared, it unmaps them and copies by grant.
static BLK_PERSISTENT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// Whether `window::SLOTS_VA` has its page-table entries (made once).
static BLK_SLOTS: spin::Once<bool> = spin::Once::new();
/// The page whose entry `window::slots` borrows (unmapped after).
static BLK_SLOT_SCRATCH: Pages<1> = Pages::new();

type BlkRing<'a> = pv_drivers::ring::Front<
    'a,
    dom0::support::MappedPage,
    pv_drivers::blkif::Request,
    pv_drivers::blkif::Response,
>;

#[derive(Clone, Copy)]
struct BlkFrontEnd {
    idx: guest_abi::io::ring::FrontRing,
    to_back: u32,
    own: u32,
    word: u64,
    keep: u64,
    vcpu_info: u64,
}

/// vCPU 3: the back end. Waits on its port, serves every request on the
/// ring (`pv_drivers::blkif::serve`: the checks, then grant copies from
/// the disk into the page the request grants), publishes the responses
/// and notifies the front end, for ever.
extern "C" fn blk_backend(args: &[AtomicU64; 6]) -> ! {
    use core::sync::atomic::Ordering::SeqCst;
    let [own, to_front, word, keep, vcpu_info, si] = args.each_ref().map(|a| a.load(SeqCst));
    // SAFETY: vCPU 0 stored the address of our start_info, which the
    // builder mapped for good.
    let si = unsafe { &*(si as *const guest_abi::xen::StartInfo) };
    // SAFETY: the ring page is static and shared only with vCPU 0's front
    // end, through atomic and volatile accesses.
    let page = unsafe { dom0::support::MappedPage::new(BLK_RING.addr()) };
    let back =
        pv_drivers::ring::Back::<_, pv_drivers::blkif::Request, pv_drivers::blkif::Response>::new(
            &page,
        );
    let Some(mut back) = back else {
        loop {
            core::hint::spin_loop();
        }
    };
    // SAFETY: the disk pages are this vCPU's alone.
    let disk = unsafe { core::slice::from_raw_parts_mut(BLK_DISK.addr() as *mut u8, 256 * 4096) };
    let mut disk = dom0::blkback::MemDisk::new(disk, false);
    // Our own grants, named by our id (0: we are the initial domain), not
    // `DOMID_SELF`, which a map refuses (`GNTST_bad_domain`, on Xen too).
    let mut grants = dom0::grants::CopyGrants::new(si, 0, pv_drivers::blkif::MAX_INDIRECT_SEGMENTS);
    let mut kept = false;
    let ports = [u32::try_from(own).unwrap_or(0)];
    let poll = SchedPoll {
        ports: addr(&ports),
        nr_ports: 1,
        _pad: 0,
        timeout: 0,
    };
    let send = EvtchnSend {
        port: u32::try_from(to_front).unwrap_or(0),
    };
    loop {
        let _ = call(&[SCHED_OP, u64::from(SCHEDOP_POLL), addr(&poll), 0, 0, 0]);
        // SAFETY: our port's pending word and our vcpu_info's first byte,
        // in the mapped shared-info page.
        unsafe {
            (*(word as *const AtomicU64)).fetch_and(keep, SeqCst);
            (vcpu_info as *mut u8).write_volatile(0);
        }
        let persistent = BLK_PERSISTENT.load(SeqCst);
        if persistent != kept {
            if persistent {
                grants.keep_mapped(dom0::window::SLOTS_VA, 8);
            } else {
                grants.unmap_kept();
            }
            kept = persistent;
        }
        while let Ok(Some(req)) = back.next_request() {
            let rsp = pv_drivers::blkif::serve(&req, &mut disk, &mut grants);
            back.queue(&rsp);
        }
        back.push();
        let _ = back.final_check();
        let _ = call(&[
            EVENT_CHANNEL_OP,
            u64::from(EVTCHNOP_SEND),
            addr(&send),
            0,
            0,
            0,
        ]);
    }
}

/// The front end, its back end running on vCPU 3 (started on first use).
fn blk_front_end(c: &mut Ctx) -> Result<BlkFrontEnd, Outcome> {
    use core::sync::atomic::Ordering::SeqCst;
    if let Some(f) = *BLK_FRONT.lock() {
        return Ok(f);
    }
    match vcpu_op(VCPUOP_IS_UP, BLK_VCPU, 0) {
        0 => {}
        rc if rc == -errno::ENOSYS => return Err(Outcome::Unsupported("vcpu_op returns -ENOSYS")),
        _ => return Err(Outcome::Unsupported("no vCPU 3 down (dom0_max_vcpus=4)")),
    }
    grant_setup(c.si)?;
    let shared = SharedInfo::map(c.si).ok_or(Outcome::Failed(Failure::Setup(
        "shared_info could not be mapped",
    )))?;
    let (mut to_back, mut to_front) = (
        EvtchnBindIpi {
            vcpu: BLK_VCPU,
            port: 0,
        },
        EvtchnBindIpi { vcpu: 0, port: 0 },
    );
    for b in [&mut to_back, &mut to_front] {
        match evtchn_op(EVTCHNOP_BIND_IPI, b) {
            0 => {}
            rc => {
                return Err(Outcome::Failed(Failure::Hypercall(
                    "event_channel_op(EVTCHNOP_bind_ipi)",
                    rc,
                )))
            }
        }
    }
    let word = |port: u32| shared.va + SHARED_EVTCHN_PENDING + u64::from(port / 64) * 8;
    let keep = |port: u32| !(1u64 << (port % 64));
    // SAFETY: the ring page is static and shared only with vCPU 3.
    let page = unsafe { dom0::support::MappedPage::new(BLK_RING.addr()) };
    let front = BlkRing::new(&page).ok_or(Outcome::Failed(Failure::Setup("the ring")))?;
    let args = [
        u64::from(to_back.port),
        u64::from(to_front.port),
        word(to_back.port),
        keep(to_back.port),
        shared.va + 64 * u64::from(BLK_VCPU),
        addr(c.si),
    ];
    for (slot, v) in BLK_ARGS.iter().zip(args) {
        slot.store(v, SeqCst);
    }
    let l4_mfn =
        mfn_of(c.si, c.si.pt_base).ok_or(Outcome::Failed(Failure::Setup("the L4's frame")))?;
    let mut ctx = kernel_context(
        blk_backend as extern "C" fn(&[AtomicU64; 6]) -> ! as usize as u64,
        BLK_STACK.top() - 8,
        l4_mfn,
    );
    ctx.user_regs.rdi = addr(&BLK_ARGS);
    match vcpu_op(VCPUOP_INITIALISE, BLK_VCPU, addr(&ctx)) {
        0 => {}
        rc => {
            return Err(Outcome::Failed(Failure::Hypercall(
                "vcpu_op(VCPUOP_initialise)",
                rc,
            )))
        }
    }
    let rc = vcpu_op(VCPUOP_UP, BLK_VCPU, 0);
    if rc != 0 {
        return Err(Outcome::Failed(Failure::Hypercall(
            "vcpu_op(VCPUOP_up)",
            rc,
        )));
    }
    let f = BlkFrontEnd {
        idx: front.indices(),
        to_back: to_back.port,
        own: to_front.port,
        word: word(to_front.port),
        keep: keep(to_front.port),
        vcpu_info: shared.va,
    };
    *BLK_FRONT.lock() = Some(f);
    Ok(f)
}

/// Times `n` operations of `pages` 4 KiB pages each, read in requests of
/// up to 11 pages (`BLKIF_MAX_SEGMENTS_PER_REQUEST`) all queued before one
/// notification, every page into our granted page: the TSC delta.
fn blk_reads(f: &mut BlkFrontEnd, n: u64, pages: u64) -> Result<u64, Outcome> {
    use core::sync::atomic::Ordering::SeqCst;
    // SAFETY: the ring page is static and shared only with vCPU 3.
    let page = unsafe { dom0::support::MappedPage::new(BLK_RING.addr()) };
    let mut front = BlkRing::resume(&page, f.idx);
    let ports = [f.own];
    let poll = SchedPoll {
        ports: addr(&ports),
        nr_ports: 1,
        _pad: 0,
        timeout: 0,
    };
    let send = EvtchnSend { port: f.to_back };
    let mut sector = 0u64;
    let mut failed = false;
    let start = tsc();
    for _ in 0..n {
        let mut left = pages;
        let mut sent = 0;
        while left > 0 {
            let segs = left.min(11);
            let mut req = pv_drivers::blkif::Request {
                operation: pv_drivers::blkif::OP_READ,
                nr_segments: u8::try_from(segs).unwrap_or(0),
                id: sent,
                sector_number: sector,
                ..Default::default()
            };
            for s in req.seg.iter_mut().take(usize::try_from(segs).unwrap_or(0)) {
                *s = pv_drivers::blkif::Segment {
                    gref: GRANT,
                    first_sect: 0,
                    last_sect: 7,
                    _pad: 0,
                };
            }
            failed |= !front.queue(&req);
            // One page at a time: a page-aligned sector anywhere on the
            // disk (a random read); more: the next sectors (sequential).
            sector = if pages == 1 {
                (sector / 8)
                    .wrapping_mul(1_103_515_245)
                    .wrapping_add(12_345)
                    % (BLK_DISK_SECTORS / 8)
                    * 8
            } else {
                (sector + segs * 8) % (BLK_DISK_SECTORS - 88)
            };
            left -= segs;
            sent += 1;
        }
        front.push();
        let _ = call(&[
            EVENT_CHANNEL_OP,
            u64::from(EVTCHNOP_SEND),
            addr(&send),
            0,
            0,
            0,
        ]);
        let mut got = 0;
        while got < sent {
            let _ = call(&[SCHED_OP, u64::from(SCHEDOP_POLL), addr(&poll), 0, 0, 0]);
            // SAFETY: our port's pending word and vCPU 0's vcpu_info's
            // first byte, in the mapped shared-info page.
            unsafe {
                (*(f.word as *const AtomicU64)).fetch_and(f.keep, SeqCst);
                (f.vcpu_info as *mut u8).write_volatile(0);
            }
            while let Ok(Some(rsp)) = front.next_response() {
                failed |= rsp.status != pv_drivers::blkif::RSP_OKAY;
                got += 1;
            }
        }
    }
    let total = tsc() - start;
    f.idx = front.indices();
    if failed {
        return Err(Outcome::Failed(Failure::Setup("a read's status")));
    }
    Ok(total)
}

/// A block row: `pages` pages per operation, with persistent grants or
/// not.
fn blk_row(c: &mut Ctx, pages: u64, persistent: bool) -> Outcome {
    use core::sync::atomic::Ordering::SeqCst;
    let mut f = match blk_front_end(c) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let si = c.si;
    if persistent
        && !*BLK_SLOTS.call_once(|| dom0::window::slots(si, BLK_SLOT_SCRATCH.addr()).is_ok())
    {
        return Outcome::Failed(Failure::Setup("no slots for persistent grants"));
    }
    BLK_PERSISTENT.store(persistent, SeqCst);
    let mut best = u64::MAX;
    for _ in 0..c.repeats.max(1) {
        match blk_reads(&mut f, c.iterations, pages) {
            Ok(t) => best = best.min(t),
            Err(o) => {
                BLK_PERSISTENT.store(false, SeqCst);
                return o;
            }
        }
    }
    BLK_PERSISTENT.store(false, SeqCst);
    *BLK_FRONT.lock() = Some(f);
    // SAFETY: the empty loop only reads the TSC.
    let overhead = fastest(c, |n| unsafe { bench_loop_empty(n, 0) });
    Outcome::Measured {
        total: best,
        overhead,
    }
}
