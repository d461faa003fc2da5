//! End-to-end checks of the QEMU plumbing without `hv`: a 150-byte PVH
//! kernel built here prints a message on COM1 and leaves through
//! isa-debug-exit, booted with exactly the command line `run` and `test` use.
//! Skipped (with a note) when QEMU is not installed.

use crate::judge::{judge, Host, Verdict};
use crate::meta::RunSpec;
use crate::qemu::{Config, Ending, Shutdown};
use std::path::PathBuf;
use std::time::Duration;

const LOAD: u32 = 0x10_0000;
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

fn push32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn push16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// An ELF32 PVH kernel: 32-bit flat protected mode at entry, no paging.
pub fn pvh_kernel(message: &str, debug_exit_value: u8) -> Vec<u8> {
    const EHDR: u32 = 52;
    const PHDR: u32 = 32;
    let note_off = EHDR + 2 * PHDR;
    let code_off = note_off + 20;
    let mut code = vec![0xbe]; // mov esi, imm32 (message address, patched below)
    let msg_fixup = code.len();
    code.extend_from_slice(&[0, 0, 0, 0]);
    code.extend_from_slice(&[0x66, 0xba, 0xf8, 0x03]); // mov dx, 0x3f8 (COM1)
    code.extend_from_slice(&[0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8]); // lodsb; test al,al; jz +3; out dx,al; jmp -8
    code.extend_from_slice(&[0xb0, debug_exit_value, 0xe6, 0xf4]); // mov al, v; out 0xf4, al
    code.extend_from_slice(&[0xf4, 0xeb, 0xfd]); // hlt; jmp -3
    let msg_addr = LOAD + code_off + u32::try_from(code.len()).unwrap();
    code[msg_fixup..msg_fixup + 4].copy_from_slice(&msg_addr.to_le_bytes());
    code.extend_from_slice(message.as_bytes());
    code.push(0);
    let file_len = code_off + u32::try_from(code.len()).unwrap();

    let mut elf = b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    push16(&mut elf, 2); // ET_EXEC
    push16(&mut elf, 3); // EM_386
    push32(&mut elf, 1);
    push32(&mut elf, LOAD + code_off); // e_entry
    push32(&mut elf, EHDR); // e_phoff
    push32(&mut elf, 0);
    push32(&mut elf, 0);
    for v in [EHDR, PHDR, 2, 40, 0, 0] {
        push16(&mut elf, u16::try_from(v).unwrap());
    }
    // PT_LOAD of the whole file, then PT_NOTE.
    for v in [1, 0, LOAD, LOAD, file_len, file_len, 5, 0x1000] {
        push32(&mut elf, v);
    }
    for v in [4, note_off, LOAD + note_off, LOAD + note_off, 20, 20, 4, 4] {
        push32(&mut elf, v);
    }
    for v in [4, 4, XEN_ELFNOTE_PHYS32_ENTRY] {
        push32(&mut elf, v);
    }
    elf.extend_from_slice(b"Xen\0");
    push32(&mut elf, LOAD + code_off);
    elf.extend_from_slice(&code);
    assert_eq!(elf.len(), usize::try_from(file_len).unwrap());
    elf
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-qemu-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn qemu_present() -> bool {
    let probe = crate::prereq::Probe::host(&std::env::temp_dir());
    let ok = probe.check(crate::prereq::Prereq::Qemu).is_ok();
    if !ok {
        eprintln!("note: no QEMU >= 10; skipping the QEMU smoke test");
    }
    ok
}

#[test]
fn fake_kernel_reports_through_serial_and_debug_exit() {
    if !qemu_present() {
        return;
    }
    let dir = scratch("boot");
    let kernel = dir.join("fake-hv");
    std::fs::write(
        &kernel,
        pvh_kernel(
            "Test result: SUCCESS\n(hv) domain 0 shut down: reboot\n",
            0x10,
        ),
    )
    .unwrap();
    let bundle = dir.join("boot.bundle");
    crate::write_bundle(&kernel, "reason=reboot", None, &bundle).unwrap();

    let cfg = Config::new(kernel, &bundle);
    let log = dir.join("serial.log");
    let ending = cfg.run_logged(&log, Duration::from_secs(60), &[]).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(ending, Ending::Exited(33), "log:\n{text}");
    let spec = RunSpec {
        expect_exit: Shutdown::Reboot,
        expect_lines: vec!["(hv) domain 0 shut down: reboot".into()],
        ..RunSpec::default()
    };
    assert_eq!(
        judge(&spec, &text, ending, Host::Hv),
        Verdict::Pass { skipped: false }
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hv_panic_status_is_named() {
    if !qemu_present() {
        return;
    }
    let dir = scratch("panic");
    let kernel = dir.join("fake-hv");
    std::fs::write(&kernel, pvh_kernel("(hv) panic: oops\n", 0x20)).unwrap();
    let cfg = Config::new(kernel.clone(), &kernel);
    let ending = cfg
        .run_logged(&dir.join("serial.log"), Duration::from_secs(60), &[])
        .unwrap();
    assert_eq!(ending.to_string(), "hv panicked (status 65)");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_kernel_fails_cleanly() {
    if !qemu_present() {
        return;
    }
    let dir = scratch("missing");
    let cfg = Config::new(dir.join("no-such-hv"), &dir.join("no-such.bundle"));
    let log = dir.join("serial.log");
    let ending = cfg.run_logged(&log, Duration::from_secs(60), &[]).unwrap();
    assert_eq!(ending, Ending::Exited(1));
    assert!(ending.to_string().starts_with("QEMU failed"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("no-such-hv"),
        "QEMU names the missing file: {text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hang_times_out() {
    if !qemu_present() {
        return;
    }
    let dir = scratch("hang");
    let kernel = dir.join("fake-hv");
    // Value 0 is never written: the kernel prints nothing and halts forever.
    let mut image = pvh_kernel("", 0);
    let exit = image
        .windows(4)
        .position(|w| w == [0xb0, 0, 0xe6, 0xf4])
        .unwrap();
    image[exit..exit + 4].copy_from_slice(&[0x90; 4]); // nop out the exit
    std::fs::write(&kernel, image).unwrap();
    let cfg = Config::new(kernel.clone(), &kernel);
    let log = dir.join("serial.log");
    let ending = cfg.run_logged(&log, Duration::from_secs(2), &[]).unwrap();
    assert_eq!(ending, Ending::TimedOut(2));
    let verdict = judge(
        &RunSpec::default(),
        &std::fs::read_to_string(&log).unwrap(),
        ending,
        Host::Hv,
    );
    assert!(matches!(verdict, Verdict::Fail(why) if why.contains("timed out")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stops_on_a_final_line() {
    if !qemu_present() {
        return;
    }
    let dir = scratch("stop");
    let kernel = dir.join("fake-xen");
    let mut image = pvh_kernel("(XEN) Hardware Dom0 halted: halting machine\n", 0);
    let exit = image
        .windows(4)
        .position(|w| w == [0xb0, 0, 0xe6, 0xf4])
        .unwrap();
    image[exit..exit + 4].copy_from_slice(&[0x90; 4]);
    std::fs::write(&kernel, image).unwrap();
    let cfg = Config::new(kernel.clone(), &kernel);
    let start = std::time::Instant::now();
    let ending = cfg
        .run_logged(
            &dir.join("serial.log"),
            Duration::from_secs(60),
            &[crate::xen::HALT_LINE],
        )
        .unwrap();
    assert_eq!(ending, Ending::StoppedOnLine);
    assert!(start.elapsed() < Duration::from_secs(30));
    std::fs::remove_dir_all(&dir).unwrap();
}
