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
}

impl ReferenceTrainer {
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

    /// The head's outputs `[B, out]` on a batch, after the loss's activation
    /// ([`loss::activate`]).
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
        let (features, _) = self.features(input)?;
        let (w, b) = self.head();
        let z = loss::dense(w, b, &features, self.features_len());
        Ok(loss::loss_and_grad(self.loss, &z, self.outputs, targets)?.0)
    }

    /// One training step on a batch: the loss before the update (and its accuracy counts),
    /// then every parameter updated. `targets` as [`loss::loss_and_grad`] takes them. Errors
    /// leave the parameters unchanged.
    pub fn step(&mut self, input: &GruInput<'_>, targets: &[f64]) -> Result<LossValue> {
        let (features, out) = self.features(input)?;
        let dims = out.dims;
        let k = self.features_len();
        let (w, b) = self.head();
        let z = loss::dense(w, b, &features, k);
        let (value, dz) = loss::loss_and_grad(self.loss, &z, self.outputs, targets)?;
        let (dw_head, db_head, dfeatures) =
            loss::dense_backward(w, &features, &dz, k, self.outputs);
        // dY_h: the head's input gradient in the last layer's rows, zero elsewhere.
        let (d, h) = (dims.num_directions, dims.hidden_size);
        let [st_ld, st_b] = dims.state_strides();
        let last = (dims.num_layers - 1) * d;
        let mut dy_h = vec![0.0f32; dims.state_len()];
        for e in 0..dims.batch {
            for dd in 0..d {
                for u in 0..h {
                    dy_h[(last + dd) * st_ld + e * st_b + u] = dfeatures[e * k + dd * h + u] as f32;
                }
            }
        }
        let dy = vec![0.0f32; dims.y_len()];
        let grads = cpu::backward_model(&self.model, input, &dy, Some(&dy_h))?;
        let mut flat: Vec<Vec<f64>> = Vec::with_capacity(self.params.len());
        for layer in grads.layers {
            for g in layer {
                flat.extend([g.dw, g.dr, g.db]);
            }
        }
        flat.push(dw_head);
        flat.push(db_head);
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

    /// The forward's final-state features `[B, D·H]` in `f64`, and the output.
    fn features(&self, input: &GruInput<'_>) -> Result<(Vec<f64>, crate::input::GruOutput)> {
        let out = cpu::forward_model(&self.model, input)?;
        let f = crate::head::final_features(&out)?;
        Ok((f.iter().map(|&x| x as f64).collect(), out))
    }
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

/// `model` with its weights replaced by the GRU parameters of `params` rounded to `f32`.
fn rebuild(model: &GruModel, params: &[Vec<f64>]) -> Result<GruModel> {
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let mut at = 0;
    let mut layers = Vec::with_capacity(model.num_layers());
    for layer in model.layers() {
        let mut dirs = Vec::with_capacity(layer.len());
        for w in layer {
            dirs.push(GruWeights::new(
                w.convention(),
                w.input_size(),
                w.hidden_size(),
                f32s(&params[at]),
                f32s(&params[at + 1]),
                Some(f32s(&params[at + 2])),
            )?);
            at += 3;
        }
        layers.push(dirs);
    }
    GruModel::new(model.direction(), layers, model.clip())
}
