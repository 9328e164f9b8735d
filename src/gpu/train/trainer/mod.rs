//! The training step on the device, one submit: the training forward, the dense head and its
//! loss (`train_head.wgsl`), the backward, the optimizer with its clipping
//! (`optim.wgsl`, [`GpuOptimizer`]), and the refresh of the layouts the kernels read, reading
//! back only each entry's loss and hit (`2·B` floats) and the optimizer's verdict.
//!
//! The model is that of [`crate::train::ReferenceTrainer`] (its module docs), which is the
//! oracle of the tests: a GRU stack, a dense head `z = W·x + b` (`W [out, D·H]`) on the final
//! state of the last layer (directions side by side, direction 0 first) and a [`Loss`].
//!
//! # Parameters on the device
//!
//! Per layer and direction one buffer `[W (3H, K) | R (3H, H) | B (6H)]` (gate order z, r, h),
//! the layout of the backward's gradients, so that the optimizer updates each with the
//! gradient buffer of the same shape; then the head's `[W (out, D·H) | b (out)]`. After the
//! update the model's kernel layouts (`Wᵀ`, `Wb`, `Rᵀ` + `Rb`, `R` + `Rb`) are rewritten from
//! them on the device (a transpose kernel and buffer copies). With reset-before, `Rb` is
//! restored after each update (only the sum `Wb + Rb` enters the network: it is trained
//! through `Wb`, as the reference does).
//!
//! # A loss that is not finite
//!
//! Every step computes the gradients' total norm on the device; where it is not finite (the
//! head makes it so when any entry's loss is not finite) the update is skipped on the device,
//! so the parameters and the optimizer's state stay those before the step. The step then
//! returns [`GruError::NonFinite`] naming it, or, with [`GpuTrainer::set_skip_non_finite`],
//! counts it in [`GpuTrainer::skipped_steps`] and returns its loss.

mod access;
mod refresh;

use refresh::encode_refresh;

use wgpu::util::DeviceExt;

use crate::error::{GruError, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::errors::scoped;
use crate::gpu::kernels::LayoutFamily;
use crate::gpu::limits::check_binding;
use crate::gpu::model::GpuGru;
use crate::gpu::optim::GpuOptimizer;
use crate::gpu::params::{entry, HeadParams, HEAD_PARAMS};
use crate::gpu::readback::read_bytes;
use crate::input::{Dims, GruInput};
use crate::loss::{self, Loss, LossValue};
use crate::model::GruModel;
use crate::optim::{Clip, Optimizer};
use crate::shaders::Kernel;
use crate::weights::Convention;
use crate::Dtype;

use super::buffers::{to_internal_rows, to_internal_state};
use super::encode::Plan;
use super::{f32_bytes, pieces};

/// Lanes per workgroup of `train_head.wgsl`.
const HEAD_WG: u32 = 64;
/// The longest loop of `train_head.wgsl` (over entries, features or outputs): half of
/// lavapipe's 65535-trip cap (REFERENCES.md §6).
const HEAD_MAX_LOOP: usize = 32768;

/// `train_head.wgsl`'s losses.
fn loss_code(loss: Loss) -> u32 {
    match loss {
        Loss::BinaryCrossentropy => 0,
        Loss::SparseCategoricalCrossentropy => 1,
        Loss::MeanSquaredError => 2,
    }
}

/// The pipelines of `train_head.wgsl`.
struct HeadPipelines {
    forward: wgpu::ComputePipeline,
    /// `head_steps`: the per-step head.
    steps: wgpu::ComputePipeline,
    grad: wgpu::ComputePipeline,
    transpose: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    /// Bound where an entry point reads nothing (read-only slots).
    unused_read: wgpu::Buffer,
    /// Bound where an entry point writes nothing (read-write slots).
    unused_write: wgpu::Buffer,
}

/// A GRU stack with a dense head and a loss, trained on the device (module docs): the
/// parameters, their gradients and the optimizer's state stay in device buffers.
pub struct GpuTrainer {
    gru: GpuGru,
    loss: Loss,
    outputs: usize,
    optimizer: GpuOptimizer,
    /// The optimizer's rule (for its state's layout).
    optimizer_rule: Optimizer,
    /// Per layer and direction `[W | R | B]`, then the head's `[W | b]`.
    params: Vec<wgpu::Buffer>,
    /// The gradients of `params`, the same shapes.
    grads: Vec<wgpu::Buffer>,
    /// Reset-before: per layer and direction its `Rb [3H]` as given, restored after updates.
    kept_rb: Vec<wgpu::Buffer>,
    head: HeadPipelines,
    skip_non_finite: bool,
    skipped: u64,
    /// The head runs on every step's output ([`GpuTrainer::per_step_head`]).
    per_step: bool,
}

impl std::fmt::Debug for GpuTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuTrainer")
            .field("loss", &self.loss)
            .field("outputs", &self.outputs)
            .field("optimizer", &self.optimizer)
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// A storage buffer of `data` (at least 16 bytes) that copies go in and out of.
fn buffer_of(device: &wgpu::Device, label: &str, data: &[f32]) -> wgpu::Buffer {
    let mut bytes = bytemuck::cast_slice::<f32, u8>(data).to_vec();
    bytes.resize(bytes.len().max(16).next_multiple_of(16), 0);
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: &bytes,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
    })
}

/// The parameter slots of `train_head.wgsl`'s dispatches, `stride` bytes apart, in one
/// storage buffer (bound with a dynamic offset per dispatch).
fn slot_buffer(
    device: &wgpu::Device,
    label: &str,
    slots: &[HeadParams],
    stride: usize,
) -> wgpu::Buffer {
    let mut bytes = vec![0u8; slots.len().max(1) * stride];
    for (s, p) in slots.iter().enumerate() {
        bytes[s * stride..s * stride + HEAD_PARAMS].copy_from_slice(bytemuck::bytes_of(p));
    }
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: &bytes,
        usage: wgpu::BufferUsages::STORAGE,
    })
}

/// A bind group of `train_head.wgsl`: bindings 0 to 4 `bufs`, binding 5 one slot of
/// `slot_buf` (the dispatch gives its offset).
fn head_bind_group(
    device: &wgpu::Device,
    head: &HeadPipelines,
    bufs: [&wgpu::Buffer; 5],
    slot_buf: &wgpu::Buffer,
) -> wgpu::BindGroup {
    let mut entries: Vec<wgpu::BindGroupEntry<'_>> = bufs
        .iter()
        .enumerate()
        .map(|(n, b)| entry(n as u32, b.as_entire_binding()))
        .collect();
    entries.push(entry(
        5,
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: slot_buf,
            offset: 0,
            size: wgpu::BufferSize::new(HEAD_PARAMS as u64),
        }),
    ));
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("train_head bind group"),
        layout: &head.layout,
        entries: &entries,
    })
}

/// Workgroups `(x, y)` covering `n` invocations of 64 lanes within `most` per dimension.
fn groups_for(n: usize, most: u32) -> (u32, u32) {
    let groups = n.div_ceil(HEAD_WG as usize).max(1) as u64;
    let x = groups.min(most.max(1) as u64);
    (x as u32, groups.div_ceil(x) as u32)
}

impl GpuTrainer {
    /// A trainer for `model` (uploaded in `f32`) with a head `weight [out, D·H]`,
    /// `bias [out]` and `loss`, updated by `optimizer` with `clip` (as
    /// [`crate::train::ReferenceTrainer::new`]). Errors: a head whose sizes do not fit the
    /// model, a binary cross-entropy head with more than one output, bad hyperparameters, a
    /// head past the kernels' loop bound (32768 features or outputs), a device error or
    /// limit.
    pub fn new(
        ctx: &GpuContext,
        model: &GruModel,
        weight: &[f32],
        bias: &[f32],
        loss: Loss,
        optimizer: Optimizer,
        clip: Clip,
    ) -> Result<Self> {
        let h = model.hidden_size();
        let nd = model.num_directions();
        let features = nd * h;
        let out = crate::train::check_head(model, weight, bias, loss)?;
        for (what, n) in [("head features D·H", features), ("head outputs", out)] {
            if n > HEAD_MAX_LOOP {
                return Err(GruError::invalid(
                    what,
                    format!("at most {HEAD_MAX_LOOP} (the head kernel's loop bound)"),
                    n,
                ));
            }
        }
        let gru = GpuGru::from_model(ctx, model)?;
        let mut tensors: Vec<Vec<f32>> = Vec::new();
        let mut rbs: Vec<Vec<f32>> = Vec::new();
        for layer in model.layers() {
            for w in layer {
                let mut t = Vec::with_capacity(w.w().len() + w.r().len() + 6 * h);
                t.extend_from_slice(w.w());
                t.extend_from_slice(w.r());
                t.extend_from_slice(w.b());
                tensors.push(t);
                rbs.push(w.b()[3 * h..].to_vec());
            }
        }
        let mut head_t = weight.to_vec();
        head_t.extend_from_slice(bias);
        tensors.push(head_t);
        let limits = ctx.limits();
        for (i, t) in tensors.iter().enumerate() {
            check_binding(
                limits,
                format!("trainer parameter tensor {i} ({} values)", t.len()),
                f32_bytes(t.len()),
            )?;
        }
        let sizes: Vec<usize> = tensors.iter().map(|t| t.len()).collect();
        let rule = optimizer;
        let mut optimizer = GpuOptimizer::new(ctx, optimizer, clip, &sizes)?;
        optimizer.set_guard(true);
        let device = ctx.device();
        let kernels = ctx.kernels();
        let reset_before = model.convention() == Convention::ResetBefore;
        let built = scoped(ctx, "building the trainer", || {
            let params: Vec<wgpu::Buffer> = tensors
                .iter()
                .map(|t| buffer_of(device, "trainer parameters", t))
                .collect();
            let grads: Vec<wgpu::Buffer> = sizes
                .iter()
                .map(|&n| buffer_of(device, "trainer gradients", &vec![0.0; n]))
                .collect();
            let kept_rb: Vec<wgpu::Buffer> = if reset_before {
                rbs.iter()
                    .map(|rb| buffer_of(device, "reset-before Rb", rb))
                    .collect()
            } else {
                Vec::new()
            };
            let pipe = |e| kernels.pipeline(device, Kernel::TrainHead, Dtype::F32, e, &[]);
            let head = HeadPipelines {
                forward: pipe("head_forward")?.0,
                steps: pipe("head_steps")?.0,
                grad: pipe("head_grad")?.0,
                transpose: pipe("transpose")?.0,
                layout: kernels.bind_group_layout(device, LayoutFamily::TrainHead)?,
                unused_read: buffer_of(device, "unused", &[0.0; 4]),
                unused_write: buffer_of(device, "unused", &[0.0; 4]),
            };
            Ok::<_, GruError>((params, grads, kept_rb, head))
        })??;
        let (params, grads, kept_rb, head) = built;
        Ok(GpuTrainer {
            gru,
            loss,
            outputs: out,
            optimizer,
            optimizer_rule: rule,
            params,
            grads,
            kept_rb,
            head,
            skip_non_finite: false,
            skipped: 0,
            per_step: false,
        })
    }

    /// The head on every step's output of the last layer (sequence to sequence) instead of
    /// the final state, as [`crate::train::ReferenceTrainer::per_step_head`]: targets
    /// `[B, T, width]` (batch-major), the loss over the (entry, step) pairs within each
    /// entry's length, predictions `[B, T, out]`.
    pub fn per_step_head(mut self) -> Self {
        self.per_step = true;
        self
    }

    /// Whether the head runs on every step ([`GpuTrainer::per_step_head`]).
    pub fn is_per_step(&self) -> bool {
        self.per_step
    }

    /// The GRU on the device, its weights those of the last step (for inference, or to
    /// choose its kernels: training follows [`GpuGru::training_shape`]).
    pub fn gru(&mut self) -> &mut GpuGru {
        &mut self.gru
    }

    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// Optimizer steps applied (steps skipped for a non-finite loss not counted).
    pub fn steps(&self) -> u64 {
        self.optimizer.steps()
    }

    /// Steps skipped because their loss or gradients were not finite (module docs).
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// With `on`, a step whose loss or gradients are not finite is skipped (nothing
    /// changes, [`GpuTrainer::skipped_steps`] counts it) and returns its loss, instead of
    /// returning [`GruError::NonFinite`] (the default; nothing changes either).
    pub fn set_skip_non_finite(&mut self, on: bool) {
        self.skip_non_finite = on;
    }

    /// Checks a batch for a step or an evaluation: its sizes (the GRU's validation), at
    /// least one entry, finite `X`, and `targets` for the loss.
    fn check_batch(&self, input: &GruInput<'_>, targets: &[f64]) -> Result<Dims> {
        let dims = self.gru.validate(input)?;
        if dims.batch == 0 {
            return Err(GruError::invalid(
                "training batch",
                "at least one entry",
                "an empty batch",
            ));
        }
        if let Some(i) = input.x.iter().position(|v| !v.is_finite()) {
            return Err(GruError::invalid(
                format!("X value {i}"),
                "a finite number",
                input.x[i],
            ));
        }
        if self.per_step {
            // Only the counted (entry, step) pairs' targets must be valid labels.
            let k = dims.batch * dims.seq_len;
            let (_, _, counted) = crate::train::counted(
                true,
                self.loss,
                self.outputs,
                input,
                &dims,
                &vec![0.0; k],
                targets,
            )?;
            let n = counted.len() / self.target_width();
            loss::check_targets(self.loss, n, self.outputs, &counted)?;
        } else {
            loss::check_targets(self.loss, dims.batch, self.outputs, targets)?;
        }
        Ok(dims)
    }

    /// Targets per row: `out` for mean squared error, else one label.
    fn target_width(&self) -> usize {
        if self.loss == Loss::MeanSquaredError {
            self.outputs
        } else {
            1
        }
    }

    /// One training step on a batch: the loss before the update and its accuracy counts;
    /// every parameter updated by the optimizer. `targets` as [`loss::loss_and_grad`] takes
    /// them (labels `[B]`, or `[B, out]` for mean squared error). One submit; what is read
    /// back is each entry's loss and hit and the optimizer's verdict.
    ///
    /// Errors (nothing changed): the batch's sizes, an empty batch, a non-finite `X`, bad
    /// targets, more than 32768 entries (the head kernel's loop bound), a loss or gradient
    /// that is not finite ([`GruError::NonFinite`], unless
    /// [`GpuTrainer::set_skip_non_finite`]), a device error or limit.
    pub fn step(&mut self, input: &GruInput<'_>, targets: &[f64]) -> Result<LossValue> {
        let dims = self.check_batch(input, targets)?;
        let b = dims.batch;
        if b > HEAD_MAX_LOOP {
            return Err(GruError::invalid(
                "training batch",
                format!("at most {HEAD_MAX_LOOP} entries (the head kernel's loop bound)"),
                b,
            ));
        }
        let (h, i) = (dims.hidden_size, dims.input_size);
        let (nd, nl) = (dims.num_directions, dims.num_layers);
        let (out, features) = (self.outputs, nd * h);
        let per_step = self.per_step;
        let seq_len = dims.seq_len;
        let rows_per_entry = if per_step { seq_len } else { 1 };
        if rows_per_entry > HEAD_MAX_LOOP {
            return Err(GruError::invalid(
                "sequence length for a per-step head",
                format!("at most {HEAD_MAX_LOOP} steps (the head kernel's loop bound)"),
                rows_per_entry,
            ));
        }
        let rows = b * rows_per_entry;
        let work_len = rows * (features + out + 2);
        let ctx = self.gru.ctx.clone();
        check_binding(
            ctx.limits(),
            format!(
                "head work [rows={rows}, D·H + out + 2 = {}]",
                features + out + 2
            ),
            f32_bytes(work_len),
        )?;
        let lens: Vec<u32> = (0..b).map(|e| input.length(e) as u32).collect();
        // The rows that count: every entry (final state), or the steps within each length.
        let counted_rows: usize = if per_step {
            lens.iter().map(|&l| l as usize).sum()
        } else {
            b
        };
        let x = to_internal_rows(input.x, &dims, i);
        let h0 = input.initial_h.map(|h0| to_internal_state(h0, &dims));
        // The targets, then the entries' lengths (the head zeroes an entry of length 0).
        let target_f32: Vec<f32> = targets
            .iter()
            .map(|&t| t as f32)
            .chain(lens.iter().map(|&l| l as f32))
            .collect();
        self.gru.train_pipelines()?;
        let ((steps, chunk), plan_limits) = self.gru.train_pieces(&dims)?;
        let pieces = pieces(&dims, steps, chunk);
        let shape = self.gru.training_shape(b);
        let stride = plan_limits_stride(&ctx);
        let most = ctx.limits().max_compute_workgroups_per_dimension;
        let GpuTrainer {
            gru,
            optimizer,
            params,
            grads,
            kept_rb,
            head,
            loss,
            ..
        } = self;
        let gru: &GpuGru = gru;
        let pipelines = gru.built_train_pipelines()?;
        let device = ctx.device();
        let result = scoped(&ctx, "training step", || {
            let mut plan = Plan::new(gru, pipelines, &plan_limits, shape);
            let recorded =
                gru.record_train_forward(&mut plan, &dims, &pieces, &x, h0.as_deref(), &lens);
            let (chunks, tops): (Vec<super::SavedChunk>, Vec<wgpu::Buffer>) =
                recorded.into_iter().unzip();
            let head_buf = &params[params.len() - 1];
            let head_grad = &grads[grads.len() - 1];
            let targets_buf = plan.upload("targets", bytemuck::cast_slice(&target_f32));
            let work = plan.storage("head work", f32_bytes(work_len));
            // The chunks of entries, each with the state sequence of its last piece (the
            // final states) and a zeroed carry the head fills.
            let mut slots: Vec<HeadParams> = Vec::new();
            let base = HeadParams {
                features: features as u32,
                outputs: out as u32,
                hidden: h as u32,
                loss: loss_code(*loss),
                scale: (1.0 / counted_rows.max(1) as f64) as f32,
                total: b as u32,
                lens_at: targets.len() as u32,
                seq_len: rows_per_entry as u32,
                ..Default::default()
            };
            let mut carries: Vec<(usize, usize, wgpu::Buffer)> = Vec::new();
            // (slot, features source, gradient destination, invocations).
            let mut forward_groups = Vec::new();
            // Per piece `(first, t0, dY)`: the per-step head's gradient of the top layer's Y.
            let mut step_dys: Vec<(usize, usize, wgpu::Buffer)> = Vec::new();
            for (k, c) in chunks.iter().enumerate() {
                let last = chunks.get(k + 1).is_none_or(|next| next.first != c.first);
                if last {
                    let carry =
                        plan.storage("carry [L, D, B, H]", f32_bytes(nl * nd * c.batch * h));
                    if !per_step {
                        slots.push(HeadParams {
                            n: c.batch as u32,
                            first: c.first as u32,
                            steps: c.steps as u32,
                            carry_base: ((nl - 1) * nd * c.batch * h) as u32,
                            ..base
                        });
                        forward_groups.push((
                            slots.len() - 1,
                            c.layers[nl - 1].hs.clone(),
                            carry.clone(),
                            c.batch,
                        ));
                    }
                    carries.push((c.first, c.batch, carry));
                }
                if per_step {
                    let dy =
                        plan.storage("dY [T, B, D·H]", f32_bytes(c.steps * c.batch * features));
                    slots.push(HeadParams {
                        n: c.batch as u32,
                        first: c.first as u32,
                        steps: c.steps as u32,
                        t0: c.t0 as u32,
                        ..base
                    });
                    forward_groups.push((
                        slots.len() - 1,
                        tops[k].clone(),
                        dy.clone(),
                        c.steps * c.batch,
                    ));
                    step_dys.push((c.first, c.t0, dy));
                }
            }
            slots.push(base);
            let grad_slot = slots.len() - 1;
            let slot_buf = slot_buffer(device, "head params", &slots, stride);
            let group = |bufs: [&wgpu::Buffer; 5]| head_bind_group(device, head, bufs, &slot_buf);
            // The head on each chunk's final states, between the forward and the backward.
            let forward_dispatches: Vec<(wgpu::BindGroup, u32, (u32, u32))> = forward_groups
                .iter()
                .map(|(slot, source, dst, n)| {
                    let g = group([source, head_buf, &targets_buf, dst, &work]);
                    (g, (*slot * stride) as u32, groups_for(*n, most))
                })
                .collect();
            let head_forward = if per_step {
                head.steps.clone()
            } else {
                head.forward.clone()
            };
            plan.external(Box::new(move |encoder: &mut wgpu::CommandEncoder| {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("training head"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&head_forward);
                for (g, offset, (gx, gy)) in &forward_dispatches {
                    pass.set_bind_group(0, g, &[*offset]);
                    pass.dispatch_workgroups(*gx, *gy, 1);
                }
            }));
            // The backward: dY = 0 and dY_h the head's carries, or (per step) dY the head's
            // and the carries zero.
            let outs: Vec<Vec<wgpu::Buffer>> = (0..nl)
                .map(|l| grads[l * nd..(l + 1) * nd].to_vec())
                .collect();
            let mut dy_for = |plan: &Plan<'_>, c: &super::SavedChunk| {
                step_dys
                    .iter()
                    .find(|(first, t0, _)| *first == c.first && *t0 == c.t0)
                    .map(|(_, _, dy)| dy.clone())
                    .unwrap_or_else(|| {
                        plan.storage("dY = 0", f32_bytes(c.steps * c.batch * nd * h))
                    })
            };
            let mut carry_for = |_: &Plan<'_>, b0: usize, _: usize| {
                carries
                    .iter()
                    .find(|(first, _, _)| *first == b0)
                    .map(|(_, _, c)| c.clone())
                    .unwrap_or_else(|| head.unused_write.clone())
            };
            gru.record_backward(
                &mut plan,
                &dims,
                &chunks,
                &mut dy_for,
                &mut carry_for,
                &outs,
            );
            let mut encoder = plan.encode(device, "gru training step");
            // The head's gradients, then the optimizer over every tensor.
            {
                let g = group([
                    &head.unused_read,
                    &head.unused_read,
                    &head.unused_read,
                    head_grad,
                    &work,
                ]);
                let (gx, gy) = groups_for(out * (features + 1), most);
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("head gradients"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&head.grad);
                pass.set_bind_group(0, &g, &[(grad_slot * stride) as u32]);
                pass.dispatch_workgroups(gx, gy, 1);
            }
            let param_refs: Vec<&wgpu::Buffer> = params.iter().collect();
            let grad_refs: Vec<&wgpu::Buffer> = grads.iter().collect();
            optimizer.encode(&mut encoder, &param_refs, &grad_refs)?;
            // Reset-before: Rb as it was (the sum Wb + Rb trains through Wb).
            for (l_d, rb) in kept_rb.iter().enumerate() {
                let k = if l_d < nd { i } else { nd * h };
                let at = f32_bytes(3 * h * k + 3 * h * h + 3 * h);
                encoder.copy_buffer_to_buffer(rb, 0, &params[l_d], at, f32_bytes(3 * h));
            }
            // The kernels' layouts from the parameters.
            encode_refresh(device, &mut encoder, gru, params, head, stride, most);
            let metrics_bytes = f32_bytes(2 * rows);
            let readback = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("training step metrics readback"),
                size: (metrics_bytes + 4).next_multiple_of(16),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            encoder.copy_buffer_to_buffer(
                &work,
                f32_bytes(rows * (features + out)),
                &readback,
                0,
                metrics_bytes,
            );
            let (aux, at) = optimizer.verdict();
            encoder.copy_buffer_to_buffer(aux, at, &readback, metrics_bytes, 4);
            let submission = ctx.queue().submit([encoder.finish()]);
            Ok::<_, GruError>((submission, readback))
        })??;
        let (submission, readback) = result;
        let data = read_bytes(&ctx, &readback, submission)?;
        ctx.check_lost()?;
        let values: &[f32] = bytemuck::cast_slice(&data);
        let mut total = 0.0f64;
        let mut correct = 0usize;
        // Rows that do not count hold 0 and 0.
        for r in 0..rows {
            total += values[2 * r] as f64;
            correct += (values[2 * r + 1] != 0.0) as usize;
        }
        let value = LossValue {
            loss: total / counted_rows.max(1) as f64,
            correct: if self.loss == Loss::MeanSquaredError {
                0
            } else {
                correct
            },
            count: counted_rows,
        };
        if values[2 * rows] != 0.0 {
            // The guard skipped the update on the device.
            self.optimizer.uncount_step();
            if !self.skip_non_finite {
                return Err(crate::train::non_finite(
                    self.optimizer.steps() + 1,
                    value.loss,
                ));
            }
            self.skipped += 1;
        }
        self.gru.stats.forwards += 1;
        Ok(value)
    }
}

/// The byte stride of one parameter slot: one [`HeadParams`] rounded up to the device's
/// storage offset alignment.
fn plan_limits_stride(ctx: &GpuContext) -> usize {
    HEAD_PARAMS.next_multiple_of(ctx.limits().min_storage_buffer_offset_alignment as usize)
}
