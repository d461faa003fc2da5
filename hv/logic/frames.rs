//! The machine-frame allocator's bookkeeping: one bit per frame, set = in use.
//!
//! Pure logic over a fixed array, so it can sit in a `static` and the host
//! tests drive it.
//! Invariants: `free` equals the number of clear bits below `nframes`; bits at
//! or above `nframes` stay set, so a search never returns a frame beyond the
//! end; freeing a free frame is reported, never silently accepted.

/// Why a bitmap operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The frame number is beyond the bitmap.
    OutOfRange,
    /// The frame was already free.
    DoubleFree,
}

/// A bitmap of machine frames, `64 * W` at most.
pub struct FrameBitmap<const W: usize> {
    words: [u64; W],
    nframes: u64,
    free: u64,
    /// Word index where the next single-frame search starts.
    hint: usize,
}

fn split(pfn: u64) -> (usize, u64) {
    // The caller checked pfn < nframes ≤ 64 * words.len(), which fits usize.
    let word = usize::try_from(pfn / 64).unwrap_or(usize::MAX);
    (word, 1u64 << (pfn % 64))
}

impl<const W: usize> Default for FrameBitmap<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> FrameBitmap<W> {
    /// An empty bitmap (no frames), usable in a `static`.
    pub const fn new() -> Self {
        Self {
            words: [u64::MAX; W],
            nframes: 0,
            free: 0,
            hint: 0,
        }
    }

    /// Covers `nframes` frames (clamped to the capacity), all in use.
    pub fn reset(&mut self, nframes: u64) {
        let cap = (W as u64).saturating_mul(64);
        self.words.fill(u64::MAX);
        self.nframes = nframes.min(cap);
        self.free = 0;
        self.hint = 0;
    }

    /// Number of frames the bitmap covers.
    pub fn nframes(&self) -> u64 {
        self.nframes
    }

    /// Number of free frames.
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    pub fn is_free(&self, pfn: u64) -> bool {
        if pfn >= self.nframes {
            return false;
        }
        let (w, bit) = split(pfn);
        self.words.get(w).is_some_and(|v| v & bit == 0)
    }

    /// Marks `[start, end)` free (the RAM ranges of the memory map); frames
    /// beyond the bitmap are ignored.
    pub fn mark_free(&mut self, start: u64, end: u64) {
        for pfn in start..end.min(self.nframes) {
            let (w, bit) = split(pfn);
            if let Some(v) = self.words.get_mut(w) {
                if *v & bit != 0 {
                    *v &= !bit;
                    self.free += 1;
                }
            }
        }
    }

    /// Marks `[start, end)` in use (hv's image, boot modules, firmware data).
    pub fn mark_used(&mut self, start: u64, end: u64) {
        for pfn in start..end.min(self.nframes) {
            let (w, bit) = split(pfn);
            if let Some(v) = self.words.get_mut(w) {
                if *v & bit == 0 {
                    *v |= bit;
                    self.free -= 1;
                }
            }
        }
    }

    /// Takes one free frame, lowest first from the search hint.
    pub fn alloc(&mut self) -> Option<u64> {
        let n = W;
        for i in 0..n {
            let w = (self.hint + i) % n;
            let v = self.words[w];
            if v != u64::MAX {
                let bit = u64::from(v.trailing_ones());
                let pfn = (w as u64) * 64 + bit;
                if pfn >= self.nframes {
                    continue;
                }
                self.words[w] |= 1 << bit;
                self.free -= 1;
                self.hint = w;
                return Some(pfn);
            }
        }
        None
    }

    /// Takes `count` contiguous free frames whose first frame is a multiple
    /// of `align` (a power of two, in frames); returns the first frame.
    pub fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        if count == 0 || !align.is_power_of_two() || count > self.free {
            return None;
        }
        if count == 1 && align == 1 {
            // One frame, any frame: the word-wise search.
            return self.alloc();
        }
        let mut start = 0u64;
        while start.checked_add(count)? <= self.nframes {
            // Whole words in use are stepped over at once.
            let word = usize::try_from(start / 64).unwrap_or(usize::MAX);
            if self.words.get(word) == Some(&u64::MAX) {
                start = ((start / 64 + 1) * 64).checked_next_multiple_of(align)?;
                continue;
            }
            match (start..start + count).find(|&p| !self.is_free(p)) {
                None => {
                    self.mark_used(start, start + count);
                    return Some(start);
                }
                Some(busy) => {
                    start = (busy + 1).checked_next_multiple_of(align)?;
                }
            }
        }
        None
    }

    /// Returns a frame.
    pub fn free(&mut self, pfn: u64) -> Result<(), FrameError> {
        if pfn >= self.nframes {
            return Err(FrameError::OutOfRange);
        }
        let (w, bit) = split(pfn);
        let v = self.words.get_mut(w).ok_or(FrameError::OutOfRange)?;
        if *v & bit == 0 {
            return Err(FrameError::DoubleFree);
        }
        *v &= !bit;
        self.free += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_full_and_frees_ranges() {
        let mut b = FrameBitmap::<4>::new();
        b.reset(200);
        assert_eq!(b.free_frames(), 0);
        assert_eq!(b.alloc(), None);
        b.mark_free(10, 20);
        b.mark_used(12, 14);
        assert_eq!(b.free_frames(), 8);
        assert_eq!(b.alloc(), Some(10));
        assert_eq!(b.alloc(), Some(11));
        assert_eq!(b.alloc(), Some(14));
        assert_eq!(b.free_frames(), 5);
    }

    #[test]
    fn never_hands_out_frames_beyond_the_end() {
        let mut b = FrameBitmap::<4>::new();
        b.reset(70);
        b.mark_free(0, 1000);
        assert_eq!(b.free_frames(), 70);
        let mut n = 0;
        while let Some(p) = b.alloc() {
            assert!(p < 70);
            n += 1;
        }
        assert_eq!(n, 70);
    }

    #[test]
    fn double_free_and_out_of_range_are_refused() {
        let mut b = FrameBitmap::<2>::new();
        b.reset(128);
        b.mark_free(0, 128);
        assert_eq!(b.free(5), Err(FrameError::DoubleFree));
        assert_eq!(b.free(128), Err(FrameError::OutOfRange));
        let p = b.alloc().unwrap();
        assert_eq!(b.free(p), Ok(()));
        assert_eq!(b.free_frames(), 128);
    }

    #[test]
    fn contiguous_respects_alignment_and_holes() {
        let mut b = FrameBitmap::<16>::new();
        b.reset(1024);
        b.mark_free(3, 1024);
        b.mark_used(600, 601);
        assert_eq!(b.alloc_contiguous(256, 256), Some(256));
        // 512..768 holds the busy frame 600, so the next aligned run is 768.
        assert_eq!(b.alloc_contiguous(256, 256), Some(768));
        assert_eq!(b.alloc_contiguous(256, 256), None);
        let t = b.alloc_contiguous(10, 1).unwrap();
        assert!((3..600).contains(&t));
        assert_eq!(b.alloc_contiguous(0, 1), None);
        assert_eq!(b.alloc_contiguous(1, 3), None);
    }

    #[test]
    fn contiguous_steps_over_full_words_and_keeps_alignment() {
        let mut b = FrameBitmap::<8>::new();
        b.reset(512);
        b.mark_free(0, 512);
        b.mark_used(0, 130);
        b.mark_used(133, 140);
        assert_eq!(b.alloc_contiguous(4, 4), Some(140));
        assert_eq!(b.alloc_contiguous(2, 2), Some(130));
        assert_eq!(b.alloc_contiguous(1, 4), Some(132));
        assert_eq!(b.alloc_contiguous(1, 1), Some(144));
        assert_eq!(b.alloc_contiguous(64, 64), Some(192));
        assert_eq!(b.free_frames(), 512 - 130 - 7 - 4 - 2 - 1 - 1 - 64);
        assert_eq!(b.alloc_contiguous(512, 1), None);
    }
}
