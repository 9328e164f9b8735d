//! `gru-bench --backward`: training's cost beside the inference forward's, per shape of the
//! grid (one forward layer, f32): the inference forward ([`GpuGru::forward`], the automatic
//! kernel choice), the training forward ([`GpuGru::forward_train`], which keeps the reserve
//! space) and the backward ([`GpuGru::backward`], given a random `dY`), each as wall time per
//! step (median over `--repeats` after `--warmup`: upload, one submit, readback), the ratio
//! backward / inference forward (the target: ≤ 2.5; cuDNN's own in DeepBench, V100,
//! H = 1024, N = 32: 1.5), the CPU reference backward's time, and the check of every
//! gradient tensor against the f64 CPU reference (`max|g − e| ≤ 1e-5 + 1e-4·max|e|` per
//! tensor; `grads_worst_ratio` is the largest `max|g − e|` over that bound, ≤ 1 within it).
//! The structure columns give, per dispatch of one step, the workgroups, lanes and longest
//! serial loop of the inference step kernel, the training forward's and the backward's, and
//! the backward's kernel shape and dispatches per step (`1/n`: one dispatch covers n steps).
//! `--path` sets the model's path for both the inference forward and training (training
//! takes its persistent shape where the forward takes the persistent path).

use std::time::Instant;

use gru_wgpu::gpu::{GpuContext, GpuGru, StepStructure};
use gru_wgpu::seeded::uniform;
use gru_wgpu::{cpu, Convention, Direction, GruInput, GruModel};
use serde::Serialize;

use crate::args::Options;
use crate::rows::finite;
use crate::{bench_layer, median, time_n, Sink};

const HEADER: &str = "convention     I     H    B     T  fwd µs/step  train µs/step  bwd µs/step  bwd/fwd  cpu bwd µs/step  grads ok  worst   rel err   fwd wgs/loop  bwd kernel           disp×wgs/loop";

/// One `--backward` row of the JSON file.
#[derive(Debug, Serialize)]
struct BackwardRow {
    convention: String,
    i: usize,
    h: usize,
    b: usize,
    t: usize,
    adapter: String,
    path: Option<String>,
    forward_us_per_step: Option<f64>,
    train_forward_us_per_step: Option<f64>,
    backward_us_per_step: Option<f64>,
    backward_over_forward: Option<f64>,
    cpu_backward_us_per_step: Option<f64>,
    grads_within_tolerance: Option<bool>,
    grads_worst_ratio: Option<f64>,
    grads_max_relative_error: Option<f64>,
    forward_kernel: String,
    forward_dispatches: f64,
    forward_workgroups: u64,
    forward_longest_loop: u64,
    train_dispatches: f64,
    train_workgroups: u64,
    train_longest_loop: u64,
    backward_kernel: String,
    backward_dispatches: f64,
    backward_workgroups: u64,
    backward_invocations: u64,
    backward_longest_loop: u64,
}

/// The largest `max|g − e| / (atol + rtol·max|e|)` over the tensors of `got` and `want`:
/// with `(1e-5, 1e-4)` the tolerance ratio (≤ 1 within it), with `(0, 1)` the relative error.
fn worst_ratio(got: &cpu::GruGradients, want: &cpu::GruGradients, atol: f64, rtol: f64) -> f64 {
    let ratio = |g: &[f64], e: &[f64]| {
        let scale = e.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let err = g
            .iter()
            .zip(e)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f64, |m, x| if x.is_nan() { f64::NAN } else { m.max(x) });
        if err == 0.0 {
            0.0
        } else {
            err / (atol + rtol * scale)
        }
    };
    let mut worst = ratio(&got.dx, &want.dx).max(ratio(&got.dh0, &want.dh0));
    for (gl, wl) in got.layers.iter().zip(&want.layers) {
        for (g, w) in gl.iter().zip(wl) {
            for r in [
                ratio(&g.dw, &w.dw),
                ratio(&g.dr, &w.dr),
                ratio(&g.db, &w.db),
            ] {
                worst = if r.is_nan() { f64::NAN } else { worst.max(r) };
            }
        }
    }
    worst
}

fn per_step(times: &[std::time::Duration], t: usize) -> Option<f64> {
    median(
        times
            .iter()
            .map(|d| d.as_secs_f64() * 1e6 / t as f64)
            .collect(),
    )
}

/// Dispatches per step: `2`, or `1/75` where one dispatch covers 75 steps.
fn per_step_count(d: f64) -> String {
    if d >= 1.0 || d <= 0.0 {
        format!("{d}")
    } else {
        format!("1/{}", (1.0 / d).round())
    }
}

/// `v` right-aligned in `width` with `precision` decimals, `-` for `None`.
pub(crate) fn opt(v: Option<f64>, width: usize, precision: usize) -> String {
    match v {
        Some(v) => format!("{v:>width$.precision$}"),
        None => format!("{:>width$}", "-"),
    }
}

/// Runs the `--backward` grid.
pub fn run(o: &Options) -> Result<(), String> {
    let ctx = GpuContext::new().map_err(|e| format!("{e}; --backward needs a GPU adapter"))?;
    let adapter = ctx.describe();
    eprintln!("adapter: {adapter}");
    let mut sink = Sink::new(o.json.clone());
    println!("{HEADER}");
    for &convention in &o.conventions {
        for &h in &o.hidden {
            let i = o.input.unwrap_or(h);
            let weights = bench_layer(convention, i, h, 0)?;
            let network = GruModel::new(Direction::Forward, vec![vec![weights]], None)
                .map_err(|e| e.to_string())?;
            let mut model = GpuGru::from_model(&ctx, &network).map_err(|e| e.to_string())?;
            for (&path, &b, &t) in o.paths.iter().flat_map(|p| {
                o.batch
                    .iter()
                    .flat_map(move |b| o.seq_len.iter().map(move |t| (p, b, t)))
            }) {
                {
                    let shape = format!("{convention:?} I={i} H={h} B={b} T={t} path={path:?}");
                    eprintln!("{shape}");
                    if let Err(e) = model.set_kernel_path(path) {
                        sink.fail(&shape, e);
                        continue;
                    }
                    let x = uniform(4, t * b * i, 1.0);
                    let input = GruInput::new(&x, t, b);
                    let dy = uniform(5, t * b * h, 1.0);
                    let measured = (|| {
                        let repeats = o.repeats.max(1);
                        time_n(o.warmup, || model.forward(&input).map(drop))?;
                        let fwd = time_n(repeats, || model.forward(&input).map(drop))?;
                        let mut saved = None;
                        time_n(o.warmup, || model.forward_train(&input).map(drop))?;
                        let train = time_n(repeats, || {
                            saved = Some(model.forward_train(&input)?.1);
                            Ok(())
                        })?;
                        let Some(saved) = saved else {
                            return Err(gru_wgpu::GruError::invalid("repeats", "≥ 1", 0));
                        };
                        let mut grads = None;
                        time_n(o.warmup, || model.backward(&saved, &dy, None).map(drop))?;
                        let bwd = time_n(repeats, || {
                            grads = Some(model.backward(&saved, &dy, None)?);
                            Ok(())
                        })?;
                        Ok((fwd, train, bwd, grads))
                    })();
                    let (fwd, train, bwd, grads) = match measured {
                        Ok(v) => v,
                        Err(e) => {
                            sink.fail(&shape, e);
                            continue;
                        }
                    };
                    let (cpu_us, worst) = if o.cpu {
                        let s = Instant::now();
                        match cpu::backward_model(&network, &input, &dy, None) {
                            Ok(want) => {
                                let us = s.elapsed().as_secs_f64() * 1e6 / t as f64;
                                let worst = grads.as_ref().map(|g| {
                                    (
                                        worst_ratio(g, &want, 1e-5, 1e-4),
                                        worst_ratio(g, &want, 0.0, 1.0),
                                    )
                                });
                                (Some(us), worst)
                            }
                            Err(e) => {
                                sink.fail(&format!("{shape} cpu backward"), e);
                                (None, None)
                            }
                        }
                    } else {
                        (None, None)
                    };
                    let relative = worst.map(|w| w.1);
                    let worst = worst.map(|w| w.0);
                    if let Some(w) = worst.filter(|w| w.is_nan() || *w > 1.0) {
                        eprintln!("gru-bench: {shape}: gradients outside the tolerance (worst ratio {w:.3})");
                    }
                    let (fwd_us, train_us, bwd_us) =
                        (per_step(&fwd, t), per_step(&train, t), per_step(&bwd, t));
                    let ratio = bwd_us.zip(fwd_us).map(|(b, f)| b / f);
                    let inference: StepStructure = model.step_structure(b);
                    let (tf, tb) = model.training_structure(b);
                    let row = BackwardRow {
                        convention: format!("{convention:?}"),
                        i,
                        h,
                        b,
                        t,
                        adapter: adapter.clone(),
                        path: path.map(|p| format!("{p:?}")),
                        forward_us_per_step: fwd_us,
                        train_forward_us_per_step: train_us,
                        backward_us_per_step: bwd_us,
                        backward_over_forward: ratio,
                        cpu_backward_us_per_step: cpu_us,
                        grads_within_tolerance: worst.map(|w| w <= 1.0),
                        grads_worst_ratio: worst.and_then(finite),
                        grads_max_relative_error: relative.and_then(finite),
                        forward_kernel: inference.kernel.to_string(),
                        forward_dispatches: inference.dispatches_per_step,
                        forward_workgroups: inference.workgroups,
                        forward_longest_loop: inference.longest_loop,
                        train_dispatches: tf.dispatches_per_step,
                        train_workgroups: tf.workgroups,
                        train_longest_loop: tf.longest_loop,
                        backward_kernel: tb.kernel.to_string(),
                        backward_dispatches: tb.dispatches_per_step,
                        backward_workgroups: tb.workgroups,
                        backward_invocations: tb.invocations,
                        backward_longest_loop: tb.longest_loop,
                    };
                    let conv = match convention {
                        Convention::ResetAfter => "after",
                        Convention::ResetBefore => "before",
                    };
                    let line = format!(
                        "{conv:<10} {i:>5} {h:>5} {b:>4} {t:>5}  {}  {}  {}  {}  {}  {:>8}  {}  {}  {:>7}/{:<6} {:<20} {:>4}×{:>5}/{:<6}",
                        opt(fwd_us, 11, 1),
                        opt(train_us, 13, 1),
                        opt(bwd_us, 11, 1),
                        opt(ratio, 7, 2),
                        opt(cpu_us, 15, 1),
                        match worst {
                            Some(w) => if w <= 1.0 { "yes" } else { "NO" },
                            None => "-",
                        },
                        opt(worst, 5, 2),
                        match relative {
                            Some(r) => format!("{r:>8.1e}"),
                            None => format!("{:>8}", "-"),
                        },
                        inference.workgroups,
                        inference.longest_loop,
                        tb.kernel,
                        per_step_count(tb.dispatches_per_step),
                        tb.workgroups,
                        tb.longest_loop,
                    );
                    sink.push(&line, &row)?;
                }
            }
        }
    }
    if sink.failures > 0 {
        return Err(format!("{} configuration(s) failed (above)", sink.failures));
    }
    Ok(())
}
