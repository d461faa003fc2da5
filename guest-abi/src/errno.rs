//! Xen's error numbers (`xen/errno.h`).
//!
//! Hypercalls return `-E…` on failure. The values are Xen's own, which
//! happen to match Linux's for the common ones but are defined by Xen's
//! header, not by any host libc. [`EINTR`] and [`ERESTART`] are internal to
//! the hypervisor: a guest must never see them.
//!
//! [`Errno`] is the same list as a type: a value of it is one of the named
//! numbers, so code that returns an `Errno` cannot return a number Xen does
//! not define.

/// Declares each errno constant and the table [`name`] searches.
macro_rules! errnos {
    ($( $konst:ident = $val:literal, $doc:literal; )*) => {
        $(
            #[doc = $doc]
            pub const $konst: i64 = $val;
        )*

        /// Every errno, as (name, value), in header order (aliases last).
        pub const ALL: &[(&str, i64)] = &[ $( (stringify!($konst), $val), )* ];

        impl Errno {
            $(
                #[doc = $doc]
                pub const $konst: Errno = Errno((-$val as i64).cast_unsigned());
            )*
        }
    };
}

/// One of Xen's error numbers. The field is private: the only values are
/// the associated constants (`Errno::EINVAL`, ...), so no other number can
/// be made into one. It holds the value a hypercall returns for it
/// (`-errno` in a register), so returning it costs nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(u64);

impl Errno {
    /// The positive number (`EINVAL` is 22).
    pub const fn get(self) -> i64 {
        -self.0.cast_signed()
    }

    /// What a hypercall returns in `rax` for it: `-errno`, as an unsigned
    /// register value.
    pub const fn to_ret(self) -> u64 {
        self.0
    }
}

errnos! {
    EPERM = 1, "Operation not permitted.";
    ENOENT = 2, "No such file or directory.";
    ESRCH = 3, "No such process (domain).";
    EINTR = 4, "Interrupted system call (hypervisor-internal, never returned to a guest).";
    EIO = 5, "I/O error.";
    ENXIO = 6, "No such device or address.";
    E2BIG = 7, "Argument list too long.";
    ENOEXEC = 8, "Exec format error.";
    EBADF = 9, "Bad file number.";
    ECHILD = 10, "No child processes.";
    EAGAIN = 11, "Try again.";
    ENOMEM = 12, "Out of memory.";
    EACCES = 13, "Permission denied.";
    EFAULT = 14, "Bad address.";
    EBUSY = 16, "Device or resource busy.";
    EEXIST = 17, "File exists.";
    EXDEV = 18, "Cross-device link.";
    ENODEV = 19, "No such device.";
    ENOTDIR = 20, "Not a directory.";
    EISDIR = 21, "Is a directory.";
    EINVAL = 22, "Invalid argument.";
    ENFILE = 23, "File table overflow.";
    EMFILE = 24, "Too many open files.";
    ENOSPC = 28, "No space left on device.";
    EROFS = 30, "Read-only file system.";
    EMLINK = 31, "Too many links.";
    EDOM = 33, "Math argument out of domain of function.";
    ERANGE = 34, "Math result not representable.";
    EDEADLK = 35, "Resource deadlock would occur.";
    ENAMETOOLONG = 36, "File name too long.";
    ENOLCK = 37, "No record locks available.";
    ENOSYS = 38, "Function not implemented.";
    ENOTEMPTY = 39, "Directory not empty.";
    ENODATA = 61, "No data available.";
    ETIME = 62, "Timer expired.";
    EBADMSG = 74, "Not a data message.";
    EOVERFLOW = 75, "Value too large for defined data type.";
    EILSEQ = 84, "Illegal byte sequence.";
    ERESTART = 85, "Restart the interrupted call (hypervisor-internal, never returned to a guest).";
    ENOTSOCK = 88, "Socket operation on non-socket.";
    EMSGSIZE = 90, "Message too large.";
    EOPNOTSUPP = 95, "Operation not supported.";
    EADDRINUSE = 98, "Address already in use.";
    EADDRNOTAVAIL = 99, "Cannot assign requested address.";
    ENOBUFS = 105, "No buffer space available.";
    EISCONN = 106, "Transport endpoint is already connected.";
    ENOTCONN = 107, "Transport endpoint is not connected.";
    ETIMEDOUT = 110, "Connection timed out.";
    ECONNREFUSED = 111, "Connection refused.";
    EWOULDBLOCK = 11, "Operation would block (alias of EAGAIN).";
    EDEADLOCK = 35, "Resource deadlock would occur (alias of EDEADLK).";
}

/// The symbolic name of an error number, for printing.
///
/// Accepts the positive value or the negated one a hypercall returns, so
/// `name(rc)` works directly on a result. Aliases resolve to the primary
/// name (`EAGAIN`, `EDEADLK`). Returns `"0"` for zero and `"E?"` for a value
/// Xen does not define.
pub fn name(e: i64) -> &'static str {
    if e == 0 {
        return "0";
    }
    let v = e.checked_abs().unwrap_or(0);
    ALL.iter()
        .find(|&&(_, val)| val == v)
        .map_or("E?", |&(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name(-ENOSYS), "ENOSYS");
        assert_eq!(name(EINVAL), "EINVAL");
        assert_eq!(name(-11), "EAGAIN");
        assert_eq!(name(-35), "EDEADLK");
        assert_eq!(name(0), "0");
        assert_eq!(name(-1000), "E?");
        assert_eq!(name(i64::MIN), "E?");
    }

    #[test]
    fn typed_errnos_are_the_numbers() {
        assert_eq!(Errno::EINVAL.get(), EINVAL);
        assert_eq!(Errno::ENOSYS.to_ret(), (-ENOSYS).cast_unsigned());
        assert_eq!(name(Errno::EAGAIN.get()), "EAGAIN");
    }
}
