//! The seed article's worked example (§4.3, "案例分析与讲解"), computed correctly, and the
//! library (CPU reference and GPU) checked against it.
//!
//! # The example as the article states it
//! - input sequence `[1, 2, 3, 4, 5]` (one feature per step), initial state `[0, 0]`
//!   (so **two hidden units**, `H = 2`, `I = 1`);
//! - `W_u = [1, 1], b_u = 0`, `W_r = [1, 1], b_r = 0`, `W_c = [1, 1], b_c = 0`;
//! - formulas (§3.2 / §4.1): `u = σ(W_u·[h_{t−1}, x_t] + b_u)`,
//!   `r = σ(W_r·[h_{t−1}, x_t] + b_r)`, `h̃ = tanh(W_c·[r ∘ h_{t−1}, x_t] + b_c)`,
//!   `h_t = u ∘ h_{t−1} + (1 − u) ∘ h̃`.
//!
//! The candidate applies `r` to `h_{t−1}` *before* the recurrent product: that is
//! [`Convention::ResetBefore`] (ONNX `linear_before_reset = 0`), and the blend is ONNX's.
//!
//! This example cannot tell the two conventions apart: with every recurrent bias 0 and the
//! reset gate equal in every unit (dense reading) or `R_c` diagonal (diagonal reading),
//! `R_c (r ∘ h) = r ∘ (R_c h)`. It checks the arithmetic, not the convention; the conformance
//! and conversion tests check the convention.
//!
//! # Interpretation of "W = [1, 1]"
//! With two units, `[h_{t−1}, x_t]` has three components, so a weight row per unit has three
//! entries and a literal `[1, 1]` cannot be one. The reading taken here ([`article_dense`]) is
//! "every weight is 1": each unit's row over `[h_{t−1}, x_t]` is `[1, 1, 1]`, i.e. in ONNX
//! layout `W_g = [[1], [1]]` (`[H, I]`) and `R_g = [[1, 1], [1, 1]]` (`[H, H]`) for every gate
//! `g`, bias 0. The other reading, "weight 1 on the `h` block, 1 on the `x` block" (each unit
//! sees only its own previous state, `R_g = I₂`), is checked as well
//! ([`article_diagonal`]). The first step is the same under both (`h_0 = 0`); from step 2 on
//! they differ.
//!
//! # Correct values of the first step (x₁ = 1, h₀ = [0, 0])
//! - `u = σ(0 + 0 + 1) = σ(1) = 0.7310585786300049` (both units);
//! - `r = σ(1) = 0.7310585786300049`;
//! - `h̃ = tanh(R_c (r ∘ 0) + 1) = tanh(1) = 0.7615941559557649`;
//! - `h₁ = u·0 + (1 − u)·h̃ = 0.2689414213699951 · 0.7615941559557649 = 0.20482421480982513`
//!   for **both** units: `h₁ = [0.2048242148, 0.2048242148]`.
//!
//! Dense reading, all five steps, `h_t = [a_t, a_t]`: `a = 0.20482421480982513,
//! 0.2689666367201794, 0.2895705793271849, 0.29678597453296074, 0.2993933260784342`.
//!
//! # Where the article's arithmetic slips
//! 1. **Update gate.** It writes `σ([0,0]·[1,2] + 0) = σ([0,0] + [0,2]) = σ([0,2]) =
//!    1/(1+e^{−2}) ≈ 0.866`.
//!    - It uses `x = 2`, the *second* element of the sequence; the first step's input is
//!      `x₁ = 1`.
//!    - `[0,0]·[1,2]` is not how the concatenation works: `[h₀, x₁] = [0, 0, 1]` is one vector,
//!      and `W_u·[h₀, x₁]` is one number per unit, not the vector `[0, 2]`; "σ([0, 2])" then
//!      silently keeps only the second component.
//!    - Even on its own terms, `1/(1+e^{−2}) = σ(2) = 0.8807970780`, not 0.866
//!      (`σ(x) = 0.866` needs `x ≈ 1.866`).
//!    - Correct: `u = σ(1) = 0.7310585786`.
//! 2. **Reset gate.** `σ([0,0]·[1,3] + 0) = σ([0,3]) = 1/(1+e^{−3}) ≈ 0.941`: now it uses
//!    `x = 3`, the *third* element, with the same vector mix-up; `σ(3) = 0.9525741268`, not
//!    0.941. Correct: `r = σ(1) = 0.7310585786`.
//! 3. **Candidate.** `tanh([0.941·[0,0], 1·[1,3]] + 0) = tanh([1,3]) =
//!    (e³ − e^{−3})/(e³ + e^{−3}) ≈ 0.999`: the input is again `[1, 3]` (neither `x₁` alone nor
//!    a sum), and `tanh(3) = 0.9950547537`, not 0.999 (`tanh(x) = 0.999` needs `x ≈ 3.80`).
//!    Correct: `h̃ = tanh(1) = 0.7615941560` for both units.
//! 4. **New state.** `0.866∘[0,0] + (1 − 0.866)∘[0.999, 0] = [0.134, 0]`: the candidate
//!    becomes the vector `[0.999, 0]`, so the second unit gets 0. Both units have the same
//!    weights, the same state and the same input, so they must be equal; `[x, 0]` is impossible
//!    under either reading. `(1 − 0.866)·0.999 = 0.133866 ≈ 0.134` is right for its own
//!    numbers, but with its own inputs computed correctly (`σ(2)`, `tanh(3)`) it would be
//!    `(1 − 0.8807970780)·0.9950547537 = 0.1186134342`. Correct: `h₁ = [0.2048242148,
//!    0.2048242148]`.
//! 5. It then says the GRU computation of the sequence is complete, after one of five steps.
//!
//! [`article_slips_are_slips`] checks each of these claims numerically.

use crate::common;

use common::{assert_close, each_gpu_config, gpu, tolerance};
use gru_wgpu::{cpu, Convention, GruInput, GruModel, GruOutput, GruWeights, Tolerance};

/// The article's input sequence.
const SEQUENCE: [f64; 5] = [1.0, 2.0, 3.0, 4.0, 5.0];

/// σ(1), tanh(1), and so on, to full f64 precision (checked below against `f64::exp`/`tanh`).
const SIGMOID_1: f64 = 0.7310585786300049;
const SIGMOID_2: f64 = 0.8807970779778823;
const SIGMOID_3: f64 = 0.9525741268224334;
const TANH_1: f64 = 0.7615941559557649;
const TANH_3: f64 = 0.9950547536867305;

/// The correct first state, both units: `(1 − σ(1))·tanh(1)`.
const H1: f64 = 0.20482421480982513;

/// Each unit's state after steps 1..=5 under the dense reading (both units are equal).
const DENSE_STATES: [f64; 5] = [
    0.20482421480982513,
    0.2689666367201794,
    0.2895705793271849,
    0.29678597453296074,
    0.2993933260784342,
];

/// Each unit's state after steps 1..=5 under the diagonal reading (both units are equal).
const DIAGONAL_STATES: [f64; 5] = [
    0.20482421480982513,
    0.28131542791845415,
    0.3072403353352004,
    0.3164433750879784,
    0.3197831292180867,
];

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// A gate's weights in the article's form: one row per unit over `[h_{t−1}(0), h_{t−1}(1), x_t]`,
/// and a bias per unit.
#[derive(Clone, Copy, Debug)]
struct ArticleGate {
    w: [[f64; 3]; 2],
    b: [f64; 2],
}

/// The three gates of the article: update `u`, reset `r`, candidate `c`.
#[derive(Clone, Copy, Debug)]
struct ArticleGru {
    u: ArticleGate,
    r: ArticleGate,
    c: ArticleGate,
}

/// Every weight 1, every bias 0: each unit's row over `[h_{t−1}, x_t]` is `[1, 1, 1]`.
fn article_dense() -> ArticleGru {
    let g = ArticleGate {
        w: [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]],
        b: [0.0, 0.0],
    };
    ArticleGru { u: g, r: g, c: g }
}

/// Weight 1 on the unit's own previous state and 1 on the input, bias 0.
fn article_diagonal() -> ArticleGru {
    let g = ArticleGate {
        w: [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]],
        b: [0.0, 0.0],
    };
    ArticleGru { u: g, r: g, c: g }
}

/// `W·v + b` for one unit's row over the 3-vector `v`.
fn affine(g: &ArticleGate, unit: usize, v: [f64; 3]) -> f64 {
    g.w[unit][0] * v[0] + g.w[unit][1] * v[1] + g.w[unit][2] * v[2] + g.b[unit]
}

/// The article's formulas, literally, in f64: returns `h_1 … h_T`.
fn article_forward(m: &ArticleGru, xs: &[f64]) -> Vec<[f64; 2]> {
    let mut h = [0.0f64; 2];
    let mut states = Vec::new();
    for &x in xs {
        let hx = [h[0], h[1], x];
        let u = [affine(&m.u, 0, hx), affine(&m.u, 1, hx)].map(sigmoid);
        let r = [affine(&m.r, 0, hx), affine(&m.r, 1, hx)].map(sigmoid);
        let rhx = [r[0] * h[0], r[1] * h[1], x];
        let c = [affine(&m.c, 0, rhx), affine(&m.c, 1, rhx)].map(f64::tanh);
        h = [
            u[0] * h[0] + (1.0 - u[0]) * c[0],
            u[1] * h[1] + (1.0 - u[1]) * c[1],
        ];
        states.push(h);
    }
    states
}

/// The article's weights in ONNX layout: gate order z (= the article's update gate `u`), r, h
/// (= its candidate `c`); `W[3H, I]` takes column 2 (the `x` column) of each row, `R[3H, H]`
/// columns 0..2 (the `h` columns), `B = [b_u, b_r, b_c, 0, 0, 0]` (the article has one bias per
/// gate, the recurrent biases are 0).
fn to_onnx(m: &ArticleGru) -> GruWeights {
    let gates = [m.u, m.r, m.c];
    let mut w = Vec::new();
    let mut r = Vec::new();
    let mut b = Vec::new();
    for g in &gates {
        for unit in 0..2 {
            w.push(g.w[unit][2] as f32);
            r.push(g.w[unit][0] as f32);
            r.push(g.w[unit][1] as f32);
            b.push(g.b[unit] as f32);
        }
    }
    b.extend([0.0f32; 6]);
    GruWeights::new(Convention::ResetBefore, 1, 2, w, r, Some(b)).expect("article weights")
}

/// Runs the first `steps` elements of the sequence on the CPU reference and the GPU (every
/// storage type and kernel variant); each result with the tolerance it is held to (f16
/// storage: onnxruntime's f16 rule against the exact states).
fn run_library(weights: &GruWeights, steps: usize) -> Vec<(String, GruOutput, Tolerance)> {
    let x: Vec<f32> = SEQUENCE[..steps].iter().map(|&v| v as f32).collect();
    let input = GruInput::new(&x, steps, 1);
    let mut out = vec![(
        "CPU reference".to_string(),
        cpu::forward(weights, &input).expect("cpu forward"),
        Tolerance::F32,
    )];
    if let Some(ctx) = gpu() {
        let model = GruModel::single(weights.clone());
        each_gpu_config(ctx, &model, |dtype, variant, gpu| {
            out.push((
                format!("GPU {dtype:?} {variant} ({})", ctx.describe()),
                gpu.forward(&input).expect("gpu forward"),
                tolerance(dtype),
            ));
        });
    }
    out
}

fn check_library(reading: &str, m: &ArticleGru, expected_states: &[f64], steps: usize) {
    let weights = to_onnx(m);
    // Y[T, B=1, H=2]: both units equal.
    let expected: Vec<f32> = expected_states[..steps]
        .iter()
        .flat_map(|&a| [a as f32, a as f32])
        .collect();
    for (path, got, tol) in run_library(&weights, steps) {
        let context = format!("seed article §4.3, {reading} reading, {steps} step(s), {path}");
        assert_close(
            &format!("Y[T={steps}, B=1, H=2] of {context}"),
            &got.y,
            &expected,
            tol,
        );
        assert_close(
            &format!("Y_h[B=1, H=2] of {context}"),
            &got.y_h,
            &expected[expected.len() - 2..],
            tol,
        );
    }
}

/// The constants above are what `f64::exp`/`tanh` give, and the literal formulas reproduce the
/// listed states: the expected values of the library checks are not copied from anywhere.
#[test]
fn reference_arithmetic_is_right() {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-15;
    assert!(close(sigmoid(1.0), SIGMOID_1));
    assert!(close(sigmoid(2.0), SIGMOID_2));
    assert!(close(sigmoid(3.0), SIGMOID_3));
    assert!(close(1.0f64.tanh(), TANH_1));
    assert!(close(3.0f64.tanh(), TANH_3));
    // First step written out: u = r = σ(1), h̃ = tanh(1·(r·0) + 1·(r·0) + 1·1), h = (1 − u)·h̃.
    assert!(close((1.0 - SIGMOID_1) * TANH_1, H1));

    for (reading, m, states) in [
        ("dense", article_dense(), DENSE_STATES),
        ("diagonal", article_diagonal(), DIAGONAL_STATES),
    ] {
        let got = article_forward(&m, &SEQUENCE);
        for (t, (h, &a)) in got.iter().zip(&states).enumerate() {
            assert!(
                close(h[0], a) && close(h[1], a),
                "{reading} reading, step {}: got {h:?}, expected [{a}, {a}]",
                t + 1
            );
        }
    }
}

/// `to_onnx` puts each article weight where the ONNX layout wants it.
#[test]
fn article_weights_in_onnx_layout() {
    let dense = to_onnx(&article_dense());
    assert_eq!(dense.convention(), Convention::ResetBefore);
    assert_eq!((dense.input_size(), dense.hidden_size()), (1, 2));
    assert_eq!(dense.w(), &[1.0; 6]);
    assert_eq!(dense.r(), &[1.0; 12]);
    assert_eq!(dense.b(), &[0.0; 12]);
    let diagonal = to_onnx(&article_diagonal());
    assert_eq!(diagonal.w(), &[1.0; 6]);
    // R[3H, H]: each gate's [H, H] block is the identity.
    assert_eq!(
        diagonal.r(),
        &[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    );
}

/// The first step, x₁ = 1: `h₁ = [0.2048242148, 0.2048242148]` on the CPU and the GPU.
#[test]
fn first_step() {
    check_library("dense", &article_dense(), &DENSE_STATES, 1);
    check_library("diagonal", &article_diagonal(), &DIAGONAL_STATES, 1);
}

/// All five steps of `[1, 2, 3, 4, 5]`, every `Y[t]` and `Y_h`, on the CPU and the GPU.
#[test]
fn all_five_steps() {
    check_library("dense", &article_dense(), &DENSE_STATES, 5);
    check_library("diagonal", &article_diagonal(), &DIAGONAL_STATES, 5);
}

/// Each number the article prints in §4.3, against what its own expressions evaluate to and
/// against the correct first step.
#[test]
fn article_slips_are_slips() {
    // The article prints three decimals: a claim is wrong when it is not the true value
    // rounded to three decimals, i.e. more than half a unit of the last digit away.
    let off = |claimed: f64, actual: f64| (claimed - actual).abs() > 5e-4;
    // "1/(1+e^{-2}) ≈ 0.866": σ(2) is 0.8808.
    assert!(off(0.866, sigmoid(2.0)));
    // "1/(1+e^{-3}) ≈ 0.941": σ(3) is 0.9526.
    assert!(off(0.941, sigmoid(3.0)));
    // "(e^3 − e^{-3})/(e^3 + e^{-3}) ≈ 0.999": tanh(3) is 0.9951.
    assert!(off(0.999, 3.0f64.tanh()));
    // Its gates used x = 2 and x = 3; the first step's input is 1: u = r = σ(1) = 0.7311.
    assert!(off(0.866, SIGMOID_1) && off(0.941, SIGMOID_1));
    // Its candidate used [1, 3]; the correct one is tanh(1) = 0.7616.
    assert!(off(0.999, TANH_1));
    // "[0.134, 0]": the correct state is [0.2048, 0.2048], and the library agrees.
    let claimed = [0.134f32, 0.0];
    for (path, got, tol) in run_library(&to_onnx(&article_dense()), 1) {
        let c = tol.compare(&got.y_h, &claimed);
        assert!(
            !c.passed(),
            "{path} reproduces the article's [0.134, 0]: {:?}",
            got.y_h
        );
        assert_close(
            &format!("h₁ of {path}"),
            &got.y_h,
            &[H1 as f32, H1 as f32],
            tol,
        );
    }
    // Its own numbers, computed correctly, would give (1 − σ(2))·tanh(3) = 0.1186, not 0.134.
    assert!((((1.0 - SIGMOID_2) * TANH_3) - 0.1186134342).abs() < 1e-9);
    assert!(off(0.134, (1.0 - SIGMOID_2) * TANH_3));
}
