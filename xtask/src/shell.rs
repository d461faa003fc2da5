//! Running host commands and showing them the way a shell would accept them.

use crate::Error;
use std::process::Command;

/// Quotes one word for a POSIX shell; plain words are left alone.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A whole command line, each word quoted.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `Command` shown as a shell line (environment overrides first).
pub fn show(cmd: &Command) -> String {
    let mut words: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, quote(v?.to_str()?))))
        .collect();
    // `$CARGO` is a long toolchain path; `cargo` reads better and means the same here.
    let program = std::path::Path::new(cmd.get_program());
    if program.file_name().is_some_and(|n| n == "cargo") {
        words.push("cargo".into());
    } else {
        words.push(quote(&program.to_string_lossy()));
    }
    words.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    words.join(" ")
}

/// Runs a command with inherited stdio, echoing it first; a non-zero status
/// is an error naming the command.
pub fn run(cmd: &mut Command) -> Result<(), Error> {
    let line = show(cmd);
    eprintln!("+ {line}");
    let status = cmd
        .status()
        .map_err(|e| Error::Failed(format!("cannot run `{line}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Failed(format!("`{line}` failed ({status})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            quote("target/x86_64-unknown-none/release/hv"),
            "target/x86_64-unknown-none/release/hv"
        );
        assert_eq!(
            quote("isa-debug-exit,iobase=0xf4,iosize=0x04"),
            "isa-debug-exit,iobase=0xf4,iosize=0x04"
        );
        assert_eq!(
            quote("console=com1 dom0_mem=64M"),
            "'console=com1 dom0_mem=64M'"
        );
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(join(&["a b", "c"]), "'a b' c");
    }

    #[test]
    fn show_command() {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "libxen-dev"]);
        assert_eq!(
            show(&cmd),
            "DEBIAN_FRONTEND=noninteractive apt-get install -y libxen-dev"
        );
    }
}
