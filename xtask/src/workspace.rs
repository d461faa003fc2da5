//! Where things are: the workspace root, the target directory, the kernel
//! artifacts and xtask's own outputs (`<target>/xtask/`).
//!
//! The target directory is the workspace's normal one (`<root>/target`) unless
//! the user set `CARGO_TARGET_DIR`, so kernels built here are the ones a plain
//! `cargo build` would produce.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The rustc target of every kernel (hv, dom0, conformance guests).
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";

/// Build profile of the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Release,
    Debug,
}

impl Profile {
    pub fn dir_name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Debug => "debug",
        }
    }
}

pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    /// The cargo that runs us (`$CARGO`), so nested builds use the same toolchain.
    pub cargo: OsString,
}

impl Workspace {
    pub fn detect() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives one level below the workspace root")
            .to_path_buf();
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => root.join(dir),
            _ => root.join("target"),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        Self {
            root,
            target_dir,
            cargo,
        }
    }

    /// A `cargo` command run from the workspace root.
    pub fn cargo(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.cargo);
        cmd.current_dir(&self.root);
        cmd
    }

    /// Directory holding the kernel binaries of one profile.
    pub fn kernel_dir(&self, profile: Profile) -> PathBuf {
        self.target_dir.join(KERNEL_TARGET).join(profile.dir_name())
    }

    pub fn kernel(&self, profile: Profile, name: &str) -> PathBuf {
        self.kernel_dir(profile).join(name)
    }

    /// xtask's own outputs: bundles and logs.
    pub fn xtask_dir(&self) -> PathBuf {
        self.target_dir.join("xtask")
    }

    /// Sources of the conformance guests, one binary each.
    pub fn test_bin_dir(&self) -> PathBuf {
        self.root.join("tests").join("src").join("bin")
    }

    /// Path relative to the workspace root when possible: shorter to print.
    pub fn display<'a>(&self, path: &'a Path) -> std::borrow::Cow<'a, str> {
        match path.strip_prefix(&self.root) {
            Ok(rel) => rel.to_string_lossy(),
            Err(_) => path.to_string_lossy(),
        }
    }
}
