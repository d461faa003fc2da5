//! Conformance guests: each binary in `src/bin/` is one PV kernel that
//! exercises one area of the Xen x86_64 PV ABI and reports through
//! `guest_abi::rt::report`.
#![no_std]

extern crate alloc;

#[cfg(target_os = "none")]
pub mod clock;
#[cfg(target_os = "none")]
pub mod control;
#[cfg(target_os = "none")]
pub mod cpuid;
#[cfg(target_os = "none")]
pub mod domu;
#[cfg(target_os = "none")]
pub mod evtchn;
#[cfg(target_os = "none")]
pub mod expect;
#[cfg(target_os = "none")]
pub mod fixup;
#[cfg(target_os = "none")]
pub mod frontend;
#[cfg(target_os = "none")]
pub mod grants;
#[cfg(target_os = "none")]
pub mod netstack;
#[cfg(target_os = "none")]
pub mod pages;
#[cfg(target_os = "none")]
pub mod pvmm;
#[cfg(target_os = "none")]
pub mod regs;
#[cfg(target_os = "none")]
pub mod vcpu;
