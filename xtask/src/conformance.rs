//! `cargo xtask test`: host unit tests, then every conformance guest booted
//! as the boot domain of `hv` under QEMU, one line per run and a summary.
//!
//! Host unit tests count as one entry, `host-unit-tests` (cargo prints their
//! details above it). Each run of a guest is one entry, `<binary>` or
//! `<binary>/<variant>` (see [`crate::meta`]); its serial log is kept in
//! `target/xtask/logs/<binary>.log` (`<binary>.<variant>.log`) and judged by
//! [`crate::judge`]. `--filter` keeps the entries whose name contains the
//! given text, `host-unit-tests` included.

use crate::judge::{judge, Host, Verdict};
use crate::meta::{self, Case};
use crate::qemu;
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
    /// Run the guests as dom0 of real Xen (this uncompressed image) instead
    /// of on hv; host unit tests are then not run.
    pub xen: Option<PathBuf>,
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
    Run(Case),
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
            Ok(cases) => planned.extend(cases.into_iter().map(Planned::Run)),
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

struct Tally {
    passed: usize,
    skipped: usize,
    failed: Vec<String>,
}

impl Tally {
    fn record(&mut self, name: &str, verdict: &Verdict, details: &[String]) {
        match verdict {
            Verdict::Pass { skipped: false } => {
                println!("test {name} ... ok");
                self.passed += 1;
            }
            Verdict::Pass { skipped: true } => {
                println!("test {name} ... ok (SKIP)");
                self.passed += 1;
                self.skipped += 1;
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
}

fn host_unit_tests(ws: &Workspace) -> Verdict {
    // Two invocations: `--lib` applies to every package on a cargo line, and
    // only hv must be limited to its library (its binary is a kernel).
    let runs: [&[&str]; 2] = [
        &["test", "-p", "hv", "--lib"],
        &["test", "-p", "guest-abi", "-p", "pv-drivers", "-p", "xtask"],
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

/// Boots one case and judges it; the log tail comes back for failures.
fn run_case(ws: &Workspace, opts: &Options, case: &Case) -> (Verdict, Vec<String>) {
    match try_run_case(ws, opts, case) {
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
            (verdict, details)
        }
        Err(why) => (Verdict::Fail(why), Vec::new()),
    }
}

fn try_run_case(
    ws: &Workspace,
    opts: &Options,
    case: &Case,
) -> Result<(Verdict, (PathBuf, String)), String> {
    let spec = &case.spec;
    let guest = if case.binary.starts_with(EXTERNAL_PREFIX) {
        build_external(ws, &case.binary)?
    } else {
        ws.kernel(opts.profile, &case.binary)
    };
    let module = spec.module.as_ref().map(|m| ws.root.join(m));
    let stem = file_stem(&case.name);
    let (mut cfg, log_dir, host, stop_on) = match &opts.xen {
        None => {
            let bundle = ws
                .xtask_dir()
                .join("bundles")
                .join(format!("{stem}.bundle"));
            crate::write_bundle(&guest, &spec.cmdline, module.as_deref(), &bundle)
                .map_err(|e| e.to_string())?;
            let mut cfg = qemu::Config::new(ws.kernel(opts.profile, "hv"), &bundle);
            cfg.append = format!("{} {}", qemu::DEFAULT_HV_CMDLINE, spec.hv_cmdline_append)
                .trim()
                .to_owned();
            (cfg, ws.xtask_dir().join("logs"), Host::Hv, &[][..])
        }
        Some(xen) => {
            let cfg = crate::xen::config(xen, &guest, &spec.cmdline, module.as_deref())?;
            (
                cfg,
                ws.xtask_dir().join("logs").join("xen"),
                Host::Xen,
                &[crate::xen::HALT_LINE][..],
            )
        }
    };
    cfg.smp = spec.smp.unwrap_or(qemu::DEFAULT_SMP);
    cfg.mem_mib = spec.mem_mib.unwrap_or(qemu::DEFAULT_MEM_MIB);
    cfg.kvm = opts.kvm;
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

pub fn run(ws: &Workspace, opts: &Options) -> Result<(), Error> {
    let wanted = |name: &str| opts.filter.as_deref().is_none_or(|f| name.contains(f));
    let mut binaries = discover(&ws.test_bin_dir())?;
    binaries.extend(discover_external(&ws.root.join("tests").join("external"))?);
    let planned: Vec<Planned> = plan(&binaries)
        .into_iter()
        .filter(|p| wanted(p.name()))
        .collect();
    let host = wanted(HOST_ENTRY) && opts.xen.is_none();
    if opts.list {
        if host {
            println!("{HOST_ENTRY}");
        }
        for p in &planned {
            println!("{}", p.name());
        }
        return Ok(());
    }
    if !host && planned.is_empty() {
        return Err(Error::Failed(format!(
            "no test matches filter {:?}",
            opts.filter.as_deref().unwrap_or("")
        )));
    }

    let start = Instant::now();
    let mut tally = Tally {
        passed: 0,
        skipped: 0,
        failed: Vec::new(),
    };
    if host {
        let verdict = host_unit_tests(ws);
        tally.record(HOST_ENTRY, &verdict, &[]);
    }

    // Without a filter the kernels are built even when there is no guest to
    // run, so a broken kernel build fails the run.
    if opts.filter.is_none() || !planned.is_empty() {
        // The oracle needs only the guests, not a working hv.
        let packages: &[&str] = if opts.xen.is_some() {
            &["tests"]
        } else {
            &["hv", "dom0", "tests"]
        };
        let built = crate::build_kernels(ws, opts.profile, packages);
        if let (Err(e), true) = (&built, planned.is_empty()) {
            tally.record("kernel-build", &Verdict::Fail(e.to_string()), &[]);
        }
        for dir in ["bundles", "logs"] {
            let dir = ws.xtask_dir().join(dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        if !planned.is_empty() {
            let on = if opts.xen.is_some() {
                "real Xen 4.17"
            } else {
                "hv"
            };
            let (n, jobs) = (planned.len(), opts.jobs);
            println!("running {n} conformance run(s) on {on}, {jobs} at a time");
        }
        let next = AtomicUsize::new(0);
        let tally_lock = Mutex::new(&mut tally);
        std::thread::scope(|scope| {
            for _ in 0..opts.jobs.max(1) {
                scope.spawn(|| {
                    while let Some(item) = planned.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let (verdict, details) = match (item, &built) {
                            (Planned::BadMetadata { why, .. }, _) => {
                                (Verdict::Fail(why.clone()), Vec::new())
                            }
                            (Planned::Run(_), Err(_)) => (
                                Verdict::Fail("kernel build failed (see above)".into()),
                                Vec::new(),
                            ),
                            (Planned::Run(case), Ok(())) => run_case(ws, opts, case),
                        };
                        tally_lock.lock().unwrap_or_else(|p| p.into_inner()).record(
                            item.name(),
                            &verdict,
                            &details,
                        );
                    }
                });
            }
        });
    }

    println!();
    if !tally.failed.is_empty() {
        println!("failures:");
        for name in &tally.failed {
            println!("    {name}");
        }
    }
    if tally.skipped > 0 {
        println!("({} of the passed reported SKIP)", tally.skipped);
    }
    println!("finished in {:.1} s", start.elapsed().as_secs_f64());
    println!("{} passed, {} failed", tally.passed, tally.failed.len());
    if tally.failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Exit(1))
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
        let planned = plan(&discover(&dir).unwrap());
        let names: Vec<&str> = planned.iter().map(Planned::name).collect();
        assert_eq!(names, ["bad", "good", "good/v2"]);
        assert!(matches!(&planned[0], Planned::BadMetadata { why, .. } if why.contains("line 1")));
        std::fs::remove_dir_all(&dir).unwrap();
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
            xen: None,
        };
        let planned = plan(&discover(&ws.test_bin_dir()).unwrap());
        let verdicts: Vec<(Verdict, Vec<String>)> = planned
            .iter()
            .map(|p| match p {
                Planned::Run(case) => run_case(&ws, &opts, case),
                Planned::BadMetadata { .. } => panic!("metadata should parse"),
            })
            .collect();
        assert_eq!(verdicts[0].0, Verdict::Pass { skipped: false });
        assert_eq!(
            verdicts[1].0,
            Verdict::Fail("domain 0 rebooted (status 33), expected crash".into())
        );
        let details = &verdicts[1].1;
        assert!(details[0].starts_with("last 20 lines of target/xtask/logs/shutdown.crash.log"));
        assert!(details.iter().any(|l| l.contains("Test result: SUCCESS")));
        let bundle = std::fs::read(ws.xtask_dir().join("bundles/shutdown.bundle")).unwrap();
        assert!(bundle.starts_with(crate::bundle::MAGIC));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
