//! The async API (`*_async`), the only one on the web: on a device made with WebGPU's
//! default limits (wgpu's `Limits::default()`: 8 storage buffers per stage, 128 MiB
//! bindings, 65535 workgroups per dimension, 16 KiB of workgroup memory) and without the
//! optional features a browser's software adapter lacks (`SHADER_F16`, `SUBGROUP`), every
//! async call equals the CPU reference and the blocking call; its futures are `Send`
//! (native executors may move them between threads); nothing blocks the executor.
//!
//! Reference: the f64 CPU forward, tolerance `1e-5 + 1e-4·|e|` (onnxruntime's f32 rule).

use crate::common;

use common::{gpu, random_weights, Rng};
use gru_wgpu::gpu::{ContextOptions, Feed, GpuContext, GpuGru, GruSession, ModelOptions};
use gru_wgpu::{cpu, Convention, Direction, GruInput, GruModel, Layout, OutputStyle, Tolerance};

fn check(context: &str, got: &[f32], expected: &[f32]) {
    let c = Tolerance::F32.compare(got, expected);
    assert!(c.passed(), "{context}: {c}");
}

/// A device like a browser's WebGPU on a software adapter: default limits, no f16, no
/// subgroups.
fn web_like(shared: &GpuContext) -> GpuContext {
    let ctx = pollster::block_on(GpuContext::with_options_async(&ContextOptions {
        adapter_name: Some(shared.adapter_info().name.clone()),
        limits: Some(wgpu::Limits::default()),
        optional_features: wgpu::Features::TIMESTAMP_QUERY,
        ..ContextOptions::default()
    }))
    .expect("a device with WebGPU's default limits");
    assert!(!ctx.device().features().contains(wgpu::Features::SUBGROUP));
    ctx
}

fn network(
    rng: &mut Rng,
    convention: Convention,
    direction: Direction,
    layers: usize,
    i: usize,
    h: usize,
) -> GruModel {
    let nd = direction.num_directions();
    let layers = (0..layers)
        .map(|k| {
            let input = if k == 0 { i } else { nd * h };
            (0..nd)
                .map(|_| random_weights(rng, convention, input, h, 1.5, true))
                .collect()
        })
        .collect();
    GruModel::new(direction, layers, None).expect("valid model")
}

fn assert_send<T: Send>(_: &T) {}

/// `got` (an async forward's output) equals the reference `expected`, and the blocking
/// forward of the same model gives the same bits.
fn check_async_forward(
    what: &str,
    gpu: &mut GpuGru,
    input: &GruInput<'_>,
    got: &gru_wgpu::GruOutput,
    expected: &gru_wgpu::GruOutput,
) {
    check(&format!("{what}: Y"), &got.y, &expected.y);
    check(&format!("{what}: Y_h"), &got.y_h, &expected.y_h);
    let blocking = gpu.forward(input).expect("blocking forward");
    assert_eq!(blocking.y, got.y, "{what}: blocking and async Y differ");
    assert_eq!(
        blocking.y_h, got.y_h,
        "{what}: blocking and async Y_h differ"
    );
}

#[test]
fn async_forward_on_webgpu_default_limits_equals_the_reference() {
    let Some(shared) = gpu() else { return };
    let ctx = web_like(shared);
    let mut rng = Rng::new(1701);
    // (seed, convention, direction, layers, I, H, T, B, h0, lengths, layout, style)
    let cases = [
        (
            Convention::ResetAfter,
            Direction::Forward,
            1,
            3,
            5,
            4,
            2,
            false,
            None,
            false,
        ),
        (
            Convention::ResetBefore,
            Direction::Forward,
            2,
            4,
            7,
            6,
            3,
            true,
            None,
            false,
        ),
        (
            Convention::ResetAfter,
            Direction::Bidirectional,
            2,
            5,
            16,
            5,
            3,
            true,
            Some(vec![5i64, 0, 3]),
            true,
        ),
        (
            Convention::ResetBefore,
            Direction::Reverse,
            1,
            2,
            33,
            9,
            2,
            false,
            Some(vec![9, 4]),
            true,
        ),
        (
            Convention::ResetAfter,
            Direction::Forward,
            3,
            8,
            64,
            17,
            1,
            true,
            None,
            false,
        ),
    ];
    for (n, (convention, direction, layers, i, h, t, b, with_h0, lengths, batch_major)) in
        cases.into_iter().enumerate()
    {
        let net = network(&mut rng, convention, direction, layers, i, h);
        let x = rng.vec(t * b * i, 1.0);
        let h0 = rng.vec(layers * direction.num_directions() * b * h, 1.0);
        let mut input = GruInput::new(&x, t, b);
        if with_h0 {
            input = input.with_initial_h(&h0);
        }
        if let Some(lengths) = &lengths {
            input = input.with_sequence_lens(lengths);
        }
        if batch_major {
            input = input
                .with_layout(Layout::BatchMajor)
                .with_style(OutputStyle::PyTorch);
        }
        let what = format!(
            "case {n}: {convention:?} {direction:?} L={layers} I={i} H={h} T={t} B={b} \
             h0={with_h0} lengths={lengths:?} batch_major={batch_major}"
        );
        let options = ModelOptions::default();
        let build = GpuGru::from_model_async(&ctx, &net, &options);
        assert_send(&build);
        let mut gpu = pollster::block_on(build).unwrap_or_else(|e| panic!("{what}: {e}"));
        let expected = cpu::forward_model(&net, &input).expect("cpu");
        let fut = gpu.forward_async(&input);
        assert_send(&fut);
        let got = pollster::block_on(fut).unwrap_or_else(|e| panic!("{what}: {e}"));
        check_async_forward(&what, &mut gpu, &input, &got, &expected);
    }
}

/// Async calls from a future polled on one thread while the GPU work is waited for on
/// another: the caller's thread is never parked inside wgpu's poll, and a forward's future
/// moved to another thread completes there.
#[test]
fn async_forward_and_feed_run_from_another_thread() {
    let Some(shared) = gpu() else { return };
    let ctx = web_like(shared);
    let mut rng = Rng::new(1702);
    let net = network(
        &mut rng,
        Convention::ResetAfter,
        Direction::Forward,
        2,
        3,
        6,
    );
    let (t, b) = (7, 3);
    let x = rng.vec(t * b * 3, 1.0);
    let expected = cpu::forward_model(&net, &GruInput::new(&x, t, b)).expect("cpu");
    let got = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                pollster::block_on(async {
                    let mut gpu =
                        GpuGru::from_model_async(&ctx, &net, &ModelOptions::default()).await?;
                    gpu.forward_async(&GruInput::new(&x, t, b)).await
                })
            })
            .join()
            .expect("thread")
    })
    .expect("forward");
    check("forward on another thread: Y", &got.y, &expected.y);

    // A session fed in chunks of 3, 1 and 3 steps through the async API equals one forward
    // of stream 0's whole sequence; state_async reads its final state.
    let gpu = pollster::block_on(GpuGru::from_model_async(
        &ctx,
        &net,
        &ModelOptions::default(),
    ))
    .expect("model");
    let fed = pollster::block_on(async {
        let mut session = GruSession::new_async(gpu, 2).await?;
        let s0 = session.open_async(None).await?;
        let s1 = session.open_async(Some(&[0.25; 12])).await?;
        let mut y0 = Vec::new();
        let mut at = 0;
        for c in [3usize, 1, 3] {
            // Stream 0 gets x's entry 0, stream 1 entry 1 ([T, B, I] → [k, C, I]).
            let mut chunk = Vec::new();
            for entry in 0..2 {
                for step in at..at + c {
                    let row = (step * b + entry) * 3;
                    chunk.extend_from_slice(&x[row..row + 3]);
                }
            }
            let streams = [s0, s1];
            let feed = Feed::new(&streams, &chunk, c);
            let fut = session.feed_async(&feed);
            assert_send(&fut);
            let y = fut.await?;
            // [k, C, H]: stream 0's rows first.
            y0.extend_from_slice(&y[..c * 6]);
            at += c;
        }
        let state = session.read_state_async(s0).await?;
        session.set_state_async(s1, None).await?;
        let zero = session.read_state_async(s1).await?;
        Ok::<_, gru_wgpu::GruError>((y0, state, zero))
    })
    .expect("session");
    let x0: Vec<f32> = (0..t)
        .flat_map(|step| x[step * b * 3..step * b * 3 + 3].to_vec())
        .collect();
    let one = cpu::forward_model(&net, &GruInput::new(&x0, t, 1)).expect("cpu");
    check("async session: outputs of stream 0", &fed.0, &one.y);
    check("async session: state of stream 0", &fed.1, &one.y_h);
    assert_eq!(
        fed.2,
        vec![0.0; 12],
        "set_state_async(None) zeroes the state"
    );
}

/// Past a device limit the async forward runs in pieces exactly as the blocking one does
/// (over the batch, and over time for a forward network): on a device with 4 KiB bindings and
/// 2 workgroups per dimension, `forward_async` equals the CPU reference and the blocking
/// forward bit for bit, and the model counts the split.
#[test]
fn async_forward_splits_past_device_limits() {
    let Some(shared) = gpu() else { return };
    let small = common::own_device(
        shared,
        ContextOptions {
            limits: Some(wgpu::Limits {
                max_storage_buffer_binding_size: 4096,
                max_buffer_size: 1 << 20,
                max_compute_workgroups_per_dimension: 2,
                ..wgpu::Limits::default()
            }),
            optional_features: wgpu::Features::empty(),
            ..ContextOptions::default()
        },
        "device with lowered limits",
    );
    let mut rng = Rng::new(4096);
    for (convention, direction, layers, i, h, t, b) in [
        (Convention::ResetAfter, Direction::Forward, 2, 5, 8, 40, 9),
        (
            Convention::ResetBefore,
            Direction::Bidirectional,
            1,
            3,
            6,
            12,
            20,
        ),
    ] {
        let what = format!("{convention:?} {direction:?} L={layers} I={i} H={h} T={t} B={b}");
        let net = network(&mut rng, convention, direction, layers, i, h);
        let x = rng.vec(t * b * i, 1.0);
        let input = GruInput::new(&x, t, b);
        let expected = cpu::forward_model(&net, &input).expect("cpu");
        let mut gpu = pollster::block_on(GpuGru::from_model_async(
            &small,
            &net,
            &ModelOptions::default(),
        ))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        let got =
            pollster::block_on(gpu.forward_async(&input)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(gpu.stats().split_forwards > 0, "{what}: not split");
        check_async_forward(&what, &mut gpu, &input, &got, &expected);
    }
}
