//! Where `print!` goes: `console_io` or the PV console ring.
//!
//! The initial domain writes with `CONSOLEIO_write`, which Xen sends to its
//! serial console. Any other domain gets a console ring page and an event
//! channel in `start_info.console.domU`; Xen's non-debug builds refuse
//! `console_io` to it (`-EPERM`), so output must go through the ring, to
//! the console backend in the toolstack's domain. [`init`] picks one before
//! `main` runs. A domU whose `start_info` names no ring (mfn 0) keeps
//! `console_io`.
//!
//! The ring page is mapped with `update_va_mapping` over [`RING_PAGE`], a
//! page-aligned page of the guest's own `.bss`, so the runtime needs no
//! knowledge of the guest's address-space layout; the frame that page had
//! is simply no longer mapped. The ring logic itself is
//! [`crate::io::console::xencons_write`], tested on the host; this module
//! is the volatile glue around it.

use core::cell::UnsafeCell;
use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{compiler_fence, AtomicU32, AtomicU64, Ordering};

use crate::arch::PAGE_SHIFT;
use crate::event_channel::{EvtchnSend, EVTCHNOP_SEND};
use crate::hypercall::{
    console_io_write, hypercall2, hypercall3, sched_op_yield, EVENT_CHANNEL_OP, UPDATE_VA_MAPPING,
};
use crate::io::console::{xencons_write, XenconsInterface, XenconsOut, XENCONS_OUT_SIZE};
use crate::xen::{StartInfo, SIF_INITDOMAIN, UVMF_INVLPG, UVMF_LOCAL};

/// PTE bits for the ring mapping: present, writable, user (a PV kernel runs
/// in ring 3), accessed, dirty.
const RING_PTE_FLAGS: u64 = 0x1 | 0x2 | 0x4 | 0x20 | 0x40;

/// Yields in a row without the backend consuming anything before output is
/// dropped: a console without a backend must not hang the guest.
const MAX_STALLED_YIELDS: u32 = 100_000;

/// A page of `.bss` whose virtual address the console ring is mapped at.
#[repr(C, align(4096))]
struct RingPage(UnsafeCell<[u8; 4096]>);

// SAFETY: only `init` (once, before `main`) and `write` touch the page, on
// the boot vCPU, through raw pointers; no reference to it is ever formed.
unsafe impl Sync for RingPage {}

static RING_PAGE: RingPage = RingPage(UnsafeCell::new([0; 4096]));

/// The ring's virtual address once mapped, else 0 (use `console_io`).
static RING_VA: AtomicU64 = AtomicU64::new(0);
/// The console's event channel port.
static RING_PORT: AtomicU32 = AtomicU32::new(0);

/// Which console [`crate::print!`] writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    /// `HYPERVISOR_console_io(CONSOLEIO_write)`.
    ConsoleIo,
    /// The PV console ring at this virtual address, notified through this
    /// event channel port.
    Ring { va: u64, port: u32 },
}

/// The console in use.
pub fn console() -> Console {
    match RING_VA.load(Ordering::Relaxed) {
        0 => Console::ConsoleIo,
        va => Console::Ring {
            va,
            port: RING_PORT.load(Ordering::Relaxed),
        },
    }
}

/// Chooses the console from `start_info`; maps the ring if there is one.
pub(super) fn init(si: &StartInfo) {
    // For the initial domain the union holds dom0's VGA info, not a ring.
    let mfn = si.console.dom_u_mfn();
    if si.flags & SIF_INITDOMAIN != 0 || mfn == 0 {
        return;
    }
    let va = RING_PAGE.0.get() as u64;
    let pte = (mfn << PAGE_SHIFT) | RING_PTE_FLAGS;
    // SAFETY: the page at `va` is RING_PAGE, which nothing references, so
    // replacing its mapping changes no memory Rust code relies on.
    let rc = unsafe { hypercall3(UPDATE_VA_MAPPING, va, pte, UVMF_INVLPG | UVMF_LOCAL) };
    if rc < 0 {
        crate::println!(
            "guest-abi: mapping the console ring (mfn {mfn:#x}) failed: {rc} ({}); using console_io",
            crate::errno::name(rc)
        );
        return;
    }
    RING_PORT.store(si.console.dom_u_evtchn(), Ordering::Relaxed);
    RING_VA.store(va, Ordering::Relaxed);
}

/// The live ring page, reached only through volatile accesses.
struct LiveRing(*mut XenconsInterface);

impl XenconsOut for LiveRing {
    fn out_cons(&self) -> u32 {
        // SAFETY: `self.0` is the mapped ring page (see `write`).
        let v = unsafe { addr_of!((*self.0).out_cons).read_volatile() };
        // Xen's mb(): read the backend's index before reusing the bytes.
        compiler_fence(Ordering::SeqCst);
        v
    }
    fn out_prod(&self) -> u32 {
        // SAFETY: as above.
        unsafe { addr_of!((*self.0).out_prod).read_volatile() }
    }
    fn write_out(&mut self, at: usize, b: u8) {
        if at < XENCONS_OUT_SIZE {
            // SAFETY: as above, and `at` is inside the `out` array.
            unsafe {
                addr_of_mut!((*self.0).out)
                    .cast::<u8>()
                    .add(at)
                    .write_volatile(b)
            };
        }
    }
    fn set_out_prod(&mut self, prod: u32) {
        // Xen's wmb(): x86 keeps stores in order, so only the compiler
        // must not move the byte stores past this one.
        compiler_fence(Ordering::SeqCst);
        // SAFETY: as above.
        unsafe { addr_of_mut!((*self.0).out_prod).write_volatile(prod) };
    }
}

/// Notifies the console backend (`EVTCHNOP_send`).
fn notify(port: u32) {
    let mut send = EvtchnSend { port };
    // SAFETY: the argument is a live `evtchn_send` that Xen only reads.
    unsafe {
        hypercall2(
            EVENT_CHANNEL_OP,
            u64::from(EVTCHNOP_SEND),
            addr_of_mut!(send) as u64,
        );
    }
}

/// Writes `bytes` to the console. Errors are dropped: there is nowhere
/// else to report them.
pub(super) fn write(bytes: &[u8]) {
    let Console::Ring { va, port } = console() else {
        console_io_write(bytes);
        return;
    };
    let mut ring = LiveRing(va as *mut XenconsInterface);
    let mut rest = bytes;
    let mut stalled = 0;
    while !rest.is_empty() && stalled < MAX_STALLED_YIELDS {
        match xencons_write(&mut ring, rest) {
            Ok(0) => {
                stalled += 1;
                sched_op_yield();
            }
            Ok(n) => {
                stalled = 0;
                rest = rest.get(n..).unwrap_or_default();
                notify(port);
            }
            Err(_) => return,
        }
    }
}
