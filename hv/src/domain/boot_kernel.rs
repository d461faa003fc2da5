//! The boot kernel as the ELF loader gets it. An ELF is read in place from
//! its boot module; a bzImage's ELF payload too. A compressed payload (a
//! bzImage's, or a bare compressed ELF) is unpacked first, as Xen 4.17's
//! `bzimage_parse` does before its ELF loader runs, into contiguous frames
//! of hv's own: a distribution kernel unpacks to tens of MiB, far more
//! than hv's heap. Which is which, and the decompressors, are the
//! host-tested `hv::bzimage`; this module finds the memory.
//!
//! The unpacked image lives until the [`BootKernel`] drops, after the
//! domain is built (the builder copies the segments out); its frames then
//! go back to the allocator. So does the XZ decoder's dictionary, as soon
//! as the stream is unpacked. Both are allocated before domain 0's memory
//! is sized, so the default size leaves room for them, as Xen reserves
//! room for the unpacked kernel beside its module before building dom0.

use hv::bzimage::{self, Container, KernelImage, UnpackError};

use super::builder::BuildError;
use crate::arch::x86_64 as x86;
use crate::mm::{self, OwnedFrames, PAGE_SIZE};

/// How many times the XZ decoder may ask for a larger dictionary (once per
/// block whose dictionary outgrows the last; Linux's kernels have one).
const DICTIONARY_TRIES: usize = 4;

/// The kernel image for the ELF loader.
pub enum BootKernel {
    /// In the boot module.
    InPlace(&'static [u8]),
    /// Unpacked into frames of hv's own: the first `len` bytes.
    Unpacked { frames: OwnedFrames, len: usize },
}

impl BootKernel {
    pub fn bytes(&self) -> Result<&[u8], BuildError> {
        match self {
            Self::InPlace(bytes) => Ok(bytes),
            Self::Unpacked { frames, len } => frames.bytes()?.get(..*len).ok_or(
                BuildError::Internal("unpacked kernel larger than its frames"),
            ),
        }
    }
}

/// Finds the ELF in the boot module `image`, unpacking it if need be.
pub fn unpack(image: &'static [u8]) -> Result<BootKernel, BuildError> {
    let packed = match bzimage::classify(image).map_err(BuildError::BzImage)? {
        KernelImage::Elf { container, image } => {
            if let Container::BzImage { version } = container {
                crate::hvlog!(
                    info,
                    " Dom0 kernel: bzImage v{}.{:02}, uncompressed ELF payload of {} KiB",
                    version >> 8,
                    version & 0xff,
                    image.len() / 1024
                );
            }
            return Ok(BootKernel::InPlace(image));
        }
        KernelImage::Packed(packed) => packed,
    };
    let container = match packed.container {
        Container::BzImage { version } => {
            alloc::format!("bzImage v{}.{:02}", version >> 8, version & 0xff)
        }
        Container::Bare => alloc::string::String::from("compressed ELF"),
    };
    crate::hvlog!(
        info,
        " Dom0 kernel: {container}, {} payload of {} KiB, unpacking to {} KiB",
        packed.compression.name(),
        packed.data.len() / 1024,
        packed.unpacked_len / 1024
    );
    let len = packed.unpacked_len;
    let t0 = x86::cpu::rdtsc();
    let mut out = frames_for(len as u64, "the unpacked kernel")?;
    let mut dictionary: Option<OwnedFrames> = None;
    for _ in 0..DICTIONARY_TRIES {
        let dict: &mut [u8] = match dictionary.as_mut() {
            Some(d) => d.bytes_mut()?,
            None => &mut [],
        };
        let dest = out.bytes_mut()?.get_mut(..len).ok_or(BuildError::Internal(
            "unpacked kernel larger than its frames",
        ))?;
        match bzimage::unpack(&packed, dest, dict) {
            Ok(()) => {
                let micros = x86::cpu::rdtsc().saturating_sub(t0).saturating_mul(1000)
                    / x86::apic::tsc_khz().max(1);
                crate::hvlog!(
                    info,
                    " Dom0 kernel unpacked in {}.{:03} ms",
                    micros / 1000,
                    micros % 1000
                );
                return Ok(BootKernel::Unpacked { frames: out, len });
            }
            Err(UnpackError::XzDictionaryTooSmall { needed }) => {
                // The old one goes back before the new one is taken.
                drop(dictionary.take());
                dictionary = Some(frames_for(needed, "the XZ dictionary")?);
            }
            Err(e) => return Err(BuildError::Unpack(e)),
        }
    }
    Err(BuildError::Internal(
        "the XZ stream keeps asking for a larger dictionary",
    ))
}

/// Contiguous frames for `bytes` bytes.
fn frames_for(bytes: u64, what: &'static str) -> Result<OwnedFrames, BuildError> {
    mm::alloc_contiguous(bytes.div_ceil(PAGE_SIZE), 1).ok_or(BuildError::NoMemoryToUnpack {
        what,
        bytes,
        free: mm::free_frames(),
    })
}
