//! Compares every guest-abi struct, and the ABI constants, with Xen's C
//! headers in /usr/include/xen (package `libxen-dev`).
//!
//! Each check pairs a C expression with the value the Rust side computes
//! for it. The test writes a C program printing every expression, builds it
//! with the system `cc`, runs it, and fails on any difference. It also reads
//! the headers' text to make sure no hypercall or errno is missing from the
//! Rust lists.
//!
//! No struct can escape: `every_mirrored_struct_is_checked` reads the
//! crate's sources, finds every `#[repr(C)]` / `#[repr(transparent)]`
//! struct and its fields, and fails unless `layout!` (or `layout_in!` /
//! `Checks::cover`) checked that struct, by its full Rust path, and every
//! field not named `_…` (explicit padding). Adding a struct to the crate
//! without a C comparison here fails the test.

use std::any::type_name;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use guest_abi::{arch, elfnote, errno, features, hypercall, sched, types, version, xen};

/// The interface version the 4.17 headers call latest (`xen-compat.h`).
const XEN_INTERFACE_VERSION: &str = "0x00040e00";

const HEADERS: &str = "/usr/include/xen";

/// A value from the Rust side, widened for comparison.
fn v<T: TryInto<u64>>(x: T) -> u64 {
    x.try_into()
        .unwrap_or_else(|_| panic!("value does not fit u64"))
}

/// A signed value from the Rust side, as C's `(unsigned long long)` cast of
/// it (two's complement).
fn sv<T: Into<i64>>(x: T) -> u64 {
    u64::from_ne_bytes(x.into().to_ne_bytes())
}

#[derive(Default)]
struct Checks {
    items: Vec<(String, u64)>,
    /// Rust type path -> the fields whose offsets were compared with C.
    covered: BTreeMap<String, BTreeSet<String>>,
}

impl Checks {
    fn add(&mut self, c_expr: impl Into<String>, rust: u64) {
        self.items.push((c_expr.into(), rust));
    }

    /// Records that `T` (and these of its fields) were compared with C.
    fn cover<T>(&mut self, fields: &[&str]) {
        self.covered
            .entry(type_name::<T>().to_string())
            .or_default()
            .extend(fields.iter().map(|f| f.to_string()));
    }
}

/// The size of the field a projection closure selects.
fn field_size<T, F>(_: impl Fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// `layout!(checks, RustType, "c type" { rust_field, rust_field => "c.path", ... })`:
/// checks sizeof, and every listed field's offset and size (so a field whose
/// type changes width is caught even where the padding hides it).
macro_rules! layout {
    ($c:ident, $ty:ty, $cty:literal { $($rf:ident $(=> $cf:literal)?),* $(,)? }) => {{
        $c.add(format!("sizeof({})", $cty), v(size_of::<$ty>()));
        $(
            let cname: &str = layout!(@name $rf $($cf)?);
            $c.add(format!("offsetof({}, {})", $cty, cname), v(offset_of!($ty, $rf)));
            $c.add(
                format!("sizeof((({} *)0)->{})", $cty, cname),
                v(crate::field_size(|x: &$ty| &x.$rf)),
            );
        )*
        $c.cover::<$ty>(&[$(stringify!($rf)),*]);
    }};
    (@name $rf:ident) => { stringify!($rf) };
    (@name $rf:ident $cf:literal) => { $cf };
}

/// `layout_in!(checks, RustType, "struct outer", "member", rust_offset; { fields })`:
/// checks a struct that C declares only as an (anonymous or union) member
/// of `outer`: its size, and each field's offset inside `outer`.
macro_rules! layout_in {
    ($c:ident, $ty:ty, $outer:literal, $member:literal, $base:expr;
        { $($rf:ident $(=> $cf:literal)?),* $(,)? }) => {{
        let base: usize = $base;
        $c.add(
            format!("sizeof((({} *)0)->{})", $outer, $member),
            v(size_of::<$ty>()),
        );
        $c.add(format!("offsetof({}, {})", $outer, $member), v(base));
        $(
            let cname: &str = layout!(@name $rf $($cf)?);
            $c.add(
                format!("offsetof({}, {}.{})", $outer, $member, cname),
                v(base + offset_of!($ty, $rf)),
            );
            $c.add(
                format!("sizeof((({} *)0)->{}.{})", $outer, $member, cname),
                v(crate::field_size(|x: &$ty| &x.$rf)),
            );
        )*
        $c.cover::<$ty>(&[$(stringify!($rf)),*]);
    }};
}

/// `konst!(checks, rust_const => "C_NAME", ...)`.
macro_rules! konst {
    ($c:ident, $($r:expr => $cn:literal),* $(,)?) => {
        $( $c.add($cn, v($r)); )*
    };
}

#[path = "layout/abi.rs"]
mod abi;

fn struct_checks(c: &mut Checks) {
    use xen::*;

    layout!(c, StartInfo, "struct start_info" {
        magic, nr_pages, shared_info, flags, store_mfn, store_evtchn, console, pt_base,
        nr_pt_frames, mfn_list, mod_start, mod_len, cmd_line, first_p2m_pfn, nr_p2m_frames,
    });
    // The console union: words[0] is domU.mfn / dom0.info_off (low) and
    // dom0.info_size (high); words[1] low is domU.evtchn.
    let con = offset_of!(StartInfo, console);
    c.add(
        "sizeof(((struct start_info *)0)->console)",
        v(size_of::<StartInfoConsole>()),
    );
    c.cover::<StartInfoConsole>(&["words"]);
    c.add("offsetof(struct start_info, console.domU.mfn)", v(con));
    c.add(
        "offsetof(struct start_info, console.domU.evtchn)",
        v(con + 8),
    );
    c.add("offsetof(struct start_info, console.dom0.info_off)", v(con));
    c.add(
        "offsetof(struct start_info, console.dom0.info_size)",
        v(con + 4),
    );

    layout!(c, Dom0VgaConsoleInfo, "struct dom0_vga_console_info" {
        video_type, mode => "u",
    });
    c.add(
        "sizeof(((struct dom0_vga_console_info *)0)->u)",
        v(size_of::<VesaLfbInfo>()),
    );
    let m = offset_of!(Dom0VgaConsoleInfo, mode);
    macro_rules! sub {
        ($ty:ty, $member:literal, $($f:ident),*) => {
            c.add(
                concat!("sizeof(((struct dom0_vga_console_info *)0)->u.", $member, ")"),
                v(size_of::<$ty>()),
            );
            $(
                c.add(
                    concat!("offsetof(struct dom0_vga_console_info, u.", $member, ".", stringify!($f), ")"),
                    v(m + offset_of!($ty, $f)),
                );
            )*
            c.cover::<$ty>(&[$(stringify!($f)),*]);
        };
    }
    sub!(
        TextMode3Info,
        "text_mode_3",
        font_height,
        cursor_x,
        cursor_y,
        rows,
        columns
    );
    sub!(
        VesaLfbInfo,
        "vesa_lfb",
        width,
        height,
        bytes_per_line,
        bits_per_pixel,
        lfb_base,
        lfb_size,
        red_pos,
        red_size,
        green_pos,
        green_size,
        blue_pos,
        blue_size,
        rsvd_pos,
        rsvd_size,
        gbl_caps,
        mode_attrs,
        pad,
        ext_lfb_base
    );

    layout!(c, XenMultibootModList, "struct xen_multiboot_mod_list" {
        mod_start, mod_end, cmdline, pad,
    });
    layout!(c, VcpuTimeInfo, "struct vcpu_time_info" {
        version, pad0, tsc_timestamp, system_time, tsc_to_system_mul, tsc_shift, flags, pad1,
    });
    layout!(c, ArchVcpuInfo, "struct arch_vcpu_info" { cr2, pad });
    layout!(c, VcpuInfo, "struct vcpu_info" {
        evtchn_upcall_pending, evtchn_upcall_mask, evtchn_pending_sel, arch, time,
    });
    layout!(c, ArchSharedInfo, "struct arch_shared_info" {
        max_pfn, pfn_to_mfn_frame_list_list, nmi_reason, p2m_cr3, p2m_vaddr, p2m_generation,
    });
    layout!(c, SharedInfo, "struct shared_info" {
        vcpu_info, evtchn_pending, evtchn_mask, wc_version, wc_sec, wc_nsec, wc_sec_hi, arch,
    });
    c.add(
        "sizeof(((struct shared_info *)0)->evtchn_pending)",
        v(size_of::<[u64; 64]>()),
    );
    layout!(c, MmuUpdate, "struct mmu_update" { ptr, val });
    layout!(c, MmuextOp, "struct mmuext_op" { cmd, arg1, arg2 });
    let a1 = offset_of!(MmuextOp, arg1);
    let a2 = offset_of!(MmuextOp, arg2);
    c.add("offsetof(struct mmuext_op, arg1.mfn)", v(a1));
    c.add("offsetof(struct mmuext_op, arg1.linear_addr)", v(a1));
    c.add("offsetof(struct mmuext_op, arg2.nr_ents)", v(a2));
    c.add("offsetof(struct mmuext_op, arg2.vcpumask)", v(a2));
    c.add("offsetof(struct mmuext_op, arg2.src_mfn)", v(a2));
    c.add("sizeof(((struct mmuext_op *)0)->arg2)", v(size_of::<u64>()));
    layout!(c, MulticallEntry, "struct multicall_entry" { op, result, args });
    layout!(c, TrapInfo, "struct trap_info" { vector, flags, cs, address });
    layout!(c, CpuUserRegs, "struct cpu_user_regs" {
        r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, error_code,
        entry_vector, rip, cs, _pad0, saved_upcall_mask, _pad1, rflags, rsp, ss, _pad2, es,
        _pad3, ds, _pad4, fs, _pad5, gs, _pad6,
    });

    use version::*;
    layout!(c, XenCompileInfo, "struct xen_compile_info" {
        compiler, compile_by, compile_domain, compile_date,
    });
    layout!(c, XenPlatformParameters, "struct xen_platform_parameters" { virt_start });
    layout!(c, XenFeatureInfo, "struct xen_feature_info" { submap_idx, submap });
    layout!(c, XenBuildId, "struct xen_build_id" { len });
    c.add(
        "offsetof(struct xen_build_id, buf)",
        v(size_of::<XenBuildId>()),
    );
    c.add(
        "sizeof(xen_extraversion_t)",
        v(size_of::<XenExtraversion>()),
    );
    c.add(
        "sizeof(xen_capabilities_info_t)",
        v(size_of::<XenCapabilitiesInfo>()),
    );
    c.add(
        "sizeof(xen_changeset_info_t)",
        v(size_of::<XenChangesetInfo>()),
    );
    c.add("sizeof(xen_commandline_t)", v(size_of::<XenCommandline>()));
    c.add(
        "sizeof(xen_domain_handle_t)",
        v(size_of::<XenDomainHandle>()),
    );

    use sched::*;
    layout!(c, SchedShutdown, "struct sched_shutdown" { reason });
    layout!(c, SchedPoll, "struct sched_poll" { ports, nr_ports, timeout });
    layout!(c, SchedRemoteShutdown, "struct sched_remote_shutdown" { domain_id, reason });
    layout!(c, SchedWatchdog, "struct sched_watchdog" { id, timeout });
    layout!(c, SchedPinOverride, "struct sched_pin_override" { pcpu });

    c.add("sizeof(xen_pfn_t)", v(size_of::<types::Mfn>()));
    c.add("sizeof(xen_pfn_t)", v(size_of::<types::Pfn>()));
    c.add("sizeof(domid_t)", v(size_of::<types::DomId>()));
    c.cover::<types::DomId>(&[]);
    c.add("sizeof(evtchn_port_t)", v(size_of::<types::EvtchnPort>()));
    c.add("sizeof(grant_ref_t)", v(size_of::<types::GrantRef>()));
    c.add("sizeof(((struct vcpu_info *)0)->time.tsc_shift)", 1);

    abi::struct_checks(c);
}

fn constant_checks(c: &mut Checks) {
    for h in hypercall::ALL {
        c.add(format!("__HYPERVISOR_{}", h.name), h.nr);
    }
    for &(name, val) in errno::ALL {
        if name != "EINTR" && name != "ERESTART" {
            c.add(format!("XEN_{name}"), v(val));
        }
    }
    use xen::*;
    konst!(c,
        MAX_GUEST_CMDLINE => "MAX_GUEST_CMDLINE",
        SIF_PRIVILEGED => "SIF_PRIVILEGED", SIF_INITDOMAIN => "SIF_INITDOMAIN",
        SIF_MULTIBOOT_MOD => "SIF_MULTIBOOT_MOD", SIF_MOD_START_PFN => "SIF_MOD_START_PFN",
        SIF_VIRT_P2M_4TOOLS => "SIF_VIRT_P2M_4TOOLS", SIF_PM_MASK => "SIF_PM_MASK",
        XEN_VGATYPE_TEXT_MODE_3 => "XEN_VGATYPE_TEXT_MODE_3",
        XEN_VGATYPE_VESA_LFB => "XEN_VGATYPE_VESA_LFB",
        XEN_VGATYPE_EFI_LFB => "XEN_VGATYPE_EFI_LFB",
        XEN_LEGACY_MAX_VCPUS => "XEN_LEGACY_MAX_VCPUS",
        XEN_PVCLOCK_TSC_STABLE_BIT => "XEN_PVCLOCK_TSC_STABLE_BIT",
        XEN_PVCLOCK_GUEST_STOPPED => "XEN_PVCLOCK_GUEST_STOPPED",
        VMASST_CMD_ENABLE => "VMASST_CMD_enable", VMASST_CMD_DISABLE => "VMASST_CMD_disable",
        VMASST_TYPE_4GB_SEGMENTS => "VMASST_TYPE_4gb_segments",
        VMASST_TYPE_4GB_SEGMENTS_NOTIFY => "VMASST_TYPE_4gb_segments_notify",
        VMASST_TYPE_WRITABLE_PAGETABLES => "VMASST_TYPE_writable_pagetables",
        VMASST_TYPE_PAE_EXTENDED_CR3 => "VMASST_TYPE_pae_extended_cr3",
        VMASST_TYPE_ARCHITECTURAL_IOPL => "VMASST_TYPE_architectural_iopl",
        VMASST_TYPE_RUNSTATE_UPDATE_FLAG => "VMASST_TYPE_runstate_update_flag",
        VMASST_TYPE_M2P_STRICT => "VMASST_TYPE_m2p_strict",
        DOMID_FIRST_RESERVED => "DOMID_FIRST_RESERVED", DOMID_SELF => "DOMID_SELF",
        DOMID_IO => "DOMID_IO", DOMID_XEN => "DOMID_XEN", DOMID_COW => "DOMID_COW",
        DOMID_INVALID => "DOMID_INVALID", DOMID_IDLE => "DOMID_IDLE",
        DOMID_MASK => "DOMID_MASK",
        MMU_NORMAL_PT_UPDATE => "MMU_NORMAL_PT_UPDATE",
        MMU_MACHPHYS_UPDATE => "MMU_MACHPHYS_UPDATE",
        MMU_PT_UPDATE_PRESERVE_AD => "MMU_PT_UPDATE_PRESERVE_AD",
        MMU_PT_UPDATE_NO_TRANSLATE => "MMU_PT_UPDATE_NO_TRANSLATE",
        MMUEXT_PIN_L1_TABLE => "MMUEXT_PIN_L1_TABLE", MMUEXT_PIN_L2_TABLE => "MMUEXT_PIN_L2_TABLE",
        MMUEXT_PIN_L3_TABLE => "MMUEXT_PIN_L3_TABLE", MMUEXT_PIN_L4_TABLE => "MMUEXT_PIN_L4_TABLE",
        MMUEXT_UNPIN_TABLE => "MMUEXT_UNPIN_TABLE", MMUEXT_NEW_BASEPTR => "MMUEXT_NEW_BASEPTR",
        MMUEXT_TLB_FLUSH_LOCAL => "MMUEXT_TLB_FLUSH_LOCAL",
        MMUEXT_INVLPG_LOCAL => "MMUEXT_INVLPG_LOCAL",
        MMUEXT_TLB_FLUSH_MULTI => "MMUEXT_TLB_FLUSH_MULTI",
        MMUEXT_INVLPG_MULTI => "MMUEXT_INVLPG_MULTI",
        MMUEXT_TLB_FLUSH_ALL => "MMUEXT_TLB_FLUSH_ALL", MMUEXT_INVLPG_ALL => "MMUEXT_INVLPG_ALL",
        MMUEXT_FLUSH_CACHE => "MMUEXT_FLUSH_CACHE", MMUEXT_SET_LDT => "MMUEXT_SET_LDT",
        MMUEXT_NEW_USER_BASEPTR => "MMUEXT_NEW_USER_BASEPTR",
        MMUEXT_CLEAR_PAGE => "MMUEXT_CLEAR_PAGE", MMUEXT_COPY_PAGE => "MMUEXT_COPY_PAGE",
        MMUEXT_FLUSH_CACHE_GLOBAL => "MMUEXT_FLUSH_CACHE_GLOBAL",
        MMUEXT_MARK_SUPER => "MMUEXT_MARK_SUPER", MMUEXT_UNMARK_SUPER => "MMUEXT_UNMARK_SUPER",
        UVMF_NONE => "UVMF_NONE", UVMF_TLB_FLUSH => "UVMF_TLB_FLUSH",
        UVMF_INVLPG => "UVMF_INVLPG", UVMF_FLUSHTYPE_MASK => "UVMF_FLUSHTYPE_MASK",
        UVMF_MULTI => "UVMF_MULTI", UVMF_LOCAL => "UVMF_LOCAL", UVMF_ALL => "UVMF_ALL",
        VIRQ_TIMER => "VIRQ_TIMER", VIRQ_DEBUG => "VIRQ_DEBUG", VIRQ_CONSOLE => "VIRQ_CONSOLE",
        VIRQ_DOM_EXC => "VIRQ_DOM_EXC", VIRQ_TBUF => "VIRQ_TBUF",
        VIRQ_DEBUGGER => "VIRQ_DEBUGGER", VIRQ_XENOPROF => "VIRQ_XENOPROF",
        VIRQ_CON_RING => "VIRQ_CON_RING", VIRQ_PCPU_STATE => "VIRQ_PCPU_STATE",
        VIRQ_MEM_EVENT => "VIRQ_MEM_EVENT", VIRQ_ARGO => "VIRQ_ARGO",
        VIRQ_ENOMEM => "VIRQ_ENOMEM", VIRQ_XENPMU => "VIRQ_XENPMU", NR_VIRQS => "NR_VIRQS",
    );
    use arch::*;
    konst!(c,
        FLAT_RING3_CS32 => "FLAT_RING3_CS32", FLAT_RING3_CS64 => "FLAT_RING3_CS64",
        FLAT_RING3_DS32 => "FLAT_RING3_DS32", FLAT_RING3_DS64 => "FLAT_RING3_DS64",
        FLAT_RING3_SS32 => "FLAT_RING3_SS32", FLAT_RING3_SS64 => "FLAT_RING3_SS64",
        FLAT_KERNEL_CS64 => "FLAT_KERNEL_CS64", FLAT_KERNEL_CS32 => "FLAT_KERNEL_CS32",
        FLAT_KERNEL_CS => "FLAT_KERNEL_CS", FLAT_KERNEL_DS64 => "FLAT_KERNEL_DS64",
        FLAT_KERNEL_DS32 => "FLAT_KERNEL_DS32", FLAT_KERNEL_DS => "FLAT_KERNEL_DS",
        FLAT_KERNEL_SS64 => "FLAT_KERNEL_SS64", FLAT_KERNEL_SS32 => "FLAT_KERNEL_SS32",
        FLAT_KERNEL_SS => "FLAT_KERNEL_SS",
        FLAT_USER_CS64 => "FLAT_USER_CS64", FLAT_USER_CS32 => "FLAT_USER_CS32",
        FLAT_USER_CS => "FLAT_USER_CS", FLAT_USER_DS64 => "FLAT_USER_DS64",
        FLAT_USER_DS32 => "FLAT_USER_DS32", FLAT_USER_DS => "FLAT_USER_DS",
        FLAT_USER_SS64 => "FLAT_USER_SS64", FLAT_USER_SS32 => "FLAT_USER_SS32",
        FLAT_USER_SS => "FLAT_USER_SS",
        HYPERVISOR_VIRT_START => "HYPERVISOR_VIRT_START",
        HYPERVISOR_VIRT_END => "HYPERVISOR_VIRT_END",
        MACH2PHYS_VIRT_START => "MACH2PHYS_VIRT_START",
        MACH2PHYS_VIRT_END => "MACH2PHYS_VIRT_END",
        MACH2PHYS_NR_ENTRIES => "MACH2PHYS_NR_ENTRIES",
        SEGBASE_FS => "SEGBASE_FS", SEGBASE_GS_USER => "SEGBASE_GS_USER",
        SEGBASE_GS_KERNEL => "SEGBASE_GS_KERNEL", SEGBASE_GS_USER_SEL => "SEGBASE_GS_USER_SEL",
        VGCF_I387_VALID => "VGCF_I387_VALID", VGCF_IN_KERNEL => "VGCF_IN_KERNEL",
        VGCF_FAILSAFE_DISABLES_EVENTS => "VGCF_failsafe_disables_events",
        VGCF_SYSCALL_DISABLES_EVENTS => "VGCF_syscall_disables_events",
        VGCF_ONLINE => "VGCF_online", VGCF_IN_SYSCALL => "VGCF_IN_SYSCALL",
        FIRST_RESERVED_GDT_PAGE => "FIRST_RESERVED_GDT_PAGE",
        FIRST_RESERVED_GDT_BYTE => "FIRST_RESERVED_GDT_BYTE",
        FIRST_RESERVED_GDT_ENTRY => "FIRST_RESERVED_GDT_ENTRY",
        pfn_to_cr3(5) => "xen_pfn_to_cr3(5)", cr3_to_pfn(0x5000) => "xen_cr3_to_pfn(0x5000)",
    );
    use version::*;
    konst!(c,
        XENVER_VERSION => "XENVER_version", XENVER_EXTRAVERSION => "XENVER_extraversion",
        XENVER_COMPILE_INFO => "XENVER_compile_info",
        XENVER_CAPABILITIES => "XENVER_capabilities", XENVER_CHANGESET => "XENVER_changeset",
        XENVER_PLATFORM_PARAMETERS => "XENVER_platform_parameters",
        XENVER_GET_FEATURES => "XENVER_get_features", XENVER_PAGESIZE => "XENVER_pagesize",
        XENVER_GUEST_HANDLE => "XENVER_guest_handle", XENVER_COMMANDLINE => "XENVER_commandline",
        XENVER_BUILD_ID => "XENVER_build_id",
    );
    use features::*;
    konst!(c,
        XENFEAT_WRITABLE_PAGE_TABLES => "XENFEAT_writable_page_tables",
        XENFEAT_WRITABLE_DESCRIPTOR_TABLES => "XENFEAT_writable_descriptor_tables",
        XENFEAT_AUTO_TRANSLATED_PHYSMAP => "XENFEAT_auto_translated_physmap",
        XENFEAT_SUPERVISOR_MODE_KERNEL => "XENFEAT_supervisor_mode_kernel",
        XENFEAT_PAE_PGDIR_ABOVE_4GB => "XENFEAT_pae_pgdir_above_4gb",
        XENFEAT_MMU_PT_UPDATE_PRESERVE_AD => "XENFEAT_mmu_pt_update_preserve_ad",
        XENFEAT_HIGHMEM_ASSIST => "XENFEAT_highmem_assist",
        XENFEAT_GNTTAB_MAP_AVAIL_BITS => "XENFEAT_gnttab_map_avail_bits",
        XENFEAT_HVM_CALLBACK_VECTOR => "XENFEAT_hvm_callback_vector",
        XENFEAT_HVM_SAFE_PVCLOCK => "XENFEAT_hvm_safe_pvclock",
        XENFEAT_HVM_PIRQS => "XENFEAT_hvm_pirqs", XENFEAT_DOM0 => "XENFEAT_dom0",
        XENFEAT_MEMORY_OP_VNODE_SUPPORTED => "XENFEAT_memory_op_vnode_supported",
        XENFEAT_ARM_SMCCC_SUPPORTED => "XENFEAT_ARM_SMCCC_supported",
        XENFEAT_LINUX_RSDP_UNRESTRICTED => "XENFEAT_linux_rsdp_unrestricted",
        XENFEAT_NOT_DIRECT_MAPPED => "XENFEAT_not_direct_mapped",
        XENFEAT_DIRECT_MAPPED => "XENFEAT_direct_mapped",
        XENFEAT_NR_SUBMAPS => "XENFEAT_NR_SUBMAPS",
    );
    // XENFEAT_grant_map_identity (12) is not checked: in the 4.17 header its
    // #define sits inside an unterminated comment, so C never sees it.
    use sched::*;
    konst!(c,
        SCHEDOP_YIELD => "SCHEDOP_yield", SCHEDOP_BLOCK => "SCHEDOP_block",
        SCHEDOP_SHUTDOWN => "SCHEDOP_shutdown", SCHEDOP_POLL => "SCHEDOP_poll",
        SCHEDOP_REMOTE_SHUTDOWN => "SCHEDOP_remote_shutdown",
        SCHEDOP_SHUTDOWN_CODE => "SCHEDOP_shutdown_code", SCHEDOP_WATCHDOG => "SCHEDOP_watchdog",
        SCHEDOP_PIN_OVERRIDE => "SCHEDOP_pin_override",
        SHUTDOWN_POWEROFF => "SHUTDOWN_poweroff", SHUTDOWN_REBOOT => "SHUTDOWN_reboot",
        SHUTDOWN_SUSPEND => "SHUTDOWN_suspend", SHUTDOWN_CRASH => "SHUTDOWN_crash",
        SHUTDOWN_WATCHDOG => "SHUTDOWN_watchdog", SHUTDOWN_SOFT_RESET => "SHUTDOWN_soft_reset",
        SHUTDOWN_MAX => "SHUTDOWN_MAX",
    );
    use guest_abi::console::*;
    konst!(c, CONSOLEIO_WRITE => "CONSOLEIO_write", CONSOLEIO_READ => "CONSOLEIO_read");
    use elfnote::*;
    konst!(c,
        XEN_ELFNOTE_INFO => "XEN_ELFNOTE_INFO", XEN_ELFNOTE_ENTRY => "XEN_ELFNOTE_ENTRY",
        XEN_ELFNOTE_HYPERCALL_PAGE => "XEN_ELFNOTE_HYPERCALL_PAGE",
        XEN_ELFNOTE_VIRT_BASE => "XEN_ELFNOTE_VIRT_BASE",
        XEN_ELFNOTE_PADDR_OFFSET => "XEN_ELFNOTE_PADDR_OFFSET",
        XEN_ELFNOTE_XEN_VERSION => "XEN_ELFNOTE_XEN_VERSION",
        XEN_ELFNOTE_GUEST_OS => "XEN_ELFNOTE_GUEST_OS",
        XEN_ELFNOTE_GUEST_VERSION => "XEN_ELFNOTE_GUEST_VERSION",
        XEN_ELFNOTE_LOADER => "XEN_ELFNOTE_LOADER", XEN_ELFNOTE_PAE_MODE => "XEN_ELFNOTE_PAE_MODE",
        XEN_ELFNOTE_FEATURES => "XEN_ELFNOTE_FEATURES",
        XEN_ELFNOTE_BSD_SYMTAB => "XEN_ELFNOTE_BSD_SYMTAB",
        XEN_ELFNOTE_HV_START_LOW => "XEN_ELFNOTE_HV_START_LOW",
        XEN_ELFNOTE_L1_MFN_VALID => "XEN_ELFNOTE_L1_MFN_VALID",
        XEN_ELFNOTE_SUSPEND_CANCEL => "XEN_ELFNOTE_SUSPEND_CANCEL",
        XEN_ELFNOTE_INIT_P2M => "XEN_ELFNOTE_INIT_P2M",
        XEN_ELFNOTE_MOD_START_PFN => "XEN_ELFNOTE_MOD_START_PFN",
        XEN_ELFNOTE_SUPPORTED_FEATURES => "XEN_ELFNOTE_SUPPORTED_FEATURES",
        XEN_ELFNOTE_PHYS32_ENTRY => "XEN_ELFNOTE_PHYS32_ENTRY",
        XEN_ELFNOTE_MAX => "XEN_ELFNOTE_MAX",
    );

    abi::constant_checks(c);
}

/// Builds and runs the C side; returns expression -> value.
fn c_values(checks: &Checks) -> BTreeMap<String, u64> {
    // `__XEN_TOOLS__` unlocks domctl.h and sysctl.h; <errno.h> comes first
    // so xs_wire.h defines its `xsd_errors` table.
    let mut src = format!(
        "#define __XEN_INTERFACE_VERSION__ {XEN_INTERFACE_VERSION}\n\
         #define __XEN_TOOLS__ 1\n\
         #include <errno.h>\n#include <string.h>\n\
         #include <stdint.h>\n#include <stddef.h>\n#include <stdio.h>\n\
         #include <xen/xen.h>\n#include <xen/version.h>\n#include <xen/features.h>\n\
         #include <xen/sched.h>\n#include <xen/elfnote.h>\n#include <xen/errno.h>\n\
         #include <xen/event_channel.h>\n#include <xen/grant_table.h>\n\
         #include <xen/arch-x86/xen-mca.h>\n\
         #include <xen/memory.h>\n#include <xen/vcpu.h>\n#include <xen/callback.h>\n\
         #include <xen/physdev.h>\n#include <xen/nmi.h>\n\
         #include <xen/domctl.h>\n#include <xen/sysctl.h>\n\
         #include <xen/io/ring.h>\n#include <xen/io/xs_wire.h>\n#include <xen/io/console.h>\n\
         #include <xen/io/blkif.h>\n#include <xen/io/netif.h>\n#include <xen/io/xenbus.h>\n\
         static const char *gnttab_msgs[] = GNTTABOP_error_msgs;\n\
         struct test_e820entry {{ uint64_t addr; uint64_t size; uint32_t type; }} \
         __attribute__((packed));\n\
         int main(void) {{\n"
    );
    for (i, (expr, _)) in checks.items.iter().enumerate() {
        writeln!(
            src,
            "    printf(\"{i} %llu\\n\", (unsigned long long)({expr}));"
        )
        .unwrap();
    }
    src.push_str("    return 0;\n}\n");

    let dir: PathBuf =
        std::env::temp_dir().join(format!("guest-abi-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c_file = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&c_file, &src).unwrap();
    let out = Command::new("cc")
        .args(["-std=gnu11", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(&c_file)
        .output()
        .expect("running cc (the layout test needs a C compiler and libxen-dev)");
    assert!(
        out.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe)
        .output()
        .expect("running the C layout probe");
    assert!(run.status.success());
    let _ = std::fs::remove_dir_all(&dir);

    let text = String::from_utf8(run.stdout).unwrap();
    let mut by_index = BTreeMap::new();
    for line in text.lines() {
        let (i, val) = line.split_once(' ').unwrap();
        by_index.insert(i.parse::<usize>().unwrap(), val.parse::<u64>().unwrap());
    }
    checks
        .items
        .iter()
        .enumerate()
        .map(|(i, (expr, _))| (expr.clone(), by_index[&i]))
        .collect()
}

#[test]
fn layouts_and_constants_match_the_c_headers() {
    let mut checks = Checks::default();
    struct_checks(&mut checks);
    constant_checks(&mut checks);
    let c = c_values(&checks);
    let mut bad = Vec::new();
    for (expr, rust) in &checks.items {
        if c[expr] != *rust {
            bad.push(format!(
                "{expr}: C {} (0x{:x}), Rust {rust} (0x{rust:x})",
                c[expr], c[expr]
            ));
        }
    }
    assert!(bad.is_empty(), "mismatches:\n{}", bad.join("\n"));
    assert!(
        checks.items.len() > 300,
        "only {} checks",
        checks.items.len()
    );
}

/// Every `#define NAME <number>` in a header whose name starts with `prefix`.
fn header_defines(file: &str, prefix: &str) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(format!("{HEADERS}/{file}")).unwrap();
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "#define").then_some(())?;
            let name = w.next()?.strip_prefix(prefix)?;
            let val = w.next()?.parse().ok()?;
            Some((name.to_string(), val))
        })
        .collect()
}

#[test]
fn no_hypercall_is_missing() {
    for (name, nr) in header_defines("xen.h", "__HYPERVISOR_") {
        if name.starts_with("arch_") {
            continue; // slots for the architecture; x86 uses arch_0 as `mca`
        }
        let h = hypercall::info(nr).unwrap_or_else(|| panic!("{name} ({nr}) missing"));
        assert_eq!(h.name, name);
    }
    assert!(hypercall::ALL.len() >= 43);
}

#[test]
fn no_errno_is_missing() {
    let text = std::fs::read_to_string(format!("{HEADERS}/errno.h")).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("XEN_ERRNO(") else {
            continue;
        };
        let Some((name, val)) = rest
            .split_once(')')
            .and_then(|(inside, _)| inside.split_once(','))
        else {
            continue;
        };
        let (name, val) = (name.trim(), val.trim());
        if name == "name" {
            continue; // the macro's own definition
        }
        let val: i64 = val.parse().unwrap();
        assert!(
            errno::ALL.contains(&(name, val)),
            "{name} = {val} missing from guest_abi::errno"
        );
        n += 1;
    }
    assert_eq!(n, errno::ALL.len());
}

/// Rust module path of a source file under `src/` (`io/ring.rs` ->
/// `guest_abi::io::ring`).
fn module_path(rel: &Path) -> String {
    let mut parts = vec!["guest_abi".to_string()];
    let comps: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    for (i, c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let name = if last { c.trim_end_matches(".rs") } else { c };
        if !(last && (name == "lib" || name == "mod")) {
            parts.push(name.to_string());
        }
    }
    parts.join("::")
}

/// Every `#[repr(C)]` / `#[repr(transparent)]` struct declared in `file`,
/// with its named fields.
fn repr_structs(file: &Path, module: &str) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    let mut pending = false;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t.starts_with("#[repr(C") || t.starts_with("#[repr(transparent)") {
            pending = true;
            continue;
        }
        let decl = t.strip_prefix("pub ").unwrap_or(t);
        let Some(rest) = decl.strip_prefix("struct ") else {
            if decl.starts_with("enum ") || decl.starts_with("union ") || decl.starts_with("fn ") {
                pending = false;
            }
            continue;
        };
        if !pending {
            continue;
        }
        pending = false;
        let name: String = rest
            .chars()
            .take_while(|ch| ch.is_alphanumeric() || *ch == '_' || *ch == '$')
            .collect();
        let mut fields = Vec::new();
        if rest.trim_end().ends_with('{') {
            for body in lines.by_ref() {
                let b = body.trim();
                if b.starts_with('}') {
                    break;
                }
                if let Some(f) = b.strip_prefix("pub ").and_then(|f| f.split_once(':')) {
                    fields.push(f.0.trim().to_string());
                }
            }
        }
        out.push((format!("{module}::{name}"), fields));
    }
    out
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Source directories whose structs are not mirrors of Xen's headers: the
/// guest runtime (`rt/`, runtime state such as the start-of-day capture)
/// and the hypercall wrappers (`hypercall/`).
const NOT_MIRRORS: &[&str] = &["rt", "hypercall"];

#[test]
fn every_mirrored_struct_is_checked() {
    let mut checks = Checks::default();
    struct_checks(&mut checks);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_sources(&src, &mut files);
    let mut problems = Vec::new();
    let mut seen = 0;
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_string_lossy();
        if NOT_MIRRORS.iter().any(|d| top == *d) {
            continue;
        }
        for (ty, fields) in repr_structs(&file, &module_path(rel)) {
            if ty.contains('$') {
                // A macro template (types.rs): its instances are the
                // typedef-sized newtypes checked by name in struct_checks.
                continue;
            }
            seen += 1;
            let Some(done) = checks.covered.get(&ty) else {
                problems.push(format!("{ty}: not compared with C"));
                continue;
            };
            for f in fields.iter().filter(|f| !f.starts_with('_')) {
                if !done.contains(f) {
                    problems.push(format!("{ty}.{f}: offset not compared with C"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The scanner must keep finding the structs (guards against a silent
    // parser failure that would make this test vacuous).
    assert!(seen >= 120, "only {seen} mirrored structs found");
    assert!(
        seen <= checks.covered.len(),
        "{seen} structs, {} covered",
        checks.covered.len()
    );
}
