//! [`IntoArg`]: how a typed wrapper's argument becomes the `u64` its
//! register carries; [`FromArg`] and [`FromRegs`]: how the hypervisor reads
//! it back, as Xen's C prototype declares it.
//!
//! Built on every target (unlike the wrappers) so the conversions are
//! tested on the host.
//!
//! Unsigned integers are zero-extended. Signed ones (`i32` for a C `int`,
//! `i64`) are sign-extended: Xen's handlers read an `int` parameter from
//! the register's low 32 bits, where both extensions agree, and a handler
//! that reads the whole register as a `long` then sees the same negative
//! number the C caller meant. A pointer becomes its address, with its
//! provenance exposed, because the hypervisor will read or write through
//! that integer behind the compiler's back.

/// A value that a hypercall register can carry: an integer or a pointer.
pub trait IntoArg {
    /// The register value.
    fn into_arg(self) -> u64;
}

impl IntoArg for u64 {
    fn into_arg(self) -> u64 {
        self
    }
}

impl IntoArg for u32 {
    fn into_arg(self) -> u64 {
        u64::from(self)
    }
}

impl IntoArg for u16 {
    fn into_arg(self) -> u64 {
        u64::from(self)
    }
}

impl IntoArg for u8 {
    fn into_arg(self) -> u64 {
        u64::from(self)
    }
}

impl IntoArg for usize {
    fn into_arg(self) -> u64 {
        // usize is at most 64 bits on every target this crate builds for.
        u64::try_from(self).unwrap_or(u64::MAX)
    }
}

impl IntoArg for i64 {
    fn into_arg(self) -> u64 {
        self.cast_unsigned()
    }
}

impl IntoArg for i32 {
    fn into_arg(self) -> u64 {
        i64::from(self).cast_unsigned()
    }
}

impl<T> IntoArg for *const T {
    fn into_arg(self) -> u64 {
        self.expose_provenance().into_arg()
    }
}

impl<T> IntoArg for *mut T {
    fn into_arg(self) -> u64 {
        self.expose_provenance().into_arg()
    }
}

/// How a hypervisor reads an argument register whose C type is `Self`: as
/// Xen's handlers do, an `int` or `unsigned int` is the register's low 32
/// bits and a `domid_t` its low 16 (the rest is ignored, not refused); an
/// `unsigned long` or a pointer is the whole register (a pointer is a guest
/// address, `u64`, for the hypervisor to copy through).
pub trait FromArg {
    /// The value the handler gets.
    type Value;
    /// Reads it from the register.
    fn from_arg(reg: u64) -> Self::Value;
}

impl FromArg for u64 {
    type Value = u64;
    fn from_arg(reg: u64) -> u64 {
        reg
    }
}

impl FromArg for u32 {
    type Value = u32;
    fn from_arg(reg: u64) -> u32 {
        (reg & 0xffff_ffff) as u32
    }
}

impl FromArg for i32 {
    type Value = i32;
    fn from_arg(reg: u64) -> i32 {
        u32::from_arg(reg).cast_signed()
    }
}

impl FromArg for u16 {
    type Value = u16;
    fn from_arg(reg: u64) -> u16 {
        (reg & 0xffff) as u16
    }
}

impl<T> FromArg for *const T {
    type Value = u64;
    fn from_arg(reg: u64) -> u64 {
        reg
    }
}

impl<T> FromArg for *mut T {
    type Value = u64;
    fn from_arg(reg: u64) -> u64 {
        reg
    }
}

/// A hypercall's whole argument list (a tuple of its C types, in register
/// order) read from the five argument registers.
pub trait FromRegs {
    /// The tuple of values the handler gets.
    type Values;
    /// Reads them from `rdi`, `rsi`, `rdx`, `r10`, `r8`.
    fn from_regs(regs: [u64; 5]) -> Self::Values;
}

/// `FromRegs` for the tuples of one to five arguments.
macro_rules! from_regs {
    ($( ($($t:ident $i:tt),*) )*) => {
        $(
            impl<$($t: FromArg),*> FromRegs for ($($t,)*) {
                type Values = ($($t::Value,)*);
                fn from_regs(regs: [u64; 5]) -> Self::Values {
                    ($($t::from_arg(regs[$i]),)*)
                }
            }
        )*
    };
}

impl FromRegs for () {
    type Values = ();
    fn from_regs(_: [u64; 5]) {}
}

from_regs! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
}

#[cfg(test)]
mod tests {
    use super::{FromArg, FromRegs, IntoArg};

    #[test]
    fn unsigned_values_are_zero_extended() {
        assert_eq!(u32::MAX.into_arg(), 0xffff_ffff);
        assert_eq!(0x7ff0_u16.into_arg(), 0x7ff0);
        assert_eq!(0xff_u8.into_arg(), 0xff);
        assert_eq!(usize::MAX.into_arg(), u64::MAX);
        assert_eq!(u64::MAX.into_arg(), u64::MAX);
    }

    #[test]
    fn signed_values_are_sign_extended() {
        assert_eq!((-1_i32).into_arg(), u64::MAX);
        assert_eq!(i32::MIN.into_arg(), 0xffff_ffff_8000_0000);
        assert_eq!(5_i32.into_arg(), 5);
        assert_eq!((-22_i64).into_arg(), (-22_i64).cast_unsigned());
        // The low 32 bits, all Xen reads for an `int`, are the C value.
        assert_eq!(
            ((-7_i32).into_arg() & 0xffff_ffff),
            u64::from((-7_i32).cast_unsigned())
        );
    }

    #[test]
    fn pointers_become_their_address() {
        let x = 0_u64;
        let p: *const u64 = &x;
        assert_eq!(p.into_arg(), u64::try_from(p.addr()).unwrap());
        assert_eq!(core::ptr::null_mut::<u8>().into_arg(), 0);
    }

    #[test]
    fn hypervisor_reads_what_the_c_prototype_declares() {
        let high = 0xdead_beef_0000_0000_u64;
        assert_eq!(u32::from_arg(high | 7), 7);
        assert_eq!(i32::from_arg(high | 0xffff_fffe), -2);
        assert_eq!(u16::from_arg(high | 0x1_7ff0), 0x7ff0);
        assert_eq!(<*const u8>::from_arg(high | 8), high | 8);
        // A wrapper's value comes back as itself.
        assert_eq!(i32::from_arg((-9_i32).into_arg()), -9);
        let regs = [high | 1, high | 2, 3, 4, 5];
        assert_eq!(<(u32, u64, *mut u8)>::from_regs(regs), (1, high | 2, 3));
        assert_eq!(<(u64, u64, u64, u64, u16)>::from_regs(regs).4, 5);
    }
}
