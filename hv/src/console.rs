//! hv's console: one lock around the serial line, one logging macro with levels.
//!
//! Lines from hv itself start with `(hv) `. The initial domain's `console_io`
//! output goes to the serial line raw, as Xen does for its hardware domain, so
//! a guest's lines look the same on both hypervisors.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

use crate::arch::serial;

static LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Severity of a log line; lines above the configured level are dropped.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
#[repr(u8)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the most verbose level that is printed (`loglvl=` on hv's command line).
pub fn set_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

struct Serial;

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        serial::write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints one `(hv) ` line. Use through [`hvlog!`].
pub fn log(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let _guard = LOCK.lock();
    let tag = match level {
        Level::Error => "(hv) ERROR: ",
        Level::Warn => "(hv) WARNING: ",
        Level::Info | Level::Debug => "(hv) ",
    };
    let _ = Serial.write_str(tag);
    let _ = Serial.write_fmt(args);
    let _ = Serial.write_str("\n");
}

/// Writes a guest's console bytes unchanged.
pub fn guest_write(bytes: &[u8]) {
    let _guard = LOCK.lock();
    serial::write_bytes(bytes);
}

/// Writes without taking the lock: for the panic path only, where the lock
/// may be held by the code that panicked.
pub fn emergency(args: fmt::Arguments<'_>) {
    let _ = Serial.write_fmt(args);
}

/// `hvlog!(info, "fmt", args…)`: one console line at a level.
#[macro_export]
macro_rules! hvlog {
    (error, $($arg:tt)*) => { $crate::console::log($crate::console::Level::Error, format_args!($($arg)*)) };
    (warn, $($arg:tt)*) => { $crate::console::log($crate::console::Level::Warn, format_args!($($arg)*)) };
    (info, $($arg:tt)*) => { $crate::console::log($crate::console::Level::Info, format_args!($($arg)*)) };
    (debug, $($arg:tt)*) => { $crate::console::log($crate::console::Level::Debug, format_args!($($arg)*)) };
}
