//! Golden safetensors files of tests/data/golden, and the optimizer cases of
//! `scripts/golden_optim.py` (optim_*: three parameter tensors, ten steps of gradients, the
//! parameters after steps 1 and 10). Included by the test crates that read them (`io`, `gpu`:
//! they link safetensors) as `golden_files`, beside `common`.

use std::collections::HashMap;

use crate::common::repo_root;
use gru_wgpu::optim::{Clip, Optimizer};

pub const SIZES: [usize; 3] = [12, 5, 8];

/// Every tensor of `case`'s `file` (a safetensors file of float32 and float64 tensors), widened
/// to f64, with its shape.
pub fn load(case: &str, file: &str) -> HashMap<String, (Vec<usize>, Vec<f64>)> {
    let path = repo_root().join("tests/data/golden").join(case).join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values: Vec<f64> = match view.dtype() {
                safetensors::Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                    .collect(),
                safetensors::Dtype::F64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
                other => panic!("{case}/{file}: {name}: dtype {other:?}"),
            };
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

/// The optimizer case's tensors (`p{i}`, `g{s}_{i}`, `p{i}_step1`, `p{i}_step10`), without
/// their shapes.
pub fn tensors(case: &str) -> HashMap<String, Vec<f64>> {
    load(case, "optim.safetensors")
        .into_iter()
        .map(|(name, (_, values))| (name, values))
        .collect()
}

/// Every golden case with the optimizer and clipping that produced it. Keras keeps the
/// learning rate in a float32 variable (cast to the parameters' float64 in the update), so
/// its RMSprop cases take `lr as f32` (1e-3 is `1e-3f32`).
pub fn cases() -> Vec<(&'static str, Optimizer, Clip)> {
    let sgd = |lr, momentum, dampening, nesterov, weight_decay| Optimizer::Sgd {
        lr,
        momentum,
        dampening,
        nesterov,
        weight_decay,
    };
    let keras_lr = |lr: f32| lr as f64;
    vec![
        ("optim_torch_sgd", Optimizer::sgd(0.1), Clip::None),
        (
            "optim_torch_sgd_nesterov",
            sgd(0.05, 0.9, 0.0, true, 0.01),
            Clip::None,
        ),
        (
            "optim_torch_sgd_dampening_clip_value",
            sgd(0.05, 0.8, 0.25, false, 0.0),
            Clip::Value(0.5),
        ),
        ("optim_torch_adam", Optimizer::adam(), Clip::None),
        (
            "optim_torch_adam_l2_clip_norm",
            Optimizer::Adam {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.1,
            },
            Clip::Norm(1.0),
        ),
        (
            "optim_torch_adamw",
            Optimizer::AdamW {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 1e-2,
            },
            Clip::None,
        ),
        (
            "optim_keras_rmsprop",
            Optimizer::RmsProp {
                lr: keras_lr(1e-3),
                rho: 0.9,
                epsilon: 1e-7,
                momentum: 0.0,
                centered: false,
            },
            Clip::None,
        ),
        (
            "optim_keras_rmsprop_centered_momentum",
            Optimizer::RmsProp {
                lr: keras_lr(0.01),
                rho: 0.8,
                epsilon: 1e-7,
                momentum: 0.5,
                centered: true,
            },
            Clip::None,
        ),
    ]
}
