//! hv's console: one lock around the serial line, one logging macro with levels.
//!
//! Lines from hv itself start with `(hv) `. The initial domain's `console_io`
//! output goes to the serial line raw, as Xen does for its hardware domain, so
//! a guest's lines look the same on both hypervisors.
//!
//! hv's own lines also go to a ring of the last 16 KiB (`hv::conring`,
//! Xen's `conring`), which dom0 reads with `XEN_SYSCTL_readconsole`; the
//! initial domain's output does not (Xen's default, without
//! `console_to_ring`).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

use alloc::vec::Vec;
use hv::conring::{ConRing, Read};

use crate::arch::serial;

/// The serial line's lock, and the ring of hv's lines behind it.
static LOCK: crate::sync::Ordered<ConRing> =
    crate::sync::Ordered::new(crate::sync::Level::Console, ConRing::new());

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
    let mut ring = LOCK.lock();
    let mut out = SerialAndRing(&mut ring);
    let tag = match level {
        Level::Error => "(hv) ERROR: ",
        Level::Warn => "(hv) WARNING: ",
        Level::Info | Level::Debug => "(hv) ",
    };
    let _ = out.write_str(tag);
    let _ = out.write_fmt(args);
    let _ = out.write_str("\n");
}

/// hv's lines: to the serial line and into the ring.
struct SerialAndRing<'a>(&'a mut ConRing);

impl Write for SerialAndRing<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        serial::write_bytes(s.as_bytes());
        self.0.put(s.as_bytes());
        Ok(())
    }
}

/// What `XEN_SYSCTL_readconsole` gets for a buffer of `max` bytes: the
/// ring's bytes from `index` (if `incremental` and it is held) or from the
/// oldest held, copied out of the lock so that the caller can copy them
/// to the guest holding none.
pub fn read_ring(incremental: bool, index: u32, max: u32) -> (Read, Vec<u8>) {
    let ring = LOCK.lock();
    let read = ring.read(incremental, index, max);
    let mut bytes = Vec::with_capacity(read.len as usize);
    for (_, piece) in ring.pieces(read) {
        bytes.extend_from_slice(piece);
    }
    (read, bytes)
}

/// `readconsole`'s `clear`: what was read up to `end` is not read again
/// from the start.
pub fn clear_ring(end: u32) {
    LOCK.lock().clear_to(end);
}

/// Budgets of the log lines guests cause, one per domain id modulo the
/// table's size (domains sharing a slot share a budget: never more lines).
static GUEST_LIMITS: crate::sync::Ordered<[hv::ratelimit::RateLimit; 64]> =
    crate::sync::Ordered::new(
        crate::sync::Level::Console,
        [hv::ratelimit::RateLimit::new(); 64],
    );

/// Prints one line that domain `domid` caused, within that domain's rate
/// limit. Use through [`guestlog!`].
pub fn guest_log(domid: guest_abi::types::DomId, level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let now = crate::time::now_ns();
    let allowed = GUEST_LIMITS
        .lock()
        .get_mut(usize::from(domid.get()) % 64)
        .and_then(|r| r.allow(now));
    match allowed {
        None => {}
        Some(0) => log(level, args),
        Some(n) => {
            log(
                level,
                format_args!("d{domid}: {n} similar messages suppressed"),
            );
            log(level, args);
        }
    }
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

/// `guestlog!(domid, warn, "fmt", args…)`: a line a guest can cause, rate
/// limited per domain so that no guest floods the console.
#[macro_export]
macro_rules! guestlog {
    ($dom:expr, error, $($arg:tt)*) => { $crate::console::guest_log($dom, $crate::console::Level::Error, format_args!($($arg)*)) };
    ($dom:expr, warn, $($arg:tt)*) => { $crate::console::guest_log($dom, $crate::console::Level::Warn, format_args!($($arg)*)) };
    ($dom:expr, info, $($arg:tt)*) => { $crate::console::guest_log($dom, $crate::console::Level::Info, format_args!($($arg)*)) };
    ($dom:expr, debug, $($arg:tt)*) => { $crate::console::guest_log($dom, $crate::console::Level::Debug, format_args!($($arg)*)) };
}
