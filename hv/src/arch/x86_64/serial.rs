//! The 16550 UART at COM1, polled: hv's console and the guests' `console_io`.

use super::cpu::{inb, outb};

const COM1: u16 = 0x3f8;

/// Programs COM1 for 115200 8n1, FIFOs on, interrupts off.
pub fn init() {
    outb(COM1 + 1, 0x00); // no interrupts
    outb(COM1 + 3, 0x80); // DLAB
    outb(COM1, 0x01); // divisor 1: 115200 baud
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // 8n1
    outb(COM1 + 2, 0xc7); // FIFO on, cleared, 14-byte threshold
    outb(COM1 + 4, 0x03); // DTR | RTS
}

/// Writes bytes, translating `\n` to `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            put(b'\r');
        }
        put(b);
    }
}

fn put(b: u8) {
    // Transmit holding register empty.
    while inb(COM1 + 5) & 0x20 == 0 {
        core::hint::spin_loop();
    }
    outb(COM1, b);
}

/// A byte COM1 has received, if any (polled: hv takes no UART interrupt).
pub fn read_byte() -> Option<u8> {
    // Line status: data ready.
    (inb(COM1 + 5) & 0x01 != 0).then(|| inb(COM1))
}
