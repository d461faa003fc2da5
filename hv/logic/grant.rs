//! Grant tables: the rules, apart from memory.
//!
//! A domain grants another access to one of its frames by writing an entry
//! in its grant table, a set of frames it shares with hv. An entry's first
//! word is `flags` (16 bits) and `domid` (16 bits); version 1 keeps the
//! frame in the next 32 bits and the access state (`GTF_reading`,
//! `GTF_writing`) in `flags` itself, version 2 keeps the frame in the
//! second 64-bit word and the access state in a separate status word per
//! entry, in status frames.
//!
//! The granting domain may rewrite its entries at any time, from any of its
//! vCPUs. So hv reads an entry's first word once, decides on that copy, and
//! publishes its access with a compare-exchange of the whole word (version
//! 1: a changed word means the decision is retried, at most five times,
//! and then refused as Xen's "unstable entry"), or (version 2) sets its
//! status bits and reads the header again to see that the grant still
//! stands, taking its bits back if not (the granter's side of the protocol
//! clears `GTF_permit_access` and then waits for the status to be clear).
//!
//! hv's own view of an entry in use is its active entry ([`Active`]): who
//! maps it and how many times, read-only and writable ([`Pin`], the
//! counts of Xen's `act->pin`), and the frame it resolved to. While any
//! count is non-zero the shared entry is not consulted again for who may
//! map: the pin holds the grant, and the granter's changes take effect when
//! the last mapping goes.
//!
//! A mapping domain names each of its mappings by a handle into its
//! maptrack table ([`Maptrack`]), bounded by `max_maptrack_frames`.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use guest_abi::grant_table::{
    GNTMAP_DEVICE_MAP, GNTMAP_HOST_MAP, GNTST_GENERAL_ERROR, GNTST_NO_SPACE, GTF_ACCEPT_TRANSFER,
    GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, GTF_SUB_PAGE, GTF_TRANSFER_COMMITTED,
    GTF_TRANSFER_COMPLETED, GTF_TRANSITIVE, GTF_TYPE_MASK, GTF_WRITING,
};

/// Grant-table frames a domain may have unless its creator said otherwise
/// (Xen 4.17's `gnttab_max_frames` default).
pub const DEFAULT_MAX_GRANT_FRAMES: u32 = 64;
/// Maptrack frames a domain may have (Xen 4.17's `gnttab_max_maptrack_frames`).
pub const DEFAULT_MAX_MAPTRACK_FRAMES: u32 = 1024;
/// Version 1 entries per frame (8 bytes each).
pub const V1_PER_FRAME: u32 = 512;
/// Version 2 entries per frame (16 bytes each).
pub const V2_PER_FRAME: u32 = 256;
/// Version 2 status words per status frame (2 bytes each).
pub const STATUS_PER_FRAME: u32 = 2048;
/// Maptrack entries per maptrack frame (16 bytes each, as Xen's).
pub const MAPTRACK_PER_FRAME: u32 = 256;

/// Times a version 1 entry's word is tried again after the granter changed
/// it under hv's compare-exchange, before hv gives up on it.
const RETRIES: u32 = 4;

/// The grant-table layout a domain chose (`GNTTABOP_set_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    /// Entries `frames` grant frames hold.
    pub fn entries(self, frames: u32) -> u32 {
        frames.saturating_mul(match self {
            Version::V1 => V1_PER_FRAME,
            Version::V2 => V2_PER_FRAME,
        })
    }
}

/// Status frames version 2 needs beside `grant_frames` grant frames.
pub fn status_frames(grant_frames: u32) -> u32 {
    grant_frames
        .saturating_mul(V2_PER_FRAME)
        .div_ceil(STATUS_PER_FRAME)
}

/// A shared entry's first word (flags in the low half, domid in the high),
/// and for version 2 its status word: memory the granter writes too.
pub trait SharedEntry {
    /// One read of the first word.
    fn header(&self) -> u32;
    /// Replaces the first word if it still is `old`; what it was.
    fn cmpxchg_header(&self, old: u32, new: u32) -> u32;
    /// Sets `bits` in the access state (v1: in the flags; v2: the status).
    fn set_access(&self, version: Version, bits: u16);
    /// Clears `bits` in the access state.
    fn clear_access(&self, version: Version, bits: u16);
    /// Sets `bits` in the first word (the flags half).
    fn set_flags(&self, bits: u16);
}

/// An entry as host memory, for tests and for hv's own copies.
#[derive(Debug, Default)]
pub struct Words {
    pub header: AtomicU32,
    pub status: AtomicU16,
}

impl SharedEntry for Words {
    fn header(&self) -> u32 {
        self.header.load(Ordering::SeqCst)
    }

    fn cmpxchg_header(&self, old: u32, new: u32) -> u32 {
        match self
            .header
            .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(v) | Err(v) => v,
        }
    }

    fn set_access(&self, version: Version, bits: u16) {
        match version {
            Version::V1 => {
                self.header.fetch_or(u32::from(bits), Ordering::SeqCst);
            }
            Version::V2 => {
                self.status.fetch_or(bits, Ordering::SeqCst);
            }
        }
    }

    fn clear_access(&self, version: Version, bits: u16) {
        match version {
            Version::V1 => {
                self.header.fetch_and(!u32::from(bits), Ordering::SeqCst);
            }
            Version::V2 => {
                self.status.fetch_and(!bits, Ordering::SeqCst);
            }
        }
    }

    fn set_flags(&self, bits: u16) {
        self.header.fetch_or(u32::from(bits), Ordering::SeqCst);
    }
}

/// Xen's `gnttab_prepare_for_transfer`: the entry must accept a
/// transfer from domain `from` (its flags exactly `GTF_accept_transfer`,
/// its domid `from`), and then says `GTF_transfer_committed`, set by a
/// compare-exchange; `GNTST_general_error` otherwise. (Xen retries a
/// failed compare-exchange, but only the word it expects can pass the
/// check: a change under it is a refusal either way.)
pub fn commit_transfer(entry: &impl SharedEntry, from: u16) -> Result<(), i16> {
    let seen = entry.header();
    let (flags, domid) = split(seen);
    if flags != GTF_ACCEPT_TRANSFER || domid != from {
        return Err(GNTST_GENERAL_ERROR);
    }
    let committed = seen | u32::from(GTF_TRANSFER_COMMITTED);
    if entry.cmpxchg_header(seen, committed) != seen {
        return Err(GNTST_GENERAL_ERROR);
    }
    Ok(())
}

/// The end of a transfer the entry committed to ([`commit_transfer`]),
/// once its frame field names the frame: `GTF_transfer_completed`.
pub fn complete_transfer(entry: &impl SharedEntry) {
    entry.set_flags(GTF_TRANSFER_COMPLETED);
}

/// The first word's halves.
pub fn split(header: u32) -> (u16, u16) {
    let [a, b, c, d] = header.to_le_bytes();
    (u16::from_le_bytes([a, b]), u16::from_le_bytes([c, d]))
}

/// What a use of a grant asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// The domain using it (the entry must name it).
    pub user: u16,
    pub readonly: bool,
    /// A mapping (a sub-page grant cannot be mapped, only copied).
    pub map: bool,
}

/// Whether `flags`/`domid` grant `want` (apart from read-only).
fn grants(version: Version, flags: u16, domid: u16, want: Want) -> bool {
    let mask = if want.map {
        GTF_TYPE_MASK | GTF_SUB_PAGE
    } else {
        GTF_TYPE_MASK
    };
    let kind = flags & mask;
    let kind_ok = kind == GTF_PERMIT_ACCESS || (version == Version::V2 && kind == GTF_TRANSITIVE);
    kind_ok && domid == want.user
}

/// Publishes a use of the entry in its access state, checking the grant
/// (unless `pinned`: an entry already in use is held by its active entry,
/// and only a write use is checked against `GTF_readonly`).
/// `GNTST_general_error` if the entry does not grant it or (v1) keeps
/// changing under the compare-exchange.
pub fn acquire(
    entry: &impl SharedEntry,
    version: Version,
    pinned: bool,
    want: Want,
) -> Result<(), i16> {
    let bits = if want.readonly {
        GTF_READING
    } else {
        GTF_READING | GTF_WRITING
    };
    match version {
        Version::V1 => {
            let mut seen = entry.header();
            let mut tries = 0;
            loop {
                let (flags, domid) = split(seen);
                if !pinned && !grants(version, flags, domid, want) {
                    return Err(GNTST_GENERAL_ERROR);
                }
                if !want.readonly && flags & GTF_READONLY != 0 {
                    return Err(GNTST_GENERAL_ERROR);
                }
                let now = entry.cmpxchg_header(seen, seen | u32::from(bits));
                if now == seen {
                    return Ok(());
                }
                if tries == RETRIES {
                    return Err(GNTST_GENERAL_ERROR);
                }
                tries += 1;
                seen = now;
            }
        }
        Version::V2 => {
            let (flags, domid) = split(entry.header());
            if !pinned && !grants(version, flags, domid, want) {
                return Err(GNTST_GENERAL_ERROR);
            }
            if !want.readonly && flags & GTF_READONLY != 0 {
                return Err(GNTST_GENERAL_ERROR);
            }
            entry.set_access(version, bits);
            // The granter may have revoked the grant, or made it read-only,
            // between the read and the status write: look again.
            let (flags, domid) = split(entry.header());
            let writable_lost = !want.readonly && flags & GTF_READONLY != 0;
            if !pinned && (!grants(version, flags, domid, want) || writable_lost) {
                entry.clear_access(version, GTF_READING | GTF_WRITING);
                return Err(GNTST_GENERAL_ERROR);
            }
            if pinned && writable_lost {
                entry.clear_access(version, GTF_WRITING);
                return Err(GNTST_GENERAL_ERROR);
            }
            Ok(())
        }
    }
}

/// The counts of an entry's uses, one byte each (Xen's `act->pin`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pin(pub u32);

/// Which count a use is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    HostWrite,
    HostRead,
    DeviceWrite,
    DeviceRead,
}

impl Use {
    fn shift(self) -> u32 {
        match self {
            Use::HostWrite => 0,
            Use::HostRead => 8,
            Use::DeviceWrite => 16,
            Use::DeviceRead => 24,
        }
    }
}

impl Pin {
    /// No use at all.
    pub fn is_free(self) -> bool {
        self.0 == 0
    }

    /// Some writable use.
    pub fn writable(self) -> bool {
        self.count(Use::HostWrite) != 0 || self.count(Use::DeviceWrite) != 0
    }

    pub fn count(self, u: Use) -> u32 {
        (self.0 >> u.shift()) & 0xff
    }

    /// Any count at 128 or more: one more use is refused (Xen's overflow
    /// guard, so no count ever wraps).
    pub fn near_overflow(self) -> bool {
        self.0 & 0x8080_8080 != 0
    }

    /// One more `u`, if its count has room (callers refuse at 128
    /// already: [`Pin::near_overflow`]).
    pub fn with(self, u: Use) -> Option<Pin> {
        (self.count(u) != 0xff).then(|| Pin(self.0 + (1 << u.shift())))
    }

    /// One `u` fewer, if there is one.
    pub fn without(self, u: Use) -> Option<Pin> {
        (self.count(u) != 0).then(|| Pin(self.0 - (1 << u.shift())))
    }
}

/// hv's record of an entry in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Active {
    pub pin: Pin,
    /// The domain using it (while pinned).
    pub user: u16,
    /// The machine frame it resolved to when first pinned.
    pub mfn: u64,
}

/// Whether a new use of an entry whose active record is `act` must first
/// publish itself in the shared entry ([`acquire`]): the first use, and the
/// first writable use of an entry used only read-only so far.
pub fn needs_acquire(act: &Active, readonly: bool) -> bool {
    act.pin.is_free() || (!readonly && !act.pin.writable())
}

/// Checks a new use by `user` of an entry in use: `GNTST_general_error` if
/// another domain uses it or a count would overflow.
pub fn check_pinned(act: &Active, user: u16) -> Result<(), i16> {
    if !act.pin.is_free() && (act.user != user || act.pin.near_overflow()) {
        return Err(GNTST_GENERAL_ERROR);
    }
    Ok(())
}

/// The access bits to clear after `act`'s pin dropped from `before`:
/// writing when the last writable use went, reading too when the last use.
pub fn access_to_clear(before: Pin, after: Pin) -> u16 {
    let mut bits = 0;
    if before.writable() && !after.writable() {
        bits |= GTF_WRITING;
    }
    if !before.is_free() && after.is_free() {
        bits |= GTF_READING | GTF_WRITING;
    }
    bits
}

/// One mapping a domain made of another's grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub granter: u16,
    pub gref: u32,
    /// `GNTMAP_*` flags of the map request.
    pub flags: u32,
    /// The address it was mapped at (`host_addr`).
    pub host_addr: u64,
}

/// A domain's mappings by handle, growing a frame's worth of handles at a
/// time up to `max_frames` frames.
///
/// A mapping is busy while one operation owns it: from [`insert`] until
/// the map that made it succeeded ([`release`]) or failed ([`remove`]),
/// and from an unmap's [`claim`] until its [`finish`]. An unmap claims
/// only a mapping nobody owns, so two unmaps of one handle (or an unmap
/// of a handle still being made) never both act on it: the check and the
/// action span two locks (the mapper's maptrack, then the granter's
/// table), and the busy mark joins them.
///
/// [`insert`]: Maptrack::insert
/// [`release`]: Maptrack::release
/// [`remove`]: Maptrack::remove
/// [`claim`]: Maptrack::claim
/// [`finish`]: Maptrack::finish
#[derive(Debug)]
pub struct Maptrack {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    max_frames: u32,
}

/// A handle in use.
#[derive(Debug, Clone, Copy)]
struct Slot {
    m: Mapping,
    busy: bool,
}

impl Maptrack {
    pub fn new(max_frames: u32) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            max_frames,
        }
    }

    /// The most handles in use at once: all the maptrack frames hold but
    /// one, as on Xen, whose free list always keeps one entry (so a
    /// domain with one frame maps 255 grants at once).
    pub fn limit(&self) -> u32 {
        self.max_frames
            .saturating_mul(MAPTRACK_PER_FRAME)
            .saturating_sub(1)
    }

    /// A handle for `m`, busy (owned by the map making it);
    /// `GNTST_no_space` when every handle is in use (Xen's answer when
    /// `get_maptrack_handle` finds none).
    pub fn insert(&mut self, m: Mapping) -> Result<u32, i16> {
        if self.free.is_empty() {
            let have = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
            if have >= self.limit() {
                return Err(GNTST_NO_SPACE);
            }
            let grow = MAPTRACK_PER_FRAME.min(self.limit() - have);
            self.slots
                .try_reserve(grow as usize)
                .map_err(|_| GNTST_NO_SPACE)?;
            self.free
                .try_reserve(grow as usize)
                .map_err(|_| GNTST_NO_SPACE)?;
            self.slots.resize(self.slots.len() + grow as usize, None);
            // Lowest handle first out.
            self.free.extend((have..have + grow).rev());
        }
        let h = self.free.pop().ok_or(GNTST_NO_SPACE)?;
        if let Some(slot) = self.slots.get_mut(h as usize) {
            *slot = Some(Slot { m, busy: true });
        }
        Ok(h)
    }

    /// The mapping `handle` names, if it is in use.
    pub fn get(&self, handle: u32) -> Option<Mapping> {
        self.slot(handle).map(|s| s.m)
    }

    fn slot(&self, handle: u32) -> Option<Slot> {
        self.slots.get(handle as usize).copied().flatten()
    }

    fn slot_mut(&mut self, handle: u32) -> Option<&mut Slot> {
        self.slots.get_mut(handle as usize)?.as_mut()
    }

    /// The map that made `handle` is done with it.
    pub fn release(&mut self, handle: u32) {
        if let Some(s) = self.slot_mut(handle) {
            s.busy = false;
        }
    }

    /// `handle`'s mapping for an unmap, which owns it until [`finish`]:
    /// `None` if it is not in use or another operation owns it.
    ///
    /// [`finish`]: Maptrack::finish
    pub fn claim(&mut self, handle: u32) -> Option<Mapping> {
        let s = self.slot_mut(handle).filter(|s| !s.busy)?;
        s.busy = true;
        Some(s.m)
    }

    /// Ends an unmap of `handle` that left `flags` of its mapping: the
    /// handle goes with the last host or device mapping, else it keeps
    /// the rest, no longer busy.
    pub fn finish(&mut self, handle: u32, flags: u32) {
        if flags & (GNTMAP_HOST_MAP | GNTMAP_DEVICE_MAP) == 0 {
            self.remove(handle);
        } else if let Some(s) = self.slot_mut(handle) {
            s.m.flags = flags;
            s.busy = false;
        }
    }

    /// Ends `handle`'s mapping; what it was (`None`: not in use).
    pub fn remove(&mut self, handle: u32) -> Option<Mapping> {
        let s = self.slots.get_mut(handle as usize)?.take()?;
        self.free.push(handle);
        Some(s.m)
    }

    /// Handles in use.
    pub fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Every mapping in use, with its handle (for teardown).
    pub fn iter(&self) -> impl Iterator<Item = (u32, Mapping)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(h, s)| Some((u32::try_from(h).ok()?, (*s)?.m)))
    }
}

#[cfg(test)]
mod tests;
