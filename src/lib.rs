//! # gru-wgpu
//!
//! GRU (gated recurrent unit) inference on any GPU through [wgpu](https://wgpu.rs) (Vulkan,
//! Metal, DX12, GL), with a CPU reference path that is the oracle of its tests.
//!
//! Gate order is **z, r, h** (ONNX) everywhere; weights are held in ONNX layout
//! (`W[3H, I]`, `R[3H, H]`, `B[6H]`), see [`weights`]. Both conventions are exact:
//! [`Convention::ResetAfter`] (PyTorch, cuDNN) and [`Convention::ResetBefore`] (ONNX default,
//! Keras `reset_after=False`).
//!
//! ## Quick start
//! 1. Build weights: [`GruWeights::new`] (ONNX order), [`GruWeights::from_pytorch`] or
//!    [`GruWeights::from_keras`].
//! 2. Make a context, [`gpu::GpuContext::new`], which picks an adapter (honouring
//!    `WGPU_BACKEND` and `WGPU_ADAPTER_NAME`), or share your own device with
//!    [`gpu::GpuContext::from_device`].
//! 3. Upload the model once with [`gpu::GpuGru::new`], then call
//!    [`gpu::GpuGru::forward`] with a [`GruInput`] (`X[T, B, I]`, optional `initial_h[B, H]`)
//!    as often as you like; it returns `Y[T, B, H]` and `Y_h[B, H]`.
//! 4. [`cpu::forward`] computes the same on the CPU (f64 accumulation), e.g. as a fallback.
//!
//! Whole networks — stacked layers, reverse or bidirectional directions, ONNX's `clip` — are a
//! [`GruModel`] (built by hand with [`GruModel::new`], or read from PyTorch, Keras or ONNX files
//! by [`io`]), run by [`gpu::GpuGru::from_model`] and [`cpu::forward_model`]. The input's
//! [`Layout`], per-entry `sequence_lens` and [`OutputStyle`] are set on [`GruInput`]; the
//! shapes of every tensor are tabulated in [`input`]. [`head`] puts a classifier on top.
//!
//! ```no_run
//! use gru_wgpu::{cpu, gpu, Convention, GruInput, GruWeights};
//! # fn main() -> gru_wgpu::Result<()> {
//! let (i, h, t, b) = (3, 4, 5, 2);
//! let weights = GruWeights::new(
//!     Convention::ResetAfter, i, h,
//!     vec![0.1; 3 * h * i], vec![0.1; 3 * h * h], None,
//! )?;
//! let x = vec![1.0f32; t * b * i];
//! let ctx = gpu::GpuContext::new()?;
//! let mut model = gpu::GpuGru::new(&ctx, &weights)?;
//! let out = model.forward(&GruInput::new(&x, t, b))?;
//! let reference = cpu::forward(&weights, &GruInput::new(&x, t, b))?;
//! assert_eq!(out.y.len(), reference.y.len());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod cpu;
pub mod data;
pub mod dtype;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod fit;
pub mod gpu;
pub mod head;
pub mod init;
pub mod input;
pub mod io;
pub mod loss;
pub mod model;
pub mod npy;
pub mod optim;
pub mod seeded;
pub mod shaders;
pub mod tolerance;
pub mod train;
pub mod weights;

pub use dtype::{Dtype, F16_MAX};
pub use error::{GruError, Result};
pub use input::{Dims, GruInput, GruOutput, Layout, OutputStyle};
pub use model::{Direction, GruModel};
pub use tolerance::{Comparison, Tolerance};
pub use weights::{Convention, GruWeights};

/// The README's Rust examples, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
