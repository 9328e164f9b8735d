//! Properties of a forward pass, on the CPU reference and on the GPU:
//! the last row of Y is Y_h; a sequence run in two halves (the second starting from the
//! first's Y_h) equals the whole; NaN propagates to exactly the elements downstream of it;
//! huge finite inputs stay finite; the model reuses its pipelines; long sequences stay right
//! (lavapipe's loop cap, REFERENCES.md §6).
//!
//! Every GPU check runs in every storage type the adapter has (`common::dtypes`) and on every
//! variant (`common::variants`: kernel path × step kernel × GEMM kernel), outputs poisoned
//! with NaN first, and every GPU output is compared whole (every element of Y and Y_h) with
//! the f64 reference on the weights and inputs rounded to its storage type, within that
//! type's tolerance (onnxruntime's rules), NaN exactly where the reference has NaN.
//! Properties that hold bit for bit hold within one dtype and variant.

use crate::common;

use common::{
    assert_close, configs, each_gpu_config, gpu, random_weights, rounded_reference, tolerance,
    PerDtype, Rng,
};
use gru_wgpu::gpu::GpuGru;
use gru_wgpu::{cpu, Convention, Direction, Dtype, GruInput, GruModel, GruOutput, GruWeights};

const CONVENTIONS: [Convention; 2] = [Convention::ResetAfter, Convention::ResetBefore];

/// Asserts every element of `got`'s Y and Y_h equals `expected` within `dtype`'s tolerance
/// (NaN exactly where `expected` has NaN).
fn assert_output_close(what: &str, got: &GruOutput, expected: &GruOutput, dtype: Dtype) {
    let tol = tolerance(dtype);
    assert_close(&format!("Y of {what}"), &got.y, &expected.y, tol);
    assert_close(&format!("Y_h of {what}"), &got.y_h, &expected.y_h, tol);
}

/// Asserts two outputs are the same bit for bit (NaN included), naming the first difference.
fn assert_identical(what: &str, got: &GruOutput, expected: &GruOutput) {
    for (name, g, e) in [("Y", &got.y, &expected.y), ("Y_h", &got.y_h, &expected.y_h)] {
        assert_eq!(g.len(), e.len(), "{name} of {what}: lengths differ");
        if let Some(k) = g
            .iter()
            .zip(e)
            .position(|(a, b)| a.to_bits() != b.to_bits())
        {
            panic!(
                "{name} of {what}: index {k}: got {:e}, expected {:e} (bit for bit)",
                g[k], e[k]
            );
        }
    }
}

/// Runs `input` through `model` on the CPU reference and on the GPU in every dtype and
/// variant. Every GPU output is first checked whole against the reference of its dtype;
/// returns `(label, output)` of every run for the property's own check.
fn every_device(model: &GruModel, input: &GruInput<'_>) -> Vec<(String, GruOutput)> {
    let mut out = vec![(
        "cpu".to_string(),
        cpu::forward_model(model, input).expect("cpu forward"),
    )];
    if let Some(ctx) = gpu() {
        let mut expected = PerDtype::default();
        each_gpu_config(ctx, model, |dtype, variant, g| {
            let e = expected.get(dtype, |d| rounded_reference(model, input, d));
            let got = g.forward(input).expect("gpu forward");
            let label = format!("gpu {dtype:?} {variant}");
            assert_output_close(&format!("{label} vs reference"), &got, e, dtype);
            out.push((label, got));
        });
    }
    out
}

/// Asserts that exactly the elements `nan(index)` says are NaN, naming the first that is not.
fn assert_nan_mask(what: &str, values: &[f32], nan: impl Fn(usize) -> bool) {
    for (k, v) in values.iter().enumerate() {
        assert_eq!(
            v.is_nan(),
            nan(k),
            "{what}: element {k} = {v}, expected {}",
            if nan(k) { "NaN" } else { "not NaN" }
        );
    }
}

#[test]
fn last_row_of_y_is_y_h() {
    for convention in CONVENTIONS {
        let (i, h, t, b) = (5, 9, 6, 3);
        let mut rng = Rng::new(11);
        let model = GruModel::single(random_weights(&mut rng, convention, i, h, 1.0, true));
        let x = rng.vec(t * b * i, 1.0);
        for (path, out) in every_device(&model, &GruInput::new(&x, t, b)) {
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
        let model = GruModel::single(random_weights(&mut rng, convention, i, h, 1.0, true));
        let x = rng.vec(t * b * i, 1.0);
        let h0 = rng.vec(b * h, 1.0);
        let whole_input = GruInput::new(&x, t, b).with_initial_h(&h0);
        let first_input = GruInput::new(&x[..t1 * b * i], t1, b).with_initial_h(&h0);
        // Same kernels, same state: the halves reproduce the whole bit for bit.
        let check = |what: &str, forward: &mut dyn FnMut(&GruInput<'_>) -> GruOutput| {
            let whole = forward(&whole_input);
            let first = forward(&first_input);
            let second_input =
                GruInput::new(&x[t1 * b * i..], t - t1, b).with_initial_h(&first.y_h);
            let second = forward(&second_input);
            let joined = GruOutput {
                y: first.y.iter().chain(&second.y).copied().collect(),
                y_h: second.y_h,
                dims: whole.dims,
            };
            assert_identical(
                &format!("{what} {convention:?}: halves vs whole"),
                &joined,
                &whole,
            );
            whole
        };
        check("cpu", &mut |input| {
            cpu::forward_model(&model, input).expect("cpu")
        });
        let Some(ctx) = gpu() else { continue };
        each_gpu_config(ctx, &model, |dtype, variant, g| {
            let what = format!("gpu {dtype:?} {variant}");
            let whole = check(&what, &mut |input| g.forward(input).expect("gpu"));
            let expected = rounded_reference(&model, &whole_input, dtype);
            assert_output_close(&format!("{what} {convention:?}"), &whole, &expected, dtype);
        });
    }
}

#[test]
fn nan_in_input_propagates_and_stays_in_its_sequence() {
    for convention in CONVENTIONS {
        let (i, h, t, b) = (3, 6, 5, 3);
        let mut rng = Rng::new(13);
        let model = GruModel::single(random_weights(&mut rng, convention, i, h, 1.0, true));
        let mut x = rng.vec(t * b * i, 1.0);
        let (t_nan, b_nan) = (2, 1);
        x[(t_nan * b + b_nan) * i] = f32::NAN;
        // NaN from step t_nan on in entry b_nan (every unit), nowhere else; the rest of every
        // GPU output equals the reference within tolerance (every_device).
        for (path, out) in every_device(&model, &GruInput::new(&x, t, b)) {
            let what = format!("{path} {convention:?}");
            assert_nan_mask(&format!("Y of {what}"), &out.y, |k| {
                let (tt, bb) = (k / (b * h), k / h % b);
                bb == b_nan && tt >= t_nan
            });
            assert_nan_mask(&format!("Y_h of {what}"), &out.y_h, |k| k / h == b_nan);
        }
    }
}

/// A NaN in W, R or B (the update gate of unit 0, element 0 of each) makes exactly the
/// elements downstream of it NaN: at step 0 unit 0, from step 1 on every unit (each reads
/// the state of unit 0), only within each entry's length (Y is zero past it, and an entry of
/// length 0 gives zeros). The mask is derived by hand, checked on the f64 reference, and
/// every GPU output must have exactly the reference's NaNs and the other elements within
/// tolerance.
#[test]
fn nan_in_weights_propagates() {
    let (i, h, t, b) = (3, 5, 4, 4);
    let lens = [4i64, 1, 0, 2];
    for convention in CONVENTIONS {
        for tensor in ["W", "R", "B"] {
            let mut rng = Rng::new(14);
            let w0 = random_weights(&mut rng, convention, i, h, 1.0, true);
            let (mut w, mut r, mut bias) = (w0.w().to_vec(), w0.r().to_vec(), w0.b().to_vec());
            match tensor {
                "W" => w[0] = f32::NAN,  // W_z[0, 0]
                "R" => r[0] = f32::NAN,  // R_z[0, 0]
                _ => bias[0] = f32::NAN, // Wb_z[0]
            }
            let weights = GruWeights::new(convention, i, h, w, r, Some(bias)).expect("weights");
            let model = GruModel::single(weights);
            let x = rng.vec(t * b * i, 1.0);
            let h0 = rng.vec(b * h, 1.0);
            let input = GruInput::new(&x, t, b)
                .with_initial_h(&h0)
                .with_sequence_lens(&lens);
            let y_nan = |k: usize| {
                let (tt, bb, j) = (k / (b * h), k / h % b, k % h);
                (tt as i64) < lens[bb] && (tt >= 1 || j == 0)
            };
            let y_h_nan = |k: usize| {
                let (bb, j) = (k / h, k % h);
                lens[bb] >= 2 || (lens[bb] == 1 && j == 0)
            };
            for (path, out) in every_device(&model, &input) {
                let what = format!("{path} {convention:?}, NaN in {tensor}, lens {lens:?}");
                assert_nan_mask(&format!("Y of {what}"), &out.y, y_nan);
                assert_nan_mask(&format!("Y_h of {what}"), &out.y_h, y_h_nan);
            }
        }
    }
}

/// Finite inputs up to ±1e30 give finite outputs (stable σ and tanh, REFERENCES.md §4), in
/// [-1, 1], and on the GPU every element equals the reference within tolerance (in f16 the
/// inputs saturate to ±65504, `Dtype::F16`, and so does the reference's rounded input).
#[test]
fn huge_finite_inputs_give_finite_outputs() {
    for convention in CONVENTIONS {
        let (i, h, t, b) = (2, 5, 4, 2);
        let mut rng = Rng::new(15);
        let model = GruModel::single(random_weights(&mut rng, convention, i, h, 1.0, true));
        let x: Vec<f32> = (0..t * b * i)
            .map(|k| if k % 2 == 0 { 1e30 } else { -1e30 })
            .collect();
        for (path, out) in every_device(&model, &GruInput::new(&x, t, b)) {
            for (name, v) in [("Y", &out.y), ("Y_h", &out.y_h)] {
                assert!(
                    v.iter().all(|v| v.is_finite() && v.abs() <= 1.0),
                    "{name} of {path} {convention:?}: {v:?}"
                );
            }
        }
    }
}

/// Forwarding again with the same shapes creates no pipeline and no buffers; a new shape
/// reallocates buffers but builds no pipeline. Every dtype and variant; each result whole
/// against the reference.
#[test]
fn forward_reuses_pipelines_and_buffers() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(16);
    let weights = random_weights(&mut rng, Convention::ResetAfter, 3, 8, 1.0, true);
    let model = GruModel::single(weights);
    let x = rng.vec(5 * 2 * 3, 1.0);
    let (small, other) = (GruInput::new(&x, 5, 2), GruInput::new(&x, 10, 1));
    let mut runs = 0;
    let mut built: Option<(Dtype, usize)> = None;
    each_gpu_config(ctx, &model, |dtype, variant, g| {
        if built.map(|b| b.0) != Some(dtype) {
            built = Some((dtype, g.stats().pipelines_created));
            runs = 0;
        }
        let pipelines = built.expect("pipelines").1;
        let what = format!("{dtype:?} {variant}");
        let before = g.stats().scratch_allocations;
        let a = g.forward(&small).expect("forward");
        let allocated = g.stats().scratch_allocations;
        assert!(allocated <= before + 1, "{what}: {before} -> {allocated}");
        let b = g.forward(&small).expect("forward");
        assert_identical(&format!("{what}: two forwards of one input"), &b, &a);
        assert_output_close(&what, &a, &rounded_reference(&model, &small, dtype), dtype);
        assert_eq!(g.stats().pipelines_created, pipelines, "{what}");
        assert_eq!(g.stats().scratch_allocations, allocated, "{what}");
        let c = g.forward(&other).expect("forward");
        assert_output_close(&what, &c, &rounded_reference(&model, &other, dtype), dtype);
        assert_eq!(g.stats().pipelines_created, pipelines, "{what}");
        assert_eq!(g.stats().scratch_allocations, allocated + 1, "{what}");
        runs += 3;
        assert_eq!(g.stats().forwards, runs, "{what}");
    });
}

/// T = 3000 steps: far more than lavapipe's ~65535-iteration cap would allow if any kernel
/// looped over timesteps inside one invocation with an inner loop over H. The whole sequence
/// must match the reference at every step, in every dtype and variant.
#[test]
fn long_sequence_matches_reference() {
    if gpu().is_none() {
        return;
    }
    for convention in CONVENTIONS {
        let (i, h, t, b) = (3, 24, 3000, 2);
        let mut rng = Rng::new(17);
        let model = GruModel::single(random_weights(&mut rng, convention, i, h, 1.0, true));
        let x = rng.vec(t * b * i, 1.0);
        // every_device compares every GPU output with the reference.
        let runs = every_device(&model, &GruInput::new(&x, t, b));
        let ctx = gpu().expect("checked above");
        assert_eq!(runs.len(), 1 + configs(ctx, h).len());
    }
}

/// A bidirectional layer whose entries end at, before and across the persistent path's chunk
/// boundaries (a chunk is ~150 steps at H = 130), one of length 0: every dtype and variant
/// equals the reference.
#[test]
fn lengths_across_persistent_chunks() {
    if gpu().is_none() {
        return;
    }
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
        // every_device compares every GPU output with the reference.
        every_device(&model, &input);
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
    let Some(ctx) = gpu() else { return };
    each_gpu_config(ctx, &GruModel::single(weights), |dtype, variant, g| {
        let out = g.forward(&GruInput::new(&[], 4, 0)).expect("B = 0");
        assert!(
            out.y.is_empty() && out.y_h.is_empty(),
            "{dtype:?} {variant}: {out:?}"
        );
        let err = g.forward(&GruInput::new(&[], 0, 1)).unwrap_err();
        assert!(
            err.to_string().contains("at least 1"),
            "{dtype:?} {variant}: {err}"
        );
    });
}

#[test]
fn wrong_lengths_are_typed_errors() {
    let mut rng = Rng::new(19);
    let weights = random_weights(&mut rng, Convention::ResetBefore, 2, 3, 1.0, true);
    let x = vec![0.0f32; 8];
    let h0 = vec![0.0f32; 5];
    let short_x = GruInput::new(&x[..7], 2, 2);
    let short_h0 = GruInput::new(&x, 2, 2).with_initial_h(&h0);
    let check = |what: &str, forward: &mut dyn FnMut(&GruInput<'_>) -> String| {
        let err = forward(&short_x);
        assert!(
            err.contains("X") && err.contains("8 elements") && err.contains("7"),
            "{what}: {err}"
        );
        let err = forward(&short_h0);
        assert!(
            err.contains("initial_h") && err.contains("6 elements"),
            "{what}: {err}"
        );
    };
    check("cpu", &mut |input| {
        cpu::forward(&weights, input).unwrap_err().to_string()
    });
    let Some(ctx) = gpu() else { return };
    each_gpu_config(
        ctx,
        &GruModel::single(weights.clone()),
        |dtype, variant, g| {
            check(&format!("gpu {dtype:?} {variant}"), &mut |input| {
                g.forward(input).unwrap_err().to_string()
            });
        },
    );
}

/// With profiling on (lavapipe and most GPUs have timestamp queries), a forward reports the
/// GPU time of its input projection and recurrence; the results are unchanged, bit for bit,
/// in every dtype and variant.
#[test]
fn profiling_reports_gpu_time() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(21);
    let weights = random_weights(&mut rng, Convention::ResetAfter, 4, 16, 1.0, true);
    let x = rng.vec(20 * 3 * 4, 1.0);
    let input = GruInput::new(&x, 20, 3);
    let model = GruModel::single(weights);
    if !ctx
        .device()
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY)
    {
        let mut g = GpuGru::from_model(ctx, &model).expect("model");
        let err = g.set_profiling(true).unwrap_err().to_string();
        assert!(err.contains("TIMESTAMP_QUERY"), "{err}");
        return;
    }
    each_gpu_config(ctx, &model, |dtype, variant, g| {
        let what = format!("{dtype:?} {variant}");
        g.set_profiling(false).expect("profiling off");
        let plain = g.forward(&input).expect("forward");
        assert!(g.last_timing().is_none(), "{what}");
        assert_output_close(
            &what,
            &plain,
            &rounded_reference(&model, &input, dtype),
            dtype,
        );
        g.set_profiling(true).expect("profiling");
        let profiled = g.forward(&input).expect("forward");
        assert_identical(&format!("{what}: profiled vs plain"), &profiled, &plain);
        let timing = g.last_timing().expect("timing");
        assert!(
            timing.input_projection_ns > 0.0 && timing.recurrence_ns > 0.0,
            "{what}: {timing:?}"
        );
    });
}
