//! Copying to and from guest virtual memory, for hypercall arguments.
//!
//! Handlers reach guest memory through typed handles
//! ([`GuestPtr`]/[`GuestSlice`], built and range-checked in
//! `hv::guest_handle`) that copy whole `guest-abi` values through one of
//! the two address spaces here: [`Loaded`], the page tables the CPU uses
//! now (every hypercall runs on the caller's), or [`Tables`], the tables at
//! a given cr3. Another domain's memory is reached only through a held frame
//! reference ([`foreign`]), never through page tables.
//!
//! A guest pointer is an allegation. hv first checks that the whole range
//! lies in guest-owned address space (never hv's slots, never across the
//! canonical hole). Then, when the guest's tables are the ones loaded (every
//! hypercall), the CPU does the walk: a `rep movsb` whose faults are caught
//! (`arch::x86_64::uaccess`) — every guest mapping is user-accessible and
//! CR0.WP is on, so hv gets exactly the guest kernel's rights. Otherwise hv
//! walks the guest's tables in software (`hv::pt_walk`) with those same
//! rights (every level present and user-accessible, and writable for
//! writes) and copies through the direct map. Either way a bad pointer gives `-EFAULT`, and hv uses
//! what it read only once the read completed.
//!
//! No lock is held across a copy: handlers copy in before they take the
//! vCPU or domain lock (`domain::with_current`) and copy out after.

pub mod foreign;

pub use hv::guest_field;
pub use hv::guest_handle::{addr_ok, Fault, GuestMemory, GuestPtr, GuestSlice, GuestValue};

use hv::pt_walk;

use crate::mm::frame_access as phys;
use crate::mm::page_table::PTE_ADDR_MASK;
use crate::mm::PAGE_SIZE;

/// The page tables loaded now: in a hypercall, the calling vCPU's. The CPU
/// walks them.
#[derive(Debug, Clone, Copy)]
pub struct Loaded;

// The copies are one indirect call each (`uaccess`): `#[inline]` keeps
// codegen partitioning from putting a second call in front of them (it
// did once, costing `mmu_update_64` 29 instructions).
impl GuestMemory for Loaded {
    #[inline]
    fn read_bytes(&self, va: u64, out: &mut [u8]) -> Result<(), Fault> {
        copy_from_loaded(va, out)
    }

    #[inline]
    fn read_value<T: GuestValue>(&self, va: u64) -> Result<T, Fault> {
        if !range_ok(va, size_of::<T>()) {
            return Err(Fault);
        }
        crate::arch::x86_64::uaccess::read_guest_value(va).map_err(|_| Fault)
    }

    #[inline]
    fn write_bytes(&self, va: u64, data: &[u8]) -> Result<(), Fault> {
        copy_to_loaded(va, data)
    }
}

/// The page tables at this cr3: the CPU walks them if they are loaded,
/// hv in software otherwise (emulation reading through the kernel's
/// tables while user mode runs).
#[derive(Debug, Clone, Copy)]
pub struct Tables(pub u64);

impl GuestMemory for Tables {
    fn read_bytes(&self, va: u64, out: &mut [u8]) -> Result<(), Fault> {
        copy_from_guest(self.0, va, out)
    }

    fn write_bytes(&self, va: u64, data: &[u8]) -> Result<(), Fault> {
        copy_to_guest(self.0, va, data)
    }
}

/// Translates one guest virtual address to a physical address, with the
/// guest kernel's rights.
fn translate(cr3: u64, va: u64, write: bool) -> Result<u64, Fault> {
    let need = if write {
        pt_walk::GUEST_WRITE
    } else {
        pt_walk::GUEST_READ
    };
    pt_walk::translate(cr3, va, need, |pa| phys::read_u64(pa).ok())
        .map(|leaf| leaf.paddr)
        .map_err(|_| Fault)
}

/// Splits `[va, va+len)` into page-bounded pieces and calls `f(paddr, offset, n)`.
fn for_each_piece(
    cr3: u64,
    va: u64,
    len: usize,
    write: bool,
    mut f: impl FnMut(u64, usize, usize) -> Result<(), Fault>,
) -> Result<(), Fault> {
    let mut done = 0usize;
    while done < len {
        let cur = va.checked_add(done as u64).ok_or(Fault)?;
        let in_page = usize::try_from(PAGE_SIZE - (cur % PAGE_SIZE)).map_err(|_| Fault)?;
        let n = in_page.min(len - done);
        let pa = translate(cr3, cur, write)?;
        f(pa, done, n)?;
        done += n;
    }
    Ok(())
}

fn range_ok(va: u64, len: usize) -> bool {
    hv::guest_handle::range_ok(va, len as u64)
}

/// Whether `cr3` is the page table the CPU uses right now, so the hardware
/// can do the walk (fast path).
fn is_loaded(cr3: u64) -> bool {
    crate::arch::x86_64::cpu::read_cr3() & PTE_ADDR_MASK == cr3 & PTE_ADDR_MASK
}

/// Copies from guest address `va` through the page tables loaded now (the
/// calling vCPU's, in a hypercall).
pub fn copy_from_loaded(va: u64, out: &mut [u8]) -> Result<(), Fault> {
    if !range_ok(va, out.len()) {
        return Err(Fault);
    }
    crate::arch::x86_64::uaccess::read_guest(va, out).map_err(|_| Fault)
}

/// Copies to guest address `va` through the page tables loaded now.
pub fn copy_to_loaded(va: u64, data: &[u8]) -> Result<(), Fault> {
    if !range_ok(va, data.len()) {
        return Err(Fault);
    }
    crate::arch::x86_64::uaccess::write_guest(va, data).map_err(|_| Fault)
}

/// Writes a bounce frame (the first 7 words of `frame`, or all 8 when
/// `eight`) just below guest stack pointer `sp` through the page tables
/// loaded now, and returns the new stack pointer. The frame must lie where
/// [`copy_to_loaded`] would accept it; the usual case, a frame inside one
/// half with no wrap, is decided with three compares.
#[inline(always)]
pub fn push_frame_to_loaded(sp: u64, frame: &[u64; 8], eight: bool) -> Result<u64, Fault> {
    const LOWER_END: u64 = 0x0000_8000_0000_0000;
    const HV_END: u64 = guest_abi::arch::HYPERVISOR_VIRT_END;
    let len = if eight { 64 } else { 56 };
    let new_sp = sp.wrapping_sub(len as u64);
    // Implies `range_ok(new_sp, len)`: no wrap, and the frame ends in the
    // lower half or starts above hv's slots.
    let usual = new_sp < sp && (sp <= LOWER_END || new_sp >= HV_END);
    if !usual && !range_ok(new_sp, len) {
        return Err(Fault);
    }
    crate::arch::x86_64::uaccess::write_guest_frame(new_sp, frame, eight).map_err(|_| Fault)?;
    Ok(new_sp)
}

/// Reads an `iret` frame at guest address `va` through the page tables
/// loaded now, straight into registers.
#[inline(always)]
pub fn read_iret_context(va: u64) -> Result<guest_abi::xen::IretContext, Fault> {
    const LOWER_END: u64 = 0x0000_8000_0000_0000;
    const HV_END: u64 = guest_abi::arch::HYPERVISOR_VIRT_END;
    const LEN: u64 = size_of::<guest_abi::xen::IretContext>() as u64;
    // `range_ok(va, LEN)`, the kernel's half (the usual case) first.
    let ok = if va >= HV_END {
        va <= u64::MAX - (LEN - 1)
    } else {
        va <= LOWER_END - LEN
    };
    if !ok {
        return Err(Fault);
    }
    let [rax, r11, rcx, flags, rip, cs, rflags, rsp, ss] =
        crate::arch::x86_64::uaccess::read_guest_9(va).map_err(|_| Fault)?;
    Ok(guest_abi::xen::IretContext {
        rax,
        r11,
        rcx,
        flags,
        rip,
        cs,
        rflags,
        rsp,
        ss,
    })
}

/// Copies `out.len()` bytes from guest address `va` (page tables at `cr3`).
///
/// When those tables are loaded the CPU walks them (a fault is caught and
/// reported); otherwise hv walks them in software.
pub fn copy_from_guest(cr3: u64, va: u64, out: &mut [u8]) -> Result<(), Fault> {
    if !range_ok(va, out.len()) {
        return Err(Fault);
    }
    if is_loaded(cr3) {
        return crate::arch::x86_64::uaccess::read_guest(va, out).map_err(|_| Fault);
    }
    copy_from_guest_walk(cr3, va, out)
}

fn copy_from_guest_walk(cr3: u64, va: u64, out: &mut [u8]) -> Result<(), Fault> {
    let len = out.len();
    for_each_piece(cr3, va, len, false, |pa, off, n| {
        let dst = out.get_mut(off..off + n).ok_or(Fault)?;
        phys::read(pa, dst).map_err(|_| Fault)
    })
}

/// Checks that `[va, va+len)` is writable by the guest, without writing.
pub fn check_writable(cr3: u64, va: u64, len: usize) -> Result<(), Fault> {
    for_each_piece(cr3, va, len, true, |_, _, _| Ok(()))
}

/// Copies `data` to guest address `va`. As with Xen's `copy_to_guest`, a
/// fault part-way leaves the bytes before it written.
pub fn copy_to_guest(cr3: u64, va: u64, data: &[u8]) -> Result<(), Fault> {
    if !range_ok(va, data.len()) {
        return Err(Fault);
    }
    if is_loaded(cr3) {
        return crate::arch::x86_64::uaccess::write_guest(va, data).map_err(|_| Fault);
    }
    check_writable(cr3, va, data.len())?;
    for_each_piece(cr3, va, data.len(), true, |pa, off, n| {
        let src = data.get(off..off + n).ok_or(Fault)?;
        // hv holds no reference to the frame here: one is taken around
        // the write if the frame is mapped writable already.
        phys::write_guest_writable(pa, src).map_err(|_| Fault)
    })
}
