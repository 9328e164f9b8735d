//! Seeded property tests over shapes, conventions, directions, layers, lengths, layouts,
//! output styles and clip, on the CPU reference and the GPU:
//!
//! - the GPU equals the CPU within onnxruntime's f32 tolerance `|a−e| ≤ 1e-5 + 1e-4·|e|`;
//! - a forward run in two chunks, steps `[0, t1)` then `[t1, T)` with the first chunk's `Y_h`
//!   as the second's `initial_h`, equals the whole run, bit for bit (on each device);
//! - a reverse network on the time-reversed input equals the forward network on the input,
//!   with `Y` reversed in time (full lengths), bit for bit on the CPU and within tolerance on
//!   the GPU.
//!
//! The runner's seed is fixed and the case counts small (shapes up to T = 7, B = 4, I = 5,
//! H = 9), so the file is deterministic and runs in seconds on lavapipe. A failure prints the
//! runner's seed, the minimal failing problem (its own data seed and every size), and for a
//! numeric mismatch the worst index, got, expected and the tolerance.

mod common;

use common::{gpu, kernel_paths, random_weights, Rng};
use gru_wgpu::gpu::GpuGru;
use gru_wgpu::{
    cpu, Convention, Direction, GruInput, GruModel, GruOutput, Layout, OutputStyle, Tolerance,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// The runner's seed (ChaCha), printed with every failure.
const SEED: [u8; 32] = *b"gru-wgpu proptest_props seed 001";

fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        max_shrink_iters: 64,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED))
}

/// Runs `test` over `strategy`; a failure panics with the seed and the minimal case.
fn check<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner(cases).run(&strategy, test) {
        panic!(
            "{name}: {e}\n(runner seed {:?}, ChaCha, {cases} cases)",
            String::from_utf8_lossy(&SEED)
        );
    }
}

/// One randomly shaped problem; its arrays come from `seed` (SplitMix64).
#[derive(Clone, Debug)]
struct Problem {
    seed: u64,
    convention: Convention,
    direction: Direction,
    layers: usize,
    t: usize,
    b: usize,
    i: usize,
    h: usize,
    layout: Layout,
    style: OutputStyle,
    initial_h: bool,
    lens: Option<Vec<i64>>,
    clip: Option<f32>,
    /// Multiplies the usual 1/√H weight range (large values saturate the gates).
    scale: f32,
    /// Which of [`kernel_paths`]`(h)` the GPU takes.
    path: usize,
}

/// The arrays of a [`Problem`].
struct Data {
    model: GruModel,
    x: Vec<f32>,
    h0: Vec<f32>,
}

impl Problem {
    fn data(&self) -> Data {
        let mut rng = Rng::new(self.seed);
        let d = self.direction.num_directions();
        let layers = (0..self.layers)
            .map(|l| {
                let input = if l == 0 { self.i } else { d * self.h };
                (0..d)
                    .map(|_| {
                        random_weights(&mut rng, self.convention, input, self.h, self.scale, true)
                    })
                    .collect()
            })
            .collect();
        let model = GruModel::new(self.direction, layers, self.clip).expect("valid model");
        let x = rng.vec(self.t * self.b * self.i, 1.0);
        let h0 = rng.vec(self.layers * d * self.b * self.h, 1.0);
        Data { model, x, h0 }
    }

    fn input<'a>(&'a self, data: &'a Data) -> GruInput<'a> {
        let h0 = self.initial_h.then_some(data.h0.as_slice());
        self.input_of(&data.x, self.t, h0, self.lens.as_deref())
    }

    /// An input of `t` steps in the problem's layout and style.
    fn input_of<'a>(
        &self,
        x: &'a [f32],
        t: usize,
        h0: Option<&'a [f32]>,
        lens: Option<&'a [i64]>,
    ) -> GruInput<'a> {
        let mut input = GruInput::new(x, t, self.b)
            .with_layout(self.layout)
            .with_style(self.style);
        if let Some(h0) = h0 {
            input = input.with_initial_h(h0);
        }
        if let Some(l) = lens {
            input = input.with_sequence_lens(l);
        }
        input
    }

    /// The same problem with another direction and no lengths.
    fn with_direction(&self, direction: Direction) -> Problem {
        Problem {
            direction,
            lens: None,
            ..self.clone()
        }
    }
}

fn conventions() -> impl Strategy<Value = Convention> {
    prop_oneof![Just(Convention::ResetAfter), Just(Convention::ResetBefore)]
}

fn layouts() -> impl Strategy<Value = Layout> {
    prop_oneof![Just(Layout::SequenceMajor), Just(Layout::BatchMajor)]
}

fn styles() -> impl Strategy<Value = OutputStyle> {
    prop_oneof![Just(OutputStyle::Onnx), Just(OutputStyle::PyTorch)]
}

/// Problems with the given directions; `lengths` allows per-entry lengths, `min_t` the
/// shortest sequence.
fn problems(
    directions: impl Strategy<Value = Direction>,
    lengths: bool,
    min_t: usize,
) -> impl Strategy<Value = Problem> {
    let shape = (
        1..=2usize,
        min_t..=7usize,
        1..=4usize,
        1..=5usize,
        1..=9usize,
    );
    let options = (
        any::<u64>(),
        conventions(),
        directions,
        layouts(),
        styles(),
        any::<bool>(),
        prop_oneof![3 => Just(None), 1 => (0.25f32..4.0).prop_map(Some)],
        prop_oneof![3 => Just(1.0f32), 1 => 2.0f32..8.0],
        0..2usize,
    );
    (shape, options).prop_flat_map(
        move |(
            (layers, t, b, i, h),
            (seed, convention, direction, layout, style, initial_h, clip, scale, path),
        )| {
            let lens = if lengths {
                proptest::option::of(proptest::collection::vec(0..=t as i64, b)).boxed()
            } else {
                Just(None).boxed()
            };
            lens.prop_map(move |lens| Problem {
                seed,
                convention,
                direction,
                layers,
                t,
                b,
                i,
                h,
                layout,
                style,
                initial_h,
                lens,
                clip,
                scale,
                path,
            })
        },
    )
}

fn any_direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::Forward),
        Just(Direction::Reverse),
        Just(Direction::Bidirectional)
    ]
}

/// A GPU model on the problem's kernel path, or `None` when the GPU is skipped explicitly.
fn gpu_model(p: &Problem, model: &GruModel) -> Option<GpuGru> {
    let ctx = gpu()?;
    let mut g = GpuGru::from_model(ctx, model).expect("gpu model");
    g.set_poison(Some(f32::NAN));
    let paths = kernel_paths(p.h);
    g.set_kernel_path(Some(paths[p.path % paths.len()]))
        .expect("kernel path");
    Some(g)
}

/// Within tolerance, or a failure naming the output, its shape, the worst index, got,
/// expected and the tolerance.
fn close(what: &str, shape: &[usize], got: &[f32], expected: &[f32]) -> Result<(), TestCaseError> {
    let c = Tolerance::F32.compare(got, expected);
    if c.passed() {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!("{what} {shape:?}: {c}")))
    }
}

/// Bit for bit (NaN included), or a failure naming the first differing index.
fn identical(
    what: &str,
    shape: &[usize],
    got: &[f32],
    expected: &[f32],
) -> Result<(), TestCaseError> {
    if got.len() != expected.len() {
        return Err(TestCaseError::fail(format!(
            "{what} {shape:?}: {} elements, expected {}",
            got.len(),
            expected.len()
        )));
    }
    match got
        .iter()
        .zip(expected)
        .position(|(a, e)| a.to_bits() != e.to_bits())
    {
        None => Ok(()),
        Some(k) => Err(TestCaseError::fail(format!(
            "{what} {shape:?}: index {k}: got {:e}, expected {:e} (bit for bit)",
            got[k], expected[k]
        ))),
    }
}

fn compare_outputs(
    label: &str,
    got: &GruOutput,
    expected: &GruOutput,
    exact: bool,
) -> Result<(), TestCaseError> {
    let f = if exact { identical } else { close };
    f(
        &format!("{label}: Y"),
        &expected.dims.y_shape(),
        &got.y,
        &expected.y,
    )?;
    f(
        &format!("{label}: Y_h"),
        &expected.dims.state_shape(),
        &got.y_h,
        &expected.y_h,
    )
}

// ---------------------------------------------------------------------------------------------
// Time-axis helpers for both layouts

/// Steps `[t0, t1)` of a `[T, B, w]` (sequence-major) or `[B, T, w]` (batch-major) array.
fn steps(v: &[f32], layout: Layout, t: usize, b: usize, range: std::ops::Range<usize>) -> Vec<f32> {
    let w = v.len() / (t * b).max(1);
    match layout {
        Layout::SequenceMajor => v[range.start * b * w..range.end * b * w].to_vec(),
        Layout::BatchMajor => (0..b)
            .flat_map(|bb| v[(bb * t + range.start) * w..(bb * t + range.end) * w].to_vec())
            .collect(),
    }
}

/// Two outputs of `t1` and `t2` steps joined along the time axis.
fn join(a: &[f32], c: &[f32], layout: Layout, t1: usize, t2: usize, b: usize) -> Vec<f32> {
    match layout {
        Layout::SequenceMajor => [a, c].concat(),
        Layout::BatchMajor => {
            let w = a.len() / (t1 * b).max(1);
            (0..b)
                .flat_map(|bb| {
                    let first = &a[bb * t1 * w..(bb + 1) * t1 * w];
                    let second = &c[bb * t2 * w..(bb + 1) * t2 * w];
                    [first, second].concat()
                })
                .collect()
        }
    }
}

/// An array reversed along its time axis (`T` steps, `B` entries).
fn reversed(v: &[f32], layout: Layout, t: usize, b: usize) -> Vec<f32> {
    let w = v.len() / (t * b).max(1);
    let mut out = Vec::with_capacity(v.len());
    match layout {
        Layout::SequenceMajor => {
            for tt in (0..t).rev() {
                out.extend_from_slice(&v[tt * b * w..(tt + 1) * b * w]);
            }
        }
        Layout::BatchMajor => {
            for bb in 0..b {
                for tt in (0..t).rev() {
                    out.extend_from_slice(&v[(bb * t + tt) * w..(bb * t + tt + 1) * w]);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Properties

#[test]
fn gpu_equals_cpu() {
    if gpu().is_none() {
        return;
    }
    check("GPU = CPU", 40, problems(any_direction(), true, 1), |p| {
        let data = p.data();
        let input = p.input(&data);
        let expected = cpu::forward_model(&data.model, &input).expect("cpu");
        let mut g = gpu_model(&p, &data.model).expect("gpu");
        let got = g.forward(&input).expect("gpu forward");
        let label = format!("GPU {:?} vs CPU", g.kernel_path(p.b));
        compare_outputs(&label, &got, &expected, false)
    });
}

#[test]
fn chunked_equals_whole() {
    let forward = Just(Direction::Forward);
    check(
        "chunks = whole",
        24,
        (problems(forward, false, 2), any::<u16>()),
        |(p, cut)| {
            let t1 = 1 + cut as usize % (p.t - 1);
            let t2 = p.t - t1;
            let data = p.data();
            let whole_input = p.input(&data);
            let x1 = steps(&data.x, p.layout, p.t, p.b, 0..t1);
            let x2 = steps(&data.x, p.layout, p.t, p.b, t1..p.t);

            // Runs `forward` on the whole and on the two chunks; compares bit for bit.
            let check_device = |label: &str,
                                forward: &mut dyn FnMut(&GruInput<'_>) -> GruOutput|
             -> Result<(), TestCaseError> {
                let whole = forward(&whole_input);
                let h0 = p.initial_h.then_some(data.h0.as_slice());
                let first = forward(&p.input_of(&x1, t1, h0, None));
                let second = forward(&p.input_of(&x2, t2, Some(&first.y_h), None));
                let joined = GruOutput {
                    y: join(&first.y, &second.y, p.layout, t1, t2, p.b),
                    y_h: second.y_h,
                    dims: whole.dims,
                };
                compare_outputs(
                    &format!("{label}: chunks [0, {t1}) + [{t1}, {})", p.t),
                    &joined,
                    &whole,
                    true,
                )
            };
            check_device("CPU", &mut |input| {
                cpu::forward_model(&data.model, input).expect("cpu")
            })?;
            if let Some(mut g) = gpu_model(&p, &data.model) {
                check_device("GPU", &mut |input| g.forward(input).expect("gpu"))?;
            }
            Ok(())
        },
    );
}

#[test]
fn reverse_of_time_reversed_equals_forward() {
    let forward = Just(Direction::Forward);
    check(
        "reverse(reversed X) = forward",
        24,
        (problems(forward, false, 1), any::<bool>()),
        |(p, full_lens)| {
            let data = p.data();
            // The same weights read backwards: a reverse network of the forward one's layers.
            let backwards = GruModel::new(
                Direction::Reverse,
                data.model.layers().to_vec(),
                data.model.clip(),
            )
            .expect("reverse model");
            let rev = p.with_direction(Direction::Reverse);
            let x_rev = reversed(&data.x, p.layout, p.t, p.b);
            // Full lengths, given explicitly or not.
            let lens = vec![p.t as i64; p.b];
            let h0 = p.initial_h.then_some(data.h0.as_slice());
            let lens = full_lens.then_some(lens.as_slice());
            let fwd_cpu = cpu::forward_model(&data.model, &p.input_of(&data.x, p.t, h0, lens))
                .expect("cpu forward");
            let undo = |out: GruOutput| GruOutput {
                y: reversed(&out.y, p.layout, p.t, p.b),
                ..out
            };
            let rev_cpu = undo(
                cpu::forward_model(&backwards, &p.input_of(&x_rev, p.t, h0, lens))
                    .expect("cpu reverse"),
            );
            compare_outputs("CPU reverse vs forward", &rev_cpu, &fwd_cpu, true)?;
            if let Some(mut g) = gpu_model(&rev, &backwards) {
                let rev_gpu = undo(
                    g.forward(&p.input_of(&x_rev, p.t, h0, lens))
                        .expect("gpu reverse"),
                );
                compare_outputs("GPU reverse vs CPU forward", &rev_gpu, &fwd_cpu, false)?;
            }
            Ok(())
        },
    );
}
