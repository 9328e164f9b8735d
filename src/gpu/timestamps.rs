//! GPU timing of a forward from timestamp queries (see [`GpuGru::set_profiling`]).

use crate::error::Result;
use crate::gpu::model::GpuGru;
use crate::gpu::readback::{read_prefix_async, Drive};
use crate::gpu::scratch::Scratch;

/// GPU time of the last forward, from timestamp queries (see [`GpuGru::set_profiling`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ForwardTiming {
    /// The input-projection GEMMs of every layer, in nanoseconds.
    pub input_projection_ns: f64,
    /// The recurrence (every step of every layer), in nanoseconds.
    pub recurrence_ns: f64,
}

/// Timestamp queries of one shape: two passes per layer, two timestamps per pass.
pub(super) struct Timestamps {
    pub(super) set: wgpu::QuerySet,
    pub(super) resolve: wgpu::Buffer,
    pub(super) read: wgpu::Buffer,
    pub(super) count: u32,
}

impl GpuGru {
    /// The GPU time recorded by `s`'s timestamps in `submission` (`None` unless profiling).
    pub(super) async fn read_timing(
        &self,
        s: &Scratch,
        submission: wgpu::SubmissionIndex,
        drive: Drive,
    ) -> Result<Option<ForwardTiming>> {
        let Some(ts) = &s.timestamps else {
            return Ok(None);
        };
        let ticks =
            read_prefix_async(&self.ctx, &ts.read, ts.read.size(), submission, drive).await?;
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
