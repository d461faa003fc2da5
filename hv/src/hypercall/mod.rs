//! The hypercall dispatch table, and the one shape every handler has.
//!
//! Arguments arrive in rdi, rsi, rdx, r10, r8 (Xen's x86_64 convention) and
//! the result goes back in rax; every other guest register is preserved (the
//! scratch ones saved by the entry path, the callee-saved ones by the
//! handler itself, an `extern "C"` function: see [`Handler`]). The table is built by [`hypercall_table!`]
//! from `guest-abi`'s list: each entry decodes the registers as the list's
//! C types say ([`Signature`], [`FromRegs`]: an `int`/`unsigned int` is the
//! low 32 bits, as on Xen), checks what the dispatcher can check (the
//! command is one hv implements, [`hv::implemented`]; the caller is
//! privileged, for the calls that need it), calls the handler with the
//! decoded values and applies its [`Outcome`] to the registers. Every
//! number without a handler, and every number ≥ 64, returns `-ENOSYS`.
//!
//! A handler decodes the rest (the structs its arguments point to), checks,
//! then performs, and returns one [`Outcome`]: a value, an [`Errno`], a
//! continuation (Xen's: the same hypercall issued again with new
//! arguments, so a long call lets hv take interrupts), or a crash of the
//! calling domain for a protocol violation. `multicall` runs its entries
//! through the same decode and check ([`dispatch`]).

mod callback;
mod console_io;
pub mod debugreg;
pub(crate) mod descriptors;
mod domctl;
mod event_channel;
mod grant_table;
mod memory;
mod mmu;
mod multicall;
mod physdev;
mod privilege;
mod sched_op;
mod segments;
mod set_timer_op;
pub mod traps;
mod vcpu_op;
pub use mmu::put_base_table;
pub use vcpu_op::write_time_area;
mod vm_assist;
mod xen_version;
mod xenpmu;

use guest_abi::errno::Errno;
use guest_abi::hypercall::sub_ops::{self, Selector};
use guest_abi::hypercall::{self as nr, FromArg, FromRegs, Nr, Signature};
use hv::implemented;

use crate::arch::x86_64::entry::GuestRegs;
pub use privilege::Privileged;
pub use sched_op::watchdog_timer;

/// A handler's value for rax, or an errno (for the helpers that compute
/// one; the handler turns it into an [`Outcome`]).
pub type HcResult = Result<u64, Errno>;

/// What a hypercall comes to.
#[derive(Debug)]
pub enum Outcome {
    /// Success: the value for rax.
    Done(u64),
    /// Failure: rax gets `-errno`.
    Err(Errno),
    /// Not finished: the guest issues the same hypercall again with these
    /// arguments (Xen's hypercall continuation).
    Continue(NewArgs),
    /// A protocol violation: the calling domain is crashed (`why` names it
    /// in the report).
    Crash(&'static str),
    /// Success (the value for rax), and this CPU switches to the vCPU its
    /// run queue picks next (a yield, a vCPU taking itself down or
    /// blocking): the switch needs the full frame (`crate::sched`).
    Switch(u64),
}

impl From<HcResult> for Outcome {
    #[inline(always)]
    fn from(r: HcResult) -> Self {
        match r {
            Ok(v) => Self::Done(v),
            Err(e) => Self::Err(e),
        }
    }
}

impl Outcome {
    /// A continuation with new values for the first `N` argument
    /// registers (the others keep theirs).
    pub fn again<const N: usize>(args: [u64; N]) -> Self {
        const { assert!(N >= 1 && N <= 5) };
        let mut all = [0; 5];
        all[..N].copy_from_slice(&args);
        Self::Continue(NewArgs { args: all, n: N })
    }
}

/// A continuation's new arguments: the first `n` of rdi, rsi, rdx, r10, r8.
#[derive(Debug)]
pub struct NewArgs {
    args: [u64; 5],
    n: usize,
}

impl NewArgs {
    /// The new values, in register order.
    pub fn values(&self) -> &[u64] {
        self.args.get(..self.n).unwrap_or(&self.args)
    }
}

/// Length of the `syscall` instruction.
const SYSCALL_LEN: u64 = 2;

/// Puts an outcome into the guest's registers: rax, or (continuation) the
/// new arguments and `rip` back onto the `syscall` (rax still holds the
/// number). Returns false for a crash, which needs the full frame: the
/// reason waits in the CPU's block for [`complete`].
#[inline(always)]
fn apply(regs: &mut GuestRegs, outcome: Outcome) -> bool {
    match outcome {
        Outcome::Done(v) => regs.rax = v,
        Outcome::Err(e) => regs.rax = e.to_ret(),
        Outcome::Continue(new) => reissue(regs, &new),
        Outcome::Crash(why) => return defer_crash(why),
        // Inline, so a yield's two answers differ only in the return
        // value (the slow path then needs no second call).
        Outcome::Switch(v) => {
            regs.rax = v;
            return false;
        }
    }
    true
}

#[cold]
#[inline(never)]
fn defer_crash(why: &'static str) -> bool {
    crate::arch::x86_64::percpu::this_cpu().set_pending_crash(why);
    false
}

/// The full path after a handler returned false: the entry code has
/// completed the frame (the callee-saved registers were still the
/// guest's), so the crash report shows every register, and a switch
/// saves them all.
pub extern "C" fn complete(regs: &mut GuestRegs) {
    if let Some(why) = crate::arch::x86_64::percpu::this_cpu().take_pending_crash() {
        crate::traps::crash_current(regs, why)
    }
    // Otherwise an `Outcome::Switch`.
    crate::sched::switch_from_hypercall(regs);
    crate::traps::upcall::on_exit(regs);
}

/// Makes the guest issue the same hypercall again, with new arguments.
#[cold]
#[inline(never)]
fn reissue(regs: &mut GuestRegs, new: &NewArgs) {
    let slots = [
        &mut regs.rdi,
        &mut regs.rsi,
        &mut regs.rdx,
        &mut regs.r10,
        &mut regs.r8,
    ];
    for (slot, &v) in slots.into_iter().zip(new.values()) {
        *slot = v;
    }
    regs.rip = regs.rip.wrapping_sub(SYSCALL_LEN);
}

/// The argument registers, in order.
#[inline(always)]
fn arg_regs(regs: &GuestRegs) -> [u64; 5] {
    [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8]
}

/// Low 32 bits of a register, for a value Xen reads as an `int` or
/// `unsigned int` (inside a struct or union, or for the emulator).
pub fn arg32(reg: u64) -> u32 {
    u32::from_arg(reg)
}

/// A handler called with its decoded arguments.
trait Call<Args> {
    fn call(self, args: Args) -> Outcome;
}

/// A handler called with something the dispatcher supplies first (the
/// [`Privileged`] capability, or the registers for the calls that work on
/// them) and its decoded arguments.
trait CallWith<First, Args> {
    fn call_with(self, first: First, args: Args) -> Outcome;
}

macro_rules! call_impls {
    ($( ($($t:ident $v:ident),*) )*) => {
        $(
            impl<F: FnOnce($($t),*) -> Outcome, $($t),*> Call<($($t,)*)> for F {
                #[inline(always)]
                fn call(self, ($($v,)*): ($($t,)*)) -> Outcome {
                    self($($v),*)
                }
            }
            impl<F: FnOnce(P, $($t),*) -> Outcome, P, $($t),*> CallWith<P, ($($t,)*)> for F {
                #[inline(always)]
                fn call_with(self, first: P, ($($v,)*): ($($t,)*)) -> Outcome {
                    self(first, $($v),*)
                }
            }
        )*
    };
}

call_impls! {
    ()
    (A a)
    (A a, B b)
    (A a, B b, C c)
    (A a, B b, C c, D d)
    (A a, B b, C c, D d, E e)
}

/// The decoded arguments of hypercall `NR`.
type Args<const NR: u64> = <<Nr<NR> as Signature>::Args as FromRegs>::Values;

/// Decodes the registers as hypercall `NR`'s arguments.
#[inline(always)]
fn decode<const NR: u64>(raw: [u64; 5]) -> Args<NR>
where
    Nr<NR>: Signature,
{
    <<Nr<NR> as Signature>::Args as FromRegs>::from_regs(raw)
}

/// `-ENOSYS` for a command of hypercall `NR` (in its first argument) that
/// Xen defines and hv does not implement ([`implemented::refused_mask`]);
/// folds to nothing for hypercalls without commands, for those whose
/// every command hv implements, and for batches, whose elements carry
/// them.
#[inline(always)]
fn refuse_sub_op<const NR: u64>(arg0: u64) -> Option<Outcome> {
    let selector = const {
        match sub_ops::of(NR) {
            Some(ops) => Some(ops.selector),
            None => None,
        }
    };
    let mask = const { implemented::refused_mask(NR) };
    let cmd = match selector {
        Some(Selector::Cmd) => arg32(arg0),
        Some(Selector::CmdMasked(m)) => arg32(arg0) & m,
        Some(Selector::PerElement | Selector::InStruct) | None => return None,
    };
    implemented::has_sub_op(mask, cmd).then_some(Outcome::Err(Errno::ENOSYS))
}

/// Whether command `cmd` of hypercall `NR` is one Xen defines and hv does
/// not implement ([`implemented::refused_mask`]), for the handlers that
/// find the command themselves (in each element of a batch, or after
/// another check Xen makes first).
#[inline(always)]
pub fn refused<const NR: u64>(cmd: u32) -> bool {
    implemented::has_sub_op(const { implemented::refused_mask(NR) }, cmd)
}

/// Hypercall `NR`'s handler, behind the dispatcher's decode and checks.
trait Run {
    fn run(regs: &mut GuestRegs, raw: [u64; 5]) -> Outcome;
}

/// Hypercall number `NR` as hv dispatches it.
struct Hypercall<const NR: u64>;

/// The table entry of hypercall `NR`: the entry path calls it with the
/// saved registers (see [`Handler`]).
extern "C" fn entry<const NR: u64>(regs: &mut GuestRegs) -> bool
where
    Hypercall<NR>: Run,
{
    let outcome = Hypercall::<NR>::run(regs, arg_regs(regs));
    // The guest runs next: no stale translation for it (`mmu.rs`). A
    // constant per entry: the others pay nothing for the check.
    if mmu::may_owe_flush(NR) {
        crate::arch::x86_64::mm::settle();
    } else {
        debug_assert!(!crate::arch::x86_64::mm::owes_flush());
    }
    apply(regs, outcome)
}

/// Builds [`TABLE`] and [`dispatch`] from `NAME => handler` rows (`NAME`
/// is the hypercall's constant in `guest-abi`'s list, whose [`Signature`]
/// gives the handler's parameter types). A row's form says what the
/// dispatcher does before calling the handler:
///
/// - `NAME => f`: checks the command (if the call has commands) and calls
///   `f(args...)`;
/// - `NAME => [privileged] f`: refuses an unprivileged caller with `-EPERM`
///   (before the command, as Xen's XSM hook comes first) and calls
///   `f(Privileged, args...)`;
/// - `NAME => [own_command_check] f`: calls `f(args...)`, which checks the
///   command itself because Xen checks something else first;
/// - `NAME => [with_regs] f`: calls `f(&mut GuestRegs, args...)` (`iret`,
///   `multicall`).
macro_rules! hypercall_table {
    ($( $konst:ident => $([$kind:ident])? $handler:path; )*) => {
        $(
            impl Run for Hypercall<{ nr::$konst }> {
                #[inline(always)]
                fn run(regs: &mut GuestRegs, raw: [u64; 5]) -> Outcome {
                    hypercall_table!(@run $konst regs raw $($kind)? $handler)
                }
            }
        )*

        /// The dispatch table, indexed by hypercall number. The `syscall`
        /// entry path bounds-checks and clamps the number (so a
        /// mispredicted check cannot index past the end) and calls the
        /// entry directly: no dispatcher in between, which keeps a null
        /// hypercall short.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "hypercall numbers are below 64; const context has no try_from"
        )]
        pub static TABLE: [Handler; TABLE_LEN] = {
            let mut t: [Handler; TABLE_LEN] = [enosys; TABLE_LEN];
            $( t[nr::$konst as usize] = entry::<{ nr::$konst }>; )*
            t
        };

        // The table and hv's list of what it implements name the same
        // hypercalls.
        const _: () = assert!(implemented::is_dispatch_list(&[$( nr::$konst ),*]));

        /// Runs hypercall `number` with arguments `raw` through the same
        /// decode and checks as the table (for `multicall`); `regs` are
        /// the caller's real registers.
        pub fn dispatch(regs: &mut GuestRegs, number: u64, raw: [u64; 5]) -> Outcome {
            match number {
                $( nr::$konst => Hypercall::<{ nr::$konst }>::run(regs, raw), )*
                _ => Outcome::Err(Errno::ENOSYS),
            }
        }
    };
    (@run $konst:ident $regs:ident $raw:ident $handler:path) => {{
        let _ = &$regs;
        if let Some(refused) = refuse_sub_op::<{ nr::$konst }>($raw[0]) {
            return refused;
        }
        Call::call($handler, decode::<{ nr::$konst }>($raw))
    }};
    (@run $konst:ident $regs:ident $raw:ident privileged $handler:path) => {{
        let _ = &$regs;
        let Some(privileged) = Privileged::check() else {
            return Outcome::Err(Errno::EPERM);
        };
        if let Some(refused) = refuse_sub_op::<{ nr::$konst }>($raw[0]) {
            return refused;
        }
        CallWith::call_with($handler, privileged, decode::<{ nr::$konst }>($raw))
    }};
    (@run $konst:ident $regs:ident $raw:ident own_command_check $handler:path) => {{
        let _ = &$regs;
        Call::call($handler, decode::<{ nr::$konst }>($raw))
    }};
    (@run $konst:ident $regs:ident $raw:ident with_regs $handler:path) => {{
        CallWith::call_with($handler, $regs, decode::<{ nr::$konst }>($raw))
    }};
}

/// A hypercall handler as the entry path calls it: registers in, result
/// written to `rax` (or the registers rewritten for a continuation).
///
/// The entry path is light (see `arch::x86_64::entry`): the frame's
/// callee-saved slots (rbx, rbp, r12–r15) are stale, those registers
/// still holding the guest's values, which an `extern "C"` handler
/// preserves. So a handler reads and writes only the argument and scratch
/// registers and the CPU's part of the frame, and returns true; for what
/// needs the whole frame (today a crash report; a vCPU switch later) it
/// returns false having recorded why, and the entry code completes the
/// frame and calls [`complete`].
pub type Handler = extern "C" fn(&mut GuestRegs) -> bool;

/// Number of entries in the dispatch table (Xen's `NR_hypercalls`).
pub const TABLE_LEN: usize = 64;

hypercall_table! {
    SET_TRAP_TABLE => traps::set_trap_table;
    MMU_UPDATE => mmu::mmu_update;
    SET_GDT => descriptors::set_gdt;
    STACK_SWITCH => traps::stack_switch;
    SET_CALLBACKS => callback::set_callbacks;
    FPU_TASKSWITCH => traps::fpu_taskswitch;
    SCHED_OP_COMPAT => sched_op::sched_op_compat;
    SET_TIMER_OP => set_timer_op::set_timer_op;
    SET_DEBUGREG => debugreg::set_debugreg;
    GET_DEBUGREG => debugreg::get_debugreg;
    UPDATE_DESCRIPTOR => descriptors::update_descriptor;
    MEMORY_OP => memory::memory_op;
    MULTICALL => [with_regs] multicall::multicall;
    UPDATE_VA_MAPPING => mmu::update_va_mapping;
    EVENT_CHANNEL_OP_COMPAT => event_channel::event_channel_op_compat;
    XEN_VERSION => xen_version::xen_version;
    CONSOLE_IO => [privileged] console_io::console_io;
    VM_ASSIST => [own_command_check] vm_assist::vm_assist;
    GRANT_TABLE_OP => [own_command_check] grant_table::grant_table_op;
    UPDATE_VA_MAPPING_OTHERDOMAIN => mmu::update_va_mapping_otherdomain;
    IRET => [with_regs] traps::iret;
    VCPU_OP => [own_command_check] vcpu_op::vcpu_op;
    SET_SEGMENT_BASE => segments::set_segment_base;
    MMUEXT_OP => mmu::mmuext_op;
    NMI_OP => callback::nmi_op;
    SCHED_OP => sched_op::sched_op;
    CALLBACK_OP => callback::callback_op;
    EVENT_CHANNEL_OP => event_channel::event_channel_op;
    PHYSDEV_OP => physdev::physdev_op;
    SYSCTL => domctl::sysctl;
    DOMCTL => domctl::domctl;
    XENPMU_OP => xenpmu::xenpmu_op;
}

/// Every number without a handler, and (called by the entry path) every
/// number beyond the table.
pub extern "C" fn enosys(regs: &mut GuestRegs) -> bool {
    apply(regs, Outcome::Err(Errno::ENOSYS))
}

/// `mov` to cr3 from the guest kernel, emulated as `MMUEXT_NEW_BASEPTR`
/// (Xen does the same); returns whether the switch happened.
pub fn new_baseptr_for_emulation(mfn: u64) -> bool {
    mmu::new_baseptr_current(mfn)
}

/// Copies the argument struct at `va` in from the calling guest (its page
/// tables are the loaded ones, so the CPU walks them); `-EFAULT` if it
/// cannot be read.
pub fn read_arg<T: crate::guest_mem::GuestValue>(va: u64) -> Result<T, Errno> {
    use crate::guest_mem::{GuestPtr, Loaded};
    Ok(GuestPtr::<T>::new(va)?.read(&Loaded)?)
}

/// Copies a result struct out to `va` in the calling guest; `-EFAULT` if
/// it cannot be written (a fault part-way leaves the bytes before it
/// written, as on Xen).
pub fn write_arg<T: crate::guest_mem::GuestValue>(va: u64, v: &T) -> Result<(), Errno> {
    use crate::guest_mem::{GuestPtr, Loaded};
    Ok(GuestPtr::<T>::new(va)?.write(&Loaded, v)?)
}
