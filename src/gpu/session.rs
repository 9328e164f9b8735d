//! Streaming sessions: many independent streams of one model, their hidden state resident on
//! the GPU between calls.

use std::time::Duration;

use crate::error::{GruError, Result};
use crate::gpu::errors::scoped_async;
use crate::gpu::feed::Packing;
use crate::gpu::kernels::LayoutFamily;
use crate::gpu::limits::check_binding;
use crate::gpu::model::GpuGru;
use crate::gpu::params::bytes_of;
use crate::gpu::readback::{read_prefix_async, Drive};
use crate::gpu::ForwardTiming;
use crate::model::Direction;
use crate::shaders::Kernel;

/// A stream of a [`GruSession`]: its slot, and which opening of that slot it is (a closed
/// stream's id is refused even after its slot is reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    pub(super) slot: u32,
    generation: u32,
}

/// `stream 3 (opening 2 of its slot)`: how errors name a stream.
impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stream {} (opening {} of its slot)",
            self.slot, self.generation
        )
    }
}

impl StreamId {
    /// The slot, in `0..capacity`: the stream's row in [`GruSession`]'s resident state.
    pub fn slot(self) -> usize {
        self.slot as usize
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Slot {
    pub(super) generation: u32,
    pub(super) open: bool,
}

/// Several independent streams through one network (forward direction, any number of
/// layers), with every stream's hidden state resident on the GPU between calls.
///
/// A session has a fixed number of slots (its capacity). [`GruSession::open`] gives a stream
/// starting from a zero state (or a given one); [`GruSession::feed`] advances any subset of
/// the open streams by a chunk of `C` steps in one batched forward — one command encoder, one
/// submit, one readback of only the outputs asked for — and leaves every other stream as it
/// was. However a sequence is split into chunks, the outputs and final state equal those of
/// one forward over the whole sequence ([`GpuGru::forward`]).
///
/// State layout: a stream's state is `[L, H]`, layer 0 first (what
/// [`GruSession::read_state`] returns and [`GruSession::set_state`] takes). Gate order z, r, h.
///
/// A session is `Send`: sessions on one [`crate::gpu::GpuContext`] can be fed from different
/// threads.
pub struct GruSession {
    pub(super) model: GpuGru,
    pub(super) capacity: usize,
    pub(super) slots: Vec<Slot>,
    pub(super) open: usize,
    /// `[capacity, stride]`: each slot's `[L, H]`, slots `stride` elements apart.
    pub(super) state: wgpu::Buffer,
    /// `L·H` rounded up to even: every slot starts 4-byte aligned in f16 too.
    pub(super) stride: usize,
    /// `[L, H]`, for [`GruSession::read_state`].
    pub(super) state_read: wgpu::Buffer,
    pub(super) move_layout: wgpu::BindGroupLayout,
    pub(super) gather: wgpu::ComputePipeline,
    pub(super) scatter: wgpu::ComputePipeline,
    pub(super) packings: Vec<Packing>,
    pub(super) clock: u64,
    pub(super) last_latency: Option<Duration>,
}

impl std::fmt::Debug for GruSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GruSession")
            .field("model", &self.model)
            .field("capacity", &self.capacity)
            .field("open", &self.open)
            .finish()
    }
}

impl GruSession {
    /// A session with `capacity` stream slots over `model`, which must run forward only (a
    /// reverse or bidirectional network needs the future of each stream).
    ///
    /// Errors: a reverse or bidirectional model, `capacity = 0`, a resident state
    /// `[capacity, L, H]` larger than a storage binding may be, or a device error. Blocks
    /// (native targets); [`GruSession::new_async`] awaits.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(model: GpuGru, capacity: usize) -> Result<Self> {
        pollster::block_on(Self::new_async(model, capacity))
    }

    /// The async form of [`GruSession::new`] (the only form on the web).
    pub async fn new_async(model: GpuGru, capacity: usize) -> Result<Self> {
        if model.direction() != Direction::Forward {
            return Err(GruError::invalid(
                "model direction for a streaming session",
                "forward (a stream's future is not known when it is fed)",
                format!("{:?}", model.direction()),
            ));
        }
        if capacity == 0 || capacity > u32::MAX as usize {
            return Err(GruError::invalid(
                "session capacity",
                "1 to 2^32 − 1 streams",
                capacity,
            ));
        }
        let (l, h) = (model.num_layers(), model.hidden_size());
        let ctx = model.context().clone();
        let dtype = model.dtype();
        let stride = (l * h).next_multiple_of(2);
        let state_len = capacity.checked_mul(stride).ok_or_else(|| {
            GruError::invalid(
                "session capacity",
                "a state size that fits in usize",
                capacity,
            )
        })?;
        check_binding(
            ctx.limits(),
            format!("session state [capacity={capacity}, L={l}, H={h}]"),
            bytes_of("session state", state_len, dtype)?,
        )?;
        let device = ctx.device();
        let (state, state_read, move_layout, gather, scatter) =
            scoped_async(&ctx, "creating a streaming session", || {
                let state = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("session state [capacity, L, H]"),
                    size: dtype.bytes(state_len),
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_DST
                        | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
                let state_read = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("session state readback [L, H]"),
                    size: dtype.bytes(stride),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let kernels = ctx.kernels();
                let move_layout = kernels.bind_group_layout(device, LayoutFamily::StreamState)?;
                let pipeline = |entry: &'static str| {
                    let pipeline = kernels.pipeline(device, Kernel::StreamState, dtype, entry, &[]);
                    pipeline.map(|(p, _)| p)
                };
                Ok::<_, GruError>((
                    state,
                    state_read,
                    move_layout,
                    pipeline("gather_state")?,
                    pipeline("scatter_state")?,
                ))
            })
            .await??;
        Ok(GruSession {
            model,
            capacity,
            slots: vec![Slot::default(); capacity],
            open: 0,
            state,
            stride,
            state_read,
            move_layout,
            gather,
            scatter,
            packings: Vec::new(),
            clock: 0,
            last_latency: None,
        })
    }

    /// The model the session runs (its kernel-path and profiling settings apply to feeds).
    pub fn model(&self) -> &GpuGru {
        &self.model
    }

    /// The model, to change its settings ([`GpuGru::set_kernel_path`],
    /// [`GpuGru::set_profiling`], …); the resident states are kept.
    pub fn model_mut(&mut self) -> &mut GpuGru {
        &mut self.model
    }

    /// Ends the session, returning the model.
    pub fn into_model(self) -> GpuGru {
        self.model
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of open streams.
    pub fn open_streams(&self) -> usize {
        self.open
    }

    /// Elements of one stream's state: `L · H`.
    pub fn state_len(&self) -> usize {
        self.model.num_layers() * self.model.hidden_size()
    }

    /// Host time from the start of the last [`GruSession::feed`] that read something back to
    /// its return (upload, encode, submit, GPU, readback).
    pub fn last_latency(&self) -> Option<Duration> {
        self.last_latency
    }

    /// GPU time of the last feed's layers when the model profiles ([`GpuGru::set_profiling`];
    /// not recorded for [`Outputs::Nothing`](crate::gpu::Outputs::Nothing), which does not wait).
    pub fn last_timing(&self) -> Option<ForwardTiming> {
        self.model.last_timing()
    }

    /// Opens a stream in the lowest free slot, starting from a zero state.
    ///
    /// Errors: every slot is open.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(&mut self) -> Result<StreamId> {
        pollster::block_on(self.open_with(None))
    }

    /// Opens a stream starting from `state` (`[L, H]`, e.g. saved by
    /// [`GruSession::read_state`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_with_state(&mut self, state: &[f32]) -> Result<StreamId> {
        self.check_state(state)?;
        pollster::block_on(self.open_with(Some(state)))
    }

    /// The async form of [`GruSession::open`] and [`GruSession::open_with_state`] (`state`
    /// `[L, H]`, or `None` for zeros).
    pub async fn open_async(&mut self, state: Option<&[f32]>) -> Result<StreamId> {
        if let Some(state) = state {
            self.check_state(state)?;
        }
        self.open_with(state).await
    }

    async fn open_with(&mut self, state: Option<&[f32]>) -> Result<StreamId> {
        let Some(slot) = self.slots.iter().position(|s| !s.open) else {
            return Err(GruError::invalid(
                "stream to open",
                format!("a free slot (capacity {})", self.capacity),
                format!("{} streams already open", self.open),
            ));
        };
        let id = StreamId {
            slot: slot as u32,
            generation: self.slots[slot].generation,
        };
        self.write_state(id, state).await?;
        self.slots[slot].open = true;
        self.open += 1;
        Ok(id)
    }

    /// Closes `stream`; its id is refused from now on and its slot may be reused.
    pub fn close(&mut self, stream: StreamId) -> Result<()> {
        self.check_stream(stream)?;
        let slot = &mut self.slots[stream.slot()];
        slot.open = false;
        slot.generation = slot.generation.wrapping_add(1);
        self.open -= 1;
        Ok(())
    }

    /// Sets `stream`'s state to zero, as if it were newly opened.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn reset(&mut self, stream: StreamId) -> Result<()> {
        pollster::block_on(self.set_state_async(stream, None))
    }

    /// Sets `stream`'s state to `state` (`[L, H]`), e.g. to resume a saved conversation.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn set_state(&mut self, stream: StreamId, state: &[f32]) -> Result<()> {
        pollster::block_on(self.set_state_async(stream, Some(state)))
    }

    /// The async form of [`GruSession::set_state`] (`Some`) and [`GruSession::reset`]
    /// (`None`: zeros).
    pub async fn set_state_async(&mut self, stream: StreamId, state: Option<&[f32]>) -> Result<()> {
        self.check_stream(stream)?;
        if let Some(state) = state {
            self.check_state(state)?;
        }
        self.write_state(stream, state).await
    }

    /// Reads `stream`'s state back from the GPU: `[L, H]`, layer 0 first. Waits for every feed
    /// submitted before. Blocks (native targets); [`GruSession::read_state_async`] awaits.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_state(&mut self, stream: StreamId) -> Result<Vec<f32>> {
        pollster::block_on(self.read_state_with(stream, Drive::Inline))
    }

    /// The async form of [`GruSession::read_state`].
    pub async fn read_state_async(&mut self, stream: StreamId) -> Result<Vec<f32>> {
        self.read_state_with(stream, Drive::Background).await
    }

    async fn read_state_with(&mut self, stream: StreamId, drive: Drive) -> Result<Vec<f32>> {
        self.check_stream(stream)?;
        let ctx = self.model.context().clone();
        let dtype = self.model.dtype();
        let bytes = dtype.bytes(self.stride);
        let offset = stream.slot() as u64 * bytes;
        let submission = scoped_async(&ctx, "reading a stream's state", || {
            let mut encoder =
                ctx.device()
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("read stream state"),
                    });
            encoder.copy_buffer_to_buffer(&self.state, offset, &self.state_read, 0, bytes);
            ctx.queue().submit([encoder.finish()])
        })
        .await?;
        let data = read_prefix_async(&ctx, &self.state_read, bytes, submission, drive).await;
        match data {
            Ok(data) => Ok(dtype.decode(&data, self.state_len())),
            Err(e) => {
                ctx.check_lost_after_poll()?;
                Err(e)
            }
        }
    }

    fn check_state(&self, state: &[f32]) -> Result<()> {
        let (l, h) = (self.model.num_layers(), self.model.hidden_size());
        if state.len() != l * h {
            return Err(GruError::shape(
                "stream state",
                format!("[L={l}, H={h}] = {} elements", l * h),
                format!("{} elements", state.len()),
            ));
        }
        Ok(())
    }

    pub(super) fn check_stream(&self, stream: StreamId) -> Result<()> {
        match self.slots.get(stream.slot()) {
            Some(s) if s.open && s.generation == stream.generation => Ok(()),
            Some(_) => Err(GruError::invalid(
                "stream",
                "an open stream of this session",
                format!("{stream}, which was closed"),
            )),
            None => Err(GruError::invalid(
                "stream",
                format!("a stream of this session (slots 0..{})", self.capacity),
                format!("{stream}"),
            )),
        }
    }

    async fn write_state(&mut self, stream: StreamId, state: Option<&[f32]>) -> Result<()> {
        let ctx = self.model.context().clone();
        let dtype = self.model.dtype();
        let offset = stream.slot() as u64 * dtype.bytes(self.stride);
        let mut values = vec![0.0f32; self.stride];
        if let Some(state) = state {
            values[..state.len()].copy_from_slice(state);
        }
        scoped_async(&ctx, "setting a stream's state", || {
            ctx.queue()
                .write_buffer(&self.state, offset, &dtype.encode(&values));
        })
        .await
    }
}
