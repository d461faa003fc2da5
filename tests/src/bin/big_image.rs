//! A boot kernel larger than the hypervisor's heap (72 MiB of initialised
//! data, as big as Debian's stock `vmlinux` once unpacked) is built as
//! domain 0 and loaded whole: the bytes at its start, middle and end and a
//! marker placed after it read back as the image holds them.
//!
//! With too little memory for it (the `too-small` variant) the build is
//! refused with a message, on Xen and on hv alike, never a crash.
//!
//! A hypervisor that copied the image into its heap before building the
//! domain ran out of heap and panicked.
//!
//! @dom0-mem: 160
//! @mem: 512
//! @timeout: 120
//! @variant: bzimage-xz bzimage=xz expect-line="(hv)  Dom0 kernel: bzImage v2.15, XZ payload"
//! @variant: too-small dom0-mem=48 expect-exit=panic expect-result=none expect-line="Domain 0 allocation is too small for kernel image"
#![no_std]
#![no_main]

use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;

guest_abi::pv_guest!(main, name = "big_image");

const BIG_BYTES: usize = 72 << 20;

/// Initialised (not zero) data, so all of it is in the ELF file.
static BIG: [u8; BIG_BYTES] = [0xa5; BIG_BYTES];
/// Distinct bytes after the big array.
static MARKER: [u64; 4] = [
    0x0123_4567_89ab_cdef,
    0xfedc_ba98_7654_3210,
    0x5a5a_a5a5_0ff0_f00f,
    0x1122_3344_5566_7788,
];

fn byte(i: usize) -> u8 {
    // SAFETY: in bounds; volatile so the compiler reads the loaded image
    // instead of folding the initialiser.
    unsafe { core::ptr::read_volatile(BIG.as_ptr().add(i)) }
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("big_image");
    let start = BIG.as_ptr() as u64;
    r.check(
        format_args!(
            "image of {} MiB loaded at {start:#x}; domain of {} pages",
            BIG_BYTES >> 20,
            si.nr_pages
        ),
        si.nr_pages >= (BIG_BYTES as u64) / 4096,
    );
    let mut bad = 0usize;
    let mut i = 0;
    while i < BIG_BYTES {
        if byte(i) != 0xa5 {
            bad += 1;
        }
        i += 4093;
    }
    r.check(
        format_args!("sampled bytes all 0xa5 ({bad} differ)"),
        bad == 0 && byte(0) == 0xa5 && byte(BIG_BYTES / 2) == 0xa5 && byte(BIG_BYTES - 1) == 0xa5,
    );
    let mut ok = true;
    for (k, &want) in [
        0x0123_4567_89ab_cdef,
        0xfedc_ba98_7654_3210,
        0x5a5a_a5a5_0ff0_f00f,
        0x1122_3344_5566_7788u64,
    ]
    .iter()
    .enumerate()
    {
        // SAFETY: in bounds; volatile as above.
        let got = unsafe { core::ptr::read_volatile(MARKER.as_ptr().add(k)) };
        ok &= got == want;
    }
    r.check("the marker after it reads back", ok);
    r.finish()
}
