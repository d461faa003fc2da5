//! Newtypes for the ABI's numbers, so a frame number cannot be passed as a
//! domain id.
//!
//! A value that comes from a guest is an allegation: build it with
//! `try_new`, which rejects what can never be valid. `new` is for values
//! the caller already trusts (constants, the hypervisor's own tables).
//! None of these derive `FromBytes`, so they cannot be conjured from guest
//! bytes without passing through a constructor.

use zerocopy::{Immutable, IntoBytes, KnownLayout};

use crate::xen::{
    DOMID_COW, DOMID_FIRST_RESERVED, DOMID_IDLE, DOMID_INVALID, DOMID_IO, DOMID_SELF, DOMID_XEN,
};

/// Why a raw value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidValue {
    /// Beyond what the ABI can express (e.g. a frame above 2^40).
    OutOfRange,
    /// At or above a caller-given limit (e.g. the size of a table).
    AboveLimit,
    /// A reserved value, valid only where explicitly allowed.
    Reserved,
}

/// Physical address bits of x86_64 (frames above 2^(52 - 12) cannot exist).
pub const MAX_PHYS_ADDR_BITS: u32 = 52;
/// Frame numbers are below this.
pub const MAX_FRAME: u64 = 1 << (MAX_PHYS_ADDR_BITS - crate::arch::PAGE_SHIFT);

macro_rules! frame_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, IntoBytes, Immutable, KnownLayout)]
        pub struct $name(u64);

        impl $name {
            /// A trusted frame number.
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }

            /// A frame number from a guest: refuses one that no machine
            /// with 52-bit physical addresses can have.
            pub const fn try_new(raw: u64) -> Result<Self, InvalidValue> {
                if raw < MAX_FRAME {
                    Ok(Self(raw))
                } else {
                    Err(InvalidValue::OutOfRange)
                }
            }

            /// The raw number.
            pub const fn get(self) -> u64 {
                self.0
            }

            /// The address of the frame's first byte.
            pub const fn addr(self) -> u64 {
                self.0 << crate::arch::PAGE_SHIFT
            }
        }
    };
}

frame_newtype! {
    /// A machine frame number: a 4 KiB frame of host physical memory.
    Mfn
}
frame_newtype! {
    /// A pseudo-physical frame number: an index into a guest's P2M.
    Pfn
}

/// A guest frame number; for PV guests the same thing as a [`Pfn`].
pub type Gfn = Pfn;

/// A domain id. Ordinary domains are below `DOMID_FIRST_RESERVED`; the
/// special ids are available only through their named constants or
/// [`DomId::try_new_or_special`].
#[repr(transparent)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, IntoBytes, Immutable, KnownLayout,
)]
pub struct DomId(u16);

impl DomId {
    /// `DOMID_SELF`: the calling domain.
    pub const SELF: Self = Self(DOMID_SELF);
    /// `DOMID_IO`.
    pub const IO: Self = Self(DOMID_IO);
    /// `DOMID_XEN`.
    pub const XEN: Self = Self(DOMID_XEN);
    /// `DOMID_COW`.
    pub const COW: Self = Self(DOMID_COW);
    /// `DOMID_INVALID`.
    pub const INVALID: Self = Self(DOMID_INVALID);
    /// `DOMID_IDLE`.
    pub const IDLE: Self = Self(DOMID_IDLE);
    /// Domain 0.
    pub const DOM0: Self = Self(0);

    /// An ordinary domain id: refuses every reserved or out-of-range value.
    pub const fn try_new(raw: u16) -> Result<Self, InvalidValue> {
        if raw < DOMID_FIRST_RESERVED {
            Ok(Self(raw))
        } else {
            Err(InvalidValue::Reserved)
        }
    }

    /// An ordinary id or one of the named special ids (`DOMID_SELF` and
    /// friends), for the arguments that accept them.
    pub const fn try_new_or_special(raw: u16) -> Result<Self, InvalidValue> {
        match raw {
            DOMID_SELF | DOMID_IO | DOMID_XEN | DOMID_COW | DOMID_INVALID | DOMID_IDLE => {
                Ok(Self(raw))
            }
            _ if raw < DOMID_FIRST_RESERVED => Ok(Self(raw)),
            _ => Err(InvalidValue::OutOfRange),
        }
    }

    /// The raw id.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// Whether this is one of the special (reserved) ids.
    pub const fn is_special(self) -> bool {
        self.0 >= DOMID_FIRST_RESERVED
    }
}

impl core::fmt::Display for DomId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(&self.0, f)
    }
}

macro_rules! index_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, IntoBytes, Immutable, KnownLayout)]
        pub struct $name(u32);

        impl $name {
            /// A trusted value.
            pub const fn new(raw: u32) -> Self {
                Self(raw)
            }

            /// A value from a guest, which must index a table of `limit`
            /// entries.
            pub const fn try_new(raw: u32, limit: u32) -> Result<Self, InvalidValue> {
                if raw < limit {
                    Ok(Self(raw))
                } else {
                    Err(InvalidValue::AboveLimit)
                }
            }

            /// The raw value.
            pub const fn get(self) -> u32 {
                self.0
            }
        }
    };
}

index_newtype! {
    /// A virtual CPU number within a domain.
    VcpuId
}
index_newtype! {
    /// An event-channel port number (0 is never a valid bound port).
    EvtchnPort
}
index_newtype! {
    /// A grant reference: an index into a domain's grant table.
    GrantRef
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domid_rules() {
        assert_eq!(DomId::try_new(5).map(DomId::get), Ok(5));
        assert_eq!(DomId::try_new(DOMID_SELF), Err(InvalidValue::Reserved));
        assert_eq!(DomId::try_new_or_special(DOMID_SELF), Ok(DomId::SELF));
        assert_eq!(
            DomId::try_new_or_special(0x7ff8),
            Err(InvalidValue::OutOfRange)
        );
        assert_eq!(
            DomId::try_new_or_special(0x8000),
            Err(InvalidValue::OutOfRange)
        );
        assert!(DomId::IDLE.is_special() && !DomId::DOM0.is_special());
    }

    #[test]
    fn frames_and_indices() {
        assert_eq!(Mfn::try_new(MAX_FRAME), Err(InvalidValue::OutOfRange));
        assert_eq!(Pfn::try_new(3).map(Pfn::addr), Ok(0x3000));
        assert_eq!(
            EvtchnPort::try_new(4096, 4096),
            Err(InvalidValue::AboveLimit)
        );
        assert_eq!(GrantRef::try_new(7, 8).map(GrantRef::get), Ok(7));
    }
}
