//! Test verdicts and the result line conformance guests print.
//!
//! Plain logic shared by the guest-side reporter (`rt::report`) and anything
//! on the host that reads a guest's console: a guest prints exactly one
//! `Test result: <VERDICT>` line, and silence means it crashed.

use core::fmt;

/// The prefix of the one summary line a test guest prints.
pub const RESULT_PREFIX: &str = "Test result: ";

/// A test's outcome. Ordered by severity: a worse verdict compares greater.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Every check passed.
    Success,
    /// The test could not run here (missing feature); not a failure.
    Skip,
    /// The test itself went wrong (could not set up, made no checks).
    Error,
    /// A check failed: the system under test is wrong.
    Failure,
}

impl Verdict {
    /// The word printed in the result line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Skip => "SKIP",
            Self::Error => "ERROR",
            Self::Failure => "FAILURE",
        }
    }

    /// The more severe of two verdicts.
    #[must_use]
    pub fn worst(self, other: Self) -> Self {
        self.max(other)
    }

    /// Parses a console line; `Some` only for a `Test result: ...` line.
    pub fn parse_result_line(line: &str) -> Option<Self> {
        match line.trim_end().strip_prefix(RESULT_PREFIX)? {
            "SUCCESS" => Some(Self::Success),
            "SKIP" => Some(Self::Skip),
            "ERROR" => Some(Self::Error),
            "FAILURE" => Some(Self::Failure),
            _ => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The running tally of a test: what `rt::report::Report` records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Checks made.
    pub checks: u32,
    /// Checks that failed.
    pub failures: u32,
    /// `skip` calls.
    pub skips: u32,
    /// `error` calls.
    pub errors: u32,
}

impl Tally {
    /// Records one check.
    pub fn check(&mut self, ok: bool) {
        self.checks = self.checks.saturating_add(1);
        if !ok {
            self.failures = self.failures.saturating_add(1);
        }
    }

    /// The verdict: the most severe thing recorded. A test that recorded
    /// nothing at all (no check, skip or error) is an `Error`: it proved
    /// nothing.
    pub fn verdict(&self) -> Verdict {
        if self.failures > 0 {
            Verdict::Failure
        } else if self.errors > 0 {
            Verdict::Error
        } else if self.skips > 0 {
            Verdict::Skip
        } else if self.checks == 0 {
            Verdict::Error
        } else {
            Verdict::Success
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity() {
        let mut t = Tally::default();
        assert_eq!(t.verdict(), Verdict::Error);
        t.check(true);
        assert_eq!(t.verdict(), Verdict::Success);
        t.skips += 1;
        assert_eq!(t.verdict(), Verdict::Skip);
        t.errors += 1;
        assert_eq!(t.verdict(), Verdict::Error);
        t.check(false);
        assert_eq!(t.verdict(), Verdict::Failure);
        assert_eq!(Verdict::Skip.worst(Verdict::Success), Verdict::Skip);
    }

    #[test]
    fn parse() {
        assert_eq!(
            Verdict::parse_result_line("Test result: SKIP\r"),
            Some(Verdict::Skip)
        );
        assert_eq!(Verdict::parse_result_line("Test result: MAYBE"), None);
        assert_eq!(Verdict::parse_result_line("PASS: x"), None);
    }
}
