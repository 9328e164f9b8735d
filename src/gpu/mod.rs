//! The GPU path: a context (adapter, device, queue) and models resident on it.

mod context;
mod model;

pub use context::{
    describe_adapter, enumerate_adapters, AdapterReport, ContextOptions, GpuContext,
};
pub use model::{
    auto_kernel_path, ForwardTiming, GpuGru, KernelPath, ModelStats, MAX_HIDDEN,
    PERSISTENT_MAX_HIDDEN,
};
