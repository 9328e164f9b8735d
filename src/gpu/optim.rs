//! The optimizer step on the device (`shaders/optim.wgsl`): gradient clipping and the update
//! of each parameter tensor in place, the optimizer's state in device buffers, one submit
//! per step and nothing read back. The rules, their defaults and clipping are those of
//! [`crate::optim`] (its `f64` reference is what the tests check this against), in `f32`.

use wgpu::util::DeviceExt;

use crate::error::{GruError, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::errors::scoped;
use crate::gpu::kernels::LayoutFamily;
use crate::gpu::limits::{check_binding, check_limit};
use crate::gpu::params::{entry, OptimParams, OPTIM_PARAMS};
use crate::gpu::readback::{read_bytes, read_f32_buffers};
use crate::optim::{Clip, Optimizer};
use crate::shaders::Kernel;
use crate::Dtype;

/// Lanes per workgroup of `optim.wgsl`.
const WG: usize = 256;
/// Most partial sums of squares per tensor (the norm's first pass).
const MAX_PARTIALS: usize = 256;

// `optim.wgsl`'s rules and flags.
const KIND_SGD: u32 = 0;
const KIND_RMSPROP: u32 = 1;
const KIND_ADAM: u32 = 2;
const KIND_ADAMW: u32 = 3;
const FLAG_NESTEROV: u32 = 1;
const FLAG_CENTERED: u32 = 2;
const FLAG_MOMENTUM: u32 = 4;
const FLAG_FIRST: u32 = 8;
const FLAG_CLIP_VALUE: u32 = 16;
const FLAG_CLIP_NORM: u32 = 32;
const FLAG_GUARD: u32 = 64;

/// `f32` tensors resident on the device, each in a storage buffer of its own: parameters or
/// gradients for [`GpuOptimizer::step`].
pub struct DeviceTensors {
    ctx: GpuContext,
    buffers: Vec<wgpu::Buffer>,
    sizes: Vec<usize>,
}

impl std::fmt::Debug for DeviceTensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceTensors")
            .field("sizes", &self.sizes)
            .finish()
    }
}

impl DeviceTensors {
    /// Uploads `tensors` (each a flat `f32` array). A tensor past the device's storage
    /// binding limit is a [`GruError::DeviceLimit`].
    pub fn upload(ctx: &GpuContext, tensors: &[&[f32]]) -> Result<Self> {
        for (i, t) in tensors.iter().enumerate() {
            check_binding(
                ctx.limits(),
                format!("tensor {i} ({} values)", t.len()),
                4 * t.len() as u64,
            )?;
        }
        let device = ctx.device();
        let buffers = scoped(ctx, "uploading tensors", || {
            tensors
                .iter()
                .map(|t| {
                    let mut bytes = bytemuck::cast_slice::<f32, u8>(t).to_vec();
                    bytes.resize(bytes.len().max(16), 0);
                    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("device tensor"),
                        contents: &bytes,
                        usage: wgpu::BufferUsages::STORAGE
                            | wgpu::BufferUsages::COPY_SRC
                            | wgpu::BufferUsages::COPY_DST,
                    })
                })
                .collect::<Vec<_>>()
        })?;
        Ok(DeviceTensors {
            ctx: ctx.clone(),
            buffers,
            sizes: tensors.iter().map(|t| t.len()).collect(),
        })
    }

    /// Each tensor's number of values.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Reads every tensor back (one submit).
    pub fn read(&self) -> Result<Vec<Vec<f32>>> {
        let buffers: Vec<(&wgpu::Buffer, usize)> = self
            .buffers
            .iter()
            .zip(self.sizes.iter().copied())
            .collect();
        read_f32_buffers(&self.ctx, "reading tensors", &buffers)
    }
}

/// An optimizer over a fixed list of parameter tensors on the device: its rule and clipping
/// ([`crate::optim`]), the step count, and per tensor its state
/// ([`Optimizer::state_tensors`] arrays of the tensor's size, zero at first).
pub struct GpuOptimizer {
    ctx: GpuContext,
    optimizer: Optimizer,
    clip: Clip,
    sizes: Vec<usize>,
    step: u64,
    state: Vec<wgpu::Buffer>,
    /// Partial sums of squares, then the norm, the clip factor and the guard's verdict.
    aux: wgpu::Buffer,
    /// Skip a step whose gradients' norm is not finite ([`GpuOptimizer::set_guard`]).
    guard: bool,
    /// Per tensor: its first partial in `aux` and how many.
    partials: Vec<(usize, usize)>,
    pipelines: [wgpu::ComputePipeline; 3],
    layout: wgpu::BindGroupLayout,
    stride: u64,
}

impl std::fmt::Debug for GpuOptimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuOptimizer")
            .field("optimizer", &self.optimizer)
            .field("clip", &self.clip)
            .field("sizes", &self.sizes)
            .field("step", &self.step)
            .finish()
    }
}

impl GpuOptimizer {
    /// A fresh optimizer for parameter tensors of `sizes` values: validated hyperparameters
    /// ([`Optimizer::validate`], [`Clip::validate`]), zeroed state on the device.
    pub fn new(
        ctx: &GpuContext,
        optimizer: Optimizer,
        clip: Clip,
        sizes: &[usize],
    ) -> Result<Self> {
        optimizer.validate()?;
        clip.validate()?;
        let limits = ctx.limits();
        let kinds = optimizer.state_tensors();
        for (i, &n) in sizes.iter().enumerate() {
            check_binding(
                limits,
                format!("optimizer state of tensor {i} ({kinds} × {n} values)"),
                4 * (kinds * n) as u64,
            )?;
        }
        let mut partials = Vec::with_capacity(sizes.len());
        let mut total = 0;
        for &n in sizes {
            let groups = n.div_ceil(4 * WG).clamp(1, MAX_PARTIALS);
            partials.push((total, groups));
            total += groups;
        }
        let device = ctx.device();
        let kernels = ctx.kernels();
        let (state, aux, pipelines, layout) = scoped(ctx, "building the optimizer", || {
            let state = sizes
                .iter()
                .map(|&n| {
                    device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("optimizer state"),
                        size: (4 * (kinds * n) as u64).max(16),
                        usage: wgpu::BufferUsages::STORAGE
                            | wgpu::BufferUsages::COPY_SRC
                            | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                })
                .collect::<Vec<_>>();
            let aux = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("optimizer partial sums, norm and clip factor"),
                size: 4 * (total as u64 + 3),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let pipe = |e| kernels.pipeline(device, Kernel::Optim, Dtype::F32, e, &[]);
            let pipelines = [
                pipe("sum_squares")?.0,
                pipe("norm_scale")?.0,
                pipe("update")?.0,
            ];
            let layout = kernels.bind_group_layout(device, LayoutFamily::Optim)?;
            Ok::<_, GruError>((state, aux, pipelines, layout))
        })??;
        let stride = (OPTIM_PARAMS as u64)
            .next_multiple_of(limits.min_storage_buffer_offset_alignment as u64);
        Ok(GpuOptimizer {
            ctx: ctx.clone(),
            optimizer,
            clip,
            sizes: sizes.to_vec(),
            step: 0,
            state,
            aux,
            guard: false,
            partials,
            pipelines,
            layout,
            stride,
        })
    }

    /// The optimizer's state per tensor, `[kinds · n]` ([`Optimizer::state_tensors`] arrays
    /// one after the other, as [`crate::optim::OptimizerState::state`]): one readback.
    pub fn read_state(&self) -> Result<Vec<Vec<f32>>> {
        let kinds = self.optimizer.state_tensors();
        let buffers: Vec<(&wgpu::Buffer, usize)> = self
            .state
            .iter()
            .zip(&self.sizes)
            .map(|(b, &n)| (b, kinds * n))
            .collect();
        read_f32_buffers(&self.ctx, "reading the optimizer state", &buffers)
    }

    /// Restores a [`GpuOptimizer::read_state`] and the step count (a checkpoint's). Errors
    /// (nothing changed): tensors or sizes that do not match.
    pub fn restore(&mut self, state: &[Vec<f32>], steps: u64) -> Result<()> {
        let kinds = self.optimizer.state_tensors();
        crate::optim::check_state_sizes(&self.sizes, kinds, state.iter().map(Vec::len))?;
        for (b, s) in self.state.iter().zip(state) {
            if !s.is_empty() {
                self.ctx.queue().write_buffer(b, 0, bytemuck::cast_slice(s));
            }
        }
        self.step = steps;
        self.ctx.check_lost()
    }

    /// Each parameter tensor's number of values.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One optimizer step: clips `grads` as the [`Clip`] says (they are not modified), then
    /// updates `params` in place; one submit, nothing read back. Both must have the tensors
    /// and sizes of [`GpuOptimizer::new`] and come from this optimizer's context (typed
    /// errors otherwise, nothing changed).
    pub fn step(&mut self, params: &mut DeviceTensors, grads: &DeviceTensors) -> Result<()> {
        for (what, t) in [("parameters", &*params), ("gradients", grads)] {
            if t.sizes != self.sizes {
                return Err(GruError::invalid(
                    what,
                    format!("tensors of {:?} values", self.sizes),
                    format!("{:?}", t.sizes),
                ));
            }
            if !t.ctx.same_device(&self.ctx) {
                return Err(GruError::invalid(
                    what,
                    "tensors on the optimizer's device",
                    "tensors of another context",
                ));
            }
        }
        let params: Vec<&wgpu::Buffer> = params.buffers.iter().collect();
        let grads: Vec<&wgpu::Buffer> = grads.buffers.iter().collect();
        let ctx = self.ctx.clone();
        let device = ctx.device();
        scoped(&ctx, "optimizer step", || {
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("optimizer step"),
            });
            self.encode(&mut encoder, &params, &grads)?;
            ctx.queue().submit([encoder.finish()]);
            Ok::<_, GruError>(())
        })??;
        ctx.check_lost()
    }

    /// The gradients' total norm `√Σg²` at the last step, when clipping by norm (which
    /// computes it; `None` otherwise or before the first step). One readback.
    pub fn last_norm(&self) -> Result<Option<f32>> {
        if self.step == 0 || !matches!(self.clip, Clip::Norm(_)) {
            return Ok(None);
        }
        let ctx = &self.ctx;
        let device = ctx.device();
        let at = 4 * self.partials_total() as u64;
        let (submission, readback) = scoped(ctx, "reading the gradient norm", || {
            let readback = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("gradient norm readback"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(&self.aux, at, &readback, 0, 4);
            (ctx.queue().submit([encoder.finish()]), readback)
        })?;
        let bytes = read_bytes(ctx, &readback, submission)?;
        Ok(Some(bytemuck::cast_slice::<u8, f32>(&bytes[..4])[0]))
    }

    /// With `on`, every step also computes the gradients' total norm and, where it is not
    /// finite (a NaN or infinity in any gradient, or a sum of squares past `f32`), changes
    /// nothing: neither the parameters nor the optimizer's state. The step still counts until
    /// [`GpuOptimizer::uncount_step`]; the verdict is at [`GpuOptimizer::verdict`].
    pub(crate) fn set_guard(&mut self, on: bool) {
        self.guard = on;
    }

    /// The buffer and byte offset of the guard's verdict of the last step: an `f32`, 1 where
    /// the step was skipped, 0 where it ran.
    pub(crate) fn verdict(&self) -> (&wgpu::Buffer, u64) {
        (&self.aux, 4 * (self.partials_total() as u64 + 2))
    }

    /// Takes back the count of a step the guard skipped (the next step runs as this one
    /// would have: the same bias corrections, SGD's momentum still starting from it).
    pub(crate) fn uncount_step(&mut self) {
        self.step = self.step.saturating_sub(1);
    }

    fn partials_total(&self) -> usize {
        self.partials.last().map_or(0, |&(base, n)| base + n)
    }

    /// Records one step into `encoder`: with clipping by norm, the sums of squares of every
    /// tensor and the factor, then each tensor's update. Advances the step count.
    pub(crate) fn encode(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        params: &[&wgpu::Buffer],
        grads: &[&wgpu::Buffer],
    ) -> Result<()> {
        let device = self.ctx.device();
        let limits = self.ctx.limits();
        let most = limits.max_compute_workgroups_per_dimension.max(1) as usize;
        let t = (self.step + 1) as f64;
        let base = self.base_params(t);
        let scale_at = self.partials_total();
        let by_norm = matches!(self.clip, Clip::Norm(_)) || self.guard;
        // Slots: per tensor its sums of squares and its update, then the factor.
        let mut slots: Vec<OptimParams> = Vec::new();
        let mut dispatches: Vec<(usize, usize, usize, u32)> = Vec::new(); // (pipeline, tensor, slot, groups)
        if by_norm {
            for (i, (&n, &(first, groups))) in self.sizes.iter().zip(&self.partials).enumerate() {
                slots.push(OptimParams {
                    n: n as u32,
                    partial_base: first as u32,
                    ..base
                });
                dispatches.push((0, i, slots.len() - 1, groups.min(most) as u32));
            }
            slots.push(OptimParams {
                partials: scale_at as u32,
                scale_at: scale_at as u32,
                ..base
            });
            dispatches.push((1, 0, slots.len() - 1, 1));
        }
        for (i, &n) in self.sizes.iter().enumerate() {
            if n == 0 {
                continue;
            }
            slots.push(OptimParams {
                n: n as u32,
                scale_at: scale_at as u32,
                ..base
            });
            dispatches.push((2, i, slots.len() - 1, n.div_ceil(WG).min(most) as u32));
        }
        check_limit(
            "optimizer parameter slots",
            "max_storage_buffer_binding_size",
            slots.len() as u64 * self.stride,
            limits.max_storage_buffer_binding_size,
        )?;
        let mut bytes = vec![0u8; slots.len().max(1) * self.stride as usize];
        for (k, p) in slots.iter().enumerate() {
            let at = k * self.stride as usize;
            bytes[at..at + OPTIM_PARAMS].copy_from_slice(bytemuck::bytes_of(p));
        }
        let slot_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("optimizer params"),
            contents: &bytes,
            usage: wgpu::BufferUsages::STORAGE,
        });
        let groups: Vec<wgpu::BindGroup> = (0..self.sizes.len())
            .map(|i| {
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("optim bind group"),
                    layout: &self.layout,
                    entries: &[
                        entry(0, params[i].as_entire_binding()),
                        entry(1, grads[i].as_entire_binding()),
                        entry(2, self.state[i].as_entire_binding()),
                        entry(3, self.aux.as_entire_binding()),
                        entry(
                            4,
                            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: &slot_buf,
                                offset: 0,
                                size: wgpu::BufferSize::new(OPTIM_PARAMS as u64),
                            }),
                        ),
                    ],
                })
            })
            .collect();
        if !groups.is_empty() {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("optimizer step"),
                timestamp_writes: None,
            });
            for (pipeline, tensor, slot, n_groups) in dispatches {
                pass.set_pipeline(&self.pipelines[pipeline]);
                pass.set_bind_group(0, &groups[tensor], &[(slot as u64 * self.stride) as u32]);
                pass.dispatch_workgroups(n_groups, 1, 1);
            }
        }
        self.step += 1;
        Ok(())
    }

    /// The kernel parameters every dispatch of step `t` shares.
    fn base_params(&self, t: f64) -> OptimParams {
        let mut p = OptimParams::default();
        let flag = |on: bool, bit: u32| if on { bit } else { 0 };
        p.flags = flag(t == 1.0, FLAG_FIRST) | flag(self.guard, FLAG_GUARD);
        match self.clip {
            Clip::None => {}
            Clip::Norm(v) => {
                p.flags |= FLAG_CLIP_NORM;
                p.clip = v as f32;
            }
            Clip::Value(v) => {
                p.flags |= FLAG_CLIP_VALUE;
                p.clip = v as f32;
            }
        }
        match self.optimizer {
            Optimizer::Sgd {
                lr,
                momentum,
                dampening,
                nesterov,
                weight_decay,
            } => {
                p.kind = KIND_SGD;
                p.flags |= flag(nesterov, FLAG_NESTEROV) | flag(momentum != 0.0, FLAG_MOMENTUM);
                (p.lr, p.a, p.b, p.c) = (
                    lr as f32,
                    momentum as f32,
                    dampening as f32,
                    weight_decay as f32,
                );
            }
            Optimizer::RmsProp {
                lr,
                rho,
                epsilon,
                momentum,
                centered,
            } => {
                p.kind = KIND_RMSPROP;
                p.flags |= flag(centered, FLAG_CENTERED) | flag(momentum > 0.0, FLAG_MOMENTUM);
                (p.lr, p.a, p.b, p.c) = (lr as f32, rho as f32, epsilon as f32, momentum as f32);
            }
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            }
            | Optimizer::AdamW {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                p.kind = if matches!(self.optimizer, Optimizer::Adam { .. }) {
                    KIND_ADAM
                } else {
                    KIND_ADAMW
                };
                (p.lr, p.a, p.b, p.c, p.d) = (
                    lr as f32,
                    beta1 as f32,
                    beta2 as f32,
                    eps as f32,
                    weight_decay as f32,
                );
                // As PyTorch (not capturable): the bias corrections in float64 on the host.
                p.step_size = (lr / (1.0 - beta1.powf(t))) as f32;
                p.bc2_sqrt = (1.0 - beta2.powf(t)).sqrt() as f32;
            }
        }
        p
    }
}
