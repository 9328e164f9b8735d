//! `cargo bench --bench forward`: the GPU forward on a few fixed shapes, synchronised inside
//! the timed region (each `forward` waits for its readback). For the full grid, JSON output
//! and the CPU comparison use the `gru-bench` binary (`cargo run --release --bin gru-bench`).

use std::time::Instant;

use gru_wgpu::gpu::{GpuContext, GpuGru};
use gru_wgpu::{Convention, GruInput, GruWeights};

fn main() {
    let ctx = match GpuContext::new() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("forward bench: {e}; nothing to time");
            return;
        }
    };
    println!("adapter: {}", ctx.describe());
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        for (h, b, t) in [(64, 1, 200), (256, 1, 100), (256, 16, 50)] {
            let weights = GruWeights::new(
                convention,
                h,
                h,
                vec![0.01; 3 * h * h],
                vec![0.01; 3 * h * h],
                None,
            )
            .expect("weights");
            let mut model = GpuGru::new(&ctx, &weights).expect("model");
            let x = vec![0.5f32; t * b * h];
            let input = GruInput::new(&x, t, b);
            model.forward(&input).expect("warm-up");
            let mut times: Vec<f64> = (0..5)
                .map(|_| {
                    let s = Instant::now();
                    model.forward(&input).expect("forward");
                    s.elapsed().as_secs_f64() * 1e6 / t as f64
                })
                .collect();
            times.sort_by(|a, b| a.total_cmp(b));
            println!(
                "{convention:?} I=H={h} B={b} T={t}: {:.1} µs/step (median of 5, min {:.1})",
                times[2], times[0]
            );
        }
    }
}
