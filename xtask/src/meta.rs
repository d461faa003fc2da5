//! Per-test metadata: how to run a conformance guest and what to expect.
//!
//! It lives in the guest's own source, as `//!` doc-comment lines of the form
//! `//! @key: value` in the comment block at the top of
//! `tests/src/bin/<name>.rs` (or `tests/src/bin/<name>/main.rs`). The block
//! ends at the first line that is neither a `//` comment nor blank. Other
//! doc lines are ordinary documentation. Unknown keys are errors, so a typo
//! fails the test instead of being ignored.
//!
//! | key | value | default |
//! | --- | --- | --- |
//! | `@cmdline` | the guest's command line | empty |
//! | `@hv-cmdline-append` | words appended to hv's default command line (`console=com1 dom0_mem=64M`) | none |
//! | `@xen-cmdline-append` | words appended to Xen's command line (the oracle side; e.g. `sched=credit`) | none |
//! | `@expect-exit` | how the run must end: `poweroff`, `reboot`, `suspend`, `crash`, `watchdog`, `soft_reset`, `unknown`, `panic` (hv panicked) | `poweroff` |
//! | `@expect-result` | `SUCCESS` (a `SUCCESS` or `SKIP` line), `SKIP`, `ERROR`, `FAILURE` (a `FAILURE` or `ERROR` line, or no result line at all: the guest may crash), `none` (no result line) | `SUCCESS` |
//! | `@expect-line` | text that must appear in some line of the log (substring match; repeatable) | none |
//! | `@reject-line` | text that must not appear in any line of the log (substring match; repeatable) | none |
//! | `@serial-input` | `marker text`: once a log line contains `marker`, `text` (where `\xNN` is the byte NN) and a carriage return are typed on the serial line | none |
//! | `@max-lines` | `N text`: at most N lines of the log contain `text` (a bound on what a guest can make the hypervisor print; repeatable) | none |
//! | `@timeout` | seconds before the run counts as a crash | `cargo xtask test --timeout`, 60 |
//! | `@smp` | vCPUs of the machine | 1 |
//! | `@mem` | machine memory in MiB | 512 |
//! | `@dom0-mem` | domain 0's memory in MiB, on both sides (hv's `dom0_mem=`, Xen's `dom0_mem=N,max:N`) | 64 |
//! | `@vcpus` | domain 0's vCPUs, on both sides (`dom0_max_vcpus=N`; Xen gives dom0 that many even on fewer physical CPUs) | 1 |
//! | `@module` | a module (initrd) for the guest: a file relative to the workspace root, or `guest:NAME`, the built test guest `NAME` (a domU kernel for a dom0 that builds domains) | none |
//! | `@role` | `dom0`: a conformance case; `domu`: a kernel other guests boot as a domU (through `@module: guest:NAME`), not a case of its own; not in variants | `dom0` |
//! | `@bzimage` | boot the guest wrapped as a bzImage whose payload is the ELF `none` (as it is), or compressed as Linux packs a kernel: `gzip`, `xz`, `lz4`; `:corrupt` after one flips a byte of the stream (see `bzimage.rs`) | the plain ELF |
//! | `@only` | `hv (reason)` or `xen (reason)`: the run is meaningful on one side only; the other side is skipped and the reason shown | both sides |
//! | `@covers` | what the guest checks, for the README's conformance table: hypercalls (`sched_op_compat`) and sub-operations (`console_io.write`), space-separated, repeatable; not in variants | none |
//! | `@variant` | `NAME key=value ...`: one more run of the binary (see below) | none |
//!
//! The run described by the plain keys is reported as `<name>`. Each
//! `@variant` adds a run reported as `<name>/<NAME>`: it starts from the plain
//! keys and replaces the ones it names, using the same keys without `@`.
//! Values containing spaces are written in double quotes (`\"` and `\\`
//! escape inside them). A variant's `expect-line`s replace the inherited
//! list (repeat the key for several; `expect-line=""` clears it), and
//! likewise for `reject-line`. Example:
//!
//! ```text
//! //! Shutdown reasons reach hv.
//! //!
//! //! @cmdline: reason=reboot
//! //! @expect-exit: reboot
//! //! @expect-line: (hv) domain 0 shut down: reboot
//! //! @variant: crash cmdline=reason=crash expect-exit=crash expect-line="(hv) domain 0 shut down: crash"
//! ```

use crate::qemu::Shutdown;
use std::fmt;

/// The two hypervisors a conformance guest runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Hv,
    Xen,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Hv, Side::Xen];

    pub fn name(self) -> &'static str {
        match self {
            Side::Hv => "hv",
            Side::Xen => "xen",
        }
    }
}

/// `@only: hv (reason)`: the side a run is limited to, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Only {
    pub side: Side,
    pub reason: String,
}

impl Only {
    fn parse(value: &str) -> Result<Self, String> {
        let err = || format!("only: expected `hv (reason)` or `xen (reason)`, not {value:?}");
        let (side, rest) = value.split_once(char::is_whitespace).ok_or_else(err)?;
        let side = match side {
            "hv" => Side::Hv,
            "xen" => Side::Xen,
            _ => return Err(err()),
        };
        let reason = rest
            .trim()
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(err)?;
        Ok(Only {
            side,
            reason: reason.to_owned(),
        })
    }
}

/// What the guest's `Test result:` line must say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectResult {
    /// `SUCCESS` or `SKIP`.
    Success,
    Skip,
    Error,
    /// `FAILURE` or `ERROR`, or no result line (the guest crashed).
    Failure,
    /// No result line at all.
    Nothing,
}

impl ExpectResult {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "SUCCESS" => ExpectResult::Success,
            "SKIP" => ExpectResult::Skip,
            "ERROR" => ExpectResult::Error,
            "FAILURE" => ExpectResult::Failure,
            "none" => ExpectResult::Nothing,
            _ => return None,
        })
    }
}

/// One run of a conformance guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSpec {
    pub cmdline: String,
    pub hv_cmdline_append: String,
    /// `@xen-cmdline-append`: words appended to Xen's command line.
    pub xen_cmdline_append: String,
    pub expect_exit: Shutdown,
    pub expect_result: ExpectResult,
    pub expect_lines: Vec<String>,
    pub reject_lines: Vec<String>,
    /// `@max-lines`: at most `.0` log lines may contain `.1`.
    pub max_lines: Vec<(usize, String)>,
    /// `@serial-input`: once a log line contains `.0`, `.1` and a carriage
    /// return are typed on the serial line.
    pub serial_input: Option<(String, String)>,
    pub timeout_secs: Option<u64>,
    pub smp: Option<u32>,
    pub mem_mib: Option<u32>,
    /// `@dom0-mem`: domain 0's memory in MiB (both sides).
    pub dom0_mem_mib: Option<u32>,
    /// `@vcpus`: domain 0's vCPUs (both sides).
    pub vcpus: Option<u32>,
    pub module: Option<Module>,
    /// `@bzimage`: boot the guest wrapped as a bzImage.
    pub bzimage: Option<crate::bzimage::Wrapping>,
    /// Set by `@only`: the run is required on this side only.
    pub only: Option<Only>,
    /// `@covers`: the hypercalls and sub-operations the guest checks.
    pub covers: Vec<String>,
    /// `@role: domu`: the binary is a domU kernel, not a case.
    pub domu: bool,
}

impl RunSpec {
    /// Whether this run is meant to run on `side`.
    pub fn runs_on(&self, side: Side) -> bool {
        self.only.as_ref().is_none_or(|o| o.side == side)
    }
}

impl Default for RunSpec {
    fn default() -> Self {
        Self {
            cmdline: String::new(),
            hv_cmdline_append: String::new(),
            xen_cmdline_append: String::new(),
            expect_exit: Shutdown::Poweroff,
            expect_result: ExpectResult::Success,
            expect_lines: Vec::new(),
            reject_lines: Vec::new(),
            max_lines: Vec::new(),
            serial_input: None,
            timeout_secs: None,
            smp: None,
            mem_mib: None,
            dom0_mem_mib: None,
            vcpus: None,
            module: None,
            bzimage: None,
            only: None,
            covers: Vec::new(),
            domu: false,
        }
    }
}

/// `@module`: what the guest gets as its boot module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Module {
    /// A file, relative to the workspace root.
    File(String),
    /// `guest:NAME`: the built test guest `NAME` (from `tests/src/bin/`).
    Guest(String),
}

impl Module {
    fn parse(value: &str) -> Result<Option<Self>, String> {
        if value.is_empty() {
            return Ok(None);
        }
        let Some(name) = value.strip_prefix("guest:") else {
            return Ok(Some(Module::File(value.to_owned())));
        };
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(format!(
                "module: `guest:` wants a test guest's name (letters, digits, _ or -), not {name:?}"
            ));
        }
        Ok(Some(Module::Guest(name.to_owned())))
    }
}

/// A run with its reported name: `<binary>` or `<binary>/<variant>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub binary: String,
    pub variant: Option<String>,
    pub spec: RunSpec,
}

#[derive(Debug, PartialEq, Eq)]
pub struct MetaError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Whether a key is being set by a `@key:` line or inside a `@variant:`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Base,
    Variant,
}

fn set(
    spec: &mut RunSpec,
    key: &str,
    value: &str,
    origin: Origin,
    replaced: &mut Replaced,
) -> Result<(), String> {
    fn number<T: std::str::FromStr + PartialEq + Default>(
        key: &str,
        value: &str,
    ) -> Result<T, String> {
        match value.parse::<T>() {
            Ok(n) if n != T::default() => Ok(n),
            _ => Err(format!("{key}: expected a positive number, not {value:?}")),
        }
    }
    match key {
        "cmdline" => spec.cmdline = value.to_owned(),
        "hv-cmdline-append" => spec.hv_cmdline_append = value.to_owned(),
        "xen-cmdline-append" => spec.xen_cmdline_append = value.to_owned(),
        "expect-exit" => {
            spec.expect_exit = Shutdown::from_name(value).ok_or_else(|| {
                let names: Vec<_> = Shutdown::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "expect-exit: unknown reason {value:?} (one of {})",
                    names.join(", ")
                )
            })?;
        }
        "expect-result" => {
            spec.expect_result = ExpectResult::parse(value).ok_or_else(|| {
                format!("expect-result: {value:?} is not SUCCESS, SKIP, ERROR, FAILURE or none")
            })?;
        }
        "expect-line" => push_line(
            &mut spec.expect_lines,
            key,
            value,
            origin,
            &mut replaced.expect,
        )?,
        "reject-line" => push_line(
            &mut spec.reject_lines,
            key,
            value,
            origin,
            &mut replaced.reject,
        )?,
        "max-lines" => {
            let (n, text) = value
                .split_once(' ')
                .and_then(|(n, t)| Some((n.parse::<usize>().ok()?, t.trim())))
                .filter(|(_, t)| !t.is_empty())
                .ok_or_else(|| format!("max-lines: expected `N text`, not {value:?}"))?;
            spec.max_lines.push((n, text.to_owned()));
        }
        "serial-input" => {
            let (marker, text) = value
                .split_once(' ')
                .map(|(m, t)| (m.trim(), t.trim()))
                .filter(|(m, t)| !m.is_empty() && !t.is_empty())
                .ok_or_else(|| format!("serial-input: expected `marker text`, not {value:?}"))?;
            spec.serial_input = Some((marker.to_owned(), text.to_owned()));
        }
        "timeout" => spec.timeout_secs = Some(number(key, value)?),
        "smp" => spec.smp = Some(number(key, value)?),
        "mem" => spec.mem_mib = Some(number(key, value)?),
        "dom0-mem" => spec.dom0_mem_mib = Some(number(key, value)?),
        "vcpus" => spec.vcpus = Some(number(key, value)?),
        "module" => spec.module = Module::parse(value)?,
        "role" if origin == Origin::Variant => {
            return Err("role: belongs to the guest, not to a variant".into())
        }
        "role" => {
            spec.domu = match value {
                "dom0" => false,
                "domu" => true,
                _ => return Err(format!("role: expected `dom0` or `domu`, not {value:?}")),
            }
        }
        "bzimage" => spec.bzimage = Some(crate::bzimage::Wrapping::parse(value)?),
        "only" if value.is_empty() && origin == Origin::Variant => spec.only = None,
        "only" => spec.only = Some(Only::parse(value)?),
        "covers" if origin == Origin::Variant => {
            return Err("covers: belongs to the guest, not to a variant".into())
        }
        "covers" => {
            for item in value.split_whitespace() {
                let valid = |w: &str| {
                    !w.is_empty()
                        && w.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                };
                let ok = match item.split_once('.') {
                    Some((hc, op)) => valid(hc) && valid(op),
                    None => valid(item),
                };
                if !ok {
                    return Err(format!(
                        "covers: {item:?} is not `hypercall` or `hypercall.sub_op`"
                    ));
                }
                spec.covers.push(item.to_owned());
            }
            if value.trim().is_empty() {
                return Err(format!("{key}: empty"));
            }
        }
        _ => return Err(format!("unknown key {key:?}")),
    }
    Ok(())
}

/// Which inherited line lists a variant has already replaced.
#[derive(Default)]
struct Replaced {
    expect: bool,
    reject: bool,
}

/// Adds `value` to a line list (`expect-line`, `reject-line`): a variant's
/// first one replaces the inherited list, and an empty value in a variant
/// just clears it.
fn push_line(
    list: &mut Vec<String>,
    key: &str,
    value: &str,
    origin: Origin,
    replaced: &mut bool,
) -> Result<(), String> {
    if origin == Origin::Variant && !*replaced {
        list.clear();
        *replaced = true;
    }
    if !value.is_empty() {
        list.push(value.to_owned());
    } else if origin == Origin::Base {
        return Err(format!("{key}: empty"));
    }
    Ok(())
}

/// Splits `NAME key=value key="a b"` into words, honouring double quotes.
fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            if c != '"' {
                word.push(c);
                continue;
            }
            loop {
                match chars.next() {
                    None => return Err("unterminated quote".into()),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(e @ ('"' | '\\')) => word.push(e),
                        _ => return Err(r#"only \" and \\ are escapes"#.into()),
                    },
                    Some(c) => word.push(c),
                }
            }
        }
        words.push(word);
    }
}

fn valid_variant_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Parses the metadata of binary `binary` from its source text.
pub fn parse(binary: &str, source: &str) -> Result<Vec<Case>, MetaError> {
    let mut base = RunSpec::default();
    // Variants are applied after the whole block is read, so they inherit
    // plain keys written below them too.
    let mut variants: Vec<(usize, String)> = Vec::new();
    for (index, raw) in source.lines().enumerate() {
        let line = index + 1;
        let err = |message: String| MetaError { line, message };
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        if !trimmed.starts_with("//") {
            break;
        }
        let Some(doc) = trimmed.strip_prefix("//!") else {
            continue;
        };
        let Some(item) = doc.trim().strip_prefix('@') else {
            continue;
        };
        let (key, value) = item
            .split_once(':')
            .ok_or_else(|| err(format!("expected `@key: value`, found {:?}", doc.trim())))?;
        let (key, value) = (key.trim(), value.trim());
        if key == "variant" {
            variants.push((line, value.to_owned()));
        } else {
            set(
                &mut base,
                key,
                value,
                Origin::Base,
                &mut Replaced::default(),
            )
            .map_err(err)?;
        }
    }

    let mut cases = vec![Case {
        name: binary.to_owned(),
        binary: binary.to_owned(),
        variant: None,
        spec: base.clone(),
    }];
    for (line, text) in variants {
        let err = |message: String| MetaError { line, message };
        let mut words = split_words(&text).map_err(err)?.into_iter();
        let name = words.next().unwrap_or_default();
        if !valid_variant_name(&name) {
            return Err(err(format!(
                "variant name {name:?} must be letters, digits, - or _"
            )));
        }
        if cases
            .iter()
            .any(|c| c.variant.as_deref() == Some(name.as_str()))
        {
            return Err(err(format!("variant {name:?} defined twice")));
        }
        let mut spec = base.clone();
        let mut replaced = Replaced::default();
        for word in words {
            let (key, value) = word.split_once('=').ok_or_else(|| {
                err(format!(
                    "variant {name}: expected key=value, found {word:?}"
                ))
            })?;
            set(&mut spec, key, value, Origin::Variant, &mut replaced)
                .map_err(|m| err(format!("variant {name}: {m}")))?;
        }
        cases.push(Case {
            name: format!("{binary}/{name}"),
            binary: binary.to_owned(),
            variant: Some(name),
            spec,
        });
    }
    Ok(cases)
}

/// The bytes `@serial-input` types for `text`: `\xNN` is byte NN (two
/// hex digits; anything else after a backslash is kept as written), and a
/// carriage return ends them.
pub fn typed_bytes(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len() + 1);
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 2..i + 4)
            .filter(|_| b[i] == b'\\' && b.get(i + 1) == Some(&b'x'))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out.push(b'\r');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_metadata_means_defaults() {
        let cases = parse("smoke", "//! Just a smoke test.\n#![no_std]\n").unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].name, "smoke");
        assert_eq!(cases[0].spec, RunSpec::default());
        assert_eq!(cases[0].spec.expect_exit, Shutdown::Poweroff);
        assert_eq!(cases[0].spec.expect_result, ExpectResult::Success);
    }

    #[test]
    fn keys_and_variants() {
        let src = r#"//! Shutdown reasons reach hv.
//!
//! @cmdline: reason=reboot
//! @expect-exit: reboot
//! @expect-line: (hv) domain 0 shut down: reboot
//! @expect-line: bye
//! @variant: crash cmdline=reason=crash expect-exit=crash expect-line="(hv) domain 0 shut down: crash"
//! @variant: quiet cmdline="reason=reboot quiet" expect-line=""
//! @variant: slow smp=2 mem=1024 timeout=120 hv-cmdline-append=loglvl=all
//! @variant: credit xen-cmdline-append=sched=credit
//! @timeout: 30

#![no_std]
//! @cmdline: ignored, after the header block
"#;
        let cases = parse("shutdown", src).unwrap();
        let names: Vec<_> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "shutdown",
                "shutdown/crash",
                "shutdown/quiet",
                "shutdown/slow",
                "shutdown/credit"
            ]
        );

        let base = &cases[0].spec;
        assert_eq!(base.cmdline, "reason=reboot");
        assert_eq!(base.expect_exit, Shutdown::Reboot);
        assert_eq!(
            base.expect_lines,
            ["(hv) domain 0 shut down: reboot", "bye"]
        );
        assert_eq!(base.timeout_secs, Some(30));

        let crash = &cases[1].spec;
        assert_eq!(cases[1].binary, "shutdown");
        assert_eq!(cases[1].variant.as_deref(), Some("crash"));
        assert_eq!(crash.cmdline, "reason=crash");
        assert_eq!(crash.expect_exit, Shutdown::Crash);
        assert_eq!(crash.expect_lines, ["(hv) domain 0 shut down: crash"]);
        assert_eq!(
            crash.timeout_secs,
            Some(30),
            "inherits keys written after it"
        );

        assert_eq!(cases[2].spec.cmdline, "reason=reboot quiet");
        assert!(cases[2].spec.expect_lines.is_empty());

        let slow = &cases[3].spec;
        assert_eq!(
            (slow.smp, slow.mem_mib, slow.timeout_secs),
            (Some(2), Some(1024), Some(120))
        );
        assert_eq!(slow.hv_cmdline_append, "loglvl=all");
        assert_eq!(slow.expect_lines, base.expect_lines);
        assert!(slow.xen_cmdline_append.is_empty());
        assert_eq!(cases[4].spec.xen_cmdline_append, "sched=credit");
        assert!(cases[4].spec.hv_cmdline_append.is_empty());
    }

    #[test]
    fn negative_test() {
        let src = "//! @expect-result: FAILURE\n//! @expect-exit: crash\n//! @expect-line: (hv) d0v0 invalid opcode\n";
        let spec = &parse("ud2", src).unwrap()[0].spec;
        assert_eq!(spec.expect_result, ExpectResult::Failure);
        assert_eq!(spec.expect_exit, Shutdown::Crash);
    }

    #[test]
    fn errors_name_the_line() {
        let bad = |src: &str| parse("t", src).unwrap_err();
        assert_eq!(bad("//! ok\n//! @expect-exit: explode\n").line, 2);
        assert!(bad("//! @expect-exit: explode\n")
            .message
            .contains("unknown reason"));
        assert!(bad("//! @expect-result: success\n")
            .message
            .contains("not SUCCESS"));
        assert!(bad("//! @exepct-line: x\n").message.contains("unknown key"));
        assert!(bad("//! @timeout\n").message.contains("@key: value"));
        assert!(bad("//! @timeout: 0\n").message.contains("positive number"));
        assert!(bad("//! @smp: two\n").message.contains("positive number"));
        assert!(bad("//! @expect-line:\n").message.contains("empty"));
        assert!(bad("//! @variant: a/b\n").message.contains("variant name"));
        assert!(bad("//! @variant:\n").message.contains("variant name"));
        assert!(bad("//! @variant: a\n//! @variant: a\n")
            .message
            .contains("twice"));
        assert!(bad("//! @variant: a cmdline\n")
            .message
            .contains("key=value"));
        assert!(bad("//! @variant: a cmdline=\"x\n")
            .message
            .contains("unterminated"));
        assert!(bad("//! @variant: a variant=b\n")
            .message
            .contains("unknown key"));
    }

    #[test]
    fn typed_bytes_escapes() {
        assert_eq!(super::typed_bytes("ab"), b"ab\r");
        assert_eq!(super::typed_bytes("\\x01\\x01q"), b"\x01\x01q\r");
        assert_eq!(super::typed_bytes("\\xzz\\"), b"\\xzz\\\r");
    }

    #[test]
    fn max_lines() {
        let src = "//! @max-lines: 10 CR0 flags\n//! @variant: v max-lines=\"3 x\"\n";
        let cases = parse("t", src).unwrap();
        assert_eq!(cases[0].spec.max_lines, [(10, "CR0 flags".to_owned())]);
        assert_eq!(
            cases[1].spec.max_lines,
            [(10, "CR0 flags".to_owned()), (3, "x".to_owned())]
        );
        for bad in ["//! @max-lines: ten x\n", "//! @max-lines: 10\n"] {
            let err = parse("t", bad).unwrap_err();
            assert!(err.message.contains("max-lines"), "{}", err.message);
        }
    }

    #[test]
    fn reject_lines() {
        let src = "//! @reject-line: BAD one\n//! @reject-line: worse\n//! @expect-line: ok\n\
//! @variant: keep expect-line=fine\n//! @variant: swap reject-line=other\n\
//! @variant: none reject-line=\"\"\n";
        let cases = parse("t", src).unwrap();
        assert_eq!(cases[0].spec.reject_lines, ["BAD one", "worse"]);
        assert_eq!(cases[1].spec.reject_lines, ["BAD one", "worse"]);
        assert_eq!(cases[1].spec.expect_lines, ["fine"]);
        assert_eq!(cases[2].spec.reject_lines, ["other"]);
        assert_eq!(cases[2].spec.expect_lines, ["ok"]);
        assert!(cases[3].spec.reject_lines.is_empty());
        let err = parse("t", "//! @reject-line:\n").unwrap_err();
        assert!(
            err.message.contains("reject-line: empty"),
            "{}",
            err.message
        );
    }

    #[test]
    fn only_and_covers() {
        let src = "//! @only: hv (hv's selftest= option does not exist on Xen)\n\
//! @covers: console_io.write sched_op\n//! @covers: xen_version.build_id\n\
//! @variant: both only=\"\"\n//! @variant: x \"only=xen (a reason)\"\n";
        let cases = parse("t", src).unwrap();
        let only = cases[0].spec.only.as_ref().unwrap();
        assert_eq!(only.side, Side::Hv);
        assert_eq!(only.reason, "hv's selftest= option does not exist on Xen");
        assert!(cases[0].spec.runs_on(Side::Hv) && !cases[0].spec.runs_on(Side::Xen));
        assert_eq!(
            cases[0].spec.covers,
            ["console_io.write", "sched_op", "xen_version.build_id"]
        );
        assert_eq!(cases[1].spec.only, None);
        assert!(cases[1].spec.runs_on(Side::Xen));
        assert_eq!(cases[1].spec.covers, cases[0].spec.covers);
        assert_eq!(
            cases[2].spec.only,
            Some(Only {
                side: Side::Xen,
                reason: "a reason".into()
            })
        );

        let bad = |src: &str| parse("t", src).unwrap_err().message;
        assert!(bad("//! @only: hv\n").contains("hv (reason)"));
        assert!(bad("//! @only: hv ()\n").contains("hv (reason)"));
        assert!(bad("//! @only: kvm (x)\n").contains("hv (reason)"));
        assert!(bad("//! @only: hv reason\n").contains("hv (reason)"));
        assert!(bad("//! @covers: Console_io\n").contains("sub_op"));
        assert!(bad("//! @covers: a.b.c\n").contains("sub_op"));
        assert!(bad("//! @covers:\n").contains("empty"));
        assert!(bad("//! @variant: v covers=x\n").contains("not to a variant"));
    }

    #[test]
    fn modules_and_roles() {
        let src = "//! @module: tests/data/boot-module.bin\n\
//! @variant: built module=guest:domu_hello\n//! @variant: none module=\"\"\n";
        let cases = parse("t", src).unwrap();
        assert_eq!(
            cases[0].spec.module,
            Some(Module::File("tests/data/boot-module.bin".into()))
        );
        assert_eq!(
            cases[1].spec.module,
            Some(Module::Guest("domu_hello".into()))
        );
        assert_eq!(cases[2].spec.module, None);
        assert!(!cases[0].spec.domu);
        assert!(parse("t", "//! @role: domu\n").unwrap()[0].spec.domu);
        assert!(!parse("t", "//! @role: dom0\n").unwrap()[0].spec.domu);

        let bad = |src: &str| parse("t", src).unwrap_err().message;
        assert!(bad("//! @module: guest:\n").contains("test guest's name"));
        assert!(bad("//! @module: guest:../hv\n").contains("test guest's name"));
        assert!(bad("//! @module: guest:a b\n").contains("test guest's name"));
        assert!(bad("//! @role: domU\n").contains("`dom0` or `domu`"));
        assert!(bad("//! @variant: v role=domu\n").contains("not to a variant"));
    }

    #[test]
    fn quoted_words() {
        assert_eq!(
            split_words(r#" a  b="c d" e="x\"y\\" "#).unwrap(),
            ["a", "b=c d", r#"e=x"y\"#]
        );
        assert_eq!(split_words("").unwrap(), Vec::<String>::new());
        assert!(split_words(r#"a="\n""#).is_err());
    }
}
