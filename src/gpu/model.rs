//! A GRU network resident on the GPU: weights uploaded once, pipelines built once, scratch
//! buffers and bind groups kept between forwards of the same shape.

use wgpu::util::DeviceExt;

use crate::dtype::Dtype;
use crate::error::{GruError, Result};
use crate::gpu::context::{Fault, GpuContext};
use crate::gpu::limits::{self, check_binding, check_limit};
use crate::input::{Dims, GruInput, GruOutput, Layout};
use crate::model::{Direction, GruModel, ModelView};
use crate::shaders::Kernel;
use crate::weights::{Convention, GruWeights};

/// Invocations per workgroup of the step kernels (`WG` override of `gru_step.wgsl`).
const STEP_WG: u32 = 64;
/// Batch entries per step invocation (`NB` in `gru_step.wgsl`).
pub(super) const STEP_NB: u32 = 4;
/// Output tile of the input-projection GEMM (`TILE` in `input_projection.wgsl`).
const GEMM_TILE: u32 = 64;
/// Most K columns one GEMM dispatch walks: keeps every invocation's loop trips below
/// lavapipe's silent 65535 cap (REFERENCES.md §6); larger inputs are split over dispatches.
const GEMM_MAX_K: u32 = 16384;
/// Storage buffers the step kernels bind.
const STEP_STORAGE_BUFFERS: u32 = 8;
/// Largest hidden size: the step kernels loop H times per invocation (REFERENCES.md §6).
pub const MAX_HIDDEN: usize = 32768;
/// Largest hidden size of the persistent path (`PMAX` in `gru_persistent.wgsl`).
pub const PERSISTENT_MAX_HIDDEN: usize = 256;
/// Workgroup memory the persistent kernels declare (`buf` in `gru_persistent.wgsl`).
const PERSISTENT_WORKGROUP_BYTES: u32 = 768 * 16;
/// Loop trips one persistent dispatch may spend per invocation: half of lavapipe's silent
/// 65535 cap (REFERENCES.md §6). It also keeps each dispatch short (a few ms on any GPU).
const PERSISTENT_LOOP_BUDGET: usize = 32768;

/// How the recurrence of each layer is dispatched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelPath {
    /// One dispatch per timestep (two for reset-before), each spread over `⌈H/64⌉ × ⌈B/4⌉ × D`
    /// workgroups: any H, and the most parallel work per step.
    StepFused,
    /// One dispatch per chunk of timesteps; a workgroup keeps four batch entries' state in
    /// workgroup memory and loops over the chunk. H ≤ [`PERSISTENT_MAX_HIDDEN`]. Saves the
    /// per-dispatch cost when one step is little work (small H).
    Persistent,
}

/// Which kernel computes the input projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GemmKernel {
    /// `input_projection.wgsl`: 64×64 output tiles staged through workgroup memory. GPUs.
    Tiled,
    /// `input_projection_direct.wgsl`: 8 rows × 4 columns of registers per invocation streamed
    /// straight from memory, no workgroup memory or barriers; X is read four columns at a
    /// time where the layer's input width is a multiple of 4. CPU adapters (lavapipe), where
    /// workgroup memory and barriers are slow.
    Direct,
}

/// How the step-fused kernels read the previous state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepKernel {
    /// Staged through workgroup memory in chunks of 64 units, every load of the state shared
    /// by the workgroup's 64 invocations. GPUs.
    Staged = 0,
    /// Each invocation reads the state straight from memory (four units at a time when H is
    /// a multiple of 4): no workgroup memory and no barriers. CPU adapters (lavapipe), where
    /// barriers are expensive: 1.4–1.6× faster there at H = 384–512, level at H ≤ 128, and up
    /// to 1.5–1.7× more with the four-unit reads (BENCHMARKS.md).
    Direct = 1,
}

/// The step kernel for an adapter: [`StepKernel::Direct`] on CPU adapters,
/// [`StepKernel::Staged`] elsewhere.
pub fn auto_step_kernel(info: &wgpu::AdapterInfo) -> StepKernel {
    if info.device_type == wgpu::DeviceType::Cpu {
        StepKernel::Direct
    } else {
        StepKernel::Staged
    }
}

/// The input-projection kernel for an adapter: [`GemmKernel::Direct`] on CPU adapters,
/// [`GemmKernel::Tiled`] elsewhere (BENCHMARKS.md has the lavapipe measurements).
pub fn auto_gemm_kernel(info: &wgpu::AdapterInfo) -> GemmKernel {
    if info.device_type == wgpu::DeviceType::Cpu {
        GemmKernel::Direct
    } else {
        GemmKernel::Tiled
    }
}

/// The path [`GpuGru`] takes for a batch of `batch` entries when the caller has not chosen
/// one.
///
/// Heuristic, from lavapipe measurements (BENCHMARKS.md, 2026-11-27): on a CPU adapter the
/// persistent path is 1.2–3× faster for H ≤ 64, and for H ≤ 256 once there are ≥ 8 entries
/// (then enough workgroups exist to fill the cores); at B = 1 and H ≥ 128 the step-fused path
/// wins, because it spreads a step over ⌈H/64⌉ workgroups. On other adapters a dispatch
/// costs microseconds, more than one step of a small layer: persistent for H ≤ 128. That
/// threshold is provisional until measured on discrete GPUs.
pub fn auto_kernel_path(info: &wgpu::AdapterInfo, hidden_size: usize, batch: usize) -> KernelPath {
    let persistent = if info.device_type == wgpu::DeviceType::Cpu {
        hidden_size <= 64 || (hidden_size <= PERSISTENT_MAX_HIDDEN && batch >= 8)
    } else {
        hidden_size <= 128
    };
    if persistent {
        KernelPath::Persistent
    } else {
        KernelPath::StepFused
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    row_offset: u32,
    k_begin: u32,
    k_end: u32,
    accumulate: u32,
    n_stride: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct StepParams {
    s: u32,
    s_end: u32,
    _pad: [u32; 2],
}

/// `LayerParams` of `gru_step.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LayerParams {
    batch: u32,
    seq_len: u32,
    batch_major: u32,
    reverse_mask: u32,
    y_t: u32,
    y_d: u32,
    y_b: u32,
    state_base: u32,
    st_ld: u32,
    st_b: u32,
    xp_width: u32,
    rb_offset: u32,
    has_clip: u32,
    clip: f32,
    _pad: [u32; 2],
}

/// Bytes of [`GemmParams`] (`Params` of the input-projection kernels).
const GEMM_PARAMS: usize = std::mem::size_of::<GemmParams>();
/// Bytes of [`StepParams`].
const STEP_PARAMS: usize = std::mem::size_of::<StepParams>();
/// Bytes of [`LayerParams`].
const LAYER_PARAMS: usize = std::mem::size_of::<LayerParams>();
/// Bytes of the largest parameter struct: the least stride of one parameter slot.
const PARAMS_SLOT: usize = {
    let most = if GEMM_PARAMS > STEP_PARAMS {
        GEMM_PARAMS
    } else {
        STEP_PARAMS
    };
    if most > LAYER_PARAMS {
        most
    } else {
        LAYER_PARAMS
    }
};

/// The input-projection pipelines, one per [`GemmKernel`] variant.
struct GemmPipelines {
    /// `input_projection.wgsl`.
    tiled: wgpu::ComputePipeline,
    /// `input_projection_direct.wgsl` with `VEC_K = false`.
    direct: wgpu::ComputePipeline,
    /// `input_projection_direct.wgsl` with `VEC_K = true`: layers whose input width is a
    /// multiple of 4.
    direct_vec_k: wgpu::ComputePipeline,
}

/// The step-fused pipelines of each [`StepKernel`]: one entry point per dispatch of a
/// step (one for reset-after, gates then candidate for reset-before).
struct StepPipelines {
    staged: Vec<wgpu::ComputePipeline>,
    direct: Vec<wgpu::ComputePipeline>,
}

impl StepPipelines {
    /// The pipelines of `kernel`, in dispatch order.
    fn get(&self, kernel: StepKernel) -> &[wgpu::ComputePipeline] {
        match kernel {
            StepKernel::Staged => &self.staged,
            StepKernel::Direct => &self.direct,
        }
    }
}

/// One GEMM dispatch: its params slot and workgroup counts.
struct GemmDispatch {
    offset: u32,
    groups_x: u32,
    groups_y: u32,
}

/// A layer's weights on the device.
struct LayerWeights {
    /// `[K, D·3H]`: every direction's `Wᵀ`, side by side.
    wt: wgpu::Buffer,
    /// `[D·3H]`: every direction's `Wb`.
    wb: wgpu::Buffer,
    /// Every direction's `Rᵀ [H, 3H]`, then every direction's `Rb [3H]`.
    rec: wgpu::Buffer,
    /// `K`: `I` for layer 0, `D·H` after.
    input_size: usize,
}

/// What the scratch buffers were built for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct ShapeKey {
    pub(super) dims: Dims,
    path: KernelPath,
    gemm: GemmKernel,
    profiling: bool,
}

/// Buffers and bind groups for one shape.
pub(super) struct Scratch {
    pub(super) key: ShapeKey,
    pub(super) x: wgpu::Buffer,
    xp: wgpu::Buffer,
    inter: Option<wgpu::Buffer>,
    pub(super) h0: wgpu::Buffer,
    pub(super) y: wgpu::Buffer,
    pub(super) yh: wgpu::Buffer,
    gates: wgpu::Buffer,
    pub(super) lens: wgpu::Buffer,
    readback: wgpu::Buffer,
    gemm_binds: Vec<wgpu::BindGroup>,
    step_binds: Vec<wgpu::BindGroup>,
    gemm_dispatches: Vec<Vec<GemmDispatch>>,
    /// Persistent path: the step-params offset of each dispatch.
    chunk_offsets: Vec<u32>,
    timestamps: Option<Timestamps>,
    // Kept alive for the bind groups; referenced only through them.
    _uniforms: [wgpu::Buffer; 3],
}

/// GPU time of the last forward, from timestamp queries (see [`GpuGru::set_profiling`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ForwardTiming {
    /// The input-projection GEMMs of every layer, in nanoseconds.
    pub input_projection_ns: f64,
    /// The recurrence (every step of every layer), in nanoseconds.
    pub recurrence_ns: f64,
}

/// Timestamp queries of one shape: two passes per layer, two timestamps per pass.
struct Timestamps {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    count: u32,
}

/// Counters that show what a model has built (tests use them to prove reuse).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Compute pipelines created since the model was built.
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
    ctx: GpuContext,
    dtype: Dtype,
    fallback: Option<String>,
    convention: Convention,
    direction: Direction,
    input_size: usize,
    hidden_size: usize,
    clip: Option<f32>,
    layers: Vec<LayerWeights>,
    gemm_layout: wgpu::BindGroupLayout,
    step_layout: wgpu::BindGroupLayout,
    gemms: GemmPipelines,
    gemm_choice: Option<GemmKernel>,
    step_pipelines: StepPipelines,
    step_choice: Option<StepKernel>,
    persistent: Option<(wgpu::ComputePipeline, u32)>,
    path: Option<KernelPath>,
    uniform_stride: u32,
    scratch: Option<Scratch>,
    poison: Option<f32>,
    profiling: bool,
    timing: Option<ForwardTiming>,
    encode: std::time::Duration,
    stats: ModelStats,
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

pub(super) fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn uniform_entry(binding: u32, size: u64, dynamic: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: dynamic,
            min_binding_size: wgpu::BufferSize::new(size),
        },
        count: None,
    }
}

/// The per-step parameters: read-only storage with a dynamic offset. Not a uniform buffer:
/// lavapipe specialises (recompiles) a shader for the values of small uniforms that steer
/// control flow, which would compile one shader variant per timestep.
fn step_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: true },
            has_dynamic_offset: true,
            min_binding_size: wgpu::BufferSize::new(STEP_PARAMS as u64),
        },
        count: None,
    }
}

pub(super) fn entry(binding: u32, resource: wgpu::BindingResource<'_>) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry { binding, resource }
}

/// Runs `f` inside validation and out-of-memory error scopes; any error becomes
/// [`GruError::Gpu`] naming `operation`.
pub(super) fn scoped<T>(ctx: &GpuContext, operation: &str, f: impl FnOnce() -> T) -> Result<T> {
    ctx.check_lost()?;
    let device = ctx.device();
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let value = f();
    let oom = pollster::block_on(oom.pop());
    let validation = pollster::block_on(validation.pop());
    if let Some(e) = oom.or(validation) {
        // A lost device explains any error it caused; say so instead.
        ctx.check_lost_after_poll()?;
        return Err(GruError::Gpu {
            operation: operation.to_string(),
            message: e.to_string(),
        });
    }
    if let Some(fault) = ctx.take_fault() {
        return Err(GruError::Gpu {
            operation: operation.to_string(),
            message: match fault {
                Fault::OutOfMemory => "Out of Memory (injected by GpuContext::inject_fault)",
                Fault::Validation => "Validation Error (injected by GpuContext::inject_fault)",
            }
            .to_string(),
        });
    }
    let uncaptured = ctx.errors.take();
    if !uncaptured.is_empty() {
        ctx.check_lost_after_poll()?;
        return Err(GruError::Gpu {
            operation: operation.to_string(),
            message: uncaptured.join("; "),
        });
    }
    Ok(value)
}

fn uniform_binding(buffer: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset,
        size: wgpu::BufferSize::new(size),
    })
}

pub(super) fn bytes_of(what: &str, elements: usize, dtype: Dtype) -> Result<u64> {
    (elements as u64)
        .checked_mul(dtype.size() as u64)
        .ok_or_else(|| GruError::invalid(what, "a byte size that fits in u64", elements))
}

/// A layer's weights laid out for the kernels (see [`LayerWeights`]).
fn layer_arrays(layer: &[&GruWeights]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let h = layer[0].hidden_size();
    let k = layer[0].input_size();
    let (h3, width) = (3 * h, 3 * h * layer.len());
    let n_stride = width.next_multiple_of(4);
    let mut wt = vec![0.0f32; k * n_stride];
    let mut wb = Vec::with_capacity(width);
    let mut rec = vec![0.0f32; layer.len() * h * h3];
    let mut rb = Vec::with_capacity(width);
    for (d, w) in layer.iter().enumerate() {
        for n in 0..h3 {
            for kk in 0..k {
                wt[kk * n_stride + d * h3 + n] = w.w()[n * k + kk];
            }
            for kk in 0..h {
                rec[d * h * h3 + kk * h3 + n] = w.r()[n * h + kk];
            }
        }
        wb.extend_from_slice(&w.b()[..h3]);
        rb.extend_from_slice(&w.b()[h3..]);
    }
    rec.extend(rb);
    (wt, wb, rec)
}

impl GpuGru {
    /// Uploads one forward layer to the device of `ctx` and builds the pipelines.
    ///
    /// Errors when the weights do not fit the device's limits, when `H` exceeds
    /// [`MAX_HIDDEN`], or when the device reports an error while building.
    pub fn new(ctx: &GpuContext, weights: &GruWeights) -> Result<Self> {
        Self::build(ctx, &ModelView::single(weights), &ModelOptions::default())
    }

    /// Uploads a whole network (layers, directions, clip) to the device of `ctx`, in f32.
    pub fn from_model(ctx: &GpuContext, model: &GruModel) -> Result<Self> {
        Self::build(ctx, &model.view(), &ModelOptions::default())
    }

    /// Uploads a whole network with `options` (e.g. f16 storage: [`Dtype::F16`]).
    ///
    /// Errors as [`GpuGru::from_model`], and [`GruError::MissingFeature`] for f16 on a device
    /// without `SHADER_F16` unless `options.allow_f32_fallback`.
    pub fn from_model_with(
        ctx: &GpuContext,
        model: &GruModel,
        options: &ModelOptions,
    ) -> Result<Self> {
        Self::build(ctx, &model.view(), options)
    }

    fn build(ctx: &GpuContext, model: &ModelView<'_>, options: &ModelOptions) -> Result<Self> {
        let mut dtype = options.dtype;
        let mut fallback = None;
        if dtype == Dtype::F16 && !ctx.device().features().contains(wgpu::Features::SHADER_F16) {
            if !options.allow_f32_fallback {
                return Err(GruError::MissingFeature {
                    feature: "SHADER_F16",
                    needed_for: "f16 storage (--dtype f16)".into(),
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
        for (l, layer) in model.layers.iter().enumerate() {
            let k = layer[0].input_size();
            check_binding(
                limits,
                format!("layer {l} weights Wᵀ [K={k}, D·3H={}]", n_dir * 3 * h),
                bytes_of("W", n_dir * 3 * h * k, dtype)?,
            )?;
            check_binding(
                limits,
                format!(
                    "layer {l} weights Rᵀ and Rb [D={n_dir}, H+1={}, 3H={}]",
                    h + 1,
                    3 * h
                ),
                bytes_of("R", n_dir * 3 * h * (h + 1), dtype)?,
            )?;
        }
        let max_groups = limits.max_compute_workgroups_per_dimension as u64;
        check_limit(
            format!("hidden size {h} (step kernel)"),
            "max_compute_workgroups_per_dimension",
            (h as u64).div_ceil(STEP_WG as u64),
            max_groups,
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
        scoped(ctx, "uploading weights and building pipelines", || {
            let upload = |label: &str, data: &[f32]| {
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: &dtype.encode(data),
                    usage: wgpu::BufferUsages::STORAGE,
                })
            };
            let layers = model
                .layers
                .iter()
                .map(|layer| {
                    let (wt, wb, rec) = layer_arrays(layer);
                    LayerWeights {
                        wt: upload("Wt [K, D·3H]", &wt),
                        wb: upload("Wb [D·3H]", &wb),
                        rec: upload("Rt [D, H, 3H] + Rb [D, 3H]", &rec),
                        input_size: layer[0].input_size(),
                    }
                })
                .collect();

            let gemm_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("input_projection layout"),
                entries: &[
                    storage_entry(0, true),
                    storage_entry(1, true),
                    storage_entry(2, true),
                    storage_entry(3, false),
                    uniform_entry(4, GEMM_PARAMS as u64, true),
                ],
            });
            let step_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("gru_step layout"),
                entries: &[
                    storage_entry(0, true),
                    storage_entry(1, true),
                    storage_entry(2, true),
                    storage_entry(3, false),
                    storage_entry(4, false),
                    storage_entry(5, true),
                    storage_entry(6, false),
                    step_entry(7),
                    uniform_entry(8, LAYER_PARAMS as u64, false),
                ],
            });
            let pipeline = |kernel: Kernel,
                            layout: &wgpu::BindGroupLayout,
                            entry: &str,
                            constants: &[(&str, f64)]| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(kernel.file_name()),
                    source: wgpu::ShaderSource::Wgsl(kernel.source(dtype).into()),
                };
                let module = device.create_shader_module(desc);
                let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(entry),
                    bind_group_layouts: &[Some(layout)],
                    immediate_size: 0,
                });
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
            };
            let gemms = GemmPipelines {
                tiled: pipeline(
                    Kernel::InputProjection,
                    &gemm_layout,
                    "input_projection",
                    &[],
                ),
                direct: pipeline(
                    Kernel::InputProjectionDirect,
                    &gemm_layout,
                    "input_projection_direct",
                    &[("VEC_K", 0.0)],
                ),
                direct_vec_k: pipeline(
                    Kernel::InputProjectionDirect,
                    &gemm_layout,
                    "input_projection_direct",
                    &[("VEC_K", 1.0)],
                ),
            };
            // [staged, direct]: the DIRECT override of gru_step.wgsl; the direct kernel reads
            // the state four units at a time (VEC_H, through the vec4 view of the state
            // bindings) when H is a multiple of 4.
            let vec_h = h.is_multiple_of(4);
            let step_constants = |direct: bool| {
                [
                    ("HIDDEN", h as f64),
                    ("WG", STEP_WG as f64),
                    ("DIRECT", direct as u8 as f64),
                    ("VEC_H", (direct && vec_h) as u8 as f64),
                ]
            };
            let entries: &[&str] = match first.convention() {
                Convention::ResetAfter => &["step_reset_after"],
                Convention::ResetBefore => &["gates_reset_before", "candidate_reset_before"],
            };
            let step_variant = |direct: bool| {
                entries
                    .iter()
                    .map(|e| {
                        let kernel = if direct && vec_h {
                            Kernel::GruStepVec4
                        } else {
                            Kernel::GruStep
                        };
                        pipeline(kernel, &step_layout, e, &step_constants(direct))
                    })
                    .collect::<Vec<_>>()
            };
            let step_pipelines = StepPipelines {
                staged: step_variant(false),
                direct: step_variant(true),
            };
            // The persistent kernel where H fits it and the device has its workgroup memory.
            let persistent = (h <= PERSISTENT_MAX_HIDDEN
                && limits.max_compute_workgroup_storage_size >= PERSISTENT_WORKGROUP_BYTES)
                .then(|| {
                    let wg = (h as u32).next_multiple_of(32).clamp(32, 256);
                    let entry = match first.convention() {
                        Convention::ResetAfter => "persistent_reset_after",
                        Convention::ResetBefore => "persistent_reset_before",
                    };
                    let constants = [("HIDDEN", h as f64), ("WG", wg as f64)];
                    let p = pipeline(Kernel::GruPersistent, &step_layout, entry, &constants);
                    (p, wg)
                });
            let pipelines_created = 3 + 2 * entries.len() + persistent.is_some() as usize;
            GpuGru {
                ctx: ctx.clone(),
                dtype,
                fallback,
                convention: first.convention(),
                direction: model.direction,
                input_size: i,
                hidden_size: h,
                clip: model.clip,
                layers,
                gemm_layout,
                step_layout,
                gemms,
                gemm_choice: None,
                step_pipelines,
                step_choice: None,
                persistent,
                path: None,
                uniform_stride: limits
                    .min_uniform_buffer_offset_alignment
                    .max(limits.min_storage_buffer_offset_alignment)
                    .max(PARAMS_SLOT as u32),
                scratch: None,
                poison: None,
                profiling: false,
                timing: None,
                encode: std::time::Duration::ZERO,
                stats: ModelStats {
                    pipelines_created,
                    ..ModelStats::default()
                },
            }
        })
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
        match (self.path, &self.persistent) {
            (Some(p), _) => p,
            (None, Some(_)) => auto_kernel_path(self.ctx.adapter_info(), self.hidden_size, batch),
            (None, None) => KernelPath::StepFused,
        }
    }

    /// Chooses the path (`None`: automatic). Asking for [`KernelPath::Persistent`] with
    /// `H > PERSISTENT_MAX_HIDDEN` (or on a device without 12 KiB of workgroup memory) is an
    /// error; no pipeline is created either way.
    pub fn set_kernel_path(&mut self, path: Option<KernelPath>) -> Result<()> {
        if path == Some(KernelPath::Persistent) && self.persistent.is_none() {
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
        match (path, &self.persistent) {
            (KernelPath::Persistent, Some((_, wg))) => self.persistent_chunk(*wg),
            _ => 1,
        }
    }

    /// Steps per persistent dispatch for this model: the loop budget over the trips of one
    /// step.
    fn persistent_chunk(&self, wg: u32) -> usize {
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

    /// Chooses the step-fused kernel variant (`None`: automatic). Both are built with the
    /// model, so this creates no pipeline.
    pub fn set_step_kernel(&mut self, kernel: Option<StepKernel>) {
        self.step_choice = kernel;
    }

    /// The pipeline of `kernel` for layer `l`: the direct kernel reads X four columns at a
    /// time (its `VEC_K` override) when the layer's input width is a multiple of 4.
    fn gemm_pipeline(&self, kernel: GemmKernel, l: usize) -> &wgpu::ComputePipeline {
        match kernel {
            GemmKernel::Tiled => &self.gemms.tiled,
            GemmKernel::Direct if self.layers[l].input_size.is_multiple_of(4) => {
                &self.gemms.direct_vec_k
            }
            GemmKernel::Direct => &self.gemms.direct,
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
    fn validate(&self, input: &GruInput<'_>) -> Result<Dims> {
        input.validate_for(
            self.input_size,
            self.hidden_size,
            self.layers.len(),
            self.direction.num_directions(),
        )
    }

    /// Checks that buffers for `dims`, and `dispatches` step-parameter slots, fit the device
    /// (see [`limits::check_forward`]).
    fn plan(&self, dims: &Dims, dispatches: usize) -> Result<()> {
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
            profiling: self.profiling,
        }
    }

    fn ensure_scratch(&mut self, dims: &Dims) -> Result<()> {
        let key = self.shape_key(dims);
        if self.scratch.as_ref().is_some_and(|s| s.key == key) {
            return Ok(());
        }
        self.scratch = None; // free the old buffers before allocating new ones
        let scratch = self.build_scratch(key)?;
        self.scratch = Some(scratch);
        Ok(())
    }

    /// Allocates the buffers and bind groups of one shape (after checking that they fit).
    pub(super) fn build_scratch(&mut self, key: ShapeKey) -> Result<Scratch> {
        let (dims, path, gemm) = (&key.dims, key.path, key.gemm);
        // Step ranges: one step each (step-fused), or chunks (persistent).
        let chunk = match (path, &self.persistent) {
            (KernelPath::Persistent, Some((_, wg))) => self.persistent_chunk(*wg),
            _ => 1,
        };
        self.plan(dims, dims.seq_len.div_ceil(chunk))?;
        let (t, b, h) = (dims.seq_len, dims.batch, dims.hidden_size);
        let n_dir = dims.num_directions;
        let n_layers = self.layers.len();
        let rows = (t * b) as u32;
        let stride = self.uniform_stride as usize;
        let max_groups = self.ctx.limits().max_compute_workgroups_per_dimension;

        // GEMM dispatches of every layer: rows in chunks of ≤ max_groups tiles, K in chunks
        // of GEMM_MAX_K; each dispatch has its own params slot.
        // Tiled: 64×64 outputs per workgroup. Direct (either X width): 64 invocations of
        // 8 rows × 4 columns, i.e. 256 columns × 8 rows per workgroup.
        let n = (n_dir * 3 * h) as u32;
        let n_stride = n.next_multiple_of(4);
        let mut gemm_bytes = Vec::new();
        let mut gemm_dispatches = Vec::new();
        for layer in &self.layers {
            let k = layer.input_size as u32;
            let (cols_per_group, rows_per_group) = match gemm {
                GemmKernel::Tiled => (GEMM_TILE, GEMM_TILE),
                GemmKernel::Direct => (256, 8),
            };
            let rows_per_dispatch = max_groups.saturating_mul(rows_per_group);
            let mut dispatches = Vec::new();
            let mut row_offset = 0u32;
            while row_offset < rows {
                let chunk = (rows - row_offset).min(rows_per_dispatch);
                let mut k_begin = 0u32;
                while k_begin < k {
                    let k_end = (k_begin + GEMM_MAX_K).min(k);
                    let p = GemmParams {
                        m: row_offset + chunk,
                        n,
                        k,
                        row_offset,
                        k_begin,
                        k_end,
                        accumulate: (k_begin > 0) as u32,
                        n_stride,
                    };
                    dispatches.push(GemmDispatch {
                        offset: gemm_bytes.len() as u32,
                        groups_x: n.div_ceil(cols_per_group),
                        groups_y: chunk.div_ceil(rows_per_group),
                    });
                    gemm_bytes.extend_from_slice(bytemuck::bytes_of(&p));
                    gemm_bytes.resize(gemm_bytes.len() + stride - GEMM_PARAMS, 0);
                    k_begin = k_end;
                }
                row_offset += chunk;
            }
            gemm_dispatches.push(dispatches);
        }
        let ranges: Vec<(usize, usize)> = (0..t)
            .step_by(chunk)
            .map(|s| (s, (s + chunk).min(t)))
            .collect();
        let mut step_bytes = vec![0u8; ranges.len() * stride];
        for (slot, &(s, s_end)) in ranges.iter().enumerate() {
            let p = StepParams {
                s: s as u32,
                s_end: s_end as u32,
                _pad: [0; 2],
            };
            step_bytes[slot * stride..][..STEP_PARAMS].copy_from_slice(bytemuck::bytes_of(&p));
        }
        let chunk_offsets: Vec<u32> = (0..ranges.len()).map(|k| (k * stride) as u32).collect();
        let [st_ld, st_b] = dims.state_strides();
        let reverse_mask = (0..n_dir)
            .filter(|&d| self.direction.is_reverse(d))
            .fold(0u32, |m, d| m | (1 << d));
        let mut layer_bytes = vec![0u8; n_layers * stride];
        for l in 0..n_layers {
            // Intermediate layers write rows like X's, D·H wide; the last writes Y.
            let [y_t, y_d, y_b] = if l + 1 == n_layers {
                dims.y_strides()
            } else {
                let width = n_dir * h;
                match dims.layout {
                    Layout::SequenceMajor => [b * width, h, width],
                    Layout::BatchMajor => [width, h, t * width],
                }
            };
            let p = LayerParams {
                batch: b as u32,
                seq_len: t as u32,
                batch_major: (dims.layout == Layout::BatchMajor) as u32,
                reverse_mask,
                y_t: y_t as u32,
                y_d: y_d as u32,
                y_b: y_b as u32,
                state_base: (l * n_dir * st_ld) as u32,
                st_ld: st_ld as u32,
                st_b: st_b as u32,
                xp_width: n,
                rb_offset: (n_dir * h * 3 * h) as u32,
                has_clip: self.clip.is_some() as u32,
                clip: self.clip.unwrap_or(0.0),
                _pad: [0; 2],
            };
            layer_bytes[l * stride..][..LAYER_PARAMS].copy_from_slice(bytemuck::bytes_of(&p));
        }

        let ctx = self.ctx.clone();
        let device = ctx.device();
        let scratch = scoped(&ctx, "allocating buffers for a forward", || {
            let storage = |label: &str, bytes: u64, extra: wgpu::BufferUsages| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: bytes.max(4),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | extra,
                    mapped_at_creation: false,
                })
            };
            let none = wgpu::BufferUsages::empty();
            let src = wgpu::BufferUsages::COPY_SRC;
            let f32s = |n: usize| 4 * n as u64;
            let stored = |n: usize| self.dtype.bytes(n);
            // X, the layer outputs and the state buffers are read as vec4s by the direct GEMM
            // and the direct step kernel (gru_state_vec4.wgsl): whole vec4s.
            let vec4s = |n: usize| stored(n).next_multiple_of(16);
            let x = storage("X", vec4s(t * b * self.input_size), none);
            let xp = storage("XP [T·B, D·3H]", stored(t * b * n as usize), none);
            let inter = (n_layers > 1)
                .then(|| storage("layer output [T·B, D·H]", vec4s(t * b * n_dir * h), none));
            let h0 = storage("initial_h", vec4s(dims.state_len()), none);
            let y = storage("Y", vec4s(dims.y_len()), src);
            let yh = storage("Y_h", stored(dims.state_len()), src);
            let gates = storage(
                "gates [D, 2, B, H]",
                f32s(n_dir * 2 * b * h).next_multiple_of(16),
                none,
            );
            let lens = storage("sequence_lens [B]", f32s(b), none);
            let readback = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback Y, Y_h"),
                size: stored(dims.y_len()) + stored(dims.state_len()),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let uniforms = |label: &str, bytes: &[u8]| {
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytes,
                    usage: wgpu::BufferUsages::UNIFORM,
                })
            };
            let gemm_params = uniforms("input_projection params", &gemm_bytes);
            let step_params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("gru_step step params"),
                contents: &step_bytes,
                usage: wgpu::BufferUsages::STORAGE,
            });
            let layer_params = uniforms("gru_step layer params", &layer_bytes);
            let mut gemm_binds = Vec::new();
            let mut step_binds = Vec::new();
            for (l, layer) in self.layers.iter().enumerate() {
                let layer_in = match (&inter, l) {
                    (Some(inter), l) if l > 0 => inter,
                    _ => &x,
                };
                let layer_out = match &inter {
                    Some(inter) if l + 1 < n_layers => inter,
                    _ => &y,
                };
                gemm_binds.push(device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("input_projection bindings"),
                    layout: &self.gemm_layout,
                    entries: &[
                        entry(0, layer_in.as_entire_binding()),
                        entry(1, layer.wt.as_entire_binding()),
                        entry(2, layer.wb.as_entire_binding()),
                        entry(3, xp.as_entire_binding()),
                        entry(4, uniform_binding(&gemm_params, 0, GEMM_PARAMS as u64)),
                    ],
                }));
                step_binds.push(device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("gru_step bindings"),
                    layout: &self.step_layout,
                    entries: &[
                        entry(0, xp.as_entire_binding()),
                        entry(1, layer.rec.as_entire_binding()),
                        entry(2, h0.as_entire_binding()),
                        entry(3, layer_out.as_entire_binding()),
                        entry(4, gates.as_entire_binding()),
                        entry(5, lens.as_entire_binding()),
                        entry(6, yh.as_entire_binding()),
                        entry(7, uniform_binding(&step_params, 0, STEP_PARAMS as u64)),
                        entry(
                            8,
                            uniform_binding(
                                &layer_params,
                                (l * stride) as u64,
                                LAYER_PARAMS as u64,
                            ),
                        ),
                    ],
                }));
            }
            let timestamps = key.profiling.then(|| {
                let count = 4 * n_layers as u32;
                let bytes = 8 * count as u64;
                Timestamps {
                    set: device.create_query_set(&wgpu::QuerySetDescriptor {
                        label: Some("gru forward timestamps"),
                        ty: wgpu::QueryType::Timestamp,
                        count,
                    }),
                    resolve: device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("timestamps resolve"),
                        size: bytes,
                        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: false,
                    }),
                    read: device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("timestamps readback"),
                        size: bytes,
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }),
                    count,
                }
            });
            Scratch {
                key,
                x,
                xp,
                inter,
                h0,
                y,
                yh,
                gates,
                lens,
                readback,
                gemm_binds,
                step_binds,
                gemm_dispatches,
                chunk_offsets,
                timestamps,
                _uniforms: [gemm_params, step_params, layer_params],
            }
        })?;
        self.stats.scratch_allocations += 1;
        Ok(scratch)
    }

    /// Runs the network over `input` on the GPU.
    ///
    /// Shapes as documented in [`crate::input`] (for one forward layer with the defaults:
    /// `X[T, B, I]`, `initial_h[B, H]` → `Y[T, B, H]`, `Y_h[B, H]`). `B = 0` gives empty
    /// outputs. Errors: a length or length value that does not match the model
    /// ([`GruError::Shape`], [`GruError::InvalidArgument`]), a problem beyond the device's
    /// limits ([`GruError::DeviceLimit`]), or a device error ([`GruError::Gpu`]).
    pub fn forward(&mut self, input: &GruInput<'_>) -> Result<GruOutput> {
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
            return self.forward_split(input, dims, tc, bc);
        }
        self.ensure_scratch(&dims)?;
        let Some(s) = &self.scratch else {
            return Err(GruError::Gpu {
                operation: "forward".into(),
                message: "scratch buffers missing after allocation".into(),
            });
        };
        let ctx = &self.ctx;
        let (device, queue) = (ctx.device(), ctx.queue());
        let y_bytes = self.dtype.bytes(dims.y_len());
        let state_bytes = self.dtype.bytes(dims.state_len());
        let lens: Vec<u32> = (0..b).map(|k| input.length(k) as u32).collect();

        let result = scoped(ctx, "forward", || {
            queue.write_buffer(&s.x, 0, &self.dtype.encode(input.x));
            if let Some(h0) = input.initial_h {
                queue.write_buffer(&s.h0, 0, &self.dtype.encode(h0));
            }
            queue.write_buffer(&s.lens, 0, bytemuck::cast_slice(&lens));
            let encode_start = std::time::Instant::now();
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("gru forward"),
            });
            if input.initial_h.is_none() {
                // A zero initial state: cleared on the device, no host buffer or upload.
                encoder.clear_buffer(&s.h0, 0, None);
            }
            self.encode_layers(s, &mut encoder);
            encoder.copy_buffer_to_buffer(&s.y, 0, &s.readback, 0, y_bytes);
            encoder.copy_buffer_to_buffer(&s.yh, 0, &s.readback, y_bytes, state_bytes);
            let commands = encoder.finish();
            let encode = encode_start.elapsed();
            (queue.submit([commands]), encode)
        })?;

        let (result, encode) = result;
        self.encode = encode;
        let outcome = read_bytes(ctx, &s.readback, result.clone())
            .and_then(|data| Ok((data, self.read_timing(s, result)?)));
        let (data, timing) = match outcome.and_then(|v| ctx.check_lost().map(|()| v)) {
            Ok(v) => v,
            Err(e) => {
                // A failed readback may leave a mapping pending: start the next forward from
                // fresh buffers. A lost device explains the failure: say so instead.
                self.scratch = None;
                ctx.check_lost_after_poll()?;
                return Err(e);
            }
        };
        self.timing = timing;
        self.stats.forwards += 1;
        let y = self.dtype.decode(&data, dims.y_len());
        let y_h = self
            .dtype
            .decode(&data[y_bytes as usize..], dims.state_len());
        Ok(GruOutput { y, y_h, dims })
    }

    /// The largest `(T_c, B_c)` pieces a forward over `dims` runs in (see
    /// [`limits::split_sizes`]).
    fn split_sizes(&self, dims: &Dims) -> Result<(usize, usize)> {
        limits::split_sizes(self.ctx.limits(), dims, self.dtype, self.direction)
    }

    /// A forward in pieces of `tc` steps × `bc` entries (see [`GpuGru::split_sizes`]), all
    /// recorded in one command encoder and one submit. Each piece's X, lengths and initial
    /// state are uploaded into buffers of their own and copied into the shared scratch
    /// before the piece runs; a piece that continues a sequence starts from the state the
    /// previous piece left in `Y_h`. Each piece's `Y` and `Y_h` is copied to a readback buffer
    /// of its own; the host assembles the outputs in the caller's layout. No timing is
    /// recorded for a split forward.
    fn forward_split(
        &mut self,
        input: &GruInput<'_>,
        dims: Dims,
        tc: usize,
        bc: usize,
    ) -> Result<GruOutput> {
        let inner = Dims {
            seq_len: tc,
            batch: bc,
            layout: Layout::SequenceMajor,
            style: crate::input::OutputStyle::Onnx,
            ..dims
        };
        self.ensure_scratch(&inner)?;
        let Some(s) = &self.scratch else {
            return Err(GruError::Gpu {
                operation: "forward".into(),
                message: "scratch buffers missing after allocation".into(),
            });
        };
        let (t, b, i, h) = (dims.seq_len, dims.batch, dims.input_size, dims.hidden_size);
        let ld = dims.num_layers * dims.num_directions;
        let dtype = self.dtype;
        // Pieces: batch pieces outside, time pieces inside (a time piece continues the one
        // before it).
        let mut pieces = Vec::new();
        for b0 in (0..b).step_by(bc) {
            for t0 in (0..t).step_by(tc) {
                pieces.push((t0, b0, tc.min(t - t0), bc.min(b - b0)));
            }
        }
        let [st_ld, st_b] = dims.state_strides();
        let x_len = tc * bc * i;
        let (y_bytes, state_bytes) = (dtype.bytes(inner.y_len()), dtype.bytes(inner.state_len()));
        let ctx = self.ctx.clone();
        let device = ctx.device();
        let result = scoped(&ctx, "forward (split over the device's limits)", || {
            let encode_start = std::time::Instant::now();
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("gru forward, split"),
            });
            let mut readbacks = Vec::with_capacity(pieces.len());
            for &(t0, b0, tn, bn) in &pieces {
                let mut x = vec![0.0f32; x_len];
                for tt in 0..tn {
                    for bb in 0..bn {
                        let from = dims.row(t0 + tt, b0 + bb) * i;
                        let to = (tt * bc + bb) * i;
                        x[to..to + i].copy_from_slice(&input.x[from..from + i]);
                    }
                }
                let lens: Vec<u32> = (0..bc)
                    .map(|bb| match bb < bn {
                        true => input.length(b0 + bb).saturating_sub(t0).min(tn) as u32,
                        false => 0,
                    })
                    .collect();
                let upload = |label: &str, contents: &[u8]| {
                    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some(label),
                        contents,
                        usage: wgpu::BufferUsages::COPY_SRC,
                    })
                };
                let xb = upload("X piece", &dtype.encode(&x));
                encoder.copy_buffer_to_buffer(&xb, 0, &s.x, 0, xb.size());
                let lb = upload("lengths piece", bytemuck::cast_slice(&lens));
                encoder.copy_buffer_to_buffer(&lb, 0, &s.lens, 0, lb.size());
                if t0 > 0 {
                    // Continue from the state the previous time piece left.
                    encoder.copy_buffer_to_buffer(&s.yh, 0, &s.h0, 0, state_bytes);
                } else if let Some(h0) = input.initial_h {
                    let mut piece = vec![0.0f32; inner.state_len()];
                    for l in 0..ld {
                        for bb in 0..bn {
                            let from = l * st_ld + (b0 + bb) * st_b;
                            let to = (l * bc + bb) * h;
                            piece[to..to + h].copy_from_slice(&h0[from..from + h]);
                        }
                    }
                    let hb = upload("initial_h piece", &dtype.encode(&piece));
                    encoder.copy_buffer_to_buffer(&hb, 0, &s.h0, 0, hb.size());
                } else {
                    encoder.clear_buffer(&s.h0, 0, None);
                }
                self.encode_layers(s, &mut encoder);
                let readback = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback Y, Y_h piece"),
                    size: y_bytes + state_bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                encoder.copy_buffer_to_buffer(&s.y, 0, &readback, 0, y_bytes);
                encoder.copy_buffer_to_buffer(&s.yh, 0, &readback, y_bytes, state_bytes);
                readbacks.push(readback);
            }
            let commands = encoder.finish();
            let encode = encode_start.elapsed();
            (ctx.queue().submit([commands]), readbacks, encode)
        })?;
        let (submission, readbacks, encode) = result;
        self.encode = encode;
        let mut y = vec![0.0f32; dims.y_len()];
        let mut y_h = vec![0.0f32; dims.state_len()];
        let [y_t, y_d, y_b] = dims.y_strides();
        let [iy_t, iy_d, iy_b] = inner.y_strides();
        for (&(t0, b0, tn, bn), readback) in pieces.iter().zip(&readbacks) {
            let data = match read_bytes(&ctx, readback, submission.clone()) {
                Ok(d) => d,
                Err(e) => {
                    self.scratch = None;
                    ctx.check_lost_after_poll()?;
                    return Err(e);
                }
            };
            let py = dtype.decode(&data, inner.y_len());
            let ph = dtype.decode(&data[y_bytes as usize..], inner.state_len());
            for tt in 0..tn {
                for d in 0..dims.num_directions {
                    for bb in 0..bn {
                        let from = tt * iy_t + d * iy_d + bb * iy_b;
                        let to = (t0 + tt) * y_t + d * y_d + (b0 + bb) * y_b;
                        y[to..to + h].copy_from_slice(&py[from..from + h]);
                    }
                }
            }
            // An entry's Y_h comes from the time piece holding its last step (the first
            // piece for length 0, whose Y_h is zero).
            for bb in 0..bn {
                let len = input.length(b0 + bb);
                let last = if len == 0 { 0 } else { (len - 1) / tc * tc };
                if last != t0 {
                    continue;
                }
                for l in 0..ld {
                    let from = (l * bc + bb) * h;
                    let to = l * st_ld + (b0 + bb) * st_b;
                    y_h[to..to + h].copy_from_slice(&ph[from..from + h]);
                }
            }
        }
        ctx.check_lost()?;
        self.timing = None;
        self.stats.forwards += 1;
        self.stats.split_forwards += 1;
        Ok(GruOutput { y, y_h, dims })
    }

    /// Records every layer of a forward over `s`'s shape into `encoder`: the input
    /// projection, then the recurrence, each in a compute pass of its own (so that each can
    /// carry its own timestamps when profiling); then resolves the timestamps. `s.x`,
    /// `s.lens` and `s.h0` must hold the input, the lengths and the initial state.
    pub(super) fn encode_layers(&self, s: &Scratch, encoder: &mut wgpu::CommandEncoder) {
        let dims = &s.key.dims;
        if let Some(v) = self.poison {
            // Debugging aid (set_poison): every output and scratch element starts as `v`.
            let queue = self.ctx.queue();
            for buf in [
                Some(&s.xp),
                Some(&s.y),
                Some(&s.yh),
                Some(&s.gates),
                s.inter.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                let fill = vec![v; (buf.size() / 4) as usize];
                queue.write_buffer(buf, 0, bytemuck::cast_slice(&fill));
            }
        }
        let groups_j = (self.hidden_size as u32).div_ceil(STEP_WG);
        let groups_b = (dims.batch as u32).div_ceil(STEP_NB);
        let groups_d = dims.num_directions as u32;
        let step_pipelines = self.step_pipelines.get(self.step_kernel());
        let single = step_pipelines.len() == 1;
        let persistent = match (s.key.path, &self.persistent) {
            (KernelPath::Persistent, Some((p, _))) => Some(p),
            _ => None,
        };
        let pass_desc = |label: &'static str, first: u32| wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: s
                .timestamps
                .as_ref()
                .map(|ts| wgpu::ComputePassTimestampWrites {
                    query_set: &ts.set,
                    beginning_of_pass_write_index: Some(first),
                    end_of_pass_write_index: Some(first + 1),
                }),
        };
        for l in 0..self.layers.len() {
            let first = 4 * l as u32;
            {
                let mut pass = encoder.begin_compute_pass(&pass_desc("input projection", first));
                pass.set_pipeline(self.gemm_pipeline(s.key.gemm, l));
                for d in &s.gemm_dispatches[l] {
                    pass.set_bind_group(0, &s.gemm_binds[l], &[d.offset]);
                    pass.dispatch_workgroups(d.groups_x, d.groups_y, 1);
                }
            }
            let mut pass = encoder.begin_compute_pass(&pass_desc("recurrence", first + 2));
            if let Some(p) = persistent {
                pass.set_pipeline(p);
                for &offset in &s.chunk_offsets {
                    pass.set_bind_group(0, &s.step_binds[l], &[offset]);
                    pass.dispatch_workgroups(groups_b, groups_d, 1);
                }
                continue;
            }
            if single {
                pass.set_pipeline(&step_pipelines[0]);
            }
            for &offset in &s.chunk_offsets {
                pass.set_bind_group(0, &s.step_binds[l], &[offset]);
                for p in step_pipelines {
                    if !single {
                        pass.set_pipeline(p);
                    }
                    pass.dispatch_workgroups(groups_j, groups_b, groups_d);
                }
            }
        }
        if let Some(ts) = &s.timestamps {
            encoder.resolve_query_set(&ts.set, 0..ts.count, &ts.resolve, 0);
            encoder.copy_buffer_to_buffer(&ts.resolve, 0, &ts.read, 0, 8 * ts.count as u64);
        }
    }

    /// The GPU time recorded by `s`'s timestamps in `submission` (`None` unless profiling).
    pub(super) fn read_timing(
        &self,
        s: &Scratch,
        submission: wgpu::SubmissionIndex,
    ) -> Result<Option<ForwardTiming>> {
        let Some(ts) = &s.timestamps else {
            return Ok(None);
        };
        let ticks = read_bytes(&self.ctx, &ts.read, submission)?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&ticks);
        let period = self.ctx.queue().get_timestamp_period() as f64;
        let span = |k: usize| match (ticks.get(k), ticks.get(k + 1)) {
            (Some(&a), Some(&b)) => b.saturating_sub(a) as f64 * period,
            _ => 0.0,
        };
        let mut timing = ForwardTiming::default();
        for l in 0..self.layers.len() {
            timing.input_projection_ns += span(4 * l);
            timing.recurrence_ns += span(4 * l + 2);
        }
        Ok(Some(timing))
    }
}

/// Maps `buffer` after `submission` completes and returns its bytes.
pub(super) fn read_bytes(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    submission: wgpu::SubmissionIndex,
) -> Result<Vec<u8>> {
    read_prefix(ctx, buffer, buffer.size(), submission)
}

/// Maps the first `bytes` of `buffer` after `submission` completes and returns them.
pub(super) fn read_prefix(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    bytes: u64,
    submission: wgpu::SubmissionIndex,
) -> Result<Vec<u8>> {
    let slice = buffer.slice(..bytes);
    let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        sender.send(r).ok();
    });
    ctx.device()
        .poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: None,
        })
        .map_err(|e| GruError::Gpu {
            operation: "waiting for the forward".into(),
            message: e.to_string(),
        })?;
    match pollster::block_on(receiver.receive()) {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            return Err(GruError::Gpu {
                operation: "reading results back".into(),
                message: format!("{e}; {}", ctx.errors.take().join("; ")),
            })
        }
        None => {
            return Err(GruError::Gpu {
                operation: "reading results back".into(),
                message: "the map callback was dropped".into(),
            })
        }
    }
    let out = {
        let view = slice.get_mapped_range().map_err(|e| GruError::Gpu {
            operation: "reading results back".into(),
            message: format!("{e:?}"),
        })?;
        view.to_vec()
    };
    buffer.unmap();
    Ok(out)
}
