//! Error scopes: every GPU operation runs inside validation and out-of-memory scopes, and
//! what they catch (or a fault injected for testing) becomes [`GruError::Gpu`], with wgpu's
//! error kept as its [`std::error::Error::source`].

use crate::error::{GruError, Result};
use crate::gpu::context::{Fault, GpuContext};

/// [`GruError::Gpu`] for `operation`, keeping `source` (wgpu's error) behind the message.
pub(super) fn gpu_error(
    operation: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> GruError {
    GruError::Gpu {
        operation: operation.to_string(),
        message: source.to_string(),
        source: Some(Box::new(source)),
    }
}

/// [`GruError::Gpu`] for `operation` with a message and no underlying error value.
pub(super) fn gpu_message(operation: &str, message: impl Into<String>) -> GruError {
    GruError::Gpu {
        operation: operation.to_string(),
        message: message.into(),
        source: None,
    }
}

/// Runs `f` inside validation and out-of-memory error scopes of `device`; returns its value
/// and the first error the scopes caught.
pub(super) fn caught<T>(device: &wgpu::Device, f: impl FnOnce() -> T) -> (T, Option<wgpu::Error>) {
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let value = f();
    let oom = pollster::block_on(oom.pop());
    let validation = pollster::block_on(validation.pop());
    (value, oom.or(validation))
}

/// Runs `f` inside validation and out-of-memory error scopes; any error becomes
/// [`GruError::Gpu`] naming `operation` (so does a fault armed by
/// [`GpuContext::inject_fault`], counted once per call).
pub(super) fn scoped<T>(ctx: &GpuContext, operation: &str, f: impl FnOnce() -> T) -> Result<T> {
    ctx.check_lost()?;
    let (value, error) = caught(ctx.device(), f);
    if let Some(e) = error {
        // A lost device explains any error it caused; say so instead.
        ctx.check_lost_after_poll()?;
        return Err(gpu_error(operation, e));
    }
    if let Some(fault) = ctx.take_fault() {
        return Err(gpu_message(
            operation,
            match fault {
                Fault::OutOfMemory => "Out of Memory (injected by GpuContext::inject_fault)",
                Fault::Validation => "Validation Error (injected by GpuContext::inject_fault)",
            },
        ));
    }
    let uncaptured = ctx.errors.take();
    if !uncaptured.is_empty() {
        ctx.check_lost_after_poll()?;
        return Err(gpu_message(operation, uncaptured.join("; ")));
    }
    Ok(value)
}
