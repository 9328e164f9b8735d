//! Long sequences against the f64 reference.
//!
//! - T = 100,000 steps at a small hidden size, on the CPU reference and on the GPU (every
//!   kernel path). The step-fused path does one step per dispatch; the persistent path splits
//!   the sequence into dispatches of a bounded number of loop trips (the budget in
//!   src/gpu/model.rs, which also keeps any dispatch far from Windows' 2 s TDR). On lavapipe,
//!   whose loops stop silently past a cap, a dispatch beyond it gives wrong numbers from about
//!   step 22,000 on (seen by raising the budget): this test is what catches that. How long
//!   one dispatch takes is printed, not asserted (speed is measured by gru-bench).
//! - T = 3000 with the rest of the model surface: two bidirectional layers with
//!   `sequence_lens` ending early (on and off a persistent dispatch boundary, and 0),
//!   batch-major, with `initial_h`; three stacked reverse layers, sequence-major, with
//!   `initial_h`; both gate conventions. At these hidden sizes T = 3000 is 3–5 persistent
//!   dispatches, so every feature has to hand its state over from one dispatch to the next
//!   (the test fails if a case stops crossing a boundary).
//! - H = 1024 (both conventions) and H = 2048 (reset-before) over T = 64.
//!
//! The T = 3000 and large-H cases run on every variant of `common::variants` (kernel path ×
//! step kernel × GEMM kernel) and every dtype of `common::dtypes` (f16 against the reference
//! on f16-rounded weights and inputs), outputs poisoned with NaN, every element of Y and Y_h
//! within the dtype's tolerance (f32: onnxruntime's `1e-5 + 1e-4·|e|`; f16:
//! `2.5e-3 + 1e-3·|e|`), no tolerance loosened.

use crate::common;

use common::{
    assert_close, gpu, kernel_paths, random_weights, rounded_reference, unravel, NetCase, Rng,
};
use gru_wgpu::gpu::{GpuGru, KernelPath};
use gru_wgpu::{
    cpu, Convention, Direction, Dtype, GruInput, GruOutput, Layout, OutputStyle, Tolerance,
};

const T: usize = 100_000;

#[test]
fn one_hundred_thousand_steps() {
    let (i, h, b) = (4, 8, 2);
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        let mut rng = Rng::new(100);
        let weights = random_weights(&mut rng, convention, i, h, 1.5, true);
        let x = rng.vec(T * b * i, 1.0);
        let whole = cpu::forward(&weights, &GruInput::new(&x, T, b)).expect("cpu");
        // The CPU path in two pieces, the second starting from the first's Y_h: the same
        // numbers, bit for bit (the reference rounds its state to f32 every step).
        let half = T / 2;
        let first = cpu::forward(&weights, &GruInput::new(&x[..half * b * i], half, b))
            .expect("cpu first half");
        let second = cpu::forward(
            &weights,
            &GruInput::new(&x[half * b * i..], T - half, b).with_initial_h(&first.y_h),
        )
        .expect("cpu second half");
        assert_eq!(
            first.y[..],
            whole.y[..half * b * h],
            "{convention:?}: first half"
        );
        assert_eq!(
            second.y[..],
            whole.y[half * b * h..],
            "{convention:?}: second half"
        );
        assert_eq!(second.y_h, whole.y_h, "{convention:?}: Y_h");
        assert!(whole.y.iter().all(|v| v.is_finite()));

        let Some(ctx) = gpu() else { continue };
        let mut model = GpuGru::new(ctx, &weights).expect("gpu model");
        let profiled = model.set_profiling(true).is_ok();
        for path in kernel_paths(h) {
            model.set_kernel_path(Some(path)).expect("path");
            let got = model
                .forward(&GruInput::new(&x, T, b))
                .expect("gpu forward");
            let what = format!("{convention:?} {path:?} T={T} B={b} I={i} H={h}");
            assert_close(&format!("{what} Y"), &got.y, &whole.y, Tolerance::F32);
            assert_close(&format!("{what} Y_h"), &got.y_h, &whole.y_h, Tolerance::F32);
            let steps = model.steps_per_dispatch(path);
            if path == KernelPath::StepFused {
                assert_eq!(steps, 1);
            } else {
                assert!(
                    T.div_ceil(steps) >= 2,
                    "{what}: one persistent dispatch holds all {T} steps"
                );
            }
            if path == KernelPath::Persistent && profiled {
                // One dispatch's worth of steps: the recurrence is exactly one dispatch.
                let one = &x[..steps * b * i];
                model
                    .forward(&GruInput::new(one, steps, b))
                    .expect("one dispatch");
                let ns = model.last_timing().expect("timing").recurrence_ns;
                eprintln!(
                    "{what}: {} dispatches of {steps} steps; one took {:.1} ms on the GPU",
                    T.div_ceil(steps),
                    ns / 1e6
                );
            }
        }
    }
}

/// A case's seed, network and input, for failure messages.
fn describe(case: &NetCase) -> String {
    format!(
        "seed={} {:?} {:?} L={} [T={}, B={}, I={}, H={}] {:?} {:?} lens={:?} initial_h={}",
        case.seed,
        case.convention,
        case.direction,
        case.layers,
        case.t,
        case.b,
        case.i,
        case.h,
        case.layout,
        case.style,
        case.lens,
        case.initial_h
    )
}

/// Runs `case` on every GPU variant and dtype against the f64 reference (on the weights and
/// inputs rounded to the dtype), checking every element of Y and Y_h at the dtype's
/// tolerance; panics with every failure's seed, shape, variant, dtype, worst element (flat
/// and as an index of the output's shape), got, expected and tolerance.
fn check(case: &NetCase) {
    let Some(ctx) = gpu() else { return };
    let start = std::time::Instant::now();
    let data = case.data();
    let input = case.input(&data);
    let what = describe(case);
    let mut expected: Option<(Dtype, GruOutput)> = None;
    let mut failures = Vec::new();
    let mut runs = 0;
    common::each_gpu_config(ctx, &data.model, |dtype, variant, gpu| {
        if expected.as_ref().map(|(e, _)| *e) != Some(dtype) {
            // The reference runs on what the device stores: weights and inputs rounded.
            let e = rounded_reference(&data.model, &input, dtype);
            assert!(e.y.iter().chain(&e.y_h).all(|v| v.is_finite()), "{what}");
            expected = Some((dtype, e));
        }
        let (_, e) = expected.as_ref().expect("reference");
        let got = gpu
            .forward(&input)
            .unwrap_or_else(|err| panic!("{what} {dtype:?} {variant}: GPU forward: {err}"));
        runs += 1;
        let steps = gpu.steps_per_dispatch(variant.path);
        if variant.path == KernelPath::Persistent && steps >= case.t {
            // The point of these cases: the recurrence crosses persistent dispatches.
            failures.push(format!(
                "{what}, {dtype:?}, {variant}: one persistent dispatch holds all {} steps \
                 ({steps} per dispatch); the case no longer crosses a dispatch boundary",
                case.t
            ));
        }
        let tol = common::tolerance(dtype);
        for (name, g, e, shape) in [
            ("Y", &got.y, &e.y, got.dims.y_shape()),
            ("Y_h", &got.y_h, &e.y_h, got.dims.state_shape()),
        ] {
            let c = tol.compare(g, e);
            if !c.passed() {
                let at = c.worst.map(|(k, _, _)| format!("{:?}", unravel(k, &shape)));
                failures.push(format!(
                    "{name} {shape:?} of {what}, {dtype:?}, {variant} ({} dispatches of {steps} \
                     steps): {c} (worst at {})",
                    case.t.div_ceil(steps),
                    at.unwrap_or_default()
                ));
            }
        }
    });
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "{what}: {runs} GPU runs within tolerance in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// T = 3000, two bidirectional layers, batch-major (ONNX style: `initial_h` and `Y_h` are
/// `[B, L·D, H]`), an initial state for every layer and direction, and per-entry lengths: one
/// full, one ending after the first step, one ending exactly on a persistent dispatch
/// boundary of each convention (at H = 8 a dispatch is 1365 steps reset-after, 819
/// reset-before: boundaries 1365 and 1638), one mid-chunk in both, one a step short of T, and
/// one empty. The reverse direction starts each entry at its own last step, so it crosses
/// the dispatch boundaries at other places than the forward one. B = 7: two of the persistent
/// kernel's four-entry workgroups, the second partly empty.
#[test]
fn bidirectional_two_layers_with_lengths_batch_major() {
    for (seed, convention) in [
        (300, Convention::ResetAfter),
        (301, Convention::ResetBefore),
    ] {
        check(&NetCase {
            seed,
            convention,
            direction: Direction::Bidirectional,
            layers: 2,
            i: 5,
            h: 8,
            t: 3000,
            b: 7,
            layout: Layout::BatchMajor,
            style: OutputStyle::Onnx,
            clip: None,
            lens: Some(vec![3000, 1, 1365, 1638, 1700, 2999, 0]),
            initial_h: true,
            weight_scale: 1.5,
            x_scale: 1.0,
        });
    }
}

/// T = 3000, three stacked reverse layers, sequence-major, full lengths (no `sequence_lens`),
/// an initial state for every layer, PyTorch output style. H = 10 is not a multiple of 4, so
/// the direct step kernel reads the state one unit at a time here (four at a time in the
/// H = 8 case above); B = 3 leaves one of the persistent kernel's four entries empty.
#[test]
fn reverse_three_layers_sequence_major() {
    for (seed, convention) in [
        (310, Convention::ResetBefore),
        (311, Convention::ResetAfter),
    ] {
        check(&NetCase {
            seed,
            convention,
            direction: Direction::Reverse,
            layers: 3,
            i: 3,
            h: 10,
            t: 3000,
            b: 3,
            layout: Layout::SequenceMajor,
            style: OutputStyle::PyTorch,
            clip: None,
            lens: None,
            initial_h: true,
            weight_scale: 1.5,
            x_scale: 1.0,
        });
    }
}

/// A large hidden size, beyond the persistent path (the step-fused path with every step
/// kernel and both GEMMs), over T = 64 steps, B = 2, with an initial state: the step
/// kernels' loops over H and the state reads at sizes where an accumulation or indexing error
/// would show.
fn large_hidden(seed: u64, h: usize, convention: Convention) {
    check(&NetCase {
        seed,
        convention,
        direction: Direction::Forward,
        layers: 1,
        i: 4,
        h,
        t: 64,
        b: 2,
        layout: Layout::SequenceMajor,
        style: OutputStyle::Onnx,
        clip: None,
        lens: None,
        initial_h: true,
        weight_scale: 1.5,
        x_scale: 1.0,
    });
}

/// H = 1024, T = 64, both conventions.
#[test]
fn hidden_1024() {
    large_hidden(320, 1024, Convention::ResetAfter);
    large_hidden(321, 1024, Convention::ResetBefore);
}

/// H = 2048, T = 64, in one convention only (reset-before: two dispatches per step, the
/// r ⊙ h kernel too). The whole test takes ~60 s on lavapipe (2 cores) for the eight variant
/// × dtype runs: a second convention would cost this binary another minute.
#[test]
fn hidden_2048() {
    large_hidden(323, 2048, Convention::ResetBefore);
}
