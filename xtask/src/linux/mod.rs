//! The Linux system test: Debian 12's stock kernel (`linux-image-amd64`)
//! booted as dom0 to a busybox `/init`, on real Xen 4.17 and on hv.
//!
//! The kernel and busybox come from Debian's archive ([`fetch`]) and are
//! cached in `target/linux/`; the initramfs is a newc cpio made here
//! ([`cpio`]) whose `/init` mounts proc and sysfs, prints [`MARKER`] with
//! the number of online CPUs and the event-channel ABI the kernel chose
//! (from its `xen:events: Using ...` line), and powers off. The kernel is
//! dom0's first module and the initramfs its second (start_info's
//! `mod_start`/`mod_len`), on both hypervisors.
//!
//! `linux/domu` boots Debian's cloud kernel (`linux-image-cloud-amd64`, an
//! LZ4 bzImage) as a domU instead: the project's own dom0 is the boot
//! domain, and its module a boot bundle of the cloud kernel, its command
//! line and the same initramfs. dom0 unpacks the kernel, builds the domU
//! ([`DOMU_MIB`]) with the toolstack, serves its console and xenstore, and
//! shows its console lines as `domU1| ...`; the marker must come through
//! there, and the domU's poweroff must end in dom0 destroying it.
//!
//! A run passes when the marker shows the vCPUs and the ABI asked for and
//! the machine then powers off. Both sides count; should hv fall behind
//! again, [`HV_KNOWN_FAILING`] makes its side report how far Linux got
//! (its last console line and hv's crash report, if any) without
//! counting it, while the Xen side proves the harness.

pub mod cpio;
pub mod fetch;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::args::{self, Long, Parser, Short, ValueExt};
use crate::judge::Verdict;
use crate::qemu::{self, Ending};
use crate::workspace::{Profile, Workspace};
use crate::Error;

/// What `/init` prints once user space runs.
pub const MARKER: &str = "HV-LINUX-INIT-OK";

/// The hv side fails until hv has what Linux needs on its way to `/init`
/// (see the README's "Hypercalls Linux makes that hv refuses"); while
/// true, it is reported but not counted.
pub const HV_KNOWN_FAILING: bool = false;

/// What Xen prints when dom0 has it put the machine in ACPI S5.
const XEN_S5_LINE: &str = "Entering ACPI S5 state";

/// Dom0's memory and the machine's, in MiB: the kernel unpacks to 63 MiB
/// and builds with 512 MiB on both hypervisors.
const DOM0_MEM_MIB: u32 = 512;
const MACHINE_MEM_MIB: u32 = 1024;
/// The domU boot: dom0's memory (its module holds the 14 MiB kernel, which
/// unpacks to 53 MiB in dom0) and the domU's.
const DOMU_DOM0_MEM_MIB: u32 = 160;
pub const DOMU_MIB: u32 = 128;
/// What dom0 prints once the domU is gone.
const DOMU_DESTROYED: &str = "dom0: domain 1 shut down (poweroff) and is destroyed";
/// The prefix of the domU's console lines as dom0 shows them.
const DOMU_PREFIX: &str = "domU1| ";

/// Seconds a boot may take under TCG (Xen boots all four in under 30).
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;
/// Seconds an hv boot may take while it is known to fail: Linux reaches
/// its stopping point within 20 s, and one that stops in its halt loop
/// (an early BUG before its console is up) would otherwise hold the
/// test run for the full time-out.
pub const HV_KNOWN_FAILING_TIMEOUT_SECS: u64 = 90;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evtchn {
    Fifo,
    TwoLevel,
}

impl Evtchn {
    pub fn name(self) -> &'static str {
        match self {
            Evtchn::Fifo => "fifo",
            Evtchn::TwoLevel => "2l",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "fifo" => Some(Evtchn::Fifo),
            "2l" | "2-level" => Some(Evtchn::TwoLevel),
            _ => None,
        }
    }
}

/// One boot: how many vCPUs and which event-channel ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Boot {
    pub vcpus: u32,
    pub evtchn: Evtchn,
    /// Booted as a domU of our dom0 rather than as dom0.
    pub domu: bool,
}

impl Boot {
    /// The test entries: as dom0 with 1 and 2 vCPUs, each ABI; the cloud
    /// kernel as a domU.
    pub const ALL: [Boot; 5] = [
        Boot {
            vcpus: 1,
            evtchn: Evtchn::Fifo,
            domu: false,
        },
        Boot {
            vcpus: 1,
            evtchn: Evtchn::TwoLevel,
            domu: false,
        },
        Boot {
            vcpus: 2,
            evtchn: Evtchn::Fifo,
            domu: false,
        },
        Boot {
            vcpus: 2,
            evtchn: Evtchn::TwoLevel,
            domu: false,
        },
        Boot {
            vcpus: 1,
            evtchn: Evtchn::Fifo,
            domu: true,
        },
    ];

    /// `linux/1vcpu-fifo`, or `linux/domu`.
    pub fn name(self) -> String {
        if self.domu {
            return "linux/domu".into();
        }
        format!("linux/{}vcpu-{}", self.vcpus, self.evtchn.name())
    }

    /// Linux's command line. `earlyprintk=xen` in a domU writes to its
    /// console ring (Xen refuses `console_io` to all but the hardware
    /// domain), so dom0 shows those lines too, as `domU1| (early) ...`.
    pub fn cmdline(self) -> String {
        let fifo = u32::from(self.evtchn == Evtchn::Fifo);
        format!("console=hvc0 earlyprintk=xen xen.fifo_events={fifo} panic=-1 rdinit=/init")
    }

    /// The marker a good run prints.
    pub fn expected_marker(self) -> String {
        format!("{MARKER} cpus={} evtchn={}", self.vcpus, self.evtchn.name())
    }
}

/// `/init`: a busybox shell script.
const INIT: &str = r#"#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
cpus=$($B grep -c ^processor /proc/cpuinfo)
if $B dmesg | $B grep -q "Using FIFO-based ABI"; then ev=fifo
elif $B dmesg | $B grep -q "Using 2-level ABI"; then ev=2l
else ev=unknown; fi
echo "HV-LINUX-INIT-OK cpus=$cpus evtchn=$ev"
$B poweroff -f
"#;

/// Writes the initramfs (busybox, `/init`, `/dev/console`, and the cloud
/// kernel's Xen frontend modules in `/lib/modules/`) to `out`.
pub fn make_initramfs(busybox: &Path, modules: &[&Path], out: &Path) -> Result<(), String> {
    use cpio::Entry;
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let bb = read(busybox)?;
    let modules = modules
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("module.ko");
            Ok((format!("lib/modules/{name}"), read(p)?))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut entries = vec![
        Entry::Dir { path: "bin" },
        Entry::Dir { path: "dev" },
        Entry::Dir { path: "proc" },
        Entry::Dir { path: "sys" },
        Entry::CharDev {
            path: "dev/console",
            major: 5,
            minor: 1,
        },
        Entry::File {
            path: "bin/busybox",
            mode: 0o755,
            data: &bb,
        },
        Entry::File {
            path: "init",
            mode: 0o755,
            data: INIT.as_bytes(),
        },
        Entry::Dir { path: "lib" },
        Entry::Dir {
            path: "lib/modules",
        },
    ];
    entries.extend(modules.iter().map(|(path, data)| Entry::File {
        path,
        mode: 0o644,
        data,
    }));
    let archive = cpio::archive(&entries)?;
    std::fs::write(out, archive).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

/// The cache directory: `target/linux/`.
pub fn dir(ws: &Workspace) -> PathBuf {
    ws.target_dir.join("linux")
}

/// Kernel and initramfs, ready to boot.
pub struct Images {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The cloud kernel, for `linux/domu`.
    pub cloud: PathBuf,
    pub versions: String,
}

pub fn images(ws: &Workspace, fetch: bool) -> Result<Images, String> {
    let cached = fetch::cached_or_fetch(&dir(ws), fetch)?;
    let cloud = fetch::cloud_cached_or_fetch(&dir(ws), fetch)?;
    let initrd = dir(ws).join("initramfs.cpio");
    make_initramfs(
        &cached.busybox,
        &[&cloud.blkfront, &cloud.netfront],
        &initrd,
    )?;
    Ok(Images {
        kernel: cached.kernel,
        initrd,
        cloud: cloud.kernel,
        versions: format!("{}{}", cached.versions, cloud.version),
    })
}

/// Which hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    Hv,
    Xen,
}

impl On {
    fn name(self) -> &'static str {
        match self {
            On::Hv => "hv",
            On::Xen => "xen",
        }
    }
}

/// How one boot went.
pub struct Outcome {
    pub verdict: Verdict,
    pub secs: f64,
    pub log: PathBuf,
    /// How far Linux got, for a failure: its last console lines and the
    /// hypervisor's crash report.
    pub progress: Vec<String>,
}

/// Boots `boot` on `on`; `xen` is the uncompressed Xen image.
pub fn run(
    ws: &Workspace,
    profile: Profile,
    images: &Images,
    boot: Boot,
    on: On,
    xen: Option<&Path>,
    timeout: Duration,
) -> Result<Outcome, String> {
    let stem = if boot.domu {
        format!("domu.{}", on.name())
    } else {
        format!("{}vcpu-{}.{}", boot.vcpus, boot.evtchn.name(), on.name())
    };
    // As dom0, Linux boots with the initramfs; as a domU, our dom0 boots
    // with a bundle of Linux, its command line and the initramfs.
    let bundles = ws.xtask_dir().join("bundles");
    let (kernel, cmdline, module, dom0_mib) = if boot.domu {
        let module = bundles.join(format!("linux-domu-module.{}.bundle", on.name()));
        crate::write_bundle(
            &images.cloud,
            &boot.cmdline(),
            Some(&images.initrd),
            &module,
        )
        .map_err(|e| e.to_string())?;
        (
            ws.kernel(profile, "dom0"),
            format!("domu_mib={DOMU_MIB}"),
            module,
            DOMU_DOM0_MEM_MIB,
        )
    } else {
        (
            images.kernel.clone(),
            boot.cmdline(),
            images.initrd.clone(),
            DOM0_MEM_MIB,
        )
    };
    let logs = ws.xtask_dir().join("logs").join("linux");
    std::fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    let log = logs.join(format!("{stem}.log"));
    let (mut cfg, stop_on) = match on {
        On::Hv => {
            let bundle = bundles.join(format!("linux-{stem}.bundle"));
            crate::write_bundle(&kernel, &cmdline, Some(&module), &bundle)
                .map_err(|e| e.to_string())?;
            let mut cfg = qemu::Config::new(ws.kernel(profile, "hv"), &bundle);
            cfg.append = format!(
                "console=com1 dom0_mem={dom0_mib}M dom0_max_vcpus={}",
                boot.vcpus
            );
            (cfg, &[][..])
        }
        On::Xen => {
            let xen = xen.ok_or("no Xen image")?;
            let mut cfg = crate::xen::config(xen, &kernel, &cmdline, Some(&module))?;
            cfg.append = crate::xen::with_dom0_mem(&cfg.append, dom0_mib).replace(
                "dom0_max_vcpus=1",
                &format!("dom0_max_vcpus={}", boot.vcpus),
            );
            (cfg, crate::xen::STOP_LINES)
        }
    };
    cfg.smp = boot.vcpus;
    cfg.mem_mib = MACHINE_MEM_MIB;
    let start = Instant::now();
    let ending = cfg.run_logged(&log, timeout, stop_on)?;
    let secs = start.elapsed().as_secs_f64();
    let text = std::fs::read(&log).map_err(|e| format!("cannot read {}: {e}", log.display()))?;
    let text = String::from_utf8_lossy(&text);
    let verdict = judge(boot, on, &text, ending);
    let progress = if matches!(verdict, Verdict::Fail(_)) {
        progress(&text)
    } else {
        Vec::new()
    };
    Ok(Outcome {
        verdict,
        secs,
        log,
        progress,
    })
}

/// Passes when `/init` printed the expected marker and the machine then
/// powered off as the hypervisor reports it.
pub fn judge(boot: Boot, on: On, log: &str, ending: Ending) -> Verdict {
    let want = boot.expected_marker();
    // A domU's lines come through dom0 with its prefix.
    let prefix = if boot.domu { DOMU_PREFIX } else { "" };
    let marker = log
        .lines()
        .map(str::trim_end)
        .filter_map(|l| l.strip_prefix(prefix))
        .find(|l| l.starts_with(MARKER));
    if boot.domu && marker.is_some_and(|m| m == want) && !log.contains(DOMU_DESTROYED) {
        return Verdict::Fail(format!("/init ran, then no {DOMU_DESTROYED:?}"));
    }
    let powered_off = match on {
        On::Hv => ending == Ending::Exited(0),
        // Linux as dom0 powers off through ACPI (XENPF_enter_acpi_sleep):
        // Xen enters S5 and QEMU exits 0. Without ACPI it would be
        // SCHEDOP_shutdown and Xen's halt line.
        On::Xen => {
            log.contains(crate::xen::HALT_LINE)
                || (ending == Ending::Exited(0) && log.contains(XEN_S5_LINE))
        }
    };
    match marker {
        Some(m) if m == want && powered_off => Verdict::Pass { skipped: false },
        Some(m) if m == want => Verdict::Fail(format!("/init ran, then no poweroff ({ending})")),
        Some(m) => Verdict::Fail(format!("/init printed {m:?}, expected {want:?}")),
        None => Verdict::Fail(format!("no {MARKER} line ({ending})")),
    }
}

/// Linux's last console line and the hypervisor's crash report, if any.
pub fn progress(log: &str) -> Vec<String> {
    // Lines that are not Linux's: the hypervisor's, and QEMU's own.
    let is_hv =
        |l: &str| l.starts_with("(hv)") || l.starts_with("(XEN)") || l.starts_with("qemu-system");
    let mut out = Vec::new();
    if let Some(last) = log
        .lines()
        .map(str::trim_end)
        .rfind(|l| !l.is_empty() && !is_hv(l))
    {
        out.push(format!("last Linux line: {last}"));
    }
    out.extend(
        log.lines()
            .map(str::trim_end)
            .filter(|l| l.contains("crashed") || l.contains("ERROR:") || l.contains("Panic"))
            .take(8)
            .map(String::from),
    );
    out
}

/// `cargo xtask linux`: fetch, build the initramfs and boot.
pub fn cmd(ws: &Workspace, mut p: Parser) -> Result<(), Error> {
    let mut profile = Profile::Release;
    let mut vcpus = 1u32;
    let mut evtchn = Evtchn::Fifo;
    let (mut hv, mut xen) = (false, false);
    let mut timeout = DEFAULT_TIMEOUT_SECS;
    let mut build = true;
    let mut domu = false;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Err(crate::help()),
            Long("vcpus") => vcpus = args::positive(&mut p, "--vcpus")?,
            Long("evtchn") => {
                let v = p.value()?.string()?;
                evtchn = Evtchn::parse(&v)
                    .ok_or_else(|| Error::Usage(format!("--evtchn: fifo or 2l, not {v:?}")))?;
            }
            Long("domu") => domu = true,
            Long("hv") => hv = true,
            Long("xen") => xen = true,
            Long("timeout") => timeout = args::positive(&mut p, "--timeout")?,
            Long("debug") => profile = Profile::Debug,
            Long("no-build") => build = false,
            arg => return Err(arg.unexpected().into()),
        }
    }
    if !hv && !xen {
        (hv, xen) = (true, true);
    }
    let mut needs = vec![crate::Prereq::Qemu];
    if hv {
        needs.push(crate::Prereq::KernelTarget);
    }
    if xen {
        needs.push(crate::Prereq::XenHypervisor);
    }
    crate::ensure(ws, &needs)?;
    let images = images(ws, true).map_err(Error::Failed)?;
    print!("{}", images.versions);
    if build {
        // The domU boot's dom0 is ours, on either side.
        let kernels: &[&str] = match (hv, domu) {
            (true, true) => &["hv", "dom0"],
            (true, false) => &["hv"],
            (false, true) => &["dom0"],
            (false, false) => &[],
        };
        if !kernels.is_empty() {
            crate::build_kernels(ws, profile, kernels)?;
        }
    }
    let xen_image = if xen {
        Some(crate::xen::image(ws)?)
    } else {
        None
    };
    let boot = Boot {
        vcpus,
        evtchn,
        domu,
    };
    let mut failed = false;
    for on in [On::Xen, On::Hv] {
        if (on == On::Hv && !hv) || (on == On::Xen && !xen) {
            continue;
        }
        let out = run(
            ws,
            profile,
            &images,
            boot,
            on,
            xen_image.as_deref(),
            Duration::from_secs(timeout),
        )
        .map_err(Error::Failed)?;
        let what = match &out.verdict {
            Verdict::Pass { .. } => "ok".to_owned(),
            Verdict::Fail(why) => {
                failed = true;
                format!("FAILED ({why})")
            }
        };
        println!(
            "{} on {}: {what} in {:.1} s; log {}",
            boot.name(),
            on.name(),
            out.secs,
            ws.display(&out.log)
        );
        for line in &out.progress {
            println!("    | {line}");
        }
    }
    if failed {
        Err(Error::Exit(1))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_FIFO: Boot = Boot {
        vcpus: 1,
        evtchn: Evtchn::Fifo,
        domu: false,
    };
    const DOMU: Boot = Boot {
        vcpus: 1,
        evtchn: Evtchn::Fifo,
        domu: true,
    };

    #[test]
    fn names_and_command_lines() {
        let names: Vec<String> = Boot::ALL.iter().map(|b| b.name()).collect();
        assert_eq!(
            names,
            [
                "linux/1vcpu-fifo",
                "linux/1vcpu-2l",
                "linux/2vcpu-fifo",
                "linux/2vcpu-2l",
                "linux/domu"
            ]
        );
        assert_eq!(DOMU.cmdline(), ONE_FIFO.cmdline());
        assert!(ONE_FIFO.cmdline().contains("xen.fifo_events=1"));
        assert!(Boot::ALL[1].cmdline().contains("xen.fifo_events=0"));
        assert!(
            !ONE_FIFO.cmdline().contains(','),
            "commas would need escaping for Xen"
        );
    }

    #[test]
    fn judges_marker_and_poweroff() {
        let good = "x\r\nHV-LINUX-INIT-OK cpus=1 evtchn=fifo\r\n";
        assert!(matches!(
            judge(ONE_FIFO, On::Hv, good, Ending::Exited(0)),
            Verdict::Pass { .. }
        ));
        let xen = format!("{good}(XEN) {}\n", crate::xen::HALT_LINE);
        assert!(matches!(
            judge(ONE_FIFO, On::Xen, &xen, Ending::StoppedOnLine),
            Verdict::Pass { .. }
        ));
        let s5 = format!("{good}(XEN) {XEN_S5_LINE}.\n");
        assert!(matches!(
            judge(ONE_FIFO, On::Xen, &s5, Ending::Exited(0)),
            Verdict::Pass { .. }
        ));
        assert!(matches!(
            judge(ONE_FIFO, On::Xen, &s5, Ending::TimedOut(9)),
            Verdict::Fail(_)
        ));
        // The marker alone is not enough, nor the wrong counts.
        assert!(matches!(
            judge(ONE_FIFO, On::Xen, good, Ending::TimedOut(5)),
            Verdict::Fail(_)
        ));
        let two = "HV-LINUX-INIT-OK cpus=2 evtchn=fifo\n";
        assert!(matches!(
            judge(ONE_FIFO, On::Hv, two, Ending::Exited(0)),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            judge(ONE_FIFO, On::Hv, "", Ending::Exited(37)),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn a_domu_marker_comes_through_dom0_and_the_domu_is_destroyed() {
        let marker = "domU1| HV-LINUX-INIT-OK cpus=1 evtchn=fifo\n";
        let good = format!("{marker}{DOMU_DESTROYED}\n");
        assert!(matches!(
            judge(DOMU, On::Hv, &good, Ending::Exited(0)),
            Verdict::Pass { .. }
        ));
        // dom0's own line is not the domU's; nor is a domU left running.
        let bare = format!("HV-LINUX-INIT-OK cpus=1 evtchn=fifo\n{DOMU_DESTROYED}\n");
        assert!(matches!(
            judge(DOMU, On::Hv, &bare, Ending::Exited(0)),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            judge(DOMU, On::Hv, marker, Ending::Exited(0)),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn progress_names_the_last_linux_line_and_the_crash() {
        let log =
            "(hv) booting\n[    0.1] Linux version 6.1\n(hv) ERROR: CPU0: domain 0 crashed: #PF\nqemu-system-x86_64: terminating on signal 15\n";
        let p = progress(log);
        assert_eq!(p[0], "last Linux line: [    0.1] Linux version 6.1");
        assert!(p[1].contains("crashed: #PF"));
    }

    #[test]
    fn init_prints_the_marker() {
        assert!(INIT.starts_with("#!/bin/busybox sh\n"));
        assert!(INIT.contains(&format!("echo \"{MARKER} cpus=$cpus evtchn=$ev\"")));
    }
}
