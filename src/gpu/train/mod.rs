//! Training on the GPU: a forward that keeps what the backward needs (the reserve space), and
//! the backward through time, both in `f32`, each one command encoder and one submit.
//!
//! # What the training forward saves
//!
//! Per layer, direction `d`, step `s` and entry `b` (`[D, T, B, 4H]` floats, the *reserve*):
//! the pre-activations `a_z`, `a_r`, `a_n` before the clip, and a fourth vector: `q = R_h h +
//! Rb_h` for reset-after, `u = r ⊙ h_prev` for reset-before. Plus the state sequence
//! `[D, T+1, B, H]` (the state before each step, `initial_h` first; a step past an entry's
//! length carries it over) and the layer's output `[T, B, D·H]`, which is the next layer's
//! input. That is `5H` floats per entry and step (PyTorch's fused cell keeps `5H`: r, z, n,
//! `h_prev` and `R_h h + Rb_h`). Pre-activations rather than activations, because the clip's
//! derivative needs them (it is zero where a pre-activation was clamped) and the activations
//! come back from them with one `σ`/`tanh` each, exactly as the forward computed them; `q` is
//! the one product the reset-after backward cannot rebuild without a second matrix product
//! (`∂r = g_n ⊙ q`), and `u` is the operand of reset-before's `∂R_h = g_n uᵀ`. The inference
//! forward ([`GpuGru::forward`]) keeps none of this.
//!
//! # The backward
//!
//! Per layer, top to bottom: per step in reverse time one dispatch (reset-after) or two
//! (reset-before) of `gru_train.wgsl` that finish the state gradient with the product
//! `Rᵀ · G_h` of the step after and compute the step's gate gradients; then, as GEMMs over all
//! `T·B` rows (`train_gemm.wgsl`), `dX = G_x W` (which is the gradient of the layer below's
//! output), `dW = G_xᵀ X`, `dR = G_hᵀ H_prev` (`G_hᵀ U` for reset-before's candidate rows),
//! and the bias gradients as column sums. Every sum runs in a fixed order (no atomics): the
//! gradients are bitwise the same run to run on one adapter.
//!
//! # Past the device's limits
//!
//! As the inference forward: where a buffer of the whole batch would pass a storage binding,
//! the batch runs in chunks of entries; where one entry of the whole sequence would, a
//! forward-only network runs the sequence in pieces of as many steps as fit (each piece's
//! state sequence starts from where the piece before left it; the backward runs the pieces
//! last first, the state gradient carried from each to the one before). The weight gradients
//! accumulate over the pieces in order. Everything stays one submit.

mod buffers;
mod encode;
mod record;
mod trainer;

pub use trainer::GpuTrainer;

use std::sync::atomic::{AtomicU64, Ordering};

use wgpu::util::DeviceExt;

use crate::cpu::backward::check_len;
use crate::cpu::{GruGradients, LayerGradients};
use crate::dtype::Dtype;
use crate::error::{GruError, Result};
use crate::gpu::errors::{gpu_message, scoped};
use crate::gpu::kernels::LayoutFamily;
use crate::gpu::kernels::PERSISTENT_LOOP_BUDGET;
use crate::gpu::model::GpuGru;
use crate::gpu::path::{KernelPath, StepKernel, StepStructure};
use crate::gpu::readback::read_bytes;
use crate::input::{Dims, GruInput, GruOutput};
use crate::shaders::Kernel;
use crate::weights::Convention;
use crate::Direction;

use buffers::{
    from_internal_state, from_internal_y, put_entries, take_entries, to_internal_rows,
    to_internal_state,
};
use encode::Plan;
use record::pieces;

/// Identifies the model a [`Saved`] came from.
static NEXT_MODEL: AtomicU64 = AtomicU64::new(1);

/// A fresh model identity (for [`Saved`]).
pub(in crate::gpu) fn next_model_id() -> u64 {
    NEXT_MODEL.fetch_add(1, Ordering::Relaxed)
}

/// The step pipelines of one lane count.
pub(in crate::gpu) struct StepSet {
    /// The forward's dispatches of one step (one for reset-after, two for reset-before).
    forward: Vec<wgpu::ComputePipeline>,
    /// The backward's dispatches of one step.
    backward: Vec<wgpu::ComputePipeline>,
}

/// The pipelines of training, built on first use.
pub(in crate::gpu) struct TrainPipelines {
    /// `[1, 1, 1, 1]`: the stride-0 operand of the bias gradients' column sums, and the bias
    /// binding of GEMMs without a bias.
    ones: wgpu::Buffer,
    /// `train_gemm`: 16×16 tiles through workgroup memory (GPUs).
    gemm: wgpu::ComputePipeline,
    /// `train_gemm_direct` (through `train_gemm_operands_vec4.wgsl`): register-blocked, no
    /// workgroup memory (CPU adapters, with the direct input-projection kernel).
    gemm_direct: wgpu::ComputePipeline,
    gemm_layout: wgpu::BindGroupLayout,
    step_layout: wgpu::BindGroupLayout,
    /// The GPU shape: each unit's dot products split over 64 lanes.
    split: StepSet,
    /// The CPU-adapter shape (`DIRECT`): one unit per lane.
    direct: StepSet,
    /// The CPU-adapter shape over ranges of steps (`train_persistent_*`, `grad_persistent_*`):
    /// one pipeline each way.
    persistent: StepSet,
}

/// The shape the training step kernels take (see `shaders/gru_train.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainShape {
    /// The GPU shape: each hidden unit's dot products split over 64 lanes, one dispatch per
    /// step (two for reset-before).
    Split,
    /// The CPU-adapter shape: one hidden unit per lane, the whole dot product in one loop, one
    /// dispatch per step (two for reset-before).
    Direct,
    /// The CPU-adapter shape with one workgroup per four entries and direction holding all H
    /// units, `steps` steps (backward: dispatches) per dispatch, a storage barrier between
    /// them: where the inference forward takes its persistent path and H ≤ 64.
    Persistent {
        /// Steps per dispatch, bounded by the loop budget.
        steps: usize,
    },
}

/// Lanes per workgroup of the training step kernels.
const LANES: u32 = 64;

/// The longest dot product the direct shape runs in one loop (3H for the reset-after
/// backward): half of lavapipe's 65535-trip cap.
const DIRECT_MAX_K: usize = 32768;

/// One layer's saved tensors (see the module docs).
pub(super) struct SavedLayer {
    /// The layer's input `[T, B, K]` (sequence-major).
    input: wgpu::Buffer,
    /// `K`.
    width: usize,
    /// `[D, T+1, B, H]`.
    hs: wgpu::Buffer,
    /// `[D, T, B, 4H]`.
    reserve: wgpu::Buffer,
}

/// What [`GpuGru::forward_train`] keeps on the device for [`GpuGru::backward`]: per layer the
/// input, the state sequence and the reserve space (module docs of [`crate::gpu`]'s training:
/// `5H` floats per layer, direction, entry and step, plus the layer's input).
pub struct Saved {
    model: u64,
    dims: Dims,
    chunks: Vec<SavedChunk>,
}

/// The saved tensors of entries `first .. first + batch` (one chunk of the batch) over steps
/// `t0 .. t0 + steps` (one piece of a sequence split over time; the whole sequence unless it
/// is).
pub(super) struct SavedChunk {
    first: usize,
    batch: usize,
    t0: usize,
    steps: usize,
    /// `[batch]` sequence lengths within the piece: `clamp(len − t0, 0, steps)`.
    lens: Vec<u32>,
    layers: Vec<SavedLayer>,
}

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saved")
            .field("dims", &self.dims)
            .field("reserve_bytes", &self.reserve_bytes())
            .finish()
    }
}

impl Saved {
    /// The sizes of the forward that saved this.
    pub fn dims(&self) -> &Dims {
        &self.dims
    }

    /// Bytes of the reserve space and state sequences kept on the device (layer inputs and
    /// outputs not counted): `L · D · B · (4·T·H + (T+1)·H) · 4`.
    pub fn reserve_bytes(&self) -> u64 {
        self.chunks
            .iter()
            .flat_map(|c| &c.layers)
            .map(|l| l.hs.size() + l.reserve.size())
            .sum()
    }

    /// How many pieces the forward ran in: chunks of entries, each in pieces of the sequence
    /// (1 unless a buffer of the whole batch would pass the device's binding limit; 0 for an
    /// empty batch).
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }
}

/// `(first, count)` of each chunk of `chunk` entries of a batch of `batch` (of each piece
/// of `chunk` steps of a sequence of `batch` steps).
fn chunks(batch: usize, chunk: usize) -> Vec<(usize, usize)> {
    (0..batch)
        .step_by(chunk.max(1))
        .map(|b0| (b0, chunk.max(1).min(batch - b0)))
        .collect()
}

/// Rows `t0 .. t0 + steps` of a `[T, B, inner]` array.
fn time_rows(v: &[f32], b: usize, inner: usize, t0: usize, steps: usize) -> &[f32] {
    &v[t0 * b * inner..(t0 + steps) * b * inner]
}

/// Bytes of `n` f32 values.
fn f32_bytes(n: usize) -> u64 {
    n as u64 * 4
}

impl GpuGru {
    /// Errors unless the model trains: f32 storage.
    fn check_trainable(&self) -> Result<()> {
        if self.dtype != Dtype::F32 {
            return Err(GruError::invalid(
                "storage type for training",
                "f32 (training keeps f32 weights, activations and gradients; build the \
                 model with Dtype::F32)",
                format!("{:?}", self.dtype),
            ));
        }
        Ok(())
    }

    /// The training pipelines, built (from the context's kernel cache) on first use.
    fn train_pipelines(&mut self) -> Result<()> {
        if self.train.is_some() {
            return Ok(());
        }
        let ctx = self.ctx.clone();
        let (device, kernels) = (ctx.device(), ctx.kernels());
        let h = self.hidden_size as f64;
        let built = scoped(&ctx, "building the training pipelines", || {
            let mut created = 0;
            let mut pipeline = |kernel: Kernel,
                                entry: &'static str,
                                constants: &[(&'static str, f64)]| {
                let (p, miss) = kernels.pipeline(device, kernel, Dtype::F32, entry, constants)?;
                created += miss as usize;
                Ok::<_, GruError>(p)
            };
            let gemm = pipeline(Kernel::TrainGemm, "train_gemm", &[])?;
            // Through the vec4 view of its operands: every buffer a plan binds there is sized
            // in whole vec4s (Plan::storage, Plan::upload; the weights' Wᵀ rows are padded to 4).
            let gemm_direct = pipeline(Kernel::TrainGemmVec4, "train_gemm_direct", &[])?;
            let (fwd, bwd): (&[&'static str], &[&'static str]) = match self.convention {
                Convention::ResetAfter => (&["train_step_reset_after"], &["grad_step_reset_after"]),
                Convention::ResetBefore => (
                    &["train_gates_reset_before", "train_candidate_reset_before"],
                    &["grad_gates_reset_before", "grad_candidate_reset_before"],
                ),
            };
            let mut set = |direct: bool, fwd: &[&'static str], bwd: &[&'static str]| {
                // The CPU-adapter shape reads rows four elements per load where it can.
                let kernel = if direct && self.hidden_size.is_multiple_of(4) {
                    Kernel::GruTrainVec4
                } else {
                    Kernel::GruTrain
                };
                let constants = [
                    ("HIDDEN", h),
                    ("LANES", LANES as f64),
                    ("DIRECT", direct as u8 as f64),
                ];
                let forward = fwd
                    .iter()
                    .map(|e| pipeline(kernel, e, &constants))
                    .collect::<Result<Vec<_>>>()?;
                let backward = bwd
                    .iter()
                    .map(|e| pipeline(kernel, e, &constants))
                    .collect::<Result<Vec<_>>>()?;
                Ok::<_, GruError>(StepSet { forward, backward })
            };
            let split = set(false, fwd, bwd)?;
            let direct = set(true, fwd, bwd)?;
            let persistent = match self.convention {
                Convention::ResetAfter => set(
                    true,
                    &["train_persistent_reset_after"],
                    &["grad_persistent_reset_after"],
                ),
                Convention::ResetBefore => set(
                    true,
                    &["train_persistent_reset_before"],
                    &["grad_persistent_reset_before"],
                ),
            }?;
            let ones = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("ones"),
                contents: bytemuck::cast_slice(&[1.0f32; 4]),
                usage: wgpu::BufferUsages::STORAGE,
            });
            let pipelines = TrainPipelines {
                ones,
                gemm,
                gemm_direct,
                gemm_layout: kernels.bind_group_layout(device, LayoutFamily::TrainGemm)?,
                step_layout: kernels.bind_group_layout(device, LayoutFamily::TrainStep)?,
                split,
                direct,
                persistent,
            };
            Ok::<_, GruError>((pipelines, created))
        })??;
        self.stats.pipelines_created += built.1;
        self.train = Some(built.0);
        Ok(())
    }

    /// The training forward: the outputs of [`GpuGru::forward`] (same shapes, within f32
    /// tolerance of it; gate order z, r, h), and the [`Saved`] tensors [`GpuGru::backward`]
    /// needs, which stay on the device. f32 models only ([`GruError::InvalidArgument`]
    /// otherwise). One submit: per layer one GEMM for the input projection of every step and
    /// direction, then per step one dispatch (reset-after) or two (reset-before). Where a
    /// buffer of the whole batch would pass the device's binding limit, the batch runs in
    /// chunks of entries, and where one entry does not fit, a forward-only network runs in
    /// pieces of the sequence (still one submit; module docs); one entry that does not fit
    /// with a reverse direction, or one step of one entry, is a [`GruError::DeviceLimit`].
    pub fn forward_train(&mut self, input: &GruInput<'_>) -> Result<(GruOutput, Saved)> {
        self.check_trainable()?;
        let dims = self.validate(input)?;
        let lens: Vec<u32> = (0..dims.batch).map(|b| input.length(b) as u32).collect();
        if dims.batch == 0 {
            let saved = Saved {
                model: self.model_id,
                dims,
                chunks: Vec::new(),
            };
            let out = GruOutput {
                y: Vec::new(),
                y_h: Vec::new(),
                dims,
            };
            return Ok((out, saved));
        }
        self.train_pipelines()?;
        let ((steps, chunk), plan_limits) = self.train_pieces(&dims)?;
        let pieces = pieces(&dims, steps, chunk);
        let pipelines = self.built_train_pipelines()?;
        let ctx = self.ctx.clone();
        let (t, b, h, i) = (dims.seq_len, dims.batch, dims.hidden_size, dims.input_size);
        let (nd, nl) = (dims.num_directions, dims.num_layers);
        let x = to_internal_rows(input.x, &dims, i);
        let h0 = input.initial_h.map(|h0| to_internal_state(h0, &dims));
        let shape = self.training_shape(b);
        let result = scoped(&ctx, "training forward", || {
            let device = ctx.device();
            let mut plan = Plan::new(self, pipelines, &plan_limits, shape);
            let recorded =
                self.record_train_forward(&mut plan, &dims, &pieces, &x, h0.as_deref(), &lens);
            let mut saved: Vec<SavedChunk> = Vec::with_capacity(pieces.len());
            let mut readbacks = Vec::with_capacity(pieces.len());
            for (chunk, top) in recorded {
                let (n, t) = (chunk.batch, chunk.steps);
                // Read back the top layer's output and every layer's final state.
                let y_bytes = f32_bytes(t * n * nd * h);
                let st_bytes = f32_bytes(n * h);
                let readback = plan.readback(y_bytes + st_bytes * (nl * nd) as u64);
                plan.copy(&top, 0, &readback, 0, y_bytes);
                for (l, layer) in chunk.layers.iter().enumerate() {
                    for d in 0..nd {
                        plan.copy(
                            &layer.hs,
                            f32_bytes((d * (t + 1) + t) * n * h),
                            &readback,
                            y_bytes + st_bytes * (l * nd + d) as u64,
                            st_bytes,
                        );
                    }
                }
                readbacks.push(readback);
                saved.push(chunk);
            }
            let submission = plan.submit(device, ctx.queue(), "gru training forward");
            (submission, readbacks, saved)
        })?;
        let (submission, readbacks, saved) = result;
        let mut y_int = vec![0.0f32; t * b * nd * h];
        let mut st_int = vec![0.0f32; nl * nd * b * h];
        // In order: a later piece's final states replace the earlier one's.
        for (readback, &(b0, n, t0, tc)) in readbacks.iter().zip(&pieces) {
            let data = read_bytes(&ctx, readback, submission.clone())?;
            let values: &[f32] = bytemuck::cast_slice(&data);
            let y_len = tc * n * nd * h;
            let y_rows = &mut y_int[t0 * b * nd * h..];
            put_entries(y_rows, &values[..y_len], tc, b, nd * h, b0, n);
            put_entries(&mut st_int, &values[y_len..], nl * nd, b, h, b0, n);
        }
        ctx.check_lost()?;
        let y = from_internal_y(&y_int, &dims);
        let y_h = from_internal_state(&st_int, &dims, Some(&lens));
        self.stats.forwards += 1;
        let saved = Saved {
            model: self.model_id,
            dims,
            chunks: saved,
        };
        Ok((GruOutput { y, y_h, dims }, saved))
    }

    /// The backward of the [`GpuGru::forward_train`] that produced `saved`: given `dY` in `Y`'s
    /// shape and layout (and output style) and optionally `dY_h` in `Y_h`'s, the gradients of
    /// the loss with respect to `X` (`dx`, X's shape), `initial_h` (`dh0`, its shape; zero for
    /// an entry of length 0), and per layer and direction `W [3H, K]`, `R [3H, H]`, `B [6H]`
    /// (gate order z, r, h; [`LayerGradients`]), computed in f32 on the device and returned
    /// widened to f64 (the type of [`crate::cpu::backward`]'s). Semantics as the CPU
    /// reference: steps past an entry's length take no gradient, `dY_h` enters at the entry's
    /// last valid step, clamped pre-activations pass none. One submit, in the forward's
    /// chunks of entries and pieces of the sequence (the last piece first); the weight
    /// gradients accumulate over them in order.
    ///
    /// Errors: `saved` from another model ([`GruError::InvalidArgument`]), a length that does
    /// not match ([`GruError::InvalidArgument`]), a device error.
    pub fn backward(
        &mut self,
        saved: &Saved,
        dy: &[f32],
        dy_h: Option<&[f32]>,
    ) -> Result<GruGradients> {
        self.check_trainable()?;
        if saved.model != self.model_id {
            return Err(GruError::invalid(
                "saved tensors",
                "the Saved returned by this model's forward_train",
                "a Saved from another model",
            ));
        }
        let dims = saved.dims;
        check_len("dY", dy.len(), dims.y_len(), dims.y_shape())?;
        if let Some(d) = dy_h {
            check_len("dY_h", d.len(), dims.state_len(), dims.state_shape())?;
        }
        let (t, b, h, i) = (dims.seq_len, dims.batch, dims.hidden_size, dims.input_size);
        let (nd, nl) = (dims.num_directions, dims.num_layers);
        let widths: Vec<usize> = (0..nl).map(|l| if l == 0 { i } else { nd * h }).collect();
        // Offsets of each layer's and direction's gradients in the output buffer.
        // Each layer's and direction's gradients in a buffer of its own (dW, dR, dB); `starts`
        // places them in the host's copy.
        let per_dir = |k: usize| 3 * h * k + 3 * h * h + 6 * h;
        let starts: Vec<usize> = widths
            .iter()
            .scan(0, |at, &k| {
                let start = *at;
                *at += nd * per_dir(k);
                Some(start)
            })
            .collect();
        let total: usize = widths.iter().map(|&k| nd * per_dir(k)).sum();
        let mut dx_int = vec![0.0f32; t * b * i];
        let mut dh0_int = vec![0.0f32; nl * nd * b * h];
        let mut weights_out = vec![0.0f32; total];
        if !saved.chunks.is_empty() {
            self.train_pipelines()?;
            // The forward's pieces, whose limits were checked then.
            let (_, plan_limits) = self.train_pieces(&dims)?;
            let pipelines = self.built_train_pipelines()?;
            let ctx = self.ctx.clone();
            // dY as [T, B, D, H]; dY_h as the carries [L, D, B, H].
            let dy_int = buffers::y_to_internal(dy, &dims);
            let carry0 = match dy_h {
                Some(d) => to_internal_state(d, &dims),
                None => vec![0.0; nl * nd * b * h],
            };
            let shape = self.training_shape(b);
            let result = scoped(&ctx, "backward", || {
                let device = ctx.device();
                let mut plan = Plan::new(self, pipelines, &plan_limits, shape);
                let outs = self.gradient_buffers(&plan, &dims);
                let mut dy_for = |plan: &Plan<'_>, chunk: &SavedChunk| {
                    let dy_rows = time_rows(&dy_int, b, nd * h, chunk.t0, chunk.steps);
                    let dy_c =
                        take_entries(dy_rows, chunk.steps, b, nd * h, chunk.first, chunk.batch);
                    plan.upload("dY [T, B, D·H]", bytemuck::cast_slice(&dy_c))
                };
                let mut carry_for = |plan: &Plan<'_>, b0: usize, n: usize| {
                    let carry_c = take_entries(&carry0, nl * nd, b, h, b0, n);
                    plan.upload("carry [L, D, B, H]", bytemuck::cast_slice(&carry_c))
                };
                let recorded = self.record_backward(
                    &mut plan,
                    &dims,
                    &saved.chunks,
                    &mut dy_for,
                    &mut carry_for,
                    &outs,
                );
                let mut readbacks = Vec::with_capacity(saved.chunks.len());
                for piece in &recorded.pieces {
                    let chunk = piece.chunk;
                    let dx0_len = chunk.steps * chunk.batch * i;
                    let readback = plan.readback(f32_bytes(dx0_len));
                    plan.copy(&piece.dx0, 0, &readback, 0, f32_bytes(dx0_len));
                    readbacks.push((readback, chunk));
                }
                let mut carries = Vec::with_capacity(recorded.carries.len());
                for (b0, n, carry) in &recorded.carries {
                    let carry_len = nl * nd * n * h;
                    let readback = plan.readback(f32_bytes(carry_len));
                    plan.copy(carry, 0, &readback, 0, f32_bytes(carry_len));
                    carries.push((readback, *b0, *n));
                }
                let weights_readback = plan.readback(f32_bytes(total));
                for ((layer_outs, &start), &k) in outs.iter().zip(&starts).zip(&widths) {
                    for (d, out) in layer_outs.iter().enumerate() {
                        plan.copy(
                            out,
                            0,
                            &weights_readback,
                            f32_bytes(start + d * per_dir(k)),
                            f32_bytes(per_dir(k)),
                        );
                    }
                }
                let submission = plan.submit(device, ctx.queue(), "gru backward");
                (submission, readbacks, carries, weights_readback)
            })?;
            let (submission, readbacks, carries, weights_readback) = result;
            for (readback, chunk) in &readbacks {
                let (b0, n, t0, tc) = (chunk.first, chunk.batch, chunk.t0, chunk.steps);
                let data = read_bytes(&ctx, readback, submission.clone())?;
                let values: &[f32] = bytemuck::cast_slice(&data);
                let dx_rows = &mut dx_int[t0 * b * i..];
                put_entries(dx_rows, &values[..tc * n * i], tc, b, i, b0, n);
            }
            // Each chunk's carry after its first piece (t0 = 0) ran: d initial_h.
            for (readback, b0, n) in &carries {
                let data = read_bytes(&ctx, readback, submission.clone())?;
                let values: &[f32] = bytemuck::cast_slice(&data);
                put_entries(
                    &mut dh0_int,
                    &values[..nl * nd * n * h],
                    nl * nd,
                    b,
                    h,
                    *b0,
                    *n,
                );
            }
            let data = read_bytes(&ctx, &weights_readback, submission)?;
            weights_out.copy_from_slice(&bytemuck::cast_slice::<u8, f32>(&data)[..total]);
            ctx.check_lost()?;
        }
        let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let mut layers = Vec::with_capacity(nl);
        for (&k, &start) in widths.iter().zip(&starts) {
            let mut dirs = Vec::with_capacity(nd);
            for d in 0..nd {
                let o = start + d * per_dir(k);
                let (nw, nr) = (3 * h * k, 3 * h * h);
                dirs.push(LayerGradients {
                    dw: wide(&weights_out[o..o + nw]),
                    dr: wide(&weights_out[o + nw..o + nw + nr]),
                    db: wide(&weights_out[o + nw + nr..o + nw + nr + 6 * h]),
                });
            }
            layers.push(dirs);
        }
        let dx = buffers::rows_from_internal(&dx_int, &dims, i);
        let dh0 = from_internal_state(&dh0_int, &dims, None);
        Ok(GruGradients {
            layers,
            dx: wide(&dx),
            dh0: wide(&dh0),
        })
    }

    /// Whether training runs its step kernels in the CPU-adapter shape (one hidden unit per
    /// lane, no reduction, no barrier) rather than the GPU shape (each unit's dot products
    /// split over 64 lanes): the former with the staged or direct step kernel
    /// ([`GpuGru::step_kernel`], the automatic choice on CPU adapters) while `3H` stays below
    /// lavapipe's loop cap, the latter otherwise (the automatic choice on GPUs).
    pub fn training_direct(&self) -> bool {
        matches!(self.step_kernel(), StepKernel::Staged | StepKernel::Direct)
            && 3 * self.hidden_size <= DIRECT_MAX_K
    }

    /// The pieces a training forward and backward over `dims` run in (`(steps, entries)`)
    /// and the plan's limits ([`encode::train_pieces`]; a network with a reverse direction
    /// cannot split over time).
    fn train_pieces(&self, dims: &Dims) -> Result<((usize, usize), encode::PlanLimits)> {
        encode::train_pieces(
            self.ctx.limits(),
            dims,
            self.uniform_stride,
            self.direction != Direction::Forward,
        )
    }

    /// The shape of the training step kernels for a batch of `batch` entries: persistent
    /// where the inference forward takes its persistent path ([`GpuGru::kernel_path`]) and
    /// H ≤ 64 (one unit per lane: a workgroup holds an entry's whole state in its lanes;
    /// past that each lane would run several units in turn, with fewer workgroups than the
    /// step-by-step shape: slower on lavapipe at H = 256, B = 16), else the CPU-adapter
    /// shape where [`GpuGru::training_direct`], else the GPU shape.
    pub fn training_shape(&self, batch: usize) -> TrainShape {
        if self.kernel_path(batch) == KernelPath::Persistent && self.hidden_size <= LANES as usize {
            // Loop trips of one step per lane (the longest phase sequence: 3H reduced, plus
            // the four-element inner loops, the entry loops and the finishing), bounded by the
            // budget the inference forward's persistent path keeps.
            let per_step = 2 * 3 * self.hidden_size + 48;
            TrainShape::Persistent {
                steps: (PERSISTENT_LOOP_BUDGET / per_step).max(1),
            }
        } else if self.training_direct() {
            TrainShape::Direct
        } else {
            TrainShape::Split
        }
    }

    /// Workgroups in x of a training step dispatch of `shape`: one per hidden unit (GPU
    /// shape), per 64 units (CPU-adapter shape) or one (persistent), at most the device's
    /// limit (each then takes several).
    pub(super) fn training_groups_x(&self, shape: TrainShape) -> u32 {
        let h = self.hidden_size as u32;
        let units = match shape {
            TrainShape::Split => h,
            TrainShape::Direct => h.div_ceil(LANES),
            TrainShape::Persistent { .. } => 1,
        };
        units.min(
            self.ctx
                .limits()
                .max_compute_workgroups_per_dimension
                .max(1),
        )
    }

    /// The parallel structure of one timestep of one layer of the training forward and of
    /// the backward over `batch` entries (what a GPU's step time follows; gru-bench prints
    /// it). GPU shape: per dispatch `min(H, max groups) · ⌈B/4⌉ · D` workgroups of 64 lanes,
    /// each lane looping over its share of the reduced axis (the forward: H; the backward: 3H
    /// for reset-after, 2H then H for reset-before), four elements per trip, then 6 rounds of
    /// the lanes' tree. CPU-adapter shape ([`TrainShape::Direct`]): `⌈H/64⌉ · ⌈B/4⌉ · D`
    /// workgroups, each lane looping over the whole reduced axis. Persistent: `⌈B/4⌉ · D`
    /// workgroups, one dispatch per `steps` steps, each lane looping over the reduced axis
    /// for each of its `⌈H/64⌉` units.
    pub fn training_structure(&self, batch: usize) -> (StepStructure, StepStructure) {
        let h = self.hidden_size as u64;
        let d = self.direction.num_directions() as u64;
        let lanes = LANES as u64;
        let shape = self.training_shape(batch);
        let groups_x = self.training_groups_x(shape) as u64;
        let workgroups = groups_x * (batch as u64).div_ceil(encode::STEP_ENTRIES as u64) * d;
        let loop_of = |k: u64| match shape {
            TrainShape::Split => {
                h.div_ceil(groups_x) * (k.div_ceil(lanes * 4) + lanes.ilog2() as u64)
            }
            _ => h.div_ceil(groups_x * lanes) * k,
        };
        let (mut dispatches, backward_k) = match self.convention {
            Convention::ResetAfter => (1.0, 3 * h),
            Convention::ResetBefore => (2.0, 2 * h),
        };
        let (fwd_name, bwd_name) = match shape {
            TrainShape::Split => ("train-forward", "backward"),
            TrainShape::Direct => ("train-forward-direct", "backward-direct"),
            TrainShape::Persistent { steps } => {
                dispatches = 1.0 / steps as f64;
                ("train-forward-persistent", "backward-persistent")
            }
        };
        let structure = |kernel, k| StepStructure {
            kernel,
            dispatches_per_step: dispatches,
            workgroups,
            invocations: workgroups * lanes,
            longest_loop: loop_of(k),
        };
        (structure(fwd_name, h), structure(bwd_name, backward_k))
    }

    /// The training pipelines [`GpuGru::train_pipelines`] built.
    fn built_train_pipelines(&self) -> Result<&TrainPipelines> {
        self.train
            .as_ref()
            .ok_or_else(|| gpu_message("training", "the training pipelines were not built"))
    }
}
