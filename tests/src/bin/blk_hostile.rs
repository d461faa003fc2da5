//! A domU kernel for `dom0_hostile_blk` (not a case of its own): a block
//! front end that lies to dom0's block back end. It connects to its disk
//! as Linux's `xen-blkfront` does (a ring granted to dom0, an unbound
//! channel, `Initialised`), checks one honest read against the test disk
//! dom0 made (`domu_disk_kib`: sector `n` holds `7n + 1` in every byte),
//! then sends what a hostile front end sends: sectors past the disk, a
//! range that wraps, no segment and too many, a segment's sectors out of
//! order or past its page, a grant it never made, an operation that does
//! not exist, a flood of notifications, and grants taken back early (the
//! data page's before dom0 served the request, the ring's while dom0 has
//! it mapped); each must be answered (with its id) by an error and change
//! nothing, the disk still read right after them. Then it lies about its
//! ring's producer index: dom0 must stop serving the ring and say so, and
//! still serve its xenstore. It closes and starts again with persistent
//! grants: dom0 keeps its grants mapped (a grant revoked after still
//! reaches the page dom0 keeps), 128 of them, and serves the rest by
//! grant copy. Last it gives the ring's frame back
//! (`decrease_reservation`) while dom0 still maps it: the frame stays
//! counted as its own until dom0 lets go.
//!
//! It prints `blk_hostile: ok: ...` per check and, at the end,
//! `blk_hostile: N checks passed` or `blk_hostile: FAILED: ...`.
//!
//! @role: domu
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;

use dom0::support::MappedPage;
use guest_abi::hypercall::{hypercall3, UPDATE_VA_MAPPING};
use guest_abi::io::blkif::{
    BlkifRequest as Request, BlkifRequestSegment as Segment, BlkifResponse as Response,
    BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY,
};
use guest_abi::memory::XENMEM_CURRENT_RESERVATION;
use guest_abi::rt::{shutdown, StartInfoRef};
use guest_abi::sched::SHUTDOWN_POWEROFF;
use guest_abi::xen::UVMF_INVLPG;
use pv_drivers::ring::{Front, SharedRing};
use pv_drivers::xs_client::XsClient;
use tests::frontend::{self as fe, yield_now, Checks, GrantTable, PAGE};
use tests::pages::Pages;
use tests::pvmm::{decrease, reservation};

guest_abi::pv_guest!(main, name = "blk_hostile");

/// The grants it makes: its ring and its data page.
const RING_REF: u32 = 8;
const DATA_REF: u32 = 9;
/// A reference it never granted.
const BOGUS_REF: u32 = 500;
/// The first of the 130 references to its data page it grants for the
/// persistent grants' room.
const EXTRA_REFS: u32 = 20;
const DEV: &str = "device/vbd/51712";

static RING: Pages<1> = Pages::new();
static DATA: Pages<1> = Pages::new();

/// The byte dom0's test disk holds in sector `n`.
fn disk_byte(n: u64) -> u8 {
    dom0::domus::test_disk_byte(n)
}

/// Its end of the ring.
struct Blk<'a> {
    front: Front<'a, MappedPage, Request, Response>,
    port: u32,
    next_id: u64,
}

impl Blk<'_> {
    /// Sends `req` with a fresh id: its id and the response, if one came.
    fn send(&mut self, mut req: Request) -> Option<(u64, Response)> {
        self.next_id += 1;
        req.id = self.next_id;
        if !self.front.queue(&req) {
            return None;
        }
        self.front.push();
        let _ = tests::evtchn::send(self.port);
        for _ in 0..20_000 {
            if let Ok(Some(rsp)) = self.front.next_response() {
                return Some((self.next_id, rsp));
            }
            yield_now();
        }
        None
    }

    /// Whether `req` is answered, with its id, by `status`.
    fn answered(&mut self, req: Request, status: i16) -> bool {
        self.send(req)
            .is_some_and(|(id, rsp)| rsp.id == id && rsp.status == status)
    }

    /// An honest read of sectors `first..first + 8` into the data page:
    /// whether it gives the disk's bytes.
    fn honest_read(&mut self, first: u64) -> bool {
        if !self.answered(read_req(first, &[seg(DATA_REF, 0, 7)]), BLKIF_RSP_OKAY) {
            return false;
        }
        // dom0 wrote the data page for the read, which is answered.
        let mut d = [0u8; PAGE];
        fe::shared(&DATA).read(0, &mut d);
        d.chunks(512)
            .zip(first..)
            .all(|(sector, n)| sector.iter().all(|&b| b == disk_byte(n)))
    }
}

/// Connects `front` (its ring granted as `RING_REF`), asking for
/// persistent grants or not: its end of the ring, the back end
/// `Connected` (its state node `state`).
fn connect<'a, N: FnMut(), I: FnMut()>(
    c: &mut Checks,
    xs: &mut XsClient<'_, MappedPage, N, I>,
    state: &str,
    front: Front<'a, MappedPage, Request, Response>,
    persistent: bool,
) -> Blk<'a> {
    let mut nodes = alloc::vec![
        ("ring-ref", format!("{RING_REF}")),
        ("protocol", "x86_64-abi".into()),
    ];
    if persistent {
        nodes.push(("feature-persistent", "1".into()));
    }
    let port = fe::connect(c, xs, (DEV, state), &nodes, "3");
    Blk {
        front,
        port,
        next_id: 100,
    }
}

fn seg(gref: u32, first_sect: u8, last_sect: u8) -> Segment {
    Segment {
        gref,
        first_sect,
        last_sect,
        _pad: 0,
    }
}

fn read_req(sector: u64, segs: &[Segment]) -> Request {
    let mut r = Request {
        operation: BLKIF_OP_READ,
        nr_segments: u8::try_from(segs.len()).unwrap_or(0),
        sector_number: sector,
        ..Default::default()
    };
    for (d, s) in r.seg.iter_mut().zip(segs) {
        *d = *s;
    }
    r
}

fn with_op(mut r: Request, operation: u8) -> Request {
    r.operation = operation;
    r
}

fn main(si: StartInfoRef) -> ! {
    let mut c = Checks {
        name: "blk_hostile",
        passed: 0,
    };
    let store = fe::store_page(&mut c, si);
    let mut xs = fe::client(&store, si.store_evtchn);
    let backend = fe::read(&mut xs, &format!("{DEV}/backend"));
    c.check(
        "the toolstack named the disk's back end",
        !backend.is_empty(),
    );
    let state = format!("{backend}/state");
    c.check(
        "the back end is InitWait",
        fe::wait_for(&mut xs, &state, b"2"),
    );
    c.check(
        "the back end offers 128 sectors",
        fe::read(&mut xs, &format!("{backend}/sectors")) == "128",
    );
    let gt = GrantTable::new(&mut c, si);
    gt.grant(si, RING_REF, RING.addr());
    gt.grant(si, DATA_REF, DATA.addr());
    let ring_page = fe::shared(&RING);
    let Some(front) = Front::<_, Request, Response>::new(&ring_page) else {
        c.check("a ring", false);
        shutdown(SHUTDOWN_POWEROFF)
    };
    // First a ring of 2^5 pages, more than dom0 offers: refused, the
    // back end Closing with an error; closing and starting again is
    // allowed.
    let order = fe::read(&mut xs, &format!("{backend}/max-ring-page-order"));
    c.check("the back end offers rings of up to 2^2 pages", order == "2");
    let bad = xs.write(&format!("{DEV}/ring-page-order"), b"5").is_ok()
        && xs.write(&format!("{DEV}/ring-ref0"), b"8").is_ok()
        && xs.write(&format!("{DEV}/event-channel"), b"1").is_ok()
        && xs.write(&format!("{DEV}/state"), b"3").is_ok();
    c.check(
        "a ring of 2^5 pages: the back end is Closing, with an error",
        bad && fe::wait_for(&mut xs, &state, b"5")
            && !fe::read(&mut xs, &format!("{backend}/error")).is_empty(),
    );
    let again = xs.rm(&format!("{DEV}/ring-page-order")).is_ok()
        && xs.write(&format!("{DEV}/state"), b"6").is_ok()
        && fe::wait_for(&mut xs, &state, b"6")
        && xs.write(&format!("{DEV}/state"), b"1").is_ok();
    c.check(
        "closed and started again: the back end is InitWait",
        again && fe::wait_for(&mut xs, &state, b"2"),
    );
    let mut blk = connect(&mut c, &mut xs, &state, front, false);
    c.check(
        "an honest read of sectors 2-9 gives the disk's bytes",
        blk.honest_read(2),
    );
    let mut twelve = read_req(0, &[seg(DATA_REF, 0, 0); 11]);
    twelve.nr_segments = 12;
    let refused = [
        (
            "a read past the disk's end",
            read_req(124, &[seg(DATA_REF, 0, 7)]),
        ),
        (
            "a read wrapping the sector count",
            read_req(u64::MAX - 2, &[seg(DATA_REF, 0, 7)]),
        ),
        ("a read with no segment", read_req(0, &[])),
        ("a read with 12 segments", twelve),
        (
            "a segment whose first sector is after its last",
            read_req(0, &[seg(DATA_REF, 5, 2)]),
        ),
        (
            "a segment past its page",
            read_req(0, &[seg(DATA_REF, 0, 8)]),
        ),
        (
            "a read into a grant never made",
            read_req(0, &[seg(BOGUS_REF, 0, 7)]),
        ),
        (
            "a write from a grant never made",
            with_op(read_req(0, &[seg(BOGUS_REF, 0, 7)]), BLKIF_OP_WRITE),
        ),
        (
            "a write past the disk's end",
            with_op(read_req(128, &[seg(DATA_REF, 0, 0)]), BLKIF_OP_WRITE),
        ),
    ];
    for (what, req) in refused {
        c.check(
            &format!("{what}: BLKIF_RSP_ERROR with its id"),
            blk.answered(req, BLKIF_RSP_ERROR),
        );
    }
    c.check(
        "an operation that does not exist: BLKIF_RSP_EOPNOTSUPP",
        blk.answered(
            with_op(read_req(0, &[seg(DATA_REF, 0, 7)]), 99),
            BLKIF_RSP_EOPNOTSUPP,
        ),
    );
    // A write of what the disk holds: served on a writable disk, refused
    // on a read-only one (`info` has VDISK_READONLY); the disk is the
    // same either way.
    let read_only = fe::read(&mut xs, &format!("{backend}/info"))
        .parse::<u32>()
        .is_ok_and(|info| info & 4 != 0);
    let (kind, want, name) = if read_only {
        ("read-only", BLKIF_RSP_ERROR, "BLKIF_RSP_ERROR")
    } else {
        ("writable", BLKIF_RSP_OKAY, "BLKIF_RSP_OKAY")
    };
    let held = blk.honest_read(40);
    let written = blk.answered(
        with_op(read_req(40, &[seg(DATA_REF, 0, 7)]), BLKIF_OP_WRITE),
        want,
    );
    c.check(
        &format!("the disk is {kind}: a write of what it holds is answered {name}"),
        held && written && blk.honest_read(40),
    );
    for _ in 0..5000 {
        let _ = tests::evtchn::send(blk.port);
    }
    c.check(
        "after 5000 notifications in a row, reads still give the disk's bytes",
        blk.honest_read(2),
    );
    c.check(
        "the refused writes changed nothing (sectors 0-7 as they were)",
        blk.honest_read(0),
    );

    // Grants taken back early. The data page's before the request is
    // queued: an error, and nothing read or written; granted again, the
    // disk reads right.
    gt.revoke(DATA_REF);
    c.check(
        "a read into a grant revoked before dom0 served it: BLKIF_RSP_ERROR",
        blk.answered(read_req(0, &[seg(DATA_REF, 0, 7)]), BLKIF_RSP_ERROR),
    );
    c.check(
        "a write from a grant revoked before dom0 served it: BLKIF_RSP_ERROR",
        blk.answered(
            with_op(read_req(8, &[seg(DATA_REF, 0, 7)]), BLKIF_OP_WRITE),
            BLKIF_RSP_ERROR,
        ),
    );
    gt.grant(si, DATA_REF, DATA.addr());
    c.check(
        "granted again, sectors 8-15 read as they were",
        blk.honest_read(8),
    );
    // The ring's, while dom0 has it mapped: its mapping stays (the frame
    // is held for it until it unmaps), and it serves on.
    gt.revoke(RING_REF);
    c.check(
        "the ring's grant revoked while dom0 maps it: dom0 serves on",
        blk.honest_read(2),
    );
    gt.grant(si, RING_REF, RING.addr());

    // The lie: a producer index a thousand requests ahead.
    let rsp_prod = ring_page.load(8);
    let req_prod = ring_page.load(0);
    ring_page.store(0, req_prod.wrapping_add(1000));
    let _ = tests::evtchn::send(blk.port);
    for _ in 0..3000 {
        yield_now();
    }
    c.check(
        "after the lie, dom0 answers nothing on the ring",
        ring_page.load(8) == rsp_prod,
    );
    c.check(
        "after the lie, dom0 still serves its xenstore",
        xs.write("data/after", b"still here").is_ok()
            && xs.read("data/after").ok().as_deref() == Some(&b"still here"[..]),
    );

    // Persistent grants: closed and started again, asking for them.
    let again = xs.write(&format!("{DEV}/state"), b"6").is_ok()
        && fe::wait_for(&mut xs, &state, b"6")
        && xs.write(&format!("{DEV}/state"), b"1").is_ok()
        && fe::wait_for(&mut xs, &state, b"2");
    c.check(
        "after the lie, closed and started again: the back end is InitWait",
        again,
    );
    c.check(
        "the back end offers persistent grants",
        fe::read(&mut xs, &format!("{backend}/feature-persistent")) == "1",
    );
    let Some(front) = Front::<_, Request, Response>::new(&ring_page) else {
        c.check("a fresh ring", false);
        shutdown(SHUTDOWN_POWEROFF)
    };
    let mut blk = connect(&mut c, &mut xs, &state, front, true);
    c.check(
        "with persistent grants, sectors 2-9 read right",
        blk.honest_read(2),
    );
    // dom0 keeps the data page mapped now: taking the grant back does not
    // take the page from it (as with Linux's back end).
    gt.revoke(DATA_REF);
    c.check(
        "a kept grant revoked: dom0 still reads into the page it keeps mapped",
        blk.honest_read(10),
    );
    gt.grant(si, DATA_REF, DATA.addr());
    // More grants than dom0 keeps (128): the data page under 130 more
    // references, one read each; past the room they go by grant copy.
    let refs = EXTRA_REFS..EXTRA_REFS + 130;
    for gref in refs.clone() {
        gt.grant(si, gref, DATA.addr());
    }
    let all = refs
        .clone()
        .all(|gref| blk.answered(read_req(0, &[seg(gref, 0, 7)]), BLKIF_RSP_OKAY));
    c.check(
        "130 more grants, past the 128 dom0 keeps mapped: every read served",
        all,
    );
    for gref in refs {
        gt.revoke(gref);
    }
    c.check(
        "with persistent grants, a grant never made: BLKIF_RSP_ERROR",
        blk.answered(read_req(0, &[seg(BOGUS_REF, 0, 7)]), BLKIF_RSP_ERROR),
    );

    // Last, the ring's frame given back while dom0 still maps it: our
    // grant revoked, our own mapping of it gone, the frame handed to
    // `decrease_reservation`. The call succeeds, but dom0's mapping holds
    // the frame: it stays counted as ours until dom0 lets go (when we are
    // destroyed), as on Xen.
    let mfn = dom0::grants::own_mfn(si, RING.addr());
    gt.revoke(RING_REF);
    let before = reservation(XENMEM_CURRENT_RESERVATION);
    // SAFETY: the ring page is not touched again (`ring_page` and
    // `front` are not used after this).
    let unmapped = unsafe { hypercall3(UPDATE_VA_MAPPING, RING.addr(), 0, UVMF_INVLPG) };
    c.check("our own mapping of the ring's page gone", unmapped == 0);
    c.check(
        "the ring's frame given back while dom0 maps it: decrease_reservation takes it",
        decrease(mfn, 0) == 1,
    );
    c.check(
        "dom0's mapping keeps the frame: our reservation does not drop",
        reservation(XENMEM_CURRENT_RESERVATION) == before,
    );
    c.done()
}
