//! hv's pure logic, shared by the kernel binary and host unit tests.
//!
//! Nothing here touches hardware: every module works on byte slices and plain
//! numbers, so `cargo test -p hv --lib` checks it on the host.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod conring;
pub mod evtchn;
pub mod frames;
pub mod grant;
pub mod guest_handle;
pub mod implemented;
pub mod lock_levels;
pub mod nospec;
pub mod page_info;
pub mod pollers;
pub mod pt;
pub mod pt_walk;
pub mod ratelimit;
pub mod sched;
pub mod time_scale;
pub mod timer;
pub mod vmce;
pub mod watchdog;

pub mod bundle;
/// The boot kernel's container and its unpacking, shared with the toolstack.
pub use kernel_image as bzimage;
pub mod domctl;
pub mod elf;
pub mod layout;
pub mod pv_cpuid;
pub mod segdesc;
pub mod smp;
pub mod x86_decode;
pub mod xcr0;
