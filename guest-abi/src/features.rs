//! Feature bits reported by `XENVER_get_features` (`features.h`).
//!
//! Each constant is a bit number in the feature bitmap; word
//! `n / 32`, bit `n % 32`. The same numbers form the
//! `SUPPORTED_FEATURES` ELF note's bitmap.

/// The guest may write its page tables directly.
pub const XENFEAT_WRITABLE_PAGE_TABLES: u32 = 0;
/// The guest may write its descriptor tables directly.
pub const XENFEAT_WRITABLE_DESCRIPTOR_TABLES: u32 = 1;
/// The guest's physical addresses are translated by the hypervisor.
pub const XENFEAT_AUTO_TRANSLATED_PHYSMAP: u32 = 2;
/// The guest kernel runs in supervisor mode.
pub const XENFEAT_SUPERVISOR_MODE_KERNEL: u32 = 3;
/// PAE page directories may live above 4 GiB.
pub const XENFEAT_PAE_PGDIR_ABOVE_4GB: u32 = 4;
/// `MMU_PT_UPDATE_PRESERVE_AD` is supported.
pub const XENFEAT_MMU_PT_UPDATE_PRESERVE_AD: u32 = 5;
/// `MMUEXT_CLEAR_PAGE` and `MMUEXT_COPY_PAGE` are supported.
pub const XENFEAT_HIGHMEM_ASSIST: u32 = 6;
/// Grant mappings may use the PTE's available bits.
pub const XENFEAT_GNTTAB_MAP_AVAIL_BITS: u32 = 7;
/// HVM: the callback-vector upcall is supported.
pub const XENFEAT_HVM_CALLBACK_VECTOR: u32 = 8;
/// HVM: the PV clock is safe to use.
pub const XENFEAT_HVM_SAFE_PVCLOCK: u32 = 9;
/// HVM: pirqs are available.
pub const XENFEAT_HVM_PIRQS: u32 = 10;
/// Running as dom0 is supported (a kernel's `SUPPORTED_FEATURES` note must
/// carry it to boot as dom0).
pub const XENFEAT_DOM0: u32 = 11;
/// Grant references are also mapped at pfn = mfn (deprecated). The 4.17
/// header's `#define` for it is swallowed by an unterminated comment; the
/// number is still 12.
pub const XENFEAT_GRANT_MAP_IDENTITY: u32 = 12;
/// `XENMEMF_vnode` is supported by memory_op.
pub const XENFEAT_MEMORY_OP_VNODE_SUPPORTED: u32 = 13;
/// Arm: SMCCC is supported.
pub const XENFEAT_ARM_SMCCC_SUPPORTED: u32 = 14;
/// The Linux RSDP may be placed anywhere.
pub const XENFEAT_LINUX_RSDP_UNRESTRICTED: u32 = 15;
/// The domain is not direct-mapped.
pub const XENFEAT_NOT_DIRECT_MAPPED: u32 = 16;
/// The domain is direct-mapped.
pub const XENFEAT_DIRECT_MAPPED: u32 = 17;

/// Number of 32-bit words in the feature bitmap.
pub const XENFEAT_NR_SUBMAPS: u32 = 1;
