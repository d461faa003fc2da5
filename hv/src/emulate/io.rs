//! Port I/O for a PV guest, as Xen 4.17 allows it.
//!
//! Two checks, as on Xen:
//!
//! 1. The guest's own: the virtual IOPL must cover the guest's ring (the
//!    guest kernel counts as ring 1, or ring 0 with the
//!    `architectural_iopl` VM assist; guest user mode as ring 3), or the
//!    I/O bitmap the guest registered must clear every port accessed (the
//!    bitmap is read through the kernel's page tables; unreadable bytes
//!    deny). Otherwise the instruction is not emulated and the guest gets
//!    its #GP.
//! 2. The administrator's: only the hardware domain reaches real ports,
//!    and not those hv keeps. The denied ports are Xen's for dom0 — PIC
//!    0x20-0x21/0xa0-0xa1, PIT 0x40-0x43, 0x61, 0x92 (A20/INIT), 0xf0,
//!    PCI data 0xcfc-0xcff, the RTC/CMOS pair 0x70-0x71, dword access to
//!    0xcf8 — plus hv's own: COM1 0x3f8-0x3ff (hv's console),
//!    isa-debug-exit 0xf4 and the ACPI PM1a control port (hv's exits).
//!    Reads of a denied port give all ones and writes are dropped, except
//!    PCI configuration: a dword at 0xcf8 is kept per vCPU and 0xcfc-0xcff
//!    go to the real configuration space at that address (Xen does the
//!    same for its hardware domain, and also emulates the PIT and RTC
//!    ports, which hv does not yet; Xen's denial of the ACPI PM timer is
//!    not mirrored because hv does not know that port).

use hv::x86_decode::{Insn, Port, Seg};

use super::Step;
use crate::arch::x86_64::cpu;
use crate::arch::x86_64::entry::GuestRegs;
use crate::domain::Cur;
use crate::guest_mem;

/// `VMASST_TYPE_architectural_iopl`.
const VMASST_ARCHITECTURAL_IOPL: u64 = 1 << 4;
/// EFLAGS.DF.
const RFLAGS_DF: u64 = 1 << 10;
/// Iterations of a `rep ins/outs` per trap; the guest re-executes the
/// instruction for the rest, so a huge count cannot hold hv.
const REP_BATCH: u64 = 1024;

const PCI_CONFIG_ADDRESS: u32 = 0xcf8;

/// Whether the virtual IOPL covers the guest's current ring.
pub fn iopl_ok(d: &Cur<'_>) -> bool {
    let ring = if !d.vcpu.in_kernel {
        3
    } else if d.vm_assist & VMASST_ARCHITECTURAL_IOPL != 0 {
        0
    } else {
        1
    };
    ring <= (d.vcpu.traps.iopl >> 12) & 3
}

/// The guest's own permission: IOPL or its I/O bitmap.
fn guest_io_okay(d: &Cur<'_>, port: u32, bytes: u32) -> bool {
    if iopl_ok(d) {
        return true;
    }
    let st = &d.vcpu.priv_state;
    if port + bytes > st.iobmp_limit {
        return false;
    }
    let cr3 = d.vcpu.kernel_cr3;
    let va = st.iobmp.wrapping_add(u64::from(port >> 3));
    let mut x = [0xffu8; 2];
    for (i, b) in x.iter_mut().enumerate() {
        let mut one = [0u8; 1];
        if guest_mem::copy_from_guest(cr3, va.wrapping_add(i as u64), &mut one).is_err() {
            break;
        }
        *b = one[0];
    }
    let mask = u32::from(u16::from_le_bytes(x));
    let want = ((1u32 << bytes) - 1) << (port & 7);
    mask & want == 0
}

/// Ports the hardware domain may reach directly.
fn port_permitted(d: &Cur<'_>, port: u32) -> bool {
    if !d.dom.initial {
        return false;
    }
    let pm1a = u32::from(crate::shutdown::pm1a_control());
    if pm1a != 0 && (pm1a..=pm1a + 1).contains(&port) {
        return false;
    }
    !matches!(
        port,
        0x20..=0x21
            | 0xa0..=0xa1
            | 0x40..=0x43
            | 0x61
            | 0x70..=0x71
            | 0x92
            | 0xf0
            | 0xf4
            | 0x3f8..=0x3ff
            | 0xcfc..=0xcff
            | 0x1_0000..
    )
}

/// Whether the whole access goes straight to the hardware.
fn admin_io_okay(d: &Cur<'_>, port: u32, bytes: u32) -> bool {
    if port == PCI_CONFIG_ADDRESS && bytes == 4 {
        return false;
    }
    (port..port + bytes).all(|p| port_permitted(d, p))
}

fn hw_in(port: u32, size: u32) -> u32 {
    let Ok(p) = u16::try_from(port) else {
        return !0;
    };
    match size {
        1 => u32::from(cpu::inb(p)),
        2 => u32::from(cpu::inw(p)),
        _ => cpu::inl(p),
    }
}

fn hw_out(port: u32, size: u32, v: u32) {
    let Ok(p) = u16::try_from(port) else {
        return;
    };
    let b = v.to_le_bytes();
    match size {
        1 => cpu::outb(p, b[0]),
        2 => cpu::outw(p, u16::from_le_bytes([b[0], b[1]])),
        _ => cpu::outl(p, v),
    }
}

/// The size of a PCI data-port access at `port` with `bytes` left: never
/// past the dword, and 3 becomes 2.
fn pci_data_size(port: u32, bytes: u32) -> u32 {
    match bytes.min(4 - (port & 3)) {
        3 => 2,
        n => n,
    }
}

fn io_read(d: &Cur<'_>, port: u32, bytes: u32) -> u32 {
    if admin_io_okay(d, port, bytes) {
        return hw_in(port, bytes);
    }
    let (mut data, mut shift, mut port, mut bytes) = (0u32, 0u32, port, bytes);
    while bytes != 0 {
        let mut size = 1;
        let mut sub = !0u32;
        if port == PCI_CONFIG_ADDRESS && bytes == 4 {
            return d.vcpu.priv_state.pci_cf8;
        } else if port & !3 == 0xcfc {
            size = pci_data_size(port, bytes);
            if d.dom.initial {
                cpu::outl(0xcf8, d.vcpu.priv_state.pci_cf8);
                sub = hw_in(0xcfc + (port & 3), size);
            }
        } else if port_permitted(d, port) {
            if bytes > 1 && port & 1 == 0 && port_permitted(d, port + 1) {
                size = 2;
            }
            sub = hw_in(port, size);
        }
        let mask = if size >= 4 {
            !0
        } else {
            (1u32 << (size * 8)) - 1
        };
        data |= (sub & mask) << shift;
        shift += size * 8;
        port += size;
        bytes = bytes.saturating_sub(size);
    }
    data
}

fn io_write(d: &mut Cur<'_>, port: u32, bytes: u32, data: u32) {
    if admin_io_okay(d, port, bytes) {
        hw_out(port, bytes, data);
        return;
    }
    let (mut data, mut port, mut bytes) = (data, port, bytes);
    while bytes != 0 {
        let mut size = 1;
        if port == PCI_CONFIG_ADDRESS && bytes == 4 {
            d.vcpu.priv_state.pci_cf8 = data;
            return;
        } else if port & !3 == 0xcfc {
            size = pci_data_size(port, bytes);
            if d.dom.initial {
                cpu::outl(0xcf8, d.vcpu.priv_state.pci_cf8);
                hw_out(0xcfc + (port & 3), size, data);
            }
        } else if port_permitted(d, port) {
            if bytes > 1 && port & 1 == 0 && port_permitted(d, port + 1) {
                size = 2;
            }
            hw_out(port, size, data);
        }
        port += size;
        bytes = bytes.saturating_sub(size);
        data = data.checked_shr(size * 8).unwrap_or(0);
    }
}

fn size_mask(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    }
}

/// Executes `in`, `out`, `ins` or `outs`.
pub fn port_insn(d: &mut Cur<'_>, regs: &mut GuestRegs, insn: Insn) -> Step {
    let dx = u32::try_from(regs.rdx & 0xffff).unwrap_or(0);
    match insn {
        Insn::In { port, size } | Insn::Out { port, size } => {
            let p = match port {
                Port::Imm(p) => u32::from(p),
                Port::Dx => dx,
            };
            if !guest_io_okay(d, p, u32::from(size)) {
                return Step::Refuse;
            }
            if matches!(insn, Insn::In { .. }) {
                let v = u64::from(io_read(d, p, u32::from(size)));
                regs.rax = if size == 4 {
                    v
                } else {
                    (regs.rax & !size_mask(size)) | (v & size_mask(size))
                };
            } else {
                let v = u32::try_from(regs.rax & size_mask(size)).unwrap_or(0);
                io_write(d, p, u32::from(size), v);
            }
            Step::Next
        }
        Insn::Ins { size, rep, addr32 } => string_io(d, regs, dx, size, rep, addr32, None),
        Insn::Outs {
            size,
            rep,
            addr32,
            seg,
        } => string_io(d, regs, dx, size, rep, addr32, Some(seg)),
        _ => Step::Refuse,
    }
}

/// `ins` (`src` None: port to `es:[rdi]`) or `outs` (`src` the segment of
/// `[rsi]`, to the port), with or without `rep`.
fn string_io(
    d: &mut Cur<'_>,
    regs: &mut GuestRegs,
    port: u32,
    size: u8,
    rep: bool,
    addr32: bool,
    src: Option<Seg>,
) -> Step {
    let bytes = u32::from(size);
    if !guest_io_okay(d, port, bytes) {
        return Step::Refuse;
    }
    let amask = if addr32 { 0xffff_ffff } else { u64::MAX };
    let mut count = if rep { regs.rcx & amask } else { 1 };
    if count == 0 {
        return Step::Next;
    }
    // In 64-bit mode only fs and gs have a base.
    let base = match src {
        Some(Seg::Fs) => cpu::rdmsr(cpu::MSR_FS_BASE),
        Some(Seg::Gs) => cpu::rdmsr(cpu::MSR_GS_BASE),
        _ => 0,
    };
    let delta = u64::from(size);
    let down = regs.rflags & RFLAGS_DF != 0;
    let cr3 = d.vcpu.cr3;
    let len = usize::from(size);
    for _ in 0..REP_BATCH {
        let index = if src.is_some() { regs.rsi } else { regs.rdi };
        let va = base.wrapping_add(index & amask);
        if src.is_some() {
            let mut buf = [0u8; 4];
            let Some(chunk) = buf.get_mut(..len) else {
                return Step::Refuse;
            };
            // A fault here gives the guest #GP where Xen gives #PF.
            if guest_mem::copy_from_guest(cr3, va, chunk).is_err() {
                return Step::Refuse;
            }
            io_write(d, port, bytes, u32::from_le_bytes(buf));
        } else {
            let data = io_read(d, port, bytes).to_le_bytes();
            let Some(chunk) = data.get(..len) else {
                return Step::Refuse;
            };
            if guest_mem::copy_to_guest(cr3, va, chunk).is_err() {
                return Step::Refuse;
            }
        }
        let next = if down {
            index.wrapping_sub(delta)
        } else {
            index.wrapping_add(delta)
        } & amask;
        if src.is_some() {
            regs.rsi = next;
        } else {
            regs.rdi = next;
        }
        count -= 1;
        if rep {
            regs.rcx = count;
        }
        if count == 0 {
            return Step::Next;
        }
    }
    Step::Again
}
