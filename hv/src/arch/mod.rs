//! Everything that touches the hardware directly. This module and the raw
//! frame accessor in `mm` are the only places hv allows `unsafe`.

pub mod x86_64;

pub use x86_64::serial;
