//! The trainer's parameters and predictions on the host: the head's outputs and loss on a
//! batch, the parameters and the optimizer's state read back (and restored from a
//! checkpoint), and the network as a [`GruModel`].

use crate::error::{GruError, Result};
use crate::gpu::errors::scoped;
use crate::gpu::readback::read_f32_buffers;
use crate::input::GruInput;
use crate::loss::{self, LossValue};
use crate::model::GruModel;
use crate::train::TrainerState;

use super::refresh::encode_refresh;
use super::{plan_limits_stride, GpuTrainer};

impl GpuTrainer {
    /// The head's outputs on a batch: `[B, out]`, after the loss's activation (sigmoid for
    /// binary cross-entropy, softmax for categorical, identity for mean squared error), from
    /// the GRU's inference forward on the device. Errors as [`GpuGru::forward`](crate::gpu::GpuGru::forward), and a
    /// non-finite `X`.
    pub fn predict(&mut self, input: &GruInput<'_>) -> Result<Vec<f32>> {
        let z = self.logits(input)?;
        let p = loss::activate(self.loss, &z, self.outputs);
        Ok(p.iter().map(|&v| v as f32).collect())
    }

    /// The loss and accuracy on a batch without training (the GRU's inference forward on
    /// the device, the head in `f64` on the host). Errors as [`GpuTrainer::step`]'s checks.
    pub fn evaluate(&mut self, input: &GruInput<'_>, targets: &[f64]) -> Result<LossValue> {
        let dims = self.check_batch(input, targets)?;
        let z = self.logits(input)?;
        // The counted rows' logits (every entry's, or per step those within the lengths).
        let (_, zv, tv) = crate::train::counted(
            self.per_step,
            self.loss,
            self.outputs,
            input,
            &dims,
            &z,
            targets,
        )?;
        Ok(loss::loss_and_grad(self.loss, &zv, self.outputs, &tv)?.0)
    }

    /// The head's logits `[B, out]` (per step `[B, T, out]`; in `f64`) on the GRU's forward.
    fn logits(&mut self, input: &GruInput<'_>) -> Result<Vec<f64>> {
        if let Some(i) = input.x.iter().position(|v| !v.is_finite()) {
            return Err(GruError::invalid(
                format!("X value {i}"),
                "a finite number",
                input.x[i],
            ));
        }
        let output = self.gru.forward(input)?;
        let features = crate::train::head_rows(&output, self.per_step)?;
        let head = self.read(&[self.params.len() - 1])?.remove(0);
        let out = self.outputs;
        let k = head.len() / out - 1;
        let w: Vec<f64> = head[..out * k].iter().map(|&v| v as f64).collect();
        let b: Vec<f64> = head[out * k..].iter().map(|&v| v as f64).collect();
        Ok(loss::dense(&w, &b, &features, k))
    }

    /// Reads the parameter tensors `which` (indices into the device's list) back, one submit.
    fn read(&self, which: &[usize]) -> Result<Vec<Vec<f32>>> {
        let sizes = self.optimizer.sizes();
        let buffers: Vec<(&wgpu::Buffer, usize)> =
            which.iter().map(|&t| (&self.params[t], sizes[t])).collect();
        read_f32_buffers(&self.gru.ctx, "reading the trainer's parameters", &buffers)
    }

    /// The parameters as they are now, in [`crate::train::ReferenceTrainer::parameters`]'s
    /// order: per layer and direction `W [3H, K]`, `R [3H, H]`, `B [6H]` (gate order z, r,
    /// h), then the head's weight `[out, D·H]` and bias `[out]`. One readback.
    pub fn parameters(&self) -> Result<Vec<Vec<f32>>> {
        let all: Vec<usize> = (0..self.params.len()).collect();
        let tensors = self.read(&all)?;
        let h = self.gru.hidden_size;
        let mut out = Vec::with_capacity(3 * tensors.len());
        let (last, layers) = tensors.split_last().unwrap_or((&tensors[0], &[]));
        for t in layers {
            let k = (t.len() - 3 * h * h - 6 * h) / (3 * h);
            let (w, rest) = t.split_at(3 * h * k);
            let (r, b) = rest.split_at(3 * h * h);
            out.extend([w.to_vec(), r.to_vec(), b.to_vec()]);
        }
        let (w, b) = last.split_at(last.len() - self.outputs);
        out.extend([w.to_vec(), b.to_vec()]);
        Ok(out)
    }

    /// The parameters, the optimizer's state and its step count, in the reference's layout
    /// ([`TrainerState`]: `W`, `R`, `B` as separate tensors; widened to `f64`). Two
    /// readbacks.
    pub fn state(&self) -> Result<TrainerState> {
        let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let params: Vec<Vec<f64>> = self.parameters()?.iter().map(|p| wide(p)).collect();
        let device_state = self.optimizer.read_state()?;
        let kinds = self.optimizer_kinds();
        let mut optimizer = Vec::with_capacity(params.len());
        let mut at = 0;
        for s in &device_state {
            // One device tensor is [W | R | B] (a layer and direction) or the head [W | b]:
            // split each kind's run into the reference's tensors.
            let parts = if at + 2 == params.len() { 2 } else { 3 };
            let lens: Vec<usize> = params[at..at + parts].iter().map(Vec::len).collect();
            let n: usize = lens.iter().sum();
            let mut offset = 0;
            for &len in &lens {
                let mut t = Vec::with_capacity(kinds * len);
                for k in 0..kinds {
                    t.extend(wide(&s[k * n + offset..k * n + offset + len]));
                }
                optimizer.push(t);
                offset += len;
            }
            at += parts;
        }
        Ok(TrainerState {
            params,
            optimizer,
            steps: self.optimizer.steps(),
        })
    }

    /// Goes on from `state` (a checkpoint's, from this trainer's [`GpuTrainer::state`] or the
    /// reference's): uploads the parameters (rounded to `f32`) and the optimizer's state,
    /// rewrites the kernels' layouts, sets the step count. Errors (nothing changed on the
    /// host side): tensors or sizes that do not match.
    pub fn restore(&mut self, state: &TrainerState) -> Result<()> {
        let current = self.parameters()?;
        let sizes: Vec<usize> = current.iter().map(Vec::len).collect();
        let given: Vec<usize> = state.params.iter().map(Vec::len).collect();
        let kinds = self.optimizer_kinds();
        let opt_given: Vec<usize> = state.optimizer.iter().map(Vec::len).collect();
        let opt_want: Vec<usize> = sizes.iter().map(|&n| kinds * n).collect();
        if sizes != given || opt_given != opt_want {
            return Err(GruError::invalid(
                "trainer state to restore",
                format!("parameters of {sizes:?} values and optimizer state of {opt_want:?}"),
                format!("{given:?} and {opt_given:?}"),
            ));
        }
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        // Join the reference's tensors into the device's: per layer and direction [W | R | B],
        // then the head; the optimizer state kind by kind.
        let mut device_params = Vec::with_capacity(self.params.len());
        let mut device_state = Vec::with_capacity(self.params.len());
        let mut at = 0;
        while at < state.params.len() {
            let parts = if at + 2 == state.params.len() { 2 } else { 3 };
            let group = &state.params[at..at + parts];
            device_params.push(f32s(&group.concat()));
            let mut s = Vec::new();
            for k in 0..kinds {
                for (t, p) in state.optimizer[at..at + parts].iter().zip(group) {
                    s.extend(f32s(&t[k * p.len()..(k + 1) * p.len()]));
                }
            }
            device_state.push(s);
            at += parts;
        }
        let ctx = self.gru.ctx.clone();
        for (b, p) in self.params.iter().zip(&device_params) {
            ctx.queue().write_buffer(b, 0, bytemuck::cast_slice(p));
        }
        self.optimizer.restore(&device_state, state.steps)?;
        let stride = plan_limits_stride(&ctx);
        let most = ctx.limits().max_compute_workgroups_per_dimension;
        let device = ctx.device();
        scoped(&ctx, "restoring the trainer", || {
            let mut encoder = device.create_command_encoder(&Default::default());
            encode_refresh(
                device,
                &mut encoder,
                &self.gru,
                &self.params,
                &self.head,
                stride,
                most,
            );
            ctx.queue().submit([encoder.finish()]);
        })?;
        ctx.check_lost()
    }

    /// The optimizer's state arrays per parameter.
    fn optimizer_kinds(&self) -> usize {
        self.optimizer_rule.state_tensors()
    }

    /// The GRU as it is now, on the host (its weights read back): what `--out` writes.
    pub fn model(&self) -> Result<GruModel> {
        let g = &self.gru;
        crate::train::model_from_parameters(
            g.convention,
            g.direction,
            g.clip,
            g.input_size,
            g.hidden_size,
            &self.parameters()?,
        )
    }
}
