//! Importing trained GRUs from the files PyTorch, Keras and ONNX write.
//!
//! | module | reads | result |
//! |---|---|---|
//! | [`pytorch`] | an `nn.GRU` `state_dict` saved as `.safetensors` (any layers, either direction, with or without bias, optionally under one prefix such as `gru.`) | [`pytorch::PyTorchGru`] |
//! | [`keras`] | a Keras `GRU` layer's `kernel`, `recurrent_kernel`, `bias` (and an optional dense head) from `.safetensors` or `.npz` | [`keras::KerasGru`] |
//! | [`onnx`] | a `.onnx` model whose graph is one `GRU` node with `W`, `R` (and `B`) as initializers | [`onnx::OnnxGru`] |
//!
//! Each result holds a [`GruModel`] (gate order z, r, h, ONNX layout) that
//! [`crate::cpu::forward_model`] and [`crate::gpu::GpuGru::from_model`] run, plus what the
//! framework's own shapes need (PyTorch's prefix, Keras's `reset_after` and dense head, ONNX's
//! layout and optional graph inputs). [`load`] picks the importer from the file itself.
//!
//! ```no_run
//! use gru_wgpu::io::{self, keras, onnx, pytorch, ImportOptions};
//! use gru_wgpu::{cpu, GruInput, Layout, OutputStyle};
//! use std::path::Path;
//! # fn main() -> gru_wgpu::Result<()> {
//! # let x = vec![0.0f32; 6 * 3 * 5];
//! let torch = pytorch::load(Path::new("model.safetensors"))?; // nn.GRU state_dict
//! let keras = keras::load(Path::new("weights.npz"), None)?; // reset_after from the bias
//! let graph = onnx::load(Path::new("model.onnx"))?; // one GRU node
//! let any = io::load(Path::new("model.onnx"), &ImportOptions::default())?; // detected
//! assert_eq!(any.model(), &graph.model);
//! // PyTorch's shapes: batch_first input [B, T, I], output [B, T, D·H], h_n [L·D, B, H].
//! let input = GruInput::new(&x, 6, 3)
//!     .with_layout(Layout::BatchMajor)
//!     .with_style(OutputStyle::PyTorch);
//! let out = cpu::forward_model(&torch.model, &input)?;
//! # let _ = (keras, out);
//! # Ok(()) }
//! ```
//!
//! Every problem is a [`GruError::Import`] naming the file and the tensor, attribute or node,
//! with what was expected and what came (or [`GruError::Io`] when the file cannot be read);
//! a truncated or corrupted file is an error, never a panic.
//!
//! Tensor dtypes: `F32` is read as is; `F64`, `F16` and `BF16` are converted to `f32`
//! (`F64` rounds to nearest, the half types are exact); every other dtype (integers, bool,
//! 8-bit floats, complex) is refused by name.

pub mod export;
pub mod keras;
pub mod onnx;
pub mod pytorch;
mod tensors;

use std::path::Path;

use crate::error::{GruError, Result};
use crate::model::GruModel;

/// The frameworks whose files [`load`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// A PyTorch `nn.GRU` `state_dict` in `.safetensors` ([`pytorch`]).
    PyTorch,
    /// Keras GRU weights in `.safetensors` or `.npz` ([`keras`]).
    Keras,
    /// An ONNX model with one `GRU` node ([`onnx`]).
    Onnx,
}

impl Format {
    /// `"PyTorch"`, `"Keras"` or `"ONNX"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::PyTorch => "PyTorch",
            Format::Keras => "Keras",
            Format::Onnx => "ONNX",
        }
    }
}

/// Options that only some formats use; the defaults detect everything from the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Keras's `reset_after`, which the weights alone show only through the bias shape
    /// (`(2, 3H)` is `True`, `(3H,)` is `False`). Required for a Keras file without a bias;
    /// when the file has a bias it must agree. Ignored by the other formats.
    pub keras_reset_after: Option<bool>,
    /// The `state_dict` prefix of the GRU to read (e.g. `"encoder.gru."`), for a PyTorch file
    /// that holds more than one GRU. `None` detects the one prefix. Ignored by the other
    /// formats.
    pub pytorch_prefix: Option<String>,
}

/// A model read by [`load`].
#[derive(Clone, Debug)]
pub enum Imported {
    /// From [`pytorch`].
    PyTorch(pytorch::PyTorchGru),
    /// From [`keras`].
    Keras(keras::KerasGru),
    /// From [`onnx`].
    Onnx(onnx::OnnxGru),
}

impl Imported {
    /// Which importer read it.
    pub fn format(&self) -> Format {
        match self {
            Imported::PyTorch(_) => Format::PyTorch,
            Imported::Keras(_) => Format::Keras,
            Imported::Onnx(_) => Format::Onnx,
        }
    }

    /// The network.
    pub fn model(&self) -> &GruModel {
        match self {
            Imported::PyTorch(m) => &m.model,
            Imported::Keras(m) => &m.model,
            Imported::Onnx(m) => &m.model,
        }
    }
}

/// Which importer a file needs, from its contents (not its name): a protobuf that is not a
/// zip or safetensors file is ONNX, a zip is Keras `.npz`, and a safetensors file is PyTorch
/// when it holds `weight_ih_l0`-style names and Keras when it holds `kernel`.
///
/// Files of other kinds that are easily mistaken for models are named in the error: a single
/// `.npy` array, an HDF5 file (Keras `.h5` / `.weights.h5`), a `torch.save` pickle archive
/// (`.pt`, `.pth`) and a `.keras` model archive.
pub fn detect_format(bytes: &[u8], path: &str) -> Result<Format> {
    if bytes.starts_with(crate::npy::MAGIC) {
        return Err(import_error(
            path,
            "a single .npy array, not a model file; expected an .onnx model, a safetensors \
             state_dict or Keras weights (.npz or .safetensors)",
        ));
    }
    if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        return Err(import_error(
            path,
            "an HDF5 file (Keras .h5 / .weights.h5), which is not supported; save the GRU \
             layer's weights with np.savez(path, kernel=k, recurrent_kernel=rk, bias=b) from \
             layer.get_weights()",
        ));
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Ok(Format::Keras);
    }
    if let Some(header) = tensors::safetensors_header(bytes) {
        // A whole file gives its names; a damaged one only its header text, which still tells
        // the two apart well enough for the chosen reader to report the damage precisely.
        let (torch, keras) = match tensors::safetensors_names(bytes) {
            Some(names) => {
                let torch = names
                    .iter()
                    .any(|n| pytorch::parse_param_name(last_segment(n)).is_some());
                let keras = names
                    .iter()
                    .any(|n| n == keras::KERNEL || n == keras::RECURRENT_KERNEL);
                if !torch && !keras {
                    return Err(import_error(
                        path,
                        format!(
                            "a safetensors file without GRU weights: expected PyTorch nn.GRU \
                             names (weight_ih_l0, weight_hh_l0, …) or Keras names (kernel, \
                             recurrent_kernel), got {}",
                            list_names(&names)
                        ),
                    ));
                }
                (torch, keras)
            }
            None => (
                header.contains("weight_ih_l") || header.contains("weight_hh_l"),
                header.contains("\"kernel\"") || header.contains("\"recurrent_kernel\""),
            ),
        };
        return match (torch, keras) {
            (true, true) => Err(import_error(
                path,
                "holds both PyTorch names (weight_ih_l0, …) and Keras names (kernel, \
                 recurrent_kernel); expected the weights of one GRU",
            )),
            (false, true) => Ok(Format::Keras),
            _ => Ok(Format::PyTorch),
        };
    }
    if path.to_ascii_lowercase().ends_with(".safetensors") {
        // Not even a header: let the safetensors reader say what is wrong.
        return Ok(Format::PyTorch);
    }
    Ok(Format::Onnx)
}

/// Reads any supported model file (see [`detect_format`]).
pub fn load(path: &Path, options: &ImportOptions) -> Result<Imported> {
    let (bytes, name) = read_file(path)?;
    load_bytes(&bytes, &name, options)
}

/// [`load`] from the bytes of a file; `name` is used in errors.
pub fn load_bytes(bytes: &[u8], name: &str, options: &ImportOptions) -> Result<Imported> {
    Ok(match detect_format(bytes, name)? {
        Format::PyTorch => Imported::PyTorch(pytorch::parse(
            bytes,
            name,
            options.pytorch_prefix.as_deref(),
        )?),
        Format::Keras => Imported::Keras(keras::parse(bytes, name, options.keras_reset_after)?),
        Format::Onnx => Imported::Onnx(onnx::parse(bytes, name)?),
    })
}

pub(crate) fn import_error(path: &str, message: impl Into<String>) -> GruError {
    GruError::Import {
        path: path.to_string(),
        message: message.into(),
    }
}

pub(crate) fn read_file(path: &Path) -> Result<(Vec<u8>, String)> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => Ok((bytes, name)),
        Err(source) => Err(GruError::Io { path: name, source }),
    }
}

/// The part of a `state_dict` key after its last `.`.
pub(crate) fn last_segment(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// `'a', 'b', 'c'` (at most eight, then how many more).
pub(crate) fn list_names<S: AsRef<str>>(names: &[S]) -> String {
    const SHOWN: usize = 8;
    if names.is_empty() {
        return "no tensors".to_string();
    }
    let mut parts: Vec<String> = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("'{}'", n.as_ref()))
        .collect();
    if names.len() > SHOWN {
        parts.push(format!("and {} more", names.len() - SHOWN));
    }
    parts.join(", ")
}

/// `[2, 15, 3]`.
pub(crate) fn bracket_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}
