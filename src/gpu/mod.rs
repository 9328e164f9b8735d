//! The GPU path: a context (adapter, device, queue), models resident on it, and streaming
//! sessions over those models.

mod context;
mod limits;
mod model;
mod session;

pub use context::{
    describe_adapter, enumerate_adapters, AdapterReport, ContextOptions, Fault, GpuContext,
};
pub use model::{
    auto_gemm_kernel, auto_kernel_path, auto_step_kernel, ForwardTiming, GemmKernel, GpuGru,
    KernelPath, ModelOptions, ModelStats, StepKernel, MAX_HIDDEN, PERSISTENT_MAX_HIDDEN,
};
pub use session::{Feed, GruSession, Outputs, StreamId};
