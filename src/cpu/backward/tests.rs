//! The CPU backward against central finite differences of the `f64` forward, on small shapes
//! over every configuration the forward supports, and the `f64` forward against the
//! reference forward.

use super::*;
use crate::input::{Layout, OutputStyle};
use crate::model::Direction;
use crate::seeded::SplitMix64;

/// One configuration of the finite-difference checks.
#[derive(Clone, Copy, Debug)]
struct Case {
    convention: Convention,
    direction: Direction,
    layers: usize,
    lens: bool,
    layout: Layout,
    style: OutputStyle,
    clip: Option<f32>,
    h0: bool,
}

const I: usize = 2;
const H: usize = 3;
const T: usize = 4;
const B: usize = 3;

/// Every combination of convention × (direction, layers) × lengths × (layout, style) × clip
/// × initial state.
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        for (direction, layers) in [
            (Direction::Forward, 1),
            (Direction::Reverse, 2),
            (Direction::Bidirectional, 2),
        ] {
            for lens in [false, true] {
                for (layout, style) in [
                    (Layout::SequenceMajor, OutputStyle::Onnx),
                    (Layout::BatchMajor, OutputStyle::PyTorch),
                    (Layout::BatchMajor, OutputStyle::Onnx),
                ] {
                    for clip in [None, Some(0.7)] {
                        for h0 in [false, true] {
                            out.push(Case {
                                convention,
                                direction,
                                layers,
                                lens,
                                layout,
                                style,
                                clip,
                                h0,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// The case's model (weights large enough that gates saturate and the clip bites), input,
/// initial state, lengths and output gradients.
struct Setup {
    model: GruModel,
    x: Vec<f32>,
    h0: Vec<f32>,
    lens: Vec<i64>,
    dy: Vec<f32>,
    dy_h: Vec<f32>,
}

fn setup(case: &Case, seed: u64) -> Setup {
    let mut rng = SplitMix64::new(seed);
    let d = case.direction.num_directions();
    let layers = (0..case.layers)
        .map(|l| {
            let k = if l == 0 { I } else { d * H };
            (0..d)
                .map(|_| {
                    GruWeights::new(
                        case.convention,
                        k,
                        H,
                        rng.vec(3 * H * k, 1.2),
                        rng.vec(3 * H * H, 1.2),
                        Some(rng.vec(6 * H, 0.8)),
                    )
                    .expect("weights")
                })
                .collect()
        })
        .collect();
    let model = GruModel::new(case.direction, layers, case.clip).expect("model");
    Setup {
        model,
        x: rng.vec(T * B * I, 1.5),
        h0: rng.vec(case.layers * d * B * H, 1.0),
        // A full entry, a shorter one, and one of length 0.
        lens: vec![T as i64, 2, 0],
        dy: rng.vec(T * B * d * H, 1.0),
        dy_h: rng.vec(case.layers * d * B * H, 1.0),
    }
}

fn input<'a>(case: &Case, s: &'a Setup) -> GruInput<'a> {
    let mut input = GruInput::new(&s.x, T, B)
        .with_layout(case.layout)
        .with_style(case.style);
    if case.lens {
        input = input.with_sequence_lens(&s.lens);
    }
    if case.h0 {
        input = input.with_initial_h(&s.h0);
    }
    input
}

/// `L = Σ dY ⊙ Y + Σ dY_h ⊙ Y_h` of the `f64` forward.
fn loss(net: &Net, x: &[f64], h0: Option<&[f64]>, s: &Setup) -> f64 {
    let f = forward64(net, x, h0);
    let dot = |a: &[f64], b: &[f32]| a.iter().zip(b).map(|(a, &b)| a * b as f64).sum::<f64>();
    dot(&f.y, &s.dy) + dot(&f.y_h, &s.dy_h)
}

/// Checks `analytic` against central differences of `loss` over every element of the
/// parameter `probe` reaches; `what` names it in a failure.
fn check(what: &str, analytic: &[f64], n: usize, mut loss_at: impl FnMut(usize, f64) -> f64) {
    assert_eq!(analytic.len(), n, "{what}: length");
    let eps = 1e-6;
    let scale = analytic.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for i in 0..n {
        let fd = (loss_at(i, eps) - loss_at(i, -eps)) / (2.0 * eps);
        let tol = 1e-7 + 1e-6 * scale;
        assert!(
            (fd - analytic[i]).abs() <= tol,
            "{what}[{i}]: backward {} against finite differences {fd} (tolerance {tol:e})",
            analytic[i]
        );
    }
}

/// Every gradient — W, R, B of every layer and direction, X and initial_h — of every
/// configuration equals the central finite differences of the `f64` forward.
#[test]
fn gradients_match_finite_differences_in_every_configuration() {
    for (n, case) in cases().iter().enumerate() {
        let s = setup(case, 1000 + n as u64);
        let inp = input(case, &s);
        let net = Net::new(&s.model.view(), &inp).expect("net");
        let dims = net.dims;
        let grads = backward_model(&s.model, &inp, &s.dy, Some(&s.dy_h)).expect("backward");
        let params = &net.params;
        let x: Vec<f64> = s.x.iter().map(|&v| v as f64).collect();
        let h0: Option<Vec<f64>> = case.h0.then(|| s.h0.iter().map(|&v| v as f64).collect());
        let ctx = format!("case {n} {case:?}");
        for l in 0..params.len() {
            for d in 0..params[l].len() {
                let g = &grads.layers[l][d];
                for (name, analytic) in [("dW", &g.dw), ("dR", &g.dr), ("dB", &g.db)] {
                    let len = analytic.len();
                    check(
                        &format!("{ctx} layer {l} dir {d} {name}"),
                        analytic,
                        len,
                        |i, e| {
                            let mut p = net.clone();
                            let v = match name {
                                "dW" => &mut p.params[l][d].w,
                                "dR" => &mut p.params[l][d].r,
                                _ => &mut p.params[l][d].b,
                            };
                            v[i] += e;
                            loss(&p, &x, h0.as_deref(), &s)
                        },
                    );
                }
            }
        }
        check(&format!("{ctx} dX"), &grads.dx, x.len(), |i, e| {
            let mut xp = x.clone();
            xp[i] += e;
            loss(&net, &xp, h0.as_deref(), &s)
        });
        let h0v = h0.clone().unwrap_or_else(|| vec![0.0; dims.state_len()]);
        check(&format!("{ctx} dh0"), &grads.dh0, h0v.len(), |i, e| {
            let mut hp = h0v.clone();
            hp[i] += e;
            loss(&net, &x, Some(&hp), &s)
        });
        // An entry of length 0 has a constant zero Y_h: no gradient reaches its state.
        if case.lens {
            let [st_ld, st_b] = dims.state_strides();
            for ld in 0..dims.num_layers * dims.num_directions {
                let at = ld * st_ld + 2 * st_b;
                assert!(grads.dh0[at..][..H].iter().all(|&v| v == 0.0), "{ctx}");
            }
        }
    }
}

/// The `f64` forward the backward differentiates is the reference forward: equal within
/// f32 rounding (the reference rounds the state to f32 each step).
#[test]
fn the_f64_forward_is_the_reference_forward() {
    for (n, case) in cases().iter().enumerate() {
        let s = setup(case, 2000 + n as u64);
        let inp = input(case, &s);
        let net = Net::new(&s.model.view(), &inp).expect("net");
        let reference = crate::cpu::forward_model(&s.model, &inp).expect("forward");
        let x: Vec<f64> = s.x.iter().map(|&v| v as f64).collect();
        let h0: Option<Vec<f64>> = case.h0.then(|| s.h0.iter().map(|&v| v as f64).collect());
        let f = forward64(&net, &x, h0.as_deref());
        for (name, got, expected) in [("Y", &f.y, &reference.y), ("Y_h", &f.y_h, &reference.y_h)] {
            assert_eq!(got.len(), expected.len(), "case {n} {name}");
            for (i, (g, &e)) in got.iter().zip(expected.iter()).enumerate() {
                assert!(
                    (g - e as f64).abs() <= 1e-5,
                    "case {n} {case:?} {name}[{i}]: f64 {g} against reference {e}"
                );
            }
        }
    }
}

/// Wrong lengths of `dY` and `dY_h` are typed errors naming the expected shape.
#[test]
fn wrong_gradient_lengths_are_typed_errors() {
    let case = cases()[0];
    let s = setup(&case, 3);
    let inp = input(&case, &s);
    let err = backward_model(&s.model, &inp, &s.dy[1..], None).unwrap_err();
    assert!(err.to_string().contains("dY"), "{err}");
    let err = backward_model(&s.model, &inp, &s.dy, Some(&s.dy_h[1..])).unwrap_err();
    assert!(err.to_string().contains("dY_h"), "{err}");
}

/// An empty batch has empty input and state gradients and zero weight gradients; a NaN in
/// `dY` reaches the gradients of its own entry's input and of the weights, and no other
/// entry's input.
#[test]
fn empty_batch_and_nan_in_the_output_gradient() {
    let case = cases()[0];
    let s = setup(&case, 5);
    let empty = GruInput::new(&[], T, 0);
    let g = backward_model(&s.model, &empty, &[], None).expect("B = 0");
    assert!(g.dx.is_empty() && g.dh0.is_empty());
    assert!(g.layers[0][0].dw.iter().all(|&v| v == 0.0));

    let inp = input(&case, &s);
    let mut dy = s.dy.clone();
    // Entry 1 at the last step (sequence-major ONNX: Y[T, D, B, H]).
    dy[((T - 1) * B + 1) * H] = f32::NAN;
    let g = backward_model(&s.model, &inp, &dy, None).expect("backward");
    let row = |t: usize, b: usize| &g.dx[(t * B + b) * I..][..I];
    assert!(row(T - 1, 1).iter().any(|v| v.is_nan()), "entry 1's dX");
    assert!(row(0, 0).iter().all(|v| v.is_finite()), "entry 0's dX");
    assert!(row(0, 2).iter().all(|v| v.is_finite()), "entry 2's dX");
    assert!(g.layers[0][0].dw.iter().any(|v| v.is_nan()), "dW");
}
