//! Writing `.npy` files: version 1.0 (2.0 past a 64 KiB header) `<f4`, C order, the header
//! padded as NumPy pads it.

use std::path::Path;

use super::{format_shape, npy_err, MAGIC};
use crate::error::{GruError, Result};

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
