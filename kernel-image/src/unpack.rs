//! Decompression of a kernel payload into one slice, as Xen's unpackers do
//! (`xen/common/inflate.c`, `unxz.c`, `unlz4.c`): the whole output at once,
//! its length known in advance from the payload's trailer.
//!
//! The decoders are crates, each `no_std`, decoding into a slice it is
//! handed and written without unsafe code:
//!
//! - gzip: `miniz_oxide`'s inflate (the deflate decoder behind `flate2`
//!   and Rust's own backtraces); the gzip header and trailer around it are
//!   read here, with Xen's checks (flags it refuses, CRC-32 by `crc32fast`,
//!   length).
//! - XZ: `xz4rust`, a port of xz-embedded, the decoder Linux and Xen
//!   themselves use, with the BCJ filters Linux's x86 kernels are packed
//!   with (`xz --x86`). It needs a dictionary buffer besides the output
//!   (xz-embedded's single-call mode, which decodes in the output, is not
//!   ported): [`UnpackError::XzDictionaryTooSmall`] tells the caller how
//!   large, and the caller tries again with one that size. Check types:
//!   none and CRC-32, as Xen's unxz (Linux packs with `--check=crc32`).
//! - LZ4: `lz4_flex`'s block decoder (its safe one); the legacy framing
//!   around the blocks (magic, then blocks of at most 8 MiB unpacked, each
//!   after its compressed length) is read here. The legacy format is what
//!   Linux writes (`lz4 -l`) and what Linux's and Xen's unlz4 read.
//!
//! Every error is a value: a corrupt stream is refused, never a panic, and
//! no decoder writes outside the slice it is given.

use super::{Compression, Packed, LZ4_LEGACY_MAGIC};
use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// Bytes a legacy LZ4 block unpacks to (all but the last).
pub const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// Why a compressed kernel could not be unpacked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnpackError {
    Gzip(GzipError),
    Xz(xz4rust::XzError),
    /// The XZ stream needs a dictionary of `needed` bytes; the one given is
    /// smaller. Not a refusal: call again with a dictionary that large.
    XzDictionaryTooSmall {
        needed: u64,
    },
    Lz4(Lz4Error),
    /// The stream ended before its end marker.
    Truncated,
    /// The stream holds more than the `expected` bytes its trailer gives.
    TooLong {
        expected: usize,
    },
    /// The stream ended after `got` of the `expected` bytes.
    TooShort {
        expected: usize,
        got: usize,
    },
    /// The output slice's length is not the unpacked length (a caller bug).
    OutputLength,
    /// Not a format [`unpack`] knows (a caller bug: `classify` refuses it).
    Unsupported(Compression),
}

/// A gzip member refused (Xen's gunzip says the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GzipError {
    /// Compression method other than deflate (8).
    Method(u8),
    /// FLG bit 5.
    Encrypted,
    /// FLG bit 1 (a multi-part archive to old gzip, a header CRC to RFC
    /// 1952): Xen refuses it.
    MultiPart,
    /// FLG bits 6 and 7.
    ReservedFlags,
    /// Invalid deflate data.
    Deflate,
    /// The CRC-32 of the output is not the trailer's.
    Crc { stored: u32, computed: u32 },
    /// `ISIZE` is not the output's length.
    Length { stored: u32, unpacked: usize },
}

/// A legacy LZ4 stream refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lz4Error {
    /// No legacy magic at the start.
    Magic,
    /// Block `index` is invalid LZ4, or does not unpack to its share.
    Block { index: usize },
}

impl core::fmt::Display for UnpackError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Gzip(e) => write!(f, "gzip: {e}"),
            Self::Xz(e) => write!(f, "XZ: {} ({e})", xz_category(e)),
            Self::XzDictionaryTooSmall { needed } => {
                write!(f, "XZ: needs a dictionary of {needed} bytes")
            }
            Self::Lz4(Lz4Error::Magic) => f.write_str("LZ4: invalid header"),
            Self::Lz4(Lz4Error::Block { index }) => {
                write!(f, "LZ4: Decoding failed (block {index})")
            }
            Self::Truncated => f.write_str("compressed stream truncated"),
            Self::TooLong { expected } => write!(
                f,
                "compressed stream unpacks to more than the {expected} bytes its trailer gives"
            ),
            Self::TooShort { expected, got } => write!(
                f,
                "compressed stream unpacks to {got} bytes, its trailer gives {expected}"
            ),
            Self::OutputLength => f.write_str("internal error: output buffer of the wrong size"),
            Self::Unsupported(c) => write!(f, "{} is not unpacked", c.name()),
        }
    }
}

/// What xz-embedded (Xen's and Linux's unxz) says for the kind of error
/// `e` is, so that hv's refusal reads as Xen's.
fn xz_category(e: &xz4rust::XzError) -> &'static str {
    use xz4rust::XzError as E;
    match e {
        E::StreamHeaderMagicNumberMismatch => "Input is not in the XZ format (wrong magic bytes)",
        E::UnsupportedStreamHeaderOption
        | E::UnsupportedBlockHeaderOption
        | E::UnsupportedCheckType(_)
        | E::Crc64NotSupported
        | E::Sha256NotSupported
        | E::DeltaFilterUnsupported
        | E::UnsupportedBcjFilter(_)
        | E::UnsupportedLzmaProperties(_) => {
            "Input was encoded with settings that are not supported by this XZ decoder"
        }
        _ => "XZ-compressed data is corrupt",
    }
}

impl core::fmt::Display for GzipError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Method(m) => write!(f, "invalid method {m}"),
            Self::Encrypted => f.write_str("Input is encrypted"),
            Self::MultiPart => f.write_str("Multi part input"),
            Self::ReservedFlags => f.write_str("Input has invalid flags"),
            Self::Deflate => f.write_str("invalid compressed format"),
            Self::Crc { stored, computed } => {
                write!(
                    f,
                    "crc error (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            Self::Length { stored, unpacked } => {
                write!(f, "length error (stored {stored}, unpacked {unpacked})")
            }
        }
    }
}

/// Unpacks `packed` into `out`, which must be exactly
/// `packed.unpacked_len` bytes. `xz_dict` is the XZ decoder's dictionary
/// (unused for the other formats).
pub fn unpack(packed: &Packed<'_>, out: &mut [u8], xz_dict: &mut [u8]) -> Result<(), UnpackError> {
    if out.len() != packed.unpacked_len {
        return Err(UnpackError::OutputLength);
    }
    // The stream without the unpacked length Linux appends (gzip's is its
    // own ISIZE, which the gzip reader checks).
    let stream = packed
        .data
        .get(..packed.data.len().saturating_sub(4))
        .unwrap_or(&[]);
    match packed.compression {
        Compression::Gzip => gunzip(packed.data, out),
        Compression::Xz => unxz(stream, out, xz_dict),
        Compression::Lz4Legacy => unlz4(stream, out),
        c => Err(UnpackError::Unsupported(c)),
    }
}

const FLG_MULTI_PART: u8 = 1 << 1;
const FLG_EXTRA: u8 = 1 << 2;
const FLG_NAME: u8 = 1 << 3;
const FLG_COMMENT: u8 = 1 << 4;
const FLG_ENCRYPTED: u8 = 1 << 5;
const FLG_RESERVED: u8 = 0xc0;

/// Where the deflate data of the gzip member `data` starts (RFC 1952,
/// with Xen's refusals).
fn gzip_body(data: &[u8]) -> Result<usize, UnpackError> {
    let byte = |i: usize| data.get(i).copied().ok_or(UnpackError::Truncated);
    let method = byte(2)?;
    if method != 8 {
        return Err(UnpackError::Gzip(GzipError::Method(method)));
    }
    let flags = byte(3)?;
    if flags & FLG_ENCRYPTED != 0 {
        return Err(UnpackError::Gzip(GzipError::Encrypted));
    }
    if flags & FLG_MULTI_PART != 0 {
        return Err(UnpackError::Gzip(GzipError::MultiPart));
    }
    if flags & FLG_RESERVED != 0 {
        return Err(UnpackError::Gzip(GzipError::ReservedFlags));
    }
    // Magic, method, flags, mtime, extra flags, OS.
    let mut at = 10usize;
    if flags & FLG_EXTRA != 0 {
        let len = usize::from(byte(at)?) | usize::from(byte(at + 1)?) << 8;
        at += 2 + len;
    }
    for field in [FLG_NAME, FLG_COMMENT] {
        if flags & field != 0 {
            let rest = data.get(at..).ok_or(UnpackError::Truncated)?;
            let nul = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or(UnpackError::Truncated)?;
            at += nul + 1;
        }
    }
    if at > data.len() {
        return Err(UnpackError::Truncated);
    }
    Ok(at)
}

// The decoders' state is large (10 KiB for inflate, 30 KiB for XZ) and
// hv's stacks are 64 KiB: each format's function stays out of line, so
// their frames never add up, and the XZ decoder is written into its heap
// slot. (xz4rust's constructor still takes 26 KiB of stack while it runs;
// on hv's boot path, under `main`'s 16 KiB, that leaves some 20 KiB: the
// frame sizes of the release build, read from its disassembly.)

#[inline(never)]
fn gunzip(data: &[u8], out: &mut [u8]) -> Result<(), UnpackError> {
    let body = gzip_body(data)?;
    let deflate = data.get(body..).ok_or(UnpackError::Truncated)?;
    let mut inflater = alloc::boxed::Box::<DecompressorOxide>::default();
    let (status, used, produced) = decompress(
        &mut inflater,
        deflate,
        out,
        0,
        inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    match status {
        TINFLStatus::Done => {}
        TINFLStatus::HasMoreOutput => {
            return Err(UnpackError::TooLong {
                expected: out.len(),
            })
        }
        TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => {
            return Err(UnpackError::Truncated)
        }
        _ => return Err(UnpackError::Gzip(GzipError::Deflate)),
    }
    let trailer = body
        .checked_add(used)
        .and_then(|at| data.get(at..at.checked_add(8)?))
        .ok_or(UnpackError::Truncated)?;
    let word = |i: usize| {
        trailer
            .get(i..i + 4)
            .and_then(|w| w.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    let (stored_crc, stored_len) = (word(0), word(4));
    let unpacked = out.get(..produced).unwrap_or(&[]);
    let computed = crc32fast::hash(unpacked);
    if computed != stored_crc {
        return Err(UnpackError::Gzip(GzipError::Crc {
            stored: stored_crc,
            computed,
        }));
    }
    if u32::try_from(produced).ok() != Some(stored_len) {
        return Err(UnpackError::Gzip(GzipError::Length {
            stored: stored_len,
            unpacked: produced,
        }));
    }
    if produced != out.len() {
        return Err(UnpackError::TooShort {
            expected: out.len(),
            got: produced,
        });
    }
    Ok(())
}

#[inline(never)]
fn unxz(stream: &[u8], out: &mut [u8], dict: &mut [u8]) -> Result<(), UnpackError> {
    use xz4rust::{XzDecoder, XzError, XzNextBlockResult};
    // Written straight into its heap slot (never dropped: with a borrowed
    // dictionary it owns nothing).
    let mut slot = alloc::boxed::Box::<XzDecoder<'_>>::new_uninit();
    let decoder = slot.write(XzDecoder::with_fixed_size_dict(dict));
    let (mut read, mut written) = (0usize, 0usize);
    loop {
        let input = stream.get(read..).unwrap_or(&[]);
        let output = out.get_mut(written..).unwrap_or(&mut []);
        let output_room = output.len();
        match decoder.decode(input, output) {
            Ok(XzNextBlockResult::EndOfStream(_, produced)) => {
                written += produced;
                break;
            }
            Ok(XzNextBlockResult::NeedMoreData(used, produced)) => {
                read += used;
                written += produced;
                if used == 0 && produced == 0 {
                    // No progress: out of input, or out of room.
                    return Err(if output_room == 0 {
                        UnpackError::TooLong {
                            expected: out.len(),
                        }
                    } else {
                        UnpackError::Truncated
                    });
                }
            }
            Err(XzError::DictionaryTooLarge(needed)) => {
                return Err(UnpackError::XzDictionaryTooSmall { needed })
            }
            Err(XzError::NeedsLargerInputBuffer) => return Err(UnpackError::Truncated),
            Err(e) => return Err(UnpackError::Xz(e)),
        }
    }
    if written != out.len() {
        return Err(UnpackError::TooShort {
            expected: out.len(),
            got: written,
        });
    }
    Ok(())
}

#[inline(never)]
fn unlz4(stream: &[u8], out: &mut [u8]) -> Result<(), UnpackError> {
    let mut rest = stream
        .strip_prefix(&LZ4_LEGACY_MAGIC[..])
        .ok_or(UnpackError::Lz4(Lz4Error::Magic))?;
    let mut written = 0usize;
    let mut index = 0usize;
    while !rest.is_empty() {
        let (len, after) = rest
            .split_first_chunk::<4>()
            .ok_or(UnpackError::Truncated)?;
        rest = after;
        if *len == LZ4_LEGACY_MAGIC {
            // Concatenated legacy streams: Linux and Xen skip the magic.
            continue;
        }
        let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| UnpackError::Truncated)?;
        let block = rest.get(..len).ok_or(UnpackError::Truncated)?;
        rest = rest.get(len..).unwrap_or(&[]);
        // Every block but the last unpacks to 8 MiB: its share is known.
        let share = (out.len() - written).min(LZ4_LEGACY_BLOCK);
        if share == 0 {
            return Err(UnpackError::TooLong {
                expected: out.len(),
            });
        }
        let dest = out
            .get_mut(written..written + share)
            .ok_or(UnpackError::OutputLength)?;
        match lz4_flex::block::decompress_into(block, dest) {
            Ok(n) if n == share => written += n,
            _ => return Err(UnpackError::Lz4(Lz4Error::Block { index })),
        }
        index += 1;
    }
    if written != out.len() {
        return Err(UnpackError::TooShort {
            expected: out.len(),
            got: written,
        });
    }
    Ok(())
}
