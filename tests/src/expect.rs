//! Small helpers shared by the conformance guests: comparing a hypercall's
//! result with the value Xen 4.17 returns, printing both in a form a reader
//! can check against the headers (`-EFAULT`, `0x40011`), and the guest
//! addresses that no hypercall may accept as a buffer.

use core::fmt;

use guest_abi::errno;
use guest_abi::rt::report::Report;

/// A hypercall result as the reader wants to see it: `-ENAME` for an errno,
/// decimal for small values, hex for large ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rc(pub i64);

impl fmt::Display for Rc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            v if (-4095..0).contains(&v) => write!(f, "-{}", errno::name(v)),
            v if (0..=0xffff).contains(&v) => write!(f, "{v}"),
            v => write!(f, "{v:#x}"),
        }
    }
}

/// A value a check compares, and how a report line shows it: a hypercall
/// result as [`Rc`], addresses, frames and descriptors (unsigned) in hex,
/// `none` for a missing value.
pub trait Shown: PartialEq {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl Shown for i64 {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Rc(*self), f)
    }
}

/// A `GNTST_*` status, in decimal.
impl Shown for i16 {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

macro_rules! shown_hex {
    ($($t:ty),*) => {$(
        impl Shown for $t {
            fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{self:#x}")
            }
        }
    )*};
}
shown_hex!(u8, u16, u32, u64);

/// Text, quoted.
impl Shown for &str {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl Shown for bool {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl Shown for usize {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// A value or a hypercall's error, as the wrappers that return what the
/// call wrote back (a port, say) give it.
impl<T: Shown> Shown for Result<T, i64> {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ok(v) => v.show(f),
            Err(rc) => fmt::Display::fmt(&Rc(*rc), f),
        }
    }
}

impl<A: Shown, B: Shown> Shown for (A, B) {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        self.0.show(f)?;
        f.write_str(", ")?;
        self.1.show(f)?;
        f.write_str(")")
    }
}

impl<A: Shown, B: Shown, C: Shown> Shown for (A, B, C) {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        self.0.show(f)?;
        f.write_str(", ")?;
        self.1.show(f)?;
        f.write_str(", ")?;
        self.2.show(f)?;
        f.write_str(")")
    }
}

impl<T: Shown> Shown for Option<T> {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Some(v) => v.show(f),
            None => f.write_str("none"),
        }
    }
}

/// [`Shown`] as `Display`.
struct Show<'a, T>(&'a T);

impl<T: Shown> fmt::Display for Show<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.show(f)
    }
}

/// The one way a conformance check compares: [`Check::check_eq`] on the
/// guest's [`Report`], usually written with [`check!`](crate::check).
pub trait Check {
    /// Records the check `got == want` as `<what> -> <want>`, adding
    /// `(got <got>)` when it differs. Returns whether it held.
    fn check_eq<T: Shown>(&mut self, what: impl fmt::Display, got: T, want: T) -> bool;
}

impl Check for Report {
    fn check_eq<T: Shown>(&mut self, what: impl fmt::Display, got: T, want: T) -> bool {
        if got == want {
            self.check(format_args!("{what} -> {}", Show(&want)), true)
        } else {
            let (want, got) = (Show(&want), Show(&got));
            self.check(format_args!("{what} -> {want} (got {got})"), false)
        }
    }
}

/// One conformance check, one line:
///
/// ```ignore
/// check!(r, "set_gdt(7169 entries)", set_gdt(&[g; 15], 7169) => -EINVAL);
/// check!(r, "gdt[{i}] reads back", read_u64(va + i * 8) => d);
/// ```
///
/// records `got == want` on the report `r` (a `Report` or a `&mut
/// Report`) through [`Check::check_eq`] and evaluates to whether it held.
/// A literal label is a format string (it may name variables in scope);
/// any other label is a `Display` value.
#[macro_export]
macro_rules! check {
    ($r:expr, $what:literal, $got:expr => $want:expr) => {{
        use $crate::expect::Check as _;
        $r.check_eq(format_args!($what), $got, $want)
    }};
    ($r:expr, $what:expr, $got:expr => $want:expr) => {{
        use $crate::expect::Check as _;
        $r.check_eq($what, $got, $want)
    }};
}

/// [`Check::check_eq`] of a hypercall result, as a function.
pub fn rc(r: &mut Report, what: impl fmt::Display, got: i64, want: i64) -> bool {
    r.check_eq(what, got, want)
}

/// Guest addresses that are never a usable hypercall buffer for a 64-bit PV
/// guest, with a name for the report. Xen's `access_ok()` refuses the
/// non-canonical ones and its own range (`HYPERVISOR_VIRT_START` to
/// `HYPERVISOR_VIRT_END`, L4 slots 256–271) before touching memory; the
/// unmapped ones fault in the copy. Either way the result is `-EFAULT`.
///
/// The "unmapped" ones sit in the lower half, where a PV dom0's initial
/// page tables map nothing (its kernel is in L4 slot 511).
pub const BAD_POINTERS: &[(&str, u64)] = &[
    ("null", 0),
    ("unmapped 0x1000", 0x1000),
    ("unmapped top of lower half", 0x7fff_ffff_f000),
    ("non-canonical 1<<47", 0x8000_0000_0000),
    ("non-canonical 0xdead...", 0xdead_beef_dead_b000),
    ("hypervisor range start (RO M2P)", 0xffff_8000_0000_0000),
    ("hypervisor direct map", 0xffff_8300_0000_0000),
    ("hypervisor range last bytes", 0xffff_87ff_ffff_fff0),
];

/// The bytes of a C string buffer before its first NUL, or `None` if
/// there is no NUL in it.
pub fn c_str(buf: &[u8]) -> Option<&[u8]> {
    buf.iter().position(|&b| b == 0).map(|n| &buf[..n])
}

/// Whether every byte after the first NUL is NUL too (Xen clears the whole
/// fixed-size field before copying the string in).
pub fn nul_padded(buf: &[u8]) -> bool {
    match buf.iter().position(|&b| b == 0) {
        Some(n) => buf[n..].iter().all(|&b| b == 0),
        None => false,
    }
}

/// `bytes` as text for a report line (`<not utf-8>` if it is not).
pub fn text(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or("<not utf-8>")
}
