//! `cargo xtask fuzz`: the host fuzz targets under libFuzzer, then the
//! in-guest hypercall fuzzer on hv over many seeds, and optionally one seed
//! replayed on real Xen 4.17.
//!
//! Host side: the `hv-fuzz` crate's targets (`fuzz/fuzz_targets/`), built
//! with SanitizerCoverage through stable rustc flags (`-Cpasses=sancov-module`
//! and LLVM options, `--cfg fuzzing`, overflow checks and debug assertions
//! on; no `-Z` flag, so no nightly) for the host triple in their own target
//! directory (`<target>/fuzz/build/`), so the flags never touch a normal
//! build. libfuzzer-sys compiles libFuzzer itself (hence the C++ compiler
//! prerequisite). Each target runs for `--host-seconds` on its corpus in
//! `<target>/fuzz/corpus/<target>/`, first filled with the crate's seeds
//! and kept between runs; a crash leaves its input in
//! `<target>/fuzz/artifacts/` and fails the command.
//!
//! Guest side: `tests/src/bin/hypercall_fuzz/` booted on hv once per seed
//! (`seed=N calls=M check=C` on its command line), `--jobs` QEMU runs at a
//! time, judged like a conformance run: a hv fault, a timeout (a hang) or a
//! broken invariant fails with the seed and the call index the guest last
//! reported. Logs: `<target>/xtask/logs/fuzz/`.

use crate::args::{Long, Parser, Short, ValueExt};
use crate::judge::{judge, Host, Verdict};
use crate::meta::RunSpec;
use crate::prereq::Prereq;
use crate::qemu;
use crate::workspace::{Profile, Workspace};
use crate::Error;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const HELP: &str = "\
cargo xtask fuzz [--host-seconds S] [--seeds N] [--calls M] [--check C]
      [--seed K] [--from I] [--xen-replay SEED] [--target NAME] [--jobs J]
      [--timeout SECS] [--no-build]
  Host fuzz targets under libFuzzer for S seconds each (default 20; 0 skips
  them), then the in-guest hypercall fuzzer on hv for seeds 1..N (default
  20) with M calls each (default 50000), J QEMU runs at a time (default 2).
    --check C          walk the page tables and check the counts every C
                       calls (default 1: after every call)
    --seed K           run only seed K (with --from I: print every call from
                       index I on, to see a failure)
    --xen-replay SEED  also run SEED on Xen 4.17 and compare its result
                       histogram with hv's
    --target NAME      only this host target (elf, layout, bundle,
                       bzimage, pt, x86_decode, segdesc, pv_cpuid,
                       frames, evtchn)
    --timeout SECS     per-seed timeout (default: 60 + M / 250)
  Fails on a host crash (input in target/fuzz/artifacts/), a hv fault, a
  hang or a broken invariant, naming the seed and call index.
";

/// The host targets, as `fuzz/Cargo.toml` names the binaries.
pub const HOST_TARGETS: &[&str] = &[
    "elf",
    "layout",
    "bundle",
    "bzimage",
    "pt",
    "x86_decode",
    "segdesc",
    "pv_cpuid",
    "frames",
    "evtchn",
];

/// Stable rustc flags that instrument for libFuzzer (what cargo-fuzz
/// passes, minus its nightly-only sanitizer flag).
const COVERAGE_FLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg",
    "fuzzing",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

const GUEST: &str = "hypercall_fuzz";

struct Options {
    host_seconds: u64,
    target: Option<String>,
    seeds: Vec<u64>,
    calls: u64,
    check: u64,
    from: Option<u64>,
    xen_replay: Option<u64>,
    jobs: usize,
    timeout: Option<u64>,
    build: bool,
}

fn number<T: std::str::FromStr>(p: &mut Parser, opt: &str) -> Result<T, Error> {
    let value = p.value()?.string()?;
    value
        .parse()
        .map_err(|_| Error::Usage(format!("option {opt}: invalid value {value:?}")))
}

pub fn cmd(ws: &Workspace, mut p: Parser) -> Result<(), Error> {
    let mut o = Options {
        host_seconds: 20,
        target: None,
        seeds: (1..=20).collect(),
        calls: 50_000,
        check: 1,
        from: None,
        xen_replay: None,
        jobs: 2,
        timeout: None,
        build: true,
    };
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Err(Error::Exit(0));
            }
            Long("host-seconds") => o.host_seconds = number(&mut p, "--host-seconds")?,
            Long("target") => o.target = Some(p.value()?.string()?),
            Long("seeds") => o.seeds = (1..=number(&mut p, "--seeds")?).collect(),
            Long("seed") => o.seeds = vec![number(&mut p, "--seed")?],
            Long("calls") => o.calls = crate::args::positive(&mut p, "--calls")?,
            Long("check") => o.check = crate::args::positive(&mut p, "--check")?,
            Long("from") => o.from = Some(number(&mut p, "--from")?),
            Long("xen-replay") => o.xen_replay = Some(number(&mut p, "--xen-replay")?),
            Long("jobs") | Short('j') => o.jobs = crate::args::positive(&mut p, "--jobs")?,
            Long("timeout") => o.timeout = Some(crate::args::positive(&mut p, "--timeout")?),
            Long("no-build") => o.build = false,
            arg => return Err(arg.unexpected().into()),
        }
    }
    if let Some(t) = &o.target {
        if !HOST_TARGETS.contains(&t.as_str()) {
            return Err(Error::Usage(format!(
                "no host target {t:?} (one of {})",
                HOST_TARGETS.join(", ")
            )));
        }
    }
    let mut failed = Vec::new();
    if o.host_seconds > 0 {
        if let Err(e) = host(ws, &o) {
            eprintln!("xtask: {e}");
            failed.push("host targets".to_owned());
        }
    }
    if !o.seeds.is_empty() || o.xen_replay.is_some() {
        let mut needs = vec![Prereq::KernelTarget, Prereq::Qemu];
        if o.xen_replay.is_some() {
            needs.push(Prereq::XenHypervisor);
        }
        crate::ensure(ws, &needs)?;
        if o.build {
            crate::build_kernels(ws, Profile::Release, &["hv", "tests"])?;
        }
        if let Err(e) = guest(ws, &o) {
            eprintln!("xtask: {e}");
            failed.push("in-guest fuzzer".to_owned());
        }
    }
    if failed.is_empty() {
        eprintln!("xtask: fuzz clean");
        Ok(())
    } else {
        Err(Error::Failed(format!("fuzz failed: {}", failed.join(", "))))
    }
}

// ---- host targets ---------------------------------------------------------

fn host_triple() -> Result<String, Error> {
    let out = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| Error::Failed(format!("cannot run rustc -vV: {e}")))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| Error::Failed("rustc -vV names no host".into()))
}

/// libFuzzer's closing numbers, from its last status line (`#N DONE
/// cov: C ft: F corp: U/S ...`) and `-print_final_stats`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    pub execs: u64,
    pub cov: u64,
    pub features: u64,
    pub corpus: u64,
}

pub fn host_stats(log: &str) -> HostStats {
    let mut s = HostStats::default();
    for line in log.lines() {
        let field = |name: &str| {
            line.split_whitespace()
                .skip_while(|w| *w != name)
                .nth(1)
                .and_then(|v| v.split('/').next()?.parse().ok())
        };
        if line.starts_with('#') {
            s.cov = field("cov:").unwrap_or(s.cov);
            s.features = field("ft:").unwrap_or(s.features);
            s.corpus = field("corp:").unwrap_or(s.corpus);
        }
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            s.execs = v.trim().parse().unwrap_or(s.execs);
        }
    }
    s
}

fn host(ws: &Workspace, o: &Options) -> Result<(), Error> {
    crate::ensure(ws, &[Prereq::Cc, Prereq::Cxx])?;
    let root = ws.target_dir.join("fuzz");
    let (build_dir, corpus, artifacts, logs) = (
        root.join("build"),
        root.join("corpus"),
        root.join("artifacts"),
        root.join("logs"),
    );
    for dir in [&artifacts, &logs] {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    // The seeds, written by an ordinary (uninstrumented) host binary.
    let mut seeds = ws.cargo();
    seeds.args(["run", "--quiet", "-p", "hv-fuzz", "--bin", "seeds", "--"]);
    seeds.arg(&corpus);
    crate::shell::run(&mut seeds)?;

    let triple = host_triple()?;
    let targets: Vec<&str> = HOST_TARGETS
        .iter()
        .copied()
        .filter(|t| o.target.as_deref().is_none_or(|w| w == *t))
        .collect();
    if o.build {
        let mut build = ws.cargo();
        build
            .args(["build", "--release", "--target", &triple])
            .args(["-p", "hv-fuzz", "--features", "libfuzzer"])
            .env("CARGO_TARGET_DIR", &build_dir)
            .env("RUSTFLAGS", COVERAGE_FLAGS.join(" "))
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        for t in &targets {
            build.args(["--bin", t]);
        }
        crate::shell::run(&mut build)?;
    }
    let bin_dir = build_dir.join(&triple).join("release");
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..o.jobs.min(targets.len()) {
            s.spawn(|| {
                while let Some(&t) = targets.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r =
                        run_host_target(&bin_dir, t, o.host_seconds, &corpus, &artifacts, &logs);
                    if let Ok(mut all) = results.lock() {
                        all.push((t, r));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(t, _)| HOST_TARGETS.iter().position(|x| x == t));
    let mut failed = Vec::new();
    for (t, r) in results {
        match r {
            Ok(s) => println!(
                "fuzz host {t:<11} ok: {} execs in {} s, cov {} ft {} corpus {}",
                s.execs, o.host_seconds, s.cov, s.features, s.corpus
            ),
            Err(why) => {
                println!("fuzz host {t:<11} FAILED: {why}");
                failed.push(t);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "host targets crashed: {} (inputs in {})",
            failed.join(", "),
            ws.display(&artifacts)
        )))
    }
}

fn run_host_target(
    bin_dir: &Path,
    target: &str,
    seconds: u64,
    corpus: &Path,
    artifacts: &Path,
    logs: &Path,
) -> Result<HostStats, String> {
    let log_path = logs.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut prefix = artifacts.join(format!("{target}-")).into_os_string();
    prefix = ["-artifact_prefix=".into(), prefix].into_iter().collect();
    let status = std::process::Command::new(bin_dir.join(target))
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .arg(prefix)
        .arg(corpus.join(target))
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        .status()
        .map_err(|e| format!("cannot run {target}: {e}"))?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    if status.success() {
        return Ok(host_stats(&text));
    }
    for line in crate::conformance::tail(&text, 30) {
        println!("    {line}");
    }
    Err(format!("{status}; log {}", log_path.display()))
}

// ---- the in-guest fuzzer --------------------------------------------------

/// How one seed went.
struct SeedRun {
    seed: u64,
    verdict: Verdict,
    secs: f64,
    log: String,
    log_path: PathBuf,
}

/// The last call index a log reports for `seed` (`seed S call I`).
pub fn last_call(log: &str, seed: u64) -> Option<u64> {
    let mark = format!("seed {seed} call ");
    log.lines().rev().find_map(|line| {
        let rest = &line[line.find(&mark)? + mark.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// The guest's result histogram: its `hist` lines, without prefixes.
pub fn histogram(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.find("hist ").map(|i| l[i..].trim_end().to_owned()))
        .collect()
}

fn guest_spec(ws: &Workspace) -> Result<RunSpec, Error> {
    // `<name>.rs` or `<name>/main.rs`, as the conformance runner finds it.
    let path = crate::conformance::discover(&ws.test_bin_dir())?
        .into_iter()
        .find(|b| b.name == GUEST)
        .map(|b| b.source)
        .ok_or_else(|| Error::Failed(format!("no guest {GUEST} in tests/src/bin")))?;
    let source = std::fs::read_to_string(&path)
        .map_err(|e| Error::Failed(format!("cannot read {}: {e}", path.display())))?;
    let cases = crate::meta::parse(GUEST, &source)
        .map_err(|e| Error::Failed(format!("{}:{}: {}", path.display(), e.line, e.message)))?;
    cases
        .into_iter()
        .next()
        .map(|c| c.spec)
        .ok_or_else(|| Error::Failed(format!("{} declares no run", path.display())))
}

fn guest_cmdline(o: &Options, seed: u64) -> String {
    let mut line = format!("seed={seed} calls={} check={}", o.calls, o.check);
    if let Some(from) = o.from {
        line.push_str(&format!(" from={from}"));
    }
    line
}

fn run_seed(ws: &Workspace, o: &Options, spec: &RunSpec, seed: u64, xen: Option<&Path>) -> SeedRun {
    let start = Instant::now();
    let side = if xen.is_some() { "xen" } else { "hv" };
    let log_path = ws
        .xtask_dir()
        .join("logs")
        .join("fuzz")
        .join(format!("{side}-seed{seed}.log"));
    let run = || -> Result<(Verdict, String), String> {
        let guest = ws.kernel(Profile::Release, GUEST);
        let cmdline = guest_cmdline(o, seed);
        let (mut cfg, host, stop_on) = match xen {
            None => {
                let bundle = ws
                    .xtask_dir()
                    .join("bundles")
                    .join(format!("fuzz-seed{seed}.bundle"));
                crate::write_bundle(&guest, &cmdline, None, &bundle).map_err(|e| e.to_string())?;
                let mut cfg = qemu::Config::new(ws.kernel(Profile::Release, "hv"), &bundle);
                if let Some(m) = spec.dom0_mem_mib {
                    cfg.append = format!("{} dom0_mem={m}M", qemu::DEFAULT_HV_CMDLINE);
                }
                (cfg, Host::Hv, &[][..])
            }
            Some(xen) => {
                let mut cfg = crate::xen::config(xen, &guest, &cmdline, None)?;
                if let Some(m) = spec.dom0_mem_mib {
                    cfg.append = crate::xen::with_dom0_mem(&cfg.append, m);
                }
                (cfg, Host::Xen, crate::xen::STOP_LINES)
            }
        };
        cfg.mem_mib = spec.mem_mib.unwrap_or(qemu::DEFAULT_MEM_MIB);
        let secs = o.timeout.unwrap_or(60 + o.calls / 250);
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let ending = cfg.run_logged(&log_path, Duration::from_secs(secs), stop_on)?;
        let log = std::fs::read(&log_path).map_err(|e| e.to_string())?;
        let log = String::from_utf8_lossy(&log).into_owned();
        Ok((judge(spec, &log, ending, host), log))
    };
    let (verdict, log) = run().unwrap_or_else(|why| (Verdict::Fail(why), String::new()));
    SeedRun {
        seed,
        verdict,
        secs: start.elapsed().as_secs_f64(),
        log,
        log_path,
    }
}

fn guest(ws: &Workspace, o: &Options) -> Result<(), Error> {
    let spec = guest_spec(ws)?;
    let next = AtomicUsize::new(0);
    let runs = Mutex::new(Vec::new());
    let wall = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..o.jobs.min(o.seeds.len()) {
            s.spawn(|| {
                while let Some(&seed) = o.seeds.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r = run_seed(ws, o, &spec, seed, None);
                    report_seed(ws, o, &r, "hv");
                    if let Ok(mut all) = runs.lock() {
                        all.push(r);
                    }
                }
            });
        }
    });
    let wall = wall.elapsed().as_secs_f64();
    let runs = runs.into_inner().unwrap_or_default();
    let failed: Vec<&SeedRun> = runs
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Fail(_)))
        .collect();
    let done = (runs.len() - failed.len()) as u64 * o.calls;
    if !runs.is_empty() {
        println!(
            "fuzz guest: {done} calls clean across {} of {} seeds in {wall:.1} s wall ({:.0} calls/s, {} at a time)",
            runs.len() - failed.len(),
            runs.len(),
            done as f64 / wall.max(0.001),
            o.jobs,
        );
    }
    if let Some(seed) = o.xen_replay {
        xen_replay(ws, o, &spec, seed, &runs)?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        let seeds: Vec<String> = failed.iter().map(|r| r.seed.to_string()).collect();
        Err(Error::Failed(format!(
            "in-guest fuzzer failed on seed(s) {}",
            seeds.join(", ")
        )))
    }
}

fn report_seed(ws: &Workspace, o: &Options, r: &SeedRun, side: &str) {
    match &r.verdict {
        Verdict::Pass { .. } => println!(
            "fuzz {side} seed {}: {} calls ok in {:.1} s ({:.0} calls/s)",
            r.seed,
            o.calls,
            r.secs,
            o.calls as f64 / r.secs.max(0.001)
        ),
        Verdict::Fail(why) => {
            let call = last_call(&r.log, r.seed).map_or("before its first call".to_owned(), |i| {
                format!("at or after call {i}")
            });
            println!(
                "fuzz {side} seed {} FAILED {call}: {why} (log {})",
                r.seed,
                ws.display(&r.log_path)
            );
            for line in crate::conformance::tail(&r.log, 20) {
                println!("    {line}");
            }
            let from = last_call(&r.log, r.seed).unwrap_or(0);
            println!(
                "    replay: cargo xtask fuzz --host-seconds 0 --seed {} --calls {} --check {} --from {from}",
                r.seed, o.calls, o.check
            );
        }
    }
}

/// Runs `seed` on Xen and sets its result histogram beside hv's: the guest
/// judges each result on both, so differences in the classes are facts to
/// look at, not failures.
fn xen_replay(
    ws: &Workspace,
    o: &Options,
    spec: &RunSpec,
    seed: u64,
    hv_runs: &[SeedRun],
) -> Result<(), Error> {
    let xen = crate::xen::image(ws)?;
    let hv_run;
    let hv = match hv_runs.iter().find(|r| r.seed == seed) {
        Some(r) => r,
        None => {
            hv_run = run_seed(ws, o, spec, seed, None);
            report_seed(ws, o, &hv_run, "hv");
            &hv_run
        }
    };
    let x = run_seed(ws, o, spec, seed, Some(&xen));
    report_seed(ws, o, &x, "xen");
    let (h, x_hist) = (histogram(&hv.log), histogram(&x.log));
    let differ: Vec<(String, String)> = {
        let name = |l: &str| l.split(':').next().unwrap_or("").to_owned();
        let mut rows: Vec<String> = h.iter().chain(&x_hist).map(|l| name(l)).collect();
        rows.sort();
        rows.dedup();
        rows.into_iter()
            .filter_map(|row| {
                let find = |v: &[String]| {
                    v.iter()
                        .find(|l| name(l) == row)
                        .cloned()
                        .unwrap_or_else(|| format!("{row}: (none)"))
                };
                let (a, b) = (find(&h), find(&x_hist));
                (a != b).then_some((a, b))
            })
            .collect()
    };
    println!(
        "fuzz seed {seed} on hv and Xen: {} of {} histogram rows differ",
        differ.len(),
        h.len().max(x_hist.len())
    );
    for (a, b) in differ {
        println!("  hv:  {a}\n  xen: {b}");
    }
    match x.verdict {
        Verdict::Pass { .. } => Ok(()),
        Verdict::Fail(why) => Err(Error::Failed(format!("seed {seed} on Xen: {why}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_numbers() {
        let log = "INFO: Seed: 1\n#2\tINITED cov: 10 ft: 11 corp: 2/20b exec/s: 0 rss: 27Mb\n\
                   #38515\tDONE   cov: 313 ft: 598 corp: 174/1340Kb lim: 8992 exec/s: 3501 rss: 29Mb\n\
                   Done 38515 runs in 11 second(s)\nstat::number_of_executed_units: 38515\n";
        assert_eq!(
            host_stats(log),
            HostStats {
                execs: 38515,
                cov: 313,
                features: 598,
                corpus: 174
            }
        );
    }

    #[test]
    fn finds_the_last_call_and_the_histogram() {
        let log = "fuzz: seed 7 call 0\nfuzz: seed 7 call 2000\n(d0) Test: seed 7 call 2345 (nr 0x1): x\n\
                   hist  1 mmu_update: ok=3 EINVAL=2\n(d0) hist 12 memory_op: ok=1\n";
        assert_eq!(last_call(log, 7), Some(2345));
        assert_eq!(last_call(log, 8), None);
        assert_eq!(
            histogram(log),
            [
                "hist  1 mmu_update: ok=3 EINVAL=2",
                "hist 12 memory_op: ok=1"
            ]
        );
    }
}
