//! The JSON infergate writes: indented like `serde_json::to_vec_pretty`,
//! except that an array of plain values (numbers, strings, booleans, nulls)
//! stays on one line.
//!
//! A results file holds every inter-token gap of every request; pretty
//! printed one per line, a 1,000-case run wrote 66 MB, mostly indentation,
//! and reading it back was most of `infergate compare`. Objects, and arrays
//! of objects or arrays, are laid out as before, so files still diff well.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

/// `value` as JSON, indented by two spaces, arrays of plain values on one line.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Indented::default());
    value.serialize(&mut ser)?;
    Ok(out)
}

/// The formatter behind [`to_vec`].
///
/// An array's layout is decided by its first element: a separator before an
/// array element is held back until the element starts, and is written
/// inline (`, `) when it is a plain value, on a new indented line when it is
/// an object or an array.
#[derive(Debug, Default)]
struct Indented {
    /// Open objects and arrays, innermost last.
    open: Vec<Open>,
    /// A separator owed before the next array element (`true` for the first).
    owed: Option<bool>,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    /// One line (`Some(true)`), one element per line (`Some(false)`, always
    /// for objects), or not known before the first element (`None`).
    inline: Option<bool>,
    /// Whether anything was written inside.
    has_value: bool,
}

impl Indented {
    fn indent<W: ?Sized + io::Write>(&self, w: &mut W) -> io::Result<()> {
        for _ in 0..self.open.len() {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    /// Pays the separator owed before an array element that is a container
    /// (`container`) or a plain value.
    fn start_value<W: ?Sized + io::Write>(&mut self, w: &mut W, container: bool) -> io::Result<()> {
        let Some(first) = self.owed.take() else { return Ok(()) };
        let inline = match self.open.last_mut() {
            Some(array) => *array.inline.get_or_insert(!container),
            None => false,
        };
        if inline {
            if !first {
                w.write_all(b", ")?;
            }
            Ok(())
        } else {
            w.write_all(if first { b"\n" } else { b",\n" })?;
            self.indent(w)
        }
    }

    fn open<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8], inline: Option<bool>) -> io::Result<()> {
        self.start_value(w, true)?;
        self.open.push(Open { inline, has_value: false });
        w.write_all(bracket)
    }

    fn close<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        let Some(closed) = self.open.pop() else { return w.write_all(bracket) };
        if closed.has_value && closed.inline != Some(true) {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(bracket)
    }

    fn mark_value(&mut self) {
        if let Some(open) = self.open.last_mut() {
            open.has_value = true;
        }
    }
}

/// A plain value: pay the separator, then write as compact JSON does.
macro_rules! plain {
    ($($name:ident($ty:ty)),* $(,)?) => {$(
        fn $name<W: ?Sized + io::Write>(&mut self, w: &mut W, value: $ty) -> io::Result<()> {
            self.start_value(w, false)?;
            CompactFormatter.$name(w, value)
        }
    )*};
}

impl Formatter for Indented {
    plain!(
        write_bool(bool),
        write_i8(i8),
        write_i16(i16),
        write_i32(i32),
        write_i64(i64),
        write_i128(i128),
        write_u8(u8),
        write_u16(u16),
        write_u32(u32),
        write_u64(u64),
        write_u128(u128),
        write_f32(f32),
        write_f64(f64),
        write_number_str(&str),
        write_raw_fragment(&str),
    );

    fn write_null<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.start_value(w, false)?;
        w.write_all(b"null")
    }

    fn begin_string<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        // Object keys are strings too, but nothing is owed before a key.
        self.start_value(w, false)?;
        w.write_all(b"\"")
    }

    fn write_char_escape<W: ?Sized + io::Write>(&mut self, w: &mut W, escape: CharEscape) -> io::Result<()> {
        CompactFormatter.write_char_escape(w, escape)
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[", None)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W, first: bool) -> io::Result<()> {
        self.owed = Some(first);
        Ok(())
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.mark_value();
        Ok(())
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{", Some(false))
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.mark_value();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn text(v: &Value) -> String {
        String::from_utf8(to_vec(v).unwrap()).unwrap()
    }

    #[test]
    fn plain_arrays_stay_on_one_line_and_the_rest_is_indented() {
        let v = json!({
            "itl_ms": [19.5, 20.25, 21.0],
            "empty": [],
            "empty_object": {},
            "names": ["a", "b\n\"c\""],
            "mixed": [null, true, 3],
            "requests": [{"ok": true, "itl": [1, 2]}, {"ok": false, "itl": []}],
            "matrix": [[1, 2], [3, 4]],
            "nested": {"x": 1},
        });
        let expected = r#"{
  "empty": [],
  "empty_object": {},
  "itl_ms": [19.5, 20.25, 21.0],
  "matrix": [
    [1, 2],
    [3, 4]
  ],
  "mixed": [null, true, 3],
  "names": ["a", "b\n\"c\""],
  "nested": {
    "x": 1
  },
  "requests": [
    {
      "itl": [1, 2],
      "ok": true
    },
    {
      "itl": [],
      "ok": false
    }
  ]
}"#;
        assert_eq!(text(&v), expected);
    }

    #[test]
    fn reads_back_as_what_was_written() {
        let v = json!([
            {"a": [1.5e-300, -0.0, 1e300, 12345678901234567890u64, -9223372036854775808i64]},
            [],
            [[]],
            [{"k": [[{"deep": ["\u{1f600}", "\u{0}", "tab\t"]}]]}],
            "top-level string",
            7,
        ]);
        let bytes = to_vec(&v).unwrap();
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, v);
        // Scalars alone are written as they are.
        assert_eq!(text(&json!(42)), "42");
        assert_eq!(text(&json!("s")), "\"s\"");
        assert_eq!(text(&json!(null)), "null");
    }
}
