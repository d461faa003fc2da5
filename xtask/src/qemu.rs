//! Booting `hv` under QEMU: the command line, running it (interactively or
//! with the serial console captured to a log, under a timeout), and what
//! QEMU's exit status means.
//!
//! The status is a contract with `hv`: it leaves QEMU through ACPI poweroff
//! (status 0) when domain 0 powers off, and otherwise through
//! `isa-debug-exit` at port 0xf4, where writing `v` makes QEMU exit with
//! `(v << 1) | 1`. Every such status is odd and above 1, so none can be
//! confused with QEMU's own failure status 1.

use crate::shell;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

pub const QEMU: &str = "qemu-system-x86_64";
pub const DEFAULT_HV_CMDLINE: &str = "console=com1 dom0_mem=64M";
pub const DEFAULT_MEM_MIB: u32 = 512;
pub const DEFAULT_SMP: u32 = 1;
/// `q35`: PVH `-kernel` boot, `-initrd` as a PVH module, ISA devices such as
/// `isa-debug-exit` on its LPC bridge, and ACPI poweroff all work.
pub const MACHINE: &str = "q35";

/// How the machine stopped, as `hv` reports it through QEMU's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    Poweroff,
    Reboot,
    Suspend,
    Crash,
    Watchdog,
    SoftReset,
    /// Domain 0 asked to shut down with a reason hv does not know.
    Unknown,
    /// hv itself panicked or took a fatal fault.
    Panic,
}

impl Shutdown {
    pub const ALL: [Shutdown; 8] = [
        Shutdown::Poweroff,
        Shutdown::Reboot,
        Shutdown::Suspend,
        Shutdown::Crash,
        Shutdown::Watchdog,
        Shutdown::SoftReset,
        Shutdown::Unknown,
        Shutdown::Panic,
    ];

    /// The QEMU exit status for this shutdown.
    pub fn status(self) -> i32 {
        match self {
            Shutdown::Poweroff => 0,
            Shutdown::Reboot => debug_exit_status(0x10),
            Shutdown::Suspend => debug_exit_status(0x11),
            Shutdown::Crash => debug_exit_status(0x12),
            Shutdown::Watchdog => debug_exit_status(0x13),
            Shutdown::SoftReset => debug_exit_status(0x14),
            Shutdown::Unknown => debug_exit_status(0x15),
            Shutdown::Panic => debug_exit_status(0x20),
        }
    }

    pub fn from_status(status: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.status() == status)
    }

    /// The name used in test metadata (`@expect-exit: crash`).
    pub fn name(self) -> &'static str {
        match self {
            Shutdown::Poweroff => "poweroff",
            Shutdown::Reboot => "reboot",
            Shutdown::Suspend => "suspend",
            Shutdown::Crash => "crash",
            Shutdown::Watchdog => "watchdog",
            Shutdown::SoftReset => "soft_reset",
            Shutdown::Unknown => "unknown",
            Shutdown::Panic => "panic",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.replace('-', "_");
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    fn meaning(self) -> &'static str {
        match self {
            Shutdown::Poweroff => "domain 0 powered off",
            Shutdown::Reboot => "domain 0 rebooted",
            Shutdown::Suspend => "domain 0 suspended",
            Shutdown::Crash => "domain 0 crashed",
            Shutdown::Watchdog => "domain 0 watchdog fired",
            Shutdown::SoftReset => "domain 0 asked for a soft reset",
            Shutdown::Unknown => "domain 0 shut down with an unknown reason",
            Shutdown::Panic => "hv panicked",
        }
    }
}

/// The status QEMU exits with after `v` is written to isa-debug-exit.
pub const fn debug_exit_status(v: i32) -> i32 {
    (v << 1) | 1
}

/// How a QEMU run ended, as far as the host can see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signaled(i32),
    TimedOut(u64),
    /// Stopped by us on seeing a line that means the machine is done but
    /// will not exit by itself (real Xen halting after dom0 powers off).
    StoppedOnLine,
}

impl Ending {
    fn from_status(status: ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Ending::Exited(code),
            (None, Some(signal)) => Ending::Signaled(signal),
            (None, None) => Ending::Exited(-1),
        }
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ending::Exited(code) => match Shutdown::from_status(code) {
                Some(s) => write!(f, "{} (status {code})", s.meaning()),
                None if code == 1 => write!(f, "QEMU failed (status 1; see its message above)"),
                None if code & 1 == 1 && code > 1 => write!(
                    f,
                    "hv wrote unknown value {:#x} to isa-debug-exit (status {code})",
                    code >> 1
                ),
                None => write!(f, "QEMU exited with unexpected status {code}"),
            },
            Ending::Signaled(signal) => write!(f, "QEMU was killed by signal {signal}"),
            Ending::TimedOut(secs) => write!(f, "timed out after {secs} s"),
            Ending::StoppedOnLine => write!(f, "stopped after the final line"),
        }
    }
}

/// Everything that goes on QEMU's command line.
#[derive(Clone, Debug)]
pub struct Config {
    pub qemu: String,
    /// `-kernel`: hv (or Xen, for the oracle).
    pub kernel: PathBuf,
    /// `-initrd`: the boot bundle (or Xen's multiboot module list).
    pub initrd: String,
    /// `-append`: the hypervisor's command line.
    pub append: String,
    pub mem_mib: u32,
    pub smp: u32,
    pub kvm: bool,
    pub extra: Vec<String>,
    /// Boot from this ISO (through its boot loader) instead of
    /// `-kernel`/`-append`/`-initrd`.
    pub cdrom: Option<PathBuf>,
    /// For a logged run: once a complete log line contains `.0`, `.1` is
    /// written to the serial line (QEMU's stdin).
    pub input: Option<(String, Vec<u8>)>,
}

impl Config {
    pub fn new(hv: PathBuf, bundle: &std::path::Path) -> Self {
        Self {
            qemu: QEMU.to_owned(),
            kernel: hv,
            initrd: bundle.to_string_lossy().into_owned(),
            append: DEFAULT_HV_CMDLINE.to_owned(),
            mem_mib: DEFAULT_MEM_MIB,
            smp: DEFAULT_SMP,
            kvm: false,
            extra: Vec::new(),
            cdrom: None,
            input: None,
        }
    }

    /// The arguments after the program name.
    pub fn args(&self) -> Vec<String> {
        let (accel, cpu) = if self.kvm {
            ("kvm", "host")
        } else {
            ("tcg", "max")
        };
        let mut args: Vec<String> = ["-machine", MACHINE, "-cpu", cpu, "-accel", accel, "-m"]
            .map(String::from)
            .into();
        args.push(self.mem_mib.to_string());
        args.push("-smp".into());
        args.push(self.smp.to_string());
        args.extend(
            [
                "-display",
                "none",
                "-serial",
                "stdio",
                "-no-reboot",
                "-device",
                "isa-debug-exit,iobase=0xf4,iosize=0x04",
            ]
            .map(String::from),
        );
        if let Some(iso) = &self.cdrom {
            args.push("-cdrom".into());
            args.push(iso.to_string_lossy().into_owned());
        } else {
            args.push("-kernel".into());
            args.push(self.kernel.to_string_lossy().into_owned());
            args.push("-append".into());
            args.push(self.append.clone());
            args.push("-initrd".into());
            args.push(self.initrd.clone());
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// The full command line, shell-quoted, as printed before booting.
    pub fn shell_line(&self) -> String {
        let mut words = vec![self.qemu.clone()];
        words.extend(self.args());
        shell::join(&words)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.qemu);
        cmd.args(self.args());
        cmd
    }

    /// Boots with the serial console on the terminal. QEMU puts the terminal
    /// in raw mode, so a timeout stops it with SIGTERM (it then restores the
    /// terminal) rather than SIGKILL.
    pub fn run_interactive(&self, timeout: Option<Duration>) -> Result<Ending, String> {
        let child = self
            .command()
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.qemu))?;
        wait(child, timeout, || false)
    }

    /// Boots with the serial console (and QEMU's own messages) written to
    /// `log`, and stdin closed (or fed [`Config::input`] once its marker
    /// shows). A complete log line (one that ends in a
    /// newline, so the whole of it is in the log) containing one of
    /// `stop_on` ends the run early with [`Ending::StoppedOnLine`].
    pub fn run_logged(
        &self,
        log: &std::path::Path,
        timeout: Duration,
        stop_on: &[&str],
    ) -> Result<Ending, String> {
        let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut child = self
            .command()
            .stdin(if self.input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.qemu))?;
        // Kept open until QEMU ends (it may stop on a closed stdin).
        let stdin = std::cell::RefCell::new(child.stdin.take());
        let pending = std::cell::Cell::new(self.input.as_ref());
        let seen = || {
            let bytes = std::fs::read(log).unwrap_or_default();
            if let Some((marker, text)) = pending.get() {
                if complete_line_with(&bytes, &[marker.as_str()]) {
                    pending.set(None);
                    if let Some(stdin) = stdin.borrow_mut().as_mut() {
                        // A failed write shows as the guest's missing input.
                        let _ = stdin.write_all(text).and_then(|()| stdin.flush());
                    }
                }
            }
            !stop_on.is_empty() && complete_line_with(&bytes, stop_on)
        };
        wait(child, Some(timeout), seen)
    }
}

/// Whether `log` has a newline-terminated line containing one of `needles`.
fn complete_line_with(log: &[u8], needles: &[&str]) -> bool {
    let end = log.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&log[..end])
        .lines()
        .any(|line| needles.iter().any(|s| line.contains(s)))
}

/// How often a logged run looks for a stop line while it waits.
const STOP_LINE_POLL: Duration = Duration::from_millis(200);

fn wait(
    mut child: Child,
    timeout: Option<Duration>,
    stop_now: impl Fn() -> bool,
) -> Result<Ending, String> {
    let Some(timeout) = timeout else {
        let status = child.wait().map_err(|e| e.to_string())?;
        return Ok(Ending::from_status(status));
    };
    let start = Instant::now();
    loop {
        // Sleeps until QEMU exits or the next look at the log is due.
        let left = timeout.saturating_sub(start.elapsed());
        let waited = child.wait_timeout(left.min(STOP_LINE_POLL));
        if let Some(status) = waited.map_err(|e| e.to_string())? {
            return Ok(Ending::from_status(status));
        }
        if start.elapsed() >= timeout {
            stop(&mut child);
            return Ok(Ending::TimedOut(timeout.as_secs()));
        }
        if stop_now() {
            stop(&mut child);
            return Ok(Ending::StoppedOnLine);
        }
    }
}

/// SIGTERM (QEMU then restores the terminal it put in raw mode), a grace
/// period, then SIGKILL.
fn stop(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    if let Ok(Some(_)) = child.wait_timeout(Duration::from_secs(3)) {
        return;
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_follow_the_contract() {
        let expected = [
            (Shutdown::Poweroff, 0),
            (Shutdown::Reboot, 33),
            (Shutdown::Suspend, 35),
            (Shutdown::Crash, 37),
            (Shutdown::Watchdog, 39),
            (Shutdown::SoftReset, 41),
            (Shutdown::Unknown, 43),
            (Shutdown::Panic, 65),
        ];
        for (shutdown, status) in expected {
            assert_eq!(shutdown.status(), status);
            assert_eq!(Shutdown::from_status(status), Some(shutdown));
            assert_eq!(Shutdown::from_name(shutdown.name()), Some(shutdown));
        }
        assert_eq!(Shutdown::from_name("soft-reset"), Some(Shutdown::SoftReset));
        assert_eq!(Shutdown::from_status(1), None);
    }

    #[test]
    fn stops_only_on_complete_lines() {
        let needles = ["Dom0 halted"];
        assert!(complete_line_with(
            b"a\r\n(XEN) Dom0 halted: x\r\n",
            &needles
        ));
        assert!(!complete_line_with(b"a\n(XEN) Dom0 halted: x", &needles));
        assert!(!complete_line_with(b"(XEN) Dom0 hal", &needles));
        assert!(!complete_line_with(b"", &needles));
    }

    #[test]
    fn endings_are_named() {
        assert_eq!(Ending::Exited(65).to_string(), "hv panicked (status 65)");
        assert_eq!(
            Ending::Exited(0).to_string(),
            "domain 0 powered off (status 0)"
        );
        assert!(Ending::Exited(1).to_string().starts_with("QEMU failed"));
        assert_eq!(
            Ending::Exited(3).to_string(),
            "hv wrote unknown value 0x1 to isa-debug-exit (status 3)"
        );
        assert_eq!(Ending::TimedOut(60).to_string(), "timed out after 60 s");
    }

    #[test]
    fn command_line() {
        let mut cfg = Config::new(
            "target/x86_64-unknown-none/release/hv".into(),
            std::path::Path::new("target/xtask/boot.bundle"),
        );
        assert_eq!(
            cfg.shell_line(),
            "qemu-system-x86_64 -machine q35 -cpu max -accel tcg -m 512 -smp 1 -display none \
             -serial stdio -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
             -kernel target/x86_64-unknown-none/release/hv -append 'console=com1 dom0_mem=64M' \
             -initrd target/xtask/boot.bundle"
        );
        cfg.kvm = true;
        cfg.smp = 4;
        cfg.mem_mib = 1024;
        cfg.append = "console=com1".into();
        cfg.extra = vec!["-s".into(), "-S".into()];
        let args = cfg.args();
        let joined = args.join(" ");
        assert!(joined.starts_with("-machine q35 -cpu host -accel kvm -m 1024 -smp 4 "));
        assert!(joined.ends_with("-append console=com1 -initrd target/xtask/boot.bundle -s -S"));
        assert_eq!(args.iter().filter(|a| *a == "-append").count(), 1);
    }
}
