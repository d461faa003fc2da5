//! Another domain's memory, reached through a held frame reference.
//!
//! Grant copy and domctl touch frames of a domain that is not the one
//! running, whose page tables are not loaded and may change under hv at any
//! time. So they never walk that domain's tables: they first take a
//! reference on the frame from the frame table (which keeps it from being
//! freed or changing owner), then copy whole values at an offset in it
//! through the direct map. The reference is the proof parameter: any
//! [`HeldFrame`] (a `FrameRef` or a typed reference) to read, a
//! [`FrameWrite`] handle (a writable or descriptor type reference, a fresh
//! frame) to write. A value that would cross the frame's end is refused.
//!
//! Nothing calls these yet (grant copy and domctl come next):
//!
//! ```ignore
//! let frame = FrameRef::<Global>::take(mfn, owner)?;
//! let entry: GrantEntryV1 = foreign::copy_from_frame(&frame, offset)?;
//! ```

pub use hv::guest_handle::HeldFrame;
use hv::guest_handle::{frame_value_addr, Fault, GuestValue};

use crate::mm::frame_access as phys;
use crate::mm::FrameWrite;

/// Copies the `T` at byte `offset` of the referenced frame.
#[expect(
    dead_code,
    reason = "the seam for grant copy and domctl, which come next"
)]
pub fn copy_from_frame<T: GuestValue>(frame: &impl HeldFrame, offset: u64) -> Result<T, Fault> {
    let at = frame_value_addr::<T>(frame.mfn(), offset).ok_or(Fault)?;
    let mut v = T::new_zeroed();
    phys::read(at, v.as_mut_bytes()).map_err(|_| Fault)?;
    Ok(v)
}

/// Copies `v` to byte `offset` of a frame hv holds a writing handle on.
#[expect(
    dead_code,
    reason = "the seam for grant copy and domctl, which come next"
)]
pub fn copy_to_frame<T: GuestValue>(
    frame: &impl FrameWrite,
    offset: u64,
    v: &T,
) -> Result<(), Fault> {
    if frame_value_addr::<T>(frame.frame(), offset).is_none() {
        return Err(Fault);
    }
    frame.write(offset, v.as_bytes()).map_err(|_| Fault)
}
