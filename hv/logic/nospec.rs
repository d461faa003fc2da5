//! Indexing with guest-chosen values, clamped against speculation.
//!
//! A bounds check can be mispredicted: the CPU may run ahead with an index
//! past the end and leave traces of what it read there in the cache. Every
//! table a guest indexes (domains, vCPUs, and ports and grant references to
//! come) goes through [`index`], which checks and then masks the index so
//! that even a mispredicted path reads in bounds.

/// `Some(i)` if `i < len`, with `i` forced to 0 on any path where the
/// comparison did not hold; `None` otherwise.
#[inline(always)]
pub fn index(i: usize, len: usize) -> Option<usize> {
    if i < len {
        // All ones when i < len, computed without a branch from the same
        // comparison, so a mispredicted branch above still masks to 0.
        let mask = 0usize.wrapping_sub(usize::from(core::hint::black_box(i) < len));
        Some(i & mask)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::index;

    #[test]
    fn in_bounds_and_out() {
        assert_eq!(index(0, 1), Some(0));
        assert_eq!(index(4, 5), Some(4));
        assert_eq!(index(5, 5), None);
        assert_eq!(index(usize::MAX, 5), None);
        assert_eq!(index(0, 0), None);
    }
}
