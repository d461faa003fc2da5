//! Xen ELF notes: walking a note region and folding the `"Xen"` notes into
//! [`XenNotes`], the raw note values before any of libelf's defaults or checks.
//!
//! Invariants and choices (facts from Xen 4.17's
//! `xen/common/libelf/libelf-dominfo.c` and `libelf-tools.c`):
//!
//! - Notes are laid out as `namesz, descsz, type` (three `u32`), then the name
//!   and the descriptor, each padded to 4 bytes. A note whose name or
//!   descriptor runs past its region is rejected ([`ElfError::MalformedNote`]);
//!   Xen would read on into the rest of the image, we refuse instead.
//! - Only notes named `"Xen"` count; others (GNU build-id, properties) are
//!   skipped. Unknown `"Xen"` note types are ignored, as in Xen.
//! - Duplicates: like Xen, a later note of the same type replaces the earlier
//!   value, except `FEATURES` and `SUPPORTED_FEATURES`, whose bits accumulate
//!   (Xen ORs every occurrence into the same bitmaps).
//! - Numeric descriptors of 1, 2, 4 or 8 bytes are read little-endian; any
//!   other size reads as 0, exactly as Xen's `elf_note_numeric` does (Linux
//!   ships a 16-byte `L1_MFN_VALID`, so refusing odd sizes would refuse Linux).
//!   `SUPPORTED_FEATURES` is an array of `u32`; its first element is used
//!   (Xen has one feature submap) and a size that is not a multiple of 4 reads
//!   as 0.
//! - String descriptors end at the first NUL inside the descriptor or at its
//!   end (Linux's `FEATURES` is `.ascii`, not NUL-terminated). They are kept
//!   as raw bytes: Xen does not require UTF-8. Xen copies LOADER, GUEST_OS,
//!   GUEST_VERSION and XEN_VERSION into 16-byte buffers; its checks only look
//!   at the first 7 bytes, so keeping the whole string changes no decision.
//! - At most [`MAX_TOTAL_NOTES`] notes of any name are walked in total, Xen's
//!   own limit.

use super::ElfError;

/// Xen's `ELF_MAX_TOTAL_NOTE_COUNT`.
pub const MAX_TOTAL_NOTES: u32 = 65536;

/// `XEN_ELFNOTE_*` type numbers (`xen/include/public/elfnote.h`).
pub mod note_type {
    pub const ENTRY: u32 = 1;
    pub const HYPERCALL_PAGE: u32 = 2;
    pub const VIRT_BASE: u32 = 3;
    pub const PADDR_OFFSET: u32 = 4;
    pub const XEN_VERSION: u32 = 5;
    pub const GUEST_OS: u32 = 6;
    pub const GUEST_VERSION: u32 = 7;
    pub const LOADER: u32 = 8;
    pub const PAE_MODE: u32 = 9;
    pub const FEATURES: u32 = 10;
    pub const BSD_SYMTAB: u32 = 11;
    pub const HV_START_LOW: u32 = 12;
    pub const L1_MFN_VALID: u32 = 13;
    pub const SUSPEND_CANCEL: u32 = 14;
    pub const INIT_P2M: u32 = 15;
    pub const MOD_START_PFN: u32 = 16;
    pub const SUPPORTED_FEATURES: u32 = 17;
    pub const PHYS32_ENTRY: u32 = 18;
}

/// `XENFEAT_*` bit numbers (`xen/include/public/features.h`) that the
/// `FEATURES` note can name.
pub mod xenfeat {
    pub const WRITABLE_PAGE_TABLES: u32 = 0;
    pub const WRITABLE_DESCRIPTOR_TABLES: u32 = 1;
    pub const AUTO_TRANSLATED_PHYSMAP: u32 = 2;
    pub const SUPERVISOR_MODE_KERNEL: u32 = 3;
    pub const PAE_PGDIR_ABOVE_4GB: u32 = 4;
    pub const HVM_CALLBACK_VECTOR: u32 = 8;
    pub const DOM0: u32 = 11;
}

/// The names libelf recognises in a `FEATURES` string, and their bits. Xen's
/// table has exactly these seven; any other name is ignored unless it is
/// marked required (`!`), which makes the image unloadable.
const FEATURE_NAMES: [(&[u8], u32); 7] = [
    (b"writable_page_tables", xenfeat::WRITABLE_PAGE_TABLES),
    (
        b"writable_descriptor_tables",
        xenfeat::WRITABLE_DESCRIPTOR_TABLES,
    ),
    (b"auto_translated_physmap", xenfeat::AUTO_TRANSLATED_PHYSMAP),
    (b"supervisor_mode_kernel", xenfeat::SUPERVISOR_MODE_KERNEL),
    (b"pae_pgdir_above_4gb", xenfeat::PAE_PGDIR_ABOVE_4GB),
    (b"hvm_callback_vector", xenfeat::HVM_CALLBACK_VECTOR),
    (b"dom0", xenfeat::DOM0),
];

/// `PAE_MODE`, as libelf reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PaeMode {
    /// Absent, or any other string.
    #[default]
    No,
    /// `"yes"` (XEN_PAE_EXTCR3).
    ExtendedCr3,
    /// Contains `"bimodal"` (XEN_PAE_BIMODAL).
    Bimodal,
}

/// The raw values of the `"Xen"` notes found in an image (last one wins,
/// features accumulate). `None` means "no such note".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenNotes<'a> {
    /// How many `"Xen"` notes were found (of any type, known or not).
    pub count: u32,
    pub guest_os: Option<&'a [u8]>,
    pub guest_version: Option<&'a [u8]>,
    pub xen_version: Option<&'a [u8]>,
    pub loader: Option<&'a [u8]>,
    pub pae_mode: Option<&'a [u8]>,
    /// libelf's reading of `PAE_MODE`: each note can only raise it (`"yes"`
    /// or `"...bimodal..."`); a later `"no"` does not clear it.
    pub pae: PaeMode,
    /// The last `FEATURES` string (its bits are in `features_*`).
    pub features: Option<&'a [u8]>,
    pub bsd_symtab: Option<&'a [u8]>,
    pub entry: Option<u64>,
    pub hypercall_page: Option<u64>,
    pub virt_base: Option<u64>,
    pub paddr_offset: Option<u64>,
    pub hv_start_low: Option<u64>,
    /// Xen reads it as a number (0 unless the descriptor is 1/2/4/8 bytes).
    pub l1_mfn_valid: Option<u64>,
    /// The raw `L1_MFN_VALID` descriptor (Linux gives a mask/value pair).
    pub l1_mfn_valid_raw: Option<&'a [u8]>,
    pub suspend_cancel: Option<u64>,
    pub init_p2m: Option<u64>,
    pub mod_start_pfn: Option<u64>,
    pub phys32_entry: Option<u64>,
    /// The bitmap of the last `SUPPORTED_FEATURES` note, if any.
    pub supported_features: Option<u32>,
    /// XENFEAT bits the kernel supports: every `SUPPORTED_FEATURES` bitmap
    /// ORed with every feature named in `FEATURES` (required or not).
    pub features_supported: u32,
    /// XENFEAT bits the kernel requires (`!name` in `FEATURES`).
    pub features_required: u32,
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let raw: [u8; 4] = bytes.get(at..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// The bytes of a string descriptor: up to its first NUL, or all of it.
fn note_str(desc: &[u8]) -> &[u8] {
    match desc.iter().position(|&b| b == 0) {
        Some(nul) => desc.get(..nul).unwrap_or(desc),
        None => desc,
    }
}

/// Xen's `elf_note_numeric`: little-endian for 1/2/4/8 bytes, else 0.
fn note_numeric(desc: &[u8]) -> u64 {
    match desc.len() {
        1 | 2 | 4 | 8 => desc
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        _ => 0,
    }
}

/// Xen's `elf_note_numeric_array(note, 4, 0)`: the first `u32`, or 0 when
/// the size is not a whole number of `u32`s.
fn note_first_u32(desc: &[u8]) -> u32 {
    if !desc.len().is_multiple_of(4) {
        return 0;
    }
    read_u32(desc, 0).unwrap_or(0)
}

/// Folds one `FEATURES` string into `supported`/`required`, as libelf does.
fn parse_features(s: &[u8], supported: &mut u32, required: &mut u32) -> Result<(), ElfError> {
    for token in s.split(|&b| b == b'|') {
        let (is_required, name) = match token.split_first() {
            Some((b'!', rest)) => (true, rest),
            _ => (false, token),
        };
        match FEATURE_NAMES.iter().find(|(n, _)| *n == name) {
            Some(&(_, bit)) => {
                *supported |= 1 << bit;
                if is_required {
                    *required |= 1 << bit;
                }
            }
            None if is_required => return Err(ElfError::UnknownRequiredFeature),
            None => {}
        }
    }
    Ok(())
}

impl<'a> XenNotes<'a> {
    fn apply(&mut self, ntype: u32, desc: &'a [u8]) -> Result<(), ElfError> {
        self.count = self.count.saturating_add(1);
        let num = note_numeric(desc);
        match ntype {
            note_type::ENTRY => self.entry = Some(num),
            note_type::HYPERCALL_PAGE => self.hypercall_page = Some(num),
            note_type::VIRT_BASE => self.virt_base = Some(num),
            note_type::PADDR_OFFSET => self.paddr_offset = Some(num),
            note_type::XEN_VERSION => self.xen_version = Some(note_str(desc)),
            note_type::GUEST_OS => self.guest_os = Some(note_str(desc)),
            note_type::GUEST_VERSION => self.guest_version = Some(note_str(desc)),
            note_type::LOADER => self.loader = Some(note_str(desc)),
            note_type::PAE_MODE => {
                let s = note_str(desc);
                self.pae_mode = Some(s);
                if s == b"yes" {
                    self.pae = PaeMode::ExtendedCr3;
                }
                if s.windows(7).any(|w| w == b"bimodal") {
                    self.pae = PaeMode::Bimodal;
                }
            }
            note_type::FEATURES => {
                let s = note_str(desc);
                self.features = Some(s);
                parse_features(s, &mut self.features_supported, &mut self.features_required)?;
            }
            note_type::BSD_SYMTAB => self.bsd_symtab = Some(note_str(desc)),
            note_type::HV_START_LOW => self.hv_start_low = Some(num),
            note_type::L1_MFN_VALID => {
                self.l1_mfn_valid = Some(num);
                self.l1_mfn_valid_raw = Some(desc);
            }
            note_type::SUSPEND_CANCEL => self.suspend_cancel = Some(num),
            note_type::INIT_P2M => self.init_p2m = Some(num),
            note_type::MOD_START_PFN => self.mod_start_pfn = Some(num),
            note_type::SUPPORTED_FEATURES => {
                let bits = note_first_u32(desc);
                self.supported_features = Some(bits);
                self.features_supported |= bits;
            }
            note_type::PHYS32_ENTRY => self.phys32_entry = Some(num),
            _ => {}
        }
        Ok(())
    }

    /// Walks the notes in `region` (a PT_NOTE segment's or SHT_NOTE
    /// section's bytes), folding the `"Xen"` ones in. `walked` counts every
    /// note across regions, against [`MAX_TOTAL_NOTES`].
    pub(super) fn scan(&mut self, region: &'a [u8], walked: &mut u32) -> Result<(), ElfError> {
        let mut pos = 0usize;
        while pos < region.len() {
            let rest = region.get(pos..).unwrap_or(&[]);
            if rest.len() < 12 {
                // Alignment padding at the end of a region is not a note.
                if rest.iter().all(|&b| b == 0) {
                    break;
                }
                return Err(ElfError::MalformedNote);
            }
            if *walked >= MAX_TOTAL_NOTES {
                return Err(ElfError::TooManyNotes);
            }
            *walked = walked.saturating_add(1);
            let bad = ElfError::MalformedNote;
            let namesz = usize::try_from(read_u32(rest, 0).ok_or(bad)?).map_err(|_| bad)?;
            let descsz = usize::try_from(read_u32(rest, 4).ok_or(bad)?).map_err(|_| bad)?;
            let ntype = read_u32(rest, 8).ok_or(bad)?;
            let name_end = 12usize.checked_add(namesz).ok_or(bad)?;
            let name = rest.get(12..name_end).ok_or(bad)?;
            let desc_start = 12usize.checked_add(align4(namesz).ok_or(bad)?).ok_or(bad)?;
            let desc_end = desc_start.checked_add(descsz).ok_or(bad)?;
            let desc = rest.get(desc_start..desc_end).ok_or(bad)?;
            // The last note's descriptor padding may be missing: stop there.
            let next = desc_start
                .checked_add(align4(descsz).ok_or(bad)?)
                .ok_or(bad)?;
            pos = pos.saturating_add(next);

            if note_str(name) == b"Xen" {
                self.apply(ntype, desc)?;
            }
        }
        Ok(())
    }
}
