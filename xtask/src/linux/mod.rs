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
/// What the first domU writes to `/dev/hvc1` (its extra console,
/// `device/console/1`), as dom0 relays it.
const HVC1_LINE: &str = "domU1.1| HV-HVC1 on the second console";

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
/// The domU's disk: an ext4 image of this size holding [`DISK_FILE`], its
/// writes printed by dom0 after the domU is gone as
/// `<DISK_WRITTEN><offset> <hex>` lines.
const DISK_MIB: u32 = 16;
const DISK_FILE: (&str, &str) = ("hello.txt", "hello from the host");
const DISK_WRITTEN: &str = "dom0: xvda-written ";
/// What dom0 says of the first domU's block ring: Linux's front end
/// loaded with `max_ring_page_order=2` takes the 4 pages dom0 offers.
const VBD_RING: &str = "dom0: vbd of domain 1: connected, a ring of 4 pages (128 slots)";
/// What Linux's front end says once it uses dom0's indirect requests.
const VBD_INDIRECT: &str = "indirect descriptors: enabled";
/// Linux's front end took the persistent grants dom0 offered, and dom0
/// kept some mapped (`dom0: vbd of domain 1: N persistent grants were
/// kept mapped`).
const VBD_PERSISTENT: &str = "persistent grants: enabled";
const VBD_KEPT: (&str, &str) = (
    "dom0: vbd of domain 1: ",
    " persistent grants were kept mapped",
);
/// What dom0 says of the discards (`-o discard`, a file removed).
const VBD_DISCARDED: &str = "dom0: vbd of domain 1: ";
/// What the domU writes to its disk.
const DOMU_FILE: (&str, &str) = ("from-domu.txt", "written by the domU");

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

    /// The domU boot's two command lines: the first domU tests its disk
    /// and serves a MiB over HTTP at 10.0.0.1, the second pings it and
    /// fetches the MiB from 10.0.0.2.
    pub fn domu_cmdlines(self) -> [String; 2] {
        let base = self.cmdline();
        [
            format!("{base} hvtest=vbd hvnet=10.0.0.1 hvrole=serve"),
            format!("{base} hvnet=10.0.0.2 hvrole=fetch"),
        ]
    }

    /// The marker a good run prints.
    pub fn expected_marker(self) -> String {
        format!("{MARKER} cpus={} evtchn={}", self.vcpus, self.evtchn.name())
    }
}

/// `/init`: a busybox shell script.
const INIT: &str = r#"#!/bin/busybox sh
B=/bin/busybox
# Runs "$@" up to three times while it fails: a command that crashed is
# run again, and says so (see the README on linux/domu).
retry() {
  for t in 1 2 3; do
    "$@" && return 0
    echo "HV-RETRY $* failed ($t)" >&2
  done
  return 1
}
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mkdir -p /tmp
sum() { $B sha256sum "$1" > /tmp/sum && $B cut -d' ' -f1 /tmp/sum; }
abi() {
  d=$($B dmesg) || return 1
  case "$d" in
    *"Using FIFO-based ABI"*) ev=fifo;;
    *"Using 2-level ABI"*) ev=2l;;
    *) ev=unknown;;
  esac
}
cpus=$(retry $B grep -c ^processor /proc/cpuinfo)
ev=unknown
retry abi
echo "HV-LINUX-INIT-OK cpus=$cpus evtchn=$ev"
if $B grep -q hvtest=vbd /proc/cmdline; then
  $B mount -t devtmpfs devtmpfs /dev
  # The extra console dom0 offers (device/console/1): hvc_xen's hvc1.
  n=0
  while [ ! -e /dev/hvc1 ] && [ $n -lt 100 ]; do $B sleep 0.1; n=$((n+1)); done
  echo "HV-HVC1 on the second console" > /dev/hvc1
  $B insmod /lib/modules/xen-blkfront.ko max_ring_page_order=2
  n=0
  while [ ! -b /dev/xvda ] && [ $n -lt 200 ]; do $B sleep 0.1; n=$((n+1)); done
  echo "HV-VBD-SHA256 $(retry sum /dev/xvda)"
  $B mkdir -p /mnt
  $B mount -t ext4 -o discard /dev/xvda /mnt
  echo "HV-VBD-READ $(retry $B cat /mnt/hello.txt)"
  echo "written by the domU" > /mnt/from-domu.txt
  # A file written and removed: its blocks are discarded (-o discard).
  $B dd if=/dev/zero of=/mnt/scratch bs=4096 count=64 2>/dev/null
  $B sync
  $B rm /mnt/scratch
  $B sync
  $B umount /mnt
  echo "HV-VBD-DONE"
fi
ip=; role=
for w in $($B cat /proc/cmdline); do
  case $w in hvnet=*) ip=${w#hvnet=};; hvrole=*) role=${w#hvrole=};; esac
done
if [ -n "$ip" ]; then
  $B insmod /lib/modules/xen-netfront.ko
  n=0
  while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 200 ]; do $B sleep 0.1; n=$((n+1)); done
  $B ip addr add $ip/24 dev eth0
  $B ip link set eth0 up
  $B mkdir -p /www/cgi-bin
  if [ "$role" = serve ]; then
    retry $B dd if=/dev/urandom of=/www/data bs=1024 count=1024 2>/dev/null
    echo "HV-NET-SERVING $(retry sum /www/data)"
    {
      echo '#!/bin/busybox sh'
      echo '/bin/busybox touch /tmp/fetched'
      echo 'echo "Content-Type: text/plain"; echo; echo ok'
    } > /www/cgi-bin/done
    $B chmod +x /www/cgi-bin/done
    $B httpd -p 8080 -h /www
    n=0
    while [ ! -e /tmp/fetched ] && [ $n -lt 3000 ]; do $B sleep 0.2; n=$((n+1)); done
    echo "HV-NET-SERVED"
  else
    n=0
    until $B ping -c 1 -W 2 10.0.0.1 >/dev/null 2>&1 || [ $n -ge 60 ]; do n=$((n+1)); done
    $B ping -c 3 10.0.0.1 > /tmp/ping && $B grep -q " 0% packet loss" /tmp/ping && echo "HV-NET-PING-OK"
    n=0
    until $B wget -q -O /tmp/data http://10.0.0.1:8080/data || [ $n -ge 60 ]; do $B sleep 1; n=$((n+1)); done
    echo "HV-NET-FETCHED $(retry sum /tmp/data)"
    if $B grep -q hvbench=tcp /proc/cmdline; then
      # The MiB 64 times more; the uptime's milliseconds (10 ms steps)
      # under icount are millions of instructions.
      ms() { $B awk '{printf "%d", $1 * 1000}' /proc/uptime; }
      t0=$(ms); i=0
      while [ $i -lt 64 ]; do $B wget -q -O /dev/null http://10.0.0.1:8080/data; i=$((i+1)); done
      t1=$(ms)
      echo "bench domu_tcp_1m iterations=64 cycles_per_op=$(( (t1 - t0) * 1000000 / 64 )) total=$(( (t1 - t0) * 1000000 )) overhead=0"
    fi
    retry $B wget -q -O /dev/null http://10.0.0.1:8080/cgi-bin/done
  fi
fi
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

/// Makes the domU's disk: a fresh ext4 image of [`DISK_MIB`] MiB holding
/// [`DISK_FILE`] (e2fsprogs' `mkfs.ext4 -d`).
fn make_disk(out: &Path) -> Result<(), String> {
    let staging = out.with_extension("d");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    std::fs::write(staging.join(DISK_FILE.0), format!("{}\n", DISK_FILE.1))
        .map_err(|e| format!("cannot write the disk's file: {e}"))?;
    let _ = std::fs::remove_file(out);
    let status = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "hvtest", "-d"])
        .arg(&staging)
        .arg(out)
        .arg(format!("{DISK_MIB}M"))
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run mkfs.ext4 (package e2fsprogs): {e}"))?;
    if !status.success() {
        return Err(format!("mkfs.ext4 {}: {status}", out.display()));
    }
    Ok(())
}

/// dom0's module for the domU boot: a boot bundle (entries tagged as
/// `dom0::domus` reads them) of two domUs, each the cloud kernel with its
/// command line, the initramfs and a network interface; the first also
/// has the disk (`xvda w`) and an extra console. The kernel and initramfs are stored once.
fn write_domu_module(
    images: &Images,
    cmdlines: &[String; 2],
    disk: &Path,
    out: &Path,
) -> Result<(), String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let (kernel, initrd, disk) = (read(&images.cloud)?, read(&images.initrd)?, read(disk)?);
    fn image<'a>(data: &'a [u8], cmdline: &'a str) -> boot_bundle::Image<'a> {
        boot_bundle::Image { data, cmdline }
    }
    let tagged: Vec<String> = cmdlines.iter().map(|c| format!("kernel {c}")).collect();
    let bytes = boot_bundle::build(&[
        image(&kernel, &tagged[0]),
        image(&initrd, "ramdisk"),
        image(&disk, "disk xvda w"),
        image(&[], "vif"),
        image(&[], "console"),
        image(&kernel, &tagged[1]),
        image(&initrd, "ramdisk"),
        image(&[], "vif"),
    ])
    .map_err(|e| format!("cannot bundle the domUs' images: {e}"))?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(out, bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

/// The domU's disk checks: what it read through `/dev/xvda` is the image
/// (its SHA-256, and the host's file in it), and the image with the
/// blocks dom0 reports written is a clean ext4 (`e2fsck -fn`) holding the
/// domU's file (`debugfs`).
fn check_disk(image: &Path, log: &str) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let original =
        std::fs::read(image).map_err(|e| format!("cannot read {}: {e}", image.display()))?;
    let want: String = Sha256::digest(&original)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let domu = |tag: &str| {
        log.lines()
            .map(str::trim_end)
            .filter_map(|l| l.strip_prefix(DOMU_PREFIX))
            .find_map(|l| l.strip_prefix(tag))
            .map(str::to_owned)
    };
    match domu("HV-VBD-SHA256 ") {
        Some(got) if got == want => {}
        Some(got) => {
            return Err(format!(
                "/dev/xvda read as sha256 {got}, the image is {want}"
            ))
        }
        None => return Err("no HV-VBD-SHA256 line from the domU".into()),
    }
    if domu("HV-VBD-READ ").as_deref() != Some(DISK_FILE.1) {
        return Err(format!(
            "the domU did not read {:?} from the disk",
            DISK_FILE.1
        ));
    }
    if domu("HV-VBD-DONE").is_none() {
        return Err("the domU did not finish with its disk".into());
    }
    if !log.contains(VBD_RING) {
        return Err(format!("no {VBD_RING:?} from dom0"));
    }
    if !log.contains(VBD_INDIRECT) {
        return Err(format!("no {VBD_INDIRECT:?} from the domU"));
    }
    if !log.contains(VBD_PERSISTENT) {
        return Err(format!("no {VBD_PERSISTENT:?} from the domU"));
    }
    let kept = log.lines().find_map(|l| {
        l.trim_end()
            .strip_prefix(VBD_KEPT.0)?
            .strip_suffix(VBD_KEPT.1)?
            .parse::<u64>()
            .ok()
    });
    if kept.is_none_or(|n| n == 0) {
        return Err(format!("no grant kept mapped ({:?})", VBD_KEPT.1));
    }
    let discarded = log.lines().find_map(|l| {
        l.trim_end()
            .strip_prefix(VBD_DISCARDED)?
            .strip_suffix(" sectors discarded")?
            .parse::<u64>()
            .ok()
    });
    if discarded.is_none_or(|n| n == 0) {
        return Err(format!("no sector discarded ({VBD_DISCARDED:?} ...)"));
    }
    check_network(log)?;
    if !log.lines().any(|l| l.trim_end() == HVC1_LINE) {
        return Err(format!("no {HVC1_LINE:?}: the domU's extra console"));
    }
    let mut disk = original;
    apply_written(&mut disk, log)?;
    let after = image.with_extension("after.img");
    std::fs::write(&after, &disk).map_err(|e| format!("cannot write {}: {e}", after.display()))?;
    let fsck = std::process::Command::new("e2fsck")
        .args(["-f", "-n"])
        .arg(&after)
        .output()
        .map_err(|e| format!("cannot run e2fsck (package e2fsprogs): {e}"))?;
    if !fsck.status.success() {
        return Err(format!(
            "e2fsck -fn on the disk after the domU: {} ({})",
            fsck.status,
            String::from_utf8_lossy(&fsck.stdout)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let cat = std::process::Command::new("debugfs")
        .args(["-R", &format!("cat /{}", DOMU_FILE.0)])
        .arg(&after)
        .output()
        .map_err(|e| format!("cannot run debugfs (package e2fsprogs): {e}"))?;
    let text = String::from_utf8_lossy(&cat.stdout);
    if text.trim_end() != DOMU_FILE.1 {
        return Err(format!(
            "/{} on the disk after the domU holds {text:?}",
            DOMU_FILE.0
        ));
    }
    Ok(())
}

/// The network checks: the second domU pinged the first without a loss,
/// and fetched over TCP the MiB the first served, byte for byte (their
/// SHA-256s).
fn check_network(log: &str) -> Result<(), String> {
    let line = |id: u16, tag: &str| {
        let prefix = format!("domU{id}| {tag}");
        log.lines()
            .map(str::trim_end)
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(str::to_owned)
    };
    if line(2, "HV-NET-PING-OK").is_none() {
        return Err("domU 2 did not ping domU 1 without a loss".into());
    }
    let served = line(1, "HV-NET-SERVING ").ok_or("domU 1 did not serve its data")?;
    match line(2, "HV-NET-FETCHED ") {
        Some(got) if got == served => {}
        Some(got) => {
            return Err(format!(
                "domU 2 fetched sha256 {got}, domU 1 served {served}"
            ))
        }
        None => return Err("domU 2 did not fetch domU 1's data".into()),
    }
    if line(1, "HV-NET-SERVED").is_none() {
        return Err("domU 1 did not see the fetch finish".into());
    }
    Ok(())
}

/// Applies dom0's `<DISK_WRITTEN><offset> <hex>` lines to `disk`: how many
/// there were. Every line must be whole and inside the disk, and dom0's
/// closing count line must be there.
fn apply_written(disk: &mut [u8], log: &str) -> Result<usize, String> {
    let mut lines = 0;
    let mut ended = false;
    for l in log.lines().map(str::trim_end) {
        let Some(rest) = l.strip_prefix(DISK_WRITTEN) else {
            continue;
        };
        if rest.starts_with("end:") {
            ended = true;
            continue;
        }
        let bad = || format!("a bad line from dom0: {l:?}");
        let (offset, hex) = rest.split_once(' ').ok_or_else(bad)?;
        let offset = usize::from_str_radix(offset, 16).map_err(|_| bad())?;
        if let Some(len) = hex.strip_prefix("zeros ") {
            let len = usize::from_str_radix(len, 16).map_err(|_| bad())?;
            disk.get_mut(offset..offset.saturating_add(len))
                .ok_or_else(bad)?
                .fill(0);
            lines += 1;
            continue;
        }
        if hex.len() % 2 != 0 || !hex.is_ascii() {
            return Err(bad());
        }
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        disk.get_mut(offset..offset.saturating_add(bytes.len()))
            .ok_or_else(bad)?
            .copy_from_slice(&bytes);
        lines += 1;
    }
    if !ended {
        return Err("dom0 did not report the disk's writes".into());
    }
    Ok(lines)
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
    run_with(ws, profile, images, (boot, false), on, xen, (timeout, &[]))
}

/// The domU boot with the TCP bench (`hvbench=tcp`) on the second domU,
/// with QEMU's `extra` arguments (the bench's `-icount`): the log's text.
pub fn bench_tcp(
    ws: &Workspace,
    images: &Images,
    on: On,
    xen: Option<&Path>,
    (timeout, extra): (Duration, &[String]),
) -> Result<String, String> {
    let domu = Boot::ALL[4];
    let out = run_with(
        ws,
        Profile::Release,
        images,
        (domu, true),
        on,
        xen,
        (timeout, extra),
    )?;
    if let Verdict::Fail(why) = out.verdict {
        return Err(format!(
            "the domU boot failed: {why}; log {}",
            out.log.display()
        ));
    }
    std::fs::read(&out.log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| format!("cannot read {}: {e}", out.log.display()))
}

fn run_with(
    ws: &Workspace,
    profile: Profile,
    images: &Images,
    (boot, bench): (Boot, bool),
    on: On,
    xen: Option<&Path>,
    (timeout, extra): (Duration, &[String]),
) -> Result<Outcome, String> {
    let stem = if boot.domu && bench {
        format!("domu-bench.{}", on.name())
    } else if boot.domu {
        format!("domu.{}", on.name())
    } else {
        format!("{}vcpu-{}.{}", boot.vcpus, boot.evtchn.name(), on.name())
    };
    // As dom0, Linux boots with the initramfs; as a domU, our dom0 boots
    // with a bundle of Linux, its command line and the initramfs.
    let bundles = ws.xtask_dir().join("bundles");
    let (kernel, cmdline, module, dom0_mib) = if boot.domu {
        let module = bundles.join(format!("linux-domu-module.{}.bundle", on.name()));
        let disk = bundles.join(format!("linux-domu-disk.{}.img", on.name()));
        make_disk(&disk)?;
        let mut cmdlines = boot.domu_cmdlines();
        if bench {
            cmdlines[1].push_str(" hvbench=tcp");
        }
        write_domu_module(images, &cmdlines, &disk, &module)?;
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
    cfg.extra = extra.to_vec();
    let start = Instant::now();
    let ending = cfg.run_logged(&log, timeout, stop_on)?;
    let secs = start.elapsed().as_secs_f64();
    let text = std::fs::read(&log).map_err(|e| format!("cannot read {}: {e}", log.display()))?;
    let text = String::from_utf8_lossy(&text);
    let mut verdict = judge(boot, on, &text, ending);
    if boot.domu && matches!(verdict, Verdict::Pass { .. }) {
        let disk = bundles.join(format!("linux-domu-disk.{}.img", on.name()));
        if let Err(why) = check_disk(&disk, &text) {
            verdict = Verdict::Fail(why);
        }
    }
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
    if boot.domu && marker.is_some_and(|m| m == want) {
        for id in [1, 2] {
            let destroyed = format!("dom0: domain {id} shut down (poweroff) and is destroyed");
            if !log.contains(&destroyed) {
                return Verdict::Fail(format!("/init ran, then no {destroyed:?}"));
            }
        }
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
        let [one, two] = DOMU.domu_cmdlines();
        assert!(one.contains("hvtest=vbd") && one.contains("hvrole=serve"));
        assert!(!two.contains("hvtest=vbd") && two.contains("hvnet=10.0.0.2"));
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
        let destroyed = "dom0: domain 1 shut down (poweroff) and is destroyed\n\
                         dom0: domain 2 shut down (poweroff) and is destroyed\n";
        let good = format!("{marker}{destroyed}");
        assert!(matches!(
            judge(DOMU, On::Hv, &good, Ending::Exited(0)),
            Verdict::Pass { .. }
        ));
        // dom0's own line is not the domU's; nor is a domU left running.
        let bare = format!("HV-LINUX-INIT-OK cpus=1 evtchn=fifo\n{destroyed}");
        assert!(matches!(
            judge(DOMU, On::Hv, &bare, Ending::Exited(0)),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            judge(DOMU, On::Hv, marker, Ending::Exited(0)),
            Verdict::Fail(_)
        ));
        let one_left = format!("{marker}dom0: domain 1 shut down (poweroff) and is destroyed\n");
        assert!(matches!(
            judge(DOMU, On::Hv, &one_left, Ending::Exited(0)),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn dom0s_written_blocks_apply_to_the_image() {
        let mut disk = vec![0u8; 256];
        let log = format!(
            "x\n{DISK_WRITTEN}40 aabb\r\ndomU1| {DISK_WRITTEN}0 ff\n{DISK_WRITTEN}end: 1 blocks\n"
        );
        assert_eq!(apply_written(&mut disk, &log), Ok(1));
        assert_eq!((disk[0x40], disk[0x41], disk[0]), (0xaa, 0xbb, 0));
        // A discarded range, then a block written inside it.
        let mut disk = vec![7u8; 256];
        let log = format!(
            "{DISK_WRITTEN}10 zeros 20\n{DISK_WRITTEN}18 0102\n{DISK_WRITTEN}end: 1 blocks\n"
        );
        assert_eq!(apply_written(&mut disk, &log), Ok(2));
        assert_eq!(
            (disk[0xf], disk[0x10], disk[0x18], disk[0x19], disk[0x2f], disk[0x30]),
            (7, 0, 1, 2, 0, 7)
        );
        assert!(apply_written(
            &mut disk,
            &format!("{DISK_WRITTEN}f0 zeros 20\n{DISK_WRITTEN}end: 0 blocks\n")
        )
        .is_err());
        // Past the end, odd or bad hex, or no closing line: refused.
        for bad in ["100 00", "ff 0011", "0 abc", "0 zz", "zz 00"] {
            let log = format!("{DISK_WRITTEN}{bad}\n{DISK_WRITTEN}end: 1 blocks\n");
            assert!(apply_written(&mut disk, &log).is_err(), "{bad}");
        }
        assert!(apply_written(&mut disk, &format!("{DISK_WRITTEN}0 00\n")).is_err());
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
