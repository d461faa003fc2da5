//! Typed guest handles: a guest pointer to one `guest-abi` struct
//! ([`GuestPtr`]) or to an array of them ([`GuestSlice`]), copied in and
//! out as whole values.
//!
//! A guest pointer is an allegation. A handle is built from the raw
//! register or field value by a checked constructor and then only ever
//! copies whole `T`s through a [`GuestMemory`] (the kernel's is the CPU
//! walking the guest's loaded tables, see `guest_mem`); nothing decodes
//! guest bytes by hand. The copy itself re-checks the address range and
//! can still fault (the mapping is the guest's to change at any time), so
//! every copy returns `Result<_, Fault>`, and what was read is used only
//! once the whole value arrived.
//!
//! The constructors check what Xen checks, no more (guests that pass on
//! Xen must pass here): a single value's range must lie in guest address
//! space (Xen's `access_ok`, done by its copy), an array's ends must be
//! guest addresses and its size must not overflow (`guest_handle_okay`).
//! Alignment is not required: Xen copies guest handles byte-wise and
//! accepts any address. Handlers that Xen lets run over an array without
//! an up-front check (faulting element by element) use
//! [`GuestSlice::per_element`].
//!
//! One field of a guest struct (a progress counter such as
//! `nr_exchanged`, a multicall entry's `result`) is written through
//! [`guest_field!`](crate::guest_field), which projects the handle by the
//! field's `offset_of!`, so no offset is written by hand.
//!
//! Another domain's memory is never reached through these: see
//! [`HeldFrame`] for the seam through a held frame reference.

use core::marker::PhantomData;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::page_info::{FrameHome, FrameRef, HeldType, TypedRef};

/// The guest address was not accessible: the hypercall returns `-EFAULT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault;

impl From<Fault> for i64 {
    /// `-EFAULT`, what Xen returns for an inaccessible argument.
    #[inline]
    fn from(_: Fault) -> i64 {
        -guest_abi::errno::EFAULT
    }
}

impl From<Fault> for guest_abi::errno::Errno {
    /// `-EFAULT`, what Xen returns for an inaccessible argument.
    #[inline]
    fn from(_: Fault) -> Self {
        Self::EFAULT
    }
}

const HV_END: u64 = guest_abi::arch::HYPERVISOR_VIRT_END;
/// First address past the lower canonical half.
const LOWER_END: u64 = 1 << 47;

/// Whether a guest linear address is one Xen accepts (`__addr_ok`): the
/// lower canonical half, or the upper half above the hypervisor's slots.
#[inline]
pub fn addr_ok(va: u64) -> bool {
    crate::pt_walk::guest_va_ok(va)
}

/// Whether an argument array of `len` bytes at `va` starts and ends at
/// addresses Xen accepts (`guest_handle_okay`-style: a check of addresses,
/// not of mappings; the copies fault element by element).
#[inline]
pub fn array_ok(va: u64, len: u64) -> bool {
    len == 0 || (addr_ok(va) && va.checked_add(len - 1).is_some_and(addr_ok))
}

/// Whether `[va, va + len)` lies wholly in one of the two guest-owned
/// parts of the address space: the lower canonical half, or the upper half
/// above the hypervisor's slots. Every copy checks this.
#[inline]
pub fn range_ok(va: u64, len: u64) -> bool {
    let Some(last) = va.checked_add(len.saturating_sub(1)) else {
        return false;
    };
    len == 0 || last < LOWER_END || va >= HV_END
}

/// Bytes of `count` values of `T`, if that does not overflow.
fn bytes_of<T>(count: u64) -> Option<u64> {
    u64::try_from(size_of::<T>())
        .ok()
        .and_then(|size| count.checked_mul(size))
}

/// An address space guest handles copy through.
pub trait GuestMemory {
    /// Copies `out.len()` bytes from guest address `va`, after checking
    /// the range with [`range_ok`] (handles check it when built, but the
    /// copy is where it must hold).
    fn read_bytes(&self, va: u64, out: &mut [u8]) -> Result<(), Fault>;
    /// Copies `data` to guest address `va`; a fault part-way may leave the
    /// bytes before it written (as Xen's `copy_to_guest`).
    fn write_bytes(&self, va: u64, data: &[u8]) -> Result<(), Fault>;
    /// Copies one whole `T` in from guest address `va`, checked as
    /// [`read_bytes`](Self::read_bytes). An address space that can copy
    /// straight into the destination overrides this (no zero-fill first:
    /// the iret frame of every bounce comes in this way).
    fn read_value<T: GuestValue>(&self, va: u64) -> Result<T, Fault> {
        let mut v = T::new_zeroed();
        self.read_bytes(va, v.as_mut_bytes())?;
        Ok(v)
    }
}

/// What a guest handle may point at: a plain `guest-abi` value that any
/// bytes make valid and that is nothing but bytes.
pub trait GuestValue: FromBytes + IntoBytes + Immutable + KnownLayout {}
impl<T: FromBytes + IntoBytes + Immutable + KnownLayout> GuestValue for T {}

/// A guest pointer to one `T`, its range checked when built.
pub struct GuestPtr<T> {
    va: u64,
    ty: PhantomData<fn() -> T>,
}

impl<T> Clone for GuestPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for GuestPtr<T> {}

impl<T> core::fmt::Debug for GuestPtr<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "GuestPtr({:#x})", self.va)
    }
}

impl<T: GuestValue> GuestPtr<T> {
    /// The guest's pointer `va`, if the whole `T` there lies in guest
    /// address space. Any alignment is accepted, as on Xen.
    pub fn new(va: u64) -> Result<Self, Fault> {
        let len = bytes_of::<T>(1).ok_or(Fault)?;
        if !range_ok(va, len) {
            return Err(Fault);
        }
        Ok(Self {
            va,
            ty: PhantomData,
        })
    }

    /// The guest address.
    pub const fn addr(self) -> u64 {
        self.va
    }

    /// Copies the whole value in.
    pub fn read(self, mem: &impl GuestMemory) -> Result<T, Fault> {
        mem.read_value(self.va)
    }

    /// Copies the whole value out.
    pub fn write(self, mem: &impl GuestMemory, v: &T) -> Result<(), Fault> {
        mem.write_bytes(self.va, v.as_bytes())
    }

    /// The field at `offset` (a `offset_of!` of `T`), typed by the
    /// projection `_field` (never called). Use [`guest_field!`](crate::guest_field).
    #[doc(hidden)]
    pub fn project<F: GuestValue>(self, offset: usize, _field: fn(&T) -> &F) -> GuestPtr<F> {
        // The field lies inside the checked range of `T` (offset_of! and
        // the projection's type agree), so the sum cannot wrap; the copy
        // checks the range again anyway.
        GuestPtr {
            va: self.va.wrapping_add(offset as u64),
            ty: PhantomData,
        }
    }
}

impl<T: GuestValue, const N: usize> GuestPtr<[T; N]> {
    /// The array as a slice handle (to copy part of it).
    pub fn as_slice(self) -> GuestSlice<T> {
        GuestSlice::per_element(self.va, N as u64)
    }
}

/// A handle on one field of a guest struct: `guest_field!(ptr, Type, field)`
/// is a [`GuestPtr`] to `ptr`'s `field`, at `offset_of!(Type, field)`.
#[macro_export]
macro_rules! guest_field {
    ($ptr:expr, $ty:ty, $field:ident) => {
        $ptr.project(::core::mem::offset_of!($ty, $field), |s: &$ty| &s.$field)
    };
}

/// A guest array of `len` values of `T`.
pub struct GuestSlice<T> {
    va: u64,
    len: u64,
    /// How many elements start below the top of the address space (at
    /// most `len`): an element from here on faults without a copy, and
    /// the address of one before it cannot wrap.
    reachable: u64,
    ty: PhantomData<fn() -> T>,
}

impl<T> Clone for GuestSlice<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for GuestSlice<T> {}

impl<T> core::fmt::Debug for GuestSlice<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "GuestSlice({:#x}, {})", self.va, self.len)
    }
}

impl<T: GuestValue> GuestSlice<T> {
    /// The guest's array at `va` of `len` values, checked as Xen's
    /// `guest_handle_okay`: the size does not overflow and both ends are
    /// guest addresses. The elements can still fault one by one.
    pub fn new(va: u64, len: u64) -> Result<Self, Fault> {
        let bytes = bytes_of::<T>(len).ok_or(Fault)?;
        if !array_ok(va, bytes) {
            return Err(Fault);
        }
        // The whole array ends below the top: every element is reachable.
        Ok(Self {
            va,
            len,
            reachable: len,
            ty: PhantomData,
        })
    }

    /// The guest's array at `va` of `len` values with no check up front:
    /// each element is checked when it is reached (for the handlers Xen
    /// runs over an array without `guest_handle_okay`).
    pub const fn per_element(va: u64, len: u64) -> Self {
        // Elements `i` with `va + i * size <= u64::MAX`.
        let size = size_of::<T>() as u64;
        let reachable = match (u64::MAX - va).checked_div(size) {
            Some(last) if last < len => last + 1,
            _ => len,
        };
        Self {
            va,
            len,
            reachable,
            ty: PhantomData,
        }
    }

    /// The guest address of element 0.
    pub const fn addr(self) -> u64 {
        self.va
    }

    /// The number of elements.
    pub const fn len(self) -> u64 {
        self.len
    }

    /// Whether the array has no elements.
    pub const fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The address of element `i` (`i <= len`: one past the end is the
    /// address a continuation resumes at), if it does not wrap.
    pub fn element_addr(self, i: u64) -> Result<u64, Fault> {
        if i > self.len {
            return Err(Fault);
        }
        bytes_of::<T>(i)
            .and_then(|off| self.va.checked_add(off))
            .ok_or(Fault)
    }

    /// A handle on element `i`.
    pub fn at(self, i: u64) -> Result<GuestPtr<T>, Fault> {
        if i >= self.len {
            return Err(Fault);
        }
        GuestPtr::new(self.element_addr(i)?)
    }

    /// The elements from `i` on (where a continuation resumes).
    pub fn skip(self, i: u64) -> Result<Self, Fault> {
        Ok(Self::per_element(
            self.element_addr(i)?,
            self.len.saturating_sub(i),
        ))
    }

    /// Element `i`, its range left to the copy to check (as [`Self::at`]
    /// would, once fewer: this is the per-element path of batches).
    fn element(self, i: u64) -> Result<GuestPtr<T>, Fault> {
        Ok(GuestPtr {
            va: self.start_of(i)?,
            ty: PhantomData,
        })
    }

    /// The address of element `i < len`, which must start below the top
    /// of the address space.
    #[inline]
    fn start_of(self, i: u64) -> Result<u64, Fault> {
        if i >= self.reachable {
            return Err(Fault);
        }
        // i < reachable: neither the product nor the sum wraps.
        Ok(self.va.wrapping_add(i.wrapping_mul(size_of::<T>() as u64)))
    }

    /// Copies element `i` in (inline: the batch loops call it per element).
    #[inline(always)]
    pub fn get(self, mem: &impl GuestMemory, i: u64) -> Result<T, Fault> {
        self.element(i)?.read(mem)
    }

    /// Copies `v` out to element `i`.
    pub fn set(self, mem: &impl GuestMemory, i: u64, v: &T) -> Result<(), Fault> {
        self.element(i)?.write(mem, v)
    }

    /// The address of elements `[first, first + n)`, if inside the array
    /// (the copy checks the address range).
    fn span(self, first: u64, n: usize) -> Result<u64, Fault> {
        let n = u64::try_from(n).map_err(|_| Fault)?;
        if first.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(Fault);
        }
        if n == 0 {
            // Nothing is copied: an empty run is fine anywhere in range.
            return Ok(self.va);
        }
        self.start_of(first)
    }

    /// Copies elements `first..first + out.len()` in, in one copy (one
    /// walk per page instead of one per element).
    pub fn read_into(self, mem: &impl GuestMemory, first: u64, out: &mut [T]) -> Result<(), Fault> {
        mem.read_bytes(self.span(first, out.len())?, out.as_mut_bytes())
    }

    /// Copies `data` out to elements `first..first + data.len()`; a fault
    /// part-way may leave the elements before it written.
    pub fn write_from(self, mem: &impl GuestMemory, first: u64, data: &[T]) -> Result<(), Fault> {
        mem.write_bytes(self.span(first, data.len())?, data.as_bytes())
    }
}

/// Proof that the holder has a reference on machine frame
/// [`HeldFrame::mfn`]: while it is held the frame cannot be freed or change
/// owner, so its contents may be read without the owner's page tables
/// (another domain's memory: grant copy, domctl). The frame table's
/// references ([`FrameRef`], [`TypedRef`]) are the proofs.
pub trait HeldFrame {
    /// The referenced frame.
    fn mfn(&self) -> u64;
}

impl<H: FrameHome> HeldFrame for FrameRef<H> {
    fn mfn(&self) -> u64 {
        FrameRef::mfn(self)
    }
}

impl<H: FrameHome, K: HeldType> HeldFrame for TypedRef<H, K> {
    fn mfn(&self) -> u64 {
        TypedRef::mfn(self)
    }
}

/// Bytes in a frame.
pub const FRAME_BYTES: u64 = 4096;

/// The physical address of a `T` at byte `offset` of frame `mfn`, if the
/// whole value lies inside that frame.
pub fn frame_value_addr<T>(mfn: u64, offset: u64) -> Option<u64> {
    let end = offset.checked_add(bytes_of::<T>(1)?)?;
    if end > FRAME_BYTES {
        return None;
    }
    mfn.checked_mul(FRAME_BYTES)?.checked_add(offset)
}

#[cfg(test)]
mod tests;
