//! Reading training data: `.npy` arrays or `.npz` members (`FILE.npz:NAME`), float or
//! integer, checked against the head and made a [`Dataset`].

use std::io::Read;
use std::path::Path;

use gru_wgpu::data::{self, Dataset};
use gru_wgpu::loss::Loss;
use gru_wgpu::npy::{self, format_shape};
use gru_wgpu::GruError;

use crate::{CliResult, Failure};

/// Reads an array of numbers (float or integer `.npy`, or `FILE.npz:NAME`) as `f64`.
pub(super) fn read_numbers(path: &Path, flag: &str) -> CliResult<(Vec<usize>, Vec<f64>)> {
    let text = path.to_string_lossy();
    let (bytes, name) = match text.rsplit_once(':') {
        Some((file, member)) if file.to_ascii_lowercase().ends_with(".npz") => {
            let bytes = read_file(Path::new(file))?;
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| {
                Failure::Runtime(format!("{flag} {file}: not a valid .npz archive ({e})"))
            })?;
            let members: Vec<String> = zip
                .file_names()
                .filter_map(|n| n.strip_suffix(".npy"))
                .map(str::to_string)
                .collect();
            let mut entry = zip.by_name(&format!("{member}.npy")).map_err(|_| {
                Failure::Runtime(format!(
                    "{flag} {text}: the archive has no member '{member}' (it has {})",
                    members.join(", ")
                ))
            })?;
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(|e| {
                Failure::Runtime(format!("{flag} {text}: member '{member}' unreadable ({e})"))
            })?;
            (data, text.to_string())
        }
        _ => (read_file(path)?, text.to_string()),
    };
    match npy::parse_f32(&bytes, &name) {
        Ok(a) => Ok((a.shape, a.data.iter().map(|&v| v as f64).collect())),
        Err(float_error) => match npy::parse_i64(&bytes, &name) {
            Ok((shape, v)) => Ok((shape, v.iter().map(|&v| v as f64).collect())),
            Err(_) => Err(Failure::Runtime(format!(
                "{flag}: {float_error} (integer arrays are read too)"
            ))),
        },
    }
}

fn read_file(path: &Path) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|source| {
        Failure::from(GruError::Io {
            path: path.display().to_string(),
            source,
        })
    })
}

/// `[N, T, I]` from the shape of X: `[N, T, I]`, or `[N, T]` for one feature.
pub(super) fn sequence_shape(shape: &[usize], flag: &str, path: &Path) -> CliResult<[usize; 3]> {
    match *shape {
        [n, t, i] => Ok([n, t, i]),
        [n, t] => Ok([n, t, 1]),
        _ => Err(Failure::Runtime(format!(
            "{flag} {} has shape {}, expected [N, T, I] (or [N, T] for one feature)",
            path.display(),
            format_shape(shape)
        ))),
    }
}

/// Sequences `[N, T, I]` (or `[N, T]`, one feature) with their targets and lengths.
pub(super) struct Loaded {
    pub(super) data: Dataset,
    pub(super) shape: [usize; 3],
}

/// Reads X, the labels and the lengths for a head with `out` outputs under `loss` (`out` 0:
/// from the labels, for softmax `max + 1`). Returns the data set and `out`.
pub(super) fn load_data(
    x: &Path,
    labels: &Path,
    lens: Option<&Path>,
    loss: Loss,
    per_step: bool,
    out: usize,
    flags: [&str; 3],
) -> CliResult<(Loaded, usize)> {
    let (xs, xv) = read_numbers(x, flags[0])?;
    let shape = sequence_shape(&xs, flags[0], x)?;
    let n = shape[0];
    let (ys, yv) = read_numbers(labels, flags[1])?;
    let (width, out) = data::target_layout(loss, per_step, [n, shape[1]], &ys, &yv, out)
        .map_err(|e| Failure::Runtime(format!("{} {}: {e}", flags[1], labels.display())))?;
    let lens = read_lens(lens, n, flags[2])?;
    let xv: Vec<f32> = xv.iter().map(|&v| v as f32).collect();
    let data = Dataset::new(xv, shape, yv, width, lens)
        .map_err(|e| Failure::Runtime(format!("{} {}: {e}", flags[0], x.display())))?;
    Ok((Loaded { data, shape }, out))
}

/// Reads `--lens` (`[N]`, whole numbers) when given.
fn read_lens(lens: Option<&Path>, n: usize, flag: &str) -> CliResult<Option<Vec<i64>>> {
    Ok(match lens {
        None => None,
        Some(p) => {
            let (ls, lv) = read_numbers(p, flag)?;
            if ls != [n] {
                return Err(Failure::Runtime(format!(
                    "{} {} has shape {}, expected [N] = [{n}]",
                    flag,
                    p.display(),
                    format_shape(&ls)
                )));
            }
            if let Some((k, v)) = lv.iter().enumerate().find(|(_, v)| v.fract() != 0.0) {
                return Err(Failure::Runtime(format!(
                    "{} {}: length {k} is {v}, expected a whole number",
                    flag,
                    p.display()
                )));
            }
            Some(lv.iter().map(|&v| v as i64).collect())
        }
    })
}
