//! `cargo xtask test`: host unit tests, then every conformance case booted
//! both as the boot domain of `hv` and as dom0 of real Xen 4.17 (the
//! oracle, [`crate::xen`]) under QEMU, one line per case with both results
//! side by side, and a summary.
//!
//! Host unit tests count as one entry, `host-unit-tests` (cargo prints their
//! details above it). Each run of a guest is one case, `<binary>` or
//! `<binary>/<variant>` (see [`crate::meta`]), reported as
//! `test NAME ... hv ok | xen ok`. A case passes when every side it needs
//! passed: both, unless its metadata says `@only: hv (reason)` or
//! `@only: xen (reason)` (the other side then shows `skipped (hv only:
//! reason)`), and only the sides selected (`--hv-only`, `--xen-only`) and
//! available (without Xen's package, Xen shows `not run` and only hv
//! counts). Serial logs are kept in `target/xtask/logs/<binary>.log`
//! (`<binary>.<variant>.log`; Xen's under `logs/xen/`) and judged by
//! [`crate::judge`]; the results go to `target/xtask/results.json`
//! ([`crate::results`]). The (case, side) runs are spread over `--jobs`
//! threads, one QEMU each; a guest with more CPUs (`@smp`) than the host
//! has cores runs alone. `--filter` keeps the entries whose name contains
//! the given text, `host-unit-tests` included.

use crate::judge::{judge, Host, Verdict};
use crate::linux::{Boot, On};
use crate::meta::{self, Case, Side};
use crate::qemu;
use crate::results::{self, CaseResult, Outcome, SideResult};
use crate::workspace::{Profile, Workspace};
use crate::Error;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const HOST_ENTRY: &str = "host-unit-tests";
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
const TAIL_LINES: usize = 20;

pub struct Options {
    pub filter: Option<String>,
    pub profile: Profile,
    pub kvm: bool,
    pub timeout_secs: u64,
    pub jobs: usize,
    pub list: bool,
    /// Boot the guests on hv (and run the host unit tests first).
    pub hv: bool,
    /// Boot the guests as dom0 of real Xen, from this uncompressed image.
    pub xen: Option<PathBuf>,
    /// Why Xen, although wanted, cannot run (its package is missing): the
    /// Xen column then says `not run` and only hv counts.
    pub xen_missing: Option<String>,
}

impl Options {
    /// Whether a side's column is shown.
    fn shows(&self, side: Side) -> bool {
        match side {
            Side::Hv => self.hv,
            Side::Xen => self.xen.is_some() || self.xen_missing.is_some(),
        }
    }

    /// Whether a side actually boots guests.
    fn runs(&self, side: Side) -> bool {
        match side {
            Side::Hv => self.hv,
            Side::Xen => self.xen.is_some(),
        }
    }
}

/// A conformance guest binary and its source file.
pub struct Binary {
    pub name: String,
    pub source: PathBuf,
}

/// `tests/src/bin/<name>.rs` and `tests/src/bin/<name>/main.rs`, by name.
pub fn discover(bin_dir: &Path) -> Result<Vec<Binary>, Error> {
    let entries = match std::fs::read_dir(bin_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Failed(format!(
                "cannot list {}: {e}",
                bin_dir.display()
            )))
        }
    };
    let mut binaries = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let (name, source) = if path.is_dir() {
            (path.file_name(), path.join("main.rs"))
        } else if path.extension().is_some_and(|e| e == "rs") {
            (path.file_stem(), path.clone())
        } else {
            continue;
        };
        if let (Some(name), true) = (name.and_then(|n| n.to_str()), source.is_file()) {
            binaries.push(Binary {
                name: name.to_owned(),
                source,
            });
        }
    }
    binaries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(binaries)
}

/// Prefix of the names of external guests (`tests/external/<dir>/`).
pub const EXTERNAL_PREFIX: &str = "external-";

/// Guests written outside this repository's crates, in C and assembly as Xen
/// guests usually are: `tests/external/<dir>/` with `head.S`, `main.c` (which
/// carries the `//! @key:` metadata) and `link.ld`. They show that hv boots
/// foreign Xen-style PV images, not only those built on guest-abi.
pub fn discover_external(dir: &Path) -> Result<Vec<Binary>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Failed(format!("cannot list {}: {e}", dir.display()))),
    };
    let mut binaries: Vec<Binary> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("main.c").is_file())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            Some(Binary {
                name: format!("{EXTERNAL_PREFIX}{name}"),
                source: p.join("main.c"),
            })
        })
        .collect();
    binaries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(binaries)
}

/// Compiles an external guest with the system C compiler; returns the ELF.
fn build_external(ws: &Workspace, binary: &str) -> Result<PathBuf, String> {
    let dir_name = binary.strip_prefix(EXTERNAL_PREFIX).unwrap_or(binary);
    let src = ws.root.join("tests").join("external").join(dir_name);
    let out_dir = ws.xtask_dir().join("external");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let out = out_dir.join(format!("{dir_name}.elf"));
    // Unique temporary name: variants of one guest may build concurrently.
    let tmp = out_dir.join(format!(
        "{dir_name}.{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    // A `cflags` file in the guest's directory adds flags (e.g. a code
    // model for a guest not linked in the top 2 GiB); later flags win.
    let extra = std::fs::read_to_string(src.join("cflags")).unwrap_or_default();
    let mut cmd = std::process::Command::new("cc");
    cmd.args([
        "-O2",
        "-ffreestanding",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-fno-pic",
        "-mcmodel=kernel",
        "-mno-red-zone",
        "-mgeneral-regs-only",
        "-fno-stack-protector",
        "-fno-asynchronous-unwind-tables",
        "-Wl,--build-id=none",
        "-Wl,--no-warn-rwx-segments",
    ]);
    cmd.args(extra.split_whitespace());
    cmd.arg(format!("-Wl,-T,{}", src.join("link.ld").display()));
    cmd.arg("-o")
        .arg(&tmp)
        .arg(src.join("head.S"))
        .arg(src.join("main.c"));
    crate::shell::run(&mut cmd).map_err(|e| format!("building external guest {dir_name}: {e}"))?;
    std::fs::rename(&tmp, &out).map_err(|e| format!("cannot move {}: {e}", tmp.display()))?;
    Ok(out)
}

/// What to run: a case, or a binary whose metadata does not parse.
enum Planned {
    Run(Box<Case>),
    BadMetadata { name: String, why: String },
}

impl Planned {
    fn name(&self) -> &str {
        match self {
            Planned::Run(case) => &case.name,
            Planned::BadMetadata { name, .. } => name,
        }
    }
}

fn plan(binaries: &[Binary]) -> Vec<Planned> {
    let mut planned = Vec::new();
    for binary in binaries {
        let parsed = std::fs::read_to_string(&binary.source)
            .map_err(|e| e.to_string())
            .and_then(|src| meta::parse(&binary.name, &src).map_err(|e| e.to_string()));
        match parsed {
            // A domU kernel is booted by the cases that name it as their
            // module, not as a case of its own.
            Ok(cases) => planned.extend(
                cases
                    .into_iter()
                    .filter(|c| !c.spec.domu)
                    .map(|c| Planned::Run(Box::new(c))),
            ),
            Err(why) => planned.push(Planned::BadMetadata {
                name: binary.name.clone(),
                why: format!("metadata in {}: {why}", binary.source.display()),
            }),
        }
    }
    planned
}

/// File-name form of a case name: `a/b` → `a.b`.
fn file_stem(case_name: &str) -> String {
    case_name.replace('/', ".")
}

/// The last `n` lines of a log, for a failure report.
pub fn tail(log: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// What one side of a case came to, with the log tail for a failure.
struct SideRun {
    result: SideResult,
    details: Vec<String>,
}

fn side_result(verdict: &Verdict, secs: Option<f64>) -> SideResult {
    let (outcome, why) = match verdict {
        Verdict::Pass { skipped: false } => (Outcome::Ok, String::new()),
        Verdict::Pass { skipped: true } => (Outcome::Skip, String::new()),
        Verdict::Fail(why) => (Outcome::Failed, why.clone()),
    };
    SideResult { outcome, secs, why }
}

/// `hv ok`, `xen FAILED (why)`, `xen skipped (hv only: reason)`.
fn side_text(side: Side, r: &SideResult) -> String {
    let n = side.name();
    match r.outcome {
        Outcome::Ok => format!("{n} ok"),
        Outcome::Skip => format!("{n} ok (SKIP)"),
        Outcome::Failed => format!("{n} FAILED ({})", r.why),
        Outcome::Skipped => format!("{n} skipped ({})", r.why),
        Outcome::NotRun => format!("{n} not run ({})", r.why),
        Outcome::KnownFailing => format!("{n} known failing ({})", r.why),
    }
}

/// A case's line: `test NAME ... hv ok | xen ok`, showing `sides`.
fn case_line(name: &str, sides: &[Side], result: &CaseResult) -> String {
    let texts: Vec<String> = sides
        .iter()
        .map(|&s| side_text(s, result.side(s)))
        .collect();
    format!("test {name} ... {}", texts.join(" | "))
}

/// Whether a case passed: every side it needs passed; `None` when it needs
/// none of the sides that ran (it is then not counted).
fn case_passed(result: &CaseResult, required: &[Side]) -> Option<bool> {
    (!required.is_empty()).then(|| required.iter().all(|&s| result.side(s).outcome.passed()))
}

#[derive(Default)]
struct Tally {
    passed: usize,
    skipped: usize,
    uncounted: usize,
    failed: Vec<String>,
    results: Vec<CaseResult>,
}

impl Tally {
    /// The host unit tests' line (a single side of their own).
    fn record_host(&mut self, verdict: &Verdict) {
        self.record_single(HOST_ENTRY, verdict, &[]);
    }

    /// An entry with one result of its own (host tests, the GRUB boot).
    fn record_single(&mut self, name: &str, verdict: &Verdict, details: &[String]) {
        match verdict {
            Verdict::Pass { .. } => {
                println!("test {name} ... ok");
                self.passed += 1;
            }
            Verdict::Fail(why) => {
                println!("test {name} ... FAILED ({why})");
                for line in details {
                    println!("    | {line}");
                }
                self.failed.push(name.to_owned());
            }
        }
    }

    fn record(
        &mut self,
        sides: &[Side],
        required: &[Side],
        result: CaseResult,
        details: &[(Side, Vec<String>)],
    ) {
        let name = result.name.clone();
        println!("{}", case_line(&name, sides, &result));
        for (side, lines) in details {
            for line in lines {
                println!("    | {}: {line}", side.name());
            }
        }
        match case_passed(&result, required) {
            Some(true) => {
                self.passed += 1;
                if required
                    .iter()
                    .any(|&s| result.side(s).outcome == Outcome::Skip)
                {
                    self.skipped += 1;
                }
            }
            Some(false) => self.failed.push(name),
            None => self.uncounted += 1,
        }
        self.results.push(result);
    }
}

fn host_unit_tests(ws: &Workspace) -> Verdict {
    // Two invocations: `--lib` applies to every package on a cargo line, and
    // only hv must be limited to its library (its binary is a kernel).
    let runs: [&[&str]; 2] = [
        &["test", "-p", "hv", "--lib"],
        &[
            "test",
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
            "-p",
            "xtask",
        ],
    ];
    let mut failed = Vec::new();
    for args in runs {
        let mut cmd = ws.cargo();
        cmd.args(args);
        if let Err(e) = crate::shell::run(&mut cmd) {
            failed.push(e.to_string());
        }
    }
    if failed.is_empty() {
        Verdict::Pass { skipped: false }
    } else {
        Verdict::Fail(failed.join("; "))
    }
}

/// Boots one case on one side and judges it; the log tail comes back for
/// failures.
fn run_case(ws: &Workspace, opts: &Options, case: &Case, side: Side) -> SideRun {
    let start = Instant::now();
    let outcome = try_run_case(ws, opts, case, side);
    let secs = Some(start.elapsed().as_secs_f64());
    match outcome {
        Ok((verdict, log)) => {
            let details = if matches!(verdict, Verdict::Fail(_)) {
                let mut details = vec![format!(
                    "last {TAIL_LINES} lines of {}:",
                    ws.display(&log.0)
                )];
                details.extend(tail(&log.1, TAIL_LINES).into_iter().map(String::from));
                details
            } else {
                Vec::new()
            };
            SideRun {
                result: side_result(&verdict, secs),
                details,
            }
        }
        Err(why) => SideRun {
            result: side_result(&Verdict::Fail(why), secs),
            details: Vec::new(),
        },
    }
}

fn try_run_case(
    ws: &Workspace,
    opts: &Options,
    case: &Case,
    side: Side,
) -> Result<(Verdict, (PathBuf, String)), String> {
    let spec = &case.spec;
    let guest = if case.binary.starts_with(EXTERNAL_PREFIX) {
        build_external(ws, &case.binary)?
    } else {
        ws.kernel(opts.profile, &case.binary)
    };
    let module = match &spec.module {
        None => None,
        Some(meta::Module::File(f)) => Some(ws.root.join(f)),
        Some(meta::Module::Guest(name)) => {
            // Built with the other test guests (package `tests`).
            let path = ws.kernel(opts.profile, name);
            if !path.is_file() {
                return Err(format!(
                    "module guest:{name}: no built test guest {}",
                    ws.display(&path)
                ));
            }
            Some(path)
        }
    };
    let stem = file_stem(&case.name);
    // The same wrapping boots on both sides (one file each: the two sides
    // of a case may run at once).
    let guest = match spec.bzimage {
        Some(wrapping) => {
            let image = ws
                .xtask_dir()
                .join("bzimages")
                .join(format!("{stem}.{}.bzImage", side.name()));
            crate::bzimage::wrap(&guest, wrapping, &image)?;
            image
        }
        None => guest,
    };
    let (mut cfg, log_dir, host, stop_on) = match (side, &opts.xen) {
        (Side::Hv, _) => {
            let bundle = ws
                .xtask_dir()
                .join("bundles")
                .join(format!("{stem}.bundle"));
            crate::write_bundle(&guest, &spec.cmdline, module.as_deref(), &bundle)
                .map_err(|e| e.to_string())?;
            let mut cfg = qemu::Config::new(ws.kernel(opts.profile, "hv"), &bundle);
            let dom0_mem = spec
                .dom0_mem_mib
                .map(|m| format!(" dom0_mem={m}M"))
                .unwrap_or_default();
            // One vCPU unless the guest asks for more, as on the Xen side
            // (hv's own default is Xen's: a vCPU per CPU).
            let vcpus = format!(" dom0_max_vcpus={}", spec.vcpus.unwrap_or(1));
            cfg.append = format!(
                "{}{dom0_mem}{vcpus} {}",
                qemu::DEFAULT_HV_CMDLINE,
                spec.hv_cmdline_append
            )
            .trim()
            .to_owned();
            (cfg, ws.xtask_dir().join("logs"), Host::Hv, &[][..])
        }
        (Side::Xen, Some(xen)) => {
            let mut cfg = crate::xen::config(xen, &guest, &spec.cmdline, module.as_deref())?;
            if let Some(m) = spec.dom0_mem_mib {
                cfg.append = crate::xen::with_dom0_mem(&cfg.append, m);
            }
            if let Some(n) = spec.vcpus {
                cfg.append = crate::xen::with_dom0_vcpus(&cfg.append, n);
            }
            cfg.append = crate::xen::with_appended(&cfg.append, &spec.xen_cmdline_append);
            (
                cfg,
                ws.xtask_dir().join("logs").join("xen"),
                Host::Xen,
                crate::xen::STOP_LINES,
            )
        }
        (Side::Xen, None) => return Err("no Xen image".into()),
    };
    cfg.smp = spec.smp.unwrap_or(qemu::DEFAULT_SMP);
    cfg.input = spec
        .serial_input
        .as_ref()
        .map(|(marker, text)| (marker.clone(), crate::meta::typed_bytes(text)));
    cfg.mem_mib = spec.mem_mib.unwrap_or(qemu::DEFAULT_MEM_MIB);
    cfg.kvm = opts.kvm && side == Side::Hv;
    let timeout = Duration::from_secs(spec.timeout_secs.unwrap_or(opts.timeout_secs));

    std::fs::create_dir_all(&log_dir)
        .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
    let log_path = log_dir.join(format!("{stem}.log"));
    let ending = cfg.run_logged(&log_path, timeout, stop_on)?;
    let log =
        std::fs::read(&log_path).map_err(|e| format!("cannot read {}: {e}", log_path.display()))?;
    let log = String::from_utf8_lossy(&log).into_owned();
    Ok((judge(spec, &log, ending, host), (log_path, log)))
}

/// The sides a case needs (selected, available, not excluded by `@only`)
/// and what the others show.
fn sides_of(opts: &Options, item: &Planned) -> (Vec<Side>, Vec<(Side, SideResult)>) {
    let mut required = Vec::new();
    let mut others = Vec::new();
    for side in Side::BOTH {
        if !opts.shows(side) {
            continue;
        }
        let only = match item {
            Planned::Run(case) => case.spec.only.as_ref().filter(|o| o.side != side),
            Planned::BadMetadata { .. } => None,
        };
        if let Some(only) = only {
            let why = format!("{} only: {}", only.side.name(), only.reason);
            others.push((
                side,
                SideResult {
                    outcome: Outcome::Skipped,
                    secs: None,
                    why,
                },
            ));
        } else if !opts.runs(side) {
            let why = opts.xen_missing.clone().unwrap_or_default();
            others.push((side, SideResult::not_run(&why)));
        } else {
            required.push(side);
        }
    }
    (required, others)
}

/// One case's results while its sides run.
struct Pending {
    required: Vec<Side>,
    left: usize,
    hv: SideResult,
    xen: SideResult,
    details: Vec<(Side, Vec<String>)>,
}

pub fn run(ws: &Workspace, opts: &Options) -> Result<(), Error> {
    let wanted = |name: &str| {
        opts.filter
            .as_deref()
            .is_none_or(|f| f.split(',').any(|f| name.contains(f)))
    };
    let mut binaries = discover(&ws.test_bin_dir())?;
    binaries.extend(discover_external(&ws.root.join("tests").join("external"))?);
    let planned: Vec<Planned> = plan(&binaries)
        .into_iter()
        .filter(|p| wanted(p.name()))
        .collect();
    let host = wanted(HOST_ENTRY) && opts.hv;
    let grub = wanted(crate::grub::ENTRY) && opts.hv;
    let linux: Vec<Boot> = Boot::ALL
        .into_iter()
        .filter(|b| wanted(&b.name()))
        .collect();
    if opts.list {
        if host {
            println!("{HOST_ENTRY}");
        }
        if grub {
            println!("{}", crate::grub::ENTRY);
        }
        for p in &planned {
            println!("{}", p.name());
        }
        for b in &linux {
            println!("{}", b.name());
        }
        return Ok(());
    }
    if !host && !grub && planned.is_empty() && linux.is_empty() {
        return Err(Error::Failed(format!(
            "no test matches filter {:?}",
            opts.filter.as_deref().unwrap_or("")
        )));
    }

    let start = Instant::now();
    let mut tally = Tally::default();
    if host {
        let verdict = host_unit_tests(ws);
        tally.record_host(&verdict);
    }
    let shown: Vec<Side> = Side::BOTH.into_iter().filter(|&s| opts.shows(s)).collect();

    // Without a filter the kernels are built even when there is no guest to
    // run, so a broken kernel build fails the run.
    if opts.filter.is_none() || !planned.is_empty() || grub {
        // The oracle needs only the guests, not a working hv.
        let packages: &[&str] = if opts.hv {
            &["hv", "dom0", "tests"]
        } else {
            &["tests"]
        };
        let built = crate::build_kernels(ws, opts.profile, packages);
        if let (Err(e), true) = (&built, planned.is_empty()) {
            println!("test kernel-build ... FAILED ({e})");
            tally.failed.push("kernel-build".into());
        }
        if grub && built.is_ok() {
            std::fs::create_dir_all(ws.xtask_dir().join("logs"))
                .map_err(|e| Error::Failed(format!("cannot create the log directory: {e}")))?;
            let (verdict, details) = crate::grub::boot_test(ws, opts.profile);
            tally.record_single(crate::grub::ENTRY, &verdict, &details);
        }
        for dir in ["bundles", "logs"] {
            let dir = ws.xtask_dir().join(dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Failed(format!("cannot create {}: {e}", dir.display())))?;
        }

        // Work items: (case, side), Xen first within a case (its runs are
        // the longer ones), so both sides of a case finish close together
        // and its line is printed early.
        let mut pending = Vec::new();
        let mut work = Vec::new();
        for (index, item) in planned.iter().enumerate() {
            let (required, others) = sides_of(opts, item);
            let mut p = Pending {
                required: required.clone(),
                left: required.len(),
                hv: SideResult::not_run(""),
                xen: SideResult::not_run(""),
                details: Vec::new(),
            };
            for (side, result) in others {
                *p.side_mut(side) = result;
            }
            match (item, &built) {
                (Planned::BadMetadata { why, .. }, _) => {
                    for &side in &required {
                        *p.side_mut(side) = side_result(&Verdict::Fail(why.clone()), None);
                    }
                    p.left = 0;
                }
                (Planned::Run(_), Err(_)) => {
                    for &side in &required {
                        *p.side_mut(side) = side_result(
                            &Verdict::Fail("kernel build failed (see above)".into()),
                            None,
                        );
                    }
                    p.left = 0;
                }
                (Planned::Run(_), Ok(())) => {
                    work.extend(required.iter().rev().map(|&side| (index, side)));
                }
            }
            pending.push(p);
        }
        // Cases with nothing to run are reported first.
        for (index, p) in pending.iter().enumerate() {
            if p.left == 0 {
                tally.record(
                    &shown,
                    &p.required,
                    p.result(planned[index].name()),
                    &p.details,
                );
            }
        }
        if !work.is_empty() {
            let on: Vec<&str> = Side::BOTH
                .into_iter()
                .filter(|&s| opts.runs(s))
                .map(|s| if s == Side::Hv { "hv" } else { "real Xen 4.17" })
                .collect();
            println!(
                "running {} conformance run(s) on {}, {} at a time",
                work.len(),
                on.join(" and "),
                opts.jobs
            );
        }
        let next = AtomicUsize::new(0);
        let shared = Mutex::new((&mut tally, &mut pending));
        // A guest with more CPUs than the host has cores runs alone: beside
        // another run its CPUs' threads would starve each other, and
        // guests that measure CPUs running in parallel (`smp_parallel`)
        // would see them queue up in the hypervisor instead.
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let alone = std::sync::RwLock::new(());
        std::thread::scope(|scope| {
            for _ in 0..opts.jobs.max(1) {
                scope.spawn(|| {
                    while let Some(&(index, side)) = work.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        let Planned::Run(case) = &planned[index] else {
                            continue;
                        };
                        let smp = case.spec.smp.unwrap_or(qemu::DEFAULT_SMP);
                        let done = if usize::try_from(smp).unwrap_or(usize::MAX) > cores {
                            let _alone = alone.write().unwrap_or_else(|p| p.into_inner());
                            run_case(ws, opts, case, side)
                        } else {
                            let _shared = alone.read().unwrap_or_else(|p| p.into_inner());
                            run_case(ws, opts, case, side)
                        };
                        let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
                        let (tally, pending) = &mut *guard;
                        let p = &mut pending[index];
                        *p.side_mut(side) = done.result;
                        if !done.details.is_empty() {
                            p.details.push((side, done.details));
                        }
                        p.left -= 1;
                        if p.left == 0 {
                            p.details.sort_by_key(|(s, _)| *s);
                            tally.record(&shown, &p.required, p.result(&case.name), &p.details);
                        }
                    }
                });
            }
        });
    }

    if !linux.is_empty() {
        linux_entries(ws, opts, &linux, &shown, &mut tally);
    }

    let path = results_path(ws);
    // Every case there is, so a filtered run keeps the others' results.
    let all = plan(&binaries);
    let linux_names: Vec<String> = Boot::ALL.iter().map(|b| b.name()).collect();
    let order: Vec<&str> = all
        .iter()
        .map(Planned::name)
        .chain(linux_names.iter().map(String::as_str))
        .collect();
    let previous = results::load(&path).unwrap_or_else(|e| {
        eprintln!("xtask: ignoring the previous results: {e}");
        Vec::new()
    });
    let xen_not_run = tally
        .results
        .iter()
        .filter(|c| c.xen.outcome == Outcome::NotRun)
        .count();
    let merged = results::merge(previous, std::mem::take(&mut tally.results), &order);
    if let Err(e) = std::fs::write(&path, results::to_json(&merged)) {
        eprintln!("xtask: cannot write {}: {e}", path.display());
    }

    println!();
    if let Some(why) = &opts.xen_missing {
        println!("note: Xen not run ({why}); only hv counted");
    }
    if !tally.failed.is_empty() {
        println!("failures:");
        for name in &tally.failed {
            println!("    {name}");
        }
    }
    if tally.skipped > 0 {
        println!("({} of the passed reported SKIP)", tally.skipped);
    }
    if tally.uncounted > 0 {
        println!(
            "({} case(s) not counted: not meant for the side(s) run)",
            tally.uncounted
        );
    }
    println!(
        "finished in {:.1} s; results in {}",
        start.elapsed().as_secs_f64(),
        ws.display(&path)
    );
    // A run in which the oracle did not judge says so in its last line.
    if opts.hv && xen_not_run > 0 {
        println!(
            "{} passed, {} failed, {xen_not_run} not run on Xen",
            tally.passed,
            tally.failed.len()
        );
    } else {
        println!("{} passed, {} failed", tally.passed, tally.failed.len());
    }
    if tally.failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Exit(1))
    }
}

/// One Linux boot's side: boot index, side, result, detail lines.
type LinuxRun = (usize, Side, SideResult, Vec<String>);

/// The Linux system test (`crate::linux`): each boot on each side that
/// runs. Without the kernel (not cached and not fetchable) the entries are
/// skipped, not failed. While `HV_KNOWN_FAILING`, the hv side is run and
/// shown with how far Linux got but not counted.
fn linux_entries(
    ws: &Workspace,
    opts: &Options,
    boots: &[Boot],
    shown: &[Side],
    tally: &mut Tally,
) {
    let images = match crate::linux::images(ws, true) {
        Ok(images) => images,
        Err(why) => {
            for b in boots {
                println!("test {} ... skipped (no Linux kernel: {why})", b.name());
                tally.uncounted += 1;
            }
            return;
        }
    };
    // hv alone: the kernels were built above only with guests to run; a
    // domU boot runs our dom0 on either side.
    let mut kernels = Vec::new();
    if opts.hv {
        kernels.push("hv");
    }
    if boots.iter().any(|b| b.domu) {
        kernels.push("dom0");
    }
    if !kernels.is_empty() {
        if let Err(e) = crate::build_kernels(ws, opts.profile, &kernels) {
            println!("test linux ... FAILED (hv build: {e})");
            tally.failed.push("linux".into());
            return;
        }
    }
    let work: Vec<(usize, Side)> = boots
        .iter()
        .enumerate()
        .flat_map(|(i, _)| [(i, Side::Xen), (i, Side::Hv)])
        .filter(|&(_, side)| opts.runs(side))
        .collect();
    println!(
        "running {} Linux boot(s) ({}), {} at a time",
        work.len(),
        images.versions.lines().next().unwrap_or("kernel"),
        opts.jobs
    );
    let timeout = Duration::from_secs(crate::linux::DEFAULT_TIMEOUT_SECS);
    let next = AtomicUsize::new(0);
    // (boot index, side, its result, detail lines)
    let done: Mutex<Vec<LinuxRun>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            scope.spawn(|| {
                while let Some(&(i, side)) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let on = if side == Side::Hv { On::Hv } else { On::Xen };
                    let xen = opts.xen.as_deref();
                    let timeout = if on == On::Hv && crate::linux::HV_KNOWN_FAILING {
                        Duration::from_secs(crate::linux::HV_KNOWN_FAILING_TIMEOUT_SECS)
                    } else {
                        timeout
                    };
                    let ran =
                        crate::linux::run(ws, opts.profile, &images, boots[i], on, xen, timeout);
                    let (result, details) = match ran {
                        Ok(out) => {
                            let mut result = side_result(&out.verdict, Some(out.secs));
                            let mut details = out.progress;
                            if side == Side::Hv && crate::linux::HV_KNOWN_FAILING {
                                if result.outcome == Outcome::Failed {
                                    result.outcome = Outcome::KnownFailing;
                                    if let Some(last) = details.first() {
                                        result.why = format!("{}; {last}", result.why);
                                    }
                                } else {
                                    details.push(
                                        "passes: clear linux::HV_KNOWN_FAILING so it counts".into(),
                                    );
                                }
                            }
                            if !details.is_empty() {
                                details.insert(0, format!("log {}", ws.display(&out.log)));
                            }
                            (result, details)
                        }
                        Err(why) => (side_result(&Verdict::Fail(why), None), Vec::new()),
                    };
                    let mut guard = done.lock().unwrap_or_else(|p| p.into_inner());
                    guard.push((i, side, result, details));
                }
            });
        }
    });
    let done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    for (i, boot) in boots.iter().enumerate() {
        let mut result = CaseResult {
            name: boot.name(),
            hv: SideResult::not_run(""),
            xen: SideResult::not_run(opts.xen_missing.as_deref().unwrap_or("")),
        };
        let mut details = Vec::new();
        for (_, side, r, d) in done.iter().filter(|(j, ..)| *j == i) {
            match side {
                Side::Hv => result.hv = r.clone(),
                Side::Xen => result.xen = r.clone(),
            }
            if !d.is_empty() {
                details.push((*side, d.clone()));
            }
        }
        details.sort_by_key(|(s, _)| *s);
        let required: Vec<Side> = Side::BOTH
            .into_iter()
            .filter(|&s| opts.runs(s) && !(s == Side::Hv && crate::linux::HV_KNOWN_FAILING))
            .collect();
        tally.record(shown, &required, result, &details);
    }
}

/// `target/xtask/results.json`.
pub fn results_path(ws: &Workspace) -> PathBuf {
    ws.xtask_dir().join("results.json")
}

impl Pending {
    fn side_mut(&mut self, side: Side) -> &mut SideResult {
        match side {
            Side::Hv => &mut self.hv,
            Side::Xen => &mut self.xen,
        }
    }

    fn result(&self, name: &str) -> CaseResult {
        CaseResult {
            name: name.to_owned(),
            hv: self.hv.clone(),
            xen: self.xen.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovers_binaries_by_name() {
        let dir = std::env::temp_dir().join(format!("xtask-discover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("multi")).unwrap();
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        std::fs::write(dir.join("zeta.rs"), "").unwrap();
        std::fs::write(dir.join("alpha.rs"), "").unwrap();
        std::fs::write(dir.join("notes.txt"), "").unwrap();
        std::fs::write(dir.join("multi/main.rs"), "").unwrap();
        let names: Vec<String> = discover(&dir)
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, ["alpha", "multi", "zeta"]);
        assert!(discover(&dir.join("missing")).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plans_variants_and_reports_bad_metadata() {
        let dir = std::env::temp_dir().join(format!("xtask-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("good.rs"), "//! @variant: v2 cmdline=x\n").unwrap();
        std::fs::write(dir.join("bad.rs"), "//! @expect-exit: sideways\n").unwrap();
        std::fs::write(dir.join("kernel.rs"), "//! @role: domu\n").unwrap();
        let planned = plan(&discover(&dir).unwrap());
        let names: Vec<&str> = planned.iter().map(Planned::name).collect();
        assert_eq!(names, ["bad", "good", "good/v2"]);
        assert!(matches!(&planned[0], Planned::BadMetadata { why, .. } if why.contains("line 1")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn side(outcome: Outcome, why: &str) -> SideResult {
        SideResult {
            outcome,
            secs: Some(1.0),
            why: why.into(),
        }
    }

    #[test]
    fn lines_show_both_sides() {
        let both = [Side::Hv, Side::Xen];
        let case = CaseResult {
            name: "shutdown/reboot".into(),
            hv: side(Outcome::Ok, ""),
            xen: side(Outcome::Ok, ""),
        };
        assert_eq!(
            case_line("shutdown/reboot", &both, &case),
            "test shutdown/reboot ... hv ok | xen ok"
        );
        assert_eq!(case_passed(&case, &both), Some(true));

        let failed = CaseResult {
            xen: side(Outcome::Failed, "Xen reports crash, expected reboot"),
            ..case.clone()
        };
        assert_eq!(
            case_line("x", &both, &failed),
            "test x ... hv ok | xen FAILED (Xen reports crash, expected reboot)"
        );
        assert_eq!(case_passed(&failed, &both), Some(false));
        assert_eq!(case_passed(&failed, &[Side::Hv]), Some(true));

        let hv_only = CaseResult {
            hv: side(Outcome::Skip, ""),
            xen: SideResult {
                outcome: Outcome::Skipped,
                secs: None,
                why: "hv only: no such option on Xen".into(),
            },
            ..case.clone()
        };
        assert_eq!(
            case_line("hv_fault", &both, &hv_only),
            "test hv_fault ... hv ok (SKIP) | xen skipped (hv only: no such option on Xen)"
        );
        assert_eq!(case_passed(&hv_only, &[Side::Hv]), Some(true));
        assert_eq!(case_passed(&hv_only, &[]), None);
        assert_eq!(case_line("a", &[Side::Hv], &case), "test a ... hv ok");
    }

    #[test]
    fn only_decides_the_required_sides() {
        let src = "//! @only: hv (a reason)\n//! @variant: both only=\"\"\n";
        let cases = meta::parse("t", src).unwrap();
        let mut opts = Options {
            filter: None,
            profile: Profile::Release,
            kvm: false,
            timeout_secs: 1,
            jobs: 1,
            list: false,
            hv: true,
            xen: Some(PathBuf::from("/xen")),
            xen_missing: None,
        };
        let hv_only = Planned::Run(Box::new(cases[0].clone()));
        let both = Planned::Run(Box::new(cases[1].clone()));
        let (required, others) = sides_of(&opts, &hv_only);
        assert_eq!(required, [Side::Hv]);
        assert_eq!(others[0].0, Side::Xen);
        assert_eq!(others[0].1.outcome, Outcome::Skipped);
        assert_eq!(others[0].1.why, "hv only: a reason");
        assert_eq!(sides_of(&opts, &both).0, [Side::Hv, Side::Xen]);

        opts.hv = false;
        assert!(sides_of(&opts, &hv_only).0.is_empty());
        assert_eq!(sides_of(&opts, &both).0, [Side::Xen]);
        assert!(sides_of(&opts, &both).1.is_empty(), "hv is not shown");

        opts.hv = true;
        opts.xen = None;
        opts.xen_missing = Some("not installed".into());
        let (required, others) = sides_of(&opts, &both);
        assert_eq!(required, [Side::Hv]);
        assert_eq!(others[0].1, SideResult::not_run("not installed"));
    }

    #[test]
    fn names_and_tails() {
        assert_eq!(file_stem("shutdown/crash"), "shutdown.crash");
        let log: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let t = tail(&log, 20);
        assert_eq!((t.len(), t[0], t[19]), (20, "line 11", "line 30"));
        assert_eq!(tail("a\nb", 20), ["a", "b"]);
    }
}

#[cfg(test)]
mod end_to_end {
    use super::*;
    use crate::qemu_smoke::pvh_kernel;

    /// A fake hv that always prints a success line and reboots, in a fake
    /// workspace whose one guest has a matching base run and a variant that
    /// expects a crash.
    #[test]
    fn runs_and_judges_cases() {
        if !crate::qemu_smoke::qemu_present() {
            return;
        }
        let root = std::env::temp_dir().join(format!("xtask-e2e-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let ws = Workspace {
            root: root.clone(),
            target_dir: root.join("target"),
            cargo: "cargo".into(),
        };
        let kernels = ws.kernel_dir(Profile::Release);
        std::fs::create_dir_all(&kernels).unwrap();
        std::fs::create_dir_all(ws.test_bin_dir()).unwrap();
        for dir in ["bundles", "logs"] {
            std::fs::create_dir_all(ws.xtask_dir().join(dir)).unwrap();
        }
        let hv = pvh_kernel(
            "(hv) domain 0 shut down: reboot\nTest result: SUCCESS\n",
            0x10,
        );
        std::fs::write(kernels.join("hv"), &hv).unwrap();
        std::fs::write(kernels.join("shutdown"), &hv).unwrap();
        std::fs::write(
            ws.test_bin_dir().join("shutdown.rs"),
            "//! @expect-exit: reboot\n//! @expect-line: shut down: reboot\n\
             //! @variant: crash expect-exit=crash timeout=30\n#![no_std]\n",
        )
        .unwrap();

        let opts = Options {
            filter: None,
            profile: Profile::Release,
            kvm: false,
            timeout_secs: 30,
            jobs: 2,
            list: false,
            hv: true,
            xen: None,
            xen_missing: None,
        };
        let planned = plan(&discover(&ws.test_bin_dir()).unwrap());
        let runs: Vec<SideRun> = planned
            .iter()
            .map(|p| match p {
                Planned::Run(case) => run_case(&ws, &opts, case, Side::Hv),
                Planned::BadMetadata { .. } => panic!("metadata should parse"),
            })
            .collect();
        assert_eq!(runs[0].result.outcome, Outcome::Ok);
        assert!(runs[0].result.secs.is_some());
        assert_eq!(runs[1].result.outcome, Outcome::Failed);
        assert_eq!(
            runs[1].result.why,
            "domain 0 rebooted (status 33), expected crash"
        );
        let details = &runs[1].details;
        assert!(details[0].starts_with("last 20 lines of target/xtask/logs/shutdown.crash.log"));
        assert!(details.iter().any(|l| l.contains("Test result: SUCCESS")));
        let bundle = std::fs::read(ws.xtask_dir().join("bundles/shutdown.bundle")).unwrap();
        assert!(bundle.starts_with(&boot_bundle::MAGIC));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
