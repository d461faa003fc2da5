//! The project's dom0 (its `main`) with a domU whose console ring lies
//! (`console_hostile`: its producer index 2^30 bytes past the consumer):
//! dom0 drops what the lie claims, says so on that domU's lines, goes on
//! relaying its later output, destroys it at poweroff and powers off, on
//! hv and on real Xen 4.17.
//!
//! @module: guest:console_hostile
//! @expect-result: none
//! @expect-line: domU1| console_hostile: before the lie
//! @expect-line: domU1| <console ring index out of range: output dropped>
//! @expect-line: domU1| console_hostile: still here
//! @expect-line: dom0: domain 1 shut down (poweroff) and is destroyed
#![no_std]
#![no_main]

guest_abi::pv_guest!(dom0::main, name = "dom0_hostile_console");
