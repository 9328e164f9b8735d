//! The GPU path: a context (adapter, device, queue) and models resident on it.

mod context;
mod model;

pub use context::{
    describe_adapter, enumerate_adapters, AdapterReport, ContextOptions, GpuContext,
};
pub use model::{
    auto_gemm_kernel, auto_kernel_path, ForwardTiming, GemmKernel, GpuGru, KernelPath, ModelStats,
    MAX_HIDDEN, PERSISTENT_MAX_HIDDEN,
};
