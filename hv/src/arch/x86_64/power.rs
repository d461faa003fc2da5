//! Leaving the machine: ACPI poweroff, reset, and QEMU's isa-debug-exit.
//!
//! Under QEMU, `-device isa-debug-exit,iobase=0xf4,iosize=0x04` turns a write
//! of `v` to port 0xf4 into QEMU's exit status `(v << 1) | 1`, so every way hv
//! ends has its own status (see `crate::shutdown`); poweroff goes through ACPI
//! so that QEMU exits 0. On hardware without the device the write is ignored
//! and hv falls back to ACPI poweroff or a reset.

use super::cpu::{outb, outl, outw};

const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Asks QEMU to exit with status `(code << 1) | 1`; returns if there is no
/// isa-debug-exit device.
pub fn debug_exit(code: u32) {
    outl(DEBUG_EXIT_PORT, code);
}

/// Enters ACPI S5 by writing SLP_TYP | SLP_EN to the PM1a control block.
pub fn acpi_poweroff(pm1a_control_port: u16, slp_typ: u16) {
    outw(pm1a_control_port, (slp_typ << 10) | (1 << 13));
}

/// Resets the machine through the reset control register, then the keyboard
/// controller.
pub fn reset() {
    outb(0xcf9, 0x02);
    outb(0xcf9, 0x06);
    outb(0x64, 0xfe);
}
