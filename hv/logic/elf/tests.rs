//! Host tests of the PV kernel parser, on images built by a small test-only
//! ELF writer: the variants of `xen-facts.md` and hostile images.

use super::*;
use crate::layout::dom0_layout;

const BASE: u64 = 0xffff_ffff_8000_0000;

/// Where the Xen notes go.
#[derive(Clone, Copy, PartialEq)]
enum NotesIn {
    Segment,
    /// A PT_NOTE with p_offset 0 (ignored by Xen) and an SHT_NOTE section.
    Section,
}

#[derive(Clone)]
struct Load {
    paddr: u64,
    data: Vec<u8>,
    memsz: u64,
    flags: u32,
}

#[derive(Clone)]
struct Img {
    class: u8,
    endian: u8,
    etype: u16,
    machine: u16,
    entry: u64,
    loads: Vec<Load>,
    notes: Vec<(Vec<u8>, u32, Vec<u8>)>,
    notes_in: NotesIn,
}

fn note_bytes(name: &[u8], ntype: u32, desc: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&u32::try_from(name.len()).unwrap().to_le_bytes());
    v.extend_from_slice(&u32::try_from(desc.len()).unwrap().to_le_bytes());
    v.extend_from_slice(&ntype.to_le_bytes());
    v.extend_from_slice(name);
    v.resize(v.len().next_multiple_of(4), 0);
    v.extend_from_slice(desc);
    v.resize(v.len().next_multiple_of(4), 0);
    v
}

fn num(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn s(v: &str) -> Vec<u8> {
    let mut b = v.as_bytes().to_vec();
    b.push(0);
    b
}

impl Img {
    /// xen-facts.md's "full" variant: a 0xdd000-byte image at VIRT_BASE.
    fn full() -> Self {
        let mut img = Self::min();
        img.notes = vec![];
        img.xen(note_type::GUEST_OS, s("XenTest"))
            .xen(note_type::GUEST_VERSION, s("0.1"))
            .xen(note_type::XEN_VERSION, s("xen-3.0"))
            .xen(note_type::LOADER, s("generic"))
            .xen(note_type::VIRT_BASE, num(BASE))
            .xen(note_type::PADDR_OFFSET, num(0))
            .xen(note_type::ENTRY, num(BASE))
            .xen(note_type::HYPERCALL_PAGE, num(BASE + 0x1000))
            .xen(note_type::PAE_MODE, s("yes"))
            .xen(
                note_type::SUPPORTED_FEATURES,
                (1u32 << 11).to_le_bytes().to_vec(),
            )
    }

    /// xen-facts.md's "min" variant.
    fn min() -> Self {
        let img = Self {
            class: 2,
            endian: 1,
            etype: 2,
            machine: 62,
            entry: BASE,
            loads: vec![
                Load {
                    paddr: 0,
                    data: vec![0x90; 0x2000],
                    memsz: 0x2000,
                    flags: 5,
                },
                Load {
                    paddr: 0x2000,
                    data: vec![0xaa; 0x100],
                    memsz: 0xdb000,
                    flags: 6,
                },
            ],
            notes: vec![],
            notes_in: NotesIn::Segment,
        };
        img.xen(note_type::XEN_VERSION, s("xen-3.0"))
            .xen(note_type::LOADER, s("generic"))
            .xen(note_type::VIRT_BASE, num(BASE))
    }

    /// Linked with virtual == physical addresses at 1 MiB, no VIRT_BASE.
    fn v_eq_p() -> Self {
        let mut img = Self::min();
        img.notes.retain(|n| n.1 != note_type::VIRT_BASE);
        img.entry = 0x10_0000;
        img.loads = vec![Load {
            paddr: 0x10_0000,
            data: vec![1; 0x3000],
            memsz: 0x5000,
            flags: 7,
        }];
        img
    }

    fn xen(mut self, ntype: u32, desc: Vec<u8>) -> Self {
        self.notes.push((b"Xen\0".to_vec(), ntype, desc));
        self
    }

    fn without(mut self, ntype: u32) -> Self {
        self.notes.retain(|n| n.1 != ntype);
        self
    }

    fn build(&self) -> Vec<u8> {
        let notes: Vec<u8> = self
            .notes
            .iter()
            .flat_map(|(n, t, d)| note_bytes(n, *t, d))
            .collect();
        let phnum = self.loads.len() + 1;
        let notes_off = 64 + 56 * phnum;
        let mut data_off = (notes_off + notes.len()).next_multiple_of(16);
        let mut load_offs = Vec::new();
        for l in &self.loads {
            load_offs.push(data_off);
            data_off = (data_off + l.data.len()).next_multiple_of(16);
        }
        let shoff = data_off;
        let shnum: u16 = if self.notes_in == NotesIn::Section {
            2
        } else {
            0
        };

        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF");
        out.extend_from_slice(&[self.class, self.endian, 1, 0]);
        out.resize(16, 0);
        out.extend_from_slice(&self.etype.to_le_bytes());
        out.extend_from_slice(&self.machine.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&self.entry.to_le_bytes());
        out.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
        out.extend_from_slice(&(if shnum > 0 { shoff as u64 } else { 0 }).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        out.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
        out.extend_from_slice(&56u16.to_le_bytes());
        out.extend_from_slice(&u16::try_from(phnum).unwrap().to_le_bytes());
        out.extend_from_slice(&64u16.to_le_bytes());
        out.extend_from_slice(&shnum.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        assert_eq!(out.len(), 64);

        let phdr =
            |out: &mut Vec<u8>, t: u32, f: u32, off: u64, addr: u64, filesz: u64, memsz: u64| {
                for v in [t, f] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                // offset, vaddr, paddr, filesz, memsz, align
                for v in [off, addr, addr, filesz, memsz, 16] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            };
        for (l, off) in self.loads.iter().zip(&load_offs) {
            // p_vaddr = p_paddr + VIRT_BASE would be typical; the parser ignores it.
            phdr(
                &mut out,
                1,
                l.flags,
                *off as u64,
                l.paddr,
                l.data.len() as u64,
                l.memsz,
            );
        }
        let note_seg_off = if self.notes_in == NotesIn::Segment {
            notes_off as u64
        } else {
            0
        };
        phdr(
            &mut out,
            4,
            4,
            note_seg_off,
            0,
            notes.len() as u64,
            notes.len() as u64,
        );
        out.extend_from_slice(&notes);
        for (l, off) in self.loads.iter().zip(&load_offs) {
            out.resize(*off, 0);
            out.extend_from_slice(&l.data);
        }
        out.resize(data_off, 0);
        if shnum > 0 {
            out.extend_from_slice(&[0; 64]);
            let mut sh = vec![0u8; 64];
            sh[4..8].copy_from_slice(&7u32.to_le_bytes());
            sh[24..32].copy_from_slice(&(notes_off as u64).to_le_bytes());
            sh[32..40].copy_from_slice(&(notes.len() as u64).to_le_bytes());
            out.extend_from_slice(&sh);
        }
        out
    }
}

/// xen-facts.md's "full" variant packed as Linux packs `vmlinux`: a gzip
/// and an LZ4 (legacy) payload in a bzImage. What `kernel-image` unpacks
/// is the ELF again, which this parser takes.
#[test]
fn a_packed_kernel_unpacks_to_what_the_parser_takes() {
    use crate::bzimage::{classify, unpack, KernelImage};
    let elf = Img::full().build();
    let len = u32::try_from(elf.len()).unwrap().to_le_bytes();
    let mut gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gzip.extend(miniz_oxide::deflate::compress_to_vec(&elf, 9));
    gzip.extend(crc32fast::hash(&elf).to_le_bytes());
    gzip.extend(len);
    let mut lz4 = crate::bzimage::LZ4_LEGACY_MAGIC.to_vec();
    for chunk in elf.chunks(crate::bzimage::LZ4_LEGACY_BLOCK) {
        let block = lz4_flex::block::compress(chunk);
        lz4.extend(u32::try_from(block.len()).unwrap().to_le_bytes());
        lz4.extend(block);
    }
    lz4.extend(len);
    for payload in [gzip, lz4] {
        let mut image = vec![0u8; 1024];
        image[0x1f1] = 1; // setup_sects
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        image[0x248..0x24c].copy_from_slice(&0u32.to_le_bytes());
        image[0x24c..0x250].copy_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
        image.extend(&payload);
        let Ok(KernelImage::Packed(p)) = classify(&image) else {
            panic!("not a packed kernel")
        };
        let mut out = vec![0u8; p.unpacked_len];
        unpack(&p, &mut out, &mut []).unwrap();
        assert_eq!(out, elf);
        assert!(parse(&out, Policy::XEN_DOM0).is_ok());
    }
}

fn parse_dom0(img: &[u8]) -> Result<PvKernel<'_>, ElfError> {
    parse(img, Policy::XEN_DOM0)
}

fn err(img: Img) -> ElfError {
    parse_dom0(&img.build()).unwrap_err()
}

/// Offset of program header `i` in an image built by `Img::build`.
fn ph(i: usize) -> usize {
    64 + 56 * i
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn full_variant_boots() {
    let bytes = Img::full().build();
    let k = parse_dom0(&bytes).unwrap();
    assert_eq!(k.virt_base, BASE);
    assert_eq!(k.paddr_offset, 0);
    assert_eq!(k.virt_offset, BASE);
    assert_eq!((k.paddr_start, k.paddr_end), (0, 0xdd000));
    assert_eq!((k.virt_kstart, k.virt_kend), (BASE, BASE + 0xdd000));
    assert_eq!(k.virt_entry, BASE);
    assert_eq!(k.virt_hypercall, Some(BASE + 0x1000));
    assert_eq!(k.pae, PaeMode::ExtendedCr3);
    assert_eq!(k.start_info_magic(), "xen-3.0-x86_64p");
    assert_eq!(k.features_supported, 1 << 11);
    assert_eq!(k.features_required, 0);
    assert_eq!(k.notes.guest_os, Some(b"XenTest".as_slice()));
    assert_eq!(k.notes.guest_version, Some(b"0.1".as_slice()));
    assert_eq!(k.notes.count, 10);
    assert!(!k.unmapped_initrd);

    let segs: Vec<_> = k.segments().collect();
    assert_eq!(segs.len(), 2);
    assert_eq!(
        (segs[0].dest, segs[0].data.len(), segs[0].memsz),
        (BASE, 0x2000, 0x2000)
    );
    assert!(segs[0].data.iter().all(|&b| b == 0x90));
    assert_eq!(
        (segs[1].dest, segs[1].data.len(), segs[1].memsz),
        (BASE + 0x2000, 0x100, 0xdb000)
    );
    assert!(segs[1].data.iter().all(|&b| b == 0xaa));

    // And the layout xen-facts.md observed for it.
    let l = dom0_layout(&k.layout_params(), 16384, 0).unwrap();
    assert_eq!(
        (l.vphysmap_start, l.vstartinfo_start),
        (BASE + 0xdd000, BASE + 0xfd000)
    );
    assert_eq!(
        (l.vpt_start, l.vpt_end, l.nr_pt_frames),
        (BASE + 0xfe000, BASE + 0x103000, 5)
    );
    assert_eq!((l.vstack_end, l.v_end), (BASE + 0x104000, BASE + 0x40_0000));
}

#[test]
fn min_variant_boots() {
    let bytes = Img::min().build();
    let k = parse_dom0(&bytes).unwrap();
    assert_eq!(
        (k.virt_kstart, k.virt_kend, k.virt_entry),
        (BASE, BASE + 0xdd000, BASE)
    );
    assert_eq!(k.virt_hypercall, None);
    assert_eq!(k.pae, PaeMode::No);
    assert_eq!(k.start_info_magic(), "xen-3.0-x86_64");
}

#[test]
fn novbase_variant_is_out_of_bounds() {
    // virt_base 0, image at 0..0xdd000, entry 0xffffffff80000000.
    assert_eq!(
        err(Img::min().without(note_type::VIRT_BASE)),
        ElfError::OutOfBounds
    );
    assert_eq!(
        ElfError::OutOfBounds.to_string(),
        "ELF start or entries are out of bounds"
    );
}

#[test]
fn virtual_equals_physical_without_virt_base() {
    let bytes = Img::v_eq_p().build();
    let k = parse_dom0(&bytes).unwrap();
    assert_eq!((k.virt_base, k.virt_offset), (0, 0));
    assert_eq!(
        (k.virt_kstart, k.virt_kend, k.virt_entry),
        (0x10_0000, 0x10_5000, 0x10_0000)
    );
    let seg = k.segments().next().unwrap();
    assert_eq!(
        (seg.dest, seg.data.len(), seg.memsz),
        (0x10_0000, 0x3000, 0x5000)
    );
    let l = dom0_layout(&k.layout_params(), 4096, 0).unwrap();
    assert_eq!(l.v_start, 0);
    assert_eq!(l.vphysmap_start, 0x10_5000);
    assert_eq!(l.pfn_of(0x10_0000), Some(0x100));
}

#[test]
fn noloader_variant_refused() {
    assert_eq!(
        err(Img::full().without(note_type::LOADER)),
        ElfError::WrongLoader
    );
    assert!(ElfError::WrongLoader
        .to_string()
        .starts_with("Will only load images built for the generic loader"));
    // A wrong loader string too.
    let img = Img::full()
        .without(note_type::LOADER)
        .xen(note_type::LOADER, s("special"));
    assert_eq!(err(img), ElfError::WrongLoader);
}

#[test]
fn linux_variant_boots() {
    let img = Img::full()
        .without(note_type::LOADER)
        .without(note_type::GUEST_OS)
        .xen(note_type::GUEST_OS, s("linux"));
    assert!(parse_dom0(&img.build()).is_ok());
}

#[test]
fn phys32_entry_does_not_exempt_pv_from_loader_check() {
    let img = Img::full()
        .without(note_type::LOADER)
        .xen(note_type::PHYS32_ENTRY, 0x100000u32.to_le_bytes().to_vec());
    assert_eq!(err(img), ElfError::WrongLoader);
}

#[test]
fn nodom0_variant_refused_for_dom0_only() {
    let img = Img::full()
        .without(note_type::SUPPORTED_FEATURES)
        .xen(note_type::SUPPORTED_FEATURES, 0u32.to_le_bytes().to_vec());
    let bytes = img.build();
    assert_eq!(parse_dom0(&bytes).unwrap_err(), ElfError::NoDom0Support);
    assert_eq!(
        ElfError::NoDom0Support.to_string(),
        "Kernel does not support Dom0 operation"
    );
    let domu = Policy {
        initial_domain: false,
        ..Policy::XEN_DOM0
    };
    assert!(parse(&bytes, domu).is_ok());
    // Without SUPPORTED_FEATURES nothing is checked.
    assert!(parse_dom0(&Img::full().without(note_type::SUPPORTED_FEATURES).build()).is_ok());
    // `dom0` named in FEATURES counts as supported too (Xen ORs them).
    let img = img.xen(note_type::FEATURES, s("dom0"));
    assert!(parse_dom0(&img.build()).is_ok());
}

#[test]
fn missing_or_wrong_xen_version() {
    assert_eq!(
        err(Img::full().without(note_type::XEN_VERSION)),
        ElfError::WrongXenVersion
    );
    let img = Img::full()
        .without(note_type::XEN_VERSION)
        .xen(note_type::XEN_VERSION, s("xen-2.0"));
    assert_eq!(err(img), ElfError::WrongXenVersion);
    let img = Img::full()
        .without(note_type::XEN_VERSION)
        .xen(note_type::XEN_VERSION, s("xen-3.0-x86_64"));
    assert!(parse_dom0(&img.build()).is_ok());
}

#[test]
fn loader_checked_before_xen_version() {
    let img = Img::full()
        .without(note_type::XEN_VERSION)
        .without(note_type::LOADER);
    assert_eq!(err(img), ElfError::WrongLoader);
}

#[test]
fn notes_from_sections_when_no_note_segment() {
    let mut img = Img::full();
    img.notes_in = NotesIn::Section;
    let bytes = img.build();
    let k = parse_dom0(&bytes).unwrap();
    assert_eq!(k.virt_base, BASE);
    assert_eq!(k.notes.count, 10);
}

#[test]
fn no_xen_notes() {
    let mut img = Img::full();
    img.notes = vec![(b"GNU\0".to_vec(), 3, vec![1, 2, 3, 4])];
    assert_eq!(err(img), ElfError::NotXenImage);
}

#[test]
fn other_notes_are_skipped() {
    let mut img = Img::full();
    img.notes
        .insert(0, (b"GNU\0".to_vec(), note_type::VIRT_BASE, num(0x1234)));
    assert_eq!(parse_dom0(&img.build()).unwrap().virt_base, BASE);
}

#[test]
fn duplicate_notes_last_wins_features_accumulate() {
    let img = Img::full()
        .xen(note_type::ENTRY, num(BASE + 0x10))
        .xen(note_type::FEATURES, s("writable_descriptor_tables"))
        .xen(
            note_type::FEATURES,
            s("!writable_page_tables|pae_pgdir_above_4gb"),
        )
        .xen(
            note_type::SUPPORTED_FEATURES,
            (1u32 << 15).to_le_bytes().to_vec(),
        )
        .xen(note_type::PAE_MODE, s("no"));
    let bytes = img.build();
    let k = parse_dom0(&bytes).unwrap();
    assert_eq!(k.virt_entry, BASE + 0x10);
    assert_eq!(
        k.features_supported,
        (1 << 0) | (1 << 1) | (1 << 4) | (1 << 11) | (1 << 15)
    );
    assert_eq!(k.features_required, 1 << 0);
    assert_eq!(k.notes.supported_features, Some(1 << 15));
    assert_eq!(
        k.notes.features,
        Some(b"!writable_page_tables|pae_pgdir_above_4gb".as_slice())
    );
    // A later "no" does not clear PAE, as in libelf.
    assert_eq!(k.pae, PaeMode::ExtendedCr3);
    assert_eq!(k.notes.pae_mode, Some(b"no".as_slice()));
}

#[test]
fn required_features() {
    // Linux's FEATURES (`.ascii`, no NUL): accepted by Xen's dom0 builder.
    let img = Img::full().xen(note_type::FEATURES, b"!writable_page_tables".to_vec());
    assert_eq!(parse_dom0(&img.build()).unwrap().features_required, 1);
    let img = Img::full().xen(note_type::FEATURES, s("!supervisor_mode_kernel"));
    assert_eq!(err(img), ElfError::RequiredFeatureUnsupported { bit: 3 });
    let img = Img::full().xen(note_type::FEATURES, s("!no_such_feature"));
    assert_eq!(err(img), ElfError::UnknownRequiredFeature);
    let img = Img::full().xen(
        note_type::FEATURES,
        s("no_such_feature|hvm_callback_vector"),
    );
    assert_eq!(
        parse_dom0(&img.build()).unwrap().features_supported,
        (1 << 8) | (1 << 11)
    );
    // A stricter policy.
    let img = Img::full().xen(note_type::FEATURES, s("!auto_translated_physmap"));
    let strict = Policy {
        initial_domain: true,
        requirable_features: 0,
    };
    assert_eq!(
        parse(&img.build(), strict).unwrap_err(),
        ElfError::RequiredFeatureUnsupported { bit: 2 }
    );
}

#[test]
fn numeric_note_sizes() {
    for (desc, want) in [
        (vec![0x12], 0x12),
        (vec![0x34, 0x12], 0x1234),
        (vec![0x78, 0x56, 0x34, 0x12], 0x1234_5678),
        (num(0x1122_3344_5566_7788), 0x1122_3344_5566_7788),
        // Other sizes read as 0, as Xen's elf_note_numeric does.
        (vec![1, 2, 3], 0),
        (vec![], 0),
    ] {
        let img = Img::full().xen(note_type::SUSPEND_CANCEL, desc);
        let bytes = img.build();
        assert_eq!(parse_dom0(&bytes).unwrap().notes.suspend_cancel, Some(want));
    }
    // Linux's 16-byte L1_MFN_VALID is kept raw.
    let img = Img::full().xen(note_type::L1_MFN_VALID, [num(1), num(1)].concat());
    let bytes = img.build();
    let k = parse_dom0(&bytes).unwrap();
    assert_eq!(k.notes.l1_mfn_valid, Some(0));
    assert_eq!(k.notes.l1_mfn_valid_raw.map(<[u8]>::len), Some(16));
}

#[test]
fn other_notes_parsed() {
    let img = Img::full()
        .xen(note_type::MOD_START_PFN, vec![1])
        .xen(note_type::INIT_P2M, num(0xffff_c000_0000_0000))
        .xen(note_type::HV_START_LOW, num(0xf580_0000))
        .xen(note_type::PHYS32_ENTRY, 0x10_0000u32.to_le_bytes().to_vec());
    let bytes = img.build();
    let k = parse_dom0(&bytes).unwrap();
    assert!(k.unmapped_initrd);
    assert_eq!(k.p2m_base, Some(0xffff_c000_0000_0000));
    assert_eq!(k.notes.hv_start_low, Some(0xf580_0000));
    assert_eq!(k.notes.phys32_entry, Some(0x10_0000));
    let p = k.layout_params();
    assert!(p.unmapped_initrd);
    assert_eq!(p.p2m_base, Some(0xffff_c000_0000_0000));
}

#[test]
fn p2m_base_inside_image_refused() {
    let img = Img::full().xen(note_type::INIT_P2M, num(BASE + 0x1000));
    assert_eq!(err(img), ElfError::P2mBaseInImage);
}

#[test]
fn paddr_offset_without_virt_base() {
    let img = Img::v_eq_p().xen(note_type::PADDR_OFFSET, num(0));
    assert_eq!(err(img), ElfError::PaddrOffsetWithoutVirtBase);
}

#[test]
fn paddr_offset_moves_the_image() {
    // Old Linux style: paddr == vaddr, PADDR_OFFSET == VIRT_BASE.
    let mut img = Img::full()
        .without(note_type::PADDR_OFFSET)
        .xen(note_type::PADDR_OFFSET, num(BASE));
    for l in &mut img.loads {
        l.paddr += BASE;
    }
    let bytes = img.build();
    let k = parse_dom0(&bytes).unwrap();
    assert_eq!(k.virt_offset, 0);
    assert_eq!((k.virt_kstart, k.virt_kend), (BASE, BASE + 0xdd000));
    assert_eq!(k.segments().nth(1).unwrap().dest, BASE + 0x2000);
}

#[test]
fn entry_outside_image() {
    let img = Img::full().xen(note_type::ENTRY, num(BASE + 0xdd001));
    assert_eq!(err(img), ElfError::OutOfBounds);
    let img = Img::full().xen(note_type::ENTRY, num(BASE - 1));
    assert_eq!(err(img), ElfError::OutOfBounds);
    // Xen's upper bound is inclusive.
    let img = Img::full().xen(note_type::ENTRY, num(BASE + 0xdd000));
    assert!(parse_dom0(&img.build()).is_ok());
    // VIRT_BASE above the image.
    let img = Img::full()
        .xen(note_type::VIRT_BASE, num(BASE + 0x1000))
        .xen(note_type::PADDR_OFFSET, num(0x1000));
    assert_eq!(err(img), ElfError::OutOfBounds);
}

#[test]
fn hypercall_page_outside_image() {
    let img = Img::full().xen(note_type::HYPERCALL_PAGE, num(BASE + 0xdd000));
    assert_eq!(err(img), ElfError::HypercallPageOutOfImage);
    let img = Img::full().xen(note_type::HYPERCALL_PAGE, num(0));
    assert_eq!(err(img), ElfError::HypercallPageOutOfImage);
}

#[test]
fn elf32_refused() {
    let mut img = Img::full();
    img.class = 1;
    assert_eq!(err(img), ElfError::Not64Bit);
    assert_eq!(
        ElfError::Not64Bit.to_string(),
        "not a 64-bit PV kernel (32-bit ELF)"
    );
}

#[test]
fn header_identity_checks() {
    let mut img = Img::full();
    img.endian = 2;
    assert_eq!(err(img), ElfError::NotLittleEndian);
    let mut img = Img::full();
    img.machine = 3;
    assert_eq!(err(img), ElfError::WrongMachine);
    let mut img = Img::full();
    img.etype = 3;
    assert_eq!(err(img), ElfError::NotExecutable);
    let mut img = Img::full();
    img.class = 9;
    assert_eq!(err(img), ElfError::BadClass);
    let mut bytes = Img::full().build();
    bytes[0] = b'X';
    assert_eq!(parse_dom0(&bytes).unwrap_err(), ElfError::NotElf);
}

#[test]
fn truncated_header() {
    let bytes = Img::full().build();
    for len in [0, 3, 4, 16, 63] {
        assert_eq!(
            parse_dom0(&bytes[..len]).unwrap_err(),
            ElfError::Truncated,
            "len {len}"
        );
    }
    assert_eq!(parse_dom0(b"MZ\x90\x00").unwrap_err(), ElfError::NotElf);
}

#[test]
fn program_headers_past_end() {
    let bytes = Img::full().build();
    // Cut inside the program header table.
    assert_eq!(
        parse_dom0(&bytes[..100]).unwrap_err(),
        ElfError::ProgramHeadersOutOfBounds
    );
    let mut b = bytes.clone();
    let len = b.len() as u64;
    put64(&mut b, 32, len - 8);
    assert_eq!(
        parse_dom0(&b).unwrap_err(),
        ElfError::ProgramHeadersOutOfBounds
    );
    let mut b = bytes.clone();
    put64(&mut b, 32, u64::MAX - 8);
    assert_eq!(
        parse_dom0(&b).unwrap_err(),
        ElfError::ProgramHeadersOutOfBounds
    );
    let mut b = bytes;
    b[56..58].copy_from_slice(&1000u16.to_le_bytes());
    assert_eq!(parse_dom0(&b).unwrap_err(), ElfError::TooManyProgramHeaders);
}

#[test]
fn section_headers_past_end() {
    let mut img = Img::full();
    img.notes_in = NotesIn::Section;
    let mut b = img.build();
    let len = b.len() as u64;
    put64(&mut b, 40, len - 64);
    assert_eq!(
        parse_dom0(&b).unwrap_err(),
        ElfError::SectionHeadersOutOfBounds
    );
}

#[test]
fn segment_past_end_of_file() {
    let mut b = Img::full().build();
    let len = b.len() as u64;
    put64(&mut b, ph(1) + 8, len - 0x10); // p_offset of segment 1
    assert_eq!(
        parse_dom0(&b).unwrap_err(),
        ElfError::SegmentOutOfFile { index: 1 }
    );
    put64(&mut b, ph(1) + 8, u64::MAX);
    assert_eq!(
        parse_dom0(&b).unwrap_err(),
        ElfError::SegmentOutOfFile { index: 1 }
    );
}

#[test]
fn filesz_greater_than_memsz() {
    let mut img = Img::full();
    img.loads[1].memsz = 0x80;
    assert_eq!(
        err(img),
        ElfError::SegmentFileSizeExceedsMemSize { index: 1 }
    );
}

#[test]
fn overlapping_segments() {
    let mut img = Img::full();
    img.loads[1].paddr = 0x1fff;
    assert_eq!(
        err(img),
        ElfError::SegmentsOverlap {
            first: 0,
            second: 1
        }
    );
    // Segments without R/W/X are not loaded, so cannot overlap.
    let mut img = Img::full();
    img.loads.push(Load {
        paddr: 0x1000,
        data: vec![],
        memsz: 0x1000,
        flags: 0,
    });
    assert!(parse_dom0(&img.build()).is_ok());
}

#[test]
fn absurd_sizes() {
    let mut img = Img::full();
    img.loads[1].memsz = 1 << 31;
    assert_eq!(err(img), ElfError::ImageTooLarge);
    let mut img = Img::full();
    img.loads[1].memsz = u64::MAX - 0x10;
    assert_eq!(err(img), ElfError::SegmentAddressOverflow { index: 1 });
    let mut img = Img::full();
    img.loads[1].paddr = 1 << 40;
    assert_eq!(err(img), ElfError::ImageTooLarge);
    // The virtual range would wrap past 2^64.
    let img = Img::full()
        .xen(note_type::VIRT_BASE, num(u64::MAX - 0x1000))
        .xen(note_type::ENTRY, num(u64::MAX - 0x1000));
    assert_eq!(err(img), ElfError::OutOfBounds);
}

#[test]
fn segment_count_limits() {
    let mut img = Img::full();
    img.loads = (0..17u64)
        .map(|i| Load {
            paddr: i * 0x1000,
            data: vec![0; 16],
            memsz: 0x1000,
            flags: 4,
        })
        .collect();
    img.notes.retain(|n| n.1 != note_type::HYPERCALL_PAGE);
    assert_eq!(err(img.clone()), ElfError::TooManyLoadSegments);
    img.loads.pop();
    assert!(parse_dom0(&img.build()).is_ok());
    let mut img = Img::full();
    img.loads.clear();
    assert_eq!(err(img), ElfError::NoLoadableSegments);
}

#[test]
fn malformed_notes() {
    // descsz runs past the note segment.
    let mut img = Img::full();
    img.notes
        .push((b"Xen\0".to_vec(), note_type::ENTRY, num(BASE)));
    let mut b = img.build();
    let notes_off = ph(3);
    let last = b[notes_off..]
        .windows(4)
        .rposition(|w| w == b"Xen\0")
        .unwrap()
        + notes_off
        - 12;
    b[last + 4..last + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert_eq!(parse_dom0(&b).unwrap_err(), ElfError::MalformedNote);
    // namesz too.
    b[last..last + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(parse_dom0(&b).unwrap_err(), ElfError::MalformedNote);
    // A note segment running past the file.
    let mut b = Img::full().build();
    put64(&mut b, ph(2) + 32, 1 << 20);
    assert_eq!(parse_dom0(&b).unwrap_err(), ElfError::NoteOutOfBounds);
    // Trailing garbage shorter than a note header.
    let mut img = Img::full();
    img.notes.push((b"X".to_vec(), 0, vec![]));
    let mut b = img.build();
    let filesz = u64::from_le_bytes(b[ph(2) + 32..ph(2) + 40].try_into().unwrap());
    put64(&mut b, ph(2) + 32, filesz - 8);
    assert_eq!(parse_dom0(&b).unwrap_err(), ElfError::MalformedNote);
}

#[test]
fn bsd_symtab_refused() {
    let img = Img::full().xen(note_type::BSD_SYMTAB, s("yes"));
    assert_eq!(err(img), ElfError::BsdSymtabUnsupported);
    let img = Img::full().xen(note_type::BSD_SYMTAB, s("no"));
    assert!(parse_dom0(&img.build()).is_ok());
}

/// Mutating bytes of a good image must never panic.
#[test]
fn mutations_never_panic() {
    let good = Img::full().build();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let mut b = good.clone();
        // Most interesting bytes are in the headers and notes.
        let window = if next() % 4 == 0 {
            b.len()
        } else {
            64 + 56 * 3 + 256
        };
        for _ in 0..(1 + next() % 4) {
            let at = usize::try_from(next() % window as u64).unwrap();
            b[at] = next().to_le_bytes()[0];
        }
        if next() % 8 == 0 {
            b.truncate(usize::try_from(next() % b.len() as u64).unwrap());
        }
        if let Ok(k) = parse_dom0(&b) {
            for seg in k.segments() {
                assert!(seg.data.len() as u64 <= seg.memsz);
                assert!(seg.dest >= k.virt_kstart && seg.dest + seg.memsz <= k.virt_kend);
            }
            let _ = dom0_layout(&k.layout_params(), next() % (1 << 20), next() % (1 << 24));
        }
    }
}

/// Parses the guest-abi example kernel if someone has built it
/// (`cargo test -p hv --lib -- --ignored`).
#[test]
#[ignore = "needs a guest built outside the repository"]
fn real_guest_elf() {
    let path = "/tmp/tgt-abi/x86_64-unknown-none/release/hello";
    let bytes = std::fs::read(path).expect("guest ELF");
    let k = parse_dom0(&bytes).unwrap();
    let l = dom0_layout(&k.layout_params(), 16384, 0).unwrap();
    assert!(l.bootstrap_page_table_entries().count() as u64 > l.nr_pages_initial);
}
