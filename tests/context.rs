//! The GPU context: adapter choice, shared devices, device limits as typed errors, and the
//! largest sizes the foundation promises (H = 2048, B = 256).

mod common;

use common::{assert_close, gpu, random_weights, Rng};
use gru_wgpu::gpu::{ContextOptions, GpuContext, GpuGru};
use gru_wgpu::{cpu, Convention, Direction, GruError, GruInput, GruModel, Tolerance};

#[test]
fn adapter_name_selects_and_unknown_name_is_a_typed_error() {
    let Some(ctx) = gpu() else { return };
    let name = ctx.adapter_info().name.clone();
    let again = GpuContext::with_options(&ContextOptions {
        adapter_name: Some(name.to_uppercase()),
        ..ContextOptions::default()
    })
    .expect("adapter by its own name (case-insensitive)");
    assert_eq!(again.adapter_info().name, name);

    let err = GpuContext::with_options(&ContextOptions {
        adapter_name: Some("no-such-adapter-xyz".into()),
        ..ContextOptions::default()
    })
    .unwrap_err();
    assert!(matches!(err, GruError::NoAdapter(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("no-such-adapter-xyz") && msg.contains(&name),
        "{msg}"
    );
}

#[test]
fn shared_device_runs_a_model() {
    let Some(ctx) = gpu() else { return };
    let shared = GpuContext::from_device(ctx.device().clone(), ctx.queue().clone());
    let mut rng = Rng::new(31);
    let weights = random_weights(&mut rng, Convention::ResetAfter, 3, 4, 1.0, true);
    let x = rng.vec(2 * 3, 1.0);
    let input = GruInput::new(&x, 2, 1);
    let got = GpuGru::new(&shared, &weights)
        .expect("model")
        .forward(&input)
        .expect("forward");
    let expected = cpu::forward(&weights, &input).expect("cpu");
    assert_close("shared device", &got.y, &expected.y, Tolerance::F32);
}

/// A device created with small limits: problems beyond them are `DeviceLimit` errors that
/// name the limit, never a wgpu panic, and problems within them still run.
#[test]
fn beyond_device_limits_is_a_typed_error() {
    let Some(ctx) = gpu() else { return };
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: 4096,
        max_buffer_size: 1 << 20,
        ..wgpu::Limits::default()
    };
    let small = GpuContext::with_options(&ContextOptions {
        adapter_name: Some(ctx.adapter_info().name.clone()),
        limits: Some(limits),
        ..ContextOptions::default()
    })
    .expect("device with lowered limits");
    let mut rng = Rng::new(32);
    // Rᵀ and Rb are 3·40·(40 + 1)·4 = 19680 bytes > 4096.
    let big = random_weights(&mut rng, Convention::ResetAfter, 2, 40, 1.0, true);
    match GpuGru::new(&small, &big) {
        Err(GruError::DeviceLimit { limit, needed, .. }) => {
            assert_eq!(limit, "max_storage_buffer_binding_size");
            assert_eq!(needed, 19680);
        }
        other => panic!("expected DeviceLimit, got {other:?}"),
    }
    // A device with too few storage bindings per stage is refused by name.
    let downlevel = GpuContext::with_options(&ContextOptions {
        adapter_name: Some(ctx.adapter_info().name.clone()),
        limits: Some(wgpu::Limits::downlevel_defaults()),
        ..ContextOptions::default()
    })
    .expect("downlevel device");
    let small_weights = random_weights(&mut rng, Convention::ResetAfter, 2, 2, 1.0, true);
    let err = GpuGru::new(&downlevel, &small_weights).unwrap_err();
    assert!(
        err.to_string()
            .contains("max_storage_buffers_per_shader_stage"),
        "{err}"
    );
    // Weights fit, but Y [T=100, B=4, H=8] = 12800 bytes does not.
    let weights = random_weights(&mut rng, Convention::ResetBefore, 2, 8, 1.0, true);
    let mut model = GpuGru::new(&small, &weights).expect("small model fits");
    let x = rng.vec(100 * 4 * 2, 1.0);
    let err = model.forward(&GruInput::new(&x, 100, 4)).unwrap_err();
    assert!(matches!(err, GruError::DeviceLimit { .. }), "{err:?}");
    assert!(
        err.to_string().contains("max_storage_buffer_binding_size"),
        "{err}"
    );
    // 20 stacked layers: X, XP and Y are small, but the state [L·D, B, H] = 20·8·8·4 = 5120
    // bytes is not: the state buffers are checked too.
    let layers = (0..20)
        .map(|_| {
            vec![random_weights(
                &mut rng,
                Convention::ResetAfter,
                8,
                8,
                1.0,
                true,
            )]
        })
        .collect();
    let deep = GruModel::new(Direction::Forward, layers, None).expect("deep model");
    let mut deep = GpuGru::from_model(&small, &deep).expect("deep model fits");
    let x8 = rng.vec(8 * 8, 1.0);
    let err = deep.forward(&GruInput::new(&x8, 1, 8)).unwrap_err();
    assert!(
        matches!(err, GruError::DeviceLimit { .. }) && err.to_string().contains("Y_h"),
        "{err:?}"
    );
    // And a problem that fits still runs, and is right.
    let input = GruInput::new(&x[..5 * 4 * 2], 5, 4);
    let got = model.forward(&input).expect("fits");
    let expected = cpu::forward(&weights, &input).expect("cpu");
    assert_close("within lowered limits", &got.y, &expected.y, Tolerance::F32);
}

/// H = 2048 (the largest hidden size the foundation promises) and B = 256.
#[test]
fn largest_promised_sizes() {
    let Some(ctx) = gpu() else { return };
    for (seed, i, h, t, b) in [
        (33, 4, 2048, 2, 2),
        (34, 5, 16, 2, 256),
        (35, 3, 2048, 1, 256),
    ] {
        for convention in [Convention::ResetAfter, Convention::ResetBefore] {
            let mut rng = Rng::new(seed);
            let weights = random_weights(&mut rng, convention, i, h, 1.0, true);
            let x = rng.vec(t * b * i, 1.0);
            let h0 = rng.vec(b * h, 1.0);
            let input = GruInput::new(&x, t, b).with_initial_h(&h0);
            let expected = cpu::forward(&weights, &input).expect("cpu");
            let mut model = GpuGru::new(ctx, &weights).expect("model");
            model.set_poison(Some(f32::NAN));
            let got = model.forward(&input).expect("gpu");
            let what = format!("{convention:?} seed={seed} [T={t}, B={b}, I={i}, H={h}]");
            assert_close(&format!("Y of {what}"), &got.y, &expected.y, Tolerance::F32);
        }
    }
}

/// A device lost mid-session (here: destroyed) makes every later forward a `DeviceLost`
/// error, never a panic or a hang; a new context and model recover.
#[test]
fn device_loss_is_a_typed_error_and_a_new_context_recovers() {
    let Some(shared) = gpu() else { return };
    let options = ContextOptions {
        adapter_name: Some(shared.adapter_info().name.clone()),
        ..ContextOptions::default()
    };
    let ctx = GpuContext::with_options(&options).expect("own device");
    let mut rng = Rng::new(36);
    let weights = random_weights(&mut rng, Convention::ResetAfter, 3, 8, 1.0, true);
    let x = rng.vec(4 * 2 * 3, 1.0);
    let input = GruInput::new(&x, 4, 2);
    let mut model = GpuGru::new(&ctx, &weights).expect("model");
    let before = model.forward(&input).expect("forward before the loss");

    ctx.device().destroy();
    for _ in 0..2 {
        let err = model.forward(&input).unwrap_err();
        assert!(matches!(err, GruError::DeviceLost { .. }), "{err:?}");
        assert!(err.to_string().contains("new GpuContext"), "{err}");
    }
    assert!(matches!(
        GpuGru::new(&ctx, &weights),
        Err(GruError::DeviceLost { .. })
    ));

    let fresh = GpuContext::with_options(&options).expect("a new context");
    let after = GpuGru::new(&fresh, &weights)
        .expect("model on the new context")
        .forward(&input)
        .expect("forward after recovery");
    assert_eq!(before.y, after.y);
}
