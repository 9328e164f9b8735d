//! Writing the outputs of `gru run` and `gru grad`: every file to a temporary file beside its
//! destination, then all renamed into place; and the named-tensor containers of `gru grad
//! --grads` (`.safetensors`, `.npz`).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use gru_wgpu::{npy, GruError};

use crate::{CliResult, Failure};

/// One named float32 tensor: name, shape, values (C order).
pub(crate) type NamedTensor = (String, Vec<usize>, Vec<f32>);

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

/// The bytes of a `.safetensors` file holding `tensors` as `F32` (safetensors' own writer).
pub(crate) fn encode_safetensors(tensors: &[NamedTensor]) -> CliResult<Vec<u8>> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, data)| data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let failed = |e: safetensors::SafeTensorError| {
        Failure::Runtime(format!("encoding the gradients as safetensors: {e}"))
    };
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), data)| {
            Ok((
                name.as_str(),
                TensorView::new(Dtype::F32, shape.clone(), data).map_err(failed)?,
            ))
        })
        .collect::<CliResult<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(failed)
}

/// The bytes of an `.npz` archive holding `tensors` as `NAME.npy` members (stored, as
/// `np.savez` writes them; `np.load` and the Keras importer read it).
pub(crate) fn encode_npz(tensors: &[NamedTensor]) -> CliResult<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let failed = |e: &dyn std::fmt::Display| {
        Failure::Runtime(format!("encoding the gradients as .npz: {e}"))
    };
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, shape, data) in tensors {
        let member = npy::encode_f32(shape, data)?;
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(member.len() as u64 >= u64::from(u32::MAX));
        zip.start_file(format!("{name}.npy"), options)
            .map_err(|e| failed(&e))?;
        zip.write_all(&member).map_err(|e| failed(&e))?;
    }
    Ok(zip.finish().map_err(|e| failed(&e))?.into_inner())
}
