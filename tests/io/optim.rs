//! The optimizers' f64 reference (`gru_wgpu::optim`) against float64 `torch.optim` (SGD with
//! momentum, Nesterov, dampening and weight decay; Adam with L2; AdamW; `clip_grad_norm_`,
//! `clip_grad_value_`) and Keras 3's RMSprop (defaults; centered with momentum): the
//! parameters after 1 and 10 steps of the same gradients, from tests/data/golden/optim_*
//! (scripts/golden_optim.py).

use crate::common;

use gru_wgpu::optim::{Clip, Optimizer, OptimizerState};

const SIZES: [usize; 3] = [12, 5, 8];

/// Every tensor of `case`'s optim.safetensors, widened to f64.
fn tensors(case: &str) -> std::collections::HashMap<String, Vec<f64>> {
    let path = common::repo_root()
        .join("tests/data/golden")
        .join(case)
        .join("optim.safetensors");
    let bytes = std::fs::read(&path).expect("optim.safetensors");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = match view.dtype() {
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
                other => panic!("{case}: {name}: dtype {other:?}"),
            };
            (name, values)
        })
        .collect()
}

/// Runs `optimizer` with `clip` over the case's ten steps and compares the parameters after
/// steps 1 and 10: `|p − e| ≤ 1e-12 + 1e-10·|e|` (both sides float64).
fn check(case: &str, optimizer: Optimizer, clip: Clip) {
    let t = tensors(case);
    let get = |name: String| t.get(&name).unwrap_or_else(|| panic!("{case}: no {name}"));
    let mut params: Vec<Vec<f64>> = (0..3).map(|i| get(format!("p{i}")).clone()).collect();
    for (p, &n) in params.iter().zip(&SIZES) {
        assert_eq!(p.len(), n, "{case}: parameter sizes");
    }
    let mut state = OptimizerState::new(optimizer, clip, &SIZES).expect("optimizer");
    for s in 0..10 {
        let grads: Vec<Vec<f64>> = (0..3).map(|i| get(format!("g{s}_{i}")).clone()).collect();
        state.step(&mut params, &grads).expect("step");
        if s == 0 || s == 9 {
            for (i, p) in params.iter().enumerate() {
                let want = get(format!("p{i}_step{}", s + 1));
                for (k, (g, e)) in p.iter().zip(want).enumerate() {
                    let tol = 1e-12 + 1e-10 * e.abs();
                    assert!(
                        (g - e).abs() <= tol,
                        "{case}: after step {}: p{i}[{k}] got {g} expected {e} (tolerance {tol:e})",
                        s + 1
                    );
                }
            }
        }
    }
    assert_eq!(state.steps(), 10);
}

fn sgd(lr: f64, momentum: f64, dampening: f64, nesterov: bool, weight_decay: f64) -> Optimizer {
    Optimizer::Sgd {
        lr,
        momentum,
        dampening,
        nesterov,
        weight_decay,
    }
}

#[test]
fn sgd_matches_torch() {
    check("optim_torch_sgd", Optimizer::sgd(0.1), Clip::None);
    check(
        "optim_torch_sgd_nesterov",
        sgd(0.05, 0.9, 0.0, true, 0.01),
        Clip::None,
    );
    check(
        "optim_torch_sgd_dampening_clip_value",
        sgd(0.05, 0.8, 0.25, false, 0.0),
        Clip::Value(0.5),
    );
}

#[test]
fn adam_and_adamw_match_torch() {
    check("optim_torch_adam", Optimizer::adam(), Clip::None);
    // PyTorch's defaults but the learning rate and the L2 weight decay.
    let adam_l2 = Optimizer::Adam {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.1,
    };
    check("optim_torch_adam_l2_clip_norm", adam_l2, Clip::Norm(1.0));
    let adamw = Optimizer::AdamW {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 1e-2,
    };
    assert_eq!(
        Optimizer::adamw(),
        Optimizer::AdamW {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        },
        "PyTorch's AdamW defaults"
    );
    check("optim_torch_adamw", adamw, Clip::None);
}

/// Keras keeps the learning rate in a float32 variable (cast to the parameters' float64 in
/// the update), so its 1e-3 is `1e-3f32`: the reference is given that value.
#[test]
fn rmsprop_matches_keras() {
    let keras_lr = |lr: f32| lr as f64;
    let defaults = match Optimizer::rmsprop_keras() {
        Optimizer::RmsProp {
            lr,
            rho,
            epsilon,
            momentum,
            centered,
        } => {
            assert_eq!(
                (lr, rho, epsilon, momentum, centered),
                (1e-3, 0.9, 1e-7, 0.0, false),
                "Keras 3's RMSprop defaults"
            );
            Optimizer::RmsProp {
                lr: keras_lr(1e-3),
                rho,
                epsilon,
                momentum,
                centered,
            }
        }
        other => panic!("rmsprop_keras() gave {other:?}"),
    };
    check("optim_keras_rmsprop", defaults, Clip::None);
    check(
        "optim_keras_rmsprop_centered_momentum",
        Optimizer::RmsProp {
            lr: keras_lr(0.01),
            rho: 0.8,
            epsilon: 1e-7,
            momentum: 0.5,
            centered: true,
        },
        Clip::None,
    );
}
