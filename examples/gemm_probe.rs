//! Probe: input-projection GPU time of each GEMM kernel on the default adapter.
//! `cargo run --release --example gemm_probe -- I H B T`
use gru_wgpu::gpu::{GemmKernel, GpuContext, GpuGru, KernelPath};
use gru_wgpu::seeded::uniform;
use gru_wgpu::{Convention, GruInput, GruWeights};

fn main() -> gru_wgpu::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let [i, h, b, t] =
        [args.first(), args.get(1), args.get(2), args.get(3)].map(|v| v.copied().unwrap_or(0));
    let (i, h, b, t) = if i == 0 {
        (512, 512, 64, 100)
    } else {
        (i, h, b, t)
    };
    let ctx = GpuContext::new()?;
    println!("{}", ctx.describe());
    let w = GruWeights::new(
        Convention::ResetAfter,
        i,
        h,
        uniform(1, 3 * h * i, 0.05),
        uniform(2, 3 * h * h, 0.05),
        None,
    )?;
    let mut model = GpuGru::new(&ctx, &w)?;
    model.set_profiling(true)?;
    model.set_kernel_path(Some(KernelPath::StepFused))?;
    let x = uniform(3, t * b * i, 1.0);
    let input = GruInput::new(&x, t, b);
    for kernel in [GemmKernel::Tiled, GemmKernel::Direct] {
        model.set_gemm_kernel(Some(kernel));
        model.forward(&input)?;
        let mut best = f64::MAX;
        for _ in 0..3 {
            model.forward(&input)?;
            if let Some(tm) = model.last_timing() {
                best = best.min(tm.input_projection_ns);
            }
        }
        let flops = 2.0 * (t * b) as f64 * (3 * h) as f64 * i as f64;
        println!(
            "{kernel:?}: {:.1} ms, {:.2} GFLOP/s",
            best / 1e6,
            flops / best
        );
    }
    Ok(())
}
