//! The GPU path: a context (adapter, device, queue), models resident on it, and streaming
//! sessions over those models.

mod context;
mod encode;
mod errors;
mod feed;
mod kernels;
mod limits;
mod model;
mod optim;
mod params;
mod path;
mod pipelines;
mod readback;
mod scratch;
mod session;
mod split;
mod timestamps;
mod train;
mod weights;

pub use context::{
    describe_adapter, enumerate_adapters, AdapterReport, ContextOptions, Fault, GpuContext,
};
pub use feed::{Feed, Outputs};
pub use kernels::{KernelStats, MAX_HIDDEN, PERSISTENT_MAX_HIDDEN};
pub use model::{GpuGru, ModelOptions, ModelStats};
pub use optim::{DeviceTensors, GpuOptimizer};
pub use path::{
    auto_gemm_kernel, auto_kernel_path, auto_step_kernel, GemmKernel, KernelPath, StepKernel,
    StepStructure,
};
pub use session::{GruSession, StreamId};
pub use timestamps::ForwardTiming;
pub use train::{GpuTrainer, Saved, TrainShape};
