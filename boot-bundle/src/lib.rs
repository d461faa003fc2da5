//! The boot bundle: several images packed into the one module QEMU's PVH
//! loader passes to `hv`. Defined once, here: `hv` parses it ([`parse`]),
//! `cargo xtask` writes it ([`build`], feature `alloc`).
//!
//! Format (little-endian, offsets from the start of the bundle):
//!
//! ```text
//! 0:  magic    b"HVBUNDL1"
//! 8:  count    u32, 1..=16
//! 12: reserved u32, 0
//! 16: count entries of 32 bytes: offset u64, len u64, cmdline_offset u64, cmdline_len u64
//! then data
//! ```
//!
//! Entry 0 is the boot domain's kernel ELF and its command line; entry 1, if
//! present, that domain's module (initrd). A command line is UTF-8 without
//! NUL, at most [`MAX_CMDLINE_LEN`] bytes (start_info's `cmd_line` is 1024
//! bytes with its terminator).
//!
//! Invariants of a parsed [`Bundle`]: every non-empty data or command-line
//! range lies inside the bundle after the header and entry table (empty
//! ranges are not checked: they name no bytes), and every command line is
//! valid. Ranges may overlap each other (two entries may share bytes).
//! Anything not starting with the magic is [`BundleError::NotABundle`], so
//! the caller can treat the module as a bare ELF.
//!
//! The crate is `no_std` and allocation-free unless the `alloc` feature
//! (the writer) is on, so the kernel and the host tool share it.
#![no_std]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

#[cfg(any(test, feature = "alloc"))]
mod write;
#[cfg(any(test, feature = "alloc"))]
pub use write::{build, BuildError, Image, IMAGE_ALIGN};

/// The bundle magic.
pub const MAGIC: [u8; 8] = *b"HVBUNDL1";
/// Most entries in a bundle.
pub const MAX_ENTRIES: usize = 16;
/// Longest command line, in bytes.
pub const MAX_CMDLINE_LEN: usize = 1023;

/// Size of the header before the entry table.
pub const HEADER_SIZE: usize = 16;
/// Size of one entry of the table.
pub const ENTRY_SIZE: usize = 32;

/// Why a bundle was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// No magic: not a bundle (perhaps a bare kernel).
    NotABundle,
    /// Shorter than its header or entry table.
    Truncated,
    /// `count` is 0 or above [`MAX_ENTRIES`].
    BadCount(u32),
    /// `reserved` is not 0.
    ReservedNotZero,
    /// An entry's data lies outside the bundle or inside its header.
    DataOutOfBounds { entry: usize },
    /// An entry's command line lies outside the bundle or inside its header.
    CmdlineOutOfBounds { entry: usize },
    /// A command line is longer than [`MAX_CMDLINE_LEN`].
    CmdlineTooLong { entry: usize },
    /// A command line is not UTF-8.
    CmdlineNotUtf8 { entry: usize },
    /// A command line contains a NUL byte.
    CmdlineHasNul { entry: usize },
}

impl core::fmt::Display for BundleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotABundle => f.write_str("not a boot bundle (no HVBUNDL1 magic)"),
            Self::Truncated => f.write_str("boot bundle truncated"),
            Self::BadCount(n) => write!(f, "boot bundle entry count {n} not in 1..={MAX_ENTRIES}"),
            Self::ReservedNotZero => f.write_str("boot bundle reserved field not zero"),
            Self::DataOutOfBounds { entry } => {
                write!(f, "boot bundle entry {entry}: data out of bounds")
            }
            Self::CmdlineOutOfBounds { entry } => {
                write!(f, "boot bundle entry {entry}: command line out of bounds")
            }
            Self::CmdlineTooLong { entry } => write!(
                f,
                "boot bundle entry {entry}: command line longer than {MAX_CMDLINE_LEN} bytes"
            ),
            Self::CmdlineNotUtf8 { entry } => {
                write!(f, "boot bundle entry {entry}: command line not UTF-8")
            }
            Self::CmdlineHasNul { entry } => {
                write!(f, "boot bundle entry {entry}: command line contains NUL")
            }
        }
    }
}

/// One image of a bundle and its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleEntry<'a> {
    pub data: &'a [u8],
    pub cmdline: &'a str,
}

/// A validated bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle<'a> {
    entries: heapless::Vec<BundleEntry<'a>, MAX_ENTRIES>,
}

impl<'a> Bundle<'a> {
    /// The entries, in order.
    pub fn entries(&self) -> impl Iterator<Item = BundleEntry<'a>> + '_ {
        self.entries.iter().copied()
    }

    /// Entry `i`, if present.
    pub fn entry(&self, i: usize) -> Option<BundleEntry<'a>> {
        self.entries.get(i).copied()
    }

    /// Number of entries (at least 1).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always false: a bundle has at least one entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The boot domain's kernel (entry 0).
    pub fn kernel(&self) -> Option<BundleEntry<'a>> {
        self.entry(0)
    }

    /// The boot domain's module (entry 1), if any.
    pub fn module(&self) -> Option<BundleEntry<'a>> {
        self.entry(1)
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let raw: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(raw))
}

/// The bytes `[offset, offset + len)`, which must lie after `header_end`.
fn range(bytes: &[u8], header_end: usize, offset: u64, len: u64) -> Option<&[u8]> {
    if len == 0 {
        return Some(&[]);
    }
    let start = usize::try_from(offset).ok()?;
    if start < header_end {
        return None;
    }
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    bytes.get(start..end)
}

/// Parses and validates a bundle.
pub fn parse(bytes: &[u8]) -> Result<Bundle<'_>, BundleError> {
    if bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
        return Err(BundleError::NotABundle);
    }
    let count = u32_at(bytes, 8).ok_or(BundleError::Truncated)?;
    let reserved = u32_at(bytes, 12).ok_or(BundleError::Truncated)?;
    let n = usize::try_from(count).map_err(|_| BundleError::BadCount(count))?;
    if n == 0 || n > MAX_ENTRIES {
        return Err(BundleError::BadCount(count));
    }
    if reserved != 0 {
        return Err(BundleError::ReservedNotZero);
    }
    // n <= 16, so this cannot overflow.
    let header_end = HEADER_SIZE.saturating_add(n.saturating_mul(ENTRY_SIZE));
    if bytes.len() < header_end {
        return Err(BundleError::Truncated);
    }
    let mut entries = heapless::Vec::new();
    for entry in 0..n {
        let at = HEADER_SIZE.saturating_add(entry.saturating_mul(ENTRY_SIZE));
        let field = |i: usize| {
            u64_at(bytes, at.saturating_add(i.saturating_mul(8))).ok_or(BundleError::Truncated)
        };
        let (offset, len, cmd_offset, cmd_len) = (field(0)?, field(1)?, field(2)?, field(3)?);
        let data =
            range(bytes, header_end, offset, len).ok_or(BundleError::DataOutOfBounds { entry })?;
        let cmd = range(bytes, header_end, cmd_offset, cmd_len)
            .ok_or(BundleError::CmdlineOutOfBounds { entry })?;
        if cmd.len() > MAX_CMDLINE_LEN {
            return Err(BundleError::CmdlineTooLong { entry });
        }
        if cmd.contains(&0) {
            return Err(BundleError::CmdlineHasNul { entry });
        }
        let cmdline =
            core::str::from_utf8(cmd).map_err(|_| BundleError::CmdlineNotUtf8 { entry })?;
        entries
            .push(BundleEntry { data, cmdline })
            .map_err(|_| BundleError::BadCount(count))?;
    }
    Ok(Bundle { entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Builds a bundle of `(data, cmdline)` pairs laid out after the table.
    fn build(items: &[(&[u8], &[u8])]) -> Vec<u8> {
        let header = 16 + 32 * items.len();
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&u32::try_from(items.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        let mut data = Vec::new();
        for (d, c) in items {
            let off = (header + data.len()) as u64;
            data.extend_from_slice(d);
            let coff = (header + data.len()) as u64;
            data.extend_from_slice(c);
            for v in [off, d.len() as u64, coff, c.len() as u64] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out.extend_from_slice(&data);
        out
    }

    fn set_u64(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn kernel_and_module() {
        let b = build(&[
            (b"\x7fELF kernel", b"console=hvc0 debug"),
            (b"initrd bytes", b""),
        ]);
        let bundle = parse(&b).unwrap();
        assert_eq!(bundle.len(), 2);
        let k = bundle.kernel().unwrap();
        assert_eq!(k.data, b"\x7fELF kernel");
        assert_eq!(k.cmdline, "console=hvc0 debug");
        let m = bundle.module().unwrap();
        assert_eq!((m.data, m.cmdline), (b"initrd bytes".as_slice(), ""));
        assert_eq!(bundle.entries().count(), 2);
    }

    #[test]
    fn kernel_only_with_utf8_cmdline() {
        let b = build(&[(b"k", "héllo".as_bytes())]);
        let bundle = parse(&b).unwrap();
        assert_eq!(bundle.kernel().unwrap().cmdline, "héllo");
        assert!(bundle.module().is_none());
    }

    #[test]
    fn not_a_bundle() {
        assert_eq!(parse(b"\x7fELF\x02\x01\x01"), Err(BundleError::NotABundle));
        assert_eq!(parse(b""), Err(BundleError::NotABundle));
        assert_eq!(parse(b"HVBUNDL"), Err(BundleError::NotABundle));
    }

    #[test]
    fn truncated() {
        let b = build(&[(b"k", b"")]);
        assert_eq!(parse(&b[..12]), Err(BundleError::Truncated));
        assert_eq!(parse(&b[..40]), Err(BundleError::Truncated));
    }

    #[test]
    fn bad_counts() {
        let mut b = build(&[(b"k", b"")]);
        b[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse(&b), Err(BundleError::BadCount(0)));
        b[8..12].copy_from_slice(&17u32.to_le_bytes());
        assert_eq!(parse(&b), Err(BundleError::BadCount(17)));
        b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&b), Err(BundleError::BadCount(u32::MAX)));
        let items: Vec<(&[u8], &[u8])> =
            (0..16).map(|_| (b"x".as_slice(), b"".as_slice())).collect();
        assert_eq!(parse(&build(&items)).unwrap().len(), 16);
    }

    #[test]
    fn reserved_must_be_zero() {
        let mut b = build(&[(b"k", b"")]);
        b[12] = 1;
        assert_eq!(parse(&b), Err(BundleError::ReservedNotZero));
    }

    #[test]
    fn out_of_bounds() {
        let good = build(&[(b"kernel", b"cmd")]);
        let mut b = good.clone();
        set_u64(&mut b, 16, 52); // runs past the end
        assert_eq!(parse(&b), Err(BundleError::DataOutOfBounds { entry: 0 }));
        let mut b = good.clone();
        set_u64(&mut b, 24, u64::MAX); // len overflows
        assert_eq!(parse(&b), Err(BundleError::DataOutOfBounds { entry: 0 }));
        let mut b = good.clone();
        set_u64(&mut b, 16, u64::MAX);
        assert_eq!(parse(&b), Err(BundleError::DataOutOfBounds { entry: 0 }));
        let mut b = good.clone();
        set_u64(&mut b, 16, 0); // overlaps the header
        assert_eq!(parse(&b), Err(BundleError::DataOutOfBounds { entry: 0 }));
        let mut b = good.clone();
        set_u64(&mut b, 16, 47); // data inside the entry table
        assert_eq!(parse(&b), Err(BundleError::DataOutOfBounds { entry: 0 }));
        let mut b = good.clone();
        set_u64(&mut b, 32, 8); // cmdline inside the header
        assert_eq!(parse(&b), Err(BundleError::CmdlineOutOfBounds { entry: 0 }));
        let mut b = good.clone();
        set_u64(&mut b, 40, 4); // cmdline runs one past the end
        assert_eq!(parse(&b), Err(BundleError::CmdlineOutOfBounds { entry: 0 }));
        // An empty range names no bytes: its offset is not checked.
        let mut b = good;
        set_u64(&mut b, 32, 0);
        set_u64(&mut b, 40, 0);
        assert_eq!(parse(&b).unwrap().kernel().unwrap().cmdline, "");
    }

    #[test]
    fn bad_cmdlines() {
        let long = vec![b'a'; 1024];
        assert_eq!(
            parse(&build(&[(b"k", &long)])),
            Err(BundleError::CmdlineTooLong { entry: 0 })
        );
        assert!(parse(&build(&[(b"k", &long[..1023])])).is_ok());
        assert_eq!(
            parse(&build(&[(b"k", b"a\0b")])),
            Err(BundleError::CmdlineHasNul { entry: 0 })
        );
        assert_eq!(
            parse(&build(&[(b"k", b""), (b"m", b"\xff\xfe")])),
            Err(BundleError::CmdlineNotUtf8 { entry: 1 })
        );
    }

    /// A small deterministic PRNG for the random-input test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> usize {
            usize::try_from(self.next() % n.max(1)).unwrap()
        }
    }

    /// Random bytes of random length as a boot bundle: a clean answer, never
    /// a panic; an accepted bundle's entries stay inside the input.
    #[test]
    fn random_bundles_never_panic() {
        let mut rng = Rng(0xb0b0_cafe_1234_5678);
        for _ in 0..5000 {
            let len = rng.below(512);
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| u8::try_from(rng.next() & 0xff).unwrap())
                .collect();
            if len >= 16 && rng.below(2) == 0 {
                bytes[..8].copy_from_slice(&MAGIC);
                bytes[8..12].copy_from_slice(&u32::try_from(rng.below(4)).unwrap().to_le_bytes());
                bytes[12..16].fill(0);
            }
            if let Ok(bundle) = parse(&bytes) {
                let inside = |s: &[u8]| {
                    s.is_empty()
                        || (bytes.as_ptr_range().contains(&s.as_ptr()) && s.len() <= bytes.len())
                };
                assert!(bundle
                    .entries()
                    .all(|e| inside(e.data) && inside(e.cmdline.as_bytes())));
            };
        }
    }
}
