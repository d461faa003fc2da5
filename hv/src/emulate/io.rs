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
//!    same for its hardware domain); the RTC pair is mediated for the
//!    hardware domain as on Xen: 0x70 latches an index (per vCPU in hv,
//!    per domain in Xen) that 0x70 reads back, and 0x71 reaches the RTC
//!    register at it. Xen also emulates the PIT ports, which hv does not
//!    yet; Xen's denial of the ACPI PM timer is
//!    not mirrored because hv does not know that port).
//!
//! No lock is held across a guest copy: the bitmap and the string
//! instructions' data are copied with the vCPU unlocked, and each port
//! access locks it only for itself (it may read or set the vCPU's 0xcf8).

use hv::x86_decode::{Insn, Port, Seg};

use super::Step;
use crate::arch::x86_64::cpu;
use crate::arch::x86_64::entry::GuestRegs;
use crate::domain::{self, Cur};
use crate::guest_mem::{Fault, GuestMemory, GuestPtr, GuestSlice, Tables};

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

/// The guest's own permission: IOPL or its I/O bitmap. Reads the bitmap
/// with the vCPU unlocked.
fn guest_io_okay(port: u32, bytes: u32) -> bool {
    let (iopl, iobmp, limit, cr3) = domain::with_current(|d| {
        let st = &d.vcpu.priv_state;
        (iopl_ok(d), st.iobmp, st.iobmp_limit, d.vcpu.kernel_cr3)
    });
    if iopl {
        return true;
    }
    if port + bytes > limit {
        return false;
    }
    // The two bitmap bytes covering the ports, read one at a time as Xen
    // does: a byte that cannot be read denies its ports.
    let bitmap = GuestSlice::<u8>::per_element(iobmp.wrapping_add(u64::from(port >> 3)), 2);
    let mut x = [0xffu8; 2];
    for (i, b) in (0..).zip(x.iter_mut()) {
        match bitmap.get(&Tables(cr3), i) {
            Ok(v) => *b = v,
            Err(Fault) => break,
        }
    }
    // Port `p` is bit `p % 8` of byte `p / 8`.
    (port..port + bytes).all(|p| {
        let byte = usize::try_from((p >> 3) - (port >> 3)).ok();
        byte.and_then(|i| x.get(i))
            .is_some_and(|b| b & (1 << (p & 7)) == 0)
    })
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
    match size {
        1 => cpu::outb(p, u8::try_from(v & 0xff).unwrap_or(0)),
        2 => cpu::outw(p, u16::try_from(v & 0xffff).unwrap_or(0)),
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
        } else if is_cmos_io(d, port) {
            sub = cmos_read(d, port);
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
        } else if is_cmos_io(d, port) {
            cmos_write(d, port, u8::try_from(data & 0xff).unwrap_or(0));
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

const RTC_INDEX: u32 = 0x70;
const RTC_DATA: u32 = 0x71;

/// Serialises the RTC's index/data pair between CPUs.
static RTC_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// The RTC pair the hardware domain reaches through hv (Xen's
/// `is_cmos_io`), byte by byte.
fn is_cmos_io(d: &Cur<'_>, port: u32) -> bool {
    d.dom.initial && (port == RTC_INDEX || port == RTC_DATA)
}

/// 0x70 gives the latched index back; 0x71 reads the RTC register at it
/// (the index written to the hardware without the NMI-mask bit).
fn cmos_read(d: &Cur<'_>, port: u32) -> u32 {
    let idx = d.vcpu.priv_state.cmos_idx;
    if port == RTC_INDEX {
        return u32::from(idx);
    }
    let _held = RTC_LOCK.lock();
    cpu::outb(0x70, idx & 0x7f);
    u32::from(cpu::inb(0x71))
}

/// 0x70 latches the index; 0x71 writes the RTC register at it.
fn cmos_write(d: &mut Cur<'_>, port: u32, v: u8) {
    if port == RTC_INDEX {
        d.vcpu.priv_state.cmos_idx = v;
        return;
    }
    let idx = d.vcpu.priv_state.cmos_idx;
    let _held = RTC_LOCK.lock();
    cpu::outb(0x70, idx & 0x7f);
    cpu::outb(0x71, v);
}

fn size_mask(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    }
}

/// Executes `in`, `out`, `ins` or `outs`, locking the vCPU only around
/// each port access.
pub fn port_insn(regs: &mut GuestRegs, insn: Insn) -> Step {
    let dx = u32::try_from(regs.rdx & 0xffff).unwrap_or(0);
    match insn {
        Insn::In { port, size } | Insn::Out { port, size } => {
            let p = match port {
                Port::Imm(p) => u32::from(p),
                Port::Dx => dx,
            };
            if !guest_io_okay(p, u32::from(size)) {
                return Step::Refuse;
            }
            if matches!(insn, Insn::In { .. }) {
                let v = u64::from(domain::with_current(|d| io_read(d, p, u32::from(size))));
                regs.rax = if size == 4 {
                    v
                } else {
                    (regs.rax & !size_mask(size)) | (v & size_mask(size))
                };
            } else {
                let v = u32::try_from(regs.rax & size_mask(size)).unwrap_or(0);
                domain::with_current(|d| io_write(d, p, u32::from(size), v));
            }
            Step::Next
        }
        Insn::Ins { size, rep, addr32 } => string_io(regs, dx, size, rep, addr32, None),
        Insn::Outs {
            size,
            rep,
            addr32,
            seg,
        } => string_io(regs, dx, size, rep, addr32, Some(seg)),
        _ => Step::Refuse,
    }
}

/// Copies one port-sized (1, 2 or 4 bytes) value in from the guest.
fn read_data(mem: &impl GuestMemory, va: u64, size: u8) -> Result<u32, Fault> {
    Ok(match size {
        1 => u32::from(GuestPtr::<u8>::new(va)?.read(mem)?),
        2 => u32::from(GuestPtr::<u16>::new(va)?.read(mem)?),
        _ => GuestPtr::<u32>::new(va)?.read(mem)?,
    })
}

/// Copies the low `size` (1, 2 or 4) bytes of `v` out to the guest.
fn write_data(mem: &impl GuestMemory, va: u64, size: u8, v: u32) -> Result<(), Fault> {
    match size {
        1 => GuestPtr::<u8>::new(va)?.write(mem, &u8::try_from(v & 0xff).unwrap_or(0)),
        2 => GuestPtr::<u16>::new(va)?.write(mem, &u16::try_from(v & 0xffff).unwrap_or(0)),
        _ => GuestPtr::<u32>::new(va)?.write(mem, &v),
    }
}

/// `ins` (`src` None: port to `es:[rdi]`) or `outs` (`src` the segment of
/// `[rsi]`, to the port), with or without `rep`.
fn string_io(
    regs: &mut GuestRegs,
    port: u32,
    size: u8,
    rep: bool,
    addr32: bool,
    src: Option<Seg>,
) -> Step {
    let bytes = u32::from(size);
    if !guest_io_okay(port, bytes) {
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
    let mem = Tables(domain::with_current(|d| d.vcpu.cr3));
    for _ in 0..REP_BATCH {
        let index = if src.is_some() { regs.rsi } else { regs.rdi };
        let va = base.wrapping_add(index & amask);
        if src.is_some() {
            // A fault here gives the guest #GP where Xen gives #PF.
            let Ok(data) = read_data(&mem, va, size) else {
                return Step::Refuse;
            };
            domain::with_current(|d| io_write(d, port, bytes, data));
        } else {
            let data = domain::with_current(|d| io_read(d, port, bytes));
            if write_data(&mem, va, size, data).is_err() {
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
