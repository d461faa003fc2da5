//! The targets. Each reads its input through [`crate::input::Input`] or as
//! raw bytes, drives one parser or validator of hv's library and asserts
//! its invariants; a failed assertion or panic is a finding.

mod bundle;
mod bzimage;
mod cpu;
mod elf;
mod evtchn;
mod frames;
mod pt;

pub use bundle::bundle;
pub use bzimage::bzimage;
pub use cpu::{pv_cpuid, segdesc, x86_decode};
pub use elf::{elf, layout};
pub use evtchn::evtchn;
pub use frames::frames;
pub use pt::pt;

/// Whether `inner` lies within `outer` (same allocation, by address).
fn within(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    inner.is_empty() || (o.start <= i.start && i.end <= o.end)
}
