//! What the loader handed over: memory map, modules, command line, RSDP.
//!
//! Two loaders are understood: QEMU's PVH entry (`hvm_start_info`, magic
//! "xEn3") and multiboot2 (GRUB). Both are read before hv has a heap, so the
//! result lives in fixed-capacity containers; everything is copied out of
//! loader memory, which hv may reuse afterwards except for the module data
//! itself (reserved until the domain builder has consumed it).

use heapless::{String, Vec};

use crate::arch::x86_64::boot::MULTIBOOT2_BOOTLOADER_MAGIC;
use crate::mm::frame_access as phys;

const PVH_MAGIC: u32 = 0x336e_c578;
const E820_RAM: u32 = 1;

/// A boot module: physical location and its command line.
#[derive(Debug, Clone)]
pub struct Module {
    pub paddr: u64,
    pub len: u64,
    pub cmdline: String<256>,
}

/// Everything hv keeps from the loader.
#[derive(Debug)]
pub struct BootInfo {
    pub loader: &'static str,
    /// RAM ranges `[start, end)` in bytes.
    pub ram: Vec<(u64, u64), 64>,
    /// The firmware's whole memory map: (address, size, E820 type).
    pub e820: Vec<(u64, u64, u32), 128>,
    pub modules: Vec<Module, 8>,
    pub cmdline: String<1024>,
    pub rsdp: Option<u64>,
}

/// Why the loader's data could not be used.
#[derive(Debug, Clone, Copy)]
pub enum BootInfoError {
    UnknownLoader { magic: u32 },
    Unreadable(u64),
    NoMemoryMap,
    TooMany(&'static str),
}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownLoader { magic } => write!(
                f,
                "unknown loader (eax {magic:#x}, and no hvm_start_info at ebx): boot hv through PVH (QEMU -kernel) or multiboot2 (GRUB)"
            ),
            Self::Unreadable(a) => write!(f, "loader data at {a:#x} is outside the first 4 GiB"),
            Self::NoMemoryMap => write!(f, "the loader gave no memory map"),
            Self::TooMany(what) => write!(f, "too many {what}"),
        }
    }
}

impl From<phys::OutOfRange> for BootInfoError {
    fn from(_: phys::OutOfRange) -> Self {
        Self::Unreadable(0)
    }
}

fn rd32(paddr: u64) -> Result<u32, BootInfoError> {
    let mut b = [0u8; 4];
    phys::read(paddr, &mut b).map_err(|_| BootInfoError::Unreadable(paddr))?;
    Ok(u32::from_le_bytes(b))
}

fn rd64(paddr: u64) -> Result<u64, BootInfoError> {
    let mut b = [0u8; 8];
    phys::read(paddr, &mut b).map_err(|_| BootInfoError::Unreadable(paddr))?;
    Ok(u64::from_le_bytes(b))
}

/// Reads a NUL-terminated string of at most `N` bytes (longer ones are cut;
/// bytes that are not UTF-8 become `?`).
fn rd_cstr<const N: usize>(paddr: u64) -> Result<String<N>, BootInfoError> {
    let mut s = String::new();
    if paddr == 0 {
        return Ok(s);
    }
    for i in 0..N as u64 {
        let mut b = [0u8; 1];
        phys::read(paddr + i, &mut b).map_err(|_| BootInfoError::Unreadable(paddr))?;
        if b[0] == 0 {
            break;
        }
        let c = if b[0].is_ascii() {
            char::from(b[0])
        } else {
            '?'
        };
        if s.push(c).is_err() {
            break;
        }
    }
    Ok(s)
}

/// Parses the loader's information given the entry registers.
pub fn parse(magic: u32, info: u32) -> Result<BootInfo, BootInfoError> {
    let info = u64::from(info);
    if magic == MULTIBOOT2_BOOTLOADER_MAGIC {
        parse_multiboot2(info)
    } else if rd32(info)? == PVH_MAGIC {
        parse_pvh(info)
    } else {
        Err(BootInfoError::UnknownLoader { magic })
    }
}

fn parse_pvh(si: u64) -> Result<BootInfo, BootInfoError> {
    let version = rd32(si + 4)?;
    let nr_modules = rd32(si + 12)?;
    let modlist = rd64(si + 16)?;
    let cmdline = rd_cstr(rd64(si + 24)?)?;
    let rsdp = rd64(si + 32)?;
    let mut bi = BootInfo {
        loader: "PVH",
        ram: Vec::new(),
        e820: Vec::new(),
        modules: Vec::new(),
        cmdline,
        rsdp: (rsdp != 0).then_some(rsdp),
    };
    if version < 1 {
        return Err(BootInfoError::NoMemoryMap);
    }
    let memmap = rd64(si + 40)?;
    let entries = rd32(si + 48)?;
    for i in 0..u64::from(entries) {
        let e = memmap + i * 24;
        let (addr, size, ty) = (rd64(e)?, rd64(e + 8)?, rd32(e + 16)?);
        bi.e820
            .push((addr, size, ty))
            .map_err(|_| BootInfoError::TooMany("memory map entries"))?;
        if ty == E820_RAM {
            let end = addr.checked_add(size).ok_or(BootInfoError::Unreadable(e))?;
            bi.ram
                .push((addr, end))
                .map_err(|_| BootInfoError::TooMany("memory ranges"))?;
        }
    }
    for i in 0..u64::from(nr_modules) {
        let m = modlist + i * 32;
        let module = Module {
            paddr: rd64(m)?,
            len: rd64(m + 8)?,
            cmdline: rd_cstr(rd64(m + 16)?)?,
        };
        bi.modules
            .push(module)
            .map_err(|_| BootInfoError::TooMany("modules"))?;
    }
    if bi.ram.is_empty() {
        return Err(BootInfoError::NoMemoryMap);
    }
    Ok(bi)
}

fn parse_multiboot2(mbi: u64) -> Result<BootInfo, BootInfoError> {
    let total = u64::from(rd32(mbi)?);
    let mut bi = BootInfo {
        loader: "multiboot2",
        ram: Vec::new(),
        e820: Vec::new(),
        modules: Vec::new(),
        cmdline: String::new(),
        rsdp: None,
    };
    let mut tag = mbi + 8;
    let end = mbi + total;
    while tag + 8 <= end {
        let (ty, size) = (rd32(tag)?, u64::from(rd32(tag + 4)?));
        if ty == 0 || size < 8 {
            break;
        }
        match ty {
            1 => bi.cmdline = rd_cstr(tag + 8)?,
            3 => {
                let start = u64::from(rd32(tag + 8)?);
                let stop = u64::from(rd32(tag + 12)?);
                let module = Module {
                    paddr: start,
                    len: stop.saturating_sub(start),
                    cmdline: rd_cstr(tag + 16)?,
                };
                bi.modules
                    .push(module)
                    .map_err(|_| BootInfoError::TooMany("modules"))?;
            }
            6 => {
                let entry_size = u64::from(rd32(tag + 8)?).max(24);
                let mut e = tag + 16;
                while e + 24 <= tag + size {
                    let (addr, len, ty) = (rd64(e)?, rd64(e + 8)?, rd32(e + 16)?);
                    bi.e820
                        .push((addr, len, ty))
                        .map_err(|_| BootInfoError::TooMany("memory map entries"))?;
                    if ty == E820_RAM {
                        let stop = addr.checked_add(len).ok_or(BootInfoError::Unreadable(e))?;
                        bi.ram
                            .push((addr, stop))
                            .map_err(|_| BootInfoError::TooMany("memory ranges"))?;
                    }
                    e += entry_size;
                }
            }
            // ACPI 1.0 / 2.0 RSDP copies: the table itself starts after the tag header.
            14 | 15 if bi.rsdp.is_none() || ty == 15 => bi.rsdp = Some(tag + 8),
            _ => {}
        }
        tag += size.next_multiple_of(8);
    }
    if bi.ram.is_empty() {
        return Err(BootInfoError::NoMemoryMap);
    }
    Ok(bi)
}
