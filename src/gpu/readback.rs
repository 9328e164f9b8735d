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
