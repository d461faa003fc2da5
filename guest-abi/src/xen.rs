//! The core structures and constants of `xen.h` and `arch-x86/xen*.h`.
//!
//! Layouts are the x86_64 ones. Every implicit C padding byte is an explicit
//! `_pad` field (so the types can derive `IntoBytes`), and C unions are
//! stored as their largest member with accessor methods for the others,
//! because zerocopy cannot derive `IntoBytes` for unions.
//!
//! [`SharedInfo`] and [`VcpuInfo`] live in a page the hypervisor and the
//! guest both write. Code that has that page mapped must not hold a Rust
//! reference across a point where the other side may write; read and write
//! the fields through volatile or atomic accesses on a raw pointer. The
//! structs here describe the layout (and back host tests and the
//! hypervisor's private copies); they are not a licence to form `&SharedInfo`
//! over live shared memory.

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// Expands to a compile-time check of a struct's size and field offsets.
macro_rules! assert_layout {
    ($ty:ty, $size:expr; $($field:ident = $off:expr),* $(,)?) => {
        const _: () = assert!(
            core::mem::size_of::<$ty>() == $size
                $( && core::mem::offset_of!($ty, $field) == $off )*
        );
    };
}
pub(crate) use assert_layout;

/// Low 32 bits of a 64-bit union word (the x86 little-endian overlay).
#[expect(
    clippy::cast_possible_truncation,
    reason = "keeping only the low half is the point"
)]
const fn lo32(x: u64) -> u32 {
    x as u32
}

/// High 32 bits of a 64-bit union word.
const fn hi32(x: u64) -> u32 {
    (x >> 32) as u32
}

// ---------------------------------------------------------------------------
// Start of day

/// The length of [`StartInfo::cmd_line`].
pub const MAX_GUEST_CMDLINE: usize = 1024;

/// `start_info.flags`: the domain is privileged.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `start_info.flags`: this is the initial control domain (dom0).
pub const SIF_INITDOMAIN: u32 = 1 << 1;
/// `start_info.flags`: `mod_start` is a multiboot module list.
pub const SIF_MULTIBOOT_MOD: u32 = 1 << 2;
/// `start_info.flags`: `mod_start` is a PFN rather than a virtual address.
pub const SIF_MOD_START_PFN: u32 = 1 << 3;
/// `start_info.flags`: the toolstack understands a virtually mapped P2M.
pub const SIF_VIRT_P2M_4TOOLS: u32 = 1 << 4;
/// `start_info.flags`: byte reserved for power-management options.
pub const SIF_PM_MASK: u32 = 0xff << 8;

/// `start_info`: what the domain builder tells a PV kernel at entry (`rsi`).
///
/// Sits in the guest's initial mapping, 1168 bytes, after the P2M list.
#[repr(C)]
#[derive(Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StartInfo {
    /// `"xen-<version>-<platform>"`, NUL-padded, e.g. `"xen-3.0-x86_64p"`.
    pub magic: [u8; 32],
    /// Pages allocated to the domain.
    pub nr_pages: u64,
    /// MACHINE address of the shared-info page (the guest maps it itself).
    pub shared_info: u64,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Padding (C alignment of the next field).
    pub _pad0: u32,
    /// MACHINE frame of the xenstore ring page.
    pub store_mfn: u64,
    /// Event channel of the xenstore ring.
    pub store_evtchn: u32,
    /// Padding (C alignment of the next field).
    pub _pad1: u32,
    /// The console union: see [`StartInfoConsole`].
    pub console: StartInfoConsole,
    /// VIRTUAL address of the initial L4 page table.
    pub pt_base: u64,
    /// Number of bootstrap page-table frames.
    pub nr_pt_frames: u64,
    /// VIRTUAL address of the P2M list (one MFN per PFN).
    pub mfn_list: u64,
    /// VIRTUAL address of the pre-loaded module (its PFN if
    /// `SIF_MOD_START_PFN`), or 0.
    pub mod_start: u64,
    /// Size in bytes of the pre-loaded module.
    pub mod_len: u64,
    /// The kernel command line, NUL-terminated.
    pub cmd_line: [u8; MAX_GUEST_CMDLINE],
    /// First PFN of the page-table and P2M frames outside the initial
    /// mapping (0 if none).
    pub first_p2m_pfn: u64,
    /// Number of those frames.
    pub nr_p2m_frames: u64,
}
assert_layout!(StartInfo, 1168;
    magic = 0, nr_pages = 32, shared_info = 40, flags = 48, store_mfn = 56,
    store_evtchn = 64, console = 72, pt_base = 88, nr_pt_frames = 96, mfn_list = 104,
    mod_start = 112, mod_len = 120, cmd_line = 128, first_p2m_pfn = 1152,
    nr_p2m_frames = 1160);

/// The bytes of a C string buffer up to (not including) the first NUL.
fn c_str(buf: &[u8]) -> &[u8] {
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    &buf[..len]
}

impl StartInfo {
    /// The magic string up to its NUL, or `""` if it is not UTF-8.
    pub fn magic_str(&self) -> &str {
        core::str::from_utf8(c_str(&self.magic)).unwrap_or("")
    }

    /// The command line's bytes up to its NUL.
    pub fn cmd_line_bytes(&self) -> &[u8] {
        c_str(&self.cmd_line)
    }

    /// Whether the magic names a 64-bit PV guest of the 3.0 ABI (`"xen-3.0-x86_64"`,
    /// optionally followed by `p`).
    pub fn magic_ok(&self) -> bool {
        self.magic_str().starts_with("xen-3.0-x86_64")
    }

    /// A zeroed `start_info` (for builders and tests).
    pub fn zeroed() -> Self {
        Self::new_zeroed()
    }
}

/// `start_info.console`: a union of a domU view (`mfn`, `evtchn`) and a
/// dom0 view (`info_off`, `info_size`), stored as two little-endian words.
///
/// Word 0 is `domU.mfn`, or `dom0.info_off` (low half) and `dom0.info_size`
/// (high half); word 1's low half is `domU.evtchn`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StartInfoConsole {
    /// The union's two 64-bit words.
    pub words: [u64; 2],
}
assert_layout!(StartInfoConsole, 16; words = 0);

impl StartInfoConsole {
    /// The domU form: the console ring's MACHINE frame and event channel.
    pub const fn dom_u(mfn: u64, evtchn: u32) -> Self {
        Self {
            words: [mfn, evtchn as u64],
        }
    }

    /// The dom0 form: where the [`Dom0VgaConsoleInfo`] sits, as an offset
    /// from the start of `start_info`, and its size.
    pub const fn dom0(info_off: u32, info_size: u32) -> Self {
        Self {
            words: [(info_size as u64) << 32 | info_off as u64, 0],
        }
    }

    /// `console.domU.mfn`.
    pub const fn dom_u_mfn(&self) -> u64 {
        self.words[0]
    }

    /// `console.domU.evtchn`.
    pub const fn dom_u_evtchn(&self) -> u32 {
        lo32(self.words[1])
    }

    /// `console.dom0.info_off`.
    pub const fn dom0_info_off(&self) -> u32 {
        lo32(self.words[0])
    }

    /// `console.dom0.info_size`.
    pub const fn dom0_info_size(&self) -> u32 {
        hi32(self.words[0])
    }
}

/// `dom0_vga_console_info.video_type`: VGA text mode 3.
pub const XEN_VGATYPE_TEXT_MODE_3: u8 = 0x03;
/// `dom0_vga_console_info.video_type`: VESA linear frame buffer.
pub const XEN_VGATYPE_VESA_LFB: u8 = 0x23;
/// `dom0_vga_console_info.video_type`: EFI linear frame buffer.
pub const XEN_VGATYPE_EFI_LFB: u8 = 0x70;

/// `dom0_vga_console_info`: the boot console Xen hands over to dom0, placed
/// right after `start_info` (40 bytes).
///
/// The C union `u` is stored as its larger member, [`VesaLfbInfo`];
/// [`Dom0VgaConsoleInfo::text_mode_3`] reads the other view.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Dom0VgaConsoleInfo {
    /// `XEN_VGATYPE_*`, or 0 when there is no console.
    pub video_type: u8,
    /// Padding (C alignment of the union).
    pub _pad: [u8; 3],
    /// The union `u`, as its `vesa_lfb` member.
    pub mode: VesaLfbInfo,
}
assert_layout!(Dom0VgaConsoleInfo, 40; video_type = 0, mode = 4);

impl Dom0VgaConsoleInfo {
    /// The union read as `u.text_mode_3`.
    pub fn text_mode_3(&self) -> TextMode3Info {
        let bytes = self.mode.as_bytes();
        TextMode3Info::read_from_prefix(bytes).map_or_else(|_| TextMode3Info::default(), |(t, _)| t)
    }
}

/// `dom0_vga_console_info.u.text_mode_3`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct TextMode3Info {
    /// Font height in pixels.
    pub font_height: u16,
    /// Cursor column.
    pub cursor_x: u16,
    /// Cursor row.
    pub cursor_y: u16,
    /// Rows of text.
    pub rows: u16,
    /// Columns of text.
    pub columns: u16,
}
assert_layout!(TextMode3Info, 10;
    font_height = 0, cursor_x = 2, cursor_y = 4, rows = 6, columns = 8);

/// `dom0_vga_console_info.u.vesa_lfb`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VesaLfbInfo {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Bytes per scan line.
    pub bytes_per_line: u16,
    /// Bits per pixel.
    pub bits_per_pixel: u16,
    /// Low 32 bits of the frame buffer's physical address.
    pub lfb_base: u32,
    /// Frame buffer size in 64 KiB units.
    pub lfb_size: u32,
    /// Red mask offset (VBE 1.2+).
    pub red_pos: u8,
    /// Red mask size.
    pub red_size: u8,
    /// Green mask offset.
    pub green_pos: u8,
    /// Green mask size.
    pub green_size: u8,
    /// Blue mask offset.
    pub blue_pos: u8,
    /// Blue mask size.
    pub blue_size: u8,
    /// Reserved mask offset.
    pub rsvd_pos: u8,
    /// Reserved mask size.
    pub rsvd_size: u8,
    /// VESA capabilities (VBE function 0x4f00, offset 0xa).
    pub gbl_caps: u32,
    /// Mode attributes (VBE function 0x4f01, offset 0).
    pub mode_attrs: u16,
    /// Reserved.
    pub pad: u16,
    /// High 32 bits of the frame buffer's physical address.
    pub ext_lfb_base: u32,
}
assert_layout!(VesaLfbInfo, 36;
    width = 0, height = 2, bytes_per_line = 4, bits_per_pixel = 6, lfb_base = 8,
    lfb_size = 12, red_pos = 16, rsvd_size = 23, gbl_caps = 24, mode_attrs = 28, pad = 30,
    ext_lfb_base = 32);

/// `xen_multiboot_mod_list`: one entry of a multiboot module list
/// (`SIF_MULTIBOOT_MOD`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMultibootModList {
    /// Address of the module's first byte.
    pub mod_start: u32,
    /// Address of the module's last byte (inclusive).
    pub mod_end: u32,
    /// Address of the module's NUL-terminated command line.
    pub cmdline: u32,
    /// Must be zero.
    pub pad: u32,
}
assert_layout!(XenMultibootModList, 16; mod_start = 0, mod_end = 4, cmdline = 8, pad = 12);

// ---------------------------------------------------------------------------
// Shared info

/// vCPUs whose `vcpu_info` lives in the shared-info page.
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;

/// `vcpu_time_info.flags`: the TSC is stable across vCPUs.
pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `vcpu_time_info.flags`: the guest was stopped (e.g. paused).
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

/// `vcpu_time_info`: the parameters to turn the TSC into system time.
///
/// `version` is odd while the hypervisor updates the rest; readers retry
/// until they see the same even version before and after reading.
/// System time in ns = `system_time + (((tsc - tsc_timestamp) << tsc_shift)
/// * tsc_to_system_mul) >> 32` (a negative shift shifts right).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuTimeInfo {
    /// Update counter, odd while an update is in progress.
    pub version: u32,
    /// Padding.
    pub pad0: u32,
    /// TSC value at the last update.
    pub tsc_timestamp: u64,
    /// System time (ns since boot) at the last update.
    pub system_time: u64,
    /// TSC-to-ns multiplier, a 32.32 fixed-point fraction.
    pub tsc_to_system_mul: u32,
    /// Power-of-two pre-scale of the TSC delta.
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: u8,
    /// Padding.
    pub pad1: [u8; 2],
}
assert_layout!(VcpuTimeInfo, 32;
    version = 0, pad0 = 4, tsc_timestamp = 8, system_time = 16, tsc_to_system_mul = 24,
    tsc_shift = 28, flags = 29, pad1 = 30);

/// `arch_vcpu_info` (x86_64).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct ArchVcpuInfo {
    /// The faulting address of the last page fault bounced to the guest.
    pub cr2: u64,
    /// Padding (brings `vcpu_info` to 64 bytes).
    pub pad: u64,
}
assert_layout!(ArchVcpuInfo, 16; cr2 = 0, pad = 8);

/// `vcpu_info`: one vCPU's event and time state (64 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuInfo {
    /// Set by the hypervisor when an event is pending; cleared by the guest
    /// before it scans for work.
    pub evtchn_upcall_pending: u8,
    /// Non-zero: the hypervisor will not make an event upcall to this vCPU.
    pub evtchn_upcall_mask: u8,
    /// Padding.
    pub _pad: [u8; 6],
    /// One bit per word of `evtchn_pending` that may have a pending port.
    pub evtchn_pending_sel: u64,
    /// Architecture-specific state.
    pub arch: ArchVcpuInfo,
    /// Time parameters.
    pub time: VcpuTimeInfo,
}
assert_layout!(VcpuInfo, 64;
    evtchn_upcall_pending = 0, evtchn_upcall_mask = 1, evtchn_pending_sel = 8, arch = 16,
    time = 32);

/// `arch_shared_info` (x86_64).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct ArchSharedInfo {
    /// Number of valid P2M entries.
    pub max_pfn: u64,
    /// Frame of the top of the 3-level P2M frame-list tree (0 unset, !0 invalid).
    pub pfn_to_mfn_frame_list_list: u64,
    /// NMI reason bits.
    pub nmi_reason: u64,
    /// CR3 of the address space holding the linear P2M list (0 if none).
    pub p2m_cr3: u64,
    /// Virtual address of the linear P2M list.
    pub p2m_vaddr: u64,
    /// Change counter of the P2M mapping, odd while it changes.
    pub p2m_generation: u64,
}
assert_layout!(ArchSharedInfo, 48;
    max_pfn = 0, pfn_to_mfn_frame_list_list = 8, nmi_reason = 16, p2m_cr3 = 24,
    p2m_vaddr = 32, p2m_generation = 40);

/// `shared_info`: the page shared by the hypervisor and a domain (its
/// machine address is `start_info.shared_info`).
///
/// Holds the first 32 vCPUs' `vcpu_info`, the 2-level event-channel pending
/// and mask bitmaps (4096 ports), and the wallclock.
#[repr(C)]
#[derive(Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SharedInfo {
    /// Per-vCPU event and time state.
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    /// One bit per event-channel port: an event is pending.
    pub evtchn_pending: [u64; 64],
    /// One bit per event-channel port: the port is masked.
    pub evtchn_mask: [u64; 64],
    /// Wallclock update counter (same protocol as `VcpuTimeInfo::version`).
    pub wc_version: u32,
    /// Wallclock at system time 0: seconds since the epoch, low 32 bits.
    pub wc_sec: u32,
    /// Wallclock at system time 0: nanoseconds.
    pub wc_nsec: u32,
    /// Wallclock at system time 0: seconds, high 32 bits.
    pub wc_sec_hi: u32,
    /// Architecture-specific state.
    pub arch: ArchSharedInfo,
}
assert_layout!(SharedInfo, 3136;
    vcpu_info = 0, evtchn_pending = 2048, evtchn_mask = 2560, wc_version = 3072,
    wc_sec = 3076, wc_nsec = 3080, wc_sec_hi = 3084, arch = 3088);
const _: () = assert!(core::mem::size_of::<SharedInfo>() <= 4096);

impl SharedInfo {
    /// A zeroed shared-info page image.
    pub fn zeroed() -> Self {
        Self::new_zeroed()
    }
}

// ---------------------------------------------------------------------------
// vm_assist

/// `vm_assist` command: turn an assist on.
pub const VMASST_CMD_ENABLE: u32 = 0;
/// `vm_assist` command: turn an assist off.
pub const VMASST_CMD_DISABLE: u32 = 1;
/// 32-bit guests: emulate 4 GiB segment limits.
pub const VMASST_TYPE_4GB_SEGMENTS: u32 = 0;
/// 32-bit guests: trap (vector 15) whenever the 4 GiB-segment emulation is used.
pub const VMASST_TYPE_4GB_SEGMENTS_NOTIFY: u32 = 1;
/// Let the guest write its page tables directly (emulated writes).
pub const VMASST_TYPE_WRITABLE_PAGETABLES: u32 = 2;
/// PAE guests: page directories may live above 4 GiB.
pub const VMASST_TYPE_PAE_EXTENDED_CR3: u32 = 3;
/// Make IOPL checks follow the architecture (guest ring vs. virtual IOPL).
pub const VMASST_TYPE_ARCHITECTURAL_IOPL: u32 = 4;
/// Set `XEN_RUNSTATE_UPDATE` in the runstate area while updating it.
pub const VMASST_TYPE_RUNSTATE_UPDATE_FLAG: u32 = 5;
/// 64-bit guests: keep the M2P out of user-mode page tables.
pub const VMASST_TYPE_M2P_STRICT: u32 = 32;

// ---------------------------------------------------------------------------
// Domain ids

/// First domain id that is not an ordinary domain.
pub const DOMID_FIRST_RESERVED: u16 = 0x7ff0;
/// "The calling domain".
pub const DOMID_SELF: u16 = 0x7ff0;
/// The owner of I/O memory and of pages shared with all domains.
pub const DOMID_IO: u16 = 0x7ff1;
/// The hypervisor itself, as owner of its pages.
pub const DOMID_XEN: u16 = 0x7ff2;
/// The owner of copy-on-write shared pages.
pub const DOMID_COW: u16 = 0x7ff3;
/// "No domain": the owner of pages with none.
pub const DOMID_INVALID: u16 = 0x7ff4;
/// The idle domain.
pub const DOMID_IDLE: u16 = 0x7fff;
/// Mask of the bits a domain id may use.
pub const DOMID_MASK: u16 = 0x7fff;

// ---------------------------------------------------------------------------
// MMU

/// `mmu_update` command in `ptr[1:0]`: checked write of `val` to the PTE at
/// machine address `ptr`.
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;
/// `mmu_update` command: set the M2P entry of the frame at `ptr` to `val`.
pub const MMU_MACHPHYS_UPDATE: u64 = 1;
/// `mmu_update` command: as NORMAL, keeping the PTE's current A/D bits.
pub const MMU_PT_UPDATE_PRESERVE_AD: u64 = 2;
/// `mmu_update` command: as NORMAL, `val` never translated.
pub const MMU_PT_UPDATE_NO_TRANSLATE: u64 = 3;

/// `mmu_update`: one request; the command sits in the low 2 bits of `ptr`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct MmuUpdate {
    /// Machine address of the PTE (or frame), ORed with an `MMU_*` command.
    pub ptr: u64,
    /// The new PTE (or PFN for `MMU_MACHPHYS_UPDATE`).
    pub val: u64,
}
assert_layout!(MmuUpdate, 16; ptr = 0, val = 8);

/// `mmuext_op` command: pin an L1 table.
pub const MMUEXT_PIN_L1_TABLE: u32 = 0;
/// `mmuext_op` command: pin an L2 table.
pub const MMUEXT_PIN_L2_TABLE: u32 = 1;
/// `mmuext_op` command: pin an L3 table.
pub const MMUEXT_PIN_L3_TABLE: u32 = 2;
/// `mmuext_op` command: pin an L4 table.
pub const MMUEXT_PIN_L4_TABLE: u32 = 3;
/// `mmuext_op` command: unpin a table.
pub const MMUEXT_UNPIN_TABLE: u32 = 4;
/// `mmuext_op` command: switch the kernel page-table base.
pub const MMUEXT_NEW_BASEPTR: u32 = 5;
/// `mmuext_op` command: flush this vCPU's TLB.
pub const MMUEXT_TLB_FLUSH_LOCAL: u32 = 6;
/// `mmuext_op` command: invalidate one page on this vCPU.
pub const MMUEXT_INVLPG_LOCAL: u32 = 7;
/// `mmuext_op` command: flush the TLBs of a vCPU set.
pub const MMUEXT_TLB_FLUSH_MULTI: u32 = 8;
/// `mmuext_op` command: invalidate one page on a vCPU set.
pub const MMUEXT_INVLPG_MULTI: u32 = 9;
/// `mmuext_op` command: flush every vCPU's TLB.
pub const MMUEXT_TLB_FLUSH_ALL: u32 = 10;
/// `mmuext_op` command: invalidate one page on every vCPU.
pub const MMUEXT_INVLPG_ALL: u32 = 11;
/// `mmuext_op` command: write back and invalidate caches.
pub const MMUEXT_FLUSH_CACHE: u32 = 12;
/// `mmuext_op` command: install an LDT.
pub const MMUEXT_SET_LDT: u32 = 13;
/// `mmuext_op` command: switch the user page-table base (x86_64).
pub const MMUEXT_NEW_USER_BASEPTR: u32 = 15;
/// `mmuext_op` command: zero a frame.
pub const MMUEXT_CLEAR_PAGE: u32 = 16;
/// `mmuext_op` command: copy a frame.
pub const MMUEXT_COPY_PAGE: u32 = 17;
/// `mmuext_op` command: flush caches on all CPUs.
pub const MMUEXT_FLUSH_CACHE_GLOBAL: u32 = 18;
/// `mmuext_op` command: mark a superpage.
pub const MMUEXT_MARK_SUPER: u32 = 19;
/// `mmuext_op` command: unmark a superpage.
pub const MMUEXT_UNMARK_SUPER: u32 = 20;

/// `mmuext_op`: one extended MMU request (24 bytes).
///
/// `arg1` is a frame (`mfn`) or a virtual address (`linear_addr`) depending
/// on `cmd`; `arg2` is `nr_ents` (low 32 bits), a guest pointer to a vCPU
/// bitmap (`vcpumask`), or `src_mfn`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct MmuextOp {
    /// `MMUEXT_*`.
    pub cmd: u32,
    /// Padding.
    pub _pad: u32,
    /// The union `arg1`: `mfn` or `linear_addr`.
    pub arg1: u64,
    /// The union `arg2`: `nr_ents`, `vcpumask` or `src_mfn`.
    pub arg2: u64,
}
assert_layout!(MmuextOp, 24; cmd = 0, arg1 = 8, arg2 = 16);

impl MmuextOp {
    /// `arg2.nr_ents` (for `MMUEXT_SET_LDT`).
    pub const fn nr_ents(&self) -> u32 {
        lo32(self.arg2)
    }
}

/// `update_va_mapping` flags: no TLB flush.
pub const UVMF_NONE: u64 = 0;
/// `update_va_mapping` flags: flush the entire TLB(s).
pub const UVMF_TLB_FLUSH: u64 = 1;
/// `update_va_mapping` flags: flush only the one entry.
pub const UVMF_INVLPG: u64 = 2;
/// `update_va_mapping` flags: mask of the flush type.
pub const UVMF_FLUSHTYPE_MASK: u64 = 3;
/// `update_va_mapping` flags: flush the vCPUs of the bitmap ORed into the
/// flags (a null bitmap means only the local vCPU).
pub const UVMF_MULTI: u64 = 0;
/// `update_va_mapping` flags: flush the local TLB only.
pub const UVMF_LOCAL: u64 = 0;
/// `update_va_mapping` flags: flush every vCPU's TLB.
pub const UVMF_ALL: u64 = 1 << 2;

// ---------------------------------------------------------------------------
// Multicall, traps, registers

/// `multicall_entry`: one call of a `multicall` batch (64 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct MulticallEntry {
    /// Hypercall number.
    pub op: u64,
    /// Result, written by the hypervisor.
    pub result: u64,
    /// Arguments.
    pub args: [u64; 6],
}
assert_layout!(MulticallEntry, 64; op = 0, result = 8, args = 16);

/// `trap_info`: one entry of the virtual IDT given to `set_trap_table`; a
/// zero `address` ends the list.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct TrapInfo {
    /// Exception vector.
    pub vector: u8,
    /// Bits 0-1: lowest privilege level allowed to raise it with `int`;
    /// bit 2: mask events on entry.
    pub flags: u8,
    /// Code selector of the handler.
    pub cs: u16,
    /// Padding.
    pub _pad: [u8; 4],
    /// Handler address.
    pub address: u64,
}
assert_layout!(TrapInfo, 16; vector = 0, flags = 1, cs = 2, address = 8);

impl TrapInfo {
    /// The privilege-level bits of `flags`.
    pub const fn dpl(&self) -> u8 {
        self.flags & 3
    }

    /// Whether delivery masks events (`flags` bit 2).
    pub const fn masks_events(&self) -> bool {
        self.flags & 4 != 0
    }
}

/// `cpu_user_regs` (x86_64): a vCPU's general registers as saved on entry
/// to the hypervisor (200 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct CpuUserRegs {
    /// r15.
    pub r15: u64,
    /// r14.
    pub r14: u64,
    /// r13.
    pub r13: u64,
    /// r12.
    pub r12: u64,
    /// rbp.
    pub rbp: u64,
    /// rbx.
    pub rbx: u64,
    /// r11.
    pub r11: u64,
    /// r10.
    pub r10: u64,
    /// r9.
    pub r9: u64,
    /// r8.
    pub r8: u64,
    /// rax.
    pub rax: u64,
    /// rcx.
    pub rcx: u64,
    /// rdx.
    pub rdx: u64,
    /// rsi.
    pub rsi: u64,
    /// rdi.
    pub rdi: u64,
    /// Exception error code (hypervisor-private).
    pub error_code: u32,
    /// Entry vector (hypervisor-private).
    pub entry_vector: u32,
    /// rip.
    pub rip: u64,
    /// cs.
    pub cs: u16,
    /// Padding.
    pub _pad0: u16,
    /// The `evtchn_upcall_mask` saved at the time of the trap.
    pub saved_upcall_mask: u8,
    /// Padding.
    pub _pad1: [u8; 3],
    /// rflags (`IF` mirrors `!saved_upcall_mask`).
    pub rflags: u64,
    /// rsp.
    pub rsp: u64,
    /// ss.
    pub ss: u16,
    /// Padding.
    pub _pad2: [u16; 3],
    /// es.
    pub es: u16,
    /// Padding.
    pub _pad3: [u16; 3],
    /// ds.
    pub ds: u16,
    /// Padding.
    pub _pad4: [u16; 3],
    /// fs.
    pub fs: u16,
    /// Padding.
    pub _pad5: [u16; 3],
    /// gs.
    pub gs: u16,
    /// Padding.
    pub _pad6: [u16; 3],
}
assert_layout!(CpuUserRegs, 200;
    r15 = 0, r14 = 8, r13 = 16, r12 = 24, rbp = 32, rbx = 40, r11 = 48, r10 = 56, r9 = 64,
    r8 = 72, rax = 80, rcx = 88, rdx = 96, rsi = 104, rdi = 112, error_code = 120,
    entry_vector = 124, rip = 128, cs = 136, saved_upcall_mask = 140, rflags = 144,
    rsp = 152, ss = 160, es = 168, ds = 176, fs = 184, gs = 192);

// ---------------------------------------------------------------------------
// Virtual IRQs

/// VIRQ (per vCPU): timer tick or single-shot timeout.
pub const VIRQ_TIMER: u32 = 0;
/// VIRQ (per vCPU): request to dump debug information.
pub const VIRQ_DEBUG: u32 = 1;
/// VIRQ (global, dom0): bytes arrived on the emergency console.
pub const VIRQ_CONSOLE: u32 = 2;
/// VIRQ (global, dom0): an exceptional event for some domain.
pub const VIRQ_DOM_EXC: u32 = 3;
/// VIRQ (global, dom0): trace buffer records available.
pub const VIRQ_TBUF: u32 = 4;
/// VIRQ (global, dom0): a domain paused for debugging.
pub const VIRQ_DEBUGGER: u32 = 6;
/// VIRQ (per vCPU): new xenoprof sample.
pub const VIRQ_XENOPROF: u32 = 7;
/// VIRQ (global, dom0): bytes arrived on the console ring.
pub const VIRQ_CON_RING: u32 = 8;
/// VIRQ (global, dom0): a physical CPU changed state.
pub const VIRQ_PCPU_STATE: u32 = 9;
/// VIRQ (global, dom0): a memory event occurred.
pub const VIRQ_MEM_EVENT: u32 = 10;
/// VIRQ (global): Argo message notification.
pub const VIRQ_ARGO: u32 = 11;
/// VIRQ (global, dom0): the hypervisor is low on heap memory.
pub const VIRQ_ENOMEM: u32 = 12;
/// VIRQ (per vCPU): PMU interrupt.
pub const VIRQ_XENPMU: u32 = 13;
/// Number of VIRQs.
pub const NR_VIRQS: u32 = 24;

// ---------------------------------------------------------------------------
// Further xen.h / arch-x86 items

/// `xen_pfn_t` on x86_64: a frame number as the C ABI carries it (before
/// validation into [`crate::types::Mfn`] or [`crate::types::Pfn`]).
pub type XenPfn = u64;
/// `xen_ulong_t` on x86_64.
pub type XenUlong = u64;

// `MAX_VMASST_TYPE` and `NR_EVENT_CHANNELS` exist only for interface
// versions before 4.6 and 4.4; see `crate::event_channel::EVTCHN_2L_NR_CHANNELS`.

/// First of eight architecture-specific VIRQs.
pub const VIRQ_ARCH_0: u32 = 16;
/// Architecture-specific VIRQ 1.
pub const VIRQ_ARCH_1: u32 = 17;
/// Architecture-specific VIRQ 2.
pub const VIRQ_ARCH_2: u32 = 18;
/// Architecture-specific VIRQ 3.
pub const VIRQ_ARCH_3: u32 = 19;
/// Architecture-specific VIRQ 4.
pub const VIRQ_ARCH_4: u32 = 20;
/// Architecture-specific VIRQ 5.
pub const VIRQ_ARCH_5: u32 = 21;
/// Architecture-specific VIRQ 6.
pub const VIRQ_ARCH_6: u32 = 22;
/// Architecture-specific VIRQ 7.
pub const VIRQ_ARCH_7: u32 = 23;
/// x86 (global, dom0): machine-check telemetry available (`VIRQ_ARCH_0`).
pub const VIRQ_MCA: u32 = VIRQ_ARCH_0;

/// The I/O port of the hypervisor's debug console for HVM guests.
pub const XEN_HVM_DEBUGCONS_IOPORT: u16 = 0xe9;

/// `iret_context`: the frame a 64-bit PV guest pushes before the `iret`
/// hypercall, top of stack first (72 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct IretContext {
    /// rax to restore.
    pub rax: u64,
    /// r11 to restore.
    pub r11: u64,
    /// rcx to restore.
    pub rcx: u64,
    /// `VGCF_in_syscall` or 0.
    pub flags: u64,
    /// Return address.
    pub rip: u64,
    /// Return code selector.
    pub cs: u64,
    /// Return flags.
    pub rflags: u64,
    /// Return stack pointer.
    pub rsp: u64,
    /// Return stack selector.
    pub ss: u64,
}
assert_layout!(IretContext, 72;
    rax = 0, r11 = 8, rcx = 16, flags = 24, rip = 32, cs = 40, rflags = 48, rsp = 56, ss = 64);

/// Entries of [`VcpuGuestContext::trap_ctxt`]: one per vector.
pub const VGC_TRAP_ENTRIES: usize = 256;

/// `vcpu_guest_context` (x86_64, guest and toolstack view): a vCPU's full
/// PV state, for `VCPUOP_initialise` and `XEN_DOMCTL_{set,get}vcpucontext`
/// (5168 bytes).
///
/// `user_regs.cs`/`ss` and the callbacks use the flat ring-3 selectors;
/// `ctrlreg[3]` is the kernel page table and `ctrlreg[1]` the user one,
/// both as [`crate::arch::pfn_to_cr3`] values.
#[repr(C)]
#[derive(Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct VcpuGuestContext {
    /// The FXSAVE image of the user FPU state (valid with `VGCF_I387_VALID`).
    pub fpu_ctxt: [u8; 512],
    /// `VGCF_*`.
    pub flags: u64,
    /// General registers.
    pub user_regs: CpuUserRegs,
    /// The virtual IDT.
    pub trap_ctxt: [TrapInfo; VGC_TRAP_ENTRIES],
    /// Linear address of the LDT.
    pub ldt_base: u64,
    /// LDT entries.
    pub ldt_ents: u64,
    /// Machine frames of the GDT.
    pub gdt_frames: [u64; 16],
    /// GDT entries.
    pub gdt_ents: u64,
    /// Kernel stack segment (the virtual TSS's SS1).
    pub kernel_ss: u64,
    /// Kernel stack pointer (the virtual TSS's SP1).
    pub kernel_sp: u64,
    /// CR0-CR7 (CR1 holds the user page table on x86_64).
    pub ctrlreg: [u64; 8],
    /// DR0-DR7.
    pub debugreg: [u64; 8],
    /// Event upcall entry point.
    pub event_callback_eip: u64,
    /// Failsafe entry point.
    pub failsafe_callback_eip: u64,
    /// `syscall` entry point.
    pub syscall_callback_eip: u64,
    /// Bitmap of enabled `VMASST_TYPE_*`.
    pub vm_assist: u64,
    /// FS base.
    pub fs_base: u64,
    /// Kernel-mode GS base.
    pub gs_base_kernel: u64,
    /// User-mode GS base.
    pub gs_base_user: u64,
}
assert_layout!(VcpuGuestContext, 5168;
    fpu_ctxt = 0, flags = 512, user_regs = 520, trap_ctxt = 720, ldt_base = 4816,
    ldt_ents = 4824, gdt_frames = 4832, gdt_ents = 4960, kernel_ss = 4968, kernel_sp = 4976,
    ctrlreg = 4984, debugreg = 5048, event_callback_eip = 5112, failsafe_callback_eip = 5120,
    syscall_callback_eip = 5128, vm_assist = 5136, fs_base = 5144, gs_base_kernel = 5152,
    gs_base_user = 5160);

impl VcpuGuestContext {
    /// A zeroed context (for builders and tests).
    pub fn zeroed() -> Self {
        Self::new_zeroed()
    }
}

/// `xen_cpuid_leaf`: one serialised CPUID leaf.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenCpuidLeaf {
    /// Leaf (EAX in).
    pub leaf: u32,
    /// Subleaf (ECX in), or `XEN_CPUID_NO_SUBLEAF`.
    pub subleaf: u32,
    /// EAX out.
    pub a: u32,
    /// EBX out.
    pub b: u32,
    /// ECX out.
    pub c: u32,
    /// EDX out.
    pub d: u32,
}
assert_layout!(XenCpuidLeaf, 24; leaf = 0, subleaf = 4, a = 8, b = 12, c = 16, d = 20);

/// `xen_cpuid_leaf.subleaf` for leaves without subleaves.
pub const XEN_CPUID_NO_SUBLEAF: u32 = 0xffff_ffff;

/// `xen_msr_entry`: one serialised MSR.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMsrEntry {
    /// MSR index.
    pub idx: u32,
    /// Reserved, must be 0.
    pub flags: u32,
    /// Value.
    pub val: u64,
}
assert_layout!(XenMsrEntry, 16; idx = 0, flags = 4, val = 8);

/// `xenctl_bitmap`: a bitmap of CPUs or nodes passed to domctl/sysctl.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenctlBitmap {
    /// Guest pointer to the bytes.
    pub bitmap: u64,
    /// Bits in the bitmap.
    pub nr_bits: u32,
    /// Padding.
    pub _pad: u32,
}
assert_layout!(XenctlBitmap, 16; bitmap = 0, nr_bits = 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_union_views() {
        let c = StartInfoConsole::dom0(1168, 40);
        assert_eq!((c.dom0_info_off(), c.dom0_info_size()), (1168, 40));
        assert_eq!(c.as_bytes()[..8], [0x90, 0x04, 0, 0, 40, 0, 0, 0]);
        let u = StartInfoConsole::dom_u(0x1234, 7);
        assert_eq!((u.dom_u_mfn(), u.dom_u_evtchn()), (0x1234, 7));
    }

    #[test]
    fn start_info_strings() {
        let mut si = StartInfo::zeroed();
        si.magic[..15].copy_from_slice(b"xen-3.0-x86_64p");
        si.cmd_line[..5].copy_from_slice(b"quiet");
        assert_eq!(si.magic_str(), "xen-3.0-x86_64p");
        assert!(si.magic_ok());
        assert_eq!(si.cmd_line_bytes(), b"quiet");
    }

    #[test]
    fn vga_text_mode_view() {
        let mut v = Dom0VgaConsoleInfo {
            video_type: XEN_VGATYPE_TEXT_MODE_3,
            ..Default::default()
        };
        v.mode.width = 16;
        v.mode.bits_per_pixel = 25;
        v.mode.lfb_base = 80;
        let t = v.text_mode_3();
        assert_eq!((t.font_height, t.rows, t.columns), (16, 25, 80));
    }
}
