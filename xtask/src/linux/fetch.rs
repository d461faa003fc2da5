//! Debian 12's stock kernel and busybox, fetched once into `target/linux/`.
//!
//! The packages come through the host's apt (`apt-get download`), which
//! resolves the current version from the Debian archive's indexes (the
//! pool drops old versions, so a fixed URL would rot) and checks the
//! indexes' signatures; the `.deb`'s SHA256 is then checked again here
//! against the `SHA256` field apt's index gives for that version.
//! `linux-image-amd64` is a metapackage: its first dependency names the
//! real image (`linux-image-6.1.0-N-amd64`). From each `.deb` (an `ar`
//! archive) only one file is taken out of `data.tar.xz`: the kernel's
//! `boot/vmlinuz-*` (a bzImage with an XZ payload, which both Xen and hv
//! unpack) and busybox-static's `bin/busybox`. What was used is written to
//! `target/linux/versions` and printed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The cached pieces.
pub struct Cached {
    pub kernel: PathBuf,
    pub busybox: PathBuf,
    /// `package version sha256` lines, one per `.deb`.
    pub versions: String,
}

const KERNEL_META: &str = "linux-image-amd64";
const BUSYBOX: &str = "busybox-static";

/// The cached kernel and busybox, fetching them when missing and `fetch`
/// allows it.
pub fn cached_or_fetch(dir: &Path, fetch: bool) -> Result<Cached, String> {
    let kernel = dir.join("vmlinuz");
    let busybox = dir.join("busybox");
    let versions_path = dir.join("versions");
    if kernel.is_file() && busybox.is_file() {
        let versions = std::fs::read_to_string(&versions_path).unwrap_or_default();
        return Ok(Cached {
            kernel,
            busybox,
            versions,
        });
    }
    if !fetch {
        return Err(format!("{} is not cached", kernel.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let image = first_dependency(KERNEL_META)?;
    let mut versions = String::new();
    for (package, member, out) in [
        (image.as_str(), "./boot/vmlinuz-", &kernel),
        (BUSYBOX, "./bin/busybox", &busybox),
    ] {
        let (deb, line) = download(dir, package)?;
        let data = extract(&deb, member)?;
        write_atomic(out, &data)?;
        println!("linux: {line} -> {} ({} bytes)", out.display(), data.len());
        versions.push_str(&line);
        versions.push('\n');
        let _ = std::fs::remove_file(&deb);
    }
    write_atomic(&versions_path, versions.as_bytes())?;
    Ok(Cached {
        kernel,
        busybox,
        versions,
    })
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, data).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot rename {}: {e}", tmp.display()))
}

/// `apt-cache show --no-all-versions PACKAGE`: the candidate's stanza.
fn stanza(package: &str) -> Result<String, String> {
    let out = Command::new("apt-cache")
        .args(["show", "--no-all-versions", package])
        .output()
        .map_err(|e| format!("cannot run apt-cache: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || text.trim().is_empty() {
        return Err(format!(
            "apt-cache show {package}: {} (run `apt-get update`?)",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(text)
}

/// Field `name` of a Packages stanza.
pub fn field<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// The package a metapackage's `Depends` names first.
fn first_dependency(meta: &str) -> Result<String, String> {
    let s = stanza(meta)?;
    let depends = field(&s, "Depends").ok_or_else(|| format!("{meta} has no Depends"))?;
    depends_first(depends).ok_or_else(|| format!("{meta}: cannot read Depends {depends:?}"))
}

/// `linux-image-6.1.0-57-amd64 (= 6.1.192-3), x` → the first package name.
pub fn depends_first(depends: &str) -> Option<String> {
    let first = depends.split([',', '|']).next()?.trim();
    let name = first.split_whitespace().next()?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// Downloads the candidate `.deb` of `package` into `dir`, checks its
/// SHA256 against the index; returns its path and `package version sha256`.
fn download(dir: &Path, package: &str) -> Result<(PathBuf, String), String> {
    let s = stanza(package)?;
    let version = field(&s, "Version").ok_or_else(|| format!("{package}: no Version"))?;
    let sha = field(&s, "SHA256").ok_or_else(|| format!("{package}: no SHA256"))?;
    println!("linux: apt-get download {package} ({version})");
    let status = Command::new("apt-get")
        .args(["download", "-q", &format!("{package}={version}")])
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    // apt names the file `<package>_<version>_<arch>.deb`, with an epoch's
    // colon written `%3a`.
    let deb = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        });
    let deb = match deb {
        Some(deb) if status.success() => deb,
        _ => {
            return Err(format!(
                "apt-get download {package}={version} failed ({status})"
            ))
        }
    };
    let bytes = std::fs::read(&deb).map_err(|e| format!("cannot read {}: {e}", deb.display()))?;
    let got = hex(&Sha256::digest(&bytes));
    if !got.eq_ignore_ascii_case(sha) {
        let _ = std::fs::remove_file(&deb);
        return Err(format!(
            "{}: SHA256 {got}, the index says {sha}",
            deb.display()
        ));
    }
    Ok((deb, format!("{package} {version} sha256:{got}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first file of the `.deb`'s `data.tar.xz` whose path starts with
/// `prefix`. The tar stream is read only as far as that file.
fn extract(deb: &Path, prefix: &str) -> Result<Vec<u8>, String> {
    extract_all(deb, &[Name::Prefix(prefix)]).map(|mut v| v.remove(0))
}

/// How a file of a `.deb` is named: by the start of its path, or by its
/// end (a module deep in `lib/modules/<version>/`).
#[derive(Clone, Copy, Debug)]
pub enum Name<'a> {
    Prefix(&'a str),
    Suffix(&'a str),
}

impl Name<'_> {
    fn matches(self, path: &str) -> bool {
        match self {
            Name::Prefix(p) => path.starts_with(p),
            Name::Suffix(s) => path.ends_with(s),
        }
    }
}

/// For each of `names`, the first file of the `.deb`'s `data.tar.xz` it
/// matches; every name must find one. The tar stream is read only as far
/// as the last of them.
fn extract_all(deb: &Path, names: &[Name<'_>]) -> Result<Vec<Vec<u8>>, String> {
    let file =
        std::fs::File::open(deb).map_err(|e| format!("cannot open {}: {e}", deb.display()))?;
    let mut found: Vec<Option<Vec<u8>>> = vec![None; names.len()];
    let mut ar = ar::Archive::new(file);
    while let Some(entry) = ar.next_entry() {
        let entry = entry.map_err(|e| format!("{}: {e}", deb.display()))?;
        if entry.header().identifier() != b"data.tar.xz" {
            continue;
        }
        let mut tar = tar::Archive::new(xz2::read::XzDecoder::new(entry));
        for file in tar
            .entries()
            .map_err(|e| format!("{}: data.tar.xz: {e}", deb.display()))?
        {
            let mut file = file.map_err(|e| format!("{}: data.tar.xz: {e}", deb.display()))?;
            let path = file
                .path()
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .into_owned();
            let slot = names
                .iter()
                .zip(found.iter_mut())
                .find(|(p, f)| f.is_none() && p.matches(&path));
            if let Some((_, slot)) = slot {
                if file.header().entry_type().is_file() {
                    let mut data = Vec::new();
                    file.read_to_end(&mut data)
                        .map_err(|e| format!("{}: {path}: {e}", deb.display()))?;
                    *slot = Some(data);
                }
            }
            if found.iter().all(Option::is_some) {
                break;
            }
        }
        break;
    }
    names
        .iter()
        .zip(found)
        .map(|(p, f)| f.ok_or_else(|| format!("{}: no {p:?} in data.tar.xz", deb.display())))
        .collect()
}

/// Debian's cloud kernel (`linux-image-cloud-amd64`: `CONFIG_XEN_PV`, an
/// LZ4 bzImage, `hvc_xen` built in) and its two Xen frontend modules,
/// cached in `dir`.
pub struct CloudCached {
    pub kernel: PathBuf,
    pub blkfront: PathBuf,
    pub netfront: PathBuf,
    /// `package version sha256`.
    pub version: String,
}

const CLOUD_META: &str = "linux-image-cloud-amd64";

/// The cached cloud kernel and modules, fetching them when missing and
/// `fetch` allows it.
pub fn cloud_cached_or_fetch(dir: &Path, fetch: bool) -> Result<CloudCached, String> {
    let kernel = dir.join("vmlinuz-cloud");
    let blkfront = dir.join("xen-blkfront.ko");
    let netfront = dir.join("xen-netfront.ko");
    let version_path = dir.join("versions-cloud");
    let cached = CloudCached {
        kernel: kernel.clone(),
        blkfront: blkfront.clone(),
        netfront: netfront.clone(),
        version: std::fs::read_to_string(&version_path).unwrap_or_default(),
    };
    if [&kernel, &blkfront, &netfront].iter().all(|p| p.is_file()) {
        return Ok(cached);
    }
    if !fetch {
        return Err(format!("{} is not cached", kernel.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let image = first_dependency(CLOUD_META)?;
    let (deb, line) = download(dir, &image)?;
    let files = extract_all(
        &deb,
        &[
            Name::Prefix("./boot/vmlinuz-"),
            Name::Suffix("/xen-blkfront.ko"),
            Name::Suffix("/xen-netfront.ko"),
        ],
    )?;
    for (data, out) in files.iter().zip([&kernel, &blkfront, &netfront]) {
        write_atomic(out, data)?;
        println!("linux: {line} -> {} ({} bytes)", out.display(), data.len());
    }
    let _ = std::fs::remove_file(&deb);
    write_atomic(&version_path, format!("{line}\n").as_bytes())?;
    Ok(CloudCached {
        version: format!("{line}\n"),
        ..cached
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_packages_fields() {
        let s = "Package: linux-image-amd64\nVersion: 6.1.192-3\nDepends: linux-image-6.1.0-57-amd64 (= 6.1.192-3)\nSHA256: ab12\n";
        assert_eq!(field(s, "Version"), Some("6.1.192-3"));
        assert_eq!(field(s, "SHA256"), Some("ab12"));
        assert_eq!(field(s, "Size"), None);
        assert_eq!(
            depends_first(field(s, "Depends").unwrap()).as_deref(),
            Some("linux-image-6.1.0-57-amd64")
        );
        assert_eq!(depends_first("a | b, c").as_deref(), Some("a"));
        assert_eq!(depends_first(""), None);
    }
}
