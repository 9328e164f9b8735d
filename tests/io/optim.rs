//! The optimizers' f64 reference (`gru_wgpu::optim`) against float64 `torch.optim` (SGD with
//! momentum, Nesterov, dampening and weight decay; Adam with L2; AdamW; `clip_grad_norm_`,
//! `clip_grad_value_`) and Keras 3's RMSprop (defaults; centered with momentum): the
//! parameters after 1 and 10 steps of the same gradients, from tests/data/golden/optim_*
//! (scripts/golden_optim.py).

use crate::golden_files::{cases, tensors, SIZES};
use gru_wgpu::optim::{Clip, Optimizer, OptimizerState};

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

/// The golden cases whose names start with `prefix`, checked; at least one.
fn check_all(prefix: &str) {
    let mut n = 0;
    for (case, optimizer, clip) in cases() {
        if case.starts_with(prefix) {
            check(case, optimizer, clip);
            n += 1;
        }
    }
    assert!(n > 0, "no case starts with {prefix}");
}

#[test]
fn sgd_matches_torch() {
    check_all("optim_torch_sgd");
}

#[test]
fn adam_and_adamw_match_torch() {
    check_all("optim_torch_adam");
}

#[test]
fn rmsprop_matches_keras() {
    check_all("optim_keras_rmsprop");
}

/// The defaults the constructors promise: PyTorch's for SGD, Adam and AdamW, Keras 3's for
/// RMSprop (what `optimizer='rmsprop'` compiles to).
#[test]
fn defaults_are_the_frameworks() {
    assert_eq!(
        Optimizer::adam(),
        Optimizer::Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    );
    assert_eq!(
        Optimizer::adamw(),
        Optimizer::AdamW {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    );
    assert_eq!(
        Optimizer::rmsprop_keras(),
        Optimizer::RmsProp {
            lr: 1e-3,
            rho: 0.9,
            epsilon: 1e-7,
            momentum: 0.0,
            centered: false,
        }
    );
    assert_eq!(
        Optimizer::sgd(0.1),
        Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    );
}
