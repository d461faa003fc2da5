//! The conformance-test reporter: one line per check, one result line.
//!
//! ```ignore
//! let mut r = Report::new("version");
//! r.check("XENVER_version is 4.17", xen_version_version() == 0x40011);
//! r.finish()
//! ```
//!
//! prints `Test: version`, `PASS: XENVER_version is 4.17`, and then exactly
//! one `Test result: SUCCESS|SKIP|ERROR|FAILURE` line (the most severe
//! outcome recorded; a test that recorded nothing is `ERROR`) before it
//! powers the domain off. A runner that sees no result line treats the
//! guest as crashed.

use core::fmt::Display;

use crate::println;
use crate::sched::SHUTDOWN_POWEROFF;
use crate::verdict::{Tally, Verdict, RESULT_PREFIX};

/// The state of one test guest's run.
#[derive(Debug)]
pub struct Report {
    name: &'static str,
    tally: Tally,
}

impl Report {
    /// Starts a test called `name` and prints `Test: <name>`.
    pub fn new(name: &'static str) -> Self {
        println!("Test: {name}");
        Self {
            name,
            tally: Tally::default(),
        }
    }

    /// The test's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Records a check and prints `PASS: <label>` or `FAIL: <label>`.
    /// Returns `ok`, so a test can stop early on a failed precondition.
    pub fn check(&mut self, label: impl Display, ok: bool) -> bool {
        self.tally.check(ok);
        println!("{}: {label}", if ok { "PASS" } else { "FAIL" });
        ok
    }

    /// Records that (part of) the test could not run here and prints
    /// `SKIP: <reason>`.
    pub fn skip(&mut self, reason: impl Display) {
        self.tally.skips = self.tally.skips.saturating_add(1);
        println!("SKIP: {reason}");
    }

    /// Records that the test itself went wrong and prints `ERROR: <msg>`.
    pub fn error(&mut self, msg: impl Display) {
        self.tally.errors = self.tally.errors.saturating_add(1);
        println!("ERROR: {msg}");
    }

    /// The verdict so far.
    pub fn verdict(&self) -> Verdict {
        self.tally.verdict()
    }

    /// Prints the result line and powers off (`SHUTDOWN_poweroff`).
    pub fn finish(self) -> ! {
        self.finish_with_shutdown(SHUTDOWN_POWEROFF)
    }

    /// Prints the result line and shuts down with `reason`, for tests whose
    /// subject is the shutdown itself.
    pub fn finish_with_shutdown(self, reason: u32) -> ! {
        self.print_result();
        super::shutdown(reason)
    }

    /// Prints the result line and ends the report; the caller then leaves
    /// the guest its own way (e.g. another shutdown hypercall).
    pub fn print_result(self) {
        println!("{RESULT_PREFIX}{}", self.tally.verdict());
    }
}
