//! Keras `GRU` weights from `.safetensors` or `.npz` files.
//!
//! # What is read
//! | name | shape | |
//! |---|---|---|
//! | `kernel` | `(I, 3H)` | required |
//! | `recurrent_kernel` | `(H, 3H)` | required |
//! | `bias` | `(3H,)` for `reset_after=False`, `(2, 3H)` for `reset_after=True` | absent with `use_bias=False` |
//! | `dense_kernel` | `(H, out)` | an optional `Dense` head on the GRU's last state |
//! | `dense_bias` | `(out,)` | only with `dense_kernel`; zeros when absent (`use_bias=False`) |
//!
//! These are the names `layer.get_weights()` lists in order (`kernel`, `recurrent_kernel`,
//! `bias`), saved by `np.savez(path, kernel=…, …)` or `safetensors.numpy.save_file`. Any other
//! tensor is an error naming it. Gate order is Keras's z, r, h; the matrices are transposed
//! into ONNX layout by [`GruWeights::from_keras`].
//!
//! # `reset_after`
//! The weights show Keras's `reset_after` only through the bias shape, so the caller may give
//! it: `Some(v)` must agree with the bias (an error names both), `None` takes it from the bias,
//! and a file without a bias needs `Some`.
//!
//! `.npz` archives may be stored (`np.savez`) or deflated (`np.savez_compressed`); each member
//! is read by [`crate::npy::parse_f32`] (`float32`, or `float64` converted).

use std::path::Path;

use super::tensors::{Archive, Tensor};
use super::{import_error, list_names, read_file};
use crate::error::Result;
use crate::model::GruModel;
use crate::npy::format_shape;
use crate::weights::GruWeights;

pub(crate) const KERNEL: &str = "kernel";
pub(crate) const RECURRENT_KERNEL: &str = "recurrent_kernel";
const BIAS: &str = "bias";
const DENSE_KERNEL: &str = "dense_kernel";
const DENSE_BIAS: &str = "dense_bias";
const KNOWN: [&str; 5] = [KERNEL, RECURRENT_KERNEL, BIAS, DENSE_KERNEL, DENSE_BIAS];

/// A Keras `Dense` layer after the GRU, as stored (Keras layout): `y = act(x · kernel + bias)`
/// for the GRU's last state `x` (`in_features = H` wide); the activation is not stored in the
/// weights. The classifier head (`head::Dense::from_keras`) takes these arrays as they are.
#[derive(Clone, Debug, PartialEq)]
pub struct KerasDense {
    /// `kernel (in_features, out_features)`, row-major (Keras's own layout; PyTorch's
    /// `nn.Linear.weight` is its transpose).
    pub kernel: Vec<f32>,
    /// `bias (out_features,)` (zeros when the file has no `dense_bias`).
    pub bias: Vec<f32>,
    /// Inputs: the GRU's `H`.
    pub in_features: usize,
    /// Outputs (units).
    pub out_features: usize,
}

impl KerasDense {
    /// The kernel as PyTorch's `nn.Linear.weight`: `[out_features, in_features]`.
    pub fn weight(&self) -> Vec<f32> {
        crate::weights::transpose(&self.kernel, self.in_features, self.out_features)
    }
}

/// Where [`KerasGru::reset_after`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetAfterSource {
    /// Read from the bias shape (and equal to the caller's value, if one was given).
    BiasShape,
    /// Given by the caller (the file has no bias).
    Given,
}

/// A Keras GRU layer (one forward layer), and its dense head if the file has one.
#[derive(Clone, Debug, PartialEq)]
pub struct KerasGru {
    /// The network: one forward layer, convention from `reset_after`.
    pub model: GruModel,
    /// Keras's `reset_after`.
    pub reset_after: bool,
    /// How `reset_after` was decided.
    pub reset_after_source: ResetAfterSource,
    /// Whether the layer has a bias (`use_bias=True`).
    pub bias: bool,
    /// The dense head, when the file holds `dense_kernel`.
    pub dense: Option<KerasDense>,
    /// `"npz"` or `"safetensors"`.
    pub container: &'static str,
}

/// Reads Keras GRU weights from a `.safetensors` or `.npz` file (told apart by content).
pub fn load(path: &Path, reset_after: Option<bool>) -> Result<KerasGru> {
    let (bytes, name) = read_file(path)?;
    parse(&bytes, &name, reset_after)
}

/// [`load`] from the bytes of a file; `path` is used in errors.
pub fn parse(bytes: &[u8], path: &str, reset_after: Option<bool>) -> Result<KerasGru> {
    let is_zip = bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06");
    let (archive, container) = if is_zip {
        (Archive::npz(bytes, path)?, "npz")
    } else {
        (Archive::safetensors(bytes, path)?, "safetensors")
    };
    read(archive, path, reset_after, container)
}

fn python_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

fn read(
    mut archive: Archive<'_>,
    path: &str,
    reset_after: Option<bool>,
    container: &'static str,
) -> Result<KerasGru> {
    let names = archive.names();
    if let Some(extra) = names.iter().find(|n| !KNOWN.contains(&n.as_str())) {
        let hint = if super::pytorch::parse_param_name(super::last_segment(extra)).is_some() {
            " (this looks like a PyTorch state_dict: read it with io::pytorch)"
        } else {
            ""
        };
        return Err(import_error(
            path,
            format!(
                "unexpected tensor '{extra}': a Keras GRU file holds kernel, recurrent_kernel, \
                 bias, and optionally dense_kernel and dense_bias{hint}"
            ),
        ));
    }
    for required in [KERNEL, RECURRENT_KERNEL] {
        if !archive.contains(required) {
            return Err(import_error(
                path,
                format!(
                    "missing tensor '{required}': a Keras GRU file holds kernel (I, 3H) and \
                     recurrent_kernel (H, 3H); the file has {}",
                    list_names(&names)
                ),
            ));
        }
    }
    if archive.contains(DENSE_BIAS) && !archive.contains(DENSE_KERNEL) {
        return Err(import_error(
            path,
            "missing tensor 'dense_kernel': the file has dense_bias, so its dense head needs \
             dense_kernel (H, out) too",
        ));
    }

    // recurrent_kernel (H, 3H) gives H.
    let rk: Tensor = archive.load(RECURRENT_KERNEL, path)?;
    let hidden = match *rk.shape.as_slice() {
        [h, h3] if h > 0 && h.checked_mul(3) == Some(h3) => h,
        _ => {
            return Err(import_error(
                path,
                format!(
                    "tensor 'recurrent_kernel' has shape {}, expected (H, 3H) with H ≥ 1",
                    format_shape(&rk.shape)
                ),
            ))
        }
    };
    let h3 = 3 * hidden;
    let k = archive.load(KERNEL, path)?;
    let input_size = match *k.shape.as_slice() {
        [i, cols] if i > 0 && cols == h3 => i,
        _ => {
            return Err(import_error(
                path,
                format!(
                    "tensor 'kernel' has shape {}, expected (I, 3H) = (I, {h3}) with I ≥ 1 (H = \
                     {hidden} from recurrent_kernel {})",
                    format_shape(&k.shape),
                    format_shape(&rk.shape)
                ),
            ))
        }
    };

    // The bias shape decides reset_after; a value given must agree.
    let bias = if archive.contains(BIAS) {
        Some(archive.load(BIAS, path)?)
    } else {
        None
    };
    let (reset_after, source) =
        match (&bias, reset_after) {
            (Some(b), given) => {
                let from_shape = match b.shape.as_slice() {
                    [n] if *n == h3 => false,
                    [2, n] if *n == h3 => true,
                    _ => {
                        return Err(import_error(
                            path,
                            format!(
                            "tensor 'bias' has shape {}, expected ({h3},) for reset_after=False \
                             or (2, {h3}) for reset_after=True (3H = {h3})",
                            format_shape(&b.shape)
                        ),
                        ))
                    }
                };
                if let Some(g) = given {
                    if g != from_shape {
                        return Err(import_error(
                            path,
                            format!(
                            "reset_after={} was given, but tensor 'bias' has shape {}, which is \
                             reset_after={}'s; a reset_after={} layer has a bias of shape {}",
                            python_bool(g),
                            format_shape(&b.shape),
                            python_bool(from_shape),
                            python_bool(g),
                            if g {
                                format!("(2, {h3})")
                            } else {
                                format!("({h3},)")
                            }
                        ),
                        ));
                    }
                }
                (from_shape, ResetAfterSource::BiasShape)
            }
            (None, Some(g)) => (g, ResetAfterSource::Given),
            (None, None) => return Err(import_error(
                path,
                "the file has no 'bias' tensor, so Keras's reset_after cannot be read from the \
                 weights: give it (CLI: --keras-reset-after true|false)",
            )),
        };
    let weights = GruWeights::from_keras(
        input_size,
        hidden,
        &k.data,
        &rk.data,
        bias.as_ref().map(|b| b.data.as_slice()),
        reset_after,
    )
    .map_err(|e| import_error(path, e.to_string()))?;

    let dense = if archive.contains(DENSE_KERNEL) {
        let dk = archive.load(DENSE_KERNEL, path)?;
        let out = match *dk.shape.as_slice() {
            [h, out] if h == hidden && out > 0 => out,
            _ => {
                return Err(import_error(
                    path,
                    format!(
                        "tensor 'dense_kernel' has shape {}, expected (H, out) = ({hidden}, out) \
                         with out ≥ 1 (the dense layer reads the GRU's H = {hidden} units)",
                        format_shape(&dk.shape)
                    ),
                ))
            }
        };
        let bias = if archive.contains(DENSE_BIAS) {
            let db = archive.load(DENSE_BIAS, path)?;
            if db.shape != [out] {
                return Err(import_error(
                    path,
                    format!(
                        "tensor 'dense_bias' has shape {}, expected ({out},) (out from \
                         dense_kernel {})",
                        format_shape(&db.shape),
                        format_shape(&dk.shape)
                    ),
                ));
            }
            db.data
        } else {
            vec![0.0; out]
        };
        Some(KerasDense {
            kernel: dk.data,
            bias,
            in_features: hidden,
            out_features: out,
        })
    } else {
        None
    };

    Ok(KerasGru {
        model: GruModel::single(weights),
        reset_after,
        reset_after_source: source,
        bias: bias.is_some(),
        dense,
        container,
    })
}
