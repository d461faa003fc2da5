//! The PV kernel image parser: validates an ELF64 x86_64 executable, reads its
//! Xen ELF notes and computes the kernel's addresses exactly as Xen 4.17's
//! libelf and PV dom0 builder do, so an image boots (or is refused) alike on
//! Xen and on hv.
//!
//! The input is hostile. Every offset, size and address from the image is
//! checked before use, all arithmetic on them is checked, and the result,
//! [`PvKernel`], only exists if every check passed: its segments lie inside
//! the image, do not overlap, and land inside `[virt_kstart, virt_kend)`,
//! which spans less than [`MAX_IMAGE_SPAN`].
//!
//! What Xen does, and so what this does (Xen 4.17,
//! `xen/common/libelf/libelf-dominfo.c`, `libelf-loader.c`,
//! `xen/arch/x86/pv/dom0_build.c`):
//!
//! - The loaded range is computed from the *physical* addresses of the
//!   loadable segments (`PT_LOAD` with any of R/W/X set):
//!   `[min p_paddr, max p_paddr + p_memsz)`, moved by
//!   `virt_offset = virt_base - paddr_offset`. `p_vaddr` is never used: each
//!   segment is copied to `p_paddr + virt_offset`.
//! - `VIRT_BASE` defaults to 0 and `PADDR_OFFSET` to 0 (notes, not the
//!   legacy section, are in use); `PADDR_OFFSET` without `VIRT_BASE` is an
//!   error. `ENTRY` defaults to `e_entry`.
//! - Checked in Xen's order: the loader/guest-OS check, the Xen-version check,
//!   `PADDR_OFFSET` without `VIRT_BASE`, the bounds check
//!   (`virt_base <= virt_kstart <= virt_entry <= virt_kend`, note the
//!   inclusive end), `INIT_P2M` inside the image, then the dom0 builder's
//!   `SUPPORTED_FEATURES`/`XENFEAT_dom0` check.
//! - `PHYS32_ENTRY` does not exempt a PV kernel from the loader check: since
//!   Xen 4.16 that exemption applies to PVH only (the error text still
//!   mentions it).
//!
//! Stricter than Xen, on purpose: only `ET_EXEC`, `EM_X86_64`, ELFCLASS64,
//! little-endian images with standard header sizes; segments must lie in the
//! file, have `filesz <= memsz`, not overlap, and span less than 1 GiB; at most
//! [`MAX_LOAD_SEGMENTS`] of them; malformed notes are refused rather than
//! skipped; the hypercall page must lie inside the loaded image (Xen only
//! requires it inside the whole initial mapping).
//!
//! Not supported: the legacy `__xen_guest` section (pre-3.0 kernels; notes
//! are required — an image without Xen notes is refused as Xen refuses one
//! with neither), `BSD_SYMTAB "yes"` (NetBSD's symbol table load, refused
//! with [`ElfError::BsdSymtabUnsupported`]) and 32-bit (compat) kernels.
//! A bzImage or compressed kernel is unpacked first (`crate::bzimage`).

mod notes;
#[cfg(test)]
pub(crate) mod tests;

pub use notes::{note_type, xenfeat, PaeMode, XenNotes, MAX_TOTAL_NOTES};

/// Most loadable segments accepted (kernels have a handful).
pub const MAX_LOAD_SEGMENTS: usize = 16;
/// Most program headers accepted.
pub const MAX_PROGRAM_HEADERS: u16 = 128;
/// The loaded range `[min paddr, max paddr + memsz)` must be smaller than this.
pub const MAX_IMAGE_SPAN: u64 = 1 << 30;

/// The XENFEAT bits that Xen 4.17's PV dom0 builder lets a kernel require:
/// every bit except `supervisor_mode_kernel` (it panics "Dom0 requires
/// supervisor-mode execution" for that one and checks no other). Linux
/// requires `writable_page_tables`, which Xen does not advertise, so a
/// policy that only allowed advertised features would refuse Linux.
pub const XEN_DOM0_REQUIRABLE_FEATURES: u32 = !(1 << xenfeat::SUPERVISOR_MODE_KERNEL);

const ELF_HEADER_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const SHDR_SIZE: usize = 64;
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u8 = 1;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PF_RWX: u32 = 0b111;
const SHT_NOTE: u32 = 7;

/// Why an image was refused. Where Xen prints a message for the same
/// refusal, `Display` gives Xen's wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than an ELF header.
    Truncated,
    /// No `\x7fELF` magic.
    NotElf,
    /// ELFCLASS32: a 32-bit (compat) kernel.
    Not64Bit,
    /// Neither class 32 nor 64.
    BadClass,
    /// Big-endian (or unknown) data encoding.
    NotLittleEndian,
    /// `EI_VERSION`/`e_version` is not 1.
    BadVersion,
    /// `e_type` is not `ET_EXEC`.
    NotExecutable,
    /// `e_machine` is not `EM_X86_64`.
    WrongMachine,
    /// `e_phentsize`/`e_shentsize` is not the ELF64 size.
    BadHeaderEntrySize,
    /// More than [`MAX_PROGRAM_HEADERS`] program headers.
    TooManyProgramHeaders,
    /// The program header table runs past the end of the image.
    ProgramHeadersOutOfBounds,
    /// The section header table runs past the end of the image.
    SectionHeadersOutOfBounds,
    /// A segment's file bytes run past the end of the image.
    SegmentOutOfFile { index: u16 },
    /// A segment's `p_filesz` exceeds its `p_memsz`.
    SegmentFileSizeExceedsMemSize { index: u16 },
    /// `p_paddr + p_memsz` overflows.
    SegmentAddressOverflow { index: u16 },
    /// Two loadable segments overlap in physical address.
    SegmentsOverlap { first: u16, second: u16 },
    /// More than [`MAX_LOAD_SEGMENTS`] loadable segments.
    TooManyLoadSegments,
    /// No loadable segment at all.
    NoLoadableSegments,
    /// The loaded range spans [`MAX_IMAGE_SPAN`] or more.
    ImageTooLarge,
    /// A PT_NOTE segment or SHT_NOTE section lies outside the image.
    NoteOutOfBounds,
    /// A note's name or descriptor runs past its region.
    MalformedNote,
    /// More than [`MAX_TOTAL_NOTES`] notes.
    TooManyNotes,
    /// No `"Xen"` note anywhere.
    NotXenImage,
    /// `FEATURES` requires (`!`) a feature name Xen does not know.
    UnknownRequiredFeature,
    /// `BSD_SYMTAB "yes"`: loading the symbol table is not implemented.
    BsdSymtabUnsupported,
    /// Neither `LOADER "generic"` nor `GUEST_OS "linux..."`.
    WrongLoader,
    /// `XEN_VERSION` missing or not starting with `xen-3.0`.
    WrongXenVersion,
    /// `PADDR_OFFSET` given without `VIRT_BASE`.
    PaddrOffsetWithoutVirtBase,
    /// Entry outside the loaded image, or `VIRT_BASE` above it.
    OutOfBounds,
    /// `INIT_P2M` points inside the loaded image.
    P2mBaseInImage,
    /// The hypercall page is not inside the loaded image.
    HypercallPageOutOfImage,
    /// Building the initial domain, but `SUPPORTED_FEATURES` lacks `dom0`.
    NoDom0Support,
    /// The kernel requires a feature the policy does not allow.
    RequiredFeatureUnsupported { bit: u32 },
}

impl core::fmt::Display for ElfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => f.write_str("image shorter than an ELF header"),
            Self::NotElf => f.write_str("not an ELF binary"),
            Self::Not64Bit => f.write_str("not a 64-bit PV kernel (32-bit ELF)"),
            Self::BadClass => f.write_str("unknown ELF class"),
            Self::NotLittleEndian => f.write_str("not a little-endian ELF"),
            Self::BadVersion => f.write_str("unknown ELF version"),
            Self::NotExecutable => f.write_str("not an ELF executable (ET_EXEC)"),
            Self::WrongMachine => f.write_str("Mismatch between Xen and DOM0 kernel (not x86_64)"),
            Self::BadHeaderEntrySize => f.write_str("bad ELF program/section header entry size"),
            Self::TooManyProgramHeaders => f.write_str("too many ELF program headers"),
            Self::ProgramHeadersOutOfBounds => {
                f.write_str("phdr overflow: program headers past end of image")
            }
            Self::SectionHeadersOutOfBounds => {
                f.write_str("shdr overflow: section headers past end of image")
            }
            Self::SegmentOutOfFile { index } => write!(f, "segment {index} runs past end of image"),
            Self::SegmentFileSizeExceedsMemSize { index } => {
                write!(f, "segment {index} has filesz > memsz")
            }
            Self::SegmentAddressOverflow { index } => {
                write!(f, "segment {index} address range overflows")
            }
            Self::SegmentsOverlap { first, second } => {
                write!(f, "segments {first} and {second} overlap")
            }
            Self::TooManyLoadSegments => f.write_str("too many loadable segments"),
            Self::NoLoadableSegments => f.write_str("no loadable segment"),
            Self::ImageTooLarge => f.write_str("loaded image spans 1 GiB or more"),
            Self::NoteOutOfBounds => f.write_str("ELF note region outside the image"),
            Self::MalformedNote => f.write_str("malformed ELF note"),
            Self::TooManyNotes => f.write_str("too many ELF notes"),
            Self::NotXenImage => {
                f.write_str("Not a Xen-ELF image: No ELF notes or '__xen_guest' section found")
            }
            Self::UnknownRequiredFeature => f.write_str("FEATURES requires an unknown feature"),
            Self::BsdSymtabUnsupported => f.write_str("BSD_SYMTAB is not supported"),
            Self::WrongLoader => f.write_str(
                "Will only load images built for the generic loader or Linux images \
                 or with PHYS32_ENTRY set",
            ),
            Self::WrongXenVersion => f.write_str("Xen will only load images built for Xen v3.0"),
            Self::PaddrOffsetWithoutVirtBase => {
                f.write_str("ELF_PADDR_OFFSET set, VIRT_BASE unset")
            }
            Self::OutOfBounds => f.write_str("ELF start or entries are out of bounds"),
            Self::P2mBaseInImage => f.write_str("P->M table base is out of bounds"),
            Self::HypercallPageOutOfImage => {
                f.write_str("Invalid HYPERCALL_PAGE field in ELF notes")
            }
            Self::NoDom0Support => f.write_str("Kernel does not support Dom0 operation"),
            Self::RequiredFeatureUnsupported { bit } => {
                write!(f, "kernel requires unsupported feature (XENFEAT bit {bit})")
            }
        }
    }
}

/// What the caller builds, which changes what is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Building the initial domain (dom0): a `SUPPORTED_FEATURES` note must
    /// then include `XENFEAT_dom0`.
    pub initial_domain: bool,
    /// XENFEAT bits a kernel may mark required (`!name` in `FEATURES`); see
    /// [`XEN_DOM0_REQUIRABLE_FEATURES`].
    pub requirable_features: u32,
}

impl Policy {
    /// What Xen 4.17 does when building a PV dom0.
    pub const XEN_DOM0: Self = Self {
        initial_domain: true,
        requirable_features: XEN_DOM0_REQUIRABLE_FEATURES,
    };
}

/// A loadable segment, already validated against the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LoadSegment {
    index: u16,
    offset: usize,
    filesz: usize,
    paddr: u64,
    memsz: u64,
}

/// One segment to copy: `data` goes to `dest`, then `memsz - data.len()`
/// zero bytes follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    pub data: &'a [u8],
    /// Guest virtual address (`p_paddr + virt_offset`).
    pub dest: u64,
    pub memsz: u64,
}

/// A validated PV kernel image and the addresses Xen would derive from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvKernel<'a> {
    image: &'a [u8],
    segments: heapless::Vec<LoadSegment, MAX_LOAD_SEGMENTS>,
    /// The raw note values.
    pub notes: XenNotes<'a>,
    /// `VIRT_BASE`, or 0.
    pub virt_base: u64,
    /// `PADDR_OFFSET`, or 0.
    pub paddr_offset: u64,
    /// `virt_base - paddr_offset` (modulo 2^64).
    pub virt_offset: u64,
    /// Lowest `p_paddr` of the loadable segments.
    pub paddr_start: u64,
    /// Highest `p_paddr + p_memsz`.
    pub paddr_end: u64,
    /// `paddr_start + virt_offset`.
    pub virt_kstart: u64,
    /// `paddr_end + virt_offset`.
    pub virt_kend: u64,
    /// `ENTRY`, or `e_entry`.
    pub virt_entry: u64,
    /// `HYPERCALL_PAGE`, if given.
    pub virt_hypercall: Option<u64>,
    /// `INIT_P2M`, if given.
    pub p2m_base: Option<u64>,
    /// `MOD_START_PFN` non-zero: the module is not mapped, start_info gives
    /// its pfn.
    pub unmapped_initrd: bool,
    pub pae: PaeMode,
    /// XENFEAT bits the kernel supports (see [`XenNotes::features_supported`]).
    pub features_supported: u32,
    /// XENFEAT bits the kernel requires.
    pub features_required: u32,
}

impl<'a> PvKernel<'a> {
    /// The loadable segments, in program-header order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + '_ {
        let image = self.image;
        self.segments.iter().map(move |s| Segment {
            // Both facts were checked by `parse`.
            data: s
                .offset
                .checked_add(s.filesz)
                .and_then(|end| image.get(s.offset..end))
                .unwrap_or(&[]),
            dest: s.paddr.wrapping_add(self.virt_offset),
            memsz: s.memsz,
        })
    }

    /// `start_info.magic`: `"xen-3.0-x86_64"`, with a `p` when `PAE_MODE` is
    /// set (Xen 4.17 keeps the flag on 64-bit kernels).
    pub fn start_info_magic(&self) -> &'static str {
        match self.pae {
            PaeMode::No => "xen-3.0-x86_64",
            PaeMode::ExtendedCr3 | PaeMode::Bimodal => "xen-3.0-x86_64p",
        }
    }

    /// The numbers the dom0 layout needs.
    pub fn layout_params(&self) -> crate::layout::KernelParams {
        crate::layout::KernelParams {
            virt_base: self.virt_base,
            virt_kstart: self.virt_kstart,
            virt_kend: self.virt_kend,
            unmapped_initrd: self.unmapped_initrd,
            p2m_base: self.p2m_base,
            virt_hypercall: self.virt_hypercall,
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let raw: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_le_bytes(raw))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let raw: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(raw))
}

/// The bytes `[offset, offset + size)` of `image`, if they are all inside it.
fn region(image: &[u8], offset: u64, size: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    image.get(start..end)
}

/// A table of `count` entries of `entsize` bytes at `offset`, bounds-checked.
fn table(image: &[u8], offset: u64, entsize: usize, count: u16) -> Option<&[u8]> {
    let size = u64::try_from(entsize.checked_mul(usize::from(count))?).ok()?;
    region(image, offset, size)
}

struct Phdr {
    p_type: u32,
    p_flags: u32,
    p_offset: u64,
    p_paddr: u64,
    p_filesz: u64,
    p_memsz: u64,
}

fn phdr(entry: &[u8]) -> Option<Phdr> {
    Some(Phdr {
        p_type: u32_at(entry, 0)?,
        p_flags: u32_at(entry, 4)?,
        p_offset: u64_at(entry, 8)?,
        p_paddr: u64_at(entry, 24)?,
        p_filesz: u64_at(entry, 32)?,
        p_memsz: u64_at(entry, 40)?,
    })
}

/// The validated ELF header fields we use.
struct Header {
    entry: u64,
    phdrs: usize,
    phnum: u16,
    shdrs: Option<usize>,
    shnum: u16,
}

fn header(image: &[u8]) -> Result<Header, ElfError> {
    let ident = image.get(..ELF_HEADER_SIZE).ok_or_else(|| {
        // Say "not ELF" before "truncated" when even the magic is wrong.
        match image.get(..4) {
            Some(m) if m != b"\x7fELF" => ElfError::NotElf,
            _ => ElfError::Truncated,
        }
    })?;
    if ident.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(ElfError::NotElf);
    }
    match ident.get(4) {
        Some(&ELFCLASS64) => {}
        Some(&ELFCLASS32) => return Err(ElfError::Not64Bit),
        _ => return Err(ElfError::BadClass),
    }
    if ident.get(5) != Some(&ELFDATA2LSB) {
        return Err(ElfError::NotLittleEndian);
    }
    let trunc = ElfError::Truncated;
    if ident.get(6) != Some(&EV_CURRENT) || u32_at(ident, 20).ok_or(trunc)? != 1 {
        return Err(ElfError::BadVersion);
    }
    if u16_at(ident, 16).ok_or(trunc)? != ET_EXEC {
        return Err(ElfError::NotExecutable);
    }
    if u16_at(ident, 18).ok_or(trunc)? != EM_X86_64 {
        return Err(ElfError::WrongMachine);
    }
    let entry = u64_at(ident, 24).ok_or(trunc)?;
    let phoff = u64_at(ident, 32).ok_or(trunc)?;
    let shoff = u64_at(ident, 40).ok_or(trunc)?;
    let phentsize = u16_at(ident, 54).ok_or(trunc)?;
    let phnum = u16_at(ident, 56).ok_or(trunc)?;
    let shentsize = u16_at(ident, 58).ok_or(trunc)?;
    let shnum = u16_at(ident, 60).ok_or(trunc)?;

    if phnum > MAX_PROGRAM_HEADERS {
        return Err(ElfError::TooManyProgramHeaders);
    }
    if phnum > 0 && usize::from(phentsize) != PHDR_SIZE {
        return Err(ElfError::BadHeaderEntrySize);
    }
    if shnum > 0 && usize::from(shentsize) != SHDR_SIZE {
        return Err(ElfError::BadHeaderEntrySize);
    }
    table(image, phoff, PHDR_SIZE, phnum).ok_or(ElfError::ProgramHeadersOutOfBounds)?;
    // Xen's elf_init refuses a section header table past the end, used or not.
    let shdrs = if shnum > 0 {
        table(image, shoff, SHDR_SIZE, shnum).ok_or(ElfError::SectionHeadersOutOfBounds)?;
        Some(usize::try_from(shoff).map_err(|_| ElfError::SectionHeadersOutOfBounds)?)
    } else {
        None
    };
    Ok(Header {
        entry,
        phdrs: usize::try_from(phoff).map_err(|_| ElfError::ProgramHeadersOutOfBounds)?,
        phnum,
        shdrs,
        shnum,
    })
}

fn program_headers<'i>(image: &'i [u8], h: &Header) -> impl Iterator<Item = (u16, Phdr)> + 'i {
    let base = h.phdrs;
    (0..h.phnum).filter_map(move |i| {
        let at = base.checked_add(usize::from(i).checked_mul(PHDR_SIZE)?)?;
        Some((i, phdr(image.get(at..at.checked_add(PHDR_SIZE)?)?)?))
    })
}

fn load_segments(
    image: &[u8],
    h: &Header,
) -> Result<heapless::Vec<LoadSegment, MAX_LOAD_SEGMENTS>, ElfError> {
    let mut segs: heapless::Vec<LoadSegment, MAX_LOAD_SEGMENTS> = heapless::Vec::new();
    for (index, p) in program_headers(image, h) {
        if p.p_type != PT_LOAD || p.p_flags & PF_RWX == 0 {
            continue;
        }
        if p.p_filesz > p.p_memsz {
            return Err(ElfError::SegmentFileSizeExceedsMemSize { index });
        }
        region(image, p.p_offset, p.p_filesz).ok_or(ElfError::SegmentOutOfFile { index })?;
        p.p_paddr
            .checked_add(p.p_memsz)
            .ok_or(ElfError::SegmentAddressOverflow { index })?;
        let seg = LoadSegment {
            index,
            offset: usize::try_from(p.p_offset)
                .map_err(|_| ElfError::SegmentOutOfFile { index })?,
            filesz: usize::try_from(p.p_filesz)
                .map_err(|_| ElfError::SegmentOutOfFile { index })?,
            paddr: p.p_paddr,
            memsz: p.p_memsz,
        };
        segs.push(seg).map_err(|_| ElfError::TooManyLoadSegments)?;
    }
    if segs.is_empty() {
        return Err(ElfError::NoLoadableSegments);
    }
    for (i, a) in segs.iter().enumerate() {
        for b in segs.iter().skip(i.saturating_add(1)) {
            // Both ends were checked not to overflow above.
            let a_end = a.paddr.saturating_add(a.memsz);
            let b_end = b.paddr.saturating_add(b.memsz);
            if a.paddr < b_end && b.paddr < a_end {
                return Err(ElfError::SegmentsOverlap {
                    first: a.index,
                    second: b.index,
                });
            }
        }
    }
    Ok(segs)
}

/// Reads the `"Xen"` notes: from PT_NOTE segments with a non-zero offset
/// (some binutils leave it 0), and only if none of those held a Xen note,
/// from SHT_NOTE sections (skipping section 0), as Xen does.
fn read_notes<'a>(image: &'a [u8], h: &Header) -> Result<XenNotes<'a>, ElfError> {
    let mut notes = XenNotes::default();
    let mut walked = 0u32;
    for (_, p) in program_headers(image, h) {
        if p.p_type != PT_NOTE || p.p_offset == 0 {
            continue;
        }
        let bytes = region(image, p.p_offset, p.p_filesz).ok_or(ElfError::NoteOutOfBounds)?;
        notes.scan(bytes, &mut walked)?;
    }
    if notes.count == 0 {
        if let Some(base) = h.shdrs {
            for i in 1..h.shnum {
                let at = usize::from(i)
                    .checked_mul(SHDR_SIZE)
                    .and_then(|o| o.checked_add(base))
                    .ok_or(ElfError::SectionHeadersOutOfBounds)?;
                let sh = image
                    .get(at..at.saturating_add(SHDR_SIZE))
                    .ok_or(ElfError::SectionHeadersOutOfBounds)?;
                if u32_at(sh, 4) != Some(SHT_NOTE) {
                    continue;
                }
                let off = u64_at(sh, 24).ok_or(ElfError::SectionHeadersOutOfBounds)?;
                let size = u64_at(sh, 32).ok_or(ElfError::SectionHeadersOutOfBounds)?;
                let bytes = region(image, off, size).ok_or(ElfError::NoteOutOfBounds)?;
                notes.scan(bytes, &mut walked)?;
            }
        }
    }
    if notes.count == 0 {
        return Err(ElfError::NotXenImage);
    }
    Ok(notes)
}

/// Parses and validates a PV kernel image under `policy`.
pub fn parse(image: &[u8], policy: Policy) -> Result<PvKernel<'_>, ElfError> {
    let h = header(image)?;
    let segments = load_segments(image, &h)?;
    let notes = read_notes(image, &h)?;

    // elf_xen_note_check: loader or guest OS first, then the Xen version.
    let generic = notes.loader.is_some_and(|l| l.starts_with(b"generic"));
    let linux = notes.guest_os.is_some_and(|g| g.starts_with(b"linux"));
    if !generic && !linux {
        return Err(ElfError::WrongLoader);
    }
    if !notes.xen_version.is_some_and(|v| v.starts_with(b"xen-3.0")) {
        return Err(ElfError::WrongXenVersion);
    }
    if notes.bsd_symtab.is_some_and(|s| s == b"yes") {
        return Err(ElfError::BsdSymtabUnsupported);
    }

    // elf_xen_addr_calc_check.
    if notes.paddr_offset.is_some() && notes.virt_base.is_none() {
        return Err(ElfError::PaddrOffsetWithoutVirtBase);
    }
    let virt_base = notes.virt_base.unwrap_or(0);
    let paddr_offset = notes.paddr_offset.unwrap_or(0);
    let virt_offset = virt_base.wrapping_sub(paddr_offset);
    let paddr_start = segments.iter().map(|s| s.paddr).min().unwrap_or(0);
    let paddr_end = segments
        .iter()
        .map(|s| s.paddr.saturating_add(s.memsz))
        .max()
        .unwrap_or(0);
    let span = paddr_end
        .checked_sub(paddr_start)
        .ok_or(ElfError::OutOfBounds)?;
    if span >= MAX_IMAGE_SPAN {
        return Err(ElfError::ImageTooLarge);
    }
    let virt_kstart = paddr_start.wrapping_add(virt_offset);
    // Xen's sums wrap; a range that wraps fails its `kstart > kend` test.
    let virt_kend = virt_kstart.checked_add(span).ok_or(ElfError::OutOfBounds)?;
    let virt_entry = notes.entry.unwrap_or(h.entry);
    if virt_entry < virt_kstart || virt_entry > virt_kend || virt_base > virt_kstart {
        return Err(ElfError::OutOfBounds);
    }
    if let Some(p2m) = notes.init_p2m {
        if (virt_kstart..virt_kend).contains(&p2m) {
            return Err(ElfError::P2mBaseInImage);
        }
    }
    if let Some(hc) = notes.hypercall_page {
        if !(virt_kstart..virt_kend).contains(&hc) {
            return Err(ElfError::HypercallPageOutOfImage);
        }
    }

    // dom0_construct_pv.
    if policy.initial_domain
        && notes.supported_features.is_some()
        && notes.features_supported & (1 << xenfeat::DOM0) == 0
    {
        return Err(ElfError::NoDom0Support);
    }
    let refused = notes.features_required & !policy.requirable_features;
    if refused != 0 {
        return Err(ElfError::RequiredFeatureUnsupported {
            bit: refused.trailing_zeros(),
        });
    }

    Ok(PvKernel {
        image,
        segments,
        virt_base,
        paddr_offset,
        virt_offset,
        paddr_start,
        paddr_end,
        virt_kstart,
        virt_kend,
        virt_entry,
        virt_hypercall: notes.hypercall_page,
        p2m_base: notes.init_p2m,
        unmapped_initrd: notes.mod_start_pfn.is_some_and(|v| v != 0),
        pae: notes.pae,
        features_supported: notes.features_supported,
        features_required: notes.features_required,
        notes,
    })
}
