//! `grant_table_op` (20): a domain's grant table (`crate::grant`).
//!
//! Xen's order of checks: a negative count is `-EINVAL`; the command's
//! high bits (a continuation's restart point, `GNTTABOP_CMD_MASK`) must be
//! zero; each table command takes exactly one struct (`-EINVAL`
//! otherwise). Per-struct failures go to its `status` (`GNTST_*`), and a
//! struct that cannot be written back is `-EFAULT`. Another domain's table
//! is the caller's business only if it is privileged (Xen's default XSM
//! `XSM_TARGET`: `GNTST_permission_denied`, or `-EPERM` for
//! `get_version`).
//!
//! - `setup_table`: grows the table to `nr_frames` (at most the domain's
//!   `max_grant_frames`: `GNTST_general_error`) and lists the grant
//!   frames' machine frames (`GNTST_bad_virt_addr` for a list it cannot
//!   write);
//! - `query_size`, `get_version`: the table's size and version;
//! - `set_version`: see `crate::grant::Grants::set_version`;
//! - `get_status_frames`: the version 2 status frames
//!   (`GNTST_general_error` for more than there are; none for version 1).
//!
//! - `map_grant_ref`, `unmap_grant_ref`: batches of `count` elements
//!   (`-EFAULT` if the array is not in guest space), each done by
//!   `crate::grant::map` / `unmap` with its status written back, at most
//!   [`BATCH`] per call before a continuation for the rest.
//!
//! - `copy`: a batch likewise, each element by `crate::grant::copy`.
//!
//! - `unmap_and_replace`: a batch likewise, by `crate::grant::unmap`
//!   with the replacing address.
//!
//! - `swap_grant_ref`: a batch likewise, by `crate::grant::Grants::swap`
//!   on the caller's own table.
//!
//! - `transfer`: a batch likewise, by `crate::grant::transfer`.

use alloc::sync::Arc;
use alloc::vec::Vec;

use guest_abi::errno::Errno;
use guest_abi::grant_table::*;
use guest_abi::hypercall as nr;
use guest_abi::xen::DOMID_SELF;

use super::{read_arg, write_arg, HcResult, Outcome};
use crate::domain::{self, DomId, Domain};
use crate::grant::{CopyEnd, MapRequest, UnmapRequest};
use crate::guest_mem::{copy_to_loaded, GuestValue};

/// The command bits of `cmd` (Xen's `GNTTABOP_CMD_MASK`).
const CMD_MASK: u32 = (1 << 12) - 1;

pub fn grant_table_op(cmd: u32, uop: u64, count: u32) -> Outcome {
    if i32::try_from(count).is_err() {
        return Outcome::Err(Errno::EINVAL);
    }
    let (op, opaque) = (cmd & CMD_MASK, cmd >> 12);
    if opaque != 0 && op != GNTTABOP_CACHE_FLUSH {
        return Outcome::Err(Errno::EINVAL);
    }
    if super::refused::<{ nr::GRANT_TABLE_OP }>(op) {
        return Outcome::Err(Errno::ENOSYS);
    }
    match op {
        GNTTABOP_MAP_GRANT_REF => return batch::<GnttabMapGrantRef>(cmd, uop, count, map_one),
        GNTTABOP_UNMAP_GRANT_REF => {
            return batch::<GnttabUnmapGrantRef>(cmd, uop, count, unmap_one)
        }
        // Only the status goes back, as Xen writes it.
        GNTTABOP_COPY => {
            return batch_with::<GnttabCopy>(cmd, uop, count, copy_one, |at, op| {
                let field = core::mem::offset_of!(GnttabCopy, status) as u64;
                write_arg(at + field, &op.status)
            })
        }
        GNTTABOP_TRANSFER => return batch::<GnttabTransfer>(cmd, uop, count, transfer_one),
        GNTTABOP_SWAP_GRANT_REF => return batch::<GnttabSwapGrantRef>(cmd, uop, count, swap_one),
        GNTTABOP_UNMAP_AND_REPLACE => {
            return batch::<GnttabUnmapAndReplace>(cmd, uop, count, unmap_and_replace_one)
        }
        _ => {}
    }
    if count != 1 {
        return Outcome::Err(Errno::EINVAL);
    }
    let r = match op {
        GNTTABOP_SETUP_TABLE => setup_table(uop),
        GNTTABOP_QUERY_SIZE => query_size(uop),
        GNTTABOP_SET_VERSION => set_version(uop),
        GNTTABOP_GET_STATUS_FRAMES => get_status_frames(uop),
        GNTTABOP_GET_VERSION => get_version(uop),
        _ => Err(Errno::ENOSYS),
    };
    r.into()
}

/// The domain a `dom` field names, if the caller may use its table: the
/// caller itself (`DOMID_SELF` or its id) or, privileged, any.
enum Target {
    Allowed(Arc<Domain>),
    Denied,
    Missing,
}

fn target(dom: u16) -> Target {
    let me = domain::current_id();
    let id = if dom == DOMID_SELF { me.get() } else { dom };
    let Some(d) = DomId::try_new(id).ok().and_then(domain::lookup) else {
        return Target::Missing;
    };
    let privileged = domain::current().domain().privileged;
    if d.id == me || privileged {
        Target::Allowed(d)
    } else {
        Target::Denied
    }
}

/// Writes field `value` at byte `offset` of the struct at `uop`.
fn write_field<T: GuestValue>(uop: u64, offset: u64, value: &T) -> Result<(), Errno> {
    write_arg(uop.wrapping_add(offset), value)
}

/// Copies `mfns` out to the list at `list` (8 bytes each); false if any
/// could not be written (the others still are, as on Xen).
fn write_list(list: u64, mfns: &[u64]) -> bool {
    let mut ok = true;
    for (i, mfn) in (0u64..).zip(mfns) {
        let at = list.wrapping_add(i.wrapping_mul(8));
        ok &= copy_to_loaded(at, &mfn.to_le_bytes()).is_ok();
    }
    ok
}

/// Whether `count` 8-byte elements at `list` lie in guest address space
/// (Xen's `guest_handle_okay`).
fn list_ok(list: u64, count: u32) -> bool {
    hv::guest_handle::range_ok(list, u64::from(count) * 8)
}

/// The status of a command that lists frames of `dom`'s table: `frames`
/// picks them with the table locked (or refuses with a status), and they
/// are copied out to `list` with it let go (`GNTST_bad_virt_addr` if
/// they cannot be).
fn list_frames(
    dom: u16,
    list: u64,
    frames: impl FnOnce(&mut crate::grant::Grants) -> Result<Vec<u64>, i16>,
) -> i16 {
    let d = match target(dom) {
        Target::Missing => return GNTST_BAD_DOMAIN,
        Target::Denied => return GNTST_PERMISSION_DENIED,
        Target::Allowed(d) => d,
    };
    let listed = frames(&mut d.grants.lock());
    match listed {
        Err(status) => status,
        Ok(mfns) if write_list(list, &mfns) => GNTST_OKAY,
        Ok(_) => GNTST_BAD_VIRT_ADDR,
    }
}

fn setup_table(uop: u64) -> HcResult {
    let op: GnttabSetupTable = read_arg(uop)?;
    if !list_ok(op.frame_list, op.nr_frames) {
        return Err(Errno::EFAULT);
    }
    let status = list_frames(op.dom, op.frame_list, |g| {
        let too_many = op.nr_frames > g.max_frames();
        if too_many || (op.nr_frames > g.nr_frames() && g.grow(op.nr_frames).is_err()) {
            return Err(GNTST_GENERAL_ERROR);
        }
        Ok((0..op.nr_frames).filter_map(|i| g.frame(i)).collect())
    });
    write_field(uop, 8, &status)?;
    Ok(0)
}

fn query_size(uop: u64) -> HcResult {
    let mut op: GnttabQuerySize = read_arg(uop)?;
    op.status = match target(op.dom) {
        Target::Missing => GNTST_BAD_DOMAIN,
        Target::Denied => GNTST_PERMISSION_DENIED,
        Target::Allowed(d) => {
            let g = d.grants.lock();
            op.nr_frames = g.nr_frames();
            op.max_nr_frames = g.max_frames();
            GNTST_OKAY
        }
    };
    write_arg(uop, &op)?;
    Ok(0)
}

fn version_number(v: hv::grant::Version) -> u32 {
    match v {
        hv::grant::Version::V1 => 1,
        hv::grant::Version::V2 => 2,
    }
}

fn set_version(uop: u64) -> HcResult {
    let mut op: GnttabSetVersion = read_arg(uop)?;
    let d = domain::lookup(domain::current_id()).ok_or(Errno::ESRCH)?;
    let (r, now) = {
        let mut g = d.grants.lock();
        let r = g.set_version(op.version);
        (r, g.version())
    };
    op.version = version_number(now);
    write_arg(uop, &op)?;
    r.map(|()| 0)
}

fn get_status_frames(uop: u64) -> HcResult {
    let op: GnttabGetStatusFrames = read_arg(uop)?;
    let status = list_frames(op.dom, op.frame_list, |g| {
        if op.nr_frames > g.nr_status_frames() {
            return Err(GNTST_GENERAL_ERROR);
        }
        Ok((0..op.nr_frames)
            .filter_map(|i| g.status_frame(i))
            .collect())
    });
    write_field(uop, 6, &status)?;
    Ok(0)
}

fn get_version(uop: u64) -> HcResult {
    let mut op: GnttabGetVersion = read_arg(uop)?;
    op.version = match target(op.dom) {
        Target::Missing => return Err(Errno::ESRCH),
        Target::Denied => return Err(Errno::EPERM),
        Target::Allowed(d) => version_number(d.grants.lock().version()),
    };
    write_arg(uop, &op)?;
    Ok(0)
}

/// Elements of a map or unmap batch done per call before a continuation.
const BATCH: u32 = 512;

/// Runs `one` on each of the `count` elements of type `T` at `uop`,
/// writing each back (`-EFAULT` if one cannot be read or written); after
/// [`BATCH`] of them, a continuation for the rest.
fn batch<T: GuestValue + zerocopy::IntoBytes>(
    cmd: u32,
    uop: u64,
    count: u32,
    one: fn(&Domain, bool, &mut T),
) -> Outcome {
    batch_with(cmd, uop, count, one, |at, op| write_arg(at, op))
}

/// [`batch`], each element written back by `back` (at its address).
fn batch_with<T: GuestValue + zerocopy::IntoBytes>(
    cmd: u32,
    uop: u64,
    count: u32,
    one: fn(&Domain, bool, &mut T),
    back: impl Fn(u64, &T) -> Result<(), Errno>,
) -> Outcome {
    let size = core::mem::size_of::<T>() as u64;
    if !hv::guest_handle::range_ok(uop, u64::from(count) * size) {
        return Outcome::Err(Errno::EFAULT);
    }
    let current = domain::current();
    let me = current.domain();
    let io_caps = me.privileged;
    for i in 0..count {
        if i == BATCH {
            let at = uop + u64::from(i) * size;
            return Outcome::again([u64::from(cmd), at, u64::from(count - i)]);
        }
        let at = uop + u64::from(i) * size;
        let mut op: T = match read_arg(at) {
            Ok(op) => op,
            Err(e) => return Outcome::Err(e),
        };
        one(me, io_caps, &mut op);
        if let Err(e) = back(at, &op) {
            return Outcome::Err(e);
        }
    }
    Outcome::Done(0)
}

fn map_one(me: &Domain, io_caps: bool, op: &mut GnttabMapGrantRef) {
    let req = MapRequest {
        granter: op.dom,
        gref: op.ref_,
        flags: op.flags,
        host_addr: op.host_addr,
    };
    match crate::grant::map(me, io_caps, req) {
        Ok(m) => {
            op.status = GNTST_OKAY;
            op.handle = m.handle;
            op.dev_bus_addr = m.mfn << 12;
        }
        Err(status) => op.status = status,
    }
}

fn unmap_one(me: &Domain, io_caps: bool, op: &mut GnttabUnmapGrantRef) {
    let req = UnmapRequest {
        handle: op.handle,
        host_addr: op.host_addr,
        dev_bus_addr: op.dev_bus_addr,
        new_addr: 0,
    };
    op.status = match crate::grant::unmap(me, io_caps, req) {
        Ok(()) => GNTST_OKAY,
        Err(status) => status,
    };
}

fn unmap_and_replace_one(me: &Domain, io_caps: bool, op: &mut GnttabUnmapAndReplace) {
    let req = UnmapRequest {
        handle: op.handle,
        host_addr: op.host_addr,
        dev_bus_addr: 0,
        new_addr: op.new_addr,
    };
    op.status = match crate::grant::unmap(me, io_caps, req) {
        Ok(()) => GNTST_OKAY,
        Err(status) => status,
    };
}

fn transfer_one(me: &Domain, _: bool, op: &mut GnttabTransfer) {
    op.status = match crate::grant::transfer(me, op.mfn, op.domid, op.ref_) {
        Ok(()) => GNTST_OKAY,
        Err(status) => status,
    };
}

fn swap_one(me: &Domain, _: bool, op: &mut GnttabSwapGrantRef) {
    op.status = match me.grants.lock().swap(op.ref_a, op.ref_b) {
        Ok(()) => GNTST_OKAY,
        Err(status) => status,
    };
}

fn copy_end(p: &GnttabCopyPtr, by_ref: bool) -> CopyEnd {
    CopyEnd {
        gref: by_ref.then(|| p.gref()),
        gmfn: p.gmfn(),
        domid: p.domid,
        offset: p.offset,
    }
}

fn copy_one(me: &Domain, _: bool, op: &mut GnttabCopy) {
    let src = copy_end(&op.source, op.flags & GNTCOPY_SOURCE_GREF != 0);
    let dst = copy_end(&op.dest, op.flags & GNTCOPY_DEST_GREF != 0);
    op.status = match crate::grant::copy(me, src, dst, op.len) {
        Ok(()) => GNTST_OKAY,
        Err(status) => status,
    };
}
