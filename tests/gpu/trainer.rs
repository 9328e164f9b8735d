//! The one-submit training step on the device (`gru_wgpu::gpu::GpuTrainer`) against the f64
//! reference trainer (`gru_wgpu::train::ReferenceTrainer`, itself checked against Keras 3 and
//! PyTorch in tests/io/train.rs): the same model, head, batches and optimizer, each step's
//! loss and accuracy and, after every step, every parameter.
//!
//! Tolerances: the loss `1e-5 + 1e-4·|e|` (onnxruntime's f32 rule); the parameters
//! `2e-5 + 1e-4·|e|`: the device's gradients are f32 sums over `T·B` rows, and RMSprop and
//! Adam divide a gradient by its own running magnitude, so a gradient entry near zero carries
//! its f32 rounding into an update of up to `lr` times its relative error; the cases keep
//! `lr · steps` small enough that this stays inside the bound.

use crate::common::{self, gpu, own_device};
use gru_wgpu::gpu::{ContextOptions, GemmKernel, GpuContext, GpuTrainer, KernelPath, StepKernel};
use gru_wgpu::init::{self, Init};
use gru_wgpu::loss::Loss;
use gru_wgpu::optim::{Clip, Optimizer};
use gru_wgpu::train::ReferenceTrainer;
use gru_wgpu::{Convention, Direction, GruError, GruInput, Layout, Tolerance};

/// One training problem.
#[derive(Clone, Debug)]
struct Case {
    name: &'static str,
    convention: Convention,
    direction: Direction,
    layers: usize,
    i: usize,
    h: usize,
    t: usize,
    b: usize,
    out: usize,
    loss: Loss,
    optimizer: Optimizer,
    clip: Clip,
    init: Init,
    lens: bool,
    initial_h: bool,
    /// The head on every step's output ([`GpuTrainer::per_step_head`]).
    per_step: bool,
    seed: u64,
}

fn rmsprop() -> Optimizer {
    Optimizer::rmsprop_keras()
}

fn cases() -> Vec<Case> {
    let base = Case {
        name: "reset-after, BCE, RMSprop (the article's compile)",
        convention: Convention::ResetAfter,
        direction: Direction::Forward,
        layers: 1,
        i: 3,
        h: 8,
        t: 6,
        b: 7,
        out: 1,
        loss: Loss::BinaryCrossentropy,
        optimizer: rmsprop(),
        clip: Clip::None,
        init: Init::Keras,
        lens: false,
        initial_h: false,
        per_step: false,
        seed: 1,
    };
    vec![
        base.clone(),
        Case {
            name: "reset-before, BCE, RMSprop, lengths",
            convention: Convention::ResetBefore,
            lens: true,
            seed: 2,
            ..base.clone()
        },
        Case {
            name: "two bidirectional reset-after layers, softmax CE, Adam, clip by norm",
            direction: Direction::Bidirectional,
            layers: 2,
            h: 5,
            out: 3,
            loss: Loss::SparseCategoricalCrossentropy,
            optimizer: Optimizer::adam(),
            clip: Clip::Norm(0.5),
            init: Init::PyTorch,
            lens: true,
            seed: 3,
            ..base.clone()
        },
        Case {
            name: "reverse reset-before, MSE, SGD Nesterov, clip by value, initial_h",
            convention: Convention::ResetBefore,
            direction: Direction::Reverse,
            h: 6,
            out: 2,
            loss: Loss::MeanSquaredError,
            optimizer: Optimizer::Sgd {
                lr: 0.05,
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
                weight_decay: 1e-3,
            },
            clip: Clip::Value(0.05),
            init: Init::PyTorch,
            initial_h: true,
            seed: 4,
            ..base.clone()
        },
        Case {
            name: "two forward layers, AdamW, H = 12, lengths",
            layers: 2,
            h: 12,
            b: 9,
            optimizer: Optimizer::adamw(),
            lens: true,
            seed: 5,
            ..base.clone()
        },
        Case {
            name: "per-step head: bidirectional, MSE, Adam, lengths",
            direction: Direction::Bidirectional,
            out: 2,
            loss: Loss::MeanSquaredError,
            optimizer: Optimizer::adam(),
            init: Init::PyTorch,
            lens: true,
            per_step: true,
            seed: 6,
            ..base.clone()
        },
        Case {
            name: "per-step head: reset-before, softmax CE, RMSprop, clip by norm",
            convention: Convention::ResetBefore,
            out: 4,
            loss: Loss::SparseCategoricalCrossentropy,
            clip: Clip::Norm(1.0),
            per_step: true,
            seed: 7,
            ..base
        },
    ]
}

/// A case's batch: X `[B, T, I]` (batch-major), labels, optional lengths and initial state.
struct Batch {
    x: Vec<f32>,
    targets: Vec<f64>,
    lens: Option<Vec<i64>>,
    h0: Option<Vec<f32>>,
}

fn batch(case: &Case, step: u64) -> Batch {
    let mut rng = common::Rng::new(case.seed * 1000 + step);
    let x: Vec<f32> = (0..case.b * case.t * case.i)
        .map(|_| rng.symmetric())
        .collect();
    let targets: Vec<f64> = match case.loss {
        Loss::BinaryCrossentropy => (0..case.b).map(|e| (e % 2) as f64).collect(),
        Loss::SparseCategoricalCrossentropy => (0..case.b).map(|e| (e % case.out) as f64).collect(),
        Loss::MeanSquaredError => (0..case.b * case.out)
            .map(|_| rng.symmetric() as f64)
            .collect(),
    };
    // Lengths from 0 (an entry that contributes only through its initial state) to T.
    let lens = case.lens.then(|| {
        (0..case.b)
            .map(|e| (e * (case.t + 1) / case.b) as i64)
            .collect()
    });
    let nd = case.direction.num_directions();
    let h0 = case.initial_h.then(|| {
        (0..case.layers * nd * case.b * case.h)
            .map(|_| 0.5 * rng.symmetric())
            .collect()
    });
    Batch {
        x,
        targets,
        lens,
        h0,
    }
}

fn input<'a>(case: &Case, batch: &'a Batch) -> GruInput<'a> {
    let mut input = GruInput::new(&batch.x, case.t, case.b).with_layout(Layout::BatchMajor);
    if let Some(l) = &batch.lens {
        input = input.with_sequence_lens(l);
    }
    if let Some(h0) = &batch.h0 {
        input = input.with_initial_h(h0);
    }
    input
}

fn trainers(ctx: &GpuContext, case: &Case) -> (GpuTrainer, ReferenceTrainer) {
    let model = init::gru_model(
        case.init,
        case.convention,
        case.direction,
        case.layers,
        case.i,
        case.h,
        case.seed,
    )
    .expect("model");
    let features = case.direction.num_directions() * case.h;
    let (w, b) = init::dense(case.init, features, case.out, case.seed);
    let gpu = GpuTrainer::new(ctx, &model, &w, &b, case.loss, case.optimizer, case.clip)
        .expect("GPU trainer");
    let reference = ReferenceTrainer::new(model, &w, &b, case.loss, case.optimizer, case.clip)
        .expect("reference trainer");
    (gpu, reference)
}

const PARAMS: Tolerance = Tolerance {
    atol: 2e-5,
    rtol: 1e-4,
};

/// Runs `steps` steps of `case` on both trainers (the device's in the shape `variant` sets)
/// and compares the losses and every parameter after each step.
fn check(ctx: &GpuContext, case: &Case, variant: Option<(KernelPath, StepKernel, GemmKernel)>) {
    let (mut gpu, mut reference) = trainers(ctx, case);
    if let Some((path, step, gemm)) = variant {
        let g = gpu.gru();
        g.set_kernel_path(Some(path)).expect("kernel path");
        g.set_step_kernel(Some(step));
        g.set_gemm_kernel(Some(gemm));
    }
    let shape = gpu.gru().training_shape(case.b);
    for step in 0..4 {
        let data = batch(case, step);
        let got = gpu
            .step(&input(case, &data), &data.targets)
            .expect("GPU step");
        let want = reference
            .step(&input(case, &data), &data.targets)
            .expect("reference step");
        let context = format!(
            "{} (seed {}, T={} B={} I={} H={} L={}, {shape:?}), step {}",
            case.name,
            case.seed,
            case.t,
            case.b,
            case.i,
            case.h,
            case.layers,
            step + 1
        );
        let tol = Tolerance::F32;
        assert!(
            (got.loss - want.loss).abs() <= tol.atol + tol.rtol * want.loss.abs(),
            "{context}: loss {} expected {} (tolerance {tol:?})",
            got.loss,
            want.loss
        );
        assert_eq!(
            (got.correct, got.count),
            (want.correct, want.count),
            "{context}: accuracy counts"
        );
        let params = gpu.parameters().expect("parameters");
        assert_eq!(params.len(), reference.parameters().len(), "{context}");
        for (k, (p, e)) in params.iter().zip(reference.parameters()).enumerate() {
            let e: Vec<f32> = e.iter().map(|&v| v as f32).collect();
            common::assert_close(&format!("{context}, parameter {k}"), p, &e, PARAMS);
        }
        assert_eq!(gpu.steps(), step + 1, "{context}");
    }
    // The model the device now runs is the reference's (its inference forward agrees).
    let data = batch(case, 99);
    let got = gpu
        .evaluate(&input(case, &data), &data.targets)
        .expect("evaluate");
    let want = reference
        .evaluate(&input(case, &data), &data.targets)
        .expect("reference evaluate");
    assert!(
        (got.loss - want.loss).abs() <= 1e-5 + 1e-4 * want.loss.abs(),
        "{}: evaluate loss {} expected {}",
        case.name,
        got.loss,
        want.loss
    );
}

#[test]
fn steps_match_the_reference() {
    let ctx = gpu().expect("a GPU adapter");
    for case in cases() {
        check(ctx, &case, None);
    }
}

#[test]
fn steps_match_the_reference_in_every_training_shape() {
    let ctx = gpu().expect("a GPU adapter");
    let shapes = [
        (KernelPath::StepFused, StepKernel::Split, GemmKernel::Tiled),
        (
            KernelPath::StepFused,
            StepKernel::Direct,
            GemmKernel::Direct,
        ),
        (
            KernelPath::Persistent,
            StepKernel::Staged,
            GemmKernel::Direct,
        ),
    ];
    for case in cases().into_iter().step_by(2) {
        for shape in shapes {
            if case.per_step && shape.0 == KernelPath::Persistent && case.h > 64 {
                continue;
            }
            check(ctx, &case, Some(shape));
        }
    }
}

/// On a device whose bindings are 8 KiB the batch runs in chunks of entries (the head once
/// per chunk, its gradients over all) and a forward-only network's sequence in pieces of
/// time: the steps still match the reference.
#[test]
fn steps_match_the_reference_in_chunks_and_pieces() {
    let Some(shared) = gpu() else {
        panic!("a GPU adapter")
    };
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: 8 * 1024,
        max_buffer_size: 1 << 20,
        max_compute_workgroups_per_dimension: 3,
        ..wgpu::Limits::default()
    };
    let small = own_device(
        shared,
        ContextOptions {
            limits: Some(limits),
            ..ContextOptions::default()
        },
        "device with lowered limits",
    );
    let base = cases()[0].clone();
    let chunked = Case {
        name: "batch in chunks",
        b: 23,
        t: 9,
        h: 8,
        lens: true,
        seed: 21,
        ..base.clone()
    };
    let pieces = Case {
        name: "sequence in pieces",
        b: 3,
        t: 90,
        h: 8,
        lens: true,
        initial_h: true,
        seed: 22,
        ..base
    };
    let per_step_pieces = Case {
        name: "per-step head, sequence in pieces",
        per_step: true,
        loss: Loss::MeanSquaredError,
        out: 2,
        seed: 23,
        ..pieces.clone()
    };
    for (case, want) in [
        (chunked, "chunks of entries"),
        (pieces, "pieces of time"),
        (per_step_pieces, "pieces of time"),
    ] {
        // The training forward the trainer records runs in more than one piece here.
        let (mut trainer, _) = trainers(&small, &case);
        let data = batch(&case, 0);
        let (_, saved) = trainer
            .gru()
            .forward_train(&input(&case, &data))
            .expect("training forward");
        assert!(saved.chunks() > 1, "{}: expected {want}", case.name);
        check(&small, &case, None);
    }
}

/// A step whose loss overflows (logits past f32) changes nothing: by default it is an error
/// naming the step; when asked it is skipped and counted, and the next step runs as the first.
#[test]
fn a_non_finite_loss_changes_nothing() {
    let ctx = gpu().expect("a GPU adapter");
    let case = cases()[0].clone();
    let model = init::gru_model(
        case.init,
        case.convention,
        case.direction,
        1,
        case.i,
        case.h,
        case.seed,
    )
    .expect("model");
    // Logits of ±8·3e38: infinite.
    let w = vec![3e38f32; case.h];
    let mut trainer = GpuTrainer::new(
        ctx,
        &model,
        &w,
        &[0.0],
        case.loss,
        case.optimizer,
        case.clip,
    )
    .expect("trainer");
    let data = batch(&case, 0);
    let before = trainer.parameters().expect("parameters");
    match trainer.step(&input(&case, &data), &data.targets) {
        Err(GruError::NonFinite { step, what, .. }) => {
            assert_eq!(step, 1);
            assert_eq!(what, "loss");
        }
        other => panic!("expected a non-finite loss error, got {other:?}"),
    }
    assert_eq!(trainer.steps(), 0);
    assert_eq!(trainer.parameters().expect("parameters"), before);
    trainer.set_skip_non_finite(true);
    let value = trainer
        .step(&input(&case, &data), &data.targets)
        .expect("a skipped step");
    assert!(!value.loss.is_finite(), "loss {}", value.loss);
    assert_eq!((trainer.steps(), trainer.skipped_steps()), (0, 1));
    assert_eq!(trainer.parameters().expect("parameters"), before);
}

/// Bad batches are typed errors that name what is wrong, and change nothing.
#[test]
fn bad_batches_are_typed_errors() {
    let ctx = gpu().expect("a GPU adapter");
    let case = cases()[2].clone(); // softmax over 3 classes
    let (mut trainer, _) = trainers(ctx, &case);
    let data = batch(&case, 0);
    let before = trainer.parameters().expect("parameters");
    let expect_invalid = |r: Result<gru_wgpu::loss::LossValue, GruError>, needle: &str| match r {
        Err(e @ (GruError::InvalidArgument { .. } | GruError::Shape { .. })) => {
            assert!(e.to_string().contains(needle), "{e} (wanted {needle:?})")
        }
        other => panic!("expected an error naming {needle:?}, got {other:?}"),
    };
    let mut nan_x = data.x.clone();
    nan_x[5] = f32::NAN;
    let bad = GruInput::new(&nan_x, case.t, case.b).with_layout(Layout::BatchMajor);
    expect_invalid(trainer.step(&bad, &data.targets), "X value 5");
    let mut labels = data.targets.clone();
    labels[1] = 3.0;
    expect_invalid(trainer.step(&input(&case, &data), &labels), "label 1");
    expect_invalid(
        trainer.step(&input(&case, &data), &data.targets[1..]),
        "labels",
    );
    let short = &data.x[..data.x.len() - 1];
    let bad = GruInput::new(short, case.t, case.b).with_layout(Layout::BatchMajor);
    expect_invalid(trainer.step(&bad, &data.targets), "X");
    let empty = GruInput::new(&[], case.t, 0);
    expect_invalid(trainer.step(&empty, &[]), "at least one entry");
    assert_eq!(trainer.steps(), 0);
    assert_eq!(trainer.parameters().expect("parameters"), before);
    // A binary head with two outputs, and a head of the wrong size.
    let model = init::gru_model(
        Init::Keras,
        Convention::ResetAfter,
        Direction::Forward,
        1,
        2,
        4,
        1,
    )
    .expect("model");
    let sgd = Optimizer::sgd(0.1);
    for (w, b, loss, needle) in [
        (
            vec![0.0; 8],
            vec![0.0; 2],
            Loss::BinaryCrossentropy,
            "one output",
        ),
        (
            vec![0.0; 5],
            vec![0.0; 1],
            Loss::MeanSquaredError,
            "head weight",
        ),
    ] {
        match GpuTrainer::new(ctx, &model, &w, &b, loss, sgd, Clip::None) {
            Err(e @ GruError::InvalidArgument { .. }) => {
                assert!(e.to_string().contains(needle), "{e}")
            }
            other => panic!("expected an error naming {needle:?}, got {other:?}"),
        }
    }
}

/// The golden training runs of tests/io/train.rs (Keras 3 RMSprop + BCE, both conventions;
/// PyTorch Adam + cross-entropy and SGD Nesterov + clip_grad_norm_ + BCE on a two-layer
/// bidirectional nn.GRU; float64 in the frameworks, scripts/golden_train.py) on the device:
/// every step's loss to `1e-5 + 1e-4·|e|`, every weight after steps 1 and 10 to
/// `PARAMS` (f32 against float64 over ten steps).
#[test]
fn steps_match_keras_and_pytorch() {
    use gru_wgpu::io::{keras, pytorch};
    use gru_wgpu::npy;
    let ctx = gpu().expect("a GPU adapter");
    let dir = |case: &str| common::repo_root().join("tests/data/golden").join(case);
    // (case, loss, optimizer, clip, keras?)
    let cases = [
        (
            "train_keras_rmsprop_bce_reset_after",
            Loss::BinaryCrossentropy,
            Optimizer::rmsprop_keras(),
            Clip::None,
        ),
        (
            "train_keras_rmsprop_bce_reset_before",
            Loss::BinaryCrossentropy,
            Optimizer::rmsprop_keras(),
            Clip::None,
        ),
        (
            "train_torch_adam_ce",
            Loss::SparseCategoricalCrossentropy,
            Optimizer::Adam {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
            Clip::None,
        ),
        (
            "train_torch_sgd_nesterov_clip_bce",
            Loss::BinaryCrossentropy,
            Optimizer::Sgd {
                lr: 0.1,
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
                weight_decay: 0.0,
            },
            Clip::Norm(0.5),
        ),
    ];
    // A file's GRU and head as (model, [W, R, B per layer and direction…, head W, head b]).
    let read = |case: &str, stem: &str| -> (gru_wgpu::GruModel, Vec<Vec<f32>>) {
        let (model, head_w, head_b) = if case.starts_with("train_keras") {
            let k = keras::load(&dir(case).join(format!("{stem}.npz")), None).expect("keras");
            let d = k.dense.expect("dense head");
            // kernel (H, 1) is weight [1, H]: the same values for one output.
            (k.model, d.kernel, d.bias)
        } else {
            let p = pytorch::load(&dir(case).join(format!("{stem}.safetensors"))).expect("torch");
            let h = p.head.expect("head.weight and head.bias");
            (p.model, h.weight, h.bias)
        };
        let mut params = Vec::new();
        for layer in model.layers() {
            for w in layer {
                params.extend([w.w().to_vec(), w.r().to_vec(), w.b().to_vec()]);
            }
        }
        params.extend([head_w, head_b]);
        (model, params)
    };
    for (case, loss, optimizer, clip) in cases {
        let (first, second) = if case.starts_with("train_keras") {
            ("weights", "after_step")
        } else {
            ("model", "after_step")
        };
        let (model, initial) = read(case, first);
        let n = initial.len();
        let mut trainer = GpuTrainer::new(
            ctx,
            &model,
            &initial[n - 2],
            &initial[n - 1],
            loss,
            optimizer,
            clip,
        )
        .expect("trainer");
        let x = npy::read_f32(&dir(case).join("x.npy")).expect("x.npy");
        let y = npy::read_f32(&dir(case).join("y.npy")).expect("y.npy");
        let losses = npy::read_f32(&dir(case).join("losses.npy")).expect("losses.npy");
        let (rows, t, i) = (x.shape[0], x.shape[1], x.shape[2]);
        let b = 4;
        for s in 0..10 {
            let lo = (s % (rows / b)) * b;
            let xb = &x.data[lo * t * i..(lo + b) * t * i];
            let yb: Vec<f64> = y.data[lo..lo + b].iter().map(|&v| v as f64).collect();
            let input = GruInput::new(xb, t, b).with_layout(Layout::BatchMajor);
            let value = trainer.step(&input, &yb).expect("step");
            let want = losses.data[s] as f64;
            assert!(
                (value.loss - want).abs() <= 1e-5 + 1e-4 * want.abs(),
                "{case}: step {}: loss {} expected {want}",
                s + 1,
                value.loss
            );
            if s == 0 || s == 9 {
                let (_, expected) = read(case, &format!("{second}{}", s + 1));
                let got = trainer.parameters().expect("parameters");
                for (k, (g, e)) in got.iter().zip(&expected).enumerate() {
                    let context = format!("{case}: after step {}, parameter {k}", s + 1);
                    common::assert_close(&context, g, e, PARAMS);
                }
            }
        }
    }
}

/// A trainer restored from another's state (a checkpoint) goes on exactly as the original:
/// after two steps, the state moved into a fresh trainer, two more steps on both give the
/// same parameters bit for bit; the state also moves to the reference trainer, which goes on
/// within the tolerance; a state of other sizes is a typed error.
#[test]
fn a_restored_trainer_goes_on_as_the_original() {
    let ctx = gpu().expect("a GPU adapter");
    for case in [&cases()[2], &cases()[3]] {
        let (mut original, _) = trainers(ctx, case);
        for step in 0..2 {
            let data = batch(case, step);
            original
                .step(&input(case, &data), &data.targets)
                .expect("step");
        }
        let state = original.state().expect("state");
        assert_eq!(state.steps, 2);
        let (mut restored, mut reference) = trainers(ctx, case);
        restored.restore(&state).expect("restore");
        reference.restore(&state).expect("reference restore");
        assert_eq!(restored.steps(), 2);
        assert_eq!(restored.state().expect("state"), state, "{}", case.name);
        for step in 2..4 {
            let data = batch(case, step);
            let a = original
                .step(&input(case, &data), &data.targets)
                .expect("step");
            let b = restored
                .step(&input(case, &data), &data.targets)
                .expect("step");
            reference
                .step(&input(case, &data), &data.targets)
                .expect("step");
            assert_eq!(a, b, "{}: step {}", case.name, step + 1);
        }
        let got = restored.parameters().expect("parameters");
        assert_eq!(
            got,
            original.parameters().expect("parameters"),
            "{}",
            case.name
        );
        for (k, (p, e)) in got.iter().zip(reference.parameters()).enumerate() {
            let e: Vec<f32> = e.iter().map(|&v| v as f32).collect();
            common::assert_close(&format!("{}: parameter {k}", case.name), p, &e, PARAMS);
        }
        let mut wrong = state.clone();
        wrong.params.pop();
        assert!(matches!(
            restored.restore(&wrong),
            Err(GruError::InvalidArgument { .. })
        ));
    }
}

/// A handle made with `GpuGru::share` on the trainer's model (and a streaming session over
/// another) reads the very buffers the optimizer rewrites: before any step both equal the
/// CPU forward of the initial model, after each step both equal the CPU forward of the
/// trained model (`GpuTrainer::model`), which differs from the initial one by more than the
/// tolerance; nothing was uploaded again.
#[test]
fn shared_handles_serve_the_trained_weights() {
    let Some(ctx) = gpu() else { return };
    let case = &cases()[0];
    assert_eq!(
        case.direction,
        Direction::Forward,
        "a session needs a forward model"
    );
    let (mut trainer, _) = trainers(ctx, case);
    let mut served = trainer.gru().share();
    let mut session = gru_wgpu::gpu::GruSession::new(trainer.gru().share(), 2).expect("session");
    let stream = session.open().expect("stream");
    let probe = batch(case, 99);
    // One entry, time-major [T, 1, I]: the first entry of the probe batch.
    let x: Vec<f32> = probe.x[..case.t * case.i].to_vec();
    let one = GruInput::new(&x, case.t, 1);
    let initial = gru_wgpu::cpu::forward_model(&trainer.model().expect("model"), &one)
        .expect("reference")
        .y;
    let mut fed = 0;
    for step in 0..3u64 {
        let model = trainer.model().expect("model");
        let expected = gru_wgpu::cpu::forward_model(&model, &one)
            .expect("reference")
            .y;
        let context = format!(
            "{} (seed {}, T={} I={} H={}), after {step} steps",
            case.name, case.seed, case.t, case.i, case.h
        );
        let got = served.forward(&one).expect("shared forward").y;
        let c = Tolerance::F32.compare(&got, &expected);
        assert!(c.passed(), "{context}: shared handle: {c}");
        // The session's stream restarts from zero at each step's probe.
        session.reset(stream).expect("reset the stream");
        let streamed = session
            .feed(&gru_wgpu::gpu::Feed::new(&[stream], &x, case.t))
            .expect("feed");
        fed += 1;
        let c = Tolerance::F32.compare(&streamed, &expected);
        assert!(c.passed(), "{context}: session on a shared handle: {c}");
        if step > 0 {
            let moved = Tolerance::F32.compare(&got, &initial);
            assert!(
                !moved.passed(),
                "{context}: the weights did not move: {moved}"
            );
        }
        let data = batch(case, step);
        trainer
            .step(&input(case, &data), &data.targets)
            .expect("GPU step");
    }
    assert_eq!(fed, 3);
    assert_eq!(
        served.stats().pipelines_created,
        0,
        "nothing built for a handle"
    );
}
