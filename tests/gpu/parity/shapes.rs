//! GPU vs the CPU reference on seeded random shapes, both conventions.
//!
//! Output buffers are poisoned with NaN before every run, so an element the kernels fail to
//! write shows up as NaN and fails. Tolerance: onnxruntime's f32 rule `1e-5 + 1e-4·|e|`;
//! f16 storage (where the adapter has SHADER_F16) against the f64 reference on the same
//! f16-rounded weights and inputs, with onnxruntime's f16 rule `2.5e-3 + 1e-3·|e|`.

use crate::common;

use common::{
    each_gpu_config, gpu, random_weights, round_vec, round_weights, tolerance, PerDtype, Rng,
};
use gru_wgpu::{cpu, Convention, Direction, GruInput, GruModel};

#[derive(Clone, Copy, Debug)]
struct Case {
    seed: u64,
    i: usize,
    h: usize,
    t: usize,
    b: usize,
    /// Scale of weights and inputs: 1 is the usual init, large values saturate the gates.
    scale: f32,
    bias: bool,
    initial_h: bool,
}

impl Case {
    fn new(seed: u64, i: usize, h: usize, t: usize, b: usize, scale: f32) -> Self {
        Case {
            seed,
            i,
            h,
            t,
            b,
            scale,
            bias: !seed.is_multiple_of(3),
            initial_h: seed.is_multiple_of(2),
        }
    }
}

/// Runs one case in both conventions; returns a description of every failure.
fn run(case: Case) -> Vec<String> {
    let Some(ctx) = gpu() else {
        return Vec::new();
    };
    let mut failures = Vec::new();
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        let mut rng = Rng::new(case.seed);
        let weights = random_weights(&mut rng, convention, case.i, case.h, case.scale, case.bias);
        let x = rng.vec(case.t * case.b * case.i, case.scale);
        let h0 = rng.vec(case.b * case.h, 1.0);
        let mut input = GruInput::new(&x, case.t, case.b);
        if case.initial_h {
            input = input.with_initial_h(&h0);
        }
        // The reference runs on what the device stores: the inputs rounded to the dtype.
        let reference = |dtype| {
            let (rw, rx, rh0) = (
                round_weights(&weights, dtype),
                round_vec(&x, dtype),
                round_vec(&h0, dtype),
            );
            let mut rounded = GruInput::new(&rx, case.t, case.b);
            if case.initial_h {
                rounded = rounded.with_initial_h(&rh0);
            }
            cpu::forward(&rw, &rounded).expect("cpu forward")
        };
        let single =
            GruModel::new(Direction::Forward, vec![vec![weights.clone()]], None).expect("model");
        let mut expected = PerDtype::default();
        // Every configuration (common::configs): each dtype, path, step kernel and GEMM
        // kernel. The direct GEMM reads X four columns at a time when I is a multiple of 4
        // (I = 4, 16, 20, 64, 300 among the edge shapes) and one at a time otherwise: both
        // variants run here.
        each_gpu_config(ctx, &single, |dtype, variant, model| {
            let expected = expected.get(dtype, reference);
            let got = model.forward(&input).expect("gpu forward");
            for (name, g, e) in [("Y", &got.y, &expected.y), ("Y_h", &got.y_h, &expected.y_h)] {
                let c = tolerance(dtype).compare(g, e);
                if !c.passed() {
                    failures.push(format!(
                        "{name} of {convention:?} {dtype:?} {variant} seed={} [T={}, B={}, I={}, H={}] \
                         scale={} bias={} initial_h={}: {c}",
                        case.seed,
                        case.t,
                        case.b,
                        case.i,
                        case.h,
                        case.scale,
                        case.bias,
                        case.initial_h
                    ));
                }
            }
        });
    }
    failures
}

fn run_all(cases: &[Case]) {
    let failures: Vec<String> = cases.iter().flat_map(|&c| run(c)).collect();
    assert!(
        failures.is_empty(),
        "{} failures in {} cases (each: both conventions, every kernel path and GEMM):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Edge shapes: unit sizes, sizes just past the workgroup and tile sizes, the sizes the
/// issue names (H=257, B=67, I=300), and saturating gates.
#[test]
fn edge_shapes() {
    run_all(&[
        Case::new(1, 1, 1, 1, 1, 1.0),
        Case::new(2, 1, 8, 5, 3, 1.0),
        Case::new(3, 7, 1, 6, 2, 1.0),
        Case::new(4, 4, 6, 1, 5, 1.0),
        Case::new(5, 3, 5, 7, 1, 1.0),
        Case::new(6, 20, 257, 3, 2, 1.0),
        Case::new(7, 5, 19, 3, 67, 1.0),
        Case::new(8, 300, 24, 3, 3, 1.0),
        Case::new(9, 16, 64, 4, 4, 1.0),
        Case::new(10, 17, 65, 4, 5, 1.0),
        Case::new(11, 64, 128, 6, 8, 1.0),
        Case::new(12, 65, 63, 2, 9, 1.0),
    ]);
}

/// Weights and inputs scaled so that most pre-activations are far in the tails (|a| ≫ 10):
/// the activations saturate to exactly 0/1/±1 and must stay finite.
#[test]
fn saturating_gates() {
    run_all(&[
        Case::new(20, 6, 10, 8, 4, 30.0),
        Case::new(21, 3, 7, 5, 3, 1000.0),
        Case::new(22, 12, 33, 4, 2, 100.0),
        Case::new(23, 1, 1, 9, 1, 1e6),
    ]);
}

fn random_cases(first_seed: u64, count: u64) -> Vec<Case> {
    (first_seed..first_seed + count)
        .map(|seed| {
            let mut rng = Rng::new(seed.wrapping_mul(7919));
            let scale = [1.0, 1.0, 1.0, 4.0][rng.below(4)];
            Case::new(
                seed,
                1 + rng.below(40),
                1 + rng.below(80),
                1 + rng.below(12),
                1 + rng.below(10),
                scale,
            )
        })
        .collect()
}

#[test]
fn random_shapes_a() {
    run_all(&random_cases(100, 15));
}

#[test]
fn random_shapes_b() {
    run_all(&random_cases(200, 15));
}

/// Input widths beyond one GEMM dispatch's K range (16384): the host splits K, the first
/// dispatch adds the bias and the next adds its partial sum to XP. I = 16404 takes the direct
/// GEMM's four-column path, I = 16387 the one-column path; scale 0.1 keeps the gates out of
/// saturation, so the sum over K shows.
#[test]
fn input_width_beyond_one_gemm_dispatch() {
    run_all(&[
        Case::new(30, 16404, 5, 2, 3, 0.1),
        Case::new(31, 16387, 6, 3, 2, 0.1),
    ]);
}
