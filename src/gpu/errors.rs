//! Error scopes: every GPU operation runs inside validation and out-of-memory scopes, and
//! what they catch (or a fault injected for testing) becomes [`GruError::Gpu`], with wgpu's
//! error kept as its [`std::error::Error::source`].

use crate::error::{GruError, Result};
use crate::gpu::context::{Fault, GpuContext};

/// [`GruError::Gpu`] for `operation`, keeping `source` (wgpu's error) behind the message.
#[cfg(not(target_arch = "wasm32"))]
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

/// [`GruError::Gpu`] for `operation` with `source`'s message (on the web wgpu's errors are
/// neither `Send` nor `Sync`, so the message is all that is kept).
#[cfg(target_arch = "wasm32")]
pub(super) fn gpu_error(operation: &str, source: impl std::error::Error + 'static) -> GruError {
    gpu_message(operation, source.to_string())
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
/// and the first error the scopes caught. Native only: there the scopes' results are ready
/// at once. On the web they arrive later, so nothing is pushed here and the error reaches
/// the enclosing [`scoped_async`], which every GPU operation runs in.
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn caught<T>(device: &wgpu::Device, f: impl FnOnce() -> T) -> (T, Option<wgpu::Error>) {
    pollster::block_on(in_scopes(device, f))
}

/// Runs `f` inside validation and out-of-memory error scopes of `device`; resolves to its
/// value and the first error the scopes caught.
async fn in_scopes<T>(device: &wgpu::Device, f: impl FnOnce() -> T) -> (T, Option<wgpu::Error>) {
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let value = f();
    // Error scopes belong to the thread that pushed them: both are popped (innermost first)
    // before the first await, which may resume on another thread.
    let (oom, validation) = (oom.pop(), validation.pop());
    (value, oom.await.or(validation.await))
}

/// On the web: runs `f`; errors reach the enclosing [`scoped_async`] (see the native form).
#[cfg(target_arch = "wasm32")]
pub(super) fn caught<T>(_device: &wgpu::Device, f: impl FnOnce() -> T) -> (T, Option<wgpu::Error>) {
    (f(), None)
}

/// [`scoped_async`], blocking until the scopes report (native only; they report at once).
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn scoped<T>(ctx: &GpuContext, operation: &str, f: impl FnOnce() -> T) -> Result<T> {
    pollster::block_on(scoped_async(ctx, operation, f))
}

/// Runs `f` inside validation and out-of-memory error scopes and awaits their report; any
/// error becomes
/// [`GruError::Gpu`] naming `operation` (so does a fault armed by
/// [`GpuContext::inject_fault`], counted once per call).
pub(super) async fn scoped_async<T>(
    ctx: &GpuContext,
    operation: &str,
    f: impl FnOnce() -> T,
) -> Result<T> {
    ctx.check_lost()?;
    let (value, error) = in_scopes(ctx.device(), f).await;
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
