//! Training a network and its dense head on either device behind one interface: a
//! [`Trainer`] ([`GpuTrainer`] or [`ReferenceTrainer`]), and running a data set through it in
//! batches. `gru train` and the Python package's `train` both drive this.

use crate::data::{Batch, Dataset};
use crate::gpu::GpuTrainer;
use crate::loss::{Loss, LossValue};
use crate::train::{model_from_parameters, ReferenceTrainer, TrainerState};
use crate::{GruError, GruInput, GruModel, Layout};

/// A trainer on the GPU or on the CPU reference (the same steps and parameters; see
/// [`GpuTrainer`] and [`ReferenceTrainer`]).
pub enum Trainer {
    /// WGSL kernels, one submit per step.
    Gpu(Box<GpuTrainer>),
    /// The `f64` reference.
    Cpu(Box<ReferenceTrainer>),
}

impl Trainer {
    /// The loss the trainer minimises.
    pub fn loss(&self) -> Loss {
        match self {
            Trainer::Gpu(t) => t.loss(),
            Trainer::Cpu(t) => t.loss(),
        }
    }

    /// One step; a non-finite loss or gradient leaves the parameters as they were (both
    /// trainers' guard: [`GruError::NonFinite`] unless `skip`; `Ok(None)` for a skipped step).
    pub fn step(
        &mut self,
        input: &GruInput<'_>,
        targets: &[f64],
        skip: bool,
    ) -> Result<Option<LossValue>, GruError> {
        let (before, value) = match self {
            Trainer::Gpu(t) => {
                t.set_skip_non_finite(skip);
                (t.skipped_steps(), t.step(input, targets)?)
            }
            Trainer::Cpu(t) => {
                t.set_skip_non_finite(skip);
                (t.skipped_steps(), t.step(input, targets)?)
            }
        };
        let after = match self {
            Trainer::Gpu(t) => t.skipped_steps(),
            Trainer::Cpu(t) => t.skipped_steps(),
        };
        Ok((after == before).then_some(value))
    }

    /// The mean loss (and accuracy counts) of the network and head on one batch, without
    /// training; `targets` as for [`Trainer::step`].
    pub fn evaluate(
        &mut self,
        input: &GruInput<'_>,
        targets: &[f64],
    ) -> Result<LossValue, GruError> {
        match self {
            Trainer::Gpu(t) => t.evaluate(input, targets),
            Trainer::Cpu(t) => t.evaluate(input, targets),
        }
    }

    /// The head's outputs for one batch: probabilities (sigmoid, softmax) or values (linear),
    /// `[B, out]`, or `[B, T, out]` for a per-step head.
    pub fn predict(&mut self, input: &GruInput<'_>) -> Result<Vec<f32>, GruError> {
        match self {
            Trainer::Gpu(t) => t.predict(input),
            Trainer::Cpu(t) => t.predict(input),
        }
    }

    /// The parameters, optimizer state and step count (a checkpoint's contents).
    pub fn state(&self) -> Result<TrainerState, GruError> {
        match self {
            Trainer::Gpu(t) => t.state(),
            Trainer::Cpu(t) => Ok(t.state()),
        }
    }

    /// Goes on from a checkpoint's state.
    pub fn restore(&mut self, state: &TrainerState) -> Result<(), GruError> {
        match self {
            Trainer::Gpu(t) => t.restore(state),
            Trainer::Cpu(t) => t.restore(state),
        }
    }

    /// The trained network (of `like`'s shape) and its head `(weight [out, D·H], bias [out])`.
    pub fn result(&self, like: &GruModel) -> Result<(GruModel, Vec<f32>, Vec<f32>), GruError> {
        // One readback of the parameters; the network's shape is `like`'s (the start's).
        let params: Vec<Vec<f32>> = match self {
            Trainer::Gpu(t) => t.parameters()?,
            Trainer::Cpu(t) => t
                .parameters()
                .iter()
                .map(|p| p.iter().map(|&v| v as f32).collect())
                .collect(),
        };
        let model = model_from_parameters(
            like.convention(),
            like.direction(),
            like.clip(),
            like.input_size(),
            like.hidden_size(),
            &params,
        )?;
        let n = params.len();
        Ok((model, params[n - 2].clone(), params[n - 1].clone()))
    }
}

/// Runs `data` through `f` in batches of `batch` entries, in order.
pub fn in_batches<T>(
    data: &Dataset,
    batch: usize,
    mut f: impl FnMut(&Batch, &GruInput<'_>) -> Result<T, GruError>,
) -> Result<Vec<T>, GruError> {
    let t = data.shape()[1];
    let mut out = Vec::new();
    for b in data.batches(batch, 0, 0, false)? {
        let mut input = GruInput::new(&b.x, t, b.len()).with_layout(Layout::BatchMajor);
        if let Some(l) = &b.lens {
            input = input.with_sequence_lens(l);
        }
        out.push(f(&b, &input)?);
    }
    Ok(out)
}

/// The loss and accuracy over a whole data set, in batches (means over its entries).
pub fn evaluate_all(
    trainer: &mut Trainer,
    data: &Dataset,
    batch: usize,
) -> Result<LossValue, GruError> {
    let parts = in_batches(data, batch, |b, input| trainer.evaluate(input, &b.targets))?;
    Ok(merge(&parts))
}

/// Means over entries of batch values.
pub fn merge(parts: &[LossValue]) -> LossValue {
    let count: usize = parts.iter().map(|v| v.count).sum();
    let loss = parts.iter().map(|v| v.loss * v.count as f64).sum::<f64>() / count.max(1) as f64;
    LossValue {
        loss,
        correct: parts.iter().map(|v| v.correct).sum(),
        count,
    }
}
