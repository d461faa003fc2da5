//! `bzimage`: a boot kernel image through `hv::bzimage::classify` and, when
//! it holds a compressed stream, `unpack`, asking for the XZ dictionary as
//! the domain builder does. An even first byte takes the rest as the image;
//! an odd one compresses the rest with gzip or LZ4 (the same crates'
//! encoders), bare or in a bzImage, and the unpacked bytes must be the
//! rest. Outputs and dictionaries are bounded so one input stays small.

use super::within;
use crate::input::Input;
use hv::bzimage::{
    classify, unpack, Compression, Container, KernelImage, Packed, UnpackError, MAX_UNPACKED_LEN,
};

/// Largest output and XZ dictionary a run allocates.
const MAX_BUFFER: usize = 4 << 20;

pub fn bzimage(data: &[u8]) {
    let mut input = Input::new(data);
    if input.u8().is_multiple_of(2) {
        let image = input.rest();
        if let Some(out) = classify_and_unpack(image) {
            // Whatever unpacks is what its trailer said, in length.
            let Ok(KernelImage::Packed(p)) = classify(image) else {
                unreachable!("unpacked without a stream")
            };
            assert_eq!(out.len(), p.unpacked_len);
        }
    } else {
        let gzip = input.bool();
        let wrapped = input.bool();
        let payload = input.rest();
        if payload.is_empty() {
            return;
        }
        let stream = if gzip {
            crate::seeds::gzip(payload)
        } else {
            crate::seeds::lz4_legacy(payload)
        };
        let image = if wrapped {
            crate::seeds::bzimage(&stream)
        } else {
            stream
        };
        let out = classify_and_unpack(&image);
        // A bare stream with `HdrS` at 0x202 (LZ4 keeps literals as they
        // are) is a bzImage to Xen's rules, and so to hv's.
        let looks_wrapped = !wrapped && hv::bzimage::setup_header(&image).is_some();
        if payload.len() <= MAX_BUFFER && !looks_wrapped {
            assert_eq!(out.as_deref(), Some(payload), "round trip");
        }
    }
}

/// Classifies `image`, checks what it says, and unpacks a stream that fits
/// the bounds: the bytes, or `None`.
fn classify_and_unpack(image: &[u8]) -> Option<Vec<u8>> {
    let classified = classify(image);
    assert_eq!(classify(image), classified, "classify is a function");
    let p = match classified {
        Err(e) => {
            let _ = e.to_string();
            return None;
        }
        Ok(KernelImage::Elf {
            container,
            image: elf,
        }) => {
            assert!(within(image, elf));
            if container == Container::Bare {
                assert_eq!(elf.as_ptr_range(), image.as_ptr_range());
            } else {
                assert!(elf.starts_with(b"\x7fELF"));
            }
            return None;
        }
        Ok(KernelImage::Packed(p)) => p,
    };
    check_packed(image, &p);
    if p.unpacked_len > MAX_BUFFER {
        return None;
    }
    let mut out = vec![0xa5; p.unpacked_len];
    let mut dict = Vec::new();
    loop {
        match unpack(&p, &mut out, &mut dict) {
            Ok(()) => return Some(out),
            Err(UnpackError::XzDictionaryTooSmall { needed }) => {
                assert_eq!(p.compression, Compression::Xz);
                let needed = usize::try_from(needed).unwrap_or(usize::MAX);
                assert!(needed > dict.len(), "asked again for {needed} bytes");
                if needed > MAX_BUFFER {
                    return None;
                }
                dict = vec![0; needed];
            }
            Err(e) => {
                let _ = e.to_string();
                return None;
            }
        }
    }
}

fn check_packed(image: &[u8], p: &Packed<'_>) {
    assert!(within(image, p.data));
    assert!(p.compression.supported());
    assert_eq!(Compression::detect(p.data), Some(p.compression));
    assert!(p.unpacked_len > 0 && p.unpacked_len <= MAX_UNPACKED_LEN);
    let trailer = &p.data[p.data.len() - 4..];
    assert_eq!(
        u32::from_le_bytes(trailer.try_into().unwrap()),
        u32::try_from(p.unpacked_len).unwrap()
    );
}
