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

use guest_abi::domctl::*;
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::DOMID_SELF;
use tests::check;
use tests::control::{check_free_back, free_pages, idle_10ms, settle, XEN_SLACK};
use tests::domu::{info, set_window_page, simple};
use tests::evtchn::{bind_interdomain, close};
use tests::pvmm::{Window, A, D, P, RW, US};
use toolstack::{build, Config, Error, FrameMapper};

guest_abi::pv_guest!(main, name = "domu_build");

/// Window pages: one for the builder's writes, one for the console ring.
const BUILD_SLOT: u64 = 1;
const CONSOLE_SLOT: u64 = 2;
const RESULT_LINE: &[u8] = b"Test result: SUCCESS";

/// Maps a frame of the domain being built at one window page.
struct Mapper<'a> {
    w: &'a Window,
}

impl FrameMapper for Mapper<'_> {
    fn with_frame(
        &mut self,
        dom: u16,
        mfn: u64,
        f: &mut dyn FnMut(&mut [u8; 4096]),
    ) -> Result<(), Error> {
        let rc = set_window_page(self.w, BUILD_SLOT, (mfn << 12) | P | RW | US | A | D, dom);
        if rc != 0 {
            return Err(Error::new("mmu_update: map a frame of it", rc));
        }
        let va = self.w.va(BUILD_SLOT);
        // SAFETY: the window page maps the frame writable until the unmap
        // below; nothing else refers to it meanwhile.
        f(unsafe { &mut *(va as *mut [u8; 4096]) });
        match set_window_page(self.w, BUILD_SLOT, 0, DOMID_SELF) {
            0 => Ok(()),
            rc => Err(Error::new("mmu_update: unmap", rc)),
        }
    }
}

/// Copies what the domU wrote to its console ring (mapped at `ring`) to
/// our console, line by line with a `domU| ` prefix (its result line
/// renamed: only ours counts), noting in `seen` whether its success line
/// went by. `line` keeps a partial line between calls.
fn relay(ring: u64, line: &mut Line, seen: &mut bool) {
    const OUT: u64 = 1024;
    const OUT_SIZE: u32 = 2048;
    let idx = |off: u64| {
        // SAFETY: the ring page is mapped at `ring`; the indexes are u32s.
        unsafe { ((ring + off) as *const u32).read_volatile() }
    };
    let (cons, prod) = (idx(3080), idx(3084));
    let mut c = cons;
    while c != prod {
        // SAFETY: inside the ring's `out` array.
        let b = unsafe { ((ring + OUT + u64::from(c % OUT_SIZE)) as *const u8).read_volatile() };
        if b == b'\n' {
            let text = line.as_bytes();
            *seen |= text.windows(RESULT_LINE.len()).any(|w| w == RESULT_LINE);
            let text = core::str::from_utf8(text).unwrap_or("?");
            match text.strip_prefix("Test result: ") {
                Some(rest) => println!("domU| its result: {rest}"),
                None => println!("domU| {text}"),
            }
            line.len = 0;
        } else if let Some(slot) = line.buf.get_mut(line.len) {
            *slot = b;
            line.len += 1;
        }
        c = c.wrapping_add(1);
    }
    // SAFETY: `out_cons`, a u32 of the mapped ring.
    unsafe { ((ring + 3080) as *mut u32).write_volatile(prod) };
}

/// One console line, cut at 200 bytes.
struct Line {
    buf: [u8; 200],
    len: usize,
}

impl Line {
    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

/// Builds `image`, runs it to its shutdown while serving its console, and
/// destroys it; false after a failed check that leaves nothing to go on.
fn run(r: &mut Report, w: &Window, shared: u64, image: &[u8]) -> bool {
    let cfg = Config {
        image,
        pages: 2048,
        cmdline: b"pages=2048",
        ramdisk: &tests::domu::RAMDISK,
    };
    let b = match build(&cfg, &mut Mapper { w }) {
        Ok(b) => b,
        Err(e) => {
            r.check(format_args!("build domu_hello: {e}"), false);
            return false;
        }
    };
    r.check(format_args!("build domu_hello as domain {}", b.domid), true);
    let Ok(port) = bind_interdomain(b.domid, b.console_port) else {
        r.check("bind its console channel", false);
        return false;
    };
    check!(r, "map its console ring",
        set_window_page(w, CONSOLE_SLOT, (b.console_mfn << 12) | P | RW | US | A | D, b.domid) => 0);
    check!(r, "unpause it", simple(XEN_DOMCTL_UNPAUSEDOMAIN, b.domid) => 0);
    let mut line = Line {
        buf: [0; 200],
        len: 0,
    };
    let mut seen = false;
    let mut last = None;
    for _ in 0..1000 {
        relay(w.va(CONSOLE_SLOT), &mut line, &mut seen);
        last = info(b.domid);
        if last.is_some_and(|i| i.flags & XEN_DOMINF_SHUTDOWN != 0) {
            break;
        }
        // Its notifications make our port pending: consumed, or the poll
        // would return at once and starve it of the CPU.
        tests::evtchn::Words::new(shared).clear_pending(port);
        idle_10ms(shared, port);
    }
    relay(w.va(CONSOLE_SLOT), &mut line, &mut seen);
    let last = last.unwrap_or_default();
    check!(r, "it shut down", last.flags & XEN_DOMINF_SHUTDOWN => XEN_DOMINF_SHUTDOWN);
    check!(r, "it powered off", last.shutdown_reason() => 0);
    check!(r, "its checks passed (its console said so)", seen => true);
    check!(r, "unmap its console ring", set_window_page(w, CONSOLE_SLOT, 0, DOMID_SELF) => 0);
    check!(r, "close our end of its console channel", close(port) => 0);
    check!(r, "destroy it", simple(XEN_DOMCTL_DESTROYDOMAIN, b.domid) => 0);
    true
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
    let mut mapper = Mapper { w: &w };
    let mut corrupt = [0u8; 256];
    corrupt.copy_from_slice(&image[..256]);
    corrupt[1] = b'X';
    let refused =
        |cfg: Config<'_>, mapper: &mut Mapper<'_>| build(&cfg, mapper).err().map(|e| e.what);
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
