//! The CPU reference: plain loops, `f64` accumulation. It is the oracle of the parity tests,
//! so it is written to be read, not to be fast.
//!
//! For every step `t` and batch entry `b`, with `x = X[t, b, :]` and `h = h_{t−1}[b, :]`
//! (`h_{−1}` = `initial_h`, or zeros), and gate order z, r, h:
//!
//! ```text
//! z  = σ(W_z x + Wb_z + R_z h + Rb_z)
//! r  = σ(W_r x + Wb_r + R_r h + Rb_r)
//! h̃  = tanh(W_h x + Wb_h + R_h (r ⊙ h) + Rb_h)        reset-before (ONNX default)
//! h̃  = tanh(W_h x + Wb_h + r ⊙ (R_h h + Rb_h))        reset-after (PyTorch, cuDNN)
//! h' = (1 − z) ⊙ h̃ + z ⊙ h
//! ```
//!
//! Sums and activations are evaluated in `f64`. Each step's state is rounded to `f32` when it
//! is stored in `Y`, exactly as an `f32` engine stores it, and the next step reads it back from
//! there; so the reference is "the correctly rounded f32 GRU", and differences from a GPU are
//! only the rounding of the sums inside one step.

use crate::error::Result;
use crate::input::{GruInput, GruOutput};
use crate::weights::{Convention, GruWeights, HIDDEN_GATE, RESET_GATE, UPDATE_GATE};

/// Logistic sigmoid in the stable form `e = exp(−|x|)`: `x ≥ 0 ? 1/(1+e) : e/(1+e)`.
/// Finite for every finite input; NaN in, NaN out.
pub fn sigmoid(x: f64) -> f64 {
    let e = (-x.abs()).exp();
    if x >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

/// Hyperbolic tangent (`f64::tanh`, which is exact to an ulp and saturates to ±1).
pub fn tanh(x: f64) -> f64 {
    x.tanh()
}

/// `Σ_k m[row, k] · v[k]` in `f64`, for a row-major matrix with `v.len()` columns.
fn dot_row(m: &[f32], row: usize, v: &[f64]) -> f64 {
    let n = v.len();
    m[row * n..(row + 1) * n]
        .iter()
        .zip(v)
        .map(|(&a, &b)| a as f64 * b)
        .sum()
}

/// Runs a GRU forward on the CPU.
///
/// Shapes: `X[T, B, I]`, `initial_h[B, H]` (optional) → `Y[T, B, H]`, `Y_h[B, H]`.
/// Errors when a length does not match the weights (see [`GruInput::validate`]).
pub fn forward(weights: &GruWeights, input: &GruInput<'_>) -> Result<GruOutput> {
    let dims = input.validate(weights)?;
    let (t_len, batch, n_in, hid) = (dims.seq_len, dims.batch, dims.input_size, dims.hidden_size);
    let (w, r, bias) = (weights.w(), weights.r(), weights.b());
    let wb = |gate: usize, j: usize| bias[gate * hid + j] as f64;
    let rb = |gate: usize, j: usize| bias[3 * hid + gate * hid + j] as f64;

    let mut y = vec![0.0f32; t_len * batch * hid];
    let mut state: Vec<f32> = match input.initial_h {
        Some(h0) => h0.to_vec(),
        None => vec![0.0; batch * hid],
    };

    for t in 0..t_len {
        for b in 0..batch {
            let x: Vec<f64> = input.x[(t * batch + b) * n_in..][..n_in]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let h: Vec<f64> = state[b * hid..][..hid].iter().map(|&v| v as f64).collect();

            // Update and reset gates.
            let mut z = vec![0.0f64; hid];
            let mut rg = vec![0.0f64; hid];
            for j in 0..hid {
                let zj = UPDATE_GATE * hid + j;
                let rj = RESET_GATE * hid + j;
                z[j] = sigmoid(
                    dot_row(w, zj, &x)
                        + wb(UPDATE_GATE, j)
                        + dot_row(r, zj, &h)
                        + rb(UPDATE_GATE, j),
                );
                rg[j] = sigmoid(
                    dot_row(w, rj, &x) + wb(RESET_GATE, j) + dot_row(r, rj, &h) + rb(RESET_GATE, j),
                );
            }

            // Candidate.
            let reset_h: Vec<f64> = rg.iter().zip(&h).map(|(a, b)| a * b).collect();
            for j in 0..hid {
                let hj = HIDDEN_GATE * hid + j;
                let xin = dot_row(w, hj, &x) + wb(HIDDEN_GATE, j);
                let cand = match weights.convention() {
                    Convention::ResetBefore => {
                        tanh(xin + dot_row(r, hj, &reset_h) + rb(HIDDEN_GATE, j))
                    }
                    Convention::ResetAfter => {
                        tanh(xin + rg[j] * (dot_row(r, hj, &h) + rb(HIDDEN_GATE, j)))
                    }
                };
                let next = (1.0 - z[j]) * cand + z[j] * h[j];
                y[(t * batch + b) * hid + j] = next as f32;
            }
        }
        let step = &y[t * batch * hid..][..batch * hid];
        state.copy_from_slice(step);
    }

    Ok(GruOutput {
        y,
        y_h: state,
        dims,
    })
}
