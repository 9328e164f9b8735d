//! One training step on the host, in `f64` (issue 15): the reference the GPU trainer is
//! checked against, and itself checked against Keras 3 and PyTorch training the same network
//! from the same weights on the same batches (tests/io/train.rs, `scripts/golden_train.py`).
//!
//! The network is a GRU stack ([`GruModel`]) with a head on the final state of its last layer
//! (for each entry the `D·H` values of the last layer's directions side by side, direction 0
//! first: Keras's `return_sequences=False`, PyTorch's `h_n[-D:]`): a dense layer
//! `z = W·x + b` (`W [out, D·H]`) and a [`Loss`]. A step runs the forward
//! ([`crate::cpu::forward_model`]), the loss and its gradient ([`crate::loss`]), the head's
//! backward, the GRU's backward ([`crate::cpu::backward_model`] with `dY = 0` and `dY_h` the
//! head's input gradient in the last layer's rows), then one optimizer step
//! ([`crate::optim::OptimizerState`]) over every parameter.
//!
//! The parameters are kept in `f64` ([`ReferenceTrainer::parameters`], in the order: per
//! layer and direction `W [3H, K]`, `R [3H, H]`, `B [6H]` (gate order z, r, h), then the
//! head's weight and bias); the GRU runs on them rounded to `f32`, as the crate's models
//! store weights.
//!
//! Biases: with reset-after (PyTorch, Keras `reset_after=True`) `Wb` and `Rb` are both
//! trained (`Rb_h` is scaled by `r`, so they differ). With reset-before only their sum enters
//! the network, so it is one parameter, as Keras's `reset_after=False` single bias: `Wb` is
//! trained with the gradient of the sum and `Rb` stays as it is (zero for a Keras model;
//! an ONNX model's `Rb` is kept, which trains the same sum).

use crate::cpu;
use crate::error::{GruError, Result};
use crate::input::GruInput;
use crate::loss::{self, Loss, LossValue};
use crate::model::GruModel;
use crate::optim::{Clip, Optimizer, OptimizerState};
use crate::weights::{Convention, GruWeights};

/// Everything a trainer needs to go on where it stopped (a checkpoint's contents): the
/// parameters in [`ReferenceTrainer::parameters`]'s order, the optimizer's state per parameter
/// tensor (`[kinds · n]`, [`OptimizerState::state`]) and the optimizer's step count.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerState {
    /// Per layer and direction `W`, `R`, `B`, then the head's weight and bias.
    pub params: Vec<Vec<f64>>,
    /// Per parameter tensor, its optimizer state.
    pub optimizer: Vec<Vec<f64>>,
    /// Optimizer steps taken.
    pub steps: u64,
}

/// A GRU stack with a dense head and a loss, its parameters in `f64`, and its optimizer.
#[derive(Clone, Debug)]
pub struct ReferenceTrainer {
    model: GruModel,
    outputs: usize,
    loss: Loss,
    params: Vec<Vec<f64>>,
    optimizer: OptimizerState,
    /// The head runs on every step's output (sequence to sequence) instead of the final
    /// state ([`ReferenceTrainer::per_step_head`]).
    per_step: bool,
    /// Skip a step whose loss or gradients are not finite instead of returning an error.
    skip_non_finite: bool,
    /// Steps skipped so.
    skipped: u64,
}

impl ReferenceTrainer {
    /// The head on every step's output `Y` of the last layer (sequence to sequence, Keras's
    /// `return_sequences=True` with a `TimeDistributed(Dense)`) instead of the final state.
    /// Targets are then `[B, T, width]` (batch-major; `width` 1 for labels, `out` for mean
    /// squared error), and only an entry's steps within its length count: the loss is the
    /// mean over those (entry, step) pairs, and the accuracy counts them. Predictions are
    /// `[B, T, out]`; past an entry's length `Y` is zero, so they are the head's bias there.
    pub fn per_step_head(mut self) -> Self {
        self.per_step = true;
        self
    }

    /// With `on`, a step whose loss or gradients are not finite is skipped (nothing changes,
    /// [`ReferenceTrainer::skipped_steps`] counts it) and returns its loss, instead of
    /// returning [`GruError::NonFinite`] (the default; nothing changes either), as
    /// [`crate::gpu::GpuTrainer`] does.
    pub fn set_skip_non_finite(&mut self, on: bool) {
        self.skip_non_finite = on;
    }

    /// Steps skipped because their loss or gradients were not finite.
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// Whether the head runs on every step ([`ReferenceTrainer::per_step_head`]).
    pub fn is_per_step(&self) -> bool {
        self.per_step
    }

    /// A trainer for `model` with a head `weight [out, D·H]`, `bias [out]` and `loss`, updated
    /// by `optimizer` with `clip`. Errors: a head whose sizes do not fit the model, bad
    /// hyperparameters.
    pub fn new(
        model: GruModel,
        weight: &[f32],
        bias: &[f32],
        loss: Loss,
        optimizer: Optimizer,
        clip: Clip,
    ) -> Result<Self> {
        let out = check_head(&model, weight, bias, loss)?;
        let mut params = Vec::new();
        for layer in model.layers() {
            for w in layer {
                for t in [w.w(), w.r(), w.b()] {
                    params.push(t.iter().map(|&x| x as f64).collect::<Vec<f64>>());
                }
            }
        }
        params.push(weight.iter().map(|&x| x as f64).collect());
        params.push(bias.iter().map(|&x| x as f64).collect());
        let sizes: Vec<usize> = params.iter().map(|p| p.len()).collect();
        Ok(ReferenceTrainer {
            optimizer: OptimizerState::new(optimizer, clip, &sizes)?,
            model,
            outputs: out,
            loss,
            params,
            per_step: false,
            skip_non_finite: false,
            skipped: 0,
        })
    }

    /// The parameters (module docs for the order).
    pub fn parameters(&self) -> &[Vec<f64>] {
        &self.params
    }

    /// The GRU as it runs now (its weights the parameters rounded to `f32`).
    pub fn model(&self) -> &GruModel {
        &self.model
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.optimizer.steps()
    }

    /// The parameters, the optimizer's state and its step count ([`TrainerState`]).
    pub fn state(&self) -> TrainerState {
        TrainerState {
            params: self.params.clone(),
            optimizer: self.optimizer.state(),
            steps: self.optimizer.steps(),
        }
    }

    /// Goes on from `state` (a checkpoint's): its parameters, optimizer state and step count.
    /// Errors (nothing changed): tensors or sizes that do not match this trainer's.
    pub fn restore(&mut self, state: &TrainerState) -> Result<()> {
        let sizes: Vec<usize> = self.params.iter().map(Vec::len).collect();
        let given: Vec<usize> = state.params.iter().map(Vec::len).collect();
        if sizes != given {
            return Err(GruError::invalid(
                "parameters to restore",
                format!("tensors of {sizes:?} values"),
                format!("{given:?}"),
            ));
        }
        let model = rebuild(&self.model, &state.params)?;
        let mut optimizer = self.optimizer.clone();
        optimizer.restore(&state.optimizer, state.steps)?;
        self.model = model;
        self.params = state.params.clone();
        self.optimizer = optimizer;
        Ok(())
    }

    /// The head's outputs `[B, out]` (per step: `[B, T, out]`) on a batch, after the loss's
    /// activation ([`loss::activate`]).
    pub fn predict(&self, input: &GruInput<'_>) -> Result<Vec<f32>> {
        let (features, _) = self.features(input)?;
        let (w, b) = self.head();
        let z = loss::dense(w, b, &features, self.features_len());
        Ok(loss::activate(self.loss, &z, self.outputs)
            .iter()
            .map(|&v| v as f32)
            .collect())
    }

    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// The head's outputs' loss and accuracy on a batch, without training.
    pub fn evaluate(&self, input: &GruInput<'_>, targets: &[f64]) -> Result<LossValue> {
        let (features, out) = self.features(input)?;
        let (_, fv, tv) = counted(
            self.per_step,
            self.loss,
            self.outputs,
            input,
            &out.dims,
            &features,
            targets,
        )?;
        let (w, b) = self.head();
        let z = loss::dense(w, b, &fv, self.features_len());
        Ok(loss::loss_and_grad(self.loss, &z, self.outputs, &tv)?.0)
    }

    /// One training step on a batch: the loss before the update (and its accuracy counts),
    /// then every parameter updated. `targets` as [`loss::loss_and_grad`] takes them. Errors
    /// leave the parameters unchanged.
    pub fn step(&mut self, input: &GruInput<'_>, targets: &[f64]) -> Result<LossValue> {
        let (features, out) = self.features(input)?;
        let dims = out.dims;
        let (rows, fv, tv) = counted(
            self.per_step,
            self.loss,
            self.outputs,
            input,
            &dims,
            &features,
            targets,
        )?;
        let k = self.features_len();
        let (w, b) = self.head();
        let z = loss::dense(w, b, &fv, k);
        let (value, dz) = loss::loss_and_grad(self.loss, &z, self.outputs, &tv)?;
        let (dw_head, db_head, dfeatures) = loss::dense_backward(w, &fv, &dz, k, self.outputs);
        let (d, h) = (dims.num_directions, dims.hidden_size);
        let mut dy = vec![0.0f32; dims.y_len()];
        let mut dy_h = vec![0.0f32; dims.state_len()];
        if self.per_step {
            // dY: the head's input gradient at each counted (entry, step), in Y's layout.
            let [yt, yd, yb] = dims.y_strides();
            for (i, &r) in rows.iter().enumerate() {
                let (e, s) = (r / dims.seq_len, r % dims.seq_len);
                for dd in 0..d {
                    for u in 0..h {
                        dy[s * yt + dd * yd + e * yb + u] = dfeatures[i * k + dd * h + u] as f32;
                    }
                }
            }
        } else {
            // dY_h: the head's input gradient in the last layer's rows, zero elsewhere.
            let [st_ld, st_b] = dims.state_strides();
            let last = (dims.num_layers - 1) * d;
            for e in 0..dims.batch {
                for dd in 0..d {
                    for u in 0..h {
                        dy_h[(last + dd) * st_ld + e * st_b + u] =
                            dfeatures[e * k + dd * h + u] as f32;
                    }
                }
            }
        }
        let grads = cpu::backward_model(&self.model, input, &dy, Some(&dy_h))?;
        let mut flat: Vec<Vec<f64>> = Vec::with_capacity(self.params.len());
        for layer in grads.layers {
            for g in layer {
                flat.extend([g.dw, g.dr, g.db]);
            }
        }
        flat.push(dw_head);
        flat.push(db_head);
        // As the device's guard: a loss or gradient that is not finite changes nothing.
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !value.loss.is_finite() || !flat.iter().all(|g| finite(g)) {
            if self.skip_non_finite {
                self.skipped += 1;
                return Ok(value);
            }
            return Err(non_finite(self.optimizer.steps() + 1, value.loss));
        }
        let mut next = self.params.clone();
        self.optimizer.step(&mut next, &flat)?;
        if self.model.convention() == Convention::ResetBefore {
            // Rb stays: the sum Wb + Rb is the one bias (module docs).
            let h3 = 3 * self.model.hidden_size();
            for (p, kept) in next.iter_mut().zip(&self.params).skip(2).step_by(3) {
                if p.len() == 2 * h3 {
                    p[h3..].copy_from_slice(&kept[h3..]);
                }
            }
        }
        self.model = rebuild(&self.model, &next)?;
        self.params = next;
        Ok(value)
    }

    fn features_len(&self) -> usize {
        self.model.num_directions() * self.model.hidden_size()
    }

    /// The head's weight and bias (the last two parameters).
    fn head(&self) -> (&[f64], &[f64]) {
        let n = self.params.len();
        (&self.params[n - 2], &self.params[n - 1])
    }

    /// The head's input rows ([`head_rows`]) and the forward's output.
    fn features(&self, input: &GruInput<'_>) -> Result<(Vec<f64>, crate::input::GruOutput)> {
        let out = cpu::forward_model(&self.model, input)?;
        Ok((head_rows(&out, self.per_step)?, out))
    }
}

/// The head's input rows in `f64`: the final-state features `[B, D·H]`, or per step the
/// last layer's outputs `[B, T, D·H]` (rows `b·T + t`).
pub(crate) fn head_rows(out: &crate::input::GruOutput, per_step: bool) -> Result<Vec<f64>> {
    if !per_step {
        let f = crate::head::final_features(out)?;
        return Ok(f.iter().map(|&x| x as f64).collect());
    }
    let dims = out.dims;
    let (t, b, d, h) = (
        dims.seq_len,
        dims.batch,
        dims.num_directions,
        dims.hidden_size,
    );
    let [yt, yd, yb] = dims.y_strides();
    let k = d * h;
    let mut f = vec![0.0f64; b * t * k];
    for e in 0..b {
        for s in 0..t {
            for dd in 0..d {
                for u in 0..h {
                    f[(e * t + s) * k + dd * h + u] = out.y[s * yt + dd * yd + e * yb + u] as f64;
                }
            }
        }
    }
    Ok(f)
}

/// The rows of the head's input that count (every entry's final state; per step, the
/// (entry, step) pairs within the entry's length, as `b·T + t`), their features and their
/// targets. Errors: per-step targets of the wrong length.
#[allow(clippy::type_complexity)]
pub(crate) fn counted(
    per_step: bool,
    loss: Loss,
    outputs: usize,
    input: &GruInput<'_>,
    dims: &crate::input::Dims,
    features: &[f64],
    targets: &[f64],
) -> Result<(Vec<usize>, Vec<f64>, Vec<f64>)> {
    if !per_step {
        let rows = (0..dims.batch).collect();
        return Ok((rows, features.to_vec(), targets.to_vec()));
    }
    let (t, b) = (dims.seq_len, dims.batch);
    let width = match loss {
        Loss::MeanSquaredError => outputs,
        _ => 1,
    };
    if targets.len() != b * t * width {
        return Err(GruError::invalid(
            "per-step targets",
            format!("[B={b}, T={t}, {width}] = {} values", b * t * width),
            targets.len(),
        ));
    }
    let k = features.len() / (b * t).max(1);
    let rows: Vec<usize> = (0..b)
        .flat_map(|e| (0..input.length(e)).map(move |s| e * t + s))
        .collect();
    let fv = rows
        .iter()
        .flat_map(|&r| features[r * k..(r + 1) * k].iter().copied())
        .collect();
    let tv = rows
        .iter()
        .flat_map(|&r| targets[r * width..(r + 1) * width].iter().copied())
        .collect();
    Ok((rows, fv, tv))
}

/// Checks a dense head `weight [out, D·H]`, `bias [out]` for `model` and `loss`: the sizes
/// agree (out ≥ 1), and a binary cross-entropy head has one output. Returns `out`.
pub(crate) fn check_head(
    model: &GruModel,
    weight: &[f32],
    bias: &[f32],
    loss: Loss,
) -> Result<usize> {
    let features = model.num_directions() * model.hidden_size();
    let out = bias.len();
    if out == 0 || weight.len() != out * features {
        return Err(GruError::invalid(
            "head weight",
            format!("[out, D·H = {features}] with out = bias length ≥ 1"),
            format!("{} values with {out} biases", weight.len()),
        ));
    }
    if loss == Loss::BinaryCrossentropy && out != 1 {
        return Err(GruError::invalid(
            "binary cross-entropy head",
            "one output",
            format!("{out} outputs"),
        ));
    }
    Ok(out)
}

/// The error of step `step` whose update a trainer's guard refused: its `loss` when that is
/// not finite, else its gradients' norm.
pub(crate) fn non_finite(step: u64, loss: f64) -> GruError {
    let (what, value) = if loss.is_finite() {
        ("gradient norm", f64::INFINITY)
    } else {
        ("loss", loss)
    };
    GruError::NonFinite {
        step,
        what: what.into(),
        value,
    }
}

/// `model` with its weights replaced by the GRU parameters of `params` rounded to `f32`.
fn rebuild(model: &GruModel, params: &[Vec<f64>]) -> Result<GruModel> {
    let f32s: Vec<Vec<f32>> = params
        .iter()
        .map(|v| v.iter().map(|&x| x as f32).collect())
        .collect();
    model_from_parameters(
        model.convention(),
        model.direction(),
        model.clip(),
        model.input_size(),
        model.hidden_size(),
        &f32s,
    )
}

/// A GRU stack from parameters in [`ReferenceTrainer::parameters`]'s order (per layer and
/// direction `W [3H, K]`, `R [3H, H]`, `B [6H]`, gate order z, r, h; a head's two tensors
/// after them are ignored): as many layers as `params` holds whole groups of `3·D` tensors,
/// layer 0 reading `input_size` features and the others `D·H`. Errors: tensors whose sizes do
/// not fit.
pub fn model_from_parameters(
    convention: Convention,
    direction: crate::Direction,
    clip: Option<f32>,
    input_size: usize,
    hidden_size: usize,
    params: &[Vec<f32>],
) -> Result<GruModel> {
    let nd = direction.num_directions();
    let layers = params.len() / (3 * nd);
    let mut stack = Vec::with_capacity(layers);
    for l in 0..layers {
        let k = if l == 0 { input_size } else { nd * hidden_size };
        let mut dirs = Vec::with_capacity(nd);
        for d in 0..nd {
            let at = 3 * (l * nd + d);
            dirs.push(GruWeights::new(
                convention,
                k,
                hidden_size,
                params[at].clone(),
                params[at + 1].clone(),
                Some(params[at + 2].clone()),
            )?);
        }
        stack.push(dirs);
    }
    GruModel::new(direction, stack, clip)
}
