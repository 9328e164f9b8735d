//! Import and IO: the importers against the golden files (PyTorch, Keras, ONNX), the
//! conversions from PyTorch and Keras, the `.npy` reader and writer, the shaders through naga
//! (no GPU), and compile-time checks of the public types. One test crate (one link of wgpu
//! and naga); the tests that also run the GPU share one device (`common::gpu`).

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/golden_files.rs"]
mod golden_files;

mod conversions;
mod export;
mod import;
mod loss;
mod npy;
mod optim;
mod shaders;
mod train;
mod types;
