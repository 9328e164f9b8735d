//! The optimizer step on the device (`GpuOptimizer`, `shaders/optim.wgsl`) against the f64
//! reference (`gru_wgpu::optim::OptimizerState`, itself checked against torch.optim and Keras
//! in tests/io/optim.rs): every golden case's ten steps from the same f32 parameters and
//! gradients, `|p − e| ≤ 1e-5 + 1e-4·|e|` after each step; a tensor large enough for many
//! partial sums of the norm; bitwise reproducibility; typed errors.

use crate::common;

use crate::golden_files::{cases, tensors, SIZES};
use common::{gpu, own_device, Rng};
use gru_wgpu::gpu::{DeviceTensors, GpuOptimizer};
use gru_wgpu::optim::{Clip, Optimizer, OptimizerState};
use gru_wgpu::GruError;

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Runs `steps` steps of `grads` on the device and on the reference from `params`; compares
/// after every step. Returns the device's final parameters.
fn run(
    what: &str,
    optimizer: Optimizer,
    clip: Clip,
    params: &[Vec<f32>],
    grads: &[Vec<Vec<f32>>],
) -> Vec<Vec<f32>> {
    let ctx = gpu().expect("a GPU adapter");
    let sizes: Vec<usize> = params.iter().map(|p| p.len()).collect();
    let refs: Vec<&[f32]> = params.iter().map(|p| p.as_slice()).collect();
    let mut on_device = DeviceTensors::upload(ctx, &refs).expect("upload");
    let mut gpu_opt = GpuOptimizer::new(ctx, optimizer, clip, &sizes).expect("optimizer");
    let mut reference: Vec<Vec<f64>> = params.iter().map(|p| wide(p)).collect();
    let mut ref_opt = OptimizerState::new(optimizer, clip, &sizes).expect("reference");
    for (s, g) in grads.iter().enumerate() {
        let g_refs: Vec<&[f32]> = g.iter().map(|t| t.as_slice()).collect();
        let g_dev = DeviceTensors::upload(ctx, &g_refs).expect("gradients");
        gpu_opt.step(&mut on_device, &g_dev).expect("device step");
        let g_wide: Vec<Vec<f64>> = g.iter().map(|t| wide(t)).collect();
        let norm = ref_opt
            .step(&mut reference, &g_wide)
            .expect("reference step");
        if let Some(n) = gpu_opt.last_norm().expect("norm") {
            let tol = 1e-5 + 1e-4 * norm;
            assert!(
                (n as f64 - norm).abs() <= tol,
                "{what}: step {}: norm {n}, expected {norm}",
                s + 1
            );
        }
        let got = on_device.read().expect("read");
        for (i, (g, e)) in got.iter().zip(&reference).enumerate() {
            for (k, (&a, &b)) in g.iter().zip(e).enumerate() {
                let tol = 1e-5 + 1e-4 * b.abs();
                assert!(
                    (a as f64 - b).abs() <= tol,
                    "{what}: after step {}: tensor {i} [{k}] got {a} expected {b} (tolerance {tol:e})",
                    s + 1
                );
            }
        }
    }
    assert_eq!(gpu_opt.steps(), grads.len() as u64);
    on_device.read().expect("read")
}

/// Every golden case (SGD with momentum, Nesterov, dampening, weight decay and clipping by
/// value; Adam with L2 and clipping by norm; AdamW; Keras's RMSprop plain and centered with
/// momentum) on the device.
#[test]
fn every_golden_case_matches_the_reference() {
    if gpu().is_none() {
        return;
    }
    for (case, optimizer, clip) in cases() {
        let t = tensors(case);
        let params: Vec<Vec<f32>> = (0..3).map(|i| f32s(&t[&format!("p{i}")])).collect();
        let grads: Vec<Vec<Vec<f32>>> = (0..10)
            .map(|s| (0..3).map(|i| f32s(&t[&format!("g{s}_{i}")])).collect())
            .collect();
        assert_eq!(params.iter().map(|p| p.len()).collect::<Vec<_>>(), SIZES);
        run(case, optimizer, clip, &params, &grads);
    }
}

/// A tensor of 300 007 values (256 partial sums of squares, blocks of 1172) beside a small
/// one and an empty one, clipped by norm: the norm and the updates agree with the reference,
/// and two runs give the same bits.
#[test]
fn large_tensors_clip_by_norm_reproducibly() {
    if gpu().is_none() {
        return;
    }
    let mut rng = Rng::new(77);
    let sizes = [300_007, 3, 0];
    let params: Vec<Vec<f32>> = sizes.iter().map(|&n| rng.vec(n, 1.0)).collect();
    let grads: Vec<Vec<Vec<f32>>> = (0..3)
        .map(|_| sizes.iter().map(|&n| rng.vec(n, 0.01)).collect())
        .collect();
    let adam = Optimizer::adam();
    let a = run("large, clip norm 2", adam, Clip::Norm(2.0), &params, &grads);
    let b = run(
        "large, clip norm 2 again",
        adam,
        Clip::Norm(2.0),
        &params,
        &grads,
    );
    assert!(
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .all(|(x, y)| x.to_bits() == y.to_bits()),
        "two runs differ"
    );
}

/// Tiny gradients, where clip_grad_norm_'s `+ 1e-6` in `max_norm / (norm + 1e-6)` changes the
/// factor by a few percent: SGD with a large learning rate makes that visible.
#[test]
fn clip_norm_has_torchs_epsilon() {
    if gpu().is_none() {
        return;
    }
    let mut rng = Rng::new(78);
    let sizes = [3000, 3];
    let params: Vec<Vec<f32>> = sizes.iter().map(|&n| rng.vec(n, 1.0)).collect();
    let grads: Vec<Vec<Vec<f32>>> = (0..2)
        .map(|_| sizes.iter().map(|&n| rng.vec(n, 1e-6)).collect())
        .collect();
    run(
        "tiny gradients, clip norm 1e-6",
        Optimizer::sgd(1e5),
        Clip::Norm(1e-6),
        &params,
        &grads,
    );
}

#[test]
fn bad_input_is_a_typed_error() {
    let Some(ctx) = gpu() else { return };
    let p = DeviceTensors::upload(ctx, &[&[1.0, 2.0]]).expect("upload");
    let bad_lr = Optimizer::sgd(-1.0);
    assert!(matches!(
        GpuOptimizer::new(ctx, bad_lr, Clip::None, &[2]),
        Err(GruError::InvalidArgument { .. })
    ));
    assert!(matches!(
        GpuOptimizer::new(ctx, Optimizer::adam(), Clip::Value(f64::INFINITY), &[2]),
        Err(GruError::InvalidArgument { .. })
    ));
    let mut opt = GpuOptimizer::new(ctx, Optimizer::adam(), Clip::None, &[3]).expect("opt");
    let mut wrong = p;
    let g = DeviceTensors::upload(ctx, &[&[0.5, 0.5]]).expect("upload");
    assert!(matches!(
        opt.step(&mut wrong, &g),
        Err(GruError::InvalidArgument { .. })
    ));
    assert_eq!(opt.steps(), 0);
    assert_eq!(
        wrong.read().expect("read"),
        vec![vec![1.0, 2.0]],
        "unchanged"
    );
    // Tensors of another context.
    let other = own_device(ctx, Default::default(), "a second device");
    let mut foreign = DeviceTensors::upload(&other, &[&[1.0, 2.0, 3.0]]).expect("upload");
    let g3 = DeviceTensors::upload(ctx, &[&[0.1, 0.2, 0.3]]).expect("upload");
    assert!(matches!(
        opt.step(&mut foreign, &g3),
        Err(GruError::InvalidArgument { .. })
    ));
}
