//! `console_io`: the initial domain's console on hv's serial line.
//!
//! `CONSOLEIO_write` copies the guest's buffer in chunks and prints each one
//! raw; a buffer that faults gives `-EFAULT` (chunks before the fault were
//! printed, as on Xen). `CONSOLEIO_read` has no input yet and returns 0.
//! Domains without the privilege get `-EPERM` (Xen's default XSM policy).

use guest_abi::console::{CONSOLEIO_READ, CONSOLEIO_WRITE};
use guest_abi::errno;

use super::HcResult;

const CHUNK: usize = 128;

pub fn console_io(cmd: u32, count: u32, buffer: u64) -> HcResult {
    if !crate::domain::with_current(|d| d.privileged) {
        return Err(-errno::EPERM);
    }
    match cmd {
        CONSOLEIO_WRITE => {
            let mut buf = [0u8; CHUNK];
            let total = usize::try_from(count).map_err(|_| -errno::EINVAL)?;
            let mut done = 0usize;
            while done < total {
                let n = CHUNK.min(total - done);
                let va = buffer.checked_add(done as u64).ok_or(-errno::EFAULT)?;
                super::copy_in(va, &mut buf[..n])?;
                crate::console::guest_write(&buf[..n]);
                done += n;
            }
            Ok(0)
        }
        CONSOLEIO_READ => Ok(0),
        _ => Err(-errno::ENOSYS),
    }
}
