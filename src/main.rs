//! `cargo run --release`: a demo of gru-wgpu on the default adapter.
//!
//! Runs a seeded GRU of a realistic size (I = H = 256, B = 16, T = 100) in both gate
//! conventions on the GPU and on the CPU reference, and prints the adapter, the largest
//! GPU-vs-CPU error against onnxruntime's f32 tolerance, and the times of both paths.
//! Without a GPU adapter it says so and runs the CPU path alone.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use gru_wgpu::gpu::{GpuContext, GpuGru};
use gru_wgpu::seeded::uniform;
use gru_wgpu::{cpu, Convention, GruInput, GruWeights, Tolerance};

const I: usize = 256;
const H: usize = 256;
const B: usize = 16;
const T: usize = 100;
const SEED: u64 = 2024;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn run() -> gru_wgpu::Result<bool> {
    let k = 1.0 / (H as f32).sqrt(); // PyTorch's init range
    let x = uniform(SEED, T * B * I, 1.0);
    let input = GruInput::new(&x, T, B);
    println!("gru-wgpu demo: I={I}, H={H}, B={B}, T={T}, seed {SEED}");

    let ctx = match GpuContext::new() {
        Ok(ctx) => {
            println!("adapter: {}", ctx.describe());
            Some(ctx)
        }
        Err(e) => {
            println!("no GPU: {e}");
            println!("falling back to the CPU reference path only");
            None
        }
    };

    let mut all_ok = true;
    for (n, convention) in [Convention::ResetAfter, Convention::ResetBefore]
        .into_iter()
        .enumerate()
    {
        let seed = SEED + 1 + n as u64;
        let weights = GruWeights::new(
            convention,
            I,
            H,
            uniform(seed, 3 * H * I, k),
            uniform(seed + 100, 3 * H * H, k),
            Some(uniform(seed + 200, 6 * H, k)),
        )?;
        let start = Instant::now();
        let reference = cpu::forward(&weights, &input)?;
        let cpu_time = start.elapsed();
        println!("\n{convention:?}");
        println!(
            "  cpu reference (f64 accumulation): {:>9.2} ms  ({:.1} µs/step)",
            cpu_time.as_secs_f64() * 1e3,
            cpu_time.as_secs_f64() * 1e6 / T as f64
        );
        let Some(ctx) = &ctx else { continue };
        let start = Instant::now();
        let mut model = GpuGru::new(ctx, &weights)?;
        let build = start.elapsed();
        // GPU timestamps where the adapter has them (the times printed below stay wall-clock).
        let profiled = model.set_profiling(true).is_ok();
        let first = Instant::now();
        let out = model.forward(&input)?;
        let first = first.elapsed();
        let times: Vec<Duration> = (0..5)
            .map(|_| {
                let s = Instant::now();
                model.forward(&input).map(|_| s.elapsed())
            })
            .collect::<Result<_, _>>()?;
        let gpu_time = median(times);
        let cmp = Tolerance::F32.compare(&out.y, &reference.y);
        println!(
            "  gpu (upload + forward + readback): {:>8.2} ms  ({:.1} µs/step), median of 5; \
             first call {:.2} ms, model build {:.2} ms",
            gpu_time.as_secs_f64() * 1e3,
            gpu_time.as_secs_f64() * 1e6 / T as f64,
            first.as_secs_f64() * 1e3,
            build.as_secs_f64() * 1e3
        );
        println!(
            "  kernel path: {:?}, input projection: {:?}",
            model.kernel_path(B),
            model.gemm_kernel()
        );
        if let (true, Some(t)) = (profiled, model.last_timing()) {
            println!(
                "  gpu time (timestamps): input projection {:.2} ms, recurrence {:.1} µs/step",
                t.input_projection_ns / 1e6,
                t.recurrence_ns / 1e3 / T as f64
            );
        }
        println!(
            "  max |gpu − cpu| over Y: {:.3e}  (tolerance 1e-5 + 1e-4·|e|): {}",
            cmp.max_abs_err,
            if cmp.passed() { "PASS" } else { "FAIL" }
        );
        if !cmp.passed() {
            println!("  {cmp}");
            all_ok = false;
        }
        println!(
            "  speed-up over the CPU reference: {:.1}×",
            cpu_time.as_secs_f64() / gpu_time.as_secs_f64()
        );
    }
    Ok(all_ok)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("gru-wgpu: {e}");
            ExitCode::FAILURE
        }
    }
}
