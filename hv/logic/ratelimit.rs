//! Rate limits for log lines a guest can cause.
//!
//! A guest that repeats a refused operation (a CR0 write, an unknown MSR)
//! must not be able to flood the console, which is slow and shared: each
//! source may print a burst of [`BURST`] lines per [`WINDOW_NS`]; what it
//! would print beyond that is counted, and the next line allowed says how
//! many were dropped. Pure logic over a caller-given clock, so the host
//! tests drive it.

/// Lines a source may print per window.
pub const BURST: u32 = 10;
/// Length of a window in nanoseconds (5 s).
pub const WINDOW_NS: u64 = 5_000_000_000;

/// One source's budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    window_start: u64,
    printed: u32,
    suppressed: u32,
}

impl RateLimit {
    pub const fn new() -> Self {
        Self {
            window_start: 0,
            printed: 0,
            suppressed: 0,
        }
    }

    /// Whether a line may be printed at time `now` (ns): `Some(n)` with the
    /// number of lines suppressed since the last one printed, or `None`
    /// (the line is dropped and counted).
    pub fn allow(&mut self, now: u64) -> Option<u32> {
        if now.saturating_sub(self.window_start) >= WINDOW_NS || now < self.window_start {
            self.window_start = now;
            self.printed = 0;
        }
        if self.printed >= BURST {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.printed += 1;
        Some(core::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_silence_then_a_count() {
        let mut r = RateLimit::new();
        let allowed = (0..4000).filter(|&i| r.allow(1000 + i).is_some()).count();
        assert_eq!(allowed, BURST as usize);
        // The next window's first line reports what was dropped.
        assert_eq!(r.allow(1000 + WINDOW_NS), Some(4000 - BURST));
        assert_eq!(r.allow(1001 + WINDOW_NS), Some(0));
    }

    #[test]
    fn a_clock_going_backwards_starts_a_window() {
        let mut r = RateLimit::new();
        for _ in 0..BURST {
            assert!(r.allow(WINDOW_NS * 3).is_some());
        }
        assert_eq!(r.allow(WINDOW_NS * 3 + 1), None);
        assert_eq!(r.allow(5), Some(1));
    }
}
