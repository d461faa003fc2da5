//! `cargo xtask conformance-table [--check]`: the README's conformance
//! table, generated. One row per hypercall and sub-operation, saying whether
//! hv implements it, which conformance guests check it, and whether those
//! guests passed on real Xen in the last `cargo xtask test`.
//!
//! Sources, so that no column is written by hand:
//! - the hypercalls: guest-abi's one declarative list
//!   ([`guest_abi::hypercall::ALL`]); their sub-operations: [`SUB_OPS`]
//!   below (Xen's `*OP_*` command names, from the public headers);
//! - "on hv": hv's dispatch table (`t[nr::NAME as usize] = ...` lines in
//!   `hv/src/hypercall/mod.rs`) and, for sub-operations, the
//!   `//! @implements: hypercall.sub_op ...` lines of the files in
//!   `hv/src/hypercall/`; anything else is `-ENOSYS`;
//! - "conformance guests": each guest's `//! @covers:` metadata
//!   ([`crate::meta`]);
//! - "on Xen": `target/xtask/results.json` ([`crate::results`]).
//!
//! The table sits in README.md between [`BEGIN`] and [`END`]. `--check`
//! (run by `cargo xtask lint`) fails when the README differs from what the
//! sources give, ignoring the "on Xen" column: that one depends on the
//! last local test run, and a lint must not fail because none happened.
//! Unknown names in `@implements` or `@covers` are errors, and so is a
//! hypercall hv dispatches without saying which of its sub-operations it
//! implements.

use crate::meta::Side;
use crate::results::{CaseResult, Outcome};
use crate::workspace::Workspace;
use crate::Error;
use guest_abi::hypercall::ALL;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

pub const BEGIN: &str = "<!-- conformance-table:begin -->";
pub const END: &str = "<!-- conformance-table:end -->";

/// The sub-operations of the hypercalls that multiplex on a command, in
/// Xen's numbering order, named as in the public headers without their
/// prefix (`XENVER_`, `SCHEDOP_`, `XENMEM_`, `MMUEXT_`, `EVTCHNOP_`,
/// `GNTTABOP_`, `VCPUOP_`, `XENNMI_`, `PHYSDEVOP_`, `CALLBACKOP_`). Numbers
/// Xen retired (e.g. `XENMEM_translate_gpfn_list`) are left out.
pub const SUB_OPS: &[(&str, &[&str])] = &[
    ("sched_op_compat", &["yield", "block", "shutdown"]),
    (
        "mmu_update",
        &[
            "normal_pt_update",
            "machphys_update",
            "pt_update_preserve_ad",
            "pt_update_no_translate",
        ],
    ),
    (
        "memory_op",
        &[
            "increase_reservation",
            "decrease_reservation",
            "maximum_ram_page",
            "current_reservation",
            "maximum_reservation",
            "machphys_mfn_list",
            "populate_physmap",
            "add_to_physmap",
            "memory_map",
            "machine_memory_map",
            "exchange",
            "machphys_mapping",
            "set_memory_map",
            "maximum_gpfn",
            "remove_from_physmap",
            "set_pod_target",
            "get_pod_target",
            "get_sharing_freed_pages",
            "get_sharing_shared_pages",
            "paging_op",
            "access_op",
            "sharing_op",
            "add_to_physmap_batch",
            "claim_pages",
            "machphys_compat_mfn_list",
            "get_vnumainfo",
            "reserved_device_memory_map",
            "acquire_resource",
        ],
    ),
    (
        "xen_version",
        &[
            "version",
            "extraversion",
            "compile_info",
            "capabilities",
            "changeset",
            "platform_parameters",
            "get_features",
            "pagesize",
            "guest_handle",
            "commandline",
            "build_id",
        ],
    ),
    ("console_io", &["write", "read"]),
    (
        "grant_table_op",
        &[
            "map_grant_ref",
            "unmap_grant_ref",
            "setup_table",
            "dump_table",
            "transfer",
            "copy",
            "query_size",
            "unmap_and_replace",
            "set_version",
            "get_status_frames",
            "get_version",
            "swap_grant_ref",
            "cache_flush",
        ],
    ),
    ("vm_assist", &["enable", "disable"]),
    (
        "vcpu_op",
        &[
            "initialise",
            "up",
            "down",
            "is_up",
            "get_runstate_info",
            "register_runstate_memory_area",
            "set_periodic_timer",
            "stop_periodic_timer",
            "set_singleshot_timer",
            "stop_singleshot_timer",
            "register_vcpu_info",
            "send_nmi",
            "get_physid",
            "register_vcpu_time_memory_area",
        ],
    ),
    (
        "mmuext_op",
        &[
            "pin_l1_table",
            "pin_l2_table",
            "pin_l3_table",
            "pin_l4_table",
            "unpin_table",
            "new_baseptr",
            "tlb_flush_local",
            "invlpg_local",
            "tlb_flush_multi",
            "invlpg_multi",
            "tlb_flush_all",
            "invlpg_all",
            "flush_cache",
            "set_ldt",
            "new_user_baseptr",
            "clear_page",
            "copy_page",
            "flush_cache_global",
            "mark_super",
            "unmark_super",
        ],
    ),
    ("nmi_op", &["register_callback", "unregister_callback"]),
    (
        "sched_op",
        &[
            "yield",
            "block",
            "shutdown",
            "poll",
            "remote_shutdown",
            "shutdown_code",
            "watchdog",
            "pin_override",
        ],
    ),
    ("callback_op", &["register", "unregister"]),
    (
        "event_channel_op",
        &[
            "bind_interdomain",
            "bind_virq",
            "bind_pirq",
            "close",
            "send",
            "status",
            "alloc_unbound",
            "bind_ipi",
            "bind_vcpu",
            "unmask",
            "reset",
            "init_control",
            "expand_array",
            "set_priority",
            "reset_cont",
        ],
    ),
    (
        "physdev_op",
        &[
            "irq_status_query",
            "set_iopl",
            "set_iobitmap",
            "apic_read",
            "apic_write",
            "alloc_irq_vector",
            "free_irq_vector",
            "eoi",
            "map_pirq",
            "unmap_pirq",
            "manage_pci_add",
            "manage_pci_remove",
            "pirq_eoi_gmfn_v1",
            "restore_msi",
            "manage_pci_add_ext",
            "setup_gsi",
            "get_free_pirq",
            "pci_mmcfg_reserved",
            "pci_device_add",
            "pci_device_remove",
            "restore_msi_ext",
            "pirq_eoi_gmfn_v2",
            "dbgp_op",
            "prepare_msix",
            "release_msix",
        ],
    ),
];

fn sub_ops(hypercall: &str) -> Option<&'static [&'static str]> {
    SUB_OPS
        .iter()
        .find(|(name, _)| *name == hypercall)
        .map(|(_, ops)| *ops)
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

/// What hv implements: the dispatched hypercalls, and the `@implements`
/// items of its hypercall files.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HvImpl {
    pub dispatched: BTreeSet<String>,
    pub implements: BTreeSet<String>,
}

/// Reads `t[nr::NAME as usize] = handler;` lines of the dispatch table.
pub fn parse_dispatch(mod_rs: &str) -> BTreeSet<String> {
    mod_rs
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("t[nr::")?;
            let (name, rest) = rest.split_once(' ')?;
            rest.starts_with("as usize]")
                .then(|| name.to_ascii_lowercase())
        })
        .collect()
}

/// The items of `//! @<key>: a b c` lines.
fn doc_items<'a>(source: &'a str, key: &str) -> Vec<&'a str> {
    let tag = format!("@{key}:");
    source
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("//!")?
                .trim()
                .strip_prefix(tag.as_str())
        })
        .flat_map(str::split_whitespace)
        .collect()
}

/// Reads hv's dispatch table and `@implements` lines, checking them.
pub fn hv_impl(hypercall_dir: &Path) -> Result<HvImpl, String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut hv = HvImpl {
        dispatched: parse_dispatch(&read(&hypercall_dir.join("mod.rs"))?),
        ..HvImpl::default()
    };
    let mut files: Vec<_> = std::fs::read_dir(hypercall_dir)
        .map_err(|e| format!("{}: {e}", hypercall_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    for file in files {
        for item in doc_items(&read(&file)?, "implements") {
            check_item(item).map_err(|e| format!("{}: @implements {e}", file.display()))?;
            let hc = item.split('.').next().unwrap_or(item);
            if !hv.dispatched.contains(hc) {
                return Err(format!(
                    "{}: @implements {item}, but hv's dispatch table has no {hc}",
                    file.display()
                ));
            }
            hv.implements.insert(item.to_owned());
        }
    }
    for hc in &hv.dispatched {
        if sub_ops(hc).is_some()
            && !hv
                .implements
                .iter()
                .any(|i| i.starts_with(&format!("{hc}.")))
        {
            return Err(format!(
                "hv dispatches {hc} but no `//! @implements: {hc}.<sub-op>` line says what it implements"
            ));
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
    let hv = hv_impl(&ws.root.join("hv").join("src").join("hypercall")).map_err(failed)?;
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
    fn sub_op_lists_name_real_hypercalls() {
        let mut seen = BTreeSet::new();
        for (hc, ops) in SUB_OPS {
            assert!(ALL.iter().any(|h| h.name == *hc), "{hc}");
            assert!(seen.insert(*hc), "{hc} twice");
            let unique: BTreeSet<_> = ops.iter().collect();
            assert_eq!(unique.len(), ops.len(), "{hc}");
        }
    }

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
    fn reads_the_dispatch_table() {
        let src =
            "    let mut t = [enosys; 64];\n    t[nr::XEN_VERSION as usize] = hc_xen_version;\n\
                   t[nr::SCHED_OP_COMPAT as usize] = hc;\n    t[i] = x;\n";
        let got: Vec<String> = parse_dispatch(src).into_iter().collect();
        assert_eq!(got, ["sched_op_compat", "xen_version"]);
        assert_eq!(
            doc_items(
                "//! text\n//! @implements: a.b c\n//!   @implements: d\nfn x() {}\n",
                "implements"
            ),
            ["a.b", "c", "d"]
        );
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

    /// The repository's own `@implements` and `@covers` lines name real
    /// hypercalls and sub-operations, and the README has the markers.
    #[test]
    fn repository_metadata_is_consistent() {
        let ws = Workspace::detect();
        let hv = hv_impl(&ws.root.join("hv").join("src").join("hypercall")).unwrap();
        assert!(hv.dispatched.contains("console_io"));
        let guests = guests(&ws).unwrap();
        assert!(guests.iter().any(|g| !g.covers.is_empty()));
        let readme = std::fs::read_to_string(ws.root.join("README.md")).unwrap();
        splice(&readme, &render(&hv, &guests, &[])).unwrap();
    }
}
