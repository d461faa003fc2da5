//! Time at start of day: before a PV guest first runs, the hypervisor has
//! filled vCPU 0's `vcpu_time_info` (TSC scale, system time, an even
//! version) and the wallclock in `shared_info` (an even `wc_version`, a
//! plausible date). The guest maps shared_info (a machine address in
//! start_info) and reads both with Xen's version protocol, then checks that
//! the system time it computes from the TSC moves forward.
//!
//! @covers: update_va_mapping
#![no_std]
#![no_main]

use guest_abi::hypercall::{hypercall3, UPDATE_VA_MAPPING};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::{StartInfoRef, VIRT_BASE};
use tests::clock;

guest_abi::pv_guest!(main, name = "time");

/// Offset of the wallclock in shared_info.
const WC_VERSION: u64 = 3072;

/// 2020-01-01 and 2100-01-01, in seconds since 1970.
const Y2020: u64 = 1_577_836_800;
const Y2100: u64 = 4_102_444_800;

fn rd32(va: u64) -> u32 {
    // SAFETY: `va` lies in the mapped shared-info page.
    unsafe { (va as *const u32).read_volatile() }
}

/// One consistent copy of vCPU 0's time info: (version, tsc_timestamp,
/// system_time, mul, shift).
fn time_info(shared: u64) -> (u32, u64, u64, u32, i8) {
    let t = clock::time_info(shared);
    (t.version, t.tsc_timestamp, t.system_time, t.mul, t.shift)
}

fn system_time(shared: u64) -> u64 {
    clock::now(shared)
}

fn tsc() -> u64 {
    clock::tsc()
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("time");
    // The last page of the initial 4 MiB mapping is padding on Xen and hv.
    let shared = VIRT_BASE + (4 << 20) - 4096;
    // SAFETY: replaces the mapping of an unused padding page with
    // shared_info, read-write as guests map it.
    let rc = unsafe { hypercall3(UPDATE_VA_MAPPING, shared, si.shared_info | 0x67, 2) };
    if !r.check(format_args!("map shared_info (rc {rc})"), rc == 0) {
        r.finish()
    }
    let (version, stamp, base, mul, shift) = time_info(shared);
    println!("vcpu_time_info: version {version} tsc_timestamp {stamp:#x} system_time {base} mul {mul:#x} shift {shift}");
    r.check(
        "vcpu_time_info.version is even and not zero",
        version.is_multiple_of(2) && version != 0,
    );
    r.check("tsc_to_system_mul is a normalised fraction", mul >= 1 << 31);
    r.check("tsc_shift is small", (-8..=8).contains(&shift));
    r.check("tsc_timestamp is in the past", stamp != 0 && stamp <= tsc());
    let t1 = system_time(shared);
    for _ in 0..100_000 {
        core::hint::spin_loop();
    }
    let t2 = system_time(shared);
    println!("system time {t1} ns, then {t2} ns");
    r.check("system time moves forward", t2 > t1 && t1 >= base);

    let wc = shared + WC_VERSION;
    let wc_version = rd32(wc);
    let secs = u64::from(rd32(wc + 4)) | u64::from(rd32(wc + 12)) << 32;
    let nsec = rd32(wc + 8);
    println!("wallclock: version {wc_version}, {secs} s {nsec} ns since 1970");
    r.check(
        "wc_version is even and not zero",
        wc_version.is_multiple_of(2) && wc_version != 0,
    );
    r.check(
        "the wallclock is a date between 2020 and 2100",
        (Y2020..Y2100).contains(&secs),
    );
    r.check("wc_nsec is below one second", nsec < 1_000_000_000);
    r.finish()
}
