//! `gru-bench --train`: the whole training step per shape of the grid (one forward layer with
//! a `Dense(1) → sigmoid` head, binary cross-entropy, RMSprop with Keras's defaults: the
//! article's compile), on the device ([`GpuTrainer::step`]: training forward, head and loss,
//! backward, optimizer, one submit, the per-entry losses read back), as wall time per step
//! (median over `--repeats` after `--warmup`) and per epoch of `--epoch-size` sequences
//! (`⌈N/B⌉` steps), beside the CPU reference step ([`ReferenceTrainer::step`], f64; skipped
//! with `--no-cpu`). The structure columns are the training forward's and the backward's step
//! kernels (workgroups and longest serial loop per dispatch). `benches/torch_gru.py --train`
//! times PyTorch training the same model on the same shapes (the same JSON fields).

use std::time::Instant;

use gru_wgpu::gpu::{GpuContext, GpuTrainer};
use gru_wgpu::init::{self, Init};
use gru_wgpu::loss::Loss;
use gru_wgpu::optim::{Clip, Optimizer};
use gru_wgpu::seeded::uniform;
use gru_wgpu::train::ReferenceTrainer;
use gru_wgpu::{Convention, Direction, GruInput};
use serde::Serialize;

use crate::args::Options;
use crate::backward::opt;
use crate::{median, time_n, Sink};

const HEADER: &str = "convention     I     H    B     T  step ms  epoch s  steps/s  cpu step ms  train fwd wgs/loop  bwd kernel           wgs/loop";

/// One `--train` row of the JSON file.
#[derive(Debug, Serialize)]
struct TrainRow {
    convention: String,
    i: usize,
    h: usize,
    b: usize,
    t: usize,
    adapter: String,
    path: Option<String>,
    step_ms: Option<f64>,
    epoch_size: usize,
    epoch_s: Option<f64>,
    steps_per_s: Option<f64>,
    cpu_step_ms: Option<f64>,
    train_kernel: String,
    train_workgroups: u64,
    train_longest_loop: u64,
    backward_kernel: String,
    backward_dispatches: f64,
    backward_workgroups: u64,
    backward_longest_loop: u64,
}

/// Runs the `--train` grid.
pub fn run(o: &Options) -> Result<(), String> {
    let ctx = GpuContext::new().map_err(|e| format!("{e}; --train needs a GPU adapter"))?;
    let adapter = ctx.describe();
    eprintln!("adapter: {adapter}");
    let mut sink = Sink::new(o.json.clone());
    println!("{HEADER}");
    let rmsprop = Optimizer::rmsprop_keras();
    for &convention in &o.conventions {
        for &h in &o.hidden {
            let i = o.input.unwrap_or(h);
            let model = init::gru_model(Init::Keras, convention, Direction::Forward, 1, i, h, 0)
                .map_err(|e| e.to_string())?;
            let (w, bias) = init::dense(Init::Keras, h, 1, 0);
            for (&path, &b, &t) in o.paths.iter().flat_map(|p| {
                o.batch
                    .iter()
                    .flat_map(move |b| o.seq_len.iter().map(move |t| (p, b, t)))
            }) {
                let shape = format!("{convention:?} I={i} H={h} B={b} T={t} path={path:?}");
                eprintln!("{shape}");
                let x = uniform(4, b * t * i, 1.0);
                let y: Vec<f64> = (0..b).map(|e| (e % 2) as f64).collect();
                let input = GruInput::new(&x, t, b).with_layout(gru_wgpu::Layout::BatchMajor);
                let measured = (|| {
                    let mut trainer = GpuTrainer::new(
                        &ctx,
                        &model,
                        &w,
                        &bias,
                        Loss::BinaryCrossentropy,
                        rmsprop,
                        Clip::None,
                    )?;
                    trainer.gru().set_kernel_path(path)?;
                    time_n(o.warmup, || trainer.step(&input, &y).map(drop))?;
                    let times = time_n(o.repeats.max(1), || trainer.step(&input, &y).map(drop))?;
                    let structure = trainer.gru().training_structure(b);
                    Ok::<_, gru_wgpu::GruError>((times, structure))
                })();
                let (times, (tf, tb)) = match measured {
                    Ok(v) => v,
                    Err(e) => {
                        sink.fail(&shape, e);
                        continue;
                    }
                };
                let step_ms = median(times.iter().map(|d| d.as_secs_f64() * 1e3).collect());
                let steps = o.epoch_size.div_ceil(b);
                let epoch_s = step_ms.map(|ms| ms * steps as f64 / 1e3);
                let cpu_ms = if o.cpu {
                    let mut reference = ReferenceTrainer::new(
                        model.clone(),
                        &w,
                        &bias,
                        Loss::BinaryCrossentropy,
                        rmsprop,
                        Clip::None,
                    )
                    .map_err(|e| e.to_string())?;
                    let s = Instant::now();
                    match reference.step(&input, &y) {
                        Ok(_) => Some(s.elapsed().as_secs_f64() * 1e3),
                        Err(e) => {
                            sink.fail(&format!("{shape} cpu step"), e);
                            None
                        }
                    }
                } else {
                    None
                };
                let row = TrainRow {
                    convention: format!("{convention:?}"),
                    i,
                    h,
                    b,
                    t,
                    adapter: adapter.clone(),
                    path: path.map(|p| format!("{p:?}")),
                    step_ms,
                    epoch_size: o.epoch_size,
                    epoch_s,
                    steps_per_s: step_ms.map(|ms| 1e3 / ms),
                    cpu_step_ms: cpu_ms,
                    train_kernel: tf.kernel.to_string(),
                    train_workgroups: tf.workgroups,
                    train_longest_loop: tf.longest_loop,
                    backward_kernel: tb.kernel.to_string(),
                    backward_dispatches: tb.dispatches_per_step,
                    backward_workgroups: tb.workgroups,
                    backward_longest_loop: tb.longest_loop,
                };
                let conv = match convention {
                    Convention::ResetAfter => "after",
                    Convention::ResetBefore => "before",
                };
                let line = format!(
                    "{conv:<10} {i:>5} {h:>5} {b:>4} {t:>5}  {}  {}  {}  {}  {:>8}/{:<8} {:<20} {:>4}/{:<6}",
                    opt(step_ms, 7, 2),
                    opt(epoch_s, 7, 2),
                    opt(row.steps_per_s, 7, 1),
                    opt(cpu_ms, 11, 1),
                    tf.workgroups,
                    tf.longest_loop,
                    tb.kernel,
                    tb.workgroups,
                    tb.longest_loop,
                );
                sink.push(&line, &row)?;
            }
        }
    }
    if sink.failures > 0 {
        return Err(format!("{} configuration(s) failed (above)", sink.failures));
    }
    Ok(())
}
