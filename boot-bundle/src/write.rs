//! The writer, for the host tool: lays a bundle out so `hv` can use the
//! images in place. The command lines go right after the entry table, then
//! each image at the next [`IMAGE_ALIGN`] boundary; an empty command line
//! gets `cmdline_len` 0 and an offset inside the bundle; the bundle ends
//! where the last image ends. It refuses what [`crate::parse`] would refuse.

use crate::{ENTRY_SIZE, HEADER_SIZE, MAGIC, MAX_CMDLINE_LEN, MAX_ENTRIES};
use alloc::vec::Vec;
use core::fmt;

/// Alignment of every image inside a bundle written by [`build`].
pub const IMAGE_ALIGN: usize = 4096;

/// One image and its command line.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    pub data: &'a [u8],
    pub cmdline: &'a str,
}

/// Why [`build`] refused its images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// Not 1..=[`MAX_ENTRIES`] images.
    Count(usize),
    /// A command line longer than [`MAX_CMDLINE_LEN`].
    CmdlineTooLong { entry: usize, len: usize },
    /// A command line containing NUL.
    CmdlineHasNul { entry: usize },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Count(n) => write!(f, "a bundle holds 1 to {MAX_ENTRIES} images, not {n}"),
            BuildError::CmdlineTooLong { entry, len } => write!(
                f,
                "command line of image {entry} is {len} bytes (at most {MAX_CMDLINE_LEN})"
            ),
            BuildError::CmdlineHasNul { entry } => {
                write!(f, "command line of image {entry} contains NUL")
            }
        }
    }
}

fn put_u64(out: &mut Vec<u8>, value: usize) {
    // usize is at most 64 bits on every target Rust supports; widening
    // cannot fail.
    let value = u64::try_from(value).expect("usize fits in u64");
    out.extend_from_slice(&value.to_le_bytes());
}

/// Builds a bundle from its images, the boot domain's kernel first.
pub fn build(images: &[Image<'_>]) -> Result<Vec<u8>, BuildError> {
    if images.is_empty() || images.len() > MAX_ENTRIES {
        return Err(BuildError::Count(images.len()));
    }
    for (entry, image) in images.iter().enumerate() {
        if image.cmdline.len() > MAX_CMDLINE_LEN {
            return Err(BuildError::CmdlineTooLong {
                entry,
                len: image.cmdline.len(),
            });
        }
        if image.cmdline.contains('\0') {
            return Err(BuildError::CmdlineHasNul { entry });
        }
    }

    // Plan the layout first: command lines after the table, images aligned.
    let table_end = HEADER_SIZE + ENTRY_SIZE * images.len();
    let mut cursor = table_end;
    let mut cmdline_offsets = Vec::with_capacity(images.len());
    for image in images {
        cmdline_offsets.push(cursor);
        cursor += image.cmdline.len();
    }
    // An image byte-identical to an earlier non-empty one shares its
    // bytes (a parsed bundle may have overlapping ranges): two domains
    // booted from one kernel carry it once.
    let mut image_offsets: Vec<usize> = Vec::with_capacity(images.len());
    let mut stored = Vec::with_capacity(images.len());
    for (i, image) in images.iter().enumerate() {
        let same = images[..i]
            .iter()
            .position(|e| !e.data.is_empty() && e.data == image.data);
        match same {
            Some(j) => {
                image_offsets.push(image_offsets[j]);
                stored.push(false);
            }
            None => {
                cursor = cursor.next_multiple_of(IMAGE_ALIGN);
                image_offsets.push(cursor);
                stored.push(true);
                cursor += image.data.len();
            }
        }
    }

    let mut out = Vec::with_capacity(cursor);
    out.extend_from_slice(&MAGIC);
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
    for (i, image) in images.iter().enumerate().filter(|&(i, _)| stored[i]) {
        out.resize(image_offsets[i], 0);
        out.extend_from_slice(image.data);
    }
    debug_assert_eq!(out.len(), cursor);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;
    use alloc::vec;

    /// Where `part` starts inside `whole`.
    fn offset_in(whole: &[u8], part: &[u8]) -> usize {
        part.as_ptr() as usize - whole.as_ptr() as usize
    }

    #[test]
    fn identical_images_are_stored_once() {
        let kernel = vec![7u8; 50_000];
        let other = vec![8u8; 100];
        let img = |data: &'static [u8], cmdline| Image { data, cmdline };
        let (k, o): (&'static [u8], &'static [u8]) = (kernel.leak(), other.leak());
        let bundle = build(&[
            img(k, "a"),
            img(o, ""),
            img(k, "b"),
            img(&[], ""),
            img(&[], ""),
        ])
        .unwrap();
        assert!(bundle.len() < 2 * 50_000, "the kernel is there once");
        let parsed = parse(&bundle).unwrap();
        let e: Vec<_> = parsed.entries().collect();
        assert_eq!((e[0].data, e[0].cmdline), (k, "a"));
        assert_eq!((e[2].data, e[2].cmdline), (k, "b"));
        assert_eq!(offset_in(&bundle, e[0].data), offset_in(&bundle, e[2].data));
        assert_eq!(e[1].data, o);
        assert!(e[3].data.is_empty() && e[4].data.is_empty());
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
        let parsed = parse(&bundle).unwrap();
        assert_eq!(parsed.len(), 2);
        let (k, m) = (parsed.kernel().unwrap(), parsed.module().unwrap());
        assert_eq!(
            (k.data, k.cmdline),
            (&kernel[..], "reason=crash loglvl=all")
        );
        assert_eq!((m.data, m.cmdline), (&module[..], ""));
        // Layout details hv relies on: images in place, page-aligned.
        assert_eq!(&bundle[8..16], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(offset_in(&bundle, k.data), 4096);
        assert_eq!(offset_in(&bundle, m.data), 4096 * 4);
    }

    #[test]
    fn single_image_and_empty_images() {
        let bundle = build(&[Image {
            data: b"\x7fELF",
            cmdline: "",
        }])
        .unwrap();
        let k = parse(&bundle).unwrap().kernel().unwrap();
        assert_eq!((k.data, k.cmdline), (&b"\x7fELF"[..], ""));
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
        assert_eq!(parse(&bundle).unwrap().module().unwrap().data, b"");
    }

    #[test]
    fn limits() {
        let image = |cmdline| Image {
            data: b"k",
            cmdline,
        };
        let max = "a".repeat(MAX_CMDLINE_LEN);
        assert!(build(&[image(&max)]).is_ok());
        let long = "a".repeat(MAX_CMDLINE_LEN + 1);
        assert_eq!(
            build(&[image(&long)]),
            Err(BuildError::CmdlineTooLong {
                entry: 0,
                len: 1024
            })
        );
        assert_eq!(
            build(&[image("a\0b")]),
            Err(BuildError::CmdlineHasNul { entry: 0 })
        );
        assert_eq!(build(&[]), Err(BuildError::Count(0)));
        let many = vec![image(""); 17];
        assert_eq!(build(&many), Err(BuildError::Count(17)));
        assert_eq!(parse(&build(&many[..16]).unwrap()).unwrap().len(), 16);
    }
}
