//! A tiny domU built by hand, as a toolstack builds one but with nothing
//! to parse: a test guest (dom0) gives it a few instructions and runs it.
//!
//! [`build`] makes a domain of `vcpus` vCPUs with seven pages: its four
//! page-table levels (one L1 mapping three pages at [`CODE_VA`]), a code
//! page holding the bytes given, a data page at [`DATA_VA`] (its stack
//! grows down from the top) and a hypercall page at [`HCALL_VA`] written
//! by the hypervisor (`XEN_DOMCTL_hypercall_init`), and its shared-info
//! page at [`SHARED_VA`] (the frame `getdomaininfo` names, which on a PV
//! domain is a machine frame). Everything goes
//! through the hypercalls a builder uses: `populate_physmap`, writable
//! foreign mappings of its frames in dom0's [`Window`], an L4 pinned on
//! its behalf. The data page stays mapped in dom0's window (page
//! `slot + 5`) so dom0 reads what the domU leaves there. [`context`] is
//! a vCPU's start in kernel mode at the code page; the domain stays
//! paused until dom0 unpauses it.

use guest_abi::arch::{pfn_to_cr3, FLAT_KERNEL_CS, FLAT_KERNEL_SS, VGCF_IN_KERNEL, VGCF_ONLINE};
use guest_abi::domctl::*;
use guest_abi::rt::report::Report;
use guest_abi::xen::{
    MmuUpdate, MmuextOp, VcpuGuestContext, DOMID_SELF, MMUEXT_INVLPG_LOCAL, MMUEXT_PIN_L4_TABLE,
    MMU_NORMAL_PT_UPDATE,
};

use crate::control::{domctl_on as domctl, populate};
use crate::pvmm::{mmu_update_raw, mmuext_raw, Window, A, D, P, RW, US};

/// The ramdisk `domu_build` gives `domu_hello`: [`RAMDISK_LEN`] bytes,
/// byte `i` being [`ramdisk_byte`]`(i)` (three pages and a part).
pub const RAMDISK_LEN: usize = 3 * 4096 + 77;

/// Byte `i` of that ramdisk.
pub const fn ramdisk_byte(i: usize) -> u8 {
    i.wrapping_mul(7)
        .wrapping_add(i >> 12)
        .wrapping_add(3)
        .to_le_bytes()[0]
}

/// The ramdisk itself.
pub static RAMDISK: [u8; RAMDISK_LEN] = {
    let mut a = [0u8; RAMDISK_LEN];
    let mut i = 0;
    while i < RAMDISK_LEN {
        a[i] = ramdisk_byte(i);
        i += 1;
    }
    a
};

/// Where the domU's pages are in its own address space (L4 slot 0, L3
/// slot 0, L2 slot 2, L1 slots 0-2).
pub const CODE_VA: u64 = 0x40_0000;
pub const DATA_VA: u64 = 0x40_1000;
pub const HCALL_VA: u64 = 0x40_2000;
/// Its shared-info page (the frame `getdomaininfo` names).
pub const SHARED_VA: u64 = 0x40_3000;
/// The initial stack pointer (the top of the data page, less a margin).
pub const STACK_TOP: u64 = HCALL_VA - 64;
/// Window pages a domU being built takes (the tables, code, data).
pub const WINDOW_PAGES: u64 = 6;

/// A built domU: its id and its frames.
pub struct Tiny {
    pub id: u16,
    pub l4: u64,
    pub l3: u64,
    pub l1: u64,
    pub code: u64,
    pub data: u64,
    pub hcall: u64,
    /// dom0's window page mapping its data page.
    pub data_slot: u64,
}

/// The bytes from `start` to `end`: a domU's code, between two labels
/// of a `global_asm!` block in the test guest's read-only data.
///
/// # Safety
///
/// `start` and `end` are two labels of one read-only section of this
/// image, `start` first.
pub unsafe fn code_between(start: *const u8, end: *const u8) -> &'static [u8] {
    let len = (end as usize).saturating_sub(start as usize);
    // SAFETY: the bytes between the two labels are in the image, read-only
    // and live for ever (the caller's promise).
    unsafe { core::slice::from_raw_parts(start, len) }
}

/// One `mmu_update` with `foreigndom`.
pub fn update(ptr: u64, val: u64, foreigndom: u16) -> i64 {
    let req = [MmuUpdate { ptr, val }];
    mmu_update_raw(req.as_ptr() as u64, 1, 0, u64::from(foreigndom))
}

/// Sets window page `i`'s PTE to `val` (a frame of `foreigndom`, or 0)
/// and flushes its translation: `mmu_update` leaves the old one in the
/// TLB (as on Xen), and a window page is used for one domain's frame
/// after another's.
pub fn set_window_page(w: &Window, i: u64, val: u64, foreigndom: u16) -> i64 {
    let rc = update(w.pte_ma(i) | MMU_NORMAL_PT_UPDATE, val, foreigndom);
    if rc != 0 {
        return rc;
    }
    crate::pvmm::mmuext1(MMUEXT_INVLPG_LOCAL, w.va(i), 0)
}

/// Copies `bytes` to `va` (inside a page dom0 maps writable).
pub fn put(va: u64, bytes: &[u8]) {
    // SAFETY: callers pass an address inside a page this guest maps
    // writable, with room for the bytes.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), va as *mut u8, bytes.len()) };
}

/// Reads a `T` at `va` (inside a page dom0 maps).
pub fn get_value<T>(va: u64) -> T {
    // SAFETY: callers pass an address inside a page this guest maps; the
    // value is plain data.
    unsafe { core::ptr::read_unaligned(va as *const T) }
}

/// Writes `v` at `va` (inside a page dom0 maps writable).
pub fn put_value<T>(va: u64, v: T) {
    // SAFETY: as for `put`; the value is plain data.
    unsafe { core::ptr::write_unaligned(va as *mut T, v) };
}

/// A vCPU's start: kernel mode at [`CODE_VA`], stack [`STACK_TOP`], page
/// table `l4`, online.
pub fn context(l4: u64) -> VcpuGuestContext {
    // SAFETY: all-zero bytes are a valid vcpu_guest_context.
    let mut c: VcpuGuestContext = unsafe { core::mem::zeroed() };
    c.flags = VGCF_IN_KERNEL | VGCF_ONLINE;
    c.user_regs.rip = CODE_VA;
    c.user_regs.rsp = STACK_TOP;
    c.user_regs.cs = FLAT_KERNEL_CS;
    c.user_regs.ss = FLAT_KERNEL_SS;
    c.user_regs.rflags = 1 << 9;
    c.kernel_ss = u64::from(FLAT_KERNEL_SS);
    c.kernel_sp = STACK_TOP;
    c.ctrlreg[3] = pfn_to_cr3(l4);
    c
}

/// `XEN_DOMCTL_setvcpucontext` / `getvcpucontext` (`cmd`) of vCPU
/// `vcpu` of `d`, with context `ctxt` (none: a null handle).
pub fn vcpucontext(cmd: u32, d: u16, vcpu: u32, ctxt: Option<&mut VcpuGuestContext>) -> i64 {
    let ptr = ctxt.map_or(0, |c| core::ptr::from_mut(c) as u64);
    domctl(XenDomctl::new(
        cmd,
        d,
        &XenDomctlVcpucontext {
            vcpu,
            _pad: 0,
            ctxt: ptr,
        },
    ))
    .0
}

/// `getdomaininfo` of `d` (`None` if it is gone).
pub fn info(d: u16) -> Option<XenDomctlGetdomaininfo> {
    let mut op = XenDomctl::new(XEN_DOMCTL_GETDOMAININFO, d, &0u64);
    (crate::control::domctl(&mut op) == 0 && op.domain == d).then(|| op.u.get())
}

/// A domctl with no argument on `d` (pause, unpause, destroy): the result.
pub fn simple(cmd: u32, d: u16) -> i64 {
    domctl(XenDomctl::new(cmd, d, &0u64)).0
}

/// Builds a paused domU of `vcpus` vCPUs running `code`, through window
/// pages `slot` to `slot + 5` of `w` (the data page stays mapped at
/// `slot + 5`); `None` after a failed check.
pub fn build(r: &mut Report, w: &Window, slot: u64, vcpus: u32, code: &[u8]) -> Option<Tiny> {
    match try_build(w, slot, vcpus, code) {
        Ok(t) => {
            r.check(
                format_args!("build domain {} (7 pages, L4 pinned)", t.id),
                true,
            );
            Some(t)
        }
        Err((what, rc)) => {
            r.check(format_args!("build a domU: {what} returned {rc}"), false);
            None
        }
    }
}

/// [`build`] without a report: what failed and its result.
pub fn try_build(
    w: &Window,
    slot: u64,
    vcpus: u32,
    code: &[u8],
) -> Result<Tiny, (&'static str, i64)> {
    try_build_with(w, slot, &XenDomctlCreatedomain::pv(vcpus, [0; 16]), code)
}

/// [`try_build`] with the domain created as `config` says (its vCPUs:
/// `config.max_vcpus`).
pub fn try_build_with(
    w: &Window,
    slot: u64,
    config: &XenDomctlCreatedomain,
    code: &[u8],
) -> Result<Tiny, (&'static str, i64)> {
    let vcpus = config.max_vcpus;
    let (rc, d) = domctl(XenDomctl::new(XEN_DOMCTL_CREATEDOMAIN, 0, config));
    ok("createdomain", rc, 0)?;
    let built = fill(w, slot, vcpus, code, d);
    if built.is_err() {
        let _ = simple(XEN_DOMCTL_DESTROYDOMAIN, d);
    }
    built
}

/// What a test guest that builds domUs starts from: a page window, its
/// shared-info page mapped, and a port of its own that nothing sends on
/// (to sleep on with `SCHEDOP_poll`); `None` after a failed check.
pub fn toolstack_env(
    r: &mut Report,
    si: &'static guest_abi::xen::StartInfo,
) -> Option<(Window, crate::fixup::SharedInfo, u32)> {
    let (_, w) = crate::pvmm::env_window_catching(r, si)?;
    let Some(shared) = crate::fixup::SharedInfo::map(si) else {
        r.check("map shared_info", false);
        return None;
    };
    let Ok(port) = crate::evtchn::alloc_unbound(DOMID_SELF, DOMID_SELF) else {
        r.check("a port to poll", false);
        return None;
    };
    Some((w, shared, port))
}

/// `rc` if it is `want`, else what returned it.
fn ok(what: &'static str, rc: i64, want: i64) -> Result<(), (&'static str, i64)> {
    if rc == want {
        Ok(())
    } else {
        Err((what, rc))
    }
}

/// Gives new domain `d` its vCPUs, memory, tables and code ([`build`]).
fn fill(
    w: &Window,
    slot: u64,
    vcpus: u32,
    code: &[u8],
    d: u16,
) -> Result<Tiny, (&'static str, i64)> {
    let max = XenDomctlMaxVcpus { max: vcpus };
    ok(
        "max_vcpus",
        domctl(XenDomctl::new(XEN_DOMCTL_MAX_VCPUS, d, &max)).0,
        0,
    )?;
    let mem = XenDomctlMaxMem { max_memkb: 1024 };
    ok(
        "max_mem",
        domctl(XenDomctl::new(XEN_DOMCTL_MAX_MEM, d, &mem)).0,
        0,
    )?;
    let mut f: [u64; 7] = core::array::from_fn(|i| i as u64);
    ok("populate_physmap", populate(d, &mut f, 0), 7)?;
    let [l4, l3, l2, l1, code_mfn, data, hcall] = f;
    let shared = info(d).ok_or(("getdomaininfo", -1))?.shared_info_frame;
    let va = |i: u64| w.va(slot + i);
    let rw = |mfn: u64| (mfn << 12) | P | RW | US | A | D;
    // The tables, zeroed and filled through writable foreign mappings.
    for (i, mfn) in [l4, l3, l2, l1, code_mfn, data].into_iter().enumerate() {
        let i = i as u64;
        ok(
            "mmu_update: map its frame",
            set_window_page(w, slot + i, rw(mfn), d),
            0,
        )?;
        put(va(i), &[0; 4096]);
    }
    put_value(va(0), rw(l3));
    put_value(va(1), rw(l2));
    put_value(va(2) + 2 * 8, rw(l1));
    put_value(va(3), (code_mfn << 12) | P | US | A);
    put_value(va(3) + 8, rw(data));
    put_value(va(3) + 16, (hcall << 12) | P | US | A);
    put_value(va(3) + 24, rw(shared));
    put(va(4), code);
    for i in 0..5 {
        ok(
            "mmu_update: unmap",
            set_window_page(w, slot + i, 0, DOMID_SELF),
            0,
        )?;
    }
    let pin = [MmuextOp {
        cmd: MMUEXT_PIN_L4_TABLE,
        arg1: l4,
        ..Default::default()
    }];
    ok(
        "mmuext_op: pin its L4",
        mmuext_raw(pin.as_ptr() as u64, 1, 0, u64::from(d)),
        0,
    )?;
    let init = XenDomctlHypercallInit { gmfn: hcall };
    ok(
        "hypercall_init",
        domctl(XenDomctl::new(XEN_DOMCTL_HYPERCALL_INIT, d, &init)).0,
        0,
    )?;
    Ok(Tiny {
        id: d,
        l4,
        l3,
        l1,
        code: code_mfn,
        data,
        hcall,
        data_slot: slot + 5,
    })
}

impl Tiny {
    /// dom0's address of the domU's data page.
    pub fn data_va(&self, w: &Window) -> u64 {
        w.va(self.data_slot)
    }

    /// Destroys it and unmaps its data page from dom0's window: both
    /// results.
    pub fn destroy(self, w: &Window) -> (i64, i64) {
        let rc = simple(XEN_DOMCTL_DESTROYDOMAIN, self.id);
        (rc, set_window_page(w, self.data_slot, 0, DOMID_SELF))
    }
}
