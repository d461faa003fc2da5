//! The hypercall instruction sequences and the typed wrappers built on them.
//!
//! Only built for `target_os = "none"`: on a host these instructions would
//! be system calls into the host kernel.

use core::arch::asm;

use crate::console::{CONSOLEIO_READ, CONSOLEIO_WRITE};
use crate::sched::{SchedShutdown, SCHEDOP_SHUTDOWN, SCHEDOP_YIELD};
use crate::version::{
    XenCapabilitiesInfo, XenExtraversion, XenFeatureInfo, XenPlatformParameters,
    XENVER_CAPABILITIES, XENVER_EXTRAVERSION, XENVER_GET_FEATURES, XENVER_PAGESIZE,
    XENVER_PLATFORM_PARAMETERS, XENVER_VERSION,
};

use super::{CONSOLE_IO, SCHED_OP, VM_ASSIST, XEN_VERSION};

/// Reinterprets the hypervisor's `rax` as the signed result it encodes.
fn result(rax: u64) -> i64 {
    rax.cast_signed()
}

/// Issues hypercall `nr` with no arguments via an inline `syscall`.
///
/// Returns the hypervisor's `rax`: a non-negative result or `-errno`.
///
/// # Safety
///
/// The hypercall must not, given these arguments, change the guest's memory
/// or mappings in a way Rust does not expect (for example unmapping memory
/// that live references point to). Must run in PV guest kernel mode.
#[inline]
pub unsafe fn hypercall0(nr: u64) -> i64 {
    let rax: u64;
    // SAFETY: `syscall` from PV guest kernel mode enters the hypervisor, which
    // returns with only rax (result), rcx and r11 changed; the argument
    // registers are declared clobbered too. The caller vouches for the
    // hypercall's effect on memory.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => rax,
            lateout("rdi") _, lateout("rsi") _, lateout("rdx") _,
            lateout("r10") _, lateout("r8") _,
            lateout("rcx") _, lateout("r11") _,
        );
    }
    result(rax)
}

/// Issues hypercall `nr` with one argument (`rdi`). See [`hypercall0`].
///
/// # Safety
///
/// As for [`hypercall0`]; in addition any pointer argument must be valid for
/// whatever the hypercall reads or writes through it.
#[inline]
pub unsafe fn hypercall1(nr: u64, a1: u64) -> i64 {
    let rax: u64;
    // SAFETY: as in `hypercall0`; the caller vouches for the argument.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => rax,
            inlateout("rdi") a1 => _, lateout("rsi") _, lateout("rdx") _,
            lateout("r10") _, lateout("r8") _,
            lateout("rcx") _, lateout("r11") _,
        );
    }
    result(rax)
}

/// Issues hypercall `nr` with two arguments (`rdi`, `rsi`). See [`hypercall0`].
///
/// # Safety
///
/// As for [`hypercall1`].
#[inline]
pub unsafe fn hypercall2(nr: u64, a1: u64, a2: u64) -> i64 {
    let rax: u64;
    // SAFETY: as in `hypercall0`; the caller vouches for the arguments.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => rax,
            inlateout("rdi") a1 => _, inlateout("rsi") a2 => _, lateout("rdx") _,
            lateout("r10") _, lateout("r8") _,
            lateout("rcx") _, lateout("r11") _,
        );
    }
    result(rax)
}

/// Issues hypercall `nr` with three arguments (`rdi`, `rsi`, `rdx`).
/// See [`hypercall0`].
///
/// # Safety
///
/// As for [`hypercall1`].
#[inline]
pub unsafe fn hypercall3(nr: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let rax: u64;
    // SAFETY: as in `hypercall0`; the caller vouches for the arguments.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => rax,
            inlateout("rdi") a1 => _, inlateout("rsi") a2 => _, inlateout("rdx") a3 => _,
            lateout("r10") _, lateout("r8") _,
            lateout("rcx") _, lateout("r11") _,
        );
    }
    result(rax)
}

/// Issues hypercall `nr` with four arguments (`rdi`, `rsi`, `rdx`, `r10`).
/// See [`hypercall0`].
///
/// # Safety
///
/// As for [`hypercall1`].
#[inline]
pub unsafe fn hypercall4(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    let rax: u64;
    // SAFETY: as in `hypercall0`; the caller vouches for the arguments.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => rax,
            inlateout("rdi") a1 => _, inlateout("rsi") a2 => _, inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _, lateout("r8") _,
            lateout("rcx") _, lateout("r11") _,
        );
    }
    result(rax)
}

/// Issues hypercall `nr` with five arguments (`rdi`, `rsi`, `rdx`, `r10`,
/// `r8`). See [`hypercall0`].
///
/// # Safety
///
/// As for [`hypercall1`].
#[inline]
pub unsafe fn hypercall5(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    let rax: u64;
    // SAFETY: as in `hypercall0`; the caller vouches for the arguments.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => rax,
            inlateout("rdi") a1 => _, inlateout("rsi") a2 => _, inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _, inlateout("r8") a5 => _,
            lateout("rcx") _, lateout("r11") _,
        );
    }
    result(rax)
}

/// Calls entry `nr` of the hypercall page with five arguments (unused
/// ones zero).
///
/// The page is the `hypercall_page` symbol that [`crate::pv_guest!`] defines
/// and the hypervisor fills. Entry `nr` lives at `hypercall_page + nr * 32`;
/// `r9`, which the convention leaves alone, carries its address.
macro_rules! page_call {
    ($nr:expr, $a1:expr, $a2:expr, $a3:expr, $a4:expr, $a5:expr) => {{
        let (a1, a2, a3, a4, a5): (u64, u64, u64, u64, u64) = ($a1, $a2, $a3, $a4, $a5);
        let rax: u64;
        // SAFETY: the stub at `hypercall_page + nr * 32` (1) exists, because
        // the caller guarantees the hypervisor filled the page and `nr` is in
        // range, and (2) changes at most rax, rcx, r11 and the argument
        // registers, all declared clobbered here. The `call` needs stack, so
        // `nostack` is not given. The caller vouches for the hypercall's
        // memory effects.
        unsafe {
            asm!(
                "lea r9, [rip + hypercall_page]",
                "shl rax, 5",
                "add r9, rax",
                "call r9",
                inlateout("rax") $nr => rax,
                inlateout("rdi") a1 => _, inlateout("rsi") a2 => _,
                inlateout("rdx") a3 => _, inlateout("r10") a4 => _,
                inlateout("r8") a5 => _,
                out("r9") _, lateout("rcx") _, lateout("r11") _,
            );
        }
        result(rax)
    }};
}

/// Calls hypercall `nr` through the hypercall page, no arguments.
///
/// Returns the hypervisor's `rax`: a non-negative result or `-errno`.
/// Entry 23 (`iret`) does not return.
///
/// # Safety
///
/// As for [`hypercall0`]; in addition the hypervisor must already have
/// written the hypercall page (it does so before the guest's first
/// instruction when the `HYPERCALL_PAGE` note is present) and `nr` must be
/// below [`super::NR_HYPERCALLS`] so the call lands inside the page.
#[inline]
pub unsafe fn hypercall_page_call0(nr: u64) -> i64 {
    page_call!(nr, 0, 0, 0, 0, 0)
}

/// Calls hypercall `nr` through the hypercall page with one argument.
///
/// # Safety
///
/// As for [`hypercall_page_call0`] and [`hypercall1`].
#[inline]
pub unsafe fn hypercall_page_call1(nr: u64, a1: u64) -> i64 {
    page_call!(nr, a1, 0, 0, 0, 0)
}

/// Calls hypercall `nr` through the hypercall page with two arguments.
///
/// # Safety
///
/// As for [`hypercall_page_call0`] and [`hypercall1`].
#[inline]
pub unsafe fn hypercall_page_call2(nr: u64, a1: u64, a2: u64) -> i64 {
    page_call!(nr, a1, a2, 0, 0, 0)
}

/// Calls hypercall `nr` through the hypercall page with three arguments.
///
/// # Safety
///
/// As for [`hypercall_page_call0`] and [`hypercall1`].
#[inline]
pub unsafe fn hypercall_page_call3(nr: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    page_call!(nr, a1, a2, a3, 0, 0)
}

/// Calls hypercall `nr` through the hypercall page with four arguments.
///
/// # Safety
///
/// As for [`hypercall_page_call0`] and [`hypercall1`].
#[inline]
pub unsafe fn hypercall_page_call4(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    page_call!(nr, a1, a2, a3, a4, 0)
}

/// Calls hypercall `nr` through the hypercall page with five arguments.
///
/// # Safety
///
/// As for [`hypercall_page_call0`] and [`hypercall1`].
#[inline]
pub unsafe fn hypercall_page_call5(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    page_call!(nr, a1, a2, a3, a4, a5)
}

/// A pointer as the `u64` a hypercall register carries.
fn addr<T: ?Sized>(p: *const T) -> u64 {
    p.cast::<u8>().addr() as u64
}

// ---------------------------------------------------------------------------
// console_io

/// `console_io(cmd, count, buffer)`: raw form.
///
/// `cmd` is [`CONSOLEIO_WRITE`] (print `count` bytes from `buffer`) or
/// [`CONSOLEIO_READ`] (read up to `count` bytes into `buffer`; privileged).
///
/// Returns 0 for a write, the number of bytes read for a read, or `-errno`:
/// `-EFAULT` for an unreadable/unwritable buffer, `-EPERM` where the domain
/// may not use the console, `-ENOSYS` for an unknown `cmd`.
///
/// # Safety
///
/// `buffer` must be valid for `count` bytes of reading (write) or writing
/// (read).
pub unsafe fn console_io(cmd: u32, count: u32, buffer: *mut u8) -> i64 {
    // SAFETY: the caller guarantees `buffer` covers `count` bytes.
    unsafe { hypercall3(CONSOLE_IO, u64::from(cmd), u64::from(count), addr(buffer)) }
}

/// Writes `bytes` to the hypervisor console (`CONSOLEIO_write`).
///
/// Long buffers are sent in pieces so the count fits the ABI's `int`.
/// Returns 0 on success or the first `-errno` (`-EPERM` if this domain may
/// not write to the console, `-EFAULT` should the hypervisor fail to read
/// the buffer).
pub fn console_io_write(bytes: &[u8]) -> i64 {
    const CHUNK: usize = 1 << 20;
    for piece in bytes.chunks(CHUNK) {
        let count = u32::try_from(piece.len()).unwrap_or(0);
        // SAFETY: CONSOLEIO_write only reads `count` bytes from `piece`,
        // which is a live shared borrow of at least that length.
        let rc = unsafe { console_io(CONSOLEIO_WRITE, count, piece.as_ptr().cast_mut()) };
        if rc < 0 {
            return rc;
        }
    }
    0
}

/// Reads pending console input into `buf` (`CONSOLEIO_read`, privileged).
///
/// Returns the number of bytes read, or `-errno` (`-EPERM` for an
/// unprivileged domain).
pub fn console_io_read(buf: &mut [u8]) -> i64 {
    let count = u32::try_from(buf.len()).unwrap_or(u32::MAX >> 1);
    let count = count.min(u32::MAX >> 1);
    // SAFETY: CONSOLEIO_read writes at most `count` bytes, and `count` does
    // not exceed `buf.len()`, an exclusive borrow.
    unsafe { console_io(CONSOLEIO_READ, count, buf.as_mut_ptr()) }
}

// ---------------------------------------------------------------------------
// xen_version

/// `xen_version(cmd, arg)`: raw form.
///
/// Returns what the sub-command defines (see [`crate::version`]) or
/// `-errno`: `-ENOSYS` for an unknown command, `-EFAULT` for a bad `arg`.
///
/// # Safety
///
/// `arg` must be null or point to the buffer type `cmd` writes.
pub unsafe fn xen_version(cmd: u32, arg: *mut u8) -> i64 {
    // SAFETY: the caller matches `arg` to `cmd`.
    unsafe { hypercall2(XEN_VERSION, u64::from(cmd), addr(arg)) }
}

/// `XENVER_version`: the hypervisor version as `major << 16 | minor`
/// (0x40011 for Xen 4.17). Never fails on Xen.
pub fn xen_version_version() -> i64 {
    // SAFETY: XENVER_version takes no buffer.
    unsafe { xen_version(XENVER_VERSION, core::ptr::null_mut()) }
}

/// `XENVER_extraversion`: fills `out` with the NUL-padded version suffix
/// (for example `".7"`).
///
/// Returns 0, or `-EFAULT` if the hypervisor could not write `out`.
pub fn xen_version_extraversion(out: &mut XenExtraversion) -> i64 {
    // SAFETY: XENVER_extraversion writes exactly one XenExtraversion.
    unsafe { xen_version(XENVER_EXTRAVERSION, out.as_mut_ptr()) }
}

/// `XENVER_capabilities`: fills `out` with the space-separated list of guest
/// types the hypervisor runs (for example `"xen-3.0-x86_64 ..."`).
///
/// Returns 0 or `-EFAULT`.
pub fn xen_version_capabilities(out: &mut XenCapabilitiesInfo) -> i64 {
    // SAFETY: XENVER_capabilities writes exactly one XenCapabilitiesInfo.
    unsafe { xen_version(XENVER_CAPABILITIES, out.as_mut_ptr()) }
}

/// `XENVER_get_features`: reads `info.submap_idx` and fills `info.submap`
/// with that 32-bit word of the feature bitmap (see [`crate::features`]).
///
/// Returns 0, `-EFAULT`, or `-EINVAL` if `submap_idx` is not below
/// [`crate::features::XENFEAT_NR_SUBMAPS`].
pub fn xen_version_get_features(info: &mut XenFeatureInfo) -> i64 {
    let p: *mut XenFeatureInfo = info;
    // SAFETY: XENVER_get_features reads and writes one XenFeatureInfo.
    unsafe { xen_version(XENVER_GET_FEATURES, p.cast()) }
}

/// `XENVER_platform_parameters`: fills `out.virt_start` with the lowest
/// virtual address the hypervisor reserves (the start of the M2P table).
///
/// Returns 0 or `-EFAULT`.
pub fn xen_version_platform_parameters(out: &mut XenPlatformParameters) -> i64 {
    let p: *mut XenPlatformParameters = out;
    // SAFETY: XENVER_platform_parameters writes one XenPlatformParameters.
    unsafe { xen_version(XENVER_PLATFORM_PARAMETERS, p.cast()) }
}

/// `XENVER_pagesize`: the hypervisor's page size in bytes (4096).
pub fn xen_version_pagesize() -> i64 {
    // SAFETY: XENVER_pagesize takes no buffer.
    unsafe { xen_version(XENVER_PAGESIZE, core::ptr::null_mut()) }
}

// ---------------------------------------------------------------------------
// sched_op

/// `sched_op(cmd, arg)`: raw form.
///
/// # Safety
///
/// `arg` must point to the structure `cmd` expects (or be null if it takes
/// none), and the command's effect must be one the caller is prepared for
/// (for example `SCHEDOP_shutdown` with `SHUTDOWN_suspend` returns into a
/// resumed domain).
pub unsafe fn sched_op(cmd: u32, arg: *mut u8) -> i64 {
    // SAFETY: the caller matches `arg` to `cmd`.
    unsafe { hypercall2(SCHED_OP, u64::from(cmd), addr(arg)) }
}

/// `SCHEDOP_yield`: gives up the CPU to other runnable vCPUs. Returns 0.
pub fn sched_op_yield() -> i64 {
    // SAFETY: SCHEDOP_yield takes no argument and touches no guest memory.
    unsafe { sched_op(SCHEDOP_YIELD, core::ptr::null_mut()) }
}

/// `SCHEDOP_shutdown`: stops this domain with `reason` (a `SHUTDOWN_*`
/// value from [`crate::sched`]).
///
/// Does not return on success, except for `SHUTDOWN_suspend`, which
/// returns (with 1 if the suspend was cancelled) when the domain resumes.
/// Returns `-EINVAL` for an unknown reason, `-EFAULT` if the argument could
/// not be read.
pub fn sched_op_shutdown(reason: u32) -> i64 {
    let mut arg = SchedShutdown { reason };
    let p: *mut SchedShutdown = &mut arg;
    // SAFETY: SCHEDOP_shutdown reads one SchedShutdown; the domain either
    // stops or returns here with its memory intact.
    unsafe { sched_op(SCHEDOP_SHUTDOWN, p.cast()) }
}

// ---------------------------------------------------------------------------
// vm_assist

/// `vm_assist(cmd, type)`: enables ([`crate::xen::VMASST_CMD_ENABLE`]) or
/// disables ([`crate::xen::VMASST_CMD_DISABLE`]) assist `type_`
/// (`VMASST_TYPE_*`).
///
/// Returns 0, or `-EINVAL` for an assist this guest type does not support
/// (checked first), `-ENOSYS` for an unknown command.
pub fn vm_assist(cmd: u32, type_: u32) -> i64 {
    // SAFETY: the assists change how the hypervisor interprets later
    // requests, never the guest's existing memory.
    unsafe { hypercall2(VM_ASSIST, u64::from(cmd), u64::from(type_)) }
}
