//! The trainer `--device` chose ([`Trainer`]: [`GpuTrainer`] or [`ReferenceTrainer`]), built
//! from the flags; the stepping and batching are the library's ([`gru_wgpu::fit`]).

use gru_wgpu::gpu::{GpuContext, GpuTrainer};
use gru_wgpu::loss::Loss;
use gru_wgpu::optim::{Clip, Optimizer};
use gru_wgpu::train::ReferenceTrainer;
use gru_wgpu::GruModel;

pub(super) use gru_wgpu::fit::{evaluate_all, in_batches, merge, Trainer as Engine};

use crate::args::DeviceChoice;
use crate::{on_device, CliResult, GpuFailure};

/// What a trainer starts from.
pub(super) struct Start {
    pub(super) model: GruModel,
    pub(super) weight: Vec<f32>,
    pub(super) bias: Vec<f32>,
}

/// The trainer `device` chooses, starting from `start`, and the place it runs on.
pub(super) fn new_engine(
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
