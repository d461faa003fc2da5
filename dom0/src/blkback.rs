//! dom0's block back end: one virtual block device of a domU, served from
//! a disk image in dom0's memory (a boot module; dom0 has no disk driver
//! yet), as Linux's `xen-blkback` serves `xen-blkfront`.
//!
//! - The handshake is `pv_drivers::xenbus::Backend`'s, driven by the
//!   front end's `state` node, which [`Vbd::poll`] reads after every pass
//!   of the store (dom0 serves the store in-process). The back end
//!   publishes `sectors`, `info`, `sector-size` and `feature-flush-cache`
//!   at `InitWait`; once the front end is `Initialised` it maps the ring
//!   its `ring-ref` grants (one page: no `max-ring-page-order` is
//!   offered), binds its `event-channel`, and is `Connected`.
//! - Requests are `pv_drivers::blkif`'s: each copied off the ring, checked
//!   against the disk, carried out by grant copy through a bounce page
//!   (no indirect descriptors or persistent grants are offered).
//! - A front end that lies about the ring's indices is reported and not
//!   served any more; a bad request gets `BLKIF_RSP_ERROR`.
//! - The disk's writes stay in dom0's memory; the 4 KiB blocks written are
//!   remembered, and [`MemDisk::dump_written`] prints them for the host
//!   (there is no other way out of dom0 yet).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use guest_abi::grant_table::{
    GnttabCopy, GnttabCopyPtr, GnttabMapGrantRef, GnttabUnmapGrantRef, GNTCOPY_DEST_GREF,
    GNTCOPY_SOURCE_GREF, GNTMAP_HOST_MAP, GNTTABOP_COPY, GNTTABOP_MAP_GRANT_REF,
    GNTTABOP_UNMAP_GRANT_REF,
};
use guest_abi::hypercall::typed;
use guest_abi::println;
use guest_abi::xen::DOMID_SELF;
use pv_drivers::blkif::{self, Disk, Grants, IoError, Request, Response, SECTOR};
use pv_drivers::ring::Back;
use pv_drivers::xenbus::{parse_state, state_value, Backend, State, Step};
use pv_drivers::xenstored::{Conn, Store};

use crate::support::MappedPage;

const DOM0: Conn = Conn {
    domid: 0,
    privileged: true,
};
const PAGE: usize = 4096;
/// `info`'s `VDISK_READONLY`.
const VDISK_READONLY: u32 = 4;

/// A disk image in memory; the blocks written are remembered.
pub struct MemDisk {
    bytes: &'static mut [u8],
    read_only: bool,
    /// One bit per 4 KiB block: written since boot.
    written: Vec<u64>,
}

impl MemDisk {
    pub fn new(bytes: &'static mut [u8], read_only: bool) -> Self {
        let blocks = bytes.len().div_ceil(PAGE);
        Self {
            bytes,
            read_only,
            written: vec![0; blocks.div_ceil(64)],
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

    /// Prints every block written, 64 bytes a line, as
    /// `<tag> <byte offset, hex> <bytes, hex>`: the host applies them to
    /// its copy of the image.
    pub fn dump_written(&self, tag: &str) {
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
        self.mark(&r);
        Ok(())
    }
}

/// A page of ours, page aligned, for grant copies.
#[repr(C, align(4096))]
struct Bounce([u8; PAGE]);

/// The front end's pages reached by `GNTTABOP_copy`, one segment at a
/// time, through a bounce page of ours.
struct CopyGrants {
    front: u16,
    bounce: Box<Bounce>,
    bounce_mfn: u64,
}

impl CopyGrants {
    fn copy(&mut self, op: GnttabCopy) -> Result<(), IoError> {
        let mut ops = [op];
        // SAFETY: `ops` is a live gnttab_copy; its local end is our bounce
        // page.
        let rc = unsafe { typed::grant_table_op(GNTTABOP_COPY, ops.as_mut_ptr().cast(), 1) };
        if rc == 0 && ops[0].status == 0 {
            Ok(())
        } else {
            Err(IoError)
        }
    }

    fn ends(&self, gref: u32, offset: u16) -> (GnttabCopyPtr, GnttabCopyPtr) {
        let theirs = GnttabCopyPtr {
            u: u64::from(gref),
            domid: self.front,
            offset,
            _pad: 0,
        };
        let ours = GnttabCopyPtr {
            u: self.bounce_mfn,
            domid: DOMID_SELF,
            offset: 0,
            _pad: 0,
        };
        (theirs, ours)
    }
}

impl Grants for CopyGrants {
    fn copy_from(&mut self, gref: u32, offset: u16, out: &mut [u8]) -> Result<(), IoError> {
        let len = u16::try_from(out.len()).map_err(|_| IoError)?;
        let (source, dest) = self.ends(gref, offset);
        self.copy(GnttabCopy {
            source,
            dest,
            len,
            flags: GNTCOPY_SOURCE_GREF,
            ..Default::default()
        })?;
        out.copy_from_slice(self.bounce.0.get(..out.len()).ok_or(IoError)?);
        Ok(())
    }

    fn copy_to(&mut self, gref: u32, offset: u16, data: &[u8]) -> Result<(), IoError> {
        let len = u16::try_from(data.len()).map_err(|_| IoError)?;
        self.bounce
            .0
            .get_mut(..data.len())
            .ok_or(IoError)?
            .copy_from_slice(data);
        let (dest, source) = self.ends(gref, offset);
        self.copy(GnttabCopy {
            source,
            dest,
            len,
            flags: GNTCOPY_DEST_GREF,
            ..Default::default()
        })
    }
}

/// The ring once connected.
struct Connection {
    handle: u32,
    port: u32,
    idx: guest_abi::io::ring::BackRing,
    /// The front end lied about the ring: not served any more.
    broken: bool,
}

/// One virtual block device of domain `front`.
pub struct Vbd {
    front: u16,
    front_path: String,
    back_path: String,
    machine: Backend,
    connection: Option<Connection>,
    /// A page of ours the ring is mapped at.
    ring_va: u64,
    pub disk: MemDisk,
    grants: CopyGrants,
}

/// `va`'s machine frame: our initial mapping maps pseudo-physical frame
/// `(va - VIRT_BASE) / 4096` there, and the P2M list names its frame.
fn own_mfn(si: &guest_abi::xen::StartInfo, va: u64) -> u64 {
    let pfn = va.wrapping_sub(guest_abi::rt::VIRT_BASE) / PAGE as u64;
    let Some(i) = usize::try_from(pfn).ok().filter(|_| pfn < si.nr_pages) else {
        return 0;
    };
    // SAFETY: the builder maps the P2M list, one entry per page of ours,
    // and `i` is below `nr_pages`.
    unsafe { (si.mfn_list as *const u64).add(i).read_volatile() }
}

impl Vbd {
    /// Device `dev` of domain `front` (its store nodes made by
    /// `xenstored::toolstack::add_vbd`), served from `disk`, its ring to be
    /// mapped at our page `ring_va`.
    pub fn new(
        si: &guest_abi::xen::StartInfo,
        front: u16,
        dev: u32,
        disk: MemDisk,
        ring_va: u64,
    ) -> Self {
        let (front_path, back_path) = pv_drivers::xenstored::toolstack::vbd_paths(front, 0, dev);
        let bounce = Box::new(Bounce([0; PAGE]));
        let bounce_mfn = own_mfn(si, core::ptr::from_ref(&*bounce) as u64);
        Self {
            front,
            front_path,
            back_path,
            machine: Backend::default(),
            connection: None,
            ring_va,
            disk,
            grants: CopyGrants {
                front,
                bounce,
                bounce_mfn,
            },
        }
    }

    /// Our event channel, once connected.
    pub fn port(&self) -> Option<u32> {
        self.connection.as_ref().map(|c| c.port)
    }

    fn write(&self, s: &mut Store, node: &str, value: &[u8]) {
        let _ = s.write(DOM0, &format!("{}/{node}", self.back_path), value);
    }

    fn front_value(&self, s: &Store, node: &str) -> Option<String> {
        let v = s.read(DOM0, &format!("{}/{node}", self.front_path)).ok()?;
        String::from_utf8(v).ok()
    }

    /// Takes the handshake one step if the front end's state asks for
    /// one; whether the store changed.
    pub fn poll(&mut self, s: &mut Store) -> bool {
        let front = self
            .front_value(s, "state")
            .map_or(State::UNKNOWN, |v| parse_state(v.as_bytes()));
        let step = self.machine.next(front);
        match step {
            Step::Stay => return false,
            Step::Publish => {
                let sectors = self.disk.sectors();
                let info = if self.disk.read_only {
                    VDISK_READONLY
                } else {
                    0
                };
                self.write(s, "sectors", format!("{sectors}").as_bytes());
                self.write(s, "sector-size", b"512");
                self.write(s, "info", format!("{info}").as_bytes());
                self.write(s, "feature-flush-cache", b"1");
            }
            Step::Connect => {
                if let Err(why) = self.connect(s) {
                    println!("dom0: vbd of domain {}: {why}", self.front);
                    self.write(s, "error", why.as_bytes());
                    return true;
                }
            }
            Step::Teardown => self.disconnect(),
            _ => {}
        }
        let state = self.machine.done(step);
        self.write(s, "state", &[state_value(state)]);
        true
    }

    fn connect(&mut self, s: &Store) -> Result<(), String> {
        let number = |node: &str| {
            self.front_value(s, node)
                .and_then(|v| v.trim_end_matches('\0').parse::<u32>().ok())
                .ok_or_else(|| format!("no {node} from the front end"))
        };
        let gref = number("ring-ref")?;
        let evtchn = number("event-channel")?;
        if let Some(p) = self.front_value(s, "protocol") {
            if p.trim_end_matches('\0') != "x86_64-abi" {
                return Err(format!("protocol {p:?} is not x86_64-abi"));
            }
        }
        let mut map = [GnttabMapGrantRef {
            host_addr: self.ring_va,
            flags: GNTMAP_HOST_MAP,
            ref_: gref,
            dom: self.front,
            ..Default::default()
        }];
        // SAFETY: `map` is a live gnttab_map_grant_ref naming our ring page.
        let rc =
            unsafe { typed::grant_table_op(GNTTABOP_MAP_GRANT_REF, map.as_mut_ptr().cast(), 1) };
        if rc != 0 || map[0].status != 0 {
            return Err(format!(
                "mapping ring-ref {gref}: {rc}, status {}",
                map[0].status
            ));
        }
        let port = match toolstack::serve::bind(self.front, evtchn) {
            Ok(p) => p,
            Err(e) => {
                self.unmap(map[0].handle);
                return Err(format!("binding event-channel {evtchn}: {e}"));
            }
        };
        // SAFETY: the ring page is mapped at `ring_va` until `disconnect`.
        let page = unsafe { MappedPage::new(self.ring_va) };
        let Some(back) = Back::<_, Request, Response>::new(&page) else {
            self.unmap(map[0].handle);
            toolstack::serve::close_port(port);
            return Err("no ring fits".into());
        };
        self.connection = Some(Connection {
            handle: map[0].handle,
            port,
            idx: back.indices(),
            broken: false,
        });
        Ok(())
    }

    fn unmap(&self, handle: u32) {
        let mut op = [GnttabUnmapGrantRef {
            host_addr: self.ring_va,
            handle,
            ..Default::default()
        }];
        // SAFETY: `op` is a live gnttab_unmap_grant_ref.
        unsafe { typed::grant_table_op(GNTTABOP_UNMAP_GRANT_REF, op.as_mut_ptr().cast(), 1) };
    }

    /// Unmaps the ring and closes the channel.
    pub fn disconnect(&mut self) {
        if let Some(c) = self.connection.take() {
            self.unmap(c.handle);
            toolstack::serve::close_port(c.port);
        }
    }

    /// Serves the requests on the ring, if connected; notifies the front
    /// end when it must be.
    pub fn serve(&mut self) {
        let Some(c) = self.connection.as_mut().filter(|c| !c.broken) else {
            return;
        };
        // SAFETY: the ring page is mapped at `ring_va` while connected.
        let page = unsafe { MappedPage::new(self.ring_va) };
        let mut back = Back::<_, Request, Response>::resume(&page, c.idx);
        let mut notify = false;
        let r: Result<(), pv_drivers::ring::RingError> = (|| loop {
            while let Some(req) = back.next_request()? {
                let rsp = blkif::serve(&req, &mut self.disk, &mut self.grants);
                back.queue(&rsp);
            }
            notify |= back.push();
            if !back.final_check()? {
                return Ok(());
            }
        })();
        c.idx = back.indices();
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
