//! `target/xtask/results.json`: what the last `cargo xtask test` saw, per
//! conformance case and side (hv, Xen), for the README's conformance table
//! ([`crate::conformance_table`]) and for other tools.
//!
//! Written with `serde_json` in a fixed layout ([`crate::json`]): one object
//! per case, one case per line, so the file also reads well in a diff.
//!
//! ```text
//! {
//!   "format": 1,
//!   "cases": [
//!     {"name": "shutdown/crash", "hv": "ok", "hv_secs": 1.9, "hv_why": "", "xen": "ok", "xen_secs": 4.2, "xen_why": ""}
//!   ]
//! }
//! ```
//!
//! A side's result is `ok`, `skip` (the guest reported SKIP), `failed`,
//! `skipped` (the case is `@only` the other side) or `not run` (side not
//! selected or not available); `*_why` says why for the last three, and
//! `*_secs` is present when the side ran. A run with `--filter` updates the
//! cases it ran and keeps the others from the previous file.

use crate::meta::Side;
use serde::{Deserialize, Serialize};

/// How one side of one case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Passed with a SKIP result line.
    Skip,
    Failed,
    /// Not meant for this side (`@only`).
    Skipped,
    /// This side was not selected or is not available.
    #[serde(rename = "not run")]
    NotRun,
    /// Ran and failed as expected: a system test hv cannot pass yet (the
    /// Linux boot), reported with how far it got and not counted.
    #[serde(rename = "known failing")]
    KnownFailing,
}

impl Outcome {
    /// Whether the side passed (a reported SKIP passes).
    pub fn passed(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Skip)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SideResult {
    pub outcome: Outcome,
    /// Seconds the run took, when it ran.
    pub secs: Option<f64>,
    /// Why it failed, or was skipped or not run.
    pub why: String,
}

impl SideResult {
    pub fn not_run(why: &str) -> Self {
        Self {
            outcome: Outcome::NotRun,
            secs: None,
            why: why.to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CaseResult {
    pub name: String,
    pub hv: SideResult,
    pub xen: SideResult,
}

impl CaseResult {
    pub fn side(&self, side: Side) -> &SideResult {
        match side {
            Side::Hv => &self.hv,
            Side::Xen => &self.xen,
        }
    }
}

/// The file as a whole.
#[derive(Serialize, Deserialize)]
struct ResultsFile {
    format: u32,
    cases: Vec<CaseRecord>,
}

/// One case as the file holds it: both sides flattened into `hv*`/`xen*`.
#[derive(Serialize, Deserialize)]
struct CaseRecord {
    name: String,
    hv: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hv_secs: Option<f64>,
    #[serde(default)]
    hv_why: String,
    xen: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xen_secs: Option<f64>,
    #[serde(default)]
    xen_why: String,
}

impl From<&CaseResult> for CaseRecord {
    fn from(case: &CaseResult) -> Self {
        // Timings to a tenth of a second: more would be noise in a diff.
        let secs = |r: &SideResult| r.secs.map(|s| crate::json::rounded(s, 1));
        Self {
            name: case.name.clone(),
            hv: case.hv.outcome,
            hv_secs: secs(&case.hv),
            hv_why: case.hv.why.clone(),
            xen: case.xen.outcome,
            xen_secs: secs(&case.xen),
            xen_why: case.xen.why.clone(),
        }
    }
}

impl From<CaseRecord> for CaseResult {
    fn from(r: CaseRecord) -> Self {
        let side = |outcome, secs, why| SideResult { outcome, secs, why };
        Self {
            name: r.name,
            hv: side(r.hv, r.hv_secs, r.hv_why),
            xen: side(r.xen, r.xen_secs, r.xen_why),
        }
    }
}

/// The file's text for `cases`.
pub fn to_json(cases: &[CaseResult]) -> String {
    let file = ResultsFile {
        format: 1,
        cases: cases.iter().map(CaseRecord::from).collect(),
    };
    crate::json::to_string(&file, 2)
}

/// Reads the cases back from [`to_json`]'s output (an empty text has none).
pub fn from_json(text: &str) -> Result<Vec<CaseResult>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let file: ResultsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(file.cases.into_iter().map(CaseResult::from).collect())
}

/// Reads `path`: no file is no results; a file that does not parse is an
/// error.
pub fn load(path: &std::path::Path) -> Result<Vec<CaseResult>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => from_json(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// This run's results over the previous file's, in `order` (every case
/// there is): a case or a side not run now (`--filter`, `--hv-only`,
/// `--xen-only`) keeps its previous result.
pub fn merge(previous: Vec<CaseResult>, now: Vec<CaseResult>, order: &[&str]) -> Vec<CaseResult> {
    let mut merged = Vec::new();
    for name in order {
        let old = previous.iter().find(|c| c.name == *name);
        let new = now.iter().find(|c| c.name == *name);
        let case = match (old, new) {
            (_, None) => old.cloned(),
            (None, Some(new)) => Some(new.clone()),
            (Some(old), Some(new)) => {
                let pick = |side: Side| {
                    let r = new.side(side);
                    if r.outcome == Outcome::NotRun {
                        old.side(side).clone()
                    } else {
                        r.clone()
                    }
                };
                Some(CaseResult {
                    name: new.name.clone(),
                    hv: pick(Side::Hv),
                    xen: pick(Side::Xen),
                })
            }
        };
        merged.extend(case);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<CaseResult> {
        vec![
            CaseResult {
                name: "shutdown/crash".into(),
                hv: SideResult {
                    outcome: Outcome::Ok,
                    secs: Some(1.25),
                    why: String::new(),
                },
                xen: SideResult {
                    outcome: Outcome::Failed,
                    secs: Some(4.0),
                    why: "missing line `a \"q\" \\ b`\ttab\u{1}".into(),
                },
            },
            CaseResult {
                name: "hv_fault".into(),
                hv: SideResult {
                    outcome: Outcome::Skip,
                    secs: Some(0.5),
                    why: String::new(),
                },
                xen: SideResult {
                    outcome: Outcome::Skipped,
                    secs: None,
                    why: "hv only: no selftest on Xen".into(),
                },
            },
        ]
    }

    #[test]
    fn writes_one_line_per_case() {
        let text = to_json(&sample()[1..]);
        assert_eq!(
            text,
            "{\n  \"format\": 1,\n  \"cases\": [\n    {\"name\": \"hv_fault\", \"hv\": \"skip\", \
             \"hv_secs\": 0.5, \"hv_why\": \"\", \"xen\": \"skipped\", \"xen_why\": \
             \"hv only: no selftest on Xen\"}\n  ]\n}\n"
        );
        assert!(
            to_json(&sample()).contains(r#""xen_why": "missing line `a \"q\" \\ b`\ttab\u0001"}"#)
        );
        assert_eq!(
            to_json(&[]),
            "{\n  \"format\": 1,\n  \"cases\": [\n  ]\n}\n"
        );
    }

    #[test]
    fn reads_back_what_it_wrote() {
        let mut cases = sample();
        cases[0].hv.secs = Some(1.3); // written with one decimal
        assert_eq!(from_json(&to_json(&cases)).unwrap(), cases);
        assert!(from_json("").unwrap().is_empty());
        assert!(from_json("{\"name\": \"x\", \"hv\": \"maybe\"}").is_err());
        assert!(from_json("{\"name\": \"x\", \"hv\": \"ok\"").is_err());
    }

    #[test]
    fn merges_by_plan_order() {
        let old = sample();
        let mut now = vec![old[1].clone(), old[0].clone()];
        now[0].hv.outcome = Outcome::Failed;
        now[1].hv = SideResult::not_run("");
        now[1].xen.outcome = Outcome::Ok;
        let merged = merge(old.clone(), now, &["hv_fault", "new", "shutdown/crash"]);
        let names: Vec<&str> = merged.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["hv_fault", "shutdown/crash"]);
        assert_eq!(merged[0].hv.outcome, Outcome::Failed);
        assert_eq!(merged[1].hv, old[0].hv, "hv not run now: kept");
        assert_eq!(merged[1].xen.outcome, Outcome::Ok);
        let kept = merge(old.clone(), Vec::new(), &["shutdown/crash"]);
        assert_eq!(kept, [old[0].clone()]);
        assert!(merge(old, Vec::new(), &[]).is_empty());
    }
}
