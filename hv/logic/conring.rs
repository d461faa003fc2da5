//! hv's console ring: the last bytes hv printed, for `XEN_SYSCTL_readconsole`
//! (Xen's `conring`).
//!
//! Two free-running 32-bit indices, as Xen's: `prod` counts every byte ever
//! put, `cons` is the oldest one still held (at most [`SIZE`] behind `prod`:
//! a put that would overrun moves `cons` on, losing the oldest bytes). A
//! reader names where to start (`incremental`: an index it got back from an
//! earlier read) or reads from `cons`; it gets the bytes up to `prod`, at
//! most as many as its buffer holds, and the index after the last one it got.
//! `clear` moves `cons` to that index: what was read is not read again by a
//! reader that starts from `cons`.

/// Bytes the ring holds (Xen 4.17's default `conring_size`, 16 KiB).
pub const SIZE: usize = 16 * 1024;

const SIZE_U32: u32 = 16 * 1024;
const _: () = assert!(SIZE_U32 as usize == SIZE && SIZE.is_power_of_two());

/// The ring.
#[derive(Debug)]
pub struct ConRing {
    bytes: [u8; SIZE],
    prod: u32,
    cons: u32,
}

/// What one read took: the index to start from and how many bytes, in at
/// most two pieces of the ring ([`ConRing::piece`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub start: u32,
    pub len: u32,
}

impl Read {
    /// The index after the last byte read (`readconsole.index` out).
    pub fn end(self) -> u32 {
        self.start.wrapping_add(self.len)
    }
}

impl Default for ConRing {
    fn default() -> Self {
        Self::new()
    }
}

impl ConRing {
    pub const fn new() -> Self {
        Self {
            bytes: [0; SIZE],
            prod: 0,
            cons: 0,
        }
    }

    /// Appends `s`, dropping the oldest bytes beyond [`SIZE`].
    pub fn put(&mut self, s: &[u8]) {
        for &b in s {
            self.bytes[slot(self.prod)] = b;
            self.prod = self.prod.wrapping_add(1);
        }
        if self.prod.wrapping_sub(self.cons) > SIZE_U32 {
            self.cons = self.prod.wrapping_sub(SIZE_U32);
        }
    }

    /// The bytes a reader with room for `max` gets: from `index` if
    /// `incremental` and `index` lies in the held stretch (`cons`
    /// exclusive, `prod` inclusive: Xen's rule, so an index from before
    /// the oldest byte held starts at `cons`), else from `cons`.
    pub fn read(&self, incremental: bool, index: u32, max: u32) -> Read {
        let held = self.prod.wrapping_sub(self.cons);
        let from_cons = index.wrapping_sub(self.cons);
        let start = if incremental && from_cons > 0 && from_cons <= held {
            index
        } else {
            self.cons
        };
        let len = self.prod.wrapping_sub(start).min(max);
        Read { start, len }
    }

    /// Up to two slices holding `r`'s bytes in order, with their offsets
    /// in the reader's buffer.
    pub fn pieces(&self, r: Read) -> impl Iterator<Item = (u32, &[u8])> {
        let first = r.start & (SIZE_U32 - 1);
        let a = r.len.min(SIZE_U32 - first);
        let (first, len, a_at) = (first as usize, r.len as usize, a as usize);
        let one = (0u32, &self.bytes[first..first + a_at]);
        let two = (a, &self.bytes[..len - a_at]);
        core::iter::once(one).chain((r.len > a).then_some(two))
    }

    /// `clear` after a read that ended at `end`: the held stretch starts
    /// there (or at the oldest byte still held, if `end` is older).
    pub fn clear_to(&mut self, end: u32) {
        if self.prod.wrapping_sub(end) > SIZE_U32 {
            self.cons = self.prod.wrapping_sub(SIZE_U32);
        } else {
            self.cons = end;
        }
    }
}

fn slot(i: u32) -> usize {
    (i & (SIZE_U32 - 1)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(r: &ConRing, read: Read) -> Vec<u8> {
        let mut out = vec![0u8; read.len as usize];
        for (off, piece) in r.pieces(read) {
            out[off as usize..off as usize + piece.len()].copy_from_slice(piece);
        }
        out
    }

    #[test]
    fn reads_what_was_put_from_the_start() {
        let mut r = ConRing::new();
        r.put(b"hello\nworld\n");
        let read = r.read(false, 0, 100);
        assert_eq!(take(&r, read), b"hello\nworld\n");
        assert_eq!(read.end(), 12);
    }

    #[test]
    fn a_small_buffer_reads_in_steps_by_index() {
        let mut r = ConRing::new();
        r.put(b"abcdefghij");
        let first = r.read(false, 0, 4);
        assert_eq!(take(&r, first), b"abcd");
        let second = r.read(true, first.end(), 4);
        assert_eq!(take(&r, second), b"efgh");
        let third = r.read(true, second.end(), 4);
        assert_eq!(take(&r, third), b"ij");
        let none = r.read(true, third.end(), 4);
        assert_eq!(none.len, 0);
        assert_eq!(none.end(), 10);
    }

    #[test]
    fn an_index_outside_the_held_stretch_starts_at_the_oldest_byte() {
        let mut r = ConRing::new();
        r.put(b"abc");
        // Index equal to cons is outside (exclusive), so is one past prod.
        assert_eq!(r.read(true, 0, 10).start, 0);
        assert_eq!(r.read(true, 4, 10).start, 0);
        assert_eq!(r.read(true, 2, 10).start, 2);
        assert_eq!(r.read(true, 3, 10).len, 0);
    }

    #[test]
    fn overrun_drops_the_oldest_bytes_and_reads_wrap() {
        let mut r = ConRing::new();
        let data: Vec<u8> = (0..SIZE + 100)
            .map(|i| u8::try_from(i % 251).unwrap_or(0))
            .collect();
        r.put(&data);
        let read = r.read(false, 0, u32::MAX);
        assert_eq!(read.len as usize, SIZE);
        assert_eq!(take(&r, read), &data[100..]);
        assert_eq!(r.pieces(read).count(), 2);
    }

    #[test]
    fn clear_hides_what_was_read_and_keeps_what_came_after() {
        let mut r = ConRing::new();
        r.put(b"old\n");
        let read = r.read(false, 0, 100);
        r.put(b"new\n");
        r.clear_to(read.end());
        assert_eq!(take(&r, r.read(false, 0, 100)), b"new\n");
        r.clear_to(r.read(false, 0, 100).end());
        assert_eq!(r.read(false, 0, 100).len, 0);
    }

    #[test]
    fn indices_wrap_around_u32() {
        let mut r = ConRing::new();
        r.prod = u32::MAX - 2;
        r.cons = u32::MAX - 2;
        r.put(b"wrapping");
        let read = r.read(false, 0, 100);
        assert_eq!(take(&r, read), b"wrapping");
        assert_eq!(read.end(), 5);
        let tail = r.read(true, u32::MAX, 100);
        assert_eq!(take(&r, tail), b"apping");
    }
}
