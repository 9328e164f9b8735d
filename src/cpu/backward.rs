//! The CPU reference backward: the exact gradients of the forward in [`super`] (in `f64`,
//! written from the equations, independently of any GPU code), the oracle of the backward
//! parity tests.
//!
//! With the forward's notation, per step of one layer, direction and entry (gate order z, r,
//! h; `c(·)` is ONNX's clip, whose derivative is 1 inside `[−clip, clip]` and 0 where it
//! clamped):
//!
//! ```text
//! a_z = W_z x + Wb_z + R_z h + Rb_z,   z = σ(c(a_z))
//! a_r = W_r x + Wb_r + R_r h + Rb_r,   r = σ(c(a_r))
//! a_n = W_h x + Wb_h + R_h (r ⊙ h) + Rb_h           reset-before
//! a_n = W_h x + Wb_h + r ⊙ q,  q = R_h h + Rb_h     reset-after
//! n = tanh(c(a_n)),   h' = (1 − z) ⊙ n + z ⊙ h
//! ```
//!
//! Given `g = ∂L/∂h'`:
//!
//! ```text
//! g_n = g ⊙ (1 − z) ⊙ (1 − n²) ⊙ c'(a_n)
//! g_z = g ⊙ (h − n) ⊙ z(1 − z) ⊙ c'(a_z)
//! reset-before: u = r ⊙ h,  ∂u = R_hᵀ g_n,  ∂r = ∂u ⊙ h,   ∂R_h += g_n uᵀ
//! reset-after:  ∂q = g_n ⊙ r,  ∂r = g_n ⊙ q,  ∂R_h += ∂q hᵀ,  ∂Rb_h += ∂q
//! g_r = ∂r ⊙ r(1 − r) ⊙ c'(a_r)
//! ∂h = g ⊙ z + R_zᵀ g_z + R_rᵀ g_r + (R_hᵀ ∂q  |  ∂u ⊙ r)
//! ∂W_g += g_g xᵀ,  ∂Wb_g += g_g,  ∂x += Σ_g W_gᵀ g_g    (g_h = g_n)
//! ∂R_z += g_z hᵀ,  ∂R_r += g_r hᵀ,  ∂Rb_z += g_z,  ∂Rb_r += g_r,  ∂Rb_h += g_n (reset-before)
//! ```
//!
//! The loss's gradient enters as `dY` (every step's output, in `Y`'s layout and output style)
//! and `dY_h` (every layer's and direction's final state, in `Y_h`'s). Steps past an entry's
//! length are not computed by the forward (their `Y` is a constant zero), so they take no
//! gradient; `dY_h` enters at the entry's last valid step; an entry of length 0 has a constant
//! zero `Y_h`, so its `d initial_h` is zero. Stacked layers pass `∂x` to the layer below
//! through its output. The forward is evaluated again here in `f64` without rounding the
//! state to `f32` between steps: these are the gradients of the real-valued GRU, which is what
//! finite differences and float64 autograd compute.

// The loops index by unit and gate as the equations above do, so that each line can be
// checked against them.
#![allow(clippy::needless_range_loop)]

use crate::error::{GruError, Result};
use crate::input::{Dims, GruInput};
use crate::model::{GruModel, ModelView};
use crate::weights::{Convention, GruWeights, HIDDEN_GATE, RESET_GATE, UPDATE_GATE};

use super::{clip, sigmoid, tanh};

/// The gradients of one layer and direction, in [`GruWeights`]' layout (gate order z, r, h).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerGradients {
    /// `∂L/∂W`, `[3H, K]` (K = I for layer 0, D·H above).
    pub dw: Vec<f64>,
    /// `∂L/∂R`, `[3H, H]`.
    pub dr: Vec<f64>,
    /// `∂L/∂B`, `[6H]`: `Wb` then `Rb`.
    pub db: Vec<f64>,
}

/// Every gradient of a network's forward, in `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct GruGradients {
    /// `layers[l][d]`: layer `l`, direction `d`.
    pub layers: Vec<Vec<LayerGradients>>,
    /// `∂L/∂X`, in `X`'s shape and layout.
    pub dx: Vec<f64>,
    /// `∂L/∂initial_h`, in `initial_h`'s shape (given or not: the gradient of the zero state
    /// the forward starts from when it is absent).
    pub dh0: Vec<f64>,
}

/// One layer and direction's parameters in `f64`.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    pub(crate) convention: Convention,
    pub(crate) k: usize,
    pub(crate) w: Vec<f64>,
    pub(crate) r: Vec<f64>,
    pub(crate) b: Vec<f64>,
}

impl Params {
    fn of(w: &GruWeights) -> Self {
        let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect();
        Params {
            convention: w.convention(),
            k: w.input_size(),
            w: f(w.w()),
            r: f(w.r()),
            b: f(w.b()),
        }
    }
}

/// `Σ_k m[row, k] · v[k]` for a row-major matrix with `v.len()` columns.
fn dot(m: &[f64], row: usize, v: &[f64]) -> f64 {
    let n = v.len();
    m[row * n..][..n].iter().zip(v).map(|(a, b)| a * b).sum()
}

/// What the backward needs of one step of one entry.
struct Step {
    x: Vec<f64>,
    h: Vec<f64>,
    z: Vec<f64>,
    r: Vec<f64>,
    n: Vec<f64>,
    /// Reset-after: `R_h h + Rb_h`.
    q: Vec<f64>,
    /// The pre-activations of z, r and h (for the clip's derivative).
    a: [Vec<f64>; 3],
}

/// One cell in `f64`, keeping what the backward needs; returns `h'`.
fn cell(p: &Params, hid: usize, x: &[f64], h: &[f64], threshold: Option<f64>) -> (Vec<f64>, Step) {
    let bias = |i: usize| p.b[i];
    let pre = |gate: usize, j: usize| {
        let row = gate * hid + j;
        dot(&p.w, row, x) + bias(row)
    };
    let mut s = Step {
        x: x.to_vec(),
        h: h.to_vec(),
        z: vec![0.0; hid],
        r: vec![0.0; hid],
        n: vec![0.0; hid],
        q: vec![0.0; hid],
        a: [vec![0.0; hid], vec![0.0; hid], vec![0.0; hid]],
    };
    for j in 0..hid {
        let (zr, rr) = (UPDATE_GATE * hid + j, RESET_GATE * hid + j);
        s.a[UPDATE_GATE][j] = pre(UPDATE_GATE, j) + dot(&p.r, zr, h) + bias(3 * hid + zr);
        s.a[RESET_GATE][j] = pre(RESET_GATE, j) + dot(&p.r, rr, h) + bias(3 * hid + rr);
        s.z[j] = sigmoid(clip(s.a[UPDATE_GATE][j], threshold));
        s.r[j] = sigmoid(clip(s.a[RESET_GATE][j], threshold));
    }
    let u: Vec<f64> = s.r.iter().zip(h).map(|(r, h)| r * h).collect();
    let mut out = vec![0.0; hid];
    for j in 0..hid {
        let hr = HIDDEN_GATE * hid + j;
        s.a[HIDDEN_GATE][j] = match p.convention {
            Convention::ResetBefore => pre(HIDDEN_GATE, j) + dot(&p.r, hr, &u) + bias(3 * hid + hr),
            Convention::ResetAfter => {
                s.q[j] = dot(&p.r, hr, h) + bias(3 * hid + hr);
                pre(HIDDEN_GATE, j) + s.r[j] * s.q[j]
            }
        };
        s.n[j] = tanh(clip(s.a[HIDDEN_GATE][j], threshold));
        out[j] = (1.0 - s.z[j]) * s.n[j] + s.z[j] * h[j];
    }
    (out, s)
}

/// The derivative of ONNX's clip at `a`: 1 where it passed `a` through, 0 where it clamped.
fn clip_slope(a: f64, threshold: Option<f64>) -> f64 {
    match threshold {
        Some(c) if !(-c..=c).contains(&a) => 0.0,
        _ => 1.0,
    }
}

/// Adds one step's gradients (state gradient `g` of `h'`) to `grads`, `dx` (this step's
/// input row) and returns the gradient of the previous state.
fn cell_backward(
    p: &Params,
    hid: usize,
    s: &Step,
    g: &[f64],
    threshold: Option<f64>,
    grads: &mut LayerGradients,
    dx: &mut [f64],
) -> Vec<f64> {
    let k = p.k;
    let mut gates = [vec![0.0; hid], vec![0.0; hid], vec![0.0; hid]];
    let mut dh: Vec<f64> = (0..hid).map(|j| g[j] * s.z[j]).collect();
    for j in 0..hid {
        let (z, n) = (s.z[j], s.n[j]);
        gates[HIDDEN_GATE][j] =
            g[j] * (1.0 - z) * (1.0 - n * n) * clip_slope(s.a[HIDDEN_GATE][j], threshold);
        gates[UPDATE_GATE][j] =
            g[j] * (s.h[j] - n) * z * (1.0 - z) * clip_slope(s.a[UPDATE_GATE][j], threshold);
    }
    let gn = &gates[HIDDEN_GATE];
    let mut dr = vec![0.0; hid];
    match p.convention {
        Convention::ResetBefore => {
            let u: Vec<f64> = s.r.iter().zip(&s.h).map(|(r, h)| r * h).collect();
            for kk in 0..hid {
                // ∂u_k = Σ_j R_h[j, k] g_n[j]
                let du: f64 = (0..hid)
                    .map(|j| p.r[(HIDDEN_GATE * hid + j) * hid + kk] * gn[j])
                    .sum();
                dr[kk] = du * s.h[kk];
                dh[kk] += du * s.r[kk];
            }
            for j in 0..hid {
                let row = HIDDEN_GATE * hid + j;
                for kk in 0..hid {
                    grads.dr[row * hid + kk] += gn[j] * u[kk];
                }
                grads.db[3 * hid + row] += gn[j];
            }
        }
        Convention::ResetAfter => {
            let dq: Vec<f64> = (0..hid).map(|j| gn[j] * s.r[j]).collect();
            for j in 0..hid {
                dr[j] = gn[j] * s.q[j];
                let row = HIDDEN_GATE * hid + j;
                for kk in 0..hid {
                    grads.dr[row * hid + kk] += dq[j] * s.h[kk];
                    dh[kk] += p.r[row * hid + kk] * dq[j];
                }
                grads.db[3 * hid + row] += dq[j];
            }
        }
    }
    for j in 0..hid {
        let r = s.r[j];
        gates[RESET_GATE][j] = dr[j] * r * (1.0 - r) * clip_slope(s.a[RESET_GATE][j], threshold);
    }
    for (gate, gg) in gates.iter().enumerate() {
        for j in 0..hid {
            let row = gate * hid + j;
            let v = gg[j];
            for kk in 0..k {
                grads.dw[row * k + kk] += v * s.x[kk];
                dx[kk] += p.w[row * k + kk] * v;
            }
            grads.db[row] += v;
            if gate != HIDDEN_GATE {
                for kk in 0..hid {
                    grads.dr[row * hid + kk] += v * s.h[kk];
                    dh[kk] += p.r[row * hid + kk] * v;
                }
                grads.db[3 * hid + row] += v;
            }
        }
    }
    dh
}

/// The network's parameters in `f64`, `[layer][direction]`.
pub(crate) fn params_of(model: &ModelView<'_>) -> Vec<Vec<Params>> {
    model
        .layers
        .iter()
        .map(|layer| layer.iter().map(|w| Params::of(w)).collect())
        .collect()
}

/// A network in `f64` and the sizes of one forward over it.
#[derive(Clone, Debug)]
pub(crate) struct Net {
    /// `[layer][direction]`.
    pub(crate) params: Vec<Vec<Params>>,
    pub(crate) direction: crate::model::Direction,
    pub(crate) threshold: Option<f64>,
    pub(crate) dims: Dims,
    /// Every entry's length.
    pub(crate) lens: Vec<usize>,
}

impl Net {
    /// `model` in `f64`, for a forward over `input`.
    pub(crate) fn new(model: &ModelView<'_>, input: &GruInput<'_>) -> Result<Self> {
        let dims = input.validate_view(model)?;
        Ok(Net {
            params: params_of(model),
            direction: model.direction,
            threshold: model.clip.map(|c| c as f64),
            lens: (0..dims.batch).map(|b| input.length(b)).collect(),
            dims,
        })
    }
}

/// A forward in `f64` (no rounding between steps) and what the backward needs: `Y` and
/// `Y_h` in the forward's shapes, and every step's saved values (its input row among them).
pub(crate) struct Forward64 {
    /// `Y` and `Y_h` (read by the tests, which differentiate them numerically).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) y: Vec<f64>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) y_h: Vec<f64>,
    /// `steps[l][d][b][s]`.
    steps: Vec<Vec<Vec<Vec<Step>>>>,
}

/// Runs the network in `f64` over `x` (`X`'s layout) from `h0` (`initial_h`'s, or zeros).
pub(crate) fn forward64(net: &Net, x: &[f64], h0: Option<&[f64]>) -> Forward64 {
    let (params, direction, threshold) = (&net.params, net.direction, net.threshold);
    let (dims, lens) = (&net.dims, &net.lens);
    let (t_len, batch, hid) = (dims.seq_len, dims.batch, dims.hidden_size);
    let n_dir = dims.num_directions;
    let [st_ld, st_b] = dims.state_strides();
    let mut y_h = vec![0.0; dims.state_len()];
    let mut layer_in = x.to_vec();
    let mut width = dims.input_size;
    let mut steps = Vec::new();
    for (l, layer) in params.iter().enumerate() {
        let mut out = vec![0.0; t_len * batch * n_dir * hid];
        let mut layer_steps = Vec::new();
        for (d, p) in layer.iter().enumerate() {
            let reverse = direction.is_reverse(d);
            let base = (l * n_dir + d) * st_ld;
            let mut dir_steps = Vec::new();
            for (b, &len) in lens.iter().enumerate() {
                let mut h: Vec<f64> = match h0 {
                    Some(h0) => h0[base + b * st_b..][..hid].to_vec(),
                    None => vec![0.0; hid],
                };
                let mut saved = Vec::with_capacity(len);
                for s in 0..len {
                    let t = if reverse { len - 1 - s } else { s };
                    let row = dims.row(t, b);
                    let xr = &layer_in[row * width..][..width];
                    let (next, step) = cell(p, hid, xr, &h, threshold);
                    h = next;
                    out[(row * n_dir + d) * hid..][..hid].copy_from_slice(&h);
                    saved.push(step);
                }
                if len > 0 {
                    y_h[base + b * st_b..][..hid].copy_from_slice(&h);
                }
                dir_steps.push(saved);
            }
            layer_steps.push(dir_steps);
        }
        layer_in = out;
        steps.push(layer_steps);
        width = n_dir * hid;
    }
    let [yt, yd, yb] = dims.y_strides();
    let mut y = vec![0.0; dims.y_len()];
    for t in 0..t_len {
        for b in 0..batch {
            for d in 0..n_dir {
                let src = &layer_in[(dims.row(t, b) * n_dir + d) * hid..][..hid];
                y[t * yt + d * yd + b * yb..][..hid].copy_from_slice(src);
            }
        }
    }
    Forward64 { y, y_h, steps }
}

/// The backward of [`forward64`]'s network given `dy` (`Y`'s shape) and `dy_h` (`Y_h`'s).
pub(crate) fn backward64(
    net: &Net,
    fwd: &Forward64,
    dy: &[f64],
    dy_h: Option<&[f64]>,
) -> GruGradients {
    let (params, direction, threshold) = (&net.params, net.direction, net.threshold);
    let (dims, lens) = (&net.dims, &net.lens);
    let (t_len, batch, hid) = (dims.seq_len, dims.batch, dims.hidden_size);
    let n_dir = dims.num_directions;
    let [st_ld, st_b] = dims.state_strides();
    let [yt, yd, yb] = dims.y_strides();
    // The gradient of the top layer's output rows (row · D·H, direction d at d·H).
    let mut d_out = vec![0.0; t_len * batch * n_dir * hid];
    for t in 0..t_len {
        for b in 0..batch {
            for d in 0..n_dir {
                let dst = (dims.row(t, b) * n_dir + d) * hid;
                d_out[dst..][..hid].copy_from_slice(&dy[t * yt + d * yd + b * yb..][..hid]);
            }
        }
    }
    let mut dh0 = vec![0.0; dims.state_len()];
    let mut layers: Vec<Vec<LayerGradients>> = Vec::new();
    for l in (0..params.len()).rev() {
        let width = if l == 0 { dims.input_size } else { n_dir * hid };
        let mut d_in = vec![0.0; t_len * batch * width];
        let mut layer_grads = Vec::new();
        for (d, p) in params[l].iter().enumerate() {
            let reverse = direction.is_reverse(d);
            let base = (l * n_dir + d) * st_ld;
            let mut grads = LayerGradients {
                dw: vec![0.0; p.w.len()],
                dr: vec![0.0; p.r.len()],
                db: vec![0.0; p.b.len()],
            };
            for (b, &len) in lens.iter().enumerate() {
                if len == 0 {
                    continue;
                }
                let mut g: Vec<f64> = match dy_h {
                    Some(dyh) => dyh[base + b * st_b..][..hid].to_vec(),
                    None => vec![0.0; hid],
                };
                for s in (0..len).rev() {
                    let t = if reverse { len - 1 - s } else { s };
                    let row = dims.row(t, b);
                    for (gj, o) in g.iter_mut().zip(&d_out[(row * n_dir + d) * hid..][..hid]) {
                        *gj += o;
                    }
                    let step = &fwd.steps[l][d][b][s];
                    let dx = &mut d_in[row * width..][..width];
                    g = cell_backward(p, hid, step, &g, threshold, &mut grads, dx);
                }
                dh0[base + b * st_b..][..hid].copy_from_slice(&g);
            }
            layer_grads.push(grads);
        }
        layers.push(layer_grads);
        d_out = d_in;
    }
    layers.reverse();
    GruGradients {
        layers,
        dx: d_out,
        dh0,
    }
}

/// [`GruError::InvalidArgument`] for a tensor `what` of `got` values where `expected` (of
/// `shape`) were due.
pub(crate) fn check_len(what: &str, got: usize, expected: usize, shape: Vec<usize>) -> Result<()> {
    if got != expected {
        return Err(GruError::invalid(
            what,
            format!("{expected} values (shape {shape:?})"),
            format!("{got} values"),
        ));
    }
    Ok(())
}

fn backward_view(
    model: &ModelView<'_>,
    input: &GruInput<'_>,
    dy: &[f32],
    dy_h: Option<&[f32]>,
) -> Result<GruGradients> {
    let net = Net::new(model, input)?;
    let dims = &net.dims;
    check_len("dY", dy.len(), dims.y_len(), dims.y_shape())?;
    if let Some(d) = dy_h {
        check_len("dY_h", d.len(), dims.state_len(), dims.state_shape())?;
    }
    let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let h0 = input.initial_h.map(f);
    let fwd = forward64(&net, &f(input.x), h0.as_deref());
    let dy_h = dy_h.map(f);
    Ok(backward64(&net, &fwd, &f(dy), dy_h.as_deref()))
}

/// The gradients of one forward layer's [`super::forward`] over `input`, given `dY`
/// (`Y`'s shape, e.g. `[T, B, H]`) and optionally `dY_h` (`[B, H]`): `∂L/∂X`,
/// `∂L/∂initial_h`, and `∂L/∂W`, `∂L/∂R`, `∂L/∂B` in the weights' layout (gate order z, r,
/// h). Errors when a length does not match.
pub fn backward(
    weights: &GruWeights,
    input: &GruInput<'_>,
    dy: &[f32],
    dy_h: Option<&[f32]>,
) -> Result<GruGradients> {
    backward_view(&ModelView::single(weights), input, dy, dy_h)
}

/// The gradients of a whole network's [`super::forward_model`] (layers, directions,
/// lengths, layouts, output styles, clip), given `dY` in `Y`'s shape and optionally `dY_h` in
/// `Y_h`'s (shapes in [`crate::input`]).
pub fn backward_model(
    model: &GruModel,
    input: &GruInput<'_>,
    dy: &[f32],
    dy_h: Option<&[f32]>,
) -> Result<GruGradients> {
    backward_view(&model.view(), input, dy, dy_h)
}

mod layouts;
pub use layouts::{KerasLayerGradients, PyTorchLayerGradients};

#[cfg(test)]
mod tests;
