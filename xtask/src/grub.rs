//! The GRUB path: hv's multiboot2 header and boot-information parser, tested
//! the way a real machine boots hv — GRUB from an ISO (`grub-mkrescue`) loads
//! hv with `multiboot2` and dom0 with `module2`, and dom0 must come up with
//! its command line minus the module string's first word (as Xen does when
//! the loader is GRUB) and power off.

use std::path::Path;
use std::time::Duration;

use crate::judge::Verdict;
use crate::qemu;
use crate::workspace::{Profile, Workspace};

pub const ENTRY: &str = "boot-grub-multiboot2";

/// Lines the serial log must hold.
const EXPECTED: &[&str] = &[
    "(hv) Bootloader: multiboot2",
    "dom0: command line: \"grub-arg1 grub-arg2\"",
    "(hv) domain 0 shut down: poweroff",
];

fn grub_cfg() -> String {
    [
        "set timeout=0",
        "set default=0",
        "serial --unit=0 --speed=115200",
        "terminal_output serial",
        "menuentry \"hv\" {",
        "  multiboot2 /boot/hv console=com1 dom0_mem=64M",
        "  module2 /boot/dom0 dom0 grub-arg1 grub-arg2",
        "}",
        "",
    ]
    .join("\n")
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

/// Builds the ISO and boots it; the verdict plus the log's tail on failure.
pub fn boot_test(ws: &Workspace, profile: Profile) -> (Verdict, Vec<String>) {
    match try_boot(ws, profile) {
        Ok((verdict, log)) => {
            let details = if matches!(verdict, Verdict::Fail(_)) {
                crate::conformance::tail(&log, 20)
                    .into_iter()
                    .map(String::from)
                    .collect()
            } else {
                Vec::new()
            };
            (verdict, details)
        }
        Err(why) => (Verdict::Fail(why), Vec::new()),
    }
}

fn try_boot(ws: &Workspace, profile: Profile) -> Result<(Verdict, String), String> {
    let dir = ws.xtask_dir().join("grub");
    let boot = dir.join("iso").join("boot");
    std::fs::create_dir_all(boot.join("grub"))
        .map_err(|e| format!("cannot create {}: {e}", boot.display()))?;
    copy(&ws.kernel(profile, "hv"), &boot.join("hv"))?;
    copy(&ws.kernel(profile, "dom0"), &boot.join("dom0"))?;
    std::fs::write(boot.join("grub").join("grub.cfg"), grub_cfg())
        .map_err(|e| format!("cannot write grub.cfg: {e}"))?;
    let iso = dir.join("hv.iso");
    let mut mk = std::process::Command::new("grub-mkrescue");
    mk.arg("-o").arg(&iso).arg(dir.join("iso"));
    let out = mk
        .output()
        .map_err(|e| format!("cannot run grub-mkrescue: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "grub-mkrescue failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let mut cfg = qemu::Config::new(ws.kernel(profile, "hv"), &iso);
    cfg.cdrom = Some(iso.clone());
    let log_path = ws.xtask_dir().join("logs").join(format!("{ENTRY}.log"));
    let ending = cfg.run_logged(&log_path, Duration::from_secs(90), &[])?;
    let log =
        String::from_utf8_lossy(&std::fs::read(&log_path).map_err(|e| e.to_string())?).into_owned();
    let missing: Vec<&str> = EXPECTED
        .iter()
        .copied()
        .filter(|l| !log.contains(l))
        .collect();
    let verdict = match ending {
        qemu::Ending::Exited(0) if missing.is_empty() => Verdict::Pass { skipped: false },
        qemu::Ending::Exited(0) => {
            Verdict::Fail(format!("missing line `{}`", missing.join("`, `")))
        }
        other => Verdict::Fail(format!("{other:?}, expected poweroff (status 0)")),
    };
    Ok((verdict, log))
}
