//! `vcpu_op` sub-commands and their argument structs (`vcpu.h`).
//!
//! The runstate and time areas a guest registers are written by the
//! hypervisor while the guest may read them: the guest reads them through
//! volatile loads and the version/`XEN_RUNSTATE_UPDATE` protocol, not
//! through references.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// Set a down vCPU's initial context. Argument: `vcpu_guest_context`
/// ([`crate::xen::VcpuGuestContext`]).
pub const VCPUOP_INITIALISE: u32 = 0;
/// Start an initialised vCPU. No argument.
pub const VCPUOP_UP: u32 = 1;
/// Stop a vCPU. No argument.
pub const VCPUOP_DOWN: u32 = 2;
/// Whether a vCPU is up (returns 0 or 1). No argument.
pub const VCPUOP_IS_UP: u32 = 3;
/// Copy out the vCPU's runstate. Argument: [`VcpuRunstateInfo`].
pub const VCPUOP_GET_RUNSTATE_INFO: u32 = 4;
/// Keep a [`VcpuRunstateInfo`] at a guest address updated.
/// Argument: [`VcpuRegisterRunstateMemoryArea`].
pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u32 = 5;
/// Start a periodic `VIRQ_TIMER`. Argument: [`VcpuSetPeriodicTimer`].
pub const VCPUOP_SET_PERIODIC_TIMER: u32 = 6;
/// Stop the periodic timer. No argument.
pub const VCPUOP_STOP_PERIODIC_TIMER: u32 = 7;
/// Arm the single-shot timer. Argument: [`VcpuSetSingleshotTimer`].
pub const VCPUOP_SET_SINGLESHOT_TIMER: u32 = 8;
/// Cancel the single-shot timer. No argument.
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u32 = 9;
/// Move the vCPU's `vcpu_info` out of `shared_info`. Argument: [`VcpuRegisterVcpuInfo`].
pub const VCPUOP_REGISTER_VCPU_INFO: u32 = 10;
/// Send an NMI to a vCPU. No argument.
pub const VCPUOP_SEND_NMI: u32 = 11;
/// The physical CPU's APIC and ACPI ids (dom0). Argument: [`VcpuGetPhysid`].
pub const VCPUOP_GET_PHYSID: u32 = 12;
/// Keep a [`crate::xen::VcpuTimeInfo`] at a guest address updated.
/// Argument: [`VcpuRegisterTimeMemoryArea`].
pub const VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA: u32 = 13;

/// Runstate: running on a physical CPU.
pub const RUNSTATE_RUNNING: i32 = 0;
/// Runstate: ready to run, waiting for a CPU.
pub const RUNSTATE_RUNNABLE: i32 = 1;
/// Runstate: blocked (waiting for an event or paused).
pub const RUNSTATE_BLOCKED: i32 = 2;
/// Runstate: down (not runnable and not blocked).
pub const RUNSTATE_OFFLINE: i32 = 3;

/// Bit of `state_entry_time` set while the hypervisor updates the area
/// (with `VMASST_TYPE_runstate_update_flag`).
pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;

/// `VCPU_SSHOTTMR_future`: fail with `-ETIME` if the timeout is already
/// past.
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1 << 0;

/// `vcpu_runstate_info` (48 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuRunstateInfo {
    /// `RUNSTATE_*`.
    pub state: i32,
    /// Padding.
    pub _pad: u32,
    /// System time when `state` was entered (maybe with `XEN_RUNSTATE_UPDATE`).
    pub state_entry_time: u64,
    /// Nanoseconds spent in each state.
    pub time: [u64; 4],
}
assert_layout!(VcpuRunstateInfo, 48; state = 0, state_entry_time = 8, time = 16);

/// `vcpu_register_runstate_memory_area`: the union `addr` is a guest
/// virtual address for PV guests.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuRegisterRunstateMemoryArea {
    /// Guest address of the [`VcpuRunstateInfo`] to keep updated.
    pub addr: u64,
}
assert_layout!(VcpuRegisterRunstateMemoryArea, 8; addr = 0);

/// `vcpu_set_periodic_timer`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuSetPeriodicTimer {
    /// Period in nanoseconds.
    pub period_ns: u64,
}
assert_layout!(VcpuSetPeriodicTimer, 8; period_ns = 0);

/// `vcpu_set_singleshot_timer`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuSetSingleshotTimer {
    /// Absolute system time of the timeout.
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*`.
    pub flags: u32,
    /// Padding.
    pub _pad: u32,
}
assert_layout!(VcpuSetSingleshotTimer, 16; timeout_abs_ns = 0, flags = 8);

/// `vcpu_register_vcpu_info`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuRegisterVcpuInfo {
    /// The guest frame to hold the `vcpu_info`.
    pub mfn: u64,
    /// Its offset in the frame (the whole struct must fit in the frame).
    pub offset: u32,
    /// Reserved, must be 0.
    pub rsvd: u32,
}
assert_layout!(VcpuRegisterVcpuInfo, 16; mfn = 0, offset = 8, rsvd = 12);

/// `vcpu_get_physid`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuGetPhysid {
    /// APIC id (low 32 bits) and ACPI id (high 32 bits).
    pub phys_id: u64,
}
assert_layout!(VcpuGetPhysid, 8; phys_id = 0);

impl VcpuGetPhysid {
    /// The x86 APIC id.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the APIC id is the low half"
    )]
    pub const fn apic_id(&self) -> u32 {
        self.phys_id as u32
    }

    /// The ACPI processor id.
    pub const fn acpi_id(&self) -> u32 {
        (self.phys_id >> 32) as u32
    }
}

/// `vcpu_register_time_memory_area`: the union `addr` is a guest virtual
/// address for PV guests.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuRegisterTimeMemoryArea {
    /// Guest address of the `vcpu_time_info` to keep updated.
    pub addr: u64,
}
assert_layout!(VcpuRegisterTimeMemoryArea, 8; addr = 0);
