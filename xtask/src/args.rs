//! A hand-rolled command-line parser, small enough to read in one sitting.
//!
//! Options are GNU-style: `--name value`, `--name=value`, boolean `--flag`,
//! and `--` ending the options (everything after it is passed through, e.g.
//! extra QEMU arguments). Each command matches option names itself, so the
//! parser only tokenizes and reports precise usage errors.

use crate::Error;

/// Walks the arguments of one command.
pub struct Args {
    items: std::vec::IntoIter<String>,
    /// The value of an `--name=value` argument, waiting for [`Args::value`].
    inline: Option<String>,
    /// The option most recently returned by [`Args::next_option`].
    current: String,
}

impl Args {
    pub fn new(items: Vec<String>) -> Self {
        Self {
            items: items.into_iter(),
            inline: None,
            current: String::new(),
        }
    }

    /// The next option name (`--guest`, `-o`, `--`), or `None` at the end.
    /// A bare word where an option was expected is returned as-is so the
    /// caller can reject it by name.
    pub fn next_option(&mut self) -> Result<Option<String>, Error> {
        if self.inline.is_some() {
            return Err(Error::Usage(format!(
                "option {} takes no value",
                self.current
            )));
        }
        let Some(arg) = self.items.next() else {
            return Ok(None);
        };
        let name = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") && name.len() > 2 => {
                self.inline = Some(value.to_owned());
                name.to_owned()
            }
            _ => arg,
        };
        self.current.clone_from(&name);
        Ok(Some(name))
    }

    /// The value of the option just returned by [`Args::next_option`].
    pub fn value(&mut self) -> Result<String, Error> {
        if let Some(value) = self.inline.take() {
            return Ok(value);
        }
        self.items
            .next()
            .ok_or_else(|| Error::Usage(format!("option {} needs a value", self.current)))
    }

    /// The value parsed as a number (or anything else `FromStr`).
    pub fn parsed<T: std::str::FromStr>(&mut self) -> Result<T, Error> {
        let value = self.value()?;
        value
            .parse()
            .map_err(|_| Error::Usage(format!("option {}: invalid value {value:?}", self.current)))
    }

    /// Everything after `--`.
    pub fn rest(&mut self) -> Vec<String> {
        self.items.by_ref().collect()
    }

    /// The error for an option the command does not know.
    pub fn unknown(&self) -> Error {
        Error::Usage(format!("unknown option {:?} (try --help)", self.current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::new(list.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn separate_and_inline_values() {
        let mut a = args(&["--smp", "2", "--mem=256", "--kvm", "--", "-s", "-S"]);
        assert_eq!(a.next_option().unwrap().as_deref(), Some("--smp"));
        assert_eq!(a.parsed::<u32>().unwrap(), 2);
        assert_eq!(a.next_option().unwrap().as_deref(), Some("--mem"));
        assert_eq!(a.parsed::<u32>().unwrap(), 256);
        assert_eq!(a.next_option().unwrap().as_deref(), Some("--kvm"));
        assert_eq!(a.next_option().unwrap().as_deref(), Some("--"));
        assert_eq!(a.rest(), ["-s", "-S"]);
        assert_eq!(a.next_option().unwrap(), None);
    }

    #[test]
    fn value_with_equals_sign_is_kept_whole() {
        let mut a = args(&["--cmdline=reason=crash x=1"]);
        assert_eq!(a.next_option().unwrap().as_deref(), Some("--cmdline"));
        assert_eq!(a.value().unwrap(), "reason=crash x=1");
    }

    #[test]
    fn errors() {
        let mut a = args(&["--smp"]);
        a.next_option().unwrap();
        assert!(matches!(a.value(), Err(Error::Usage(m)) if m.contains("needs a value")));

        let mut a = args(&["--kvm=1", "--x"]);
        a.next_option().unwrap();
        assert!(matches!(a.next_option(), Err(Error::Usage(m)) if m.contains("takes no value")));

        let mut a = args(&["--smp", "two"]);
        a.next_option().unwrap();
        assert!(matches!(a.parsed::<u32>(), Err(Error::Usage(m)) if m.contains("invalid value")));
    }
}
