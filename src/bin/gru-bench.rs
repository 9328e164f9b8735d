//! `gru-bench`: times the GPU forward against the CPU reference over a grid of shapes.
//!
//! ```text
//! gru-bench [--quick] [--hidden 128,256] [--batch 1,16] [--seq-len 100] [--input I]
//!           [--convention after|before|both] [--path auto|step|persistent|all]
//!           [--repeats N] [--warmup N] [--no-cpu] [--json FILE]
//! ```
//!
//! Each row: the shape, the path, µs per step and per sequence (median over `--repeats`
//! after `--warmup`, with min and max), GFLOP/s counting `2·3H·(I+H)·B` per step, and the
//! largest |GPU − CPU| on that shape. The wall time is the whole `forward` call: upload of X,
//! one submit, and the readback of Y and Y_h. Where the adapter has timestamp queries, the
//! GPU's own time is shown too: the input projection (µs per sequence) and the recurrence
//! (µs per step). Always build with `--release`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use gru_wgpu::gpu::{GpuContext, GpuGru, KernelPath};
use gru_wgpu::seeded::uniform;
use gru_wgpu::{cpu, Convention, GruInput, GruWeights, Tolerance};

struct Options {
    hidden: Vec<usize>,
    batch: Vec<usize>,
    seq_len: Vec<usize>,
    input: Option<usize>,
    conventions: Vec<Convention>,
    /// `None`: the automatic choice.
    paths: Vec<Option<KernelPath>>,
    repeats: usize,
    warmup: usize,
    cpu: bool,
    json: Option<String>,
}

const USAGE: &str = "usage: gru-bench [--quick] [--hidden 128,256] [--batch 1,16] [--seq-len 100] \
[--input I] [--convention after|before|both] [--path auto|step|persistent|all] [--repeats N] [--warmup N] [--no-cpu] [--json FILE]";

fn list(flag: &str, v: &str) -> Result<Vec<usize>, String> {
    v.split(',')
        .map(|s| match s.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{flag} expects positive integers separated by commas, got {v:?}"
            )),
        })
        .collect()
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        hidden: vec![128, 256, 512, 1024],
        batch: vec![1, 4, 16, 64],
        seq_len: vec![100],
        input: None,
        conventions: vec![Convention::ResetAfter],
        paths: vec![None],
        repeats: 5,
        warmup: 1,
        cpu: true,
        json: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--quick" => {
                o.hidden = vec![64, 256];
                o.batch = vec![1, 16];
                o.seq_len = vec![50];
                o.repeats = 3;
            }
            "--hidden" => o.hidden = list(flag, &value()?)?,
            "--batch" => o.batch = list(flag, &value()?)?,
            "--seq-len" => o.seq_len = list(flag, &value()?)?,
            "--input" => o.input = Some(list(flag, &value()?)?[0]),
            "--repeats" => o.repeats = list(flag, &value()?)?[0],
            "--warmup" => {
                let v = value()?;
                o.warmup = v
                    .parse()
                    .map_err(|_| format!("--warmup expects an integer, got {v:?}"))?
            }
            "--convention" => {
                o.conventions = match value()?.as_str() {
                    "after" | "ra" => vec![Convention::ResetAfter],
                    "before" | "rb" => vec![Convention::ResetBefore],
                    "both" => vec![Convention::ResetAfter, Convention::ResetBefore],
                    other => {
                        return Err(format!(
                            "--convention expects after, before or both, got {other:?}"
                        ))
                    }
                }
            }
            "--path" => {
                o.paths = match value()?.as_str() {
                    "auto" => vec![None],
                    "step" => vec![Some(KernelPath::StepFused)],
                    "persistent" => vec![Some(KernelPath::Persistent)],
                    "all" => vec![Some(KernelPath::StepFused), Some(KernelPath::Persistent)],
                    other => {
                        return Err(format!(
                            "--path expects auto, step, persistent or all, got {other:?}"
                        ))
                    }
                }
            }
            "--no-cpu" => o.cpu = false,
            "--json" => o.json = Some(value()?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

struct Row {
    convention: Convention,
    i: usize,
    h: usize,
    b: usize,
    t: usize,
    path: String,
    times: Vec<Duration>,
    max_err: Option<f64>,
    /// Median GPU time of the input projection and of the recurrence (timestamp queries), ns.
    gpu_ns: Option<(f64, f64)>,
}

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
    fn json(&self) -> String {
        let (median, min, max) = self.stats_us_per_step();
        format!(
            "{{\"convention\":\"{:?}\",\"input_size\":{},\"hidden_size\":{},\"batch\":{},\
             \"seq_len\":{},\"path\":\"{}\",\"us_per_step_median\":{median:.3},\
             \"us_per_step_min\":{min:.3},\"us_per_step_max\":{max:.3},\
             \"us_per_sequence_median\":{:.3},\"gflops\":{:.3},\"max_abs_err\":{},\
             \"gpu_input_projection_us\":{},\"gpu_recurrence_us_per_step\":{}}}",
            self.convention,
            self.i,
            self.h,
            self.b,
            self.t,
            self.path,
            median * self.t as f64,
            self.gflops(),
            self.max_err
                .map(|e| format!("{e:e}"))
                .unwrap_or_else(|| "null".into()),
            self.gpu_ns
                .map(|(p, _)| format!("{:.3}", p / 1e3))
                .unwrap_or_else(|| "null".into()),
            self.gpu_ns
                .map(|(_, r)| format!("{:.3}", r / 1e3 / self.t as f64))
                .unwrap_or_else(|| "null".into())
        )
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

fn run(o: &Options) -> gru_wgpu::Result<Vec<Row>> {
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
    let total = o.conventions.len() * o.hidden.len() * o.batch.len() * o.seq_len.len();
    let mut done = 0;
    for &convention in &o.conventions {
        for &h in &o.hidden {
            let i = o.input.unwrap_or(h);
            let k = 1.0 / (h as f32).sqrt();
            let weights = GruWeights::new(
                convention,
                i,
                h,
                uniform(1, 3 * h * i, k),
                uniform(2, 3 * h * h, k),
                Some(uniform(3, 6 * h, k)),
            )?;
            let mut model = match &ctx {
                Some(c) => Some(GpuGru::new(c, &weights)?),
                None => None,
            };
            for &b in &o.batch {
                for &t in &o.seq_len {
                    done += 1;
                    eprintln!("[{done}/{total}] {convention:?} I={i} H={h} B={b} T={t}");
                    let x = uniform(4, t * b * i, 1.0);
                    let input = GruInput::new(&x, t, b);
                    let reference = if o.cpu {
                        let s = Instant::now();
                        let r = cpu::forward(&weights, &input)?;
                        rows.push(Row {
                            convention,
                            i,
                            h,
                            b,
                            t,
                            path: "cpu-reference".into(),
                            times: vec![s.elapsed()],
                            max_err: None,
                            gpu_ns: None,
                        });
                        Some(r)
                    } else {
                        None
                    };
                    if let Some(model) = model.as_mut() {
                        for &choice in &o.paths {
                            if model.set_kernel_path(choice).is_err() {
                                eprintln!("  (no {choice:?} path for H={h}; skipped)");
                                continue;
                            }
                            let path = match model.kernel_path(b) {
                                KernelPath::StepFused => "gpu-step-fused",
                                KernelPath::Persistent => "gpu-persistent",
                            };
                            let mut last = None;
                            let profiled = model.set_profiling(true).is_ok();
                            time_n(o.warmup, || model.forward(&input).map(drop))?;
                            let mut gpu = Vec::new();
                            let times = time_n(o.repeats.max(1), || {
                                last = Some(model.forward(&input)?);
                                gpu.extend(model.last_timing());
                                Ok(())
                            })?;
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
                            rows.push(Row {
                                convention,
                                i,
                                h,
                                b,
                                t,
                                path: path.into(),
                                times,
                                max_err,
                                gpu_ns,
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(rows)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gru-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rows = match run(&options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gru-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{:<12} {:>5} {:>5} {:>4} {:>5}  {:<15} {:>10} {:>10} {:>10} {:>12} {:>8} {:>12} {:>13} {:>9}",
        "convention",
        "I",
        "H",
        "B",
        "T",
        "path",
        "µs/step",
        "min",
        "max",
        "µs/sequence",
        "GFLOP/s",
        "gpu proj µs",
        "gpu µs/step",
        "max err"
    );
    for r in &rows {
        let (median, min, max) = r.stats_us_per_step();
        let (proj, rec) = match r.gpu_ns {
            Some((p, q)) => (
                format!("{:.1}", p / 1e3),
                format!("{:.2}", q / 1e3 / r.t as f64),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<12} {:>5} {:>5} {:>4} {:>5}  {:<15} {:>10.1} {:>10.1} {:>10.1} {:>12.0} {:>8.2} {:>12} {:>13} {:>9}",
            format!("{:?}", r.convention),
            r.i,
            r.h,
            r.b,
            r.t,
            r.path,
            median,
            min,
            max,
            median * r.t as f64,
            r.gflops(),
            proj,
            rec,
            r.max_err.map(|e| format!("{e:.2e}")).unwrap_or_else(|| "-".into())
        );
    }
    if let Some(path) = &options.json {
        let body = format!(
            "[\n{}\n]\n",
            rows.iter().map(Row::json).collect::<Vec<_>>().join(",\n")
        );
        if let Err(e) = std::fs::write(path, body) {
            eprintln!("gru-bench: {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
