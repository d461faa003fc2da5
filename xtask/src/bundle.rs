//! The boot bundle: the one file QEMU hands `hv` as its initrd, carrying the
//! boot domain's kernel and optional module with their command lines.
//!
//! Layout (all little-endian; `hv` parses the same format):
//!
//! ```text
//! 0   magic      b"HVBUNDL1"
//! 8   count      u32, 1..=16
//! 12  reserved   u32, 0
//! 16  count entries of 32 bytes:
//!       offset u64, len u64, cmdline_offset u64, cmdline_len u64
//!     (offsets from the start of the bundle)
//! then data
//! ```
//!
//! Entry 0 is the boot domain's kernel ELF with its command line (UTF-8, no
//! NUL, at most 1023 bytes); entry 1, if present, is that domain's module with
//! an empty command line. This writer puts the command lines right after the
//! entry table and then each image at the next 4096-byte boundary, so `hv` can
//! use images in place. An empty command line gets `cmdline_len` 0 and an
//! offset inside the bundle; the file ends where the last image ends.

use std::fmt;

pub const MAGIC: &[u8; 8] = b"HVBUNDL1";
pub const MAX_ENTRIES: usize = 16;
pub const MAX_CMDLINE: usize = 1023;
pub const IMAGE_ALIGN: usize = 4096;
pub const HEADER_LEN: usize = 16;
pub const ENTRY_LEN: usize = 32;

/// One image and its command line.
pub struct Image<'a> {
    pub data: &'a [u8],
    pub cmdline: &'a str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum BundleError {
    Count(usize),
    CmdlineTooLong { entry: usize, len: usize },
    CmdlineHasNul { entry: usize },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::Count(n) => write!(f, "a bundle holds 1 to {MAX_ENTRIES} images, not {n}"),
            BundleError::CmdlineTooLong { entry, len } => {
                write!(
                    f,
                    "command line of image {entry} is {len} bytes (at most {MAX_CMDLINE})"
                )
            }
            BundleError::CmdlineHasNul { entry } => {
                write!(f, "command line of image {entry} contains NUL")
            }
        }
    }
}

fn put_u64(out: &mut Vec<u8>, value: usize) {
    // usize is 64 bits on every host xtask supports; widening cannot fail.
    let value = u64::try_from(value).expect("usize fits in u64");
    out.extend_from_slice(&value.to_le_bytes());
}

fn align_up(value: usize) -> usize {
    value.next_multiple_of(IMAGE_ALIGN)
}

/// Builds a bundle from its images, the boot domain's kernel first.
pub fn build(images: &[Image<'_>]) -> Result<Vec<u8>, BundleError> {
    if images.is_empty() || images.len() > MAX_ENTRIES {
        return Err(BundleError::Count(images.len()));
    }
    for (entry, image) in images.iter().enumerate() {
        if image.cmdline.len() > MAX_CMDLINE {
            return Err(BundleError::CmdlineTooLong {
                entry,
                len: image.cmdline.len(),
            });
        }
        if image.cmdline.contains('\0') {
            return Err(BundleError::CmdlineHasNul { entry });
        }
    }

    // Plan the layout first: command lines after the table, images aligned.
    let table_end = HEADER_LEN + ENTRY_LEN * images.len();
    let mut cursor = table_end;
    let mut cmdline_offsets = Vec::with_capacity(images.len());
    for image in images {
        cmdline_offsets.push(cursor);
        cursor += image.cmdline.len();
    }
    let mut image_offsets = Vec::with_capacity(images.len());
    for image in images {
        cursor = align_up(cursor);
        image_offsets.push(cursor);
        cursor += image.data.len();
    }

    let mut out = Vec::with_capacity(cursor);
    out.extend_from_slice(MAGIC);
    let count = u32::try_from(images.len()).expect("at most MAX_ENTRIES images");
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for (i, image) in images.iter().enumerate() {
        put_u64(&mut out, image_offsets[i]);
        put_u64(&mut out, image.data.len());
        put_u64(&mut out, cmdline_offsets[i]);
        put_u64(&mut out, image.cmdline.len());
    }
    for image in images {
        out.extend_from_slice(image.cmdline.as_bytes());
    }
    for (i, image) in images.iter().enumerate() {
        out.resize(image_offsets[i], 0);
        out.extend_from_slice(image.data);
    }
    debug_assert_eq!(out.len(), cursor);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent, strict reader: what `hv` must accept.
    fn read(bundle: &[u8]) -> Result<Vec<(Vec<u8>, String)>, String> {
        let u32_at = |at: usize| u32::from_le_bytes(bundle[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| {
            usize::try_from(u64::from_le_bytes(bundle[at..at + 8].try_into().unwrap())).unwrap()
        };
        if bundle.len() < HEADER_LEN || &bundle[..8] != MAGIC {
            return Err("bad magic".into());
        }
        let count = usize::try_from(u32_at(8)).unwrap();
        if !(1..=MAX_ENTRIES).contains(&count) || u32_at(12) != 0 {
            return Err("bad header".into());
        }
        if bundle.len() < HEADER_LEN + count * ENTRY_LEN {
            return Err("truncated table".into());
        }
        let mut images = Vec::new();
        for i in 0..count {
            let e = HEADER_LEN + i * ENTRY_LEN;
            let (off, len, coff, clen) = (u64_at(e), u64_at(e + 8), u64_at(e + 16), u64_at(e + 24));
            if off % IMAGE_ALIGN != 0 || off + len > bundle.len() {
                return Err(format!("bad image {i}"));
            }
            if clen > MAX_CMDLINE || coff + clen > bundle.len() {
                return Err(format!("bad cmdline {i}"));
            }
            let cmdline =
                std::str::from_utf8(&bundle[coff..coff + clen]).map_err(|e| e.to_string())?;
            images.push((bundle[off..off + len].to_vec(), cmdline.to_owned()));
        }
        Ok(images)
    }

    #[test]
    fn round_trip_kernel_and_module() {
        let kernel: Vec<u8> = (0..10_000u32)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let module = b"module bytes".to_vec();
        let bundle = build(&[
            Image {
                data: &kernel,
                cmdline: "reason=crash loglvl=all",
            },
            Image {
                data: &module,
                cmdline: "",
            },
        ])
        .unwrap();
        let images = read(&bundle).unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!(images[0], (kernel, "reason=crash loglvl=all".to_owned()));
        assert_eq!(images[1], (module, String::new()));
        // Layout details hv relies on.
        assert_eq!(&bundle[8..16], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(bundle[16..24].try_into().unwrap()), 4096);
        assert_eq!(
            u64::from_le_bytes(bundle[48..56].try_into().unwrap()),
            4096 * 4
        );
    }

    #[test]
    fn single_image_and_empty_images() {
        let bundle = build(&[Image {
            data: b"\x7fELF",
            cmdline: "",
        }])
        .unwrap();
        assert_eq!(
            read(&bundle).unwrap(),
            vec![(b"\x7fELF".to_vec(), String::new())]
        );
        assert_eq!(bundle.len(), 4096 + 4);

        let bundle = build(&[
            Image {
                data: b"k",
                cmdline: "x",
            },
            Image {
                data: b"",
                cmdline: "",
            },
        ])
        .unwrap();
        let images = read(&bundle).unwrap();
        assert_eq!(images[1].0, b"");
    }

    #[test]
    fn limits() {
        let max = "a".repeat(MAX_CMDLINE);
        assert!(build(&[Image {
            data: b"k",
            cmdline: &max
        }])
        .is_ok());
        let long = "a".repeat(MAX_CMDLINE + 1);
        assert_eq!(
            build(&[Image {
                data: b"k",
                cmdline: &long
            }]),
            Err(BundleError::CmdlineTooLong {
                entry: 0,
                len: 1024
            })
        );
        assert_eq!(
            build(&[Image {
                data: b"k",
                cmdline: "a\0b"
            }]),
            Err(BundleError::CmdlineHasNul { entry: 0 })
        );
        assert_eq!(build(&[]), Err(BundleError::Count(0)));
        let many: Vec<Image<'_>> = (0..17)
            .map(|_| Image {
                data: b"",
                cmdline: "",
            })
            .collect();
        assert_eq!(build(&many), Err(BundleError::Count(17)));
        assert_eq!(read(&build(&many[..16]).unwrap()).unwrap().len(), 16);
    }
}
