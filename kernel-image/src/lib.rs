//! What a PV kernel image is before the ELF loader sees it: an ELF, a
//! bzImage (Linux's x86 boot format) whose payload is an ELF, plain or
//! compressed, or a bare compressed ELF. As Xen 4.17 does
//! (`xen/arch/x86/bzimage.c`, `bzimage_parse`), [`classify`] finds the ELF
//! or the compressed stream inside the image, and [`unpack`] decompresses
//! the stream into memory the caller provides; the ELF parser then runs on
//! the result.
//!
//! Xen's rules, which [`classify`] follows:
//!
//! - An image is a bzImage when it holds a whole setup header (0x250 bytes)
//!   with the magic `HdrS` at 0x202. Anything else is taken as the payload
//!   itself.
//! - A bzImage must speak boot protocol 2.08 or later (the first with
//!   `payload_offset`/`payload_length`); older is refused with Xen's words.
//! - The payload starts `(setup_sects + 1) * 512 + payload_offset` bytes in
//!   and is `payload_length` long.
//! - A payload that is an ELF is used as it is. Otherwise it is a
//!   compressed stream, recognised by its magic, and its last four bytes
//!   give the unpacked length (Linux appends it to every compressed
//!   payload; for gzip it is the stream's own `ISIZE`).
//!
//! Stricter than Xen, on purpose: the payload must lie inside the image (Xen
//! does not check); a bzImage payload that is neither ELF nor compressed in
//! a known format, or a stream not unpacked here, is refused here with its
//! name instead of reaching the ELF parser as garbage; the unpacked length
//! must be non-zero and at most [`MAX_UNPACKED_LEN`], and the stream must
//! produce exactly that many bytes.
//!
//! `hv` (for domain 0) and the toolstack (for domUs) share this crate. They
//! unpack gzip, XZ and LZ4 (legacy format): what Debian's kernels use (XZ
//! for `linux-image-amd64`, LZ4 for the cloud kernel) and the long-standing
//! default (gzip). Xen also knows bzip2, LZMA, LZO and zstd; the refusal
//! names them.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

#[cfg(test)]
mod tests;
mod unpack;

pub use unpack::{unpack, GzipError, Lz4Error, UnpackError, LZ4_LEGACY_BLOCK};

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

/// Where the setup header starts in a bzImage.
pub const SETUP_HEADER_OFFSET: usize = 0x1f1;
/// `header`'s value: the setup header is there.
pub const HDR_MAGIC: [u8; 4] = *b"HdrS";
/// The oldest boot protocol Xen accepts: 2.08 added the payload fields.
pub const MIN_PROTOCOL: u16 = 0x0208;
/// Largest unpacked image accepted (the ELF loader refuses images that
/// span 1 GiB or more anyway).
pub const MAX_UNPACKED_LEN: usize = 1 << 30;

/// The setup header of Linux's x86 boot protocol
/// (`Documentation/arch/x86/boot.rst`), from `setup_sects` at 0x1f1 to
/// `payload_length` at 0x24c: the part Xen reads. Fields in between are
/// kept as bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, KnownLayout, Immutable, Unaligned)]
pub struct SetupHeader {
    /// Size of the real-mode setup code in 512-byte sectors (the boot
    /// sector comes before it).
    pub setup_sects: u8,
    /// `root_flags` to `jump` (0x1f2..0x202).
    pub before_magic: [u8; 16],
    /// `HdrS`.
    pub header: [u8; 4],
    /// Boot protocol version, major in the high byte.
    pub version: U16,
    /// `realmode_swtch` to `hardware_subarch_data` (0x208..0x248).
    pub middle: [u8; 64],
    /// Offset of the payload from the end of the setup code.
    pub payload_offset: U32,
    pub payload_length: U32,
}

const _: () = {
    assert!(core::mem::offset_of!(SetupHeader, header) == 0x202 - SETUP_HEADER_OFFSET);
    assert!(core::mem::offset_of!(SetupHeader, version) == 0x206 - SETUP_HEADER_OFFSET);
    assert!(core::mem::offset_of!(SetupHeader, payload_offset) == 0x248 - SETUP_HEADER_OFFSET);
    assert!(core::mem::size_of::<SetupHeader>() == 0x250 - SETUP_HEADER_OFFSET);
};

/// A compression format a kernel payload may use, as Xen and Linux tell
/// them apart: by the stream's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Xz,
    /// LZ4's legacy format (`lz4 -l`), the one Linux writes and reads.
    Lz4Legacy,
    /// LZ4's frame format, which neither Linux's nor Xen's unpacker reads.
    Lz4Frame,
    Bzip2,
    Lzma,
    Lzo,
    Zstd,
}

/// The legacy LZ4 magic (little-endian 0x184c2102).
pub const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];

impl Compression {
    /// The format whose magic `stream` starts with.
    pub fn detect(stream: &[u8]) -> Option<Self> {
        let formats: [(&[u8], Self); 9] = [
            (&[0x1f, 0x8b], Self::Gzip),
            // Old gzip's magic, which Xen's gunzip also takes.
            (&[0x1f, 0x9e], Self::Gzip),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0], Self::Xz),
            (&LZ4_LEGACY_MAGIC, Self::Lz4Legacy),
            (&[0x04, 0x22, 0x4d, 0x18], Self::Lz4Frame),
            (b"BZh", Self::Bzip2),
            (&[0x5d, 0], Self::Lzma),
            (&[0x89, b'L', b'Z', b'O'], Self::Lzo),
            (&[0x28, 0xb5, 0x2f, 0xfd], Self::Zstd),
        ];
        formats
            .iter()
            .find(|(magic, _)| stream.starts_with(magic))
            .map(|&(_, c)| c)
    }

    /// Whether it is unpacked here.
    pub fn supported(self) -> bool {
        matches!(self, Self::Gzip | Self::Xz | Self::Lz4Legacy)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Xz => "XZ",
            Self::Lz4Legacy => "LZ4",
            Self::Lz4Frame => "LZ4 (frame format)",
            Self::Bzip2 => "bzip2",
            Self::Lzma => "LZMA",
            Self::Lzo => "LZO",
            Self::Zstd => "zstd",
        }
    }
}

/// What holds the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// The image itself.
    Bare,
    /// A bzImage of this boot protocol version.
    BzImage { version: u16 },
}

/// A compressed kernel: the stream, its format and its unpacked length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packed<'a> {
    pub container: Container,
    pub compression: Compression,
    /// The whole payload, trailing length included.
    pub data: &'a [u8],
    /// Bytes the stream unpacks to (the payload's last four bytes).
    pub unpacked_len: usize,
}

/// A boot kernel image, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelImage<'a> {
    /// Bytes for the ELF loader (which refuses anything but an ELF).
    Elf {
        container: Container,
        image: &'a [u8],
    },
    /// A compressed ELF, to [`unpack`] first.
    Packed(Packed<'a>),
}

/// Why an image was refused before decompression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BzImageError {
    /// Boot protocol before 2.08.
    ProtocolTooOld { version: u16 },
    /// The payload runs past the end of the image.
    PayloadOutOfImage {
        offset: u64,
        length: u32,
        image_len: usize,
    },
    /// A bzImage payload that is neither an ELF nor a compressed stream.
    UnknownPayload { magic: [u8; 4] },
    /// Compressed in a format not unpacked here.
    Unsupported(Compression),
    /// Too short to hold a stream and its four-byte unpacked length.
    PayloadTooShort { len: usize },
    /// The unpacked length is zero or above [`MAX_UNPACKED_LEN`].
    BadUnpackedLength { len: u32 },
}

impl core::fmt::Display for BzImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::ProtocolTooOld { version } => write!(
                f,
                "Cannot load bzImage v{}.{:02} at least v2.08 is required",
                version >> 8,
                version & 0xff
            ),
            Self::PayloadOutOfImage {
                offset,
                length,
                image_len,
            } => write!(
                f,
                "bzImage payload ({length} bytes at {offset:#x}) runs past the end of the \
                 {image_len}-byte image"
            ),
            Self::UnknownPayload { magic } => write!(
                f,
                "bzImage payload is neither an ELF nor compressed in a known format \
                 (starts {magic:02x?})"
            ),
            Self::Unsupported(Compression::Lz4Frame) => f.write_str(
                "kernel compressed with LZ4 (frame format): like Linux and Xen, \
                 this unpacks LZ4's legacy format (lz4 -l) only",
            ),
            Self::Unsupported(c) => write!(
                f,
                "kernel compressed with {}: only gzip, XZ and LZ4 are unpacked",
                c.name()
            ),
            Self::PayloadTooShort { len } => {
                write!(f, "compressed kernel of {len} bytes is too short")
            }
            Self::BadUnpackedLength { len } => write!(
                f,
                "compressed kernel claims to unpack to {len} bytes (accepted: 1 to {MAX_UNPACKED_LEN})"
            ),
        }
    }
}

/// The setup header of `image` if it is a bzImage (Xen's `bzimage_check`).
pub fn setup_header(image: &[u8]) -> Option<&SetupHeader> {
    let whole = image.get(..0x250)?;
    let (hdr, _) = SetupHeader::ref_from_prefix(whole.get(SETUP_HEADER_OFFSET..)?).ok()?;
    (hdr.header == HDR_MAGIC).then_some(hdr)
}

fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Finds the kernel in `image`: see the module's documentation.
pub fn classify(image: &[u8]) -> Result<KernelImage<'_>, BzImageError> {
    let (container, payload) = match setup_header(image) {
        None => (Container::Bare, image),
        Some(hdr) => {
            let version = hdr.version.get();
            if version < MIN_PROTOCOL {
                return Err(BzImageError::ProtocolTooOld { version });
            }
            let offset = (u64::from(hdr.setup_sects) + 1) * 512 + u64::from(hdr.payload_offset);
            let length = hdr.payload_length.get();
            let out_of_image = BzImageError::PayloadOutOfImage {
                offset,
                length,
                image_len: image.len(),
            };
            let start = usize::try_from(offset).map_err(|_| out_of_image)?;
            let end = start
                .checked_add(usize::try_from(length).map_err(|_| out_of_image)?)
                .ok_or(out_of_image)?;
            let payload = image.get(start..end).ok_or(out_of_image)?;
            (Container::BzImage { version }, payload)
        }
    };
    if is_elf(payload) {
        return Ok(KernelImage::Elf {
            container,
            image: payload,
        });
    }
    let Some(compression) = Compression::detect(payload) else {
        return match container {
            // Xen hands it to the ELF loader, which says what it is not.
            Container::Bare => Ok(KernelImage::Elf {
                container,
                image: payload,
            }),
            Container::BzImage { .. } => {
                let mut magic = [0; 4];
                for (m, b) in magic.iter_mut().zip(payload) {
                    *m = *b;
                }
                Err(BzImageError::UnknownPayload { magic })
            }
        };
    };
    if !compression.supported() {
        return Err(BzImageError::Unsupported(compression));
    }
    let len = payload.len();
    let trailer: [u8; 4] = payload
        .get(len.saturating_sub(4)..)
        .and_then(|t| t.try_into().ok())
        .filter(|_| len >= 8)
        .ok_or(BzImageError::PayloadTooShort { len })?;
    let raw = u32::from_le_bytes(trailer);
    let unpacked_len = usize::try_from(raw)
        .ok()
        .filter(|&n| n > 0 && n <= MAX_UNPACKED_LEN)
        .ok_or(BzImageError::BadUnpackedLength { len: raw })?;
    Ok(KernelImage::Packed(Packed {
        container,
        compression,
        data: payload,
        unpacked_len,
    }))
}
