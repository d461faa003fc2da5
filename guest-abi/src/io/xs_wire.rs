//! Xenstore's wire protocol (`io/xs_wire.h`): message types, the message
//! header, error names, and the ring page shared with a domain.
//!
//! A message is an [`XsdSockmsg`] header followed by `len` payload bytes
//! (at most [`XENSTORE_PAYLOAD_MAX`]), usually NUL-separated strings. On a
//! domain's ring page both directions are byte streams of
//! [`XENSTORE_RING_SIZE`] bytes with free-running `u32` indices; a message
//! may straddle the wrap.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// `enum xsd_sockmsg_type`: a xenstore message type. Unknown values are
/// representable (a peer may send anything) and answered with `XS_ERROR`.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct XsType(pub u32);

impl XsType {
    /// Control command (also `XS_DEBUG`).
    pub const CONTROL: Self = Self(0);
    /// Old name of `CONTROL`.
    pub const DEBUG: Self = Self(0);
    /// List a node's children.
    pub const DIRECTORY: Self = Self(1);
    /// Read a node.
    pub const READ: Self = Self(2);
    /// Read a node's permissions.
    pub const GET_PERMS: Self = Self(3);
    /// Watch a path.
    pub const WATCH: Self = Self(4);
    /// Stop watching.
    pub const UNWATCH: Self = Self(5);
    /// Start a transaction.
    pub const TRANSACTION_START: Self = Self(6);
    /// Commit or abort a transaction.
    pub const TRANSACTION_END: Self = Self(7);
    /// Introduce a domain (privileged).
    pub const INTRODUCE: Self = Self(8);
    /// Forget a domain (privileged).
    pub const RELEASE: Self = Self(9);
    /// A domain's home path.
    pub const GET_DOMAIN_PATH: Self = Self(10);
    /// Write a node.
    pub const WRITE: Self = Self(11);
    /// Create a node.
    pub const MKDIR: Self = Self(12);
    /// Remove a node.
    pub const RM: Self = Self(13);
    /// Set a node's permissions.
    pub const SET_PERMS: Self = Self(14);
    /// A watch fired (server to client).
    pub const WATCH_EVENT: Self = Self(15);
    /// An error reply; the payload is the error's name.
    pub const ERROR: Self = Self(16);
    /// Whether a domain is introduced.
    pub const IS_DOMAIN_INTRODUCED: Self = Self(17);
    /// Resume a domain.
    pub const RESUME: Self = Self(18);
    /// Make a domain the target of another.
    pub const SET_TARGET: Self = Self(19);
    /// Drop all watches and transactions of the connection.
    pub const RESET_WATCHES: Self = Self(21);
    /// List a node's children in parts.
    pub const DIRECTORY_PART: Self = Self(22);
    /// Number of message types.
    pub const TYPE_COUNT: Self = Self(23);
    /// An invalid type.
    pub const INVALID: Self = Self(0xffff);

    /// Whether the type is one the protocol defines.
    pub const fn is_known(self) -> bool {
        self.0 < Self::TYPE_COUNT.0 && self.0 != 20
    }
}

/// `XS_WRITE` flag strings of the old protocol.
pub const XS_WRITE_NONE: &str = "NONE";
/// `XS_WRITE` flag: create.
pub const XS_WRITE_CREATE: &str = "CREATE";
/// `XS_WRITE` flag: create, failing if it exists.
pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";

/// `xsd_errors`: the errors a xenstore reply may name, in the header's
/// order, with their Xen errno values. An `XS_ERROR` reply's payload is the
/// name, NUL-terminated.
pub const XS_ERRORS: &[(i64, &str)] = {
    use crate::errno::*;
    &[
        (EINVAL, "EINVAL"),
        (EACCES, "EACCES"),
        (EEXIST, "EEXIST"),
        (EISDIR, "EISDIR"),
        (ENOENT, "ENOENT"),
        (ENOMEM, "ENOMEM"),
        (ENOSPC, "ENOSPC"),
        (EIO, "EIO"),
        (ENOTEMPTY, "ENOTEMPTY"),
        (ENOSYS, "ENOSYS"),
        (EROFS, "EROFS"),
        (EBUSY, "EBUSY"),
        (EAGAIN, "EAGAIN"),
        (EISCONN, "EISCONN"),
        (E2BIG, "E2BIG"),
        (EPERM, "EPERM"),
    ]
};

/// The name to send for an errno, or `None` if xenstore has none (callers
/// then send `"EINVAL"`, as xenstored does).
pub fn xs_error_name(errno: i64) -> Option<&'static str> {
    XS_ERRORS.iter().find(|e| e.0 == errno).map(|e| e.1)
}

/// `xsd_sockmsg`: the 16-byte header of every message.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XsdSockmsg {
    /// `XS_*` ([`XsType`]).
    pub type_: u32,
    /// Echoed in the reply.
    pub req_id: u32,
    /// Transaction id, or 0.
    pub tx_id: u32,
    /// Payload bytes that follow.
    pub len: u32,
}
assert_layout!(XsdSockmsg, 16; type_ = 0, req_id = 4, tx_id = 8, len = 12);

/// `XS_WATCH_EVENT` payload element: the path that changed.
pub const XS_WATCH_PATH: u32 = 0;
/// `XS_WATCH_EVENT` payload element: the watch's token.
pub const XS_WATCH_TOKEN: u32 = 1;

/// Bytes in each direction of the ring page.
pub const XENSTORE_RING_SIZE: usize = 1024;
/// `XENSTORE_RING_IDX`.
pub type XenstoreRingIdx = u32;

/// `MASK_XENSTORE_IDX`: the byte an index addresses.
pub const fn mask_xenstore_idx(idx: XenstoreRingIdx) -> usize {
    (idx as usize) & (XENSTORE_RING_SIZE - 1)
}

/// Largest payload of one message.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// Longest absolute path.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// Longest relative path.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;
/// `server_features`: the server supports reconnection.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// `server_features`: the server reports errors in `error`.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;
/// `connection`: connected.
pub const XENSTORE_CONNECTED: u32 = 0;
/// `connection`: the guest asks for a reconnection.
pub const XENSTORE_RECONNECT: u32 = 1;
/// `error`: none.
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// `error`: communication problem.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// `error`: invalid ring index.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// `error`: protocol violation.
pub const XENSTORE_ERROR_PROTO: u32 = 3;

/// `xenstore_domain_interface`: the xenstore ring page (2076 bytes used).
#[repr(C)]
#[derive(Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct XenstoreDomainInterface {
    /// Requests, guest to server.
    pub req: [u8; XENSTORE_RING_SIZE],
    /// Replies and watch events, server to guest.
    pub rsp: [u8; XENSTORE_RING_SIZE],
    /// Request bytes consumed by the server.
    pub req_cons: u32,
    /// Request bytes produced by the guest.
    pub req_prod: u32,
    /// Reply bytes consumed by the guest.
    pub rsp_cons: u32,
    /// Reply bytes produced by the server.
    pub rsp_prod: u32,
    /// `XENSTORE_SERVER_FEATURE_*`.
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` / `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `XENSTORE_ERROR_*`.
    pub error: u32,
}
assert_layout!(XenstoreDomainInterface, 2076; req = 0, rsp = 1024, req_cons = 2048,
    req_prod = 2052, rsp_cons = 2056, rsp_prod = 2060, server_features = 2064,
    connection = 2068, error = 2072);

/// Bytes a producer may write, given the consumer's and its own index; an
/// error if the indices claim more than the ring holds (a hostile or
/// corrupted peer).
pub const fn xenstore_space(cons: u32, prod: u32) -> Result<usize, super::ring::RingError> {
    let used = prod.wrapping_sub(cons) as usize;
    if used > XENSTORE_RING_SIZE {
        Err(super::ring::RingError::Overflow)
    } else {
        Ok(XENSTORE_RING_SIZE - used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_errors_and_indices() {
        assert!(XsType::DIRECTORY_PART.is_known() && !XsType(20).is_known());
        assert!(!XsType::INVALID.is_known());
        assert_eq!(xs_error_name(crate::errno::ENOENT), Some("ENOENT"));
        assert_eq!(xs_error_name(crate::errno::ENOSYS), Some("ENOSYS"));
        assert_eq!(mask_xenstore_idx(1025), 1);
        assert_eq!(xenstore_space(u32::MAX, 3), Ok(1020));
        assert!(xenstore_space(0, 1025).is_err());
    }
}
