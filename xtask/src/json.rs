//! Writing xtask's JSON files with `serde_json` in the layout they have
//! always had: the outer objects and arrays one member per line, indented
//! by two spaces, and everything deeper on one line with `", "` and `": "`
//! (one case or row per line, which reads well in a diff).

use serde::Serialize;
use std::io::{self, Write};

/// A `serde_json` formatter: containers nested less than `multiline` deep
/// put each member on its own line; deeper ones stay on one line.
struct Layout {
    multiline: usize,
    depth: usize,
}

impl Layout {
    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.depth < self.multiline {
            self.newline(w, self.depth)?;
        }
        w.write_all(bracket)
    }

    fn member<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if self.depth <= self.multiline {
            if !first {
                w.write_all(b",")?;
            }
            self.newline(w, self.depth)
        } else if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn newline<W: ?Sized + Write>(&self, w: &mut W, indent: usize) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..indent {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Layout {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.member(w, first)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.member(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// `value` as JSON text ending in a newline, containers nested less than
/// `multiline` deep one member per line.
pub fn to_string<T: Serialize>(value: &T, multiline: usize) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        Layout {
            multiline,
            depth: 0,
        },
    );
    // Writing plain data (no maps with non-string keys) to a Vec cannot fail.
    value
        .serialize(&mut ser)
        .expect("serializing to memory cannot fail");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// `value` rounded to `decimals` decimal places, as the files have always
/// shown timings and ratios.
pub fn rounded(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_levels_multiline_inner_levels_inline() {
        let value = serde_json::json!({"a": 1, "list": [{"x": "y", "z": [1, 2]}, {}], "e": []});
        assert_eq!(
            to_string(&value, 2),
            "{\n  \"a\": 1,\n  \"e\": [\n  ],\n  \"list\": [\n    {\"x\": \"y\", \"z\": [1, 2]},\n    {}\n  ]\n}\n"
        );
        assert_eq!(
            to_string(&value, 0),
            "{\"a\": 1, \"e\": [], \"list\": [{\"x\": \"y\", \"z\": [1, 2]}, {}]}\n"
        );
        assert_eq!(rounded(1.25, 1), 1.3);
        assert_eq!(rounded(0.312_66, 4), 0.3127);
    }
}
