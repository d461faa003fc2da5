//! Random choices: the seeded xorshift64* every decision comes from, and
//! the pickers of counts, pointers, words, frames, page-table entries and
//! addresses that `calls` builds arguments with, biased toward the values
//! a hypervisor's checks are about.

use guest_abi::xen::{DOMID_IO, DOMID_SELF, DOMID_XEN};
use tests::expect::BAD_POINTERS;
use tests::pvmm::{self, A, ALL_ONES_MFN, D, P, RW, US};

use crate::{low, poke, Fuzz, FIRST_RANDOM};

/// `rare` if `is_rare`, else `usual` (both already evaluated).
pub(crate) fn choose(is_rare: bool, rare: u64, usual: u64) -> u64 {
    if is_rare {
        rare
    } else {
        usual
    }
}

impl Fuzz {
    pub(crate) fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(crate) fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
    pub(crate) fn pick<T: Copy>(&mut self, s: &[T]) -> T {
        let i = self.below(s.len() as u64);
        s[usize::try_from(i).unwrap_or(0)]
    }

    /// A count: near 0, near the 31- and 32-bit limits, or anything.
    pub(crate) fn count(&mut self) -> u64 {
        match self.below(8) {
            0..=2 => self.below(4),
            3 => self.below(64),
            4 => self.pick(&[1 << 31, (1 << 31) - 1, 0xffff_ffff, 0xffff_fffe, 1 << 32]),
            5 => low(self.next()),
            _ => self.next(),
        }
    }
    /// A pointer no hypercall can read or write through.
    pub(crate) fn unreadable(&mut self) -> u64 {
        self.pick(BAD_POINTERS).1
    }
    /// A pointer into the blob pages, whose next 256 bytes are random words.
    pub(crate) fn blob(&mut self) -> u64 {
        let p = choose(
            self.one_in(4),
            self.blob_end - 8 * (1 + self.below(32)),
            self.blob + 8 * self.below(2 * 512 - 32),
        );
        for k in 0..32 {
            if p + 8 * k < self.blob_end {
                let v = self.word();
                poke(p + 8 * k, v);
            }
        }
        p
    }
    /// A pointer for a call that reads or writes a structure through it.
    pub(crate) fn pointer(&mut self) -> u64 {
        match self.below(11) {
            0..=2 => self.unreadable(),
            3 => self.env.si.pt_base + 8 * self.below(self.env.si.nr_pt_frames * 512),
            4 => pvmm::M2P + 8 * self.below(self.max_page.max(1)),
            _ => self.blob(),
        }
    }
    /// A word for a random structure.
    pub(crate) fn word(&mut self) -> u64 {
        match self.below(12) {
            0..=3 => self.next(),
            4 | 5 => self.below(17),
            6 => self.count(),
            7 => self.mfn_safe(),
            8 => self.blob + 8 * self.below(2 * 512),
            9 => self.unreadable(),
            10 => self
                .pick(&[DOMID_SELF, DOMID_IO, DOMID_XEN, 0, 1, 0x7fff, 0xffff])
                .into(),
            _ => self.next() & 0xffff,
        }
    }
    pub(crate) fn pool_mfn(&mut self) -> u64 {
        self.pick(&{ self.pool })
    }
    pub(crate) fn bad_mfn(&mut self) -> u64 {
        let beyond = self.max_page + self.below(1 << 20);
        self.pick(&[ALL_ONES_MFN, u64::MAX, beyond, self.m2p, 0])
    }
    /// A frame nothing may write to but a test: spare, or not ours.
    pub(crate) fn mfn_safe(&mut self) -> u64 {
        choose(self.one_in(2), self.pool_mfn(), self.bad_mfn())
    }
    /// A frame for page-table operations: also the live tables.
    pub(crate) fn mfn_pt(&mut self) -> u64 {
        match self.below(6) {
            0 => self.pick(&{ self.pt_mfns }),
            1 => self.w.l1_mfn,
            _ => self.mfn_safe(),
        }
    }
    /// A frame to map: also the image's own frames.
    pub(crate) fn mfn_map(&mut self) -> u64 {
        if self.one_in(5) {
            let pfn = self.below(self.env.si.first_p2m_pfn);
            self.env.mfn(pfn)
        } else {
            self.mfn_pt()
        }
    }
    pub(crate) fn pte(&mut self) -> u64 {
        if self.one_in(10) {
            return 0;
        }
        let flags = match self.below(6) {
            0 => self.next() & 0xfff,
            1 => P | US | A,
            2 => P | RW,
            _ => P | RW | US | A | D,
        };
        let high = choose(self.one_in(8), self.next() & (0xfff << 52), 0);
        ((self.mfn_map() << 12) & pvmm::ADDR_MASK) | flags | high
    }
    /// A linear address for page-table changes: random window pages or bad.
    pub(crate) fn scratch_va(&mut self) -> u64 {
        if self.one_in(5) {
            self.unreadable()
        } else {
            let page = FIRST_RANDOM + self.below(512 - FIRST_RANDOM);
            self.w.va(page)
        }
    }
    pub(crate) fn domid(&mut self) -> u64 {
        match self.below(4) {
            0 | 1 => DOMID_SELF.into(),
            _ => low(self.word()),
        }
    }
    /// `bytes` at the top of what is left of the arrays page.
    pub(crate) fn array(&mut self, bytes: u64) -> u64 {
        self.arr_end -= bytes;
        self.arr_end
    }
}
