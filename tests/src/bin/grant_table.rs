//! A domain's own grant table: its size (`query_size`: one frame at
//! first, at most 64), growing it (`setup_table` lists the frames, which
//! the guest maps and writes), its version (`get_version`, `set_version`:
//! switching keeps the eight reserved entries in the new layout and clears
//! the rest; leaving version 2 is `-EBUSY` while a status frame is still
//! mapped) and the version 2 status frames (`get_status_frames`). Every
//! bad input gets Xen's answer: a table bigger than the limit, a domain
//! that does not exist, a list it cannot write, a bad count or command.
//!
//! @covers: grant_table_op.setup_table grant_table_op.query_size grant_table_op.set_version
//! @covers: grant_table_op.get_status_frames grant_table_op.get_version
#![no_std]
#![no_main]

use guest_abi::errno::*;
use guest_abi::grant_table::*;
use guest_abi::hypercall::typed;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::DOMID_SELF;
use tests::check;
use tests::expect::BAD_POINTERS;
use tests::pvmm::{env_window_catching, read_u64, write_u64, A, P, RW, US};

guest_abi::pv_guest!(main, name = "grant_table");

/// A domain id nobody has.
const NO_DOMAIN: u16 = 0x7000;

fn gnt<T>(cmd: u32, op: &mut T, count: u32) -> i64 {
    // SAFETY: `op` is a live struct of the command's type.
    unsafe { typed::grant_table_op(cmd, core::ptr::from_mut(op).cast(), count) }
}

fn query(dom: u16) -> (i64, GnttabQuerySize) {
    let mut q = GnttabQuerySize {
        dom,
        ..Default::default()
    };
    (gnt(GNTTABOP_QUERY_SIZE, &mut q, 1), q)
}

fn version(dom: u16) -> (i64, u32) {
    let mut v = GnttabGetVersion {
        dom,
        ..Default::default()
    };
    (gnt(GNTTABOP_GET_VERSION, &mut v, 1), v.version)
}

fn set_version(v: u32) -> (i64, u32) {
    let mut s = GnttabSetVersion { version: v };
    (gnt(GNTTABOP_SET_VERSION, &mut s, 1), s.version)
}

/// `setup_table` for `nr` frames into `list`: the result and the status.
fn setup(dom: u16, nr: u32, list: u64) -> (i64, i16) {
    let mut s = GnttabSetupTable {
        dom,
        nr_frames: nr,
        frame_list: list,
        ..Default::default()
    };
    (gnt(GNTTABOP_SETUP_TABLE, &mut s, 1), s.status)
}

fn status_frames(nr: u32, list: u64) -> (i64, i16) {
    let mut s = GnttabGetStatusFrames {
        nr_frames: nr,
        dom: DOMID_SELF,
        frame_list: list,
        ..Default::default()
    };
    (gnt(GNTTABOP_GET_STATUS_FRAMES, &mut s, 1), s.status)
}

/// A version 1 entry granting `frame` to `domid`.
fn v1_entry(domid: u16, frame: u32) -> u64 {
    u64::from(GTF_PERMIT_ACCESS) | u64::from(domid) << 16 | u64::from(frame) << 32
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("grant_table");
    let Some((_env, w)) = env_window_catching(&mut r, si) else {
        r.finish()
    };

    check!(r, "get_version(self)", version(DOMID_SELF) => (0, 1));
    let (rc, q) = query(DOMID_SELF);
    check!(r, "query_size(self)", rc => 0);
    check!(r, "query_size status", q.status => GNTST_OKAY);
    check!(r, "a new table has one frame", q.nr_frames => 1);
    check!(r, "of at most 64", q.max_nr_frames => 64);

    let mut list = [0u64; 4];
    check!(r, "setup_table(self, 4)",
        setup(DOMID_SELF, 4, list.as_mut_ptr() as u64) => (0, GNTST_OKAY));
    r.check(
        "four distinct frames",
        list.iter().all(|&m| m != 0) && (1..4).all(|i| !list[..i].contains(&list[i])),
    );
    check!(r, "query_size after growing", query(DOMID_SELF).1.nr_frames => 4);
    let mut again = [0u64; 1];
    check!(r, "setup_table(self, 1) on a bigger table",
        setup(DOMID_SELF, 1, again.as_mut_ptr() as u64) => (0, GNTST_OKAY));
    check!(r, "it lists the same first frame", again[0] => list[0]);
    check!(r, "and does not shrink it", query(DOMID_SELF).1.nr_frames => 4);

    // The table is the guest's to write: a reserved entry and an ordinary one.
    let table = w.va(1);
    check!(r, "map grant frame 0 writable", w.map(1, list[0], P | RW | US | A) => 0);
    check!(r, "the table starts empty", read_u64(table) => 0);
    write_u64(table, v1_entry(5, 0x1234));
    write_u64(table + 9 * 8, v1_entry(5, 0x5678));

    check!(r, "set_version(2)", set_version(2) => (0, 2));
    check!(r, "get_version after", version(DOMID_SELF) => (0, 2));
    check!(r, "v2: reserved entry 0's header kept",
        read_u64(table) & 0xffff_ffff => v1_entry(5, 0) & 0xffff_ffff);
    check!(r, "v2: reserved entry 0's frame kept", read_u64(table + 8) => 0x1234);
    check!(r, "v2: entry 9 cleared", read_u64(table + 9 * 16) | read_u64(table + 9 * 16 + 8) => 0);
    let mut slist = [0u64; 2];
    check!(r, "get_status_frames(1)",
        status_frames(1, slist.as_mut_ptr() as u64) => (0, GNTST_OKAY));
    check!(r, "get_status_frames(2): 4 grant frames have one",
        status_frames(2, slist.as_mut_ptr() as u64) => (0, GNTST_GENERAL_ERROR));
    r.check("a status frame", slist[0] != 0 && !list.contains(&slist[0]));
    check!(r, "map the status frame read-only", w.map(2, slist[0], P | US | A) => 0);
    check!(r, "entry 0's status is clear", read_u64(w.va(2)) => 0);
    check!(r, "set_version(1) while the status frame is mapped", set_version(1) => (-EBUSY, 2));
    check!(r, "unmap the status frame", w.unmap(2) => 0);
    check!(r, "set_version(1)", set_version(1) => (0, 1));
    check!(r, "v1 again: reserved entry 0 kept", read_u64(table) => v1_entry(5, 0x1234));
    check!(r, "get_status_frames(1) in v1",
        status_frames(1, slist.as_mut_ptr() as u64) => (0, GNTST_GENERAL_ERROR));
    check!(r, "get_status_frames(0) in v1",
        status_frames(0, slist.as_mut_ptr() as u64) => (0, GNTST_OKAY));
    check!(r, "set_version(1) again: nothing to do", set_version(1) => (0, 1));

    // Bad inputs.
    check!(r, "set_version(3)", set_version(3) => (-EINVAL, 1));
    check!(r, "set_version(0)", set_version(0) => (-EINVAL, 1));
    let mut big = [0u64; 65];
    check!(r, "setup_table(self, 65): over the limit",
        setup(DOMID_SELF, 65, big.as_mut_ptr() as u64) => (0, GNTST_GENERAL_ERROR));
    check!(r, "the table is unchanged", query(DOMID_SELF).1.nr_frames => 4);
    check!(r, "setup_table of no domain",
        setup(NO_DOMAIN, 1, list.as_mut_ptr() as u64) => (0, GNTST_BAD_DOMAIN));
    check!(r, "setup_table into unmapped 0x1000", setup(DOMID_SELF, 1, 0x1000) => (0, GNTST_BAD_VIRT_ADDR));
    check!(r, "setup_table into non-canonical", setup(DOMID_SELF, 1, 0x8000_0000_0000).0 => -EFAULT);
    check!(r, "setup_table of 0 frames into nothing", setup(DOMID_SELF, 0, 0) => (0, GNTST_OKAY));
    let (rc, q) = query(NO_DOMAIN);
    check!(r, "query_size of no domain", (rc, q.status) => (0, GNTST_BAD_DOMAIN));
    check!(r, "get_version of no domain", version(NO_DOMAIN).0 => -ESRCH);
    let mut q = GnttabQuerySize {
        dom: DOMID_SELF,
        ..Default::default()
    };
    check!(r, "query_size with count 2", gnt(GNTTABOP_QUERY_SIZE, &mut q, 2) => -EINVAL);
    check!(r, "query_size with count 0", gnt(GNTTABOP_QUERY_SIZE, &mut q, 0) => -EINVAL);
    check!(r, "query_size with count -1", gnt(GNTTABOP_QUERY_SIZE, &mut q, u32::MAX) => -EINVAL);
    check!(r, "query_size with restart bits", gnt(GNTTABOP_QUERY_SIZE | 1 << 12, &mut q, 1) => -EINVAL);
    check!(r, "unknown command 99", gnt(99, &mut q, 1) => -ENOSYS);
    for &(name, addr) in BAD_POINTERS {
        // SAFETY: the hypervisor must refuse the address without using it.
        let rc = unsafe { typed::grant_table_op(GNTTABOP_QUERY_SIZE, addr as *mut u8, 1) };
        check!(r, "query_size at {name}", rc => -EFAULT);
        // SAFETY: as above.
        let rc = unsafe { typed::grant_table_op(GNTTABOP_SETUP_TABLE, addr as *mut u8, 1) };
        check!(r, "setup_table at {name}", rc => -EFAULT);
    }
    check!(r, "unmap grant frame 0", w.unmap(1) => 0);
    r.finish()
}
