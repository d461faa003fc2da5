//! The hypercalls of a build, in `libxenguest`'s order (guest-side glue
//! around [`crate::elf`] and [`crate::layout`]).

use guest_abi::arch::{pfn_to_cr3, FLAT_KERNEL_CS, FLAT_KERNEL_SS, VGCF_IN_KERNEL, VGCF_ONLINE};
use guest_abi::domctl::*;
use guest_abi::event_channel::{EvtchnAllocUnbound, EVTCHNOP_ALLOC_UNBOUND};
use guest_abi::hypercall::{
    hypercall2, hypercall4, typed, EVENT_CHANNEL_OP, MMUEXT_OP, MMU_UPDATE,
};
use guest_abi::memory::{XenMemoryReservation, XENMEM_POPULATE_PHYSMAP};
use guest_abi::xen::{
    MmuUpdate, MmuextOp, StartInfo, StartInfoConsole, VcpuGuestContext, VcpuInfo,
    MMUEXT_PIN_L4_TABLE, MMU_MACHPHYS_UPDATE, XEN_LEGACY_MAX_VCPUS,
};
use zerocopy::{FromZeros, IntoBytes};

use crate::layout::{layout, Layout};
use crate::{elf, Error};

/// Most memory a domU built by [`build`] may have (its P2M is kept on the
/// stack); [`build_into`] takes the caller's P2M buffer instead.
pub const MAX_PAGES: u64 = 4096;
const PAGE: usize = 4096;

/// `v` as an index (an impossible one for a value beyond `usize`, which
/// every `get` then refuses).
fn ix(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// How the builder reaches a frame of the domain it builds: maps machine
/// frame `mfn` of domain `dom` writable for the length of `f` (dom0's
/// `mmu_update` with `foreigndom`, into a page of its own).
pub trait FrameMapper {
    fn with_frame(
        &mut self,
        dom: u16,
        mfn: u64,
        f: &mut dyn FnMut(&mut [u8; PAGE]),
    ) -> Result<(), Error>;
}

/// What to build.
#[derive(Debug, Clone, Copy)]
pub struct Config<'a> {
    /// The ELF kernel image.
    pub image: &'a [u8],
    /// Memory, in pages (at most [`MAX_PAGES`], or the P2M buffer's
    /// length).
    pub pages: u64,
    /// The kernel's command line.
    pub cmdline: &'a [u8],
    /// The ramdisk (initial module): empty for none.
    pub ramdisk: &'a [u8],
}

/// A built domain, paused: unpause it to run it.
#[derive(Debug, Clone, Copy)]
pub struct Built {
    pub domid: u16,
    pub layout: Layout,
    /// Its console ring page and the domU's end of its channel (bound to
    /// dom0 by `alloc_unbound`).
    pub console_mfn: u64,
    pub console_port: u32,
    pub store_mfn: u64,
    pub store_port: u32,
    pub l4_mfn: u64,
}

/// A domctl: the request as it came back, or the errno.
fn domctl(
    cmd: u32,
    dom: u16,
    arg: &(impl IntoBytes + zerocopy::Immutable),
) -> Result<XenDomctl, i64> {
    let mut op = XenDomctl::new(cmd, dom, arg);
    // SAFETY: `op` is a live xen_domctl whose handles (if any) the caller
    // made point at live buffers.
    match unsafe { typed::domctl(&mut op) } {
        0 => Ok(op),
        rc => Err(rc),
    }
}

fn step<T>(what: &'static str, r: Result<T, i64>) -> Result<T, Error> {
    r.map_err(|rc| Error::new(what, rc))
}

/// Builds a domU from `cfg` through `map`, paused. On a failure after
/// `createdomain` the domain is destroyed again.
pub fn build(cfg: &Config<'_>, map: &mut impl FrameMapper) -> Result<Built, Error> {
    let mut p2m = [0u64; 4096];
    const _: () = assert!(MAX_PAGES == 4096);
    build_into(cfg, &mut p2m, map)
}

/// [`build`] keeping the domain's P2M (a machine frame per page) in `p2m`,
/// which must hold `cfg.pages` entries.
pub fn build_into(
    cfg: &Config<'_>,
    p2m: &mut [u64],
    map: &mut impl FrameMapper,
) -> Result<Built, Error> {
    let kernel = elf::parse(cfg.image)?;
    if cfg.pages > p2m.len() as u64 {
        return Err(Error::new(
            "more memory than the builder keeps a P2M for",
            0,
        ));
    }
    let l = layout(
        kernel.virt_base,
        kernel.kstart,
        kernel.kend,
        cfg.ramdisk.len() as u64,
        cfg.pages,
    )?;
    let created = step(
        "createdomain",
        domctl(
            XEN_DOMCTL_CREATEDOMAIN,
            0,
            &XenDomctlCreatedomain::pv(1, [0; 16]),
        ),
    )?;
    let d = created.domain;
    let built = fill(cfg, &kernel, &l, d, p2m, map);
    if built.is_err() {
        let _ = domctl(XEN_DOMCTL_DESTROYDOMAIN, d, &0u64);
    }
    built
}

/// Everything after `createdomain`.
fn fill(
    cfg: &Config<'_>,
    k: &elf::Kernel<'_>,
    l: &Layout,
    d: u16,
    p2m: &mut [u64],
    map: &mut impl FrameMapper,
) -> Result<Built, Error> {
    step(
        "max_vcpus",
        domctl(XEN_DOMCTL_MAX_VCPUS, d, &XenDomctlMaxVcpus { max: 1 }),
    )?;
    let kib = XenDomctlMaxMem {
        max_memkb: l.nr_pages * 4,
    };
    step("max_mem", domctl(XEN_DOMCTL_MAX_MEM, d, &kib))?;
    let shared = step("getdomaininfo", domctl(XEN_DOMCTL_GETDOMAININFO, d, &0u64))?
        .u
        .get::<XenDomctlGetdomaininfo>()
        .shared_info_frame;
    // Its shared-info page: cleared, with every legacy vCPU's events
    // masked (`libxenguest`'s `shared_info_x86_64`). A kernel's first
    // instructions then take no upcall before they can: Linux has no
    // interrupt stack yet when it registers its vcpu_info, which Xen
    // answers by marking events pending.
    map.with_frame(d, shared, &mut |page| {
        page.fill(0);
        let masked = VcpuInfo {
            evtchn_upcall_mask: 1,
            ..Default::default()
        };
        for vcpu in page
            .chunks_exact_mut(size_of::<VcpuInfo>())
            .take(XEN_LEGACY_MAX_VCPUS)
        {
            vcpu.copy_from_slice(masked.as_bytes());
        }
    })?;
    // Its memory, frame by frame: the list comes back as machine frames.
    let p2m = p2m.get_mut(..ix(l.nr_pages)).ok_or(Error::new("P2M", 0))?;
    for (i, chunk) in p2m.chunks_mut(512).enumerate() {
        for (j, slot) in chunk.iter_mut().enumerate() {
            *slot = (i * 512 + j) as u64;
        }
        let res = XenMemoryReservation {
            extent_start: chunk.as_mut_ptr() as u64,
            nr_extents: chunk.len() as u64,
            extent_order: 0,
            domid: d,
            ..Default::default()
        };
        // SAFETY: `res` and the list it names are live; the hypervisor
        // writes the list.
        let done = unsafe {
            typed::memory_op(
                u64::from(XENMEM_POPULATE_PHYSMAP),
                core::ptr::from_ref(&res).cast_mut().cast(),
            )
        };
        if usize::try_from(done).ok() != Some(chunk.len()) {
            return Err(Error::new("populate_physmap", done));
        }
    }
    let mfn = |pfn: u64| p2m.get(ix(pfn)).copied().unwrap_or(0);
    // Its M2P entries.
    for (i, chunk) in p2m.chunks(64).enumerate() {
        let mut reqs = [MmuUpdate { ptr: 0, val: 0 }; 64];
        for (j, (req, &m)) in reqs.iter_mut().zip(chunk).enumerate() {
            *req = MmuUpdate {
                ptr: (m << 12) | MMU_MACHPHYS_UPDATE,
                val: (i * 64 + j) as u64,
            };
        }
        // SAFETY: `reqs` is live; its first `chunk.len()` requests are read.
        let rc = unsafe {
            hypercall4(
                MMU_UPDATE,
                reqs.as_ptr() as u64,
                chunk.len() as u64,
                0,
                u64::from(d),
            )
        };
        step(
            "mmu_update(MMU_MACHPHYS_UPDATE)",
            if rc == 0 { Ok(()) } else { Err(rc) },
        )?;
    }
    let console_port = alloc_unbound(d)?;
    let store_port = alloc_unbound(d)?;
    // The kernel, page by page (segments may share a page; the rest is 0).
    for pfn in l.kernel.0..l.kernel.1 {
        let page_va = l.va(pfn);
        map.with_frame(d, mfn(pfn), &mut |page| {
            page.fill(0);
            for s in k.segments.iter().flatten() {
                copy_part(page, page_va, s.va, s.file);
            }
        })?;
    }
    // The ramdisk, page by page (the last one's tail is 0).
    for (pfn, part) in (l.ramdisk.0..).zip(cfg.ramdisk.chunks(PAGE)) {
        map.with_frame(d, mfn(pfn), &mut |page| {
            page.fill(0);
            page[..part.len()].copy_from_slice(part);
        })?;
    }
    // The P2M list.
    for i in 0..l.p2m_pages {
        let from = ix(i).saturating_mul(512);
        map.with_frame(d, mfn(l.p2m + i), &mut |page| {
            page.fill(0);
            for (dst, src) in page.chunks_exact_mut(8).zip(p2m.iter().skip(from)) {
                dst.copy_from_slice(&src.to_le_bytes());
            }
        })?;
    }
    // start_info.
    let mut si = StartInfo::new_zeroed();
    si.magic[..14].copy_from_slice(b"xen-3.0-x86_64");
    si.nr_pages = l.nr_pages;
    si.shared_info = shared << 12;
    si.store_mfn = mfn(l.store);
    si.store_evtchn = store_port;
    si.console = StartInfoConsole::dom_u(mfn(l.console), console_port);
    si.pt_base = l.va(l.l4());
    si.nr_pt_frames = l.nr_tables();
    si.mfn_list = l.va(l.p2m);
    if !cfg.ramdisk.is_empty() {
        si.mod_start = l.va(l.ramdisk.0);
        si.mod_len = cfg.ramdisk.len() as u64;
    }
    let n = cfg.cmdline.len().min(si.cmd_line.len() - 1);
    si.cmd_line[..n].copy_from_slice(&cfg.cmdline[..n]);
    map.with_frame(d, mfn(l.start_info), &mut |page| {
        page.fill(0);
        page[..si.as_bytes().len()].copy_from_slice(si.as_bytes());
    })?;
    // The rings and the stack start empty.
    for pfn in [l.console, l.store, l.stack] {
        map.with_frame(d, mfn(pfn), &mut |page| page.fill(0))?;
    }
    // The bootstrap tables, one whole table at a time.
    for t in l.tables..l.tables + l.nr_tables() {
        map.with_frame(d, mfn(t), &mut |page| {
            page.fill(0);
            for e in l.entries().filter(|e| e.table == t) {
                let v = (mfn(e.target) << 12) | e.flags;
                page[e.index * 8..e.index * 8 + 8].copy_from_slice(&v.to_le_bytes());
            }
        })?;
    }
    let l4_mfn = mfn(l.l4());
    let pin = [MmuextOp {
        cmd: MMUEXT_PIN_L4_TABLE,
        arg1: l4_mfn,
        ..Default::default()
    }];
    // SAFETY: `pin` is live.
    let rc = unsafe { hypercall4(MMUEXT_OP, pin.as_ptr() as u64, 1, 0, u64::from(d)) };
    step(
        "mmuext_op(MMUEXT_PIN_L4_TABLE)",
        if rc == 0 { Ok(()) } else { Err(rc) },
    )?;
    if let Some(va) = k.hypercall_page {
        let gmfn = mfn((va - l.virt_base) / PAGE as u64);
        step(
            "hypercall_init",
            domctl(
                XEN_DOMCTL_HYPERCALL_INIT,
                d,
                &XenDomctlHypercallInit { gmfn },
            ),
        )?;
    }
    let mut c = VcpuGuestContext::new_zeroed();
    c.flags = VGCF_IN_KERNEL | VGCF_ONLINE;
    c.user_regs.rip = k.entry;
    c.user_regs.rsp = l.va(l.stack + 1);
    c.user_regs.rsi = l.va(l.start_info);
    c.user_regs.cs = FLAT_KERNEL_CS;
    c.user_regs.ss = FLAT_KERNEL_SS;
    c.user_regs.rflags = 1 << 9;
    c.kernel_ss = u64::from(FLAT_KERNEL_SS);
    c.kernel_sp = l.va(l.stack + 1);
    c.ctrlreg[3] = pfn_to_cr3(l4_mfn);
    let vc = XenDomctlVcpucontext {
        vcpu: 0,
        _pad: 0,
        ctxt: core::ptr::from_ref(&c) as u64,
    };
    step("setvcpucontext", domctl(XEN_DOMCTL_SETVCPUCONTEXT, d, &vc))?;
    Ok(Built {
        domid: d,
        layout: *l,
        console_mfn: mfn(l.console),
        console_port,
        store_mfn: mfn(l.store),
        store_port,
        l4_mfn,
    })
}

/// The part of `file` (loaded at `va`) that falls in the page at
/// `page_va`, copied there.
fn copy_part(page: &mut [u8; PAGE], page_va: u64, va: u64, file: &[u8]) {
    let page_end = page_va + PAGE as u64;
    let file_end = va + file.len() as u64;
    let (from, to) = (va.max(page_va), file_end.min(page_end));
    if from >= to {
        return;
    }
    let src = ix(from - va)..ix(to - va);
    let dst = ix(from - page_va)..ix(to - page_va);
    if let (Some(d), Some(s)) = (page.get_mut(dst), file.get(src)) {
        d.copy_from_slice(s);
    }
}

/// A port of `d` that dom0 may bind (`EVTCHNOP_alloc_unbound`).
fn alloc_unbound(d: u16) -> Result<u32, Error> {
    let mut a = EvtchnAllocUnbound {
        dom: d,
        remote_dom: 0,
        port: 0,
    };
    // SAFETY: `a` is a live evtchn_alloc_unbound.
    let rc = unsafe {
        hypercall2(
            EVENT_CHANNEL_OP,
            u64::from(EVTCHNOP_ALLOC_UNBOUND),
            core::ptr::from_mut(&mut a) as u64,
        )
    };
    step("alloc_unbound", if rc == 0 { Ok(a.port) } else { Err(rc) })
}
