//! Host tests of bzImage classification and payload unpacking, on images
//! made here: gzip and LZ4 payloads by the same crates' encoders, XZ ones
//! from the fixtures in `tests/data/bzimage/` (see its README).

use super::*;

/// Bytes that start as an ELF does (the parser's own tests, in `hv`, run
/// it on what these unpack to).
fn an_elf() -> Vec<u8> {
    let mut v = b"\x7fELF\x02\x01\x01".to_vec();
    v.extend(pattern(50_000));
    v
}

/// The fixtures' pattern (see `tests/data/bzimage/README.md`).
fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            if i % 32 == 5 {
                0xe8
            } else {
                u8::try_from((i / 7) % 251).unwrap()
            }
        })
        .collect()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/data/bzimage/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn size_trailer(len: usize) -> [u8; 4] {
    u32::try_from(len).unwrap().to_le_bytes()
}

/// A gzip member of `data` with header flags `flags` and their fields.
fn gzip_with(data: &[u8], flags: u8) -> Vec<u8> {
    let mut v = vec![0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3];
    if flags & FLG_EXTRA != 0 {
        v.extend_from_slice(&[3, 0, b'a', b'b', b'c']);
    }
    if flags & FLG_NAME != 0 {
        v.extend_from_slice(b"vmlinux.bin\0");
    }
    if flags & FLG_COMMENT != 0 {
        v.extend_from_slice(b"a comment\0");
    }
    v.extend(miniz_oxide::deflate::compress_to_vec(data, 9));
    v.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    v.extend_from_slice(&size_trailer(data.len()));
    v
}

const FLG_EXTRA: u8 = 1 << 2;
const FLG_NAME: u8 = 1 << 3;
const FLG_COMMENT: u8 = 1 << 4;

fn gzip(data: &[u8]) -> Vec<u8> {
    gzip_with(data, FLG_NAME)
}

/// `lz4 -l` of `data` with the unpacked length appended, as Linux's
/// `cmd_lz4_with_size` makes it.
fn lz4_legacy(data: &[u8]) -> Vec<u8> {
    let mut v = LZ4_LEGACY_MAGIC.to_vec();
    for chunk in data.chunks(LZ4_LEGACY_BLOCK) {
        let block = lz4_flex::block::compress(chunk);
        v.extend_from_slice(&size_trailer(block.len()));
        v.extend(block);
    }
    v.extend_from_slice(&size_trailer(data.len()));
    v
}

/// A bzImage of protocol `version` around `payload` (one setup sector,
/// payload 0x80 bytes after the setup code, as Linux's compressed head
/// comes before it).
fn bzimage(payload: &[u8], version: u16) -> Vec<u8> {
    let setup_sects = 1u8;
    let payload_offset = 0x80u32;
    let start = (usize::from(setup_sects) + 1) * 512 + 0x80;
    let mut v = vec![0u8; start];
    v[0x1f1] = setup_sects;
    v[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    v[0x202..0x206].copy_from_slice(b"HdrS");
    v[0x206..0x208].copy_from_slice(&version.to_le_bytes());
    v[0x248..0x24c].copy_from_slice(&payload_offset.to_le_bytes());
    v[0x24c..0x250].copy_from_slice(&size_trailer(payload.len()));
    v.extend_from_slice(payload);
    // Linux pads the image after the payload.
    v.extend_from_slice(&[0; 16]);
    v
}

fn packed(image: &[u8]) -> Packed<'_> {
    match classify(image) {
        Ok(KernelImage::Packed(p)) => p,
        other => panic!("not a packed kernel: {other:?}"),
    }
}

/// Unpacks as the domain builder does: with no dictionary first, then
/// with the one the XZ stream asks for.
fn unpack_all(p: &Packed<'_>) -> Result<Vec<u8>, UnpackError> {
    let mut out = vec![0u8; p.unpacked_len];
    let mut dict = Vec::new();
    for _ in 0..3 {
        match unpack(p, &mut out, &mut dict) {
            Err(UnpackError::XzDictionaryTooSmall { needed }) => {
                dict = vec![0; usize::try_from(needed).unwrap()];
            }
            Ok(()) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
    panic!("dictionary asked for three times");
}

#[test]
fn setup_header_fields_at_the_boot_protocol_offsets() {
    let image = bzimage(b"\x7fELF....", 0x020f);
    let hdr = setup_header(&image).unwrap();
    assert_eq!(hdr.setup_sects, 1);
    assert_eq!(hdr.header, HDR_MAGIC);
    assert_eq!(hdr.version.get(), 0x020f);
    assert_eq!(hdr.payload_offset.get(), 0x80);
    assert_eq!(hdr.payload_length.get(), 8);
}

#[test]
fn an_elf_is_itself() {
    let elf = an_elf();
    assert_eq!(
        classify(&elf),
        Ok(KernelImage::Elf {
            container: Container::Bare,
            image: &elf[..]
        })
    );
}

#[test]
fn a_bzimage_with_an_elf_payload_gives_the_payload() {
    let elf = an_elf();
    let image = bzimage(&elf, 0x0208);
    assert_eq!(
        classify(&image),
        Ok(KernelImage::Elf {
            container: Container::BzImage { version: 0x0208 },
            image: &elf[..]
        })
    );
}

#[test]
fn not_a_bzimage_without_the_magic_or_a_whole_header() {
    let mut image = bzimage(&gzip(b"payload"), 0x020f);
    image[0x202] = b'h';
    assert!(setup_header(&image).is_none());
    // Not ELF, not compressed: the ELF parser refuses it, as on Xen.
    assert!(matches!(
        classify(&image),
        Ok(KernelImage::Elf {
            container: Container::Bare,
            ..
        })
    ));
    let image = bzimage(&gzip(b"payload"), 0x020f);
    assert!(setup_header(&image[..0x24f]).is_none());
    assert!(setup_header(&image[..0x250]).is_some());
}

#[test]
fn protocol_before_2_08_refused_with_xens_words() {
    let image = bzimage(&gzip(b"payload"), 0x0207);
    let e = classify(&image).unwrap_err();
    assert_eq!(e, BzImageError::ProtocolTooOld { version: 0x0207 });
    assert_eq!(
        e.to_string(),
        "Cannot load bzImage v2.07 at least v2.08 is required"
    );
}

#[test]
fn payload_outside_the_image_refused() {
    let mut image = bzimage(&gzip(b"payload"), 0x020f);
    let len = u32::try_from(image.len()).unwrap();
    image[0x24c..0x250].copy_from_slice(&len.to_le_bytes());
    assert!(matches!(
        classify(&image),
        Err(BzImageError::PayloadOutOfImage { .. })
    ));
    let mut image = bzimage(&gzip(b"payload"), 0x020f);
    image[0x248..0x24c].copy_from_slice(&u32::MAX.to_le_bytes());
    image[0x24c..0x250].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = classify(&image).unwrap_err();
    assert!(matches!(e, BzImageError::PayloadOutOfImage { .. }));
    assert!(e.to_string().contains("runs past the end"), "{e}");
    // setup_sects 255 puts the payload 128 KiB in.
    let mut image = bzimage(&gzip(b"payload"), 0x020f);
    image[0x1f1] = 255;
    assert!(matches!(
        classify(&image),
        Err(BzImageError::PayloadOutOfImage { .. })
    ));
}

#[test]
fn unknown_payload_named() {
    let e = classify(&bzimage(b"MZ\x90\0junk", 0x020f)).unwrap_err();
    assert_eq!(
        e,
        BzImageError::UnknownPayload {
            magic: *b"MZ\x90\0"
        }
    );
    assert!(e.to_string().contains("neither an ELF"), "{e}");
    // Shorter than four bytes.
    assert_eq!(
        classify(&bzimage(b"M", 0x020f)),
        Err(BzImageError::UnknownPayload {
            magic: [b'M', 0, 0, 0]
        })
    );
}

#[test]
fn formats_hv_does_not_unpack_named() {
    let cases: [(&[u8], Compression); 5] = [
        (b"BZh91AY&SY....", Compression::Bzip2),
        (b"\x5d\0\0\x80\0....", Compression::Lzma),
        (b"\x89LZO\0\r\n....", Compression::Lzo),
        (b"\x28\xb5\x2f\xfd....", Compression::Zstd),
        (b"\x04\x22\x4d\x18....", Compression::Lz4Frame),
    ];
    for (payload, c) in cases {
        let e = classify(&bzimage(payload, 0x020f)).unwrap_err();
        assert_eq!(e, BzImageError::Unsupported(c));
        assert!(e.to_string().contains(c.name()), "{e}");
    }
    let e = BzImageError::Unsupported(Compression::Lz4Frame).to_string();
    assert!(e.contains("legacy format"), "{e}");
}

#[test]
fn unpacked_length_checked() {
    let mut payload = gzip(b"payload");
    let n = payload.len();
    payload[n - 4..].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        classify(&bzimage(&payload, 0x020f)),
        Err(BzImageError::BadUnpackedLength { len: 0 })
    );
    payload[n - 4..].copy_from_slice(&(u32::try_from(MAX_UNPACKED_LEN).unwrap() + 1).to_le_bytes());
    assert!(matches!(
        classify(&bzimage(&payload, 0x020f)),
        Err(BzImageError::BadUnpackedLength { .. })
    ));
    assert_eq!(
        classify(&bzimage(&[0x1f, 0x8b, 8, 0, 0], 0x020f)),
        Err(BzImageError::PayloadTooShort { len: 5 })
    );
}

#[test]
fn gzip_payload_unpacks_to_the_elf() {
    let elf = an_elf();
    let image = bzimage(&gzip(&elf), 0x020f);
    let p = packed(&image);
    assert_eq!(p.compression, Compression::Gzip);
    assert_eq!(p.container, Container::BzImage { version: 0x020f });
    assert_eq!(p.unpacked_len, elf.len());
    let out = unpack_all(&p).unwrap();
    assert_eq!(out, elf);
}

#[test]
fn bare_gzip_unpacks_too() {
    // Xen also takes a compressed ELF without the bzImage around it.
    let data = pattern(70_000);
    let stream = gzip(&data);
    let p = packed(&stream);
    assert_eq!(p.container, Container::Bare);
    assert_eq!(unpack_all(&p).unwrap(), data);
}

#[test]
fn gzip_optional_header_fields_skipped() {
    let data = pattern(5000);
    for flags in [0, FLG_EXTRA, FLG_NAME | FLG_COMMENT, FLG_EXTRA | FLG_NAME] {
        let stream = gzip_with(&data, flags);
        assert_eq!(unpack_all(&packed(&stream)).unwrap(), data, "{flags:#x}");
    }
}

#[test]
fn gzip_refusals_are_xens() {
    let data = pattern(5000);
    let with = |at: usize, byte: u8| {
        let mut s = gzip(&data);
        s[at] = byte;
        unpack_all(&packed(&s)).unwrap_err()
    };
    assert_eq!(with(2, 9), UnpackError::Gzip(GzipError::Method(9)));
    assert_eq!(with(3, 1 << 5), UnpackError::Gzip(GzipError::Encrypted));
    assert_eq!(with(3, 1 << 1), UnpackError::Gzip(GzipError::MultiPart));
    assert_eq!(with(3, 1 << 7), UnpackError::Gzip(GzipError::ReservedFlags));
    assert_eq!(
        with(2, 9).to_string(),
        "gzip: invalid method 9",
        "Display names the refusal"
    );
}

#[test]
fn gzip_checksum_and_length_checked() {
    let data = pattern(5000);
    let mut s = gzip(&data);
    let n = s.len();
    s[n - 8] ^= 1;
    assert!(matches!(
        unpack_all(&packed(&s)),
        Err(UnpackError::Gzip(GzipError::Crc { .. }))
    ));
    // A trailer claiming more than the stream holds: the output is short
    // of it, and ISIZE (the same four bytes) disagrees with the stream.
    let mut s = gzip(&data);
    s[n - 4..].copy_from_slice(&size_trailer(6000));
    assert_eq!(
        unpack_all(&packed(&s)),
        Err(UnpackError::Gzip(GzipError::Length {
            stored: 6000,
            unpacked: 5000
        }))
    );
    // Claiming less: the output buffer fills first.
    s[n - 4..].copy_from_slice(&size_trailer(4000));
    assert_eq!(
        unpack_all(&packed(&s)),
        Err(UnpackError::TooLong { expected: 4000 })
    );
}

/// `good` with byte `at` flipped by each of a few masks, for every
/// `step`-th byte from `from` up to the trailing length.
fn corruptions(
    good: &[u8],
    from: usize,
    step: usize,
) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
    (from..good.len() - 4).step_by(step).flat_map(move |at| {
        [0x01u8, 0x80, 0xff].into_iter().map(move |flip| {
            let mut s = good.to_vec();
            s[at] ^= flip;
            (at, s)
        })
    })
}

/// `good` cut at every `step`-th byte from `from`, the length put back.
fn truncations(good: &[u8], from: usize, step: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    (from..good.len() - 4).step_by(step).map(move |cut| {
        let mut s = good[..cut].to_vec();
        s.extend_from_slice(&good[good.len() - 4..]);
        s
    })
}

#[test]
fn corrupt_gzip_refused_never_a_panic() {
    let data = pattern(20_000);
    let good = gzip(&data);
    let body = 10 + b"vmlinux.bin\0".len();
    // Corrupting the deflate data or its trailer gives an error or (when
    // the corruption is in unused bits) the data itself, never a panic.
    for (at, s) in corruptions(&good, body, 7) {
        if let Ok(out) = unpack_all(&packed(&s)) {
            assert_eq!(out, data, "corruption at {at} went unnoticed");
        }
    }
    for s in truncations(&good, body, 13) {
        assert!(unpack_all(&packed(&s)).is_err(), "truncated to {}", s.len());
    }
}

#[test]
fn lz4_legacy_payload_unpacks_to_the_elf() {
    let elf = an_elf();
    let image = bzimage(&lz4_legacy(&elf), 0x020f);
    let p = packed(&image);
    assert_eq!(p.compression, Compression::Lz4Legacy);
    let out = unpack_all(&p).unwrap();
    assert_eq!(out, elf);
}

#[test]
fn lz4_legacy_blocks_of_8_mib() {
    // Three blocks: 8 MiB, 8 MiB and the rest.
    let data = pattern(2 * LZ4_LEGACY_BLOCK + 12345);
    let stream = lz4_legacy(&data);
    assert_eq!(unpack_all(&packed(&stream)).unwrap(), data);
}

#[test]
fn lz4_concatenated_magic_skipped() {
    let data = pattern(3000);
    let one = lz4_legacy(&data);
    // magic, block; magic again, then the size.
    let mut s = one[..one.len() - 4].to_vec();
    s.extend_from_slice(&LZ4_LEGACY_MAGIC);
    s.extend_from_slice(&size_trailer(data.len()));
    assert_eq!(unpack_all(&packed(&s)).unwrap(), data);
}

#[test]
fn lz4_length_mismatches_refused() {
    let data = pattern(3000);
    let mut s = lz4_legacy(&data);
    let n = s.len();
    s[n - 4..].copy_from_slice(&size_trailer(2000));
    assert_eq!(
        unpack_all(&packed(&s)),
        Err(UnpackError::Lz4(Lz4Error::Block { index: 0 }))
    );
    s[n - 4..].copy_from_slice(&size_trailer(4000));
    assert_eq!(
        unpack_all(&packed(&s)),
        Err(UnpackError::Lz4(Lz4Error::Block { index: 0 }))
    );
    // A second block where the trailer leaves no room.
    let mut two = lz4_legacy(&data);
    two.truncate(two.len() - 4);
    let block = lz4_flex::block::compress(b"more");
    two.extend_from_slice(&size_trailer(block.len()));
    two.extend(block);
    two.extend_from_slice(&size_trailer(data.len()));
    assert_eq!(
        unpack_all(&packed(&two)),
        Err(UnpackError::TooLong { expected: 3000 })
    );
}

#[test]
fn corrupt_lz4_refused_never_a_panic() {
    let data = pattern(20_000);
    let good = lz4_legacy(&data);
    for (_, s) in corruptions(&good, 4, 5) {
        if let Ok(out) = unpack_all(&packed(&s)) {
            // LZ4 has no checksum: a literal byte may change.
            assert_eq!(out.len(), data.len());
        }
    }
    for s in truncations(&good, 4, 11) {
        assert!(unpack_all(&packed(&s)).is_err(), "truncated to {}", s.len());
    }
}

#[test]
fn xz_as_linux_packs_it_unpacks() {
    let stream = fixture("pattern-linux.xz");
    let image = bzimage(&stream, 0x020f);
    let p = packed(&image);
    assert_eq!(p.compression, Compression::Xz);
    assert_eq!(p.unpacked_len, 65536);
    assert_eq!(unpack_all(&p).unwrap(), pattern(65536));
}

#[test]
fn xz_asks_for_its_dictionary() {
    let stream = fixture("pattern-linux.xz");
    let p = packed(&stream);
    let mut out = vec![0; p.unpacked_len];
    assert_eq!(
        unpack(&p, &mut out, &mut []),
        Err(UnpackError::XzDictionaryTooSmall { needed: 32 << 20 })
    );
    let p64 = fixture("pattern-dict64k.xz");
    let p64 = packed(&p64);
    assert_eq!(
        unpack(&p64, &mut out, &mut [0; 4096]),
        Err(UnpackError::XzDictionaryTooSmall { needed: 64 << 10 })
    );
    assert_eq!(unpack(&p64, &mut out, &mut vec![0; 64 << 10]), Ok(()));
    assert_eq!(out, pattern(65536));
}

#[test]
fn xz_check_types_are_xens() {
    let stream = fixture("pattern-crc64.xz");
    let e = unpack_all(&packed(&stream)).unwrap_err();
    assert!(matches!(e, UnpackError::Xz(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("XZ: Input was encoded with settings that are not supported"),
        "{e}"
    );
}

#[test]
fn xz_length_mismatches_refused() {
    let mut s = fixture("pattern-dict64k.xz");
    let n = s.len();
    s[n - 4..].copy_from_slice(&size_trailer(60_000));
    assert_eq!(
        unpack_all(&packed(&s)),
        Err(UnpackError::TooLong { expected: 60_000 })
    );
    s[n - 4..].copy_from_slice(&size_trailer(70_000));
    assert_eq!(
        unpack_all(&packed(&s)),
        Err(UnpackError::TooShort {
            expected: 70_000,
            got: 65536
        })
    );
}

#[test]
fn corrupt_xz_refused_never_a_panic() {
    let good = fixture("pattern-dict64k.xz");
    let data = pattern(65536);
    for (at, s) in corruptions(&good, 6, 3) {
        if let Ok(out) = unpack_all(&packed(&s)) {
            assert_eq!(out, data, "corruption at {at} went unnoticed");
        }
    }
    // Xen's words for a corrupt stream.
    let mut s = good.clone();
    s[good.len() / 2] ^= 0x55;
    let e = unpack_all(&packed(&s)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("XZ: XZ-compressed data is corrupt ("),
        "{e}"
    );
    for s in truncations(&good, 6, 17) {
        assert!(unpack_all(&packed(&s)).is_err(), "truncated to {}", s.len());
    }
}

#[test]
fn output_of_the_wrong_size_is_a_caller_bug_not_a_panic() {
    let stream = gzip(b"payload");
    let p = packed(&stream);
    assert_eq!(
        unpack(&p, &mut [0; 3], &mut []),
        Err(UnpackError::OutputLength)
    );
}
