//! dom0's toolstack: a domain builder for PV x86_64 domUs, in Rust on
//! `guest-abi`, that drives real Xen 4.17 and hv through the same
//! hypercalls (those of Xen's own `libxenguest` builder).
//!
//! A domU is built from an ELF kernel image with Xen's ELF notes
//! ([`elf`]): its start-of-day address space is laid out ([`layout`]:
//! kernel, optional ramdisk, P2M list, start_info, console and xenstore pages, bootstrap
//! page tables, boot stack, as a PV guest expects it) and made through
//! `domctl` (`createdomain`, `max_vcpus`, `max_mem`, `hypercall_init`,
//! `setvcpucontext`, `unpausedomain`), `populate_physmap` for it, writable
//! foreign mappings of its frames (`mmu_update` with `foreigndom`), its
//! M2P entries (`MMU_MACHPHYS_UPDATE`), its L4 pinned on its behalf
//! (`mmuext_op`) and its console and xenstore channels
//! (`EVTCHNOP_alloc_unbound`). The pure parts are host-tested
//! (`cargo test -p toolstack`); [`build`] is the guest-side glue, which
//! needs a way to map a frame for a moment ([`FrameMapper`]); `serve`
//! runs a built domU to its shutdown (console relayed, then destroyed).
#![no_std]

pub mod elf;
pub mod layout;

#[cfg(target_os = "none")]
pub mod build;

#[cfg(target_os = "none")]
pub mod serve;

#[cfg(target_os = "none")]
pub use build::{build, build_into, Built, Config, FrameMapper};

/// Why a build failed: the step and what it returned (an errno for a
/// hypercall, 0 for an image or layout refused before any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    pub what: &'static str,
    pub rc: i64,
}

impl Error {
    pub const fn new(what: &'static str, rc: i64) -> Self {
        Self { what, rc }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.rc == 0 {
            f.write_str(self.what)
        } else {
            write!(f, "{} returned {}", self.what, self.rc)
        }
    }
}
