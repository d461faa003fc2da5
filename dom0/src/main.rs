//! The `dom0` binary: [`dom0::main`].
#![no_std]
#![no_main]

guest_abi::pv_guest!(dom0::main, name = "hv-dom0");
