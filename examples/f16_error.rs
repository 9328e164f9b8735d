//! How the error of f16 storage grows with the sequence length: GPU (f16 storage, f32 math)
//! against the f64 CPU reference on the same f16-rounded weights and inputs, and against the
//! f32 model (weights not rounded), at T = 100, 1000, 10000. BENCHMARKS.md records its output.
//!
//! `cargo run --release --example f16_error [-- H B]` (defaults H = 64, B = 4).

use gru_wgpu::gpu::{GpuContext, GpuGru, ModelOptions};
use gru_wgpu::seeded::SplitMix64;
use gru_wgpu::{cpu, Convention, Direction, Dtype, GruInput, GruModel, GruWeights, Tolerance};

fn weights(rng: &mut SplitMix64, c: Convention, i: usize, h: usize, round: bool) -> GruWeights {
    let k = 1.0 / (h as f32).sqrt();
    let mut v = |n: usize| -> Vec<f32> {
        rng.vec(n, k)
            .into_iter()
            .map(|x| if round { Dtype::F16.round(x) } else { x })
            .collect()
    };
    let (w, r, b) = (v(3 * h * i), v(3 * h * h), v(6 * h));
    GruWeights::new(c, i, h, w, r, Some(b)).expect("weights")
}

fn main() -> gru_wgpu::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let h = args.first().copied().unwrap_or(64);
    let b = args.get(1).copied().unwrap_or(4);
    let i = h;
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.describe());
    println!("I = H = {h}, B = {b}; weights U(±1/√H), inputs U(±1)");
    println!(
        "{:<12} {:>6} {:>14} {:>14} {:>14} {:>14}",
        "convention", "T", "max|err| same", "worst/f16 tol", "max|err| f32", "mean|err| f32"
    );
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        for t in [100usize, 1000, 10000] {
            let mut rng = SplitMix64::new(7);
            let exact = weights(&mut rng, convention, i, h, false);
            let mut rng = SplitMix64::new(7);
            let rounded = weights(&mut rng, convention, i, h, true);
            let x = rng.vec(t * b * i, 1.0);
            let rx: Vec<f32> = x.iter().map(|&v| Dtype::F16.round(v)).collect();
            let model = GruModel::new(Direction::Forward, vec![vec![exact.clone()]], None)?;
            let options = ModelOptions {
                dtype: Dtype::F16,
                allow_f32_fallback: false,
            };
            let mut gpu = GpuGru::from_model_with(&ctx, &model, &options)?;
            let got = gpu.forward(&GruInput::new(&x, t, b))?;
            let same = cpu::forward(&rounded, &GruInput::new(&rx, t, b))?;
            let full = cpu::forward(&exact, &GruInput::new(&x, t, b))?;
            let c_same = Tolerance::F16.compare(&got.y, &same.y);
            let worst_ratio = got
                .y
                .iter()
                .zip(&same.y)
                .map(|(&g, &e)| (g - e).abs() as f64 / (2.5e-3 + 1e-3 * e.abs() as f64))
                .fold(0.0f64, f64::max);
            let c_full = Tolerance::F16.compare(&got.y, &full.y);
            let mean: f64 = got
                .y
                .iter()
                .zip(&full.y)
                .map(|(&g, &e)| (g - e).abs() as f64)
                .sum::<f64>()
                / got.y.len() as f64;
            println!(
                "{:<12} {:>6} {:>14.3e} {:>14.3} {:>14.3e} {:>14.3e}",
                format!("{convention:?}"),
                t,
                c_same.max_abs_err,
                worst_ratio,
                c_full.max_abs_err,
                mean
            );
        }
    }
    Ok(())
}
