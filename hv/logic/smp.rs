//! Pure parts of SMP: sets of CPUs, where the application processors'
//! real-mode trampoline may go, and which CPUs a guest's vCPU bitmap names.
//!
//! A [`CpuMask`] is a set of hv's CPU numbers (not APIC ids), one bit per
//! CPU, at most [`MAX_CPUS`] of them: the same bound as hv's per-CPU
//! blocks, so a CPU number from any mask indexes them.

/// Most CPUs a mask holds (hv's per-CPU blocks, `percpu::MAX_CPUS`).
pub const MAX_CPUS: usize = 64;

/// A set of CPU numbers below [`MAX_CPUS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuMask(pub u64);

impl CpuMask {
    pub const EMPTY: Self = Self(0);

    /// The set holding only `cpu` (empty if `cpu` is out of range).
    #[inline]
    pub const fn one(cpu: usize) -> Self {
        if cpu < MAX_CPUS {
            Self(1 << cpu)
        } else {
            Self(0)
        }
    }

    /// CPUs `0..n` (all of them for `n >= MAX_CPUS`).
    pub const fn first(n: usize) -> Self {
        if n >= MAX_CPUS {
            Self(u64::MAX)
        } else {
            Self((1 << n) - 1)
        }
    }

    #[inline]
    pub const fn contains(self, cpu: usize) -> bool {
        cpu < MAX_CPUS && self.0 & (1 << cpu) != 0
    }

    #[inline]
    pub const fn with(self, cpu: usize) -> Self {
        Self(self.0 | Self::one(cpu).0)
    }

    #[inline]
    pub const fn without(self, cpu: usize) -> Self {
        Self(self.0 & !Self::one(cpu).0)
    }

    #[inline]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    #[inline]
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether the set holds no CPU but `cpu` (the single-CPU fast path:
    /// nothing to send to anyone else).
    #[inline]
    pub const fn only(self, cpu: usize) -> bool {
        self.without(cpu).is_empty()
    }

    /// The CPUs in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let cpu = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(cpu)
        })
    }
}

impl FromIterator<usize> for CpuMask {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

/// Size of the trampoline page.
pub const PAGE: u64 = 4096;

/// Where the real-mode trampoline goes: the highest page below 640 KiB
/// (a startup IPI's vector names a page below 1 MiB, and the range above
/// 640 KiB is the legacy video and BIOS area) that lies wholly inside one
/// of the RAM ranges `ram` (`[start, end)`) and touches none of the ranges
/// in `avoid` (boot modules and the like). Page 0 (the real-mode IVT and
/// BIOS data area) is never chosen.
pub fn trampoline_page(ram: &[(u64, u64)], avoid: &[(u64, u64)]) -> Option<u64> {
    const LIMIT: u64 = 0xa_0000;
    let mut page = LIMIT - PAGE;
    while page >= PAGE {
        let end = page + PAGE;
        let in_ram = ram.iter().any(|&(s, e)| s <= page && end <= e);
        let clear = avoid.iter().all(|&(s, e)| e <= page || end <= s);
        if in_ram && clear {
            return Some(page);
        }
        page -= PAGE;
    }
    None
}

/// The CPUs a guest's vCPU bitmap names (`UVMF_MULTI`,
/// `MMUEXT_*_MULTI`, Xen's `vcpumask_to_pcpumask`): for each set bit of
/// `words` (bit `i` of word `w` is vCPU `64 w + i`) below `nr_vcpus`, the
/// CPU `cpu_of` says holds that vCPU's state (`None`: none does, as a
/// vCPU that never ran). Bits at or past `nr_vcpus` are ignored, as Xen
/// ignores them.
pub fn cpus_of_vcpus(
    words: &[u64],
    nr_vcpus: usize,
    cpu_of: impl Fn(usize) -> Option<usize>,
) -> CpuMask {
    let mut mask = CpuMask::EMPTY;
    for (w, &word) in words.iter().enumerate() {
        let mut bits = word;
        while bits != 0 {
            let vcpu = w * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if vcpu >= nr_vcpus {
                return mask;
            }
            if let Some(cpu) = cpu_of(vcpu) {
                mask = mask.with(cpu);
            }
        }
    }
    mask
}

/// How many 64-bit words of a guest vCPU bitmap Xen reads for a domain
/// of `nr_vcpus` vCPUs.
pub const fn vcpumask_words(nr_vcpus: usize) -> usize {
    nr_vcpus.div_ceil(64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_sets_and_clears_in_range_only() {
        let m = CpuMask::EMPTY.with(0).with(5).with(63).with(64).with(1000);
        assert_eq!(m.count(), 3);
        assert!(m.contains(0) && m.contains(5) && m.contains(63));
        assert!(!m.contains(64) && !m.contains(1));
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![0, 5, 63]);
        assert_eq!(m.without(5).iter().collect::<Vec<_>>(), vec![0, 63]);
        assert_eq!(m.without(99), m);
    }

    #[test]
    fn only_is_the_single_cpu_fast_path() {
        assert!(CpuMask::EMPTY.only(3));
        assert!(CpuMask::one(3).only(3));
        assert!(!CpuMask::one(3).with(4).only(3));
        assert!(!CpuMask::one(4).only(3));
    }

    #[test]
    fn first_n_and_set_algebra() {
        assert_eq!(CpuMask::first(0), CpuMask::EMPTY);
        assert_eq!(CpuMask::first(3).iter().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(CpuMask::first(64).count(), 64);
        assert_eq!(CpuMask::first(99).count(), 64);
        let a = CpuMask::first(4);
        let b = CpuMask::one(2).with(7);
        assert_eq!(a.intersection(b), CpuMask::one(2));
        assert_eq!(a.union(b).count(), 5);
        assert_eq!([1usize, 9, 9].into_iter().collect::<CpuMask>().count(), 2);
    }

    #[test]
    fn trampoline_takes_the_highest_free_ram_page_below_640k() {
        let ram = [(0, 0x9_fc00), (0x10_0000, 0x800_0000)];
        assert_eq!(trampoline_page(&ram, &[]), Some(0x9_e000));
        // A module over the top pages pushes it down.
        assert_eq!(
            trampoline_page(&ram, &[(0x9_d800, 0x9_f000)]),
            Some(0x9_c000)
        );
        // Only RAM above 1 MiB: nowhere to put it.
        assert_eq!(trampoline_page(&[(0x10_0000, 0x800_0000)], &[]), None);
        // Page 0 is never taken.
        assert_eq!(trampoline_page(&[(0, 0x1000)], &[]), None);
        assert_eq!(trampoline_page(&[(0, 0x2000)], &[]), Some(0x1000));
        // A range that only partly covers a page does not count.
        assert_eq!(trampoline_page(&[(0x1800, 0x3000)], &[]), Some(0x2000));
    }

    #[test]
    fn vcpu_bitmap_maps_to_the_cpus_holding_those_vcpus() {
        let cpu_of = |v: usize| match v {
            0 => Some(0),
            1 => Some(2),
            2 => None,
            65 => Some(5),
            _ => Some(7),
        };
        assert_eq!(cpus_of_vcpus(&[0b11], 4, cpu_of), CpuMask::one(0).with(2));
        // A vCPU that never ran adds nothing.
        assert_eq!(cpus_of_vcpus(&[0b100], 4, cpu_of), CpuMask::EMPTY);
        // Bits past the domain's vCPUs are ignored.
        assert_eq!(cpus_of_vcpus(&[0b1001], 2, cpu_of), CpuMask::one(0));
        assert_eq!(cpus_of_vcpus(&[0, 0b10], 66, cpu_of), CpuMask::one(5));
        assert_eq!(cpus_of_vcpus(&[0, 0b10], 65, cpu_of), CpuMask::EMPTY);
        assert_eq!(vcpumask_words(1), 1);
        assert_eq!(vcpumask_words(64), 1);
        assert_eq!(vcpumask_words(65), 2);
    }
}
