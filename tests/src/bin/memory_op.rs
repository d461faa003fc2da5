//! `memory_op` on a 64-bit PV dom0, as Xen 4.17 answers: the queries
//! (`maximum_ram_page`, `current_reservation`, `maximum_reservation`,
//! `maximum_gpfn` for `DOMID_SELF`, the domain's own id 0 and an unknown
//! one, `machphys_mapping`, `machphys_mfn_list`), giving a spare frame back
//! with `decrease_reservation` and getting frames with
//! `increase_reservation` and `populate_physmap` (which sets the M2P entry
//! of the new frame to the gpfn asked for), extent orders above the limit,
//! and what a PV dom0 gets from `memory_map`, `machine_memory_map`,
//! `add_to_physmap` and `exchange`.
//!
//! @covers: memory_op.maximum_ram_page memory_op.current_reservation memory_op.maximum_reservation
//! @covers: memory_op.maximum_gpfn memory_op.machphys_mapping memory_op.machphys_mfn_list
//! @covers: memory_op.decrease_reservation memory_op.increase_reservation memory_op.populate_physmap
//! @covers: memory_op.memory_map memory_op.machine_memory_map memory_op.add_to_physmap memory_op.exchange
#![no_std]
#![no_main]

use guest_abi::errno::{EACCES, EFAULT, EINVAL, ENOSYS, ESRCH};
use guest_abi::memory::{
    E820Entry, XenAddToPhysmap, XenMachphysMapping, XenMachphysMfnList, XenMemoryExchange,
    XenMemoryMap, XenMemoryReservation, XENMAPSPACE_SHARED_INFO, XENMEM_ADD_TO_PHYSMAP,
    XENMEM_CURRENT_RESERVATION, XENMEM_DECREASE_RESERVATION, XENMEM_EXCHANGE,
    XENMEM_INCREASE_RESERVATION, XENMEM_MACHINE_MEMORY_MAP, XENMEM_MACHPHYS_MAPPING,
    XENMEM_MACHPHYS_MFN_LIST, XENMEM_MAXIMUM_GPFN, XENMEM_MAXIMUM_RAM_PAGE,
    XENMEM_MAXIMUM_RESERVATION, XENMEM_MEMORY_MAP, XENMEM_POPULATE_PHYSMAP,
};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{SharedInfo, DOMID_SELF, MMUEXT_CLEAR_PAGE};
use tests::check;
use tests::expect::Rc;
use tests::pvmm::{
    extents, memory_op, mmuext1, read_u64, write_u64, Env, Window, A, D, M2P, P, RW, US,
};

guest_abi::pv_guest!(main, name = "memory_op");

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("memory_op");
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let max_page = queries(&mut r, &env);
    if let Some(w) = Window::new(&mut r, &mut env) {
        maximum_gpfn(&mut r, &env, &w);
    }
    m2p(&mut r, max_page);
    reservations(&mut r, &mut env);
    others(&mut r, &mut env);
    r.finish()
}

fn ptr<T>(t: &mut T) -> u64 {
    core::ptr::from_mut(t) as u64
}

/// A query taking a `domid_t`.
fn query(cmd: u32, dom: u16) -> i64 {
    let mut d = dom;
    memory_op(u64::from(cmd), ptr(&mut d))
}

fn queries(r: &mut Report, env: &Env) -> i64 {
    let max_page = memory_op(u64::from(XENMEM_MAXIMUM_RAM_PAGE), 0);
    let top = (0..env.si.nr_pages).map(|p| env.mfn(p)).max().unwrap_or(0);
    r.check(
        format_args!("maximum_ram_page {max_page:#x} is above every mfn of the P2M (top {top:#x})"),
        u64::try_from(max_page).is_ok_and(|m| m > top),
    );
    check!(r, "maximum_ram_page ignores its argument",
        memory_op(u64::from(XENMEM_MAXIMUM_RAM_PAGE), 0x1000) => max_page);
    let nr = i64::try_from(env.si.nr_pages).unwrap_or(0);
    for (name, cmd, want) in [
        ("current_reservation", XENMEM_CURRENT_RESERVATION, nr),
        ("maximum_reservation", XENMEM_MAXIMUM_RESERVATION, nr),
    ] {
        check!(r, "{name}(DOMID_SELF) (nr_pages)", query(cmd, DOMID_SELF) => want);
        check!(r, "{name}(0)", query(cmd, 0) => want);
        check!(r, "{name}(77)", query(cmd, 77) => -ESRCH);
        check!(r, "{name}, argument at 0x1000", memory_op(u64::from(cmd), 0x1000) => -EFAULT);
    }
    check!(r, "maximum_gpfn(77)", query(XENMEM_MAXIMUM_GPFN, 77) => -ESRCH);
    max_page
}

/// For a PV domain, `maximum_gpfn` is `(shared_info.arch.max_pfn ?: 1) - 1`:
/// the P2M size the guest itself publishes, 0 until it does.
fn maximum_gpfn(r: &mut Report, env: &Env, w: &Window) {
    let gpfn = || query(XENMEM_MAXIMUM_GPFN, DOMID_SELF);
    check!(r, "maximum_gpfn(DOMID_SELF) with shared_info.arch.max_pfn 0", gpfn() => 0);
    let si_mfn = env.si.shared_info >> 12;
    if !check!(r, "map shared_info RW at window page 1",
        w.map(1, si_mfn, P | RW | US | A | D) => 0)
    {
        return;
    }
    let max_pfn = w.va(1) + MAX_PFN_OFFSET;
    r.check(
        format_args!("shared_info.arch.max_pfn reads {:#x}", read_u64(max_pfn)),
        read_u64(max_pfn) == 0,
    );
    write_u64(max_pfn, 100);
    check!(r, "maximum_gpfn after max_pfn = 100", gpfn() => 99);
    check!(r, "maximum_gpfn(0)", query(XENMEM_MAXIMUM_GPFN, 0) => 99);
    write_u64(max_pfn, 1);
    check!(r, "maximum_gpfn after max_pfn = 1", gpfn() => 0);
    write_u64(max_pfn, 0);
    check!(r, "unmap it", w.unmap(1) => 0);
}

/// Offset of `arch.max_pfn` in the shared-info page.
const MAX_PFN_OFFSET: u64 = core::mem::offset_of!(SharedInfo, arch) as u64;

fn m2p(r: &mut Report, max_page: i64) {
    let mut m = XenMachphysMapping::default();
    check!(r, "machphys_mapping", memory_op(u64::from(XENMEM_MACHPHYS_MAPPING), ptr(&mut m)) => 0);
    r.check(
        format_args!(
            "v_start {:#x}, v_end {:#x}: Xen's M2P range",
            m.v_start, m.v_end
        ),
        m.v_start == M2P && m.v_end == 0xffff_8040_0000_0000,
    );
    r.check(
        format_args!(
            "max_mfn {:#x} is maximum_ram_page - 1 (dom0, no memory hotplug)",
            m.max_mfn
        ),
        i64::try_from(m.max_mfn).is_ok_and(|v| v == max_page - 1),
    );
    check!(r, "machphys_mapping to 0x1000",
        memory_op(u64::from(XENMEM_MACHPHYS_MAPPING), 0x1000) => -EFAULT);

    let mut mfns = [0u64; 64];
    let mut l = XenMachphysMfnList {
        max_extents: 64,
        extent_start: mfns.as_mut_ptr() as u64,
        ..Default::default()
    };
    check!(r, "machphys_mfn_list of up to 64",
        memory_op(u64::from(XENMEM_MACHPHYS_MFN_LIST), ptr(&mut l)) => 0);
    let want = u64::try_from(max_page)
        .unwrap_or(0)
        .saturating_mul(8)
        .div_ceil(2 << 20);
    r.check(
        format_args!(
            "nr_extents {} is one per 2 MiB of M2P for maximum_ram_page ({want})",
            l.nr_extents
        ),
        u64::from(l.nr_extents) == want,
    );
    let n = usize::try_from(l.nr_extents).unwrap_or(0).min(64);
    println!("M2P frames: {:x?}", &mfns[..n]);
    r.check(
        "every frame is non-zero and 2 MiB aligned",
        n > 0 && mfns[..n].iter().all(|&m| m != 0 && m % 512 == 0),
    );
    let mut l0 = XenMachphysMfnList {
        max_extents: 0,
        extent_start: mfns.as_mut_ptr() as u64,
        nr_extents: 99,
        ..Default::default()
    };
    check!(r, "machphys_mfn_list of up to 0",
        memory_op(u64::from(XENMEM_MACHPHYS_MFN_LIST), ptr(&mut l0)) => 0);
    r.check(
        format_args!("nr_extents {} is 0", l0.nr_extents),
        l0.nr_extents == 0,
    );
    let mut lb = XenMachphysMfnList {
        max_extents: 1,
        extent_start: 0x1000,
        ..Default::default()
    };
    check!(r, "machphys_mfn_list into 0x1000",
        memory_op(u64::from(XENMEM_MACHPHYS_MFN_LIST), ptr(&mut lb)) => -EFAULT);
}

fn reserve(cmd: u32, list: &mut [u64], order: u32) -> i64 {
    let mut res = extents(list, order);
    memory_op(u64::from(cmd), ptr(&mut res))
}

fn reservations(r: &mut Report, env: &mut Env) {
    let cur = || query(XENMEM_CURRENT_RESERVATION, DOMID_SELF);
    let start = cur();
    let maxr = query(XENMEM_MAXIMUM_RESERVATION, DOMID_SELF);
    println!("current {start}, maximum {maxr}");
    let mut one = [0u64];
    check!(r, "increase_reservation by 1 at the maximum",
        reserve(XENMEM_INCREASE_RESERVATION, &mut one, 0) => 0);
    let (pfn, mfn) = env.spare();
    let mut list = [mfn];
    check!(r, "decrease_reservation of spare pfn {pfn:#x} (mfn {mfn:#x})",
        reserve(XENMEM_DECREASE_RESERVATION, &mut list, 0) => 1);
    check!(r, "current_reservation", cur() => start - 1);
    check!(r, "MMUEXT_CLEAR_PAGE of the frame given back",
        mmuext1(MMUEXT_CLEAR_PAGE, mfn, 0) => -EINVAL);
    check!(r, "decrease_reservation of it again",
        reserve(XENMEM_DECREASE_RESERVATION, &mut list, 0) => 0);
    let mut got = [0u64];
    check!(r, "increase_reservation by 1", reserve(XENMEM_INCREASE_RESERVATION, &mut got, 0) => 1);
    let new = got[0];
    r.check(format_args!("it wrote a frame, {new:#x}"), new != 0);
    check!(r, "current_reservation", cur() => start);
    check!(r, "MMUEXT_CLEAR_PAGE of the new frame (ours)", mmuext1(MMUEXT_CLEAR_PAGE, new, 0) => 0);

    let (pfn2, mfn2) = env.spare();
    let mut list = [mfn2];
    check!(r, "decrease_reservation of spare pfn {pfn2:#x}",
        reserve(XENMEM_DECREASE_RESERVATION, &mut list, 0) => 1);
    let mut gp = [pfn2];
    check!(r, "populate_physmap of gpfn {pfn2:#x}",
        reserve(XENMEM_POPULATE_PHYSMAP, &mut gp, 0) => 1);
    let m = gp[0];
    let back = read_u64(M2P + m * 8);
    r.check(
        format_args!("it wrote the frame {m:#x}; M2P[{m:#x}] = {back:#x} is the gpfn"),
        m != pfn2 && back == pfn2,
    );
    check!(r, "current_reservation", cur() => start);

    for (name, cmd) in [
        ("increase_reservation", XENMEM_INCREASE_RESERVATION),
        ("decrease_reservation", XENMEM_DECREASE_RESERVATION),
        ("populate_physmap", XENMEM_POPULATE_PHYSMAP),
    ] {
        let mut l = [env.mfn(env.si.nr_pages - 1)];
        check!(r, "{name} with extent_order 19 (dom0's limit is 18)",
            reserve(cmd, &mut l, 19) => 0);
    }
    check!(r, "current_reservation", cur() => start);
    let mut res = XenMemoryReservation {
        extent_start: 0x1000,
        nr_extents: 1,
        domid: DOMID_SELF,
        ..Default::default()
    };
    check!(r, "decrease_reservation, extents at 0x1000",
        memory_op(u64::from(XENMEM_DECREASE_RESERVATION), ptr(&mut res)) => 0);
    res.domid = 77;
    check!(r, "decrease_reservation for domain 77 (0 done, no errno)",
        memory_op(u64::from(XENMEM_DECREASE_RESERVATION), ptr(&mut res)) => 0);
    check!(r, "decrease_reservation, argument at 0x1000 (0 done, no errno)",
        memory_op(u64::from(XENMEM_DECREASE_RESERVATION), 0x1000) => 0);
    // cmd is an unsigned long: the restart point above bit 6 uses the whole
    // register, so a start beyond the extents comes straight back.
    res.domid = DOMID_SELF;
    let start = 1u64 << 33;
    check!(r, "decrease_reservation restarted at extent 2^33 of 1 (cmd's upper half counts)",
        memory_op((start << 6) | u64::from(XENMEM_DECREASE_RESERVATION), ptr(&mut res))
            => start.cast_signed());
}

fn others(r: &mut Report, env: &mut Env) {
    let mut map = [E820Entry::default(); 32];
    let mut mm = XenMemoryMap {
        nr_entries: 32,
        _pad: 0,
        buffer: map.as_mut_ptr() as u64,
    };
    let got = memory_op(u64::from(XENMEM_MEMORY_MAP), ptr(&mut mm));
    println!("memory_map -> {} nr_entries {}", Rc(got), mm.nr_entries);
    check!(r, "memory_map (a PV dom0 has none)", got => -ENOSYS);

    let mut mm = XenMemoryMap {
        nr_entries: 32,
        _pad: 0,
        buffer: map.as_mut_ptr() as u64,
    };
    let got = memory_op(u64::from(XENMEM_MACHINE_MEMORY_MAP), ptr(&mut mm));
    println!(
        "machine_memory_map -> {} nr_entries {}",
        Rc(got),
        mm.nr_entries
    );
    for e in map
        .iter()
        .take(usize::try_from(mm.nr_entries).unwrap_or(0).min(32))
    {
        println!(
            "  {:#x} +{:#x} type {}",
            u64::from_le_bytes(e.addr),
            u64::from_le_bytes(e.size),
            u32::from_le_bytes(e.type_)
        );
    }
    check!(r, "machine_memory_map (dom0 may)", got => 0);
    let n = usize::try_from(mm.nr_entries).unwrap_or(0);
    r.check(
        format_args!("it wrote {n} entries, RAM among them"),
        got == 0
            && (1..=32).contains(&n)
            && map[..n].iter().any(|e| u32::from_le_bytes(e.type_) == 1),
    );

    let (pfn, _) = env.spare();
    let mut atp = XenAddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space: XENMAPSPACE_SHARED_INFO,
        idx: 0,
        gpfn: pfn,
    };
    let got = memory_op(u64::from(XENMEM_ADD_TO_PHYSMAP), ptr(&mut atp));
    println!("add_to_physmap -> {}", Rc(got));
    check!(r, "add_to_physmap shared_info (a PV guest)", got => -EACCES);

    let mut x = XenMemoryExchange::default();
    x.in_.domid = DOMID_SELF;
    x.out.domid = DOMID_SELF;
    let got = memory_op(u64::from(XENMEM_EXCHANGE), ptr(&mut x));
    println!(
        "exchange of nothing -> {} nr_exchanged {}",
        Rc(got),
        x.nr_exchanged
    );
    check!(r, "exchange of 0 extents", got => 0);
    check!(r, "memory_op command 100", memory_op(100, 0) => -ENOSYS);
}
