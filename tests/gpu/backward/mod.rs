//! The GPU backward against the f64 CPU reference ([`gru_wgpu::cpu::backward_model`]) over
//! the whole model surface, and the training forward against the inference forward's
//! reference. Tolerance per gradient tensor: `max|g − e| ≤ 1e-5 + 1e-4·max|e|` (a gradient
//! is a sum over T·B terms, so the bound is relative to the tensor's largest entry).

mod chunks;
mod golden;
mod large;
mod random;
mod surface;
