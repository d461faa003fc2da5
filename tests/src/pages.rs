//! Page-aligned memory that only assembly and the hypervisor touch: the
//! stacks a guest hands to `iret` and `stack_switch`, and pages whose
//! contents a hypercall rewrites behind Rust's back.
//!
//! Rust code never forms a reference into the bytes, only addresses
//! ([`Pages::addr`], [`Pages::top`]) and volatile reads ([`Pages::read_u64`]),
//! so the `UnsafeCell` is never borrowed and a plain (immutable) `static`
//! of it is sound.

use core::cell::UnsafeCell;

const PAGE: usize = 4096;

/// `N` zeroed pages, 4 KiB aligned.
#[repr(C, align(4096))]
pub struct Pages<const N: usize>(UnsafeCell<[[u8; PAGE]; N]>);

// SAFETY: Rust only takes the address of the contents and reads them with
// volatile loads; the writers (assembly, the hypervisor) are outside the
// Rust abstract machine, and the guests are single-threaded.
unsafe impl<const N: usize> Sync for Pages<N> {}

impl<const N: usize> Pages<N> {
    /// Zeroed pages (in `.bss`).
    pub const fn new() -> Self {
        Self(UnsafeCell::new([[0; PAGE]; N]))
    }

    /// The address of the first byte.
    pub fn addr(&self) -> u64 {
        self.0.get() as u64
    }

    /// The address just past the last byte: the initial stack pointer of
    /// a stack in these pages.
    pub fn top(&self) -> u64 {
        self.addr() + (N * PAGE) as u64
    }

    /// The 8 bytes at word `i` (`i < N * 512`).
    pub fn read_u64(&self, i: usize) -> u64 {
        assert!(i < N * PAGE / 8, "word {i} outside {N} pages");
        // SAFETY: in bounds (checked above) and aligned; nothing holds a
        // reference into the cell, and a volatile read is what another
        // writer's memory needs.
        unsafe { self.0.get().cast::<u64>().add(i).read_volatile() }
    }
}

impl<const N: usize> Default for Pages<N> {
    fn default() -> Self {
        Self::new()
    }
}
