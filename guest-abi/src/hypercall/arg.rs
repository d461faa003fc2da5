//! [`IntoArg`]: how a typed wrapper's argument becomes the `u64` its
//! register carries.
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

#[cfg(test)]
mod tests {
    use super::IntoArg;

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
}
