//! The oracle: booting a guest as dom0 of real Xen 4.17 (Debian's
//! `xen-hypervisor-4.17-amd64`) under QEMU, so every conformance guest can be
//! checked against the hypervisor whose ABI `hv` implements.
//!
//! Facts this relies on (see `xen-facts.md`): QEMU's `-kernel` wants the
//! uncompressed Xen, so the packaged `.gz` is unpacked into `target/xtask/`;
//! dom0 is the first multiboot module, whose string is `<file> <args>` (Xen
//! drops the first word) and where QEMU's `-initrd` separates modules with
//! `,`, so a comma in dom0's arguments is written `,,`. Xen does not leave
//! QEMU through isa-debug-exit: how dom0 shut down is read from Xen's
//! `hwdom_shutdown()` messages, and the runner stops QEMU as soon as one is
//! complete in the log ([`STOP_LINES`]): after a poweroff Xen halts for
//! ever, and after a crash it waits 5 seconds before rebooting. KVM on this project's
//! machines cannot run Xen (see `xen-facts.md`); the oracle uses TCG.

use crate::qemu::{self, Shutdown};
use crate::workspace::Workspace;
use crate::Error;
use std::path::{Path, PathBuf};

pub const PACKAGED_XEN: &str = "/boot/xen-4.17-amd64.gz";
pub const XEN_CMDLINE: &str = "console=com1 com1=115200,8n1 dom0_mem=64M,max:64M \
                               dom0_max_vcpus=1 loglvl=all guest_loglvl=all";
/// Printed when dom0 powers off; Xen then spins in `hlt` for ever.
pub const HALT_LINE: &str = "Hardware Dom0 halted: halting machine";

/// Lines after which Xen has nothing more to say about the run: every
/// message of `hwdom_shutdown()` and the end of a panic. The runner stops
/// QEMU on the first one instead of waiting for Xen's halt (for ever) or its
/// 5-second reboot delay (crash, suspend, unknown reasons, panics).
pub const STOP_LINES: &[&str] = &[
    HALT_LINE,
    "Hardware Dom0 shutdown",
    "Hardware Dom0 crashed",
    "did unsupported soft reset",
    "Reboot in five seconds",
];

/// The uncompressed Xen image, unpacked once from the Debian package.
pub fn image(ws: &Workspace) -> Result<PathBuf, Error> {
    let packaged = Path::new(PACKAGED_XEN);
    let out = ws.xtask_dir().join("xen-4.17-amd64");
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    if out.is_file() && modified(&out) >= modified(packaged) {
        return Ok(out);
    }
    std::fs::create_dir_all(ws.xtask_dir())
        .map_err(|e| Error::Failed(format!("cannot create {}: {e}", ws.xtask_dir().display())))?;
    let file = std::fs::File::create(&out)
        .map_err(|e| Error::Failed(format!("cannot create {}: {e}", out.display())))?;
    let status = std::process::Command::new("gzip")
        .args(["-dc", PACKAGED_XEN])
        .stdout(file)
        .status()
        .map_err(|e| Error::Failed(format!("cannot run gzip: {e}")))?;
    if !status.success() {
        let _ = std::fs::remove_file(&out);
        return Err(Error::Failed(format!(
            "gzip -dc {PACKAGED_XEN} failed ({status})"
        )));
    }
    Ok(out)
}

/// QEMU's `-initrd` for Xen: dom0's kernel with its arguments, then its
/// module if any.
pub fn module_list(guest: &Path, cmdline: &str, module: Option<&Path>) -> Result<String, String> {
    let plain = |p: &Path| {
        let s = p.to_string_lossy().into_owned();
        if s.contains([' ', ',']) {
            Err(format!(
                "{s}: a Xen module path cannot contain spaces or commas"
            ))
        } else {
            Ok(s)
        }
    };
    let mut list = plain(guest)?;
    if !cmdline.is_empty() {
        list.push(' ');
        list.push_str(&cmdline.replace(',', ",,"));
    }
    if let Some(module) = module {
        list.push(',');
        list.push_str(&plain(module)?);
    }
    Ok(list)
}

/// QEMU configuration booting `guest` as dom0 of Xen.
pub fn config(
    xen: &Path,
    guest: &Path,
    cmdline: &str,
    module: Option<&Path>,
) -> Result<qemu::Config, String> {
    let mut cfg = qemu::Config::new(xen.to_path_buf(), Path::new(""));
    cfg.initrd = module_list(guest, cmdline, module)?;
    cfg.append = XEN_CMDLINE.to_owned();
    Ok(cfg)
}

/// Xen's command line `line` with domain 0's memory set to `mib` MiB
/// (fixed: the same amount as minimum and maximum).
pub fn with_dom0_mem(line: &str, mib: u32) -> String {
    with_option(line, "dom0_mem", &format!("{mib}M,max:{mib}M"))
}

/// Xen's command line `line` with domain 0 given `n` vCPUs.
pub fn with_dom0_vcpus(line: &str, n: u32) -> String {
    with_option(line, "dom0_max_vcpus", &n.to_string())
}

/// Xen's command line `line` with the test's own words (`@xen-cmdline-append`)
/// after it.
pub fn with_appended(line: &str, words: &str) -> String {
    format!("{line} {words}").trim().to_owned()
}

/// `line` with the word `key=...` replaced by `key=value`.
fn with_option(line: &str, key: &str, value: &str) -> String {
    line.split_whitespace()
        .map(|w| match w.split_once('=') {
            Some((k, _)) if k == key => format!("{key}={value}"),
            _ => w.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How dom0 shut down, from the message Xen 4.17 prints for it.
pub fn shutdown_from_log(log: &str) -> Option<Shutdown> {
    log.lines().find_map(|line| {
        let line = line.trim_end();
        if line.contains("Panic on CPU") {
            Some(Shutdown::Panic)
        } else if line.contains(HALT_LINE) {
            Some(Shutdown::Poweroff)
        } else if line.contains("Hardware Dom0 shutdown: rebooting machine") {
            Some(Shutdown::Reboot)
        } else if line.contains("Hardware Dom0 shutdown: watchdog rebooting machine") {
            Some(Shutdown::Watchdog)
        } else if line.contains("Hardware Dom0 crashed") {
            Some(Shutdown::Crash)
        } else if line.contains("did unsupported soft reset") {
            Some(Shutdown::SoftReset)
        } else if line.contains("Hardware Dom0 shutdown (unknown reason 2)") {
            Some(Shutdown::Suspend)
        } else if line.contains("Hardware Dom0 shutdown (unknown reason") {
            Some(Shutdown::Unknown)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_escape_commas() {
        let guest = Path::new("/t/release/hello");
        assert_eq!(module_list(guest, "", None).unwrap(), "/t/release/hello");
        assert_eq!(
            module_list(guest, "a=1,2 b", Some(Path::new("/t/initrd"))).unwrap(),
            "/t/release/hello a=1,,2 b,/t/initrd"
        );
        assert!(module_list(Path::new("/my dir/hello"), "", None).is_err());
    }

    #[test]
    fn command_line() {
        let cfg = config(Path::new("/x/xen"), Path::new("/t/hello"), "x=1", None).unwrap();
        let args = cfg.args().join(" ");
        assert!(args
            .contains("-kernel /x/xen -append console=com1 com1=115200,8n1 dom0_mem=64M,max:64M"));
        assert!(args.ends_with("-initrd /t/hello x=1"));
    }

    #[test]
    fn dom0_options_replace_their_word() {
        let line = with_dom0_vcpus(&with_dom0_mem(XEN_CMDLINE, 32), 4);
        assert!(line.contains(" dom0_mem=32M,max:32M dom0_max_vcpus=4 "));
        assert!(!line.contains("dom0_max_vcpus=1"));
        assert_eq!(
            line.split(' ').count(),
            XEN_CMDLINE.split_whitespace().count()
        );
    }

    #[test]
    fn appended_words_come_last() {
        assert_eq!(with_appended(XEN_CMDLINE, ""), XEN_CMDLINE);
        let line = with_appended(&with_dom0_vcpus(XEN_CMDLINE, 2), "sched=credit");
        assert!(line.ends_with(" dom0_max_vcpus=2 loglvl=all guest_loglvl=all sched=credit"));
    }

    #[test]
    fn every_shutdown_message_stops_the_run() {
        let messages = [
            "(XEN) Hardware Dom0 halted: halting machine",
            "(XEN) Hardware Dom0 shutdown: rebooting machine",
            "(XEN) Hardware Dom0 shutdown: watchdog rebooting machine",
            "(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds.",
            "(XEN) Hardware domain 0 did unsupported soft reset, rebooting.",
            "(XEN) Hardware Dom0 shutdown (unknown reason 6): rebooting machine in 5 seconds.",
            "(XEN) Reboot in five seconds...",
        ];
        for m in messages {
            assert!(STOP_LINES.iter().any(|s| m.contains(s)), "{m}");
        }
        for m in &messages[..6] {
            assert!(shutdown_from_log(m).is_some(), "{m}");
        }
    }

    #[test]
    fn shutdown_lines() {
        let log = "(XEN) Freed 656kB init memory\nTest result: SUCCESS\n(XEN) Hardware Dom0 halted: halting machine\r\n";
        assert_eq!(shutdown_from_log(log), Some(Shutdown::Poweroff));
        assert_eq!(
            shutdown_from_log("(XEN) Hardware Dom0 shutdown: rebooting machine"),
            Some(Shutdown::Reboot)
        );
        assert_eq!(
            shutdown_from_log("(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds."),
            Some(Shutdown::Crash)
        );
        assert_eq!(
            shutdown_from_log("(XEN) Panic on CPU 0:\n(XEN) Could not construct domain 0"),
            Some(Shutdown::Panic)
        );
        assert_eq!(shutdown_from_log("Test result: SUCCESS\n"), None);
    }
}
