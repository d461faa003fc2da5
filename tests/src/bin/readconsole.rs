//! `XEN_SYSCTL_readconsole`: dom0 reads the hypervisor's console ring
//! (its own boot lines; dom0's `console_io` output is not in it, Xen's
//! default). A whole read, the same bytes read in steps by index, a read
//! from the end (nothing new), a short buffer, a bad buffer (`-EFAULT`,
//! nothing cleared), and `clear` (a read from the start then begins where
//! the clearing read ended).
//!
//! @covers: sysctl.readconsole
#![no_std]
#![no_main]

use guest_abi::errno::*;
use guest_abi::hypercall::typed;
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::sysctl::*;
use tests::check;
use tests::expect::BAD_POINTERS;

guest_abi::pv_guest!(main, name = "readconsole");

/// Bytes the ring holds on both (Xen 4.17's default `conring_size`).
const RING: usize = 16 * 1024;

fn read_at(clear: bool, incremental: Option<u32>, buffer: u64, count: u32) -> (i64, u32, u32) {
    let arg = XenSysctlReadconsole {
        clear: u8::from(clear),
        incremental: u8::from(incremental.is_some()),
        index: incremental.unwrap_or(0),
        buffer,
        count,
        ..Default::default()
    };
    let mut op = XenSysctl::new(XEN_SYSCTL_READCONSOLE, &arg);
    // SAFETY: `op` is a live xen_sysctl; the buffer is the caller's.
    let rc = unsafe { typed::sysctl(&mut op) };
    let out: XenSysctlReadconsole = op.u.get();
    (rc, out.count, out.index)
}

/// One read into `buf`: the result, the bytes read (a prefix of `buf`),
/// and the index it returned.
fn read(clear: bool, incremental: Option<u32>, buf: &mut [u8]) -> (i64, usize, u32) {
    let count = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    let (rc, n, index) = read_at(clear, incremental, buf.as_mut_ptr() as u64, count);
    (rc, (n as usize).min(buf.len()), index)
}

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("readconsole");
    let mut all = [0u8; RING];
    let mut other = [0u8; RING];

    let (rc, n, end) = read(false, None, &mut all);
    check!(r, "whole read", rc => 0);
    let all = &all[..n];
    println!("ring holds {n} bytes, index {end}");
    r.check("the ring holds the hypervisor's boot lines", n > 100);
    r.check(
        "they are text lines",
        all.contains(&b'\n')
            && all
                .iter()
                .all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b)),
    );
    let start = end.wrapping_sub(u32::try_from(n).unwrap_or(0));

    // The same bytes, 100 at a time, each read starting where the last ended.
    let mut got = 0;
    let mut at = start;
    let mut same = true;
    while got < n {
        let mut step = [0u8; 100];
        let (rc, k, index) = read(false, Some(at), &mut step);
        if rc != 0 || k == 0 {
            check!(r, "step read", rc => 0);
            same = false;
            break;
        }
        let upto = (got + k).min(n);
        same &= step[..upto - got] == all[got..upto];
        let want = at.wrapping_add(u32::try_from(k).unwrap_or(0));
        if index != want {
            check!(r, "a step's index moves by its count", index => want);
        }
        got += k;
        at = index;
    }
    r.check(
        "100-byte reads by index give the same bytes",
        same && got >= n,
    );

    let (rc, k, index) = read(false, Some(end), &mut other);
    check!(r, "read from the end: result", rc => 0);
    check!(r, "read from the end: nothing new", k => 0);
    check!(r, "read from the end: index stays", index => end);

    let mut short = [0u8; 10];
    let (rc, k, index) = read(false, None, &mut short);
    check!(r, "10-byte buffer: result", rc => 0);
    r.check(
        "10-byte buffer: the first 10 bytes",
        k == 10 && short[..] == all[..10],
    );
    check!(r, "10-byte buffer: index", index => start.wrapping_add(10));

    let (rc, count, _) = read_at(false, None, 0, 0);
    check!(r, "empty buffer at 0: result", rc => 0);
    check!(r, "empty buffer at 0: count", count => 0);
    for &(name, addr) in BAD_POINTERS {
        let (rc, _, _) = read_at(true, None, addr, 64);
        check!(r, "clearing read into {name}", rc => -EFAULT);
    }
    let (_, k, _) = read(false, None, &mut other);
    r.check(
        "a refused read cleared nothing",
        k >= n && other[..n] == *all,
    );

    // Clearing after one byte: a read from the start begins at the second.
    let mut one = [0u8; 1];
    let (rc, k, _) = read(true, None, &mut one);
    check!(r, "clearing 1-byte read", rc => 0);
    r.check("it read the first byte", k == 1 && one[0] == all[0]);
    let (_, k, _) = read(false, None, &mut other);
    r.check(
        "after clearing one byte the ring starts at the second",
        k + 1 >= n && other[..n - 1] == all[1..],
    );
    let (rc, _, cleared_at) = read(true, None, &mut other);
    check!(r, "clearing whole read", rc => 0);
    let (_, k, index) = read(false, None, &mut other);
    check!(r, "after clearing everything: nothing", k => 0);
    check!(r, "after clearing everything: index", index => cleared_at);
    r.finish()
}
