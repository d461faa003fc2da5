//! `cargo xtask conformance-table [--check]`: the README's conformance
//! table, generated. One row per hypercall and sub-operation, saying whether
//! hv implements it, which conformance guests check it, and whether those
//! guests passed on real Xen in the last `cargo xtask test`.
//!
//! Sources, so that no column is written by hand:
//! - the hypercalls: guest-abi's one declarative list
//!   ([`guest_abi::hypercall::ALL`]); their sub-operations: guest-abi's
//!   list next to it ([`guest_abi::hypercall::sub_ops`], Xen's `*OP_*`
//!   command numbers and names, from the public headers);
//! - "on hv": hv's list of what it implements ([`hv::implemented`], which
//!   hv's dispatch table is checked against at compile time and its
//!   dispatcher consults before running a sub-operation); anything else is
//!   `-ENOSYS`;
//! - "conformance guests": each guest's `//! @covers:` metadata
//!   ([`crate::meta`]);
//! - "on Xen": `target/xtask/results.json` ([`crate::results`]).
//!
//! The table sits in README.md between [`BEGIN`] and [`END`]. `--check`
//! (run by `cargo xtask lint`) fails when the README differs from what the
//! sources give, ignoring the "on Xen" column: that one depends on the
//! last local test run, and a lint must not fail because none happened.
//! Unknown names in `@covers` are errors.

use crate::meta::Side;
use crate::results::{CaseResult, Outcome};
use crate::workspace::Workspace;
use crate::Error;
use guest_abi::hypercall::ALL;
use std::collections::BTreeSet;
use std::fmt::Write as _;

pub const BEGIN: &str = "<!-- conformance-table:begin -->";
pub const END: &str = "<!-- conformance-table:end -->";

/// The sub-operation names of hypercall `hypercall`, in Xen's numbering
/// order, if it multiplexes on a command.
fn sub_ops(hypercall: &str) -> Option<Vec<&'static str>> {
    let h = ALL.iter().find(|h| h.name == hypercall)?;
    let ops = guest_abi::hypercall::sub_ops::of(h.nr)?;
    Some(ops.ops.iter().map(|op| op.name).collect())
}

/// Checks `item` (`hypercall` or `hypercall.sub_op`) against the lists: a
/// hypercall with sub-operations must be named with one.
fn check_item(item: &str) -> Result<(), String> {
    let (hc, op) = match item.split_once('.') {
        Some((hc, op)) => (hc, Some(op)),
        None => (item, None),
    };
    if !ALL.iter().any(|h| h.name == hc) {
        return Err(format!("{item}: no hypercall {hc:?}"));
    }
    match (sub_ops(hc), op) {
        (Some(ops), Some(op)) if ops.contains(&op) => Ok(()),
        (Some(_), Some(op)) => Err(format!("{item}: {hc} has no sub-operation {op:?}")),
        (Some(_), None) => Err(format!("{item}: name one of {hc}'s sub-operations")),
        (None, None) => Ok(()),
        (None, Some(_)) => Err(format!("{item}: {hc} has no sub-operations")),
    }
}

/// What hv implements: the dispatched hypercalls, and their implemented
/// sub-operations as `hypercall.sub_op` items.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HvImpl {
    pub dispatched: BTreeSet<String>,
    pub implements: BTreeSet<String>,
}

/// hv's own list of what it implements ([`hv::implemented::IMPLEMENTED`]),
/// named as the table names things.
pub fn hv_impl() -> Result<HvImpl, String> {
    use hv::implemented::{has_sub_op, Support, IMPLEMENTED};
    let mut hv = HvImpl::default();
    for i in IMPLEMENTED {
        let h = guest_abi::hypercall::info(i.hypercall)
            .ok_or_else(|| format!("hv implements unknown hypercall {}", i.hypercall))?;
        hv.dispatched.insert(h.name.to_owned());
        let Support::SubOps(mask) = i.support else {
            continue;
        };
        let ops = guest_abi::hypercall::sub_ops::of(h.nr)
            .ok_or_else(|| format!("hv lists sub-operations of {}, which has none", h.name))?;
        for bit in (0..guest_abi::hypercall::sub_ops::OpMask::BITS).filter(|&b| has_sub_op(mask, b))
        {
            let op = ops
                .get(bit)
                .ok_or_else(|| format!("hv implements unknown {} sub-operation {bit}", h.name))?;
            hv.implements.insert(format!("{}.{}", h.name, op.name));
        }
    }
    Ok(hv)
}

/// A conformance guest as the table sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guest {
    pub name: String,
    pub covers: Vec<String>,
    /// Its cases that run on Xen.
    pub xen_cases: Vec<String>,
}

/// Every guest's `@covers` and cases.
pub fn guests(ws: &Workspace) -> Result<Vec<Guest>, String> {
    let mut binaries =
        crate::conformance::discover(&ws.test_bin_dir()).map_err(|e| e.to_string())?;
    binaries.extend(
        crate::conformance::discover_external(&ws.root.join("tests").join("external"))
            .map_err(|e| e.to_string())?,
    );
    let mut guests = Vec::new();
    for binary in binaries {
        let source = &binary.source;
        let text =
            std::fs::read_to_string(source).map_err(|e| format!("{}: {e}", source.display()))?;
        let cases = crate::meta::parse(&binary.name, &text)
            .map_err(|e| format!("{}: {e}", source.display()))?;
        let covers = cases[0].spec.covers.clone();
        for item in &covers {
            check_item(item).map_err(|e| format!("{}: @covers {e}", source.display()))?;
        }
        guests.push(Guest {
            name: binary.name,
            covers,
            xen_cases: cases
                .iter()
                .filter(|c| c.spec.runs_on(Side::Xen))
                .map(|c| c.name.clone())
                .collect(),
        });
    }
    Ok(guests)
}

/// The "on Xen" cell for the guests that cover a row.
fn xen_cell(covering: &[&Guest], results: &[CaseResult]) -> &'static str {
    if covering.is_empty() {
        return "—";
    }
    let cases: Vec<&String> = covering.iter().flat_map(|g| &g.xen_cases).collect();
    if cases.is_empty() {
        return "hv only";
    }
    let outcomes: Vec<Option<Outcome>> = cases
        .iter()
        .map(|name| {
            results
                .iter()
                .find(|r| &r.name == *name)
                .map(|r| r.xen.outcome)
        })
        .collect();
    if outcomes.contains(&Some(Outcome::Failed)) {
        "**fails**"
    } else if outcomes.iter().all(|o| o.is_some_and(Outcome::passed)) {
        "passes"
    } else {
        "not run"
    }
}

/// The table (without the markers).
pub fn render(hv: &HvImpl, guests: &[Guest], results: &[CaseResult]) -> String {
    let covering = |item: &str| -> Vec<&Guest> {
        guests
            .iter()
            .filter(|g| g.covers.iter().any(|c| c == item))
            .collect()
    };
    let names = |gs: &[&Guest]| -> String {
        if gs.is_empty() {
            "—".to_owned()
        } else {
            gs.iter()
                .map(|g| format!("`{}`", g.name))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut out = String::from(
        "| # | hypercall | sub-operation | on hv | conformance guests | on Xen |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    let mut row = |nr: u64, hc: &str, op: &str, on_hv: &str, gs: &[&Guest]| {
        let _ = writeln!(
            out,
            "| {nr} | {hc} | {op} | {on_hv} | {} | {} |",
            names(gs),
            xen_cell(gs, results)
        );
    };
    for h in ALL {
        let dispatched = hv.dispatched.contains(h.name);
        let Some(ops) = sub_ops(h.name) else {
            let on_hv = if dispatched { "yes" } else { "-ENOSYS" };
            row(h.nr, h.name, "—", on_hv, &covering(h.name));
            continue;
        };
        let items: Vec<String> = ops.iter().map(|op| format!("{}.{op}", h.name)).collect();
        let untouched = items
            .iter()
            .all(|i| !hv.implements.contains(i) && covering(i).is_empty());
        if untouched {
            // Nothing of it on hv and no guest: one row names them all.
            let all = format!("all {}: {}", ops.len(), ops.join(", "));
            row(h.nr, h.name, &all, "-ENOSYS", &[]);
            continue;
        }
        for (op, item) in ops.iter().zip(&items) {
            let on_hv = if hv.implements.contains(item) {
                "yes"
            } else {
                "-ENOSYS"
            };
            row(h.nr, h.name, op, on_hv, &covering(item));
        }
    }
    out
}

/// `readme` with the text between the markers replaced by `table`.
pub fn splice(readme: &str, table: &str) -> Result<String, String> {
    let begin = readme
        .find(BEGIN)
        .ok_or_else(|| format!("README.md has no {BEGIN} marker"))?;
    let end = readme
        .find(END)
        .filter(|&e| e > begin)
        .ok_or_else(|| format!("README.md has no {END} marker after {BEGIN}"))?;
    Ok(format!(
        "{}{BEGIN}\n\n{table}\n{}",
        &readme[..begin],
        &readme[end..]
    ))
}

/// The README with every table row's last cell ("on Xen") blanked.
fn without_xen_column(readme: &str) -> String {
    let mut out = String::new();
    let (mut inside, mut lines) = (false, readme.lines());
    for line in lines.by_ref() {
        if line.contains(BEGIN) {
            inside = true;
        } else if line.contains(END) {
            inside = false;
        }
        if inside && line.starts_with('|') {
            let mut cells: Vec<&str> = line.split('|').collect();
            let n = cells.len();
            if n >= 3 {
                cells[n - 2] = "";
            }
            out.push_str(&cells.join("|"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Whether `current` matches `fresh` apart from the "on Xen" column.
pub fn up_to_date(current: &str, fresh: &str) -> bool {
    without_xen_column(current) == without_xen_column(fresh)
}

pub fn run(ws: &Workspace, check: bool) -> Result<(), Error> {
    let failed = Error::Failed;
    let hv = hv_impl().map_err(failed)?;
    let guests = guests(ws).map_err(Error::Failed)?;
    let results =
        crate::results::load(&crate::conformance::results_path(ws)).map_err(Error::Failed)?;
    let table = render(&hv, &guests, &results);
    let path = ws.root.join("README.md");
    let readme = std::fs::read_to_string(&path)
        .map_err(|e| Error::Failed(format!("cannot read {}: {e}", path.display())))?;
    let fresh = splice(&readme, &table).map_err(Error::Failed)?;
    if check {
        if up_to_date(&readme, &fresh) {
            eprintln!("xtask: the README's conformance table is up to date");
            return Ok(());
        }
        return Err(Error::Failed(
            "the README's conformance table is stale: run `cargo xtask conformance-table`".into(),
        ));
    }
    if fresh != readme {
        std::fs::write(&path, &fresh)
            .map_err(|e| Error::Failed(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("xtask: rewrote the conformance table in README.md");
    } else {
        eprintln!("xtask: the README's conformance table was already up to date");
    }
    if results.is_empty() {
        eprintln!("xtask: no target/xtask/results.json yet: the \"on Xen\" column says `not run`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::SideResult;

    #[test]
    fn items_are_checked() {
        assert_eq!(check_item("console_io.write"), Ok(()));
        assert_eq!(check_item("set_trap_table"), Ok(()));
        assert!(check_item("console_io").unwrap_err().contains("name one"));
        assert!(check_item("console_io.wirte")
            .unwrap_err()
            .contains("no sub-operation"));
        assert!(check_item("set_trap_table.x")
            .unwrap_err()
            .contains("no sub-operations"));
        assert!(check_item("frobnicate")
            .unwrap_err()
            .contains("no hypercall"));
    }

    #[test]
    fn reads_hvs_list() {
        let hv = hv_impl().unwrap();
        assert!(hv.dispatched.contains("console_io"));
        assert!(hv.implements.contains("xen_version.version"));
        assert!(!hv.dispatched.contains("tmem_op"));
        for item in &hv.implements {
            check_item(item).unwrap();
        }
    }

    fn fixture() -> (HvImpl, Vec<Guest>) {
        let hv = HvImpl {
            dispatched: ["console_io", "iret"].map(String::from).into(),
            implements: ["console_io.write"].map(String::from).into(),
        };
        let guests = vec![
            Guest {
                name: "console".into(),
                covers: vec!["console_io.write".into(), "console_io.read".into()],
                xen_cases: vec!["console".into(), "console/v".into()],
            },
            Guest {
                name: "hv_fault".into(),
                covers: vec!["iret".into()],
                xen_cases: vec![],
            },
        ];
        (hv, guests)
    }

    #[test]
    fn renders_rows() {
        let (hv, guests) = fixture();
        let ok = |name: &str, xen: Outcome| CaseResult {
            name: name.into(),
            hv: SideResult::not_run(""),
            xen: SideResult {
                outcome: xen,
                secs: Some(1.0),
                why: String::new(),
            },
        };
        let results = [ok("console", Outcome::Ok), ok("console/v", Outcome::Skip)];
        let table = render(&hv, &guests, &results);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(
            rows[0],
            "| # | hypercall | sub-operation | on hv | conformance guests | on Xen |"
        );
        assert!(rows.contains(&"| 0 | set_trap_table | — | -ENOSYS | — | — |"));
        assert!(rows.contains(&"| 18 | console_io | write | yes | `console` | passes |"));
        assert!(rows.contains(&"| 18 | console_io | read | -ENOSYS | `console` | passes |"));
        assert!(rows.contains(&"| 23 | iret | — | yes | `hv_fault` | hv only |"));
        assert!(rows.contains(
            &"| 28 | nmi_op | all 2: register_callback, unregister_callback | -ENOSYS | — | — |"
        ));
        assert!(rows
            .iter()
            .any(|r| r.starts_with("| 29 | sched_op | all 8: yield, block, shutdown,")));
        assert_eq!(rows.len(), 2 + ALL.len() + 1, "console_io has two rows");

        let table = render(&hv, &guests, &[ok("console", Outcome::Failed)]);
        assert!(table.contains("| console_io | write | yes | `console` | **fails** |"));
        let table = render(&hv, &guests, &[ok("console", Outcome::Ok)]);
        assert!(table.contains("| console_io | write | yes | `console` | not run |"));
    }

    #[test]
    fn splices_and_checks_ignoring_the_xen_column() {
        let readme = format!("# T\n\n{BEGIN}\nold\n{END}\n\nafter\n");
        let fresh = splice(&readme, "| a | b |\n").unwrap();
        assert_eq!(
            fresh,
            format!("# T\n\n{BEGIN}\n\n| a | b |\n\n{END}\n\nafter\n")
        );
        assert_eq!(splice(&fresh, "| a | b |\n").unwrap(), fresh);
        assert!(!up_to_date(&readme, &fresh));
        let other_xen = fresh.replace("| b |", "| c |");
        assert!(up_to_date(&other_xen, &fresh));
        let other_first = fresh.replace("| a |", "| z |");
        assert!(!up_to_date(&other_first, &fresh));
        assert!(splice("no markers", "x").is_err());
        assert!(splice(&format!("{END}{BEGIN}"), "x").is_err());
    }

    /// The repository's own `@covers` lines name real hypercalls and
    /// sub-operations, and the README has the markers.
    #[test]
    fn repository_metadata_is_consistent() {
        let ws = Workspace::detect();
        let hv = hv_impl().unwrap();
        let guests = guests(&ws).unwrap();
        assert!(guests.iter().any(|g| !g.covers.is_empty()));
        let readme = std::fs::read_to_string(ws.root.join("README.md")).unwrap();
        splice(&readme, &render(&hv, &guests, &[])).unwrap();
    }
}
