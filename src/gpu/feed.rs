//! Feeding a streaming session: checking a [`Feed`], gathering the fed streams' state into
//! a forward's initial state, the forward, scattering the final state back, and the buffers
//! of each forward shape a session keeps.

use web_time::Instant;

use crate::error::{GruError, Result};
use crate::gpu::errors::scoped_async;
use crate::gpu::params::entry;
use crate::gpu::readback::{read_prefix_async, Drive};
use crate::gpu::scratch::{Scratch, ShapeKey};
use crate::gpu::session::{GruSession, StreamId};
use crate::input::{Dims, Layout, OutputStyle};

/// Invocations per workgroup of `stream_state.wgsl` (`MOVE_WG`).
const MOVE_WG: u32 = 64;
/// Forward shapes (batch bucket × chunk length) whose buffers a session keeps at once.
const MAX_SHAPES: usize = 4;

/// The forward batch a feed of `k` streams runs with: `k` rounded up to a multiple of
/// `max(4, 2^⌈log₂ k⌉ / 8)`, so that feeds of varying `k` share a few buffer sets (eight
/// sizes per doubling) while adding fewer than `k/4` padding entries (at most 3 below 32
/// streams; 4 is the step kernels' batch tile).
fn batch_bucket(k: usize) -> usize {
    let q = (k.next_power_of_two() / 8).max(4);
    k.next_multiple_of(q)
}

/// What [`GruSession::feed`] reads back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Outputs {
    /// The last layer's output at every fed step: `[k, C, H]` (zero past a stream's length).
    #[default]
    All,
    /// The last layer's output after each stream's last fed step: `[k, H]`.
    Last,
    /// Nothing: the feed is submitted and the call returns without waiting for the GPU.
    Nothing,
}

/// One call of [`GruSession::feed`]: `C` steps of `k` streams.
#[derive(Clone, Copy, Debug)]
pub struct Feed<'a> {
    /// The streams fed, each at most once; the order of `x`'s and the outputs' first axis.
    pub streams: &'a [StreamId],
    /// The input, `[k, C, I]`: each stream's `C` steps back to back.
    pub x: &'a [f32],
    /// `C ≥ 1`, the steps in this chunk.
    pub steps: usize,
    /// Steps to run per stream, each in `1..=C` (`None`: all `C`). Stream `i` advances by
    /// `lengths[i]` steps, reading the first `lengths[i]` of its `C` rows of `x`.
    pub lengths: Option<&'a [usize]>,
    /// What to read back.
    pub outputs: Outputs,
}

impl<'a> Feed<'a> {
    /// `C = steps` steps of each stream in `streams`, `x` being `[k, C, I]`; every output is
    /// read back ([`Outputs::All`]).
    pub fn new(streams: &'a [StreamId], x: &'a [f32], steps: usize) -> Self {
        Feed {
            streams,
            x,
            steps,
            lengths: None,
            outputs: Outputs::All,
        }
    }

    /// Runs stream `i` for `lengths[i]` of the `C` steps only.
    pub fn with_lengths(mut self, lengths: &'a [usize]) -> Self {
        self.lengths = Some(lengths);
        self
    }

    /// Chooses what to read back.
    pub fn with_outputs(mut self, outputs: Outputs) -> Self {
        self.outputs = outputs;
        self
    }
}

/// `MoveParams` of `stream_state.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct MoveParams {
    streams: u32,
    layers: u32,
    hidden: u32,
    batch: u32,
    slot_stride: u32,
    _pad: [u32; 3],
}

/// The buffers of one forward shape, with the session's own bindings over them.
pub(super) struct Packing {
    key: ShapeKey,
    scratch: Scratch,
    slots: wgpu::Buffer,
    params: wgpu::Buffer,
    gather: wgpu::BindGroup,
    scatter: wgpu::BindGroup,
    readback: wgpu::Buffer,
    last_used: u64,
}

impl GruSession {
    /// Checks a feed; returns `(k, C)`.
    fn check_feed(&self, feed: &Feed<'_>) -> Result<(usize, usize)> {
        let (k, c, i) = (feed.streams.len(), feed.steps, self.model.input_size());
        if c == 0 {
            return Err(GruError::invalid("feed steps C", "at least 1", 0));
        }
        let expected = k
            .checked_mul(c)
            .and_then(|n| n.checked_mul(i))
            .ok_or_else(|| GruError::invalid("feed", "k·C·I that fits in usize", "more"))?;
        if feed.x.len() != expected {
            return Err(GruError::shape(
                "feed x",
                format!("[k={k}, C={c}, I={i}] = {expected} elements"),
                format!("{} elements", feed.x.len()),
            ));
        }
        if let Some(lengths) = feed.lengths {
            if lengths.len() != k {
                return Err(GruError::shape(
                    "feed lengths",
                    format!("[k={k}] (one per stream)"),
                    format!("{} values", lengths.len()),
                ));
            }
            if let Some((s, &n)) = lengths.iter().enumerate().find(|(_, &n)| n == 0 || n > c) {
                return Err(GruError::invalid(
                    format!("feed lengths[{s}]"),
                    format!("1..={c} (leave a stream out of the feed to not advance it)"),
                    n,
                ));
            }
        }
        let mut seen = std::collections::HashSet::with_capacity(k);
        for &stream in feed.streams {
            self.check_stream(stream)?;
            if !seen.insert(stream.slot) {
                return Err(GruError::invalid(
                    "feed streams",
                    "each stream at most once",
                    format!("{stream} twice"),
                ));
            }
        }
        Ok((k, c))
    }

    /// Advances `feed.streams` by `feed.steps` steps (or their `lengths`) in one batched
    /// forward, updating their resident state; other streams are untouched.
    ///
    /// Returns what `feed.outputs` asks for: `[k, C, H]` ([`Outputs::All`]), `[k, H]`
    /// ([`Outputs::Last`]) or nothing ([`Outputs::Nothing`], without waiting for the GPU). A
    /// feed of no streams does nothing.
    ///
    /// Errors: `x` or `lengths` of the wrong size, a length outside `1..=C`, a closed,
    /// unknown or repeated stream, a shape beyond the device's limits, or a device error. A
    /// feed that fails before it is submitted leaves every state as it was.
    ///
    /// Blocks until the outputs are read back (native targets); [`GruSession::feed_async`]
    /// awaits them.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn feed(&mut self, feed: &Feed<'_>) -> Result<Vec<f32>> {
        pollster::block_on(self.feed_with(feed, Drive::Inline))
    }

    /// [`GruSession::feed`] as a future that resolves when the outputs are read back, without
    /// blocking the thread (see [`GpuGru::forward_async`](crate::gpu::GpuGru::forward_async)).
    pub async fn feed_async(&mut self, feed: &Feed<'_>) -> Result<Vec<f32>> {
        self.feed_with(feed, Drive::Background).await
    }

    async fn feed_with(&mut self, feed: &Feed<'_>, drive: Drive) -> Result<Vec<f32>> {
        let start = Instant::now();
        let (k, c) = self.check_feed(feed)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let (l, h) = (self.model.num_layers(), self.model.hidden_size());
        let bucket = batch_bucket(k);
        let dims = Dims {
            seq_len: c,
            batch: bucket,
            input_size: self.model.input_size(),
            hidden_size: h,
            num_layers: l,
            num_directions: 1,
            layout: Layout::BatchMajor,
            style: OutputStyle::PyTorch,
        };
        let p = self.packing(&dims).await?;
        let ctx = self.model.context().clone();
        let (device, queue) = (ctx.device(), ctx.queue());
        let packing = &self.packings[p];
        let s = &packing.scratch;
        let mut lens = vec![0u32; bucket];
        for (b, len) in lens.iter_mut().take(k).enumerate() {
            *len = feed.lengths.map_or(c, |v| v[b]) as u32;
        }
        let slots: Vec<u32> = feed.streams.iter().map(|s| s.slot).collect();
        let params = MoveParams {
            streams: k as u32,
            layers: l as u32,
            hidden: h as u32,
            batch: bucket as u32,
            slot_stride: self.stride as u32,
            _pad: [0; 3],
        };
        let moved = (k * l * h) as u32;
        let groups = moved
            .div_ceil(MOVE_WG)
            .min(ctx.limits().max_compute_workgroups_per_dimension);
        // Bytes read back: Y's first k entries ([bucket, C, H], batch-major), or the last
        // layer's Y_h for the first k entries ([L, bucket, H]).
        // (The bucket is a multiple of 4, so the Y_h offset is 4-byte aligned in f16 too.)
        let dtype = self.model.dtype();
        let (read_from, read_offset, read_len) = match feed.outputs {
            Outputs::All => (Some(&s.y), 0, k * c * h),
            Outputs::Last => (Some(&s.yh), dtype.bytes((l - 1) * bucket * h), k * h),
            Outputs::Nothing => (None, 0, 0),
        };
        let read_bytes = dtype.bytes(read_len);
        let (submission, encode) = scoped_async(&ctx, "streaming feed", || {
            queue.write_buffer(&s.x, 0, &dtype.encode(feed.x));
            queue.write_buffer(&s.lens, 0, bytemuck::cast_slice(&lens));
            queue.write_buffer(&packing.slots, 0, bytemuck::cast_slice(&slots));
            queue.write_buffer(&packing.params, 0, bytemuck::bytes_of(&params));
            let encode_start = Instant::now();
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("gru streaming feed"),
            });
            dispatch(
                &mut encoder,
                "gather stream state",
                &self.gather,
                &packing.gather,
                groups,
            );
            self.model.encode_layers(s, &mut encoder);
            dispatch(
                &mut encoder,
                "scatter stream state",
                &self.scatter,
                &packing.scatter,
                groups,
            );
            if let Some(src) = read_from {
                encoder.copy_buffer_to_buffer(src, read_offset, &packing.readback, 0, read_bytes);
            }
            let commands = encoder.finish();
            let encode = encode_start.elapsed();
            (queue.submit([commands]), encode)
        })
        .await?;
        if read_from.is_none() {
            self.model.record_forward(encode, None);
            return Ok(Vec::new());
        }
        let outcome = match read_prefix_async(
            &ctx,
            &packing.readback,
            read_bytes,
            submission.clone(),
            drive,
        )
        .await
        {
            Ok(data) => self
                .model
                .read_timing(s, submission, drive)
                .await
                .map(|timing| (data, timing)),
            Err(e) => Err(e),
        };
        match outcome.and_then(|v| ctx.check_lost().map(|()| v)) {
            Ok((data, timing)) => {
                self.model.record_forward(encode, timing);
                self.last_latency = Some(start.elapsed());
                Ok(dtype.decode(&data, read_len))
            }
            Err(e) => {
                // A failed readback may leave a mapping pending: drop the buffers.
                self.packings.clear();
                ctx.check_lost_after_poll()?;
                Err(e)
            }
        }
    }

    /// The index of the buffer set for `dims`, built (evicting the least recently used one
    /// past [`MAX_SHAPES`]) when missing.
    async fn packing(&mut self, dims: &Dims) -> Result<usize> {
        self.clock += 1;
        let key = self.model.shape_key(dims);
        if let Some(p) = self.packings.iter().position(|p| p.key == key) {
            self.packings[p].last_used = self.clock;
            return Ok(p);
        }
        if self.packings.len() >= MAX_SHAPES {
            if let Some(oldest) = self
                .packings
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.last_used)
                .map(|(i, _)| i)
            {
                self.packings.swap_remove(oldest);
            }
        }
        let scratch = self.model.build_scratch(key).await?;
        let ctx = self.model.context().clone();
        let device = ctx.device();
        let (b, c, h) = (dims.batch, dims.seq_len, dims.hidden_size);
        let packing = scoped_async(&ctx, "allocating buffers for a streaming feed", || {
            let slots = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("fed slots [k]"),
                size: 4 * b as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let params = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("stream_state params"),
                size: std::mem::size_of::<MoveParams>() as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let readback = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("feed readback"),
                size: self.model.dtype().bytes(b * c.max(1) * h),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let bind = |packed: &wgpu::Buffer| {
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("stream_state bindings"),
                    layout: &self.move_layout,
                    entries: &[
                        entry(0, self.state.as_entire_binding()),
                        entry(1, packed.as_entire_binding()),
                        entry(2, slots.as_entire_binding()),
                        entry(3, params.as_entire_binding()),
                    ],
                })
            };
            let gather = bind(&scratch.h0);
            let scatter = bind(&scratch.yh);
            (slots, params, readback, gather, scatter)
        })
        .await?;
        let (slots, params, readback, gather, scatter) = packing;
        self.packings.push(Packing {
            key,
            scratch,
            slots,
            params,
            gather,
            scatter,
            readback,
            last_used: self.clock,
        });
        Ok(self.packings.len() - 1)
    }
}

/// Records one compute pass of `groups` workgroups of `pipeline` over `bind_group`.
fn dispatch(
    encoder: &mut wgpu::CommandEncoder,
    label: &str,
    pipeline: &wgpu::ComputePipeline,
    bind_group: &wgpu::BindGroup,
    groups: u32,
) {
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some(label),
        timestamp_writes: None,
    });
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bind_group, &[]);
    pass.dispatch_workgroups(groups, 1, 1);
}
