//! `cargo xtask`: the one host tool of the workspace. It builds the kernels
//! (`hv`, `dom0`, the conformance guests in `tests/`) for
//! `x86_64-unknown-none`, packs a boot domain into a boot bundle, boots `hv`
//! under QEMU, runs every test, and lints. CI runs exactly what developers
//! run (`.ci/run` = `cargo xtask setup`, `lint`, `test` and a short `fuzz`).
//!
//! Commands (`cargo xtask help` prints the options):
//!
//! - `build [--debug]`: `cargo build --release --target x86_64-unknown-none
//!   -p hv -p dom0 -p tests`; kernels land in
//!   `target/x86_64-unknown-none/{release,debug}/`.
//! - `run`: build, bundle the boot domain (default `dom0`) into
//!   `target/xtask/boot.bundle` (the `boot-bundle` crate's writer), print the
//!   QEMU command line and boot with the serial console on the terminal
//!   ([`qemu`]). Exits 0 when QEMU did (domain 0 powered off), else names
//!   the shutdown and exits with QEMU's status.
//! - `test`: host unit tests, build, then every conformance guest under QEMU
//!   on hv and as dom0 of real Xen 4.17 ([`xen`], the oracle), side by side
//!   ([`conformance`]), judged from its log ([`judge`]) against the metadata
//!   in its source ([`meta`]: the `//! @key: value` format is documented
//!   there). Ends with the line `N passed, M failed`; results also go to
//!   `target/xtask/results.json` ([`results`]).
//! - `conformance-table [--check]`: regenerate (or check) the README's
//!   conformance table ([`conformance_table`]).
//! - `lint`: rustfmt check, clippy for the kernel target and for the host,
//!   `conformance-table --check`.
//! - `fuzz`: the host fuzz targets (`fuzz/`, libFuzzer) for a bounded
//!   time each, then the in-guest hypercall fuzzer on hv over many seeds,
//!   and one seed replayed on Xen on request ([`fuzz`]).
//! - `setup`: check and install every prerequisite ([`prereq`]); every other
//!   command checks (and installs, as root) just what it needs first.
//! - `bundle`: write a boot bundle, for debugging.
//!
//! Host-side plumbing comes from well-kept crates.io crates (see
//! `xtask/Cargo.toml` for why each is there); cargo fetches them on a fresh
//! machine before xtask installs anything else. It uses `guest-abi`, a
//! workspace crate that builds on the host, for the one list of hypercalls,
//! and `boot-bundle` for the boot-bundle format.

mod args;
mod bench;
mod bzimage;
mod conformance;
mod conformance_table;
mod fuzz;
mod grub;
mod json;
mod judge;
mod linux;
mod meta;
mod prereq;
mod qemu;
#[cfg(test)]
mod qemu_smoke;
mod results;
mod shell;
mod svg;
mod workspace;
mod xen;

use args::{Long, Parser, Short, ValueExt};
use prereq::Prereq;
use std::path::{Path, PathBuf};
use std::time::Duration;
use workspace::{Profile, Workspace};

/// Why a command stopped.
#[derive(Debug)]
pub enum Error {
    /// Bad command line: printed with a hint, exit status 2.
    Usage(String),
    /// Something failed: printed, exit status 1.
    Failed(String),
    /// Already reported: exit with this status.
    Exit(i32),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Usage(m) | Error::Failed(m) => f.write_str(m),
            Error::Exit(code) => write!(f, "exit status {code}"),
        }
    }
}

const HELP: &str = "\
cargo xtask <command> [options]

  build [--debug]
      Build hv, dom0 and the conformance guests for x86_64-unknown-none.

  run [--guest FILE] [--cmdline STR] [--module FILE] [--hv-cmdline STR]
      [--smp N] [--mem MiB] [--kvm] [--timeout SECS] [--debug] [--no-build]
      [-- extra qemu args]
      Build, bundle the boot domain (default: dom0) and boot hv under QEMU
      with the serial console on this terminal.
        --guest FILE       boot domain kernel ELF (default: the built dom0)
        --cmdline STR      its command line (default: empty)
        --module FILE      its module (initrd; default for dom0: the built
                           hello-domu, which dom0 builds and runs as a domU)
        --hv-cmdline STR   hv's command line (default: console=com1 dom0_mem=64M)
        --smp N, --mem MiB machine vCPUs (default 1) and memory (default 512)
        --kvm              -accel kvm -cpu host instead of TCG -cpu max
        --timeout SECS     stop QEMU after SECS seconds
        --no-build         use the kernels already built

  test [--filter S] [--hv-only | --xen-only] [--jobs N] [--timeout SECS] [--kvm]
      [--debug] [--list]
      Host unit tests, then every conformance case under QEMU both on hv and
      as dom0 of real Xen 4.17 (the oracle; when its package is installed).
      One line per case, `test NAME ... hv ok | xen ok`; a case fails if a
      side it needs fails (`@only: hv (reason)` in a guest skips Xen). Ends
      with `N passed, M failed`. Logs: target/xtask/logs/ (Xen's in
      logs/xen/); results: target/xtask/results.json.
        --filter S         only tests whose name contains S (or one of S,T,...)
                           (host unit tests are named host-unit-tests)
        --hv-only          run the guests on hv only
        --xen-only, --xen  run the guests on Xen only (no host unit tests)
        --jobs N           QEMU runs in parallel (default: number of CPUs)
        --timeout SECS     per-run timeout unless the test sets one (default 60)
        --kvm              hv runs use KVM (Xen always runs under TCG)
        --list             list the test names and exit

  conformance-table [--check]
      Regenerate the conformance table in README.md from guest-abi's
      hypercall list, hv's dispatch table and @implements lines, the guests'
      @covers lines and target/xtask/results.json. --check fails if the
      README is stale (ignoring the on-Xen column, which depends on the last
      local test run); `lint` runs it.

  bench [--filter S] [--iterations N] [--repeats R] [--wallclock]
        [--update-readme] [--timeout SECS] [--no-build]
      Hot paths on hv and on real Xen 4.17 side by side, in instructions
      (QEMU -icount). `cargo xtask bench --help` for details.

  fuzz [--host-seconds S] [--seeds N] [--calls M] [--xen-replay SEED] ...
      Host fuzz targets under libFuzzer, S seconds each; then the in-guest
      hypercall fuzzer on hv for seeds 1..N, M calls each.
      `cargo xtask fuzz --help` for details.

  linux [--vcpus N] [--evtchn fifo|2l] [--domu] [--xen] [--hv]
        [--timeout SECS] [--debug] [--no-build]
      Debian 12's stock kernel (linux-image-amd64, fetched with apt-get
      download, SHA256 checked against the index, cached in target/linux/)
      as dom0 with a busybox initramfs whose /init prints
      `HV-LINUX-INIT-OK cpus=N evtchn=fifo|2l` and powers off; on real Xen
      4.17, then on hv (both unless --xen or --hv). Logs in
      target/xtask/logs/linux/. `cargo xtask test` runs the same boots as
      its linux/* entries.
        --vcpus N          dom0's vCPUs and the machine's CPUs (default 1)
        --evtchn ABI       xen.fifo_events=1 (fifo, default) or 0 (2l)
        --domu             Debian's cloud kernel (linux-image-cloud-amd64) as
                           a domU that the project's dom0 builds and serves
                           (console, xenstore), its lines shown as `domU1| `
        --timeout SECS     per boot (default 600)

  lint
      cargo fmt --check, clippy -D warnings for the kernel target and the host,
      conformance-table --check.

  setup
      Check every prerequisite and install what is missing (as root).

  bundle --guest FILE [--cmdline STR] [--module FILE] -o OUT
      Write a boot bundle.

  help
      This text.
";

fn main() {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    let command = if argv.is_empty() {
        "help".to_owned()
    } else {
        argv.remove(0)
    };
    let ws = Workspace::detect();
    let result = match command.as_str() {
        "build" => cmd_build(&ws, args::parser(argv)),
        "run" => cmd_run(&ws, args::parser(argv)),
        "test" => cmd_test(&ws, args::parser(argv)),
        "conformance-table" => cmd_conformance_table(&ws, args::parser(argv)),
        "lint" => cmd_lint(&ws, args::parser(argv)),
        "setup" => cmd_setup(&ws, args::parser(argv)),
        "bench" => bench::cmd(&ws, args::parser(argv)),
        "fuzz" => fuzz::cmd(&ws, args::parser(argv)),
        "linux" => linux::cmd(&ws, args::parser(argv)),
        "bundle" => cmd_bundle(args::parser(argv)),
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(Error::Usage(format!(
            "unknown command {other:?} (try `cargo xtask help`)"
        ))),
    };
    match result {
        Ok(()) => {}
        Err(Error::Usage(m)) => {
            eprintln!("xtask: {m}");
            std::process::exit(2);
        }
        Err(Error::Failed(m)) => {
            eprintln!("xtask: error: {m}");
            std::process::exit(1);
        }
        Err(Error::Exit(code)) => std::process::exit(code),
    }
}

/// `--help` and `-h`, which every command accepts: the help, then exit 0.
fn help() -> Error {
    print!("{HELP}");
    Error::Exit(0)
}

fn ensure(ws: &Workspace, needs: &[Prereq]) -> Result<(), Error> {
    prereq::ensure(needs, &prereq::Probe::host(&ws.root), false)
}

/// The kernel crates: hv, dom0 and the conformance guests.
pub const ALL_KERNELS: &[&str] = &["hv", "dom0", "tests"];

/// `cargo build` of kernel crates.
pub fn build_kernels(ws: &Workspace, profile: Profile, packages: &[&str]) -> Result<(), Error> {
    let mut cmd = ws.cargo();
    cmd.arg("build");
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    cmd.args(["--target", workspace::KERNEL_TARGET]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    shell::run(&mut cmd)
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Failed(format!("cannot read {what} {}: {e}", path.display())))
}

/// Writes the bundle for one boot domain (kernel + optional module).
pub fn write_bundle(
    guest: &Path,
    cmdline: &str,
    module: Option<&Path>,
    out: &Path,
) -> Result<(), Error> {
    let kernel = read_file(guest, "guest kernel")?;
    if !kernel.starts_with(b"\x7fELF") && !bzimage::is_bzimage(&kernel) {
        return Err(Error::Failed(format!(
            "guest kernel {} is neither an ELF file nor a bzImage",
            guest.display()
        )));
    }
    let module = module.map(|m| read_file(m, "module")).transpose()?;
    let mut images = vec![boot_bundle::Image {
        data: &kernel,
        cmdline,
    }];
    if let Some(module) = &module {
        images.push(boot_bundle::Image {
            data: module,
            cmdline: "",
        });
    }
    let bytes = boot_bundle::build(&images)
        .map_err(|e| Error::Failed(format!("cannot bundle {}: {e}", guest.display())))?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(out, bytes)
        .map_err(|e| Error::Failed(format!("cannot write {}: {e}", out.display())))
}

fn cmd_build(ws: &Workspace, mut p: Parser) -> Result<(), Error> {
    let mut profile = Profile::Release;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Err(help()),
            Long("debug") => profile = Profile::Debug,
            arg => return Err(arg.unexpected().into()),
        }
    }
    ensure(ws, &[Prereq::KernelTarget])?;
    build_kernels(ws, profile, ALL_KERNELS)
}

fn cmd_run(ws: &Workspace, mut p: Parser) -> Result<(), Error> {
    let mut profile = Profile::Release;
    let (mut guest, mut module): (Option<PathBuf>, Option<PathBuf>) = (None, None);
    let mut cmdline = String::new();
    let mut hv_cmdline = qemu::DEFAULT_HV_CMDLINE.to_owned();
    let (mut smp, mut mem) = (qemu::DEFAULT_SMP, qemu::DEFAULT_MEM_MIB);
    let (mut kvm, mut build) = (false, true);
    let mut timeout = None;
    let mut extra = Vec::new();
    loop {
        if let Some(rest) = args::after_dashes(&mut p)? {
            extra = rest;
            break;
        }
        let Some(arg) = p.next()? else { break };
        match arg {
            Short('h') | Long("help") => return Err(help()),
            Long("guest") => guest = Some(p.value()?.into()),
            Long("cmdline") => cmdline = p.value()?.string()?,
            Long("module") => module = Some(p.value()?.into()),
            Long("hv-cmdline") => hv_cmdline = p.value()?.string()?,
            Long("smp") => smp = args::positive(&mut p, "--smp")?,
            Long("mem") => mem = args::positive(&mut p, "--mem")?,
            Long("kvm") => kvm = true,
            Long("timeout") => {
                timeout = Some(Duration::from_secs(args::positive(&mut p, "--timeout")?));
            }
            Long("debug") => profile = Profile::Debug,
            Long("no-build") => build = false,
            arg => return Err(arg.unexpected().into()),
        }
    }
    ensure(ws, &[Prereq::KernelTarget, Prereq::Qemu])?;
    if build {
        build_kernels(ws, profile, ALL_KERNELS)?;
    }
    // The default boot domain, dom0, gets the default domU to build and
    // run: `hello-domu` (built with it).
    if guest.is_none() && module.is_none() {
        module = Some(ws.kernel(profile, "hello-domu"));
    }
    let guest = guest.unwrap_or_else(|| ws.kernel(profile, "dom0"));
    let hv = ws.kernel(profile, "hv");
    if !hv.is_file() {
        return Err(Error::Failed(format!(
            "hv kernel {} does not exist (build it first)",
            hv.display()
        )));
    }
    let bundle_path = ws.xtask_dir().join("boot.bundle");
    write_bundle(&guest, &cmdline, module.as_deref(), &bundle_path)?;

    let mut cfg = qemu::Config::new(hv, &bundle_path);
    cfg.append = hv_cmdline;
    cfg.smp = smp;
    cfg.mem_mib = mem;
    cfg.kvm = kvm;
    cfg.extra = extra;
    println!("{}", cfg.shell_line());
    let ending = cfg.run_interactive(timeout).map_err(Error::Failed)?;
    match ending {
        qemu::Ending::Exited(0) => Ok(()),
        qemu::Ending::Exited(code) => {
            eprintln!("xtask: {ending}");
            Err(Error::Exit(code))
        }
        qemu::Ending::TimedOut(_) => {
            eprintln!("xtask: {ending}");
            Err(Error::Exit(124))
        }
        qemu::Ending::Signaled(_) | qemu::Ending::StoppedOnLine => {
            eprintln!("xtask: {ending}");
            Err(Error::Exit(1))
        }
    }
}

fn cmd_test(ws: &Workspace, mut p: Parser) -> Result<(), Error> {
    let mut opts = conformance::Options {
        filter: None,
        profile: Profile::Release,
        kvm: false,
        timeout_secs: conformance::DEFAULT_TIMEOUT_SECS,
        jobs: std::thread::available_parallelism().map_or(1, usize::from),
        list: false,
        hv: true,
        xen: None,
        xen_missing: None,
    };
    let (mut hv_only, mut xen_only) = (false, false);
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Err(help()),
            Long("filter") => opts.filter = Some(p.value()?.string()?),
            Long("kvm") => opts.kvm = true,
            Long("timeout") => opts.timeout_secs = args::positive(&mut p, "--timeout")?,
            Long("jobs") | Short('j') => opts.jobs = args::positive(&mut p, "--jobs")?,
            Long("debug") => opts.profile = Profile::Debug,
            Long("list") => opts.list = true,
            Long("hv-only") => hv_only = true,
            Long("xen-only" | "xen") => xen_only = true,
            arg => return Err(arg.unexpected().into()),
        }
    }
    if hv_only && xen_only {
        return Err(Error::Usage(
            "--hv-only and --xen-only exclude each other".into(),
        ));
    }
    opts.hv = !xen_only;
    // Without --hv-only Xen is installed when missing (as root) and runs;
    // --xen-only insists on it.
    if !opts.list {
        let mut needs = vec![Prereq::KernelTarget, Prereq::Qemu];
        if !xen_only {
            needs.push(Prereq::Grub);
        }
        if !hv_only {
            // The oracle: installed like everything else (as root), so the
            // README's test command always judges on Xen too.
            needs.push(Prereq::XenHypervisor);
        }
        if !xen_only {
            needs.extend([Prereq::Cc, Prereq::XenHeaders]);
        }
        needs.push(Prereq::Compressors);
        if xen_only {
            ensure(ws, &needs)?;
        } else if let Err(e) = ensure(ws, &needs) {
            // Without Xen the run goes on on hv, and its summary says how
            // many cases Xen did not judge; anything else missing stops it.
            let xen_present = Path::new(xen::PACKAGED_XEN).is_file();
            needs.retain(|&p| p != Prereq::XenHypervisor);
            if xen_present || hv_only {
                return Err(e);
            }
            eprintln!("xtask: {e}; going on without Xen");
            ensure(ws, &needs)?;
        }
        let xen_present = Path::new(xen::PACKAGED_XEN).is_file();
        if !hv_only && (xen_only || xen_present) {
            opts.xen = Some(xen::image(ws)?);
        } else if !hv_only {
            opts.xen_missing = Some(format!(
                "{} is missing; `cargo xtask setup` installs it",
                xen::PACKAGED_XEN
            ));
        }
    }
    conformance::run(ws, &opts)
}

fn cmd_conformance_table(ws: &Workspace, mut p: Parser) -> Result<(), Error> {
    let mut check = false;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Err(help()),
            Long("check") => check = true,
            arg => return Err(arg.unexpected().into()),
        }
    }
    conformance_table::run(ws, check)
}

fn cmd_lint(ws: &Workspace, p: Parser) -> Result<(), Error> {
    no_options(p)?;
    ensure(ws, &[Prereq::KernelTarget])?;
    // Host clippy is two runs: `--lib`/`--all-targets` apply to every package
    // on a cargo line, and hv's binary is a kernel that only builds for the
    // kernel target (its `--tests` are the library's unit tests).
    const D_WARNINGS: [&str; 3] = ["--", "-D", "warnings"];
    let kernel_crates = [
        "-p",
        "hv",
        "-p",
        "dom0",
        "-p",
        "tests",
        "-p",
        "guest-abi",
        "-p",
        "pv-drivers",
        "-p",
        "toolstack",
        "-p",
        "kernel-image",
        "-p",
        "boot-bundle",
    ];
    let steps: [(&str, Vec<&str>); 5] = [
        ("rustfmt", vec!["fmt", "--all", "--check"]),
        (
            "clippy for the kernel target",
            [
                &["clippy", "--target", workspace::KERNEL_TARGET][..],
                &kernel_crates,
                &D_WARNINGS,
            ]
            .concat(),
        ),
        (
            "clippy for hv's library on the host",
            [&["clippy", "-p", "hv", "--lib", "--tests"][..], &D_WARNINGS].concat(),
        ),
        (
            "clippy for the host crates",
            [
                &[
                    "clippy",
                    "-p",
                    "xtask",
                    "-p",
                    "guest-abi",
                    "-p",
                    "pv-drivers",
                    "-p",
                    "boot-bundle",
                    "-p",
                    "toolstack",
                    "-p",
                    "kernel-image",
                    "-p",
                    "hv-fuzz",
                    "--all-targets",
                ][..],
                &D_WARNINGS,
            ]
            .concat(),
        ),
        (
            // The libFuzzer entry points (this builds libFuzzer once).
            "clippy for the fuzz targets",
            [
                &[
                    "clippy",
                    "-p",
                    "hv-fuzz",
                    "--features",
                    "libfuzzer",
                    "--bins",
                ][..],
                &D_WARNINGS,
            ]
            .concat(),
        ),
    ];
    // Run every step, so one report shows all that is wrong.
    let mut failed = Vec::new();
    for (what, step) in steps {
        let mut cmd = ws.cargo();
        cmd.args(step);
        if let Err(e) = shell::run(&mut cmd) {
            eprintln!("xtask: {e}");
            failed.push(what);
        }
    }
    if let Err(e) = conformance_table::run(ws, true) {
        eprintln!("xtask: {e}");
        failed.push("conformance table");
    }
    if failed.is_empty() {
        eprintln!("xtask: lint clean");
        Ok(())
    } else {
        Err(Error::Failed(format!("lint failed: {}", failed.join(", "))))
    }
}

fn cmd_setup(ws: &Workspace, p: Parser) -> Result<(), Error> {
    no_options(p)?;
    eprintln!("xtask: checking prerequisites");
    prereq::ensure(&Prereq::ALL, &prereq::Probe::host(&ws.root), true)?;
    eprintln!("xtask: everything is in place");
    Ok(())
}

/// For commands without options: only `--help`.
fn no_options(mut p: Parser) -> Result<(), Error> {
    match p.next()? {
        None => Ok(()),
        Some(Short('h') | Long("help")) => Err(help()),
        Some(arg) => Err(arg.unexpected().into()),
    }
}

fn cmd_bundle(mut p: Parser) -> Result<(), Error> {
    let (mut guest, mut module, mut out): (Option<PathBuf>, Option<PathBuf>, Option<PathBuf>) =
        (None, None, None);
    let mut cmdline = String::new();
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Err(help()),
            Long("guest") => guest = Some(p.value()?.into()),
            Long("cmdline") => cmdline = p.value()?.string()?,
            Long("module") => module = Some(p.value()?.into()),
            Short('o') | Long("output") => out = Some(p.value()?.into()),
            arg => return Err(arg.unexpected().into()),
        }
    }
    let guest = guest.ok_or_else(|| Error::Usage("bundle needs --guest FILE".into()))?;
    let out = out.ok_or_else(|| Error::Usage("bundle needs -o OUT".into()))?;
    write_bundle(&guest, &cmdline, module.as_deref(), &out)?;
    eprintln!("xtask: wrote {}", out.display());
    Ok(())
}
