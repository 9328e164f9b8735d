//! `gru-bench` as a program: its JSON rows (fields, paths, errors against the reference), the
//! `--streaming` rows, `--compare`, and rows kept on disk while a run is still going (a run cut
//! short by a timeout on a lent GPU keeps what it finished). Shapes are tiny: speed is not
//! checked here (BENCHMARKS.md).

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::TempDir;
use common::gpu;

const BENCH: &str = env!("CARGO_BIN_EXE_gru-bench");

fn rows(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", path.display()));
    value.as_array().expect("a JSON array").clone()
}

/// The per-element check a row carries (gru-bench's `check_json`): every element within
/// onnxruntime's f32 rule `|a − e| ≤ 1e-5 + 1e-4·|e|` (gru_wgpu::Tolerance::F32) of the f64
/// reference, with the worst element printed on failure.
fn assert_within_f32_tolerance(what: &str, r: &serde_json::Value) {
    let f = gru_wgpu::Tolerance::F32;
    assert_eq!(
        (r["tolerance_atol"].as_f64(), r["tolerance_rtol"].as_f64()),
        (Some(f.atol), Some(f.rtol)),
        "{what}: not checked with the f32 tolerance: {r}"
    );
    let detail = format!(
        "{what}: {} elements outside |a−e| ≤ {:e} + {:e}·|e|; worst at index {}: got {}, \
         expected {}, |a−e| = {} × the bound; row {r}",
        r["elements_outside_tolerance"],
        f.atol,
        f.rtol,
        r["worst_index"],
        r["worst_got"],
        r["worst_expected"],
        r["worst_ratio"]
    );
    assert_eq!(r["within_tolerance"].as_bool(), Some(true), "{detail}");
    assert_eq!(
        r["elements_outside_tolerance"].as_u64(),
        Some(0),
        "{detail}"
    );
    let ratio = r["worst_ratio"].as_f64().unwrap_or(f64::INFINITY);
    assert!(ratio <= 1.0, "{detail}");
    // The worst element as the row reports it, checked here with the library's rule.
    let (got, expected) = (r["worst_got"].as_f64(), r["worst_expected"].as_f64());
    let (Some(got), Some(expected)) = (got, expected) else {
        panic!("{detail}: no worst element");
    };
    assert!(f.accepts(got as f32, expected as f32), "{detail}");
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BENCH)
        .args(args)
        .output()
        .expect("gru-bench runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every GPU path of both conventions on two tiny shapes: one JSON row per path with the
/// documented fields, and each element of each GPU row's Y within the f32 tolerance of the
/// CPU reference (the row's per-element check).
#[test]
fn grid_rows_have_every_path_and_match_the_reference() {
    let has_gpu = gpu().is_some();
    let dir = TempDir::new("grid");
    let json = dir.join("ours.json");
    let (code, stdout, stderr) = run(&[
        "--hidden",
        "8,20",
        "--batch",
        "3",
        "--seq-len",
        "4",
        "--convention",
        "both",
        "--path",
        "all",
        "--step-kernel",
        "all",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "gru-bench failed: {stderr}");
    let rows = rows(&json);
    // Per convention and H: the reference, step-fused staged, direct, split and
    // split-workgroup, persistent.
    let per_shape = if has_gpu { 6 } else { 1 };
    assert_eq!(rows.len(), 2 * 2 * per_shape, "rows: {rows:#?}");
    assert_eq!(
        stdout.lines().count(),
        1 + rows.len(),
        "one table line per row under the header: {stdout}"
    );
    for r in &rows {
        for field in [
            "convention",
            "dtype",
            "input_size",
            "hidden_size",
            "batch",
            "seq_len",
            "path",
            "us_per_step_median",
            "us_per_step_min",
            "us_per_step_max",
            "us_per_sequence_median",
            "gflops",
            "max_abs_err",
            "gpu_input_projection_us",
            "gpu_recurrence_us_per_step",
            "host_encode_us_per_step",
            "tolerance_atol",
            "tolerance_rtol",
            "within_tolerance",
            "elements_outside_tolerance",
            "worst_index",
            "worst_got",
            "worst_expected",
            "worst_ratio",
            "step_kernel",
            "step_dispatches",
            "step_workgroups",
            "step_invocations",
            "step_longest_loop",
        ] {
            assert!(r.get(field).is_some(), "no {field:?} in {r}");
        }
        let path = r["path"].as_str().unwrap();
        let min = r["us_per_step_min"].as_f64().unwrap();
        let med = r["us_per_step_median"].as_f64().unwrap();
        let max = r["us_per_step_max"].as_f64().unwrap();
        assert!(0.0 < min && min <= med && med <= max, "times of {r}");
        if path == "cpu-reference" {
            assert!(
                r["within_tolerance"].is_null(),
                "the reference's own row: {r}"
            );
            assert!(r["step_kernel"].is_null(), "no structure on the CPU: {r}");
            continue;
        }
        let kernel = r["step_kernel"].as_str().unwrap();
        let expected = match path {
            "gpu-step-fused" => &["staged"][..],
            "gpu-step-direct" => &["direct"],
            "gpu-step-split" => &["split-subgroup", "split-workgroup"],
            "gpu-step-split-wg" => &["split-workgroup"],
            _ => &["persistent"],
        };
        assert!(expected.contains(&kernel), "{path} ran {kernel}: {r}");
        let (workgroups, lanes) = (
            r["step_workgroups"].as_u64().unwrap(),
            r["step_invocations"].as_u64().unwrap(),
        );
        assert!(workgroups >= 1 && lanes >= workgroups, "structure of {r}");
        assert!(
            r["max_abs_err"].as_f64().is_some(),
            "a GPU row without its error: {r}"
        );
        let shape = format!("{path} {} H={} B=3 T=4", r["convention"], r["hidden_size"]);
        assert_within_f32_tolerance(&shape, r);
    }
    if has_gpu {
        let paths: Vec<&str> = rows.iter().map(|r| r["path"].as_str().unwrap()).collect();
        for p in [
            "gpu-step-fused",
            "gpu-step-direct",
            "gpu-step-split",
            "gpu-step-split-wg",
            "gpu-persistent",
        ] {
            assert_eq!(
                paths.iter().filter(|&&q| q == p).count(),
                4,
                "{p}: {paths:?}"
            );
        }
    }
}

/// `--choose-as gpu` makes the automatic choices as on a discrete GPU, whatever the adapter:
/// the split step kernel at H = 256 with the structure issue 13 asks of it at B = 1 (at least
/// 16 · 3H lanes per step, a longest loop of at most H/16 + 16 trips) and at B = 16 (at least
/// 128 workgroups), and the persistent path at H = 32.
#[test]
fn choose_as_gpu_reports_the_split_kernel_structure() {
    if gpu().is_none() {
        return;
    }
    let dir = TempDir::new("choose-as");
    let json = dir.join("gpu.json");
    let (code, _, stderr) = run(&[
        "--hidden",
        "32,256",
        "--batch",
        "1,16",
        "--seq-len",
        "2",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--no-cpu",
        "--choose-as",
        "gpu",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "gru-bench failed: {stderr}");
    let rows = rows(&json);
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for r in &rows {
        let (h, b) = (
            r["hidden_size"].as_u64().unwrap(),
            r["batch"].as_u64().unwrap(),
        );
        let path = r["path"].as_str().unwrap();
        if h == 32 {
            assert_eq!(path, "gpu-persistent", "{r}");
            continue;
        }
        assert_eq!(path, "gpu-step-split", "{r}");
        assert!(
            r["step_kernel"].as_str().unwrap().starts_with("split-"),
            "{r}"
        );
        if b == 1 {
            assert!(r["step_invocations"].as_u64().unwrap() >= 16 * 3 * h, "{r}");
            assert!(
                r["step_longest_loop"].as_u64().unwrap() <= h / 16 + 16,
                "{r}"
            );
        } else {
            assert!(r["step_workgroups"].as_u64().unwrap() >= 128, "{r}");
        }
    }
}

/// `--streaming`: a row per stream count, each element of stream 0's outputs within the f32
/// tolerance of its reference.
#[test]
fn streaming_rows_match_the_reference() {
    if gpu().is_none() {
        return;
    }
    let dir = TempDir::new("streaming");
    let json = dir.join("streaming.json");
    let (code, stdout, stderr) = run(&[
        "--streaming",
        "--streams",
        "1,5",
        "--layers",
        "2",
        "--hidden",
        "12",
        "--input",
        "6",
        "--frames",
        "3",
        "--warmup",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "gru-bench --streaming failed: {stderr}");
    let rows = rows(&json);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    for (r, n) in rows.iter().zip([1, 5]) {
        assert_eq!(r["streams"].as_u64(), Some(n), "{r}");
        assert_eq!(r["layers"].as_u64(), Some(2), "{r}");
        assert_eq!(r["frames"].as_u64(), Some(3), "{r}");
        assert!(r["max_abs_err"].as_f64().is_some(), "{r}");
        assert!(r["step_kernel"].as_str().is_some(), "{r}");
        assert!(r["step_workgroups"].as_u64().unwrap() >= 1, "{r}");
        assert_within_f32_tolerance(&format!("stream 0 of {n} (L=2, I=6, H=12, 4 frames)"), r);
    }
}

/// `--train`: one row per shape with the step's time, the epoch's (⌈N/B⌉ steps), the CPU
/// reference step's, and the step structure of the training kernels.
#[test]
fn train_rows_have_the_step_epoch_and_structure() {
    if gpu().is_none() {
        return;
    }
    let dir = TempDir::new("train");
    let json = dir.join("train.json");
    let (code, stdout, stderr) = run(&[
        "--train",
        "--hidden",
        "8",
        "--input",
        "3",
        "--batch",
        "4,6",
        "--seq-len",
        "5",
        "--repeats",
        "2",
        "--epoch-size",
        "100",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "gru-bench --train failed: {stderr}");
    assert!(stdout.starts_with("convention"), "{stdout}");
    let rows = rows(&json);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for (r, b) in rows.iter().zip([4u64, 6]) {
        assert_eq!(
            (r["b"].as_u64(), r["h"].as_u64()),
            (Some(b), Some(8)),
            "{r}"
        );
        let step = r["step_ms"].as_f64().expect("step_ms");
        assert!(step > 0.0, "{r}");
        let epoch = r["epoch_s"].as_f64().expect("epoch_s");
        let steps = 100u64.div_ceil(b) as f64;
        assert!(
            (epoch - step * steps / 1e3).abs() <= 1e-9 * epoch.max(1.0),
            "{r}"
        );
        assert!(r["cpu_step_ms"].as_f64().is_some(), "{r}");
        assert!(r["backward_kernel"].as_str().is_some(), "{r}");
        assert!(r["train_workgroups"].as_u64().unwrap() >= 1, "{r}");
        assert!(r["backward_longest_loop"].as_u64().unwrap() >= 8, "{r}");
    }
}

/// `--compare` pairs rows by shape and prints their ratio: ours at 2 µs/step against theirs at
/// 5 is a 2.50× speed-up; a shape only one side has is left out.
#[test]
fn compare_prints_the_ratio_per_shape() {
    let dir = TempDir::new("compare");
    let row = |path: &str, h: u32, us: f64| {
        format!(
            "{{\"convention\":\"ResetAfter\",\"input_size\":{h},\"hidden_size\":{h},\"batch\":1,\
             \"seq_len\":10,\"path\":\"{path}\",\"us_per_step_median\":{us}}}"
        )
    };
    let ours = format!(
        "[{},{},{}]",
        row("gpu-step-fused", 64, 3.0),
        row("gpu-persistent", 64, 2.0),
        row("gpu-persistent", 128, 9.0)
    );
    let theirs = format!("[{}]", row("torch-cuda", 64, 5.0));
    dir.write("ours.json", ours.as_bytes());
    dir.write("theirs.json", theirs.as_bytes());
    let (code, stdout, stderr) = run(&[
        "--compare",
        dir.join("ours.json").to_str().unwrap(),
        dir.join("theirs.json").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("ResetAfter"))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].contains("gpu-persistent") && lines[0].contains("2.50×"),
        "{}",
        lines[0]
    );
}

/// A usage error (an unknown dtype, a zero in a list, `--compare` with one file or beside
/// another flag) exits 2 and says what was wrong; `--help` exits 0 and names the flags.
#[test]
fn usage_errors_exit_2() {
    for (args, says) in [
        (&["--dtype", "f64"][..], "f64"),
        (&["--hidden", "128,0"][..], "--hidden"),
        (&["--compare", "a.json"][..], "--compare"),
        (
            &["--compare", "a.json", "b.json", "--quick"][..],
            "--compare",
        ),
        (&["--frobnicate"][..], "--frobnicate"),
    ] {
        let (code, _, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let (code, stdout, stderr) = run(&["--help"]);
    assert_eq!(code, Some(0), "{stderr}");
    for flag in [
        "--streaming",
        "--compare",
        "--step-kernel",
        "--convention",
        "--json",
    ] {
        assert!(stdout.contains(flag), "{flag}: {stdout}");
    }
}

/// The JSON file holds every finished row while the run goes on: killed part-way, it is a
/// whole JSON array of the rows done so far. The second shape's CPU reference (f64 loops over
/// 160 GFLOP) takes minutes on any machine, so the run is surely still going when the first
/// shape's rows (reference and GPU) are on disk.
#[test]
fn rows_are_on_disk_before_the_run_ends() {
    if gpu().is_none() {
        return;
    }
    let dir = TempDir::new("partial");
    let json = dir.join("partial.json");
    let mut child = Command::new(BENCH)
        .args([
            "--hidden",
            "8,1024",
            "--batch",
            "64",
            "--seq-len",
            "200",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--json",
            json.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gru-bench starts");
    let start = Instant::now();
    let mut seen = 0;
    let mut exited = None;
    while start.elapsed() < Duration::from_secs(120) && seen < 2 {
        exited = child.try_wait().expect("wait");
        if exited.is_some() {
            break;
        }
        if json.exists() {
            seen = rows(&json).len();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        exited, None,
        "gru-bench ended before its first rows were seen"
    );
    assert_eq!(seen, 2, "rows on disk after {:?}", start.elapsed());
    // Killed in the second shape's reference: still a whole array of the first shape's rows.
    assert_eq!(rows(&json).len(), 2);
}
