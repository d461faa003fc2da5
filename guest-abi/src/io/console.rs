//! The PV console ring page (`io/console.h`).
//!
//! Two byte rings: `in` (backend to guest, 1024 bytes) and `out` (guest to
//! backend, 2048 bytes), each with free-running `u32` indices masked by the
//! ring's size (`MASK_XENCONS_IDX`).
//!
//! [`xencons_write`] is the guest's side of the `out` ring as pure logic:
//! it reaches the live page only through [`XenconsOut`], which the guest
//! runtime implements with volatile accesses to the mapped page and the
//! host tests with a plain [`XenconsInterface`]. The backend may write any
//! value into `out_cons`; a claim that more than the ring's size is
//! unconsumed is reported ([`RingError::Overflow`]), never used as an index.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::ring::RingError;
use crate::xen::assert_layout;

/// Bytes of the `in` ring.
pub const XENCONS_IN_SIZE: usize = 1024;
/// Bytes of the `out` ring.
pub const XENCONS_OUT_SIZE: usize = 2048;
/// `XENCONS_RING_IDX`.
pub type XenconsRingIdx = u32;

/// `MASK_XENCONS_IDX(idx, ring)` for a ring of `ring_size` bytes (a power of
/// two): the byte an index addresses.
pub const fn mask_xencons_idx(idx: XenconsRingIdx, ring_size: usize) -> usize {
    (idx as usize) & (ring_size - 1)
}

/// `xencons_interface`: the console ring page (3088 bytes used).
#[repr(C)]
#[derive(Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct XenconsInterface {
    /// Input bytes, backend to guest.
    pub in_: [u8; XENCONS_IN_SIZE],
    /// Output bytes, guest to backend.
    pub out: [u8; XENCONS_OUT_SIZE],
    /// `in` bytes consumed by the guest.
    pub in_cons: u32,
    /// `in` bytes produced by the backend.
    pub in_prod: u32,
    /// `out` bytes consumed by the backend.
    pub out_cons: u32,
    /// `out` bytes produced by the guest.
    pub out_prod: u32,
}
assert_layout!(XenconsInterface, 3088; in_ = 0, out = 1024, in_cons = 3072, in_prod = 3076,
    out_cons = 3080, out_prod = 3084);

/// The guest's access to the `out` half of a live console ring page.
///
/// Each method is a single load or store of shared memory (volatile or
/// atomic in a real implementation).
pub trait XenconsOut {
    /// Reads `out_cons` (written by the backend).
    fn out_cons(&self) -> XenconsRingIdx;
    /// Reads `out_prod` (written only by the guest).
    fn out_prod(&self) -> XenconsRingIdx;
    /// Stores `b` at byte `at` (`< XENCONS_OUT_SIZE`) of the `out` array.
    fn write_out(&mut self, at: usize, b: u8);
    /// Publishes `out_prod`. Implementations order the preceding
    /// [`Self::write_out`]s before this store (Xen's `wmb()`).
    fn set_out_prod(&mut self, prod: XenconsRingIdx);
}

/// Copies as much of `bytes` as the `out` ring has room for and publishes
/// the new producer index; returns how many bytes went in (0 when the ring
/// is full). The caller then notifies the console's event channel, and
/// retries the rest once the backend has consumed some.
///
/// Fails, writing nothing, if `out_cons` claims more than
/// [`XENCONS_OUT_SIZE`] bytes are unconsumed (or that the backend consumed
/// bytes that were never produced).
pub fn xencons_write<R: XenconsOut + ?Sized>(
    ring: &mut R,
    bytes: &[u8],
) -> Result<usize, RingError> {
    let cons = ring.out_cons();
    let prod = ring.out_prod();
    let used = usize::try_from(prod.wrapping_sub(cons)).map_err(|_| RingError::Overflow)?;
    let room = XENCONS_OUT_SIZE
        .checked_sub(used)
        .ok_or(RingError::Overflow)?;
    let n = room.min(bytes.len());
    let mut idx = prod;
    for &b in &bytes[..n] {
        ring.write_out(mask_xencons_idx(idx, XENCONS_OUT_SIZE), b);
        idx = idx.wrapping_add(1);
    }
    if n > 0 {
        ring.set_out_prod(idx);
    }
    Ok(n)
}

/// A console page in ordinary memory (a test, or a backend's private copy):
/// plain field accesses, no ordering needed.
impl XenconsOut for XenconsInterface {
    fn out_cons(&self) -> XenconsRingIdx {
        self.out_cons
    }
    fn out_prod(&self) -> XenconsRingIdx {
        self.out_prod
    }
    fn write_out(&mut self, at: usize, b: u8) {
        if let Some(slot) = self.out.get_mut(at) {
            *slot = b;
        }
    }
    fn set_out_prod(&mut self, prod: XenconsRingIdx) {
        self.out_prod = prod;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;
    use std::vec::Vec;
    use zerocopy::FromZeros;

    /// What the backend would read: the bytes between `out_cons` and
    /// `out_prod`, consuming them.
    fn drain(page: &mut XenconsInterface) -> Vec<u8> {
        let mut v = Vec::new();
        while page.out_cons != page.out_prod {
            v.push(page.out[mask_xencons_idx(page.out_cons, XENCONS_OUT_SIZE)]);
            page.out_cons = page.out_cons.wrapping_add(1);
        }
        v
    }

    #[test]
    fn writes_and_publishes() {
        let mut page = Box::new(XenconsInterface::new_zeroed());
        assert_eq!(xencons_write(&mut *page, b"hello\n"), Ok(6));
        assert_eq!((page.out_cons, page.out_prod), (0, 6));
        assert_eq!(drain(&mut page), b"hello\n");
        assert_eq!(xencons_write(&mut *page, b""), Ok(0));
        assert_eq!(page.out_prod, 6);
    }

    #[test]
    fn stops_when_full_and_resumes_after_the_backend_consumes() {
        let mut page = Box::new(XenconsInterface::new_zeroed());
        let big: Vec<u8> = (0..3000_u32).map(|i| i.to_le_bytes()[0] ^ 0x5a).collect();
        assert_eq!(xencons_write(&mut *page, &big), Ok(XENCONS_OUT_SIZE));
        assert_eq!(xencons_write(&mut *page, &big[XENCONS_OUT_SIZE..]), Ok(0));
        let first = drain(&mut page);
        assert_eq!(first, &big[..XENCONS_OUT_SIZE]);
        assert_eq!(xencons_write(&mut *page, &big[XENCONS_OUT_SIZE..]), Ok(952));
        assert_eq!(drain(&mut page), &big[XENCONS_OUT_SIZE..]);
    }

    #[test]
    fn wraps_the_free_running_indices() {
        let mut page = Box::new(XenconsInterface::new_zeroed());
        page.out_cons = u32::MAX - 2;
        page.out_prod = u32::MAX - 2;
        assert_eq!(xencons_write(&mut *page, b"abcdef"), Ok(6));
        assert_eq!(page.out_prod, 3);
        assert_eq!(&page.out[XENCONS_OUT_SIZE - 3..], b"abc");
        assert_eq!(&page.out[..3], b"def");
        assert_eq!(drain(&mut page), b"abcdef");
    }

    #[test]
    fn rejects_a_backend_claiming_impossible_progress() {
        let mut page = Box::new(XenconsInterface::new_zeroed());
        // Consumed beyond what was produced: prod - cons wraps to ~4 GiB.
        page.out_prod = 10;
        page.out_cons = 11;
        assert_eq!(xencons_write(&mut *page, b"x"), Err(RingError::Overflow));
        // More unconsumed than the ring holds (2048 bytes).
        page.out_cons = 0;
        page.out_prod = 2049;
        assert_eq!(xencons_write(&mut *page, b"x"), Err(RingError::Overflow));
        assert_eq!(page.out_prod, 2049);
        assert!(page.out.iter().all(|&b| b == 0));
    }

    #[test]
    fn masks_wrap() {
        assert_eq!(mask_xencons_idx(u32::MAX, XENCONS_OUT_SIZE), 2047);
        assert_eq!(mask_xencons_idx(1024, XENCONS_IN_SIZE), 0);
    }
}
