//! The per-shape scratch of a model: the dispatch plan (GEMM pieces, step ranges, layer
//! parameters, written from the `#[repr(C)]` parameter structs), the buffers and the bind
//! groups of one forward shape.

use wgpu::util::DeviceExt;

use crate::error::Result;
use crate::gpu::errors::scoped_async;
use crate::gpu::kernels::{GEMM_MAX_K, GEMM_TILE};
use crate::gpu::model::GpuGru;
use crate::gpu::params::{
    entry, uniform_binding, GemmParams, LayerParams, StepParams, GEMM_PARAMS, LAYER_PARAMS,
    STEP_PARAMS,
};
use crate::gpu::path::{GemmKernel, KernelPath};
use crate::gpu::timestamps::Timestamps;
use crate::input::{Dims, Layout};

/// One GEMM dispatch: its params slot and workgroup counts.
pub(super) struct GemmDispatch {
    pub(super) offset: u32,
    pub(super) groups_x: u32,
    pub(super) groups_y: u32,
}

/// What the scratch buffers were built for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct ShapeKey {
    pub(super) dims: Dims,
    pub(super) path: KernelPath,
    pub(super) gemm: GemmKernel,
    /// Whether the step bind groups hold `R` row-major (the split kernel) instead of `Rᵀ`.
    pub(super) row_major_r: bool,
    pub(super) profiling: bool,
}

/// Buffers and bind groups for one shape.
pub(super) struct Scratch {
    pub(super) key: ShapeKey,
    pub(super) x: wgpu::Buffer,
    pub(super) xp: wgpu::Buffer,
    pub(super) inter: Option<wgpu::Buffer>,
    pub(super) h0: wgpu::Buffer,
    pub(super) y: wgpu::Buffer,
    pub(super) yh: wgpu::Buffer,
    pub(super) gates: wgpu::Buffer,
    pub(super) lens: wgpu::Buffer,
    pub(super) readback: wgpu::Buffer,
    pub(super) gemm_binds: Vec<wgpu::BindGroup>,
    pub(super) step_binds: Vec<wgpu::BindGroup>,
    pub(super) gemm_dispatches: Vec<Vec<GemmDispatch>>,
    /// Persistent path: the step-params offset of each dispatch.
    pub(super) chunk_offsets: Vec<u32>,
    pub(super) timestamps: Option<Timestamps>,
    // Kept alive for the bind groups; referenced only through them.
    pub(super) _uniforms: [wgpu::Buffer; 3],
}

impl GpuGru {
    /// Allocates the buffers and bind groups of one shape (after checking that they fit).
    pub(super) async fn build_scratch(&mut self, key: ShapeKey) -> Result<Scratch> {
        let (dims, path, gemm) = (&key.dims, key.path, key.gemm);
        // Step ranges: one step each (step-fused), or chunks (persistent).
        let chunk = match (path, &self.pipelines.persistent) {
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
        let scratch = scoped_async(&ctx, "allocating buffers for a forward", || {
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
                    layout: &self.pipelines.gemm_layout,
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
                    layout: &self.pipelines.step_layout,
                    entries: &[
                        entry(0, xp.as_entire_binding()),
                        entry(
                            1,
                            if key.row_major_r {
                                layer.rows.as_entire_binding()
                            } else {
                                layer.rec.as_entire_binding()
                            },
                        ),
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
        })
        .await?;
        self.stats.scratch_allocations += 1;
        Ok(scratch)
    }
}
