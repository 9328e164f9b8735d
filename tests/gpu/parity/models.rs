//! GPU vs the CPU reference over the whole model surface: layers × directions × sequence
//! lengths × layout × output style × convention × clip, on seeded random cases, outputs
//! poisoned with NaN first. Tolerance: onnxruntime's f32 rule `1e-5 + 1e-4·|e|`.

use crate::common;

use common::{
    configs, each_config, gpu, random_weights, rounded_reference, tolerance, NetCase, NetRanges,
    PerDtype, Rng,
};
use gru_wgpu::gpu::GpuGru;
use gru_wgpu::{cpu, Convention, Direction, Dtype, GruInput, GruModel, Layout, OutputStyle};

/// A random case of the whole surface (weights at twice the usual scale, X at 1.5).
fn random_case(seed: u64) -> NetCase {
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let ranges = NetRanges {
        max_t: 9,
        max_b: 7,
        max_i: 12,
        max_h: 20,
        clip_min: 0.25,
        weight_scale: 2.0,
        x_scale: 1.5,
    };
    NetCase::random(seed, &mut rng, &ranges)
}

fn run(case: &NetCase) -> Option<String> {
    let ctx = gpu()?;
    let data = case.data();
    let input = case.input(&data);
    let mut report = String::new();
    // f16 on every third case (where the adapter has it): the surface is the same code.
    let configs = configs(ctx, case.h)
        .into_iter()
        .filter(|c| c.dtype == Dtype::F32 || case.seed.is_multiple_of(3));
    let mut expected = PerDtype::default();
    each_config(ctx, &data.model, configs, |config, gpu_model| {
        // The reference runs on what the device stores: weights and inputs rounded to dtype.
        let dtype = config.dtype;
        let expected = expected.get(dtype, |d| rounded_reference(&data.model, &input, d));
        let got = gpu_model.forward(&input).expect("gpu forward");
        for (name, g, e) in [("Y", &got.y, &expected.y), ("Y_h", &got.y_h, &expected.y_h)] {
            let c = tolerance(dtype).compare(g, e);
            if !c.passed() {
                report += &format!("{name} of {case:?} {config}: {c}\n");
            }
        }
    });
    (!report.is_empty()).then_some(report)
}

fn run_range(seeds: std::ops::Range<u64>) {
    let failures: Vec<String> = seeds.clone().filter_map(|s| run(&random_case(s))).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        seeds.count(),
        failures.join("")
    );
}

#[test]
fn random_models_a() {
    run_range(0..22);
}

#[test]
fn random_models_b() {
    run_range(22..44);
}

#[test]
fn random_models_c() {
    run_range(44..66);
}

/// The random cases really cover the feature space.
#[test]
fn cases_cover_the_feature_space() {
    let cases: Vec<NetCase> = (0..66).map(random_case).collect();
    let count = |f: &dyn Fn(&NetCase) -> bool| cases.iter().filter(|c| f(c)).count();
    for (what, n) in [
        (
            "reset-before",
            count(&|c| c.convention == Convention::ResetBefore),
        ),
        (
            "reset-after",
            count(&|c| c.convention == Convention::ResetAfter),
        ),
        ("forward", count(&|c| c.direction == Direction::Forward)),
        ("reverse", count(&|c| c.direction == Direction::Reverse)),
        (
            "bidirectional",
            count(&|c| c.direction == Direction::Bidirectional),
        ),
        ("3 layers", count(&|c| c.layers == 3)),
        ("batch-major", count(&|c| c.layout == Layout::BatchMajor)),
        ("PyTorch style", count(&|c| c.style == OutputStyle::PyTorch)),
        ("clip", count(&|c| c.clip.is_some())),
        ("lengths", count(&|c| c.lens.is_some())),
        (
            "a zero length",
            count(&|c| c.lens.as_ref().is_some_and(|l| l.contains(&0))),
        ),
        ("initial_h", count(&|c| c.initial_h)),
    ] {
        assert!(n >= 3, "only {n} of 66 cases have {what}");
    }
}

/// Reverse direction over the time-reversed input equals the forward direction (per entry,
/// over its own length), on the CPU and the GPU.
#[test]
fn reverse_of_reversed_equals_forward() {
    let (i, h, t, b) = (3, 5, 6, 3);
    let lens = [6i64, 4, 1];
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        let mut rng = Rng::new(77);
        let w = random_weights(&mut rng, convention, i, h, 2.0, true);
        let forward = GruModel::new(Direction::Forward, vec![vec![w.clone()]], None).unwrap();
        let reverse = GruModel::new(Direction::Reverse, vec![vec![w]], None).unwrap();
        let x = rng.vec(t * b * i, 1.0);
        // Reverse each entry's first len_b steps; the padding stays where it is.
        let mut xr = x.clone();
        for (bb, &len) in lens.iter().enumerate() {
            let len = len as usize;
            for tt in 0..len {
                let src = (tt * b + bb) * i;
                let dst = ((len - 1 - tt) * b + bb) * i;
                xr[dst..dst + i].copy_from_slice(&x[src..src + i]);
            }
        }
        let fwd_in = GruInput::new(&x, t, b).with_sequence_lens(&lens);
        let rev_in = GruInput::new(&xr, t, b).with_sequence_lens(&lens);
        let mut runs = vec![(
            "cpu",
            cpu::forward_model(&forward, &fwd_in).unwrap(),
            cpu::forward_model(&reverse, &rev_in).unwrap(),
        )];
        if let Some(ctx) = gpu() {
            runs.push((
                "gpu",
                GpuGru::from_model(ctx, &forward)
                    .unwrap()
                    .forward(&fwd_in)
                    .unwrap(),
                GpuGru::from_model(ctx, &reverse)
                    .unwrap()
                    .forward(&rev_in)
                    .unwrap(),
            ));
        }
        for (path, f, r) in runs {
            assert_eq!(f.y_h, r.y_h, "{path} {convention:?}: Y_h");
            for (bb, &len) in lens.iter().enumerate() {
                for tt in 0..len as usize {
                    let a = &f.y[(tt * b + bb) * h..][..h];
                    let c = &r.y[((len as usize - 1 - tt) * b + bb) * h..][..h];
                    assert_eq!(a, c, "{path} {convention:?}: entry {bb} step {tt}");
                }
            }
        }
    }
}
