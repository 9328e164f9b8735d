//! Recording training's work (buffers, GEMMs, step dispatches, copies) and encoding it as one
//! command encoder and one submit.

use std::collections::HashMap;

use wgpu::util::DeviceExt;

use crate::error::Result;
use crate::gpu::limits::{binding_limit, check_binding, check_limit};
use crate::gpu::model::GpuGru;
use crate::gpu::params::{
    entry, uniform_binding, StepParams, TrainGemmParams, TrainLayerParams, STEP_PARAMS,
    TRAIN_GEMM_PARAMS,
};
use crate::gpu::weights::LayerWeights;
use crate::input::Dims;

use super::{StepSet, TrainPipelines, TrainShape};

/// Rows of K one GEMM dispatch sums: 16 per loop trip, so at most 32768 trips per invocation
/// (half of lavapipe's 65535-trip cap, REFERENCES.md §6); longer sums are split into several
/// dispatches that accumulate, in a fixed order.
pub(super) const TRAIN_GEMM_MAX_K: usize = 16 * 32768;

/// Rows of K one dispatch of the direct GEMM sums (one per loop trip): half of lavapipe's
/// 65535-trip cap.
pub(super) const TRAIN_GEMM_DIRECT_MAX_K: usize = 32768;

/// Entries per workgroup of `gru_train.wgsl`'s step kernels.
pub(super) const STEP_ENTRIES: u32 = 4;

/// Workgroup edge of `train_gemm.wgsl`.
const GEMM_TILE: usize = 16;

/// What encoding needs of the device's limits.
#[derive(Clone, Copy, Debug)]
pub(in crate::gpu) struct PlanLimits {
    max_groups: u32,
    stride: u32,
}

/// Every buffer of a training forward and backward over `dims` whose size could pass a
/// binding limit: its name and shape for `dims.batch` entries, and its floats per entry of the
/// batch and independent of it.
fn train_buffers(dims: &Dims) -> [(String, u64, u64); 7] {
    let (t, b, h) = (dims.seq_len, dims.batch, dims.hidden_size);
    let (nd, nl) = (dims.num_directions, dims.num_layers);
    let k = dims.input_size.max(nd * h);
    let [t, h, nd, nl, k] = [t, h, nd, nl, k].map(|v| v as u64);
    [
        (format!("training X [T={t}, B={b}, K={k}]"), t * k, 0),
        (
            format!("training XP [T={t}, B={b}, D·3H={}]", nd * 3 * h),
            t * nd * 3 * h,
            0,
        ),
        (
            format!("state sequence [D={nd}, T+1={}, B={b}, H={h}]", t + 1),
            nd * (t + 1) * h,
            0,
        ),
        (
            format!("reserve space [D={nd}, T={t}, B={b}, 4H={}]", 4 * h),
            nd * t * 4 * h,
            0,
        ),
        (
            format!(
                "gate gradients G_x and G_h [2, T={t}, B={b}, D·3H={}]",
                nd * 3 * h
            ),
            2 * t * nd * 3 * h,
            0,
        ),
        (
            format!("initial states and dY_h [L·D={}, B={b}, H={h}]", nl * nd),
            nl * nd * h,
            0,
        ),
        (
            "one layer's and direction's weight gradients [3H·K + 3H·H + 6H]".to_string(),
            0,
            3 * h * k + 3 * h * h + 6 * h,
        ),
    ]
}

/// Checks every buffer of a training forward and backward over `dims` against the device's
/// binding limits, and the batch against the dispatch limit.
fn check_train(limits: &wgpu::Limits, dims: &Dims, stride: u32) -> Result<PlanLimits> {
    let b = dims.batch;
    for (what, per_entry, fixed) in train_buffers(dims) {
        check_binding(limits, what, 4 * (per_entry * b as u64 + fixed))?;
    }
    let max_groups = limits.max_compute_workgroups_per_dimension;
    check_limit(
        format!("batch {b} (training step kernels: one workgroup row per {STEP_ENTRIES} entries)"),
        "max_compute_workgroups_per_dimension",
        (b as u64).div_ceil(STEP_ENTRIES as u64),
        max_groups as u64,
    )?;
    let t = dims.seq_len as u64;
    check_limit(
        format!("{} step-parameter slots of {stride} bytes", t + 1),
        "max_buffer_size",
        (t + 1) * stride as u64,
        limits.max_buffer_size,
    )?;
    Ok(PlanLimits {
        max_groups: max_groups.max(1),
        stride,
    })
}

/// The pieces a training forward and backward over `dims` run in: `(steps, entries)` of
/// each, with the plan's limits checked for one piece.
///
/// The whole problem when every buffer fits the device's binding limit; else chunks of the
/// batch, the most entries that fit (a multiple of 4, the step kernels' entries per
/// workgroup, where at least 4 fit); and where one entry of the whole sequence does not fit,
/// a forward-only network (`reverse` false) splits the sequence over time as the inference
/// forward does ([`crate::gpu::limits`]' split): pieces of at most 4 entries and the most
/// steps that fit, the state and its gradient carried from piece to piece. A network with a
/// reverse direction cannot split over time: a
/// [`crate::GruError::DeviceLimit`] naming that, as one step of one entry that does not fit.
pub(super) fn train_pieces(
    limits: &wgpu::Limits,
    dims: &Dims,
    stride: u32,
    reverse: bool,
) -> Result<((usize, usize), PlanLimits)> {
    let room = binding_limit(limits);
    // The entries (or steps of `per`) that fit every buffer that grows with them.
    let fit = |d: &Dims| {
        train_buffers(d)
            .iter()
            .filter(|(_, per_entry, _)| *per_entry > 0)
            .map(|(_, per_entry, fixed)| room.saturating_sub(4 * fixed) / (4 * per_entry))
            .min()
            .unwrap_or(u64::MAX)
    };
    let most = 4 * limits.max_compute_workgroups_per_dimension.max(1) as u64;
    let batch = dims.batch as u64;
    let entries = fit(dims);
    let (steps, chunk) = if entries >= 1 || dims.seq_len <= 1 {
        let mut chunk = entries.min(most).min(batch).max(1);
        if chunk < batch && chunk >= STEP_ENTRIES as u64 {
            chunk -= chunk % STEP_ENTRIES as u64;
        }
        (dims.seq_len, chunk as usize)
    } else if reverse {
        return Err(crate::GruError::DeviceLimit {
            what: format!(
                "one entry of T = {} steps in training (a network with a reverse direction                  cannot be split over time)",
                dims.seq_len
            ),
            limit: "max_storage_buffer_binding_size",
            needed: train_buffers(&Dims { batch: 1, ..*dims })
                .iter()
                .map(|(_, per_entry, fixed)| 4 * (per_entry + fixed))
                .max()
                .unwrap_or(0),
            available: room,
        });
    } else {
        // Over time: the most steps whose buffers fit for a piece of up to 4 entries (the
        // buffers grow with T·B, so halving the steps halves them).
        let chunk = batch.min(most).min(STEP_ENTRIES as u64).max(1) as usize;
        let piece = |t: usize| Dims {
            seq_len: t,
            batch: chunk,
            ..*dims
        };
        let (mut lo, mut hi) = (1, dims.seq_len);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fit(&piece(mid)) >= chunk as u64 {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        (lo, chunk)
    };
    let plan = check_train(
        limits,
        &Dims {
            seq_len: steps,
            batch: chunk,
            ..*dims
        },
        stride,
    )?;
    Ok(((steps, chunk), plan))
}

/// The resources of one layer's step dispatches: bindings 0 to 4 and 6 of `gru_train.wgsl`
/// (see there), and what binding 5 holds: the layer's parameters, then the entries' lengths.
pub(super) struct StepBinding {
    pub(super) buffers: [wgpu::Buffer; 6],
    pub(super) layer: TrainLayerParams,
    pub(super) lens: Vec<u32>,
}

/// Work a caller records itself into the plan's command encoder, between the plan's own
/// operations (the trainer's head, optimizer and weight refresh); a compute pass open
/// before it is ended first.
pub(super) type External<'m> = Box<dyn FnOnce(&mut wgpu::CommandEncoder) + 'm>;

enum Op<'m> {
    Clear(wgpu::Buffer),
    External(External<'m>),
    Copy {
        from: wgpu::Buffer,
        from_offset: u64,
        to: wgpu::Buffer,
        to_offset: u64,
        bytes: u64,
    },
    Gemm {
        a: wgpu::Buffer,
        b: wgpu::Buffer,
        bias: wgpu::Buffer,
        c: wgpu::Buffer,
        slot: u32,
        groups: (u32, u32),
    },
    Step {
        binding: usize,
        forward: bool,
        pipeline: usize,
        /// The slot of its step parameters.
        slot: usize,
    },
}

/// A training forward's or backward's work, recorded in order, then encoded by
/// [`Plan::submit`].
pub(super) struct Plan<'m> {
    model: &'m GpuGru,
    pipelines: &'m TrainPipelines,
    limits: PlanLimits,
    ops: Vec<Op<'m>>,
    gemm_params: Vec<TrainGemmParams>,
    bindings: Vec<StepBinding>,
    shape: TrainShape,
    /// The step ranges `(s, s_end)` dispatched, each one slot of the step parameters.
    step_ranges: Vec<(usize, usize)>,
    step_slots: HashMap<(usize, usize), usize>,
}

/// One direction's weight gradients: what [`Plan::weight_gradients`] reads and where it
/// writes.
pub(super) struct WeightGrads<'a> {
    pub(super) grads: &'a wgpu::Buffer,
    pub(super) gh_base: usize,
    pub(super) input: &'a wgpu::Buffer,
    pub(super) hs: &'a wgpu::Buffer,
    pub(super) reserve: &'a wgpu::Buffer,
    pub(super) out: &'a wgpu::Buffer,
    pub(super) d: usize,
    pub(super) k: usize,
    pub(super) dims: &'a Dims,
    pub(super) reset_before: bool,
    /// Add to what `out` holds (every chunk of the batch after the first).
    pub(super) accumulate: bool,
}

fn u(v: usize) -> u32 {
    // Every element offset and stride is below a binding's size in floats, which
    // check_train bounded by the device's binding limit (< 2^32 bytes).
    v as u32
}

impl<'m> Plan<'m> {
    /// An empty plan for `model`, dispatching `pipelines`.
    pub(super) fn new(
        model: &'m GpuGru,
        pipelines: &'m TrainPipelines,
        limits: &PlanLimits,
        shape: TrainShape,
    ) -> Self {
        Plan {
            model,
            pipelines,
            limits: *limits,
            ops: Vec::new(),
            gemm_params: Vec::new(),
            bindings: Vec::new(),
            shape,
            step_ranges: Vec::new(),
            step_slots: HashMap::new(),
        }
    }

    fn device(&self) -> &wgpu::Device {
        self.model.ctx.device()
    }

    /// The shape of the plan's step kernels.
    pub(super) fn shape(&self) -> TrainShape {
        self.shape
    }

    /// A storage buffer holding `data`, zero-padded to whole vec4s (at least one: storage
    /// bindings must not be empty; the direct GEMM views its operands as vec4 arrays).
    pub(super) fn upload(&self, label: &str, data: &[u8]) -> wgpu::Buffer {
        let mut bytes = data.to_vec();
        bytes.resize(bytes.len().max(16).next_multiple_of(16), 0);
        self.device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// A zeroed storage buffer of `bytes`, rounded up to whole vec4s (at least one).
    pub(super) fn storage(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(16),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A buffer the host maps to read `bytes`.
    pub(super) fn readback(&self, bytes: u64) -> wgpu::Buffer {
        self.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("training readback"),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    pub(super) fn clear(&mut self, buffer: &wgpu::Buffer) {
        self.ops.push(Op::Clear(buffer.clone()));
    }

    /// Records `work` to run at this point of the plan (see [`External`]).
    pub(super) fn external(&mut self, work: External<'m>) {
        self.ops.push(Op::External(work));
    }

    pub(super) fn copy(
        &mut self,
        from: &wgpu::Buffer,
        from_offset: u64,
        to: &wgpu::Buffer,
        to_offset: u64,
        bytes: u64,
    ) {
        if bytes > 0 {
            self.ops.push(Op::Copy {
                from: from.clone(),
                from_offset,
                to: to.clone(),
                to_offset,
                bytes,
            });
        }
    }

    /// The layer parameters of `gru_train.wgsl` for `dims`.
    pub(super) fn layer_params(
        &self,
        dims: &Dims,
        gh_base: usize,
        carry_base: usize,
        from_start: bool,
    ) -> TrainLayerParams {
        let m = self.model;
        let h = dims.hidden_size;
        let reverse_mask = (0..dims.num_directions)
            .filter(|&d| m.direction.is_reverse(d))
            .fold(0u32, |acc, d| acc | (1 << d));
        TrainLayerParams {
            batch: u(dims.batch),
            seq_len: u(dims.seq_len),
            reverse_mask,
            has_clip: m.clip.is_some() as u32,
            clip: m.clip.unwrap_or(0.0),
            n_dir: u(dims.num_directions),
            rb_offset: u(dims.num_directions * 3 * h * h),
            gh_base: u(gh_base),
            carry_base: u(carry_base),
            from_start: from_start as u32,
            _pad: [0; 2],
        }
    }

    /// Registers a layer's step resources; returns its index for [`Plan::step`].
    pub(super) fn step_binding(&mut self, binding: StepBinding) -> usize {
        self.bindings.push(binding);
        self.bindings.len() - 1
    }

    /// Whether the GEMMs run `train_gemm_direct` (the model's input projection runs the
    /// direct kernel: CPU adapters) rather than the tiled `train_gemm`.
    fn direct_gemm(&self) -> bool {
        self.model.gemm_kernel() == crate::gpu::path::GemmKernel::Direct
    }

    /// The step pipelines of the plan's shape.
    fn steps(&self) -> &StepSet {
        match self.shape {
            TrainShape::Split => &self.pipelines.split,
            TrainShape::Direct => &self.pipelines.direct,
            TrainShape::Persistent { .. } => &self.pipelines.persistent,
        }
    }

    /// Every step of a layer's training forward over the resources of `binding`, in order:
    /// a dispatch per step and pipeline, or per range of steps (persistent).
    pub(super) fn forward_steps(&mut self, binding: usize, t: usize) {
        if let TrainShape::Persistent { steps } = self.shape {
            for s in (0..t).step_by(steps) {
                self.step(binding, true, 0, s, (s + steps).min(t));
            }
            return;
        }
        for s in 0..t {
            for p in 0..self.steps().forward.len() {
                self.step(binding, true, p, s, s + 1);
            }
        }
    }

    /// Every dispatch of a layer's backward over the resources of `binding`: n = T, T − 1,
    /// …, 0 (the last only finishes d initial_h), a dispatch per n and pipeline, or per range
    /// of them (persistent, each range run downwards).
    pub(super) fn backward_steps(&mut self, binding: usize, t: usize) {
        if let TrainShape::Persistent { steps } = self.shape {
            let mut end = t + 1;
            while end > 0 {
                let begin = end.saturating_sub(steps);
                self.step(binding, false, 0, begin, end);
                end = begin;
            }
            return;
        }
        for n in (1..=t).rev() {
            for p in 0..self.steps().backward.len() {
                self.step(binding, false, p, n, n + 1);
            }
        }
        // Dispatch 0 only finishes d initial_h; reset-before's candidate has nothing there.
        self.step(binding, false, 0, 0, 1);
    }

    /// Dispatch `pipeline` of the forward (or backward) step set over the resources of
    /// `binding`, with step parameters `s .. s_end`.
    fn step(&mut self, binding: usize, forward: bool, pipeline: usize, s: usize, s_end: usize) {
        let next = self.step_ranges.len();
        let slot = *self.step_slots.entry((s, s_end)).or_insert(next);
        if slot == next {
            self.step_ranges.push((s, s_end));
        }
        self.ops.push(Op::Step {
            binding,
            forward,
            pipeline,
            slot,
        });
    }

    /// `C = A·B (+ bias)` as described by `p` (with `k_begin = 0`, `k_end = K`), split into
    /// dispatches of at most [`TRAIN_GEMM_MAX_K`] rows of K.
    fn gemm(
        &mut self,
        a: &wgpu::Buffer,
        b: &wgpu::Buffer,
        bias: Option<&wgpu::Buffer>,
        c: &wgpu::Buffer,
        p: TrainGemmParams,
    ) {
        if p.m == 0 || p.n == 0 {
            return;
        }
        let most = self.limits.max_groups as usize;
        let direct = self.direct_gemm();
        let (tile_n, tile_m, max_k) = if direct {
            // train_gemm_direct's blocks (direct_quads in train_gemm.wgsl): row groups of
            // `quads` lanes, ⌈n/4⌉ rounded up to a power of two, at most 64.
            let quads = (p.n as usize).div_ceil(4).next_power_of_two().min(64);
            (4 * quads, 8 * (64 / quads), TRAIN_GEMM_DIRECT_MAX_K)
        } else {
            (GEMM_TILE, GEMM_TILE, TRAIN_GEMM_MAX_K)
        };
        let groups = (
            (p.n as usize).div_ceil(tile_n).min(most) as u32,
            (p.m as usize).div_ceil(tile_m).min(most) as u32,
        );
        let k = p.k_end as usize;
        let mut begin = 0;
        loop {
            let end = (begin + max_k).min(k);
            let chunk = TrainGemmParams {
                k_begin: u(begin),
                k_end: u(end),
                has_bias: (bias.is_some() && begin == 0) as u32,
                accumulate: (p.accumulate != 0 || begin > 0) as u32,
                ..p
            };
            self.gemm_params.push(chunk);
            self.ops.push(Op::Gemm {
                a: a.clone(),
                b: b.clone(),
                bias: bias.unwrap_or(&self.pipelines.ones).clone(),
                c: c.clone(),
                slot: u(self.gemm_params.len() - 1),
                groups,
            });
            begin = end;
            if begin >= k {
                break;
            }
        }
    }

    /// `XP[rows, D·3H] = X[rows, K] · Wᵀ + Wb` with the layer's uploaded `Wᵀ [K, D·3H]`.
    pub(super) fn input_projection(
        &mut self,
        x: &wgpu::Buffer,
        k: usize,
        w: &LayerWeights,
        xp: &wgpu::Buffer,
        rows: usize,
        width: usize,
    ) {
        let n_stride = width.next_multiple_of(4);
        self.gemm(
            x,
            &w.wt,
            Some(&w.wb),
            xp,
            TrainGemmParams {
                m: u(rows),
                n: u(width),
                k_end: u(k),
                a_sm: u(k),
                a_sk: 1,
                b_sk: u(n_stride),
                b_sn: 1,
                c_sm: u(width),
                c_sn: 1,
                ..Default::default()
            },
        );
    }

    /// `dX[rows, K] = G_x[rows, D·3H] · W[D·3H, K]`, W read from the uploaded `Wᵀ`.
    pub(super) fn input_gradient(
        &mut self,
        grads: &wgpu::Buffer,
        w: &LayerWeights,
        dx: &wgpu::Buffer,
        rows: usize,
        width: usize,
        k: usize,
    ) {
        let n_stride = width.next_multiple_of(4);
        self.gemm(
            grads,
            &w.wt,
            None,
            dx,
            TrainGemmParams {
                m: u(rows),
                n: u(k),
                k_end: u(width),
                a_sm: u(width),
                a_sk: 1,
                b_sk: 1,
                b_sn: u(n_stride),
                c_sm: u(k),
                c_sn: 1,
                ..Default::default()
            },
        );
    }

    /// One direction's `dW [3H, K]`, `dR [3H, H]` and `dB [6H]`, written to `g.out` in that
    /// order.
    pub(super) fn weight_gradients(&mut self, g: &WeightGrads<'_>) {
        let dims = g.dims;
        let (t, b, h, nd) = (
            dims.seq_len,
            dims.batch,
            dims.hidden_size,
            dims.num_directions,
        );
        let rows = t * b;
        let (width, h3) = (nd * 3 * h, 3 * h);
        let d = g.d;
        let accumulate = g.accumulate as u32;
        let dw = 0;
        let dr = dw + h3 * g.k;
        let db = dr + h3 * h;
        // dW = G_xᵀ X: A(m, row) = G_x[row, d·3H + m], B(row, n) = X[row, n].
        self.gemm(
            g.grads,
            g.input,
            None,
            g.out,
            TrainGemmParams {
                m: u(h3),
                n: u(g.k),
                k_end: u(rows),
                a_off: u(d * h3),
                a_sm: 1,
                a_sk: u(width),
                b_sk: u(g.k),
                b_sn: 1,
                c_off: u(dw),
                c_sm: u(g.k),
                c_sn: 1,
                accumulate,
                ..Default::default()
            },
        );
        // dR = G_hᵀ H_prev (step-ordered rows), reset-before's candidate rows against U.
        let gh = g.gh_base + d * rows * h3;
        let hs = d * (t + 1) * b * h;
        let state_rows = if g.reset_before { 2 * h } else { h3 };
        self.gemm(
            g.grads,
            g.hs,
            None,
            g.out,
            TrainGemmParams {
                m: u(state_rows),
                n: u(h),
                k_end: u(rows),
                a_off: u(gh),
                a_sm: 1,
                a_sk: u(h3),
                b_off: u(hs),
                b_sk: u(h),
                b_sn: 1,
                c_off: u(dr),
                c_sm: u(h),
                c_sn: 1,
                accumulate,
                ..Default::default()
            },
        );
        if g.reset_before {
            self.gemm(
                g.grads,
                g.reserve,
                None,
                g.out,
                TrainGemmParams {
                    m: u(h),
                    n: u(h),
                    k_end: u(rows),
                    a_off: u(gh + 2 * h),
                    a_sm: 1,
                    a_sk: u(h3),
                    b_off: u(d * rows * 4 * h + 3 * h),
                    b_sk: u(4 * h),
                    b_sn: 1,
                    c_off: u(dr + 2 * h * h),
                    c_sm: u(h),
                    c_sn: 1,
                    accumulate,
                    ..Default::default()
                },
            );
        }
        // dWb and dRb: column sums, 1ᵀ G (A = a ones vector, strides 0).
        for (off, sk, c_off) in [(d * h3, width, db), (gh, h3, db + h3)] {
            let ones = self.pipelines.ones.clone();
            self.gemm(
                &ones,
                g.grads,
                None,
                g.out,
                TrainGemmParams {
                    m: 1,
                    n: u(h3),
                    k_end: u(rows),
                    a_sm: 0,
                    a_sk: 0,
                    b_off: u(off),
                    b_sk: u(sk),
                    b_sn: 1,
                    c_off: u(c_off),
                    c_sm: 0,
                    c_sn: 1,
                    accumulate,
                    ..Default::default()
                },
            );
        }
    }

    /// Encodes every recorded operation in order into one command encoder and submits it.
    pub(super) fn submit(
        self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        label: &str,
    ) -> wgpu::SubmissionIndex {
        let encoder = self.encode(device, label);
        queue.submit([encoder.finish()])
    }

    /// Encodes every recorded operation in order into one command encoder, returned
    /// unfinished (the caller may add to it before its one submit).
    pub(super) fn encode(mut self, device: &wgpu::Device, label: &str) -> wgpu::CommandEncoder {
        let stride = self.limits.stride as usize;
        let slots = |n: usize, size: usize, fill: &dyn Fn(usize, &mut [u8])| {
            let mut bytes = vec![0u8; (n.max(1) * stride).max(size)];
            for i in 0..n {
                fill(i, &mut bytes[i * stride..i * stride + size]);
            }
            bytes
        };
        let gemm_bytes = slots(self.gemm_params.len(), TRAIN_GEMM_PARAMS, &|i, dst| {
            dst.copy_from_slice(bytemuck::bytes_of(&self.gemm_params[i]))
        });
        let gemm_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("training GEMM params"),
            contents: &gemm_bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let step_bytes = slots(self.step_ranges.len(), STEP_PARAMS, &|i, dst| {
            let (s, s_end) = self.step_ranges[i];
            let p = StepParams {
                s: u(s),
                s_end: u(s_end),
                _pad: [0; 2],
            };
            dst.copy_from_slice(bytemuck::bytes_of(&p))
        });
        let step_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("training step params"),
            contents: &step_bytes,
            usage: wgpu::BufferUsages::STORAGE,
        });
        let metas: Vec<wgpu::Buffer> = self
            .bindings
            .iter()
            .map(|binding| {
                let mut bytes = bytemuck::bytes_of(&binding.layer).to_vec();
                bytes.extend_from_slice(bytemuck::cast_slice(&binding.lens));
                bytes.resize(bytes.len().next_multiple_of(16), 0);
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("training layer params and lengths"),
                    contents: &bytes,
                    usage: wgpu::BufferUsages::STORAGE,
                })
            })
            .collect();
        let step_groups: Vec<wgpu::BindGroup> = self
            .bindings
            .iter()
            .zip(&metas)
            .map(|(binding, meta)| {
                let slots = [0u32, 1, 2, 3, 4, 6];
                let mut entries: Vec<wgpu::BindGroupEntry<'_>> = binding
                    .buffers
                    .iter()
                    .zip(slots)
                    .map(|(b, n)| entry(n, b.as_entire_binding()))
                    .collect();
                entries.push(entry(5, meta.as_entire_binding()));
                entries.push(entry(7, uniform_binding(&step_buf, 0, STEP_PARAMS as u64)));
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("gru_train bind group"),
                    layout: &self.pipelines.step_layout,
                    entries: &entries,
                })
            })
            .collect();
        let nd = self.model.direction.num_directions();
        let units = self.model.training_groups_x(self.shape);
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        let mut ops = std::mem::take(&mut self.ops);
        let mut i = 0;
        while i < ops.len() {
            match &mut ops[i] {
                Op::External(work) => {
                    let work = std::mem::replace(work, Box::new(|_| {}));
                    work(&mut encoder);
                    i += 1;
                }
                Op::Clear(buffer) => {
                    encoder.clear_buffer(buffer, 0, None);
                    i += 1;
                }
                Op::Copy {
                    from,
                    from_offset,
                    to,
                    to_offset,
                    bytes,
                } => {
                    encoder.copy_buffer_to_buffer(from, *from_offset, to, *to_offset, *bytes);
                    i += 1;
                }
                _ => {
                    // A run of dispatches shares one compute pass.
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(label),
                        timestamp_writes: None,
                    });
                    while let Some(op) = ops.get(i) {
                        match op {
                            Op::Gemm {
                                a,
                                b,
                                bias,
                                c,
                                slot,
                                groups,
                            } => {
                                let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                                    label: Some("train_gemm bind group"),
                                    layout: &self.pipelines.gemm_layout,
                                    entries: &[
                                        entry(0, a.as_entire_binding()),
                                        entry(1, b.as_entire_binding()),
                                        entry(2, bias.as_entire_binding()),
                                        entry(3, c.as_entire_binding()),
                                        entry(
                                            4,
                                            uniform_binding(&gemm_buf, 0, TRAIN_GEMM_PARAMS as u64),
                                        ),
                                    ],
                                });
                                pass.set_pipeline(if self.direct_gemm() {
                                    &self.pipelines.gemm_direct
                                } else {
                                    &self.pipelines.gemm
                                });
                                pass.set_bind_group(0, &group, &[slot * stride as u32]);
                                pass.dispatch_workgroups(groups.0, groups.1, 1);
                            }
                            Op::Step {
                                binding,
                                forward,
                                pipeline,
                                slot,
                            } => {
                                let p = if *forward {
                                    &self.steps().forward[*pipeline]
                                } else {
                                    &self.steps().backward[*pipeline]
                                };
                                let batch = self.bindings[*binding].layer.batch;
                                pass.set_pipeline(p);
                                pass.set_bind_group(
                                    0,
                                    &step_groups[*binding],
                                    &[(*slot * stride) as u32],
                                );
                                pass.dispatch_workgroups(
                                    units,
                                    batch.div_ceil(STEP_ENTRIES),
                                    nd as u32,
                                );
                            }
                            _ => break,
                        }
                        i += 1;
                    }
                }
            }
        }
        encoder
    }
}
