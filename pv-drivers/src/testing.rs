//! Test helpers shared by the modules' host tests.

extern crate std;

use core::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::vec::Vec;

use crate::ring::SharedRing;

/// A shared area in host memory: 32-bit words, each byte reached through
/// an atomic read-modify-write of its word.
pub struct Area(Vec<AtomicU32>);

impl Area {
    pub fn new(bytes: usize) -> Self {
        Self((0..bytes.div_ceil(4)).map(|_| AtomicU32::new(0)).collect())
    }
}

impl SharedRing for Area {
    fn size(&self) -> usize {
        self.0.len() * 4
    }
    fn load(&self, offset: usize) -> u32 {
        self.0[offset / 4].load(SeqCst)
    }
    fn store(&self, offset: usize, value: u32) {
        self.0[offset / 4].store(value, SeqCst);
    }
    fn read(&self, offset: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            let at = offset + i;
            *b = self.0[at / 4].load(SeqCst).to_le_bytes()[at % 4];
        }
    }
    fn write(&self, offset: usize, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let at = offset + i;
            let _ = self.0[at / 4].fetch_update(SeqCst, SeqCst, |w| {
                let mut bytes = w.to_le_bytes();
                bytes[at % 4] = b;
                Some(u32::from_le_bytes(bytes))
            });
        }
    }
    fn fence(&self) {
        core::sync::atomic::fence(SeqCst);
    }
}
