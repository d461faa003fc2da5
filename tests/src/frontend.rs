//! What the hostile front ends (`blk_hostile`, `net_hostile`) share: a
//! domU of dom0's talking to its store without an event callback, its
//! own grant table, and the checks it prints for the dom0 case that runs
//! it.

use alloc::format;
use alloc::string::String;

use dom0::support::MappedPage;
use guest_abi::grant_table::{GnttabSetupTable, GNTTABOP_SETUP_TABLE, GTF_PERMIT_ACCESS};
use guest_abi::hypercall::{hypercall2, hypercall3, SCHED_OP, UPDATE_VA_MAPPING};
use guest_abi::println;
use guest_abi::rt::{shutdown, StartInfoRef};
use guest_abi::sched::{SCHEDOP_YIELD, SHUTDOWN_POWEROFF};
use guest_abi::xen::{DOMID_SELF, UVMF_INVLPG};
use pv_drivers::xs_client::XsClient;

use crate::pages::Pages;

pub const PAGE: usize = 4096;

/// Our pages `p`, to grant to dom0 and reach only as it is reached: by
/// volatile and atomic accesses (`MappedPage`), never a reference.
pub fn shared<const N: usize>(p: &'static Pages<N>) -> MappedPage {
    // SAFETY: the pages are static, page aligned and mapped writable for
    // good; `Pages` never hands out a reference into them, so every
    // access is `MappedPage`'s.
    unsafe { MappedPage::pages(p.addr(), N) }
}

pub fn yield_now() {
    // SAFETY: no argument.
    unsafe { hypercall2(SCHED_OP, u64::from(SCHEDOP_YIELD), 0) };
}

/// Checks printed as `<name>: ok: ...`; the first that fails prints
/// `<name>: FAILED: ...` and powers off.
pub struct Checks {
    pub name: &'static str,
    pub passed: u32,
}

impl Checks {
    pub fn check(&mut self, what: &str, ok: bool) {
        if ok {
            self.passed += 1;
            println!("{}: ok: {what}", self.name);
        } else {
            println!("{}: FAILED: {what}", self.name);
            shutdown(SHUTDOWN_POWEROFF);
        }
    }

    pub fn done(&self) -> ! {
        println!("{}: {} checks passed", self.name, self.passed);
        shutdown(SHUTDOWN_POWEROFF)
    }
}

/// The store page of a domU our toolstack built (upcalls masked: no
/// callback).
pub fn store_page(c: &mut Checks, si: StartInfoRef) -> MappedPage {
    c.check("mask upcalls", dom0::support::mask_upcalls(si) == 0);
    // SAFETY: the builder mapped the store page writable for good, and
    // nothing of ours refers into it.
    unsafe { MappedPage::new(dom0::support::store_page_va(si)) }
}

/// A store client over `page`, polling.
pub fn client(
    page: &MappedPage,
    port: u32,
) -> XsClient<'_, MappedPage, impl FnMut(), impl FnMut()> {
    XsClient::new(
        page,
        move || toolstack::serve::notify(port),
        yield_now,
        200_000,
    )
}

/// Reads `path` until it holds `want` (a while, yielding): whether it did.
pub fn wait_for<N: FnMut(), I: FnMut()>(
    xs: &mut XsClient<'_, MappedPage, N, I>,
    path: &str,
    want: &[u8],
) -> bool {
    (0..2000).any(|_| {
        let done = xs.read(path).ok().as_deref() == Some(want);
        if !done {
            yield_now();
        }
        done
    })
}

/// Device `dev`'s back end's `state` node, once (a while) it is
/// `InitWait`, checked as `<what> is InitWait`.
pub fn back_end_waiting<N: FnMut(), I: FnMut()>(
    c: &mut Checks,
    xs: &mut XsClient<'_, MappedPage, N, I>,
    dev: &str,
    what: &str,
) -> String {
    let backend = read(xs, &format!("{dev}/backend"));
    let state = format!("{backend}/state");
    c.check(&format!("{what} is InitWait"), wait_for(xs, &state, b"2"));
    state
}

/// Waits (a while, yielding) for `done`: whether it came.
pub fn until(mut done: impl FnMut() -> bool) -> bool {
    (0..200_000).any(|_| {
        let d = done();
        if !d {
            yield_now();
        }
        d
    })
}

/// The text of `path`, if any.
pub fn read<N: FnMut(), I: FnMut()>(xs: &mut XsClient<'_, MappedPage, N, I>, path: &str) -> String {
    xs.read(path)
        .ok()
        .and_then(|v| String::from_utf8(v).ok())
        .unwrap_or_default()
}

/// Its grant table, one frame, mapped at the padding page after the one
/// `mask_upcalls` took; entries are granted to dom0.
pub struct GrantTable {
    va: u64,
}

impl GrantTable {
    pub fn new(c: &mut Checks, si: StartInfoRef) -> Self {
        let va = si.pt_base + (si.nr_pt_frames + 3) * 4096;
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
        let mapped =
            unsafe { hypercall3(UPDATE_VA_MAPPING, va, (frame[0] << 12) | 0x67, UVMF_INVLPG) };
        c.check(
            "its grant table",
            rc == 0 && setup.status == 0 && mapped == 0,
        );
        Self { va }
    }

    /// Grants our page at `va` to dom0 as `gref`, writable.
    pub fn grant(&self, si: StartInfoRef, gref: u32, va: u64) {
        let mfn = dom0::grants::own_mfn(si, va);
        let entry = (self.va + u64::from(gref) * 8) as *mut u32;
        // SAFETY: entry `gref` (below 512) of the mapped grant table (v1:
        // flags and domid 0 in the first word, the frame in the second);
        // the frame first, then the flags.
        unsafe {
            entry.add(1).write_volatile(u32::try_from(mfn).unwrap_or(0));
            core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
            entry.write_volatile(u32::from(GTF_PERMIT_ACCESS));
        }
    }
}

impl GrantTable {
    /// Takes grant `gref` back as a hostile front end may at any time: its
    /// entry's flags and frame overwritten with zeros, whether or not dom0
    /// is using it (Linux's front ends refuse while it is in use; this is
    /// no such front end).
    pub fn revoke(&self, gref: u32) {
        let entry = (self.va + u64::from(gref) * 8) as *mut u32;
        // SAFETY: entry `gref` (below 512) of the mapped grant table.
        unsafe {
            entry.write_volatile(0);
            entry.add(1).write_volatile(0);
        }
    }
}

/// Allocates an unbound channel for dom0 and publishes `nodes` (name,
/// value), the channel as `event-channel` and then `state` under `dir`;
/// checks that the back end (its state node `back_state`) is then
/// Connected. The channel.
pub fn connect<N: FnMut(), I: FnMut()>(
    c: &mut Checks,
    xs: &mut XsClient<'_, MappedPage, N, I>,
    (dir, back_state): (&str, &str),
    nodes: &[(&str, String)],
    state: &str,
) -> u32 {
    let port = crate::evtchn::alloc_unbound(DOMID_SELF, 0).unwrap_or(0);
    c.check("an unbound channel for dom0", port != 0);
    let published = nodes
        .iter()
        .chain(&[
            ("event-channel", format!("{port}")),
            ("state", state.into()),
        ])
        .all(|(k, v)| xs.write(&format!("{dir}/{k}"), v.as_bytes()).is_ok());
    c.check("its rings, channel and state published", published);
    c.check("the back end is Connected", wait_for(xs, back_state, b"4"));
    port
}

/// [`connect`] for a network front end: its transmit and receive rings
/// (granted as `tx_ring_ref` and `rx_ring_ref`) and receive by copy, the
/// only receive path dom0's back end offers. The channel.
pub fn connect_vif<N: FnMut(), I: FnMut()>(
    c: &mut Checks,
    xs: &mut XsClient<'_, MappedPage, N, I>,
    dev: (&str, &str),
    tx_ring_ref: u32,
    rx_ring_ref: u32,
) -> u32 {
    let nodes = [
        ("tx-ring-ref", format!("{tx_ring_ref}")),
        ("rx-ring-ref", format!("{rx_ring_ref}")),
        ("request-rx-copy", "1".into()),
    ];
    connect(c, xs, dev, &nodes, "4")
}
