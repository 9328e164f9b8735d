//! A forward in pieces, for problems beyond the device's limits (see
//! [`limits::split_sizes`]).

use wgpu::util::DeviceExt;

use crate::error::Result;
use crate::gpu::errors::scoped_async;
use crate::gpu::limits;
use crate::gpu::model::GpuGru;
use crate::gpu::readback::{read_prefix_async, Drive};
use crate::input::{Dims, GruInput, GruOutput, Layout};

impl GpuGru {
    /// The largest `(T_c, B_c)` pieces a forward over `dims` runs in (see
    /// [`limits::split_sizes`]).
    pub(super) fn split_sizes(&self, dims: &Dims) -> Result<(usize, usize)> {
        limits::split_sizes(self.ctx.limits(), dims, self.dtype, self.direction)
    }

    /// A forward in pieces of `tc` steps × `bc` entries (see [`GpuGru::split_sizes`]), all
    /// recorded in one command encoder and one submit. Each piece's X, lengths and initial
    /// state are uploaded into buffers of their own and copied into the shared scratch
    /// before the piece runs; a piece that continues a sequence starts from the state the
    /// previous piece left in `Y_h`. Each piece's `Y` and `Y_h` is copied to a readback buffer
    /// of its own; the host assembles the outputs in the caller's layout. No timing is
    /// recorded for a split forward.
    pub(super) async fn forward_split(
        &mut self,
        input: &GruInput<'_>,
        dims: Dims,
        tc: usize,
        bc: usize,
        drive: Drive,
    ) -> Result<GruOutput> {
        let inner = Dims {
            seq_len: tc,
            batch: bc,
            layout: Layout::SequenceMajor,
            style: crate::input::OutputStyle::Onnx,
            ..dims
        };
        let s = self.take_scratch(&inner).await?;
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
        let submitted = scoped_async(&ctx, "forward (split over the device's limits)", || {
            let encode_start = web_time::Instant::now();
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
                self.encode_layers(&s, &mut encoder);
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
        })
        .await;
        let (submission, readbacks, encode) = match submitted {
            Ok(v) => v,
            Err(e) => {
                self.scratch = Some(s);
                return Err(e);
            }
        };
        self.encode = encode;
        let mut y = vec![0.0f32; dims.y_len()];
        let mut y_h = vec![0.0f32; dims.state_len()];
        let [y_t, y_d, y_b] = dims.y_strides();
        let [iy_t, iy_d, iy_b] = inner.y_strides();
        for (&(t0, b0, tn, bn), readback) in pieces.iter().zip(&readbacks) {
            let data =
                match read_prefix_async(&ctx, readback, readback.size(), submission.clone(), drive)
                    .await
                {
                    Ok(d) => d,
                    Err(e) => {
                        // The scratch is dropped: the next forward starts from fresh buffers.
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
        self.scratch = Some(s);
        self.timing = None;
        self.stats.forwards += 1;
        self.stats.split_forwards += 1;
        Ok(GruOutput { y, y_h, dims })
    }
}
