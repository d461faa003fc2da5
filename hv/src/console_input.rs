//! Serial input for the initial domain, as Xen 4.17 passes it on: bytes
//! COM1 receives go into a 128-byte ring (dropped while it is full), each
//! one raising `VIRQ_CONSOLE` in domain 0, and `CONSOLEIO_read` copies
//! them out.
//!
//! hv takes no UART interrupt: [`poll`] runs from CPU 0's periodic tick
//! (Xen too polls a UART it has no IRQ for). The ring has one producer
//! (that poll) and lock-free consumers: a read copies a chunk to the guest
//! and only then moves the consumer index past it, so a chunk that faults
//! stays in the ring (as on Xen, where the chunks before it are consumed).

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use guest_abi::errno::Errno;

use crate::arch::x86_64::serial;
use crate::domain::{self, DomId};
use crate::guest_mem::{GuestSlice, Loaded};

/// Xen's `SERIAL_RX_SIZE`.
const SIZE: u32 = 128;
/// Bytes taken from the UART per poll (its FIFO holds 16).
const PER_POLL: usize = 64;

static RING: [AtomicU8; SIZE as usize] = [const { AtomicU8::new(0) }; SIZE as usize];
static PROD: AtomicU32 = AtomicU32::new(0);
static CONS: AtomicU32 = AtomicU32::new(0);

/// Moves what COM1 received into the ring and tells domain 0.
pub fn poll() {
    let mut got = false;
    for _ in 0..PER_POLL {
        let Some(b) = serial::read_byte() else { break };
        push(b);
        got = true;
    }
    if got {
        if let Some(d0) = domain::lookup(DomId::DOM0) {
            crate::event::send_global_virq(&d0, guest_abi::xen::VIRQ_CONSOLE);
        }
    }
}

fn push(b: u8) {
    let prod = PROD.load(Ordering::Relaxed);
    if prod.wrapping_sub(CONS.load(Ordering::Acquire)) == SIZE {
        return;
    }
    RING[(prod % SIZE) as usize].store(b, Ordering::Relaxed);
    PROD.store(prod.wrapping_add(1), Ordering::Release);
}

/// `CONSOLEIO_read`: copies up to `count` bytes to the guest's `buffer`;
/// how many, or `-EFAULT` if a chunk could not be written (the chunks
/// before it are consumed).
pub fn read(count: u32, buffer: u64) -> Result<u32, Errno> {
    let mut done: u32 = 0;
    let mut chunk = [0u8; SIZE as usize];
    while done < count {
        let cons = CONS.load(Ordering::Acquire);
        let avail = PROD.load(Ordering::Acquire).wrapping_sub(cons);
        if avail == 0 {
            break;
        }
        // Up to the end of the ring, as Xen copies.
        let idx = cons % SIZE;
        let len = avail.min(SIZE - idx).min(count - done);
        for (i, slot) in chunk.iter_mut().take(len as usize).enumerate() {
            *slot = RING[((idx as usize) + i) % SIZE as usize].load(Ordering::Relaxed);
        }
        let dest = GuestSlice::<u8>::new(buffer.wrapping_add(u64::from(done)), u64::from(len))
            .map_err(|_| Errno::EFAULT)?;
        dest.write_from(&Loaded, 0, chunk.get(..len as usize).unwrap_or(&[]))
            .map_err(|_| Errno::EFAULT)?;
        // Another reader may have taken these first; then they count for
        // it, and this one looks again.
        if CONS
            .compare_exchange(
                cons,
                cons.wrapping_add(len),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            done += len;
        }
    }
    Ok(done)
}
