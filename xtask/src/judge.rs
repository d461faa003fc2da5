//! Deciding whether one conformance run passed, from its serial log and how
//! QEMU ended. Silence is a crash: a run passes only on positive evidence.
//!
//! A result line is any log line containing `Test result: ` followed by
//! `SUCCESS`, `SKIP`, `ERROR` or `FAILURE` (hv or Xen may prefix guest
//! output). Exactly one is allowed.

use crate::meta::{ExpectResult, RunSpec};
use crate::qemu::Ending;

/// Which hypervisor ran the guest: how its shutdown is observed differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// `hv`: QEMU's exit status encodes the shutdown (see [`crate::qemu`]).
    /// Expected lines starting with `(hv)` are checked only here, those
    /// starting with `(XEN)` only on Xen.
    Hv,
    /// Real Xen: its console says how dom0 shut down ([`crate::xen`]).
    Xen,
}

impl Host {
    /// Whether an expected line applies on this host: one starting with
    /// `(hv)` is hv's own message and one starting with `(XEN)` is Xen's,
    /// so each is checked only where it can appear; other lines (the
    /// guest's) are checked on both.
    fn checks_line(self, line: &str) -> bool {
        match self {
            Host::Hv => !line.starts_with("(XEN)"),
            Host::Xen => !line.starts_with("(hv)"),
        }
    }
}

const RESULT_MARK: &str = "Test result: ";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported {
    Success,
    Skip,
    Error,
    Failure,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass { skipped: bool },
    Fail(String),
}

/// The result lines of a log, in order; an unknown word is an error.
fn result_lines(log: &str) -> Result<Vec<Reported>, String> {
    log.lines()
        .filter_map(|line| line.split_once(RESULT_MARK).map(|(_, rest)| rest))
        .map(|rest| match rest.split_whitespace().next().unwrap_or("") {
            "SUCCESS" => Ok(Reported::Success),
            "SKIP" => Ok(Reported::Skip),
            "ERROR" => Ok(Reported::Error),
            "FAILURE" => Ok(Reported::Failure),
            other => Err(format!("malformed result line `Test result: {other}`")),
        })
        .collect()
}

pub fn judge(spec: &RunSpec, log: &str, ending: Ending, host: Host) -> Verdict {
    let mut problems = Vec::new();
    if let Ending::TimedOut(_) = ending {
        problems.push(format!("{ending}: counted as a crash"));
    }

    let mut skipped = false;
    match result_lines(log) {
        Err(e) => problems.push(e),
        Ok(results) if results.len() > 1 => {
            problems.push(format!("{} result lines, expected one", results.len()))
        }
        Ok(results) => {
            let got = results.first().copied();
            skipped = got == Some(Reported::Skip);
            let ok = match spec.expect_result {
                ExpectResult::Success => matches!(got, Some(Reported::Success | Reported::Skip)),
                ExpectResult::Skip => got == Some(Reported::Skip),
                ExpectResult::Error => got == Some(Reported::Error),
                ExpectResult::Failure => {
                    matches!(got, None | Some(Reported::Failure | Reported::Error))
                }
                ExpectResult::Nothing => got.is_none(),
            };
            if !ok {
                problems.push(match got {
                    None => "no result line (crash)".to_owned(),
                    Some(r) => format!("guest reported {}", format!("{r:?}").to_uppercase()),
                });
            }
        }
    }

    let expected = spec.expect_exit;
    match (host, ending) {
        (_, Ending::TimedOut(_)) => {}
        (Host::Hv, _) => {
            if ending != Ending::Exited(expected.status()) {
                problems.push(format!("{ending}, expected {}", expected.name()));
            }
        }
        (Host::Xen, Ending::Exited(0) | Ending::StoppedOnLine) => {
            match crate::xen::shutdown_from_log(log) {
                Some(seen) if seen == expected => {}
                Some(seen) => problems.push(format!(
                    "Xen reports {}, expected {}",
                    seen.name(),
                    expected.name()
                )),
                None => problems.push(format!(
                    "no shutdown message from Xen, expected {}",
                    expected.name()
                )),
            }
        }
        (Host::Xen, _) => problems.push(format!(
            "{ending}, expected Xen to report {}",
            expected.name()
        )),
    }

    let checked = spec.expect_lines.iter().filter(|l| host.checks_line(l));
    for wanted in checked {
        if !log.lines().any(|line| line.contains(wanted.as_str())) {
            problems.push(format!("missing line `{wanted}`"));
        }
    }

    let rejected = spec
        .reject_lines
        .iter()
        .filter(|l| host == Host::Hv || !l.starts_with("(hv)"));
    for unwanted in rejected {
        if log.lines().any(|line| line.contains(unwanted.as_str())) {
            problems.push(format!("unexpected line `{unwanted}`"));
        }
    }

    for (most, text) in &spec.max_lines {
        let n = log
            .lines()
            .filter(|line| line.contains(text.as_str()))
            .count();
        if n > *most {
            problems.push(format!(
                "{n} lines contain `{text}`, at most {most} allowed"
            ));
        }
    }

    if problems.is_empty() {
        Verdict::Pass { skipped }
    } else {
        Verdict::Fail(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::Shutdown;

    fn on_hv(spec: &RunSpec, log: &str, ending: Ending) -> Verdict {
        judge(spec, log, ending, Host::Hv)
    }

    #[test]
    fn xen_shutdown_comes_from_its_console() {
        let spec = RunSpec {
            expect_lines: vec!["(hv) only on hv".into(), "Freed".into()],
            ..RunSpec::default()
        };
        let log = "(XEN) Freed 656kB init memory\nTest result: SUCCESS\n(XEN) Hardware Dom0 halted: halting machine\n";
        assert_eq!(
            judge(&spec, log, Ending::StoppedOnLine, Host::Xen),
            Verdict::Pass { skipped: false }
        );
        assert_eq!(
            fail(judge(&spec, log, Ending::StoppedOnLine, Host::Hv)),
            "stopped after the final line, expected poweroff; missing line `(hv) only on hv`"
        );
        let reboot = RunSpec {
            expect_exit: Shutdown::Reboot,
            ..RunSpec::default()
        };
        assert_eq!(
            fail(judge(&reboot, log, Ending::StoppedOnLine, Host::Xen)),
            "Xen reports poweroff, expected reboot"
        );
        assert_eq!(
            fail(judge(
                &reboot,
                "Test result: SUCCESS\n",
                Ending::Exited(0),
                Host::Xen
            )),
            "no shutdown message from Xen, expected reboot"
        );
        assert!(fail(judge(&reboot, log, Ending::Exited(1), Host::Xen)).starts_with("QEMU failed"));
    }

    #[test]
    fn host_specific_expected_lines() {
        let spec = RunSpec {
            expect_lines: vec![
                "(hv) domain 0 shut down: poweroff".into(),
                "(XEN) Hardware Dom0 halted: halting machine".into(),
                "Test: x".into(),
            ],
            ..RunSpec::default()
        };
        let hv_log =
            "Test: x\nTest result: SUCCESS\n(hv) domain 0 shut down: poweroff (reason 0)\n";
        let xen_log =
            "Test: x\nTest result: SUCCESS\n(XEN) Hardware Dom0 halted: halting machine\n";
        assert_eq!(
            judge(&spec, hv_log, Ending::Exited(0), Host::Hv),
            Verdict::Pass { skipped: false }
        );
        assert_eq!(
            judge(&spec, xen_log, Ending::StoppedOnLine, Host::Xen),
            Verdict::Pass { skipped: false }
        );
        assert_eq!(
            fail(judge(
                &spec,
                "Test result: SUCCESS\n",
                Ending::Exited(0),
                Host::Hv
            )),
            "missing line `(hv) domain 0 shut down: poweroff`; missing line `Test: x`"
        );
        assert_eq!(
            fail(judge(&spec, hv_log, Ending::StoppedOnLine, Host::Xen)),
            "no shutdown message from Xen, expected poweroff; \
             missing line `(XEN) Hardware Dom0 halted: halting machine`"
        );
    }

    fn fail(v: Verdict) -> String {
        match v {
            Verdict::Fail(why) => why,
            Verdict::Pass { .. } => panic!("expected a failure"),
        }
    }

    #[test]
    fn success_needs_line_and_status() {
        let spec = RunSpec::default();
        let log = "booting\r\nok 1 - version\r\nTest result: SUCCESS\r\n";
        assert_eq!(
            on_hv(&spec, log, Ending::Exited(0)),
            Verdict::Pass { skipped: false }
        );
        assert_eq!(
            on_hv(&spec, "(d0) Test result: SKIP\n", Ending::Exited(0)),
            Verdict::Pass { skipped: true }
        );
        assert_eq!(
            fail(on_hv(&spec, "booting\n", Ending::Exited(0))),
            "no result line (crash)"
        );
        assert_eq!(
            fail(on_hv(&spec, log, Ending::Exited(65))),
            "hv panicked (status 65), expected poweroff"
        );
        assert!(fail(on_hv(&spec, log, Ending::TimedOut(60))).starts_with("timed out after 60 s"));
        assert_eq!(
            fail(on_hv(&spec, "Test result: FAILURE\n", Ending::Exited(0))),
            "guest reported FAILURE"
        );
        assert_eq!(
            fail(on_hv(
                &spec,
                "Test result: SUCCESS\nTest result: SUCCESS\n",
                Ending::Exited(0)
            )),
            "2 result lines, expected one"
        );
        assert!(
            fail(on_hv(&spec, "Test result: PASSED\n", Ending::Exited(0))).contains("malformed")
        );
        assert!(fail(on_hv(&spec, log, Ending::Signaled(9))).contains("signal 9"));
    }

    #[test]
    fn expected_lines_and_exit() {
        let spec = RunSpec {
            expect_exit: Shutdown::Reboot,
            expect_lines: vec!["(hv) domain 0 shut down: reboot".into()],
            ..RunSpec::default()
        };
        let log = "Test result: SUCCESS\n(hv) domain 0 shut down: reboot\n";
        assert_eq!(
            on_hv(&spec, log, Ending::Exited(33)),
            Verdict::Pass { skipped: false }
        );
        assert_eq!(
            fail(on_hv(&spec, "Test result: SUCCESS\n", Ending::Exited(0))),
            "domain 0 powered off (status 0), expected reboot; missing line `(hv) domain 0 shut down: reboot`"
        );
    }

    #[test]
    fn rejected_lines() {
        let spec = RunSpec {
            reject_lines: vec!["LEAK".into(), "(hv) only hv".into()],
            ..RunSpec::default()
        };
        let clean = "Test result: SUCCESS\n";
        assert_eq!(
            on_hv(&spec, clean, Ending::Exited(0)),
            Verdict::Pass { skipped: false }
        );
        let leaked = "a LEAK here\nTest result: SUCCESS\n";
        assert_eq!(
            fail(on_hv(&spec, leaked, Ending::Exited(0))),
            "unexpected line `LEAK`"
        );
        let hv_line = "(hv) only hv\nTest result: SUCCESS\n";
        assert_eq!(
            fail(on_hv(&spec, hv_line, Ending::Exited(0))),
            "unexpected line `(hv) only hv`"
        );
        let xen_log =
            "(hv) only hv\nTest result: SUCCESS\n(XEN) Hardware Dom0 halted: halting machine\n";
        assert_eq!(
            judge(&spec, xen_log, Ending::StoppedOnLine, Host::Xen),
            Verdict::Pass { skipped: false }
        );
    }

    #[test]
    fn negative_tests() {
        let spec = RunSpec {
            expect_result: ExpectResult::Failure,
            expect_exit: Shutdown::Crash,
            expect_lines: vec!["invalid opcode".into()],
            ..RunSpec::default()
        };
        let crashed = "(hv) d0v0 invalid opcode at ffffffff80001234\n";
        assert_eq!(
            on_hv(&spec, crashed, Ending::Exited(37)),
            Verdict::Pass { skipped: false }
        );
        let reported = format!("Test result: FAILURE\n{crashed}");
        assert_eq!(
            on_hv(&spec, &reported, Ending::Exited(37)),
            Verdict::Pass { skipped: false }
        );
        let passed = format!("Test result: SUCCESS\n{crashed}");
        assert_eq!(
            fail(on_hv(&spec, &passed, Ending::Exited(37))),
            "guest reported SUCCESS"
        );

        let nothing = RunSpec {
            expect_result: ExpectResult::Nothing,
            ..RunSpec::default()
        };
        assert_eq!(
            on_hv(&nothing, "", Ending::Exited(0)),
            Verdict::Pass { skipped: false }
        );
        assert!(matches!(
            on_hv(&nothing, "Test result: FAILURE", Ending::Exited(0)),
            Verdict::Fail(_)
        ));
    }
}
