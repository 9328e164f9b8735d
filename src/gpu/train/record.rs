//! Recording a training forward and backward into a [`Plan`], shared by
//! [`GpuGru::forward_train`] / [`GpuGru::backward`] (which add their readbacks) and the
//! one-submit training step of [`super::trainer::GpuTrainer`] (which adds the head, the
//! optimizer and the weight refresh between and after them).

use crate::gpu::model::GpuGru;
use crate::input::Dims;

use super::encode::{Plan, StepBinding, WeightGrads};
use super::{chunks, f32_bytes, take_entries, time_rows, SavedChunk, SavedLayer, TrainShape};

/// `(first entry, entries, first step, steps)` of each piece a training forward over `dims`
/// runs in, in order: chunks of `chunk` entries outside, pieces of `steps` steps of the
/// sequence inside (each continues the one before it); one piece of 0 steps for `T = 0`.
pub(super) fn pieces(dims: &Dims, steps: usize, chunk: usize) -> Vec<(usize, usize, usize, usize)> {
    let times = if dims.seq_len == 0 {
        vec![(0, 0)]
    } else {
        chunks(dims.seq_len, steps)
    };
    chunks(dims.batch, chunk)
        .into_iter()
        .flat_map(|(b0, n)| times.iter().map(move |&(t0, tc)| (b0, n, t0, tc)))
        .collect()
}

/// One piece of a recorded backward: its saved tensors and the buffer holding its `dX` of
/// layer 0 (`[steps, entries, I]`, sequence-major).
pub(super) struct BackwardPiece<'s> {
    pub(super) chunk: &'s SavedChunk,
    pub(super) dx0: wgpu::Buffer,
}

/// What a recorded backward leaves on the device besides the weight gradients.
pub(super) struct BackwardRecord<'s> {
    /// In the order they run (per chunk of entries, its last piece of the sequence first).
    pub(super) pieces: Vec<BackwardPiece<'s>>,
    /// Per chunk of entries `(first, entries, carry)`: the carry `[L, D, entries, H]`, which
    /// holds `d initial_h` once the chunk's pieces ran.
    pub(super) carries: Vec<(usize, usize, wgpu::Buffer)>,
}

impl GpuGru {
    /// Per layer and direction a zeroed buffer for its `dW [3H, K]`, `dR [3H, H]` and
    /// `dB [6H]`, in that order.
    pub(super) fn gradient_buffers(&self, plan: &Plan<'_>, dims: &Dims) -> Vec<Vec<wgpu::Buffer>> {
        let h = dims.hidden_size;
        (0..dims.num_layers)
            .map(|l| {
                let k = if l == 0 {
                    dims.input_size
                } else {
                    dims.num_directions * h
                };
                (0..dims.num_directions)
                    .map(|_| {
                        plan.storage(
                            "dW, dR, dB of a layer and direction",
                            f32_bytes(3 * h * k + 3 * h * h + 6 * h),
                        )
                    })
                    .collect()
            })
            .collect()
    }

    /// Records the training forward of every piece of `pieces` ([`pieces`]) over `x` (rows
    /// `t·B + b`), `h0` (`[L, D, B, H]`, zero when `None`) and the entries' `lens`. Returns
    /// per piece its saved tensors and the buffer of its top layer's output
    /// `[steps, entries, D·H]`.
    pub(super) fn record_train_forward(
        &self,
        plan: &mut Plan<'_>,
        dims: &Dims,
        pieces: &[(usize, usize, usize, usize)],
        x: &[f32],
        h0: Option<&[f32]>,
        lens: &[u32],
    ) -> Vec<(SavedChunk, wgpu::Buffer)> {
        let (b, h, i) = (dims.batch, dims.hidden_size, dims.input_size);
        let (nd, nl) = (dims.num_directions, dims.num_layers);
        let direct = plan.shape() != TrainShape::Split;
        let dummy = plan.storage("unused", 16);
        let mut out: Vec<(SavedChunk, wgpu::Buffer)> = Vec::with_capacity(pieces.len());
        for &(b0, n, t0, t) in pieces {
            let cd = Dims {
                batch: n,
                seq_len: t,
                ..*dims
            };
            let lens_c: Vec<u32> = lens[b0..b0 + n]
                .iter()
                .map(|&len| (len as usize).saturating_sub(t0).min(t) as u32)
                .collect();
            let x_c = take_entries(time_rows(x, b, i, t0, t), t, b, i, b0, n);
            let mut layer_in = plan.upload("X [T, B, I]", bytemuck::cast_slice(&x_c));
            // The state the piece starts from: initial_h, or where the piece before it (the
            // last recorded: same entries) left each layer's state sequence.
            let before = out.last().map(|(c, _)| c).filter(|_| t0 > 0);
            let h0_buf = h0.filter(|_| t0 == 0).map(|h0| {
                let c = take_entries(h0, nl * nd, b, h, b0, n);
                plan.upload("initial_h [L, D, B, H]", bytemuck::cast_slice(&c))
            });
            let xp = plan.storage("XP [T·B, D·3H]", f32_bytes(t * n * nd * 3 * h));
            let mut layers = Vec::with_capacity(nl);
            for l in 0..nl {
                let width = if l == 0 { i } else { nd * h };
                let hs = plan.storage("H [D, T+1, B, H]", f32_bytes(nd * (t + 1) * n * h));
                let reserve = plan.storage("reserve [D, T, B, 4H]", f32_bytes(nd * t * n * 4 * h));
                let y = plan.storage("Y [T, B, D·H]", f32_bytes(t * n * nd * h));
                let weights = &self.layers[l];
                plan.input_projection(&layer_in, width, weights, &xp, t * n, nd * 3 * h);
                for d in 0..nd {
                    let to = f32_bytes(d * (t + 1) * n * h);
                    if let Some(before) = before {
                        let tb = before.steps;
                        let from = f32_bytes((d * (tb + 1) + tb) * n * h);
                        plan.copy(&before.layers[l].hs, from, &hs, to, f32_bytes(n * h));
                    } else if let Some(h0_buf) = &h0_buf {
                        let from = f32_bytes((l * nd + d) * n * h);
                        plan.copy(h0_buf, from, &hs, to, f32_bytes(n * h));
                    }
                }
                let binding = StepBinding {
                    buffers: [
                        xp.clone(),
                        if direct {
                            weights.rec.clone()
                        } else {
                            weights.rows.clone()
                        },
                        hs.clone(),
                        reserve.clone(),
                        y.clone(),
                        dummy.clone(),
                    ],
                    layer: plan.layer_params(&cd, 0, 0, t0 == 0),
                    lens: lens_c.clone(),
                };
                let group = plan.step_binding(binding);
                plan.forward_steps(group, t);
                layers.push(SavedLayer {
                    input: layer_in.clone(),
                    width,
                    hs,
                    reserve,
                });
                layer_in = y;
            }
            out.push((
                SavedChunk {
                    first: b0,
                    batch: n,
                    t0,
                    steps: t,
                    lens: lens_c,
                    layers,
                },
                layer_in,
            ));
        }
        out
    }

    /// Records the backward over the saved `chunks` of a forward over `dims`: per chunk of
    /// entries its pieces last first, `dy_for` giving each piece's `dY [steps, entries, D·H]`
    /// and `carry_for` each chunk's carry `[L, D, entries, H]` (`dY_h` in, `d initial_h`
    /// out). The weight gradients go to `outs` ([`GpuGru::gradient_buffers`]), the first
    /// piece writing and every later one adding, in order.
    pub(super) fn record_backward<'s>(
        &self,
        plan: &mut Plan<'_>,
        dims: &Dims,
        chunks: &'s [SavedChunk],
        dy_for: &mut dyn FnMut(&Plan<'_>, &SavedChunk) -> wgpu::Buffer,
        carry_for: &mut dyn FnMut(&Plan<'_>, usize, usize) -> wgpu::Buffer,
        outs: &[Vec<wgpu::Buffer>],
    ) -> BackwardRecord<'s> {
        let (h, nd, nl) = (dims.hidden_size, dims.num_directions, dims.num_layers);
        let widths: Vec<usize> = (0..nl)
            .map(|l| if l == 0 { dims.input_size } else { nd * h })
            .collect();
        let reset_before = self.convention == crate::weights::Convention::ResetBefore;
        let direct = plan.shape() != TrainShape::Split;
        let mut record = BackwardRecord {
            pieces: Vec::with_capacity(chunks.len()),
            carries: Vec::new(),
        };
        let mut accumulate = false;
        for group in chunks.chunk_by(|p, q| p.first == q.first) {
            let (b0, n) = (group[0].first, group[0].batch);
            let carry = carry_for(plan, b0, n);
            for chunk in group.iter().rev() {
                let (t0, t) = (chunk.t0, chunk.steps);
                let cd = Dims {
                    batch: n,
                    seq_len: t,
                    ..*dims
                };
                let rows = t * n;
                let gx_len = rows * nd * 3 * h;
                let dx_len = rows * widths.iter().copied().max().unwrap_or(0);
                let dy_buf = dy_for(plan, chunk);
                let grads = plan.storage(
                    "G_x [T, B, D, 3H] + G_h [D, T, B, 3H]",
                    f32_bytes(2 * gx_len),
                );
                let dx = [
                    plan.storage("dX (even layers)", f32_bytes(dx_len)),
                    plan.storage("dX (odd layers)", f32_bytes(dx_len)),
                ];
                for l in (0..nl).rev() {
                    let layer = &chunk.layers[l];
                    let weights = &self.layers[l];
                    let k = layer.width;
                    let source = if l + 1 == nl {
                        dy_buf.clone()
                    } else {
                        dx[(l + 1) % 2].clone()
                    };
                    plan.clear(&grads);
                    let binding = StepBinding {
                        buffers: [
                            source,
                            if direct {
                                weights.rows.clone()
                            } else {
                                weights.rec.clone()
                            },
                            layer.hs.clone(),
                            layer.reserve.clone(),
                            grads.clone(),
                            carry.clone(),
                        ],
                        layer: plan.layer_params(&cd, gx_len, l * nd * n * h, t0 == 0),
                        lens: chunk.lens.clone(),
                    };
                    let step_group = plan.step_binding(binding);
                    plan.backward_steps(step_group, t);
                    // dX = G_x · W: [T·B, D·3H] · [D·3H, K].
                    plan.input_gradient(&grads, weights, &dx[l % 2], rows, nd * 3 * h, k);
                    for (d, out) in outs[l].iter().enumerate() {
                        plan.weight_gradients(&WeightGrads {
                            grads: &grads,
                            gh_base: gx_len,
                            input: &layer.input,
                            hs: &layer.hs,
                            reserve: &layer.reserve,
                            out,
                            d,
                            k,
                            dims: &cd,
                            reset_before,
                            accumulate,
                        });
                    }
                }
                accumulate = true;
                let [dx0, _] = dx;
                record.pieces.push(BackwardPiece { chunk, dx0 });
            }
            record.carries.push((b0, n, carry));
        }
        record
    }
}
