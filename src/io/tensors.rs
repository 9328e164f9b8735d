//! Named tensors from `.safetensors` and `.npz` files, converted to `f32` only when used.

use std::io::{Cursor, Read};

use safetensors::{Dtype, SafeTensors};

use super::import_error;
use crate::error::{GruError, Result};
use crate::npy;

/// Largest `.npz` member the reader inflates.
const MAX_MEMBER_BYTES: u64 = 4 << 30;

/// One tensor, converted to `f32`.
#[derive(Clone, Debug)]
pub(crate) struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A file of named tensors.
pub(crate) enum Archive<'a> {
    Safetensors(SafeTensors<'a>),
    Npz {
        zip: zip::ZipArchive<Cursor<&'a [u8]>>,
        /// Tensor name (member name without `.npy`) → member index.
        members: Vec<(String, usize)>,
    },
}

/// The first bytes of a safetensors file: a little-endian `u64` header length, then a JSON
/// object. Returns the header text when the file starts like one.
pub(crate) fn safetensors_header(bytes: &[u8]) -> Option<&str> {
    let len: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let n = usize::try_from(u64::from_le_bytes(len)).ok()?;
    let header = bytes.get(8..8usize.checked_add(n)?)?;
    let text = std::str::from_utf8(header).ok()?;
    text.trim_start().starts_with('{').then_some(text)
}

/// The tensor names of a well-formed safetensors file; `None` when it is not one.
pub(crate) fn safetensors_names(bytes: &[u8]) -> Option<Vec<String>> {
    let st = SafeTensors::deserialize(bytes).ok()?;
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    Some(names)
}

impl<'a> Archive<'a> {
    /// Opens a safetensors file.
    pub fn safetensors(bytes: &'a [u8], path: &str) -> Result<Self> {
        if bytes.is_empty() {
            return Err(import_error(
                path,
                "empty file; expected a safetensors file",
            ));
        }
        SafeTensors::deserialize(bytes)
            .map(Archive::Safetensors)
            .map_err(|e| {
                let message = match diagnose_safetensors(bytes) {
                    Some(why) => format!("not a valid safetensors file: {why}"),
                    None => format!(
                        "not a valid safetensors file ({e}); expected an 8-byte header length, \
                         a JSON header and the tensors' data, as safetensors' save_file writes"
                    ),
                };
                import_error(path, message)
            })
    }

    /// Opens a `.npz` archive (a zip of `NAME.npy` members, stored or deflated).
    pub fn npz(bytes: &'a [u8], path: &str) -> Result<Self> {
        let zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            import_error(
                path,
                format!("not a valid .npz (zip) archive ({e}); expected np.savez's output"),
            )
        })?;
        let mut members = Vec::new();
        for index in 0..zip.len() {
            let Some(name) = zip.name_for_index(index) else {
                continue;
            };
            if name.ends_with('/') {
                continue;
            }
            let Some(tensor) = name.strip_suffix(".npy") else {
                let hint = if name.ends_with("data.pkl") {
                    " (this is a torch.save pickle archive, which is not supported: save the \
                     state_dict with safetensors.torch.save_file)"
                } else if name.ends_with(".weights.h5") || name == "config.json" {
                    " (this is a .keras model archive, which is not supported: save the GRU \
                     layer's get_weights() with np.savez)"
                } else {
                    ""
                };
                return Err(import_error(
                    path,
                    format!(
                        "member '{name}' is not a .npy file; an .npz holds only NAME.npy members \
                         (as np.savez writes){hint}"
                    ),
                ));
            };
            members.push((tensor.to_string(), index));
        }
        members.sort();
        Ok(Archive::Npz { zip, members })
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> Vec<String> {
        match self {
            Archive::Safetensors(st) => {
                let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
                names.sort();
                names
            }
            Archive::Npz { members, .. } => members.iter().map(|(n, _)| n.clone()).collect(),
        }
    }

    /// Whether a tensor of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Archive::Safetensors(st) => st.tensor(name).is_ok(),
            Archive::Npz { members, .. } => members.iter().any(|(n, _)| n == name),
        }
    }

    /// Reads tensor `name` as `f32` (see the module docs of [`crate::io`] for dtypes).
    pub fn load(&mut self, name: &str, path: &str) -> Result<Tensor> {
        match self {
            Archive::Safetensors(st) => {
                let view = st
                    .tensor(name)
                    .map_err(|_| import_error(path, format!("missing tensor '{name}'")))?;
                let data = convert(view.dtype(), view.data()).ok_or_else(|| {
                    import_error(
                        path,
                        format!(
                            "tensor '{name}' has dtype {}; expected F32 (F64, F16 and BF16 are \
                             converted)",
                            view.dtype()
                        ),
                    )
                })?;
                Ok(Tensor {
                    shape: view.shape().to_vec(),
                    data,
                })
            }
            Archive::Npz { zip, members } => {
                let Some(&(_, index)) = members.iter().find(|(n, _)| n == name) else {
                    return Err(import_error(path, format!("missing tensor '{name}'")));
                };
                let member_error = |e: &dyn std::fmt::Display| {
                    import_error(path, format!("member '{name}.npy' cannot be read: {e}"))
                };
                let mut file = zip.by_index(index).map_err(|e| member_error(&e))?;
                // The central directory gives the size; never read more than it says (a
                // corrupted entry could otherwise inflate without bound).
                let size = file.size();
                // A member's declared size is what it inflates to: refuse absurd ones before
                // inflating (a few kB of deflate can claim gigabytes). No GRU layer a device can
                // hold needs more than 4 GiB in one tensor.
                if size > MAX_MEMBER_BYTES {
                    return Err(member_error(&format!(
                        "it declares {size} bytes, more than the {MAX_MEMBER_BYTES} bytes a \
                         weight tensor may take"
                    )));
                }
                let mut bytes = Vec::with_capacity(usize::try_from(size.min(1 << 24)).unwrap_or(0));
                (&mut file)
                    .take(size.saturating_add(1))
                    .read_to_end(&mut bytes)
                    .map_err(|e| member_error(&e))?;
                if bytes.len() as u64 != size {
                    return Err(member_error(&format!(
                        "the archive says {size} bytes, the data holds {} or more",
                        bytes.len()
                    )));
                }
                let member = format!("{path}:{name}.npy");
                let array = npy::parse_f32(&bytes, &member).map_err(|e| match e {
                    GruError::Npy { message, .. } => {
                        import_error(path, format!("tensor '{name}' ({name}.npy): {message}"))
                    }
                    other => other,
                })?;
                Ok(Tensor {
                    shape: array.shape,
                    data: array.data,
                })
            }
        }
    }
}

/// What is wrong with a safetensors file that safetensors refuses, in terms of its tensors:
/// the header's offsets, shapes and dtypes checked against each other and against the data
/// (safetensors' own errors name neither the tensor nor the sizes). `None` when the header is
/// not even a JSON object of well-formed entries, so that safetensors' message stands.
fn diagnose_safetensors(bytes: &[u8]) -> Option<String> {
    let len_field: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let header_len = u64::from_le_bytes(len_field);
    let after = bytes.len() - 8;
    if header_len > after as u64 {
        return Some(format!(
            "truncated: the header length field says {header_len} bytes of JSON header, but \
             the file has only {after} bytes after it"
        ));
    }
    let header_len = header_len as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).ok()?;
    let data_len = (after - header_len) as u64;

    struct Entry<'h> {
        name: &'h str,
        dtype: Dtype,
        shape: Vec<u64>,
        start: u64,
        end: u64,
    }
    let mut entries = Vec::new();
    for (name, info) in header.as_object()? {
        if name == "__metadata__" {
            continue;
        }
        let dtype: Dtype = serde_json::from_value(info.get("dtype")?.clone()).ok()?;
        let shape = info
            .get("shape")?
            .as_array()?
            .iter()
            .map(serde_json::Value::as_u64)
            .collect::<Option<Vec<u64>>>()?;
        let [start, end] = info.get("data_offsets")?.as_array()?.as_slice() else {
            return None;
        };
        entries.push(Entry {
            name,
            dtype,
            shape,
            start: start.as_u64()?,
            end: end.as_u64()?,
        });
    }
    entries.sort_by(|a, b| (a.start, a.end, a.name).cmp(&(b.start, b.end, b.name)));

    let mut previous: Option<&Entry> = None;
    for e in &entries {
        let (name, start, end) = (e.name, e.start, e.end);
        let offsets = format!("data_offsets [{start}, {end}]");
        if end < start {
            return Some(format!(
                "tensor '{name}' has {offsets}, which end before they start"
            ));
        }
        if end > data_len {
            return Some(format!(
                "tensor '{name}' has {offsets}, past the end of the data: the file has only \
                 {data_len} bytes of tensor data after the header (truncated, or offsets out of \
                 range)"
            ));
        }
        match previous {
            Some(p) if start < p.end => {
                return Some(format!(
                    "tensor '{name}' has {offsets}, which overlap those of '{}' [{}, {}]; every \
                     tensor needs bytes of its own",
                    p.name, p.start, p.end
                ))
            }
            Some(p) if start > p.end => {
                return Some(format!(
                    "tensor '{name}' has {offsets}, leaving bytes {}..{start} after '{}' unused; \
                     the tensors' data must follow one another without gaps",
                    p.end, p.name
                ))
            }
            None if start > 0 => {
                return Some(format!(
                    "tensor '{name}' has {offsets}, leaving the first {start} bytes of the data \
                     unused; the first tensor's data starts at 0"
                ))
            }
            _ => {}
        }
        let dims: Vec<String> = e.shape.iter().map(u64::to_string).collect();
        let shape = format!("[{}]", dims.join(", "));
        let needed = e
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .and_then(|n| n.checked_mul(e.dtype.bitsize() as u64))
            .map(|bits| bits.div_ceil(8));
        match needed {
            None => {
                return Some(format!(
                    "tensor '{name}' has shape {shape} of {}, whose byte count overflows",
                    e.dtype
                ))
            }
            Some(n) if n != end - start => {
                return Some(format!(
                    "tensor '{name}' has shape {shape} of {} = {n} bytes, but its {offsets} hold \
                     {} bytes",
                    e.dtype,
                    end - start
                ))
            }
            _ => {}
        }
        previous = Some(e);
    }
    let end = previous.map_or(0, |p| p.end);
    (end < data_len).then(|| {
        format!(
            "{} trailing bytes: the tensors' data ends at byte {end}, but the file has {data_len} \
             bytes of tensor data after the header",
            data_len - end
        )
    })
}

/// Little-endian `F32`, `F64`, `F16` or `BF16` bytes as `f32`; `None` for any other dtype.
fn convert(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_the_float_dtypes() {
        let one_f64 = 1.5f64.to_le_bytes();
        assert_eq!(convert(Dtype::F64, &one_f64), Some(vec![1.5]));
        let h = half::f16::from_f32(-2.0).to_le_bytes();
        assert_eq!(convert(Dtype::F16, &h), Some(vec![-2.0]));
        let b = half::bf16::from_f32(0.5).to_le_bytes();
        assert_eq!(convert(Dtype::BF16, &b), Some(vec![0.5]));
        assert_eq!(convert(Dtype::I64, &[0; 8]), None);
    }

    #[test]
    fn header_sniffing_needs_a_json_object() {
        assert!(safetensors_header(b"").is_none());
        assert!(safetensors_header(b"\x02\0\0\0\0\0\0\0{}").is_some());
        assert!(safetensors_header(b"\x02\0\0\0\0\0\0\0[]").is_none());
        assert!(safetensors_header(b"\xff\xff\xff\xff\xff\xff\xff\xff{}").is_none());
    }
}
