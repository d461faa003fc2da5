//! Wraps a guest kernel ELF as a bzImage, the way Linux's x86 build packs
//! `vmlinux` (`arch/x86/boot/`), so a conformance guest can check that hv
//! accepts what Xen 4.17 accepts as a dom0 kernel (`@bzimage:` in a
//! guest's metadata, see `meta.rs`).
//!
//! The payload is the ELF, compressed by the same tools with the same
//! options as Linux's `scripts/Makefile.lib` (`gzip -n -9`;
//! `scripts/xz_wrap.sh`: `xz --check=crc32 --x86 --lzma2=,dict=32MiB`;
//! `lz4 -l -9`), with the unpacked length appended as four little-endian
//! bytes for XZ and LZ4 (gzip's own trailer ends with it). Around it, a
//! setup area of one boot sector and one setup sector holding the setup
//! header of boot protocol 2.15 (Linux 6.1's): the fields Xen's
//! `bzimage_parse` reads (`setup_sects`, `HdrS`, `version`,
//! `payload_offset`, `payload_length`) and the boot flag. There is no
//! real-mode or decompressor code: Xen and hv never run it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// How the payload is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The ELF as it is.
    Elf,
    Gzip,
    Xz,
    Lz4,
}

/// A `@bzimage:` value: the payload's format, and whether to corrupt it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wrapping {
    pub payload: Payload,
    /// One byte in the middle of the compressed stream flipped: hv and
    /// Xen must refuse it.
    pub corrupt: bool,
}

impl Wrapping {
    /// `none`, `gzip`, `xz` or `lz4`, optionally followed by `:corrupt`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let (name, corrupt) = match value.split_once(':') {
            Some((name, "corrupt")) => (name, true),
            Some(_) => return Err(format!("bzimage: {value:?}: only `:corrupt` may follow")),
            None => (value, false),
        };
        let payload = match name {
            "none" => Payload::Elf,
            "gzip" => Payload::Gzip,
            "xz" => Payload::Xz,
            "lz4" => Payload::Lz4,
            _ => return Err(format!("bzimage: {name:?} is not none, gzip, xz or lz4")),
        };
        if corrupt && payload == Payload::Elf {
            return Err("bzimage: `none:corrupt` has no compressed stream to corrupt".into());
        }
        Ok(Self { payload, corrupt })
    }
}

/// Boot protocol 2.15 (Linux 5.5 to 6.x).
const PROTOCOL: u16 = 0x020f;
/// Setup sectors after the boot sector.
const SETUP_SECTS: u8 = 1;
/// Where the payload starts in the protected-mode part (Linux puts its
/// decompressor's head before it).
const PAYLOAD_OFFSET: usize = 0x200;

/// The compressor command for `payload`, as Linux runs it.
fn compressor(payload: Payload) -> Option<Command> {
    let (tool, args): (&str, &[&str]) = match payload {
        Payload::Elf => return None,
        Payload::Gzip => ("gzip", &["-n", "-9", "-c"]),
        Payload::Xz => (
            "xz",
            &[
                "--format=xz",
                "--check=crc32",
                "--x86",
                "--lzma2=,dict=32MiB",
                "-c",
            ],
        ),
        Payload::Lz4 => ("lz4", &["-l", "-9", "-c"]),
    };
    let mut cmd = Command::new(tool);
    cmd.args(args);
    Some(cmd)
}

/// `elf` compressed as Linux's build would (with the size appended for XZ
/// and LZ4), or as it is.
fn payload(elf: &[u8], payload: Payload) -> Result<Vec<u8>, String> {
    let Some(mut cmd) = compressor(payload) else {
        return Ok(elf.to_vec());
    };
    let tool = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let input = elf.to_vec();
    // Written from another thread: the tool's output could fill the pipe
    // before it has read all of its input.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{tool}: {e}"))?;
    writer
        .join()
        .map_err(|_| format!("{tool}: writer thread panicked"))?
        .map_err(|e| format!("{tool}: writing its input: {e}"))?;
    if !out.status.success() {
        return Err(format!("{tool} failed ({})", out.status));
    }
    let mut stream = out.stdout;
    if payload != Payload::Gzip {
        let len = u32::try_from(elf.len()).map_err(|_| "kernel larger than 4 GiB")?;
        stream.extend_from_slice(&len.to_le_bytes());
    }
    Ok(stream)
}

/// A bzImage around `payload`.
pub fn build(payload: &[u8]) -> Result<Vec<u8>, String> {
    let setup = (usize::from(SETUP_SECTS) + 1) * 512;
    let length = u32::try_from(payload.len()).map_err(|_| "payload larger than 4 GiB")?;
    let mut image = vec![0u8; setup + PAYLOAD_OFFSET];
    let put = |image: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        image[at..at + bytes.len()].copy_from_slice(bytes);
    };
    put(&mut image, 0x1f1, &[SETUP_SECTS]);
    put(&mut image, 0x1fe, &0xaa55u16.to_le_bytes());
    // `jump`: a short jump over the header, as Linux's setup starts.
    put(&mut image, 0x200, &[0xeb, 0x66]);
    put(&mut image, 0x202, b"HdrS");
    put(&mut image, 0x206, &PROTOCOL.to_le_bytes());
    let offset = u32::try_from(PAYLOAD_OFFSET).map_err(|_| "offset")?;
    put(&mut image, 0x248, &offset.to_le_bytes());
    put(&mut image, 0x24c, &length.to_le_bytes());
    image.extend_from_slice(payload);
    // Linux's build pads the image; a loader must not read past the payload.
    image.resize(image.len().next_multiple_of(16) + 16, 0);
    Ok(image)
}

/// Whether `image` has a bzImage's setup header magic.
pub fn is_bzimage(image: &[u8]) -> bool {
    image.get(0x202..0x206) == Some(b"HdrS")
}

/// Writes `elf` wrapped as `wrapping` says to `out`.
pub fn wrap(elf: &Path, wrapping: Wrapping, out: &Path) -> Result<(), String> {
    let kernel = std::fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let mut stream = payload(&kernel, wrapping.payload)?;
    if wrapping.corrupt {
        // gzip: a bit of the trailer's CRC-32, so the stream always
        // inflates and then fails its check (a flipped byte inside the
        // deflate data fails differently from one build of the kernel to
        // the next). XZ: a byte in the middle, caught by its own checks.
        let at = match wrapping.payload {
            Payload::Gzip => stream.len() - 8,
            _ => stream.len() / 2,
        };
        stream[at] ^= 0x55;
    }
    let image = build(&stream)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(out, image).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(
            Wrapping::parse("xz"),
            Ok(Wrapping {
                payload: Payload::Xz,
                corrupt: false
            })
        );
        assert_eq!(
            Wrapping::parse("gzip:corrupt"),
            Ok(Wrapping {
                payload: Payload::Gzip,
                corrupt: true
            })
        );
        assert!(Wrapping::parse("bzip2").is_err());
        assert!(Wrapping::parse("none:corrupt").is_err());
        assert!(Wrapping::parse("lz4:broken").is_err());
    }

    #[test]
    fn header_where_the_boot_protocol_puts_it() {
        let image = build(b"\x7fELF-payload").unwrap();
        assert!(is_bzimage(&image));
        assert_eq!(image[0x1f1], SETUP_SECTS);
        assert_eq!(&image[0x1fe..0x200], &[0x55, 0xaa]);
        assert_eq!(&image[0x202..0x206], b"HdrS");
        assert_eq!(&image[0x206..0x208], &[0x0f, 0x02]);
        let start = (usize::from(image[0x1f1]) + 1) * 512
            + usize::try_from(u32::from_le_bytes(image[0x248..0x24c].try_into().unwrap())).unwrap();
        let len =
            usize::try_from(u32::from_le_bytes(image[0x24c..0x250].try_into().unwrap())).unwrap();
        assert_eq!(&image[start..start + len], b"\x7fELF-payload");
    }

    #[test]
    fn payload_sizes_appended_as_linux_does() {
        let elf: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
        let gz = payload(&elf, Payload::Gzip).unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        // gzip's ISIZE is the length already.
        assert_eq!(&gz[gz.len() - 4..], &5000u32.to_le_bytes());
        let xz = payload(&elf, Payload::Xz).unwrap();
        assert_eq!(&xz[..6], b"\xfd7zXZ\0");
        assert_eq!(&xz[xz.len() - 4..], &5000u32.to_le_bytes());
        // The XZ stream ends with its footer magic, before the size.
        assert_eq!(&xz[xz.len() - 6..xz.len() - 4], b"YZ");
        let lz4 = payload(&elf, Payload::Lz4).unwrap();
        assert_eq!(&lz4[..4], &[0x02, 0x21, 0x4c, 0x18]);
        assert_eq!(&lz4[lz4.len() - 4..], &5000u32.to_le_bytes());
        assert_eq!(payload(&elf, Payload::Elf).unwrap(), elf);
    }
}
