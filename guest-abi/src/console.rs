//! `console_io` commands and the line buffer behind `print!`.
//!
//! [`LineBuffer`] is plain logic (tested on the host): it collects output
//! and hands it to a sink one line at a time, or when it fills up, so each
//! `console_io` hypercall carries whole lines where it can.

/// `console_io` command: write `count` bytes.
pub const CONSOLEIO_WRITE: u32 = 0;
/// `console_io` command: read up to `count` bytes (privileged).
pub const CONSOLEIO_READ: u32 = 1;

/// A fixed buffer that flushes to a sink at each newline and when full.
#[derive(Debug)]
pub struct LineBuffer<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for LineBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineBuffer<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// Appends `bytes`, calling `sink` with each completed line (newline
    /// included) and with the contents whenever the buffer fills.
    pub fn push(&mut self, bytes: &[u8], sink: &mut impl FnMut(&[u8])) {
        for &b in bytes {
            if self.len == N {
                self.flush(sink);
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
            if b == b'\n' {
                self.flush(sink);
            }
        }
    }

    /// Hands whatever is buffered to `sink` and empties the buffer.
    pub fn flush(&mut self, sink: &mut impl FnMut(&[u8])) {
        if self.len > 0 {
            sink(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn flushes_lines_and_full_buffers() {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut sink = |b: &[u8]| out.push(b.to_vec());
        let mut lb = LineBuffer::<4>::new();
        lb.push(b"ab\ncdefg", &mut sink);
        lb.flush(&mut sink);
        lb.flush(&mut sink);
        assert_eq!(out, [&b"ab\n"[..], b"cdef", b"g"]);
    }
}
