//! Per-CPU state: what each physical CPU owns alone.
//!
//! Every CPU has a [`CpuLocal`] block (its syscall scratch word, the top of
//! its stack where guest frames go, the guest-user-mode flag the syscall
//! entry tests, its TSS and its GDT), its own stacks, and its own copy of
//! the `syscall` entry code (`entry.rs`), whose RIP-relative operands name
//! that CPU's block, so the entry finds its block without a free register.
//! Nothing CPU-local is a global.
//!
//! hv code finds its CPU from the stack pointer, as Xen does: every hv stack
//! is [`STACK_SIZE`] bytes aligned to its size, and its top
//! [`STACK_TRAILER`] bytes hold the owning CPU's id. That works on the main
//! stack and on the IST stacks alike, with no segment register (hv leaves
//! FS and GS to the guest).
//!
//! Invariant: a CPU reads and writes only its own block's mutable words,
//! with interrupts off (hv never enables them in ring 0); other CPUs may
//! read `online`. The boot CPU is CPU 0; its block, stacks and GDT are
//! static. Application processors get theirs from the heap at bring-up
//! (`smp`: stacks aligned to their size like the boot CPU's, trailers
//! written before the CPU starts).

use core::arch::asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};

use alloc::sync::Arc;

/// Most CPUs hv drives (a power of two: ids are masked with it).
pub const MAX_CPUS: usize = 64;
const _: () = assert!(MAX_CPUS.is_power_of_two());

/// Size (and alignment) of every hv stack. A release build's deepest path
/// seen (a domain's destruction, unpinning its tables) uses 25 KiB; a
/// debug build's frames are four times larger (110 KiB on that path), and
/// the stacks have no guard page, so debug builds get 256 KiB.
#[cfg(not(debug_assertions))]
pub const STACK_SIZE: usize = 64 * 1024;
#[cfg(debug_assertions)]
pub const STACK_SIZE: usize = 256 * 1024;

/// Bytes at the top of every stack that hold the owning CPU's id (one
/// word) and a zero word that ends frame-pointer chains.
pub const STACK_TRAILER: usize = 16;

/// A stack: memory that only the CPU writes, through `rsp`, except for the
/// trailer that names its CPU.
#[cfg_attr(not(debug_assertions), repr(C, align(65536)))]
#[cfg_attr(debug_assertions, repr(C, align(262144)))]
pub struct Stack(UnsafeCell<[u8; STACK_SIZE]>);
const _: () = assert!(core::mem::align_of::<Stack>() == STACK_SIZE);

// SAFETY: Rust code never forms references into a stack's bytes; only the
// CPU uses them through rsp, one CPU per stack, and the trailer is written
// once before the stack is used.
unsafe impl Sync for Stack {}

impl Stack {
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; STACK_SIZE]))
    }

    /// Address one past the top of the stack.
    pub fn top(&self) -> u64 {
        self.0.get() as u64 + STACK_SIZE as u64
    }

    /// Where the stack pointer starts (below the trailer).
    pub fn usable_top(&self) -> u64 {
        self.top() - STACK_TRAILER as u64
    }

    /// Lowest address of the stack.
    pub fn bottom(&self) -> u64 {
        self.0.get() as u64
    }

    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.bottom()
            && addr
                .checked_add(len)
                .is_some_and(|e| e <= self.usable_top())
    }
}

/// The stacks of one CPU: the main one (TSS.rsp0, where every entry from a
/// guest saves the guest's registers at the top) and the IST stacks of
/// #DF, NMI, #MC and #DB (the exceptions that can arrive in ring 0 with a
/// stack pointer hv cannot trust).
pub struct CpuStacks {
    pub main: &'static Stack,
    pub df: &'static Stack,
    pub nmi: &'static Stack,
    pub mc: &'static Stack,
    pub db: &'static Stack,
}

impl CpuStacks {
    pub fn all(&self) -> [&'static Stack; 5] {
        [self.main, self.df, self.nmi, self.mc, self.db]
    }
}

pub(super) static BSP_MAIN: Stack = Stack::new();
static BSP_DF: Stack = Stack::new();
static BSP_NMI: Stack = Stack::new();
static BSP_MC: Stack = Stack::new();
static BSP_DB: Stack = Stack::new();

/// The boot CPU's stacks (their trailers are zero from `.bss`: CPU 0).
pub static BSP_STACKS: CpuStacks = CpuStacks {
    main: &BSP_MAIN,
    df: &BSP_DF,
    nmi: &BSP_NMI,
    mc: &BSP_MC,
    db: &BSP_DB,
};

/// The 64-bit TSS (Intel SDM vol. 3 §8.7).
#[repr(C, packed(4))]
pub struct Tss {
    _reserved0: u32,
    pub rsp: [u64; 3],
    _reserved1: u64,
    pub ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    pub iomap_base: u16,
}
const _: () = assert!(core::mem::size_of::<Tss>() == 104);

impl Tss {
    const fn new() -> Self {
        Self {
            _reserved0: 0,
            rsp: [0; 3],
            _reserved1: 0,
            ist: [0; 7],
            _reserved2: 0,
            _reserved3: 0,
            iomap_base: 104, // no I/O bitmap: every port faults from ring 3
        }
    }
}

/// One CPU's block. The first three fields are read by the entry code at
/// the offsets below (checked at compile time).
#[repr(C, align(64))]
pub struct CpuLocal {
    /// The guest's rsp between `syscall` and the frame push.
    syscall_scratch: UnsafeCell<u64>,
    /// Top of the main stack's usable part: TSS.rsp0, and where the
    /// syscall entry builds the guest frame.
    rsp0: UnsafeCell<u64>,
    /// Non-zero while the vCPU this CPU runs is in guest user mode: its
    /// `syscall`s then go to the guest kernel, not to the hypercall table.
    guest_user_mode: AtomicU8,
    /// Direct-map address of the running vCPU's `vcpu_info` (or of
    /// [`NO_VCPU_INFO`] when none runs): the hypercall exit reads its
    /// first two bytes (`evtchn_upcall_pending`, `evtchn_upcall_mask`) to
    /// decide whether an event upcall is due (`entry.rs`).
    vcpu_info: AtomicU64,
    /// Brought up and taking vCPUs: the scheduler may place vCPUs on it
    /// (the boot CPU; an AP idles outside the scheduler and is not, see
    /// `smp`).
    online: AtomicBool,
    tss: UnsafeCell<Tss>,
    /// This CPU's GDT (`gdt::Gdt`), set at bring-up.
    gdt: AtomicPtr<u64>,
    /// This CPU's stacks, set at bring-up.
    stacks: AtomicPtr<CpuStacks>,
    /// Which vCPU of the current domain this CPU runs (the domain layer's
    /// number; the domain itself is in its per-CPU slot).
    current_vcpu: AtomicU32,
    /// Base of the GDT loaded now: the running vCPU's GDT window, or this
    /// CPU's own table when no vCPU is loaded.
    gdt_base: AtomicU64,
    /// Base of the running vCPU's LDT window (0: none).
    ldt_window: AtomicU64,
    /// Why the hypercall in progress crashes its domain: set by a handler
    /// on the light path, which cannot report a full frame, and taken by
    /// the full path it falls back to (`hypercall::complete`).
    pending_crash: UnsafeCell<Option<&'static str>>,
    /// This CPU owes a TLB flush (see `mm::owe_flush`).
    tlb_owed: AtomicBool,
}

pub const OFF_SCRATCH: usize = core::mem::offset_of!(CpuLocal, syscall_scratch);
pub const OFF_RSP0: usize = core::mem::offset_of!(CpuLocal, rsp0);
pub const OFF_USER_MODE: usize = core::mem::offset_of!(CpuLocal, guest_user_mode);
pub const OFF_VCPU_INFO: usize = core::mem::offset_of!(CpuLocal, vcpu_info);

/// What the exit path reads while no vCPU runs: nothing pending, masked.
static NO_VCPU_INFO: AlignedPair = AlignedPair([0, 1]);

#[repr(C, align(8))]
struct AlignedPair([u8; 2]);
pub const CPU_LOCAL_SIZE: usize = core::mem::size_of::<CpuLocal>();

// SAFETY: each block's mutable words are touched only by the CPU that owns
// it (and by the CPU bringing it up, before it runs); `online` is atomic.
unsafe impl Sync for CpuLocal {}

impl CpuLocal {
    const fn new() -> Self {
        Self {
            syscall_scratch: UnsafeCell::new(0),
            rsp0: UnsafeCell::new(0),
            guest_user_mode: AtomicU8::new(0),
            vcpu_info: AtomicU64::new(0),
            online: AtomicBool::new(false),
            tss: UnsafeCell::new(Tss::new()),
            gdt: AtomicPtr::new(core::ptr::null_mut()),
            stacks: AtomicPtr::new(core::ptr::null_mut()),
            current_vcpu: AtomicU32::new(0),
            gdt_base: AtomicU64::new(0),
            ldt_window: AtomicU64::new(0),
            pending_crash: UnsafeCell::new(None),
            tlb_owed: AtomicBool::new(false),
        }
    }

    /// Records why the current hypercall crashes its domain.
    pub fn set_pending_crash(&self, why: &'static str) {
        // SAFETY: only this CPU touches its block's word, with interrupts
        // off, and no reference to it outlives this call.
        unsafe { *self.pending_crash.get() = Some(why) };
    }

    /// Takes the reason recorded by [`Self::set_pending_crash`].
    pub fn take_pending_crash(&self) -> Option<&'static str> {
        // SAFETY: as in `set_pending_crash`.
        unsafe { (*self.pending_crash.get()).take() }
    }

    pub fn gdt_base(&self) -> u64 {
        self.gdt_base.load(Ordering::Relaxed)
    }

    pub(super) fn set_gdt_base(&self, base: u64) {
        self.gdt_base.store(base, Ordering::Relaxed);
    }

    pub fn ldt_window(&self) -> u64 {
        self.ldt_window.load(Ordering::Relaxed)
    }

    pub fn set_ldt_window(&self, base: u64) {
        self.ldt_window.store(base, Ordering::Relaxed);
    }

    pub fn current_vcpu(&self) -> usize {
        self.current_vcpu.load(Ordering::Relaxed) as usize
    }

    pub fn set_current_vcpu(&self, id: u32) {
        self.current_vcpu.store(id, Ordering::Relaxed);
    }

    /// This block's CPU number.
    pub fn id(&self) -> usize {
        (core::ptr::from_ref(self) as usize - core::ptr::addr_of!(CPUS) as usize) / CPU_LOCAL_SIZE
    }

    /// Marks this CPU online to the scheduler: an AP that idled until
    /// then starts taking vCPUs.
    pub fn set_online(&self) {
        self.online.store(true, Ordering::Release);
    }

    /// Brought up and taking vCPUs (any CPU may ask; an AP that only
    /// idles and answers IPIs is not: `smp::online` lists those).
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Records that this CPU owes a TLB flush; whether it owed none yet.
    pub fn owe_tlb_flush(&self) -> bool {
        !self.tlb_owed.swap(true, Ordering::Relaxed)
    }

    /// Clears this CPU's TLB debt (its flush is done); whether it had one.
    pub fn pay_tlb_flush(&self) -> bool {
        self.tlb_owed.swap(false, Ordering::Relaxed)
    }

    pub fn tlb_flush_owed(&self) -> bool {
        self.tlb_owed.load(Ordering::Relaxed)
    }

    /// Records where the `vcpu_info` of the vCPU this CPU runs now lies
    /// (a direct-map address inside a frame the vCPU holds; the exit path
    /// only reads it).
    pub fn set_vcpu_info(&self, va: u64) {
        self.vcpu_info.store(va, Ordering::Relaxed);
    }

    /// No vCPU runs on this CPU any more: the exit path reads the
    /// placeholder (nothing pending, masked), never a `vcpu_info` whose
    /// vCPU, and so whose frame reference, may be gone.
    pub fn clear_vcpu_info(&self) {
        self.set_vcpu_info(core::ptr::addr_of!(NO_VCPU_INFO) as u64);
    }

    /// Whether the running vCPU's `vcpu_info` asks for an event upcall
    /// (the test the hypercall exit makes in the entry code).
    pub fn upcall_due(&self) -> bool {
        let va = self.vcpu_info.load(Ordering::Relaxed);
        // SAFETY: `va` is the direct-map address of the running vCPU's
        // `vcpu_info` (8-byte aligned, inside a frame the vCPU holds a
        // writable reference on) or of `NO_VCPU_INFO`; reading two bytes
        // there has no effect, and the guest may write them meanwhile.
        let w = unsafe { core::ptr::read_volatile(va as *const u16) };
        hv::evtchn::upcall_due(w)
    }

    pub fn set_guest_user_mode(&self, user: bool) {
        self.guest_user_mode
            .store(u8::from(user), Ordering::Relaxed);
    }

    /// Where the guest frame of this CPU's entries ends.
    pub fn rsp0(&self) -> u64 {
        // SAFETY: written once at bring-up, before this CPU's first entry.
        unsafe { *self.rsp0.get() }
    }

    pub fn tss(&self) -> *mut Tss {
        self.tss.get()
    }

    pub fn gdt(&self) -> *mut u64 {
        self.gdt.load(Ordering::Relaxed)
    }

    pub fn stacks(&self) -> Option<&'static CpuStacks> {
        let p = self.stacks.load(Ordering::Relaxed);
        // SAFETY: only ever set from a `&'static CpuStacks` (`bring_up`).
        unsafe { p.as_ref() }
    }
}

/// Every CPU's block, indexed by CPU number (the entry code's copies name
/// their own element).
pub static CPUS: [CpuLocal; MAX_CPUS] = [const { CpuLocal::new() }; MAX_CPUS];

/// Records `cpu`'s stacks and GDT and marks it online (taking vCPUs).
/// Called on that CPU (the boot CPU) before its first guest entry.
///
/// # Safety
/// `gdt` points at an 8192-entry GDT used by this CPU only; `stacks`' stacks
/// are this CPU's alone and carry `cpu` in their trailers.
pub unsafe fn bring_up(cpu: usize, stacks: &'static CpuStacks, gdt: *mut u64) -> &'static CpuLocal {
    // SAFETY: the caller's guarantees are `bring_up_idle`'s.
    let c = unsafe { bring_up_idle(cpu, stacks, gdt) };
    c.online.store(true, Ordering::Release);
    c
}

/// Records `cpu`'s stacks and GDT without marking it online: an AP that
/// idles and answers IPIs (`smp`) but takes no vCPU yet (guests run on
/// the boot CPU until the scheduler starts on the others).
///
/// # Safety
/// As [`bring_up`].
pub unsafe fn bring_up_idle(
    cpu: usize,
    stacks: &'static CpuStacks,
    gdt: *mut u64,
) -> &'static CpuLocal {
    let c = &CPUS[cpu & (MAX_CPUS - 1)];
    // SAFETY: the caller guarantees this CPU owns the block and nothing
    // reads rsp0 before the first guest entry.
    unsafe { *c.rsp0.get() = stacks.main.usable_top() };
    c.gdt.store(gdt, Ordering::Relaxed);
    c.clear_vcpu_info();
    c.stacks
        .store(core::ptr::from_ref(stacks).cast_mut(), Ordering::Relaxed);
    c
}

/// The id of the CPU running this code, from the trailer of the stack it
/// runs on.
#[inline(always)]
pub fn cpu_id() -> usize {
    let rsp: u64;
    // SAFETY: reading rsp has no effect.
    unsafe { asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    let trailer = (rsp | (STACK_SIZE as u64 - 1)) + 1 - STACK_TRAILER as u64;
    // SAFETY: hv runs only on its own stacks, each STACK_SIZE-aligned with
    // the trailer at its top (written before the stack was first used, or
    // zero from .bss for the boot CPU); the word is mapped and aligned.
    let id = unsafe { (trailer as *const u64).read() };
    usize::try_from(id).unwrap_or(0) & (MAX_CPUS - 1)
}

/// This CPU's block.
#[inline(always)]
pub fn this_cpu() -> &'static CpuLocal {
    &CPUS[cpu_id()]
}

/// A per-CPU slot holding a counted reference to the object a CPU runs and
/// a pointer to one part of it (the domain layer keeps the current domain
/// here, with the lock of the vCPU this CPU runs, so the hot entry paths
/// reach the running vCPU with two loads and no index arithmetic). Only the
/// owning CPU reads or replaces its slot, with interrupts off.
/// [`PerCpuArc::with`] lends the object and the part without touching the
/// count; a replacement while a loan is out is refused (an hv bug, reported
/// by a panic), so a loaned reference can never dangle.
pub struct PerCpuArc<T, P> {
    slots: [Slot<T, P>; MAX_CPUS],
}

/// One CPU's slot: the object (from `Arc::into_raw`), the part of it (null
/// when the object is), and the loans out.
struct Slot<T, P> {
    object: AtomicPtr<T>,
    part: AtomicPtr<P>,
    loans: AtomicU32,
}

impl<T, P> PerCpuArc<T, P> {
    pub const fn new() -> Self {
        Self {
            slots: [const {
                Slot {
                    object: AtomicPtr::new(core::ptr::null_mut()),
                    part: AtomicPtr::new(core::ptr::null_mut()),
                    loans: AtomicU32::new(0),
                }
            }; MAX_CPUS],
        }
    }

    /// Lends what this CPU runs, and the part of it chosen at
    /// [`PerCpuArc::replace`], to `f`, without counting a reference: `None`
    /// when the CPU runs nothing.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(Option<(&T, &P)>) -> R) -> R {
        let lent = self.lend();
        f(lent.as_ref().map(Lent::get))
    }

    /// Lends what this CPU runs, and the part of it chosen at
    /// [`PerCpuArc::replace`], until the returned loan is dropped, without
    /// counting a reference: `None` when the CPU runs nothing.
    #[inline(always)]
    pub fn lend(&self) -> Option<Lent<'_, T, P>> {
        let cpu = cpu_id();
        let slot = &self.slots[cpu];
        let part = slot.part.load(Ordering::Relaxed);
        if part.is_null() {
            return None;
        }
        slot.loans
            .store(slot.loans.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        Some(Lent {
            slot,
            cpu,
            object: slot.object.load(Ordering::Relaxed),
            part,
            _cpu_local: core::marker::PhantomData,
        })
    }

    /// Makes `new` what this CPU runs, with `part` choosing the part of it
    /// that [`PerCpuArc::with`] lends alongside (when `part` finds none,
    /// the slot lends nothing), and returns the previous object.
    ///
    /// Panics if called while this CPU has lent the current one out.
    /// Inlined: twice on every switch, where its closure folds away.
    #[inline(always)]
    pub fn replace(
        &self,
        new: Option<Arc<T>>,
        part: impl for<'a> FnOnce(&'a T) -> Option<&'a P>,
    ) -> Option<Arc<T>> {
        let cpu = cpu_id();
        let slot = &self.slots[cpu];
        assert!(
            slot.loans.load(Ordering::Relaxed) == 0,
            "CPU{cpu}: the current object replaced while lent out"
        );
        let (object, part) = match new {
            Some(a) => {
                let part =
                    part(&a).map_or(core::ptr::null_mut(), |p| core::ptr::from_ref(p).cast_mut());
                (Arc::into_raw(a).cast_mut(), part)
            }
            None => (core::ptr::null_mut(), core::ptr::null_mut()),
        };
        // The part goes first: `with` reads the object only behind a
        // non-null part (one CPU, so the order is only for the reader's
        // sake).
        slot.part.store(core::ptr::null_mut(), Ordering::Relaxed);
        let old = slot.object.swap(object, Ordering::Relaxed);
        slot.part.store(part, Ordering::Relaxed);
        // SAFETY: `old` is null or came from `Arc::into_raw` here, and the
        // slot held its count, which passes to the caller.
        (!old.is_null()).then(|| unsafe { Arc::from_raw(old) })
    }
}

/// A loan of what one CPU runs ([`PerCpuArc::lend`]): the references it
/// hands out live no longer than the loan, and the slot refuses a
/// replacement until it is dropped. It stays on the CPU that took it (not
/// `Send`): only that CPU touches the slot's loan count.
pub struct Lent<'a, T, P> {
    slot: &'a Slot<T, P>,
    /// The CPU that took the loan (and runs the code holding it).
    cpu: usize,
    object: *const T,
    part: *const P,
    _cpu_local: core::marker::PhantomData<*const ()>,
}

impl<T, P> Lent<'_, T, P> {
    /// The block of the CPU that took the loan: this CPU's, found without
    /// reading the stack's trailer again.
    #[inline(always)]
    pub fn cpu(&self) -> &'static CpuLocal {
        &CPUS[self.cpu]
    }

    /// The object and its part, for as long as the loan is borrowed.
    #[inline(always)]
    pub fn get(&self) -> (&T, &P) {
        // SAFETY: `part` was non-null when the loan was taken, so `replace`
        // stored it together with a non-null `object` from `Arc::into_raw`,
        // and it points into that object (it was borrowed from it). The
        // slot keeps the object's count until `replace` runs again, which
        // refuses to while this loan is out (the count went up before the
        // pointers were read, on the only CPU that replaces this slot), so
        // both stay valid while `self` is borrowed.
        unsafe { (&*self.object, &*self.part) }
    }
}

impl<T, P> Drop for Lent<'_, T, P> {
    #[inline(always)]
    fn drop(&mut self) {
        let loans = &self.slot.loans;
        loans.store(loans.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
    }
}

impl<T, P> Default for PerCpuArc<T, P> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: the slots and loan counts are atomics; the objects are shared
// across CPUs only as `Arc<T>`, which needs `T: Send + Sync`.
unsafe impl<T: Send + Sync, P: Sync> Sync for PerCpuArc<T, P> {}
