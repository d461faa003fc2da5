//! `nmi_op` sub-commands and argument (`nmi.h`), and the NMI reason bits
//! the hypervisor reports in `arch_shared_info.nmi_reason`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// NMI reason: I/O check error.
pub const XEN_NMIREASON_IO_ERROR: u64 = 1 << 0;
/// NMI reason: PCI SERR.
pub const XEN_NMIREASON_PCI_SERR: u64 = 1 << 1;
/// NMI reason: unknown.
pub const XEN_NMIREASON_UNKNOWN: u64 = 1 << 2;

/// Register the NMI handler (dom0 only). Argument: [`XennmiCallback`].
pub const XENNMI_REGISTER_CALLBACK: u32 = 0;
/// Unregister it. No argument.
pub const XENNMI_UNREGISTER_CALLBACK: u32 = 1;

/// `xennmi_callback`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XennmiCallback {
    /// The handler's address.
    pub handler_address: u64,
    /// Reserved, must be 0.
    pub pad: u64,
}
assert_layout!(XennmiCallback, 16; handler_address = 0, pad = 8);
