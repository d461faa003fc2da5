//! Test helpers shared by the modules' host tests.

extern crate std;

use core::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::vec::Vec;

use std::collections::BTreeMap;

use crate::blkif::{Disk, Grants, IoError, Piece, MAX_INDIRECT_SEGMENTS, SECTOR};
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

pub struct MemDisk {
    pub bytes: Vec<u8>,
    pub ro: bool,
    pub flushed: u32,
}

impl MemDisk {
    pub fn new(sectors: u64, ro: bool) -> Self {
        let bytes = (0..sectors * SECTOR).map(|i| (i % 253) as u8).collect();
        Self {
            bytes,
            ro,
            flushed: 0,
        }
    }
}

impl Disk for MemDisk {
    fn sectors(&self) -> u64 {
        self.bytes.len() as u64 / SECTOR
    }
    fn read_only(&self) -> bool {
        self.ro
    }
    fn read(&mut self, offset: u64, out: &mut [u8]) -> Result<(), IoError> {
        let at = usize::try_from(offset).map_err(|_| IoError)?;
        out.copy_from_slice(self.bytes.get(at..at + out.len()).ok_or(IoError)?);
        Ok(())
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), IoError> {
        let at = usize::try_from(offset).map_err(|_| IoError)?;
        self.bytes
            .get_mut(at..at + data.len())
            .ok_or(IoError)?
            .copy_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.flushed += 1;
        Ok(())
    }
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), IoError> {
        let at = usize::try_from(offset).map_err(|_| IoError)?;
        let n = usize::try_from(len).map_err(|_| IoError)?;
        self.bytes.get_mut(at..at + n).ok_or(IoError)?.fill(0);
        Ok(())
    }
}

/// Granted pages by reference; a reference not granted fails. The
/// second field is the back end's staging pages, and how many batches
/// of copies moved them.
#[derive(Default)]
pub struct Pages(pub BTreeMap<u32, Vec<u8>>, pub Staging);

#[derive(Default)]
pub struct Staging {
    pub pages: Vec<[u8; 4096]>,
    pub batches: u32,
}

impl Grants for Pages {
    fn copy_from(&mut self, gref: u32, offset: u16, out: &mut [u8]) -> Result<(), IoError> {
        let p = self.0.get(&gref).ok_or(IoError)?;
        let at = usize::from(offset);
        out.copy_from_slice(p.get(at..at + out.len()).ok_or(IoError)?);
        Ok(())
    }
    fn copy_to(&mut self, gref: u32, offset: u16, data: &[u8]) -> Result<(), IoError> {
        let p = self.0.get_mut(&gref).ok_or(IoError)?;
        let at = usize::from(offset);
        p.get_mut(at..at + data.len())
            .ok_or(IoError)?
            .copy_from_slice(data);
        Ok(())
    }
    fn gather(&mut self, pieces: &[Piece]) -> Result<(), IoError> {
        self.1.batches += 1;
        for (i, p) in pieces.iter().enumerate() {
            let (at, n) = (usize::from(p.offset), usize::from(p.len));
            let mut bytes = std::vec![0; n];
            self.copy_from(p.gref, p.offset, &mut bytes)?;
            self.staging(i).ok_or(IoError)?[at..at + n].copy_from_slice(&bytes);
        }
        Ok(())
    }
    fn scatter(&mut self, pieces: &[Piece]) -> Result<(), IoError> {
        self.1.batches += 1;
        for (i, p) in pieces.iter().enumerate() {
            let (at, n) = (usize::from(p.offset), usize::from(p.len));
            let bytes = self
                .staging(i)
                .ok_or(IoError)?
                .get(at..at + n)
                .ok_or(IoError)?
                .to_vec();
            self.copy_to(p.gref, p.offset, &bytes)?;
        }
        Ok(())
    }
    fn staging(&mut self, i: usize) -> Option<&mut [u8; 4096]> {
        if i >= MAX_INDIRECT_SEGMENTS {
            return None;
        }
        if self.1.pages.len() <= i {
            self.1.pages.resize(i + 1, [0; 4096]);
        }
        self.1.pages.get_mut(i)
    }
}
