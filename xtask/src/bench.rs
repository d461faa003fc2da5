//! `cargo xtask bench`: the cost of every hot path on `hv` and on real Xen
//! 4.17, side by side, from one invocation.
//!
//! The bench guest (`tests/src/bin/bench.rs`) times each row with fenced
//! `rdtsc` and prints `bench <row> ...` lines (its module documentation has
//! the format). This command boots it as domain 0 of `hv` and of Xen under
//! QEMU TCG with `-icount shift=0,sleep=off`: the guest's TSC then advances
//! by one per instruction executed on the CPU (the guest's and the
//! hypervisor's alike), so a row's figure is an instruction count that
//! repeats exactly from run to run. `-cpu max,-x2apic` because QEMU aborts
//! (`Bad icount read`) when Xen reads the x2APIC timer under icount; hv
//! uses the xAPIC anyway. With `--wallclock` both also run under plain TCG
//! (`-cpu max`), where the TSC follows host time: a noisy view (see
//! `xen-facts.md`), printed as a second table.
//!
//! Outputs: the table on stdout; `target/bench/results.json` (every figure,
//! both modes); `target/bench/results.svg` (a bar chart, see [`crate::svg`]);
//! the guests' serial logs in `target/bench/logs/`. `--update-readme`
//! rewrites the table between the `<!-- bench-table:begin -->` and
//! `<!-- bench-table:end -->` markers of `README.md`.
//!
//! The goal every row is held to: hv in at most half of Xen's count. Rows hv
//! cannot run yet (`unsupported` in the guest) miss it and say why. Nothing
//! here fails on a figure: a benchmark is not a test. It fails only when a
//! run crashes, times out, or a row reports `failed`.

use crate::args::{self, Long, Parser, Short, ValueExt};
use crate::prereq::Prereq;
use crate::qemu::{self, Ending};
use crate::workspace::{Profile, Workspace};
use crate::{svg, xen, Error};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_ITERATIONS: u64 = 1000;
pub const DEFAULT_REPEATS: u32 = 3;
pub const DEFAULT_TIMEOUT_SECS: u64 = 900;
/// hv's figure must be at most this fraction of Xen's.
pub const GOAL_RATIO: f64 = 0.5;
pub const README_BEGIN: &str = "<!-- bench-table:begin -->";
pub const README_END: &str = "<!-- bench-table:end -->";
/// The bench guest's binary name in `tests/src/bin/`.
const GUEST: &str = "bench";
/// Domain 0's vCPUs on both sides: the `vcpu_switch_yield` row runs a
/// second one and the `ipi_pingpong` row a third (each down for every
/// other row: a context, once given, stays the vCPU's).
const BENCH_VCPUS: u32 = 4;

pub const HELP: &str = "\
cargo xtask bench [--filter S] [--iterations N] [--repeats R] [--wallclock]
                  [--update-readme] [--timeout SECS] [--no-build]
    Time every hot path on hv and on real Xen 4.17 under QEMU TCG with
    -icount shift=0,sleep=off (figures are instruction counts, identical run
    to run). Prints the table; writes target/bench/results.json and
    target/bench/results.svg.
      --filter S         only rows whose name contains S (comma-separated list)
      --iterations N     iterations per timed loop (default 1000)
      --repeats R        timed runs per row, the fastest counts (default 3)
      --wallclock        also run under plain TCG (TSC cycles, noisy)
      --update-readme    rewrite the table between the bench-table markers
                         in README.md
      --timeout SECS     per QEMU run (default 900)
      --no-build         use the kernels already built
";

/// How the guest's clock is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `-icount shift=0,sleep=off`: one TSC tick per instruction.
    Icount,
    /// Plain TCG: the TSC follows the host clock.
    Wallclock,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Icount => "icount",
            Mode::Wallclock => "wallclock",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Mode::Icount => "instructions",
            Mode::Wallclock => "TSC cycles",
        }
    }

    /// QEMU arguments appended to the usual ones. QEMU takes the last
    /// `-cpu`, so this one replaces `qemu::Config`'s `-cpu max`.
    pub fn qemu_args(self) -> &'static [&'static str] {
        match self {
            Mode::Icount => &["-cpu", "max,-x2apic", "-icount", "shift=0,sleep=off"],
            Mode::Wallclock => &[],
        }
    }

    /// Whether the goal is judged on this mode's figures: it is stated in
    /// instructions; wall-clock figures are too noisy to hold to it.
    pub fn judges_goal(self) -> bool {
        self == Mode::Icount
    }

    /// The QEMU settings as the README states them.
    pub fn settings(self) -> &'static str {
        match self {
            Mode::Icount => "TCG, `-cpu max,-x2apic -icount shift=0,sleep=off`",
            Mode::Wallclock => "TCG, `-cpu max`",
        }
    }
}

/// The hypervisor a run boots the guest on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Hv,
    Xen,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Hv => "hv",
            Target::Xen => "xen",
        }
    }
}

/// One row as one guest run reported it; in `results.json`
/// `{"per_op": 86.0}`, `{"unsupported": "why"}` or `{"failed": "why"}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    /// Per-operation cost (instructions or cycles).
    #[serde(rename = "per_op")]
    Measured(f64),
    Unsupported(String),
    Failed(String),
}

/// Everything one run of the bench guest printed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GuestReport {
    /// Rows in the order the guest ran them.
    pub rows: Vec<(String, Cell)>,
    /// The `bench-end` line was seen.
    pub complete: bool,
    /// The guest's `Test result:` verdict word, if any.
    pub result: Option<String>,
}

/// The value of `key=value` in a line's words; quoted values run to the
/// closing quote.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.find('"').map(|end| &quoted[..end]);
    }
    Some(rest.split_whitespace().next().unwrap_or(""))
}

/// Reads the guest's `bench` lines out of a serial log.
pub fn parse_log(log: &str) -> GuestReport {
    let mut report = GuestReport::default();
    for line in log.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(verdict) = line.strip_prefix("Test result: ") {
            report.result = Some(verdict.trim().to_owned());
            continue;
        }
        if line.starts_with("bench-end") {
            report.complete = true;
            continue;
        }
        let Some(rest) = line.strip_prefix("bench ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        let cell = if kind == "unsupported" {
            Cell::Unsupported(field(line, "reason").unwrap_or("").to_owned())
        } else if kind == "failed" {
            Cell::Failed(field(line, "reason").unwrap_or("").to_owned())
        } else {
            match field(line, "cycles_per_op").and_then(|v| v.parse::<f64>().ok()) {
                Some(v) => Cell::Measured(v),
                None => Cell::Failed(format!("unreadable line {line:?}")),
            }
        };
        report.rows.push((name.to_owned(), cell));
    }
    report
}

/// One row of the side-by-side table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub hv: Option<Cell>,
    pub xen: Option<Cell>,
}

/// Whether a row meets the goal.
#[derive(Clone, Debug, PartialEq)]
pub enum Goal {
    Met,
    Missed(String),
    /// No Xen figure to compare with.
    Unknown,
}

impl Row {
    fn measured(cell: &Option<Cell>) -> Option<f64> {
        match cell {
            Some(Cell::Measured(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn hv_value(&self) -> Option<f64> {
        Self::measured(&self.hv)
    }

    pub fn xen_value(&self) -> Option<f64> {
        Self::measured(&self.xen)
    }

    pub fn ratio(&self) -> Option<f64> {
        match (self.hv_value(), self.xen_value()) {
            (Some(h), Some(x)) if x > 0.0 => Some(h / x),
            _ => None,
        }
    }

    pub fn goal(&self) -> Goal {
        match (self.ratio(), &self.hv, self.xen_value()) {
            (Some(r), _, _) if r <= GOAL_RATIO => Goal::Met,
            (Some(r), _, _) => Goal::Missed(format!("{:.2}x Xen", r)),
            (None, Some(Cell::Unsupported(_)), Some(_)) => Goal::Missed("unsupported on hv".into()),
            (None, Some(Cell::Failed(_)), Some(_)) => Goal::Missed("failed on hv".into()),
            (None, None, Some(_)) => Goal::Missed("not run on hv".into()),
            _ => Goal::Unknown,
        }
    }
}

/// Merges two runs' rows, in the order the rows first appear (Xen runs
/// every row, so its order is the guest's).
pub fn merge(hv: &GuestReport, xen: &GuestReport) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for (name, _) in xen.rows.iter().chain(&hv.rows) {
        if rows.iter().any(|r| &r.name == name) {
            continue;
        }
        let find = |g: &GuestReport| {
            g.rows
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, c)| c.clone())
        };
        rows.push(Row {
            name: name.clone(),
            hv: find(hv),
            xen: find(xen),
        });
    }
    rows
}

/// A figure as the table shows it: integral values without decimals.
pub fn figure(v: f64) -> String {
    if (v - v.round()).abs() < 0.005 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn cell_text(cell: &Option<Cell>) -> String {
    match cell {
        Some(Cell::Measured(v)) => figure(*v),
        Some(Cell::Unsupported(_)) => "unsupported".into(),
        Some(Cell::Failed(_)) => "FAILED".into(),
        None => "-".into(),
    }
}

fn goal_text(row: &Row, mode: Mode) -> String {
    if !mode.judges_goal() {
        return "-".into();
    }
    match &row.goal() {
        Goal::Met => "met".into(),
        Goal::Missed(why) => format!("missed ({why})"),
        Goal::Unknown => "-".into(),
    }
}

fn ratio_text(row: &Row) -> String {
    row.ratio()
        .map_or_else(|| "-".into(), |r| format!("{r:.2}"))
}

/// The plain-text table printed on the terminal.
pub fn text_table(rows: &[Row], mode: Mode) -> String {
    let unit = mode.unit();
    let header = [
        "operation".to_owned(),
        format!("hv ({unit})"),
        format!("Xen ({unit})"),
        "hv/Xen".to_owned(),
        "goal (<= 0.50)".to_owned(),
    ];
    let body: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                cell_text(&r.hv),
                cell_text(&r.xen),
                ratio_text(r),
                goal_text(r, mode),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for line in &body {
        for (w, c) in widths.iter_mut().zip(line) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let mut push = |cells: &[String; 5]| {
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i == 0 {
                let _ = write!(out, "{c:<w$}");
            } else if i == 4 {
                let _ = write!(out, "  {c}");
            } else {
                let _ = write!(out, "  {c:>w$}");
            }
        }
        out.push('\n');
    };
    push(&header);
    push(&widths.map(|w| "-".repeat(w)));
    for line in &body {
        push(line);
    }
    out
}

/// The Markdown table for the README.
pub fn markdown_table(rows: &[Row], mode: Mode) -> String {
    let mut out = String::from("| operation | hv | Xen 4.17 | hv/Xen | goal: hv <= 0.50 x Xen |\n");
    out.push_str("| --- | ---: | ---: | ---: | --- |\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            r.name,
            cell_text(&r.hv),
            cell_text(&r.xen),
            ratio_text(r),
            goal_text(r, mode)
        );
    }
    out
}

/// The results of one mode.
pub struct ModeResult {
    pub mode: Mode,
    pub rows: Vec<Row>,
}

/// Facts about the run, for the JSON file and the README.
pub struct RunInfo {
    pub date: String,
    pub qemu_version: String,
    pub iterations: u64,
    pub repeats: u32,
}

/// `results.json` as a whole.
#[derive(Serialize)]
struct JsonFile<'a> {
    date: &'a str,
    qemu: &'a str,
    iterations: u64,
    repeats: u32,
    goal_ratio: f64,
    modes: Vec<JsonMode<'a>>,
}

#[derive(Serialize)]
struct JsonMode<'a> {
    mode: &'static str,
    unit: &'static str,
    qemu_args: String,
    rows: Vec<JsonRow<'a>>,
}

/// One row, on one line of the file.
#[derive(Serialize)]
struct JsonRow<'a> {
    name: &'a str,
    hv: &'a Option<Cell>,
    xen: &'a Option<Cell>,
    ratio: Option<f64>,
    /// `null` where the goal is not judged or cannot be.
    goal_met: Option<bool>,
}

/// `results.json`: every figure of every mode.
pub fn json(info: &RunInfo, results: &[ModeResult]) -> String {
    let modes = results
        .iter()
        .map(|m| JsonMode {
            mode: m.mode.name(),
            unit: m.mode.unit(),
            qemu_args: m.mode.qemu_args().join(" "),
            rows: m
                .rows
                .iter()
                .map(|r| JsonRow {
                    name: &r.name,
                    hv: &r.hv,
                    xen: &r.xen,
                    ratio: r.ratio().map(|v| crate::json::rounded(v, 4)),
                    goal_met: match r.goal() {
                        _ if !m.mode.judges_goal() => None,
                        Goal::Met => Some(true),
                        Goal::Missed(_) => Some(false),
                        Goal::Unknown => None,
                    },
                })
                .collect(),
        })
        .collect();
    let file = JsonFile {
        date: &info.date,
        qemu: &info.qemu_version,
        iterations: info.iterations,
        repeats: info.repeats,
        goal_ratio: GOAL_RATIO,
        modes,
    };
    // The top object, the modes, each mode and its rows one member per
    // line; a row on one line.
    crate::json::to_string(&file, 4)
}

/// The README section between the markers.
pub fn readme_block(info: &RunInfo, results: &[ModeResult]) -> String {
    let mut out = String::new();
    for m in results {
        let _ = writeln!(
            out,
            "Measured {} with `cargo xtask bench` (QEMU {}, {}; {} iterations, \
             fastest of {}), in {} per operation:\n",
            info.date,
            info.qemu_version,
            m.mode.settings(),
            info.iterations,
            info.repeats,
            m.mode.unit()
        );
        out.push_str(&markdown_table(&m.rows, m.mode));
        out.push('\n');
    }
    out
}

/// Replaces what lies between the markers; `None` if they are missing.
pub fn replace_between_markers(text: &str, block: &str) -> Option<String> {
    let start = text.find(README_BEGIN)? + README_BEGIN.len();
    let end = start + text[start..].find(README_END)?;
    Some(format!("{}\n{}{}", &text[..start], block, &text[end..]))
}

pub struct Options {
    pub filter: Option<String>,
    pub iterations: u64,
    pub repeats: u32,
    pub wallclock: bool,
    pub update_readme: bool,
    pub timeout_secs: u64,
    pub build: bool,
}

/// Parses the command's options and runs it.
pub fn cmd(ws: &Workspace, mut p: Parser) -> Result<(), Error> {
    let mut opts = Options {
        filter: None,
        iterations: DEFAULT_ITERATIONS,
        repeats: DEFAULT_REPEATS,
        wallclock: false,
        update_readme: false,
        timeout_secs: DEFAULT_TIMEOUT_SECS,
        build: true,
    };
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(());
            }
            Long("filter") => opts.filter = Some(p.value()?.string()?),
            Long("iterations") => opts.iterations = args::positive(&mut p, "--iterations")?,
            Long("repeats") => opts.repeats = args::positive(&mut p, "--repeats")?,
            Long("wallclock") => opts.wallclock = true,
            Long("update-readme") => opts.update_readme = true,
            Long("timeout") => opts.timeout_secs = args::positive(&mut p, "--timeout")?,
            Long("no-build") => opts.build = false,
            arg => return Err(arg.unexpected().into()),
        }
    }
    if opts.filter.as_deref().is_some_and(|f| f.contains(' ')) {
        return Err(Error::Usage("--filter cannot contain spaces".into()));
    }
    crate::ensure(
        ws,
        &[Prereq::KernelTarget, Prereq::Qemu, Prereq::XenHypervisor],
    )?;
    run(ws, &opts)
}

/// The guest's command line.
/// The row two Debian domUs of our dom0 measure (`crate::linux`).
const TCP_ROW: &str = "domu_tcp_1m";

/// Whether `--filter` lets row `name` run.
fn wanted(opts: &Options, name: &str) -> bool {
    opts.filter
        .as_deref()
        .is_none_or(|f| f.split(',').any(|w| name.contains(w)))
}

/// `domu_tcp_1m` on hv and on Xen, side by side (under icount the two
/// cannot disturb each other's figures): `linux/domu`'s two cloud-kernel
/// domUs, the second fetching the first's MiB over TCP 64 times more
/// (busybox `wget` from `httpd`, through dom0's network back end and
/// switch), timed by its uptime. Without the kernel the row is
/// unsupported.
fn tcp_row(ws: &Workspace, xen_image: &Path, mode: Mode, timeout: Duration) -> [Cell; 2] {
    let images = match crate::linux::images(ws, true) {
        Ok(i) => i,
        Err(why) => {
            let c = Cell::Unsupported(format!("no Debian cloud kernel: {why}"));
            return [c.clone(), c];
        }
    };
    if let Err(e) = crate::build_kernels(ws, Profile::Release, &["dom0"]) {
        let c = Cell::Failed(format!("building dom0: {e}"));
        return [c.clone(), c];
    }
    let extra: Vec<String> = mode.qemu_args().iter().map(|s| (*s).to_owned()).collect();
    let one = |on| {
        let log = crate::linux::bench_tcp(ws, &images, on, Some(xen_image), (timeout, &extra));
        match log {
            Ok(text) => {
                let lines: String = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("domU2| "))
                    .flat_map(|l| [l, "\n"])
                    .collect();
                parse_log(&lines)
                    .rows
                    .into_iter()
                    .find(|(n, _)| n == TCP_ROW)
                    .map_or(Cell::Failed("no domu_tcp_1m line".into()), |(_, c)| c)
            }
            Err(e) => Cell::Failed(e),
        }
    };
    std::thread::scope(|scope| {
        let hv = scope.spawn(|| one(crate::linux::On::Hv));
        let xen = scope.spawn(|| one(crate::linux::On::Xen));
        let join = |h: std::thread::ScopedJoinHandle<'_, Cell>| {
            h.join()
                .unwrap_or_else(|_| Cell::Failed("runner panicked".into()))
        };
        [join(hv), join(xen)]
    })
}

pub fn guest_cmdline(opts: &Options) -> String {
    let mut s = format!("iterations={} repeats={}", opts.iterations, opts.repeats);
    if let Some(f) = &opts.filter {
        s.push_str(" filter=");
        s.push_str(f);
    }
    s
}

/// `target/bench/`.
pub fn out_dir(ws: &Workspace) -> PathBuf {
    ws.target_dir.join("bench")
}

fn qemu_version() -> String {
    std::process::Command::new(qemu::QEMU)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let first = text.lines().next()?.to_owned();
            // "QEMU emulator version 10.0.2 (Debian ...)" -> "10.0.2 (Debian ...)"
            Some(
                first
                    .strip_prefix("QEMU emulator version ")
                    .unwrap_or(&first)
                    .to_owned(),
            )
        })
        .unwrap_or_else(|| "unknown".into())
}

fn today() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown date".into())
}

/// Everything one QEMU run needs.
struct RunSpec {
    target: Target,
    mode: Mode,
    cfg: qemu::Config,
    log: PathBuf,
    stop_on: Vec<&'static str>,
}

/// The last `n` lines of a log, for an error message.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Boots one run and reads its report.
fn boot(spec: &RunSpec, timeout: Duration, ws: &Workspace) -> Result<GuestReport, String> {
    let ending = spec
        .cfg
        .run_logged(&spec.log, timeout, &spec.stop_on)
        .map_err(|e| format!("{} ({}): {e}", spec.target.name(), spec.mode.name()))?;
    let bytes = std::fs::read(&spec.log).unwrap_or_default();
    let log = String::from_utf8_lossy(&bytes);
    let report = parse_log(&log);
    let ok_ending = matches!(ending, Ending::Exited(0) | Ending::StoppedOnLine);
    if !ok_ending || !report.complete || report.result.as_deref() != Some("SUCCESS") {
        return Err(format!(
            "the bench guest on {} ({}) did not finish cleanly: {ending}, result {:?}; log {}:\n{}",
            spec.target.name(),
            spec.mode.name(),
            report.result,
            ws.display(&spec.log),
            tail(&log, 15)
        ));
    }
    Ok(report)
}

pub fn run(ws: &Workspace, opts: &Options) -> Result<(), Error> {
    if opts.build {
        crate::build_kernels(ws, Profile::Release, &["hv", "tests"])?;
    }
    let hv = ws.kernel(Profile::Release, "hv");
    let guest = ws.kernel(Profile::Release, GUEST);
    for k in [&hv, &guest] {
        if !k.is_file() {
            return Err(Error::Failed(format!(
                "{} does not exist (build it first)",
                k.display()
            )));
        }
    }
    let xen_image = xen::image(ws)?;
    let dir = out_dir(ws);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)
        .map_err(|e| Error::Failed(format!("cannot create {}: {e}", logs.display())))?;
    let cmdline = guest_cmdline(opts);
    let bundle = dir.join("bench.bundle");
    crate::write_bundle(&guest, &cmdline, None, &bundle)?;

    let mut modes = vec![Mode::Icount];
    if opts.wallclock {
        modes.push(Mode::Wallclock);
    }
    let timeout = Duration::from_secs(opts.timeout_secs);
    let mut results = Vec::new();
    for mode in modes {
        let mut specs = Vec::new();
        for target in [Target::Hv, Target::Xen] {
            let mut cfg = match target {
                Target::Hv => {
                    let mut cfg = qemu::Config::new(hv.clone(), &bundle);
                    cfg.append = format!("{} dom0_max_vcpus={BENCH_VCPUS}", cfg.append);
                    cfg
                }
                Target::Xen => {
                    let mut cfg =
                        xen::config(&xen_image, &guest, &cmdline, None).map_err(Error::Failed)?;
                    cfg.append = xen::with_dom0_vcpus(&cfg.append, BENCH_VCPUS);
                    cfg
                }
            };
            cfg.extra = mode.qemu_args().iter().map(|s| (*s).to_owned()).collect();
            specs.push(RunSpec {
                target,
                mode,
                cfg,
                log: logs.join(format!("{}-{}.log", target.name(), mode.name())),
                stop_on: match target {
                    Target::Hv => Vec::new(),
                    Target::Xen => vec![xen::HALT_LINE],
                },
            });
        }
        for s in &specs {
            eprintln!(
                "xtask: bench on {} ({}): {}",
                s.target.name(),
                mode.name(),
                s.cfg.shell_line()
            );
        }
        // Under icount the two runs cannot disturb each other's figures, so
        // they share the machine; wall-clock runs take turns.
        // A filter naming only the TCP row needs no bench guest run.
        let tcp_only = opts
            .filter
            .as_deref()
            .is_some_and(|f| f.split(',').all(|w| TCP_ROW.contains(w)));
        let reports: Vec<Result<GuestReport, String>> = if tcp_only {
            let empty = || {
                Ok(GuestReport {
                    complete: true,
                    result: Some("SUCCESS".into()),
                    ..Default::default()
                })
            };
            vec![empty(), empty()]
        } else if mode == Mode::Icount {
            std::thread::scope(|scope| {
                let handles: Vec<_> = specs
                    .iter()
                    .map(|s| scope.spawn(move || boot(s, timeout, ws)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err("runner panicked".into())))
                    .collect()
            })
        } else {
            specs.iter().map(|s| boot(s, timeout, ws)).collect()
        };
        let mut reports = reports.into_iter();
        let (Some(hv_report), Some(xen_report)) = (reports.next(), reports.next()) else {
            return Err(Error::Failed("a bench run went missing".into()));
        };
        let (mut hv_report, mut xen_report) = match (hv_report, xen_report) {
            (Ok(h), Ok(x)) => (h, x),
            (Err(e), _) | (_, Err(e)) => return Err(Error::Failed(e)),
        };
        if mode == Mode::Icount && wanted(opts, TCP_ROW) {
            let [h, x] = tcp_row(ws, &xen_image, mode, timeout);
            hv_report.rows.push((TCP_ROW.into(), h));
            xen_report.rows.push((TCP_ROW.into(), x));
        }
        let rows = merge(&hv_report, &xen_report);
        println!(
            "\n{} ({}; {} iterations, fastest of {})\n",
            mode.name(),
            mode.settings().replace('`', ""),
            opts.iterations,
            opts.repeats
        );
        print!("{}", text_table(&rows, mode));
        results.push(ModeResult { mode, rows });
    }

    let info = RunInfo {
        date: today(),
        qemu_version: qemu_version(),
        iterations: opts.iterations,
        repeats: opts.repeats,
    };
    write(&dir.join("results.json"), &json(&info, &results))?;
    write(&dir.join("results.svg"), &svg::chart(&results, &info.date))?;
    eprintln!(
        "\nxtask: wrote {} and {}",
        ws.display(&dir.join("results.json")),
        ws.display(&dir.join("results.svg"))
    );
    if opts.update_readme {
        update_readme(&ws.root.join("README.md"), &readme_block(&info, &results))?;
        eprintln!("xtask: updated the bench table in README.md");
    }
    let failed: Vec<String> = results
        .iter()
        .flat_map(|m| &m.rows)
        .filter(|r| matches!(r.hv, Some(Cell::Failed(_))) || matches!(r.xen, Some(Cell::Failed(_))))
        .map(|r| r.name.clone())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "rows failed: {} (see the logs in {})",
            failed.join(", "),
            ws.display(&logs)
        )))
    }
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text)
        .map_err(|e| Error::Failed(format!("cannot write {}: {e}", path.display())))
}

fn update_readme(path: &Path, block: &str) -> Result<(), Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Failed(format!("cannot read {}: {e}", path.display())))?;
    let new = replace_between_markers(&text, block).ok_or_else(|| {
        Error::Failed(format!(
            "{} has no {README_BEGIN} ... {README_END} markers",
            path.display()
        ))
    })?;
    write(path, &new)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HV_LOG: &str = "\
(hv) *** domain 0 built ***\r
Test: bench\r
bench-config iterations=1000 repeats=3\r
bench null_hypercall_inline iterations=1000 cycles_per_op=86.00 total=88005 overhead=2005\r
PASS: null_hypercall_inline: 86.00 cycles per operation\r
bench int3_bounce unsupported reason=\"set_trap_table returns -ENOSYS\"\r
bench sched_yield iterations=1000 cycles_per_op=1100.50 total=1 overhead=0\r
bench-end rows=2 unsupported=1\r
Test result: SUCCESS\r
";

    const XEN_LOG: &str = "\
bench null_hypercall_inline iterations=1000 cycles_per_op=275.00 total=277005 overhead=2005
bench int3_bounce iterations=1000 cycles_per_op=651.00 total=653005 overhead=2005
bench sched_yield iterations=1000 cycles_per_op=2023.00 total=2025005 overhead=2005
bench mmu_update_64 failed reason=\"mmu_update returned -EINVAL\"
bench-end rows=3 unsupported=0
Test result: SUCCESS
(XEN) Hardware Dom0 halted: halting machine
";

    #[test]
    fn parses_guest_lines() {
        let r = parse_log(HV_LOG);
        assert!(r.complete);
        assert_eq!(r.result.as_deref(), Some("SUCCESS"));
        assert_eq!(
            r.rows,
            vec![
                ("null_hypercall_inline".into(), Cell::Measured(86.0)),
                (
                    "int3_bounce".into(),
                    Cell::Unsupported("set_trap_table returns -ENOSYS".into())
                ),
                ("sched_yield".into(), Cell::Measured(1100.5)),
            ]
        );
        let x = parse_log(XEN_LOG);
        assert_eq!(
            x.rows[3].1,
            Cell::Failed("mmu_update returned -EINVAL".into())
        );
        assert!(!parse_log("bench-config iterations=1\n").complete);
    }

    #[test]
    fn merges_and_judges_the_goal() {
        let rows = merge(&parse_log(HV_LOG), &parse_log(XEN_LOG));
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "null_hypercall_inline",
                "int3_bounce",
                "sched_yield",
                "mmu_update_64"
            ]
        );
        assert_eq!(rows[0].goal(), Goal::Met);
        assert_eq!(rows[1].goal(), Goal::Missed("unsupported on hv".into()));
        assert_eq!(rows[2].goal(), Goal::Missed("0.54x Xen".into()));
        assert_eq!(rows[3].goal(), Goal::Unknown);
        let table = text_table(&rows, Mode::Icount);
        assert!(table.contains("null_hypercall_inline"));
        assert!(table.lines().nth(2).is_some_and(|l| l.contains("86")
            && l.contains("275")
            && l.contains("0.31")
            && l.ends_with("met")));
        let md = markdown_table(&rows, Mode::Icount);
        assert!(markdown_table(&rows, Mode::Wallclock)
            .contains("| `sched_yield` | 1100.50 | 2023 | 0.54 | - |"));
        assert!(md.contains("| `sched_yield` | 1100.50 | 2023 | 0.54 | missed (0.54x Xen) |"));
    }

    #[test]
    fn json_is_well_formed_one_row_per_line() {
        let rows = merge(&parse_log(HV_LOG), &parse_log(XEN_LOG));
        let info = RunInfo {
            date: "2025-01-01".into(),
            qemu_version: "10.0.2 \"x\"".into(),
            iterations: 1000,
            repeats: 3,
        };
        let j = json(
            &info,
            &[ModeResult {
                mode: Mode::Icount,
                rows,
            }],
        );
        assert!(j.contains("\"qemu\": \"10.0.2 \\\"x\\\"\""));
        assert!(j.contains("\"hv\": {\"per_op\": 86.0}"));
        assert!(j.contains("\"xen\": {\"failed\": \"mmu_update returned -EINVAL\"}"));
        assert!(j.contains(
            "\n        {\"name\": \"sched_yield\", \"hv\": {\"per_op\": 1100.5}, \"xen\": \
             {\"per_op\": 2023.0}, \"ratio\": 0.544, \"goal_met\": false},\n"
        ));
        let parsed: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(parsed["modes"][0]["rows"][3]["hv"], serde_json::Value::Null);
    }

    #[test]
    fn readme_markers() {
        let text = format!("a\n{README_BEGIN}\nold\n{README_END}\nb\n");
        assert_eq!(
            replace_between_markers(&text, "new\n").unwrap(),
            format!("a\n{README_BEGIN}\nnew\n{README_END}\nb\n")
        );
        assert_eq!(replace_between_markers("no markers", "x"), None);
    }

    #[test]
    fn figures_and_cmdline() {
        assert_eq!(figure(280.0), "280");
        assert_eq!(figure(23134.15), "23134.15");
        let opts = Options {
            filter: Some("null,yield".into()),
            iterations: 50,
            repeats: 1,
            wallclock: false,
            update_readme: false,
            timeout_secs: 1,
            build: false,
        };
        assert_eq!(
            guest_cmdline(&opts),
            "iterations=50 repeats=1 filter=null,yield"
        );
        assert_eq!(
            Mode::Icount.qemu_args().join(" "),
            "-cpu max,-x2apic -icount shift=0,sleep=off"
        );
    }
}
