//! A PV domU's start-of-day address space, as a builder lays it out: one
//! mapping `[virt_base, v_end)` of pseudo-physical frames from 0 (the
//! frame of `va` is `(va - virt_base) >> 12`) holding, in order, the
//! kernel image, the ramdisk (if any: `start_info.mod_start` is its
//! virtual address, as `libxenguest` gives it), the P2M list (one machine frame per pseudo-physical
//! frame), start_info, the console ring page, the xenstore ring page, the
//! bootstrap page tables (one L4, L3 and L2, then the L1s that map the
//! whole range, themselves mapped read-only as Xen requires) and one page
//! of boot stack; then at least 512 KiB to spare, rounded up to 4 MiB, as
//! Xen's builders do. The range must fit in the domain's memory and in one
//! 1 GiB region (one L2); `virt_base` must be 2 MiB aligned.

use crate::Error;

const PAGE: u64 = 4096;
const TWO_MIB: u64 = 2 << 20;
const FOUR_MIB: u64 = 4 << 20;
const PAD: u64 = 512 << 10;

/// Flags of the bootstrap tables' entries: present, writable, user (a PV
/// kernel runs in ring 3), accessed; leaves dirty too, or read-only for
/// the tables themselves.
pub const TABLE_FLAGS: u64 = 0x1 | 0x2 | 0x4 | 0x20;
pub const PAGE_FLAGS: u64 = TABLE_FLAGS | 0x40;
pub const READ_ONLY_FLAGS: u64 = 0x1 | 0x4 | 0x20;

/// Where everything is (frames are pseudo-physical).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub virt_base: u64,
    pub nr_pages: u64,
    /// The kernel's frames, `[first, end)`.
    pub kernel: (u64, u64),
    /// The ramdisk's frames, `[first, end)` (empty without one).
    pub ramdisk: (u64, u64),
    pub p2m: u64,
    pub p2m_pages: u64,
    pub start_info: u64,
    pub console: u64,
    pub store: u64,
    /// The L4; the L3 and L2 follow, then `nr_l1` L1s.
    pub tables: u64,
    pub nr_l1: u64,
    pub stack: u64,
    pub v_end: u64,
}

/// One entry of a bootstrap table: `table`'s entry `index` maps frame
/// `target` with `flags` (all pseudo-physical).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub table: u64,
    pub index: usize,
    pub target: u64,
    pub flags: u64,
}

fn too_small() -> Error {
    Error::new("too little memory for the kernel's start of day", 0)
}

/// Lays out a domain of `nr_pages` for a kernel loaded at
/// `[kstart, kend)` with `virt_base` and a ramdisk of `ramdisk_len` bytes
/// (see the module's rules).
pub fn layout(
    virt_base: u64,
    kstart: u64,
    kend: u64,
    ramdisk_len: u64,
    nr_pages: u64,
) -> Result<Layout, Error> {
    if !virt_base.is_multiple_of(TWO_MIB) {
        return Err(Error::new("VIRT_BASE not 2 MiB aligned", 0));
    }
    if kstart < virt_base || kend <= kstart {
        return Err(Error::new("kernel below VIRT_BASE or empty", 0));
    }
    let pfn = |va: u64| (va - virt_base) / PAGE;
    let kernel = (
        pfn(kstart),
        pfn(kend.checked_next_multiple_of(PAGE).ok_or(too_small())?),
    );
    let ramdisk = (
        kernel.1,
        kernel
            .1
            .checked_add(ramdisk_len.div_ceil(PAGE))
            .ok_or(too_small())?,
    );
    let p2m = ramdisk.1;
    let p2m_pages = nr_pages.checked_mul(8).ok_or(too_small())?.div_ceil(PAGE);
    let start_info = p2m + p2m_pages;
    let (console, store, tables) = (start_info + 1, start_info + 2, start_info + 3);
    // The L1s needed depend on v_end, which depends on the L1s: grow the
    // count until it covers its own range (it only grows).
    let mut nr_l1 = 1;
    let (stack, v_end) = loop {
        let stack = tables + 3 + nr_l1;
        let used = (stack + 1).checked_mul(PAGE).ok_or(too_small())?;
        let span = (used + PAD)
            .checked_next_multiple_of(FOUR_MIB)
            .ok_or(too_small())?;
        let need = span / TWO_MIB;
        if need <= nr_l1 {
            break (stack, virt_base.checked_add(span).ok_or(too_small())?);
        }
        nr_l1 = need;
    };
    if (v_end - virt_base) / PAGE > nr_pages {
        return Err(too_small());
    }
    if virt_base >> 30 != (v_end - 1) >> 30 {
        return Err(Error::new("start of day crosses a 1 GiB boundary", 0));
    }
    Ok(Layout {
        virt_base,
        nr_pages,
        kernel,
        ramdisk,
        p2m,
        p2m_pages,
        start_info,
        console,
        store,
        tables,
        nr_l1,
        stack,
        v_end,
    })
}

impl Layout {
    /// The virtual address of frame `pfn` (inside the mapping).
    pub const fn va(&self, pfn: u64) -> u64 {
        self.virt_base + pfn * PAGE
    }

    /// Frames the mapping covers.
    pub const fn mapped(&self) -> u64 {
        (self.v_end - self.virt_base) / PAGE
    }

    /// Bootstrap table frames (L4, L3, L2, L1s).
    pub const fn nr_tables(&self) -> u64 {
        3 + self.nr_l1
    }

    pub const fn l4(&self) -> u64 {
        self.tables
    }

    /// Every non-empty entry of the bootstrap tables, table by table.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let index = |shift: u32| ((self.virt_base >> shift) & 511) as usize;
        let (l4, l3, l2) = (self.tables, self.tables + 1, self.tables + 2);
        let uppers = [
            Entry {
                table: l4,
                index: index(39),
                target: l3,
                flags: TABLE_FLAGS,
            },
            Entry {
                table: l3,
                index: index(30),
                target: l2,
                flags: TABLE_FLAGS,
            },
        ];
        let l2s = (0..self.nr_l1).map(move |i| Entry {
            table: l2,
            index: index(21) + usize::try_from(i).unwrap_or(512),
            target: self.tables + 3 + i,
            flags: TABLE_FLAGS,
        });
        let tables = self.tables..self.tables + self.nr_tables();
        let l1s = (0..self.mapped()).map(move |pfn| Entry {
            table: self.tables + 3 + pfn / 512,
            index: (pfn % 512) as usize,
            target: pfn,
            flags: if tables.contains(&pfn) {
                READ_ONLY_FLAGS
            } else {
                PAGE_FLAGS
            },
        });
        uppers.into_iter().chain(l2s).chain(l1s)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    const VB: u64 = 0xffff_ffff_8000_0000;

    #[test]
    fn a_small_kernel_in_eight_mib() {
        let l = layout(VB, VB, VB + 0x2_3456, 0, 2048).unwrap();
        assert_eq!(l.kernel, (0, 0x24));
        assert_eq!(l.ramdisk, (0x24, 0x24));
        assert_eq!((l.p2m, l.p2m_pages), (0x24, 4));
        assert_eq!(
            (l.start_info, l.console, l.store, l.tables),
            (0x28, 0x29, 0x2a, 0x2b)
        );
        assert_eq!(l.nr_l1, 2);
        assert_eq!(l.stack, 0x2b + 5);
        assert_eq!(l.v_end, VB + (4 << 20));
        let e: std::vec::Vec<Entry> = l.entries().collect();
        assert_eq!(e.len(), 2 + 2 + 1024);
        assert_eq!(
            (e[0].table, e[0].index, e[0].target),
            (l.l4(), 511, l.tables + 1)
        );
        assert_eq!((e[1].index, e[2].index, e[3].index), (510, 0, 1));
        // The tables are mapped read-only, everything else writable.
        let ro: std::vec::Vec<u64> = e
            .iter()
            .filter(|e| e.flags == READ_ONLY_FLAGS)
            .map(|e| e.target)
            .collect();
        assert_eq!(ro, (l.tables..l.tables + 5).collect::<std::vec::Vec<_>>());
        assert!(l
            .entries()
            .all(|e| e.index < 512 && e.target < l.mapped().max(l.tables + 5)));
    }

    #[test]
    fn the_l1_count_covers_its_own_range() {
        // A kernel just under 4 MiB: the mapping grows to 8 MiB, 4 L1s.
        let l = layout(VB, VB, VB + (4 << 20) - PAGE, 0, 4096).unwrap();
        assert_eq!(l.v_end, VB + (8 << 20));
        assert_eq!(l.nr_l1, 4);
        assert!(l.mapped() <= l.nr_l1 * 512);
    }

    #[test]
    fn a_ramdisk_follows_the_kernel() {
        // 3 pages and a byte: 4 frames, then the P2M.
        let l = layout(VB, VB, VB + 0x2_3456, 3 * PAGE + 1, 2048).unwrap();
        assert_eq!(l.ramdisk, (0x24, 0x28));
        assert_eq!(l.p2m, 0x28);
        assert_eq!(l.va(l.ramdisk.0), VB + 0x24000);
        // All of it mapped writable.
        assert!((l.ramdisk.0..l.ramdisk.1).all(|pfn| l
            .entries()
            .any(|e| e.target == pfn && e.flags == PAGE_FLAGS)));
        // One that does not fit the memory, one whose size overflows.
        assert_eq!(
            layout(VB, VB, VB + 0x1000, 8 << 20, 2048).unwrap_err(),
            too_small()
        );
        assert!(layout(VB, VB, VB + 0x1000, u64::MAX, 2048).is_err());
    }

    #[test]
    fn refusals() {
        assert_eq!(
            layout(VB, VB, VB + 0x1000, 0, 512).unwrap_err(),
            too_small()
        );
        assert!(layout(VB + 0x1000, VB + 0x1000, VB + 0x2000, 0, 2048).is_err());
        assert!(layout(VB, VB - 1, VB + 0x2000, 0, 2048).is_err());
        assert!(
            layout(0x3fe0_0000, 0x3fe0_0000, 0x3fe0_1000, 0, 4096).is_err(),
            "crosses 1 GiB"
        );
        assert!(layout(VB, VB, u64::MAX, 0, u64::MAX).is_err());
        // Physical layout: frame 0 at virtual 0, a kernel at 1 MiB.
        let l = layout(0, 0x10_0000, 0x12_0000, 0, 2048).unwrap();
        assert_eq!(l.kernel, (0x100, 0x120));
    }
}
