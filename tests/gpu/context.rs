//! The GPU context: adapter choice, shared devices, device limits as typed errors, problems
//! beyond one binding split into pieces, and the largest sizes the foundation promises (H = 2048, B = 256).

use crate::common;

use common::{
    assert_close, gpu, own_device, random_weights, round_model, round_vec, tolerance, variants, Rng,
};
use gru_wgpu::gpu::{
    ContextOptions, Feed, GpuContext, GpuGru, GruSession, KernelPath, ModelOptions, StepKernel,
};
use gru_wgpu::{
    cpu, Convention, Direction, GruError, GruInput, GruModel, Layout, OutputStyle, Tolerance,
};

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
    let small = own_device(
        ctx,
        ContextOptions {
            limits: Some(limits),
            ..ContextOptions::default()
        },
        "device with lowered limits",
    );
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
    let downlevel = own_device(
        ctx,
        ContextOptions {
            limits: Some(wgpu::Limits::downlevel_defaults()),
            ..ContextOptions::default()
        },
        "downlevel device",
    );
    let small_weights = random_weights(&mut rng, Convention::ResetAfter, 2, 2, 1.0, true);
    let err = GpuGru::new(&downlevel, &small_weights).unwrap_err();
    assert!(
        err.to_string()
            .contains("max_storage_buffers_per_shader_stage"),
        "{err}"
    );
    // A problem that fits runs, and is right.
    let weights = random_weights(&mut rng, Convention::ResetBefore, 2, 8, 1.0, true);
    let mut model = GpuGru::new(&small, &weights).expect("small model fits");
    let x = rng.vec(5 * 4 * 2, 1.0);
    let input = GruInput::new(&x, 5, 4);
    let got = model.forward(&input).expect("fits");
    let expected = cpu::forward(&weights, &input).expect("cpu");
    assert_close("within lowered limits", &got.y, &expected.y, Tolerance::F32);
    assert_eq!(model.stats().split_forwards, 0);
}

/// Problems larger than one storage binding, or with more entries than the step kernels'
/// workgroups can cover, run in pieces (over the batch, and over time for forward-only
/// networks) on a device whose limits are lowered to 4 KiB per binding and 2 workgroups per
/// dimension: equal to the CPU reference, in both dtypes where available. A reverse network
/// whose single entry is beyond a binding is a typed error.
#[test]
fn beyond_one_binding_the_work_is_split() {
    let Some(ctx) = gpu() else { return };
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: 4096,
        max_buffer_size: 1 << 20,
        max_compute_workgroups_per_dimension: 2,
        ..wgpu::Limits::default()
    };
    let small = own_device(
        ctx,
        ContextOptions {
            limits: Some(limits),
            ..ContextOptions::default()
        },
        "device with lowered limits",
    );
    let dtypes = common::dtypes(&small);
    let mut rng = Rng::new(36);
    struct Case {
        what: &'static str,
        direction: Direction,
        layers: usize,
        t: usize,
        b: usize,
        lens: bool,
        h0: bool,
        layout: Layout,
        style: OutputStyle,
    }
    let case = |what, direction, layers, t, b| Case {
        what,
        direction,
        layers,
        t,
        b,
        lens: false,
        h0: false,
        layout: Layout::SequenceMajor,
        style: OutputStyle::Onnx,
    };
    let cases = [
        // Y [100, 4, 8] = 12800 bytes: over time, 10 steps per piece.
        case("over time", Direction::Forward, 1, 100, 4),
        Case {
            lens: true,
            h0: true,
            layout: Layout::BatchMajor,
            style: OutputStyle::PyTorch,
            ..case(
                "over time and batch, lengths, h0, batch-major",
                Direction::Forward,
                2,
                37,
                11,
            )
        },
        // 9 entries > 2 workgroups × 4 entries: over the batch.
        Case {
            lens: true,
            h0: true,
            ..case(
                "bidirectional over the batch",
                Direction::Bidirectional,
                2,
                9,
                9,
            )
        },
        case("reverse over the batch", Direction::Reverse, 1, 12, 13),
        // State [20, B, 8]: 640 bytes per entry (320 in f16).
        case("20 layers over the batch", Direction::Forward, 20, 2, 14),
    ];
    for c in &cases {
        for convention in [Convention::ResetAfter, Convention::ResetBefore] {
            let d = c.direction.num_directions();
            let (i, h) = (3, 8);
            let layers = (0..c.layers)
                .map(|l| {
                    let input = if l == 0 { i } else { d * h };
                    (0..d)
                        .map(|_| random_weights(&mut rng, convention, input, h, 1.5, true))
                        .collect()
                })
                .collect();
            let model = GruModel::new(c.direction, layers, None).expect("model");
            let x = rng.vec(c.t * c.b * i, 1.0);
            let h0 = rng.vec(c.layers * d * c.b * h, 1.0);
            let lens: Vec<i64> = (0..c.b).map(|k| ((k * 7) % (c.t + 1)) as i64).collect();
            let mut input = GruInput::new(&x, c.t, c.b)
                .with_layout(c.layout)
                .with_style(c.style);
            if c.lens {
                input = input.with_sequence_lens(&lens);
            }
            if c.h0 {
                input = input.with_initial_h(&h0);
            }
            for &dtype in &dtypes {
                let (rx, rh0) = (round_vec(&x, dtype), round_vec(&h0, dtype));
                let mut rounded = input;
                rounded.x = &rx;
                if c.h0 {
                    rounded.initial_h = Some(&rh0);
                }
                let expected =
                    cpu::forward_model(&round_model(&model, dtype), &rounded).expect("cpu");
                let options = ModelOptions {
                    dtype,
                    ..ModelOptions::default()
                };
                let mut g = GpuGru::from_model_with(&small, &model, &options).expect("gpu");
                g.set_poison(Some(f32::NAN));
                for path in variants(h) {
                    path.apply(&mut g);
                    let got = g.forward(&input).expect(c.what);
                    let context = format!("{} {convention:?} {dtype:?} {path}", c.what);
                    assert_close(
                        &format!("{context} Y"),
                        &got.y,
                        &expected.y,
                        tolerance(dtype),
                    );
                    assert_close(
                        &format!("{context} Y_h"),
                        &got.y_h,
                        &expected.y_h,
                        tolerance(dtype),
                    );
                }
                assert!(g.stats().split_forwards > 0, "{}: not split", c.what);
            }
        }
    }
    // A reverse entry of 100 steps does not fit one binding and cannot be split over time.
    let w = random_weights(&mut rng, Convention::ResetAfter, 3, 8, 1.0, true);
    let reverse = GruModel::new(Direction::Reverse, vec![vec![w]], None).expect("model");
    let mut g = GpuGru::from_model(&small, &reverse).expect("gpu");
    let x = rng.vec(100 * 3, 1.0);
    let err = g.forward(&GruInput::new(&x, 100, 1)).unwrap_err();
    assert!(
        matches!(err, GruError::DeviceLimit { .. }) && err.to_string().contains("reverse"),
        "{err}"
    );
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
    let ctx = own_device(shared, ContextOptions::default(), "own device");
    let mut rng = Rng::new(36);
    let weights = random_weights(&mut rng, Convention::ResetAfter, 3, 8, 1.0, true);
    let x = rng.vec(4 * 2 * 3, 1.0);
    let input = GruInput::new(&x, 4, 2);
    let mut model = GpuGru::new(&ctx, &weights).expect("model");
    let before = model.forward(&input).expect("forward before the loss");
    // A streaming session on the same device, mid-conversation.
    let mut session =
        GruSession::new(GpuGru::new(&ctx, &weights).expect("model"), 2).expect("session");
    let stream = session.open().expect("open");
    session
        .feed(&Feed::new(&[stream], &x[..3], 1))
        .expect("feed before the loss");

    ctx.device().destroy();
    for _ in 0..2 {
        let err = model.forward(&input).unwrap_err();
        assert!(matches!(err, GruError::DeviceLost { .. }), "{err:?}");
        assert!(err.to_string().contains("new GpuContext"), "{err}");
        let err = session.feed(&Feed::new(&[stream], &x[..3], 1)).unwrap_err();
        assert!(matches!(err, GruError::DeviceLost { .. }), "feed: {err:?}");
        let err = session.read_state(stream).unwrap_err();
        assert!(
            matches!(err, GruError::DeviceLost { .. }),
            "read_state: {err:?}"
        );
        assert!(matches!(session.open(), Err(GruError::DeviceLost { .. })));
    }
    assert!(matches!(
        GpuGru::new(&ctx, &weights),
        Err(GruError::DeviceLost { .. })
    ));

    let fresh = own_device(shared, ContextOptions::default(), "a new context");
    let after = GpuGru::new(&fresh, &weights)
        .expect("model on the new context")
        .forward(&input)
        .expect("forward after recovery");
    assert_eq!(before.y, after.y);
}

/// The context's kernel cache: the first model compiles each kernel file once per storage
/// type and creates its pipelines; a second model of the same storage type, hidden size and
/// convention on the context creates nothing and runs bit for bit like the first; another
/// hidden size creates only the pipelines whose `override` constants differ (no module);
/// sessions share the stream-state pipelines. Own device, so other tests' models do not
/// count.
#[test]
fn kernel_cache_compiles_each_kernel_once_per_context() {
    let Some(shared) = gpu() else { return };
    let ctx = own_device(shared, ContextOptions::default(), "own device");
    assert_eq!(
        ctx.kernel_stats(),
        Default::default(),
        "a new context has compiled nothing"
    );
    let mut rng = Rng::new(41);
    let weights = random_weights(&mut rng, Convention::ResetAfter, 3, 8, 1.0, true);
    let x = rng.vec(4 * 2 * 3, 1.0);
    let input = GruInput::new(&x, 4, 2);

    let mut first = GpuGru::new(&ctx, &weights).expect("first model");
    let after_first = ctx.kernel_stats();
    // input_projection, input_projection_direct, gru_step (staged), gru_step with vec4
    // state (direct, H = 8), gru_persistent, gru_split with the workgroup reduction, and with
    // the subgroup one where the device has subgroups.
    let subgroups = ctx.device().features().contains(wgpu::Features::SUBGROUP);
    assert_eq!(
        after_first.modules_compiled,
        6 + subgroups as usize,
        "{after_first:?}"
    );
    assert!(after_first.pipelines_created > 0, "{after_first:?}");
    assert_eq!(
        first.stats().pipelines_created,
        after_first.pipelines_created
    );

    let mut second = GpuGru::new(&ctx, &weights).expect("second model");
    let after_second = ctx.kernel_stats();
    assert_eq!(second.stats().pipelines_created, 0, "{after_second:?}");
    assert_eq!(after_second.modules_compiled, after_first.modules_compiled);
    assert_eq!(
        after_second.pipelines_created,
        after_first.pipelines_created
    );
    assert_eq!(
        after_second.pipeline_hits,
        after_first.pipeline_hits + after_first.pipelines_created,
        "every pipeline of the second model comes from the cache: {after_second:?}"
    );
    let (a, b) = (
        first.forward(&input).expect("forward"),
        second.forward(&input).expect("forward"),
    );
    assert_eq!(a.y, b.y, "cached pipelines compute what fresh ones do");
    assert_eq!(a.y_h, b.y_h);

    // Another hidden size: the GEMM pipelines are shared, the recurrent ones differ.
    let other = random_weights(&mut rng, Convention::ResetAfter, 3, 12, 1.0, true);
    let third = GpuGru::new(&ctx, &other).expect("H = 12 model");
    let after_third = ctx.kernel_stats();
    assert_eq!(after_third.modules_compiled, after_first.modules_compiled);
    assert!(third.stats().pipelines_created > 0);
    assert!(third.stats().pipelines_created < after_first.pipelines_created);

    // Sessions: one stream-state module, two pipelines, whatever the number of sessions.
    let one = GruSession::new(first, 2).expect("session");
    let after_one = ctx.kernel_stats();
    assert_eq!(after_one.modules_compiled, after_third.modules_compiled + 1);
    assert_eq!(
        after_one.pipelines_created,
        after_third.pipelines_created + 2
    );
    let two = GruSession::new(second, 2).expect("session");
    let after_two = ctx.kernel_stats();
    assert_eq!(after_two.modules_compiled, after_one.modules_compiled);
    assert_eq!(after_two.pipelines_created, after_one.pipelines_created);
    drop((one, two));
}

/// The split step kernel's reduction follows the device: `subgroupAdd` where the device has
/// `Features::SUBGROUP` (lavapipe's Vulkan adapter does), workgroup memory on a device made
/// without it (as a GL adapter or a driver without subgroups would be), where
/// `StepKernel::Split` falls back to the workgroup-memory kernel and compiles no subgroup
/// module. Both give the reference's numbers, and the step structure they report is the grid
/// they dispatch: H workgroups of 64 lanes per group of four entries, the loop trips of
/// `⌈H/256⌉` plus the reduction's.
#[test]
fn split_kernel_reduces_with_subgroups_where_the_device_has_them() {
    let Some(shared) = gpu() else { return };
    let adapter_has = shared
        .device()
        .features()
        .contains(wgpu::Features::SUBGROUP);
    let without = ContextOptions {
        optional_features: ContextOptions::OPTIONAL_FEATURES - wgpu::Features::SUBGROUP,
        ..ContextOptions::default()
    };
    let no_subgroups = own_device(shared, without, "device without SUBGROUP");
    assert!(!no_subgroups
        .device()
        .features()
        .contains(wgpu::Features::SUBGROUP));
    let mut rng = Rng::new(57);
    let (i, h, t, b) = (5, 300, 6, 5);
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        let weights = random_weights(&mut rng, convention, i, h, 1.0, true);
        let x = rng.vec(t * b * i, 1.0);
        let input = GruInput::new(&x, t, b);
        let expected = cpu::forward(&weights, &input).expect("cpu");
        for (ctx, subgroups) in [(shared, adapter_has), (&no_subgroups, false)] {
            let mut g = GpuGru::new(ctx, &weights).expect("gpu");
            g.set_kernel_path(Some(KernelPath::StepFused))
                .expect("step-fused");
            g.set_step_kernel(Some(StepKernel::Split));
            assert_eq!(g.split_uses_subgroups(), subgroups, "{convention:?}");
            let st = g.step_structure(b);
            let name = if subgroups {
                "split-subgroup"
            } else {
                "split-workgroup"
            };
            assert_eq!(st.kernel, name);
            assert_eq!((st.workgroups, st.invocations), (300 * 2, 300 * 2 * 64));
            let dispatches = match convention {
                Convention::ResetAfter => 1.0,
                Convention::ResetBefore => 2.0,
            };
            assert_eq!(st.dispatches_per_step, dispatches);
            let got = g.forward(&input).expect("forward");
            let what = format!("{convention:?} {name} H={h} B={b} T={t}");
            assert_close(&format!("{what} Y"), &got.y, &expected.y, Tolerance::F32);
            assert_close(
                &format!("{what} Y_h"),
                &got.y_h,
                &expected.y_h,
                Tolerance::F32,
            );
        }
    }
    let subgroup_modules = no_subgroups.kernel_stats().modules_compiled;
    let reference = own_device(shared, ContextOptions::default(), "device with SUBGROUP");
    let _ = GpuGru::new(
        &reference,
        &random_weights(&mut rng, Convention::ResetAfter, i, h, 1.0, true),
    )
    .expect("gpu");
    assert_eq!(
        reference.kernel_stats().modules_compiled,
        subgroup_modules + adapter_has as usize,
        "the subgroup module is compiled only where the device has SUBGROUP"
    );
}
