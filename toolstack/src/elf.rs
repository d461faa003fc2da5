//! The ELF64 kernel image as a PV domain builder reads it: its loadable
//! segments and the Xen ELF notes that place it (`ENTRY`,
//! `HYPERCALL_PAGE`, `VIRT_BASE`, `PADDR_OFFSET`). Segments load at their
//! physical address moved by `VIRT_BASE - PADDR_OFFSET` (Xen's `libelf`;
//! without the notes both are 0, so a kernel linked at its physical
//! address loads there). Every offset and size is checked against the
//! image: a malformed image is an [`Error`], never a read out of bounds.

use crate::Error;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const EM_X86_64: u16 = 62;
const PHDR_SIZE: usize = 56;

/// Xen ELF note types (`XEN_ELFNOTE_*`) the builder reads.
const NOTE_ENTRY: u32 = 1;
const NOTE_HYPERCALL_PAGE: u32 = 2;
const NOTE_VIRT_BASE: u32 = 3;
const NOTE_PADDR_OFFSET: u32 = 4;

/// Most loadable segments an image may have.
pub const MAX_SEGMENTS: usize = 8;

/// One loadable segment: `file` bytes at virtual `va`, then zeros up to
/// `memsz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    pub va: u64,
    pub file: &'a [u8],
    pub memsz: u64,
}

/// A parsed kernel image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel<'a> {
    pub segments: [Option<Segment<'a>>; MAX_SEGMENTS],
    /// `VIRT_BASE`: where pseudo-physical frame 0 is mapped.
    pub virt_base: u64,
    pub entry: u64,
    pub hypercall_page: Option<u64>,
    /// The lowest and (exclusive) highest virtual address loaded.
    pub kstart: u64,
    pub kend: u64,
}

fn bad(what: &'static str) -> Error {
    Error::new(what, 0)
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, Error> {
    let s = b.get(at..at + 2).ok_or(bad("ELF image truncated"))?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, Error> {
    let s = b.get(at..at + 4).ok_or(bad("ELF image truncated"))?;
    let mut w = [0u8; 4];
    w.copy_from_slice(s);
    Ok(u32::from_le_bytes(w))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, Error> {
    let s = b.get(at..at + 8).ok_or(bad("ELF image truncated"))?;
    let mut w = [0u8; 8];
    w.copy_from_slice(s);
    Ok(u64::from_le_bytes(w))
}

fn usize_of(v: u64) -> Result<usize, Error> {
    usize::try_from(v).map_err(|_| bad("ELF offset too large"))
}

/// The notes' values, where present.
#[derive(Default)]
struct Notes {
    entry: Option<u64>,
    hypercall_page: Option<u64>,
    virt_base: Option<u64>,
    paddr_offset: Option<u64>,
}

/// Reads the "Xen" notes of one PT_NOTE segment.
fn read_notes(seg: &[u8], notes: &mut Notes) -> Result<(), Error> {
    let mut at = 0usize;
    while at + 12 <= seg.len() {
        let namesz = usize_of(u64::from(u32_at(seg, at)?))?;
        let descsz = usize_of(u64::from(u32_at(seg, at + 4)?))?;
        let ty = u32_at(seg, at + 8)?;
        let name_at = at + 12;
        let desc_at = name_at
            .checked_add(namesz.next_multiple_of(4))
            .ok_or(bad("ELF note too large"))?;
        let end = desc_at
            .checked_add(descsz.next_multiple_of(4))
            .ok_or(bad("ELF note too large"))?;
        let name = seg
            .get(name_at..name_at + namesz)
            .ok_or(bad("ELF note truncated"))?;
        let desc = seg
            .get(desc_at..desc_at + descsz)
            .ok_or(bad("ELF note truncated"))?;
        if name == b"Xen\0" && descsz == 8 {
            let v = u64_at(desc, 0)?;
            match ty {
                NOTE_ENTRY => notes.entry = Some(v),
                NOTE_HYPERCALL_PAGE => notes.hypercall_page = Some(v),
                NOTE_VIRT_BASE => notes.virt_base = Some(v),
                NOTE_PADDR_OFFSET => notes.paddr_offset = Some(v),
                _ => {}
            }
        }
        at = end;
    }
    Ok(())
}

/// Parses `image`: an x86_64 little-endian ELF64 executable with at most
/// [`MAX_SEGMENTS`] loadable segments inside the image.
pub fn parse(image: &[u8]) -> Result<Kernel<'_>, Error> {
    if image.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(bad("not an ELF image"));
    }
    if image.get(4..6) != Some([2u8, 1].as_slice()) {
        return Err(bad("not a little-endian ELF64 image"));
    }
    if u16_at(image, 18)? != EM_X86_64 {
        return Err(bad("not an x86_64 image"));
    }
    let e_entry = u64_at(image, 24)?;
    let phoff = usize_of(u64_at(image, 32)?)?;
    let phentsize = usize::from(u16_at(image, 54)?);
    let phnum = usize::from(u16_at(image, 56)?);
    if phentsize < PHDR_SIZE {
        return Err(bad("ELF program headers too small"));
    }
    let mut notes = Notes::default();
    let mut loads = [None; MAX_SEGMENTS];
    let mut n = 0;
    for i in 0..phnum {
        let ph = phoff
            .checked_add(
                i.checked_mul(phentsize)
                    .ok_or(bad("ELF header table too large"))?,
            )
            .ok_or(bad("ELF header table too large"))?;
        let ty = u32_at(image, ph)?;
        let offset = usize_of(u64_at(image, ph + 8)?)?;
        let paddr = u64_at(image, ph + 24)?;
        let filesz = usize_of(u64_at(image, ph + 32)?)?;
        let memsz = u64_at(image, ph + 40)?;
        let file = image
            .get(
                offset
                    ..offset
                        .checked_add(filesz)
                        .ok_or(bad("ELF segment too large"))?,
            )
            .ok_or(bad("ELF segment outside the image"))?;
        match ty {
            PT_NOTE => read_notes(file, &mut notes)?,
            PT_LOAD if memsz > 0 => {
                if memsz < filesz as u64 {
                    return Err(bad("ELF segment's memsz below its filesz"));
                }
                let slot = loads.get_mut(n).ok_or(bad("too many ELF segments"))?;
                *slot = Some((paddr, file, memsz));
                n += 1;
            }
            _ => {}
        }
    }
    let virt_base = notes.virt_base.unwrap_or(0);
    let paddr_offset = notes.paddr_offset.unwrap_or(0);
    let to_va = |paddr: u64| {
        paddr
            .checked_sub(paddr_offset)
            .and_then(|p| p.checked_add(virt_base))
            .ok_or(bad("ELF segment below PADDR_OFFSET"))
    };
    let mut segments = [None; MAX_SEGMENTS];
    let (mut kstart, mut kend) = (u64::MAX, 0u64);
    for (slot, load) in segments.iter_mut().zip(loads) {
        let Some((paddr, file, memsz)) = load else {
            continue;
        };
        let va = to_va(paddr)?;
        let end = va.checked_add(memsz).ok_or(bad("ELF segment wraps"))?;
        kstart = kstart.min(va);
        kend = kend.max(end);
        *slot = Some(Segment { va, file, memsz });
    }
    if n == 0 {
        return Err(bad("no loadable ELF segment"));
    }
    if kstart < virt_base {
        return Err(bad("ELF segment below VIRT_BASE"));
    }
    let entry = notes.entry.unwrap_or(e_entry);
    if !(kstart..kend).contains(&entry) {
        return Err(bad("entry point outside the image"));
    }
    Ok(Kernel {
        segments,
        virt_base,
        entry,
        hypercall_page: notes.hypercall_page,
        kstart,
        kend,
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// A minimal image: one PT_NOTE with the four notes, one PT_LOAD.
    fn image(virt_base: u64, load_paddr: u64, entry: u64) -> Vec<u8> {
        let mut notes = Vec::new();
        for (ty, v) in [
            (3u32, virt_base),
            (4, 0),
            (1, entry),
            (2, virt_base + 0x1000),
        ] {
            notes.extend_from_slice(&4u32.to_le_bytes());
            notes.extend_from_slice(&8u32.to_le_bytes());
            notes.extend_from_slice(&ty.to_le_bytes());
            notes.extend_from_slice(b"Xen\0");
            notes.extend_from_slice(&v.to_le_bytes());
        }
        let phoff = 64u64;
        let notes_off = phoff + 2 * 56;
        let load_off = notes_off + notes.len() as u64;
        let code = [0x90u8; 0x20];
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[24..32].copy_from_slice(&entry.to_le_bytes());
        b[32..40].copy_from_slice(&phoff.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&2u16.to_le_bytes());
        let phdr = |ty: u32, off: u64, paddr: u64, filesz: u64, memsz: u64| {
            let mut p = vec![0u8; 56];
            p[..4].copy_from_slice(&ty.to_le_bytes());
            p[8..16].copy_from_slice(&off.to_le_bytes());
            p[24..32].copy_from_slice(&paddr.to_le_bytes());
            p[32..40].copy_from_slice(&filesz.to_le_bytes());
            p[40..48].copy_from_slice(&memsz.to_le_bytes());
            p
        };
        b.extend(phdr(4, notes_off, 0, notes.len() as u64, 0));
        b.extend(phdr(1, load_off, load_paddr, code.len() as u64, 0x3000));
        b.extend(notes);
        b.extend_from_slice(&code);
        b
    }

    use std::vec;

    #[test]
    fn reads_segments_and_notes() {
        let vb = 0xffff_ffff_8000_0000;
        let img = image(vb, 0, vb + 0x10);
        let k = parse(&img).unwrap();
        assert_eq!(
            (k.virt_base, k.entry, k.kstart, k.kend),
            (vb, vb + 0x10, vb, vb + 0x3000)
        );
        assert_eq!(k.hypercall_page, Some(vb + 0x1000));
        let s = k.segments[0].unwrap();
        assert_eq!((s.va, s.file.len(), s.memsz), (vb, 0x20, 0x3000));
        assert!(k.segments[1].is_none());
    }

    #[test]
    fn refuses_what_it_cannot_load() {
        let vb = 0xffff_ffff_8000_0000;
        let good = image(vb, 0, vb);
        assert_eq!(parse(&good[..3]).unwrap_err().what, "not an ELF image");
        let mut b = good.clone();
        b[4] = 1;
        assert!(parse(&b).is_err());
        let mut b = good.clone();
        b[18] = 3;
        assert_eq!(parse(&b).unwrap_err().what, "not an x86_64 image");
        // The segment's bytes past the end of the image.
        assert_eq!(
            parse(&good[..good.len() - 1]).unwrap_err().what,
            "ELF segment outside the image"
        );
        assert_eq!(
            parse(&image(vb, 0, vb + 0x5000)).unwrap_err().what,
            "entry point outside the image"
        );
        // Every truncation is an error, never a panic.
        for len in 0..good.len() {
            let _ = parse(&good[..len]);
        }
    }
}
