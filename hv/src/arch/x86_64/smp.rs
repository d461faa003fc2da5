//! Bringing up the application processors (APs) the MADT lists.
//!
//! The boot CPU copies a real-mode trampoline ([`hv_ap_tramp_start`]) to a
//! page below 640 KiB that no one else uses (`hv::smp::trampoline_page`,
//! below the megabyte hv never hands out), then starts the APs one at a
//! time with INIT, 10 ms, STARTUP, 200 µs, STARTUP (Intel SDM vol. 3
//! §9.4.4.1) and waits up to [`ANSWER_MS`] for each to report in. The
//! trampoline goes 16 → 32 → 64-bit on the idle page table (whose L4 slot
//! 0 still maps the low 4 GiB one to one, as the boot stub built it) and
//! jumps to [`ap_entry`] on the stack the boot CPU put in its data block.
//! There the AP sets itself up as the boot CPU did (`init_this_cpu`: its
//! own GDT and TSS, the shared IDT, its `syscall` entry copy, the boot
//! CPU's CR0/CR4/EFER features and XSAVE components), enables its local
//! APIC (its timer masked: no tick work until it takes vCPUs), joins
//! [`online`] and idles with interrupts on, answering IPIs. It takes no
//! vCPU (`percpu::bring_up_idle`: the scheduler does not count it) until
//! the scheduler runs there too.
//!
//! A CPU that does not answer in time is left out and reported; boot goes
//! on. So that a late riser can never share a stack with the next CPU,
//! the first thing the trampoline does is claim its data block with an
//! exchange: a CPU that finds it claimed already parks itself (`cli;
//! hlt`). The boot CPU re-arms the block for each CPU in turn; a late
//! riser that claims a re-armed block simply becomes that CPU (it reports
//! the APIC id it reads from its own APIC).

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use alloc::boxed::Box;
use hv::smp::CpuMask;

use super::percpu::{self, CpuStacks, Stack, MAX_CPUS, STACK_TRAILER};
use super::{apic, cpu, entry, gdt};
use crate::mm::frame_access;

/// How long the boot CPU waits for an AP to report in.
const ANSWER_MS: u64 = 1000;

global_asm!(
    r#"
    .section .rodata.hv_ap_trampoline, "a"
    .balign 16
    .global hv_ap_tramp_start
hv_ap_tramp_start:
    .code16
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    mov $1, %ax
    xchg %ax, (hv_ap_claim - hv_ap_tramp_start)
    test %ax, %ax
    jnz 9f
    xor %ebx, %ebx
    mov %cs, %bx
    shl $4, %ebx                        /* ebx: the trampoline's physical address */
    lgdtl (hv_ap_gdt_ptr - hv_ap_tramp_start)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl *(hv_ap_jmp32 - hv_ap_tramp_start)
9:
    cli
    hlt
    jmp 9b

    .code32
    .global hv_ap_prot32
hv_ap_prot32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $((1 << 5) | (1 << 7)), %eax    /* CR4: PAE | PGE */
    mov %eax, %cr4
    mov (hv_ap_cr3 - hv_ap_tramp_start)(%ebx), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx               /* EFER: LME, and NXE as the boot CPU */
    rdmsr
    or (hv_ap_efer - hv_ap_tramp_start)(%ebx), %eax
    wrmsr
    mov (hv_ap_cr0 - hv_ap_tramp_start)(%ebx), %eax
    mov %eax, %cr0
    ljmpl *(hv_ap_jmp64 - hv_ap_tramp_start)(%ebx)

    .code64
    .global hv_ap_long64
hv_ap_long64:
    mov %ebx, %ebx                      /* the upper half is undefined after the switch */
    mov (hv_ap_stack - hv_ap_tramp_start)(%rbx), %rsp
    mov (hv_ap_cpu - hv_ap_tramp_start)(%rbx), %rdi
    mov (hv_ap_entry - hv_ap_tramp_start)(%rbx), %rax
    xor %ebp, %ebp
    push $0                             /* no return address: ends backtraces */
    jmp *%rax

    .balign 8
    .global hv_ap_gdt
hv_ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff            /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff            /* 0x10: data */
    .quad 0x00af9a000000ffff            /* 0x18: 64-bit code */
    .global hv_ap_gdt_ptr
hv_ap_gdt_ptr:
    .short 31
    .long 0                             /* the copy's hv_ap_gdt */
    .balign 8
    .global hv_ap_jmp32
hv_ap_jmp32:
    .long 0                             /* the copy's hv_ap_prot32 */
    .short 0x08
    .balign 8
    .global hv_ap_jmp64
hv_ap_jmp64:
    .long 0                             /* the copy's hv_ap_long64 */
    .short 0x18
    .balign 8
    .global hv_ap_claim
hv_ap_claim:
    .quad 0
    .global hv_ap_cr3
hv_ap_cr3:
    .quad 0
    .global hv_ap_efer
hv_ap_efer:
    .quad 0
    .global hv_ap_cr0
hv_ap_cr0:
    .quad 0
    .global hv_ap_stack
hv_ap_stack:
    .quad 0
    .global hv_ap_cpu
hv_ap_cpu:
    .quad 0
    .global hv_ap_entry
hv_ap_entry:
    .quad 0
    .global hv_ap_tramp_end
hv_ap_tramp_end:
    .text
"#,
    options(att_syntax)
);

unsafe extern "C" {
    static hv_ap_tramp_start: u8;
    static hv_ap_tramp_end: u8;
    static hv_ap_gdt_ptr: u8;
    static hv_ap_jmp32: u8;
    static hv_ap_jmp64: u8;
    static hv_ap_claim: u8;
    static hv_ap_cr3: u8;
    static hv_ap_efer: u8;
    static hv_ap_cr0: u8;
    static hv_ap_stack: u8;
    static hv_ap_cpu: u8;
    static hv_ap_entry: u8;
    static hv_ap_prot32: u8;
    static hv_ap_long64: u8;
    static hv_ap_gdt: u8;
}

/// Offset of a trampoline symbol from its start.
fn offset(sym: *const u8) -> u64 {
    sym as u64 - core::ptr::addr_of!(hv_ap_tramp_start) as u64
}

/// The CPUs running hv code with their IDT and local APIC set up: the
/// targets IPIs may go to.
static ONLINE: AtomicU64 = AtomicU64::new(1);
/// Each CPU's local APIC id, as it read it itself.
static APIC_IDS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// The boot CPU's CR4 after its setup, which every AP takes.
static BSP_CR4: AtomicU64 = AtomicU64::new(0);

/// The CPUs that are up.
#[inline]
pub fn online() -> CpuMask {
    CpuMask(ONLINE.load(Ordering::Acquire))
}

/// The local APIC id of CPU `cpu`.
pub fn apic_id_of(cpu: usize) -> u32 {
    APIC_IDS[cpu & (MAX_CPUS - 1)].load(Ordering::Relaxed)
}

/// What [`start_aps`] did, for the boot log.
pub struct Report {
    pub up: CpuMask,
    /// APIC ids that did not answer, or that hv cannot drive.
    pub missing: heapless::Vec<u32, MAX_CPUS>,
}

/// Writes `v` at offset `off` of the trampoline copy at `page`.
fn poke(page: u64, off: u64, v: u64) -> Result<(), frame_access::OutOfRange> {
    let va = frame_access::virt_of(page + off)?;
    // SAFETY: `page` is the trampoline page, below 1 MiB and used by no
    // one else (chosen by `hv::smp::trampoline_page` outside the boot
    // modules; the allocator never hands out the first megabyte), mapped
    // in the direct map; `off` lies inside the copied trampoline, and an
    // AP reads the word only after the IPIs that follow this write.
    unsafe { (va as *mut u64).write_volatile(v) };
    Ok(())
}

/// Allocates a zeroed, size-aligned stack for CPU `cpu` from the heap
/// and writes its trailer.
fn new_stack(cpu: usize) -> Option<&'static Stack> {
    let layout = core::alloc::Layout::new::<Stack>();
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        return None;
    }
    // SAFETY: (1) `p` is a fresh, zeroed allocation of a `Stack`'s size and
    // alignment, and all-zero bytes are a valid `Stack`; it is never
    // freed, so the reference is 'static. (2) the trailer word lies inside
    // it, 8-byte aligned, and no CPU uses the stack yet.
    unsafe {
        let s = &*p.cast::<Stack>();
        ((s.top() - STACK_TRAILER as u64) as *mut u64).write(cpu as u64);
        Some(s)
    }
}

/// A zeroed GDT from the heap (in the direct map, as
/// `gdt::reserved_frames` expects), never freed.
fn new_gdt() -> Option<*mut u64> {
    let layout = core::alloc::Layout::new::<gdt::Gdt>();
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
    (!p.is_null()).then_some(p.cast())
}

/// The stacks and GDT handed to each AP, by CPU number.
static AP_GDTS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Starts every processor in `apic_ids` but the boot CPU, each as the
/// next CPU number, with the trampoline at `page`. Returns which came up.
pub fn start_aps(apic_ids: &[u32], page: u64) -> Report {
    let me = apic::apic_id();
    APIC_IDS[0].store(me, Ordering::Relaxed);
    BSP_CR4.store(cpu::read_cr4(), Ordering::Relaxed);
    let mut report = Report {
        up: CpuMask::one(0),
        missing: heapless::Vec::new(),
    };
    let start = core::ptr::addr_of!(hv_ap_tramp_start);
    let len = offset(core::ptr::addr_of!(hv_ap_tramp_end));
    let copied = frame_access::virt_of(page).map(|va| {
        // SAFETY: the trampoline page (see `poke`) holds `len` < 4096
        // bytes; the source is hv's read-only image.
        unsafe {
            core::ptr::copy_nonoverlapping(start, va as *mut u8, usize::try_from(len).unwrap_or(0))
        }
    });
    let fields = copied.and_then(|()| {
        // The pseudo-descriptor's base and the far pointers' offsets are
        // physical addresses inside the copy (the 6-byte fields are
        // written as words: what follows each is padding).
        let gdt = page + offset(&raw const hv_ap_gdt);
        let gdt_ptr = offset(&raw const hv_ap_gdt_ptr);
        poke(page, gdt_ptr, 31 | gdt << 16)?;
        poke(
            page,
            offset(&raw const hv_ap_jmp32),
            0x08 << 32 | (page + offset(&raw const hv_ap_prot32)),
        )?;
        poke(
            page,
            offset(&raw const hv_ap_jmp64),
            0x18 << 32 | (page + offset(&raw const hv_ap_long64)),
        )?;
        poke(
            page,
            offset(&raw const hv_ap_cr3),
            crate::mm::page_table::idle_l4(),
        )?;
        let efer = cpu::rdmsr(cpu::MSR_EFER) & (EFER_LME | cpu::EFER_NXE);
        poke(page, offset(&raw const hv_ap_efer), efer)?;
        // CR0 as the boot CPU's, without TS.
        poke(
            page,
            offset(&raw const hv_ap_cr0),
            cpu::read_cr0() & !(1 << 3),
        )?;
        poke(
            page,
            offset(&raw const hv_ap_entry),
            ap_entry as *const () as u64,
        )
    });
    if fields.is_err() || crate::mm::page_table::idle_l4() >= 1 << 32 {
        report
            .missing
            .extend(apic_ids.iter().copied().filter(|&id| id != me));
        return report;
    }
    let mut next = 1;
    for &id in apic_ids.iter().filter(|&&id| id != me) {
        if next >= MAX_CPUS || id > 0xff {
            // More CPUs than hv's blocks, or an x2APIC id xAPIC mode
            // cannot address.
            let _ = report.missing.push(id);
            continue;
        }
        match start_one(next, id, page) {
            Ok(()) => {
                report.up = report.up.with(next);
                next += 1;
            }
            Err(()) => {
                let _ = report.missing.push(id);
            }
        }
    }
    report
}

const EFER_LME: u64 = 1 << 8;

/// Starts the CPU with APIC id `id` as CPU `n` and waits for it.
fn start_one(n: usize, id: u32, page: u64) -> Result<(), ()> {
    let stacks: &'static CpuStacks = Box::leak(Box::new(CpuStacks {
        main: new_stack(n).ok_or(())?,
        df: new_stack(n).ok_or(())?,
        nmi: new_stack(n).ok_or(())?,
        mc: new_stack(n).ok_or(())?,
        db: new_stack(n).ok_or(())?,
    }));
    let gdt = new_gdt().ok_or(())?;
    AP_GDTS[n].store(gdt as u64, Ordering::Relaxed);
    STACKS[n].store(core::ptr::from_ref(stacks) as u64, Ordering::Relaxed);
    let rsp = stacks.main.usable_top() - entry::FRAME_RESERVE as u64;
    poke(page, offset(&raw const hv_ap_stack), rsp).map_err(|_| ())?;
    poke(page, offset(&raw const hv_ap_cpu), n as u64).map_err(|_| ())?;
    // Armed last: the AP claims the block with an exchange.
    poke(page, offset(&raw const hv_ap_claim), 0).map_err(|_| ())?;
    apic::send_init(id);
    apic::delay_ms(10);
    apic::send_startup(id, page);
    apic::delay_us(200);
    apic::send_startup(id, page);
    let bit = CpuMask::one(n).0;
    let t0 = cpu::rdtsc();
    let budget = apic::tsc_khz().max(1).saturating_mul(ANSWER_MS);
    while ONLINE.load(Ordering::Acquire) & bit == 0 {
        if cpu::rdtsc().saturating_sub(t0) > budget {
            // Disarm the block: a late riser parks, unless it claims the
            // next CPU's block (see the module docs).
            let _ = poke(page, offset(&raw const hv_ap_claim), 1);
            return Err(());
        }
        core::hint::spin_loop();
    }
    Ok(())
}

/// Each AP's stacks (`&'static CpuStacks`), by CPU number.
static STACKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Where an AP arrives from the trampoline: in long mode on the idle page
/// table, on its main stack, with interrupts off.
extern "C" fn ap_entry(cpu: u64) -> ! {
    let n = usize::try_from(cpu).unwrap_or(0) & (MAX_CPUS - 1);
    let stacks = STACKS[n].load(Ordering::Relaxed) as *const CpuStacks;
    let gdt = AP_GDTS[n].load(Ordering::Relaxed) as *mut u64;
    // SAFETY: the boot CPU stored both for CPU `n` before starting it
    // (this CPU claimed that block), never frees them, and gives them to
    // no other CPU; the stacks' trailers hold `n`.
    let me = unsafe { percpu::bring_up_idle(n, &*stacks, gdt) };
    super::init_this_cpu(me);
    // The boot CPU's clock, before anything here reads the time.
    crate::time::start_ap();
    // SAFETY: the boot CPU's CR4 after its setup: features this CPU has
    // too (the same model), none that changes the paging mode.
    unsafe { cpu::write_cr4(BSP_CR4.load(Ordering::Relaxed)) };
    apic::init_ap();
    APIC_IDS[n].store(apic::apic_id(), Ordering::Relaxed);
    ONLINE.fetch_or(CpuMask::one(n).0, Ordering::Release);
    idle()
}

/// An AP's idle loop: wait for interrupts (IPIs, the tick) with them on.
fn idle() -> ! {
    let me = percpu::cpu_id();
    loop {
        // SAFETY: enabling interrupts lets the IDT's handlers run on this
        // CPU's stack; `hlt` right after `sti` runs before any of them
        // (the interrupt shadow), so no wake-up is lost.
        unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
        super::ipi::serve();
        let main = AP_MAIN.load(Ordering::Acquire);
        if main != 0 {
            // SAFETY: only `start_guests` stores a non-zero word here, and
            // it stores a `fn() -> !` pointer.
            let f = unsafe { core::mem::transmute::<usize, fn() -> !>(main) };
            f();
        }
        let job = IDLE_JOBS[me].swap(0, Ordering::Acquire);
        if job != 0 {
            // SAFETY: only `post_idle_job` stores a non-zero word here,
            // and it stores a `fn(u64)` pointer.
            let f = unsafe { core::mem::transmute::<usize, fn(u64)>(job) };
            f(IDLE_ARGS[me].load(Ordering::Relaxed));
        }
    }
}

/// What every idle AP runs once guests may run on it (0: nothing yet).
static AP_MAIN: AtomicUsize = AtomicUsize::new(0);

/// Has every AP leave its idle loop for `main` (which takes vCPUs, and
/// never returns), waking them with an event check.
pub fn start_guests(main: fn() -> !) {
    AP_MAIN.store(main as usize, Ordering::Release);
    let others = CpuMask(online().0 & !CpuMask::one(percpu::cpu_id()).0);
    if others.0 != 0 {
        SEVERAL.store(true, Ordering::Release);
    }
    super::ipi::event_check(others);
}

/// Whether guests run on more than one CPU (a vCPU another CPU runs may
/// need a kick): one load for the single-CPU paths.
static SEVERAL: AtomicBool = AtomicBool::new(false);

/// Whether more than one CPU takes vCPUs (one load): callers skip the
/// work of finding whom to kick while not.
#[inline(always)]
pub fn several() -> bool {
    SEVERAL.load(Ordering::Relaxed)
}

/// Makes CPU `cpu` look at its work (a vCPU of its queue woken, an event
/// for the vCPU it runs): an event-check interrupt, unless it is this
/// CPU or guests run on one CPU only.
#[inline(always)]
pub fn kick(cpu: Option<usize>) {
    if SEVERAL.load(Ordering::Relaxed) {
        kick_other(cpu);
    }
}

#[cold]
#[inline(never)]
fn kick_other(cpu: Option<usize>) {
    if let Some(c) = cpu.filter(|&c| c != percpu::cpu_id()) {
        super::ipi::event_check(CpuMask::one(c));
    }
}

/// A function an idle AP runs outside any interrupt, with its argument.
static IDLE_JOBS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
static IDLE_ARGS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Has idle AP `cpu` run `f(arg)` from its idle loop, where (unlike a
/// called function) it may take locks and wait: the next interrupt it
/// takes wakes it to run it (an event check, say). Returns without
/// waiting; a job posted earlier and not yet run is replaced. For the SMP
/// self-test, which needs an AP spinning on a lock.
pub fn post_idle_job(cpu: usize, f: fn(u64), arg: u64) {
    let cpu = cpu & (MAX_CPUS - 1);
    IDLE_ARGS[cpu].store(arg, Ordering::Relaxed);
    IDLE_JOBS[cpu].store(f as usize, Ordering::Release);
}
