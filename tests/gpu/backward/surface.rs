//! What the backward promises besides its values: bitwise reproducibility, typed errors,
//! empty batches, NaN propagation, and nothing the caller passed in modified.

use super::random::{random_case, TRAIN_VARIANTS};
use crate::common::{gpu, Rng};
use gru_wgpu::gpu::{GpuGru, ModelOptions};
use gru_wgpu::{Dtype, GruError};

/// Two backwards of the same forward give the same bits (no atomics, fixed sum orders).
#[test]
fn gradients_are_bitwise_reproducible() {
    let Some(ctx) = gpu() else { return };
    let case = random_case(7);
    let data = case.data();
    let input = case.input(&data);
    let mut model = GpuGru::from_model(ctx, &data.model).expect("model");
    for v in &TRAIN_VARIANTS {
        assert!(
            v.apply(&mut model),
            "{case:?}: {} must exist for it",
            v.name
        );
        let variant = v.name;
        let (out, saved) = model.forward_train(&input).expect("forward");
        let dy = Rng::new(3).vec(out.dims.y_len(), 1.0);
        let a = model.backward(&saved, &dy, None).expect("backward");
        let (_, saved2) = model.forward_train(&input).expect("forward again");
        let b = model.backward(&saved2, &dy, None).expect("backward again");
        assert_eq!(
            bits(&a),
            bits(&b),
            "{case:?} {variant}: two backwards differ"
        );
    }
}

fn bits(g: &gru_wgpu::cpu::GruGradients) -> Vec<u64> {
    let mut v: Vec<u64> = g.dx.iter().chain(&g.dh0).map(|x| x.to_bits()).collect();
    for l in &g.layers {
        for d in l {
            v.extend(d.dw.iter().chain(&d.dr).chain(&d.db).map(|x| x.to_bits()));
        }
    }
    v
}

/// Bad input gets typed errors that say what was expected; inputs are left as they were.
#[test]
fn bad_input_is_a_typed_error() {
    let Some(ctx) = gpu() else { return };
    let case = random_case(11);
    let data = case.data();
    let input = case.input(&data);
    let mut model = GpuGru::from_model(ctx, &data.model).expect("model");
    let (out, saved) = model.forward_train(&input).expect("forward");
    let dy = vec![0.5f32; out.dims.y_len()];
    let before = dy.clone();
    match model.backward(&saved, &dy[1..], None) {
        Err(GruError::InvalidArgument { what, expected, .. }) => {
            assert_eq!(what, "dY");
            assert!(
                expected.contains(&out.dims.y_len().to_string()),
                "{expected}"
            );
        }
        other => panic!("short dY: expected InvalidArgument, got {other:?}"),
    }
    let short_h = vec![0.0f32; out.dims.state_len() + 1];
    assert!(matches!(
        model.backward(&saved, &dy, Some(&short_h)),
        Err(GruError::InvalidArgument { ref what, .. }) if what == "dY_h"
    ));
    // A Saved of another model.
    let mut other = GpuGru::from_model(ctx, &data.model).expect("model");
    match other.backward(&saved, &dy, None) {
        Err(GruError::InvalidArgument { what, .. }) => assert_eq!(what, "saved tensors"),
        r => panic!("foreign Saved: expected InvalidArgument, got {r:?}"),
    }
    assert_eq!(dy, before, "the caller's dY was modified");
    // f16 storage: training is f32.
    if ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        let opts = ModelOptions {
            dtype: Dtype::F16,
            allow_f32_fallback: false,
        };
        let mut half = GpuGru::from_model_with(ctx, &data.model, &opts).expect("f16 model");
        match half.forward_train(&input) {
            Err(GruError::InvalidArgument { what, expected, .. }) => {
                assert!(what.contains("training"), "{what}");
                assert!(expected.contains("f32"), "{expected}");
            }
            r => panic!("f16 training: expected InvalidArgument, got {r:?}"),
        }
    }
}

/// B = 0: empty outputs and zero gradients of the right shapes, no device work.
#[test]
fn empty_batch() {
    let Some(ctx) = gpu() else { return };
    let mut case = random_case(5);
    case.b = 0;
    case.lens = None;
    let data = case.data();
    let input = case.input(&data);
    let mut model = GpuGru::from_model(ctx, &data.model).expect("model");
    let (out, saved) = model.forward_train(&input).expect("forward");
    assert!(out.y.is_empty() && out.y_h.is_empty());
    let g = model.backward(&saved, &[], None).expect("backward");
    let want = gru_wgpu::cpu::backward_model(&data.model, &input, &[], None).expect("cpu");
    assert_eq!(g, want);
}

/// NaN in dY stays where the reference puts it (its entry's input gradient and the
/// weights) and nowhere else.
#[test]
fn nan_in_dy_propagates_like_the_reference() {
    let Some(ctx) = gpu() else { return };
    let mut case = random_case(2);
    case.b = 2;
    case.lens = None;
    let data = case.data();
    let input = case.input(&data);
    let mut model = GpuGru::from_model(ctx, &data.model).expect("model");
    let (out, saved) = model.forward_train(&input).expect("forward");
    let mut dy = Rng::new(9).vec(out.dims.y_len(), 1.0);
    dy[0] = f32::NAN;
    let g = model.backward(&saved, &dy, None).expect("backward");
    let want = gru_wgpu::cpu::backward_model(&data.model, &input, &dy, None).expect("cpu");
    let nan_at = |v: &[f64]| v.iter().map(|x| x.is_nan()).collect::<Vec<bool>>();
    assert_eq!(
        nan_at(&g.dx),
        nan_at(&want.dx),
        "{case:?}: NaN pattern of dX"
    );
    assert_eq!(
        nan_at(&g.dh0),
        nan_at(&want.dh0),
        "{case:?}: NaN pattern of dh0"
    );
    assert!(g.layers[0][0].dw.iter().any(|x| x.is_nan()));
}
