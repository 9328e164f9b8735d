//! Initializers (`W`, `R`, `B`) as `f32`, from the element types ONNX exporters write.

use super::proto::tensor_proto::{DataLocation, DataType};
use super::proto::TensorProto;
use crate::error::Result;
use crate::io::{bracket_shape, import_error};

/// An initializer as `(shape, f32 data)`; `role` is its GRU input (`W`, `R`, `B`).
pub(super) fn tensor_f32(
    t: &TensorProto,
    role: &str,
    name: &str,
    path: &str,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let err = |m: String| import_error(path, format!("{role} ('{name}') {m}"));
    if t.data_location == DataLocation::External as i32 || !t.external_data.is_empty() {
        return Err(err(
            "is stored in an external data file; only tensors stored inside the .onnx file \
             are supported (onnx.load(...) then onnx.save(model, path, \
             save_as_external_data=False))"
                .into(),
        ));
    }
    if t.segment.is_some() {
        return Err(err(
            "is a segment of a larger tensor; expected a whole tensor".into(),
        ));
    }
    let mut shape = Vec::with_capacity(t.dims.len());
    for &dim in &t.dims {
        let Ok(dim) = usize::try_from(dim) else {
            return Err(err(format!(
                "has a negative dimension {dim} in dims {:?}",
                t.dims
            )));
        };
        shape.push(dim);
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            err(format!(
                "has dims {:?} whose element count overflows",
                t.dims
            ))
        })?;
    // proto3 keeps no presence for `raw_data`: an empty one counts as absent (for a tensor
    // with elements, the typed fields are then read, and are empty too if nothing is stored).
    let raw = Some(t.raw_data.as_slice()).filter(|r| !r.is_empty());
    let dtype = t.data_type;
    let (data, stored): (Option<Vec<f32>>, usize) = match DataType::try_from(dtype).ok() {
        Some(DataType::Float) => match raw {
            Some(raw) => (
                decode_raw(raw, 4, count, |c| {
                    f32::from_le_bytes([c[0], c[1], c[2], c[3]])
                }),
                raw.len() / 4,
            ),
            None => (Some(t.float_data.clone()), t.float_data.len()),
        },
        Some(DataType::Double) => match raw {
            Some(raw) => (
                decode_raw(raw, 8, count, |c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                }),
                raw.len() / 8,
            ),
            None => (
                Some(t.double_data.iter().map(|&v| v as f32).collect()),
                t.double_data.len(),
            ),
        },
        Some(kind @ (DataType::Float16 | DataType::Bfloat16)) => {
            let from_bits = move |bits: u16| match kind {
                DataType::Float16 => half::f16::from_bits(bits).to_f32(),
                _ => half::bf16::from_bits(bits).to_f32(),
            };
            match raw {
                Some(raw) => (
                    decode_raw(raw, 2, count, |c| {
                        from_bits(u16::from_le_bytes([c[0], c[1]]))
                    }),
                    raw.len() / 2,
                ),
                None => (
                    Some(t.int32_data.iter().map(|&v| from_bits(v as u16)).collect()),
                    t.int32_data.len(),
                ),
            }
        }
        other => {
            let got = other
                .map(|d| d.as_str_name().to_string())
                .unwrap_or_else(|| format!("data type {dtype}"));
            return Err(err(format!(
                "has element type {got}; expected FLOAT (DOUBLE, FLOAT16 and BFLOAT16 are \
                 converted)"
            )));
        }
    };
    match data {
        Some(data) if data.len() == count => Ok((shape, data)),
        _ => Err(err(format!(
            "has dims {} = {count} elements but holds {stored}{}",
            bracket_shape(&shape),
            if raw.is_some_and(|r| r.len() % element_size(dtype) != 0) {
                " and a partial element (raw_data's length is not a multiple of the element size)"
            } else {
                ""
            }
        ))),
    }
}

fn element_size(dtype: i32) -> usize {
    match DataType::try_from(dtype).ok() {
        Some(DataType::Double) => 8,
        Some(DataType::Float16 | DataType::Bfloat16) => 2,
        _ => 4,
    }
}

/// Little-endian elements of `size` bytes; `None` unless there are exactly `count`.
fn decode_raw(raw: &[u8], size: usize, count: usize, f: impl Fn(&[u8]) -> f32) -> Option<Vec<f32>> {
    if raw.len() != count.checked_mul(size)? {
        return None;
    }
    Some(raw.chunks_exact(size).map(f).collect())
}
