//! Decoding of the few privileged instructions hv emulates for a 64-bit PV
//! guest (the set Xen 4.17's PV privileged-op emulator accepts).
//!
//! The decoder is pure: it takes the bytes copied from the guest's `rip` and
//! either names one instruction and its length or refuses. It is strict on
//! purpose: anything it does not recognise exactly (an unknown opcode, a
//! `lock` prefix, a control register other than 0/2/3/4, more than 15
//! bytes) is [`DecodeError::Unsupported`], and the caller delivers #GP to
//! the guest as the hardware would have. Instruction bytes never come from
//! the error code or any other hint: only from guest memory.
//!
//! Prefixes handled: operand size (0x66), address size (0x67, for the
//! string forms), `rep`/`repne` (the string forms treat both as `rep`), the
//! six segment overrides (they matter only for `outs`, whose source may be
//! `fs:`/`gs:` based) and REX. As on hardware, a REX byte counts only when
//! it immediately precedes the opcode.

/// The architectural maximum instruction length.
pub const MAX_INSN_LEN: usize = 15;

/// A segment register named by an override prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    Es,
    Cs,
    Ss,
    Ds,
    Fs,
    Gs,
}

/// Where an `in`/`out` takes its port number from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// An 8-bit immediate.
    Imm(u8),
    /// The `dx` register.
    Dx,
}

/// A control register hv emulates accesses to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cr {
    Cr0,
    Cr2,
    Cr3,
    Cr4,
}

/// One decoded instruction. `size` is the I/O width in bytes (1, 2 or 4);
/// `gpr` is a general-purpose register number in the encoding's order
/// (0 = rax, 1 = rcx, 2 = rdx, 3 = rbx, 4 = rsp, 5 = rbp, 6 = rsi,
/// 7 = rdi, 8..15 = r8..r15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insn {
    In {
        port: Port,
        size: u8,
    },
    Out {
        port: Port,
        size: u8,
    },
    /// `ins`: port `dx` to `es:[rdi]` (`edi` with `addr32`).
    Ins {
        size: u8,
        rep: bool,
        addr32: bool,
    },
    /// `outs`: `seg:[rsi]` (`esi` with `addr32`) to port `dx`.
    Outs {
        size: u8,
        rep: bool,
        addr32: bool,
        seg: Seg,
    },
    Cli,
    Sti,
    Clts,
    Wbinvd,
    Rdtsc,
    Rdmsr,
    Wrmsr,
    Cpuid,
    /// `xsetbv` (`0f 01 d1`): XCR[`ecx`] = `edx:eax`.
    Xsetbv,
    MovFromCr {
        cr: Cr,
        gpr: u8,
    },
    MovToCr {
        cr: Cr,
        gpr: u8,
    },
    /// `rdtscp` (`0f 01 f9`).
    Rdtscp,
    /// `mov` from DR`dr` (0-7) to a general register.
    MovFromDr {
        dr: u8,
        gpr: u8,
    },
    /// `mov` from a general register to DR`dr` (0-7).
    MovToDr {
        dr: u8,
        gpr: u8,
    },
}

/// A decoded instruction and its length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    pub insn: Insn,
    pub len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes ran out before the instruction ended (the caller could
    /// not read further, or the instruction exceeds 15 bytes).
    Truncated,
    /// Not an instruction hv emulates.
    Unsupported,
}

#[derive(Default)]
struct Prefixes {
    opsize: bool,
    addrsize: bool,
    rep: bool,
    seg: Option<Seg>,
    rex: u8,
}

/// Decodes the instruction at the start of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let bytes = bytes.get(..MAX_INSN_LEN).unwrap_or(bytes);
    let mut p = Prefixes::default();
    let mut i = 0usize;
    let byte = |i: usize| bytes.get(i).copied().ok_or(DecodeError::Truncated);
    let opcode = loop {
        let b = byte(i)?;
        i += 1;
        match b {
            0x66 => p.opsize = true,
            0x67 => p.addrsize = true,
            0xf2 | 0xf3 => p.rep = true,
            0x26 => p.seg = Some(Seg::Es),
            0x2e => p.seg = Some(Seg::Cs),
            0x36 => p.seg = Some(Seg::Ss),
            0x3e => p.seg = Some(Seg::Ds),
            0x64 => p.seg = Some(Seg::Fs),
            0x65 => p.seg = Some(Seg::Gs),
            // `lock` on any of these instructions is #UD on hardware.
            0xf0 => return Err(DecodeError::Unsupported),
            0x40..=0x4f => {
                // REX counts only immediately before the opcode.
                let next = byte(i)?;
                if (0x40..=0x4f).contains(&next) || is_legacy_prefix(next) {
                    continue;
                }
                p.rex = b;
            }
            _ => break b,
        }
    };
    let wide = if p.opsize { 2 } else { 4 };
    let insn = match opcode {
        0xe4 => Insn::In {
            port: Port::Imm(byte(i)?),
            size: 1,
        },
        0xe5 => Insn::In {
            port: Port::Imm(byte(i)?),
            size: wide,
        },
        0xe6 => Insn::Out {
            port: Port::Imm(byte(i)?),
            size: 1,
        },
        0xe7 => Insn::Out {
            port: Port::Imm(byte(i)?),
            size: wide,
        },
        0xec => Insn::In {
            port: Port::Dx,
            size: 1,
        },
        0xed => Insn::In {
            port: Port::Dx,
            size: wide,
        },
        0xee => Insn::Out {
            port: Port::Dx,
            size: 1,
        },
        0xef => Insn::Out {
            port: Port::Dx,
            size: wide,
        },
        0x6c | 0x6d => Insn::Ins {
            size: if opcode == 0x6c { 1 } else { wide },
            rep: p.rep,
            addr32: p.addrsize,
        },
        0x6e | 0x6f => Insn::Outs {
            size: if opcode == 0x6e { 1 } else { wide },
            rep: p.rep,
            addr32: p.addrsize,
            seg: p.seg.unwrap_or(Seg::Ds),
        },
        0xfa => Insn::Cli,
        0xfb => Insn::Sti,
        0x0f => {
            let op2 = byte(i)?;
            i += 1;
            match op2 {
                0x06 => Insn::Clts,
                0x09 => Insn::Wbinvd,
                0x30 => Insn::Wrmsr,
                0x31 => Insn::Rdtsc,
                0x32 => Insn::Rdmsr,
                0xa2 => Insn::Cpuid,
                // Of group 7 only `xsetbv`; with 66/f2/f3 the CPU raises
                // #UD itself, so such bytes never reach hv through #GP.
                0x01 if byte(i)? == 0xd1 && !p.opsize && !p.rep => {
                    i += 1;
                    Insn::Xsetbv
                }
                0x01 if byte(i)? == 0xf9 && !p.opsize && !p.rep => {
                    i += 1;
                    Insn::Rdtscp
                }
                0x21 | 0x23 => {
                    // As for control registers the operand is always a
                    // register; REX.R names DR8-15, which raise #UD.
                    let modrm = byte(i)?;
                    if p.rex & 4 != 0 {
                        return Err(DecodeError::Unsupported);
                    }
                    let dr = (modrm >> 3) & 7;
                    let gpr = (modrm & 7) | if p.rex & 1 != 0 { 8 } else { 0 };
                    if op2 == 0x21 {
                        Insn::MovFromDr { dr, gpr }
                    } else {
                        Insn::MovToDr { dr, gpr }
                    }
                }
                0x20 | 0x22 => {
                    // The mod field is ignored: the operand is always a
                    // register.
                    let modrm = byte(i)?;
                    let reg = ((modrm >> 3) & 7) | if p.rex & 4 != 0 { 8 } else { 0 };
                    let gpr = (modrm & 7) | if p.rex & 1 != 0 { 8 } else { 0 };
                    let cr = match reg {
                        0 => Cr::Cr0,
                        2 => Cr::Cr2,
                        3 => Cr::Cr3,
                        4 => Cr::Cr4,
                        _ => return Err(DecodeError::Unsupported),
                    };
                    if op2 == 0x20 {
                        Insn::MovFromCr { cr, gpr }
                    } else {
                        Insn::MovToCr { cr, gpr }
                    }
                }
                _ => return Err(DecodeError::Unsupported),
            }
        }
        _ => return Err(DecodeError::Unsupported),
    };
    let operand_bytes = match opcode {
        0xe4..=0xe7 => 1,
        0x0f => match insn {
            Insn::MovFromCr { .. }
            | Insn::MovToCr { .. }
            | Insn::MovFromDr { .. }
            | Insn::MovToDr { .. } => 1,
            _ => 0,
        },
        _ => 0,
    };
    let len = i + operand_bytes;
    if len > MAX_INSN_LEN {
        return Err(DecodeError::Truncated);
    }
    Ok(Decoded { insn, len })
}

fn is_legacy_prefix(b: u8) -> bool {
    matches!(
        b,
        0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3 | 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65
    )
}

/// The vector of `int imm8` (`cd ib`) at the start of `bytes`, exactly
/// that encoding: no prefix (a prefixed `int` is not what Xen's 2-byte
/// software-interrupt path assumes), and neither `int3` (`cc`), `into`
/// (`ce`) nor `int1` (`f1`), which reach their own gates. The instruction
/// is 2 bytes long.
pub fn int_n(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [0xcd, n, ..] => Some(*n),
        _ => None,
    }
}

/// Length of `int imm8`.
pub const INT_N_LEN: u64 = 2;

/// Whether the first bytes are Xen's forced-emulation prefix
/// (`ud2; .ascii "xen"`) followed by `cpuid`; the total length is 7.
pub fn is_forced_cpuid(bytes: &[u8]) -> bool {
    bytes.get(..7) == Some(&FORCED_CPUID[..])
}

/// `ud2; .ascii "xen"; cpuid`.
pub const FORCED_CPUID: [u8; 7] = [0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0xa2];

/// Where a memory write's operand comes from: a register (its encoding
/// number) or an immediate (sign-extended to the operand size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreSrc {
    Reg(u8),
    Imm(i64),
}

/// What a memory write does with its operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// `mov`: memory = operand.
    Mov,
    /// `xchg`: memory = operand, and the register gets the old value.
    Xchg,
    /// `and`: memory &= operand (flags as `and` sets them).
    And,
    /// `or`: memory |= operand.
    Or,
}

/// A write to memory of `size` bytes (1, 4, or 8 with REX.W), `len` bytes
/// long: `mov r/m, r` (0x89), `mov r/m, imm32` (0xC7 /0), `mov r/m8, imm8`
/// (0xC6 /0), `xchg r/m, r` (0x87, Linux's `ptep_get_and_clear`),
/// `and`/`or` with a register (0x21 / 0x09) or an immediate (0x81, 0x83,
/// and 0x80 for a byte: Linux's `clear_bit`/`set_bit` with a constant bit,
/// as `ptep_set_wrprotect` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Store {
    pub op: StoreOp,
    pub src: StoreSrc,
    pub size: u8,
    pub len: usize,
}

/// Decodes a write to memory, the instructions a PV kernel changes its
/// page table entries with (Linux's `native_set_pte` is a 64-bit `mov`):
/// the emulation of writes to read-only page tables (Xen's "ptwr") takes
/// its operation, operand and length from here; the address is the
/// fault's cr2. Segment prefixes (64-bit code: no effect on the value),
/// `lock` (the CPU has already refused it where it is not allowed) and REX
/// are accepted; anything else (other prefixes, register destinations,
/// other opcodes) is `None`, and the fault goes to the guest.
pub fn decode_store(bytes: &[u8]) -> Option<Store> {
    let bytes = bytes.get(..MAX_INSN_LEN).unwrap_or(bytes);
    let mut i = 0usize;
    let mut rex = 0u8;
    let opcode = loop {
        let b = *bytes.get(i)?;
        i += 1;
        match b {
            0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0xf0 if rex == 0 => {}
            0x40..=0x4f if rex == 0 => rex = b,
            _ => break b,
        }
    };
    let modrm = *bytes.get(i)?;
    i += 1;
    let (md, reg, rm) = (modrm >> 6, (modrm >> 3) & 7, modrm & 7);
    if md == 3 {
        return None;
    }
    // SIB and displacement.
    let mut base = rm;
    if rm == 4 {
        base = bytes.get(i)? & 7;
        i += 1;
    }
    i += match md {
        0 if rm == 5 || (rm == 4 && base == 5) => 4,
        0 => 0,
        1 => 1,
        _ => 4,
    };
    let wide = if rex & 0x08 != 0 { 8 } else { 4 };
    let src_reg = StoreSrc::Reg(reg | ((rex & 0x04) << 1));
    let mut imm = |n: usize| -> Option<StoreSrc> {
        let b = bytes.get(i..i + n)?;
        i += n;
        let v = match *b {
            [x] => i64::from(x.cast_signed()),
            [a, b, c, d] => i64::from(i32::from_le_bytes([a, b, c, d])),
            _ => return None,
        };
        Some(StoreSrc::Imm(v))
    };
    // The operation of a group-1 opcode's reg field: only and (4) and or (1).
    let group1 = |reg: u8| match reg {
        1 => Some(StoreOp::Or),
        4 => Some(StoreOp::And),
        _ => None,
    };
    let (op, src, size) = match opcode {
        0x89 => (StoreOp::Mov, src_reg, wide),
        0x87 => (StoreOp::Xchg, src_reg, wide),
        0x21 => (StoreOp::And, src_reg, wide),
        0x09 => (StoreOp::Or, src_reg, wide),
        0xc7 if reg == 0 => (StoreOp::Mov, imm(4)?, wide),
        0xc6 if reg == 0 => (StoreOp::Mov, imm(1)?, 1),
        0x81 => (group1(reg)?, imm(4)?, wide),
        0x83 => (group1(reg)?, imm(1)?, wide),
        0x80 => (group1(reg)?, imm(1)?, 1),
        _ => return None,
    };
    (i <= bytes.len()).then_some(Store {
        op,
        src,
        size,
        len: i,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(bytes: &[u8]) -> Decoded {
        decode(bytes).expect("decodes")
    }

    #[test]
    fn xsetbv() {
        assert_eq!(
            ok(&[0x0f, 0x01, 0xd1, 0x90]),
            Decoded {
                insn: Insn::Xsetbv,
                len: 3
            }
        );
        assert_eq!(ok(&[0x48, 0x0f, 0x01, 0xd1]).len, 4, "REX.W is ignored");
        assert_eq!(decode(&[0x0f, 0x01, 0xd0]), Err(DecodeError::Unsupported));
        assert_eq!(
            decode(&[0x66, 0x0f, 0x01, 0xf9]),
            Err(DecodeError::Unsupported)
        );
        assert_eq!(
            decode(&[0x66, 0x0f, 0x01, 0xd1]),
            Err(DecodeError::Unsupported)
        );
        assert_eq!(
            decode(&[0xf0, 0x0f, 0x01, 0xd1]),
            Err(DecodeError::Unsupported)
        );
        assert_eq!(decode(&[0x0f, 0x01]), Err(DecodeError::Truncated));
    }

    #[test]
    fn software_interrupts() {
        assert_eq!(int_n(&[0xcd, 0x80, 0x90]), Some(0x80));
        assert_eq!(int_n(&[0xcd, 0x00]), Some(0));
        assert_eq!(int_n(&[0xcd]), None);
        assert_eq!(int_n(&[0x66, 0xcd, 0x80]), None);
        assert_eq!(int_n(&[0x48, 0xcd, 0x80]), None);
        assert_eq!(int_n(&[0xcc]), None);
        assert_eq!(int_n(&[0xce]), None);
        assert_eq!(int_n(&[0xf1]), None);
        assert_eq!(int_n(&[]), None);
    }

    #[test]
    fn port_io() {
        assert_eq!(
            ok(&[0xe4, 0x80]),
            Decoded {
                insn: Insn::In {
                    port: Port::Imm(0x80),
                    size: 1
                },
                len: 2
            }
        );
        assert_eq!(
            ok(&[0x66, 0xed]).insn,
            Insn::In {
                port: Port::Dx,
                size: 2
            }
        );
        assert_eq!(ok(&[0x66, 0xed]).len, 2);
        assert_eq!(
            ok(&[0xef]).insn,
            Insn::Out {
                port: Port::Dx,
                size: 4
            }
        );
        // REX.W does not make port I/O 64-bit.
        assert_eq!(
            ok(&[0x48, 0xe7, 0x10]).insn,
            Insn::Out {
                port: Port::Imm(0x10),
                size: 4
            }
        );
        assert_eq!(ok(&[0x48, 0xe7, 0x10]).len, 3);
        assert_eq!(decode(&[0xe4]), Err(DecodeError::Truncated));
    }

    #[test]
    fn string_io() {
        assert_eq!(
            ok(&[0xf3, 0x6c]).insn,
            Insn::Ins {
                size: 1,
                rep: true,
                addr32: false
            }
        );
        assert_eq!(
            ok(&[0x64, 0x67, 0x66, 0xf3, 0x6f]),
            Decoded {
                insn: Insn::Outs {
                    size: 2,
                    rep: true,
                    addr32: true,
                    seg: Seg::Fs
                },
                len: 5
            }
        );
        assert_eq!(
            ok(&[0x6e]).insn,
            Insn::Outs {
                size: 1,
                rep: false,
                addr32: false,
                seg: Seg::Ds
            }
        );
    }

    #[test]
    fn system_instructions() {
        assert_eq!(ok(&[0xfa]).insn, Insn::Cli);
        assert_eq!(ok(&[0xfb]).insn, Insn::Sti);
        assert_eq!(ok(&[0x0f, 0x06]).insn, Insn::Clts);
        assert_eq!(ok(&[0x0f, 0x09]).insn, Insn::Wbinvd);
        assert_eq!(ok(&[0x0f, 0x32]).insn, Insn::Rdmsr);
        assert_eq!(ok(&[0x0f, 0x30]).insn, Insn::Wrmsr);
        assert_eq!(ok(&[0x0f, 0xa2]).len, 2);
    }

    #[test]
    fn control_registers() {
        // mov %cr3, %rax
        assert_eq!(
            ok(&[0x0f, 0x20, 0xd8]),
            Decoded {
                insn: Insn::MovFromCr {
                    cr: Cr::Cr3,
                    gpr: 0
                },
                len: 3
            }
        );
        // mov %cr0, %r9 (REX.B)
        assert_eq!(
            ok(&[0x41, 0x0f, 0x20, 0xc1]).insn,
            Insn::MovFromCr {
                cr: Cr::Cr0,
                gpr: 9
            }
        );
        // mov %rbx, %cr4
        assert_eq!(
            ok(&[0x0f, 0x22, 0xe3]).insn,
            Insn::MovToCr {
                cr: Cr::Cr4,
                gpr: 3
            }
        );
        // cr8 (REX.R) and cr1 are refused.
        assert_eq!(
            decode(&[0x44, 0x0f, 0x20, 0xc0]),
            Err(DecodeError::Unsupported)
        );
        assert_eq!(decode(&[0x0f, 0x20, 0xc8]), Err(DecodeError::Unsupported));
        assert_eq!(decode(&[0x0f, 0x20]), Err(DecodeError::Truncated));
    }

    #[test]
    fn debug_registers_and_rdtscp() {
        // mov %db7, %rax; mov %r10, %db0 (REX.B)
        assert_eq!(
            ok(&[0x0f, 0x21, 0xf8]),
            Decoded {
                insn: Insn::MovFromDr { dr: 7, gpr: 0 },
                len: 3
            }
        );
        assert_eq!(
            ok(&[0x41, 0x0f, 0x23, 0xc2]).insn,
            Insn::MovToDr { dr: 0, gpr: 10 }
        );
        assert_eq!(decode(&[0x0f, 0x23]), Err(DecodeError::Truncated));
        assert_eq!(
            ok(&[0x0f, 0x01, 0xf9]),
            Decoded {
                insn: Insn::Rdtscp,
                len: 3
            }
        );
    }

    #[test]
    fn rex_only_counts_next_to_the_opcode() {
        // REX.B then an operand-size prefix: the REX is dropped.
        assert_eq!(
            ok(&[0x41, 0x66, 0x0f, 0x20, 0xc1]).insn,
            Insn::MovFromCr {
                cr: Cr::Cr0,
                gpr: 1
            }
        );
    }

    #[test]
    fn refused() {
        assert_eq!(decode(&[0xf4]), Err(DecodeError::Unsupported)); // hlt
        assert_eq!(decode(&[0xf0, 0xfa]), Err(DecodeError::Unsupported)); // lock cli
        assert_eq!(decode(&[0x0f, 0x01, 0xf8]), Err(DecodeError::Unsupported)); // swapgs
        assert_eq!(
            decode(&[0x44, 0x0f, 0x21, 0xc0]),
            Err(DecodeError::Unsupported)
        ); // mov dr8
        assert_eq!(decode(&[]), Err(DecodeError::Truncated));
        // Fifteen prefixes leave no room for the opcode.
        assert_eq!(decode(&[0x66; 16]), Err(DecodeError::Truncated));
    }

    #[test]
    fn forced_emulation_prefix() {
        assert!(is_forced_cpuid(&[
            0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0xa2, 0x90
        ]));
        assert!(!is_forced_cpuid(&[
            0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0x31
        ]));
        assert!(!is_forced_cpuid(&[0x0f, 0x0b, b'x', b'e', b'n']));
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;

    #[test]
    fn stores_as_linux_writes_ptes() {
        // native_set_pte: mov %rbp,(%rbx)
        assert_eq!(
            decode_store(&[0x48, 0x89, 0x2b, 0x5b]),
            Some(Store {
                op: StoreOp::Mov,
                src: StoreSrc::Reg(5),
                size: 8,
                len: 3
            })
        );
        // mov %r8,0x10(%rdi,%rax,8)
        assert_eq!(
            decode_store(&[0x4c, 0x89, 0x44, 0xc7, 0x10]),
            Some(Store {
                op: StoreOp::Mov,
                src: StoreSrc::Reg(8),
                size: 8,
                len: 5
            })
        );
        // native_ptep_get_and_clear: xchg %rdx,(%rax)
        assert_eq!(
            decode_store(&[0x48, 0x87, 0x10, 0x48]),
            Some(Store {
                op: StoreOp::Xchg,
                src: StoreSrc::Reg(2),
                size: 8,
                len: 3
            })
        );
        // xchg %r9d,0x8(%rsi)
        assert_eq!(
            decode_store(&[0x44, 0x87, 0x4e, 0x08]),
            Some(Store {
                op: StoreOp::Xchg,
                src: StoreSrc::Reg(9),
                size: 4,
                len: 4
            })
        );
        // ptep_set_wrprotect's clear_bit(_PAGE_BIT_RW): ds andb $0xfd,(%r12)
        assert_eq!(
            decode_store(&[0x3e, 0x41, 0x80, 0x24, 0x24, 0xfd, 0x48]),
            Some(Store {
                op: StoreOp::And,
                src: StoreSrc::Imm(-3),
                size: 1,
                len: 6
            })
        );
        // lock orb $0x20,(%rdi); lock andq $-3,(%rdi); or %rax,(%rdi)
        assert_eq!(
            decode_store(&[0xf0, 0x80, 0x0f, 0x20]).map(|s| (s.op, s.src, s.size)),
            Some((StoreOp::Or, StoreSrc::Imm(0x20), 1))
        );
        assert_eq!(
            decode_store(&[0xf0, 0x48, 0x83, 0x27, 0xfd]).map(|s| (s.op, s.src, s.size)),
            Some((StoreOp::And, StoreSrc::Imm(-3), 8))
        );
        assert_eq!(
            decode_store(&[0x48, 0x09, 0x07]).map(|s| (s.op, s.src)),
            Some((StoreOp::Or, StoreSrc::Reg(0)))
        );
        // xorb and adds are not page-table writes hv emulates.
        assert_eq!(decode_store(&[0x80, 0x37, 0x01]), None);
        assert_eq!(decode_store(&[0x48, 0x01, 0x07]), None);
        // movl %eax,0x4(%rbx): a 32-bit half
        assert_eq!(
            decode_store(&[0x89, 0x43, 0x04]),
            Some(Store {
                op: StoreOp::Mov,
                src: StoreSrc::Reg(0),
                size: 4,
                len: 3
            })
        );
        // movq $0x0,(%rdi): a cleared entry; rip-relative with disp32
        assert_eq!(
            decode_store(&[0x48, 0xc7, 0x07, 0, 0, 0, 0]),
            Some(Store {
                op: StoreOp::Mov,
                src: StoreSrc::Imm(0),
                size: 8,
                len: 7
            })
        );
        assert_eq!(
            decode_store(&[0x48, 0xc7, 0x05, 1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff]),
            Some(Store {
                op: StoreOp::Mov,
                src: StoreSrc::Imm(-1),
                size: 8,
                len: 11
            })
        );
        // [rbp] needs a disp8; SIB with no base needs a disp32.
        assert_eq!(
            decode_store(&[0x48, 0x89, 0x45, 0x00]).map(|s| s.len),
            Some(4)
        );
        assert_eq!(
            decode_store(&[0x48, 0x89, 0x04, 0x25, 0, 0x10, 0, 0]).map(|s| s.len),
            Some(8)
        );
        // gs: prefix before REX.
        assert_eq!(
            decode_store(&[0x65, 0x48, 0x89, 0x2b]).map(|s| s.len),
            Some(4)
        );
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(
            decode_store(&[0x48, 0x89, 0xc3]),
            None,
            "register destination"
        );
        assert_eq!(decode_store(&[0xf3, 0x48, 0x89, 0x2b]), None, "rep");
        assert_eq!(decode_store(&[0x48, 0xc7, 0x0f, 0, 0, 0, 0]), None, "c7 /1");
        assert_eq!(decode_store(&[0x66, 0x89, 0x03]), None, "16-bit");
        assert_eq!(decode_store(&[0x48, 0x89]), None, "truncated");
        assert_eq!(
            decode_store(&[0x48, 0xc7, 0x07, 0, 0]),
            None,
            "truncated imm"
        );
        assert_eq!(decode_store(&[0x48, 0x48, 0x89, 0x2b]), None, "two REX");
        assert_eq!(decode_store(&[]), None);
    }
}
