//! `gru-bench`: times the GPU forward against the CPU reference over a grid of shapes.
//!
//! ```text
//! gru-bench [--quick] [--hidden 128,256] [--batch 1,16] [--seq-len 100] [--input I]
//!           [--convention after|before|both] [--path auto|step|persistent|all]
//!           [--dtype f32|f16|both] [--step-kernel auto|staged|direct|both] [--repeats N]
//!           [--warmup N] [--no-cpu] [--json FILE] [--plot FILE.svg]
//! gru-bench --streaming [--streams 1,16,256,1024] [--layers 3] [--hidden 384] [--input 128]
//!           [--frames N] [--warmup N] [--dtype f32|f16|both] [--json FILE]
//! gru-bench --train [--hidden …] [--batch …] [--seq-len …] [--input I] [--epoch-size N] [--json FILE]
//! gru-bench --backward [--hidden …] [--batch …] [--seq-len …] [--convention …] [--json FILE]
//! gru-bench --compare OURS.json THEIRS.json
//! ```
//!
//! `gru-bench --help` lists every flag with its default; a usage error exits 2. Every
//! row is one JSON object of the `--json` file (an array, rewritten as each row finishes),
//! numbers at full precision, null where a value is absent or not finite.
//!
//! `--streaming` measures a [`gru_wgpu::gpu::GruSession`] serving many streams of one model
//! (default: three stacked GRUs of 384 units, RNNoise-sized, 10 ms frames fed one at a time):
//! for each stream count N, N streams are opened and fed one frame each per call, `--frames`
//! times after `--warmup`; each row has the round-trip latency of a feed (median, min, max:
//! upload, one submit, GPU, readback of every stream's output), the GPU time of a frame from
//! timestamp queries, that time per stream-step, the largest error of stream 0's outputs
//! against the CPU reference of its whole sequence, and the per-element check of those outputs
//! (the same fields as a grid row's, below).
//!
//! `--compare` reads two JSON files (gru-bench's, and e.g. `benches/torch_gru.py`'s, which
//! writes the same fields) and prints, per shape, the fastest GPU path of the first, the
//! second, and the speed-up (their µs per step over ours). `--plot` draws µs per step against
//! H, one line per path and batch size, on log-log axes.
//!
//! Each row: the shape, the path, µs per step and per sequence (median over `--repeats`
//! after `--warmup`, with min and max), GFLOP/s counting `2·3H·(I+H)·B` per step, and the
//! largest |GPU − CPU| on that shape, and the per-element check every test uses: each
//! element of Y against the f64 reference on what the device stores (weights and X rounded to
//! the row's dtype) within onnxruntime's rule for the dtype, `|a − e| ≤ atol + rtol·|e|`
//! (f32: 1e-5 + 1e-4·|e|; f16: 2.5e-3 + 1e-3·|e|), with the worst element (`within_tolerance`,
//! `elements_outside_tolerance`, `worst_index`, `worst_got`, `worst_expected`, `worst_ratio`;
//! null on the CPU reference's own row and with `--no-cpu`, which has no reference). The wall
//! time is the whole `forward` call: upload of X, one submit, and the readback of Y and Y_h. Where the adapter has timestamp queries, the
//! GPU's own time is shown too: the input projection (µs per sequence) and the recurrence
//! (µs per step). Always build with `--release`.

mod args;
mod backward;
mod overhead;
mod rows;
mod train;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use args::{Cli, Command, Options};
use clap::Parser;
use gru_wgpu::gpu::{
    auto_gemm_kernel, auto_kernel_path, auto_step_kernel, Feed, GpuContext, GpuGru, GruSession,
    KernelPath, ModelOptions, StepKernel, StepStructure,
};
use gru_wgpu::seeded::uniform;
use rows::{finite, read_rows, CheckFields, GridRow, StreamingRow, StructureFields};
use serde::Serialize;

use gru_wgpu::{
    cpu, Comparison, Convention, Direction, Dtype, GruInput, GruModel, GruWeights, Tolerance,
};

struct Row {
    convention: Convention,
    dtype: Dtype,
    i: usize,
    h: usize,
    b: usize,
    t: usize,
    path: String,
    times: Vec<Duration>,
    max_err: Option<f64>,
    /// Y against the reference on the dtype-rounded weights and X, element by element.
    check: Option<Comparison>,
    /// Median GPU time of the input projection and of the recurrence (timestamp queries), ns.
    gpu_ns: Option<(f64, f64)>,
    /// Median host time to record one forward's commands, µs.
    encode_us: Option<f64>,
    /// The parallel structure of one step of the kernel that ran (GPU rows).
    structure: Option<StepStructure>,
}

const TABLE_HEADER: &str = "convention   type     I     H    B     T  path                 µs/step        min        max  µs/sequence  GFLOP/s  gpu proj µs   gpu µs/step enc µs/step   max err  disp      wgs      lanes   loop";

impl Row {
    fn stats_us_per_step(&self) -> (f64, f64, f64) {
        let mut v: Vec<f64> = self
            .times
            .iter()
            .map(|d| d.as_secs_f64() * 1e6 / self.t as f64)
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        (v[v.len() / 2], v[0], v[v.len() - 1])
    }
    fn gflops(&self) -> f64 {
        let (median, _, _) = self.stats_us_per_step();
        2.0 * 3.0 * self.h as f64 * (self.i + self.h) as f64 * self.b as f64 / (median * 1e3)
    }
    /// The row's JSON object.
    fn json(&self) -> GridRow {
        let (median, min, max) = self.stats_us_per_step();
        let t = self.t as f64;
        GridRow {
            convention: format!("{:?}", self.convention),
            dtype: self.dtype.name().into(),
            input_size: self.i,
            hidden_size: self.h,
            batch: self.b,
            seq_len: self.t,
            path: self.path.clone(),
            us_per_step_median: finite(median),
            us_per_step_min: finite(min),
            us_per_step_max: finite(max),
            us_per_sequence_median: finite(median * t),
            gflops: finite(self.gflops()),
            max_abs_err: self.max_err.and_then(finite),
            gpu_input_projection_us: self.gpu_ns.and_then(|(p, _)| finite(p / 1e3)),
            gpu_recurrence_us_per_step: self.gpu_ns.and_then(|(_, r)| finite(r / 1e3 / t)),
            host_encode_us_per_step: self.encode_us.and_then(|e| finite(e / t)),
            structure: StructureFields::of(self.structure.as_ref()),
            check: CheckFields::of(self.check.as_ref()),
        }
    }

    /// The row as a line of the table under [`TABLE_HEADER`].
    fn table_line(&self) -> String {
        let (median, min, max) = self.stats_us_per_step();
        let (proj, rec) = match self.gpu_ns {
            Some((p, q)) => (
                format!("{:.1}", p / 1e3),
                format!("{:.2}", q / 1e3 / self.t as f64),
            ),
            None => ("-".into(), "-".into()),
        };
        format!(
            "{:<12} {:>4} {:>5} {:>5} {:>4} {:>5}  {:<17} {:>10.1} {:>10.1} {:>10.1} {:>12.0} {:>8.2} {:>12} {:>13} {:>11} {:>9} {}",
            format!("{:?}", self.convention),
            self.dtype.name(),
            self.i,
            self.h,
            self.b,
            self.t,
            self.path,
            median,
            min,
            max,
            median * self.t as f64,
            self.gflops(),
            proj,
            rec,
            self.encode_us
                .map(|e| format!("{:.3}", e / self.t as f64))
                .unwrap_or_else(|| "-".into()),
            self.max_err.map(|e| format!("{e:.2e}")).unwrap_or_else(|| "-".into()),
            self.structure
                .map(|st| format!(
                    "{:>5} {:>8} {:>10} {:>6}",
                    if st.dispatches_per_step >= 1.0 {
                        format!("{}", st.dispatches_per_step)
                    } else {
                        format!("1/{:.0}", 1.0 / st.dispatches_per_step)
                    },
                    st.workgroups,
                    st.invocations,
                    st.longest_loop
                ))
                .unwrap_or_default()
        )
    }
}

/// Where rows go as soon as each is measured: its line of the table on stdout, and the whole
/// `--json` file rewritten, so that a run cut short (a timeout on a lent GPU) keeps every row
/// it finished. A configuration that fails is reported on stderr and counted, and the run
/// goes on.
struct Sink {
    json_path: Option<String>,
    json: Vec<String>,
    failures: usize,
}

impl Sink {
    fn new(json_path: Option<String>) -> Self {
        Sink {
            json_path,
            json: Vec::new(),
            failures: 0,
        }
    }

    fn push(&mut self, line: &str, row: &impl Serialize) -> Result<(), String> {
        println!("{line}");
        let json = serde_json::to_string(row).map_err(|e| format!("a row as JSON: {e}"))?;
        self.json.push(json);
        let Some(path) = &self.json_path else {
            return Ok(());
        };
        // Written beside and renamed over, so that a reader (or a kill) never sees half a file.
        let partial = format!("{path}.partial");
        std::fs::write(&partial, format!("[\n{}\n]\n", self.json.join(",\n")))
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|e| format!("{path}: {e}"))
    }

    fn fail(&mut self, what: &str, e: impl std::fmt::Display) {
        eprintln!("gru-bench: {what}: {e}; row skipped");
        self.failures += 1;
    }
}

fn time_n<F: FnMut() -> gru_wgpu::Result<()>>(
    n: usize,
    mut f: F,
) -> gru_wgpu::Result<Vec<Duration>> {
    (0..n)
        .map(|_| {
            let s = Instant::now();
            f().map(|_| s.elapsed())
        })
        .collect()
}

/// Makes the choices the command line left automatic (`path`, `step`: `None`; the GEMM
/// always) as [`gru_wgpu::gpu`]'s `auto_*` functions make them on an adapter of type `kind`,
/// for a forward of `batch` entries.
fn choose_as(
    model: &mut GpuGru,
    kind: wgpu::DeviceType,
    batch: usize,
    path: Option<KernelPath>,
    step: Option<StepKernel>,
) {
    let info = wgpu::AdapterInfo::new(kind, model.context().adapter_info().backend);
    if path.is_none() {
        // A model without the persistent kernel (H > 256) stays step-fused.
        let auto = auto_kernel_path(&info, model.hidden_size(), batch);
        if model.set_kernel_path(Some(auto)).is_err() {
            let _ = model.set_kernel_path(Some(KernelPath::StepFused));
        }
    }
    if step.is_none() {
        model.set_step_kernel(Some(auto_step_kernel(&info)));
    }
    model.set_gemm_kernel(Some(auto_gemm_kernel(&info)));
}

/// Runs the grid; rows go to `sink` as they finish (and are returned for the plot).
fn run(o: &Options, sink: &mut Sink) -> Result<Vec<Row>, String> {
    let ctx = match GpuContext::new() {
        Ok(c) => {
            eprintln!("adapter: {}", c.describe());
            Some(c)
        }
        Err(e) => {
            eprintln!("gru-bench: {e}; timing the CPU reference only");
            None
        }
    };
    let mut rows = Vec::new();
    println!("{TABLE_HEADER}");
    let total = o.conventions.len() * o.hidden.len() * o.batch.len() * o.seq_len.len();
    let mut done = 0;
    for &convention in &o.conventions {
        for &h in &o.hidden {
            let i = o.input.unwrap_or(h);
            let weights = bench_layer(convention, i, h, 0)?;
            let network = GruModel::new(Direction::Forward, vec![vec![weights.clone()]], None)
                .map_err(|e| e.to_string())?;
            let mut models = Vec::new();
            if let Some(c) = &ctx {
                for &dtype in &o.dtypes {
                    let options = ModelOptions {
                        dtype,
                        allow_f32_fallback: false,
                    };
                    match GpuGru::from_model_with(c, &network, &options) {
                        Ok(m) => models.push((dtype, m)),
                        Err(e) => eprintln!("  ({} skipped: {e})", dtype.name()),
                    }
                }
            }
            for &b in &o.batch {
                for &t in &o.seq_len {
                    done += 1;
                    eprintln!(
                        "{} {done}/{total} {convention:?} I={i} H={h} B={b} T={t}",
                        progress_bar(done - 1, total)
                    );
                    let x = uniform(4, t * b * i, 1.0);
                    let input = GruInput::new(&x, t, b);
                    let shape = format!("{convention:?} I={i} H={h} B={b} T={t}");
                    let reference = if o.cpu {
                        let s = Instant::now();
                        match cpu::forward(&weights, &input) {
                            Ok(r) => {
                                let row = Row {
                                    convention,
                                    dtype: Dtype::F32,
                                    i,
                                    h,
                                    b,
                                    t,
                                    path: "cpu-reference".into(),
                                    times: vec![s.elapsed()],
                                    max_err: None,
                                    check: None,
                                    gpu_ns: None,
                                    encode_us: None,
                                    structure: None,
                                };
                                sink.push(&row.table_line(), &row.json())?;
                                rows.push(row);
                                Some(r)
                            }
                            Err(e) => {
                                sink.fail(&format!("{shape} cpu-reference"), e);
                                None
                            }
                        }
                    } else {
                        None
                    };
                    // The per-element check's reference of each dtype: the f32 one is the
                    // reference above; f16's runs on the f16-rounded weights and X.
                    let mut checked_against: Vec<(Dtype, gru_wgpu::GruOutput)> = Vec::new();
                    for (dtype, model) in models.iter_mut() {
                        let dtype = *dtype;
                        if reference.is_some()
                            && dtype != Dtype::F32
                            && !checked_against.iter().any(|r| r.0 == dtype)
                        {
                            match dtype_reference(&network, dtype, &x, t, b) {
                                Ok(r) => checked_against.push((dtype, r)),
                                Err(e) => {
                                    sink.fail(&format!("{shape} {} reference", dtype.name()), e)
                                }
                            }
                        }
                        let dtype_ref = match dtype {
                            Dtype::F32 => reference.as_ref(),
                            _ => checked_against.iter().find(|r| r.0 == dtype).map(|r| &r.1),
                        };
                        let choices = o
                            .paths
                            .iter()
                            .flat_map(|&p| o.step_kernels.iter().map(move |&k| (p, k)));
                        for (choice, step) in choices {
                            if model.set_kernel_path(choice).is_err() {
                                eprintln!("  (no {choice:?} path for H={h}; skipped)");
                                continue;
                            }
                            model.set_step_kernel(step);
                            if let Some(kind) = o.choose_as {
                                choose_as(model, kind, b, choice, step);
                            }
                            let path = match (model.kernel_path(b), model.step_kernel()) {
                                (KernelPath::StepFused, StepKernel::Staged) => "gpu-step-fused",
                                (KernelPath::StepFused, StepKernel::Direct) => "gpu-step-direct",
                                (KernelPath::StepFused, StepKernel::Split) => "gpu-step-split",
                                (KernelPath::StepFused, StepKernel::SplitWorkgroup) => {
                                    "gpu-step-split-wg"
                                }
                                (KernelPath::Persistent, _)
                                    if step.is_some() && o.step_kernels.len() > 1 =>
                                {
                                    // The persistent path has one kernel: time it once.
                                    if step != o.step_kernels[0] {
                                        continue;
                                    }
                                    "gpu-persistent"
                                }
                                (KernelPath::Persistent, _) => "gpu-persistent",
                            };
                            let mut last = None;
                            let profiled = model.set_profiling(true).is_ok();
                            let mut gpu = Vec::new();
                            let mut encode = Vec::new();
                            let measured = time_n(o.warmup, || model.forward(&input).map(drop))
                                .and_then(|_| {
                                    time_n(o.repeats.max(1), || {
                                        last = Some(model.forward(&input)?);
                                        gpu.extend(model.last_timing());
                                        encode.push(model.last_encode_time().as_secs_f64() * 1e6);
                                        Ok(())
                                    })
                                });
                            let times = match measured {
                                Ok(times) => times,
                                Err(e) => {
                                    sink.fail(&format!("{shape} {} {path}", dtype.name()), e);
                                    continue;
                                }
                            };
                            encode.sort_by(|a, b| a.total_cmp(b));
                            let encode_us = encode.get(encode.len() / 2).copied();
                            let gpu_ns = (profiled && !gpu.is_empty()).then(|| {
                                let mid = |mut v: Vec<f64>| {
                                    v.sort_by(|a, b| a.total_cmp(b));
                                    v[v.len() / 2]
                                };
                                (
                                    mid(gpu.iter().map(|g| g.input_projection_ns).collect()),
                                    mid(gpu.iter().map(|g| g.recurrence_ns).collect()),
                                )
                            });
                            let max_err = match (&reference, &last) {
                                (Some(r), Some(g)) => {
                                    Some(Tolerance::F32.compare(&g.y, &r.y).max_abs_err)
                                }
                                _ => None,
                            };
                            let check = match (dtype_ref, &last) {
                                (Some(r), Some(g)) => {
                                    Some(Tolerance::for_dtype(dtype).compare(&g.y, &r.y))
                                }
                                _ => None,
                            };
                            if let Some(c) = check.as_ref().filter(|c| !c.passed()) {
                                eprintln!(
                                    "gru-bench: {shape} {} {path}: Y outside the tolerance: {c}",
                                    dtype.name()
                                );
                            }
                            let row = Row {
                                convention,
                                dtype,
                                i,
                                h,
                                b,
                                t,
                                path: path.into(),
                                times,
                                max_err,
                                check,
                                gpu_ns,
                                encode_us,
                                structure: Some(model.step_structure(b)),
                            };
                            sink.push(&row.table_line(), &row.json())?;
                            rows.push(row);
                        }
                    }
                }
            }
        }
    }
    Ok(rows)
}

/// One stream count of `--streaming`.
struct StreamRow {
    dtype: Dtype,
    streams: usize,
    /// Round trip of each measured feed.
    latency: Vec<Duration>,
    /// GPU time of each measured feed's layers (timestamps), ns.
    gpu_ns: Vec<f64>,
    max_err: f64,
    /// Stream 0's outputs against the reference on the dtype-rounded weights and inputs.
    check: Option<Comparison>,
    /// The parallel structure of one step of a feed of all the streams.
    structure: StepStructure,
}

/// The reference of `network` on `x` (`[T, B, I]`) as a model stored in `dtype` computes it:
/// weights and X rounded to `dtype`, then the f64 reference.
fn dtype_reference(
    network: &GruModel,
    dtype: Dtype,
    x: &[f32],
    t: usize,
    b: usize,
) -> Result<gru_wgpu::GruOutput, String> {
    let rx: Vec<f32> = x.iter().map(|&v| dtype.round(v)).collect();
    cpu::forward_model(&network.rounded_to(dtype), &GruInput::new(&rx, t, b))
        .map_err(|e| e.to_string())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied()
}

/// The benchmarks' layer: every weight uniform in ±1/√H (PyTorch's initialisation), drawn
/// from seeds `seed + 1` (W), `seed + 2` (R) and `seed + 3` (B).
fn bench_layer(
    convention: Convention,
    i: usize,
    h: usize,
    seed: u64,
) -> Result<GruWeights, String> {
    let k = 1.0 / (h as f32).sqrt();
    GruWeights::new(
        convention,
        i,
        h,
        uniform(seed + 1, 3 * h * i, k),
        uniform(seed + 2, 3 * h * h, k),
        Some(uniform(seed + 3, 6 * h, k)),
    )
    .map_err(|e| e.to_string())
}

/// `--streaming`: a session of N streams of an L-layer model fed one frame per stream per call.
fn streaming(o: &Options) -> Result<(), String> {
    let ctx = GpuContext::new().map_err(|e| e.to_string())?;
    eprintln!("adapter: {}", ctx.describe());
    let h = o.hidden[0];
    let i = o.input.unwrap_or(128);
    let convention = o.conventions[0];
    let layers = (0..o.layers.max(1))
        .map(|l| {
            let input = if l == 0 { i } else { h };
            bench_layer(convention, input, h, 10 * l as u64).map(|w| vec![w])
        })
        .collect::<Result<Vec<_>, String>>()?;
    let network = GruModel::new(Direction::Forward, layers, None).map_err(|e| e.to_string())?;
    let mut sink = Sink::new(o.json.clone());
    println!(
        "{:<5} {:>6} {:>14} {:>10} {:>10} {:>14} {:>18} {:>10}",
        "type",
        "streams",
        "latency µs/frame",
        "min",
        "max",
        "gpu µs/frame",
        "gpu µs/stream-step",
        "max err"
    );
    let total = o.dtypes.len() * o.streams.len();
    let mut done = 0;
    for &dtype in &o.dtypes {
        for &n in &o.streams {
            done += 1;
            eprintln!(
                "{} {done}/{total} {} N={n} streams, L={} I={i} H={h}",
                progress_bar(done - 1, total),
                dtype.name(),
                o.layers
            );
            match stream_row(o, &ctx, &network, dtype, n) {
                Ok(r) => {
                    let (line, json) = r.render(o, convention, i, h);
                    sink.push(&line, &json)?;
                }
                Err(e) => sink.fail(&format!("{} N={n} streams", dtype.name()), e),
            }
        }
    }
    if sink.failures > 0 {
        return Err(format!("{} stream count(s) failed (above)", sink.failures));
    }
    Ok(())
}

/// One stream count of `--streaming`: `n` streams of `network` fed one frame per call.
fn stream_row(
    o: &Options,
    ctx: &GpuContext,
    network: &GruModel,
    dtype: Dtype,
    n: usize,
) -> Result<StreamRow, String> {
    let (h, i) = (network.hidden_size(), network.input_size());
    let options = ModelOptions {
        dtype,
        allow_f32_fallback: false,
    };
    let mut model = GpuGru::from_model_with(ctx, network, &options).map_err(|e| e.to_string())?;
    let profiled = model.set_profiling(true).is_ok();
    if let Some(kind) = o.choose_as {
        choose_as(&mut model, kind, n, None, None);
    }
    let structure = model.step_structure(n);
    let mut session = GruSession::new(model, n).map_err(|e| e.to_string())?;
    let ids = (0..n)
        .map(|_| session.open())
        .collect::<gru_wgpu::Result<Vec<_>>>()
        .map_err(|e| e.to_string())?;
    let frames = o.warmup + o.frames.max(1);
    let mut row = StreamRow {
        dtype,
        streams: n,
        latency: Vec::new(),
        gpu_ns: Vec::new(),
        max_err: 0.0,
        check: None,
        structure,
    };
    let mut stream0_x = Vec::new();
    let mut stream0_y = Vec::new();
    for f in 0..frames {
        let x = uniform(100 + f as u64, n * i, 1.0);
        let start = Instant::now();
        let y = session
            .feed(&Feed::new(&ids, &x, 1))
            .map_err(|e| e.to_string())?;
        let elapsed = start.elapsed();
        stream0_x.extend_from_slice(&x[..i]);
        stream0_y.extend_from_slice(&y[..h]);
        if f >= o.warmup {
            row.latency.push(elapsed);
            if let (true, Some(t)) = (profiled, session.last_timing()) {
                row.gpu_ns.push(t.input_projection_ns + t.recurrence_ns);
            }
        }
    }
    let reference = cpu::forward_model(network, &GruInput::new(&stream0_x, frames, 1))
        .map_err(|e| e.to_string())?;
    row.max_err = Tolerance::F32.compare(&stream0_y, &reference.y).max_abs_err;
    let check = if dtype == Dtype::F32 {
        Tolerance::F32.compare(&stream0_y, &reference.y)
    } else {
        let r = dtype_reference(network, dtype, &stream0_x, frames, 1)?;
        Tolerance::for_dtype(dtype).compare(&stream0_y, &r.y)
    };
    if !check.passed() {
        eprintln!(
            "gru-bench: {} N={n} streams: stream 0 outside the tolerance: {check}",
            dtype.name()
        );
    }
    row.check = Some(check);
    Ok(row)
}

impl StreamRow {
    /// The row's line of the `--streaming` table and its JSON object.
    fn render(
        &self,
        o: &Options,
        convention: Convention,
        i: usize,
        h: usize,
    ) -> (String, StreamingRow) {
        let lat: Vec<f64> = self.latency.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        let (lmin, lmax) = lat
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let lmed = median(lat.clone()).unwrap_or(f64::NAN);
        let gpu = median(self.gpu_ns.clone()).map(|g| g / 1e3);
        let fmt = |v: Option<f64>, d: usize| match v {
            Some(v) => format!("{v:.d$}"),
            None => "-".into(),
        };
        let line = format!(
            "{:<5} {:>6} {:>16.1} {:>10.1} {:>10.1} {:>14} {:>18} {:>10.2e}",
            self.dtype.name(),
            self.streams,
            lmed,
            lmin,
            lmax,
            fmt(gpu, 1),
            fmt(gpu.map(|g| g / self.streams as f64), 3),
            self.max_err
        );
        let json = StreamingRow {
            mode: "streaming".into(),
            convention: format!("{convention:?}"),
            dtype: self.dtype.name().into(),
            layers: o.layers,
            input_size: i,
            hidden_size: h,
            streams: self.streams,
            frames: self.latency.len(),
            latency_us_median: finite(lmed),
            latency_us_min: finite(lmin),
            latency_us_max: finite(lmax),
            gpu_us_per_frame: gpu.and_then(finite),
            gpu_us_per_stream_step: gpu.and_then(|g| finite(g / self.streams as f64)),
            max_abs_err: finite(self.max_err),
            structure: StructureFields::of(Some(&self.structure)),
            check: CheckFields::of(self.check.as_ref()),
        };
        (line, json)
    }
}

/// `[#####·····]`: `done` of `total` configurations finished.
fn progress_bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 20;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    format!("[{}{}]", "#".repeat(filled), "·".repeat(WIDTH - filled))
}

/// The ratio table of `--compare`.
fn compare(ours: &str, theirs: &str) -> Result<(), String> {
    let ours = read_rows(ours)?;
    let theirs = read_rows(theirs)?;
    println!(
        "{:<12} {:>5} {:>5} {:>4} {:>5}  {:<16} {:>10}  {:<16} {:>10}  {:>8}",
        "convention", "I", "H", "B", "T", "ours", "µs/step", "theirs", "µs/step", "speed-up"
    );
    let mut matched = 0;
    for t in &theirs {
        let best = ours
            .iter()
            .filter(|o| o.key() == t.key() && o.path.starts_with("gpu") && o.dtype == t.dtype)
            .min_by(|a, b| a.us_per_step_median.total_cmp(&b.us_per_step_median));
        let Some(o) = best else { continue };
        matched += 1;
        let (c, i, h, b, steps) = t.key();
        println!(
            "{:<12} {:>5} {:>5} {:>4} {:>5}  {:<16} {:>10.1}  {:<16} {:>10.1}  {:>7.2}×",
            c,
            i,
            h,
            b,
            steps,
            o.path,
            o.us_per_step_median,
            t.path,
            t.us_per_step_median,
            t.us_per_step_median / o.us_per_step_median
        );
    }
    if matched == 0 {
        return Err("no shape appears in both files (same convention, I, H, B and T)".into());
    }
    Ok(())
}

/// An SVG line chart of µs per step against H (log-log), one line per (path, B, T, convention).
fn plot(rows: &[Row]) -> String {
    use std::collections::BTreeMap;
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows {
        let label = format!(
            "{} {} {:?} B={} T={}",
            r.path,
            r.dtype.name(),
            r.convention,
            r.b,
            r.t
        );
        series
            .entry(label)
            .or_default()
            .push((r.h as f64, r.stats_us_per_step().0));
    }
    let points: Vec<(f64, f64)> = series.values().flatten().copied().collect();
    let (w, h, left, right, top, bottom) = (900.0, 560.0, 70.0, 330.0, 20.0, 50.0);
    let lg = |v: f64| v.max(1e-9).log10();
    let (x0, x1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(lg(p.0)), b.max(lg(p.0)))
    });
    let (y0, y1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(lg(p.1)), b.max(lg(p.1)))
    });
    let (x1, y1) = (x1.max(x0 + 1e-6), y1.max(y0 + 1e-6));
    let px = |x: f64| left + (lg(x) - x0) / (x1 - x0) * (w - left - right);
    let py = |y: f64| h - bottom - (lg(y) - y0) / (y1 - y0) * (h - top - bottom);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    svg += &format!(
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    svg += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">hidden size H (log)</text>\n\
         <text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">µs per step (log)</text>\n",
        (left + w - right) / 2.0,
        h - 12.0,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0
    );
    let mut hs: Vec<f64> = points.iter().map(|p| p.0).collect();
    hs.sort_by(|a, b| a.total_cmp(b));
    hs.dedup();
    for x in hs {
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{x}</text>\n",
            px(x),
            h - bottom + 16.0
        );
    }
    for k in (y0.floor() as i32)..=(y1.ceil() as i32) {
        let v = 10f64.powi(k);
        if lg(v) < y0 - 1e-9 || lg(v) > y1 + 1e-9 {
            continue;
        }
        svg += &format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>\n\
             <line x1=\"{left}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n",
            left - 6.0,
            py(v) + 4.0,
            py(v),
            w - right,
            py(v)
        );
    }
    let colors = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf",
    ];
    for (n, (label, mut pts)) in series.into_iter().enumerate() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = colors[n % colors.len()];
        let dash = if label.starts_with("cpu") {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let coords: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        svg += &format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>\n",
            coords.join(" ")
        );
        for &(x, y) in &pts {
            svg += &format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>\n",
                px(x),
                py(y)
            );
        }
        let ly = top + 14.0 + 16.0 * n as f64;
        svg += &format!(
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\n\
             <text x=\"{}\" y=\"{}\">{label}</text>\n",
            w - right + 10.0,
            w - right + 30.0,
            w - right + 35.0,
            ly + 4.0
        );
    }
    svg + "</svg>\n"
}

fn main() -> ExitCode {
    // Usage errors exit 2 and --help exits 0, as clap does.
    let options = match Cli::parse().command() {
        Command::Compare { ours, theirs } => {
            return match compare(&ours, &theirs) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gru-bench: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Run(o) => o,
    };
    if options.call_overhead {
        return match overhead::run(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gru-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if options.train {
        return match train::run(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gru-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if options.backward {
        return match backward::run(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gru-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if options.streaming {
        return match streaming(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gru-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut sink = Sink::new(options.json.clone());
    let rows = match run(&options, &mut sink) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gru-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &options.plot {
        if let Err(e) = std::fs::write(path, plot(&rows)) {
            eprintln!("gru-bench: {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if sink.failures > 0 {
        eprintln!(
            "gru-bench: {} configuration(s) failed (above)",
            sink.failures
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
