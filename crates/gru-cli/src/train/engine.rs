//! The trainer `--device` chose ([`GpuTrainer`] or [`ReferenceTrainer`]) behind one
//! interface, and running a data set through it in batches.

use gru_wgpu::data::{Batch, Dataset};
use gru_wgpu::gpu::{GpuContext, GpuTrainer};
use gru_wgpu::loss::{Loss, LossValue};
use gru_wgpu::optim::{Clip, Optimizer};
use gru_wgpu::train::{model_from_parameters, ReferenceTrainer, TrainerState};
use gru_wgpu::{GruError, GruInput, GruModel, Layout};

use crate::args::DeviceChoice;
use crate::{on_device, CliResult, GpuFailure};

/// The trainer `--device` chose.
pub(super) enum Engine {
    Gpu(Box<GpuTrainer>),
    Cpu(Box<ReferenceTrainer>),
}

/// What a trainer starts from.
pub(super) struct Start {
    pub(super) model: GruModel,
    pub(super) weight: Vec<f32>,
    pub(super) bias: Vec<f32>,
}

impl Engine {
    pub(super) fn new(
        device: DeviceChoice,
        start: &Start,
        loss: Loss,
        per_step: bool,
        optimizer: Optimizer,
        clip: Clip,
    ) -> CliResult<(Engine, String)> {
        let gpu = || {
            let ctx = GpuContext::new().map_err(GpuFailure::Context)?;
            let describe = ctx.describe();
            let t = GpuTrainer::new(
                &ctx,
                &start.model,
                &start.weight,
                &start.bias,
                loss,
                optimizer,
                clip,
            )
            .map_err(GpuFailure::Run)?;
            let t = if per_step { t.per_step_head() } else { t };
            Ok((Engine::Gpu(Box::new(t)), describe))
        };
        let cpu = || {
            let t = ReferenceTrainer::new(
                start.model.clone(),
                &start.weight,
                &start.bias,
                loss,
                optimizer,
                clip,
            )?;
            let t = if per_step { t.per_step_head() } else { t };
            Ok(Engine::Cpu(Box::new(t)))
        };
        let (engine, place, _) = on_device(device, gpu, cpu)?;
        Ok((engine, place))
    }

    /// One step; a non-finite loss or gradient leaves the parameters as they were (both
    /// trainers' guard: [`GruError::NonFinite`] unless `skip`; `Ok(None)` for a skipped step).
    pub(super) fn step(
        &mut self,
        input: &GruInput<'_>,
        targets: &[f64],
        skip: bool,
    ) -> Result<Option<LossValue>, GruError> {
        let (before, value) = match self {
            Engine::Gpu(t) => {
                t.set_skip_non_finite(skip);
                (t.skipped_steps(), t.step(input, targets)?)
            }
            Engine::Cpu(t) => {
                t.set_skip_non_finite(skip);
                (t.skipped_steps(), t.step(input, targets)?)
            }
        };
        let after = match self {
            Engine::Gpu(t) => t.skipped_steps(),
            Engine::Cpu(t) => t.skipped_steps(),
        };
        Ok((after == before).then_some(value))
    }

    pub(super) fn evaluate(
        &mut self,
        input: &GruInput<'_>,
        targets: &[f64],
    ) -> Result<LossValue, GruError> {
        match self {
            Engine::Gpu(t) => t.evaluate(input, targets),
            Engine::Cpu(t) => t.evaluate(input, targets),
        }
    }

    pub(super) fn predict(&mut self, input: &GruInput<'_>) -> Result<Vec<f32>, GruError> {
        match self {
            Engine::Gpu(t) => t.predict(input),
            Engine::Cpu(t) => t.predict(input),
        }
    }

    /// The parameters, optimizer state and step count (a checkpoint's contents).
    pub(super) fn state(&self) -> Result<TrainerState, GruError> {
        match self {
            Engine::Gpu(t) => t.state(),
            Engine::Cpu(t) => Ok(t.state()),
        }
    }

    /// Goes on from a checkpoint's state.
    pub(super) fn restore(&mut self, state: &TrainerState) -> Result<(), GruError> {
        match self {
            Engine::Gpu(t) => t.restore(state),
            Engine::Cpu(t) => t.restore(state),
        }
    }

    /// The trained network (of `like`'s shape) and its head `(weight [out, D·H], bias [out])`.
    pub(super) fn result(
        &self,
        like: &GruModel,
    ) -> Result<(GruModel, Vec<f32>, Vec<f32>), GruError> {
        // One readback of the parameters; the network's shape is `like`'s (the start's).
        let params: Vec<Vec<f32>> = match self {
            Engine::Gpu(t) => t.parameters()?,
            Engine::Cpu(t) => t
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
pub(super) fn in_batches<T>(
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
pub(super) fn evaluate_all(
    engine: &mut Engine,
    data: &Dataset,
    batch: usize,
) -> Result<LossValue, GruError> {
    let parts = in_batches(data, batch, |b, input| engine.evaluate(input, &b.targets))?;
    Ok(merge(&parts))
}

/// Means over entries of batch values.
pub(super) fn merge(parts: &[LossValue]) -> LossValue {
    let count: usize = parts.iter().map(|v| v.count).sum();
    let loss = parts.iter().map(|v| v.loss * v.count as f64).sum::<f64>() / count.max(1) as f64;
    LossValue {
        loss,
        correct: parts.iter().map(|v| v.correct).sum(),
        count,
    }
}
