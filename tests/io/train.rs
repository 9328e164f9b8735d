//! The reference training step (`gru_wgpu::train::ReferenceTrainer`) against Keras 3 training
//! the seed article's model shape — GRU(H) → Dense(1, sigmoid), RMSprop with Keras's defaults,
//! binary cross-entropy — from the same weights on the same batches (float64;
//! tests/data/golden/train_keras_*, scripts/golden_train.py): every step's loss, and every
//! weight after steps 1 and 10, for reset_after True and False; and against PyTorch training
//! a two-layer bidirectional nn.GRU with an nn.Linear head (Adam with cross-entropy; SGD
//! with Nesterov momentum, clip_grad_norm_ and BCEWithLogits; float64; train_torch_*).

use crate::common;

use std::path::PathBuf;

use crate::golden_files::load;
use gru_wgpu::io::{keras, pytorch};
use gru_wgpu::loss::Loss;
use gru_wgpu::optim::{Clip, Optimizer};
use gru_wgpu::train::ReferenceTrainer;
use gru_wgpu::{npy, GruInput, GruModel, Layout};

fn dir(case: &str) -> PathBuf {
    common::repo_root().join("tests/data/golden").join(case)
}

/// The Keras file's GRU weights (crate layout: W, R, B) and head (weight `[1, H]`, bias) in
/// the trainer's parameter order.
fn keras_parameters(case: &str, file: &str) -> Vec<Vec<f64>> {
    let k = keras::load(&dir(case).join(file), None).unwrap_or_else(|e| panic!("{file}: {e}"));
    let w = &k.model.layers()[0][0];
    let dense = k.dense.expect("dense head");
    let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    // kernel (H, 1) is weight [1, H] transposed: the same values for one output.
    vec![
        wide(w.w()),
        wide(w.r()),
        wide(w.b()),
        wide(&dense.kernel),
        wide(&dense.bias),
    ]
}

/// Ten steps of `trainer` on the case's batches (batch-major, 4 entries, step s on batch
/// s mod 2): the loss before each update against `losses.npy`, the parameters after steps 1
/// and 10 against `expected(step)`.
fn run_steps(
    case: &str,
    trainer: &mut ReferenceTrainer,
    expected: &dyn Fn(usize) -> Vec<Vec<f64>>,
) {
    let x = npy::read_f32(&dir(case).join("x.npy")).expect("x.npy");
    let y = npy::read_f32(&dir(case).join("y.npy")).expect("y.npy");
    let losses = npy::read_f32(&dir(case).join("losses.npy")).expect("losses.npy");
    let (n, t, i) = (x.shape[0], x.shape[1], x.shape[2]);
    let b = 4;
    for s in 0..10 {
        let lo = (s % (n / b)) * b;
        let xb = &x.data[lo * t * i..(lo + b) * t * i];
        let yb: Vec<f64> = y.data[lo..lo + b].iter().map(|&v| v as f64).collect();
        let input = GruInput::new(xb, t, b).with_layout(Layout::BatchMajor);
        let value = trainer.step(&input, &yb).expect("step");
        let want = losses.data[s] as f64;
        assert!(
            (value.loss - want).abs() <= 1e-6 * want.abs(),
            "{case}: step {}: loss {} expected {want}",
            s + 1,
            value.loss
        );
        if s == 0 || s == 9 {
            let expected = expected(s + 1);
            assert_eq!(
                trainer.parameters().len(),
                expected.len(),
                "{case}: tensors"
            );
            for (p, (got, want)) in trainer.parameters().iter().zip(&expected).enumerate() {
                assert_eq!(got.len(), want.len(), "{case}: parameter {p}");
                for (k, (g, e)) in got.iter().zip(want).enumerate() {
                    let tol = 1e-6 + 1e-5 * e.abs();
                    assert!(
                        (g - e).abs() <= tol,
                        "{case}: after step {}: parameter {p} [{k}] got {g} expected {e} (tolerance {tol:e})",
                        s + 1
                    );
                }
            }
        }
    }
    assert_eq!(trainer.steps(), 10);
}

fn check(case: &str) {
    let initial = keras::load(&dir(case).join("weights.npz"), None).expect("weights.npz");
    let dense = initial.dense.clone().expect("dense head");
    let mut trainer = ReferenceTrainer::new(
        initial.model.clone(),
        &dense.kernel,
        &dense.bias,
        Loss::BinaryCrossentropy,
        Optimizer::rmsprop_keras(),
        Clip::None,
    )
    .expect("trainer");
    run_steps(case, &mut trainer, &|step| {
        keras_parameters(case, &format!("after_step{step}.npz"))
    });
}

/// A PyTorch file's GRU (crate layout: W, R, B per layer and direction) and head, in the
/// trainer's parameter order.
fn torch_parameters(case: &str, file: &str) -> (GruModel, Vec<Vec<f64>>) {
    let gru = pytorch::load(&dir(case).join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let mut params = Vec::new();
    for layer in gru.model.layers() {
        for w in layer {
            params.extend([wide(w.w()), wide(w.r()), wide(w.b())]);
        }
    }
    let head = load(case, file);
    for name in ["head.weight", "head.bias"] {
        params.push(head[name].1.clone());
    }
    (gru.model, params)
}

fn check_torch(case: &str, loss: Loss, optimizer: Optimizer, clip: Clip) {
    let (model, initial) = torch_parameters(case, "model.safetensors");
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let n = initial.len();
    let mut trainer = ReferenceTrainer::new(
        model,
        &f32s(&initial[n - 2]),
        &f32s(&initial[n - 1]),
        loss,
        optimizer,
        clip,
    )
    .expect("trainer");
    run_steps(case, &mut trainer, &|step| {
        torch_parameters(case, &format!("after_step{step}.safetensors")).1
    });
}

#[test]
fn adam_cross_entropy_matches_torch() {
    let adam = Optimizer::Adam {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    check_torch(
        "train_torch_adam_ce",
        Loss::SparseCategoricalCrossentropy,
        adam,
        Clip::None,
    );
}

#[test]
fn sgd_nesterov_clipped_bce_matches_torch() {
    let sgd = Optimizer::Sgd {
        lr: 0.1,
        momentum: 0.9,
        dampening: 0.0,
        nesterov: true,
        weight_decay: 0.0,
    };
    check_torch(
        "train_torch_sgd_nesterov_clip_bce",
        Loss::BinaryCrossentropy,
        sgd,
        Clip::Norm(0.5),
    );
}

#[test]
fn rmsprop_bce_matches_keras_reset_after() {
    check("train_keras_rmsprop_bce_reset_after");
}

#[test]
fn rmsprop_bce_matches_keras_reset_before() {
    check("train_keras_rmsprop_bce_reset_before");
}

/// The pieces together on a task a GRU learns in a few epochs (the label says whether a
/// sequence's sum is positive): Keras's initialisation, batches of a shuffled data set with
/// a partial last batch, Adam; the loss over the whole set falls below half its start and the
/// accuracy reaches 90 %.
#[test]
fn reference_training_learns_a_separable_task() {
    use gru_wgpu::data::Dataset;
    use gru_wgpu::init::{self, Init};
    use gru_wgpu::{Convention, Direction};
    let (n, t) = (60, 5);
    let x = gru_wgpu::seeded::uniform(11, n * t, 1.0);
    let y: Vec<f64> = x
        .chunks(t)
        .map(|s| (s.iter().sum::<f32>() > 0.0) as u8 as f64)
        .collect();
    let data = Dataset::new(x.clone(), [n, t, 1], y.clone(), 1, None).expect("data");
    let model = init::gru_model(
        Init::Keras,
        Convention::ResetAfter,
        Direction::Forward,
        1,
        1,
        8,
        5,
    )
    .expect("model");
    let (w, b) = init::dense(Init::Keras, 8, 1, 5);
    let adam = Optimizer::Adam {
        lr: 0.05,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let mut trainer = ReferenceTrainer::new(
        model,
        &w,
        &b,
        Loss::BinaryCrossentropy,
        adam,
        Clip::Norm(1.0),
    )
    .expect("trainer");
    let all = |tr: &ReferenceTrainer| {
        let input = GruInput::new(&x, t, n).with_layout(Layout::BatchMajor);
        tr.evaluate(&input, &y).expect("evaluate")
    };
    let before = all(&trainer);
    for epoch in 0..12 {
        for batch in data.batches(16, epoch, 3, true).expect("batches") {
            let input = GruInput::new(&batch.x, t, batch.len()).with_layout(Layout::BatchMajor);
            trainer.step(&input, &batch.targets).expect("step");
        }
    }
    let after = all(&trainer);
    assert_eq!(
        trainer.steps(),
        12 * 4,
        "4 batches per epoch (16, 16, 16, 12)"
    );
    assert!(
        after.loss < 0.5 * before.loss && after.accuracy() >= 0.9,
        "loss {} → {}, accuracy {} → {}",
        before.loss,
        after.loss,
        before.accuracy(),
        after.accuracy()
    );
}

/// A per-step head (sequence to sequence) against PyTorch: a bidirectional nn.GRU over packed
/// sequences of per-entry lengths, nn.Linear on every step's output, the mean squared error
/// over the steps within each length, Adam (float64, ten steps): every loss to 1e-6 relative,
/// every weight after steps 1 and 10 to 1e-6 + 1e-5·|e|.
#[test]
fn per_step_mse_matches_torch_packed_sequences() {
    let case = "train_torch_adam_mse_per_step";
    let (model, initial) = torch_parameters(case, "model.safetensors");
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let n = initial.len();
    let adam = Optimizer::Adam {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let mut trainer = ReferenceTrainer::new(
        model,
        &f32s(&initial[n - 2]),
        &f32s(&initial[n - 1]),
        Loss::MeanSquaredError,
        adam,
        Clip::None,
    )
    .expect("trainer")
    .per_step_head();
    let x = npy::read_f32(&dir(case).join("x.npy")).expect("x.npy");
    let y = npy::read_f32(&dir(case).join("y.npy")).expect("y.npy");
    let lens = npy::read_f32(&dir(case).join("lens.npy")).expect("lens.npy");
    let losses = npy::read_f32(&dir(case).join("losses.npy")).expect("losses.npy");
    let (rows, t, i) = (x.shape[0], x.shape[1], x.shape[2]);
    let out = y.shape[2];
    let b = 4;
    for s in 0..10 {
        let lo = (s % (rows / b)) * b;
        let xb = &x.data[lo * t * i..(lo + b) * t * i];
        let yb: Vec<f64> = y.data[lo * t * out..(lo + b) * t * out]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let lb: Vec<i64> = lens.data[lo..lo + b].iter().map(|&v| v as i64).collect();
        let input = GruInput::new(xb, t, b)
            .with_layout(Layout::BatchMajor)
            .with_sequence_lens(&lb);
        let value = trainer.step(&input, &yb).expect("step");
        let want = losses.data[s] as f64;
        assert!(
            (value.loss - want).abs() <= 1e-6 * want.abs(),
            "step {}: loss {} expected {want}",
            s + 1,
            value.loss
        );
        assert_eq!(
            value.count,
            lb.iter().sum::<i64>() as usize,
            "counted pairs"
        );
        if s == 0 || s == 9 {
            let (_, expected) = torch_parameters(case, &format!("after_step{}.safetensors", s + 1));
            for (p, (got, want)) in trainer.parameters().iter().zip(&expected).enumerate() {
                for (k, (g, e)) in got.iter().zip(want).enumerate() {
                    let tol = 1e-6 + 1e-5 * e.abs();
                    assert!(
                        (g - e).abs() <= tol,
                        "after step {}: parameter {p} [{k}] got {g} expected {e}",
                        s + 1
                    );
                }
            }
        }
    }
}

/// The reference trainer's guard, as the device's: a step whose loss is not finite (a head of
/// infinite weights) changes nothing and is an error naming the step, or is skipped and
/// counted when asked.
#[test]
fn a_non_finite_loss_changes_nothing_in_the_reference() {
    use gru_wgpu::init::{self, Init};
    use gru_wgpu::{Convention, Direction, GruError};
    let model = init::gru_model(
        Init::Keras,
        Convention::ResetAfter,
        Direction::Forward,
        1,
        2,
        3,
        1,
    )
    .expect("model");
    let w = [f32::INFINITY, -f32::INFINITY, f32::INFINITY];
    let mut trainer = ReferenceTrainer::new(
        model,
        &w,
        &[0.0],
        Loss::BinaryCrossentropy,
        Optimizer::rmsprop_keras(),
        Clip::None,
    )
    .expect("trainer");
    let x = gru_wgpu::seeded::uniform(2, 4 * 5 * 2, 1.0);
    let input = GruInput::new(&x, 5, 4).with_layout(Layout::BatchMajor);
    let y = [0.0, 1.0, 1.0, 0.0];
    let before = trainer.state();
    match trainer.step(&input, &y) {
        Err(GruError::NonFinite { step: 1, what, .. }) => assert_eq!(what, "loss"),
        other => panic!("expected a non-finite loss error, got {other:?}"),
    }
    assert_eq!(trainer.state(), before);
    trainer.set_skip_non_finite(true);
    let value = trainer.step(&input, &y).expect("a skipped step");
    assert!(!value.loss.is_finite(), "loss {}", value.loss);
    assert_eq!((trainer.steps(), trainer.skipped_steps()), (0, 1));
    assert_eq!(trainer.state(), before);
}
