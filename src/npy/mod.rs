//! A reader and writer for NumPy's `.npy` format: a thin adapter over npyz's dtype strings
//! ([`npyz::TypeStr`]) and the Python-literal parser npyz reads headers with
//! ([`py_literal`]), which keeps NumPy hints in [`GruError::Npy`] and checks every size.
//!
//! What is read (format versions 1.0, 2.0 and 3.0):
//! - [`read_f32`] / [`parse_f32`]: `float32` or `float64` arrays (`<f4`, `>f4`, `<f8`, `>f8`,
//!   and `=f4` / `=f8` in this machine's byte order), converted to `f32`. `float64` is
//!   accepted because it is NumPy's default dtype; each value is rounded to the nearest `f32`.
//! - [`read_i64`] / [`parse_i64`]: `int32`, `int64` or `uint32` arrays (either byte order),
//!   widened to `i64` (e.g. sequence lengths).
//!
//! Everything else is refused with a [`GruError::Npy`] that names the file, what it holds and
//! how to convert it in NumPy: Fortran-ordered arrays (`np.ascontiguousarray(a)`), other
//! dtypes (`a.astype(np.float32)`), structured dtypes, `.npz` archives, files whose data is
//! shorter or longer than the header's shape says. Sizes are computed with checked
//! arithmetic, so a header announcing an absurd shape is an error, never a panic or a huge
//! allocation.
//!
//! [`write_f32`] writes version 1.0 `<f4` files in C order, with the header padded as NumPy
//! pads it (magic, length and header together a multiple of 64 bytes), so `np.load` reads
//! them back unchanged.
//!
//! ```no_run
//! use std::path::Path;
//! # fn main() -> gru_wgpu::Result<()> {
//! gru_wgpu::npy::write_f32(Path::new("y.npy"), &[2, 3], &[0.0; 6])?;
//! let a = gru_wgpu::npy::read_f32(Path::new("y.npy"))?;
//! assert_eq!(a.shape, vec![2, 3]);
//! # Ok(()) }
//! ```

use std::path::Path;

use npyz::{Endianness, TypeChar, TypeStr};
use py_literal::Value;

use crate::error::{GruError, Result};

mod write;
pub use write::{encode_f32, write_f32};

/// The six bytes every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// A C-ordered `f32` array read from, or to be written to, a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The shape, outermost dimension first (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// The elements in C (row-major) order; `data.len()` is the product of `shape`.
    pub data: Vec<f32>,
}

impl NpyArray {
    /// The shape written as NumPy prints it, e.g. `(2, 3)`, `(5,)` or `()`.
    pub fn shape_string(&self) -> String {
        format_shape(&self.shape)
    }
}

/// Formats a shape as NumPy prints a tuple: `()`, `(5,)`, `(2, 3)`.
pub fn format_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        dims => {
            let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

fn npy_err(name: &str, message: impl Into<String>) -> GruError {
    GruError::Npy {
        path: name.to_string(),
        message: message.into(),
    }
}

fn read_file(path: &Path) -> Result<(Vec<u8>, String)> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => Ok((bytes, name)),
        Err(source) => Err(GruError::Io { path: name, source }),
    }
}

/// Reads a `float32` or `float64` `.npy` file into an [`NpyArray`] (see the module docs).
pub fn read_f32(path: &Path) -> Result<NpyArray> {
    let (bytes, name) = read_file(path)?;
    parse_f32(&bytes, &name)
}

/// Parses the bytes of a `float32` or `float64` `.npy` file; `name` is used in errors.
pub fn parse_f32(bytes: &[u8], name: &str) -> Result<NpyArray> {
    let header = parse_header(bytes, name)?;
    let convert: fn(&[u8], bool) -> f32 = match header.dtype.kind_size() {
        Some((TypeChar::Float, 4)) => |c, big| from_bytes!(f32, c, big),
        Some((TypeChar::Float, 8)) => |c, big| from_bytes!(f64, c, big) as f32,
        _ => {
            return Err(header
                .dtype
                .unsupported(name, "float32 or float64", "float32"))
        }
    };
    let data = elements(&header, bytes, name, convert)?;
    Ok(NpyArray {
        shape: header.shape,
        data,
    })
}

/// Reads an `int32`, `int64` or `uint32` `.npy` file as `(shape, values)` widened to `i64`.
pub fn read_i64(path: &Path) -> Result<(Vec<usize>, Vec<i64>)> {
    let (bytes, name) = read_file(path)?;
    parse_i64(&bytes, &name)
}

/// Parses the bytes of an `int32`, `int64` or `uint32` `.npy` file; `name` is used in errors.
pub fn parse_i64(bytes: &[u8], name: &str) -> Result<(Vec<usize>, Vec<i64>)> {
    let header = parse_header(bytes, name)?;
    let convert: fn(&[u8], bool) -> i64 = match header.dtype.kind_size() {
        Some((TypeChar::Int, 4)) => |c, big| i64::from(from_bytes!(i32, c, big)),
        Some((TypeChar::Uint, 4)) => |c, big| i64::from(from_bytes!(u32, c, big)),
        Some((TypeChar::Int, 8)) => |c, big| from_bytes!(i64, c, big),
        _ => return Err(header.dtype.unsupported(name, "int32 or int64", "int64")),
    };
    let values = elements(&header, bytes, name, convert)?;
    Ok((header.shape, values))
}

/// One element of type `$t` from the first bytes of `$c`, big-endian when `$big`.
macro_rules! from_bytes {
    ($t:ty, $c:expr, $big:expr) => {{
        const N: usize = std::mem::size_of::<$t>();
        let mut b = [0u8; N];
        b.copy_from_slice(&$c[..N]);
        if $big {
            <$t>::from_be_bytes(b)
        } else {
            <$t>::from_le_bytes(b)
        }
    }};
}
use from_bytes;

/// The elements of `header`'s data (checked to be exactly as long as the header says), each
/// read by `convert` from its bytes and the byte order.
fn elements<T>(
    header: &Header,
    bytes: &[u8],
    name: &str,
    convert: fn(&[u8], bool) -> T,
) -> Result<Vec<T>> {
    let big = header.dtype.big_endian(name)?;
    let data = header.data(bytes, name)?;
    Ok(data
        .chunks_exact(header.dtype.size())
        .map(|c| convert(c, big))
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Header

/// A dtype string such as `<f4`, read by npyz's [`TypeStr`] (NumPy's `=`, native byte order,
/// is read as this machine's order first: npyz takes `<`, `>` and `|` only).
struct Dtype {
    descr: String,
    /// What npyz made of it: `(type, bytes per element, byte order)`, or why it could not.
    parsed: std::result::Result<(TypeChar, usize, Endianness), String>,
}

impl Dtype {
    fn parse(descr: &str) -> Dtype {
        let text = match descr.strip_prefix('=') {
            Some(rest) => format!("{}{rest}", Endianness::of_machine().to_str()),
            None => descr.to_string(),
        };
        let read = |text: &str| {
            text.parse::<TypeStr>().map(|t| {
                let size = usize::try_from(t.size_field()).unwrap_or(usize::MAX);
                (t.type_char(), size, t.endianness())
            })
        };
        let parsed = match read(&text) {
            Ok(v) => Ok(v),
            // npyz refuses `|` for multi-byte numbers; keep the type, so that the message can
            // say the byte order is what is missing.
            Err(e) => match text.strip_prefix('|').map(|rest| read(&format!("<{rest}"))) {
                Some(Ok((kind, size, _))) => Ok((kind, size, Endianness::Irrelevant)),
                _ => Err(e.to_string()),
            },
        };
        Dtype {
            descr: descr.to_string(),
            parsed,
        }
    }

    /// `(type, bytes per element)`, when npyz could read the dtype.
    fn kind_size(&self) -> Option<(TypeChar, usize)> {
        self.parsed
            .as_ref()
            .ok()
            .map(|&(kind, size, _)| (kind, size))
    }

    /// NumPy's name for the dtype, for messages (`int64`, `float16`, …).
    fn numpy_name(&self) -> String {
        let (kind, size) = match &self.parsed {
            Ok((kind, size, _)) => (*kind, *size),
            Err(why) => return format!("not a NumPy dtype: {why}"),
        };
        let bits = size.saturating_mul(8);
        match kind {
            TypeChar::Float => format!("float{bits}"),
            TypeChar::Int => format!("int{bits}"),
            TypeChar::Uint => format!("uint{bits}"),
            TypeChar::Complex => format!("complex{bits}"),
            TypeChar::Bool => "bool".to_string(),
            TypeChar::UnicodeStr => "unicode string".to_string(),
            TypeChar::ByteStr => "byte string".to_string(),
            TypeChar::Object => "Python objects".to_string(),
            TypeChar::DateTime => "datetime64".to_string(),
            TypeChar::TimeDelta => "timedelta64".to_string(),
            TypeChar::RawData => "raw bytes".to_string(),
            _ => "unknown dtype".to_string(),
        }
    }

    /// Bytes per element (0 when npyz could not read the dtype; only checked dtypes reach
    /// the data).
    fn size(&self) -> usize {
        self.kind_size().map_or(0, |(_, size)| size)
    }

    /// The error for a dtype a reader does not take: what it expected, what came, and the
    /// NumPy conversion (`a.astype(np.{astype})`).
    fn unsupported(&self, name: &str, expected: &str, astype: &str) -> GruError {
        npy_err(
            name,
            format!(
                "expected {expected}, got '{}' ({}); convert with a.astype(np.{astype})",
                self.descr,
                self.numpy_name()
            ),
        )
    }

    /// Whether the data is big-endian; an error when the byte order is `|`.
    fn big_endian(&self, name: &str) -> Result<bool> {
        match self.parsed {
            Ok((_, _, Endianness::Little)) => Ok(false),
            Ok((_, _, Endianness::Big)) => Ok(true),
            _ => Err(npy_err(
                name,
                format!(
                    "dtype '{}' has no byte order ('<' little-endian or '>' big-endian) \
                     for a {}-byte type; save it again with np.save(path, a)",
                    self.descr,
                    self.size()
                ),
            )),
        }
    }
}

/// What the header says, and where the data starts.
struct Header {
    dtype: Dtype,
    shape: Vec<usize>,
    data_start: usize,
}

impl Header {
    /// The data bytes, checked to be exactly `product(shape) · itemsize` long.
    fn data<'b>(&self, bytes: &'b [u8], name: &str) -> Result<&'b [u8]> {
        let shape = format_shape(&self.shape);
        let expected = self
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .and_then(|n| n.checked_mul(self.dtype.size()))
            .ok_or_else(|| {
                npy_err(
                    name,
                    format!(
                        "header shape {shape} of '{}' needs more bytes than this machine can \
                         address; the header is corrupt",
                        self.dtype.descr
                    ),
                )
            })?;
        let data = bytes.get(self.data_start..).unwrap_or(&[]);
        if data.len() < expected {
            return Err(npy_err(
                name,
                format!(
                    "truncated: header says shape {shape} of '{}' = {expected} bytes of data, \
                     but the file has only {} after the header",
                    self.dtype.descr,
                    data.len()
                ),
            ));
        }
        if data.len() > expected {
            return Err(npy_err(
                name,
                format!(
                    "{} trailing bytes: header says shape {shape} of '{}' = {expected} bytes of \
                     data, but the file has {} after the header",
                    data.len() - expected,
                    self.dtype.descr,
                    data.len()
                ),
            ));
        }
        Ok(data)
    }
}

fn parse_header(bytes: &[u8], name: &str) -> Result<Header> {
    if bytes.is_empty() {
        return Err(npy_err(name, "empty file, not a .npy array"));
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(npy_err(
            name,
            "this is a .npz archive (several arrays in a zip file), not a .npy file; \
             save the one array with np.save(path, np.load(file)['name'])",
        ));
    }
    if !bytes.starts_with(MAGIC) {
        return Err(npy_err(
            name,
            if MAGIC.starts_with(bytes) {
                format!(
                    "truncated: {} bytes, too short for a .npy header",
                    bytes.len()
                )
            } else {
                "not a .npy file (it does not start with the \\x93NUMPY magic); \
                 save the array with np.save(path, a)"
                    .to_string()
            },
        ));
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(v) => (v[0], v[1]),
        None => {
            return Err(npy_err(
                name,
                format!(
                    "truncated: {} bytes, too short for a .npy header",
                    bytes.len()
                ),
            ))
        }
    };
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(npy_err(
                name,
                format!(
                    "unsupported .npy format version {major}.{minor}; expected 1.0, 2.0 or 3.0"
                ),
            ))
        }
    };
    let preamble = 8 + len_bytes;
    let Some(len_field) = bytes.get(8..preamble) else {
        return Err(npy_err(
            name,
            format!(
                "truncated: {} bytes, too short for a .npy header",
                bytes.len()
            ),
        ));
    };
    let header_len = len_field
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let Some(header_bytes) = preamble
        .checked_add(header_len)
        .and_then(|end| bytes.get(preamble..end))
    else {
        return Err(npy_err(
            name,
            format!(
                "truncated: the header announces {header_len} bytes, but the file has only {} \
                 after the {preamble}-byte preamble",
                bytes.len() - preamble
            ),
        ));
    };
    let text: String = if major == 3 {
        match std::str::from_utf8(header_bytes) {
            Ok(s) => s.to_string(),
            Err(_) => {
                return Err(npy_err(
                    name,
                    "malformed .npy header: version 3.0 header is not valid UTF-8",
                ))
            }
        }
    } else {
        // Versions 1.0 and 2.0 are latin-1: every byte is one character.
        header_bytes.iter().map(|&b| char::from(b)).collect()
    };
    let header = parse_dict(&text, name)?;
    Ok(Header {
        data_start: preamble + header_len,
        ..header
    })
}

/// Deepest nesting of brackets a header may have. A plain array's header nests 2 (the dict,
/// the shape tuple), a structured dtype's 3 or 4. py_literal (the Python-literal parser npyz
/// uses) backtracks: its time grows about threefold per level of nesting (10 levels took
/// over 10 s under the fuzzer), and it recurses per level; so deeper headers are refused
/// before parsing.
const MAX_DEPTH: usize = 4;

/// Which characters of a header's text lie outside string literals (`'…'` or `"…"`, with
/// backslash escapes): `outside[k]` for the `k`-th character. Quotes count as inside.
fn outside_strings(chars: &[char]) -> Vec<bool> {
    let (mut quote, mut escaped) = (None, false);
    chars
        .iter()
        .map(|&c| match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                false
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                false
            }
            None => true,
        })
        .collect()
}

/// How deeply `text` nests `(`, `[` and `{` (outside string literals), stopping at
/// `MAX_DEPTH + 1`.
fn nesting_depth(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let (mut depth, mut deepest) = (0usize, 0usize);
    for (&c, outside) in chars.iter().zip(outside_strings(&chars)) {
        match c {
            _ if !outside => {}
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > MAX_DEPTH {
                    break;
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// `text` without the `L` suffix Python 2 wrote after long integers (`(2L,)`), outside
/// string literals: NumPy's own reader filters them the same way.
fn without_long_suffixes(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let outside = outside_strings(&chars);
    let long_suffix = |k: usize| {
        let c = chars[k];
        outside[k]
            && (c == 'L' || c == 'l')
            && k > 0
            && chars[k - 1].is_ascii_digit()
            && !chars.get(k + 1).is_some_and(|n| n.is_alphanumeric())
    };
    (0..chars.len())
        .filter(|&k| !long_suffix(k))
        .map(|k| chars[k])
        .collect()
}

/// The kind of a header value, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Bytes(_) => "a bytes literal",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Complex(_) => "a complex number",
        Value::Boolean(_) => "a boolean",
        Value::None => "None",
        Value::Tuple(_) => "a tuple",
        Value::List(_) => "a list",
        Value::Dict(_) => "a dictionary",
        Value::Set(_) => "a set",
    }
}

/// Interprets the header dictionary `{'descr': …, 'fortran_order': …, 'shape': …}`, parsed
/// with [`py_literal`], the parser npyz reads headers with.
fn parse_dict(text: &str, name: &str) -> Result<Header> {
    let shown: String = text.trim().chars().take(200).collect();
    let malformed =
        |what: String| npy_err(name, format!("malformed .npy header {shown:?}: {what}"));
    // NumPy pads the header with spaces and ends it with a newline; files written by other
    // tools sometimes pad with NULs.
    let literal = text.trim_end_matches(|c: char| c.is_whitespace() || c == '\0');
    if nesting_depth(literal) > MAX_DEPTH {
        return Err(malformed(format!(
            "nested deeper than {MAX_DEPTH} levels (a plain array's header nests 2)"
        )));
    }
    let value: Value = without_long_suffixes(literal)
        .parse()
        .map_err(|e: py_literal::ParseError| malformed(e.to_string()))?;
    let Value::Dict(entries) = value else {
        return Err(malformed(format!(
            "expected a dictionary, got {}",
            kind(&value)
        )));
    };
    let get = |key: &str| -> Result<&Value> {
        // A repeated key: the last one counts, as in Python's dict literals (NumPy's reader).
        entries
            .iter()
            .rev()
            .find(|(k, _)| matches!(k, Value::String(s) if s == key))
            .map(|(_, v)| v)
            .ok_or_else(|| malformed(format!("no '{key}' key")))
    };
    let dtype = match get("descr")? {
        Value::String(s) => Dtype::parse(s),
        Value::List(_) | Value::Tuple(_) => {
            return Err(npy_err(
                name,
                "structured (record) dtype; save one plain field instead, e.g. \
                 np.save(path, np.ascontiguousarray(a['field'], dtype=np.float32))",
            ))
        }
        other => return Err(malformed(format!("'descr' is {}", kind(other)))),
    };
    let fortran_order = match get("fortran_order")? {
        Value::Boolean(b) => *b,
        other => {
            return Err(malformed(format!(
                "'fortran_order' is {}, expected True or False",
                kind(other)
            )))
        }
    };
    let dimension = |v: &Value| match v {
        Value::Integer(i) => i.to_string().parse::<usize>().map_err(|_| {
            malformed(format!(
                "shape dimension {i} is not a non-negative integer that fits in usize"
            ))
        }),
        other => Err(malformed(format!(
            "shape dimension is {}, expected an integer",
            kind(other)
        ))),
    };
    let shape = match get("shape")? {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(dimension)
            .collect::<Result<Vec<usize>>>()?,
        v @ Value::Integer(_) => vec![dimension(v)?],
        other => {
            return Err(malformed(format!(
                "'shape' is {}, expected a tuple",
                kind(other)
            )))
        }
    };
    // With at most one dimension above 1, Fortran and C order are the same bytes.
    if fortran_order && shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(npy_err(
            name,
            format!(
                "array of shape {} is stored in Fortran (column-major) order; save a C-ordered \
                 copy with np.save(path, np.ascontiguousarray(a))",
                format_shape(&shape)
            ),
        ));
    }
    Ok(Header {
        dtype,
        shape,
        data_start: 0,
    })
}

#[cfg(test)]
mod tests;
