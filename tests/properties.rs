//! Properties of a forward pass, on the CPU reference and on the GPU:
//! the last row of Y is Y_h; a sequence run in two halves (the second starting from the
//! first's Y_h) equals the whole; NaN propagates; huge finite inputs stay finite; the model
//! reuses its pipelines; long sequences stay right (lavapipe's loop cap, REFERENCES.md §6).

mod common;

use common::{assert_close, gpu, kernel_paths, random_weights, Rng};
use gru_wgpu::gpu::GpuGru;
use gru_wgpu::{cpu, Convention, Direction, GruInput, GruModel, GruOutput, GruWeights, Tolerance};

const CONVENTIONS: [Convention; 2] = [Convention::ResetAfter, Convention::ResetBefore];

/// Runs on the CPU reference and (when present) the GPU.
fn both_paths(weights: &GruWeights, input: &GruInput<'_>) -> Vec<(&'static str, GruOutput)> {
    let mut out = vec![("cpu", cpu::forward(weights, input).expect("cpu forward"))];
    if let Some(ctx) = gpu() {
        let mut model = GpuGru::new(ctx, weights).expect("gpu model");
        model.set_poison(Some(f32::NAN));
        out.push(("gpu", model.forward(input).expect("gpu forward")));
    }
    out
}

#[test]
fn last_row_of_y_is_y_h() {
    for convention in CONVENTIONS {
        let (i, h, t, b) = (5, 9, 6, 3);
        let mut rng = Rng::new(11);
        let weights = random_weights(&mut rng, convention, i, h, 1.0, true);
        let x = rng.vec(t * b * i, 1.0);
        for (path, out) in both_paths(&weights, &GruInput::new(&x, t, b)) {
            let last = &out.y[(t - 1) * b * h..];
            assert_eq!(last, &out.y_h[..], "{path} {convention:?}: Y[T-1] != Y_h");
        }
    }
}

#[test]
fn two_halves_equal_the_whole() {
    for convention in CONVENTIONS {
        let (i, h, t, b, t1) = (4, 11, 9, 2, 4);
        let mut rng = Rng::new(12);
        let weights = random_weights(&mut rng, convention, i, h, 1.0, true);
        let x = rng.vec(t * b * i, 1.0);
        let h0 = rng.vec(b * h, 1.0);
        let whole = both_paths(&weights, &GruInput::new(&x, t, b).with_initial_h(&h0));
        let first = both_paths(
            &weights,
            &GruInput::new(&x[..t1 * b * i], t1, b).with_initial_h(&h0),
        );
        for ((path, whole), (_, first)) in whole.iter().zip(&first) {
            let second_input =
                GruInput::new(&x[t1 * b * i..], t - t1, b).with_initial_h(&first.y_h);
            let second = both_paths(&weights, &second_input);
            let second = &second.iter().find(|(p, _)| p == path).expect("same path").1;
            let joined: Vec<f32> = first.y.iter().chain(&second.y).copied().collect();
            // Same kernels, same state: the halves reproduce the whole bit for bit.
            assert_eq!(
                joined, whole.y,
                "{path} {convention:?}: halves' Y differ from whole"
            );
            assert_eq!(second.y_h, whole.y_h, "{path} {convention:?}: Y_h differs");
        }
    }
}

#[test]
fn nan_in_input_propagates_and_stays_in_its_sequence() {
    for convention in CONVENTIONS {
        let (i, h, t, b) = (3, 6, 5, 3);
        let mut rng = Rng::new(13);
        let weights = random_weights(&mut rng, convention, i, h, 1.0, true);
        let mut x = rng.vec(t * b * i, 1.0);
        let (t_nan, b_nan) = (2, 1);
        x[(t_nan * b + b_nan) * i] = f32::NAN;
        for (path, out) in both_paths(&weights, &GruInput::new(&x, t, b)) {
            for tt in 0..t {
                for bb in 0..b {
                    let row = &out.y[(tt * b + bb) * h..][..h];
                    let should_be_nan = bb == b_nan && tt >= t_nan;
                    for (j, v) in row.iter().enumerate() {
                        assert_eq!(
                            v.is_nan(),
                            should_be_nan,
                            "{path} {convention:?}: Y[{tt}, {bb}, {j}] = {v}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn nan_in_weights_propagates() {
    for convention in CONVENTIONS {
        let (i, h, t, b) = (2, 3, 2, 1);
        let mut rng = Rng::new(14);
        let w = random_weights(&mut rng, convention, i, h, 1.0, true);
        let mut r = w.r().to_vec();
        r[0] = f32::NAN; // R_z[0, 0]: from step 1 on h[0] depends on it (step 0 has h = 0)
        let mut h0 = vec![0.5f32; b * h];
        h0[0] = 0.25;
        let weights = GruWeights::new(convention, i, h, w.w().to_vec(), r, Some(w.b().to_vec()))
            .expect("weights");
        let x = rng.vec(t * b * i, 1.0);
        for (path, out) in both_paths(&weights, &GruInput::new(&x, t, b).with_initial_h(&h0)) {
            assert!(
                out.y[0].is_nan(),
                "{path} {convention:?}: Y[0,0,0] = {}",
                out.y[0]
            );
        }
    }
}

/// Finite inputs up to ±1e30 give finite outputs (stable σ and tanh, REFERENCES.md §4).
#[test]
fn huge_finite_inputs_give_finite_outputs() {
    for convention in CONVENTIONS {
        let (i, h, t, b) = (2, 5, 4, 2);
        let mut rng = Rng::new(15);
        let weights = random_weights(&mut rng, convention, i, h, 1.0, true);
        let x: Vec<f32> = (0..t * b * i)
            .map(|k| if k % 2 == 0 { 1e30 } else { -1e30 })
            .collect();
        for (path, out) in both_paths(&weights, &GruInput::new(&x, t, b)) {
            assert!(
                out.y.iter().all(|v| v.is_finite() && v.abs() <= 1.0),
                "{path} {convention:?}: {:?}",
                out.y
            );
        }
    }
}

/// Forwarding again with the same shapes creates no pipeline and no buffers; a new shape
/// reallocates buffers but builds no pipeline.
#[test]
fn forward_reuses_pipelines_and_buffers() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(16);
    let weights = random_weights(&mut rng, Convention::ResetAfter, 3, 8, 1.0, true);
    let mut model = GpuGru::new(ctx, &weights).expect("model");
    let pipelines = model.stats().pipelines_created;
    let x = rng.vec(5 * 2 * 3, 1.0);
    let a = model.forward(&GruInput::new(&x, 5, 2)).expect("forward");
    let b = model.forward(&GruInput::new(&x, 5, 2)).expect("forward");
    assert_eq!(a, b, "two forwards of the same input differ");
    assert_eq!(model.stats().pipelines_created, pipelines);
    assert_eq!(model.stats().scratch_allocations, 1);
    model.forward(&GruInput::new(&x, 10, 1)).expect("forward");
    assert_eq!(model.stats().pipelines_created, pipelines);
    assert_eq!(model.stats().scratch_allocations, 2);
    assert_eq!(model.stats().forwards, 3);
}

/// T = 3000 steps: far more than lavapipe's ~65535-iteration cap would allow if any kernel
/// looped over timesteps inside one invocation with an inner loop over H. The whole sequence
/// must match the reference at every step.
#[test]
fn long_sequence_matches_reference() {
    let Some(ctx) = gpu() else { return };
    for convention in CONVENTIONS {
        let (i, h, t, b) = (3, 24, 3000, 2);
        let mut rng = Rng::new(17);
        let weights = random_weights(&mut rng, convention, i, h, 1.0, true);
        let x = rng.vec(t * b * i, 1.0);
        let input = GruInput::new(&x, t, b);
        let expected = cpu::forward(&weights, &input).expect("cpu");
        let mut model = GpuGru::new(ctx, &weights).expect("model");
        model.set_poison(Some(f32::NAN));
        for path in kernel_paths(h) {
            model.set_kernel_path(Some(path)).expect("path");
            let got = model.forward(&input).expect("gpu");
            let what = format!("{convention:?} {path:?} seed=17 [T={t}, B={b}, I={i}, H={h}]");
            assert_close(&format!("Y of {what}"), &got.y, &expected.y, Tolerance::F32);
            assert_close(
                &format!("Y_h of {what}"),
                &got.y_h,
                &expected.y_h,
                Tolerance::F32,
            );
        }
    }
}

/// A bidirectional layer whose entries end at, before and across the persistent path's chunk
/// boundaries (a chunk is ~150 steps at H = 130), one of length 0: both paths equal the
/// reference.
#[test]
fn lengths_across_persistent_chunks() {
    let Some(ctx) = gpu() else { return };
    let (i, h, t, b) = (3, 130, 700, 4);
    let lens = [700i64, 303, 0, 151];
    for convention in CONVENTIONS {
        let mut rng = Rng::new(20);
        let layer = vec![
            random_weights(&mut rng, convention, i, h, 1.0, true),
            random_weights(&mut rng, convention, i, h, 1.0, true),
        ];
        let model = GruModel::new(Direction::Bidirectional, vec![layer], None).expect("model");
        let x = rng.vec(t * b * i, 1.0);
        let h0 = rng.vec(2 * b * h, 1.0);
        let input = GruInput::new(&x, t, b)
            .with_initial_h(&h0)
            .with_sequence_lens(&lens);
        let expected = cpu::forward_model(&model, &input).expect("cpu");
        let mut gpu_model = GpuGru::from_model(ctx, &model).expect("gpu model");
        gpu_model.set_poison(Some(f32::NAN));
        for path in kernel_paths(h) {
            gpu_model.set_kernel_path(Some(path)).expect("path");
            let got = gpu_model.forward(&input).expect("gpu");
            let what = format!("{convention:?} {path:?} [T={t}, B={b}, H={h}] lens {lens:?}");
            assert_close(&format!("Y of {what}"), &got.y, &expected.y, Tolerance::F32);
            assert_close(
                &format!("Y_h of {what}"),
                &got.y_h,
                &expected.y_h,
                Tolerance::F32,
            );
        }
    }
}

#[test]
fn empty_batch_gives_empty_outputs_and_zero_steps_is_an_error() {
    let mut rng = Rng::new(18);
    let weights = random_weights(&mut rng, Convention::ResetAfter, 2, 3, 1.0, true);
    let out = cpu::forward(&weights, &GruInput::new(&[], 4, 0)).expect("B = 0");
    assert!(out.y.is_empty() && out.y_h.is_empty());
    let err = cpu::forward(&weights, &GruInput::new(&[], 0, 1)).unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
    if let Some(ctx) = gpu() {
        let mut model = GpuGru::new(ctx, &weights).expect("model");
        let out = model.forward(&GruInput::new(&[], 4, 0)).expect("B = 0");
        assert!(out.y.is_empty() && out.y_h.is_empty());
        assert!(model.forward(&GruInput::new(&[], 0, 1)).is_err());
    }
}

#[test]
fn wrong_lengths_are_typed_errors() {
    let mut rng = Rng::new(19);
    let weights = random_weights(&mut rng, Convention::ResetBefore, 2, 3, 1.0, true);
    let x = vec![0.0f32; 7];
    let err = cpu::forward(&weights, &GruInput::new(&x, 2, 2))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("X") && err.contains("8 elements") && err.contains("7"),
        "{err}"
    );
    let x = vec![0.0f32; 8];
    let h0 = vec![0.0f32; 5];
    let err = cpu::forward(&weights, &GruInput::new(&x, 2, 2).with_initial_h(&h0))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("initial_h") && err.contains("6 elements"),
        "{err}"
    );
    if let Some(ctx) = gpu() {
        let mut model = GpuGru::new(ctx, &weights).expect("model");
        let err = model
            .forward(&GruInput::new(&x[..7], 2, 2))
            .unwrap_err()
            .to_string();
        assert!(err.contains("X"), "{err}");
    }
}

/// With profiling on (lavapipe and most GPUs have timestamp queries), a forward reports the
/// GPU time of its input projection and recurrence; the results are unchanged.
#[test]
fn profiling_reports_gpu_time() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(21);
    let weights = random_weights(&mut rng, Convention::ResetAfter, 4, 16, 1.0, true);
    let x = rng.vec(20 * 3 * 4, 1.0);
    let input = GruInput::new(&x, 20, 3);
    let mut model = GpuGru::new(ctx, &weights).expect("model");
    let plain = model.forward(&input).expect("forward");
    assert!(model.last_timing().is_none());
    if !ctx
        .device()
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY)
    {
        let err = model.set_profiling(true).unwrap_err().to_string();
        assert!(err.contains("TIMESTAMP_QUERY"), "{err}");
        return;
    }
    model.set_profiling(true).expect("profiling");
    let profiled = model.forward(&input).expect("forward");
    assert_eq!(plain.y, profiled.y);
    let timing = model.last_timing().expect("timing");
    assert!(
        timing.input_projection_ns > 0.0 && timing.recurrence_ns > 0.0,
        "{timing:?}"
    );
}
