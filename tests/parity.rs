//! GPU vs the CPU reference on seeded random shapes, both conventions.
//! Output buffers are poisoned with NaN before every run, so an element the kernels fail to
//! write shows up as NaN and fails.

mod common;

use common::{assert_close, gpu, random_weights, Rng};
use gru_wgpu::gpu::GpuGru;
use gru_wgpu::{cpu, Convention, GruInput, Tolerance};

#[derive(Clone, Copy, Debug)]
struct Case {
    seed: u64,
    convention: Convention,
    i: usize,
    h: usize,
    t: usize,
    b: usize,
    /// Scale of weights and inputs: 1 is the usual init, large values saturate the gates.
    scale: f32,
    bias: bool,
    initial_h: bool,
}

fn run(case: Case) {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(case.seed);
    let weights = random_weights(
        &mut rng,
        case.convention,
        case.i,
        case.h,
        case.scale,
        case.bias,
    );
    let x = rng.vec(case.t * case.b * case.i, case.scale);
    let h0 = rng.vec(case.b * case.h, 1.0);
    let mut input = GruInput::new(&x, case.t, case.b);
    if case.initial_h {
        input = input.with_initial_h(&h0);
    }
    let expected = cpu::forward(&weights, &input).expect("cpu forward");
    let mut model = GpuGru::new(ctx, &weights).expect("gpu model");
    model.set_poison(Some(f32::NAN));
    let got = model.forward(&input).expect("gpu forward");
    let context = format!(
        "{case:?} [T={}, B={}, I={}, H={}]",
        case.t, case.b, case.i, case.h
    );
    assert_close(
        &format!("Y of {context}"),
        &got.y,
        &expected.y,
        Tolerance::F32,
    );
    assert_close(
        &format!("Y_h of {context}"),
        &got.y_h,
        &expected.y_h,
        Tolerance::F32,
    );
}

fn both(seed: u64, i: usize, h: usize, t: usize, b: usize, scale: f32) {
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        run(Case {
            seed,
            convention,
            i,
            h,
            t,
            b,
            scale,
            bias: seed % 3 != 0,
            initial_h: seed % 2 == 0,
        });
    }
}

#[test]
fn unit_sizes() {
    both(1, 1, 1, 1, 1, 1.0);
}

#[test]
fn smoke() {
    both(2, 3, 5, 4, 2, 1.0);
}
