//! Seeded random configurations: conventions × directions × layers × lengths (including 0) ×
//! layouts × output styles × clip × initial_h, with and without `dY_h`.

use crate::common;

use common::{gpu, rounded_reference, tolerance, NetCase, NetRanges, Rng};
use gru_wgpu::gpu::{GemmKernel, GpuGru, KernelPath, StepKernel, TrainShape};
use gru_wgpu::{cpu, Dtype};

/// Per-tensor check of gradients: `max|g − e| ≤ 1e-5 + 1e-4·max|e|`; returns a report line
/// (worst index, got, expected, bound) on failure.
pub fn compare_grad(what: &str, got: &[f64], expected: &[f64]) -> Option<String> {
    if got.len() != expected.len() {
        return Some(format!(
            "{what}: {} values, expected {}\n",
            got.len(),
            expected.len()
        ));
    }
    let scale = expected.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    let bound = 1e-5 + 1e-4 * scale;
    let mut worst = (0usize, 0.0f64);
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let err = (g - e).abs();
        if err.is_nan() || err > worst.1 {
            worst = (i, if err.is_nan() { f64::INFINITY } else { err });
        }
    }
    (worst.1 > bound).then(|| {
        format!(
            "{what}: worst index {} got {} expected {} |err| {:.3e} > bound {bound:.3e}\n",
            worst.0, got[worst.0], expected[worst.0], worst.1
        )
    })
}

/// A random case of the surface (T ≤ 12, B ≤ 6, H ≤ 24, up to 3 layers).
pub fn random_case(seed: u64) -> NetCase {
    let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xB5);
    let ranges = NetRanges {
        max_t: 12,
        max_b: 6,
        max_i: 12,
        max_h: 24,
        clip_min: 0.5,
        weight_scale: 1.5,
        x_scale: 1.0,
    };
    NetCase::random(seed, &mut rng, &ranges)
}

/// Runs `case` forward and backward on the GPU and on the CPU reference; `None` when every
/// output and gradient is within tolerance, else the report.
pub fn check_case(case: &NetCase, with_dy_h: bool) -> Option<String> {
    check_case_on(gpu()?, case, with_dy_h).1
}

/// A training kernel variant: the model's step kernel, GEMM and path choices, and the shape
/// they must give.
pub struct TrainVariant {
    pub step: StepKernel,
    pub gemm: GemmKernel,
    pub path: KernelPath,
    pub name: &'static str,
}

impl TrainVariant {
    /// Sets the variant's choices on `model`; false where the variant does not exist for it
    /// (training's persistent shape takes H ≤ 64). Panics if the model then trains in another shape.
    pub fn apply(&self, model: &mut GpuGru) -> bool {
        model.set_step_kernel(Some(self.step));
        model.set_gemm_kernel(Some(self.gemm));
        if model.set_kernel_path(Some(self.path)).is_err() {
            return false;
        }
        if self.path == KernelPath::Persistent && model.hidden_size() > 64 {
            return false;
        }
        let shape = model.training_shape(1);
        let expected = match (self.path, self.step) {
            (KernelPath::Persistent, _) => matches!(shape, TrainShape::Persistent { .. }),
            (_, StepKernel::Split) => shape == TrainShape::Split,
            _ => shape == TrainShape::Direct,
        };
        assert!(
            expected,
            "{}: the model trains in the {shape:?} shape",
            self.name
        );
        true
    }
}

/// The training kernel variants: the GPU shape (64 lanes per workgroup, with the split step
/// kernel; the tiled GEMM), the CPU-adapter shape (a unit per lane, with the direct step
/// kernel; the register-blocked GEMM) and the persistent one (the CPU-adapter shape over
/// ranges of steps, with the persistent path; H ≤ 64). Every check runs each that exists for
/// its H, whatever the adapter.
pub const TRAIN_VARIANTS: [TrainVariant; 3] = [
    TrainVariant {
        step: StepKernel::Split,
        gemm: GemmKernel::Tiled,
        path: KernelPath::StepFused,
        name: "GPU shape (split, tiled GEMM)",
    },
    TrainVariant {
        step: StepKernel::Direct,
        gemm: GemmKernel::Direct,
        path: KernelPath::StepFused,
        name: "CPU shape (direct, direct GEMM)",
    },
    TrainVariant {
        step: StepKernel::Direct,
        gemm: GemmKernel::Direct,
        path: KernelPath::Persistent,
        name: "persistent CPU shape (direct GEMM)",
    },
];

/// [`check_case`] on `ctx`, in every [`TRAIN_VARIANTS`]; also returns how many chunks of
/// entries the forward ran in.
pub fn check_case_on(
    ctx: &gru_wgpu::gpu::GpuContext,
    case: &NetCase,
    with_dy_h: bool,
) -> (usize, Option<String>) {
    let data = case.data();
    let input = case.input(&data);
    let mut model = GpuGru::from_model(ctx, &data.model).expect("gpu model");
    let expected = rounded_reference(&data.model, &input, Dtype::F32);
    let dims = expected.dims;
    let mut rng = Rng::new(case.seed ^ 0xD1CE);
    let dy = rng.vec(dims.y_len(), 1.0);
    let dy_h = rng.vec(dims.state_len(), 1.0);
    let dy_h = with_dy_h.then_some(dy_h.as_slice());
    let want = cpu::backward_model(&data.model, &input, &dy, dy_h).expect("cpu backward");
    let mut report = String::new();
    let mut chunks = 0;
    for v in &TRAIN_VARIANTS {
        if !v.apply(&mut model) {
            continue;
        }
        let variant = v.name;
        let (out, saved) = model.forward_train(&input).expect("training forward");
        for (name, g, e) in [("Y", &out.y, &expected.y), ("Y_h", &out.y_h, &expected.y_h)] {
            let c = tolerance(Dtype::F32).compare(g, e);
            if !c.passed() {
                report += &format!("{variant}: training forward {name}: {c}\n");
            }
        }
        let got = model.backward(&saved, &dy, dy_h).expect("gpu backward");
        for (l, (gl, wl)) in got.layers.iter().zip(&want.layers).enumerate() {
            for (d, (g, w)) in gl.iter().zip(wl).enumerate() {
                for (name, a, e) in [
                    ("dW", &g.dw, &w.dw),
                    ("dR", &g.dr, &w.dr),
                    ("dB", &g.db, &w.db),
                ] {
                    let what = format!("{variant}: layer {l} dir {d} {name}");
                    if let Some(r) = compare_grad(&what, a, e) {
                        report += &r;
                    }
                }
            }
        }
        for (name, a, e) in [("dX", &got.dx, &want.dx), ("dh0", &got.dh0, &want.dh0)] {
            if let Some(r) = compare_grad(&format!("{variant}: {name}"), a, e) {
                report += &r;
            }
        }
        chunks = saved.chunks();
    }
    (
        chunks,
        (!report.is_empty()).then(|| format!("{case:?} dY_h {with_dy_h}:\n{report}")),
    )
}

fn run_range(seeds: std::ops::Range<u64>) {
    let failures: Vec<String> = seeds
        .clone()
        .filter_map(|s| check_case(&random_case(s), s % 2 == 0))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        seeds.count(),
        failures.join("")
    );
}

#[test]
fn random_configurations_a() {
    run_range(0..24);
}

#[test]
fn random_configurations_b() {
    run_range(24..48);
}
