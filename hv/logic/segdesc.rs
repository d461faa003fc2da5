//! Guest segment descriptors for a 64-bit PV guest: the rules Xen 4.17
//! applies before a descriptor reaches a GDT or LDT the CPU uses
//! (`set_gdt`, `update_descriptor`), as plain logic.
//!
//! The guest runs in ring 3, so nothing it installs may give it a more
//! privileged segment: the DPL of a present code or data descriptor is
//! raised to 3 (no base or limit checks: in long mode they do not matter
//! for code and data). Of the system descriptors only a 64-bit call gate is
//! kept, with its DPL forced to 0 so that using it faults (Xen would then
//! emulate the far call; hv does not yet, the guest sees the #GP) and its
//! original DPL kept in the target selector's RPL, provided the target is
//! a guest selector, the LDT or the flat kernel code selector and the
//! reserved low byte is clear. Type 0 (the upper half of a 16-byte gate)
//! and not-present descriptors are stored as they are. Every other system
//! descriptor (TSS, LDT, interrupt and trap gates) is refused.

/// Entries below this are the guest's (`FIRST_RESERVED_GDT_ENTRY`: hv's
/// own descriptors start at selector 0xe000).
pub const FIRST_RESERVED_GDT_ENTRY: u32 = 0xe000 >> 3;
/// Guest GDT frames at most (`FIRST_RESERVED_GDT_PAGE`).
pub const GDT_FRAMES: usize = 14;
/// Descriptors per frame.
pub const PER_FRAME: usize = 512;

const FLAT_KERNEL_CS: u64 = 0xe033;

const P: u64 = 1 << 47;
const S: u64 = 1 << 44;
const DPL: u64 = 3 << 45;
const TYPE: u64 = 0xf << 40;
const TYPE_CALL_GATE: u64 = 0xc << 40;
/// The byte below the type in a 64-bit call gate (its parameter count
/// field), which must be zero.
const GATE_RESERVED: u64 = 0xff << 32;

/// Whether a call gate may target `sel`: a guest GDT entry, any LDT entry,
/// or the flat kernel code segment.
fn gate_selector_ok(sel: u64) -> bool {
    (sel >> 3) < u64::from(FIRST_RESERVED_GDT_ENTRY) || sel == FLAT_KERNEL_CS || sel & 4 != 0
}

/// The descriptor as it will be stored, or `None` if the guest may not
/// have it (Xen answers `-EINVAL`).
pub fn check_descriptor(d: u64) -> Option<u64> {
    if d & P == 0 {
        return Some(d);
    }
    let fixed = d | DPL;
    if d & S != 0 {
        return Some(fixed);
    }
    if d & TYPE == 0 {
        return Some(d);
    }
    if d & TYPE != TYPE_CALL_GATE {
        return None;
    }
    let cs = (d >> 16) & 0xffff;
    if !gate_selector_ok(cs) {
        return None;
    }
    if d & GATE_RESERVED != 0 {
        return None;
    }
    // DPL 0 in the gate; the (raised) DPL in the target selector's RPL.
    let cs = cs | 3;
    Some((d & !DPL & !(0xffff << 16)) | cs << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_and_data_get_dpl_3() {
        assert_eq!(
            check_descriptor(0x00cf_9300_0000_ffff),
            Some(0x00cf_f300_0000_ffff)
        );
        assert_eq!(
            check_descriptor(0x00af_bb00_0000_ffff),
            Some(0x00af_fb00_0000_ffff)
        );
        // Conforming code is still code.
        assert_eq!(
            check_descriptor(0x00af_9f00_0000_ffff),
            Some(0x00af_ff00_0000_ffff)
        );
    }

    #[test]
    fn absent_and_type_0_are_kept() {
        assert_eq!(
            check_descriptor(0x0000_1234_5678_9abc),
            Some(0x0000_1234_5678_9abc)
        );
        assert_eq!(
            check_descriptor(0x0000_8000_0000_0000),
            Some(0x0000_8000_0000_0000)
        );
    }

    #[test]
    fn system_descriptors_are_refused() {
        assert_eq!(check_descriptor(0x0000_8900_0000_0067), None); // TSS
        assert_eq!(check_descriptor(0x0000_8200_0000_0fff), None); // LDT
        assert_eq!(check_descriptor(0x0000_ee00_e033_1000), None); // int gate
        assert_eq!(check_descriptor(0x0000_ef00_e033_1000), None); // trap gate
    }

    #[test]
    fn call_gates() {
        assert_eq!(
            check_descriptor(0x0000_ec00_e033_1000),
            Some(0x0000_8c00_e033_1000)
        );
        assert_eq!(
            check_descriptor(0x0000_8c00_0008_1000),
            Some(0x0000_8c00_000b_1000)
        );
        assert_eq!(
            check_descriptor(0x0000_8c00_000c_1000),
            Some(0x0000_8c00_000f_1000)
        );
        assert_eq!(check_descriptor(0x0000_ec00_e008_1000), None);
        assert_eq!(check_descriptor(0x0000_ec01_e033_1000), None);
    }
}
