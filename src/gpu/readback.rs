//! Reading buffers back to the host once a submission completes.

use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::errors::{gpu_error, gpu_message};

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
        .map_err(|e| gpu_error("waiting for the forward", e))?;
    match pollster::block_on(receiver.receive()) {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            return Err(gpu_message(
                "reading results back",
                format!("{e}; {}", ctx.errors.take().join("; ")),
            ))
        }
        None => {
            return Err(gpu_message(
                "reading results back",
                "the map callback was dropped",
            ))
        }
    }
    let out = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| gpu_message("reading results back", format!("{e:?}")))?;
        view.to_vec()
    };
    buffer.unmap();
    Ok(out)
}

/// Reads the first `n` `f32` values of each `(buffer, n)` back (each buffer needs
/// `COPY_SRC`): one copy per buffer into one readback buffer, one submit, one map; `what`
/// names the operation in errors.
pub(super) fn read_f32_buffers(
    ctx: &GpuContext,
    what: &str,
    buffers: &[(&wgpu::Buffer, usize)],
) -> Result<Vec<Vec<f32>>> {
    let device = ctx.device();
    let total: usize = buffers.iter().map(|&(_, n)| n).sum();
    let (submission, readback) = crate::gpu::errors::scoped(ctx, what, || {
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size: (4 * total as u64).max(16),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(what) });
        let mut at = 0u64;
        for &(b, n) in buffers {
            if n > 0 {
                encoder.copy_buffer_to_buffer(b, 0, &readback, at, 4 * n as u64);
            }
            at += 4 * n as u64;
        }
        (ctx.queue().submit([encoder.finish()]), readback)
    })?;
    let bytes = read_bytes(ctx, &readback, submission)?;
    let values: &[f32] = bytemuck::cast_slice(&bytes[..4 * total]);
    let mut at = 0;
    Ok(buffers
        .iter()
        .map(|&(_, n)| {
            let v = values[at..at + n].to_vec();
            at += n;
            v
        })
        .collect())
}
