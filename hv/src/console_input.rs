//! Serial input for the initial domain, as Xen 4.17 passes it on: bytes
//! COM1 receives go into a 128-byte ring (dropped while it is full), each
//! one raising `VIRQ_CONSOLE` in domain 0, and `CONSOLEIO_read` copies
//! them out.
//!
//! Three CTRL-a in a row switch the input between domain 0 and hv (as on
//! Xen, they are eaten; one or two are passed on with the next byte).
//! Input to hv is debug keys: `q` raises `VIRQ_DEBUG` on every vCPU of
//! every domain (Xen's "dump domain (and guest debug) info", whose guest
//! half this is) after printing a line per domain; `h` lists the keys;
//! others do nothing.
//!
//! hv takes no UART interrupt: [`poll`] runs from CPU 0's periodic tick
//! (Xen too polls a UART it has no IRQ for). The ring has one producer
//! (that poll) and lock-free consumers: a read copies a chunk to the guest
//! and only then moves the consumer index past it, so a chunk that faults
//! stays in the ring (as on Xen, where the chunks before it are consumed).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};

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

/// Xen's default switch code, CTRL-a.
const SWITCH_CODE: u8 = 0x01;
/// CTRL-a typed in a row so far (only CPU 0's poll touches it).
static SWITCH_COUNT: AtomicU32 = AtomicU32::new(0);
/// Whether input goes to hv (debug keys) rather than domain 0.
static TO_HV: AtomicBool = AtomicBool::new(false);

/// Moves what COM1 received into the ring (or to the debug keys) and
/// tells domain 0.
pub fn poll() {
    let mut got = false;
    for _ in 0..PER_POLL {
        let Some(b) = serial::read_byte() else { break };
        got |= received(b);
    }
    if got {
        if let Some(d0) = domain::lookup(DomId::DOM0) {
            crate::event::send_global_virq(&d0, guest_abi::xen::VIRQ_CONSOLE);
        }
    }
}

/// One received byte; whether domain 0 got input.
fn received(b: u8) -> bool {
    if b == SWITCH_CODE {
        if SWITCH_COUNT.fetch_add(1, Ordering::Relaxed) + 1 == 3 {
            SWITCH_COUNT.store(0, Ordering::Relaxed);
            let to_hv = !TO_HV.fetch_xor(true, Ordering::Relaxed);
            crate::hvlog!(
                info,
                "*** Serial input to {} (type 'CTRL-a' three times to switch input)",
                if to_hv { "hv" } else { "DOM0" }
            );
        }
        return false;
    }
    let mut got = false;
    for _ in 0..SWITCH_COUNT.swap(0, Ordering::Relaxed) {
        got |= deliver(SWITCH_CODE);
    }
    got | deliver(b)
}

fn deliver(b: u8) -> bool {
    if TO_HV.load(Ordering::Relaxed) {
        debug_key(b);
        false
    } else {
        push(b);
        true
    }
}

fn debug_key(key: u8) {
    match key {
        b'q' => {
            crate::hvlog!(info, "'q' pressed -> dumping domain info");
            for d in domain::all() {
                crate::hvlog!(
                    info,
                    "Domain {}: {} pages, {} vCPU(s)",
                    d.id,
                    d.nr_pages(),
                    d.nr_vcpus()
                );
                // Each guest may then print its own.
                for v in 0..d.nr_vcpus() {
                    crate::event::send_vcpu_virq(&d, v, guest_abi::xen::VIRQ_DEBUG);
                }
            }
        }
        b'h' => {
            crate::hvlog!(info, "'h' pressed -> showing installed handlers");
            crate::hvlog!(info, " key 'h': show this message");
            crate::hvlog!(info, " key 'q': dump domain (and guest debug) info");
        }
        _ => {}
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
