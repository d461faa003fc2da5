//! hv: a small ring-0 hypervisor exposing Xen 4.17's x86_64 PV ABI.
//!
//! `main` below reads as the boot sequence. Raw hardware access lives in
//! `arch`; raw access to machine frames in `mm::frame_access`; everything else
//! is safe Rust working on validated values.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

#[expect(unsafe_code, reason = "hardware access is confined to arch")]
mod arch;
mod bootinfo;
mod console;
mod console_input;
mod domain;
mod emulate;
mod event;
mod grant;
mod guest_mem;
mod hypercall;
mod mm;
mod sched;
mod selftest;
mod shutdown;
mod sync;
mod time;
mod timer;
mod traps;

use alloc::string::String;

use arch::x86_64 as x86;
use console::Level;

static HV_CMDLINE: spin::Once<String> = spin::Once::new();

/// hv's own command line (`XENVER_commandline`).
pub fn hv_cmdline() -> &'static str {
    HV_CMDLINE.get().map_or("", String::as_str)
}

/// Options on hv's command line (Xen's names where Xen has the option).
struct Options {
    /// `dom0_mem=<size>[K|M|G]`: memory of the boot domain.
    dom0_mem: Option<u64>,
    /// `dom0_max_vcpus=N|N-M|N-|-M`: bounds on domain 0's vCPUs (Xen's
    /// default: one per CPU it may run on).
    dom0_max_vcpus: (u32, u32),
    /// `loglvl=error|warning|info|debug|all`.
    loglvl: Level,
    /// `selftest=pagefault|panic`: make hv itself fail just before entering
    /// domain 0, to exercise (and test) the fatal-fault report;
    /// `selftest=vcpu-switch`: switch between two vCPUs of domain 0 and
    /// back before entering it, checking that each keeps its context;
    /// `selftest=smp`: IPIs and a TLB shootdown across every CPU.
    selftest: Option<SelfTest>,
}

#[derive(Clone, Copy)]
enum SelfTest {
    PageFault,
    Panic,
    VcpuSwitch,
    Smp,
}

fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1 << 10),
        b'm' | b'M' => (&s[..s.len() - 1], 1 << 20),
        b'g' | b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn parse_options(cmdline: &str) -> Options {
    let mut o = Options {
        dom0_mem: None,
        dom0_max_vcpus: (1, u32::MAX),
        loglvl: Level::Info,
        selftest: None,
    };
    for word in cmdline.split_ascii_whitespace() {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        match key {
            // Xen's form may carry ",max:..." parts; the first plain size wins.
            "dom0_mem" => o.dom0_mem = value.split(',').find_map(parse_size),
            "dom0_max_vcpus" => {
                if let Some(bounds) = hv::sched::parse_dom0_max_vcpus(value) {
                    o.dom0_max_vcpus = bounds;
                }
            }
            "loglvl" => {
                o.loglvl = match value {
                    "error" | "none" => Level::Error,
                    "warning" => Level::Warn,
                    "debug" | "all" => Level::Debug,
                    _ => Level::Info,
                }
            }
            "selftest" => {
                o.selftest = match value {
                    "pagefault" => Some(SelfTest::PageFault),
                    "panic" => Some(SelfTest::Panic),
                    "vcpu-switch" => Some(SelfTest::VcpuSwitch),
                    "smp" => Some(SelfTest::Smp),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    o
}

/// Stops boot with a message naming what went wrong.
pub fn fatal(what: core::fmt::Arguments<'_>) -> ! {
    let cpu = x86::percpu::cpu_id();
    console::emergency(format_args!("(hv) FATAL: CPU{cpu}: {what}\n"));
    shutdown::panic_exit()
}

fn main(magic: u32, info: u32) -> ! {
    time::mark_boot();
    x86::serial::init();
    hvlog!(
        info,
        "hv {} (Xen 4.17 x86_64 PV ABI) starting",
        env!("CARGO_PKG_VERSION")
    );

    let bi = bootinfo::parse(magic, info)
        .unwrap_or_else(|e| fatal(format_args!("boot information: {e}")));
    let opts = parse_options(&bi.cmdline);
    console::set_level(opts.loglvl);
    hvlog!(info, "Bootloader: {}", bi.loader);
    hvlog!(info, "Command line: {}", bi.cmdline);

    let features = x86::init_cpu();
    hvlog!(debug, "CPU features: {features:?}");
    let xs = features.xstate;
    if xs.mask != 0 {
        hvlog!(
            info,
            "xstate: XCR0 {:#x} (the PV guests' components), {}-byte XSAVE area per vCPU{}",
            xs.mask,
            xs.size,
            if xs.xsaveopt { ", xsaveopt" } else { "" }
        );
    } else {
        hvlog!(info, "xstate: no XSAVE: fxsave, 512-byte area per vCPU");
    }

    let image = x86::image_range();
    let mem = mm::init(&bi, image);
    mm::page_table::build_direct_map().unwrap_or_else(|e| fatal(format_args!("{e}")));
    // The frame table lives in the heap: room for it comes on top (about
    // 0.6% of RAM; 24 MiB at 4 GiB).
    let heap_bytes = (mem.free_frames * mm::PAGE_SIZE / 16).clamp(8 << 20, 64 << 20)
        + mm::frame_table_bytes().next_multiple_of(2 << 20);
    mm::init_heap(heap_bytes).unwrap_or_else(|e| fatal(format_args!("{e}")));
    mm::init_frame_table().unwrap_or_else(|e| fatal(format_args!("{e}")));
    HV_CMDLINE.call_once(|| String::from(bi.cmdline.as_str()));
    mm::page_table::init().unwrap_or_else(|e| fatal(format_args!("{e}")));
    mm::m2p::init(mem.usable_limit / mm::PAGE_SIZE).unwrap_or_else(|e| fatal(format_args!("{e}")));
    hvlog!(
        info,
        "Memory: {} MiB of RAM, {} MiB free, {} MiB heap, frames up to {:#x}{}",
        mem.ram >> 20,
        (mm::free_frames() * mm::PAGE_SIZE) >> 20,
        heap_bytes >> 20,
        mem.usable_limit / mm::PAGE_SIZE,
        if mem.ram > mem.usable {
            " (RAM above 64 GiB is not used)"
        } else {
            ""
        }
    );

    let mut cpu_acpi_ids: (heapless::Vec<u32, 64>, heapless::Vec<u32, 64>) = Default::default();
    let mut io_apics = heapless::Vec::<u64, 8>::new();
    match x86::acpi::read(bi.rsdp) {
        Ok(p) => {
            cpu_acpi_ids = (p.cpus.clone(), p.acpi_ids.clone());
            hvlog!(
                info,
                "ACPI: {} CPU(s) (APIC ids {:?}), {} I/O APIC(s)",
                p.cpus.len(),
                p.cpus,
                p.io_apics
            );
            if let Some(port) = p.pm1a_control {
                shutdown::set_pm1a_control(port);
            }
            io_apics = p.io_apic_addrs;
        }
        Err(e) => hvlog!(
            warn,
            "ACPI tables unusable ({e:?}): no poweroff through ACPI, the boot CPU only"
        ),
    }
    match x86::apic::init() {
        Ok(t) => {
            hvlog!(
                info,
                "APIC: CPU0 APIC id {}, timer {} ticks/ms, {}; TSC {} kHz",
                t.apic_id,
                t.apic_ticks_per_ms,
                if t.tsc_deadline {
                    "TSC-deadline mode"
                } else {
                    "one-shot"
                },
                t.tsc_khz
            );
            let (apic_ids, acpi_ids) = &cpu_acpi_ids;
            let acpi_id = apic_ids
                .iter()
                .position(|&a| a == t.apic_id)
                .and_then(|i| acpi_ids.get(i).copied())
                .unwrap_or(u32::MAX);
            x86::physid::record(0, t.apic_id, acpi_id);
        }
        Err(e) => fatal(format_args!("local APIC: {e}")),
    }
    // The interrupt controllers are hv's: no domain maps the local APIC;
    // the hardware domain may read the I/O APICs, as on Xen.
    mm::set_io_denied(x86::apic::base(), &io_apics);
    start_aps(&bi, &cpu_acpi_ids.0);
    if matches!(opts.selftest, Some(SelfTest::Smp)) {
        selftest::smp();
    }
    let (y, mo, d, h, mi, s) = time::init();
    timer::start_cpu();
    hvlog!(
        info,
        "Time: wallclock {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC (CMOS)"
    );

    let t0 = x86::cpu::rdtsc();
    // Xen's default: a vCPU per CPU that runs guests.
    let cpus = x86::smp::online().0.count_ones().max(1);
    let dom0_vcpus = hv::sched::dom0_vcpus(cpus, opts.dom0_max_vcpus, domain::MAX_VCPUS);
    let dom0 = build_boot_domain(&bi, opts.dom0_mem, dom0_vcpus);
    let micros =
        x86::cpu::rdtsc().saturating_sub(t0).saturating_mul(1000) / x86::apic::tsc_khz().max(1);
    hvlog!(
        info,
        "*** domain 0 built in {}.{:03} ms: {} pages; entering it ***",
        micros / 1000,
        micros % 1000,
        dom0.nr_pages()
    );
    let dom0 = match opts.selftest {
        Some(SelfTest::VcpuSwitch) => selftest::vcpu_switch(dom0),
        _ => dom0,
    };
    if !domain::register(dom0) {
        fatal(format_args!("domain 0 registered twice"));
    }
    match opts.selftest {
        Some(SelfTest::PageFault) => {
            hvlog!(info, "selftest: reading an unmapped hypervisor address");
            x86::cpu::selftest_page_fault();
        }
        Some(SelfTest::Panic) => panic!("selftest: panic requested on the command line"),
        Some(SelfTest::VcpuSwitch | SelfTest::Smp) | None => {}
    }
    let Some(dom0) = domain::lookup(domain::DomId::DOM0) else {
        fatal(format_args!("domain 0 vanished"))
    };
    sched::init_cpu(x86::percpu::cpu_id());
    sched::add_domain(&dom0, false);
    drop(dom0);
    x86::smp::start_guests(ap_main);
    let (cr3, regs) = sched::first_entry();
    x86::enter_guest(cr3, &regs)
}

/// An AP once guests may run on it: its scheduler queue, its timer and
/// its timer queue started, it takes the vCPUs its queue (or its load
/// balancing) gives it, as the boot CPU does.
fn ap_main() -> ! {
    let me = x86::percpu::this_cpu();
    sched::init_cpu(me.id());
    me.set_online();
    x86::apic::start_timer_ap();
    timer::start_cpu();
    let (cr3, regs) = sched::first_entry();
    x86::enter_guest(cr3, &regs)
}

/// Brings up every other CPU the MADT lists (`arch::x86_64::smp`) and
/// logs which answered. Their ids are not recorded for `VCPUOP_get_physid`
/// (`physid`): no vCPU runs on them yet.
fn start_aps(bi: &bootinfo::BootInfo, apic_ids: &[u32]) {
    let mut avoid: heapless::Vec<(u64, u64), 10> = bi
        .modules
        .iter()
        .map(|m| (m.paddr, m.paddr.saturating_add(m.len)))
        .collect();
    if let Some(rsdp) = bi.rsdp {
        let _ = avoid.push((rsdp, rsdp.saturating_add(36)));
    }
    let report = match hv::smp::trampoline_page(&bi.ram, &avoid) {
        Some(page) if apic_ids.len() > 1 => x86::smp::start_aps(apic_ids, page),
        Some(_) => x86::smp::Report {
            up: hv::smp::CpuMask::one(0),
            missing: heapless::Vec::new(),
        },
        None => {
            hvlog!(
                warn,
                "SMP: no free page below 640 KiB for the AP trampoline"
            );
            x86::smp::Report {
                up: hv::smp::CpuMask::one(0),
                missing: apic_ids.iter().skip(1).copied().collect(),
            }
        }
    };
    let mut ids: heapless::Vec<(usize, u32), 64> = heapless::Vec::new();
    for cpu in report.up.iter() {
        let _ = ids.push((cpu, x86::smp::apic_id_of(cpu)));
    }
    hvlog!(
        info,
        "SMP: {} CPUs up (CPU, APIC id: {:?})",
        report.up.count(),
        ids
    );
    if !report.missing.is_empty() {
        hvlog!(
            warn,
            "SMP: APIC id(s) {:?} did not answer: left out",
            report.missing
        );
    }
}

/// Builds domain 0 from the first boot module: a bundle made by `cargo xtask`
/// (kernel, command line, optional module) or a bare PV kernel ELF.
fn build_boot_domain(
    bi: &bootinfo::BootInfo,
    dom0_mem: Option<u64>,
    max_vcpus: u32,
) -> domain::Domain {
    let Some(first) = bi.modules.first() else {
        fatal(format_args!(
            "no boot module: domain 0's kernel must be the first module"
        ))
    };
    let bytes: &[u8] = mm::frame_access::boot_module(first.paddr, first.len).unwrap_or_else(|| {
        fatal(format_args!(
            "boot module at {:#x} ({} bytes) is not in usable RAM",
            first.paddr, first.len
        ))
    });
    let second: Option<&[u8]> = bi
        .modules
        .get(1)
        .and_then(|m| mm::frame_access::boot_module(m.paddr, m.len));
    let (kernel, cmdline, module): (&[u8], String, Option<&[u8]>) = match hv::bundle::parse(bytes) {
        Ok(b) => {
            let k = b
                .kernel()
                .unwrap_or_else(|| fatal(format_args!("boot bundle has no kernel")));
            (k.data, String::from(k.cmdline), b.module().map(|m| m.data))
        }
        Err(hv::bundle::BundleError::NotABundle) => {
            // Like Xen, drop the module string's first word (the image name
            // GRUB puts there).
            let args = first
                .cmdline
                .split_once(' ')
                .map_or("", |(_, rest)| rest.trim_start());
            (bytes, String::from(args), second)
        }
        Err(e) => fatal(format_args!("boot bundle: {e}")),
    };
    // A compressed kernel is unpacked before domain 0's memory is sized, so
    // that the default size leaves hv the frames it holds.
    let kernel = domain::boot_kernel::unpack(kernel)
        .unwrap_or_else(|e| fatal(format_args!("Could not construct domain 0: {e}")));
    let free = mm::free_frames();
    let nr_pages = match dom0_mem {
        Some(bytes) => bytes / mm::PAGE_SIZE,
        // Xen's default: all but 1/16 of memory (at most 128 MiB) for hv.
        None => free - (free / 16).min((128 << 20) / mm::PAGE_SIZE),
    };
    let kernel_bytes = kernel
        .bytes()
        .unwrap_or_else(|e| fatal(format_args!("Could not construct domain 0: {e}")));
    hvlog!(
        info,
        "*** Building a PV Dom0 *** ({} KiB kernel, {} pages, {} vCPUs)",
        kernel_bytes.len() / 1024,
        nr_pages,
        max_vcpus
    );
    let spec = domain::builder::BootDomainSpec {
        id: domain::DomId::DOM0,
        kernel: kernel_bytes,
        cmdline: &cmdline,
        module,
        nr_pages,
        initial: true,
        max_vcpus,
    };
    domain::builder::build(&spec)
        .unwrap_or_else(|e| fatal(format_args!("Could not construct domain 0: {e}")))
}

/// Prints the frame-pointer backtrace from `rbp`.
pub fn backtrace(rbp: u64) {
    console::emergency(format_args!("(hv) backtrace:\n"));
    x86::entry::backtrace(rbp, |ret| {
        console::emergency(format_args!("(hv)   {ret:#018x}\n"))
    });
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let cpu = x86::percpu::cpu_id();
    console::emergency(format_args!(
        "\n(hv) PANIC on CPU{cpu} (current domain {}): {info}\n",
        domain::current_id().get()
    ));
    backtrace(x86::cpu::frame_pointer());
    shutdown::panic_exit()
}
