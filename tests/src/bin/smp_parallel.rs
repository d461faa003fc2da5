//! Four vCPUs on four physical CPUs run at the same time: a dom0 of 4
//! vCPUs (`@vcpus: 4`) on a 4-CPU machine (`@smp: 4`) brings up vCPUs
//! 1-3, each of which then spins without a hypercall, counting. Over the
//! next stretch of system time T (measured by vCPU 0, which spins too),
//! every vCPU's runstate shows it running for most of T, and their running
//! times add up to well over what one CPU could give (more than 2.5 T):
//! the scheduler placed them on different CPUs. Every counter moves.
//!
//! On one physical CPU the four would share it, and the sum would be
//! about T.
//!
//! @vcpus: 4
//! @smp: 4
//! @timeout: 120
//! @covers: vcpu_op.initialise vcpu_op.up vcpu_op.get_runstate_info
#![no_std]
#![no_main]

use guest_abi::hypercall::{hypercall3, sched_op_yield, VCPU_OP};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::vcpu::{
    VcpuRunstateInfo, RUNSTATE_RUNNING, VCPUOP_GET_RUNSTATE_INFO, VCPUOP_INITIALISE, VCPUOP_UP,
};
use guest_abi::xen::VcpuGuestContext;
use tests::check;
use tests::clock;
use tests::fixup::SharedInfo;
use tests::pages::Pages;
use tests::pvmm::{read_u64, write_u64, Env};
use tests::vcpu::kernel_context;

guest_abi::pv_guest!(main, name = "smp_parallel");

const NR_VCPUS: u32 = 4;
/// Shared words: vCPU n's arrival flag at ARRIVED + n, its counter at
/// COUNT + n.
static SHARED: Pages<1> = Pages::new();
const ARRIVED: u64 = 0;
const COUNT: u64 = 8;
static STACKS: Pages<{ 4 * NR_VCPUS as usize }> = Pages::new();

/// The system time stretch measured, in ns.
const STRETCH_NS: u64 = 300_000_000;

fn word(i: u64) -> u64 {
    SHARED.addr() + i * 8
}

fn op(cmd: u32, vcpu: u32, arg: u64) -> i64 {
    // SAFETY: `arg` is null or a struct of the caller's; the contexts name
    // this guest's own code, stacks and page table.
    unsafe { hypercall3(VCPU_OP, u64::from(cmd), u64::from(vcpu), arg) }
}

extern "C" fn secondary(id: u64) -> ! {
    write_u64(word(ARRIVED + id), 1);
    let count = word(COUNT + id);
    loop {
        write_u64(count, read_u64(count).wrapping_add(1));
    }
}

fn context(id: u32, l4_mfn: u64) -> VcpuGuestContext {
    let rsp = STACKS.addr() + u64::from(id) * 4 * 4096 - 8;
    let rip = secondary as extern "C" fn(u64) -> ! as usize as u64;
    let mut c = kernel_context(rip, rsp, l4_mfn);
    c.user_regs.rdi = u64::from(id);
    c
}

fn running(vcpu: u32) -> Option<u64> {
    let mut info = VcpuRunstateInfo::default();
    let rc = op(
        VCPUOP_GET_RUNSTATE_INFO,
        vcpu,
        core::ptr::addr_of_mut!(info) as u64,
    );
    (rc == 0).then_some(info.time[RUNSTATE_RUNNING as usize])
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("smp_parallel");
    let Some(env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(shared) = SharedInfo::map(si) else {
        r.check("map shared_info", false);
        r.finish()
    };
    let now_ns = || clock::now(shared.va);
    let l4 = env.l4_mfn;
    for v in 1..NR_VCPUS {
        let c = context(v, l4);
        check!(r, "initialise({v})", op(VCPUOP_INITIALISE, v, core::ptr::from_ref(&c) as u64) => 0);
        check!(r, "up({v})", op(VCPUOP_UP, v, 0) => 0);
    }
    // Until every secondary runs (yielding, in case they share a CPU).
    for _ in 0..100_000 {
        if (1..NR_VCPUS).all(|v| read_u64(word(ARRIVED + u64::from(v))) == 1) {
            break;
        }
        sched_op_yield();
    }
    for v in 1..NR_VCPUS {
        check!(r, "vCPU {v} arrived", read_u64(word(ARRIVED + u64::from(v))) => 1);
    }

    let before: [Option<u64>; 4] = core::array::from_fn(|v| running(u32::try_from(v).unwrap_or(0)));
    let counts0: [u64; 4] = core::array::from_fn(|v| read_u64(word(COUNT + v as u64)));
    let t0 = now_ns();
    while now_ns().wrapping_sub(t0) < STRETCH_NS {
        core::hint::spin_loop();
    }
    let t = now_ns().wrapping_sub(t0);
    let after: [Option<u64>; 4] = core::array::from_fn(|v| running(u32::try_from(v).unwrap_or(0)));
    let mut sum = 0u64;
    for v in 0..NR_VCPUS as usize {
        let ran = match (before[v], after[v]) {
            (Some(b), Some(a)) => a.saturating_sub(b),
            _ => 0,
        };
        sum += ran;
        println!("vCPU {v} ran {ran} ns of {t} ns");
        r.check(
            format_args!("vCPU {v} ran most of the stretch ({ran} of {t} ns)"),
            ran > t / 2,
        );
        if v > 0 {
            let moved = read_u64(word(COUNT + v as u64)).wrapping_sub(counts0[v]);
            r.check(
                format_args!("vCPU {v}'s counter moved ({moved})"),
                moved > 0,
            );
        }
    }
    r.check(
        format_args!("the four ran in parallel: {sum} ns in all over {t} ns (> 2.5x)"),
        sum > t / 2 * 5,
    );
    r.finish()
}
