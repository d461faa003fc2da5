//! `target/xtask/results.json`: what the last `cargo xtask test` saw, per
//! conformance case and side (hv, Xen), for the README's conformance table
//! ([`crate::conformance_table`]) and for other tools.
//!
//! Written by hand (xtask takes no JSON crate): one object per case, one
//! case per line, so the file also reads well in a diff.
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
use std::fmt::Write as _;

/// How one side of one case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Passed with a SKIP result line.
    Skip,
    Failed,
    /// Not meant for this side (`@only`).
    Skipped,
    /// This side was not selected or is not available.
    NotRun,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Skip => "skip",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::NotRun => "not run",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Outcome::Ok,
            Outcome::Skip,
            Outcome::Failed,
            Outcome::Skipped,
            Outcome::NotRun,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }

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

/// `s` as a JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The file's text for `cases`.
pub fn to_json(cases: &[CaseResult]) -> String {
    let mut out = String::from("{\n  \"format\": 1,\n  \"cases\": [\n");
    for (i, case) in cases.iter().enumerate() {
        let _ = write!(out, "    {{\"name\": {}", quote(&case.name));
        for side in Side::BOTH {
            let r = case.side(side);
            let n = side.name();
            let _ = write!(out, ", \"{n}\": {}", quote(r.outcome.as_str()));
            if let Some(secs) = r.secs {
                let _ = write!(out, ", \"{n}_secs\": {secs:.1}");
            }
            let _ = write!(out, ", \"{n}_why\": {}", quote(&r.why));
        }
        out.push('}');
        if i + 1 < cases.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("  ]\n}\n");
    out
}

/// A JSON value of a flat case object.
#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Num(f64),
}

/// Parses one flat object `{"k": "v", "n": 1.5}` (strings and numbers only).
fn parse_object(text: &str) -> Result<Vec<(String, Value)>, String> {
    let mut chars = text.trim().chars().peekable();
    let mut fields = Vec::new();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
    };
    let string = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Result<String, String> {
        if chars.next() != Some('"') {
            return Err("expected a string".into());
        }
        let mut s = String::new();
        loop {
            match chars.next().ok_or("unterminated string")? {
                '"' => return Ok(s),
                '\\' => match chars.next().ok_or("unterminated escape")? {
                    'n' => s.push('\n'),
                    'r' => s.push('\r'),
                    't' => s.push('\t'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let code = u32::from_str_radix(&hex, 16).map_err(|_| "bad \\u escape")?;
                        s.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    c @ ('"' | '\\' | '/') => s.push(c),
                    c => return Err(format!("unknown escape \\{c}")),
                },
                c => s.push(c),
            }
        }
    };
    if chars.next() != Some('{') {
        return Err("expected `{`".into());
    }
    loop {
        skip_ws(&mut chars);
        if chars.next_if_eq(&'}').is_some() {
            break;
        }
        let key = string(&mut chars)?;
        skip_ws(&mut chars);
        if chars.next() != Some(':') {
            return Err(format!("expected `:` after {key:?}"));
        }
        skip_ws(&mut chars);
        let value = if chars.peek() == Some(&'"') {
            Value::Str(string(&mut chars)?)
        } else {
            let mut num = String::new();
            while let Some(c) = chars.next_if(|c| c.is_ascii_digit() || "+-.eE".contains(*c)) {
                num.push(c);
            }
            Value::Num(num.parse().map_err(|_| format!("bad value for {key:?}"))?)
        };
        fields.push((key, value));
        skip_ws(&mut chars);
        match chars.next() {
            Some(',') => {}
            Some('}') => break,
            _ => return Err("expected `,` or `}`".into()),
        }
    }
    Ok(fields)
}

/// Reads the cases back from [`to_json`]'s output.
pub fn from_json(text: &str) -> Result<Vec<CaseResult>, String> {
    let mut cases = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim().trim_end_matches(',');
        if !line.starts_with("{\"name\"") {
            continue;
        }
        let err = |m: String| format!("line {}: {m}", index + 1);
        let fields = parse_object(line).map_err(err)?;
        let text_of = |key: &str| {
            fields.iter().find_map(|(k, v)| match v {
                Value::Str(s) if k == key => Some(s.clone()),
                _ => None,
            })
        };
        let side = |side: Side| -> Result<SideResult, String> {
            let n = side.name();
            let outcome = text_of(n)
                .and_then(|s| Outcome::parse(&s))
                .ok_or_else(|| err(format!("no valid \"{n}\"")))?;
            let secs = fields.iter().find_map(|(k, v)| match v {
                Value::Num(x) if *k == format!("{n}_secs") => Some(*x),
                _ => None,
            });
            Ok(SideResult {
                outcome,
                secs,
                why: text_of(&format!("{n}_why")).unwrap_or_default(),
            })
        };
        cases.push(CaseResult {
            name: text_of("name").ok_or_else(|| err("no name".into()))?,
            hv: side(Side::Hv)?,
            xen: side(Side::Xen)?,
        });
    }
    Ok(cases)
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
