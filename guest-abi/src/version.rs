//! `xen_version` sub-commands and their buffers (`version.h`).
//!
//! Every command returns 0 on success except [`XENVER_VERSION`] (the
//! version number) and [`XENVER_PAGESIZE`] (the page size).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// No argument; returns `major << 16 | minor`.
pub const XENVER_VERSION: u32 = 0;
/// Argument: [`XenExtraversion`].
pub const XENVER_EXTRAVERSION: u32 = 1;
/// Argument: [`XenCompileInfo`].
pub const XENVER_COMPILE_INFO: u32 = 2;
/// Argument: [`XenCapabilitiesInfo`].
pub const XENVER_CAPABILITIES: u32 = 3;
/// Argument: [`XenChangesetInfo`].
pub const XENVER_CHANGESET: u32 = 4;
/// Argument: [`XenPlatformParameters`].
pub const XENVER_PLATFORM_PARAMETERS: u32 = 5;
/// Argument: [`XenFeatureInfo`].
pub const XENVER_GET_FEATURES: u32 = 6;
/// No argument; returns the page size.
pub const XENVER_PAGESIZE: u32 = 7;
/// Argument: [`XenDomainHandle`] (the domain's UUID).
pub const XENVER_GUEST_HANDLE: u32 = 8;
/// Argument: [`XenCommandline`] (privileged).
pub const XENVER_COMMANDLINE: u32 = 9;
/// Argument: a [`XenBuildId`] (a `u32` length then the buffer; privileged).
pub const XENVER_BUILD_ID: u32 = 10;

/// The version suffix, e.g. `".7"`, NUL-padded.
pub type XenExtraversion = [u8; 16];
/// The build-time identification strings.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct XenCompileInfo {
    /// Compiler version string.
    pub compiler: [u8; 64],
    /// User who built it.
    pub compile_by: [u8; 16],
    /// Domain it was built in.
    pub compile_domain: [u8; 32],
    /// Build date.
    pub compile_date: [u8; 32],
}
assert_layout!(XenCompileInfo, 144;
    compiler = 0, compile_by = 64, compile_domain = 80, compile_date = 112);
/// The space-separated guest types supported, e.g. `"xen-3.0-x86_64 ..."`.
pub type XenCapabilitiesInfo = [u8; 1024];
/// The source changeset string.
pub type XenChangesetInfo = [u8; 64];
/// The hypervisor's command line.
pub type XenCommandline = [u8; 1024];
/// A domain's UUID.
pub type XenDomainHandle = [u8; 16];

/// `xen_platform_parameters`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenPlatformParameters {
    /// Lowest virtual address reserved by the hypervisor.
    pub virt_start: u64,
}
assert_layout!(XenPlatformParameters, 8; virt_start = 0);

/// `xen_feature_info`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenFeatureInfo {
    /// In: which 32-bit word of the feature bitmap.
    pub submap_idx: u32,
    /// Out: that word (bit `n` is `XENFEAT` number `32 * submap_idx + n`).
    pub submap: u32,
}
assert_layout!(XenFeatureInfo, 8; submap_idx = 0, submap = 4);

/// `xen_build_id`'s fixed part: the length of the buffer that follows it
/// (C's flexible `buf[]`, at offset `size_of::<XenBuildId>()`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenBuildId {
    /// In: the size of the buffer after this header.
    pub len: u32,
}
assert_layout!(XenBuildId, 4; len = 0);
