//! `console_io`: the initial domain's console on hv's serial line.
//!
//! `CONSOLEIO_write` copies the guest's buffer in 127-byte chunks (Xen's)
//! and prints each one raw; a buffer that faults gives `-EFAULT` (chunks
//! before the fault were printed, as on Xen). A long write is preempted
//! every [`CHUNKS_PER_CALL`] chunks: the call is re-issued with the rest, so
//! hv never spends unbounded time on one guest request.
//! `CONSOLEIO_read` copies out serial input (`crate::console_input`),
//! after refusing counts above `INT_MAX` with `-E2BIG` as Xen does. Domains without the privilege
//! get `-EPERM` (Xen's default XSM policy): the dispatcher checks that
//! before the command, and hands this handler the capability.

use guest_abi::console::{CONSOLEIO_READ, CONSOLEIO_WRITE};
use guest_abi::errno::Errno;

use super::{Outcome, Privileged};
use crate::guest_mem::{GuestSlice, Loaded};

const CHUNK: usize = 127;
/// Chunks printed before the call yields and resumes.
const CHUNKS_PER_CALL: usize = 32;

pub fn console_io(_: Privileged, cmd: u32, count: u32, buffer: u64) -> Outcome {
    match cmd {
        CONSOLEIO_WRITE => match write(count, buffer) {
            Ok(None) => Outcome::Done(0),
            // Resume with what is left: (cmd, count - done, buffer + done).
            Ok(Some((left, rest))) => Outcome::again([u64::from(cmd), left, rest]),
            Err(e) => Outcome::Err(e),
        },
        // The result is a count or an errno, so counts that would read as
        // negative are refused first (as on Xen).
        CONSOLEIO_READ if i32::try_from(count).is_err() => Outcome::Err(Errno::E2BIG),
        CONSOLEIO_READ => match crate::console_input::read(count, buffer) {
            Ok(n) => Outcome::Done(u64::from(n)),
            Err(e) => Outcome::Err(e),
        },
        _ => Outcome::Err(Errno::ENOSYS),
    }
}

/// Prints up to [`CHUNKS_PER_CALL`] chunks of the buffer; returns what is
/// left (count, address) if that was not all of it.
fn write(count: u32, buffer: u64) -> Result<Option<(u64, u64)>, Errno> {
    let mut buf = [0u8; CHUNK];
    let total = usize::try_from(count).map_err(|_| Errno::EFAULT)?;
    // Checked chunk by chunk, as Xen copies it.
    let text = GuestSlice::<u8>::per_element(buffer, u64::from(count));
    let mut done = 0usize;
    for _ in 0..CHUNKS_PER_CALL {
        if done == total {
            return Ok(None);
        }
        let n = CHUNK.min(total - done);
        text.read_into(&Loaded, done as u64, &mut buf[..n])?;
        crate::console::guest_write(&buf[..n]);
        done += n;
    }
    if done == total {
        return Ok(None);
    }
    let rest = buffer.checked_add(done as u64).ok_or(Errno::EFAULT)?;
    Ok(Some(((total - done) as u64, rest)))
}
