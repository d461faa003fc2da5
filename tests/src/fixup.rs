//! Catching a guest's own faults: probes that read or write an address
//! and come back with the fault instead of crashing the guest, and the
//! trap table that makes them work.
//!
//! [`install`] registers handlers for #UD, #GP and #PF. A probe saves its
//! stack pointer, performs one access and returns `Ok`; if the access
//! faults, the hypervisor bounces to the handler (Xen's 64-bit PV frame:
//! rcx, r11, [error code], rip, cs, rflags, rsp, ss), which records the
//! frame, restores the saved stack pointer and returns from the probe with
//! the fault. Probes are leaf functions, so nothing but the return address
//! lives on the stack between the save and the restore.
//!
//! `cr2` of a #PF is what the hypervisor wrote into `vcpu_info.arch.cr2`,
//! which [`SharedInfo`] reads after mapping the shared-info page.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use guest_abi::hypercall::{hypercall1, hypercall3, SET_TRAP_TABLE, UPDATE_VA_MAPPING};
use guest_abi::rt::{StartInfoRef, VIRT_BASE};
use guest_abi::xen::TrapInfo;

/// A fault a probe ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub vector: u64,
    /// The error code (0 for vectors without one).
    pub error_code: u64,
    /// Where it happened.
    pub rip: u64,
}

static VECTOR: AtomicU64 = AtomicU64::new(0);
static ERROR_CODE: AtomicU64 = AtomicU64::new(0);
static RIP: AtomicU64 = AtomicU64::new(0);
static SAVED_RSP: AtomicU64 = AtomicU64::new(0);

global_asm!(
    r#"
    .pushsection .text.fixup_probe, "ax"
    /* fixup_read(addr) -> (value, faulted): rax, rdx */
    .globl fixup_read
fixup_read:
    mov [rip + {saved_rsp}], rsp
    mov rax, [rdi]
    xor edx, edx
    ret

    /* fixup_write(addr, value) -> (_, faulted) */
    .globl fixup_write
fixup_write:
    mov [rip + {saved_rsp}], rsp
    mov [rdi], rsi
    xor eax, eax
    xor edx, edx
    ret

    /* fixup_load_fs(selector) -> (_, faulted) */
    .globl fixup_load_fs
fixup_load_fs:
    mov [rip + {saved_rsp}], rsp
    mov fs, edi
    xor eax, eax
    xor edx, edx
    ret

    /* Handlers. With an error code the frame is rcx, r11, ec, rip, ...;
       without one, rcx, r11, rip, ... */
    .globl fixup_trap_6
fixup_trap_6:
    mov qword ptr [rip + {vector}], 6
    mov qword ptr [rip + {ec}], 0
    mov rax, [rsp + 16]
    jmp 2f
    .globl fixup_trap_13
fixup_trap_13:
    mov qword ptr [rip + {vector}], 13
    jmp 1f
    .globl fixup_trap_14
fixup_trap_14:
    mov qword ptr [rip + {vector}], 14
1:
    mov rax, [rsp + 16]
    mov [rip + {ec}], rax
    mov rax, [rsp + 24]
2:
    mov [rip + {rip_}], rax
    mov rsp, [rip + {saved_rsp}]
    xor eax, eax
    mov edx, 1
    ret
    .popsection
"#,
    saved_rsp = sym SAVED_RSP,
    vector = sym VECTOR,
    ec = sym ERROR_CODE,
    rip_ = sym RIP,
);

#[repr(C)]
struct Pair {
    value: u64,
    faulted: u64,
}

// SAFETY: the declarations match the assembly above: each probe takes its
// arguments in rdi/rsi and returns `Pair` in rax:rdx; the trap handlers are
// only ever entered by the hypervisor's bounce, never called.
unsafe extern "C" {
    fn fixup_read(addr: u64) -> Pair;
    fn fixup_write(addr: u64, value: u64) -> Pair;
    fn fixup_load_fs(selector: u64) -> Pair;
    fn fixup_trap_6();
    fn fixup_trap_13();
    fn fixup_trap_14();
}

const KERNEL_CS: u16 = 0xe033;

/// A trap-table entry for `vector`: `handler` in the guest kernel's code
/// segment, events left as they are.
pub fn trap(vector: u8, handler: unsafe extern "C" fn()) -> TrapInfo {
    TrapInfo {
        vector,
        flags: 0,
        cs: KERNEL_CS,
        _pad: [0; 4],
        address: handler as usize as u64,
    }
}

/// Registers the probes' handlers (#UD, #GP, #PF) as the guest's trap
/// table; returns `set_trap_table`'s result.
pub fn install() -> i64 {
    let table = [
        trap(6, fixup_trap_6),
        trap(13, fixup_trap_13),
        trap(14, fixup_trap_14),
        TrapInfo::default(),
    ];
    // SAFETY: the hypervisor only reads the table, which ends with a zero
    // entry.
    unsafe { hypercall1(SET_TRAP_TABLE, table.as_ptr() as u64) }
}

fn outcome(p: Pair) -> Result<u64, Fault> {
    if p.faulted == 0 {
        Ok(p.value)
    } else {
        Err(Fault {
            vector: VECTOR.load(SeqCst),
            error_code: ERROR_CODE.load(SeqCst),
            rip: RIP.load(SeqCst),
        })
    }
}

/// Reads 8 bytes at `addr`, or reports the fault.
///
/// Only for addresses whose contents no Rust object depends on (hypervisor
/// ranges, unmapped or test-owned pages): the read itself is harmless.
pub fn read(addr: u64) -> Result<u64, Fault> {
    // SAFETY: the probe reads one word; a fault returns through the
    // handlers installed by `install`, which restore the stack pointer the
    // probe saved (nothing else lives on its stack).
    outcome(unsafe { fixup_read(addr) })
}

/// Writes 8 bytes at `addr`, or reports the fault.
///
/// # Safety
/// `addr` must not hold anything a Rust object depends on.
pub unsafe fn write(addr: u64, value: u64) -> Result<(), Fault> {
    // SAFETY: as for `read`; the caller vouches for the target.
    outcome(unsafe { fixup_write(addr, value) }).map(|_| ())
}

/// Loads `%fs` with `selector`, or reports the fault.
pub fn load_fs(selector: u64) -> Result<(), Fault> {
    // SAFETY: as for `read`; a segment load changes no memory, and the
    // guest's code addresses nothing through %fs behind the caller's back.
    outcome(unsafe { fixup_load_fs(selector) }).map(|_| ())
}

/// The shared-info page, mapped at the last page of the initial 4 MiB
/// mapping (padding on both Xen and hv).
pub struct SharedInfo {
    pub va: u64,
}

impl SharedInfo {
    /// Maps the domain's shared-info frame; `None` if the mapping failed.
    pub fn map(si: StartInfoRef) -> Option<Self> {
        let va = VIRT_BASE + (4 << 20) - 4096;
        // SAFETY: replaces the mapping of an unused padding page with the
        // shared-info frame (P|RW|US|A|D).
        let rc = unsafe { hypercall3(UPDATE_VA_MAPPING, va, si.shared_info | 0x67, 2) };
        (rc == 0).then_some(Self { va })
    }

    /// vCPU 0's `arch.cr2`: the address of the last #PF bounced to it.
    pub fn cr2(&self) -> u64 {
        crate::pvmm::read_u64(self.va + 16)
    }
}
