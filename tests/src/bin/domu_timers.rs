//! A destroyed domain's timers go with it.
//!
//! 80 domUs (`tests::domu`) in turn each arm a single-shot timer days
//! ahead (`set_timer_op`) and a watchdog of 1000 s (`SCHEDOP_watchdog`),
//! power off and are destroyed. A last domU then sleeps on a poll timer
//! (`SCHEDOP_poll` of no port, with a timeout already past): it must wake
//! and power off. Were the destroyed domains' timers left queued, the
//! CPU's timer queue (64 slots on hv) would be full and the poll would
//! never end. Free pages come back exactly on hv.
//!
//! @covers: set_timer_op sched_op.watchdog sched_op.poll
//! @timeout: 240
#![no_std]
#![no_main]

use guest_abi::domctl::*;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::sched::{SchedPoll, SchedWatchdog};
use tests::check;
use tests::control::{check_free_back, free_pages, idle_10ms, settle, XEN_SLACK};
use tests::domu::{
    build, code_between, context, info, put_value, simple, vcpucontext, Tiny, DATA_VA, HCALL_VA,
};
use tests::pvmm::{read_u64, write_u64, Window};

guest_abi::pv_guest!(main, name = "domu_timers");

/// Domains that leave timers behind: more than a CPU's timer queue holds.
const LEAVERS: u32 = 80;
/// The single-shot timer's deadline: 2^49 ns, about 6.5 days of uptime.
const FAR: u64 = 1 << 49;

// A leaver: set_timer_op(FAR), SCHEDOP_watchdog (DATA+0x100; the results
// at DATA+0x20 and +0x28), power off (the reason at DATA+0x10 is 0).
core::arch::global_asm!(
    ".pushsection .rodata.domu_timers_leave,\"a\"",
    ".global domu_timers_leave_start",
    ".global domu_timers_leave_end",
    "domu_timers_leave_start:",
    "mov rdi, {far}",
    "mov eax, 15",
    "syscall",
    "mov qword ptr [{data} + 0x20], rax",
    "mov edi, {watchdog}",
    "mov rsi, {data} + 0x100",
    "mov eax, 29",
    "syscall",
    "mov qword ptr [{data} + 0x28], rax",
    "mov edi, 2",
    "mov rsi, {data} + 0x10",
    "mov rax, {hcall} + 29 * 32",
    "call rax",
    "5: jmp 5b",
    "domu_timers_leave_end:",
    ".popsection",
    far = const FAR,
    watchdog = const guest_abi::sched::SCHEDOP_WATCHDOG,
    data = const DATA_VA,
    hcall = const HCALL_VA,
);

// The sleeper: SCHEDOP_poll (DATA+0x200; the result at DATA+0x30), then
// power off.
core::arch::global_asm!(
    ".pushsection .rodata.domu_timers_sleep,\"a\"",
    ".global domu_timers_sleep_start",
    ".global domu_timers_sleep_end",
    "domu_timers_sleep_start:",
    "mov edi, {poll}",
    "mov rsi, {data} + 0x200",
    "mov eax, 29",
    "syscall",
    "mov qword ptr [{data} + 0x30], rax",
    "mov edi, 2",
    "mov rsi, {data} + 0x10",
    "mov rax, {hcall} + 29 * 32",
    "call rax",
    "5: jmp 5b",
    "domu_timers_sleep_end:",
    ".popsection",
    poll = const guest_abi::sched::SCHEDOP_POLL,
    data = const DATA_VA,
    hcall = const HCALL_VA,
);

unsafe extern "C" {
    static domu_timers_leave_start: u8;
    static domu_timers_leave_end: u8;
    static domu_timers_sleep_start: u8;
    static domu_timers_sleep_end: u8;
}

/// Builds a domU running `code` (its data page prepared by `prepare`),
/// runs it until it shuts down (at most `waits` × 10 ms) and returns it,
/// still there; `None` after a failed build.
fn run(
    r: &mut Report,
    w: &Window,
    (shared, port): (u64, u32),
    code: &[u8],
    prepare: impl Fn(u64),
    waits: u32,
) -> Option<(Tiny, bool)> {
    let t = build(r, w, 1, 1, code)?;
    prepare(t.data_va(w));
    let ctx = vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, t.id, 0, Some(&mut context(t.l4)));
    let go = simple(XEN_DOMCTL_UNPAUSEDOMAIN, t.id);
    if ctx != 0 || go != 0 {
        r.check(format_args!("start domain {}: {ctx}, {go}", t.id), false);
        return Some((t, false));
    }
    for _ in 0..waits {
        if info(t.id).is_some_and(|i| i.flags & XEN_DOMINF_SHUTDOWN != 0) {
            return Some((t, true));
        }
        idle_10ms(shared, port);
    }
    let down = info(t.id).is_some_and(|i| i.flags & XEN_DOMINF_SHUTDOWN != 0);
    Some((t, down))
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("domu_timers");
    let Some((w, shared, port)) = tests::domu::toolstack_env(&mut r, si) else {
        r.finish()
    };
    let env = (shared.va, port);
    let base = settle(shared.va, port, free_pages());
    // SAFETY: two labels of the block above, in order.
    let leave = unsafe {
        code_between(
            &raw const domu_timers_leave_start,
            &raw const domu_timers_leave_end,
        )
    };
    // SAFETY: as above.
    let sleep = unsafe {
        code_between(
            &raw const domu_timers_sleep_start,
            &raw const domu_timers_sleep_end,
        )
    };

    let mut left = 0;
    for n in 0..LEAVERS {
        let prepare = |data: u64| {
            write_u64(data + 0x20, u64::MAX);
            write_u64(data + 0x28, u64::MAX);
            put_value(
                data + 0x100,
                SchedWatchdog {
                    id: 0,
                    timeout: 1000,
                },
            );
        };
        let Some((t, down)) = run(&mut r, &w, env, leave, prepare, 200) else {
            r.finish()
        };
        let data = t.data_va(&w);
        let (timer, watchdog) = (read_u64(data + 0x20), read_u64(data + 0x28));
        let ok = down && timer == 0 && watchdog == 1;
        if !ok || n == 0 {
            r.check(
                format_args!(
                    "domain {} ({n}): set_timer_op -> {timer:#x}, watchdog -> {watchdog:#x}, shut down: {down}",
                    t.id
                ),
                ok,
            );
        }
        let gone = t.destroy(&w);
        if !ok || gone != (0, 0) {
            check!(r, "destroy it", gone => (0, 0));
            r.finish()
        }
        left += 1;
    }
    check!(r, "domains that left a timer and a watchdog behind", left => LEAVERS);

    let prepare = |data: u64| {
        write_u64(data + 0x30, u64::MAX);
        // No port, a timeout already past: a sleep until the timer fires.
        let poll = SchedPoll {
            ports: 0,
            nr_ports: 0,
            timeout: 1,
            ..Default::default()
        };
        put_value(data + 0x200, poll);
    };
    let Some((t, down)) = run(&mut r, &w, env, sleep, prepare, 300) else {
        r.finish()
    };
    check!(r, "the last domU's poll timer fired: it powered off", down => true);
    check!(r, "its poll returned 0", read_u64(t.data_va(&w) + 0x30) => 0);
    check!(r, "destroy it", t.destroy(&w) => (0, 0));
    check_free_back(&mut r, shared.va, port, base, XEN_SLACK);
    r.finish()
}
