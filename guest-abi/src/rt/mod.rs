//! A minimal runtime for PV guest kernels: entry, console output, panics,
//! shutdown, and the test reporter.
//!
//! Both address-space layouts Xen's PV builder accepts are supported
//! ([`Layout`]): linked at [`VIRT_BASE`] with paddr = vaddr - VIRT_BASE (the
//! default, `pv64.ld`), or virtual = physical from 1 MiB with no VIRT_BASE
//! note (`pv64-low.ld`, `pv_guest!(..., layout = physical)`).
//!
//! The pieces that define linker symbols (`_start`, the boot stack, the
//! `hypercall_page`, the ELF notes and the `#[panic_handler]`) are emitted by
//! [`crate::pv_guest!`] into the guest's own crate, so linking this crate
//! into something that is not a guest (the hypervisor) adds none of them.
//!
//! Start of day, as the domain builder leaves it: `rsi` holds the virtual
//! address of `start_info`, `rsp` a one-page stack, events are masked and no
//! callbacks are registered. `_start` first stores every register as it
//! found it ([`entry_regs`]), then moves to a 64 KiB stack in `.bss`
//! (which the loader zeroes: memsz exceeds filesz) and calls [`start`],
//! which picks the console (`console_io` for the initial domain, else the
//! PV console ring `start_info` names; see [`console()`]) and calls the
//! guest's `main`. Nothing else is set up: no trap table, so a fault kills
//! the domain, which the test runner sees as a missing result line.

use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::console::LineBuffer;
use crate::hypercall::{sched_op_shutdown, sched_op_yield};
use crate::sched::{SHUTDOWN_CRASH, SHUTDOWN_POWEROFF};
use crate::xen::StartInfo;

mod console;
pub mod report;

pub use console::{console, Console};

/// What a guest's `main` receives.
pub type StartInfoRef = &'static StartInfo;

/// Size of the boot stack `pv_guest!` reserves. Debug builds of the
/// bigger guests (the hypercall fuzzer's state lives on the stack) need
/// more than 64 KiB; the stack sits at the start of `.bss`, so an overflow
/// would silently run into `.data`.
pub const STACK_SIZE: usize = 256 * 1024;

/// The virtual base guests of the default layout link at (see `pv64.ld`).
pub const VIRT_BASE: u64 = 0xffff_ffff_8000_0000;

/// Where a guest of the physical layout is linked (see `pv64-low.ld`).
pub const LOW_LINK_BASE: u64 = 0x10_0000;

/// The two address-space layouts of a PV kernel image that Xen's domain
/// builder accepts, chosen with `pv_guest!(..., layout = ...)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `layout = virt_base` (the default): notes `VIRT_BASE`
    /// 0xffffffff80000000 and `PADDR_OFFSET` 0; linked with `pv64.ld` at
    /// [`VIRT_BASE`], ELF paddrs from 0. The initial mapping starts at
    /// [`VIRT_BASE`].
    VirtBase,
    /// `layout = physical`: no `VIRT_BASE` or `PADDR_OFFSET` note; linked
    /// with `pv64-low.ld` at [`LOW_LINK_BASE`] with paddr = vaddr. The
    /// builder takes VIRT_BASE = 0, so the initial mapping starts at 0 and
    /// pseudo-physical frame `pfn` is at virtual `pfn << 12`.
    Physical,
}

impl Layout {
    /// The virtual address the initial mapping starts at: pfn 0's.
    pub const fn virt_base(self) -> u64 {
        match self {
            Layout::VirtBase => VIRT_BASE,
            Layout::Physical => 0,
        }
    }
}

/// The layout `start` was told about (0: not started, 1/2: `Layout`).
static LAYOUT: AtomicU8 = AtomicU8::new(0);

/// The layout the running guest was declared with (see [`Layout`]);
/// [`Layout::VirtBase`] before `main` runs.
pub fn layout() -> Layout {
    match LAYOUT.load(Ordering::Relaxed) {
        2 => Layout::Physical,
        _ => Layout::VirtBase,
    }
}

/// The registers as the domain builder left them at the guest's first
/// instruction, stored by `_start` before it changes any of them.
///
/// The general-purpose registers and `rflags` are the full 64-bit values;
/// the selectors are the 16-bit values of `cs`, `ss`, `ds`, `es`, `fs` and
/// `gs`. The order of the fields is the one `_start` stores them in.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryRegs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rflags: u64,
    pub cs: u16,
    pub ss: u16,
    pub ds: u16,
    pub es: u16,
    pub fs: u16,
    pub gs: u16,
    /// Padding to a multiple of 8 bytes.
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<EntryRegs>() == 17 * 8 + 6 * 2 + 4);

/// Byte offsets of [`EntryRegs`]' fields, for `_start`'s stores.
#[doc(hidden)]
pub mod entry_regs_offset {
    use super::{offset_of, EntryRegs};
    pub const RAX: usize = offset_of!(EntryRegs, rax);
    pub const RBX: usize = offset_of!(EntryRegs, rbx);
    pub const RCX: usize = offset_of!(EntryRegs, rcx);
    pub const RDX: usize = offset_of!(EntryRegs, rdx);
    pub const RSI: usize = offset_of!(EntryRegs, rsi);
    pub const RDI: usize = offset_of!(EntryRegs, rdi);
    pub const RBP: usize = offset_of!(EntryRegs, rbp);
    pub const RSP: usize = offset_of!(EntryRegs, rsp);
    pub const R8: usize = offset_of!(EntryRegs, r8);
    pub const R9: usize = offset_of!(EntryRegs, r9);
    pub const R10: usize = offset_of!(EntryRegs, r10);
    pub const R11: usize = offset_of!(EntryRegs, r11);
    pub const R12: usize = offset_of!(EntryRegs, r12);
    pub const R13: usize = offset_of!(EntryRegs, r13);
    pub const R14: usize = offset_of!(EntryRegs, r14);
    pub const R15: usize = offset_of!(EntryRegs, r15);
    pub const RFLAGS: usize = offset_of!(EntryRegs, rflags);
    pub const CS: usize = offset_of!(EntryRegs, cs);
    pub const SS: usize = offset_of!(EntryRegs, ss);
    pub const DS: usize = offset_of!(EntryRegs, ds);
    pub const ES: usize = offset_of!(EntryRegs, es);
    pub const FS: usize = offset_of!(EntryRegs, fs);
    pub const GS: usize = offset_of!(EntryRegs, gs);
}

/// Where `_start` stores the entry registers: written once by assembly
/// before any Rust runs, only read afterwards.
#[doc(hidden)]
#[repr(transparent)]
pub struct EntryRegsSlot(UnsafeCell<EntryRegs>);

// SAFETY: the slot is written only by `_start`, on the boot vCPU, before
// any Rust code runs; from then on it is only read.
unsafe impl Sync for EntryRegsSlot {}

#[doc(hidden)]
pub static ENTRY_REGS: EntryRegsSlot = EntryRegsSlot(UnsafeCell::new(EntryRegs {
    rax: 0,
    rbx: 0,
    rcx: 0,
    rdx: 0,
    rsi: 0,
    rdi: 0,
    rbp: 0,
    rsp: 0,
    r8: 0,
    r9: 0,
    r10: 0,
    r11: 0,
    r12: 0,
    r13: 0,
    r14: 0,
    r15: 0,
    rflags: 0,
    cs: 0,
    ss: 0,
    ds: 0,
    es: 0,
    fs: 0,
    gs: 0,
    _pad: 0,
}));

/// The registers at the guest's first instruction (see [`EntryRegs`]).
///
/// Only meaningful in a guest declared with [`crate::pv_guest!`], whose
/// `_start` fills them in.
pub fn entry_regs() -> EntryRegs {
    // SAFETY: `_start` finished writing the slot before any Rust code ran
    // and nothing writes it again, so this read races with nothing.
    unsafe { ENTRY_REGS.0.get().read_volatile() }
}

/// Called by `_start` with the value of `rsi` at entry; records the
/// layout, sets up the console and runs `main`.
///
/// # Safety
///
/// `si` must be the start-info pointer the domain builder passed in `rsi`:
/// it points to a `start_info` that stays mapped and that nothing writes
/// while the guest runs (true until the guest suspends).
pub unsafe fn start(si: *const StartInfo, layout: Layout, main: fn(StartInfoRef) -> !) -> ! {
    LAYOUT.store(
        match layout {
            Layout::VirtBase => 1,
            Layout::Physical => 2,
        },
        Ordering::Relaxed,
    );
    if si.is_null() || !si.is_aligned() {
        crate::println!("guest-abi: bad start_info pointer {:p}", si);
        shutdown(SHUTDOWN_CRASH);
    }
    // SAFETY: non-null and aligned (checked above); the caller guarantees
    // it points to a live start_info that is not written behind our back.
    let si: StartInfoRef = unsafe { &*si };
    console::init(si);
    main(si)
}

/// Formats `args` to the console (see [`console()`]). Used by
/// [`crate::print!`].
///
/// Output goes out one line per `console_io` call or ring write (or 256
/// bytes when a line is longer). Errors from the console are ignored: there
/// is nowhere else to report them.
pub fn print_fmt(args: fmt::Arguments<'_>) {
    struct Out(LineBuffer<256>);
    impl Write for Out {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.push(s.as_bytes(), &mut console::write);
            Ok(())
        }
    }
    let mut c = Out(LineBuffer::new());
    let _ = c.write_fmt(args);
    c.0.flush(&mut console::write);
}

/// Prints to the console (`CONSOLEIO_write` for the initial domain, the PV
/// console ring otherwise), like `std::print!`.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::rt::print_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the console, like `std::println!`.
#[macro_export]
macro_rules! println {
    () => { $crate::rt::print_fmt(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::rt::print_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Stops the domain with `reason` (`SHUTDOWN_*`).
///
/// If the hypervisor refuses (or `reason` is `SHUTDOWN_suspend` and the
/// domain resumes), yields the CPU for ever: a PV kernel runs in ring 3 and
/// has no `hlt`.
pub fn shutdown(reason: u32) -> ! {
    let rc = sched_op_shutdown(reason);
    crate::println!(
        "guest-abi: shutdown({}) returned {} ({})",
        crate::sched::shutdown_reason_name(reason),
        rc,
        crate::errno::name(rc)
    );
    loop {
        sched_op_yield();
    }
}

/// Stops the domain normally (`SHUTDOWN_poweroff`).
pub fn poweroff() -> ! {
    shutdown(SHUTDOWN_POWEROFF)
}

/// Set once a panic starts, so a panic while reporting one goes straight
/// to the crash shutdown instead of recursing.
static PANICKING: AtomicBool = AtomicBool::new(false);

/// The body of the panic handler `pv_guest!` installs: prints
/// `panic: <message> at <file>:<line>` and shuts down with `SHUTDOWN_crash`.
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::Relaxed) {
        match info.location() {
            Some(loc) => {
                crate::println!("panic: {} at {}:{}", info.message(), loc.file(), loc.line())
            }
            None => crate::println!("panic: {} at <unknown>", info.message()),
        }
    }
    shutdown(SHUTDOWN_CRASH)
}

/// Declares a PV guest kernel: its ELF notes, entry point, boot stack,
/// hypercall page and panic handler.
///
/// ```ignore
/// guest_abi::pv_guest!(main, name = "hello");
/// fn main(si: guest_abi::rt::StartInfoRef) -> ! { guest_abi::rt::poweroff() }
/// ```
///
/// `main` is a path to a `fn(&'static StartInfo) -> !`; `name` a string
/// literal (without `"` or `\`) that becomes the `GUEST_OS` note. Use it once
/// per binary, in a `#![no_std] #![no_main]` crate.
///
/// An optional `layout = virt_base | physical` picks the address-space
/// layout ([`rt::Layout`](crate::rt::Layout)); the binary must be linked
/// with the matching script, `--no-pie`:
///
/// | `layout =` | linker script | build-script variable |
/// | --- | --- | --- |
/// | `virt_base` (default) | `guest-abi/pv64.ld` | `DEP_GUEST_ABI_PV64_LD` |
/// | `physical` | `guest-abi/pv64-low.ld` | `DEP_GUEST_ABI_PV64_LOW_LD` |
///
/// (A mismatch fails the link with the scripts' `ASSERT` message.)
///
/// The notes: `GUEST_OS` = name, `GUEST_VERSION` "0.1", `XEN_VERSION`
/// "xen-3.0", `LOADER` "generic", for `virt_base` only `VIRT_BASE`
/// 0xffffffff80000000 and `PADDR_OFFSET` 0, `ENTRY` `_start`,
/// `HYPERCALL_PAGE` `hypercall_page`, `PAE_MODE` "yes",
/// `SUPPORTED_FEATURES` `1 << XENFEAT_dom0` (so Xen also accepts the kernel
/// as dom0).
#[macro_export]
macro_rules! pv_guest {
    ($main:path, name = $name:literal $(,)?) => {
        $crate::pv_guest!($main, name = $name, layout = virt_base);
    };
    ($main:path, name = $name:literal, layout = virt_base $(,)?) => {
        $crate::__pv_guest!(
            $main,
            $name,
            $crate::rt::Layout::VirtBase,
            "guest_abi_layout_virt_base",
            // VIRT_BASE, then PADDR_OFFSET.
            ".long 4, 8, 3; .asciz \"Xen\"; .quad 0xffffffff80000000; .long 4, 8, 4; .asciz \"Xen\"; .quad 0"
        );
    };
    ($main:path, name = $name:literal, layout = physical $(,)?) => {
        $crate::__pv_guest!(
            $main,
            $name,
            $crate::rt::Layout::Physical,
            "guest_abi_layout_physical",
            // No VIRT_BASE or PADDR_OFFSET: virtual = physical.
            ".balign 4"
        );
    };
}

/// The body of [`pv_guest!`], for one layout.
#[doc(hidden)]
#[macro_export]
macro_rules! __pv_guest {
    ($main:path, $name:literal, $layout:expr, $layout_symbol:literal, $layout_notes:literal) => {
        extern "C" fn __guest_abi_entry(si: *const $crate::xen::StartInfo) -> ! {
            // SAFETY: only `_start` calls this, passing the `rsi` the domain
            // builder set: the start_info pointer.
            unsafe { $crate::rt::start(si, $layout, $main) }
        }

        #[panic_handler]
        fn __guest_abi_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::rt::panic(info)
        }

        ::core::arch::global_asm!(
            // Entry: record the registers as the builder left them (GPRs
            // first, then rflags through the builder's stack, then the
            // selectors), keep rsi (start_info), switch to our stack, call
            // Rust.
            ".pushsection .text.entry, \"ax\", @progbits",
            ".globl _start",
            ".type _start, @function",
            "_start:",
            "    mov [rip + {regs} + {rax}], rax",
            "    mov [rip + {regs} + {rbx}], rbx",
            "    mov [rip + {regs} + {rcx}], rcx",
            "    mov [rip + {regs} + {rdx}], rdx",
            "    mov [rip + {regs} + {rsi}], rsi",
            "    mov [rip + {regs} + {rdi}], rdi",
            "    mov [rip + {regs} + {rbp}], rbp",
            "    mov [rip + {regs} + {rsp}], rsp",
            "    mov [rip + {regs} + {r8}], r8",
            "    mov [rip + {regs} + {r9}], r9",
            "    mov [rip + {regs} + {r10}], r10",
            "    mov [rip + {regs} + {r11}], r11",
            "    mov [rip + {regs} + {r12}], r12",
            "    mov [rip + {regs} + {r13}], r13",
            "    mov [rip + {regs} + {r14}], r14",
            "    mov [rip + {regs} + {r15}], r15",
            "    pushfq",
            "    pop rax",
            "    mov [rip + {regs} + {rflags}], rax",
            "    mov word ptr [rip + {regs} + {cs}], cs",
            "    mov word ptr [rip + {regs} + {ss}], ss",
            "    mov word ptr [rip + {regs} + {ds}], ds",
            "    mov word ptr [rip + {regs} + {es}], es",
            "    mov word ptr [rip + {regs} + {fs}], fs",
            "    mov word ptr [rip + {regs} + {gs}], gs",
            "    cld",
            "    lea rsp, [rip + __guest_abi_stack_top]",
            "    xor ebp, ebp",
            "    mov rdi, rsi",
            "    call {entry}",
            "    ud2",
            ".size _start, . - _start",
            ".popsection",
            // The hypercall page: filled by the hypervisor before entry.
            ".pushsection .text.hypercall_page, \"ax\", @progbits",
            ".balign 4096",
            ".globl hypercall_page",
            ".type hypercall_page, @object",
            "hypercall_page:",
            "    .fill 4096, 1, 0xcc",
            ".size hypercall_page, 4096",
            ".popsection",
            // The boot stack.
            ".pushsection .bss.guest_abi_stack, \"aw\", @nobits",
            ".balign 16",
            "__guest_abi_stack_bottom:",
            "    .skip {stack_size}",
            "__guest_abi_stack_top:",
            ".popsection",
            // The Xen notes: namesz, descsz, type, "Xen\0", descriptor.
            ".pushsection .note.Xen, \"a\", @note",
            ".balign 4",
            ".long 4, 6f - 5f, 6",
            ".asciz \"Xen\"",
            concat!("5: .asciz \"", $name, "\""),
            "6: .balign 4",
            ".long 4, 6f - 5f, 7",
            ".asciz \"Xen\"",
            "5: .asciz \"0.1\"",
            "6: .balign 4",
            ".long 4, 6f - 5f, 5",
            ".asciz \"Xen\"",
            "5: .asciz \"xen-3.0\"",
            "6: .balign 4",
            ".long 4, 6f - 5f, 8",
            ".asciz \"Xen\"",
            "5: .asciz \"generic\"",
            "6: .balign 4",
            $layout_notes,
            ".long 4, 8, 1",
            ".asciz \"Xen\"",
            ".quad _start",
            ".long 4, 8, 2",
            ".asciz \"Xen\"",
            ".quad hypercall_page",
            ".long 4, 6f - 5f, 9",
            ".asciz \"Xen\"",
            "5: .asciz \"yes\"",
            "6: .balign 4",
            ".long 4, 4, 17",
            ".asciz \"Xen\"",
            ".long 1 << 11",
            ".popsection",
            // Checked by the linker script's ASSERT: the layout the notes
            // describe is the one the script links.
            concat!(".globl ", $layout_symbol),
            concat!(".set ", $layout_symbol, ", 1"),
            entry = sym __guest_abi_entry,
            stack_size = const $crate::rt::STACK_SIZE,
            regs = sym $crate::rt::ENTRY_REGS,
            rax = const $crate::rt::entry_regs_offset::RAX,
            rbx = const $crate::rt::entry_regs_offset::RBX,
            rcx = const $crate::rt::entry_regs_offset::RCX,
            rdx = const $crate::rt::entry_regs_offset::RDX,
            rsi = const $crate::rt::entry_regs_offset::RSI,
            rdi = const $crate::rt::entry_regs_offset::RDI,
            rbp = const $crate::rt::entry_regs_offset::RBP,
            rsp = const $crate::rt::entry_regs_offset::RSP,
            r8 = const $crate::rt::entry_regs_offset::R8,
            r9 = const $crate::rt::entry_regs_offset::R9,
            r10 = const $crate::rt::entry_regs_offset::R10,
            r11 = const $crate::rt::entry_regs_offset::R11,
            r12 = const $crate::rt::entry_regs_offset::R12,
            r13 = const $crate::rt::entry_regs_offset::R13,
            r14 = const $crate::rt::entry_regs_offset::R14,
            r15 = const $crate::rt::entry_regs_offset::R15,
            rflags = const $crate::rt::entry_regs_offset::RFLAGS,
            cs = const $crate::rt::entry_regs_offset::CS,
            ss = const $crate::rt::entry_regs_offset::SS,
            ds = const $crate::rt::entry_regs_offset::DS,
            es = const $crate::rt::entry_regs_offset::ES,
            fs = const $crate::rt::entry_regs_offset::FS,
            gs = const $crate::rt::entry_regs_offset::GS,
        );
    };
}
