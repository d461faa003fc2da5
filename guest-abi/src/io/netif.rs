//! The network-device rings (`io/netif.h`).
//!
//! Two rings per queue: transmit (guest to backend: [`NetifTxRequest`] /
//! [`NetifTxResponse`], 12-byte slots, 256 per page) and receive
//! ([`NetifRxRequest`] / [`NetifRxResponse`], 8-byte slots, 256 per page).
//! A request with `NETTXF_extra_info` (or a response with
//! `NETRXF_extra_info`) is followed by a slot holding a
//! [`NetifExtraInfo`] instead.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// Slots a backend must accept for one packet.
pub const XEN_NETIF_NR_SLOTS_MIN: u32 = 18;
/// Largest packet on the transmit ring.
pub const XEN_NETIF_MAX_TX_SIZE: u32 = 0xffff;

/// Tx flag: the checksum is blank (to be computed).
pub const NETTXF_CSUM_BLANK: u16 = 1 << 0;
/// Tx flag: the data is validated.
pub const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
/// Tx flag: the packet continues in the next request.
pub const NETTXF_MORE_DATA: u16 = 1 << 2;
/// Tx flag: an extra-info slot follows.
pub const NETTXF_EXTRA_INFO: u16 = 1 << 3;

/// Rx flag: the data is validated.
pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
/// Rx flag: the checksum is blank.
pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
/// Rx flag: the packet continues in the next response.
pub const NETRXF_MORE_DATA: u16 = 1 << 2;
/// Rx flag: an extra-info slot follows.
pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;
/// Rx flag: a GSO prefix descriptor precedes the packet.
pub const NETRXF_GSO_PREFIX: u16 = 1 << 4;

/// Extra-info type: none.
pub const XEN_NETIF_EXTRA_TYPE_NONE: u8 = 0;
/// Extra-info type: GSO.
pub const XEN_NETIF_EXTRA_TYPE_GSO: u8 = 1;
/// Extra-info type: add a multicast address.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// Extra-info type: remove a multicast address.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// Extra-info type: hash value.
pub const XEN_NETIF_EXTRA_TYPE_HASH: u8 = 4;
/// Number of extra-info types.
pub const XEN_NETIF_EXTRA_TYPE_MAX: u8 = 5;
/// Extra-info flag: another extra-info slot follows.
pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1 << 0;
/// GSO type: none.
pub const XEN_NETIF_GSO_TYPE_NONE: u8 = 0;
/// GSO type: TCP over IPv4.
pub const XEN_NETIF_GSO_TYPE_TCPV4: u8 = 1;
/// GSO type: TCP over IPv6.
pub const XEN_NETIF_GSO_TYPE_TCPV6: u8 = 2;

/// Response status: packet dropped.
pub const NETIF_RSP_DROPPED: i16 = -2;
/// Response status: error.
pub const NETIF_RSP_ERROR: i16 = -1;
/// Response status: success.
pub const NETIF_RSP_OKAY: i16 = 0;
/// Response status: no response (an extra-info slot).
pub const NETIF_RSP_NULL: i16 = 1;

/// Slots of a one-page transmit ring.
pub const NET_TX_RING_SIZE: u32 = super::ring::ring_size(4096, 12);
/// Slots of a one-page receive ring.
pub const NET_RX_RING_SIZE: u32 = super::ring::ring_size(4096, 8);

/// `netif_tx_request`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NetifTxRequest {
    /// Grant of the packet's page.
    pub gref: u32,
    /// Offset in the page.
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    /// Echoed in the response.
    pub id: u16,
    /// Bytes (for the first request of a packet: the whole packet's).
    pub size: u16,
}
assert_layout!(NetifTxRequest, 12; gref = 0, offset = 4, flags = 6, id = 8, size = 10);

/// `netif_tx_response`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NetifTxResponse {
    /// The request's `id`.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}
assert_layout!(NetifTxResponse, 4; id = 0, status = 2);

/// `netif_rx_request`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NetifRxRequest {
    /// Echoed in the response.
    pub id: u16,
    /// Reserved.
    pub pad: u16,
    /// Grant of an empty page for the backend to fill.
    pub gref: u32,
}
assert_layout!(NetifRxRequest, 8; id = 0, pad = 2, gref = 4);

/// `netif_rx_response`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NetifRxResponse {
    /// The request's `id`.
    pub id: u16,
    /// Offset of the data in the page.
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// Bytes received (if positive) or `NETIF_RSP_*`.
    pub status: i16,
}
assert_layout!(NetifRxResponse, 8; id = 0, offset = 2, flags = 4, status = 6);

/// `netif_extra_info`: a slot of extra information (8 bytes).
///
/// `u` is the C union, as bytes: `gso` = size (LE u16), type, pad,
/// features (LE u16); `mcast` = a MAC address; `hash` = type, algorithm,
/// value (4 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NetifExtraInfo {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    pub type_: u8,
    /// `XEN_NETIF_EXTRA_FLAG_*`.
    pub flags: u8,
    /// The union, as bytes.
    pub u: [u8; 6],
}
assert_layout!(NetifExtraInfo, 8; type_ = 0, flags = 1, u = 2);

/// The `gso` view of [`NetifExtraInfo::u`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifGso {
    /// Maximum payload per segment.
    pub size: u16,
    /// `XEN_NETIF_GSO_TYPE_*`.
    pub type_: u8,
    /// `features`: reserved, 0.
    pub features: u16,
}

/// The `hash` view of [`NetifExtraInfo::u`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifHash {
    /// `_XEN_NETIF_CTRL_HASH_TYPE_*` bit number.
    pub type_: u8,
    /// `XEN_NETIF_CTRL_HASH_ALGORITHM_*`.
    pub algorithm: u8,
    /// The hash, as stored (little-endian on x86).
    pub value: [u8; 4],
}

impl NetifExtraInfo {
    /// `u.gso`.
    pub const fn gso(&self) -> NetifGso {
        NetifGso {
            size: u16::from_le_bytes([self.u[0], self.u[1]]),
            type_: self.u[2],
            features: u16::from_le_bytes([self.u[4], self.u[5]]),
        }
    }

    /// Sets `u.gso`.
    pub const fn set_gso(&mut self, g: NetifGso) {
        let s = g.size.to_le_bytes();
        let f = g.features.to_le_bytes();
        self.u = [s[0], s[1], g.type_, 0, f[0], f[1]];
    }

    /// `u.mcast.addr`.
    pub const fn mcast_addr(&self) -> [u8; 6] {
        self.u
    }

    /// `u.hash`.
    pub const fn hash(&self) -> NetifHash {
        NetifHash {
            type_: self.u[0],
            algorithm: self.u[1],
            value: [self.u[2], self.u[3], self.u[4], self.u[5]],
        }
    }
}

/// Hash-type bit: IPv4.
pub const XEN_NETIF_CTRL_HASH_TYPE_IPV4: u32 = 1 << 0;
/// Hash-type bit: IPv4 + TCP.
pub const XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP: u32 = 1 << 1;
/// Hash-type bit: IPv6.
pub const XEN_NETIF_CTRL_HASH_TYPE_IPV6: u32 = 1 << 2;
/// Hash-type bit: IPv6 + TCP.
pub const XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP: u32 = 1 << 3;
/// Hash algorithm: none.
pub const XEN_NETIF_CTRL_HASH_ALGORITHM_NONE: u8 = 0;
/// Hash algorithm: Toeplitz.
pub const XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ: u8 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_info_views_and_ring_sizes() {
        let mut e = NetifExtraInfo {
            type_: XEN_NETIF_EXTRA_TYPE_GSO,
            ..Default::default()
        };
        let g = NetifGso {
            size: 1448,
            type_: XEN_NETIF_GSO_TYPE_TCPV4,
            features: 0,
        };
        e.set_gso(g);
        assert_eq!(e.gso(), g);
        assert_eq!(e.as_bytes(), &[1, 0, 0xa8, 0x05, 1, 0, 0, 0]);
        assert_eq!((NET_TX_RING_SIZE, NET_RX_RING_SIZE), (256, 256));
    }
}
