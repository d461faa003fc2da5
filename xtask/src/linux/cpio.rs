//! A newc ("070701") cpio archive, the format the Linux kernel unpacks as
//! its initramfs: per entry a 110-byte ASCII header (magic and 13 fields of
//! 8 hex digits), the NUL-terminated name, padding to 4 bytes, the data,
//! padding to 4 bytes; the archive ends with an entry named `TRAILER!!!`.
//! Written here so the initramfs needs no host `cpio`.

/// One file, directory or device node.
pub enum Entry<'a> {
    Dir {
        path: &'a str,
    },
    File {
        path: &'a str,
        mode: u32,
        data: &'a [u8],
    },
    CharDev {
        path: &'a str,
        major: u32,
        minor: u32,
    },
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Appends one header, name and data. `ino` must differ per entry (the
/// kernel links entries with equal inode and nlink > 1 as hard links).
fn push(
    out: &mut Vec<u8>,
    ino: u32,
    name: &str,
    mode: u32,
    data: &[u8],
    rdev: (u32, u32),
) -> Result<(), String> {
    let size = u32::try_from(data.len()).map_err(|_| format!("{name}: larger than 4 GiB"))?;
    let namesize = u32::try_from(name.len() + 1).map_err(|_| format!("{name}: name too long"))?;
    let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
    let fields = [
        ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
    Ok(())
}

/// The archive holding `entries`, in order, then the trailer. Paths are
/// written without a leading `/`, as `cpio -H newc` writes them.
pub fn archive(entries: &[Entry<'_>]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for (ino, entry) in (1u32..).zip(entries) {
        match *entry {
            Entry::Dir { path } => push(
                &mut out,
                ino,
                path.trim_start_matches('/'),
                S_IFDIR | 0o755,
                &[],
                (0, 0),
            )?,
            Entry::File { path, mode, data } => push(
                &mut out,
                ino,
                path.trim_start_matches('/'),
                S_IFREG | (mode & 0o7777),
                data,
                (0, 0),
            )?,
            Entry::CharDev { path, major, minor } => push(
                &mut out,
                ino,
                path.trim_start_matches('/'),
                S_IFCHR | 0o600,
                &[],
                (major, minor),
            )?,
        }
    }
    push(&mut out, 0, "TRAILER!!!", 0, &[], (0, 0))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header field `i` (0 = ino … 12 = check) of the entry at `at`.
    fn field(a: &[u8], at: usize, i: usize) -> u32 {
        let s = std::str::from_utf8(&a[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
        u32::from_str_radix(s, 16).unwrap()
    }

    #[test]
    fn layout_matches_newc() {
        let a = archive(&[
            Entry::Dir { path: "/dev" },
            Entry::File {
                path: "/init",
                mode: 0o755,
                data: b"#!x\n",
            },
            Entry::CharDev {
                path: "/dev/console",
                major: 5,
                minor: 1,
            },
        ])
        .unwrap();
        assert!(a.starts_with(b"070701"));
        // "dev\0" after the 110-byte header ends at 114, padded to 116.
        assert_eq!(field(&a, 0, 1), S_IFDIR | 0o755);
        assert_eq!(field(&a, 0, 11), 4);
        assert_eq!(&a[110..114], b"dev\0");
        let init = 116;
        assert_eq!(&a[init..init + 6], b"070701");
        assert_eq!(field(&a, init, 1), S_IFREG | 0o755);
        assert_eq!(field(&a, init, 6), 4);
        // Name "init\0" (5) ends at 110 + 5 = 115 -> padded to 116; data 4.
        assert_eq!(&a[init + 116..init + 120], b"#!x\n");
        let console = init + 120;
        assert_eq!(field(&a, console, 1), S_IFCHR | 0o600);
        assert_eq!((field(&a, console, 9), field(&a, console, 10)), (5, 1));
        // Every entry, the trailer included, starts on a 4-byte boundary
        // and the archive ends with the trailer's padded name.
        assert_eq!(a.len() % 4, 0);
        let trailer = a.windows(10).position(|w| w == b"TRAILER!!!").unwrap();
        assert_eq!((trailer - 110) % 4, 0);
        assert_eq!(field(&a, trailer - 110, 11), 11);
    }

    #[test]
    fn inodes_differ() {
        let a = archive(&[Entry::Dir { path: "a" }, Entry::Dir { path: "b" }]).unwrap();
        let second = 112; // 110-byte header + "a\0", already aligned
        assert_ne!(field(&a, 0, 0), field(&a, second, 0));
    }
}
