//! `gru-bench --call-overhead`: the Rust side of the Python package's per-call overhead — a
//! tiny forward (I = H = 8, B = 1, T = 1) called `--repeats` times on the GPU and on the CPU
//! reference, with the arguments `gru_wgpu.GRU.__call__` passes (sequence-major X, PyTorch's
//! output style, no initial state). Prints one JSON object (medians and minima in µs per
//! call); benches/python_gru.py times `model(x)` on the same shape beside it.

use std::time::Instant;

use gru_wgpu::gpu::{GpuContext, GpuGru};
use gru_wgpu::init::{self, Init};
use gru_wgpu::{cpu, Convention, Direction, GruInput, OutputStyle};

use crate::args::Options;

/// Median and minimum of `n` timed calls of `f`, µs.
fn timed(n: usize, mut f: impl FnMut() -> Result<(), String>) -> Result<(f64, f64), String> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}

pub fn run(o: &Options) -> Result<(), String> {
    let n = o.repeats.max(1);
    let model = init::gru_model(
        Init::PyTorch,
        Convention::ResetAfter,
        Direction::Forward,
        1,
        8,
        8,
        0,
    )
    .map_err(|e| e.to_string())?;
    let x = vec![0.25f32; 8];
    let input = GruInput::new(&x, 1, 1).with_style(OutputStyle::PyTorch);
    let ctx = GpuContext::new().map_err(|e| e.to_string())?;
    let mut gpu = GpuGru::from_model(&ctx, &model).map_err(|e| e.to_string())?;
    for _ in 0..o.warmup.max(1) {
        gpu.forward(&input).map_err(|e| e.to_string())?;
    }
    let (gpu_med, gpu_min) = timed(n, || {
        gpu.forward(&input).map(drop).map_err(|e| e.to_string())
    })?;
    let (cpu_med, cpu_min) = timed(n, || {
        cpu::forward_model(&model, &input)
            .map(drop)
            .map_err(|e| e.to_string())
    })?;
    println!(
        "{}",
        serde_json::json!({
            "adapter": ctx.describe(),
            "calls": n,
            "gpu_path": format!("{:?}", gpu.kernel_path(1)),
            "rust_gpu_us_median": gpu_med,
            "rust_gpu_us_min": gpu_min,
            "rust_cpu_path_us_median": cpu_med,
            "rust_cpu_path_us_min": cpu_min,
        })
    );
    Ok(())
}
