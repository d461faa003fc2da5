//! The toolstack's domain builder (crate `toolstack`) on a real kernel:
//! dom0 builds the test guest `domu_hello` (its boot module, an ELF image
//! with Xen's notes) as a domU of 8 MiB, serves its console ring (its
//! lines come out here as `domU| ...`), and sees it power off after its
//! own checks passed; then destroys it. Twice: the free memory after the
//! second is exactly what it was after the first, on hv. Refused builds
//! leave nothing behind: an image that is not ELF, a truncated one, and
//! too little memory for the kernel's start of day.
//!
//! @module: guest:domu_hello
//! @timeout: 120
//! @covers: domctl.createdomain domctl.setvcpucontext domctl.hypercall_init
#![no_std]
#![no_main]

use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use tests::check;
use tests::control::{check_free_back, free_pages, settle, XEN_SLACK};
use tests::domu::info;
use tests::pvmm::Window;
use toolstack::serve::Scratch;
use toolstack::{build, Config};

guest_abi::pv_guest!(main, name = "domu_build");

/// Window pages: one for the builder's writes, one for the console ring.
const BUILD_SLOT: u64 = 1;
const CONSOLE_SLOT: u64 = 2;
const RESULT_LINE: &[u8] = b"Test result: SUCCESS";

/// Builds `image`, runs it to its shutdown while serving its console, and
/// destroys it; false after a failed check that leaves nothing to go on.
fn run(r: &mut Report, w: &Window, shared: u64, image: &[u8]) -> bool {
    let cfg = Config {
        image,
        pages: 2048,
        cmdline: b"pages=2048",
        ramdisk: &tests::domu::RAMDISK,
    };
    let b = match build(&cfg, &mut scratch(w)) {
        Ok(b) => b,
        Err(e) => {
            r.check(format_args!("build domu_hello: {e}"), false);
            return false;
        }
    };
    r.check(format_args!("build domu_hello as domain {}", b.domid), true);
    // Its lines come out here, its result line said as its own.
    let mut seen = false;
    let shown = |text: &[u8]| {
        seen |= text.windows(RESULT_LINE.len()).any(|w| w == RESULT_LINE);
        let text = core::str::from_utf8(text).unwrap_or("?");
        match text.strip_prefix("Test result: ") {
            Some(rest) => println!("domU| its result: {rest}"),
            None => println!("domU| {text}"),
        }
    };
    let reason = toolstack::serve::run(&b, shared, w.va(CONSOLE_SLOT), shown);
    match reason {
        Ok(reason) => check!(r, "it ran to its shutdown, poweroff, and was destroyed", reason => 0),
        Err(e) => r.check(format_args!("run it: {e}"), false),
    };
    check!(r, "its checks passed (its console said so)", seen => true);
    check!(r, "it is gone", info(b.domid).is_none_or(|i| i.domain != b.domid) => true);
    true
}

/// The builder's scratch page: a window page.
fn scratch(w: &Window) -> Scratch {
    Scratch {
        va: w.va(BUILD_SLOT),
    }
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("domu_build");
    let Some((w, shared, port)) = tests::domu::toolstack_env(&mut r, si) else {
        r.finish()
    };
    let len = usize::try_from(si.mod_len).unwrap_or(0);
    if !r.check(
        format_args!("a module of {len} bytes: the domU's kernel"),
        len > 64,
    ) {
        r.finish()
    }
    // SAFETY: the builder mapped the module at `mod_start`, `mod_len` bytes.
    let image = unsafe { core::slice::from_raw_parts(si.mod_start as *const u8, len) };

    // A first run: both hypervisors' tables grow the first time.
    if !run(&mut r, &w, shared.va, image) {
        r.finish()
    }
    let base = settle(shared.va, port, free_pages());
    if !run(&mut r, &w, shared.va, image) {
        r.finish()
    }
    // Refused builds leave nothing behind.
    let mut mapper = scratch(&w);
    let mut corrupt = [0u8; 256];
    corrupt.copy_from_slice(&image[..256]);
    corrupt[1] = b'X';
    let refused = |cfg: Config<'_>, mapper: &mut Scratch| build(&cfg, mapper).err().map(|e| e.what);
    check!(r, "not an ELF image",
        refused(Config { image: &corrupt, pages: 2048, cmdline: b"", ramdisk: &[] }, &mut mapper) => Some("not an ELF image"));
    check!(r, "a truncated image",
        refused(Config { image: &image[..256], pages: 2048, cmdline: b"", ramdisk: &[] }, &mut mapper)
            => Some("ELF segment outside the image"));
    check!(r, "too little memory",
        refused(Config { image, pages: 64, cmdline: b"", ramdisk: &[] }, &mut mapper)
            => Some("too little memory for the kernel's start of day"));
    check_free_back(&mut r, shared.va, port, base, XEN_SLACK);
    r.finish()
}
