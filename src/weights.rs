//! GRU weights in ONNX layout, and conversions from PyTorch and Keras.
//!
//! # Layout (ONNX, one direction)
//! Gate order is **z, r, h** (update, reset, candidate) everywhere in this crate:
//! - `W[3H, I]`: rows `0..H` are `W_z`, `H..2H` are `W_r`, `2H..3H` are `W_h`;
//! - `R[3H, H]`: `R_z`, `R_r`, `R_h` in the same order;
//! - `B[6H]` = `[Wb_z, Wb_r, Wb_h, Rb_z, Rb_r, Rb_h]` (all zero when a model has no bias).
//!
//! All matrices are row-major `f32`.

use crate::error::{GruError, Result};

/// Index of the update gate `z` in the ONNX gate order.
pub const UPDATE_GATE: usize = 0;
/// Index of the reset gate `r` in the ONNX gate order.
pub const RESET_GATE: usize = 1;
/// Index of the candidate ("hidden") gate `h` in the ONNX gate order.
pub const HIDDEN_GATE: usize = 2;

/// Which of the two GRU formulas a model was trained with.
///
/// Both share `z = σ(W_z x + Wb_z + R_z h + Rb_z)`, `r = σ(W_r x + Wb_r + R_r h + Rb_r)` and
/// the blend `h' = (1 − z) ⊙ h̃ + z ⊙ h`; they differ in the candidate `h̃`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Convention {
    /// `h̃ = tanh(W_h x + Wb_h + r ⊙ (R_h h + Rb_h))`: PyTorch `nn.GRU`, cuDNN,
    /// ONNX `linear_before_reset=1`, Keras `reset_after=True` (the Keras 3 default).
    ResetAfter,
    /// `h̃ = tanh(W_h x + Wb_h + R_h (r ⊙ h) + Rb_h)`: the ONNX default
    /// (`linear_before_reset=0`), Keras `reset_after=False`, Cho et al. 2014, the seed article.
    ResetBefore,
}

impl Convention {
    /// The ONNX `linear_before_reset` attribute value for this convention.
    pub fn linear_before_reset(self) -> i64 {
        match self {
            Convention::ResetAfter => 1,
            Convention::ResetBefore => 0,
        }
    }

    /// The convention an ONNX `linear_before_reset` value selects (0 or 1; anything else is an error).
    pub fn from_linear_before_reset(value: i64) -> Result<Self> {
        match value {
            0 => Ok(Convention::ResetBefore),
            1 => Ok(Convention::ResetAfter),
            other => Err(GruError::invalid("linear_before_reset", "0 or 1", other)),
        }
    }
}

/// `a * b` for sizes, or a typed error instead of an overflow.
pub(crate) fn mul_sizes(what: &str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| {
        GruError::invalid(
            what,
            "a size whose element count fits in usize",
            format!("{a} × {b}"),
        )
    })
}

/// Weights of one single-direction GRU layer in ONNX layout (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct GruWeights {
    convention: Convention,
    input_size: usize,
    hidden_size: usize,
    w: Vec<f32>,
    r: Vec<f32>,
    b: Vec<f32>,
}

/// Both sizes at least 1; returns `3H`.
fn check_sizes(input_size: usize, hidden_size: usize) -> Result<usize> {
    if hidden_size == 0 {
        return Err(GruError::invalid("hidden_size", "at least 1", 0));
    }
    if input_size == 0 {
        return Err(GruError::invalid("input_size", "at least 1", 0));
    }
    mul_sizes("3·hidden_size", 3, hidden_size)
}

fn check_len(what: &str, expected_shape: String, expected: usize, got: usize) -> Result<()> {
    if expected != got {
        return Err(GruError::shape(
            what,
            format!("{expected_shape} = {expected} elements"),
            format!("{got} elements"),
        ));
    }
    Ok(())
}

impl GruWeights {
    /// Builds weights from ONNX-ordered arrays.
    ///
    /// - `w`: `W[3H, I]`, gate order z, r, h;
    /// - `r`: `R[3H, H]`, gate order z, r, h;
    /// - `b`: `B[6H] = [Wb_z, Wb_r, Wb_h, Rb_z, Rb_r, Rb_h]`, or `None` for a model without
    ///   bias (all zero).
    ///
    /// Errors when `input_size` or `hidden_size` is 0 or any array has the wrong length.
    pub fn new(
        convention: Convention,
        input_size: usize,
        hidden_size: usize,
        w: Vec<f32>,
        r: Vec<f32>,
        b: Option<Vec<f32>>,
    ) -> Result<Self> {
        let h3 = check_sizes(input_size, hidden_size)?;
        let (i, h) = (input_size, hidden_size);
        check_len(
            "W",
            format!("[3H={h3}, I={i}]"),
            mul_sizes("W", h3, i)?,
            w.len(),
        )?;
        check_len(
            "R",
            format!("[3H={h3}, H={h}]"),
            mul_sizes("R", h3, h)?,
            r.len(),
        )?;
        let b = match b {
            Some(b) => {
                check_len("B", format!("[6H={}]", 2 * h3), 2 * h3, b.len())?;
                b
            }
            None => vec![0.0; 2 * h3],
        };
        Ok(GruWeights {
            convention,
            input_size,
            hidden_size,
            w,
            r,
            b,
        })
    }

    /// These weights as a GPU model of storage type `dtype` holds them: every value rounded
    /// to `dtype` and back ([`crate::Dtype::round`]; f16 saturates beyond ±65504), unchanged
    /// for f32. The f64 reference run on these is the oracle of an f16 model.
    pub fn rounded_to(&self, dtype: crate::Dtype) -> GruWeights {
        let round = |v: &[f32]| v.iter().map(|&x| dtype.round(x)).collect();
        GruWeights {
            w: round(&self.w),
            r: round(&self.r),
            b: round(&self.b),
            ..*self
        }
    }

    /// Converts an `nn.GRU` layer of PyTorch (always [`Convention::ResetAfter`]).
    ///
    /// PyTorch's gate order is **r, z, n**: `weight_ih[3H, I]`, `weight_hh[3H, H]`,
    /// `bias_ih[3H]`, `bias_hh[3H]` (the biases are absent with `bias=False`).
    /// The blocks are reordered to z, r, h; `B = [bias_ih (z,r,h), bias_hh (z,r,h)]`.
    /// PyTorch's `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))` is exactly ONNX's
    /// reset-after candidate, and `h' = (1 − z) ⊙ n + z ⊙ h` is the same blend.
    pub fn from_pytorch(
        input_size: usize,
        hidden_size: usize,
        weight_ih: &[f32],
        weight_hh: &[f32],
        bias_ih: Option<&[f32]>,
        bias_hh: Option<&[f32]>,
    ) -> Result<Self> {
        let h3 = check_sizes(input_size, hidden_size)?;
        let (i, h) = (input_size, hidden_size);
        check_len(
            "weight_ih",
            format!("[3H={h3}, I={i}]"),
            mul_sizes("weight_ih", h3, i)?,
            weight_ih.len(),
        )?;
        check_len(
            "weight_hh",
            format!("[3H={h3}, H={h}]"),
            mul_sizes("weight_hh", h3, h)?,
            weight_hh.len(),
        )?;
        if let Some(b) = bias_ih {
            check_len("bias_ih", format!("[3H={h3}]"), h3, b.len())?;
        }
        if let Some(b) = bias_hh {
            check_len("bias_hh", format!("[3H={h3}]"), h3, b.len())?;
        }
        let w = reorder_rzn_to_zrh(weight_ih, h);
        let r = reorder_rzn_to_zrh(weight_hh, h);
        let b = match (bias_ih, bias_hh) {
            (None, None) => None,
            (bi, bh) => {
                let zeros = vec![0.0; h3];
                let mut b = reorder_rzn_to_zrh(bi.unwrap_or(&zeros), h);
                b.extend(reorder_rzn_to_zrh(bh.unwrap_or(&zeros), h));
                Some(b)
            }
        };
        GruWeights::new(Convention::ResetAfter, input_size, hidden_size, w, r, b)
    }

    /// Converts a Keras `GRU` layer.
    ///
    /// Keras's gate order is already **z, r, h**, but its matrices are transposed:
    /// `kernel (I, 3H)`, `recurrent_kernel (H, 3H)`. The bias is
    /// - `(3H,)` with `reset_after=False` ([`Convention::ResetBefore`]): the input bias, no
    ///   recurrent bias (Keras adds none);
    /// - `(2, 3H)` with `reset_after=True` ([`Convention::ResetAfter`]): row 0 the input bias,
    ///   row 1 the recurrent bias;
    /// - `None` with `use_bias=False`.
    ///
    /// A bias whose length does not match `reset_after` is an error naming both.
    pub fn from_keras(
        input_size: usize,
        hidden_size: usize,
        kernel: &[f32],
        recurrent_kernel: &[f32],
        bias: Option<&[f32]>,
        reset_after: bool,
    ) -> Result<Self> {
        let h3 = check_sizes(input_size, hidden_size)?;
        let (i, h) = (input_size, hidden_size);
        check_len(
            "kernel",
            format!("(I={i}, 3H={h3})"),
            mul_sizes("kernel", i, h3)?,
            kernel.len(),
        )?;
        check_len(
            "recurrent_kernel",
            format!("(H={h}, 3H={h3})"),
            mul_sizes("recurrent_kernel", h, h3)?,
            recurrent_kernel.len(),
        )?;
        let b = match bias {
            None => None,
            Some(b) => {
                let (expected, shape) = if reset_after {
                    (2 * h3, format!("(2, 3H={h3}) for reset_after=True"))
                } else {
                    (h3, format!("(3H={h3},) for reset_after=False"))
                };
                check_len("bias", shape, expected, b.len())?;
                let mut full = b.to_vec();
                full.resize(2 * h3, 0.0);
                Some(full)
            }
        };
        let convention = if reset_after {
            Convention::ResetAfter
        } else {
            Convention::ResetBefore
        };
        GruWeights::new(
            convention,
            input_size,
            hidden_size,
            transpose(kernel, i, h3),
            transpose(recurrent_kernel, h, h3),
            b,
        )
    }

    /// The gate convention.
    pub fn convention(&self) -> Convention {
        self.convention
    }
    /// `I`, the number of input features.
    pub fn input_size(&self) -> usize {
        self.input_size
    }
    /// `H`, the number of hidden units.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }
    /// `W[3H, I]`, gate order z, r, h.
    pub fn w(&self) -> &[f32] {
        &self.w
    }
    /// `R[3H, H]`, gate order z, r, h.
    pub fn r(&self) -> &[f32] {
        &self.r
    }
    /// `B[6H] = [Wb_z, Wb_r, Wb_h, Rb_z, Rb_r, Rb_h]` (zeros for a model without bias).
    pub fn b(&self) -> &[f32] {
        &self.b
    }
}

/// Reorders `[3H, …]` blocks from PyTorch's r, z, n to ONNX's z, r, h.
fn reorder_rzn_to_zrh(a: &[f32], hidden: usize) -> Vec<f32> {
    let block = a.len() / 3;
    debug_assert_eq!(block % hidden, 0);
    let (r, rest) = a.split_at(block);
    let (z, n) = rest.split_at(block);
    [z, r, n].concat()
}

/// Reorders `[3H, …]` blocks from ONNX's z, r, h to PyTorch's r, z, n (the inverse of
/// [`reorder_rzn_to_zrh`]; for weights and their gradients alike).
pub(crate) fn zrh_to_rzn<T: Copy>(a: &[T]) -> Vec<T> {
    let block = a.len() / 3;
    let (z, rest) = a.split_at(block);
    let (r, h) = rest.split_at(block);
    [r, z, h].concat()
}

/// Transposes a row-major `[rows, cols]` matrix.
pub(crate) fn transpose<T: Copy + Default>(a: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut t = vec![T::default(); a.len()];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = a[i * cols + j];
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorder_moves_blocks() {
        // H = 1, I = 1: rows r, z, n become z, r, n.
        assert_eq!(reorder_rzn_to_zrh(&[1.0, 2.0, 3.0], 1), vec![2.0, 1.0, 3.0]);
    }

    #[test]
    fn keras_bias_shape_must_match_reset_after() {
        let err = GruWeights::from_keras(1, 1, &[0.0; 3], &[0.0; 3], Some(&[0.0; 3]), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("reset_after=True"), "{err}");
    }
}
