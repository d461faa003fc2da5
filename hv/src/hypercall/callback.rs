//! Callback registration: `set_callbacks`, `callback_op` and `nmi_op`.
//!
//! A callback address must be canonical (`-EINVAL`). `set_callbacks`
//! registers event, failsafe and syscall together and, like Xen, ignores
//! the individual results (a bad address is silently not installed).
//! Only the NMI callback can be unregistered; the others give `-EINVAL`,
//! unknown types `-ENOSYS`. The NMI callback is entry 2 of the virtual IDT
//! (cs FLAT_KERNEL_CS, events masked), as on Xen, so `set_trap_table` and
//! `nmi_op` see each other's changes. The event callback receives event
//! upcalls (`traps::upcall`) and the `syscall` callback guest user mode's
//! `syscall`s; NMIs are delivered by later work.

use guest_abi::callback::{
    CallbackRegister, CallbackUnregister, CALLBACKF_MASK_EVENTS, CALLBACKOP_REGISTER,
    CALLBACKOP_UNREGISTER, CALLBACKTYPE_EVENT, CALLBACKTYPE_FAILSAFE, CALLBACKTYPE_NMI,
    CALLBACKTYPE_SYSCALL, CALLBACKTYPE_SYSCALL32, CALLBACKTYPE_SYSENTER,
};
use guest_abi::errno::Errno;
use guest_abi::nmi::{XennmiCallback, XENNMI_REGISTER_CALLBACK, XENNMI_UNREGISTER_CALLBACK};
use guest_abi::xen::TrapInfo;

use super::{read_arg, HcResult, Outcome};
use crate::arch::x86_64::gdt::RING3_CS64;
use crate::arch::x86_64::guest_state::is_canonical;
use crate::domain::{self, TrapState};

const VEC_NMI: usize = 2;
/// Trap entry flag: mask events on entry.
const TI_MASK_EVENTS: u8 = 4;

fn register(t: &mut TrapState, reg: &CallbackRegister) -> HcResult {
    if !is_canonical(reg.address) {
        return Err(Errno::EINVAL);
    }
    let masks = reg.flags & CALLBACKF_MASK_EVENTS != 0;
    match reg.type_ {
        CALLBACKTYPE_EVENT => t.event_callback = reg.address,
        CALLBACKTYPE_FAILSAFE => {
            t.failsafe_callback = reg.address;
            t.failsafe_masks_events = masks;
        }
        CALLBACKTYPE_SYSCALL => {
            t.syscall_callback = reg.address;
            t.syscall_masks_events = masks;
        }
        CALLBACKTYPE_SYSCALL32 => {
            t.syscall32_callback = reg.address;
            t.syscall32_masks_events = masks;
        }
        CALLBACKTYPE_SYSENTER => {
            t.sysenter_callback = reg.address;
            t.sysenter_masks_events = masks;
        }
        CALLBACKTYPE_NMI => return register_nmi(t, reg.address),
        _ => return Err(Errno::ENOSYS),
    }
    Ok(0)
}

fn register_nmi(t: &mut TrapState, address: u64) -> HcResult {
    if !is_canonical(address) {
        return Err(Errno::EINVAL);
    }
    t.table[VEC_NMI] = TrapInfo {
        vector: 2,
        flags: TI_MASK_EVENTS,
        cs: RING3_CS64,
        _pad: [0; 4],
        address,
    };
    Ok(0)
}

fn unregister_nmi(t: &mut TrapState) -> HcResult {
    t.table[VEC_NMI] = TrapInfo::default();
    Ok(0)
}

fn unregister(t: &mut TrapState, type_: u16) -> HcResult {
    match type_ {
        CALLBACKTYPE_EVENT
        | CALLBACKTYPE_FAILSAFE
        | CALLBACKTYPE_SYSCALL
        | CALLBACKTYPE_SYSCALL32
        | CALLBACKTYPE_SYSENTER => Err(Errno::EINVAL),
        CALLBACKTYPE_NMI => unregister_nmi(t),
        _ => Err(Errno::ENOSYS),
    }
}

fn with_traps(f: impl FnOnce(&mut TrapState) -> HcResult) -> HcResult {
    domain::with_current(|d| f(&mut d.vcpu.traps))
}

pub fn set_callbacks(event: u64, failsafe: u64, syscall: u64) -> Outcome {
    let _ = with_traps(|t| {
        for (type_, address) in [
            (CALLBACKTYPE_EVENT, event),
            (CALLBACKTYPE_FAILSAFE, failsafe),
            (CALLBACKTYPE_SYSCALL, syscall),
        ] {
            let reg = CallbackRegister {
                type_,
                address,
                ..CallbackRegister::default()
            };
            let _ = register(t, &reg);
        }
        Ok(0)
    });
    Outcome::Done(0)
}

pub fn callback_op(cmd: u32, arg: u64) -> Outcome {
    callback(cmd, arg).into()
}

fn callback(cmd: u32, arg: u64) -> HcResult {
    match cmd {
        CALLBACKOP_REGISTER => {
            let reg: CallbackRegister = read_arg(arg)?;
            with_traps(|t| register(t, &reg))
        }
        CALLBACKOP_UNREGISTER => {
            let unreg: CallbackUnregister = read_arg(arg)?;
            with_traps(|t| unregister(t, unreg.type_))
        }
        _ => Err(Errno::ENOSYS),
    }
}

pub fn nmi_op(cmd: u32, arg: u64) -> Outcome {
    nmi(cmd, arg).into()
}

fn nmi(cmd: u32, arg: u64) -> HcResult {
    match cmd {
        XENNMI_REGISTER_CALLBACK => {
            let cb: XennmiCallback = read_arg(arg)?;
            with_traps(|t| register_nmi(t, cb.handler_address))
        }
        XENNMI_UNREGISTER_CALLBACK => with_traps(unregister_nmi),
        _ => Err(Errno::ENOSYS),
    }
}
