//! The FIFO event-channel ABI within one domain, as Xen 4.17 runs it for a
//! PV dom0: `init_control`, `expand_array`, `set_priority`, delivery
//! through the queues, and the frames they hold.
//!
//! `init_control` checks the vCPU (`-ENOENT`), then the control block's
//! offset (it must lie in the page, 8-byte aligned: `-EINVAL`), then
//! whether the vCPU registered one already, then the frame: the guest
//! names it by frame number (for a PV guest the machine frame), and a
//! frame the domain does not own, or one that is a page table, is
//! `-EINVAL`. The first success switches the domain to FIFO (`link_bits`
//! 17); a port pending on the 2-level ABI then stays pending, and is
//! raised once its event-array page is added. `expand_array` adds event
//! pages (the frame refused as for the control block); a port raised
//! before its page exists is raised when the page comes. A raised port
//! sets PENDING in its event word and, unless MASKED, LINKED, is linked on
//! its vCPU's queue of its priority (7 by default, `set_priority` 0-15),
//! and sets that queue's bit in `ready` and `evtchn_upcall_pending`; the
//! upcall goes through the event callback as on the 2-level ABI. A masked
//! port is linked by `unmask`; a port raised on a queue whose tail is
//! still linked goes after it (the tail's LINK). While registered, a control block or event
//! page is the hypervisor's to write: pinning it as a page table is
//! refused; `reset` closes every port, returns the domain to the 2-level
//! ABI and lets the frames go (a spare frame pins again). On FIFO a port
//! beyond 4095 exists.
//!
//! @covers: event_channel_op.init_control event_channel_op.expand_array event_channel_op.set_priority event_channel_op.unmask event_channel_op.reset mmuext_op.pin_l1_table mmuext_op.unpin_table
#![no_std]
#![no_main]

use guest_abi::errno::{EACCES, EINVAL, ENOENT, ENOSYS, EOPNOTSUPP};
use guest_abi::event_channel::{
    EvtchnUnmask, EVTCHNOP_UNMASK, EVTCHNSTAT_CLOSED, EVTCHNSTAT_UNBOUND, EVTCHN_FIFO_LINKED,
    EVTCHN_FIFO_MASKED, EVTCHN_FIFO_PENDING,
};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::{StartInfoRef, VIRT_BASE};
use guest_abi::xen::{DOMID_SELF, MMUEXT_CLEAR_PAGE, MMUEXT_PIN_L1_TABLE, MMUEXT_UNPIN_TABLE};
use tests::check;
use tests::evtchn::{self as ev, Words};
use tests::fixup::SharedInfo;
use tests::pages::Pages;
use tests::pvmm::{self, Env, PAGE};

guest_abi::pv_guest!(main, name = "evtchn_fifo");

/// The control block's page (the block at [`CONTROL_OFFSET`]) and two
/// event-array pages, mapped in the guest's image.
static CONTROL: Pages<1> = Pages::new();
static ARRAY: Pages<2> = Pages::new();
const CONTROL_OFFSET: u32 = 64;
/// An MFN no machine has.
const NO_FRAME: u64 = 1 << 40;

const PENDING: u32 = 1 << EVTCHN_FIFO_PENDING;
const MASKED: u32 = 1 << EVTCHN_FIFO_MASKED;
const LINKED: u32 = 1 << EVTCHN_FIFO_LINKED;

/// The machine frame of a page in the guest's image.
fn mfn_of(env: &Env, va: u64) -> u64 {
    env.mfn((va - VIRT_BASE) / PAGE)
}

fn pin(mfn: u64) -> i64 {
    pvmm::mmuext1(MMUEXT_PIN_L1_TABLE, mfn, 0)
}

fn unpin(mfn: u64) -> i64 {
    pvmm::mmuext1(MMUEXT_UNPIN_TABLE, mfn, 0)
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("evtchn_fifo");
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(shared) = SharedInfo::map(si) else {
        r.check("map shared_info", false);
        r.finish()
    };
    let w = Words::new(shared.va);
    check!(r, "register the event callback", ev::install_callback() => 0);
    let control_mfn = mfn_of(&env, CONTROL.addr());
    let array_mfn = [
        mfn_of(&env, ARRAY.addr()),
        mfn_of(&env, ARRAY.addr() + PAGE),
    ];
    let control = CONTROL.addr() + u64::from(CONTROL_OFFSET);
    let array = ARRAY.addr();

    // Bound on the 2-level ABI: a loopback channel with b pending, an IPI.
    let Ok((a, b)) = ev::loopback() else {
        r.check("a loopback channel", false);
        r.finish()
    };
    let Ok(ipi) = ev::bind_ipi(0) else {
        r.check("an IPI port", false);
        r.finish()
    };
    w.clear_all();
    check!(r, "send(a) on the 2-level ABI", ev::send(a) => 0);
    check!(r, "b pending on the 2-level ABI", w.pending(b) => true);

    // Refusals before the switch.
    check!(r, "expand_array before init_control", ev::expand_array(array_mfn[0]) => -EOPNOTSUPP);
    check!(r, "set_priority before init_control", ev::set_priority(a, 3) => -ENOSYS);
    check!(r, "init_control for vCPU 1", ev::init_control(control_mfn, 0, 1) => Err(-ENOENT));
    check!(r, "init_control for vCPU 0xffffffff", ev::init_control(control_mfn, 0, u32::MAX) => Err(-ENOENT));
    check!(r, "init_control: vCPU checked before the offset", ev::init_control(control_mfn, 4, 1) => Err(-ENOENT));
    check!(r, "init_control at offset 4 (misaligned)", ev::init_control(control_mfn, 4, 0) => Err(-EINVAL));
    check!(r, "init_control at offset 4032 (crosses the page)", ev::init_control(control_mfn, 4032, 0) => Err(-EINVAL));
    check!(r, "init_control at offset 4096", ev::init_control(control_mfn, 4096, 0) => Err(-EINVAL));
    check!(r, "init_control at offset 0xffffffff", ev::init_control(control_mfn, u32::MAX, 0) => Err(-EINVAL));
    check!(r, "init_control on the L4 (a page table)", ev::init_control(env.l4_mfn, 0, 0) => Err(-EINVAL));
    check!(r, "init_control on an L2 (a page table)", ev::init_control(env.l2_mfn, 0, 0) => Err(-EINVAL));
    check!(r, "init_control on a frame no machine has", ev::init_control(NO_FRAME, 0, 0) => Err(-EINVAL));
    check!(r, "init_control on frame 0 (not the domain's)", ev::init_control(0, 0, 0) => Err(-EINVAL));
    check!(r, "still 2-level after the refusals", ev::set_priority(a, 3) => -ENOSYS);
    check!(r, "still 2-level: expand_array", ev::expand_array(array_mfn[0]) => -EOPNOTSUPP);

    // The switch.
    check!(r, "init_control(control block, offset 64, vCPU 0): link_bits", ev::init_control(control_mfn, CONTROL_OFFSET, 0) => Ok(17));
    ev::use_fifo(control);
    check!(r, "init_control for vCPU 0 again", ev::init_control(control_mfn, CONTROL_OFFSET, 0) => Err(-EINVAL));
    check!(r, "init_control for vCPU 0 again, another frame", ev::init_control(array_mfn[1], 0, 0) => Err(-EINVAL));
    check!(r, "init_control for vCPU 1 on FIFO", ev::init_control(array_mfn[1], 0, 1) => Err(-ENOENT));
    check!(r, "ports still bound", ev::state(a) => i64::from(guest_abi::event_channel::EVTCHNSTAT_INTERDOMAIN));
    check!(r, "no queue ready yet (no event page)", ev::fifo_ready(control) => 0);

    // Priorities.
    check!(r, "set_priority(64) (no such port)", ev::set_priority(64, 0) => -EINVAL);
    check!(r, "set_priority(60) (closed)", ev::set_priority(60, 0) => -EACCES);
    check!(r, "set_priority(0) (reserved)", ev::set_priority(0, 0) => -EACCES);
    check!(r, "set_priority(a, 16)", ev::set_priority(a, 16) => -EINVAL);
    check!(r, "set_priority(a, 0xffffffff)", ev::set_priority(a, u32::MAX) => -EINVAL);
    check!(r, "set_priority(a, 15) (lowest)", ev::set_priority(a, 15) => 0);
    check!(r, "set_priority(ipi, 0) (highest)", ev::set_priority(ipi, 0) => 0);

    // Event pages.
    check!(r, "expand_array on the L4 (a page table)", ev::expand_array(env.l4_mfn) => -EINVAL);
    check!(r, "expand_array on a frame no machine has", ev::expand_array(NO_FRAME) => -EINVAL);
    check!(r, "expand_array on frame 0", ev::expand_array(0) => -EINVAL);
    let spare = env.spare().1;
    check!(r, "clear a spare frame", pvmm::mmuext1(MMUEXT_CLEAR_PAGE, spare, 0) => 0);
    check!(r, "pin the spare frame as an L1", pin(spare) => 0);
    check!(r, "expand_array on a pinned L1", ev::expand_array(spare) => -EINVAL);
    check!(r, "unpin it", unpin(spare) => 0);
    check!(r, "expand_array(page 0)", ev::expand_array(array_mfn[0]) => 0);
    // b was pending on the 2-level ABI: raised now, on queue 7.
    check!(r, "b raised with its page: its word", ev::fifo_word(array, b) => PENDING | LINKED);
    check!(r, "... head of queue 7", ev::fifo_head(control, 7) => b);
    check!(r, "... ready", ev::fifo_ready(control) => 1 << 7);
    check!(r, "... evtchn_upcall_pending", w.upcall_pending() => 1);
    check!(r, "a's word untouched", ev::fifo_word(array, a) => 0);

    check!(r, "send(ipi)", ev::send(ipi) => 0);
    check!(r, "ipi's word", ev::fifo_word(array, ipi) => PENDING | LINKED);
    check!(r, "ipi heads queue 0", ev::fifo_head(control, 0) => ipi);
    check!(r, "send(b): a raised", ev::send(b) => 0);
    check!(r, "a heads queue 15", ev::fifo_head(control, 15) => a);
    check!(r, "ready: queues 0, 7 and 15", ev::fifo_ready(control) => 1 | 1 << 7 | 1 << 15);
    check!(r, "send(a) again: b pending and linked already", ev::send(a) => 0);
    check!(r, "b's word unchanged", ev::fifo_word(array, b) => PENDING | LINKED);
    check!(r, "no upcall while events are masked", ev::upcalls() => 0);

    // Delivery: the callback swaps ready.
    w.unmask_events();
    check!(r, "unmask events: one upcall", ev::upcalls() => 1);
    check!(r, "... which found ready 0, 7 and 15", ev::last().sel => 1 | 1 << 7 | 1 << 15);
    check!(r, "... with events masked on entry", ev::last().mask => 1);
    check!(r, "ready consumed", ev::fifo_ready(control) => 0);

    // A masked port is linked by unmask. Consume ipi as a guest would
    // (unlink it: clear LINKED, PENDING and LINK) and mask it.
    ev::set_fifo_word(array, ipi, MASKED);
    check!(r, "send(ipi) while its word is masked", ev::send(ipi) => 0);
    check!(r, "... PENDING set, not linked", ev::fifo_word(array, ipi) => PENDING | MASKED);
    check!(r, "... no upcall", ev::upcalls() => 1);
    let un = EvtchnUnmask { port: ipi };
    let (rc, rip, _) = ev::op_at(EVTCHNOP_UNMASK, &un);
    check!(r, "unmask(ipi)", rc => 0);
    check!(r, "... linked now", ev::fifo_word(array, ipi) => PENDING | LINKED);
    check!(r, "... upcall on unmask's way back", ev::upcalls() => 2);
    check!(r, "... at the instruction after its syscall", ev::last().frame[2] => rip);
    check!(r, "... ready queue 0", ev::last().sel => 1);
    w.set_upcall_mask(true);

    // Ports beyond the first event page: raised before their page exists,
    // raised again when it comes.
    let mut far = 0;
    while far < 1024 {
        match ev::alloc_unbound(DOMID_SELF, DOMID_SELF) {
            Ok(p) => far = p,
            Err(e) => {
                check!(r, "alloc_unbound up to port 1024", e => 0);
                r.finish()
            }
        }
    }
    let near = ev::bind_interdomain(DOMID_SELF, far);
    check!(r, "bind_interdomain to port 1024: the next port", near => Ok(1025));
    check!(r, "send(1024) with no page for 1025", ev::send(far) => 0);
    check!(r, "nothing ready for it", ev::fifo_ready(control) => 0);
    check!(r, "expand_array(page 1)", ev::expand_array(array_mfn[1]) => 0);
    check!(r, "1025 raised with its page", ev::fifo_word(array + PAGE, 1) => PENDING | LINKED);
    check!(r, "... linked after b, queue 7's tail", ev::fifo_word(array, b) => PENDING | LINKED | 1025);
    check!(r, "... b still heads queue 7", ev::fifo_head(control, 7) => b);
    check!(r, "1024 not raised", ev::fifo_word(array + PAGE, 0) => 0);

    // Beyond the 2-level limit.
    let mut last = far;
    while last < 4096 {
        match ev::alloc_unbound(DOMID_SELF, DOMID_SELF) {
            Ok(p) => last = p,
            Err(e) => {
                check!(r, "alloc_unbound past port 4095", e => 0);
                break;
            }
        }
    }
    check!(r, "FIFO: port 4096 allocated", ev::state(4096) => i64::from(EVTCHNSTAT_UNBOUND));

    // The frames are the hypervisor's while registered.
    check!(r, "pin an event-array page as an L1", pin(array_mfn[1]) == 0 => false);
    check!(r, "pin the control block's page as an L1", pin(control_mfn) == 0 => false);

    // Reset: every port closed, back to 2-level, frames let go.
    check!(r, "reset(SELF)", ev::reset(DOMID_SELF) => 0);
    ev::use_2level();
    for port in [a, b, ipi, 1024, 1025, 4096] {
        check!(r, "after reset: port {port} closed", ev::state(port) => i64::from(EVTCHNSTAT_CLOSED));
    }
    check!(r, "after reset: 2-level (set_priority)", ev::set_priority(a, 3) => -ENOSYS);
    check!(r, "after reset: expand_array", ev::expand_array(array_mfn[0]) => -EOPNOTSUPP);

    // A control block on a spare frame: it cannot be pinned while
    // registered, and can once a reset let it go.
    check!(r, "init_control on the spare frame", ev::init_control(spare, 0, 0) => Ok(17));
    let rc = pin(spare);
    println!("pin of a registered control block: {rc}");
    check!(r, "pin the registered control block", rc == 0 => false);
    check!(r, "reset(SELF) again", ev::reset(DOMID_SELF) => 0);
    check!(r, "pin the spare frame after the reset", pin(spare) => 0);
    check!(r, "unpin it", unpin(spare) => 0);
    r.finish()
}
