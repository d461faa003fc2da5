//! `physdev_op` sub-commands and the argument structs a PV dom0 uses
//! (`physdev.h`): physical IRQs, I/O privilege, PCI device reporting.
//!
//! Everything here is privileged except `set_iopl`/`set_iobitmap` and the
//! EOI calls, which any PV domain with I/O rights uses.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// Notify the end of an interrupt. Argument: [`PhysdevEoi`].
pub const PHYSDEVOP_EOI: u32 = 12;
/// Register the PIRQ EOI bitmap frame (v1 semantics). Argument: [`PhysdevPirqEoiGmfn`].
pub const PHYSDEVOP_PIRQ_EOI_GMFN_V1: u32 = 17;
/// Register the PIRQ EOI bitmap frame (v2: PIRQs start unmasked). Argument: [`PhysdevPirqEoiGmfn`].
pub const PHYSDEVOP_PIRQ_EOI_GMFN_V2: u32 = 28;
/// The EOI-bitmap call of this interface version.
pub const PHYSDEVOP_PIRQ_EOI_GMFN: u32 = PHYSDEVOP_PIRQ_EOI_GMFN_V2;
/// Query whether an IRQ needs EOI. Argument: [`PhysdevIrqStatusQuery`].
pub const PHYSDEVOP_IRQ_STATUS_QUERY: u32 = 5;
/// Set the virtual IOPL. Argument: [`PhysdevSetIopl`].
pub const PHYSDEVOP_SET_IOPL: u32 = 6;
/// Set the I/O port bitmap. Argument: [`PhysdevSetIobitmap`].
pub const PHYSDEVOP_SET_IOBITMAP: u32 = 7;
/// Read an I/O APIC register. Argument: [`PhysdevApic`].
pub const PHYSDEVOP_APIC_READ: u32 = 8;
/// Write an I/O APIC register. Argument: [`PhysdevApic`].
pub const PHYSDEVOP_APIC_WRITE: u32 = 9;
/// Allocate a vector for an IRQ. Argument: [`PhysdevIrq`].
pub const PHYSDEVOP_ALLOC_IRQ_VECTOR: u32 = 10;
/// Free an IRQ's vector. Argument: [`PhysdevIrq`].
pub const PHYSDEVOP_FREE_IRQ_VECTOR: u32 = 11;
/// Map a GSI or MSI to a PIRQ. Argument: [`PhysdevMapPirq`].
pub const PHYSDEVOP_MAP_PIRQ: u32 = 13;
/// Unmap a PIRQ. Argument: [`PhysdevUnmapPirq`].
pub const PHYSDEVOP_UNMAP_PIRQ: u32 = 14;
/// Report a PCI device (segment 0). Argument: [`PhysdevManagePci`].
pub const PHYSDEVOP_MANAGE_PCI_ADD: u32 = 15;
/// Withdraw a PCI device (segment 0). Argument: [`PhysdevManagePci`].
pub const PHYSDEVOP_MANAGE_PCI_REMOVE: u32 = 16;
/// Restore a device's MSI state after resume. Argument: [`PhysdevRestoreMsi`].
pub const PHYSDEVOP_RESTORE_MSI: u32 = 19;
/// Report a PCI device with extended/virtual function info. Argument: [`PhysdevManagePciExt`].
pub const PHYSDEVOP_MANAGE_PCI_ADD_EXT: u32 = 20;
/// Configure a GSI's trigger and polarity. Argument: [`PhysdevSetupGsi`].
pub const PHYSDEVOP_SETUP_GSI: u32 = 21;
/// Allocate a free PIRQ. Argument: [`PhysdevGetFreePirq`].
pub const PHYSDEVOP_GET_FREE_PIRQ: u32 = 23;
/// Report an MMCONFIG area as reserved. Argument: [`PhysdevPciMmcfgReserved`].
pub const PHYSDEVOP_PCI_MMCFG_RESERVED: u32 = 24;
/// Report a PCI device in any segment. Argument: [`PhysdevPciDeviceAdd`].
pub const PHYSDEVOP_PCI_DEVICE_ADD: u32 = 25;
/// Withdraw a PCI device. Argument: [`PhysdevPciDevice`].
pub const PHYSDEVOP_PCI_DEVICE_REMOVE: u32 = 26;
/// Restore MSI state, any segment. Argument: [`PhysdevPciDevice`].
pub const PHYSDEVOP_RESTORE_MSI_EXT: u32 = 27;
/// USB debug-port reset handshake. Argument: [`PhysdevDbgpOp`].
pub const PHYSDEVOP_DBGP_OP: u32 = 29;
/// Prepare a device's MSI-X table. Argument: [`PhysdevPciDevice`].
pub const PHYSDEVOP_PREPARE_MSIX: u32 = 30;
/// Release a device's MSI-X table. Argument: [`PhysdevPciDevice`].
pub const PHYSDEVOP_RELEASE_MSIX: u32 = 31;
/// Old name of the "needs EOI" query flag.
pub const PHYSDEVOP_IRQ_UNMASK_NOTIFY: u32 = 4;

/// `irq_status_query.flags`: the IRQ needs `PHYSDEVOP_eoi`.
pub const XENIRQSTAT_NEEDS_EOI: u32 = 1 << 0;
/// `irq_status_query.flags`: the IRQ is shared with other domains.
pub const XENIRQSTAT_SHARED: u32 = 1 << 1;

/// `map_pirq.type`: MSI.
pub const MAP_PIRQ_TYPE_MSI: i32 = 0;
/// `map_pirq.type`: GSI.
pub const MAP_PIRQ_TYPE_GSI: i32 = 1;
/// `map_pirq.type`: unknown.
pub const MAP_PIRQ_TYPE_UNKNOWN: i32 = 2;
/// `map_pirq.type`: MSI, with the segment in the high bits of `bus`.
pub const MAP_PIRQ_TYPE_MSI_SEG: i32 = 3;
/// `map_pirq.type`: multi-vector MSI.
pub const MAP_PIRQ_TYPE_MULTI_MSI: i32 = 4;

/// `pci_mmcfg_reserved.flags`: the area is reserved in the E820 map.
pub const XEN_PCI_MMCFG_RESERVED: u32 = 1;
/// `pci_device_add.flags`: an extended function.
pub const XEN_PCI_DEV_EXTFN: u32 = 1;
/// `pci_device_add.flags`: a virtual function (`physfn` is its parent).
pub const XEN_PCI_DEV_VIRTFN: u32 = 2;
/// `pci_device_add.flags`: `optarr[0]` is the proximity domain.
pub const XEN_PCI_DEV_PXM: u32 = 4;

/// `dbgp_op.op`: about to reset the controller.
pub const PHYSDEVOP_DBGP_RESET_PREPARE: u8 = 1;
/// `dbgp_op.op`: reset finished.
pub const PHYSDEVOP_DBGP_RESET_DONE: u8 = 2;
/// `dbgp_op.bus`: unknown bus.
pub const PHYSDEVOP_DBGP_BUS_UNKNOWN: u8 = 0;
/// `dbgp_op.bus`: PCI.
pub const PHYSDEVOP_DBGP_BUS_PCI: u8 = 1;

/// `physdev_eoi`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevEoi {
    /// IN: the PIRQ.
    pub irq: u32,
}
assert_layout!(PhysdevEoi, 4; irq = 0);

/// `physdev_pirq_eoi_gmfn`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevPirqEoiGmfn {
    /// IN: the frame of the bitmap of PIRQs needing EOI.
    pub gmfn: u64,
}
assert_layout!(PhysdevPirqEoiGmfn, 8; gmfn = 0);

/// `physdev_irq_status_query`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevIrqStatusQuery {
    /// IN: the PIRQ.
    pub irq: u32,
    /// OUT: `XENIRQSTAT_*`.
    pub flags: u32,
}
assert_layout!(PhysdevIrqStatusQuery, 8; irq = 0, flags = 4);

/// `physdev_set_iopl`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevSetIopl {
    /// IN: the virtual IOPL (0-3).
    pub iopl: u32,
}
assert_layout!(PhysdevSetIopl, 4; iopl = 0);

/// `physdev_set_iobitmap`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevSetIobitmap {
    /// IN: guest pointer to the bitmap (a set bit denies the port).
    pub bitmap: u64,
    /// IN: ports the bitmap covers.
    pub nr_ports: u32,
    /// Padding.
    pub _pad: u32,
}
assert_layout!(PhysdevSetIobitmap, 16; bitmap = 0, nr_ports = 8);

/// `physdev_apic`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevApic {
    /// IN: the I/O APIC's physical base.
    pub apic_physbase: u64,
    /// IN: the register.
    pub reg: u32,
    /// IN (write) / OUT (read): the value.
    pub value: u32,
}
assert_layout!(PhysdevApic, 16; apic_physbase = 0, reg = 8, value = 12);

/// `physdev_irq`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevIrq {
    /// IN: the IRQ.
    pub irq: u32,
    /// OUT (alloc) / IN (free): the vector.
    pub vector: u32,
}
assert_layout!(PhysdevIrq, 8; irq = 0, vector = 4);

/// `physdev_map_pirq`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevMapPirq {
    /// IN: the domain the PIRQ is for.
    pub domid: u16,
    /// Padding.
    pub _pad0: u16,
    /// IN: `MAP_PIRQ_TYPE_*`.
    pub type_: i32,
    /// IN: the GSI, or the MSI-X entry.
    pub index: i32,
    /// IN/OUT: the PIRQ (-1 in: allocate one).
    pub pirq: i32,
    /// IN: PCI bus (MSI).
    pub bus: i32,
    /// IN: PCI device and function (MSI).
    pub devfn: i32,
    /// IN/OUT: number of MSI vectors (multi-MSI) or the MSI-X entry.
    pub entry_nr: i32,
    /// Padding.
    pub _pad1: u32,
    /// IN: the MSI-X table's address.
    pub table_base: u64,
}
assert_layout!(PhysdevMapPirq, 40; domid = 0, type_ = 4, index = 8, pirq = 12, bus = 16,
    devfn = 20, entry_nr = 24, table_base = 32);

/// `physdev_unmap_pirq`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevUnmapPirq {
    /// IN: the domain.
    pub domid: u16,
    /// Padding.
    pub _pad: u16,
    /// IN: the PIRQ.
    pub pirq: i32,
}
assert_layout!(PhysdevUnmapPirq, 8; domid = 0, pirq = 4);

/// `physdev_manage_pci`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevManagePci {
    /// IN: PCI bus.
    pub bus: u8,
    /// IN: device and function.
    pub devfn: u8,
}
assert_layout!(PhysdevManagePci, 2; bus = 0, devfn = 1);

/// `physdev_restore_msi`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevRestoreMsi {
    /// IN: PCI bus.
    pub bus: u8,
    /// IN: device and function.
    pub devfn: u8,
}
assert_layout!(PhysdevRestoreMsi, 2; bus = 0, devfn = 1);

/// The `physfn` member of [`PhysdevManagePciExt`] and [`PhysdevPciDeviceAdd`]:
/// the parent of a virtual function.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevPhysfn {
    /// PCI bus.
    pub bus: u8,
    /// Device and function.
    pub devfn: u8,
}
assert_layout!(PhysdevPhysfn, 2; bus = 0, devfn = 1);

/// `physdev_manage_pci_ext`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevManagePciExt {
    /// IN: PCI bus.
    pub bus: u8,
    /// IN: device and function.
    pub devfn: u8,
    /// Padding.
    pub _pad0: u16,
    /// IN: an extended function.
    pub is_extfn: u32,
    /// IN: a virtual function.
    pub is_virtfn: u32,
    /// IN: the parent, for a virtual function.
    pub physfn: PhysdevPhysfn,
    /// Padding.
    pub _pad1: u16,
}
assert_layout!(PhysdevManagePciExt, 16; bus = 0, devfn = 1, is_extfn = 4, is_virtfn = 8,
    physfn = 12);

/// `physdev_op`: the argument of the pre-3.0.2 `physdev_op_compat`
/// hypercall: a command and the largest sub-op argument.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevOp {
    /// `PHYSDEVOP_*`.
    pub cmd: u32,
    /// Padding.
    pub _pad: u32,
    /// The union of the sub-op arguments, as raw words.
    pub u: [u64; 2],
}
assert_layout!(PhysdevOp, 24; cmd = 0, u = 8);

/// `physdev_setup_gsi`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevSetupGsi {
    /// IN: the GSI.
    pub gsi: i32,
    /// IN: 0 edge, 1 level.
    pub triggering: u8,
    /// IN: 0 active high, 1 active low.
    pub polarity: u8,
    /// Padding.
    pub _pad: u16,
}
assert_layout!(PhysdevSetupGsi, 8; gsi = 0, triggering = 4, polarity = 5);

/// `physdev_get_free_pirq`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevGetFreePirq {
    /// IN: `MAP_PIRQ_TYPE_*`.
    pub type_: i32,
    /// OUT: the PIRQ.
    pub pirq: u32,
}
assert_layout!(PhysdevGetFreePirq, 8; type_ = 0, pirq = 4);

/// `physdev_pci_mmcfg_reserved`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevPciMmcfgReserved {
    /// IN: the MMCONFIG area's address.
    pub address: u64,
    /// IN: PCI segment.
    pub segment: u16,
    /// IN: first bus.
    pub start_bus: u8,
    /// IN: last bus.
    pub end_bus: u8,
    /// IN: `XEN_PCI_MMCFG_*`.
    pub flags: u32,
}
assert_layout!(PhysdevPciMmcfgReserved, 16; address = 0, segment = 8, start_bus = 10,
    end_bus = 11, flags = 12);

/// `physdev_pci_device_add`, without its trailing flexible `optarr`
/// (12 bytes; `optarr` starts at the end, one `u32` per `XEN_PCI_DEV_PXM`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevPciDeviceAdd {
    /// IN: PCI segment.
    pub seg: u16,
    /// IN: PCI bus.
    pub bus: u8,
    /// IN: device and function.
    pub devfn: u8,
    /// IN: `XEN_PCI_DEV_*`.
    pub flags: u32,
    /// IN: the parent, for a virtual function.
    pub physfn: PhysdevPhysfn,
    /// Padding (the flexible `optarr` begins after it).
    pub _pad: u16,
}
assert_layout!(PhysdevPciDeviceAdd, 12; seg = 0, bus = 2, devfn = 3, flags = 4, physfn = 8);

/// `physdev_pci_device`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevPciDevice {
    /// IN: PCI segment.
    pub seg: u16,
    /// IN: PCI bus.
    pub bus: u8,
    /// IN: device and function.
    pub devfn: u8,
}
assert_layout!(PhysdevPciDevice, 4; seg = 0, bus = 2, devfn = 3);

/// `physdev_dbgp_op`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PhysdevDbgpOp {
    /// IN: `PHYSDEVOP_DBGP_RESET_*`.
    pub op: u8,
    /// IN: `PHYSDEVOP_DBGP_BUS_*`.
    pub bus: u8,
    /// IN: the union `u`, whose only member is `pci`.
    pub u: PhysdevPciDevice,
}
assert_layout!(PhysdevDbgpOp, 6; op = 0, bus = 1, u = 2);
