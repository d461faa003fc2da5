//! The guest's descriptor tables: `set_gdt` and `update_descriptor`.
//!
//! `set_gdt(frame_list, entries)` takes up to 14 machine frames (entries
//! below 0xe000 >> 3, else `-EINVAL`; an unreadable list is `-EFAULT`).
//! Each frame takes a general and a SegDesc type reference, so it can no
//! longer be mapped writable or written by `mmu_update`; a frame that is
//! not the domain's, or already has another type in use (it is mapped
//! writable, or is a page table) gives `-EINVAL` and no reference is kept.
//! A frame newly typed SegDesc has its 512 descriptors checked and fixed
//! up in place (`hv::segdesc`); one bad descriptor refuses the frame. Only
//! then are the frames mapped into the vCPU's GDT window (the zero frame
//! past them) and the old frames' references dropped (the CPU sees the
//! whole of each frame, as under Xen, whatever `entries` says).
//!
//! `update_descriptor(maddr, desc)` writes one checked descriptor at a
//! machine address of the domain: 8-byte aligned, in a frame that is SegDesc
//! (re-checked in full if no reference keeps it validated) or can be
//! writable (not a page table). A frame of a live GDT is mapped in the
//! vCPU's window, so the CPU sees the update at once. Every refusal is
//! `-EINVAL`.

use guest_abi::errno::Errno;
use hv::page_info::PageType;
use hv::segdesc::{self, check_descriptor, FIRST_RESERVED_GDT_ENTRY, GDT_FRAMES};

use super::{HcResult, Outcome};
use crate::arch::x86_64::gdt;
use crate::domain;
use crate::guest_mem::{GuestSlice, Loaded};
use crate::mm::segdesc::{get_segdesc, validate_frame};
use crate::mm::{self, FrameWrite, SegDescRef, WritableRef, PAGE_SIZE};

pub fn set_gdt(frame_list: u64, entries: u32) -> Outcome {
    install_gdt(frame_list, entries).into()
}

/// Takes a general and a SegDesc type reference on each of `frames`
/// (frames of domain `id`), validating the ones newly typed: all or
/// none (`-EINVAL`).
pub(super) fn get_gdt_frames(id: u16, frames: &[u64]) -> Result<(), Errno> {
    let got = mm::with_frame_table(|ft| {
        for (i, &mfn) in frames.iter().enumerate() {
            if !get_segdesc(ft, mfn, id) {
                for &undo in frames.get(..i).unwrap_or(&[]) {
                    let _ = ft.put_page_and_type(undo);
                }
                return false;
            }
        }
        true
    });
    if got == Some(true) {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

fn install_gdt(frame_list: u64, entries: u32) -> HcResult {
    if entries > FIRST_RESERVED_GDT_ENTRY {
        return Err(Errno::EINVAL);
    }
    let nr = usize::try_from(entries.div_ceil(512)).unwrap_or(GDT_FRAMES);
    let mut frames = [0u64; GDT_FRAMES];
    let list = frames.get_mut(..nr).ok_or(Errno::EINVAL)?;
    GuestSlice::<u64>::per_element(frame_list, nr as u64).read_into(&Loaded, 0, list)?;
    let new = frames.get(..nr).unwrap_or(&[]);
    get_gdt_frames(domain::current_id().get(), new)?;
    let (old, old_nr) = domain::with_current(|d| {
        let area = d.vcpu.ldt.area;
        let t = &mut d.vcpu.traps;
        let old = (t.gdt_frames, t.gdt_nr_frames);
        t.gdt_frames = frames;
        t.gdt_nr_frames = nr;
        t.gdt_ents = u64::from(entries);
        // The vCPU's GDT window shows the new frames (the zero frame past
        // them) before the old ones lose their references.
        for slot in 0..old.1.max(nr) {
            let _ = area.set_gdt_page(slot, new.get(slot).copied());
        }
        old
    });
    mm::with_frame_table(|ft| {
        for &mfn in old.get(..old_nr).unwrap_or(&[]) {
            let _ = ft.put_page_and_type(mfn);
        }
    });
    Ok(0)
}

pub fn update_descriptor(maddr: u64, desc: u64) -> Outcome {
    write_descriptor(maddr, desc).into()
}

fn write_descriptor(maddr: u64, desc: u64) -> HcResult {
    let einval = Err(Errno::EINVAL);
    if !maddr.is_multiple_of(8) {
        return einval;
    }
    let Some(desc) = check_descriptor(desc) else {
        return einval;
    };
    let mfn = maddr / PAGE_SIZE;
    let id = domain::current_id().get();
    let done = mm::with_frame_table(|ft| {
        let Some(info) = ft.get(mfn) else {
            return false;
        };
        if info.owner != Some(id) {
            return false;
        }
        let offset = maddr % PAGE_SIZE;
        if info.ty == PageType::SegDesc {
            match SegDescRef::take_validated_in(ft, mfn, id, validate_frame) {
                Ok(Some(r)) => {
                    let ok = r.write_u64(offset, desc).is_ok();
                    r.release_in(ft);
                    ok
                }
                Ok(None) | Err(_) => false,
            }
        } else {
            match WritableRef::take_in(ft, mfn, id) {
                Ok(r) => {
                    let ok = r.write_u64(offset, desc).is_ok();
                    r.release_in(ft);
                    ok
                }
                Err(_) => false,
            }
        }
    });
    if done != Some(true) {
        return einval;
    }
    // A frame of a live GDT is mapped in its vCPU's window: the CPU sees
    // the new descriptor there already.
    Ok(0)
}

const _: () = assert!(segdesc::GDT_FRAMES * segdesc::PER_FRAME == gdt::GUEST_ENTRIES);
