//! The GPU tests: every test that runs the library on a GPU (and on the CPU reference beside
//! it), in one test crate so that wgpu and naga are linked once, sharing one device
//! (`common::gpu`, opened once for the whole crate; libtest runs the tests on parallel
//! threads and the context is shared between them). Tests that need a device of their own
//! (other limits, fault injection, device loss) open it themselves.
//!
//! Every test that runs a model in every configuration takes them from `common`:
//! [`common::configs`] (storage type × kernel path × step kernel × GEMM kernel) through
//! [`common::each_gpu_config`]; a new kernel variant is added in `common::VARIANTS` only.
//!
//! Run one concern with `cargo test --test gpu parity::` (or `properties::`, `session::`, …).

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/golden_files.rs"]
mod golden_files;

mod async_api;
mod backward;
mod classifier;
mod conformance;
mod context;
mod f16;
mod faults;
mod long_sequence;
mod optim;
mod parity;
mod properties;
mod seed_article;
mod session;
mod trainer;
