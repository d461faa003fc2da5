//! Command-line parsing on top of `lexopt`: GNU-style `--name value`,
//! `--name=value`, boolean `--flag`, short `-o`, and `--` ending the options
//! (what follows is passed through, e.g. extra QEMU arguments). Each command
//! matches option names itself (`Long("guest")`); this module adds what every
//! command shares: usage errors, `--help`, positive numbers and `--`.

pub use lexopt::prelude::*;
pub use lexopt::Parser;

use crate::Error;
use std::str::FromStr;

/// A parser over one command's arguments (after the command name).
pub fn parser(args: Vec<String>) -> Parser {
    Parser::from_args(args)
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Self {
        Error::Usage(format!("{e} (try --help)"))
    }
}

/// The value of option `opt` as a number other than zero.
pub fn positive<T: FromStr + PartialEq + Default>(p: &mut Parser, opt: &str) -> Result<T, Error> {
    let value = p.value()?.string()?;
    match value.parse() {
        Ok(v) if v != T::default() => Ok(v),
        Ok(_) => Err(Error::Usage(format!("option {opt} must be positive"))),
        Err(_) => Err(Error::Usage(format!(
            "option {opt}: invalid value {value:?}"
        ))),
    }
}

/// The arguments after `--`, if it is next where an option could be (not
/// as an option's value: `--cmdline --` is a command line).
pub fn after_dashes(p: &mut Parser) -> Result<Option<Vec<String>>, Error> {
    let Some(mut raw) = p.try_raw_args() else {
        return Ok(None);
    };
    if raw.next_if(|a| a == "--").is_none() {
        return Ok(None);
    }
    let rest: Result<Vec<String>, _> = raw.map(|a| a.string()).collect();
    Ok(Some(rest?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Parser {
        parser(list.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn separate_and_inline_values() {
        let mut p = args(&["--smp", "2", "--mem=256", "--kvm", "--", "-s", "-S"]);
        assert_eq!(p.next().unwrap(), Some(Long("smp")));
        assert_eq!(positive::<u32>(&mut p, "--smp").unwrap(), 2);
        assert_eq!(after_dashes(&mut p).unwrap(), None);
        assert_eq!(p.next().unwrap(), Some(Long("mem")));
        assert_eq!(positive::<u32>(&mut p, "--mem").unwrap(), 256);
        assert_eq!(p.next().unwrap(), Some(Long("kvm")));
        assert_eq!(after_dashes(&mut p).unwrap().unwrap(), ["-s", "-S"]);
        assert_eq!(p.next().unwrap(), None);
    }

    #[test]
    fn value_with_equals_sign_or_dashes_is_kept_whole() {
        let mut p = args(&["--cmdline=reason=crash x=1", "--cmdline", "--", "-o", "x"]);
        assert_eq!(p.next().unwrap(), Some(Long("cmdline")));
        assert_eq!(p.value().unwrap(), "reason=crash x=1");
        assert_eq!(p.next().unwrap(), Some(Long("cmdline")));
        assert_eq!(p.value().unwrap(), "--");
        assert_eq!(after_dashes(&mut p).unwrap(), None);
        assert_eq!(p.next().unwrap(), Some(Short('o')));
        assert_eq!(p.value().unwrap(), "x");
    }

    fn usage(e: Result<impl std::fmt::Debug, Error>) -> String {
        match e {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn errors() {
        let mut p = args(&["--smp"]);
        p.next().unwrap();
        assert!(usage(positive::<u32>(&mut p, "--smp")).contains("missing argument"));

        let mut p = args(&["--kvm=1", "--x"]);
        p.next().unwrap();
        assert!(usage(p.next().map_err(Error::from)).contains("unexpected argument"));

        let mut p = args(&["--smp", "two", "--mem", "0"]);
        p.next().unwrap();
        assert_eq!(
            usage(positive::<u32>(&mut p, "--smp")),
            "option --smp: invalid value \"two\""
        );
        p.next().unwrap();
        assert_eq!(
            usage(positive::<u32>(&mut p, "--mem")),
            "option --mem must be positive"
        );

        let mut p = args(&["--bogus"]);
        let arg = p.next().unwrap().unwrap();
        assert_eq!(
            usage(Err::<(), _>(arg.unexpected().into())),
            "invalid option '--bogus' (try --help)"
        );
    }
}
