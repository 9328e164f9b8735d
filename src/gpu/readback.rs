//! Reading buffers back to the host once a submission completes.

use crate::error::Result;
use crate::gpu::context::GpuContext;
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::errors::gpu_error;
use crate::gpu::errors::gpu_message;

/// Who makes wgpu report that a submission finished (and so run the map callback).
///
/// On native targets something has to poll the device: the blocking API does it on the
/// calling thread ([`Drive::Inline`]); the async API must not block its executor, so a
/// the context's waiting thread does instead ([`Drive::Background`], `poller.rs`). In a
/// browser the page's event loop resolves `mapAsync` by itself and both behave alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drive {
    /// Poll on the calling thread (blocking).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    Inline,
    /// Let the caller's future wait; a helper thread polls (native) or the browser does.
    Background,
}

/// Maps `buffer` after `submission` completes and returns its bytes (blocking; native).
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn read_bytes(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    submission: wgpu::SubmissionIndex,
) -> Result<Vec<u8>> {
    pollster::block_on(read_prefix_async(
        ctx,
        buffer,
        buffer.size(),
        submission,
        Drive::Inline,
    ))
}

/// Maps the first `bytes` of `buffer` after `submission` completes and returns them, with
/// `drive` making the device report the submission.
pub(super) async fn read_prefix_async(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    bytes: u64,
    submission: wgpu::SubmissionIndex,
    drive: Drive,
) -> Result<Vec<u8>> {
    let slice = buffer.slice(..bytes);
    let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        sender.send(r).ok();
    });
    #[cfg(not(target_arch = "wasm32"))]
    {
        match drive {
            Drive::Inline => {
                ctx.device()
                    .poll(wgpu::PollType::Wait {
                        submission_index: Some(submission),
                        timeout: None,
                    })
                    .map_err(|e| gpu_error("waiting for the forward", e))?;
            }
            Drive::Background => {
                // A failed wait (a lost device) drops or fails the map callback, which the
                // receiver reports below.
                ctx.poller
                    .wait_for(ctx.device(), submission)
                    .map_err(|e| gpu_message("waiting for the forward", e.to_string()))?;
            }
        }
    }
    #[cfg(target_arch = "wasm32")]
    let _ = (submission, drive);
    match receiver.receive().await {
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
/// names the operation in errors. Blocking; native (the training path's).
#[cfg(not(target_arch = "wasm32"))]
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
