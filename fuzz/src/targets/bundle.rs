//! `bundle`: the boot bundle hv reads its boot domain from. An even first
//! byte parses the rest as a bundle; an odd one builds a bundle from images
//! the input describes with the writer `cargo xtask` uses. Either way what
//! parses must lie inside the bundle and survive a round trip through the
//! writer, and what the writer accepts must parse back to its images.

use super::within;
use crate::input::Input;
use boot_bundle::{build, BuildError, Image, ENTRY_SIZE, HEADER_SIZE, IMAGE_ALIGN};
use hv::bundle::{parse, Bundle, MAX_CMDLINE_LEN, MAX_ENTRIES};

pub fn bundle(data: &[u8]) {
    let mut input = Input::new(data);
    if input.u8().is_multiple_of(2) {
        let bytes = input.rest();
        if let Ok(b) = parse(bytes) {
            check_parsed(bytes, &b);
            round_trip(&b);
        }
    } else {
        from_images(&mut input);
    }
}

fn check_parsed(bytes: &[u8], b: &Bundle<'_>) {
    assert!((1..=MAX_ENTRIES).contains(&b.len()));
    let header_end = HEADER_SIZE + b.len() * ENTRY_SIZE;
    let body = &bytes[header_end..];
    for e in b.entries() {
        assert!(within(body, e.data), "image data in the header");
        assert!(
            within(body, e.cmdline.as_bytes()),
            "command line in the header"
        );
        assert!(e.cmdline.len() <= MAX_CMDLINE_LEN);
        assert!(!e.cmdline.contains('\0'));
    }
    assert_eq!(b.kernel(), b.entry(0));
    assert_eq!(b.module(), b.entry(1));
}

/// Whatever parses, the writer writes again, and that parses to the same.
fn round_trip(b: &Bundle<'_>) {
    let images: Vec<Image<'_>> = b
        .entries()
        .map(|e| Image {
            data: e.data,
            cmdline: e.cmdline,
        })
        .collect();
    let bytes = build(&images).expect("the writer takes what the parser accepts");
    let again = parse(&bytes).expect("the writer's bundle parses");
    assert!(
        again.entries().eq(b.entries()),
        "round trip changed the entries"
    );
}

fn from_images(input: &mut Input<'_>) {
    let n = usize::from(input.below(u8::try_from(MAX_ENTRIES).unwrap() + 2));
    let mut texts = Vec::new();
    let mut datas = Vec::new();
    for _ in 0..n {
        let len = match input.below(8) {
            0 => MAX_CMDLINE_LEN + usize::from(input.below(2)),
            _ => usize::from(input.below(40)),
        };
        let text: String = (0..len)
            .map(|_| match input.below(64) {
                0 => '\0',
                1 => 'é',
                c => char::from(b' ' + c),
            })
            .collect();
        texts.push(text);
        let len = usize::from(input.u16()) % 9000;
        datas.push(input.bytes(len).to_vec());
    }
    let images: Vec<Image<'_>> = texts
        .iter()
        .zip(&datas)
        .map(|(t, d)| Image {
            data: d,
            cmdline: t,
        })
        .collect();
    match build(&images) {
        Ok(bytes) => {
            let b = parse(&bytes).expect("the writer's bundle parses");
            check_parsed(&bytes, &b);
            assert_eq!(b.len(), images.len());
            for (e, i) in b.entries().zip(&images) {
                assert_eq!((e.data, e.cmdline), (i.data, i.cmdline));
                if !e.data.is_empty() {
                    let offset = e.data.as_ptr() as usize - bytes.as_ptr() as usize;
                    assert_eq!(offset % IMAGE_ALIGN, 0, "image not aligned");
                }
            }
        }
        Err(BuildError::Count(c)) => assert!(c == 0 || c > MAX_ENTRIES),
        Err(BuildError::CmdlineTooLong { entry, .. }) => {
            assert!(images[entry].cmdline.len() > MAX_CMDLINE_LEN)
        }
        Err(BuildError::CmdlineHasNul { entry }) => {
            assert!(images[entry].cmdline.contains('\0'))
        }
    }
}
