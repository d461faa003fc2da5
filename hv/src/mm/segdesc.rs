//! Descriptor frames: a frame becomes a GDT or LDT page (type SegDesc) only
//! once every one of its 512 descriptors passes Xen's checks
//! (`hv::segdesc`), fixed up in place where Xen fixes them. Used by
//! `set_gdt` and `update_descriptor` (hypercalls) and by the LDT's demand
//! mapping (`domain::ldt`).

use hv::segdesc::{check_descriptor, PER_FRAME};

use super::{frame_access as phys, FrameWrite, Frames, SegDescRef, PAGE_SIZE};

/// Checks every descriptor of the frame and writes the fixed-up ones back.
pub fn validate_frame(frame: &SegDescRef) -> bool {
    let mut page = [0u8; 4096];
    if phys::read(frame.mfn() * PAGE_SIZE, &mut page).is_err() {
        return false;
    }
    let mut fixed = [0u64; PER_FRAME];
    for (out, raw) in fixed.iter_mut().zip(page.chunks_exact(8)) {
        let d = u64::from_le_bytes(raw.try_into().unwrap_or_default());
        match check_descriptor(d) {
            Some(f) => *out = f,
            None => return false,
        }
    }
    for (i, (&f, raw)) in fixed.iter().zip(page.chunks_exact(8)).enumerate() {
        if u64::from_le_bytes(raw.try_into().unwrap_or_default()) != f {
            let _ = frame.write_u64(i as u64 * 8, f);
        }
    }
    true
}

/// Takes a SegDesc reference on `mfn` for domain `id`, validating the
/// frame if the type is new; the reference stays counted in the table
/// (the GDT frame list records it).
pub fn get_segdesc(ft: &Frames, mfn: u64, id: u16) -> bool {
    match SegDescRef::take_validated_in(ft, mfn, id, validate_frame) {
        Ok(Some(r)) => {
            let _ = r.into_counted();
            true
        }
        Ok(None) | Err(_) => false,
    }
}

/// A SegDesc reference on `mfn` for domain `id`, the frame validated if
/// the type is new (the LDT's pages).
pub fn take_segdesc(mfn: u64, id: u16) -> Option<SegDescRef> {
    SegDescRef::take_validated(mfn, id, validate_frame)
        .ok()
        .flatten()
}
