//! A GRU network resident on the GPU: weights uploaded once, pipelines built once, scratch
//! buffers and bind groups kept between forwards of the same shape.

use crate::dtype::Dtype;
use crate::error::{GruError, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::errors::scoped_async;
use crate::gpu::kernels::{
    GEMM_TILE, MAX_HIDDEN, PERSISTENT_LOOP_BUDGET, PERSISTENT_MAX_HIDDEN,
    PERSISTENT_WORKGROUP_BYTES, SPLIT_WORKGROUP_BYTES, STEP_STORAGE_BUFFERS, STEP_WG,
};
use crate::gpu::limits::{self, check_limit};
use crate::gpu::params::PARAMS_SLOT;
use crate::gpu::path::{
    auto_gemm_kernel, auto_kernel_path, auto_step_kernel, GemmKernel, KernelPath, Recurrence,
    StepKernel, StepStructure,
};
use crate::gpu::pipelines::ModelPipelines;
use crate::gpu::readback::{read_prefix_async, Drive};
use crate::gpu::scratch::{Scratch, ShapeKey};
use crate::gpu::timestamps::ForwardTiming;
use crate::gpu::weights::{check_weights, upload_layers, LayerWeights};
use crate::input::{Dims, GruInput, GruOutput};
use crate::model::{Direction, GruModel, ModelView};
use crate::weights::Convention;

/// Counters that show what a model has built (tests use them to prove reuse).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Compute pipelines building this model created: misses of the context's kernel cache
    /// (0 when a model of the same storage type, hidden size and convention was built on the
    /// context before; see [`GpuContext::kernel_stats`]). Forwards create none.
    pub pipelines_created: usize,
    /// Times the per-shape scratch buffers were (re)allocated.
    pub scratch_allocations: usize,
    /// Forward passes run.
    pub forwards: usize,
    /// Forwards run in pieces because the problem exceeded a device limit.
    pub split_forwards: usize,
}

/// How [`GpuGru::from_model_with`] builds a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelOptions {
    /// Storage type of weights and activations ([`Dtype::F32`] by default).
    pub dtype: Dtype,
    /// With [`Dtype::F16`] on a device without `SHADER_F16`: build an f32 model instead of
    /// failing ([`GpuGru::dtype`] and [`GpuGru::fallback`] say so).
    pub allow_f32_fallback: bool,
}

/// A GRU network whose weights live on the GPU.
///
/// Shapes are those of [`crate::cpu::forward_model`] (see [`crate::input`]); gate order
/// z, r, h. A forward is one command encoder and one submit. Per layer: one GEMM (split
/// into a few dispatches only past device limits) for the input projection of every step and
/// both directions, then per step one fused dispatch (reset-after) or two (reset-before) that
/// run both directions side by side; then one readback of `Y` and `Y_h`.
pub struct GpuGru {
    pub(super) ctx: GpuContext,
    pub(super) dtype: Dtype,
    pub(super) fallback: Option<String>,
    pub(super) convention: Convention,
    pub(super) direction: Direction,
    pub(super) input_size: usize,
    pub(super) hidden_size: usize,
    pub(super) clip: Option<f32>,
    pub(super) layers: Vec<LayerWeights>,
    pub(super) pipelines: ModelPipelines,
    pub(super) gemm_choice: Option<GemmKernel>,
    pub(super) step_choice: Option<StepKernel>,
    pub(super) path: Option<KernelPath>,
    pub(super) uniform_stride: u32,
    pub(super) scratch: Option<Scratch>,
    pub(super) poison: Option<f32>,
    pub(super) profiling: bool,
    pub(super) timing: Option<ForwardTiming>,
    pub(super) encode: std::time::Duration,
    pub(super) stats: ModelStats,
    /// The training pipelines, built by the first training call.
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) train: Option<crate::gpu::train::TrainPipelines>,
    /// This model's identity (a training forward's [`crate::gpu::Saved`] names it).
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) model_id: u64,
}

impl std::fmt::Debug for GpuGru {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuGru")
            .field("adapter", &self.ctx.adapter_info().name)
            .field("dtype", &self.dtype)
            .field("convention", &self.convention)
            .field("direction", &self.direction)
            .field("layers", &self.layers.len())
            .field("input_size", &self.input_size)
            .field("hidden_size", &self.hidden_size)
            .field("stats", &self.stats)
            .finish()
    }
}

impl GpuGru {
    /// Uploads one forward layer to the device of `ctx` and builds the pipelines.
    ///
    /// Errors when the weights do not fit the device's limits, when `H` exceeds
    /// [`MAX_HIDDEN`], or when the device reports an error while building.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(ctx: &GpuContext, weights: &crate::weights::GruWeights) -> Result<Self> {
        pollster::block_on(Self::build(
            ctx,
            &ModelView::single(weights),
            &ModelOptions::default(),
        ))
    }

    /// Uploads a whole network (layers, directions, clip) to the device of `ctx`, in f32.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_model(ctx: &GpuContext, model: &GruModel) -> Result<Self> {
        pollster::block_on(Self::build(ctx, &model.view(), &ModelOptions::default()))
    }

    /// Uploads a whole network with `options` (e.g. f16 storage: [`Dtype::F16`]).
    ///
    /// Errors as [`GpuGru::from_model`], and [`GruError::MissingFeature`] for f16 on a device
    /// without `SHADER_F16` unless `options.allow_f32_fallback`. Blocks (native targets);
    /// [`GpuGru::from_model_async`] awaits.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_model_with(
        ctx: &GpuContext,
        model: &GruModel,
        options: &ModelOptions,
    ) -> Result<Self> {
        pollster::block_on(Self::build(ctx, &model.view(), options))
    }

    /// The async form of [`GpuGru::from_model_with`] (the only form on the web): resolves
    /// once the device has reported on the upload and the pipelines (in a browser, shader
    /// compilation errors arrive asynchronously).
    pub async fn from_model_async(
        ctx: &GpuContext,
        model: &GruModel,
        options: &ModelOptions,
    ) -> Result<Self> {
        Self::build(ctx, &model.view(), options).await
    }

    async fn build(
        ctx: &GpuContext,
        model: &ModelView<'_>,
        options: &ModelOptions,
    ) -> Result<Self> {
        let mut dtype = options.dtype;
        let mut fallback = None;
        if dtype == Dtype::F16 && !ctx.device().features().contains(wgpu::Features::SHADER_F16) {
            if !options.allow_f32_fallback {
                return Err(GruError::MissingFeature {
                    feature: "SHADER_F16",
                    needed_for: "f16 storage (Dtype::F16; --dtype f16, dtype=\"f16\")".into(),
                    adapter: ctx.describe(),
                });
            }
            let note = format!(
                "f16 asked for, but {} lacks SHADER_F16: running in f32",
                ctx.describe()
            );
            fallback = Some(note);
            dtype = Dtype::F32;
        }
        let first = model.first();
        let (i, h) = (first.input_size(), first.hidden_size());
        let n_dir = model.num_directions();
        if h > MAX_HIDDEN {
            return Err(GruError::invalid(
                "hidden_size",
                format!("at most {MAX_HIDDEN} on the GPU path"),
                h,
            ));
        }
        let limits = ctx.limits();
        check_weights(limits, model, dtype)?;
        let max_groups = limits.max_compute_workgroups_per_dimension as u64;
        check_limit(
            format!("hidden size {h} (step kernel)"),
            "max_compute_workgroups_per_dimension",
            (h as u64).div_ceil(STEP_WG as u64),
            max_groups,
        )?;
        check_limit(
            "the split step kernel",
            "max_compute_workgroup_storage_size",
            SPLIT_WORKGROUP_BYTES as u64,
            limits.max_compute_workgroup_storage_size as u64,
        )?;
        check_limit(
            format!("D·3H = {} (input projection)", n_dir * 3 * h),
            "max_compute_workgroups_per_dimension",
            ((n_dir * 3 * h) as u64).div_ceil(GEMM_TILE as u64),
            max_groups,
        )?;
        check_limit(
            "the step kernels",
            "max_storage_buffers_per_shader_stage",
            STEP_STORAGE_BUFFERS as u64,
            limits.max_storage_buffers_per_shader_stage as u64,
        )?;
        check_limit(
            "the input-projection kernel (16×16 invocations)",
            "max_compute_invocations_per_workgroup",
            256,
            limits.max_compute_invocations_per_workgroup as u64,
        )?;

        let device = ctx.device();
        scoped_async(ctx, "uploading weights and building pipelines", || {
            let layers = upload_layers(device, model, dtype);
            let pipelines = ModelPipelines::build(ctx, dtype, h, first.convention())?;
            let pipelines_created = pipelines.created;
            Ok(GpuGru {
                ctx: ctx.clone(),
                dtype,
                fallback,
                convention: first.convention(),
                direction: model.direction,
                input_size: i,
                hidden_size: h,
                clip: model.clip,
                layers,
                pipelines,
                gemm_choice: None,
                step_choice: None,
                path: None,
                // A whole number of the alignment (both are powers of two), at least one slot.
                uniform_stride: (PARAMS_SLOT as u32).next_multiple_of(
                    limits
                        .min_uniform_buffer_offset_alignment
                        .max(limits.min_storage_buffer_offset_alignment),
                ),
                scratch: None,
                poison: None,
                profiling: false,
                timing: None,
                encode: std::time::Duration::ZERO,
                stats: ModelStats {
                    pipelines_created,
                    ..ModelStats::default()
                },
                #[cfg(not(target_arch = "wasm32"))]
                train: None,
                #[cfg(not(target_arch = "wasm32"))]
                model_id: crate::gpu::train::next_model_id(),
            })
        })
        .await?
    }

    /// Another handle on the same weights on the device, without uploading them again: for
    /// a [`crate::gpu::GruSession`] that serves a model which also runs one-shot forwards, or
    /// for a second thread (each handle is used by one caller at a time, as `forward` takes
    /// `&mut self`). The weight buffers and pipelines are shared; what a forward needs of its
    /// own (scratch buffers, profiling, timings, [`GpuGru::stats`], training pipelines) is
    /// the new handle's, starting empty; kernel choices ([`GpuGru::set_kernel_path`],
    /// [`GpuGru::set_step_kernel`], [`GpuGru::set_gemm_kernel`]) are copied.
    ///
    /// Weights updated in place reach every handle that shares them: a handle of a GPU
    /// trainer's model ([`crate::gpu::GpuTrainer::gru`]) serves the trained weights from the
    /// next submission after each optimizer step (submissions run in order on the context's
    /// queue, so a forward never sees half a step). The device memory is freed with the last
    /// handle.
    pub fn share(&self) -> GpuGru {
        GpuGru {
            ctx: self.ctx.clone(),
            dtype: self.dtype,
            fallback: self.fallback.clone(),
            convention: self.convention,
            direction: self.direction,
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            clip: self.clip,
            layers: self.layers.clone(),
            pipelines: self.pipelines.clone(),
            gemm_choice: self.gemm_choice,
            step_choice: self.step_choice,
            path: self.path,
            uniform_stride: self.uniform_stride,
            scratch: None,
            poison: None,
            profiling: false,
            timing: None,
            encode: std::time::Duration::ZERO,
            stats: ModelStats::default(),
            #[cfg(not(target_arch = "wasm32"))]
            train: None,
            #[cfg(not(target_arch = "wasm32"))]
            model_id: crate::gpu::train::next_model_id(),
        }
    }

    /// The storage type of weights and activations on the device.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Why the model runs in f32 although f16 was asked for
    /// ([`ModelOptions::allow_f32_fallback`]), if it does.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The context the model lives on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }
    /// The gate convention.
    pub fn convention(&self) -> Convention {
        self.convention
    }
    /// The directions.
    pub fn direction(&self) -> Direction {
        self.direction
    }
    /// `L`.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }
    /// `I`.
    pub fn input_size(&self) -> usize {
        self.input_size
    }
    /// `H`.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }
    /// The path a forward of `batch` entries takes: the caller's choice
    /// ([`GpuGru::set_kernel_path`]), or [`auto_kernel_path`].
    pub fn kernel_path(&self, batch: usize) -> KernelPath {
        match (self.path, &self.pipelines.persistent) {
            (Some(p), _) => p,
            (None, Some(_)) => auto_kernel_path(self.ctx.adapter_info(), self.hidden_size, batch),
            (None, None) => KernelPath::StepFused,
        }
    }

    /// Chooses the path (`None`: automatic). Asking for [`KernelPath::Persistent`] with
    /// `H > PERSISTENT_MAX_HIDDEN` (or on a device without 12 KiB of workgroup memory) is an
    /// error; no pipeline is created either way.
    pub fn set_kernel_path(&mut self, path: Option<KernelPath>) -> Result<()> {
        if path == Some(KernelPath::Persistent) && self.pipelines.persistent.is_none() {
            return Err(GruError::invalid(
                "kernel path",
                format!(
                    "step-fused for H = {} (the persistent path takes H ≤ \
                     {PERSISTENT_MAX_HIDDEN} and {PERSISTENT_WORKGROUP_BYTES} bytes of \
                     workgroup memory)",
                    self.hidden_size
                ),
                "persistent",
            ));
        }
        self.path = path;
        Ok(())
    }

    /// Timesteps one recurrent dispatch covers on `path`: 1 on the step-fused path; on the
    /// persistent path, as many as keep each invocation under the loop budget (32768 trips,
    /// half of lavapipe's cap), which also bounds a dispatch's duration on any GPU.
    pub fn steps_per_dispatch(&self, path: KernelPath) -> usize {
        match (path, &self.pipelines.persistent) {
            (KernelPath::Persistent, Some((_, wg))) => self.persistent_chunk(*wg),
            _ => 1,
        }
    }

    /// Steps per persistent dispatch for this model: the loop budget over the trips of one
    /// step.
    pub(super) fn persistent_chunk(&self, wg: u32) -> usize {
        let h = self.hidden_size;
        let units = h.div_ceil(wg as usize);
        let dots = match self.convention {
            Convention::ResetAfter => 1,
            Convention::ResetBefore => 2,
        };
        let per_step = dots * units * (h + 8) + 8;
        (PERSISTENT_LOOP_BUDGET / per_step).max(1)
    }

    /// The input-projection kernel the next forward uses: the caller's choice
    /// ([`GpuGru::set_gemm_kernel`]) or [`auto_gemm_kernel`].
    pub fn gemm_kernel(&self) -> GemmKernel {
        self.gemm_choice
            .unwrap_or_else(|| auto_gemm_kernel(self.ctx.adapter_info()))
    }

    /// The step-fused kernel variant the next forward uses: the caller's choice
    /// ([`GpuGru::set_step_kernel`]) or [`auto_step_kernel`].
    pub fn step_kernel(&self) -> StepKernel {
        self.step_choice
            .unwrap_or_else(|| auto_step_kernel(self.ctx.adapter_info()))
    }

    /// Chooses the step-fused kernel variant (`None`: automatic). All are built with the
    /// model, so this creates no pipeline.
    pub fn set_step_kernel(&mut self, kernel: Option<StepKernel>) {
        self.step_choice = kernel;
    }

    /// Whether [`StepKernel::Split`] adds its lanes' sums with subgroup operations (the
    /// device has `Features::SUBGROUP`) rather than in workgroup memory.
    pub fn split_uses_subgroups(&self) -> bool {
        self.pipelines.steps.split_subgroups
    }

    /// The recurrent kernel a forward of `batch` entries runs with the current choices.
    pub(crate) fn recurrence(&self, batch: usize) -> Recurrence {
        match (self.kernel_path(batch), &self.pipelines.persistent) {
            (KernelPath::Persistent, Some((_, wg))) => Recurrence::Persistent {
                wg: *wg,
                steps: self.persistent_chunk(*wg),
            },
            _ => match self.step_kernel() {
                StepKernel::Staged => Recurrence::Staged,
                StepKernel::Direct => Recurrence::Direct {
                    vec_h: self.hidden_size.is_multiple_of(4),
                },
                StepKernel::Split => Recurrence::Split {
                    subgroups: self.pipelines.steps.split_subgroups,
                    subgroup_min: self.ctx.adapter_info().subgroup_min_size,
                    groups_x: self.split_groups_x(),
                },
                StepKernel::SplitWorkgroup => Recurrence::Split {
                    subgroups: false,
                    subgroup_min: 0,
                    groups_x: self.split_groups_x(),
                },
            },
        }
    }

    /// Workgroups in x of a split-kernel dispatch: one per hidden unit, or the device's
    /// most (each workgroup then takes several units).
    fn split_groups_x(&self) -> u32 {
        let most = self
            .ctx
            .limits()
            .max_compute_workgroups_per_dimension
            .max(1);
        (self.hidden_size as u32).min(most)
    }

    /// The parallel structure of one timestep of one layer in a forward of `batch` entries
    /// with the current choices: dispatches per step, workgroups and invocations per
    /// dispatch, and the longest serial loop an invocation runs (what a GPU's step time
    /// follows; gru-bench prints it).
    pub fn step_structure(&self, batch: usize) -> StepStructure {
        self.recurrence(batch).structure(
            self.convention,
            self.hidden_size,
            batch,
            self.direction.num_directions(),
        )
    }

    /// The pipeline of `kernel` for layer `l`: the direct kernel reads X four columns at a
    /// time (its `VEC_K` override) when the layer's input width is a multiple of 4.
    pub(super) fn gemm_pipeline(&self, kernel: GemmKernel, l: usize) -> &wgpu::ComputePipeline {
        match kernel {
            GemmKernel::Tiled => &self.pipelines.gemms.tiled,
            GemmKernel::Direct if self.layers[l].input_size.is_multiple_of(4) => {
                &self.pipelines.gemms.direct_vec_k
            }
            GemmKernel::Direct => &self.pipelines.gemms.direct,
        }
    }

    /// Chooses the input-projection kernel (`None`: automatic). Every variant is built with
    /// the model, so this creates no pipeline.
    pub fn set_gemm_kernel(&mut self, kernel: Option<GemmKernel>) {
        self.gemm_choice = kernel;
    }

    /// Measures the GPU time of each forward with timestamp queries, split into the input
    /// projection and the recurrence ([`GpuGru::last_timing`]). Needs the adapter's
    /// `TIMESTAMP_QUERY` feature (requested by [`GpuContext::new`] where available); without it
    /// this is an error naming the feature.
    pub fn set_profiling(&mut self, on: bool) -> Result<()> {
        if on
            && !self
                .ctx
                .device()
                .features()
                .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return Err(GruError::invalid(
                "profiling",
                "a device with the TIMESTAMP_QUERY feature",
                format!("{} without it", self.ctx.describe()),
            ));
        }
        self.profiling = on;
        Ok(())
    }

    /// Host time spent recording the last forward's commands (from creating the encoder to
    /// finishing it; uploads, submit and readback excluded).
    pub fn last_encode_time(&self) -> std::time::Duration {
        self.encode
    }

    /// The GPU time of the last forward, when profiling is on.
    pub fn last_timing(&self) -> Option<ForwardTiming> {
        self.timing
    }

    /// What the model has built and run so far.
    pub fn stats(&self) -> ModelStats {
        self.stats
    }

    /// Records a forward run outside [`GpuGru::forward`] (a streaming session's feed).
    pub(super) fn record_forward(
        &mut self,
        encode: std::time::Duration,
        timing: Option<ForwardTiming>,
    ) {
        self.encode = encode;
        self.timing = timing;
        self.stats.forwards += 1;
    }

    /// Whether a forward profiles (see [`GpuGru::set_profiling`]).
    pub fn profiling(&self) -> bool {
        self.profiling
    }

    /// The clip threshold (ONNX's `clip`), if any.
    pub fn clip(&self) -> Option<f32> {
        self.clip
    }

    /// Debugging aid: before every forward, fill the output and scratch buffers with
    /// `value` (e.g. NaN), so that any element a kernel fails to write shows up in the result.
    /// `None` (the default) turns it off.
    pub fn set_poison(&mut self, value: Option<f32>) {
        self.poison = value;
    }

    /// Checks a shape against the model and the device; returns the validated sizes.
    pub(super) fn validate(&self, input: &GruInput<'_>) -> Result<Dims> {
        input.validate_for(
            self.input_size,
            self.hidden_size,
            self.layers.len(),
            self.direction.num_directions(),
        )
    }

    /// Checks that buffers for `dims`, and `dispatches` step-parameter slots, fit the device
    /// (see [`limits::check_forward`]).
    pub(super) fn plan(&self, dims: &Dims, dispatches: usize) -> Result<()> {
        limits::check_forward(
            self.ctx.limits(),
            dims,
            self.dtype,
            dispatches,
            self.uniform_stride,
        )
    }

    /// The scratch key of a forward over `dims` with the current choices.
    pub(super) fn shape_key(&self, dims: &Dims) -> ShapeKey {
        ShapeKey {
            dims: *dims,
            path: self.kernel_path(dims.batch),
            gemm: self.gemm_kernel(),
            row_major_r: matches!(self.recurrence(dims.batch), Recurrence::Split { .. }),
            profiling: self.profiling,
        }
    }

    /// The scratch of a forward over `dims`, taken out of the model: the kept one when its
    /// shape and kernel choices match, else a new one (the old buffers are freed first). The
    /// caller puts it back (`self.scratch = Some(..)`) when its buffers stay reusable.
    pub(super) async fn take_scratch(&mut self, dims: &Dims) -> Result<Scratch> {
        let key = self.shape_key(dims);
        if let Some(kept) = self.scratch.take().filter(|s| s.key == key) {
            return Ok(kept);
        }
        self.build_scratch(key).await
    }

    /// Runs the network over `input` on the GPU.
    ///
    /// Shapes as documented in [`crate::input`] (for one forward layer with the defaults:
    /// `X[T, B, I]`, `initial_h[B, H]` → `Y[T, B, H]`, `Y_h[B, H]`). `B = 0` gives empty
    /// outputs. Errors: a length or length value that does not match the model
    /// ([`GruError::Shape`], [`GruError::InvalidArgument`]), a problem beyond the device's
    /// limits ([`GruError::DeviceLimit`]), or a device error ([`GruError::Gpu`]).
    ///
    /// Blocks until the GPU is done (native targets); [`GpuGru::forward_async`] awaits it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward(&mut self, input: &GruInput<'_>) -> Result<GruOutput> {
        pollster::block_on(self.forward_with(input, Drive::Inline))
    }

    /// [`GpuGru::forward`] as a future that resolves when the outputs are read back, without
    /// blocking the thread: in a browser the page's event loop completes the readback; on
    /// native targets the context's waiting thread (one per context, started by the first
    /// async call) waits for the GPU while the caller's executor goes on. Same shapes,
    /// results and errors as [`GpuGru::forward`].
    pub async fn forward_async(&mut self, input: &GruInput<'_>) -> Result<GruOutput> {
        self.forward_with(input, Drive::Background).await
    }

    async fn forward_with(&mut self, input: &GruInput<'_>, drive: Drive) -> Result<GruOutput> {
        let dims = self.validate(input)?;
        let b = dims.batch;
        if b == 0 {
            return Ok(GruOutput {
                y: Vec::new(),
                y_h: Vec::new(),
                dims,
            });
        }
        let (tc, bc) = self.split_sizes(&dims)?;
        if (tc, bc) != (dims.seq_len, dims.batch) {
            return self.forward_split(input, dims, tc, bc, drive).await;
        }
        let s = self.take_scratch(&dims).await?;
        let ctx = self.ctx.clone();
        let (device, queue) = (ctx.device(), ctx.queue());
        let y_bytes = self.dtype.bytes(dims.y_len());
        let state_bytes = self.dtype.bytes(dims.state_len());
        let lens: Vec<u32> = (0..b).map(|k| input.length(k) as u32).collect();

        let submitted = scoped_async(&ctx, "forward", || {
            queue.write_buffer(&s.x, 0, &self.dtype.encode(input.x));
            if let Some(h0) = input.initial_h {
                queue.write_buffer(&s.h0, 0, &self.dtype.encode(h0));
            }
            queue.write_buffer(&s.lens, 0, bytemuck::cast_slice(&lens));
            let encode_start = web_time::Instant::now();
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("gru forward"),
            });
            if input.initial_h.is_none() {
                // A zero initial state: cleared on the device, no host buffer or upload.
                encoder.clear_buffer(&s.h0, 0, None);
            }
            self.encode_layers(&s, &mut encoder);
            encoder.copy_buffer_to_buffer(&s.y, 0, &s.readback, 0, y_bytes);
            encoder.copy_buffer_to_buffer(&s.yh, 0, &s.readback, y_bytes, state_bytes);
            let commands = encoder.finish();
            let encode = encode_start.elapsed();
            (queue.submit([commands]), encode)
        })
        .await;
        let (result, encode) = match submitted {
            Ok(v) => v,
            Err(e) => {
                self.scratch = Some(s);
                return Err(e);
            }
        };
        self.encode = encode;
        let size = s.readback.size();
        let outcome = match read_prefix_async(&ctx, &s.readback, size, result.clone(), drive).await
        {
            Ok(data) => self
                .read_timing(&s, result, drive)
                .await
                .map(|timing| (data, timing)),
            Err(e) => Err(e),
        };
        let (data, timing) = match outcome.and_then(|v| ctx.check_lost().map(|()| v)) {
            Ok(v) => v,
            Err(e) => {
                // A failed readback may leave a mapping pending: the scratch is dropped and
                // the next forward starts from fresh buffers. A lost device explains the
                // failure: say so instead.
                ctx.check_lost_after_poll()?;
                return Err(e);
            }
        };
        self.scratch = Some(s);
        self.timing = timing;
        self.stats.forwards += 1;
        let y = self.dtype.decode(&data, dims.y_len());
        let y_h = self
            .dtype
            .decode(&data[y_bytes as usize..], dims.state_len());
        Ok(GruOutput { y, y_h, dims })
    }
}
