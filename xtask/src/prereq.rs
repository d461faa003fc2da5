//! Prerequisites: what each command needs on the host, how to tell whether
//! it is there, and how to install it on Debian 12.
//!
//! Every command checks its own needs first (a few milliseconds). What is
//! missing is named with the exact commands that install it; when running as
//! root, xtask runs them itself. `rustup target add` needs no root and always
//! runs. QEMU must be version 10 or newer: Debian 12's own 7.2 reports a wrong
//! #GP error code for `int $n` in long mode, so it comes from
//! bookworm-backports.
//!
//! Probing goes through [`Probe`], whose `PATH` and filesystem root can be
//! pointed at a fake tree, which is how the unit tests exercise it.

use crate::{shell, Error};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MIN_QEMU_MAJOR: u32 = 10;
/// The tools [`Prereq::Compressors`] stands for.
const COMPRESSORS: [&str; 3] = ["gzip", "xz", "lz4"];
const BACKPORTS_LIST: &str = "/etc/apt/sources.list.d/backports.list";
const BACKPORTS_LINE: &str = "deb http://deb.debian.org/debian bookworm-backports main";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prereq {
    KernelTarget,
    Qemu,
    Cc,
    /// A C++ compiler: libfuzzer-sys builds libFuzzer for `cargo xtask fuzz`.
    Cxx,
    XenHeaders,
    XenHypervisor,
    /// GRUB's ISO maker, for the test that boots hv through multiboot2.
    Grub,
    /// gzip, xz and lz4: the compressors Linux packs kernels with, for
    /// the conformance guests wrapped as bzImages (`@bzimage:`).
    Compressors,
}

impl Prereq {
    pub const ALL: [Prereq; 8] = [
        Prereq::KernelTarget,
        Prereq::Qemu,
        Prereq::Cc,
        Prereq::Cxx,
        Prereq::XenHeaders,
        Prereq::XenHypervisor,
        Prereq::Grub,
        Prereq::Compressors,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Prereq::KernelTarget => "rust target x86_64-unknown-none",
            Prereq::Qemu => "qemu-system-x86_64 >= 10",
            Prereq::Cc => "C compiler `cc`",
            Prereq::Cxx => "C++ compiler `c++` (for libFuzzer)",
            Prereq::XenHeaders => "Xen public headers (/usr/include/xen/xen.h, libxen-dev)",
            Prereq::XenHypervisor => "Xen 4.17 hypervisor (/boot/xen-4.17-amd64.gz)",
            Prereq::Grub => "GRUB's grub-mkrescue with its BIOS files, xorriso and mtools",
            Prereq::Compressors => "gzip, xz and lz4 (to pack guests as bzImages)",
        }
    }
}

/// One install action, shown as the shell command it amounts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    RustupTarget,
    AddBackports,
    AptUpdate,
    AptInstall {
        backports: bool,
        packages: Vec<&'static str>,
    },
}

impl Step {
    pub fn needs_root(&self) -> bool {
        !matches!(self, Step::RustupTarget)
    }

    fn command(&self) -> Option<Command> {
        let apt = |args: &[&str]| {
            let mut cmd = Command::new("apt-get");
            cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
            cmd
        };
        match self {
            Step::RustupTarget => {
                let mut cmd = Command::new("rustup");
                cmd.args(["target", "add", crate::workspace::KERNEL_TARGET]);
                Some(cmd)
            }
            Step::AddBackports => None,
            Step::AptUpdate => Some(apt(&["update"])),
            Step::AptInstall {
                backports,
                packages,
            } => {
                let mut cmd = apt(&["install", "-y"]);
                if *backports {
                    cmd.args(["-t", "bookworm-backports"]);
                }
                cmd.args(packages);
                Some(cmd)
            }
        }
    }

    pub fn show(&self) -> String {
        match self.command() {
            Some(cmd) => shell::show(&cmd),
            None => format!("echo {} > {BACKPORTS_LIST}", shell::quote(BACKPORTS_LINE)),
        }
    }

    fn perform(&self, probe: &Probe) -> Result<(), Error> {
        match self.command() {
            Some(mut cmd) => shell::run(cmd.current_dir(&probe.cwd)),
            None => {
                eprintln!("+ {}", self.show());
                let path = probe.file(BACKPORTS_LIST);
                std::fs::write(&path, format!("{BACKPORTS_LINE}\n"))
                    .map_err(|e| Error::Failed(format!("cannot write {}: {e}", path.display())))
            }
        }
    }
}

/// Where to look: `PATH`, the filesystem root and the working directory.
pub struct Probe {
    pub path: OsString,
    pub root: PathBuf,
    pub cwd: PathBuf,
}

impl Probe {
    pub fn host(cwd: &Path) -> Self {
        Self {
            path: std::env::var_os("PATH").unwrap_or_default(),
            root: "/".into(),
            cwd: cwd.to_path_buf(),
        }
    }

    fn file(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    /// An executable named `name` on our `PATH`.
    fn find(&self, name: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        std::env::split_paths(&self.path)
            .map(|dir| dir.join(name))
            .find(|p| {
                p.metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    }

    /// Runs a found program and returns its stdout.
    fn output(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let path = self
            .find(program)
            .ok_or_else(|| format!("`{program}` not found in PATH"))?;
        let mut attempts = 0;
        let out = loop {
            match Command::new(&path)
                .args(args)
                .current_dir(&self.cwd)
                .env("PATH", &self.path)
                .output()
            {
                // ETXTBSY: a script just written by a test, still open in a
                // forked sibling; it goes away by itself.
                Err(e) if e.raw_os_error() == Some(26) && attempts < 50 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => break other.map_err(|e| format!("cannot run {}: {e}", path.display()))?,
            }
        };
        if !out.status.success() {
            return Err(format!(
                "`{program} {}` failed ({})",
                args.join(" "),
                out.status
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `Ok` when present, else what is wrong.
    pub fn check(&self, prereq: Prereq) -> Result<(), String> {
        match prereq {
            Prereq::KernelTarget => {
                let sysroot = self.output("rustc", &["--print", "sysroot"])?;
                let dir = Path::new(sysroot.trim())
                    .join("lib/rustlib")
                    .join(crate::workspace::KERNEL_TARGET);
                if dir.is_dir() {
                    Ok(())
                } else {
                    Err(format!(
                        "not installed in the toolchain at {}",
                        sysroot.trim()
                    ))
                }
            }
            Prereq::Qemu => {
                let text = self.output(crate::qemu::QEMU, &["--version"])?;
                match qemu_version(&text) {
                    Some((major, _)) if major >= MIN_QEMU_MAJOR => Ok(()),
                    Some((major, minor)) => Err(format!(
                        "found QEMU {major}.{minor}; QEMU < {MIN_QEMU_MAJOR} reports a wrong #GP error code for `int $n` in long mode"
                    )),
                    None => Err(format!("cannot parse the version from {:?}", text.lines().next().unwrap_or(""))),
                }
            }
            Prereq::Cc => self
                .find("cc")
                .map(|_| ())
                .ok_or_else(|| "`cc` not found in PATH".to_owned()),
            Prereq::Cxx => self
                .find("c++")
                .map(|_| ())
                .ok_or_else(|| "`c++` not found in PATH".to_owned()),
            Prereq::Compressors => {
                for tool in COMPRESSORS {
                    self.find(tool)
                        .ok_or_else(|| format!("`{tool}` not found in PATH"))?;
                }
                Ok(())
            }
            Prereq::XenHeaders => self.exists("/usr/include/xen/xen.h"),
            Prereq::XenHypervisor => self.exists("/boot/xen-4.17-amd64.gz"),
            Prereq::Grub => {
                for tool in ["grub-mkrescue", "xorriso", "mformat"] {
                    self.find(tool)
                        .ok_or_else(|| format!("`{tool}` not found in PATH"))?;
                }
                if self.file("/usr/lib/grub/i386-pc").is_dir() {
                    Ok(())
                } else {
                    Err("/usr/lib/grub/i386-pc not found".to_owned())
                }
            }
        }
    }

    fn exists(&self, absolute: &str) -> Result<(), String> {
        if self.file(absolute).is_file() {
            Ok(())
        } else {
            Err(format!("{absolute} not found"))
        }
    }

    fn mentions_backports(&self) -> bool {
        let mut files = vec![self.file("/etc/apt/sources.list")];
        if let Ok(dir) = std::fs::read_dir(self.file("/etc/apt/sources.list.d")) {
            files.extend(dir.flatten().map(|e| e.path()));
        }
        files.iter().any(|f| {
            let enabled = f.extension().is_some_and(|e| e == "list" || e == "sources")
                || f.ends_with("sources.list");
            enabled && std::fs::read_to_string(f).is_ok_and(|t| t.contains("bookworm-backports"))
        })
    }

    /// The steps that install `missing`, in order.
    pub fn plan(&self, missing: &[Prereq]) -> Vec<Step> {
        let mut steps = Vec::new();
        if missing.contains(&Prereq::KernelTarget) {
            steps.push(Step::RustupTarget);
        }
        let packages: Vec<&'static str> = missing
            .iter()
            .filter_map(|p| match p {
                Prereq::Cc => Some(["gcc", "libc6-dev"].as_slice()),
                Prereq::Cxx => Some(["g++"].as_slice()),
                Prereq::XenHeaders => Some(["libxen-dev"].as_slice()),
                Prereq::XenHypervisor => Some(["xen-hypervisor-4.17-amd64"].as_slice()),
                Prereq::Grub => Some(["grub-pc-bin", "xorriso", "mtools"].as_slice()),
                Prereq::Compressors => Some(["gzip", "xz-utils", "lz4"].as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect();
        let qemu = missing.contains(&Prereq::Qemu);
        if qemu && !self.mentions_backports() {
            steps.push(Step::AddBackports);
        }
        if qemu || !packages.is_empty() {
            steps.push(Step::AptUpdate);
        }
        if qemu {
            steps.push(Step::AptInstall {
                backports: true,
                packages: vec!["qemu-system-x86"],
            });
        }
        if !packages.is_empty() {
            steps.push(Step::AptInstall {
                backports: false,
                packages,
            });
        }
        steps
    }
}

/// `(major, minor)` from `QEMU emulator version 10.0.2 (Debian ...)`.
pub fn qemu_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.split_once("version ")?.1;
    let number = rest
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let mut parts = number.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Whether we run as root (effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Checks `needs`; installs what is missing when it can, else explains how.
/// With `verbose`, reports every prerequisite, not only the missing ones.
pub fn ensure(needs: &[Prereq], probe: &Probe, verbose: bool) -> Result<(), Error> {
    let mut missing = Vec::new();
    for &need in needs {
        match probe.check(need) {
            Ok(()) if verbose => eprintln!("  ok       {}", need.describe()),
            Ok(()) => {}
            Err(why) => {
                eprintln!("  missing  {}: {why}", need.describe());
                missing.push(need);
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let steps = probe.plan(&missing);
    let root = is_root();
    eprintln!(
        "xtask: to install what is missing, run{}:",
        if root {
            " (doing it now, as root)"
        } else {
            " as root"
        }
    );
    for step in &steps {
        eprintln!("    {}", step.show());
    }
    let unprivileged = steps.iter().all(|s| !s.needs_root());
    if !root && !unprivileged {
        for step in steps.iter().filter(|s| !s.needs_root()) {
            step.perform(probe)?;
        }
        return Err(Error::Failed("missing prerequisites (see above)".into()));
    }
    for step in &steps {
        step.perform(probe)?;
    }
    let still: Vec<_> = missing
        .iter()
        .filter(|p| probe.check(**p).is_err())
        .map(|p| p.describe())
        .collect();
    if still.is_empty() {
        eprintln!("xtask: prerequisites installed");
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "still missing after installing: {}",
            still.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A throwaway directory tree standing in for `/`.
    struct FakeRoot(PathBuf);

    impl FakeRoot {
        fn new(tag: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("xtask-prereq-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("bin")).unwrap();
            Self(dir)
        }
        fn probe(&self) -> Probe {
            Probe {
                path: self.0.join("bin").into(),
                root: self.0.clone(),
                cwd: self.0.clone(),
            }
        }
        fn file(&self, rel: &str, text: &str) {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        fn script(&self, name: &str, body: &str) {
            let path = self.0.join("bin").join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    impl Drop for FakeRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn parses_qemu_versions() {
        assert_eq!(
            qemu_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n"),
            Some((10, 0))
        );
        assert_eq!(
            qemu_version("QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)"),
            Some((7, 2))
        );
        assert_eq!(qemu_version("QEMU emulator version 9.2.50"), Some((9, 2)));
        assert_eq!(qemu_version("something else"), None);
    }

    #[test]
    fn everything_missing_on_an_empty_host() {
        let fake = FakeRoot::new("empty");
        let probe = fake.probe();
        for p in Prereq::ALL {
            assert!(probe.check(p).is_err(), "{p:?}");
        }
        assert!(probe.check(Prereq::Qemu).unwrap_err().contains("not found"));
        let steps: Vec<String> = probe.plan(&Prereq::ALL).iter().map(Step::show).collect();
        assert_eq!(
            steps,
            [
                "rustup target add x86_64-unknown-none",
                "echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list",
                "DEBIAN_FRONTEND=noninteractive apt-get update",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -t bookworm-backports qemu-system-x86",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y gcc libc6-dev g++ libxen-dev xen-hypervisor-4.17-amd64 grub-pc-bin xorriso mtools gzip xz-utils lz4",
            ]
        );
    }

    #[test]
    fn everything_present_on_a_good_host() {
        let fake = FakeRoot::new("good");
        let sysroot = fake.0.join("sysroot");
        std::fs::create_dir_all(sysroot.join("lib/rustlib/x86_64-unknown-none")).unwrap();
        fake.script("rustc", &format!("echo {}", sysroot.display()));
        fake.script(
            "qemu-system-x86_64",
            "echo 'QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)'",
        );
        fake.script("cc", "exit 0");
        fake.script("c++", "exit 0");
        fake.file("usr/include/xen/xen.h", "");
        fake.file("boot/xen-4.17-amd64.gz", "");
        for tool in ["grub-mkrescue", "xorriso", "mformat"]
            .into_iter()
            .chain(COMPRESSORS)
        {
            fake.script(tool, "exit 0");
        }
        fake.file("usr/lib/grub/i386-pc/boot.img", "");
        let probe = fake.probe();
        for p in Prereq::ALL {
            assert_eq!(probe.check(p), Ok(()), "{p:?}");
        }
        assert!(ensure(&Prereq::ALL, &probe, false).is_ok());
    }

    #[test]
    fn old_qemu_from_debian_12_is_rejected() {
        let fake = FakeRoot::new("oldqemu");
        fake.script(
            "qemu-system-x86_64",
            "echo 'QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)'",
        );
        fake.file(
            "etc/apt/sources.list.d/backports.list",
            &format!("{BACKPORTS_LINE}\n"),
        );
        let probe = fake.probe();
        assert!(probe
            .check(Prereq::Qemu)
            .unwrap_err()
            .contains("found QEMU 7.2"));
        // Backports already configured: no second source line.
        let steps = probe.plan(&[Prereq::Qemu]);
        assert_eq!(
            steps,
            [
                Step::AptUpdate,
                Step::AptInstall {
                    backports: true,
                    packages: vec!["qemu-system-x86"]
                }
            ]
        );
    }

    #[test]
    fn target_missing_from_sysroot() {
        let fake = FakeRoot::new("notarget");
        fake.script("rustc", &format!("echo {}", fake.0.display()));
        assert!(fake
            .probe()
            .check(Prereq::KernelTarget)
            .unwrap_err()
            .contains("not installed"));
        assert_eq!(
            fake.probe().plan(&[Prereq::KernelTarget]),
            [Step::RustupTarget]
        );
    }
}
