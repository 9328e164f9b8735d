//! T = 100,000 steps at a small hidden size, on the CPU reference and on the GPU (every
//! kernel path), against the reference; no single dispatch may run for long (Windows' TDR
//! resets a GPU after 2 s): a persistent forward of exactly one dispatch's steps is timed
//! below 1 s on the GPU's own clock, and the step-fused path does one step per dispatch.

mod common;

use common::{assert_close, gpu, kernel_paths, random_weights, Rng};
use gru_wgpu::gpu::{GpuGru, KernelPath};
use gru_wgpu::{cpu, Convention, GruInput, Tolerance};

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
            } else if profiled {
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
                assert!(ns < 1e9, "{what}: one dispatch took {:.0} ms", ns / 1e6);
            }
        }
    }
}
