//! `elf`: a PV kernel image through `hv::elf::parse` (Xen's dom0 policy),
//! then the dom0 layout the builder derives from it. `layout`: the
//! builder's layout arithmetic on its own, with kernel parameters that
//! need not come from a valid image.

use super::within;
use crate::input::Input;
use hv::elf::{parse, Policy, MAX_IMAGE_SPAN, MAX_LOAD_SEGMENTS, XEN_DOM0_REQUIRABLE_FEATURES};
use hv::layout::{
    dom0_layout, KernelParams, Layout, PtLevel, HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START,
    PAGE_FLAGS, PAGE_TABLE_PAGE_FLAGS,
};
use std::collections::HashSet;

const PAGE: u64 = 4096;
/// Bootstrap tables of layouts up to this many pages are enumerated whole.
const ENUMERATE_PAGES: u64 = 1 << 14;

/// Input: `nr_pages` (u64), the module's length (u64), then the image.
pub fn elf(data: &[u8]) {
    let mut input = Input::new(data);
    let (nr_pages, module_len) = (input.u64(), input.u64());
    let image = input.rest();
    let Ok(k) = parse(image, Policy::XEN_DOM0) else {
        return;
    };
    assert_eq!(
        parse(image, Policy::XEN_DOM0).as_ref(),
        Ok(&k),
        "parse is a function"
    );
    assert!(k.virt_base <= k.virt_kstart, "{k:#x?}");
    assert!(k.virt_kstart <= k.virt_entry && k.virt_entry <= k.virt_kend);
    let span = k.virt_kend - k.virt_kstart;
    assert!(span < MAX_IMAGE_SPAN);
    assert_eq!(span, k.paddr_end - k.paddr_start);
    assert_eq!(k.virt_kstart, k.paddr_start.wrapping_add(k.virt_offset));
    if let Some(hc) = k.virt_hypercall {
        assert!((k.virt_kstart..k.virt_kend).contains(&hc));
    }
    if let Some(p2m) = k.p2m_base {
        assert!(!(k.virt_kstart..k.virt_kend).contains(&p2m));
    }
    assert_eq!(k.features_required & !XEN_DOM0_REQUIRABLE_FEATURES, 0);
    assert!(k.segments().count() <= MAX_LOAD_SEGMENTS);
    for s in k.segments() {
        assert!(within(image, s.data), "segment data outside the image");
        let len = u64::try_from(s.data.len()).unwrap();
        assert!(len <= s.memsz);
        let off = s.dest.wrapping_sub(k.virt_kstart);
        assert!(
            off <= span && s.memsz <= span - off,
            "segment outside the kernel range"
        );
    }
    assert!(k.start_info_magic().starts_with("xen-3.0-x86_64"));
    let params = k.layout_params();
    if let Ok(l) = dom0_layout(&params, nr_pages, module_len) {
        check_layout(&params, nr_pages, module_len, &l);
    }
}

/// Input: a description of kernel parameters (biased toward the
/// interesting addresses), `nr_pages` and the module's length.
pub fn layout(data: &[u8]) {
    let mut input = Input::new(data);
    let base = input.pick(&[
        0,
        0x10_0000,
        0xffff_ffff_8000_0000,
        0x0000_7fff_ffc0_0000,
        HYPERVISOR_VIRT_START - (4 << 20),
        HYPERVISOR_VIRT_END,
        (512 << 30) - (4 << 20),
        (1 << 30) - (2 << 20),
        u64::MAX - (8 << 20),
    ]);
    let virt_base = match input.below(4) {
        0 => input.u64(),
        1 => base.wrapping_add(u64::from(input.u16()) << 12),
        _ => base.wrapping_add(u64::from(input.u32())),
    };
    let virt_kstart = virt_base.wrapping_add(u64::from(input.u16()) << input.below(13));
    let virt_kend = virt_kstart.wrapping_add(u64::from(input.u32()) >> input.below(32));
    let addr = |input: &mut Input<'_>| match input.below(4) {
        0 => None,
        1 => Some(input.u64()),
        2 => Some(virt_kstart.wrapping_add(u64::from(input.u32()))),
        _ => Some(input.pick(&[0, 0xffff_c000_0000_0000, HYPERVISOR_VIRT_START, 1 << 47])),
    };
    let k = KernelParams {
        virt_base,
        virt_kstart,
        virt_kend,
        unmapped_initrd: input.bool(),
        p2m_base: addr(&mut input),
        virt_hypercall: addr(&mut input),
    };
    let nr_pages = match input.below(4) {
        0 => input.u64(),
        1 => u64::from(input.u32()),
        _ => u64::from(input.u16()) << input.below(8),
    };
    let module_len = match input.below(3) {
        0 => 0,
        1 => u64::from(input.u32()),
        _ => input.u64(),
    };
    let got = dom0_layout(&k, nr_pages, module_len);
    assert_eq!(dom0_layout(&k, nr_pages, module_len), got);
    if let Ok(l) = got {
        check_layout(&k, nr_pages, module_len, &l);
    }
}

/// The 4 KiB-page regions of `1 << shift` bytes that `[lo, hi)` touches.
fn touched(lo: u64, hi: u64, shift: u32) -> u64 {
    if hi <= lo {
        0
    } else {
        ((hi - 1) >> shift) - (lo >> shift) + 1
    }
}

fn canonical(lo: u64, hi: u64) -> bool {
    hi <= 1 << 47 || lo >= 0xffff_8000_0000_0000
}

fn overlaps_hv(lo: u64, hi: u64) -> bool {
    lo < HYPERVISOR_VIRT_END && hi > HYPERVISOR_VIRT_START
}

/// What every layout `dom0_layout` accepts must satisfy.
fn check_layout(k: &KernelParams, nr_pages: u64, module_len: u64, l: &Layout) {
    let ctx = || format!("{k:#x?} nr_pages {nr_pages:#x} module {module_len:#x}: {l:#x?}");
    assert_eq!(l.v_start, k.virt_base, "{}", ctx());
    assert_eq!((l.vkern_start, l.vkern_end), (k.virt_kstart, k.virt_kend));
    assert!(
        l.v_start <= l.vkern_start && l.vkern_end <= l.v_end,
        "{}",
        ctx()
    );
    assert!(canonical(l.v_start, l.v_end) && !overlaps_hv(l.v_start, l.v_end));
    assert_eq!(l.nr_pages, nr_pages);
    assert_eq!(l.module_len, module_len);
    // The pieces follow each other inside the mapping.
    let mut at = l.vkern_end;
    if k.unmapped_initrd {
        assert_eq!((l.vinitrd_start, l.vinitrd_end), (0, 0));
    } else {
        assert!(
            at <= l.vinitrd_start && l.vinitrd_start.is_multiple_of(PAGE),
            "{}",
            ctx()
        );
        assert_eq!(l.vinitrd_end - l.vinitrd_start, module_len);
        at = l.vinitrd_end;
    }
    if l.p2m_external {
        let (lo, hi) = (l.vphysmap_start, l.vphysmap_end);
        assert_eq!(Some(lo), k.p2m_base);
        assert_eq!(hi - lo, nr_pages * 8);
        assert!(hi < l.v_start || lo > l.v_end, "{}", ctx());
        assert!(canonical(lo, hi) && !overlaps_hv(lo, hi), "{}", ctx());
    } else {
        assert!(at <= l.vphysmap_start, "{}", ctx());
        assert_eq!(l.vphysmap_end - l.vphysmap_start, nr_pages * 8);
        at = l.vphysmap_end;
    }
    assert!(at <= l.vstartinfo_start && l.vstartinfo_start.is_multiple_of(PAGE));
    assert!(l.vstartinfo_end <= l.vpt_start && l.vpt_start.is_multiple_of(PAGE));
    assert_eq!(l.vpt_end - l.vpt_start, l.nr_pt_frames * PAGE);
    assert_eq!(
        (l.vstack_start, l.vstack_end),
        (l.vpt_end, l.vpt_end + PAGE)
    );
    assert!(l.v_end - l.vstack_end >= 512 << 10, "{}", ctx());
    assert_eq!(l.nr_pages_initial, (l.v_end - l.v_start) / PAGE);
    // Enough bootstrap tables for the mapping.
    let needed = 1
        + touched(l.v_start, l.v_end, 39)
        + touched(l.v_start, l.v_end, 30)
        + touched(l.v_start, l.v_end, 21);
    assert!(l.nr_pt_frames >= needed, "{}", ctx());
    // The allocation holds the mapping and fits the domain.
    assert!(l.alloc_pages.is_power_of_two());
    assert!(l.first_p2m_pfn <= nr_pages, "{}", ctx());
    if let Some(hc) = k.virt_hypercall {
        assert!((l.v_start..l.v_end).contains(&hc));
    }
    if l.nr_pages_initial <= ENUMERATE_PAGES {
        check_bootstrap_tables(l);
    }
}

/// The bootstrap tables map each page of the mapping once, to its own pfn,
/// read-only for the page-table frames, and use exactly those frames.
fn check_bootstrap_tables(l: &Layout) {
    let pt0 = l.l4_pfn();
    let pts = pt0..pt0 + l.nr_pt_frames;
    let mut slots = HashSet::new();
    let mut pages = HashSet::new();
    let mut upper = 0u64;
    for e in l.bootstrap_page_table_entries() {
        assert!(e.index < 512);
        assert!(
            pts.contains(&e.table_pfn),
            "entry outside the tables: {e:?}"
        );
        assert!(
            slots.insert((e.table_pfn, e.index)),
            "slot written twice: {e:?}"
        );
        if e.level == PtLevel::L1 {
            assert!(pages.insert(e.target_pfn), "page mapped twice: {e:?}");
            let flags = if pts.contains(&e.target_pfn) {
                PAGE_TABLE_PAGE_FLAGS
            } else {
                PAGE_FLAGS
            };
            assert_eq!(e.flags, flags, "{e:?}");
        } else {
            upper += 1;
            assert!(pts.contains(&e.target_pfn), "{e:?}");
        }
    }
    assert_eq!(pages.len() as u64, l.nr_pages_initial);
    assert!(pages.iter().all(|&p| p < l.nr_pages_initial));
    assert_eq!(upper, l.nr_pt_frames - 1);
}
