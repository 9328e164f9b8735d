//! f16 storage: a typed error (or an announced fallback) without SHADER_F16, the dtype really
//! used where it is there, long sequences within the f16 tolerance, NaN and saturation, and
//! streaming sessions in f16. Shapes × conventions × paths are in parity/shapes.rs and
//! parity/models.rs.

use crate::common;

use common::{dtypes, gpu, random_weights, round_model, round_vec, variants, Rng};
use gru_wgpu::gpu::{ContextOptions, Feed, GpuContext, GpuGru, GruSession, ModelOptions};
use gru_wgpu::{cpu, Convention, Direction, Dtype, GruError, GruInput, GruModel, Tolerance};

const F16: ModelOptions = ModelOptions {
    dtype: Dtype::F16,
    allow_f32_fallback: false,
};

fn model(seed: u64, convention: Convention, layers: usize, i: usize, h: usize) -> GruModel {
    let mut rng = Rng::new(seed);
    let layers = (0..layers)
        .map(|k| {
            let input = if k == 0 { i } else { h };
            vec![random_weights(&mut rng, convention, input, h, 1.0, true)]
        })
        .collect();
    GruModel::new(Direction::Forward, layers, None).expect("model")
}

/// The context of this test run, if it can run f16 at all.
fn f16_context() -> Option<&'static GpuContext> {
    let ctx = gpu()?;
    dtypes(ctx).contains(&Dtype::F16).then_some(ctx)
}

#[test]
fn f16_without_the_feature_is_a_typed_error_or_an_announced_fallback() {
    // A device made without SHADER_F16 (whatever the adapter has).
    let Some(_) = gpu() else { return };
    let ctx = GpuContext::with_options(&ContextOptions {
        optional_features: wgpu::Features::empty(),
        ..ContextOptions::from_env()
    })
    .expect("context");
    assert!(!ctx.device().features().contains(wgpu::Features::SHADER_F16));
    let m = model(1, Convention::ResetAfter, 1, 3, 4);
    let err = GpuGru::from_model_with(&ctx, &m, &F16).expect_err("no SHADER_F16");
    match &err {
        GruError::MissingFeature { feature, .. } => assert_eq!(*feature, "SHADER_F16"),
        other => panic!("expected MissingFeature, got {other:?}"),
    }
    assert!(err.to_string().contains("SHADER_F16"), "{err}");
    let fallback = ModelOptions {
        allow_f32_fallback: true,
        ..F16
    };
    let mut g = GpuGru::from_model_with(&ctx, &m, &fallback).expect("fallback");
    assert_eq!(g.dtype(), Dtype::F32);
    let note = g.fallback().expect("the fallback is announced");
    assert!(note.contains("f32"), "{note}");
    // And it computes in f32.
    let x = Rng::new(2).vec(5 * 2 * 3, 1.0);
    let got = g.forward(&GruInput::new(&x, 5, 2)).expect("forward");
    let want = cpu::forward_model(&m, &GruInput::new(&x, 5, 2)).expect("cpu");
    let c = Tolerance::F32.compare(&got.y, &want.y);
    assert!(c.passed(), "fallback model: {c}");
}

#[test]
fn f16_storage_is_really_used_and_within_tolerance_over_1000_steps() {
    let Some(ctx) = f16_context() else { return };
    let (i, h, t, b) = (16, 48, 1000, 3);
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        let m = model(3, convention, 2, i, h);
        let x = Rng::new(4).vec(t * b * i, 1.0);
        let exact = cpu::forward_model(&m, &GruInput::new(&x, t, b)).expect("cpu");
        let rx = round_vec(&x, Dtype::F16);
        let same = cpu::forward_model(&round_model(&m, Dtype::F16), &GruInput::new(&rx, t, b))
            .expect("cpu rounded");
        let mut g = GpuGru::from_model_with(ctx, &m, &F16).expect("gpu");
        assert_eq!(g.dtype(), Dtype::F16);
        assert!(g.fallback().is_none());
        for variant in variants(h) {
            variant.apply(&mut g);
            let path = variant;
            let got = g.forward(&GruInput::new(&x, t, b)).expect("forward");
            // The error stays flat with T (BENCHMARKS.md: 3.6e-4 at T=100, 4.5e-4 at 10000):
            // the f16 tolerance holds unloosened at T = 1000.
            let c = Tolerance::F16.compare(&got.y, &same.y);
            assert!(
                c.passed(),
                "{convention:?} {path} T={t}: vs the reference on rounded data: {c}"
            );
            let c = Tolerance::F16.compare(&got.y, &exact.y);
            assert!(c.passed(), "{convention:?} {path}: vs the f32 model: {c}");
            // f16 storage really rounds: the f32 tolerance does not hold.
            let c = Tolerance::F32.compare(&got.y, &exact.y);
            assert!(
                !c.passed(),
                "{convention:?} {path}: f16 output within the f32 tolerance ({c}): is f16 used?"
            );
        }
    }
}

#[test]
fn f16_propagates_nan_and_saturates_without_overflow() {
    let Some(ctx) = f16_context() else { return };
    let (i, h, t, b) = (4, 8, 6, 3);
    let m = model(5, Convention::ResetAfter, 1, i, h);
    let mut rng = Rng::new(6);
    // Entry 0: ordinary; entry 1: a NaN at step 2; entry 2: inputs of ±2e4 (pre-activations
    // far past where an f16 tanh would overflow; f16 max is 65504).
    let mut x = rng.vec(t * b * i, 1.0);
    x[(2 * b + 1) * i] = f32::NAN;
    for s in 0..t {
        for k in 0..i {
            x[(s * b + 2) * i + k] = if (s + k) % 2 == 0 { 2e4 } else { -2e4 };
        }
    }
    let mut g = GpuGru::from_model_with(ctx, &m, &F16).expect("gpu");
    let got = g.forward(&GruInput::new(&x, t, b)).expect("forward");
    let rx = round_vec(&x, Dtype::F16);
    let want =
        cpu::forward_model(&round_model(&m, Dtype::F16), &GruInput::new(&rx, t, b)).expect("cpu");
    let c = Tolerance::F16.compare(&got.y, &want.y);
    assert!(c.passed(), "{c}");
    for s in 0..t {
        for j in 0..h {
            let at = |e: usize| got.y[(s * b + e) * h + j];
            assert_eq!(at(1).is_nan(), s >= 2, "NaN of entry 1 at step {s}");
            assert!(
                at(2).is_finite() && at(2).abs() <= 1.0,
                "entry 2 saturated: {}",
                at(2)
            );
        }
    }
}

/// Dtype::F16's rule for values beyond its range: finite values of X, initial_h and the
/// weights saturate to ±65504 (never ±inf, so never `inf − inf` = NaN in the input
/// projection), ±inf stays ±inf, NaN stays NaN. On every variant, both conventions:
/// - the outputs equal the f64 reference run on the saturated data (`Dtype::round`);
/// - an entry whose inputs are all finite (here |x| up to 1e20, weights and initial_h
///   beyond 65504 too) has no NaN anywhere in Y or Y_h;
/// - an entry with ±inf inputs has NaN exactly where the f32 path has it.
#[test]
fn f16_saturates_values_beyond_its_range_never_nan_from_finite_inputs() {
    let Some(ctx) = f16_context() else { return };
    let (i, h, t, b) = (5, 12, 7, 4);
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        let mut rng = Rng::new(11);
        let mut w = random_weights(&mut rng, convention, i, h, 1.0, true);
        // Weights beyond f16's range, of both signs, in W, R and B.
        let (mut ww, mut rr, mut bb) = (w.w().to_vec(), w.r().to_vec(), w.b().to_vec());
        ww[3] = 1e6;
        ww[3 * i + 1] = -7e4;
        rr[2 * h + 5] = 2e5;
        bb[h + 2] = -1e9;
        w = gru_wgpu::GruWeights::new(convention, i, h, ww, rr, Some(bb)).expect("weights");
        let m = GruModel::new(Direction::Forward, vec![vec![w]], None).expect("model");
        // Entry 0: 1e20-scale inputs of both signs (onnxruntime's saturating case);
        // entry 1: ordinary inputs and an initial state beyond 65504;
        // entry 2: +inf at step 1 and −inf at step 4 (one column each);
        // entry 3: +inf and −inf in the same row of X at step 2 (inf − inf: NaN in f32 too).
        let mut x = rng.vec(t * b * i, 1.0);
        for s in 0..t {
            for k in 0..i {
                x[(s * b) * i + k] = rng.vec(1, 2.5e20)[0];
            }
        }
        x[(b + 2) * i + 1] = f32::INFINITY;
        x[(4 * b + 2) * i + 3] = f32::NEG_INFINITY;
        x[(2 * b + 3) * i] = f32::INFINITY;
        x[(2 * b + 3) * i + 2] = f32::NEG_INFINITY;
        let mut h0 = rng.vec(b * h, 1.0);
        h0[h + 3] = 9e4;
        h0[h + 7] = -3e38;
        let input = GruInput::new(&x, t, b).with_initial_h(&h0);
        let (rx, rh0) = (round_vec(&x, Dtype::F16), round_vec(&h0, Dtype::F16));
        assert!(rx[..i].iter().all(|v| v.abs() == 65504.0), "X saturates");
        let want = cpu::forward_model(
            &round_model(&m, Dtype::F16),
            &GruInput::new(&rx, t, b).with_initial_h(&rh0),
        )
        .expect("cpu");
        let mut f32_model = GpuGru::from_model(ctx, &m).expect("f32 model");
        let f32_out = f32_model.forward(&input).expect("f32 forward");
        let mut g = GpuGru::from_model_with(ctx, &m, &F16).expect("gpu");
        g.set_poison(Some(f32::NAN));
        for variant in variants(h) {
            variant.apply(&mut g);
            let got = g.forward(&input).expect("forward");
            let what = format!("{convention:?} {variant} [T={t}, B={b}, I={i}, H={h}]");
            for (name, gv, ev) in [("Y", &got.y, &want.y), ("Y_h", &got.y_h, &want.y_h)] {
                let c = Tolerance::F16.compare(gv, ev);
                assert!(c.passed(), "{what}: {name} vs the saturated reference: {c}");
            }
            for s in 0..t {
                for e in 0..b {
                    for j in 0..h {
                        let at = (s * b + e) * h + j;
                        let (g16, g32) = (got.y[at], f32_out.y[at]);
                        if e < 2 {
                            assert!(
                                !g16.is_nan(),
                                "{what}: Y[{s}, {e}, {j}] is NaN from finite input"
                            );
                        }
                        assert_eq!(
                            g16.is_nan(),
                            g32.is_nan(),
                            "{what}: Y[{s}, {e}, {j}]: f16 {g16}, f32 {g32}"
                        );
                    }
                }
            }
            // The case with inf − inf really has NaN (in both), the others none.
            assert!(
                got.y_h[3 * h..].iter().any(|v| v.is_nan()),
                "{what}: entry 3"
            );
            assert!(
                got.y_h[..3 * h].iter().all(|v| !v.is_nan()),
                "{what}: entries 0-2"
            );
        }
        // What the CLI reports: every X of entry 0, 2 values of h0, 4 weights.
        assert_eq!(Dtype::F16.saturated(&x), t * i);
        assert_eq!(Dtype::F16.saturated(&h0), 2);
        assert_eq!(Dtype::F32.saturated(&x), 0);
        let w = &m.layers()[0][0];
        let weights = [w.w(), w.r(), w.b()].map(|a| Dtype::F16.saturated(a));
        assert_eq!(weights, [2, 1, 1]);
    }
}

#[test]
fn f16_sessions_equal_the_one_shot_forward() {
    let Some(ctx) = f16_context() else { return };
    let (layers, i, h, t) = (3, 8, 40, 11);
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        let m = model(8, convention, layers, i, h);
        let x = Rng::new(9).vec(t * i, 1.0);
        let mut g = GpuGru::from_model_with(ctx, &m, &F16).expect("gpu");
        let whole = g.forward(&GruInput::new(&x, t, 1)).expect("forward");
        let mut session = GruSession::new(g, 3).expect("session");
        let s = session.open().expect("open");
        let mut y = Vec::new();
        let mut at = 0;
        for c in [2, 1, 5, 3] {
            let out = session
                .feed(&Feed::new(&[s], &x[at * i..(at + c) * i], c))
                .expect("feed");
            y.extend(out);
            at += c;
        }
        // Same kernels, same rounding of the state at every step: the same values.
        assert_eq!(
            y, whole.y,
            "{convention:?}: chunked f16 feed differs from one forward"
        );
        assert_eq!(session.read_state(s).expect("state"), whole.y_h);
        // The state round-trips through f16 exactly for f16-representable values.
        let state = round_vec(&Rng::new(10).vec(layers * h, 1.0), Dtype::F16);
        session.set_state(s, &state).expect("set");
        assert_eq!(session.read_state(s).expect("read"), state);
    }
}
