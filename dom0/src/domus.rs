//! The domUs dom0 builds from its boot module and runs to their shutdown:
//! their consoles relayed as `domU<id>| ...`, their xenstore served (one
//! Rust `xenstored` for all), their disks and network interfaces served
//! by dom0's back ends, the interfaces joined by dom0's switch.
//!
//! The boot module is a PV kernel by itself (one domU), or a boot bundle
//! whose entries say what they are by the first word of their command
//! line:
//!
//! - `kernel <command line>`: a domU's kernel (an ELF, or a bzImage that
//!   `kernel-image` unpacks into a [`crate::window`] of our memory) and
//!   its command line; the entries after it, up to the next `kernel`, are
//!   its own:
//! - `ramdisk`: its ramdisk;
//! - `disk xvdX w|r`: a disk image offered as `xvdX`, writable or not
//!   (written in place: it must not overlap any other entry);
//! - `vif`: a network interface (no data), MAC `00:16:3e:00:00:<id>`;
//! - `console`: an extra console (no data), `device/console/<n>` from
//!   `n` = 1, at most [`MAX_EXTRA_CONSOLES`]; its lines are relayed as
//!   `domU<id>.<n>| ...`.
//!
//! Each domU has `domu_mib=N` (dom0's command line) or 8 MiB. For tests,
//! `domu_count=N` runs N domUs of a lone kernel,
//! `domu_disk_kib=N` gives the first domU a disk of N KiB from dom0's
//! heap (at most 1 MiB), sector `n` filled with [`test_disk_byte`]`(n)`
//! (read-only with `domu_disk_ro=1`),
//! `domu_vif=1` each domU a network interface and `domu_consoles=N` each
//! domU N extra consoles; `vbd_hostile=silent`, `bogus-ids`, `lie` or
//! `vanish` makes the block back end lie to its front end, and
//! `vif_hostile=` (`silent`, `bogus-ids`, `lie` or `bad-rx`) the first
//! domU's network back end (the others' stay honest). Serial input (what the
//! hypervisor hands dom0 through `VIRQ_CONSOLE` and `CONSOLEIO_read`) goes
//! to the first domU's console, or domain N's with `console_domu=N`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use guest_abi::println;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen;
use pv_drivers::xenstored::daemon::Daemon;
use pv_drivers::xenstored::Conn;

use crate::blkback::{MemDisk, Vbd};
use crate::consback::Vcon;
use crate::handshake::BackEnd;
use crate::netback::Vif;
use crate::support::MappedPage;
use crate::window;

/// A domU's memory unless dom0's command line says `domu_mib=N`.
const DOMU_PAGES: u64 = 2048;
/// Extra consoles a domU may have.
pub const MAX_EXTRA_CONSOLES: u32 = 2;
/// Pages of our initial mapping's padding each domU takes: its console
/// ring, its store page, its block ring (up to 4 pages), its two network
/// rings, its extra consoles' pages.
const PAGES_PER_DOMU: u64 = 8 + MAX_EXTRA_CONSOLES as u64;

const TOOLSTACK: Conn = Conn {
    domid: 0,
    privileged: true,
};

/// One domU the module asks for.
struct Spec {
    kernel: &'static [u8],
    cmdline: String,
    ramdisk: &'static [u8],
    /// A disk image and its name and mode (`xvda w`).
    disk: Option<(&'static mut [u8], String)>,
    vif: bool,
    /// Extra consoles.
    consoles: u32,
}

/// What an entry is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Kernel,
    Ramdisk,
    Disk,
    Vif,
    Console,
}

/// The domUs the boot module asks for (see the module documentation).
fn specs(module: &'static mut [u8]) -> Result<Vec<Spec>, String> {
    let base = module.as_ptr() as usize;
    // Entries as (kind, offset, length, command line after the tag).
    let mut entries = Vec::new();
    match boot_bundle::parse(module) {
        Ok(b) => {
            for (i, e) in b.entries().enumerate() {
                let (tag, rest) = e.cmdline.split_once(' ').unwrap_or((e.cmdline, ""));
                let kind = match tag {
                    "kernel" => Kind::Kernel,
                    "ramdisk" => Kind::Ramdisk,
                    "disk" => Kind::Disk,
                    "vif" => Kind::Vif,
                    "console" => Kind::Console,
                    _ => return Err(format!("bundle entry {i}: no kind in {:?}", e.cmdline)),
                };
                let at = e.data.as_ptr() as usize - base;
                entries.push((kind, at, e.data.len(), String::from(rest)));
            }
        }
        Err(_) => {
            let module: &'static [u8] = module;
            return Ok(alloc::vec![Spec {
                kernel: module,
                cmdline: String::new(),
                ramdisk: &[],
                disk: None,
                vif: false,
                consoles: 0,
            }]);
        }
    }
    // A disk is written in place: no other entry may share its bytes.
    for (i, &(kind, at, len, _)) in entries.iter().enumerate() {
        if kind != Kind::Disk || len == 0 {
            continue;
        }
        let overlaps = entries
            .iter()
            .enumerate()
            .any(|(j, &(_, a, l, _))| j != i && l != 0 && a < at + len && at < a + l);
        if overlaps {
            return Err(format!(
                "bundle entry {i}: a disk that shares bytes with another entry"
            ));
        }
    }
    let ptr = module.as_mut_ptr();
    let mut specs: Vec<Spec> = Vec::new();
    for (i, (kind, at, len, rest)) in entries.into_iter().enumerate() {
        // SAFETY: `[at, at + len)` is inside the module (the parser's
        // invariant), which stays mapped for good; a disk's bytes are
        // nobody else's (checked above), and the rest are only read.
        let bytes = unsafe { core::slice::from_raw_parts(ptr.add(at), len) };
        if kind == Kind::Kernel {
            specs.push(Spec {
                kernel: bytes,
                cmdline: rest,
                ramdisk: &[],
                disk: None,
                vif: false,
                consoles: 0,
            });
            continue;
        }
        let Some(spec) = specs.last_mut() else {
            return Err(format!("bundle entry {i}: before any kernel"));
        };
        match kind {
            Kind::Ramdisk => spec.ramdisk = bytes,
            Kind::Disk => {
                // SAFETY: as above; these bytes are the disk's alone.
                let disk = unsafe { core::slice::from_raw_parts_mut(ptr.add(at), len) };
                spec.disk = Some((disk, rest));
            }
            Kind::Vif => spec.vif = true,
            Kind::Console => spec.consoles = (spec.consoles + 1).min(MAX_EXTRA_CONSOLES),
            Kind::Kernel => {}
        }
    }
    Ok(specs)
}

/// `xvdX` as a Xen virtual device number (major 202, 16 minors each).
fn xvd_number(name: &str) -> Option<u32> {
    let letter = name.strip_prefix("xvd")?.as_bytes();
    match letter {
        [c @ b'a'..=b'z'] => Some(202 << 8 | u32::from(c - b'a') << 4),
        _ => None,
    }
}

/// The number dom0's command line gives `key` (`domu_mib=` ...).
fn option(si: StartInfoRef, key: &str) -> Option<u64> {
    crate::c_str(&si.cmd_line)
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .and_then(|v| v.parse::<u64>().ok())
}

/// The domU's memory in pages: `domu_mib=N` on dom0's command line, or
/// [`DOMU_PAGES`].
fn domu_pages(si: StartInfoRef) -> u64 {
    option(si, "domu_mib=").map_or(DOMU_PAGES, |mib| mib * 256)
}

/// The byte every byte of sector `n` of a test disk holds.
pub fn test_disk_byte(n: u64) -> u8 {
    (n.wrapping_mul(7).wrapping_add(1) & 0xff) as u8
}

/// A test disk of `kib` KiB (at most 1 MiB) from our heap, each sector
/// filled with [`test_disk_byte`] of its number.
fn test_disk(kib: u64) -> &'static mut [u8] {
    let len = usize::try_from(kib.min(1024) * 1024).unwrap_or(0);
    let disk = alloc::vec![0u8; len].leak();
    for (n, sector) in disk.chunks_mut(512).enumerate() {
        sector.fill(test_disk_byte(n as u64));
    }
    disk
}

/// A running domU's services.
struct Domu {
    id: u16,
    store: MappedPage,
    store_va: u64,
    store_port: u32,
    vbd: Option<Vbd>,
    vif: Option<Vif>,
    vcons: Vec<Vcon>,
    up: bool,
}

/// Everything dom0 serves.
struct Services {
    daemon: Daemon,
    domus: Vec<Domu>,
    /// Our port of `VIRQ_CONSOLE`: serial input for the domU it is
    /// attached to (`console_domu=N`, or the first).
    console_virq: Option<u32>,
    console_to: Option<u16>,
    /// Whether `window::SLOTS_VA` has page-table entries (for persistent
    /// grants).
    slots: bool,
    /// For tests: a block back end that lies (`vbd_hostile=silent`,
    /// `bogus-ids` or `lie`).
    vbd_hostile: Option<crate::blkback::Hostile>,
    /// For tests: the first domU's network back end lies (`vif_hostile=`).
    vif_hostile: Option<crate::netback::Hostile>,
}

/// Builds the domUs the boot module asks for and runs them to their
/// shutdown.
pub fn run(si: StartInfoRef) {
    let len = usize::try_from(si.mod_len).unwrap_or(0);
    // SAFETY: the domain builder mapped the module at `mod_start`,
    // `mod_len` bytes, writable, for good; nothing else refers to it.
    let module = unsafe { core::slice::from_raw_parts_mut(si.mod_start as *mut u8, len) };
    let mut specs = match specs(module) {
        Ok(s) => s,
        Err(e) => {
            println!("dom0: the boot module: {e}");
            return;
        }
    };
    // For tests: more domUs of a lone kernel (`domu_count=N`), a disk of
    // our own for the first (`domu_disk_kib=N`), a network interface for
    // each (`domu_vif=1`).
    if let ([one], Some(n)) = (specs.as_slice(), option(si, "domu_count=")) {
        let (kernel, cmdline) = (one.kernel, one.cmdline.clone());
        for _ in 1..n.min(toolstack::serve::MAX_GUESTS as u64) {
            specs.push(Spec {
                kernel,
                cmdline: cmdline.clone(),
                ramdisk: &[],
                disk: None,
                vif: false,
                consoles: 0,
            });
        }
    }
    if let Some(first) = specs.first_mut() {
        if let (Some(kib), None) = (option(si, "domu_disk_kib="), &first.disk) {
            let mode = if option(si, "domu_disk_ro=") == Some(1) {
                "xvda r"
            } else {
                "xvda w"
            };
            first.disk = Some((test_disk(kib), String::from(mode)));
        }
    }
    if option(si, "domu_vif=") == Some(1) {
        for s in &mut specs {
            s.vif = true;
        }
    }
    if let Some(n) = option(si, "domu_consoles=") {
        for s in &mut specs {
            s.consoles = u32::try_from(n).unwrap_or(0).min(MAX_EXTRA_CONSOLES);
        }
    }
    // Pages of our initial mapping's padding (at least 512 KiB, after the
    // bootstrap tables and the boot stack page, on hv as on Xen; nothing
    // of ours uses it): our shared-info page, the builder's scratch page,
    // the window's scratch page, then each domU's.
    let padding = si.pt_base + (si.nr_pt_frames + 2) * 4096;
    let (shared, scratch, window_scratch) = (padding, padding + 4096, padding + 2 * 4096);
    let domu_page = |k: usize, i: u64| padding + (3 + k as u64 * PAGES_PER_DOMU + i) * 4096;
    if specs.len() > toolstack::serve::MAX_GUESTS {
        println!("dom0: more domUs than dom0 runs at once");
        return;
    }
    // SAFETY: the hypervisor checks the frame (our own shared-info page).
    let rc = unsafe {
        guest_abi::hypercall::hypercall3(
            guest_abi::hypercall::UPDATE_VA_MAPPING,
            shared,
            si.shared_info | 0x67,
            xen::UVMF_INVLPG,
        )
    };
    if rc != 0 {
        println!("dom0: cannot map our shared-info page at {shared:#x} ({rc})");
        return;
    }
    let pages = domu_pages(si);
    let mut services = Services {
        daemon: Daemon::new(),
        domus: Vec::new(),
        console_virq: bind_console_virq(),
        slots: match window::slots(si, window_scratch) {
            Ok(()) => true,
            Err(e) => {
                println!("dom0: no slots for persistent grants: {e}");
                false
            }
        },
        console_to: option(si, "console_domu=").and_then(|d| u16::try_from(d).ok()),
        vbd_hostile: crate::c_str(&si.cmd_line)
            .split_ascii_whitespace()
            .find_map(|w| w.strip_prefix("vbd_hostile="))
            .and_then(crate::blkback::Hostile::parse),
        vif_hostile: crate::c_str(&si.cmd_line)
            .split_ascii_whitespace()
            .find_map(|w| w.strip_prefix("vif_hostile="))
            .and_then(crate::netback::Hostile::parse),
    };
    let mut built = Vec::new();
    let mut unpacked: Option<&'static mut [u8]> = None;
    for (k, spec) in specs.into_iter().enumerate() {
        let Some(image) = kernel(si, spec.kernel, &mut unpacked, window_scratch) else {
            break;
        };
        let cfg = toolstack::Config {
            image,
            pages,
            cmdline: spec.cmdline.as_bytes(),
            ramdisk: spec.ramdisk,
        };
        let mut p2m = alloc::vec![0u64; usize::try_from(pages).unwrap_or(0)];
        let mut mapper = toolstack::serve::Scratch { va: scratch };
        let b = match toolstack::build_into(&cfg, &mut p2m, &mut mapper) {
            Ok(b) => b,
            Err(e) => {
                println!("dom0: building a domU: {e}");
                break;
            }
        };
        println!(
            "dom0: built domain {} from the boot module ({pages} pages); running it",
            b.domid
        );
        match services.start(si, &b, spec, |i| domu_page(k, i)) {
            Some(d) => {
                services.domus.push(d);
                built.push((b, domu_page(k, 0)));
            }
            None => {
                destroy(b.domid);
                break;
            }
        }
    }
    if built.is_empty() {
        return;
    }
    let services = RefCell::new(services);
    let r = toolstack::serve::run_many(
        &built,
        shared,
        |ports| services.borrow_mut().serve(ports),
        |id, line| {
            println!(
                "domU{id}| {}",
                core::str::from_utf8(line).unwrap_or("<not utf-8>")
            );
        },
        |id, r| {
            match r {
                Ok(reason) => println!(
                    "dom0: domain {id} shut down ({}) and is destroyed",
                    guest_abi::sched::shutdown_reason_name(reason)
                ),
                Err(e) => println!("dom0: running domain {id}: {e}"),
            }
            services.borrow_mut().stop(id);
        },
    );
    if let Err(e) = r {
        println!("dom0: running the domUs: {e}");
        let mut s = services.borrow_mut();
        let ids: Vec<u16> = s.domus.iter().filter(|d| d.up).map(|d| d.id).collect();
        for id in ids {
            s.stop(id);
        }
    }
}

/// `VIRQ_CONSOLE` bound on vCPU 0 (serial input for the initial
/// domain), if it can be.
fn bind_console_virq() -> Option<u32> {
    let mut b = guest_abi::event_channel::EvtchnBindVirq {
        virq: xen::VIRQ_CONSOLE,
        vcpu: 0,
        port: 0,
    };
    // SAFETY: `b` is a live evtchn_bind_virq.
    let rc = unsafe {
        guest_abi::hypercall::hypercall2(
            guest_abi::hypercall::EVENT_CHANNEL_OP,
            u64::from(guest_abi::event_channel::EVTCHNOP_BIND_VIRQ),
            core::ptr::from_mut(&mut b) as u64,
        )
    };
    (rc == 0).then_some(b.port)
}

fn destroy(id: u16) {
    let mut op =
        guest_abi::domctl::XenDomctl::new(guest_abi::domctl::XEN_DOMCTL_DESTROYDOMAIN, id, &0u64);
    // SAFETY: `op` is a live xen_domctl with no handle in it.
    let _ = unsafe { guest_abi::hypercall::typed::domctl(&mut op) };
}

/// The ELF of a domU's kernel: `image` itself, or unpacked into the
/// window (mapped the first time, for the largest kernel it has seen:
/// later kernels reuse it, each build copying its segments out first).
fn kernel(
    si: StartInfoRef,
    image: &'static [u8],
    window: &mut Option<&'static mut [u8]>,
    window_scratch: u64,
) -> Option<&'static [u8]> {
    let elf: &'static [u8] = match kernel_image::classify(image) {
        Ok(kernel_image::KernelImage::Elf { image, .. }) => image,
        Ok(kernel_image::KernelImage::Packed(p)) => {
            if window.as_ref().is_none_or(|w| w.len() < p.unpacked_len) {
                if window.is_some() {
                    println!("dom0: a later domU kernel is larger than the first: not unpacked");
                    return None;
                }
                match window::map(si, window_scratch, p.unpacked_len as u64) {
                    Ok(w) => *window = Some(w),
                    Err(e) => {
                        println!(
                            "dom0: no room to unpack the domU's {} kernel ({} bytes): {e}",
                            p.compression.name(),
                            p.unpacked_len
                        );
                        return None;
                    }
                }
            }
            let w = window.as_mut()?;
            let out = &mut w[..p.unpacked_len];
            if let Err(e) = kernel_image::unpack(&p, out, &mut []) {
                println!("dom0: unpacking the domU's kernel: {e}");
                return None;
            }
            println!(
                "dom0: the domU's kernel: {} bytes unpacked from {} ({} bytes)",
                out.len(),
                p.compression.name(),
                image.len()
            );
            // SAFETY: the window stays mapped for good; nothing writes it
            // again until this domU is built (the next kernel is unpacked
            // only after the build, which reads this copy, returned).
            unsafe { core::slice::from_raw_parts(out.as_ptr(), out.len()) }
        }
        Err(e) => {
            println!("dom0: the boot module is not a PV kernel ({e}): nothing to run");
            return None;
        }
    };
    if toolstack::elf::parse(elf).is_err() {
        println!("dom0: the boot module is not a PV kernel: nothing to run");
        return None;
    }
    Some(elf)
}

impl Services {
    /// Lays out domU `b`'s store and devices and connects its store page
    /// (our pages: `page(1)` its store, `page(2)` to `page(5)` its block
    /// ring, `page(6)` and `page(7)` its network rings, `page(8)` on its
    /// extra consoles' pages).
    fn start(
        &mut self,
        si: StartInfoRef,
        b: &toolstack::Built,
        spec: Spec,
        page: impl Fn(u64) -> u64,
    ) -> Option<Domu> {
        let id = b.domid;
        let s = &mut self.daemon.store;
        let kib = b.layout.nr_pages * 4;
        let name = if spec.cmdline.is_empty() {
            String::from("hello-domu")
        } else {
            format!("domu{id}")
        };
        let skeleton = pv_drivers::xenstored::toolstack::skeleton(s, id, &name, kib, 1)
            .and_then(|()| s.introduce(TOOLSTACK, id));
        if let Err(e) = skeleton {
            println!("dom0: xenstore skeleton for domain {id}: {e}");
            return None;
        }
        let store_va = page(1);
        if let Err(e) = toolstack::serve::map_page(store_va, b.store_mfn, id) {
            println!("dom0: mapping domain {id}'s store page: {e}");
            return None;
        }
        let store_port = match toolstack::serve::bind(id, b.store_port) {
            Ok(p) => p,
            Err(e) => {
                println!("dom0: binding domain {id}'s store channel: {e}");
                let _ = toolstack::serve::unmap_page(store_va);
                return None;
            }
        };
        self.daemon.connect(id, false);
        // SAFETY: `store_va` is a page of our padding, mapped to the
        // domU's store page until `stop`, and nothing of ours refers into
        // it.
        let store = unsafe { MappedPage::new(store_va) };
        let mut d = Domu {
            id,
            store,
            store_va,
            store_port,
            vbd: None,
            vif: None,
            vcons: Vec::new(),
            up: true,
        };
        if let Some((bytes, how)) = spec.disk {
            d.vbd = self.add_disk(si, id, bytes, &how, page(2));
        }
        if spec.vif {
            let mac = [0x00, 0x16, 0x3e, 0, 0, u8::try_from(id).unwrap_or(0xff)];
            let s = &mut self.daemon.store;
            match pv_drivers::xenstored::toolstack::add_vif(s, id, 0, 0, mac) {
                Ok(()) => {
                    println!(
                        "dom0: vif for domain {id}: {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
                    );
                    let mut vif = Vif::new(si, id, 0, mac, page(6), page(7));
                    if self.domus.is_empty() {
                        vif.hostile = self.vif_hostile;
                    }
                    d.vif = Some(vif);
                }
                Err(e) => println!("dom0: vif for domain {id}: {e}"),
            }
        }
        for n in 1..=spec.consoles {
            let s = &mut self.daemon.store;
            match pv_drivers::xenstored::toolstack::add_console(s, id, 0, n, &name) {
                Ok(()) => {
                    println!("dom0: console {n} for domain {id}");
                    d.vcons.push(Vcon::new(id, n, page(7 + u64::from(n))));
                }
                Err(e) => println!("dom0: console {n} for domain {id}: {e}"),
            }
        }
        Some(d)
    }

    /// Offers `bytes` to domain `id` as a virtual block device, as `how`
    /// says (`xvda w`: the name, and `w` for writable or `r`).
    fn add_disk(
        &mut self,
        si: StartInfoRef,
        id: u16,
        bytes: &'static mut [u8],
        how: &str,
        ring_va: u64,
    ) -> Option<Vbd> {
        let mut words = how.split_ascii_whitespace();
        let name = words.next().unwrap_or("xvda");
        let writable = words.next() != Some("r");
        let Some(dev) = xvd_number(name) else {
            println!("dom0: disk {name:?}: not a name of the form xvdX");
            return None;
        };
        let s = &mut self.daemon.store;
        if let Err(e) = pv_drivers::xenstored::toolstack::add_vbd(s, id, 0, dev, name, writable) {
            println!("dom0: disk {name} for domain {id}: {e}");
            return None;
        }
        println!(
            "dom0: disk {name} ({} bytes, {}) for domain {id}",
            bytes.len(),
            if writable { "writable" } else { "read-only" },
        );
        let disk = MemDisk::new(bytes, !writable);
        // Persistent grants: this domU's share of the slots.
        let k = self.domus.len();
        let room = usize::try_from(window::SLOTS).unwrap_or(0) / toolstack::serve::MAX_GUESTS;
        let slots = self
            .slots
            .then(|| (window::SLOTS_VA + (k * room * 4096) as u64, room));
        let mut vbd = Vbd::new(si, id, dev, (disk, ring_va), slots);
        vbd.hostile = self.vbd_hostile;
        Some(vbd)
    }

    /// One wake-up: every domU's store requests, the devices' handshakes,
    /// their rings and the switch; names our ports to wake for.
    fn serve(&mut self, ports: &mut toolstack::serve::Ports) {
        let mut moved = Vec::with_capacity(self.domus.len());
        for d in self.domus.iter().filter(|d| d.up) {
            let ring = pv_drivers::xs_wire::StoreRing::new(&d.store);
            let m = match self.daemon.service(d.id, &ring) {
                Ok(m) => m,
                Err(e) => {
                    println!(
                        "dom0: xenstore: domain {}: {e:?}; not served any more",
                        d.id
                    );
                    self.daemon.disconnect(d.id);
                    false
                }
            };
            moved.push((d.id, m));
        }
        // Handshakes, until none moves (one may take several steps).
        loop {
            let mut stepped = false;
            for d in self.domus.iter_mut().filter(|d| d.up) {
                let s = &mut self.daemon.store;
                if let Some(v) = &mut d.vbd {
                    stepped |= v.poll(s);
                }
                if let Some(v) = &mut d.vif {
                    stepped |= v.poll(s);
                }
                for v in &mut d.vcons {
                    stepped |= v.poll(s);
                }
            }
            if !stepped {
                break;
            }
            self.daemon.route_events();
        }
        self.daemon.route_events();
        for d in self.domus.iter().filter(|d| d.up) {
            let ring = pv_drivers::xs_wire::StoreRing::new(&d.store);
            let flushed = self.daemon.flush(d.id, &ring).unwrap_or(false);
            let serviced = moved.iter().any(|&(id, m)| id == d.id && m);
            if flushed || serviced {
                toolstack::serve::notify(d.store_port);
            }
        }
        for d in self.domus.iter_mut().filter(|d| d.up) {
            if let Some(v) = &mut d.vbd {
                v.serve();
            }
            let id = d.id;
            for v in &mut d.vcons {
                let n = v.n;
                v.serve(|l| {
                    println!(
                        "domU{id}.{n}| {}",
                        core::str::from_utf8(l).unwrap_or("<not utf-8>")
                    );
                });
            }
        }
        let mut vifs: Vec<&mut Vif> = self
            .domus
            .iter_mut()
            .filter(|d| d.up)
            .filter_map(|d| d.vif.as_mut())
            .collect();
        crate::netback::switch(&mut vifs);
        self.forward_input(ports);
        for d in self.domus.iter().filter(|d| d.up) {
            ports.push(d.store_port);
            for p in [
                d.vbd.as_ref().and_then(Vbd::port),
                d.vif.as_ref().and_then(Vif::port),
            ]
            .into_iter()
            .flatten()
            .chain(d.vcons.iter().filter_map(Vcon::port))
            {
                ports.push(p);
            }
        }
        if let Some(p) = self.console_virq {
            ports.push(p);
        }
    }

    /// Serial input (`CONSOLEIO_read`) to the attached domU's console.
    fn forward_input(&mut self, ports: &mut toolstack::serve::Ports) {
        if self.console_virq.is_none() {
            return;
        }
        let to = self
            .console_to
            .or_else(|| self.domus.iter().find(|d| d.up).map(|d| d.id));
        let mut buf = [0u8; toolstack::serve::MAX_INPUT];
        let n = u32::try_from(buf.len()).unwrap_or(0);
        // SAFETY: the hypervisor writes at most `n` bytes into `buf`.
        let got = unsafe {
            guest_abi::hypercall::console_io(
                guest_abi::console::CONSOLEIO_READ,
                n,
                buf.as_mut_ptr(),
            )
        };
        let got = usize::try_from(got).unwrap_or(0).min(buf.len());
        if let (Some(to), true) = (to, got > 0) {
            ports.feed(to, &buf[..got]);
        }
    }

    /// Domain `id` is gone: its devices disconnected (a disk's writes
    /// printed for the host), its store connection and nodes released.
    fn stop(&mut self, id: u16) {
        let Some(d) = self.domus.iter_mut().find(|d| d.id == id && d.up) else {
            return;
        };
        d.up = false;
        if let Some(mut v) = d.vbd.take() {
            v.disconnect();
            v.disk.dump_written("dom0: xvda-written");
            println!(
                "dom0: vbd of domain {id}: {} sectors discarded",
                v.disk.discarded
            );
        }
        if let Some(mut v) = d.vif.take() {
            v.disconnect();
            let c = v.counters;
            println!(
                "dom0: vif of domain {id}: {} packets sent, {} dropped; {} received, {} dropped",
                c.tx_packets, c.tx_dropped, c.rx_packets, c.rx_dropped
            );
        }
        for v in &mut d.vcons {
            v.disconnect();
        }
        toolstack::serve::close_port(d.store_port);
        let _ = toolstack::serve::unmap_page(d.store_va);
        let _ = self.daemon.store.release(TOOLSTACK, id);
        self.daemon.disconnect(id);
    }
}
