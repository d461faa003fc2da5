//! `vcpu_op` (hypercall 24) and the scheduler, on a dom0 of 4 vCPUs (one
//! physical CPU), as Xen 4.17 answers.
//!
//! vCPU 0 finds its siblings down (`is_up` 0) and without a context
//! (`up` is `-EINVAL`), refuses contexts Xen refuses (`-EINVAL` for a
//! non-canonical rip or trap handler, a misaligned or oversized LDT, too
//! many GDT entries, a GDT frame or a `ctrlreg[3]` that cannot take the
//! type: frame 0, a frame mapped writable, the bootstrap L2; user mode
//! without a user page table), each leaving the vCPU as it was and every
//! reference given back (the refused GDT frame can be mapped writable
//! afterwards), then initialises vCPUs 1-3 on its own L4 (vCPU 1 with a
//! GDT frame of its own, which then maps read-only only: `-EBUSY`
//! writable, as on Xen; `-EEXIST` a
//! second time, and for vCPU 0), brings them up, and yields until each
//! has written its id (passed in `rdi`) and its code selector (vCPU 3's
//! was given with RPL 0: Xen makes it 3). Then every vCPU spins without
//! yielding, each checking that its callee-saved registers and XMM0 keep
//! the values it loaded: all make progress (the scheduler preempts) and
//! none sees another's state. `down` stops a vCPU (`is_up` 0, runstate
//! offline, its counter still) and `up` resumes it where it was; vCPU 2
//! takes itself down too and, brought up, returns 0 from that call.
//!
//! Runstate: `get_runstate_info` of each vCPU (the caller running, the
//! others runnable or offline; the times' sum grows), and a registered
//! area written at once and at the next switch. `register_vcpu_info`:
//! `-ENXIO` past the page's end or misaligned, `-EINVAL` on a page table
//! or for a vCPU that is up, then moves vCPU 0's `vcpu_info` (contents
//! kept, every event marked pending) and refuses a second move.
//! `register_vcpu_time_memory_area` writes the time at once. `get_physid`
//! answers for every vCPU (on one CPU each is pinned): CPU 0's APIC and
//! ACPI ids for vCPU 0, all ones for the others. Bad pointers are
//! `-EFAULT`, vCPU ids past the last `-ENOENT` (before `-ENOSYS` for
//! commands Xen does not define).
//!
//! With `lastdown` on its command line (variant `lastdown`), vCPU 0
//! finally takes itself down as the last vCPU up: the domain powers off.
//!
//! @vcpus: 4
//! @timeout: 120
//! @variant: lastdown cmdline=lastdown
//! @covers: vcpu_op.initialise vcpu_op.up vcpu_op.down vcpu_op.is_up
//! @covers: vcpu_op.get_runstate_info vcpu_op.register_runstate_memory_area
//! @covers: vcpu_op.register_vcpu_info vcpu_op.get_physid
//! @covers: vcpu_op.register_vcpu_time_memory_area
#![no_std]
#![no_main]

use core::arch::asm;

use guest_abi::arch::{pfn_to_cr3, FLAT_KERNEL_CS, FLAT_KERNEL_SS64};
use guest_abi::errno;
use guest_abi::hypercall::{hypercall3, sched_op_yield, VCPU_OP};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::vcpu::*;
use guest_abi::xen::{VcpuGuestContext, VcpuTimeInfo};
use tests::check;
use tests::expect::BAD_POINTERS;
use tests::pages::Pages;
use tests::pvmm::{read_u64, write_u64, Env, Window};
use tests::vcpu::kernel_context;

guest_abi::pv_guest!(main, name = "vcpu_op");

const NR_VCPUS: u32 = 4;

/// Shared words: `[ID + v]` the id vCPU v was started with, `[CS + v]`
/// its code selector, `[COUNT + v]` its progress counter, `[BAD + v]` set
/// when it saw a register change under it, `[PHASE]` what the secondary
/// vCPUs do (0 yield, 1 spin and check, 2 yield again, 3 vCPU 2 takes
/// itself down once), `[SELF_DOWN]` how far vCPU 2 got with that (1 about
/// to call `down`, 2 back from it).
static SHARED: Pages<1> = Pages::new();
const ID: u64 = 8;
const CS: u64 = 16;
const COUNT: u64 = 24;
const BAD: u64 = 32;
const PHASE: u64 = 40;
const SELF_DOWN: u64 = 41;
/// A stack per secondary vCPU.
static STACKS: Pages<{ 4 * NR_VCPUS as usize }> = Pages::new();
/// Runstate and time areas, and the page vCPU 0's vcpu_info moves to.
static AREAS: Pages<1> = Pages::new();
static INFO_PAGE: Pages<1> = Pages::new();

fn word(i: u64) -> u64 {
    SHARED.addr() + i * 8
}

fn op(cmd: u32, vcpu: u32, arg: u64) -> i64 {
    // SAFETY: `arg` is null, a struct of the caller's, or deliberately bad;
    // the contexts name this guest's own code, stacks and tables.
    unsafe { hypercall3(VCPU_OP, u64::from(cmd), u64::from(vcpu), arg) }
}

fn op_with<T>(cmd: u32, vcpu: u32, arg: &T) -> i64 {
    op(cmd, vcpu, core::ptr::from_ref(arg) as u64)
}

/// What every secondary vCPU runs: records its id and code selector,
/// then follows `PHASE`.
extern "C" fn secondary(id: u64) -> ! {
    let cs: u64;
    // SAFETY: reading cs has no effect.
    unsafe { asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags)) };
    write_u64(word(CS + id), cs & 0xffff);
    write_u64(word(ID + id), id);
    loop {
        match read_u64(word(PHASE)) {
            1 => spin_checking(id),
            3 if id == 2 && read_u64(word(SELF_DOWN)) == 0 => {
                write_u64(word(SELF_DOWN), 1);
                let rc = op(VCPUOP_DOWN, 2, 0);
                write_u64(word(SELF_DOWN), if rc == 0 { 2 } else { 3 });
            }
            _ => {
                write_u64(word(COUNT + id), read_u64(word(COUNT + id)) + 1);
                sched_op_yield();
            }
        }
    }
}

/// The pattern vCPU `id` keeps in its registers.
fn pattern(id: u64) -> u64 {
    0x5a5a_0000_0000_0000 | id << 32 | 0x1234_5678
}

/// Loads `pattern(id)` into rbx, r12-r15 and XMM0 and spins, counting,
/// until `PHASE` leaves 1; a register that changes sets `BAD + id`.
fn spin_checking(id: u64) {
    let p = pattern(id);
    let count = word(COUNT + id);
    let bad = word(BAD + id);
    let phase = word(PHASE);
    // SAFETY: the loop touches only the three shared words named and the
    // registers declared clobbered.
    unsafe {
        asm!(
            "push rbx",
            "mov rbx, {p}",
            "mov r12, {p}",
            "mov r13, {p}",
            "mov r14, {p}",
            "mov r15, {p}",
            "movq xmm0, {p}",
            "2:",
            "add qword ptr [{count}], 1",
            "cmp rbx, {p}",
            "jne 3f",
            "cmp r12, {p}",
            "jne 3f",
            "cmp r13, {p}",
            "jne 3f",
            "cmp r14, {p}",
            "jne 3f",
            "cmp r15, {p}",
            "jne 3f",
            "movq {t}, xmm0",
            "cmp {t}, {p}",
            "jne 3f",
            "cmp qword ptr [{phase}], 1",
            "je 2b",
            "jmp 4f",
            "3:",
            "mov qword ptr [{bad}], 1",
            "4:",
            "pop rbx",
            p = in(reg) p,
            count = in(reg) count,
            bad = in(reg) bad,
            phase = in(reg) phase,
            t = out(reg) _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _, out("xmm0") _,
        );
    }
}

/// A context starting vCPU `id` at [`secondary`] on page table `l4_mfn`,
/// with its id in rdi.
fn context(id: u32, l4_mfn: u64) -> VcpuGuestContext {
    // As if called: the return address slot below a 16-byte boundary.
    let rsp = STACKS.addr() + u64::from(id) * 4 * 4096 - 8;
    let rip = secondary as extern "C" fn(u64) -> ! as usize as u64;
    let mut c = kernel_context(rip, rsp, l4_mfn);
    c.user_regs.rdi = u64::from(id);
    c
}

/// A change that makes a context one Xen refuses, given the frames it
/// may use: one mapped writable, the bootstrap L2, a spare frame.
type Spoil = fn(&mut VcpuGuestContext, u64, u64, u64);

/// Yields (at most `n` times) until `done()`.
fn yield_until(n: u32, done: impl Fn() -> bool) -> bool {
    for _ in 0..n {
        if done() {
            return true;
        }
        sched_op_yield();
    }
    done()
}

fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no memory effect.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn runstate(vcpu: u32) -> (i64, VcpuRunstateInfo) {
    let mut info = VcpuRunstateInfo::default();
    let rc = op(
        VCPUOP_GET_RUNSTATE_INFO,
        vcpu,
        core::ptr::addr_of_mut!(info) as u64,
    );
    (rc, info)
}

fn total(info: &VcpuRunstateInfo) -> u64 {
    info.time.iter().sum()
}

/// The machine frame behind a page of this image.
fn mfn_of(env: &Env, va: u64) -> u64 {
    env.mfn((va - guest_abi::rt::VIRT_BASE) / 4096)
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("vcpu_op");
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };

    // Ids and commands.
    check!(r, "is_up(0)", op(VCPUOP_IS_UP, 0, 0) => 1);
    for v in 1..NR_VCPUS {
        check!(r, "is_up({v}) at start", op(VCPUOP_IS_UP, v, 0) => 0);
        check!(r, "up({v}) without a context", op(VCPUOP_UP, v, 0) => -errno::EINVAL);
    }
    for v in [NR_VCPUS, 31, 32, 0x7fff_ffff, u32::MAX] {
        check!(r, "is_up({v:#x})", op(VCPUOP_IS_UP, v, 0) => -errno::ENOENT);
        check!(r, "initialise({v:#x})", op(VCPUOP_INITIALISE, v, 0) => -errno::ENOENT);
        check!(r, "unknown command 99 on vCPU {v:#x}", op(99, v, 0) => -errno::ENOENT);
    }
    for cmd in [14, 99, 0xffff_ffff] {
        check!(r, "unknown command {cmd:#x}", op(cmd, 0, 0) => -errno::ENOSYS);
    }
    // Every vCPU of dom0 on a one-CPU machine is pinned (its affinity
    // has one CPU): Xen answers with the APIC and ACPI ids of the CPU
    // numbered like the vCPU.
    for v in 0..NR_VCPUS {
        let mut physid = VcpuGetPhysid::default();
        check!(r, "get_physid({v})", op(VCPUOP_GET_PHYSID, v, core::ptr::addr_of_mut!(physid) as u64) => 0);
        let want = if v == 0 { 0 } else { u64::MAX };
        check!(r, "vCPU {v}'s physical ids (APIC, ACPI of CPU {v})", physid.phys_id => want);
    }
    for &(what, addr) in BAD_POINTERS {
        check!(r, "get_physid(0) to {what} {addr:#x}", op(VCPUOP_GET_PHYSID, 0, addr) => -errno::EFAULT);
    }
    // Bad pointers.
    for &(what, addr) in BAD_POINTERS {
        check!(r, "initialise(1) from {what} {addr:#x}", op(VCPUOP_INITIALISE, 1, addr) => -errno::EFAULT);
        check!(r, "get_runstate_info(0) to {what} {addr:#x}", op(VCPUOP_GET_RUNSTATE_INFO, 0, addr) => -errno::EFAULT);
        check!(r, "register_runstate_memory_area from {what} {addr:#x}", op(VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, 0, addr) => -errno::EFAULT);
        check!(r, "register_vcpu_info from {what} {addr:#x}", op(VCPUOP_REGISTER_VCPU_INFO, 0, addr) => -errno::EFAULT);
    }
    let l4 = env.l4_mfn;
    check!(r, "initialise(0): vCPU 0 has a context", op_with(VCPUOP_INITIALISE, 0, &context(0, l4)) => -errno::EEXIST);

    // Contexts Xen refuses; vCPU 1 stays without one.
    let spare_gdt = env.spare().1;
    let shared_mfn = mfn_of(&env, SHARED.addr());
    let bad: [(&str, Spoil); 11] = [
        ("non-canonical rip", |c, _, _, _| c.user_regs.rip = 1 << 47),
        ("non-canonical kernel_sp", |c, _, _, _| {
            c.kernel_sp = 0xdead_0000_0000_0000
        }),
        ("non-canonical event callback", |c, _, _, _| {
            c.event_callback_eip = 1 << 50
        }),
        ("non-canonical trap handler", |c, _, _, _| {
            c.trap_ctxt[3].vector = 3;
            c.trap_ctxt[3].address = 1 << 47;
        }),
        ("LDT base not page-aligned", |c, _, _, _| {
            c.ldt_base = 0x1001;
            c.ldt_ents = 1;
        }),
        ("8193 LDT entries", |c, _, _, _| c.ldt_ents = 8193),
        ("user mode without a user table", |c, _, _, _| c.flags = 0),
        ("7169 GDT entries", |c, _, _, _| c.gdt_ents = 7169),
        ("ctrlreg[3] frame 0", |c, _, _, _| c.ctrlreg[3] = 0),
        ("ctrlreg[3] a frame mapped writable", |c, shared, _, _| {
            c.ctrlreg[3] = pfn_to_cr3(shared)
        }),
        (
            "ctrlreg[3] the bootstrap L2, with a good GDT frame",
            |c, _, l2, gdt| {
                c.ctrlreg[3] = pfn_to_cr3(l2);
                c.gdt_frames[0] = gdt;
                c.gdt_ents = 16;
            },
        ),
    ];
    for (what, spoil) in bad {
        let mut c = context(1, l4);
        spoil(&mut c, shared_mfn, env.l2_mfn, spare_gdt);
        check!(r, "initialise(1): {what}", op_with(VCPUOP_INITIALISE, 1, &c) => -errno::EINVAL);
        check!(r, "up(1) after it", op(VCPUOP_UP, 1, 0) => -errno::EINVAL);
    }
    let mut c = context(1, l4);
    c.gdt_frames[0] = shared_mfn;
    c.gdt_ents = 16;
    check!(r, "initialise(1): a GDT frame mapped writable", op_with(VCPUOP_INITIALISE, 1, &c) => -errno::EINVAL);
    // The GDT frame refused with the bad L4 kept no reference: it maps
    // writable.
    let window = Window::new(&mut r, &mut env);
    if let Some(w) = &window {
        check!(r, "the refused GDT frame maps writable", w.map(0, spare_gdt, 0x67) => 0);
        check!(r, "and unmaps", w.unmap(0) => 0);
    }

    // Bring vCPUs 1-3 up.
    for v in 1..NR_VCPUS {
        let mut c = context(v, l4);
        if v == 1 {
            // A GDT of its own (a zeroed frame: valid descriptors).
            c.gdt_frames[0] = spare_gdt;
            c.gdt_ents = 16;
        }
        if v == 3 {
            // RPL 0: Xen's fixup makes it 3.
            c.user_regs.cs = FLAT_KERNEL_CS & !3;
            c.user_regs.ss = FLAT_KERNEL_SS64 & !3;
        }
        check!(r, "initialise({v})", op_with(VCPUOP_INITIALISE, v, &c) => 0);
        check!(r, "initialise({v}) again", op_with(VCPUOP_INITIALISE, v, &c) => -errno::EEXIST);
        check!(r, "is_up({v}) once initialised", op(VCPUOP_IS_UP, v, 0) => 0);
        check!(r, "register_vcpu_info of down vCPU {v} crossing the page", op_with(VCPUOP_REGISTER_VCPU_INFO, v, &VcpuRegisterVcpuInfo { mfn: shared_mfn, offset: 4096 - 32, rsvd: 0 }) => -errno::ENXIO);
        check!(r, "up({v})", op(VCPUOP_UP, v, 0) => 0);
        check!(r, "is_up({v})", op(VCPUOP_IS_UP, v, 0) => 1);
        check!(r, "up({v}) again", op(VCPUOP_UP, v, 0) => 0);
    }
    if let Some(w) = &window {
        check!(r, "vCPU 1's GDT frame no longer maps writable", w.map(0, spare_gdt, 0x67) => -errno::EBUSY);
        check!(r, "but maps read-only", w.map(0, spare_gdt, 0x65) => 0);
        check!(r, "and unmaps", w.unmap(0) => 0);
    }
    let all_started = yield_until(1000, || {
        (1..NR_VCPUS).all(|v| read_u64(word(ID + u64::from(v))) == u64::from(v))
    });
    r.check(
        "vCPUs 1-3 ran and wrote their ids (yield switches)",
        all_started,
    );
    for v in 1..NR_VCPUS {
        let v = u64::from(v);
        check!(r, "vCPU {v} started with rdi {v}", read_u64(word(ID + v)) => v);
        check!(r, "vCPU {v} runs with cs 0xe033", read_u64(word(CS + v)) => 0xe033);
    }
    let before: [u64; 4] = core::array::from_fn(|v| read_u64(word(COUNT + v as u64)));
    let progressed = yield_until(1000, || {
        (1..4usize).all(|v| read_u64(word(COUNT + v as u64)) > before[v] + 2)
    });
    r.check("each vCPU makes progress while vCPU 0 yields", progressed);

    // Runstate.
    let (rc, me) = runstate(0);
    check!(r, "get_runstate_info(0)", rc => 0);
    check!(r, "vCPU 0 is running", i64::from(me.state) => i64::from(RUNSTATE_RUNNING));
    r.check(
        format_args!("vCPU 0's running time > 0 ({})", me.time[0]),
        me.time[0] > 0,
    );
    for v in 1..NR_VCPUS {
        let (rc, a) = runstate(v);
        check!(r, "get_runstate_info({v})", rc => 0);
        check!(r, "vCPU {v} is runnable (vCPU 0 has the CPU)", i64::from(a.state) => i64::from(RUNSTATE_RUNNABLE));
        r.check(
            format_args!(
                "vCPU {v} ran ({} ns) and waited ({} ns)",
                a.time[0], a.time[1]
            ),
            a.time[0] > 0 && a.time[1] > 0,
        );
        sched_op_yield();
        let (_, b) = runstate(v);
        r.check(
            format_args!("vCPU {v}'s times grow ({} -> {})", total(&a), total(&b)),
            total(&b) > total(&a),
        );
        r.check(
            "and no state's time goes back",
            (0..4).all(|i| b.time[i] >= a.time[i]),
        );
        r.check(
            "state_entry_time does not go back",
            b.state_entry_time >= a.state_entry_time,
        );
    }
    check!(r, "get_runstate_info(4)", runstate(NR_VCPUS).0 => -errno::ENOENT);

    let area = AREAS.addr();
    let reg = VcpuRegisterRunstateMemoryArea { addr: area };
    check!(r, "register_runstate_memory_area(0)", op_with(VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, 0, &reg) => 0);
    let state = read_u64(area) & 0xffff_ffff;
    let entry = read_u64(area + 8);
    check!(r, "the area says running at once", state => 0);
    r.check("with a running time", read_u64(area + 16) > 0);
    sched_op_yield();
    let entry2 = read_u64(area + 8);
    r.check(
        format_args!("a switch rewrote it (state_entry_time {entry} -> {entry2})"),
        entry2 > entry,
    );
    check!(r, "and says running again", read_u64(area) & 0xffff_ffff => 0);
    for addr in [0xffff_8000_0000_0000u64, 0xffff_8300_0000_0000, 1 << 47] {
        let reg = VcpuRegisterRunstateMemoryArea { addr };
        check!(r, "register_runstate_memory_area at {addr:#x}", op_with(VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, 0, &reg) => -errno::EFAULT);
    }
    let reg = VcpuRegisterRunstateMemoryArea { addr: 0x1000 };
    check!(r, "register_runstate_memory_area at unmapped 0x1000", op_with(VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, 0, &reg) => 0);
    let reg = VcpuRegisterRunstateMemoryArea { addr: 0 };
    check!(r, "register_runstate_memory_area(0) off", op_with(VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, 0, &reg) => 0);

    // Every vCPU spins without yielding: the scheduler preempts them,
    // and each keeps its own registers.
    let before: [u64; 4] = core::array::from_fn(|v| read_u64(word(COUNT + v as u64)));
    write_u64(word(PHASE), 1);
    let p = pattern(0);
    let mine: u64;
    let start = rdtsc();
    // SAFETY: only the registers declared are touched.
    unsafe {
        asm!(
            "movq xmm0, {p}",
            "mov r12, {p}",
            out("xmm0") _, out("r12") _,
            p = in(reg) p,
        );
    }
    let mut all_moved = false;
    while rdtsc() - start < 40_000_000_000 {
        all_moved = (1..4usize).all(|v| read_u64(word(COUNT + v as u64)) > before[v] + 1000);
        if all_moved {
            break;
        }
        core::hint::spin_loop();
    }
    // SAFETY: reading a register.
    unsafe { asm!("movq {}, xmm0", out(reg) mine, options(nomem, nostack)) };
    write_u64(word(PHASE), 2);
    r.check(
        "every vCPU progresses while all spin (preemption)",
        all_moved,
    );
    check!(r, "vCPU 0's XMM0 kept across preemptions", mine => p);
    for v in 1..4 {
        check!(r, "vCPU {v} saw its registers and XMM0 kept", read_u64(word(BAD + v)) => 0);
    }

    // Down and up again.
    check!(r, "down(3)", op(VCPUOP_DOWN, 3, 0) => 0);
    check!(r, "is_up(3) after down", op(VCPUOP_IS_UP, 3, 0) => 0);
    check!(r, "down(3) again", op(VCPUOP_DOWN, 3, 0) => 0);
    check!(r, "vCPU 3 is offline", i64::from(runstate(3).1.state) => i64::from(RUNSTATE_OFFLINE));
    let stopped = read_u64(word(COUNT + 3));
    for _ in 0..20 {
        sched_op_yield();
    }
    check!(r, "vCPU 3's counter stands still", read_u64(word(COUNT + 3)) => stopped);
    r.check("vCPU 1 still counts", read_u64(word(COUNT + 1)) > before[1]);
    check!(r, "register_vcpu_info of up vCPU 1", op_with(VCPUOP_REGISTER_VCPU_INFO, 1, &VcpuRegisterVcpuInfo { mfn: mfn_of(&env, INFO_PAGE.addr()), offset: 0, rsvd: 0 }) => -errno::EINVAL);
    check!(r, "up(3)", op(VCPUOP_UP, 3, 0) => 0);
    let resumed = yield_until(100, || read_u64(word(COUNT + 3)) > stopped);
    r.check(
        "vCPU 3 resumes counting from where it stopped",
        resumed && read_u64(word(COUNT + 3)) <= stopped + 100,
    );

    // register_vcpu_info for vCPU 0 (the caller).
    let info_mfn = mfn_of(&env, INFO_PAGE.addr());
    let reg = |mfn, offset| VcpuRegisterVcpuInfo {
        mfn,
        offset,
        rsvd: 0,
    };
    check!(r, "register_vcpu_info crossing the page", op_with(VCPUOP_REGISTER_VCPU_INFO, 0, &reg(info_mfn, 4096 - 32)) => -errno::ENXIO);
    check!(r, "register_vcpu_info at offset 4033", op_with(VCPUOP_REGISTER_VCPU_INFO, 0, &reg(info_mfn, 4033)) => -errno::ENXIO);
    check!(r, "register_vcpu_info misaligned (offset 4)", op_with(VCPUOP_REGISTER_VCPU_INFO, 0, &reg(info_mfn, 4)) => -errno::ENXIO);
    check!(r, "register_vcpu_info on the L4", op_with(VCPUOP_REGISTER_VCPU_INFO, 0, &reg(l4, 0)) => -errno::EINVAL);
    check!(r, "register_vcpu_info on the bootstrap L2", op_with(VCPUOP_REGISTER_VCPU_INFO, 0, &reg(env.l2_mfn, 0)) => -errno::EINVAL);
    check!(r, "register_vcpu_info on frame 0", op_with(VCPUOP_REGISTER_VCPU_INFO, 0, &reg(0, 0)) => -errno::EINVAL);
    check!(r, "register_vcpu_info(0) at offset 128", op_with(VCPUOP_REGISTER_VCPU_INFO, 0, &reg(info_mfn, 128)) => 0);
    let moved = INFO_PAGE.addr() + 128;
    check!(r, "the moved vcpu_info: upcall pending", read_u64(moved) & 0xff => 1);
    check!(r, "events still masked (the mask moved along)", (read_u64(moved) >> 8) & 0xff => 1);
    check!(r, "every selector bit pending", read_u64(moved + 8) => u64::MAX);
    check!(r, "register_vcpu_info(0) twice", op_with(VCPUOP_REGISTER_VCPU_INFO, 0, &reg(info_mfn, 256)) => -errno::EINVAL);
    check!(r, "a yield after the move", sched_op_yield() => 0);

    // The time area.
    let time = AREAS.addr() + 1024;
    for &(what, addr) in BAD_POINTERS {
        check!(r, "register_vcpu_time_memory_area from {what} {addr:#x}", op(VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA, 0, addr) => -errno::EFAULT);
    }
    let t = VcpuRegisterTimeMemoryArea {
        addr: 0xffff_8000_0000_0000,
    };
    check!(r, "register_vcpu_time_memory_area at hv's range", op_with(VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA, 0, &t) => -errno::EFAULT);
    let t = VcpuRegisterTimeMemoryArea { addr: time };
    check!(r, "register_vcpu_time_memory_area(0)", op_with(VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA, 0, &t) => 0);
    const _: () = assert!(size_of::<VcpuTimeInfo>() == 32);
    let version = read_u64(time) & 0xffff_ffff;
    r.check(
        format_args!("the time area is written at once (version {version} even, non-zero)"),
        version != 0 && version.is_multiple_of(2),
    );
    r.check(
        "with a TSC multiplier",
        read_u64(time + 24) & 0xffff_ffff != 0,
    );

    // vCPU 2 takes itself down, and resumes after its call when up again.
    write_u64(word(PHASE), 3);
    let went = yield_until(1000, || {
        read_u64(word(SELF_DOWN)) == 1 && op(VCPUOP_IS_UP, 2, 0) == 0
    });
    r.check(
        "vCPU 2 took itself down (is_up 0, its down call not back)",
        went,
    );
    for _ in 0..20 {
        sched_op_yield();
    }
    check!(r, "vCPU 2 stays down", read_u64(word(SELF_DOWN)) => 1);
    check!(r, "vCPU 2 is offline", i64::from(runstate(2).1.state) => i64::from(RUNSTATE_OFFLINE));
    check!(r, "up(2)", op(VCPUOP_UP, 2, 0) => 0);
    let back = yield_until(1000, || read_u64(word(SELF_DOWN)) != 1);
    r.check("vCPU 2 resumes after its down call", back);
    check!(r, "which returned 0", read_u64(word(SELF_DOWN)) => 2);
    write_u64(word(PHASE), 2);

    // Take the others down.
    for v in 1..NR_VCPUS {
        check!(r, "down({v})", op(VCPUOP_DOWN, v, 0) => 0);
    }
    check!(r, "a yield with nobody else up", sched_op_yield() => 0);
    if tests::expect::text(si.cmd_line_bytes()).contains("lastdown") {
        // The last vCPU going down powers the domain off (Xen's
        // do_vcpu_op): the result first, since nothing comes after.
        r.print_result();
        op(VCPUOP_DOWN, 0, 0);
        guest_abi::println!("still running after the last vCPU went down");
        guest_abi::rt::shutdown(guest_abi::sched::SHUTDOWN_CRASH)
    }
    r.finish()
}
