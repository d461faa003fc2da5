//! dom0's block back end: one virtual block device of a domU, served from
//! a disk image in dom0's memory (a boot module; dom0 has no disk driver
//! yet), as Linux's `xen-blkback` serves `xen-blkfront`.
//!
//! - The handshake is `pv_drivers::xenbus::Backend`'s, driven by the
//!   front end's `state` node, which [`Vbd::poll`] reads after every pass
//!   of the store (dom0 serves the store in-process). The back end
//!   publishes `sectors`, `info`, `sector-size`, `feature-flush-cache`,
//!   `feature-discard` (writable disks), `max-ring-page-order` and
//!   `feature-max-indirect-segments` at `InitWait`; once the front end is `Initialised` it maps the ring
//!   its `ring-ref` grants (or `ring-ref0` ... for a ring of
//!   2^`ring-page-order` pages, at most the 4 `max-ring-page-order`
//!   offers), binds its `event-channel`, and is `Connected`.
//! - Requests are `pv_drivers::blkif`'s: each copied off the ring, checked
//!   against the disk, carried out by grant copy through staging pages
//!   of ours, a request's segments in one `GNTTABOP_copy` (indirect
//!   requests of up to 32 segments too). With slots for them, persistent
//!   grants are offered (`feature-persistent`): if the front end takes
//!   them, each grant it uses stays mapped at one of our slots, and its
//!   data moves by the CPU's copy (`grants::CopyGrants::keep_mapped`).
//! - A front end that lies about the ring's indices is reported and not
//!   served any more; a bad request gets `BLKIF_RSP_ERROR`.
//! - The disk's writes stay in dom0's memory; the 4 KiB blocks written are
//!   remembered, and [`MemDisk::dump_written`] prints them for the host
//!   (there is no other way out of dom0 yet).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use guest_abi::println;
use pv_drivers::blkif::{self, Disk, IoError, Request, Response, SECTOR};
use pv_drivers::ring::{Back, SharedRing};
use pv_drivers::xenstored::Store;

use crate::grants::CopyGrants;
use crate::handshake::{BackEnd, Handshake};
use crate::support::MappedPage;

const PAGE: usize = 4096;
/// The largest ring offered: 2^2 pages (`max-ring-page-order`).
pub const MAX_RING_ORDER: u32 = 2;
/// `info`'s `VDISK_READONLY`.
const VDISK_READONLY: u32 = 4;

/// A disk image in memory; the blocks written are remembered.
pub struct MemDisk {
    bytes: &'static mut [u8],
    read_only: bool,
    /// One bit per 4 KiB block: written since boot.
    written: Vec<u64>,
    /// Sectors discarded (zeroed) since boot, and the byte ranges.
    pub discarded: u64,
    discards: Vec<core::ops::Range<usize>>,
}

impl MemDisk {
    pub fn new(bytes: &'static mut [u8], read_only: bool) -> Self {
        let blocks = bytes.len().div_ceil(PAGE);
        Self {
            bytes,
            read_only,
            written: vec![0; blocks.div_ceil(64)],
            discarded: 0,
            discards: Vec::new(),
        }
    }

    fn range(&self, offset: u64, len: usize) -> Result<core::ops::Range<usize>, IoError> {
        let start = usize::try_from(offset).map_err(|_| IoError)?;
        let end = start.checked_add(len).ok_or(IoError)?;
        if end > self.bytes.len() {
            return Err(IoError);
        }
        Ok(start..end)
    }

    fn mark(&mut self, r: &core::ops::Range<usize>) {
        if r.is_empty() {
            return;
        }
        for block in r.start / PAGE..=(r.end - 1) / PAGE {
            if let Some(w) = self.written.get_mut(block / 64) {
                *w |= 1 << (block % 64);
            }
        }
    }

    /// Prints every range discarded as `<tag> <byte offset, hex> zeros
    /// <length, hex>`, then every block written, 64 bytes a line, as
    /// `<tag> <byte offset, hex> <bytes, hex>`: the host applies them, in
    /// that order, to its copy of the image.
    pub fn dump_written(&self, tag: &str) {
        // First the ranges discarded (zeros now unless written since: the
        // blocks written follow with what they hold).
        for r in &self.discards {
            println!("{tag} {:x} zeros {:x}", r.start, r.len());
        }
        let mut blocks = 0;
        for (i, &w) in self.written.iter().enumerate() {
            for bit in 0..64 {
                if w & (1 << bit) == 0 {
                    continue;
                }
                let start = (i * 64 + bit) * PAGE;
                let end = (start + PAGE).min(self.bytes.len());
                for at in (start..end).step_by(64) {
                    let chunk = &self.bytes[at..(at + 64).min(end)];
                    let mut hex = String::with_capacity(chunk.len() * 2);
                    for b in chunk {
                        hex.push_str(&format!("{b:02x}"));
                    }
                    println!("{tag} {at:x} {hex}");
                }
                blocks += 1;
            }
        }
        println!("{tag} end: {blocks} blocks of 4 KiB written");
    }
}

impl Disk for MemDisk {
    fn sectors(&self) -> u64 {
        self.bytes.len() as u64 / SECTOR
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read(&mut self, offset: u64, out: &mut [u8]) -> Result<(), IoError> {
        let r = self.range(offset, out.len())?;
        out.copy_from_slice(&self.bytes[r]);
        Ok(())
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), IoError> {
        let r = self.range(offset, data.len())?;
        self.bytes[r.clone()].copy_from_slice(data);
        self.mark(&r);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), IoError> {
        let r = self.range(offset, usize::try_from(len).map_err(|_| IoError)?)?;
        self.bytes[r.clone()].fill(0);
        self.discarded += len / SECTOR;
        // Kept as ranges, not written blocks: a discard covers megabytes.
        match self.discards.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => self.discards.push(r),
        }
        Ok(())
    }
}

/// The ring once connected.
struct Connection {
    /// The ring's pages' grant handles, `pages` of them.
    handles: [u32; 1 << MAX_RING_ORDER],
    pages: usize,
    port: u32,
    idx: guest_abi::io::ring::BackRing,
    /// The front end lied about the ring: not served any more.
    broken: bool,
}

/// How a back end lies, for tests of front ends (dom0's `vbd_hostile=`):
/// it never answers, answers each request under an id never sent,
/// claims a thousand responses more than it made, or vanishes at the
/// first request (unmaps the ring and closes its channel, the front end
/// told nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    Silent,
    BogusIds,
    Lie,
    Vanish,
}

impl Hostile {
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "silent" => Some(Self::Silent),
            "bogus-ids" => Some(Self::BogusIds),
            "lie" => Some(Self::Lie),
            "vanish" => Some(Self::Vanish),
            _ => None,
        }
    }
}

/// One virtual block device of domain `front`.
pub struct Vbd {
    /// A test's lying back end (`None`: an honest one).
    pub hostile: Option<Hostile>,
    front: u16,
    hs: Handshake,
    connection: Option<Connection>,
    /// Where the ring is mapped: [`MAX_RING_ORDER`]'s pages of ours.
    ring_va: u64,
    pub disk: MemDisk,
    grants: CopyGrants,
    /// Our slots for persistent grants (the first's address, how many),
    /// if there are any: then `feature-persistent` is offered.
    slots: Option<(u64, usize)>,
}

impl Vbd {
    /// Device `dev` of domain `front` (its store nodes made by
    /// `xenstored::toolstack::add_vbd`), served from `disk`, its ring to be
    /// mapped at our pages from `ring_va` (room for 2^[`MAX_RING_ORDER`]),
    /// persistent grants offered if there are `slots` for them (the
    /// first's address, how many).
    pub fn new(
        si: &guest_abi::xen::StartInfo,
        front: u16,
        dev: u32,
        (disk, ring_va): (MemDisk, u64),
        slots: Option<(u64, usize)>,
    ) -> Self {
        Self {
            front,
            hostile: None,
            hs: Handshake::new("vbd", front, dev),
            connection: None,
            ring_va,
            disk,
            grants: CopyGrants::new(si, front, blkif::MAX_INDIRECT_SEGMENTS),
            slots,
        }
    }

    /// Our event channel, once connected.
    pub fn port(&self) -> Option<u32> {
        self.connection.as_ref().map(|c| c.port)
    }

    /// Serves the requests on the ring, if connected; notifies the front
    /// end when it must be.
    pub fn serve(&mut self) {
        if self.hostile == Some(Hostile::Vanish) {
            let asked = self.connection.as_ref().is_some_and(|c| {
                // SAFETY: the ring's pages are mapped from `ring_va` while
                // connected.
                let page = unsafe { MappedPage::pages(self.ring_va, c.pages) };
                page.load(0) != c.idx.req_cons
            });
            if asked {
                println!(
                    "dom0: vbd of domain {}: vanishing at the first request (vbd_hostile=vanish)",
                    self.front
                );
                self.disconnect();
            }
            return;
        }
        let Some(c) = self.connection.as_mut().filter(|c| !c.broken) else {
            return;
        };
        // SAFETY: the ring's pages are mapped from `ring_va` while
        // connected.
        let page = unsafe { MappedPage::pages(self.ring_va, c.pages) };
        let mut back = Back::<_, Request, Response>::resume(&page, c.idx);
        let mut notify = false;
        let hostile = self.hostile;
        let r: Result<(), pv_drivers::ring::RingError> = (|| loop {
            while let Some(req) = back.next_request()? {
                let mut rsp = blkif::serve(&req, &mut self.disk, &mut self.grants);
                match hostile {
                    Some(Hostile::Silent) => continue,
                    Some(Hostile::BogusIds) => rsp.id = rsp.id.wrapping_add(1000),
                    None | Some(Hostile::Lie | Hostile::Vanish) => {}
                }
                back.queue(&rsp);
            }
            notify |= back.push();
            if !back.final_check()? {
                return Ok(());
            }
        })();
        c.idx = back.indices();
        if hostile == Some(Hostile::Lie) && notify {
            // After the real responses, a producer index a thousand past
            // what was produced.
            page.store(8, page.load(8).wrapping_add(1000));
        }
        if let Err(e) = r {
            println!(
                "dom0: vbd of domain {}: the ring's indices lie ({e:?}): not served any more",
                self.front
            );
            c.broken = true;
        }
        if notify {
            toolstack::serve::notify(c.port);
        }
    }
}

impl Vbd {
    /// Our page `i` of the ring.
    fn page_va(&self, i: usize) -> u64 {
        self.ring_va + i as u64 * PAGE as u64
    }

    fn unmap(&self, handles: &[u32]) {
        for (i, &h) in handles.iter().enumerate() {
            crate::grants::unmap_ring(self.page_va(i), h);
        }
    }
}

impl BackEnd for Vbd {
    fn handshake(&mut self) -> &mut Handshake {
        &mut self.hs
    }

    fn publish(&mut self, s: &mut Store) {
        let sectors = self.disk.sectors();
        let info = if self.disk.read_only {
            VDISK_READONLY
        } else {
            0
        };
        self.hs.write(s, "sectors", format!("{sectors}").as_bytes());
        self.hs.write(s, "sector-size", b"512");
        self.hs.write(s, "info", format!("{info}").as_bytes());
        self.hs.write(s, "feature-flush-cache", b"1");
        self.hs.write(
            s,
            "max-ring-page-order",
            format!("{MAX_RING_ORDER}").as_bytes(),
        );
        // Discard in whole sectors; a discarded range reads back as zeros.
        if !self.disk.read_only {
            self.hs.write(s, "feature-discard", b"1");
            self.hs.write(s, "discard-granularity", b"512");
            self.hs.write(s, "discard-alignment", b"0");
        }
        let indirect = pv_drivers::blkif::MAX_INDIRECT_SEGMENTS;
        self.hs.write(
            s,
            "feature-max-indirect-segments",
            format!("{indirect}").as_bytes(),
        );
        if self.slots.is_some() {
            self.hs.write(s, "feature-persistent", b"1");
        }
    }

    fn connect(&mut self, s: &Store) -> Result<(), String> {
        let number = |node: &str| {
            self.hs
                .front_value(s, node)
                .and_then(|v| v.trim_end_matches('\0').parse::<u32>().ok())
                .ok_or_else(|| format!("no {node} from the front end"))
        };
        // One page (`ring-ref`), or 2^order (`ring-page-order`,
        // `ring-ref0` ...), at most what we offered.
        let order = match self.hs.front_value(s, "ring-page-order") {
            None => None,
            Some(_) => Some(number("ring-page-order")?),
        };
        if order.is_some_and(|o| o > MAX_RING_ORDER) {
            return Err(format!("ring-page-order {order:?} over {MAX_RING_ORDER}"));
        }
        let pages = 1usize << order.unwrap_or(0);
        let mut grefs = [0u32; 1 << MAX_RING_ORDER];
        for (i, g) in grefs.iter_mut().take(pages).enumerate() {
            *g = match order {
                None => number("ring-ref")?,
                Some(_) => number(&format!("ring-ref{i}"))?,
            };
        }
        let evtchn = number("event-channel")?;
        if let Some(p) = self.hs.front_value(s, "protocol") {
            if p.trim_end_matches('\0') != "x86_64-abi" {
                return Err(format!("protocol {p:?} is not x86_64-abi"));
            }
        }
        let mut handles = [0u32; 1 << MAX_RING_ORDER];
        for i in 0..pages {
            match crate::grants::map_ring(self.page_va(i), self.front, grefs[i]) {
                Ok(h) => handles[i] = h,
                Err(e) => {
                    self.unmap(&handles[..i]);
                    return Err(e);
                }
            }
        }
        let port = match toolstack::serve::bind(self.front, evtchn) {
            Ok(p) => p,
            Err(e) => {
                self.unmap(&handles[..pages]);
                return Err(format!("binding event-channel {evtchn}: {e}"));
            }
        };
        // SAFETY: the ring's pages are mapped from `ring_va` until
        // `disconnect`.
        let ring = unsafe { MappedPage::pages(self.ring_va, pages) };
        let Some(back) = Back::<_, Request, Response>::new(&ring) else {
            self.unmap(&handles[..pages]);
            toolstack::serve::close_port(port);
            return Err("no ring fits".into());
        };
        // Persistent grants if both offer them: kept mapped at our slots.
        let persistent = self
            .hs
            .front_value(s, "feature-persistent")
            .is_some_and(|v| v.trim_end_matches('\0') == "1");
        let kept = match (persistent, self.slots) {
            (true, Some((base, room))) => {
                self.grants.keep_mapped(base, room);
                format!(", persistent grants (up to {room} kept mapped)")
            }
            _ => String::new(),
        };
        println!(
            "dom0: vbd of domain {}: connected, a ring of {pages} page{} ({} slots){kept}",
            self.front,
            if pages == 1 { "" } else { "s" },
            back.size()
        );
        self.connection = Some(Connection {
            handles,
            pages,
            port,
            idx: back.indices(),
            broken: false,
        });
        Ok(())
    }

    /// Unmaps the ring and the grants kept mapped, and closes the
    /// channel.
    fn disconnect(&mut self) {
        if let Some(c) = self.connection.take() {
            self.unmap(&c.handles[..c.pages]);
            toolstack::serve::close_port(c.port);
        }
        let kept = self.grants.kept();
        if kept != 0 {
            println!(
                "dom0: vbd of domain {}: {kept} persistent grants were kept mapped",
                self.front
            );
        }
        self.grants.unmap_kept();
    }
}
