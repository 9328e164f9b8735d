//! Writing the outputs of `gru run` and `gru grad`: every file to a temporary file beside its
//! destination, then all renamed into place; and the named-tensor containers of `gru grad
//! --grads` (`.safetensors`, `.npz`).

use std::path::{Path, PathBuf};

use gru_wgpu::GruError;

use crate::{CliResult, Failure};

/// One named float32 tensor: name, shape, values (C order).
pub(crate) use gru_wgpu::io::export::NamedTensor;

/// Writes every `(path, bytes)` together: each to a temporary file beside its destination,
/// then all renamed into place, so that an output that cannot be written (a missing directory,
/// a full disk) leaves none written and no earlier file replaced by some outputs without the
/// others.
pub(crate) fn write_files(outputs: &[(&Path, Vec<u8>)]) -> CliResult {
    let remove = |temps: &[(PathBuf, &Path)]| {
        for (tmp, _) in temps {
            let _ = std::fs::remove_file(tmp);
        }
    };
    // An I/O error names the destination, not the temporary file.
    let io_error = |source: std::io::Error, path: &Path| -> Failure {
        GruError::Io {
            path: path.display().to_string(),
            source,
        }
        .into()
    };
    let mut temps: Vec<(PathBuf, &Path)> = Vec::with_capacity(outputs.len());
    for (path, bytes) in outputs {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let tmp = path.with_file_name(format!(".{name}.gru-{}.tmp", std::process::id()));
        if let Err(source) = std::fs::write(&tmp, bytes) {
            let _ = std::fs::remove_file(&tmp);
            remove(&temps);
            return Err(io_error(source, path));
        }
        temps.push((tmp, path));
    }
    for (tmp, path) in &temps {
        if let Err(source) = std::fs::rename(tmp, path) {
            remove(&temps);
            return Err(io_error(source, path));
        }
    }
    Ok(())
}

/// The bytes of a `.safetensors` file holding `tensors` as `F32`
/// ([`gru_wgpu::io::export::encode_safetensors`]).
pub(crate) fn encode_safetensors(tensors: &[NamedTensor]) -> CliResult<Vec<u8>> {
    Ok(gru_wgpu::io::export::encode_safetensors(tensors)?)
}

/// The bytes of an `.npz` archive holding `tensors` as `NAME.npy` members
/// ([`gru_wgpu::io::export::encode_npz`]).
pub(crate) fn encode_npz(tensors: &[NamedTensor]) -> CliResult<Vec<u8>> {
    Ok(gru_wgpu::io::export::encode_npz(tensors)?)
}
