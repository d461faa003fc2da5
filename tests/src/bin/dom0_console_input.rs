//! dom0 attaches the serial input to its domU's console: dom0's own
//! `main`, booted with `console_echo` as its module. xtask types a line
//! once the domU says it waits; the hypervisor hands it to dom0
//! (`VIRQ_CONSOLE`, `CONSOLEIO_read`), dom0 writes it into the domU's
//! console ring's `in` and notifies it, and the domU prints it back, on
//! hv and on Xen.
//!
//! @module: guest:console_echo
//! @serial-input: ECHO-READY hello from the serial line
//! @expect-result: none
//! @expect-line: domU1| console_echo: got hello from the serial line
//! @expect-line: dom0: domain 1 shut down (poweroff) and is destroyed
//! @reject-line: console_echo: no input
//! @covers: console_io.read
#![no_std]
#![no_main]

guest_abi::pv_guest!(dom0::main, name = "dom0_console_input");
