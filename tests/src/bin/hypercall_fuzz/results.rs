//! Results: a histogram of every call's result by hypercall number (success,
//! each of Xen's errnos, anything else), which also says whether a result
//! is one Xen could give (a non-negative value or an errno; `-ENOSYS` for a
//! number without a handler), and the dump of the arrays a call acted on.

use guest_abi::errno::{self, ENOSYS};
use guest_abi::hypercall as hc;
use guest_abi::println;
use tests::expect::Rc;
use tests::pvmm::read_u64;

use crate::{low, Call, Fuzz, ARRAYS};

/// Rows: hypercall numbers 0-63 and one for every number beyond.
const HIST_NR: usize = 65;
/// Columns: success, each errno, and one for an invalid result.
const HIST_CLASSES: usize = 56;

const _: () = assert!(errno::ALL.len() + 2 <= HIST_CLASSES);

/// Numbers Xen 4.17 has no 64-bit PV handler for.
fn no_handler(nr: u64) -> bool {
    nr >= 64 || matches!(nr, 11 | 38 | 43..=47 | 50..=63)
}

/// Histogram class of a result: 0 success, 1.. an errno, last invalid.
fn class(nr: u64, rc: i64) -> usize {
    if rc >= 0 || nr == hc::GET_DEBUGREG {
        return 0;
    }
    let e = rc.unsigned_abs();
    errno::ALL
        .iter()
        .position(|&(name, v)| v.unsigned_abs() == e && name != "EINTR" && name != "ERESTART")
        .map_or(HIST_CLASSES - 1, |i| i + 1)
}

/// Results counted by hypercall number and class.
pub(crate) struct Histogram([[u32; HIST_CLASSES]; HIST_NR]);

impl Histogram {
    pub(crate) const fn new() -> Self {
        Self([[0; HIST_CLASSES]; HIST_NR])
    }

    /// Counts result `rc` of call `nr`; whether Xen could have given it.
    pub(crate) fn record(&mut self, nr: u64, rc: i64) -> bool {
        let class = class(nr, rc);
        let row = usize::try_from(nr.min(64)).unwrap_or(64);
        self.0[row][class] += 1;
        class != HIST_CLASSES - 1 && (!no_handler(nr) || rc == -ENOSYS)
    }

    /// Counts the results a multicall wrote into its first `n` entries at
    /// `list`; whether all of them were valid.
    pub(crate) fn multicall_results(&mut self, list: u64, n: u64) -> bool {
        let mut ok = true;
        for e in 0..n {
            let (nr, res) = (read_u64(list + e * 64), read_u64(list + e * 64 + 8));
            if !self.record(nr, res.cast_signed()) {
                println!(
                    "  multicall entry {e}: nr {nr:#x} -> {}",
                    Rc(res.cast_signed())
                );
                ok = false;
            }
        }
        ok
    }

    pub(crate) fn print(&self) {
        for (nr, row) in (0u64..).zip(&self.0) {
            if row.iter().all(|&n| n == 0) {
                continue;
            }
            let name = hc::info(nr).map_or(if nr == 64 { ">=64" } else { "-" }, |h| h.name);
            guest_abi::print!("hist {nr:2} {name}: ok={}", row[0]);
            for (k, &n) in row.iter().enumerate().skip(1) {
                if n > 0 {
                    let what = errno::ALL.get(k - 1).map_or("INVALID", |e| e.0);
                    guest_abi::print!(" {what}={n}");
                }
            }
            println!();
        }
    }
}

impl Fuzz {
    /// Prints the array a call acts on (the rest is replayed by the seed).
    pub(crate) fn dump(&self, c: &Call) {
        let arrays = self.w.va(ARRAYS)..self.w.va(ARRAYS + 1);
        let (list, n) = (c.a[0], low(c.a[1]).min(8));
        let stride = match c.nr {
            hc::MMU_UPDATE => 2,
            hc::MMUEXT_OP => 3,
            hc::MULTICALL => 8,
            hc::SET_GDT if (self.blob..self.blob_end).contains(&list) => {
                let frames = (low(c.a[1]).div_ceil(512)).min(16);
                for k in 0..frames {
                    println!("  frame {k}: {:#x}", read_u64(list + 8 * k));
                }
                return;
            }
            _ => return,
        };
        for e in 0..n {
            if arrays.contains(&(list + e * stride * 8)) {
                let words: [u64; 8] =
                    core::array::from_fn(|k| read_u64(list + 8 * (e * stride + k as u64 % stride)));
                println!(
                    "  [{e}] {:#x?}",
                    &words[..usize::try_from(stride).unwrap_or(0)]
                );
            }
        }
    }
}
