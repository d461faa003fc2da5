//! Builds a boot-time domain from a PV kernel ELF, as Xen 4.17's PV dom0
//! builder does, so the same image starts with the same state on both.
//!
//! The arithmetic (what goes where, which page-table entries exist) is the
//! host-tested `hv::layout`; this module only allocates frames and writes the
//! bytes: kernel segments, module, P2M list, start_info, bootstrap page
//! tables (with hv's L4 slots), hypercall page, shared info, and the vCPU's
//! start-of-day registers.
//!
//! Every byte is written while the frames are still hv's (`OwnedFrame`
//! handles, which go back to the allocator if the build fails); only then
//! are they given to the domain and typed, so the builder never needs to
//! write a domain's page table. The exceptions are hv's own L4 slots,
//! installed once the L4 is typed, and `shared_info`, which hv keeps a
//! writable reference on for the domain's life.

use alloc::vec::Vec;
use core::fmt;

use zerocopy::{FromZeros, IntoBytes};

use hv::elf::{self, Policy, PvKernel};
use hv::layout::{self, Layout, P2mMapping};

use super::{Domain, DomainConfig, DomainState, Vcpu, VcpuId};
use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::gdt::{RING3_CS64, RING3_DS};
use crate::mm::frame_access as phys;
use crate::mm::{self, page_table, FrameWrite, Mfn, OwnedFrame, WritableRef, PAGE_SIZE};

use guest_abi::xen::{
    Dom0VgaConsoleInfo, StartInfo, StartInfoConsole, SIF_INITDOMAIN, SIF_MOD_START_PFN,
    SIF_PRIVILEGED,
};

/// `sizeof(struct start_info)` and `sizeof(struct dom0_vga_console_info)`,
/// which dom0's console union points past.
const START_INFO_BYTES: usize = core::mem::size_of::<StartInfo>();
const VGA_CONSOLE_INFO_BYTES: usize = core::mem::size_of::<Dom0VgaConsoleInfo>();
const _: () = assert!(
    START_INFO_BYTES as u64 == layout::START_INFO_SIZE
        && VGA_CONSOLE_INFO_BYTES as u64 == layout::VGA_CONSOLE_INFO_SIZE
);

/// Why a domain could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// A bzImage (or compressed kernel) refused before unpacking.
    BzImage(hv::bzimage::BzImageError),
    /// Its payload could not be unpacked.
    Unpack(hv::bzimage::UnpackError),
    /// No contiguous run of frames for unpacking the kernel.
    NoMemoryToUnpack {
        what: &'static str,
        bytes: u64,
        free: u64,
    },
    Elf(elf::ElfError),
    Layout(layout::LayoutError),
    OutOfMemory {
        wanted: u64,
        free: u64,
    },
    /// hv's heap cannot hold a bookkeeping structure of the domain.
    NoHeap {
        what: &'static str,
        bytes: u64,
    },
    /// A write landed outside the domain's memory: an hv bug or an
    /// inconsistent layout.
    Internal(&'static str),
    /// The bootstrap page tables broke a page-type rule (an hv bug).
    PageType(hv::page_info::PageError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BzImage(e) => write!(f, "{e}"),
            Self::Unpack(e) => write!(f, "unpacking the kernel: {e}"),
            Self::NoMemoryToUnpack { what, bytes, free } => write!(
                f,
                "no {} KiB of contiguous memory for {what} ({free} pages free)",
                bytes.div_ceil(1024)
            ),
            Self::Elf(e) => write!(f, "{e}"),
            Self::Layout(e) => write!(f, "{e}"),
            Self::OutOfMemory { wanted, free } => {
                write!(
                    f,
                    "not enough memory: the domain needs {wanted} pages, {free} are free"
                )
            }
            Self::NoHeap { what, bytes } => {
                write!(f, "not enough hypervisor heap for {what} ({bytes} bytes)")
            }
            Self::Internal(what) => write!(f, "internal error: {what}"),
            Self::PageType(e) => write!(f, "internal error: bootstrap page tables: {e:?}"),
        }
    }
}

impl From<phys::OutOfRange> for BuildError {
    fn from(_: phys::OutOfRange) -> Self {
        Self::Internal("frame outside the direct map")
    }
}

/// What to build.
pub struct BootDomainSpec<'a> {
    pub id: super::DomId,
    pub kernel: &'a [u8],
    pub cmdline: &'a str,
    pub module: Option<&'a [u8]>,
    pub nr_pages: u64,
    pub initial: bool,
    /// vCPUs (at least 1, at most `XEN_LEGACY_MAX_VCPUS`): vCPU 0 starts
    /// at the kernel's entry, the others are down until the guest
    /// initialises and brings them up (`VCPUOP_initialise`, `VCPUOP_up`).
    pub max_vcpus: u32,
}

/// Machine memory of a domain under construction, addressed by pfn: hv's
/// until [`type_frames`] gives it to the domain.
struct Memory {
    frames: Vec<OwnedFrame>,
}

impl Memory {
    fn allocate(nr_pages: u64) -> Result<Self, BuildError> {
        let free = mm::free_frames();
        if nr_pages > free {
            return Err(BuildError::OutOfMemory {
                wanted: nr_pages,
                free,
            });
        }
        let n = usize::try_from(nr_pages).map_err(|_| BuildError::Internal("page count"))?;
        let mut frames = Vec::new();
        frames
            .try_reserve_exact(n)
            .map_err(|_| BuildError::NoHeap {
                what: "the P2M list",
                bytes: nr_pages * 8,
            })?;
        // One contiguous run when possible (as Xen gives dom0), else frame by
        // frame (on failure the frames taken go back as `frames` drops).
        if let Some(run) = mm::alloc_contiguous(nr_pages, 1) {
            frames.extend(run.into_frames());
        } else {
            for _ in 0..nr_pages {
                let frame = mm::alloc_frame().ok_or(BuildError::OutOfMemory {
                    wanted: nr_pages,
                    free,
                })?;
                frames.push(frame);
            }
        }
        for frame in &frames {
            frame.zero()?;
        }
        Ok(Self { frames })
    }

    fn frame(&self, pfn: u64) -> Result<&OwnedFrame, BuildError> {
        usize::try_from(pfn)
            .ok()
            .and_then(|i| self.frames.get(i))
            .ok_or(BuildError::Internal("pfn outside the domain"))
    }

    fn mfn(&self, pfn: u64) -> Result<Mfn, BuildError> {
        self.frame(pfn).map(OwnedFrame::mfn)
    }

    /// Writes `data` at guest virtual address `va` of the initial mapping.
    fn write_va(&self, l: &Layout, va: u64, data: &[u8]) -> Result<(), BuildError> {
        let mut done = 0usize;
        while done < data.len() {
            let cur = va + done as u64;
            let pfn = l
                .pfn_of(cur)
                .ok_or(BuildError::Internal("write outside the initial mapping"))?;
            let off = cur % PAGE_SIZE;
            let n = usize::try_from(PAGE_SIZE - off)
                .unwrap_or(usize::MAX)
                .min(data.len() - done);
            self.frame(pfn)?.write(off, &data[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    fn write_u64_va(&self, l: &Layout, va: u64, v: u64) -> Result<(), BuildError> {
        self.write_va(l, va, &v.to_le_bytes())
    }
}

/// Builds the domain and returns it, ready to register and enter.
pub fn build(spec: &BootDomainSpec<'_>) -> Result<Domain, BuildError> {
    let policy = Policy {
        initial_domain: spec.initial,
        requirable_features: elf::XEN_DOM0_REQUIRABLE_FEATURES,
    };
    let kernel = elf::parse(spec.kernel, policy).map_err(BuildError::Elf)?;
    let module_len = spec.module.map_or(0, |m| m.len() as u64);
    let l = layout::dom0_layout(&kernel.layout_params(), spec.nr_pages, module_len)
        .map_err(BuildError::Layout)?;
    log_layout(&kernel, &l);

    let mem = Memory::allocate(l.alloc_pages.max(spec.nr_pages))?;

    for seg in kernel.segments() {
        mem.write_va(&l, seg.dest, seg.data)?;
        // The rest of memsz is already zero: every frame was zeroed.
    }
    if let Some(m) = spec.module {
        match l.module_pfn {
            Some(pfn) if l.mod_start_is_pfn() => {
                for (i, chunk) in m.chunks(4096).enumerate() {
                    mem.frame(pfn + i as u64)?.write(0, chunk)?;
                }
            }
            _ => mem.write_va(&l, l.vinitrd_start, m)?,
        }
    }
    let p2m_mapping = l.p2m_mapping().map_err(BuildError::Layout)?;
    match &p2m_mapping {
        None => {
            for (pfn, frame) in mem.frames.iter().enumerate() {
                mem.write_u64_va(&l, l.vphysmap_start + 8 * pfn as u64, frame.mfn())?;
            }
        }
        // INIT_P2M: the list lives in frames of its own, mapped at the
        // kernel's address by tables of their own (Xen's setup_pv_physmap).
        Some(m) => {
            let start = l.vphysmap_start % PAGE_SIZE;
            for (pfn, frame) in mem.frames.iter().enumerate() {
                let at = start + 8 * pfn as u64;
                let page = usize::try_from(at / PAGE_SIZE)
                    .ok()
                    .and_then(|i| m.data_pfns.get(i))
                    .ok_or(BuildError::Internal("P2M page"))?;
                mem.frame(*page)?.write_u64(at % PAGE_SIZE, frame.mfn())?;
            }
        }
    }

    let shared_info =
        mm::alloc_zeroed_frame().ok_or(BuildError::OutOfMemory { wanted: 1, free: 0 })?;
    // Every vcpu_info in shared_info (64 bytes each, 32 of them) starts with
    // events masked: evtchn_upcall_mask is byte 1.
    for v in 0..32u64 {
        shared_info.write_u8(v * 64 + 1, 1)?;
    }
    // Each vCPU's time and the wallclock, as Xen has them before it
    // first runs.
    for v in 0..u64::from(spec.max_vcpus.clamp(1, super::MAX_VCPUS)) {
        crate::time::fill(&shared_info, v)?;
    }
    let nr_p2m_frames = p2m_mapping.as_ref().map_or(0, |m| m.frames);
    write_start_info(spec, &kernel, &l, &mem, shared_info.mfn(), nr_p2m_frames)?;
    write_page_tables(&l, p2m_mapping.as_ref(), &mem)?;
    if let Some(hp) = kernel.virt_hypercall {
        mem.write_va(&l, hp, &hypercall_page())?;
    }
    let nr_pages = mem.frames.len() as u64;
    let l4 = mem.mfn(l.l4_pfn())?;
    let p2m = type_frames(spec.id, &l, p2m_mapping.as_ref(), mem)?;
    // hv's slots, now that the frame is the domain's L4.
    page_table::install_hv_slots(l4, true)?;

    // The guest maps shared_info by its machine address, so the frame is
    // the domain's as far as mappings go (Xen shares it the same way); it
    // has no pfn. hv writes it on the guest's behalf (upcall mask, cr2,
    // time) for the domain's whole life, so, as Xen does, hv holds a
    // writable type reference on it: the guest can never give it another
    // type (page table, descriptor table), exchange it or free it.
    let shared_info = mm::with_frame_table(|ft| {
        let mfn = shared_info.assign(ft, spec.id.get(), u64::MAX)?;
        let held = WritableRef::take_in(ft, mfn, spec.id.get())?;
        ft.mark_special(mfn, spec.id.get())?;
        Ok(held)
    })
    .ok_or(BuildError::Internal("no frame table"))?
    .map_err(BuildError::PageType)?;

    let initial_regs = GuestRegs {
        rip: kernel.virt_entry,
        cs: u64::from(RING3_CS64),
        rflags: 0x202,
        rsp: l.vstack_end,
        ss: u64::from(RING3_DS),
        rsi: l.vstartinfo_start,
        ..GuestRegs::default()
    };
    // vCPU 0's vcpu_info is the first in shared_info, held by its own
    // writable reference (a vCPU's can move: VCPUOP_register_vcpu_info).
    let vcpu_info =
        WritableRef::take(shared_info.mfn(), spec.id.get()).map_err(BuildError::PageType)?;
    let vcpu_info = mm::VcpuInfoRef::new(vcpu_info, 0)
        .map_err(|_| BuildError::Internal("vcpu_info outside shared_info"))?;
    let config = DomainConfig {
        id: spec.id,
        privileged: spec.initial,
        initial: spec.initial,
        shared_info,
        vm_assist: if kernel.start_info_magic().ends_with('p') {
            1 << 3
        } else {
            0
        },
    };
    let state = DomainState::new(p2m, nr_pages, [0; 16]);
    let vcpu0 = Vcpu::new(VcpuId::new(0), l4 * PAGE_SIZE, initial_regs, vcpu_info).ok_or(
        BuildError::Internal("no descriptor-table window left for vCPU 0"),
    )?;
    let nr_vcpus = spec.max_vcpus.clamp(1, super::MAX_VCPUS);
    let mut vcpus = alloc::vec![vcpu0];
    for id in 1..nr_vcpus {
        // Each in its own shared_info slot, as Xen places the first 32.
        let frame = WritableRef::take(config.shared_info.mfn(), spec.id.get())
            .map_err(BuildError::PageType)?;
        let info = mm::VcpuInfoRef::new(frame, u64::from(id) * 64)
            .map_err(|_| BuildError::Internal("vcpu_info outside shared_info"))?;
        vcpus.push(
            Vcpu::new_down(VcpuId::new(id), info).ok_or(BuildError::Internal(
                "no descriptor-table window left for a vCPU",
            ))?,
        );
    }
    // The event words hold their own reference to shared_info. Xen builds
    // dom0 without a port limit (`max_evtchn_port = -1`); a domU built by
    // xl gets libxl's default.
    let events_shared =
        WritableRef::take(config.shared_info.mfn(), spec.id.get()).map_err(BuildError::PageType)?;
    let max_port = if spec.initial {
        hv::evtchn::MAX_PORT_UNLIMITED
    } else {
        hv::evtchn::XL_DEFAULT_MAX_PORT
    };
    let events = crate::event::Events::new(spec.id, nr_vcpus, max_port, events_shared)
        .map_err(BuildError::Internal)?;
    // Xen's defaults (`gnttab_max_frames`, version 2 allowed).
    let limits = hv::domctl::HOST;
    let grants = crate::grant::Grants::new(
        spec.id.get(),
        limits.max_grant_frames,
        limits.max_maptrack_frames,
        limits.max_grant_version,
    )
    .map_err(|_| BuildError::Internal("no frame for the grant table"))?;
    Ok(Domain::new(config, state, vcpus, events, grants))
}

fn write_start_info(
    spec: &BootDomainSpec<'_>,
    kernel: &PvKernel<'_>,
    l: &Layout,
    mem: &Memory,
    shared_info: Mfn,
    nr_p2m_frames: u64,
) -> Result<(), BuildError> {
    let mut si = StartInfo::new_zeroed();
    let magic = kernel.start_info_magic().as_bytes();
    let n = magic.len().min(si.magic.len() - 1);
    si.magic[..n].copy_from_slice(&magic[..n]);
    si.nr_pages = mem.frames.len() as u64;
    si.shared_info = shared_info * PAGE_SIZE;
    si.flags = if spec.initial {
        SIF_PRIVILEGED | SIF_INITDOMAIN
    } else {
        0
    };
    if l.mod_start_is_pfn() {
        si.flags |= SIF_MOD_START_PFN;
    }
    // console.dom0: where the (here all-zero: no VGA) dom0_vga_console_info
    // sits, right after start_info, as Xen always sets for dom0.
    if spec.initial {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "both sizes are small constants (1168 and 40), checked above"
        )]
        let console =
            StartInfoConsole::dom0(START_INFO_BYTES as u32, VGA_CONSOLE_INFO_BYTES as u32);
        si.console = console;
    }
    si.pt_base = l.vpt_start;
    si.nr_pt_frames = l.nr_pt_frames;
    si.mfn_list = l.vphysmap_start;
    si.mod_start = l.start_info_mod_start();
    si.mod_len = l.module_len;
    let cmd = spec.cmdline.as_bytes();
    let n = cmd.len().min(si.cmd_line.len() - 1);
    si.cmd_line[..n].copy_from_slice(&cmd[..n]);
    // Xen: the pfn after the initial allocation (and module), and the
    // frames setup_pv_physmap took for an INIT_P2M list.
    if nr_p2m_frames == 0 {
        si.first_p2m_pfn = l.nr_pages_initial;
    } else {
        si.first_p2m_pfn = l.first_p2m_pfn;
    }
    si.nr_p2m_frames = nr_p2m_frames;
    mem.write_va(l, l.vstartinfo_start, si.as_bytes())
}

/// Gives the domain its frames (returning its P2M) and types the bootstrap
/// page tables as Xen does: each table frame gets the type of its level (and
/// one typed reference per entry pointing at it), every page mapped writable
/// the writable type, page-table frames only general references (they are
/// mapped read-only), and the L4 is pinned.
fn type_frames(
    id: super::DomId,
    l: &Layout,
    p2m_mapping: Option<&P2mMapping>,
    mem: Memory,
) -> Result<Vec<Mfn>, BuildError> {
    let id = id.get();
    use hv::layout::PtLevel;
    use hv::page_info::PageType;
    mm::with_frame_table(|ft| {
        let mut refused = None;
        // Collected in place: the P2M reuses the handles' allocation.
        let p2m: Vec<Mfn> = mem
            .frames
            .into_iter()
            .enumerate()
            .map(|(pfn, frame)| match frame.assign(ft, id, pfn as u64) {
                Ok(mfn) => {
                    mm::m2p::set(mfn, pfn as u64);
                    mfn
                }
                Err(e) => {
                    refused = Some(e);
                    0
                }
            })
            .collect();
        if let Some(e) = refused {
            return Err(e);
        }
        let mfn = |pfn: u64| {
            usize::try_from(pfn)
                .ok()
                .and_then(|i| p2m.get(i).copied())
                .ok_or(hv::page_info::PageError::NoSuchFrame)
        };
        let external = p2m_mapping.map(|m| m.entries.iter().copied());
        for e in l
            .bootstrap_page_table_entries()
            .chain(external.into_iter().flatten())
        {
            let target = mfn(e.target_pfn)?;
            let ty = match e.level {
                PtLevel::L4 => PageType::L3,
                PtLevel::L3 => PageType::L2,
                PtLevel::L2 => PageType::L1,
                PtLevel::L1 if e.flags & page_table::PTE_RW != 0 => PageType::Writable,
                PtLevel::L1 => {
                    ft.get_page(target, id)?;
                    continue;
                }
            };
            ft.get_page_and_built_type(target, id, ty)?;
        }
        let l4 = mfn(l.l4_pfn())?;
        // Pinned, as Xen leaves dom0's initial table, plus the type
        // reference the vCPU's base pointer holds (Xen's guest_table), so
        // unpinning the live table does not untype it.
        ft.pin(l4, id, PageType::L4)?;
        ft.get_page_and_built_type(l4, id, PageType::L4)?;
        Ok(p2m)
    })
    .ok_or(BuildError::Internal("no frame table"))?
    .map_err(BuildError::PageType)
}

/// Writes the bootstrap page tables' entries (hv's own L4 slots come once
/// the L4 is typed).
fn write_page_tables(
    l: &Layout,
    p2m_mapping: Option<&P2mMapping>,
    mem: &Memory,
) -> Result<(), BuildError> {
    let external = p2m_mapping.map(|m| m.entries.iter().copied());
    for e in l
        .bootstrap_page_table_entries()
        .chain(external.into_iter().flatten())
    {
        let target = mem.mfn(e.target_pfn)?;
        mem.frame(e.table_pfn)?
            .write_u64(u64::from(e.index) * 8, e.value(target))?;
    }
    Ok(())
}

/// Xen's 64-bit PV hypercall page: 128 stubs of 32 bytes, stub `n` doing
/// `push %rcx; push %r11; mov $n,%eax; syscall; pop %r11; pop %rcx; ret`,
/// except `iret` (23), which pushes rax too and never returns.
pub fn hypercall_page() -> [u8; 4096] {
    let mut page = [0xcc_u8; 4096];
    for (nr, stub) in (0u8..).zip(page.chunks_exact_mut(32)) {
        stub.copy_from_slice(&guest_abi::hypercall::hypercall_page_stub(nr));
    }
    page
}

fn log_layout(k: &PvKernel<'_>, l: &Layout) {
    crate::hvlog!(
        info,
        " Dom0 kernel: 64-bit, lsb, paddr {:#x} -> {:#x}",
        k.paddr_start,
        k.paddr_end
    );
    crate::hvlog!(
        info,
        " Loaded kernel: {:#x}->{:#x}",
        l.vkern_start,
        l.vkern_end
    );
    if l.module_len > 0 {
        crate::hvlog!(
            info,
            " Init. ramdisk: {:#x}->{:#x}",
            l.vinitrd_start,
            l.vinitrd_end
        );
    }
    crate::hvlog!(
        info,
        " Phys-Mach map: {:#x}->{:#x}",
        l.vphysmap_start,
        l.vphysmap_end
    );
    crate::hvlog!(
        info,
        " Start info:    {:#x}->{:#x}",
        l.vstartinfo_start,
        l.vstartinfo_end
    );
    crate::hvlog!(info, " Page tables:   {:#x}->{:#x}", l.vpt_start, l.vpt_end);
    crate::hvlog!(
        info,
        " Boot stack:    {:#x}->{:#x}",
        l.vstack_start,
        l.vstack_end
    );
    crate::hvlog!(info, " TOTAL:         {:#x}->{:#x}", l.v_start, l.v_end);
    crate::hvlog!(info, " ENTRY ADDRESS: {:#x}", k.virt_entry);
}
