//! What the event-channel guests share: `event_channel_op` wrappers, the
//! event words a guest reads and writes itself (vCPU 0's `vcpu_info` and
//! the 2-level bitmaps in `shared_info`, or a FIFO control block), and an
//! event callback that records every upcall.
//!
//! The callback ([`install_callback`]) is an assembly stub: it saves the
//! scratch registers, calls [`record_upcall`] with the address of the
//! frame the hypervisor wrote (Xen's 64-bit PV frame without error code:
//! `rcx, r11, rip, cs, rflags, rsp, ss`), restores them and returns with
//! the `iret` hypercall to the interrupted context, whose `rflags.IF`
//! (set: events were unmasked when the upcall came) unmasks events again.
//! [`record_upcall`] does what a guest does: on the 2-level ABI it clears
//! `evtchn_upcall_pending`, swaps `evtchn_pending_sel` to zero and takes
//! (clears) every pending unmasked port of the selected words, as Linux
//! does; on FIFO it clears `evtchn_upcall_pending` and swaps `ready` to
//! zero, leaving the queues for the test to read. It keeps the last
//! upcall's frame, what it found and the ports it took ([`last`]).

use core::arch::global_asm;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::SeqCst};

use guest_abi::callback::{CallbackRegister, CALLBACKOP_REGISTER, CALLBACKTYPE_EVENT};
use guest_abi::event_channel::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindVcpu, EvtchnBindVirq,
    EvtchnClose, EvtchnExpandArray, EvtchnInitControl, EvtchnReset, EvtchnSend, EvtchnSetPriority,
    EvtchnStatus, EvtchnUnmask, EVTCHNOP_ALLOC_UNBOUND, EVTCHNOP_BIND_INTERDOMAIN,
    EVTCHNOP_BIND_IPI, EVTCHNOP_BIND_VCPU, EVTCHNOP_BIND_VIRQ, EVTCHNOP_CLOSE,
    EVTCHNOP_EXPAND_ARRAY, EVTCHNOP_INIT_CONTROL, EVTCHNOP_RESET, EVTCHNOP_SEND,
    EVTCHNOP_SET_PRIORITY, EVTCHNOP_STATUS, EVTCHNOP_UNMASK,
};
use guest_abi::hypercall::{
    hypercall1, hypercall2, CALLBACK_OP, EVENT_CHANNEL_OP, EVENT_CHANNEL_OP_COMPAT, XEN_VERSION,
};
use guest_abi::xen::DOMID_SELF;

/// `event_channel_op(cmd, arg)` with `arg` a bare address.
pub fn op_raw(cmd: u32, arg: u64) -> i64 {
    // SAFETY: `arg` is the caller's struct for `cmd` (or an address the
    // hypervisor must refuse); event-channel operations touch no memory
    // of the guest's but that struct and the event words.
    unsafe { hypercall2(EVENT_CHANNEL_OP, u64::from(cmd), arg) }
}

/// `event_channel_op(cmd, &mut arg)`.
pub fn op<T>(cmd: u32, arg: &mut T) -> i64 {
    op_raw(cmd, core::ptr::from_mut(arg) as u64)
}

/// `event_channel_op_compat(op)` with `op` a bare address.
pub fn compat_raw(op: u64) -> i64 {
    // SAFETY: as in `op_raw`, for the 28-byte `evtchn_op` at `op`.
    unsafe { hypercall1(EVENT_CHANNEL_OP_COMPAT, op) }
}

/// A result as `Ok(port)` or `Err(rc)`.
fn port_or(rc: i64, port: u32) -> Result<u32, i64> {
    if rc == 0 {
        Ok(port)
    } else {
        Err(rc)
    }
}

pub fn alloc_unbound(dom: u16, remote_dom: u16) -> Result<u32, i64> {
    let mut a = EvtchnAllocUnbound {
        dom,
        remote_dom,
        port: 0,
    };
    let rc = op(EVTCHNOP_ALLOC_UNBOUND, &mut a);
    port_or(rc, a.port)
}

pub fn bind_interdomain(remote_dom: u16, remote_port: u32) -> Result<u32, i64> {
    let mut b = EvtchnBindInterdomain {
        remote_dom,
        _pad: 0,
        remote_port,
        local_port: 0,
    };
    let rc = op(EVTCHNOP_BIND_INTERDOMAIN, &mut b);
    port_or(rc, b.local_port)
}

/// A loopback channel: `(unbound end, bound end)`.
pub fn loopback() -> Result<(u32, u32), i64> {
    let a = alloc_unbound(DOMID_SELF, DOMID_SELF)?;
    let b = bind_interdomain(DOMID_SELF, a)?;
    Ok((a, b))
}

pub fn bind_virq(virq: u32, vcpu: u32) -> Result<u32, i64> {
    let mut b = EvtchnBindVirq {
        virq,
        vcpu,
        port: 0,
    };
    let rc = op(EVTCHNOP_BIND_VIRQ, &mut b);
    port_or(rc, b.port)
}

pub fn bind_ipi(vcpu: u32) -> Result<u32, i64> {
    let mut b = EvtchnBindIpi { vcpu, port: 0 };
    let rc = op(EVTCHNOP_BIND_IPI, &mut b);
    port_or(rc, b.port)
}

pub fn send(port: u32) -> i64 {
    op(EVTCHNOP_SEND, &mut EvtchnSend { port })
}

pub fn close(port: u32) -> i64 {
    op(EVTCHNOP_CLOSE, &mut EvtchnClose { port })
}

pub fn unmask(port: u32) -> i64 {
    op(EVTCHNOP_UNMASK, &mut EvtchnUnmask { port })
}

pub fn bind_vcpu(port: u32, vcpu: u32) -> i64 {
    op(EVTCHNOP_BIND_VCPU, &mut EvtchnBindVcpu { port, vcpu })
}

pub fn set_priority(port: u32, priority: u32) -> i64 {
    op(
        EVTCHNOP_SET_PRIORITY,
        &mut EvtchnSetPriority { port, priority },
    )
}

pub fn reset(dom: u16) -> i64 {
    op(EVTCHNOP_RESET, &mut EvtchnReset { dom })
}

pub fn expand_array(array_gfn: u64) -> i64 {
    op(EVTCHNOP_EXPAND_ARRAY, &mut EvtchnExpandArray { array_gfn })
}

/// `init_control`: `Ok(link_bits)` or `Err(rc)`.
pub fn init_control(control_gfn: u64, offset: u32, vcpu: u32) -> Result<u8, i64> {
    let mut c = EvtchnInitControl {
        control_gfn,
        offset,
        vcpu,
        ..EvtchnInitControl::default()
    };
    let rc = op(EVTCHNOP_INIT_CONTROL, &mut c);
    if rc == 0 {
        Ok(c.link_bits)
    } else {
        Err(rc)
    }
}

/// `status`: the whole answer, or `Err(rc)`.
pub fn status(dom: u16, port: u32) -> Result<EvtchnStatus, i64> {
    let mut s = EvtchnStatus {
        dom,
        port,
        ..EvtchnStatus::default()
    };
    let rc = op(EVTCHNOP_STATUS, &mut s);
    if rc == 0 {
        Ok(s)
    } else {
        Err(rc)
    }
}

/// `status` of one of the caller's ports: `EVTCHNSTAT_*`, or the error.
pub fn state(port: u32) -> i64 {
    match status(DOMID_SELF, port) {
        Ok(s) => i64::from(s.status),
        Err(rc) => rc,
    }
}

/// A hypercall that does nothing but return: how a guest that unmasked
/// events in memory and found one pending asks for its upcall (Linux's
/// `xen_force_evtchn_callback`).
pub fn force_callback() {
    // SAFETY: XENVER_version reads and writes nothing.
    let _ = unsafe { hypercall2(XEN_VERSION, 0, 0) };
}

// ---------------------------------------------------------------------------
// The guest's own event words

/// Offsets in shared_info: vCPU 0's `vcpu_info`, the 2-level bitmaps.
const UPCALL_PENDING: u64 = 0;
const UPCALL_MASK: u64 = 1;
const PENDING_SEL: u64 = 8;
const EVTCHN_PENDING: u64 = 2048;
const EVTCHN_MASK: u64 = 2560;

/// Where shared_info is mapped (0: not yet), for the callback.
static SHARED: AtomicU64 = AtomicU64::new(0);
/// vCPU 0's FIFO control block (0: the 2-level ABI), for the callback.
static CONTROL: AtomicU64 = AtomicU64::new(0);

fn byte(va: u64) -> &'static AtomicU8 {
    // SAFETY: `va` is inside the shared-info page or a control block the
    // guest mapped for good; the hypervisor changes these words
    // atomically, the guest only through this reference.
    unsafe { &*(va as *const AtomicU8) }
}

fn word32(va: u64) -> &'static AtomicU32 {
    // SAFETY: as in `byte`, 4-byte aligned.
    unsafe { &*(va as *const AtomicU32) }
}

fn word64(va: u64) -> &'static AtomicU64 {
    // SAFETY: as in `byte`, 8-byte aligned.
    unsafe { &*(va as *const AtomicU64) }
}

/// vCPU 0's event words and the 2-level bitmaps, in the shared-info page
/// mapped at `va` ([`crate::fixup::SharedInfo::map`]).
#[derive(Clone, Copy)]
pub struct Words {
    pub va: u64,
}

impl Words {
    /// The words of the shared-info page mapped at `va`; the callback
    /// uses them from now on.
    pub fn new(va: u64) -> Self {
        SHARED.store(va, SeqCst);
        Self { va }
    }

    pub fn upcall_pending(self) -> u8 {
        byte(self.va + UPCALL_PENDING).load(SeqCst)
    }

    pub fn set_upcall_pending(self, v: u8) {
        byte(self.va + UPCALL_PENDING).store(v, SeqCst);
    }

    pub fn upcall_mask(self) -> u8 {
        byte(self.va + UPCALL_MASK).load(SeqCst)
    }

    /// Sets `evtchn_upcall_mask` (events masked for the vCPU) or clears it
    /// (without asking for a pending upcall: see [`Self::unmask_events`]).
    pub fn set_upcall_mask(self, masked: bool) {
        byte(self.va + UPCALL_MASK).store(u8::from(masked), SeqCst);
    }

    /// Clears `evtchn_upcall_mask` and, if an upcall is pending, asks for
    /// it with a hypercall, as Linux's `xen_irq_enable` does.
    pub fn unmask_events(self) {
        self.set_upcall_mask(false);
        if self.upcall_pending() != 0 {
            force_callback();
        }
    }

    pub fn pending_sel(self) -> u64 {
        word64(self.va + PENDING_SEL).load(SeqCst)
    }

    pub fn set_pending_sel(self, v: u64) {
        word64(self.va + PENDING_SEL).store(v, SeqCst);
    }

    fn bit(self, base: u64, port: u32) -> (&'static AtomicU64, u64) {
        (
            word64(self.va + base + u64::from(port / 64) * 8),
            1 << (port % 64),
        )
    }

    /// A port's 2-level pending bit.
    pub fn pending(self, port: u32) -> bool {
        let (w, m) = self.bit(EVTCHN_PENDING, port);
        w.load(SeqCst) & m != 0
    }

    pub fn clear_pending(self, port: u32) {
        let (w, m) = self.bit(EVTCHN_PENDING, port);
        w.fetch_and(!m, SeqCst);
    }

    /// A port's 2-level mask bit.
    pub fn masked(self, port: u32) -> bool {
        let (w, m) = self.bit(EVTCHN_MASK, port);
        w.load(SeqCst) & m != 0
    }

    pub fn set_masked(self, port: u32, masked: bool) {
        let (w, m) = self.bit(EVTCHN_MASK, port);
        if masked {
            w.fetch_or(m, SeqCst);
        } else {
            w.fetch_and(!m, SeqCst);
        }
    }

    /// Clears every pending bit, the selector and the upcall flag: a
    /// clean slate for the next check.
    pub fn clear_all(self) {
        for i in 0..64 {
            word64(self.va + EVTCHN_PENDING + i * 8).store(0, SeqCst);
        }
        self.set_pending_sel(0);
        self.set_upcall_pending(0);
    }
}

/// vCPU 0's FIFO control block at `va`: the callback swaps `ready` from
/// now on instead of scanning the 2-level bitmaps.
pub fn use_fifo(control_va: u64) {
    CONTROL.store(control_va, SeqCst);
}

/// Back to the 2-level ABI (after a reset).
pub fn use_2level() {
    CONTROL.store(0, SeqCst);
}

pub fn fifo_ready(control_va: u64) -> u32 {
    word32(control_va).load(SeqCst)
}

pub fn fifo_head(control_va: u64, queue: u32) -> u32 {
    word32(control_va + 8 + u64::from(queue) * 4).load(SeqCst)
}

/// A FIFO event word (event array page mapped at `array_va`).
pub fn fifo_word(array_va: u64, port: u32) -> u32 {
    word32(array_va + u64::from(port) * 4).load(SeqCst)
}

pub fn set_fifo_word(array_va: u64, port: u32, v: u32) {
    word32(array_va + u64::from(port) * 4).store(v, SeqCst);
}

// ---------------------------------------------------------------------------
// The event callback

/// What one upcall saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Upcall {
    /// Where the frame was (the callback's stack pointer on entry).
    pub frame_va: u64,
    /// `rcx, r11, rip, cs, rflags, rsp, ss`.
    pub frame: [u64; 7],
    /// `evtchn_upcall_mask` and `evtchn_upcall_pending` on entry.
    pub mask: u8,
    pub pending: u8,
    /// 2-level: the selector it swapped; FIFO: `ready`.
    pub sel: u64,
    /// The ports it took (2-level), in order, at most 8.
    pub ports: [u32; 8],
    pub nports: usize,
}

static COUNT: AtomicU64 = AtomicU64::new(0);
static FRAME_VA: AtomicU64 = AtomicU64::new(0);
static FRAME: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];
static MASK: AtomicU8 = AtomicU8::new(0);
static PENDING: AtomicU8 = AtomicU8::new(0);
static SEL: AtomicU64 = AtomicU64::new(0);
static PORTS: [AtomicU32; 8] = [const { AtomicU32::new(0) }; 8];
static NPORTS: AtomicU64 = AtomicU64::new(0);

global_asm!(
    r#"
    .pushsection .text.evtchn_callback, "ax"
    .globl evtchn_callback
evtchn_callback:
    /* rsp: the frame (rcx, r11, rip, cs, rflags, rsp, ss); 7 pushes keep
       the call 16-byte aligned (the frame sits 8 below an aligned
       address). */
    push rax
    push rdx
    push rsi
    push rdi
    push r8
    push r9
    push r10
    lea rdi, [rsp + 56]
    call {record}
    pop r10
    pop r9
    pop r8
    pop rdi
    pop rsi
    pop rdx
    pop rax
    pop rcx
    pop r11
    push 0
    jmp hypercall_page + 23 * 32

    /* evtchn_call_at(cmd, arg, nr) -> (rax, address after the syscall);
       also records rsp at the syscall. */
    .globl evtchn_call_at
evtchn_call_at:
    mov rax, rdx
    mov [rip + {rsp_at}], rsp
    syscall
2:
    lea rdx, [rip + 2b]
    ret

    /* evtchn_iret_here() -> the address the iret returned to: an iret
       hypercall to the next instruction with rflags.IF set (events
       unmasked), on the same stack. */
    .globl evtchn_iret_here
evtchn_iret_here:
    lea rax, [rip + 3f]
    mov rdx, rsp
    mov [rip + {rsp_at}], rsp
    push {ss}
    push rdx
    push 0x202
    push {cs}
    push rax
    push 0
    jmp hypercall_page + 23 * 32
3:
    ret

    /* A #BP handler: counts, notes how many upcalls came before it and
       the rip it returns to, and returns there with iret. */
    .globl evtchn_int3
evtchn_int3:
    push rax
    mov rax, [rip + {count}]
    mov [rip + {int3_upcalls}], rax
    mov rax, [rsp + 24]
    mov [rip + {int3_rip}], rax
    lock inc qword ptr [rip + {int3_count}]
    pop rax
    pop rcx
    pop r11
    push 0
    jmp hypercall_page + 23 * 32
    .popsection
"#,
    count = sym COUNT,
    int3_upcalls = sym INT3_UPCALLS,
    int3_rip = sym INT3_RIP,
    int3_count = sym INT3_COUNT,
    record = sym record_upcall,
    rsp_at = sym RSP_AT,
    ss = const 0xe02b,
    cs = const 0xe030,
);

/// What [`int3_handler`] saw: how often it ran, the upcalls made before
/// its last run, and the rip it returned to.
static INT3_COUNT: AtomicU64 = AtomicU64::new(0);
static INT3_UPCALLS: AtomicU64 = AtomicU64::new(0);
static INT3_RIP: AtomicU64 = AtomicU64::new(0);

/// `(runs, upcalls before the last run, rip it returned to)` of
/// [`int3_handler`].
pub fn int3_seen() -> (u64, u64, u64) {
    (
        INT3_COUNT.load(SeqCst),
        INT3_UPCALLS.load(SeqCst),
        INT3_RIP.load(SeqCst),
    )
}

/// A #BP handler for a trap table (`tests::fixup::trap`): counts, and
/// returns after the `int3`.
pub fn int3_handler() -> unsafe extern "C" fn() {
    evtchn_int3
}

/// rsp at the last [`call_at`] or [`iret_here`].
static RSP_AT: AtomicU64 = AtomicU64::new(0);

#[repr(C)]
struct Pair {
    rax: u64,
    rdx: u64,
}

// SAFETY: the declarations match the assembly above (C ABI; the callback
// is only entered by the hypervisor's upcall, never called).
unsafe extern "C" {
    fn evtchn_callback();
    fn evtchn_int3();
    fn evtchn_call_at(cmd: u64, arg: u64, nr: u64) -> Pair;
    fn evtchn_iret_here() -> u64;
}

/// Hypercall `nr(cmd, arg)` (an `event_channel_op`, say): its result, the
/// address right after its `syscall` (where an upcall on its way back
/// interrupts) and the stack pointer there.
pub fn call_at(nr: u64, cmd: u32, arg: u64) -> (i64, u64, u64) {
    // SAFETY: a hypercall whose argument the caller owns; the stub
    // preserves what the C ABI wants preserved.
    let p = unsafe { evtchn_call_at(u64::from(cmd), arg, nr) };
    (p.rax.cast_signed(), p.rdx, RSP_AT.load(SeqCst))
}

/// `event_channel_op(cmd, arg)` through [`call_at`].
pub fn op_at<T>(cmd: u32, arg: &T) -> (i64, u64, u64) {
    call_at(EVENT_CHANNEL_OP, cmd, core::ptr::from_ref(arg) as u64)
}

/// An `iret` hypercall that unmasks events and returns right here: the
/// address it returned to, and the stack pointer there.
pub fn iret_here() -> (u64, u64) {
    // SAFETY: the stub returns to its own next instruction on its own
    // stack with every callee-saved register untouched.
    let at = unsafe { evtchn_iret_here() };
    (at, RSP_AT.load(SeqCst))
}

/// Registers the recording callback as the event callback.
pub fn install_callback() -> i64 {
    let mut reg = CallbackRegister {
        type_: CALLBACKTYPE_EVENT,
        address: evtchn_callback as *const () as usize as u64,
        ..CallbackRegister::default()
    };
    // SAFETY: registers an entry point; reads `reg` only.
    unsafe {
        hypercall2(
            CALLBACK_OP,
            u64::from(CALLBACKOP_REGISTER),
            core::ptr::from_mut(&mut reg) as u64,
        )
    }
}

/// Upcalls so far.
pub fn upcalls() -> u64 {
    COUNT.load(SeqCst)
}

/// What the last upcall saw.
pub fn last() -> Upcall {
    let mut ports = [0; 8];
    for (p, s) in ports.iter_mut().zip(&PORTS) {
        *p = s.load(SeqCst);
    }
    Upcall {
        frame_va: FRAME_VA.load(SeqCst),
        frame: core::array::from_fn(|i| FRAME[i].load(SeqCst)),
        mask: MASK.load(SeqCst),
        pending: PENDING.load(SeqCst),
        sel: SEL.load(SeqCst),
        ports,
        nports: usize::try_from(NPORTS.load(SeqCst)).unwrap_or(0),
    }
}

/// The callback's body: see the module documentation.
extern "C" fn record_upcall(frame: *const u64) {
    let shared = SHARED.load(SeqCst);
    FRAME_VA.store(frame as u64, SeqCst);
    for (i, slot) in FRAME.iter().enumerate() {
        // SAFETY: the hypervisor wrote 7 words at `frame`, on this stack.
        slot.store(unsafe { frame.add(i).read_volatile() }, SeqCst);
    }
    NPORTS.store(0, SeqCst);
    if shared != 0 {
        let w = Words { va: shared };
        MASK.store(w.upcall_mask(), SeqCst);
        PENDING.store(w.upcall_pending(), SeqCst);
        w.set_upcall_pending(0);
        let control = CONTROL.load(SeqCst);
        if control != 0 {
            SEL.store(u64::from(word32(control).swap(0, SeqCst)), SeqCst);
        } else {
            let sel = word64(shared + PENDING_SEL).swap(0, SeqCst);
            SEL.store(sel, SeqCst);
            take_ports(shared, sel);
        }
    }
    COUNT.fetch_add(1, SeqCst);
}

/// Takes every pending, unmasked port of the selected words.
fn take_ports(shared: u64, sel: u64) {
    let mut n = 0;
    for word in (0..64u32).filter(|w| sel & (1 << w) != 0) {
        let pending = word64(shared + EVTCHN_PENDING + u64::from(word) * 8);
        let mask = word64(shared + EVTCHN_MASK + u64::from(word) * 8).load(SeqCst);
        let ready = pending.load(SeqCst) & !mask;
        pending.fetch_and(!ready, SeqCst);
        for bit in (0..64u32).filter(|b| ready & (1 << b) != 0) {
            if let Some(slot) = PORTS.get(n) {
                slot.store(word * 64 + bit, SeqCst);
                n += 1;
            }
        }
    }
    NPORTS.store(n as u64, SeqCst);
}
