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
//! With ONNX's `clip`, every gate pre-activation (the argument of σ or tanh) is clamped to
//! `[−clip, clip]` first. Stacked layers read the previous layer's output; a reverse direction
//! reads entry `b` from step `length_b − 1` down to 0; steps past an entry's length are not
//! computed and stay zero in `Y`.
//!
//! Sums and activations are evaluated in `f64`. Each step's state is rounded to `f32` when it
//! is stored in `Y`, exactly as an `f32` engine stores it, and the next step reads it back from
//! there; so the reference is "the correctly rounded f32 GRU", and differences from a GPU are
//! only the rounding of the sums inside one step.

use crate::error::{GruError, Result};
use crate::input::{GruInput, GruOutput};
use crate::model::{GruModel, ModelView};
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

/// `n` zeros, or a typed error when the memory cannot be had (instead of an abort).
fn zeroed(what: &str, n: usize) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        GruError::invalid(
            what,
            "an array that fits in this machine's memory",
            format!("{n} f32 values"),
        )
    })?;
    v.resize(n, 0.0);
    Ok(v)
}

/// ONNX's clip (NaN stays NaN).
fn clip(x: f64, threshold: Option<f64>) -> f64 {
    match threshold {
        Some(c) if x > c => c,
        Some(c) if x < -c => -c,
        _ => x,
    }
}

/// One GRU cell: the next state from input `x` (`I` wide) and state `h` (`H` wide).
fn cell(w: &GruWeights, x: &[f64], h: &[f64], threshold: Option<f64>) -> Vec<f64> {
    let hid = w.hidden_size();
    let (wm, r, bias) = (w.w(), w.r(), w.b());
    let wb = |gate: usize, j: usize| bias[gate * hid + j] as f64;
    let rb = |gate: usize, j: usize| bias[3 * hid + gate * hid + j] as f64;

    // Update and reset gates.
    let mut z = vec![0.0f64; hid];
    let mut rg = vec![0.0f64; hid];
    for j in 0..hid {
        let zj = UPDATE_GATE * hid + j;
        let rj = RESET_GATE * hid + j;
        z[j] = sigmoid(clip(
            dot_row(wm, zj, x) + wb(UPDATE_GATE, j) + dot_row(r, zj, h) + rb(UPDATE_GATE, j),
            threshold,
        ));
        rg[j] = sigmoid(clip(
            dot_row(wm, rj, x) + wb(RESET_GATE, j) + dot_row(r, rj, h) + rb(RESET_GATE, j),
            threshold,
        ));
    }

    // Candidate and blend.
    let reset_h: Vec<f64> = rg.iter().zip(h).map(|(a, b)| a * b).collect();
    (0..hid)
        .map(|j| {
            let hj = HIDDEN_GATE * hid + j;
            let xin = dot_row(wm, hj, x) + wb(HIDDEN_GATE, j);
            let pre = match w.convention() {
                Convention::ResetBefore => xin + dot_row(r, hj, &reset_h) + rb(HIDDEN_GATE, j),
                Convention::ResetAfter => xin + rg[j] * (dot_row(r, hj, h) + rb(HIDDEN_GATE, j)),
            };
            let cand = tanh(clip(pre, threshold));
            (1.0 - z[j]) * cand + z[j] * h[j]
        })
        .collect()
}

/// Runs one forward layer on the CPU.
///
/// Shapes (defaults of [`GruInput`]): `X[T, B, I]`, `initial_h[B, H]` (optional) →
/// `Y[T, B, H]`, `Y_h[B, H]`; with the input's layout, lengths and style as documented in
/// [`crate::input`]. Errors when a length does not match the weights.
pub fn forward(weights: &GruWeights, input: &GruInput<'_>) -> Result<GruOutput> {
    run(&ModelView::single(weights), input)
}

/// Runs a whole network (layers, directions, clip) on the CPU.
///
/// Shapes are documented in [`crate::input`]: e.g. sequence-major ONNX style `X[T, B, I]`,
/// `initial_h[L·D, B, H]` → `Y[T, D, B, H]`, `Y_h[L·D, B, H]`.
pub fn forward_model(model: &GruModel, input: &GruInput<'_>) -> Result<GruOutput> {
    run(&model.view(), input)
}

fn run(model: &ModelView<'_>, input: &GruInput<'_>) -> Result<GruOutput> {
    let dims = input.validate_view(model)?;
    let (t_len, batch, hid) = (dims.seq_len, dims.batch, dims.hidden_size);
    let n_dir = dims.num_directions;
    let threshold = model.clip.map(|c| c as f64);
    let [st_ld, st_b] = dims.state_strides();
    let mut y_h = zeroed("Y_h", dims.state_len())?;

    // The current layer's input, row `dims.row(t, b)` of width `width`.
    let mut layer_in = zeroed("X", input.x.len())?;
    layer_in.copy_from_slice(input.x);
    let mut width = dims.input_size;
    for (l, layer) in model.layers.iter().enumerate() {
        // This layer's output: rows like X, D·H wide (direction d at columns d·H..).
        let mut out = zeroed("a layer's output", dims.y_len())?;
        for (d, w) in layer.iter().enumerate() {
            let reverse = model.direction.is_reverse(d);
            let state_base = (l * n_dir + d) * st_ld;
            for b in 0..batch {
                let len = input.length(b);
                let mut h: Vec<f32> = match input.initial_h {
                    Some(h0) => (0..hid).map(|j| h0[state_base + b * st_b + j]).collect(),
                    None => vec![0.0; hid],
                };
                for s in 0..len {
                    let t = if reverse { len - 1 - s } else { s };
                    let row = dims.row(t, b);
                    let x: Vec<f64> = layer_in[row * width..][..width]
                        .iter()
                        .map(|&v| v as f64)
                        .collect();
                    let hf: Vec<f64> = h.iter().map(|&v| v as f64).collect();
                    // Stored as f32, as Y stores it, and read back from there.
                    h = cell(w, &x, &hf, threshold)
                        .iter()
                        .map(|&v| v as f32)
                        .collect();
                    out[(row * n_dir + d) * hid..][..hid].copy_from_slice(&h);
                }
                if len > 0 {
                    y_h[state_base + b * st_b..][..hid].copy_from_slice(&h);
                }
            }
        }
        layer_in = out;
        width = n_dir * hid;
    }

    // The last layer's output into Y's shape.
    let [yt, yd, yb] = dims.y_strides();
    let mut y = zeroed("Y", dims.y_len())?;
    for t in 0..t_len {
        for b in 0..batch {
            for d in 0..n_dir {
                let src = &layer_in[(dims.row(t, b) * n_dir + d) * hid..][..hid];
                y[t * yt + d * yd + b * yb..][..hid].copy_from_slice(src);
            }
        }
    }
    Ok(GruOutput { y, y_h, dims })
}

pub(crate) mod backward;
pub use backward::{
    backward, backward_model, GruGradients, KerasLayerGradients, LayerGradients,
    PyTorchLayerGradients,
};
