//! `callback_op` sub-commands and arguments (`callback.h`): the entry
//! points the hypervisor bounces events, failsafe returns, `syscall`s and
//! NMIs to.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// Callback type: event upcall.
pub const CALLBACKTYPE_EVENT: u16 = 0;
/// Callback type: failsafe (a bad segment on return to the guest).
pub const CALLBACKTYPE_FAILSAFE: u16 = 1;
/// Callback type: 64-bit `syscall` from guest user mode.
pub const CALLBACKTYPE_SYSCALL: u16 = 2;
/// Callback type: the old `sysenter` slot (32-bit guests).
pub const CALLBACKTYPE_SYSENTER_DEPRECATED: u16 = 3;
/// Callback type: NMI.
pub const CALLBACKTYPE_NMI: u16 = 4;
/// Callback type: `sysenter` from 32-bit user mode.
pub const CALLBACKTYPE_SYSENTER: u16 = 5;
/// Callback type: `syscall` from 32-bit user mode.
pub const CALLBACKTYPE_SYSCALL32: u16 = 7;

/// `callback_register.flags`: mask events on entry.
pub const CALLBACKF_MASK_EVENTS: u16 = 1 << 0;

/// Register a callback. Argument: [`CallbackRegister`].
pub const CALLBACKOP_REGISTER: u32 = 0;
/// Unregister a callback (not allowed for event/failsafe). Argument: [`CallbackUnregister`].
pub const CALLBACKOP_UNREGISTER: u32 = 1;

/// `callback_register` (x86_64: `xen_callback_t` is an address).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct CallbackRegister {
    /// `CALLBACKTYPE_*`.
    pub type_: u16,
    /// `CALLBACKF_*`.
    pub flags: u16,
    /// Padding.
    pub _pad: u32,
    /// The entry point.
    pub address: u64,
}
assert_layout!(CallbackRegister, 16; type_ = 0, flags = 2, address = 8);

/// `callback_unregister`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct CallbackUnregister {
    /// `CALLBACKTYPE_*`.
    pub type_: u16,
    /// Reserved (C `_unused`).
    pub _unused: u16,
}
assert_layout!(CallbackUnregister, 4; type_ = 0, _unused = 2);
