//! Domain 0, the management domain ([`main`]; the `dom0` binary is it).
//!
//! It reports what the domain builder gave it (start_info, its memory,
//! its command line and boot module) and what the hypervisor says it is.
//! A boot module that is a PV kernel (ELF with Xen's notes, or a bzImage
//! that `kernel-image` unpacks into a [`window`] of our memory), or a boot
//! bundle of kernel, command line and ramdisk, it builds and runs as a
//! domU with the toolstack (crate `toolstack`): 8 MiB unless the command
//! line says `domu_mib=N`, its console lines shown here as
//! `domU<id>| ...`, its xenstore served, until it shuts down; then
//! destroys it. Then it powers the machine off.
//! Later issues grow it into the driver, xenstore and backend domain.
//!
//! Command line: `halt` powers off (the default); `reboot` and `crash` end
//! with those shutdown reasons instead.
#![no_std]

extern crate alloc;

pub mod blkback;
pub mod support;
pub mod window;

use guest_abi::hypercall::{
    xen_version_capabilities, xen_version_extraversion, xen_version_version,
};
use guest_abi::rt::{shutdown, StartInfoRef};
use guest_abi::sched::{SHUTDOWN_CRASH, SHUTDOWN_POWEROFF, SHUTDOWN_REBOOT};
use guest_abi::{println, xen};

fn c_str(bytes: &[u8]) -> &str {
    let n = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..n]).unwrap_or("<not utf-8>")
}

/// dom0's whole life.
pub fn main(si: StartInfoRef) -> ! {
    let mut extra = [0u8; 16];
    let mut caps = [0u8; 1024];
    let v = xen_version_version();
    let _ = xen_version_extraversion(&mut extra);
    let _ = xen_version_capabilities(&mut caps);
    println!(
        "dom0: running on Xen-compatible hypervisor {}.{}{} ({})",
        v >> 16,
        v & 0xffff,
        c_str(&extra),
        c_str(&caps).trim_end()
    );
    println!("dom0: start_info magic {}", si.magic_str());
    println!(
        "dom0: flags {:#x}{}{}",
        si.flags,
        if si.flags & xen::SIF_PRIVILEGED != 0 {
            " privileged"
        } else {
            ""
        },
        if si.flags & xen::SIF_INITDOMAIN != 0 {
            " initial-domain"
        } else {
            ""
        }
    );
    println!(
        "dom0: memory {} pages ({} MiB)",
        si.nr_pages,
        (si.nr_pages * 4096) >> 20
    );
    println!("dom0: shared_info at machine address {:#x}", si.shared_info);
    println!(
        "dom0: page tables at {:#x} ({} frames), P2M list at {:#x}",
        si.pt_base, si.nr_pt_frames, si.mfn_list
    );
    if si.mod_len != 0 {
        println!(
            "dom0: boot module: {} bytes at {:#x}",
            si.mod_len, si.mod_start
        );
        run_module(si);
    } else {
        println!("dom0: no boot module");
    }
    let cmdline = c_str(&si.cmd_line);
    println!("dom0: command line: \"{cmdline}\"");
    let reason = if cmdline.split_ascii_whitespace().any(|w| w == "reboot") {
        SHUTDOWN_REBOOT
    } else if cmdline.split_ascii_whitespace().any(|w| w == "crash") {
        SHUTDOWN_CRASH
    } else {
        SHUTDOWN_POWEROFF
    };
    println!(
        "dom0: nothing else to do yet; shutting down ({})",
        guest_abi::sched::shutdown_reason_name(reason)
    );
    shutdown(reason)
}

/// Memory of the domU built from the boot module, unless dom0's command
/// line says `domu_mib=N`.
const DOMU_PAGES: u64 = 2048;

/// What the boot module holds for the domU.
struct DomuImages {
    kernel: &'static [u8],
    cmdline: alloc::string::String,
    ramdisk: &'static [u8],
    /// A disk image and how to offer it (`xvda w`: the device's name and
    /// `w` or `r`).
    disk: Option<(&'static mut [u8], alloc::string::String)>,
}

/// The domU's kernel, command line, ramdisk and disk from the boot module:
/// a boot bundle (`boot-bundle`: entry 0 the kernel and its command line,
/// entry 1 the ramdisk, entry 2 a disk image whose command line says how
/// to offer it), or a kernel by itself. The disk is the module's own
/// memory, written in place: it must not overlap the other entries.
fn domu_images(module: &'static mut [u8]) -> Result<DomuImages, &'static str> {
    let base = module.as_ptr() as usize;
    let at = |d: &[u8]| (d.as_ptr() as usize - base, d.len());
    let (kernel, cmdline, ramdisk, disk) = match boot_bundle::parse(module) {
        Ok(b) => {
            let k = b.kernel().map_or((0, 0), |e| at(e.data));
            let c = b.kernel().map_or("", |e| e.cmdline).into();
            let r = b.module().map_or((0, 0), |e| at(e.data));
            let d = b
                .entry(2)
                .map(|e| (at(e.data), alloc::string::String::from(e.cmdline)));
            (k, c, r, d)
        }
        Err(_) => {
            return Ok(DomuImages {
                kernel: module,
                cmdline: alloc::string::String::new(),
                ramdisk: &[],
                disk: None,
            })
        }
    };
    let Some(((ds, dl), how)) = disk else {
        let module: &'static [u8] = module;
        return Ok(DomuImages {
            kernel: &module[kernel.0..kernel.0 + kernel.1],
            cmdline,
            ramdisk: &module[ramdisk.0..ramdisk.0 + ramdisk.1],
            disk: None,
        });
    };
    let apart = |(s, l): (usize, usize)| l == 0 || s + l <= ds || s >= ds + dl;
    if !apart(kernel) || !apart(ramdisk) {
        return Err("the disk image overlaps the kernel or the ramdisk");
    }
    let (head, rest) = module.split_at_mut(ds);
    let (disk, tail) = rest.split_at_mut(dl);
    let (head, tail): (&'static [u8], &'static [u8]) = (head, tail);
    let pick = |(s, l): (usize, usize)| {
        if l == 0 {
            &[][..]
        } else if s + l <= ds {
            &head[s..s + l]
        } else {
            &tail[s - ds - dl..s - ds - dl + l]
        }
    };
    Ok(DomuImages {
        kernel: pick(kernel),
        cmdline,
        ramdisk: pick(ramdisk),
        disk: Some((disk, how)),
    })
}

/// `xvdX` as a Xen virtual device number (major 202, 16 minors each).
fn xvd_number(name: &str) -> Option<u32> {
    let letter = name.strip_prefix("xvd")?.as_bytes();
    match letter {
        [c @ b'a'..=b'z'] => Some(202 << 8 | u32::from(c - b'a') << 4),
        _ => None,
    }
}

/// The domU's memory in pages: `domu_mib=N` on dom0's command line, or
/// [`DOMU_PAGES`].
fn domu_pages(si: StartInfoRef) -> u64 {
    c_str(&si.cmd_line)
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("domu_mib="))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DOMU_PAGES, |mib| mib * 256)
}

/// Builds the boot module as a domU and runs it to its shutdown, if it is
/// a PV kernel.
fn run_module(si: StartInfoRef) {
    let len = usize::try_from(si.mod_len).unwrap_or(0);
    // SAFETY: the domain builder mapped the module at `mod_start`,
    // `mod_len` bytes, writable, for good; nothing else refers to it.
    let module = unsafe { core::slice::from_raw_parts_mut(si.mod_start as *mut u8, len) };
    let images = match domu_images(module) {
        Ok(i) => i,
        Err(e) => {
            println!("dom0: the boot module: {e}");
            return;
        }
    };
    let (packed, ramdisk) = (images.kernel, images.ramdisk);
    let cmdline = images.cmdline.as_bytes();
    // Four pages of our initial mapping's padding (at least 512 KiB,
    // after the bootstrap tables and the boot stack page, on hv as on
    // Xen; nothing of ours uses it): our shared-info page, the domU's
    // console ring, the builder's scratch page and the domU's store page;
    // a fifth for the window's own scratch work, a sixth for the domU's
    // block ring.
    let padding = si.pt_base + (si.nr_pt_frames + 2) * 4096;
    let (shared, ring, scratch) = (padding, padding + 4096, padding + 2 * 4096);
    let store_va = padding + 3 * 4096;
    let image = match kernel_image::classify(packed) {
        Ok(kernel_image::KernelImage::Elf { image, .. }) => image,
        Ok(kernel_image::KernelImage::Packed(p)) => {
            let out = match window::map(si, padding + 4 * 4096, p.unpacked_len as u64) {
                Ok(out) => out,
                Err(e) => {
                    println!(
                        "dom0: no room to unpack the domU's {} kernel ({} bytes): {e}",
                        p.compression.name(),
                        p.unpacked_len
                    );
                    return;
                }
            };
            let out = &mut out[..p.unpacked_len];
            if let Err(e) = kernel_image::unpack(&p, out, &mut []) {
                println!("dom0: unpacking the domU's kernel: {e}");
                return;
            }
            println!(
                "dom0: the domU's kernel: {} bytes unpacked from {} ({} bytes)",
                out.len(),
                p.compression.name(),
                packed.len()
            );
            out
        }
        Err(e) => {
            println!("dom0: the boot module is not a PV kernel ({e}): nothing to run");
            return;
        }
    };
    if toolstack::elf::parse(image).is_err() {
        println!("dom0: the boot module is not a PV kernel: nothing to run");
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
    let cfg = toolstack::Config {
        image,
        pages,
        cmdline,
        ramdisk,
    };
    let mut p2m = alloc::vec![0u64; usize::try_from(pages).unwrap_or(0)];
    let mut mapper = toolstack::serve::Scratch { va: scratch };
    let built = match toolstack::build_into(&cfg, &mut p2m, &mut mapper) {
        Ok(b) => b,
        Err(e) => {
            println!("dom0: building the domU: {e}");
            return;
        }
    };
    let id = built.domid;
    drop(p2m);
    println!("dom0: built domain {id} from the boot module ({pages} pages); running it");
    let shown = |line: &[u8]| {
        println!(
            "domU{id}| {}",
            core::str::from_utf8(line).unwrap_or("<not utf-8>")
        );
    };
    let Some(store) = Xenstore::start(&built, store_va) else {
        return;
    };
    let mut xs = store;
    if let Some((bytes, how)) = images.disk {
        xs.add_disk(si, bytes, &how, padding + 5 * 4096);
    }
    let r = toolstack::serve::run_with(&built, shared, ring, |ports| xs.serve(ports), shown);
    xs.stop();
    match r {
        Ok(reason) => println!(
            "dom0: domain {id} shut down ({}) and is destroyed",
            guest_abi::sched::shutdown_reason_name(reason)
        ),
        Err(e) => println!("dom0: running domain {id}: {e}"),
    }
}

/// The xenstore of the domU dom0 runs: the store with the domU's
/// skeleton (`pv_drivers::xenstored::toolstack::skeleton`, as libxl lays
/// it out), its connection over its store page (mapped at `va`) and our
/// end of its store channel.
struct Xenstore {
    daemon: pv_drivers::xenstored::daemon::Daemon,
    domid: u16,
    page: support::MappedPage,
    va: u64,
    port: u32,
    /// The domU's disk, if the boot module has one.
    vbd: Option<blkback::Vbd>,
}

const TOOLSTACK: pv_drivers::xenstored::Conn = pv_drivers::xenstored::Conn {
    domid: 0,
    privileged: true,
};

impl Xenstore {
    fn start(b: &toolstack::Built, va: u64) -> Option<Self> {
        let id = b.domid;
        let mut daemon = pv_drivers::xenstored::daemon::Daemon::new();
        let s = &mut daemon.store;
        let kib = b.layout.nr_pages * 4;
        let skeleton = pv_drivers::xenstored::toolstack::skeleton(s, id, "hello-domu", kib, 1)
            .and_then(|()| s.introduce(TOOLSTACK, id));
        if let Err(e) = skeleton {
            println!("dom0: xenstore skeleton for domain {id}: {e}");
            return None;
        }
        daemon.connect(id, false);
        if let Err(e) = toolstack::serve::map_page(va, b.store_mfn, id) {
            println!("dom0: mapping domain {id}'s store page: {e}");
            return None;
        }
        let port = match toolstack::serve::bind(id, b.store_port) {
            Ok(p) => p,
            Err(e) => {
                println!("dom0: binding domain {id}'s store channel: {e}");
                let _ = toolstack::serve::unmap_page(va);
                return None;
            }
        };
        // SAFETY: `va` is a page of our padding, mapped to the domU's store
        // page until `stop`, and nothing of ours refers into it.
        let page = unsafe { support::MappedPage::new(va) };
        Some(Self {
            daemon,
            domid: id,
            page,
            va,
            port,
            vbd: None,
        })
    }

    /// Offers `bytes` to the domU as a virtual block device, as `how`
    /// says (`xvda w`: the name, and `w` for writable or `r`); its ring
    /// is to be mapped at our page `ring_va`.
    fn add_disk(&mut self, si: StartInfoRef, bytes: &'static mut [u8], how: &str, ring_va: u64) {
        let mut words = how.split_ascii_whitespace();
        let name = words.next().unwrap_or("xvda");
        let writable = words.next() != Some("r");
        let Some(dev) = xvd_number(name) else {
            println!("dom0: disk {name:?}: not a name of the form xvdX");
            return;
        };
        let s = &mut self.daemon.store;
        if let Err(e) =
            pv_drivers::xenstored::toolstack::add_vbd(s, self.domid, 0, dev, name, writable)
        {
            println!("dom0: disk {name} for domain {}: {e}", self.domid);
            return;
        }
        println!(
            "dom0: disk {name} ({} bytes, {}) for domain {}",
            bytes.len(),
            if writable { "writable" } else { "read-only" },
            self.domid
        );
        let disk = blkback::MemDisk::new(bytes, !writable);
        self.vbd = Some(blkback::Vbd::new(si, self.domid, dev, disk, ring_va));
    }

    /// Serves the domU's store requests and its disk; notifies it if
    /// anything moved; names our ports to wake for.
    fn serve(&mut self, ports: &mut toolstack::serve::Ports) {
        let ring = pv_drivers::xs_wire::StoreRing::new(&self.page);
        let mut moved = match self.daemon.service(self.domid, &ring) {
            Ok(moved) => moved,
            Err(e) => {
                println!(
                    "dom0: xenstore: domain {}: {e:?}; not served any more",
                    self.domid
                );
                self.daemon.disconnect(self.domid);
                false
            }
        };
        if let Some(vbd) = &mut self.vbd {
            // The handshake may take several steps in a row.
            while vbd.poll(&mut self.daemon.store) {
                self.daemon.route_events();
                moved |= self.daemon.flush(self.domid, &ring).unwrap_or(false);
            }
            vbd.serve();
        }
        if moved {
            toolstack::serve::notify(self.port);
        }
        ports.push(self.port);
        if let Some(p) = self.vbd.as_ref().and_then(blkback::Vbd::port) {
            ports.push(p);
        }
    }

    fn stop(mut self) {
        if let Some(mut vbd) = self.vbd.take() {
            vbd.disconnect();
            vbd.disk.dump_written("dom0: xvda-written");
        }
        let _ = self.daemon.store.release(TOOLSTACK, self.domid);
        self.daemon.disconnect(self.domid);
        toolstack::serve::close_port(self.port);
        let _ = toolstack::serve::unmap_page(self.va);
    }
}
