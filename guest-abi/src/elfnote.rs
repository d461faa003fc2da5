//! Types of the `"Xen"` ELF notes a PV kernel carries (`elfnote.h`).
//!
//! Each note has the name `"Xen"` and one of these types; string
//! descriptors are NUL-terminated, numeric ones are little-endian and 1, 2,
//! 4 or 8 bytes long.

/// The note name.
pub const XEN_ELFNOTE_NAME: &[u8; 4] = b"Xen\0";

/// Unused (legacy `__xen_guest` string).
pub const XEN_ELFNOTE_INFO: u32 = 0;
/// Virtual address of the entry point (numeric).
pub const XEN_ELFNOTE_ENTRY: u32 = 1;
/// Virtual address of the hypercall page (numeric).
pub const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;
/// Virtual address at which the image is mapped (numeric).
pub const XEN_ELFNOTE_VIRT_BASE: u32 = 3;
/// Subtracted from virtual addresses to get ELF physical addresses (numeric).
pub const XEN_ELFNOTE_PADDR_OFFSET: u32 = 4;
/// The Xen ABI version the kernel expects, e.g. `"xen-3.0"` (string).
pub const XEN_ELFNOTE_XEN_VERSION: u32 = 5;
/// The guest OS name (string).
pub const XEN_ELFNOTE_GUEST_OS: u32 = 6;
/// The guest OS version (string).
pub const XEN_ELFNOTE_GUEST_VERSION: u32 = 7;
/// The loader the image is built for, `"generic"` (string).
pub const XEN_ELFNOTE_LOADER: u32 = 8;
/// PAE support, `"yes"`, `"no"` or `"bimodal"` (string).
pub const XEN_ELFNOTE_PAE_MODE: u32 = 9;
/// Required and optional features, `|`-separated, `!` marks required (string).
pub const XEN_ELFNOTE_FEATURES: u32 = 10;
/// Whether the loader should append the symbol table, `"yes"` (string).
pub const XEN_ELFNOTE_BSD_SYMTAB: u32 = 11;
/// Lowest address the hypervisor may use (numeric, 32-bit PAE only).
pub const XEN_ELFNOTE_HV_START_LOW: u32 = 12;
/// Mask and value identifying valid L1 entries (numeric pair).
pub const XEN_ELFNOTE_L1_MFN_VALID: u32 = 13;
/// The kernel handles a cancelled suspend (numeric).
pub const XEN_ELFNOTE_SUSPEND_CANCEL: u32 = 14;
/// Virtual address for the initial P2M list (numeric).
pub const XEN_ELFNOTE_INIT_P2M: u32 = 15;
/// The kernel accepts `mod_start` as a PFN (numeric).
pub const XEN_ELFNOTE_MOD_START_PFN: u32 = 16;
/// Bitmap of supported `XENFEAT_*` bits (numeric, 32-bit words).
pub const XEN_ELFNOTE_SUPPORTED_FEATURES: u32 = 17;
/// 32-bit physical entry point for PVH (numeric).
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// The highest note type above.
pub const XEN_ELFNOTE_MAX: u32 = XEN_ELFNOTE_PHYS32_ENTRY;

/// Xen's name for a note type (as `dom0=verbose` prints it), or `None`.
pub fn name(ty: u32) -> Option<&'static str> {
    const NAMES: [&str; 19] = [
        "INFO",
        "ENTRY",
        "HYPERCALL_PAGE",
        "VIRT_BASE",
        "PADDR_OFFSET",
        "XEN_VERSION",
        "GUEST_OS",
        "GUEST_VERSION",
        "LOADER",
        "PAE_MODE",
        "FEATURES",
        "BSD_SYMTAB",
        "HV_START_LOW",
        "L1_MFN_VALID",
        "SUSPEND_CANCEL",
        "INIT_P2M",
        "MOD_START_PFN",
        "SUPPORTED_FEATURES",
        "PHYS32_ENTRY",
    ];
    NAMES.get(usize::try_from(ty).ok()?).copied()
}
