//! A network back end's core (`io/netif.h`, the types are
//! `guest_abi::io::netif`'s): packets assembled from a front end's
//! transmit requests, checked as Linux's netback checks them
//! ([`assemble`]), and packets delivered into the pages its receive
//! requests grant ([`deliver`]).
//!
//! A packet is a first request (its `size` the whole packet's), its
//! extra-info slots if it says `NETTXF_extra_info` (each chained with
//! `XEN_NETIF_EXTRA_FLAG_MORE`), then the requests it chains with
//! `NETTXF_more_data`. Every slot gets a response: `NETIF_RSP_OKAY` for
//! data, `NETIF_RSP_NULL` for extra info, `NETIF_RSP_ERROR` for a dropped
//! packet's.
//!
//! - Dropped (the front end may go on): a first slot holding less than
//!   an Ethernet header, later slots holding more than the packet's size,
//!   more than 18 slots (`XEN_NETIF_NR_SLOTS_MIN`).
//! - Fatal (the back end stops serving the front end, as netback's
//!   `netbk_fatal_tx_err`): a slot crossing its page, an extra-info type
//!   that does not exist, a packet of more than 20 slots.

use alloc::vec::Vec;

use guest_abi::io::netif::{
    NetifExtraInfo, NetifGso, NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse,
    NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED,
    NETRXF_MORE_DATA, NETTXF_CSUM_BLANK, NETTXF_DATA_VALIDATED, NETTXF_EXTRA_INFO,
    NETTXF_MORE_DATA, XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_TYPE_GSO,
    XEN_NETIF_EXTRA_TYPE_MAX, XEN_NETIF_EXTRA_TYPE_NONE, XEN_NETIF_MAX_TX_SIZE,
    XEN_NETIF_NR_SLOTS_MIN,
};
use zerocopy::{FromBytes, IntoBytes};

use crate::blkif::{Grants, IoError};

/// Slots past which a packet ends the front end's service (Linux's
/// `fatal_skb_slots` default).
pub const FATAL_SLOTS: usize = 20;
/// Bytes of an Ethernet header: no smaller packet is taken.
pub const ETH_HLEN: usize = 14;
const PAGE: u32 = 4096;

/// A packet's data in the front end's granted pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// (grant, offset, bytes) of each data slot, in order.
    pub pieces: Vec<(u32, u16, u16)>,
    pub len: usize,
    /// `NETTXF_csum_blank`: the checksum is still to be filled in.
    pub csum_blank: bool,
    pub data_validated: bool,
    /// A GSO extra-info slot's settings.
    pub gso: Option<NetifGso>,
}

/// What the requests at the head of the ring make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tx {
    /// The packet is not whole yet: wait for more requests.
    Incomplete,
    /// A packet, and the responses to its slots.
    Packet(Packet, Vec<NetifTxResponse>),
    /// A packet dropped, and the responses (errors) to its slots.
    Dropped(&'static str, Vec<NetifTxResponse>),
    /// The front end broke the protocol: stop serving it.
    Fatal(&'static str),
}

/// The packet the requests `reqs` (copies, in ring order) start with, and
/// how many requests it took.
pub fn assemble(reqs: &[NetifTxRequest]) -> (usize, Tx) {
    let Some(first) = reqs.first() else {
        return (0, Tx::Incomplete);
    };
    let mut responses = Vec::new();
    let mut i = 1;
    let mut gso = None;
    // Extra-info slots.
    let mut more_extra = first.flags & NETTXF_EXTRA_INFO != 0;
    while more_extra {
        let Some(slot) = reqs.get(i) else {
            return (0, Tx::Incomplete);
        };
        let Ok(extra) = NetifExtraInfo::read_from_bytes(&slot.as_bytes()[..8]) else {
            return (0, Tx::Fatal("unreadable extra info"));
        };
        if extra.type_ == XEN_NETIF_EXTRA_TYPE_NONE || extra.type_ >= XEN_NETIF_EXTRA_TYPE_MAX {
            return (0, Tx::Fatal("bad extra info type"));
        }
        if extra.type_ == XEN_NETIF_EXTRA_TYPE_GSO {
            gso = Some(extra.gso());
        }
        responses.push((slot.id, NETIF_RSP_NULL));
        more_extra = extra.flags & XEN_NETIF_EXTRA_FLAG_MORE != 0;
        i += 1;
    }
    // Data slots: the first, then those it chains.
    let mut data = alloc::vec![*first];
    let mut more = first.flags & NETTXF_MORE_DATA != 0;
    while more {
        let Some(slot) = reqs.get(i) else {
            return (0, Tx::Incomplete);
        };
        data.push(*slot);
        more = slot.flags & NETTXF_MORE_DATA != 0;
        i += 1;
        if data.len() > FATAL_SLOTS {
            return (0, Tx::Fatal("too many slots"));
        }
    }
    let total = usize::from(first.size);
    let rest: usize = data.iter().skip(1).map(|s| usize::from(s.size)).sum();
    // The first slot holds what the others do not (netback's
    // `first->size -= txp->size`).
    let first_len = total.saturating_sub(rest);
    let crosses = |offset: u16, len: usize| usize::from(offset) + len > PAGE as usize;
    if crosses(first.offset, first_len)
        || data
            .iter()
            .skip(1)
            .any(|s| crosses(s.offset, usize::from(s.size)))
    {
        return (0, Tx::Fatal("a slot crosses its page"));
    }
    let mut all = responses;
    let drop = if data.len() > XEN_NETIF_NR_SLOTS_MIN as usize {
        Some("too many slots for a packet")
    } else if rest > total {
        Some("later slots hold more than the packet's size")
    } else if first_len < ETH_HLEN {
        Some("a first slot smaller than an Ethernet header")
    } else {
        None
    };
    let status = if drop.is_some() {
        NETIF_RSP_ERROR
    } else {
        NETIF_RSP_OKAY
    };
    // Responses in slot order: the first, its extras, then the rest.
    let mut out = Vec::with_capacity(i);
    out.push(NetifTxResponse {
        id: first.id,
        status,
    });
    for (id, st) in all.drain(..) {
        out.push(NetifTxResponse {
            id,
            status: if drop.is_some() { NETIF_RSP_ERROR } else { st },
        });
    }
    out.extend(
        data.iter()
            .skip(1)
            .map(|s| NetifTxResponse { id: s.id, status }),
    );
    if let Some(why) = drop {
        return (i, Tx::Dropped(why, out));
    }
    let first_len = u16::try_from(first_len).unwrap_or(0);
    let mut pieces = alloc::vec![(first.gref, first.offset, first_len)];
    pieces.extend(data.iter().skip(1).map(|s| (s.gref, s.offset, s.size)));
    let packet = Packet {
        pieces,
        len: total,
        csum_blank: first.flags & NETTXF_CSUM_BLANK != 0,
        data_validated: first.flags & NETTXF_DATA_VALIDATED != 0,
        gso,
    };
    (i, Tx::Packet(packet, out))
}

/// Copies `p`'s bytes out of the front end's pages.
pub fn copy(p: &Packet, grants: &mut impl Grants) -> Result<Vec<u8>, IoError> {
    let mut out = alloc::vec![0u8; p.len];
    let mut at = 0;
    for &(gref, offset, len) in &p.pieces {
        let len = usize::from(len);
        grants.copy_from(gref, offset, out.get_mut(at..at + len).ok_or(IoError)?)?;
        at += len;
    }
    Ok(out)
}

/// Why a packet was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxError {
    /// The front end has not posted enough receive requests: this many
    /// are needed (none was used).
    NoRoom(usize),
    /// Over the largest packet a front end takes (64 KiB - 1).
    TooBig,
}

/// Delivers `packet` into the pages the receive requests `rx` grant
/// (copies, in ring order), a page each from offset 0, by grant copy: the
/// responses for the requests used (as many as the packet needs pages),
/// the first carrying the checksum flags, each but the last
/// `NETRXF_more_data`, each status the bytes it holds or
/// `NETIF_RSP_ERROR` where the copy failed.
pub fn deliver(
    packet: &[u8],
    csum_blank: bool,
    data_validated: bool,
    rx: &[NetifRxRequest],
    grants: &mut impl Grants,
) -> Result<Vec<NetifRxResponse>, RxError> {
    if packet.len() > XEN_NETIF_MAX_TX_SIZE as usize {
        return Err(RxError::TooBig);
    }
    let chunks: Vec<&[u8]> = packet.chunks(PAGE as usize).collect();
    let need = chunks.len().max(1);
    if rx.len() < need {
        return Err(RxError::NoRoom(need));
    }
    let last = need - 1;
    Ok(rx
        .iter()
        .zip(chunks.iter().copied().chain(core::iter::once(&[][..])))
        .take(need)
        .enumerate()
        .map(|(i, (req, chunk))| {
            let mut flags = 0;
            if i == 0 && csum_blank {
                flags |= NETRXF_CSUM_BLANK;
            }
            if i == 0 && data_validated {
                flags |= NETRXF_DATA_VALIDATED;
            }
            if i != last {
                flags |= NETRXF_MORE_DATA;
            }
            let status = match grants.copy_to(req.gref, 0, chunk) {
                Ok(()) => i16::try_from(chunk.len()).unwrap_or(NETIF_RSP_ERROR),
                Err(IoError) => NETIF_RSP_ERROR,
            };
            NetifRxResponse {
                id: req.id,
                offset: 0,
                flags,
                status,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests;
