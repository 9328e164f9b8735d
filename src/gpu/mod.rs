//! The GPU path: a context (adapter, device, queue), models resident on it, and streaming
//! sessions over those models.

mod context;
mod encode;
mod errors;
mod feed;
mod kernels;
mod limits;
mod model;
// Training on the GPU is native-only for now: its host loop blocks on the device.
#[cfg(not(target_arch = "wasm32"))]
mod optim;
mod params;
mod path;
mod pipelines;
#[cfg(not(target_arch = "wasm32"))]
mod poller;
mod readback;
mod scratch;
mod session;
mod split;
mod timestamps;
#[cfg(not(target_arch = "wasm32"))]
mod train;
mod weights;

#[cfg(not(target_arch = "wasm32"))]
pub use context::enumerate_adapters;
pub use context::{describe_adapter, AdapterReport, ContextOptions, Fault, GpuContext};
pub use feed::{Feed, Outputs};
pub use kernels::{KernelStats, MAX_HIDDEN, PERSISTENT_MAX_HIDDEN};
pub use model::{GpuGru, ModelOptions, ModelStats};
#[cfg(not(target_arch = "wasm32"))]
pub use optim::{DeviceTensors, GpuOptimizer};
pub use path::{
    auto_gemm_kernel, auto_kernel_path, auto_step_kernel, GemmKernel, KernelPath, StepKernel,
    StepStructure,
};
pub use session::{GruSession, StreamId};
pub use timestamps::ForwardTiming;
#[cfg(not(target_arch = "wasm32"))]
pub use train::{GpuTrainer, Saved, TrainShape};
