//! A GRU layer resident on the GPU: weights uploaded once, pipelines built once, scratch
//! buffers kept between forwards of the same shape.

use wgpu::util::DeviceExt;

use crate::error::{GruError, Result};
use crate::gpu::context::GpuContext;
use crate::input::{Dims, GruInput, GruOutput};
use crate::shaders::Kernel;
use crate::weights::{transpose, Convention, GruWeights};

/// Invocations per workgroup of the step kernels (`WG` override of `gru_step.wgsl`).
const STEP_WG: u32 = 64;
/// Batch entries per step invocation (`NB` in `gru_step.wgsl`).
const STEP_NB: u32 = 4;
/// Output tile of the input-projection GEMM (`TILE` in `input_projection.wgsl`).
const GEMM_TILE: u32 = 64;
/// Most K columns one GEMM dispatch walks: keeps every invocation's loop trips below
/// lavapipe's silent 65535 cap (REFERENCES.md §6); larger I is split over dispatches.
const GEMM_MAX_K: u32 = 16384;
/// Largest hidden size: the step kernels loop H times per invocation (REFERENCES.md §6).
pub const MAX_HIDDEN: usize = 32768;

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
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct StepParams {
    t: u32,
    batch: u32,
    _pad: [u32; 2],
}

/// One GEMM dispatch: its params slot and workgroup counts.
struct GemmDispatch {
    offset: u32,
    groups_x: u32,
    groups_y: u32,
}

/// Buffers and bind groups for one (T, B).
struct Scratch {
    seq_len: usize,
    batch: usize,
    x: wgpu::Buffer,
    xp: wgpu::Buffer,
    h0: wgpu::Buffer,
    y: wgpu::Buffer,
    gates: wgpu::Buffer,
    readback: wgpu::Buffer,
    gemm_bind: wgpu::BindGroup,
    step_bind: wgpu::BindGroup,
    gemm_dispatches: Vec<GemmDispatch>,
    // Kept alive for the bind groups; referenced only through them.
    _gemm_params: wgpu::Buffer,
    _step_params: wgpu::Buffer,
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
}

/// A single-layer, single-direction GRU whose weights live on the GPU.
///
/// Shapes as in [`crate::cpu::forward`]: `X[T, B, I]`, `initial_h[B, H]` →
/// `Y[T, B, H]`, `Y_h[B, H]`; gate order z, r, h. A forward is one command encoder and
/// one submit: one GEMM (split into a few dispatches only past device limits) for the
/// input projection of every step, then per step one fused dispatch (reset-after) or two
/// (reset-before), then one readback of `Y` and `Y_h`.
pub struct GpuGru {
    ctx: GpuContext,
    convention: Convention,
    input_size: usize,
    hidden_size: usize,
    wt: wgpu::Buffer,
    rt: wgpu::Buffer,
    wb: wgpu::Buffer,
    rb: wgpu::Buffer,
    gemm_layout: wgpu::BindGroupLayout,
    step_layout: wgpu::BindGroupLayout,
    gemm: wgpu::ComputePipeline,
    step_pipelines: Vec<wgpu::ComputePipeline>,
    uniform_stride: u32,
    scratch: Option<Scratch>,
    poison: Option<f32>,
    stats: ModelStats,
}

impl std::fmt::Debug for GpuGru {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuGru")
            .field("adapter", &self.ctx.adapter_info().name)
            .field("convention", &self.convention)
            .field("input_size", &self.input_size)
            .field("hidden_size", &self.hidden_size)
            .field("stats", &self.stats)
            .finish()
    }
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
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

fn uniform_entry(binding: u32, size: u64) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: wgpu::BufferSize::new(size),
        },
        count: None,
    }
}

/// Runs `f` inside validation and out-of-memory error scopes; any error becomes
/// [`GruError::Gpu`] naming `operation`.
fn scoped<T>(ctx: &GpuContext, operation: &str, f: impl FnOnce() -> T) -> Result<T> {
    let device = ctx.device();
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let value = f();
    let oom = pollster::block_on(oom.pop());
    let validation = pollster::block_on(validation.pop());
    if let Some(e) = oom.or(validation) {
        return Err(GruError::Gpu {
            operation: operation.to_string(),
            message: e.to_string(),
        });
    }
    let uncaptured = ctx.errors.take();
    if !uncaptured.is_empty() {
        return Err(GruError::Gpu {
            operation: operation.to_string(),
            message: uncaptured.join("; "),
        });
    }
    Ok(value)
}

fn uniform_binding(buffer: &wgpu::Buffer, size: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset: 0,
        size: wgpu::BufferSize::new(size),
    })
}

fn bytes_of(what: &str, elements: usize) -> Result<u64> {
    (elements as u64)
        .checked_mul(4)
        .ok_or_else(|| GruError::invalid(what, "a byte size that fits in u64", elements))
}

impl GpuGru {
    /// Uploads `weights` to the device of `ctx` and builds the pipelines.
    ///
    /// Errors when the weights do not fit the device's limits, when `H` exceeds
    /// [`MAX_HIDDEN`], or when the device reports an error while building.
    pub fn new(ctx: &GpuContext, weights: &GruWeights) -> Result<Self> {
        let (i, h) = (weights.input_size(), weights.hidden_size());
        if h > MAX_HIDDEN {
            return Err(GruError::invalid(
                "hidden_size",
                format!("at most {MAX_HIDDEN} on the GPU path"),
                h,
            ));
        }
        let limits = ctx.limits();
        let binding_limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            .min(u32::MAX as u64);
        let check = |what: &str, bytes: u64| -> Result<()> {
            if bytes > binding_limit {
                return Err(GruError::DeviceLimit {
                    what: what.to_string(),
                    limit: "max_storage_buffer_binding_size",
                    needed: bytes,
                    available: binding_limit,
                });
            }
            Ok(())
        };
        check("weights Wᵀ [I, 3H]", bytes_of("W", 3 * h * i)?)?;
        check("weights Rᵀ [H, 3H]", bytes_of("R", 3 * h * h)?)?;
        let groups_j = (h as u32).div_ceil(STEP_WG);
        let groups_n = (3 * h as u32).div_ceil(GEMM_TILE);
        let max_groups = limits.max_compute_workgroups_per_dimension;
        if groups_j.max(groups_n) > max_groups {
            return Err(GruError::DeviceLimit {
                what: format!("hidden size {h}"),
                limit: "max_compute_workgroups_per_dimension",
                needed: groups_j.max(groups_n) as u64,
                available: max_groups as u64,
            });
        }
        if limits.max_storage_buffers_per_shader_stage < 6 {
            return Err(GruError::DeviceLimit {
                what: "the step kernels (6 storage buffers)".into(),
                limit: "max_storage_buffers_per_shader_stage",
                needed: 6,
                available: limits.max_storage_buffers_per_shader_stage as u64,
            });
        }
        if limits.max_compute_invocations_per_workgroup < 256 {
            return Err(GruError::DeviceLimit {
                what: "the input-projection kernel (16×16 invocations)".into(),
                limit: "max_compute_invocations_per_workgroup",
                needed: 256,
                available: limits.max_compute_invocations_per_workgroup as u64,
            });
        }

        let device = ctx.device();
        scoped(ctx, "uploading weights and building pipelines", || {
            let h3 = 3 * h;
            let upload = |label: &str, data: &[f32]| {
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytemuck::cast_slice(data),
                    usage: wgpu::BufferUsages::STORAGE,
                })
            };
            let wt = upload("Wt [I, 3H]", &transpose(weights.w(), h3, i));
            let rt = upload("Rt [H, 3H]", &transpose(weights.r(), h3, h));
            let wb = upload("Wb [3H]", &weights.b()[..h3]);
            let rb = upload("Rb [3H]", &weights.b()[h3..]);

            let gemm_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("input_projection layout"),
                entries: &[
                    storage_entry(0, true),
                    storage_entry(1, true),
                    storage_entry(2, true),
                    storage_entry(3, false),
                    uniform_entry(4, std::mem::size_of::<GemmParams>() as u64),
                ],
            });
            let step_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("gru_step layout"),
                entries: &[
                    storage_entry(0, true),
                    storage_entry(1, true),
                    storage_entry(2, true),
                    storage_entry(3, true),
                    storage_entry(4, false),
                    storage_entry(5, false),
                    uniform_entry(6, std::mem::size_of::<StepParams>() as u64),
                ],
            });
            let pipeline = |kernel: Kernel,
                            layout: &wgpu::BindGroupLayout,
                            entry: &str,
                            constants: &[(&str, f64)]| {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(kernel.file_name()),
                    source: wgpu::ShaderSource::Wgsl(kernel.source().into()),
                });
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
            let gemm = pipeline(
                Kernel::InputProjection,
                &gemm_layout,
                "input_projection",
                &[],
            );
            let constants = [("HIDDEN", h as f64), ("WG", STEP_WG as f64)];
            let entries: &[&str] = match weights.convention() {
                Convention::ResetAfter => &["step_reset_after"],
                Convention::ResetBefore => &["gates_reset_before", "candidate_reset_before"],
            };
            let step_pipelines: Vec<_> = entries
                .iter()
                .map(|e| pipeline(Kernel::GruStep, &step_layout, e, &constants))
                .collect();
            let pipelines_created = 1 + step_pipelines.len();
            let align = limits.min_uniform_buffer_offset_alignment.max(16);
            GpuGru {
                ctx: ctx.clone(),
                convention: weights.convention(),
                input_size: i,
                hidden_size: h,
                wt,
                rt,
                wb,
                rb,
                gemm_layout,
                step_layout,
                gemm,
                step_pipelines,
                uniform_stride: align,
                scratch: None,
                poison: None,
                stats: ModelStats {
                    pipelines_created,
                    ..ModelStats::default()
                },
            }
        })
    }

    /// The context the model lives on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }
    /// The gate convention.
    pub fn convention(&self) -> Convention {
        self.convention
    }
    /// `I`.
    pub fn input_size(&self) -> usize {
        self.input_size
    }
    /// `H`.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }
    /// What the model has built and run so far.
    pub fn stats(&self) -> ModelStats {
        self.stats
    }

    /// Debugging aid: before every forward, fill the output and scratch buffers with
    /// `value` (e.g. NaN), so that any element a kernel fails to write shows up in the result.
    /// `None` (the default) turns it off.
    pub fn set_poison(&mut self, value: Option<f32>) {
        self.poison = value;
    }

    /// Checks that buffers for (T, B) fit the device; returns the sizes in bytes of
    /// X, XP, Y, readback and the step params.
    fn plan(&self, dims: &Dims) -> Result<[u64; 5]> {
        let limits = self.ctx.limits();
        let (t, b, i, h) = (dims.seq_len, dims.batch, dims.input_size, dims.hidden_size);
        let rows = t * b;
        let binding_limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            .min(u32::MAX as u64);
        let x = bytes_of("X", rows * i)?;
        let xp = bytes_of("XP", rows * 3 * h)?;
        let y = bytes_of("Y", rows * h)?;
        for (what, bytes) in [
            (format!("input X [T={t}, B={b}, I={i}]"), x),
            (
                format!("input projection XP [T·B={rows}, 3H={}]", 3 * h),
                xp,
            ),
            (format!("output Y [T={t}, B={b}, H={h}]"), y),
        ] {
            if bytes > binding_limit {
                return Err(GruError::DeviceLimit {
                    what,
                    limit: "max_storage_buffer_binding_size",
                    needed: bytes,
                    available: binding_limit,
                });
            }
        }
        let readback = y + bytes_of("Y_h", b * h)?;
        let params = (t as u64) * self.uniform_stride as u64;
        for (what, bytes) in [
            ("readback of Y and Y_h".to_string(), readback),
            (format!("step parameters for T={t}"), params),
        ] {
            if bytes > limits.max_buffer_size {
                return Err(GruError::DeviceLimit {
                    what,
                    limit: "max_buffer_size",
                    needed: bytes,
                    available: limits.max_buffer_size,
                });
            }
        }
        let groups_b = b.div_ceil(STEP_NB as usize) as u64;
        if groups_b > limits.max_compute_workgroups_per_dimension as u64 {
            return Err(GruError::DeviceLimit {
                what: format!("batch size {b}"),
                limit: "max_compute_workgroups_per_dimension",
                needed: groups_b,
                available: limits.max_compute_workgroups_per_dimension as u64,
            });
        }
        Ok([x, xp, y, readback, params])
    }

    fn ensure_scratch(&mut self, dims: &Dims) -> Result<()> {
        if let Some(s) = &self.scratch {
            if s.seq_len == dims.seq_len && s.batch == dims.batch {
                return Ok(());
            }
        }
        let [x_bytes, xp_bytes, y_bytes, readback_bytes, params_bytes] = self.plan(dims)?;
        self.scratch = None; // free the old buffers before allocating new ones
        let (t, b, h) = (dims.seq_len, dims.batch, dims.hidden_size);
        let rows = (t * b) as u32;
        let max_groups = self.ctx.limits().max_compute_workgroups_per_dimension;

        // GEMM dispatches: rows in chunks of ≤ max_groups tiles, K in chunks of GEMM_MAX_K.
        let rows_per_dispatch = max_groups.saturating_mul(GEMM_TILE);
        let (n, k) = (3 * h as u32, self.input_size as u32);
        let mut gemm_params = Vec::new();
        let mut row_offset = 0u32;
        while row_offset < rows {
            let chunk = (rows - row_offset).min(rows_per_dispatch);
            let mut k_begin = 0u32;
            while k_begin < k {
                let k_end = (k_begin + GEMM_MAX_K).min(k);
                gemm_params.push((
                    GemmParams {
                        m: row_offset + chunk,
                        n,
                        k,
                        row_offset,
                        k_begin,
                        k_end,
                        accumulate: (k_begin > 0) as u32,
                        _pad: 0,
                    },
                    n.div_ceil(GEMM_TILE),
                    chunk.div_ceil(GEMM_TILE),
                ));
                k_begin = k_end;
            }
            row_offset += chunk;
        }
        let stride = self.uniform_stride as usize;
        let mut gemm_bytes = vec![0u8; gemm_params.len() * stride];
        let mut gemm_dispatches = Vec::new();
        for (slot, (p, gx, gy)) in gemm_params.iter().enumerate() {
            gemm_bytes[slot * stride..][..32].copy_from_slice(bytemuck::bytes_of(p));
            gemm_dispatches.push(GemmDispatch {
                offset: (slot * stride) as u32,
                groups_x: *gx,
                groups_y: *gy,
            });
        }
        let mut step_bytes = vec![0u8; params_bytes as usize];
        for step in 0..t {
            let p = StepParams {
                t: step as u32,
                batch: b as u32,
                _pad: [0; 2],
            };
            step_bytes[step * stride..][..16].copy_from_slice(bytemuck::bytes_of(&p));
        }

        let ctx = self.ctx.clone();
        let device = ctx.device();
        let scratch = scoped(&ctx, "allocating buffers for a forward", || {
            let storage = |label: &str, size: u64, extra: wgpu::BufferUsages| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | extra,
                    mapped_at_creation: false,
                })
            };
            let none = wgpu::BufferUsages::empty();
            let x = storage("X [T, B, I]", x_bytes, none);
            let xp = storage("XP [T·B, 3H]", xp_bytes, none);
            let h0 = storage("h0 [B, H]", 4 * (b * h) as u64, none);
            let y = storage("Y [T, B, H]", y_bytes, wgpu::BufferUsages::COPY_SRC);
            let gates = storage("gates [2, B, H]", 8 * (b * h) as u64, none);
            let readback = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback Y, Y_h"),
                size: readback_bytes,
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
            let step_params = uniforms("gru_step params", &step_bytes);
            let gemm_bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("input_projection bindings"),
                layout: &self.gemm_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: x.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: self.wt.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: self.wb.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: xp.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: uniform_binding(
                            &gemm_params,
                            std::mem::size_of::<GemmParams>() as u64,
                        ),
                    },
                ],
            });
            let step_bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("gru_step bindings"),
                layout: &self.step_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: xp.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: self.rt.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: self.rb.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: h0.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: y.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 5,
                        resource: gates.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 6,
                        resource: uniform_binding(
                            &step_params,
                            std::mem::size_of::<StepParams>() as u64,
                        ),
                    },
                ],
            });
            Scratch {
                seq_len: t,
                batch: b,
                x,
                xp,
                h0,
                y,
                gates,
                readback,
                gemm_bind,
                step_bind,
                gemm_dispatches,
                _gemm_params: gemm_params,
                _step_params: step_params,
            }
        })?;
        self.scratch = Some(scratch);
        self.stats.scratch_allocations += 1;
        Ok(())
    }

    /// Runs the GRU over `input` on the GPU.
    ///
    /// Shapes: `X[T, B, I]`, `initial_h[B, H]` (zeros when absent) → `Y[T, B, H]`,
    /// `Y_h[B, H]`. `B = 0` gives empty outputs. Errors: a length that does not match the
    /// model ([`GruError::Shape`]), a problem beyond the device's limits
    /// ([`GruError::DeviceLimit`]), or a device error ([`GruError::Gpu`]).
    pub fn forward(&mut self, input: &GruInput<'_>) -> Result<GruOutput> {
        let dims = input.validate_sizes(self.input_size, self.hidden_size)?;
        let (t, b, h) = (dims.seq_len, dims.batch, dims.hidden_size);
        if b == 0 {
            return Ok(GruOutput {
                y: Vec::new(),
                y_h: Vec::new(),
                dims,
            });
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
        let y_bytes = 4 * (t * b * h) as u64;
        let state_bytes = 4 * (b * h) as u64;

        let result = scoped(ctx, "forward", || {
            queue.write_buffer(&s.x, 0, bytemuck::cast_slice(input.x));
            match input.initial_h {
                Some(h0) => queue.write_buffer(&s.h0, 0, bytemuck::cast_slice(h0)),
                None => queue.write_buffer(&s.h0, 0, &vec![0u8; state_bytes as usize]),
            }
            if let Some(v) = self.poison {
                for buf in [&s.xp, &s.y, &s.gates] {
                    let fill = vec![v; (buf.size() / 4) as usize];
                    queue.write_buffer(buf, 0, bytemuck::cast_slice(&fill));
                }
            }

            let groups_j = (h as u32).div_ceil(STEP_WG);
            let groups_b = (b as u32).div_ceil(STEP_NB);
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("gru forward"),
            });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("gru forward"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&self.gemm);
                for d in &s.gemm_dispatches {
                    pass.set_bind_group(0, &s.gemm_bind, &[d.offset]);
                    pass.dispatch_workgroups(d.groups_x, d.groups_y, 1);
                }
                let single = self.step_pipelines.len() == 1;
                if single {
                    pass.set_pipeline(&self.step_pipelines[0]);
                }
                for step in 0..t {
                    pass.set_bind_group(0, &s.step_bind, &[step as u32 * self.uniform_stride]);
                    for p in &self.step_pipelines {
                        if !single {
                            pass.set_pipeline(p);
                        }
                        pass.dispatch_workgroups(groups_j, groups_b, 1);
                    }
                }
            }
            encoder.copy_buffer_to_buffer(&s.y, 0, &s.readback, 0, y_bytes);
            encoder.copy_buffer_to_buffer(
                &s.y,
                y_bytes - state_bytes,
                &s.readback,
                y_bytes,
                state_bytes,
            );
            queue.submit([encoder.finish()])
        })?;

        let data = read_buffer(ctx, &s.readback, result)?;
        self.stats.forwards += 1;
        let split = t * b * h;
        let y_h = data[split..].to_vec();
        let mut y = data;
        y.truncate(split);
        Ok(GruOutput { y, y_h, dims })
    }
}

/// Maps `buffer` after `submission` completes and returns its contents as `f32`.
fn read_buffer(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    submission: wgpu::SubmissionIndex,
) -> Result<Vec<f32>> {
    let slice = buffer.slice(..);
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
        bytemuck::pod_collect_to_vec::<u8, f32>(&view)
    };
    buffer.unmap();
    Ok(out)
}
