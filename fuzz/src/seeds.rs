//! Starting inputs for each target, generated rather than committed: a
//! valid PV kernel image (the shape of `xen-facts.md`'s "full" variant), a
//! bundle the writer made, the privileged instructions hv emulates, and so
//! on. libFuzzer mutates from these, which gets it past the magic numbers
//! and header checks at once.

use hv::elf::note_type as nt;

const BASE: u64 = 0xffff_ffff_8000_0000;

/// The seeds of target `name` (empty for an unknown name).
pub fn for_target(name: &str) -> Vec<Vec<u8>> {
    match name {
        "elf" => {
            let mut out = Vec::new();
            for (pages, module) in [(16384u64, 0u64), (4096, 0x10_0000)] {
                let mut v = pages.to_le_bytes().to_vec();
                v.extend_from_slice(&module.to_le_bytes());
                v.extend(elf_image());
                out.push(v);
            }
            out
        }
        "layout" => vec![vec![
            2, 0, 0, 0, 0, 4, 0xd0, 0xd, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x40,
        ]],
        "bundle" => {
            let images = [
                boot_bundle::Image {
                    data: &[0x7f, b'E', b'L', b'F', 1, 2, 3],
                    cmdline: "seed=1 calls=10",
                },
                boot_bundle::Image {
                    data: b"module",
                    cmdline: "",
                },
            ];
            let mut raw = vec![0];
            raw.extend(boot_bundle::build(&images).expect("seed bundle"));
            vec![raw, vec![1, 2, 0, 1, b'a', 3, 0, 1, 2, 3, 1, 0, 1, 0, 9]]
        }
        "bzimage" => {
            let elf = elf_image();
            let xz = include_bytes!("../../tests/data/bzimage/pattern-dict64k.xz");
            let images = [
                bzimage(&gzip(&elf)),
                bzimage(&lz4_legacy(&elf)),
                bzimage(xz),
                xz.to_vec(),
                bzimage(&elf),
            ];
            let mut seeds: Vec<Vec<u8>> = images
                .into_iter()
                .map(|image| [&[0u8][..], &image].concat())
                .collect();
            seeds.push([&[1u8, 1, 0][..], b"gzip, bare: some text text text"].concat());
            seeds.push([&[1u8, 0, 1][..], &elf].concat());
            seeds
        }
        "pt" => vec![
            vec![
                4, 1, 0, 3, 2, 0, 1, 3, 0, 2, 1, 0, 0, 0, 1, 0, 3, 0, 4, 2, 3, 0, 5, 1, 0,
            ],
            vec![
                0, 0, 3, 0, 4, 1, 2, 0, 4, 3, 2, 2, 6, 3, 5, 1, 1, 4, 2, 1, 0,
            ],
            // Pin 3 as an L1, give it back, unpin it (freed), reuse it.
            vec![0, 1, 3, 0, 0, 3, 4, 3, 1, 0, 5],
        ],
        "x86_decode" => vec![
            vec![0xe4, 0x60],
            vec![0x66, 0xef],
            vec![0xf3, 0x67, 0x64, 0x6e],
            vec![0x0f, 0x22, 0xd8],
            vec![0x44, 0x0f, 0x20, 0xe0],
            vec![0x0f, 0x30],
            vec![0xfa],
            hv::x86_decode::FORCED_CPUID.to_vec(),
            vec![0xcd, 0x80],
        ],
        "segdesc" => [
            0x00cf_9300_0000_ffffu64,
            0x0000_ec00_e033_1000,
            0x0000_8c00_000c_1000,
            0x0000_8900_0000_0067,
        ]
        .iter()
        .map(|d| d.to_le_bytes().to_vec())
        .collect(),
        "pv_cpuid" => vec![vec![0, 0, 1, 5, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]],
        "frames" => vec![vec![0x20, 1, 0, 0, 0, 0xff, 2, 3, 4, 1, 4, 5, 0, 2]],
        "evtchn" => vec![evtchn_seed(false), evtchn_seed(true)],
        _ => Vec::new(),
    }
}

fn note(out: &mut Vec<u8>, ntype: u32, desc: &[u8]) {
    let name = b"Xen\0";
    out.extend_from_slice(&u32::try_from(name.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&u32::try_from(desc.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&ntype.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(desc);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// A small valid PV kernel: a PT_NOTE with the usual Xen notes and two
/// loadable segments at `BASE`.
pub fn elf_image() -> Vec<u8> {
    let mut notes = Vec::new();
    note(&mut notes, nt::GUEST_OS, b"linux\0");
    note(&mut notes, nt::XEN_VERSION, b"xen-3.0\0");
    note(&mut notes, nt::LOADER, b"generic\0");
    note(&mut notes, nt::VIRT_BASE, &BASE.to_le_bytes());
    note(&mut notes, nt::PADDR_OFFSET, &0u64.to_le_bytes());
    note(&mut notes, nt::ENTRY, &BASE.to_le_bytes());
    note(
        &mut notes,
        nt::HYPERCALL_PAGE,
        &(BASE + 0x1000).to_le_bytes(),
    );
    note(&mut notes, nt::PAE_MODE, b"yes\0");
    note(
        &mut notes,
        nt::FEATURES,
        b"!writable_page_tables|pae_pgdir_above_4gb\0",
    );
    note(
        &mut notes,
        nt::SUPPORTED_FEATURES,
        &(1u32 << 11).to_le_bytes(),
    );
    note(
        &mut notes,
        nt::INIT_P2M,
        &0xffff_c000_0000_0000u64.to_le_bytes(),
    );
    let phnum = 3u16;
    let notes_off = 64 + 56 * u64::from(phnum);
    let text_off = (notes_off + u64::try_from(notes.len()).unwrap()).next_multiple_of(16);
    let (text, data) = (0x2000u64, 0x100u64);
    let mut v = Vec::new();
    v.extend_from_slice(b"\x7fELF\x02\x01\x01");
    v.resize(16, 0);
    v.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    v.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&BASE.to_le_bytes()); // e_entry
    v.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    v.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    v.extend_from_slice(&0u32.to_le_bytes());
    for h in [64u16, 56, phnum, 64, 0, 0] {
        v.extend_from_slice(&h.to_le_bytes());
    }
    let phdr =
        |v: &mut Vec<u8>, ty: u32, flags: u32, off: u64, paddr: u64, filesz: u64, memsz: u64| {
            v.extend_from_slice(&ty.to_le_bytes());
            v.extend_from_slice(&flags.to_le_bytes());
            for x in [off, BASE + paddr, paddr, filesz, memsz, 8] {
                v.extend_from_slice(&x.to_le_bytes());
            }
        };
    let nlen = u64::try_from(notes.len()).unwrap();
    phdr(&mut v, 4, 4, notes_off, 0, nlen, nlen);
    phdr(&mut v, 1, 5, text_off, 0, text, text);
    phdr(&mut v, 1, 6, text_off + text, text, data, 0xdb000);
    v.extend_from_slice(&notes);
    v.resize(usize::try_from(text_off + text + data).unwrap(), 0x90);
    v
}

/// An `evtchn` input: vCPUs, limit, rules, then steps of (port kind,
/// port, vCPU, operation, operands) that bind, send, mask, drain and,
/// with `fifo`, switch to FIFO first.
fn evtchn_seed(fifo: bool) -> Vec<u8> {
    let mut v = vec![1, 0, 1];
    let mut step = |port: u8, vcpu: u8, op: u8, extra: &[u8]| {
        v.extend_from_slice(&[1, port, vcpu, op]);
        v.extend_from_slice(extra);
    };
    if fifo {
        step(0, 0, 12, &[0]);
        step(0, 1, 12, &[0]);
        step(0, 0, 13, &[]);
    }
    step(0, 1, 3, &[]); // bind_ipi on vCPU 1: port 1
    step(0, 0, 0, &[1, 1]); // alloc_unbound for dom 1: port 2
    step(2, 0, 1, &[]); // bind_interdomain to port 2: port 3
    step(0, 0, 2, &[0]); // bind_virq TIMER on vCPU 0: port 4
    step(1, 0, 5, &[]); // send IPI
    step(3, 0, 5, &[]); // send loopback
    step(1, 0, 10, &[0]); // mask port 1
    step(1, 0, 6, &[]); // send it masked
    step(1, 0, 10, &[2]); // unmask it
    step(4, 1, 8, &[]); // bind_vcpu TIMER to 1: refused
    step(1, 0, 11, &[]); // drain vCPU 0
    step(2, 0, 4, &[]); // close port 2
    step(0, 0, 15, &[0]); // reset
    v
}

/// A gzip member of `data` (RFC 1952, no optional fields).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut v = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    v.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
    v.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    v.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_le_bytes());
    v
}

/// `lz4 -l` of `data` with the unpacked length appended, as Linux packs a
/// kernel.
pub fn lz4_legacy(data: &[u8]) -> Vec<u8> {
    let mut v = hv::bzimage::LZ4_LEGACY_MAGIC.to_vec();
    for chunk in data.chunks(hv::bzimage::LZ4_LEGACY_BLOCK) {
        let block = lz4_flex::block::compress(chunk);
        v.extend_from_slice(&u32::try_from(block.len()).unwrap_or(0).to_le_bytes());
        v.extend(block);
    }
    v.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_le_bytes());
    v
}

/// A bzImage (protocol 2.15, one setup sector) around `payload`.
pub fn bzimage(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 1024];
    v[0x1f1] = 1;
    v[0x202..0x206].copy_from_slice(b"HdrS");
    v[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    let len = u32::try_from(payload.len()).unwrap_or(0);
    v[0x24c..0x250].copy_from_slice(&len.to_le_bytes());
    v.extend_from_slice(payload);
    v
}
