//! What `--out` writes: the format its extension names, the model's bytes, and the check
//! that its directory takes a file (before training).

use std::path::{Path, PathBuf};

use gru_wgpu::io::export::{self, HeadTensors};
use gru_wgpu::io::onnx;
use gru_wgpu::GruModel;

use crate::{CliResult, Failure};

/// What `--out`'s extension asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OutFormat {
    PyTorch,
    Keras,
    Onnx,
}

pub(super) fn out_format(path: &Path) -> CliResult<OutFormat> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("safetensors") => Ok(OutFormat::PyTorch),
        Some("npz") => Ok(OutFormat::Keras),
        Some("onnx") => Ok(OutFormat::Onnx),
        _ => Err(Failure::Usage(format!(
            "--out {path:?}: the extension says the format: .safetensors (a PyTorch \
             state_dict), .npz (Keras weights) or .onnx (an ONNX GRU node)"
        ))),
    }
}

/// The bytes `--out` gets for `model` and its head.
pub(super) fn encode_model(
    format: OutFormat,
    model: &GruModel,
    w: &[f32],
    b: &[f32],
) -> CliResult<Vec<u8>> {
    let head = Some(HeadTensors { weight: w, bias: b });
    Ok(match format {
        OutFormat::PyTorch => {
            export::encode_safetensors(&export::pytorch_state_dict(model, "gru.", head)?)?
        }
        OutFormat::Keras => export::encode_npz(&export::keras_weights(model, head)?)?,
        OutFormat::Onnx => onnx::encode(model)?,
    })
}

/// Errors unless `path`'s directory takes a new file (checked before training, so that a
/// long run does not end in an unwritable output).
pub(super) fn check_writable(path: &Path, flag: &str) -> CliResult {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let probe = dir.join(format!(".gru-probe-{}.tmp", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Failure::Runtime(format!(
            "{flag} {}: cannot write there ({e})",
            path.display()
        ))),
    }
}
