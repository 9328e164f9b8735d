//! A small reader and writer for NumPy's `.npy` format, without any dependency.
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

use crate::error::{GruError, Result};

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
    let dtype = &header.dtype;
    let convert: fn(&[u8], bool) -> f32 = match (dtype.kind, dtype.size) {
        ('f', 4) => |c, big| {
            let b = [c[0], c[1], c[2], c[3]];
            if big {
                f32::from_be_bytes(b)
            } else {
                f32::from_le_bytes(b)
            }
        },
        ('f', 8) => |c, big| {
            let b = [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
            (if big {
                f64::from_be_bytes(b)
            } else {
                f64::from_le_bytes(b)
            }) as f32
        },
        _ => {
            return Err(npy_err(
                name,
                format!(
                    "expected float32 or float64, got '{}' ({}); convert with a.astype(np.float32)",
                    dtype.descr,
                    dtype.numpy_name()
                ),
            ))
        }
    };
    let big = dtype.big_endian(name)?;
    let data = header.data(bytes, name)?;
    Ok(NpyArray {
        shape: header.shape,
        data: data
            .chunks_exact(dtype.size)
            .map(|c| convert(c, big))
            .collect(),
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
    let dtype = &header.dtype;
    let convert: fn(&[u8], bool) -> i64 = match (dtype.kind, dtype.size) {
        ('i', 4) => |c, big| {
            let b = [c[0], c[1], c[2], c[3]];
            i64::from(if big {
                i32::from_be_bytes(b)
            } else {
                i32::from_le_bytes(b)
            })
        },
        ('u', 4) => |c, big| {
            let b = [c[0], c[1], c[2], c[3]];
            i64::from(if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        },
        ('i', 8) => |c, big| {
            let b = [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
            if big {
                i64::from_be_bytes(b)
            } else {
                i64::from_le_bytes(b)
            }
        },
        _ => {
            return Err(npy_err(
                name,
                format!(
                    "expected int32 or int64, got '{}' ({}); convert with a.astype(np.int64)",
                    dtype.descr,
                    dtype.numpy_name()
                ),
            ))
        }
    };
    let big = dtype.big_endian(name)?;
    let data = header.data(bytes, name)?;
    let values = data
        .chunks_exact(dtype.size)
        .map(|c| convert(c, big))
        .collect();
    Ok((header.shape, values))
}

/// Encodes a C-ordered `f32` array as the bytes of a version 1.0 `<f4` `.npy` file.
///
/// Errors when `data.len()` is not the product of `shape`.
pub fn encode_f32(shape: &[usize], data: &[f32]) -> Result<Vec<u8>> {
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            GruError::invalid(
                "shape of the array to write",
                "an element count that fits in usize",
                format_shape(shape),
            )
        })?;
    if count != data.len() {
        return Err(GruError::shape(
            "array to write",
            format!("shape {} = {count} elements", format_shape(shape)),
            format!("{} elements", data.len()),
        ));
    }
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}",
        format_shape(shape)
    );
    // Version 1.0 stores the header length in a u16; past that NumPy switches to 2.0 (u32).
    let (version, preamble) = if dict.len() + 1 + 64 <= usize::from(u16::MAX) {
        (1u8, 10usize)
    } else {
        (2u8, 12usize)
    };
    // As NumPy's `_wrap_header`: 1 to 64 spaces, so that the data starts 64-byte aligned.
    let unpadded = preamble + dict.len() + 1;
    let pad = 64 - unpadded % 64;
    let header_len = dict.len() + pad + 1;
    let mut out = Vec::with_capacity(preamble + header_len + 4 * data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        let len = u16::try_from(header_len)
            .map_err(|_| GruError::invalid("npy header length", "at most 65535", header_len))?;
        out.extend_from_slice(&len.to_le_bytes());
    } else {
        let len = u32::try_from(header_len).map_err(|_| {
            GruError::invalid("npy header length", "at most 4294967295", header_len)
        })?;
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(out.len() + pad, b' ');
    out.push(b'\n');
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// Writes a C-ordered `f32` array as a version 1.0 `<f4` `.npy` file (see [`encode_f32`]).
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let name = path.display().to_string();
    let bytes = encode_f32(shape, data).map_err(|e| npy_err(&name, e.to_string()))?;
    std::fs::write(path, bytes).map_err(|source| GruError::Io { path: name, source })
}

// ---------------------------------------------------------------------------------------------
// Header

/// A dtype string such as `<f4`, split into its parts.
struct Dtype {
    descr: String,
    /// `<`, `>`, `=`, `|`, or `None` when the string has no byte-order character.
    order: Option<char>,
    kind: char,
    size: usize,
}

impl Dtype {
    fn parse(descr: &str) -> Dtype {
        let mut chars = descr.chars().peekable();
        let order = match chars.peek() {
            Some(&c) if "<>=|".contains(c) => {
                chars.next();
                Some(c)
            }
            _ => None,
        };
        let kind = chars.next().unwrap_or('?');
        let digits: String = chars.collect();
        Dtype {
            descr: descr.to_string(),
            order,
            kind,
            // "O", "U" without a size etc.: 0 never matches a supported dtype.
            size: digits.parse().unwrap_or(0),
        }
    }

    /// NumPy's name for the dtype, for messages (`int64`, `float16`, …).
    fn numpy_name(&self) -> String {
        let bits = self.size.saturating_mul(8);
        if bits == 0 && "fiuc".contains(self.kind) {
            return "unknown dtype".to_string();
        }
        match self.kind {
            'f' => format!("float{bits}"),
            'i' => format!("int{bits}"),
            'u' => format!("uint{bits}"),
            'c' => format!("complex{bits}"),
            'b' => "bool".to_string(),
            'U' => "unicode string".to_string(),
            'S' | 'a' => "byte string".to_string(),
            'O' => "Python objects".to_string(),
            'M' => "datetime64".to_string(),
            'm' => "timedelta64".to_string(),
            'V' => "raw bytes".to_string(),
            _ => "unknown dtype".to_string(),
        }
    }

    /// Whether the data is big-endian; an error when the byte order is missing or `|`.
    fn big_endian(&self, name: &str) -> Result<bool> {
        match self.order {
            Some('<') => Ok(false),
            Some('>') => Ok(true),
            Some('=') => Ok(cfg!(target_endian = "big")),
            _ => Err(npy_err(
                name,
                format!(
                    "dtype '{}' has no byte order ('<' little-endian or '>' big-endian) \
                     for a {}-byte type; save it again with np.save(path, a)",
                    self.descr, self.size
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
            .and_then(|n| n.checked_mul(self.dtype.size))
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

/// Interprets the header dictionary `{'descr': …, 'fortran_order': …, 'shape': …}`.
fn parse_dict(text: &str, name: &str) -> Result<Header> {
    let shown: String = text.trim().chars().take(200).collect();
    let malformed =
        |what: String| npy_err(name, format!("malformed .npy header {shown:?}: {what}"));
    let value = Parser::new(text).parse_document().map_err(malformed)?;
    let Value::Dict(entries) = value else {
        return Err(malformed("expected a dictionary".into()));
    };
    let get = |key: &str| -> Result<&Value> {
        entries
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
            .map(|(_, v)| v)
            .ok_or_else(|| malformed(format!("no '{key}' key")))
    };
    let dtype = match get("descr")? {
        Value::Str(s) => Dtype::parse(s),
        Value::List(_) | Value::Tuple(_) => {
            return Err(npy_err(
                name,
                "structured (record) dtype; save one plain field instead, e.g. \
                 np.save(path, np.ascontiguousarray(a['field'], dtype=np.float32))",
            ))
        }
        other => return Err(malformed(format!("'descr' is {}", other.kind()))),
    };
    let fortran_order = match get("fortran_order")? {
        Value::Bool(b) => *b,
        other => {
            return Err(malformed(format!(
                "'fortran_order' is {}, expected True or False",
                other.kind()
            )))
        }
    };
    let shape = match get("shape")? {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|v| match v {
                Value::Int(s) => s.parse::<usize>().map_err(|_| {
                    malformed(format!(
                        "shape dimension {s} is not a non-negative integer that fits in usize"
                    ))
                }),
                other => Err(malformed(format!(
                    "shape dimension is {}, expected an integer",
                    other.kind()
                ))),
            })
            .collect::<Result<Vec<usize>>>()?,
        Value::Int(s) => vec![s.parse::<usize>().map_err(|_| {
            malformed(format!(
                "shape {s} is not a non-negative integer that fits in usize"
            ))
        })?],
        other => {
            return Err(malformed(format!(
                "'shape' is {}, expected a tuple",
                other.kind()
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

/// The Python literals a `.npy` header can hold.
#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    /// The digits as written (with a leading `-` when negative).
    Int(String),
    Bool(bool),
    None,
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Bool(_) => "a boolean",
            Value::None => "None",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dictionary",
        }
    }
}

/// Recursion limit for nested literals (a hostile header must not overflow the stack).
const MAX_DEPTH: usize = 32;

/// A recursive-descent parser of the Python literal subset NumPy writes.
struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

type ParseResult<T> = std::result::Result<T, String>;

impl Parser {
    fn new(text: &str) -> Self {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
            depth: 0,
        }
    }

    fn parse_document(&mut self) -> ParseResult<Value> {
        let v = self.value()?;
        self.skip_ws();
        // NumPy pads with spaces and ends with '\n'; some writers pad with NULs.
        if self.chars[self.pos..].iter().any(|&c| c != '\0') {
            return Err(format!(
                "unexpected {:?} after the dictionary at character {}",
                self.chars[self.pos], self.pos
            ));
        }
        Ok(v)
    }

    fn skip_ws(&mut self) {
        while self.pos < self.chars.len() && self.chars[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    fn expected(&self, what: &str) -> String {
        match self.chars.get(self.pos) {
            Some(c) => format!("expected {what} at character {}, found {c:?}", self.pos),
            None => format!("expected {what}, found the end of the header"),
        }
    }

    fn value(&mut self) -> ParseResult<Value> {
        let Some(c) = self.peek() else {
            return Err(self.expected("a value"));
        };
        match c {
            '{' | '(' | '[' => {
                if self.depth >= MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} levels"));
                }
                self.depth += 1;
                self.pos += 1;
                let v = match c {
                    '{' => self.dict(),
                    '(' => self.sequence(')').map(Value::Tuple),
                    _ => self.sequence(']').map(Value::List),
                };
                self.depth -= 1;
                v
            }
            '\'' | '"' => self.string(c),
            '-' | '+' | '0'..='9' => self.int(),
            _ if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "True" => Ok(Value::Bool(true)),
                    "False" => Ok(Value::Bool(false)),
                    "None" => Ok(Value::None),
                    _ => {
                        self.pos = start;
                        Err(self.expected("a value"))
                    }
                }
            }
            _ => Err(self.expected("a value")),
        }
    }

    fn string(&mut self, quote: char) -> ParseResult<Value> {
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.chars.get(self.pos) {
                None => return Err(format!("unterminated string starting at character {start}")),
                Some('\\') => {
                    if let Some(&c) = self.chars.get(self.pos + 1) {
                        s.push(c);
                    }
                    self.pos += 2;
                }
                Some(&c) if c == quote => {
                    self.pos += 1;
                    return Ok(Value::Str(s));
                }
                Some(&c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn int(&mut self) -> ParseResult<Value> {
        let mut s = String::new();
        if let Some(&sign) = self
            .chars
            .get(self.pos)
            .filter(|c| **c == '-' || **c == '+')
        {
            if sign == '-' {
                s.push('-');
            }
            self.pos += 1;
        }
        let digits_start = self.pos;
        while let Some(&c) = self.chars.get(self.pos).filter(|c| c.is_ascii_digit()) {
            s.push(c);
            self.pos += 1;
        }
        if self.pos == digits_start {
            return Err(self.expected("digits"));
        }
        // Python 2 NumPy wrote long integers as `3L`.
        if matches!(self.chars.get(self.pos), Some('L') | Some('l')) {
            self.pos += 1;
        }
        Ok(Value::Int(s))
    }

    /// Items up to `close`, with an optional trailing comma; the opener is consumed.
    fn sequence(&mut self, close: char) -> ParseResult<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value()?);
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => return Err(self.expected(&format!("',' or '{close}'"))),
            }
        }
    }

    fn dict(&mut self) -> ParseResult<Value> {
        let mut entries = Vec::new();
        loop {
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(Value::Dict(entries));
            }
            let key = self.value()?;
            if self.peek() != Some(':') {
                return Err(self.expected("':'"));
            }
            self.pos += 1;
            let value = self.value()?;
            entries.push((key, value));
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {}
                _ => return Err(self.expected("',' or '}'")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version, 0]);
        if version == 1 {
            out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn le_f32(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn header_is_numpy_padded() {
        let bytes = encode_f32(&[2, 3], &[0.0; 6]).unwrap();
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(bytes[10 + header_len - 1], b'\n');
        let text = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(
            text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
            "{text}"
        );
        assert_eq!(bytes.len(), 10 + header_len + 24);
    }

    #[test]
    fn shapes_format_like_numpy() {
        assert_eq!(format_shape(&[]), "()");
        assert_eq!(format_shape(&[5]), "(5,)");
        assert_eq!(format_shape(&[2, 3, 4]), "(2, 3, 4)");
    }

    #[test]
    fn header_parsing_is_robust() {
        let data = le_f32(&[1.0, 2.0]);
        for dict in [
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }          \n",
            "{'shape':(2,),'fortran_order':False,'descr':'<f4'}\n",
            "{ \"descr\" : \"<f4\" , \"fortran_order\" : False , \"shape\" : ( 2 , ) }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }\n",
            "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }\n",
            "{'descr': '<f4', 'fortran_order': False, 'shape': [2], 'extra': None}\n\0\0",
        ] {
            for version in [1, 2, 3] {
                let a = parse_f32(&file(version, dict, &data), "t.npy")
                    .unwrap_or_else(|e| panic!("{dict:?} v{version}: {e}"));
                assert_eq!(a.data, vec![1.0, 2.0], "{dict:?}");
            }
        }
    }

    #[test]
    fn scalar_and_empty_shapes() {
        let a = parse_f32(
            &file(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                &le_f32(&[7.5]),
            ),
            "s.npy",
        )
        .unwrap();
        assert_eq!((a.shape, a.data), (vec![], vec![7.5]));
        let a = parse_f32(
            &file(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }",
                &[],
            ),
            "e.npy",
        )
        .unwrap();
        assert_eq!((a.shape, a.data), (vec![3, 0], vec![]));
    }

    #[test]
    fn malformed_headers_are_errors() {
        for dict in [
            "",
            "{",
            "{'descr': '<f4'",
            "{'descr': '<f4', 'fortran_order': False}",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk",
            "{'descr': <f4, 'fortran_order': False, 'shape': (2,)}",
            "[1, 2]",
            "((((((((((((((((((((((((((((((((((((((((((((((((((((((((",
        ] {
            let err = parse_f32(&file(1, dict, &[0; 8]), "m.npy").unwrap_err();
            assert!(matches!(err, GruError::Npy { .. }), "{dict:?}: {err}");
        }
    }

    #[test]
    fn overflowing_shape_is_an_error() {
        let dict = format!(
            "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}",
            usize::MAX,
            2
        );
        let err = parse_f32(&file(1, &dict, &[]), "o.npy").unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn int_reads() {
        let data: Vec<u8> = [3i32, -1].iter().flat_map(|v| v.to_be_bytes()).collect();
        let (shape, v) = parse_i64(
            &file(
                1,
                "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }",
                &data,
            ),
            "i.npy",
        )
        .unwrap();
        assert_eq!((shape, v), (vec![2], vec![3, -1]));
        let err = parse_i64(
            &file(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                &[0; 4],
            ),
            "f.npy",
        )
        .unwrap_err();
        assert!(err.to_string().contains("astype(np.int64)"), "{err}");
    }
}
