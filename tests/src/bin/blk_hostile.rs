//! A domU kernel for `dom0_hostile_blk` (not a case of its own): a block
//! front end that lies to dom0's block back end. It connects to its disk
//! as Linux's `xen-blkfront` does (a ring granted to dom0, an unbound
//! channel, `Initialised`), checks one honest read against the test disk
//! dom0 made (`domu_disk_kib`: sector `n` holds `7n + 1` in every byte),
//! then sends what a hostile front end sends: sectors past the disk, a
//! range that wraps, no segment and too many, a segment's sectors out of
//! order or past its page, a grant it never made, an operation that does
//! not exist, and a flood of notifications; each must be answered (with
//! its id) by an error and change nothing, the disk still read right
//! after them. Last it lies about its ring's producer index: dom0 must
//! stop serving the ring and say so, and still serve its xenstore.
//!
//! It prints `blk_hostile: ok: ...` per check and, at the end,
//! `blk_hostile: N checks passed` or `blk_hostile: FAILED: ...`.
//!
//! @role: domu
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;

use dom0::support::MappedPage;
use guest_abi::grant_table::{GnttabSetupTable, GNTTABOP_SETUP_TABLE, GTF_PERMIT_ACCESS};
use guest_abi::hypercall::{hypercall2, hypercall3, SCHED_OP, UPDATE_VA_MAPPING};
use guest_abi::io::blkif::{
    BlkifRequest as Request, BlkifRequestSegment as Segment, BlkifResponse as Response,
    BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY,
};
use guest_abi::println;
use guest_abi::rt::{shutdown, StartInfoRef};
use guest_abi::sched::{SCHEDOP_YIELD, SHUTDOWN_POWEROFF};
use guest_abi::xen::{DOMID_SELF, UVMF_INVLPG};
use pv_drivers::ring::{Front, SharedRing};
use pv_drivers::xs_client::XsClient;

guest_abi::pv_guest!(main, name = "blk_hostile");

const PAGE: usize = 4096;
/// The grants it makes: its ring and its data page.
const RING_REF: u32 = 8;
const DATA_REF: u32 = 9;
/// A reference it never granted.
const BOGUS_REF: u32 = 500;
const DEV: &str = "device/vbd/51712";

#[repr(C, align(4096))]
struct Page([u8; PAGE]);

static mut RING: Page = Page([0; PAGE]);
static mut DATA: Page = Page([0; PAGE]);

fn yield_now() {
    // SAFETY: no argument.
    unsafe { hypercall2(SCHED_OP, u64::from(SCHEDOP_YIELD), 0) };
}

/// The byte dom0's test disk holds in sector `n`.
fn disk_byte(n: u64) -> u8 {
    dom0::domus::test_disk_byte(n)
}

struct Checks {
    passed: u32,
}

impl Checks {
    fn check(&mut self, what: &str, ok: bool) {
        if ok {
            self.passed += 1;
            println!("blk_hostile: ok: {what}");
        } else {
            println!("blk_hostile: FAILED: {what}");
            shutdown(SHUTDOWN_POWEROFF);
        }
    }
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
        // SAFETY: the data page is ours; dom0 wrote it for the read, which
        // is answered.
        let d = unsafe { &*core::ptr::addr_of!(DATA) };
        d.0.chunks(512)
            .zip(first..)
            .all(|(sector, n)| sector.iter().all(|&b| b == disk_byte(n)))
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
    let mut c = Checks { passed: 0 };
    c.check("mask upcalls", dom0::support::mask_upcalls(si) == 0);
    // SAFETY: the builder mapped the store page writable for good.
    let store = unsafe { MappedPage::new(dom0::support::store_page_va(si)) };
    let store_port = si.store_evtchn;
    let mut xs = XsClient::new(
        &store,
        || toolstack::serve::notify(store_port),
        yield_now,
        200_000,
    );
    let backend = xs
        .read(&format!("{DEV}/backend"))
        .ok()
        .and_then(|v| String::from_utf8(v).ok());
    c.check("the toolstack named the disk's back end", backend.is_some());
    let backend = backend.unwrap_or_default();
    let state = format!("{backend}/state");
    let wait_state = |xs: &mut XsClient<'_, MappedPage, _, _>, want: &[u8]| {
        (0..2000).any(|_| {
            let done = xs.read(&state).ok().as_deref() == Some(want);
            if !done {
                yield_now();
            }
            done
        })
    };
    c.check("the back end is InitWait", wait_state(&mut xs, b"2"));
    let sectors = xs.read(&format!("{backend}/sectors")).ok();
    c.check(
        "the back end offers 128 sectors",
        sectors.as_deref() == Some(&b"128"[..]),
    );

    // Its grant table (one frame) at the padding page after the one
    // `mask_upcalls` took.
    let gt_va = si.pt_base + (si.nr_pt_frames + 3) * 4096;
    let mut frame = [0u64; 1];
    let mut setup = GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: 1,
        frame_list: frame.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: `setup` and its frame list are live.
    let rc = unsafe {
        guest_abi::hypercall::typed::grant_table_op(
            GNTTABOP_SETUP_TABLE,
            core::ptr::from_mut(&mut setup).cast(),
            1,
        )
    };
    // SAFETY: replaces the mapping of a padding page nothing uses.
    let mapped = unsafe {
        hypercall3(
            UPDATE_VA_MAPPING,
            gt_va,
            (frame[0] << 12) | 0x67,
            UVMF_INVLPG,
        )
    };
    c.check(
        "its grant table",
        rc == 0 && setup.status == 0 && mapped == 0,
    );
    let ring_va = core::ptr::addr_of!(RING) as u64;
    let data_va = core::ptr::addr_of!(DATA) as u64;
    let grant = |gref: u32, va: u64| {
        let mfn = dom0::grants::own_mfn(si, va);
        let entry = (gt_va + u64::from(gref) * 8) as *mut u32;
        // SAFETY: entry `gref` of the mapped grant table (v1: flags and
        // domid in the first word, the frame in the second); the frame
        // first, then the flags (dom0 is domid 0).
        unsafe {
            entry.add(1).write_volatile(u32::try_from(mfn).unwrap_or(0));
            core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
            entry.write_volatile(u32::from(GTF_PERMIT_ACCESS));
        }
    };
    grant(RING_REF, ring_va);
    grant(DATA_REF, data_va);
    // SAFETY: the ring page is ours, shared with dom0 only through the
    // grant.
    let ring_page = unsafe { MappedPage::new(ring_va) };
    let Some(front) = Front::<_, Request, Response>::new(&ring_page) else {
        c.check("a ring", false);
        shutdown(SHUTDOWN_POWEROFF)
    };
    let port = tests::evtchn::alloc_unbound(DOMID_SELF, 0).unwrap_or(0);
    c.check("an unbound channel for dom0", port != 0);
    let published = xs
        .write(&format!("{DEV}/ring-ref"), format!("{RING_REF}").as_bytes())
        .is_ok()
        && xs
            .write(
                &format!("{DEV}/event-channel"),
                format!("{port}").as_bytes(),
            )
            .is_ok()
        && xs.write(&format!("{DEV}/protocol"), b"x86_64-abi").is_ok()
        && xs.write(&format!("{DEV}/state"), b"3").is_ok();
    c.check("ring, channel and Initialised published", published);
    c.check("the back end is Connected", wait_state(&mut xs, b"4"));

    let mut blk = Blk {
        front,
        port,
        next_id: 100,
    };
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
    for _ in 0..5000 {
        let _ = tests::evtchn::send(port);
    }
    c.check(
        "after 5000 notifications in a row, reads still give the disk's bytes",
        blk.honest_read(2),
    );
    c.check(
        "the refused writes changed nothing (sectors 0-7 as they were)",
        blk.honest_read(0),
    );

    // The lie: a producer index a thousand requests ahead.
    let rsp_prod = ring_page.load(8);
    let req_prod = ring_page.load(0);
    ring_page.store(0, req_prod.wrapping_add(1000));
    let _ = tests::evtchn::send(port);
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
    println!("blk_hostile: {} checks passed", c.passed);
    shutdown(SHUTDOWN_POWEROFF)
}
