//! The `gru` binary end to end: runs on the CPU and the GPU against `cpu::forward`, usage
//! errors, malformed files, and `gru info`. Every failure must be exactly one line on stderr
//! (besides the Vulkan loader's XDG_RUNTIME_DIR notice) and never a panic.

use crate::common;

use std::path::Path;

use common::cli::{Run, TempDir};
use common::raw_npy;
use common::{random_weights, Rng};
use gru_wgpu::{cpu, npy, Convention, GruInput, GruOutput, GruWeights, Tolerance};

/// Runs `gru args…` in `dir` with the extra environment `env`.
fn gru_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    common::cli::run_in(env!("CARGO_BIN_EXE_gru"), dir, args, env)
}

const T: usize = 3;
const B: usize = 2;
const I: usize = 3;
const H: usize = 4;

/// A small problem written as ONNX-shaped `.npy` files in `dir`.
struct Problem {
    weights: GruWeights,
    x: Vec<f32>,
    h0: Vec<f32>,
}

impl Problem {
    fn new(seed: u64, convention: Convention, bias: bool) -> Self {
        let mut rng = Rng::new(seed);
        let weights = random_weights(&mut rng, convention, I, H, 1.0, bias);
        let x = rng.vec(T * B * I, 1.0);
        let h0 = rng.vec(B * H, 1.0);
        Problem { weights, x, h0 }
    }

    /// Writes x.npy, w.npy, r.npy, b.npy and h0.npy.
    fn write(&self, dir: &TempDir) {
        let w = &self.weights;
        npy::write_f32(&dir.join("x.npy"), &[T, B, I], &self.x).unwrap();
        npy::write_f32(&dir.join("w.npy"), &[1, 3 * H, I], w.w()).unwrap();
        npy::write_f32(&dir.join("r.npy"), &[1, 3 * H, H], w.r()).unwrap();
        npy::write_f32(&dir.join("b.npy"), &[1, 6 * H], w.b()).unwrap();
        npy::write_f32(&dir.join("h0.npy"), &[1, B, H], &self.h0).unwrap();
    }

    fn expected(&self, initial_h: bool) -> GruOutput {
        let mut input = GruInput::new(&self.x, T, B);
        if initial_h {
            input = input.with_initial_h(&self.h0);
        }
        cpu::forward(&self.weights, &input).unwrap()
    }
}

/// The standard argument list (the files [`Problem::write`] makes) plus `extra`.
fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run", "--x", "x.npy", "--w", "w.npy", "--r", "r.npy", "--y", "y.npy", "--y-h", "yh.npy",
    ];
    v.extend_from_slice(extra);
    v
}

/// Reads y.npy and yh.npy back, checking their ONNX shapes.
fn outputs(dir: &TempDir) -> (Vec<f32>, Vec<f32>) {
    let y = npy::read_f32(&dir.join("y.npy")).unwrap();
    let y_h = npy::read_f32(&dir.join("yh.npy")).unwrap();
    assert_eq!(
        y.shape,
        vec![T, 1, B, H],
        "Y is [seq_length, 1, batch, hidden]"
    );
    assert_eq!(y_h.shape, vec![1, B, H], "Y_h is [1, batch, hidden]");
    (y.data, y_h.data)
}

fn assert_close(context: &str, got: &[f32], expected: &[f32]) {
    let c = Tolerance::F32.compare(got, expected);
    assert!(c.passed(), "{context}: {c}");
}

// ---------------------------------------------------------------------------------------------
// Runs

#[test]
fn cpu_run_matches_reference_reset_before_with_bias_and_initial_h() {
    let dir = TempDir::new("cpu-rb");
    let p = Problem::new(1, Convention::ResetBefore, true);
    p.write(&dir);
    let run = gru_in(
        dir.path(),
        &run_args(&["--b", "b.npy", "--initial-h", "h0.npy", "--device", "cpu"]),
        &[],
    );
    run.assert_success("cpu run");
    assert!(run.stderr.contains("ran on the CPU"), "{}", run.stderr);
    assert!(
        run.stderr.contains("linear_before_reset=0"),
        "{}",
        run.stderr
    );
    let (y, y_h) = outputs(&dir);
    let expected = p.expected(true);
    assert_eq!(y, expected.y, "same code path: bit-identical");
    assert_eq!(y_h, expected.y_h);
}

#[test]
fn cpu_run_linear_before_reset_without_bias() {
    let dir = TempDir::new("cpu-ra");
    let p = Problem::new(2, Convention::ResetAfter, false);
    p.write(&dir);
    let run = gru_in(
        dir.path(),
        &run_args(&["--linear-before-reset", "--device=cpu"]),
        &[],
    );
    run.assert_success("cpu run, linear_before_reset");
    assert!(
        run.stderr.contains("linear_before_reset=1"),
        "{}",
        run.stderr
    );
    let (y, y_h) = outputs(&dir);
    let expected = p.expected(false);
    assert_eq!(y, expected.y);
    assert_eq!(y_h, expected.y_h);
}

#[test]
fn float64_inputs_are_accepted() {
    let dir = TempDir::new("f64");
    let p = Problem::new(3, Convention::ResetBefore, true);
    p.write(&dir);
    // Overwrite X as '<f8', as np.save writes a default float64 array.
    let data: Vec<u8> = p.x.iter().flat_map(|&v| (v as f64).to_le_bytes()).collect();
    std::fs::write(
        dir.join("x.npy"),
        raw_npy("<f8", false, &format!("({T}, {B}, {I})"), &data),
    )
    .unwrap();
    let run = gru_in(
        dir.path(),
        &run_args(&["--b", "b.npy", "--device", "cpu"]),
        &[],
    );
    run.assert_success("float64 X");
    let (y, _) = outputs(&dir);
    assert_eq!(y, p.expected(false).y);
}

#[test]
fn gpu_run_matches_cpu() {
    let Some(_) = common::gpu() else { return };
    for (seed, convention, lbr) in [
        (10, Convention::ResetBefore, None),
        (11, Convention::ResetAfter, Some("--linear-before-reset")),
    ] {
        let dir = TempDir::new(&format!("gpu-{seed}"));
        let p = Problem::new(seed, convention, true);
        p.write(&dir);
        let mut extra = vec!["--b", "b.npy", "--initial-h", "h0.npy", "--device", "gpu"];
        extra.extend(lbr);
        let run = gru_in(dir.path(), &run_args(&extra), &[]);
        run.assert_success(&format!("gpu run {convention:?}"));
        assert!(run.stderr.contains("ran on the GPU"), "{}", run.stderr);
        let (y, y_h) = outputs(&dir);
        let expected = p.expected(true);
        assert_close(&format!("Y {convention:?}"), &y, &expected.y);
        assert_close(&format!("Y_h {convention:?}"), &y_h, &expected.y_h);
    }
}

/// `--dtype f16`: the GPU stores weights and activations in f16; the outputs stay float32
/// and are within onnxruntime's f16 tolerance of the reference (where the adapter has
/// SHADER_F16; otherwise `--device gpu` must name the missing feature).
#[test]
fn dtype_f16_runs_within_the_f16_tolerance_or_names_the_missing_feature() {
    let Some(ctx) = common::gpu() else { return };
    let has_f16 = common::dtypes(ctx).contains(&gru_wgpu::Dtype::F16);
    let dir = TempDir::new("dtype-f16");
    let p = Problem::new(12, Convention::ResetAfter, true);
    p.write(&dir);
    let run = gru_in(
        dir.path(),
        &run_args(&[
            "--b",
            "b.npy",
            "--initial-h",
            "h0.npy",
            "--linear-before-reset",
            "--device",
            "gpu",
            "--dtype",
            "f16",
        ]),
        &[],
    );
    if !has_f16 {
        assert!(run.stderr.contains("SHADER_F16"), "{}", run.stderr);
        return;
    }
    run.assert_success("gpu run --dtype f16");
    assert!(run.stderr.contains("f16 storage"), "{}", run.stderr);
    let (y, y_h) = outputs(&dir);
    let expected = p.expected(true);
    for (name, got, want) in [("Y", &y, &expected.y), ("Y_h", &y_h, &expected.y_h)] {
        let c = Tolerance::F16.compare(got, want);
        assert!(c.passed(), "{name} with --dtype f16: {c}");
    }
    // f16 really rounds: not within the f32 tolerance everywhere.
    assert!(!Tolerance::F32.compare(&y, &expected.y).passed());
}

/// `--dtype f16` with inputs beyond f16's range (onnxruntime's 1e20 "saturating inputs"):
/// the values saturate to ±65504, stderr says how many of which array, and no output is NaN
/// (an overflow to ±inf made `inf − inf` = NaN in the input projection); f32 says nothing.
#[test]
fn dtype_f16_saturates_inputs_beyond_its_range_and_says_how_many() {
    let Some(ctx) = common::gpu() else { return };
    if !common::dtypes(ctx).contains(&gru_wgpu::Dtype::F16) {
        return;
    }
    let dir = TempDir::new("dtype-f16-saturate");
    let mut p = Problem::new(13, Convention::ResetBefore, true);
    for (k, v) in p.x.iter_mut().enumerate() {
        *v *= if k % 3 == 0 { 1e20 } else { 1.0 };
    }
    let huge = p.x.iter().filter(|v| v.abs() > 65504.0).count();
    assert!(huge > 0);
    p.write(&dir);
    let args = run_args(&["--b", "b.npy", "--device", "gpu", "--dtype", "f16"]);
    let run = gru_in(dir.path(), &args, &[]);
    run.assert_success("gpu run --dtype f16 with 1e20 inputs");
    let note = format!(
        "gru: note: --dtype f16 stored values beyond its range as ±65504 (its largest finite \
         value): {huge} of X; --dtype f32 keeps them"
    );
    assert!(
        run.lines().contains(&note.as_str()),
        "expected {note:?} in {:?}",
        run.lines()
    );
    let (y, y_h) = outputs(&dir);
    let nan = y.iter().chain(&y_h).filter(|v| v.is_nan()).count();
    assert_eq!(nan, 0, "{nan} NaN outputs from finite inputs");
    // The f64 reference on the saturated inputs, within the f16 tolerance.
    let rx: Vec<f32> = p.x.iter().map(|&v| gru_wgpu::Dtype::F16.round(v)).collect();
    let rw = common::round_weights(&p.weights, gru_wgpu::Dtype::F16);
    let want = cpu::forward(&rw, &GruInput::new(&rx, T, B)).unwrap();
    for (name, got, want) in [("Y", &y, &want.y), ("Y_h", &y_h, &want.y_h)] {
        let c = Tolerance::F16.compare(got, want);
        assert!(c.passed(), "{name}: {c}");
    }
    // f32 keeps the values: no note.
    let args = run_args(&["--b", "b.npy", "--device", "gpu"]);
    let run = gru_in(dir.path(), &args, &[]);
    run.assert_success("gpu run --dtype f32 with 1e20 inputs");
    assert!(!run.stderr.contains("beyond its range"), "{}", run.stderr);
}

#[test]
fn auto_falls_back_to_the_cpu_when_no_adapter_matches() {
    let dir = TempDir::new("auto-fallback");
    let p = Problem::new(4, Convention::ResetBefore, true);
    p.write(&dir);
    let run = gru_in(
        dir.path(),
        &run_args(&["--b", "b.npy"]),
        &[("WGPU_ADAPTER_NAME", "no-such-adapter-anywhere")],
    );
    run.assert_success("auto without a matching adapter");
    let lines = run.lines();
    let fallback: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("running on the CPU reference path"))
        .collect();
    assert_eq!(fallback.len(), 1, "{lines:?}");
    assert!(
        fallback[0].starts_with("gru: no GPU adapter ("),
        "{lines:?}"
    );
    let (y, y_h) = outputs(&dir);
    let expected = p.expected(false);
    assert_eq!(y, expected.y);
    assert_eq!(y_h, expected.y_h);
}

#[test]
fn device_gpu_without_adapter_is_an_error() {
    let dir = TempDir::new("gpu-none");
    Problem::new(5, Convention::ResetBefore, false).write(&dir);
    let run = gru_in(
        dir.path(),
        &run_args(&["--device", "gpu"]),
        &[("WGPU_ADAPTER_NAME", "no-such-adapter-anywhere")],
    );
    let line = run.one_error(1, "--device gpu without adapter", &[]);
    assert!(line.contains("no GPU adapter"), "{line}");
    assert!(line.contains("--device cpu"), "{line}");
    assert!(!dir.join("y.npy").exists());
}

// ---------------------------------------------------------------------------------------------
// Malformed inputs

fn zeros(shape: &[usize]) -> Vec<f32> {
    vec![0.0; shape.iter().product()]
}

#[test]
fn malformed_files_give_one_line_and_no_panic() {
    type Setup = fn(&TempDir);
    let cases: Vec<(&str, Setup, &[&str], &[&str])> = vec![
        (
            "garbage X",
            |d| std::fs::write(d.join("x.npy"), b"\x00\xffnot numpy at all\n\x01\x02").unwrap(),
            &[],
            &["x.npy", "not a .npy file"],
        ),
        (
            "truncated X data",
            |d| {
                let full = npy::encode_f32(&[T, B, I], &zeros(&[T, B, I])).unwrap();
                std::fs::write(d.join("x.npy"), &full[..full.len() - 5]).unwrap()
            },
            &[],
            &["x.npy", "truncated"],
        ),
        (
            "truncated X header",
            |d| {
                let full = npy::encode_f32(&[T, B, I], &zeros(&[T, B, I])).unwrap();
                std::fs::write(d.join("x.npy"), &full[..40]).unwrap()
            },
            &[],
            &["x.npy", "truncated"],
        ),
        (
            "empty W",
            |d| std::fs::write(d.join("w.npy"), b"").unwrap(),
            &[],
            &["w.npy", "empty"],
        ),
        (
            "W input_size disagrees with X",
            |d| npy::write_f32(&d.join("w.npy"), &[1, 3 * H, 5], &zeros(&[1, 3 * H, 5])).unwrap(),
            &[],
            &[
                "W (w.npy) has shape (1, 12, 5), expected (1, 12, 3)",
                "x.npy",
            ],
        ),
        (
            "Fortran-order W",
            |d| {
                let data = vec![0u8; 4 * 3 * H * I];
                let shape = format!("(1, {}, {})", 3 * H, I);
                std::fs::write(d.join("w.npy"), raw_npy("<f4", true, &shape, &data)).unwrap()
            },
            &[],
            &["w.npy", "Fortran", "np.ascontiguousarray(a)"],
        ),
        (
            "int64 X",
            |d| {
                let data = vec![0u8; 8 * T * B * I];
                let shape = format!("({T}, {B}, {I})");
                std::fs::write(d.join("x.npy"), raw_npy("<i8", false, &shape, &data)).unwrap()
            },
            &[],
            &["x.npy", "'<i8'", "a.astype(np.float32)"],
        ),
        (
            "2-D X",
            |d| npy::write_f32(&d.join("x.npy"), &[T, I], &zeros(&[T, I])).unwrap(),
            &[],
            &["X (x.npy) of shape (3, 3) has 2 dimensions, expected 3"],
        ),
        (
            "R not [1, 3H, H]",
            |d| npy::write_f32(&d.join("r.npy"), &[1, 3 * H, I], &zeros(&[1, 3 * H, I])).unwrap(),
            &[],
            &["R (r.npy)", "3 × dimension 2"],
        ),
        (
            "bidirectional R",
            |d| npy::write_f32(&d.join("r.npy"), &[2, 3 * H, H], &zeros(&[2, 3 * H, H])).unwrap(),
            &[],
            &["r.npy", "num_directions 2"],
        ),
        (
            "B of the wrong size",
            |d| npy::write_f32(&d.join("b.npy"), &[1, 3 * H], &zeros(&[1, 3 * H])).unwrap(),
            &["--b", "b.npy"],
            &["B (b.npy) has shape (1, 12), expected (1, 24)"],
        ),
        (
            "initial_h with the wrong batch",
            |d| npy::write_f32(&d.join("h0.npy"), &[1, B + 1, H], &zeros(&[1, B + 1, H])).unwrap(),
            &["--initial-h", "h0.npy"],
            &["initial_h (h0.npy) has shape (1, 3, 4), expected (1, 2, 4)"],
        ),
        (
            "X with trailing bytes",
            |d| {
                let mut full = npy::encode_f32(&[T, B, I], &zeros(&[T, B, I])).unwrap();
                full.extend_from_slice(b"tail");
                std::fs::write(d.join("x.npy"), full).unwrap()
            },
            &[],
            &["x.npy", "4 trailing bytes"],
        ),
        (
            "missing B file",
            |_| {},
            &["--b", "missing.npy"],
            &["missing.npy"],
        ),
    ];
    for (name, setup, extra, needles) in cases {
        let dir = TempDir::new(&format!("bad-{}", name.replace(' ', "-")));
        Problem::new(6, Convention::ResetBefore, true).write(&dir);
        setup(&dir);
        let mut extra = extra.to_vec();
        extra.extend(["--device", "cpu"]);
        let run = gru_in(dir.path(), &run_args(&extra), &[]);
        let line = run.one_error(1, name, &[]);
        for needle in needles {
            assert!(line.contains(needle), "{name}: {needle:?} not in {line:?}");
        }
        assert!(!dir.join("y.npy").exists(), "{name}: no output on error");
    }
}

// ---------------------------------------------------------------------------------------------
// Usage

#[test]
fn help_and_no_arguments_print_usage() {
    let dir = TempDir::new("help");
    for args in [&[][..], &["--help"], &["help"], &["-h"], &["run", "--help"]] {
        let run = gru_in(dir.path(), args, &[]);
        run.assert_success(&format!("{args:?}"));
        assert!(run.stdout.contains("Usage:"), "{args:?}: {}", run.stdout);
        assert!(run.stdout.contains("--linear-before-reset"), "{args:?}");
    }
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let dir = TempDir::new("usage");
    let cases: &[(&[&str], &str)] = &[
        (&["frobnicate"], "unknown subcommand 'frobnicate'"),
        (&["--frob"], "unknown flag '--frob'"),
        (
            &["run", "--x", "x.npy", "--bogus", "1"],
            "unknown flag '--bogus'",
        ),
        (&["run", "--x"], "missing value for --x"),
        (&["run", "--x", "--w", "w.npy"], "missing value for --x"),
        (
            &[
                "run", "--x", "x.npy", "--w", "w.npy", "--r", "r.npy", "--y", "y.npy",
            ],
            "missing: --y-h",
        ),
        (&["run"], "missing: --x, --w, --r, --y, --y-h"),
        (
            &[
                "run", "--x", "x.npy", "--w", "w.npy", "--r", "r.npy", "--y", "y.npy", "--y-h",
                "yh.npy", "--device", "tpu",
            ],
            "invalid --device",
        ),
        (&["run", "--x", "a.npy", "--x", "b.npy"], "--x given twice"),
        (
            &[
                "run", "--x", "x.npy", "--w", "w.npy", "--r", "r.npy", "--y", "y.npy", "--y-h",
                "yh.npy", "--dtype", "f64",
            ],
            "invalid --dtype",
        ),
        (
            &[
                "run", "--x", "x.npy", "--w", "w.npy", "--r", "r.npy", "--y", "y.npy", "--y-h",
                "yh.npy", "--device", "cpu", "--dtype", "f16",
            ],
            "--dtype f16 is a GPU storage type",
        ),
        (&["run", "stray"], "unexpected argument 'stray'"),
        (
            &["run", "--linear-before-reset=1"],
            "--linear-before-reset takes no value",
        ),
        (
            &[
                "run", "--x", "x.npy", "--w", "w.npy", "--r", "r.npy", "--y", "o.npy", "--y-h",
                "o.npy",
            ],
            "same file",
        ),
        (
            &[
                "run", "--x", "x.npy", "--w", "w.npy", "--r", "r.npy", "--y", "o.npy", "--y-h",
                "./o.npy",
            ],
            "same file",
        ),
        (&["info", "extra"], "takes no arguments"),
    ];
    for (args, needle) in cases {
        let run = gru_in(dir.path(), args, &[]);
        let line = run.one_error(2, &format!("{args:?}"), &[]);
        assert!(
            line.contains(needle),
            "{args:?}: {needle:?} not in {line:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Info

#[test]
fn info_lists_adapters() {
    let Some(ctx) = common::gpu() else { return };
    let dir = TempDir::new("info");
    let run = gru_in(dir.path(), &["info"], &[]);
    run.assert_success("gru info");
    assert!(run.stdout.contains("adapter 0: "), "{}", run.stdout);
    assert!(
        run.stdout.contains(&ctx.adapter_info().name),
        "the adapter the tests use is listed: {}",
        run.stdout
    );
    for needle in [
        "backend:",
        "device type:",
        "driver:",
        "max_storage_buffer_binding_size",
        "max_buffer_size",
        "max_compute_workgroups_per_dimension",
        "max_compute_invocations_per_workgroup",
        "max_compute_workgroup_storage_size",
        "min_uniform_buffer_offset_alignment",
        "SHADER_F16",
        "TIMESTAMP_QUERY",
        "SUBGROUP",
    ] {
        assert!(run.stdout.contains(needle), "{needle}: {}", run.stdout);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// Model files (gru run --model) against the golden outputs of each framework

fn golden(case: &str, file: &str) -> String {
    common::repo_root()
        .join("tests/data/golden")
        .join(case)
        .join(file)
        .display()
        .to_string()
}

/// `--device gpu` when the tests have a GPU (a missing adapter fails in `common::gpu`, unless
/// GRU_REQUIRE_GPU=0 skips it explicitly), else `cpu`.
fn gpu_or_skip() -> &'static str {
    match common::gpu() {
        Some(_) => "gpu",
        None => "cpu",
    }
}

/// Checks `file` in `dir` against the golden array `case/golden_file`: shape and values.
fn assert_matches_golden(dir: &TempDir, file: &str, case: &str, golden_file: &str) {
    let got = npy::read_f32(&dir.join(file)).unwrap();
    let expected = npy::read_f32(Path::new(&golden(case, golden_file))).unwrap();
    assert_eq!(
        got.shape, expected.shape,
        "{case}: {file} has the framework's shape"
    );
    assert_close(&format!("{case}: {file}"), &got.data, &expected.data);
}

fn model_run(dir: &TempDir, args: &[&str]) -> Run {
    let mut v = vec!["run"];
    v.extend_from_slice(args);
    v.extend(["--y", "y.npy", "--y-h", "yh.npy"]);
    gru_in(dir.path(), &v, &[])
}

#[test]
fn pytorch_model_run_matches_pytorch() {
    let dir = TempDir::new("model-torch");
    let case = "torch_2layer_bidir_batchfirst_h0";
    let (m, x, h0) = (
        golden(case, "model.safetensors"),
        golden(case, "x.npy"),
        golden(case, "h0.npy"),
    );
    let run = model_run(
        &dir,
        &[
            "--model",
            &m,
            "--x",
            &x,
            "--initial-h",
            &h0,
            "--batch-first",
            "--device",
            "cpu",
        ],
    );
    run.assert_success(case);
    assert!(run.stderr.contains("PyTorch nn.GRU"), "{}", run.stderr);
    assert!(
        run.stderr.contains("linear_before_reset=1"),
        "{}",
        run.stderr
    );
    assert_matches_golden(&dir, "y.npy", case, "y.npy");
    assert_matches_golden(&dir, "yh.npy", case, "h_n.npy");

    // Packed lengths, on the GPU.
    let case = "torch_packed_lengths";
    let (m, x, lens) = (
        golden(case, "model.safetensors"),
        golden(case, "x.npy"),
        golden(case, "lengths.npy"),
    );
    let run = model_run(
        &dir,
        &[
            "--model",
            &m,
            "--x",
            &x,
            "--sequence-lens",
            &lens,
            "--device",
            gpu_or_skip(),
        ],
    );
    run.assert_success(case);
    assert_matches_golden(&dir, "y.npy", case, "y.npy");
    assert_matches_golden(&dir, "yh.npy", case, "h_n.npy");
}

#[test]
fn keras_model_run_matches_keras() {
    let dir = TempDir::new("model-keras");
    for (case, file, flag) in [
        ("keras_reset_after_false", "weights.npz", Some("false")),
        ("keras_reset_after_true", "weights.safetensors", None),
    ] {
        let (m, x) = (golden(case, file), golden(case, "x.npy"));
        let mut args = vec!["--model", &m, "--x", &x, "--device", "cpu"];
        if let Some(f) = flag {
            args.extend(["--keras-reset-after", f]);
        }
        let run = model_run(&dir, &args);
        run.assert_success(case);
        assert!(run.stderr.contains("Keras GRU"), "{}", run.stderr);
        assert_matches_golden(&dir, "y.npy", case, "y.npy");
        assert_matches_golden(&dir, "yh.npy", case, "h.npy");
    }
    // A value that disagrees with the bias is one error line.
    let case = "keras_reset_after_true";
    let (m, x) = (golden(case, "weights.npz"), golden(case, "x.npy"));
    let run = model_run(
        &dir,
        &[
            "--model",
            &m,
            "--x",
            &x,
            "--keras-reset-after",
            "false",
            "--device",
            "cpu",
        ],
    );
    let line = run.one_error(1, "disagreeing --keras-reset-after", &[]);
    assert!(line.contains("reset_after=False was given"), "{line}");
    assert!(line.contains("(2, 18)"), "{line}");
}

#[test]
fn onnx_model_run_matches_onnxruntime() {
    let dir = TempDir::new("model-onnx");
    let case = "onnx_bidir_seqlens_lbr1";
    let (m, x, h0, lens) = (
        golden(case, "model.onnx"),
        golden(case, "X.npy"),
        golden(case, "initial_h.npy"),
        golden(case, "sequence_lens.npy"),
    );
    let run = model_run(
        &dir,
        &[
            "--model",
            &m,
            "--x",
            &x,
            "--initial-h",
            &h0,
            "--sequence-lens",
            &lens,
            "--device",
            gpu_or_skip(),
        ],
    );
    run.assert_success(case);
    assert!(run.stderr.contains("ONNX GRU node"), "{}", run.stderr);
    assert_matches_golden(&dir, "y.npy", case, "Y.npy");
    assert_matches_golden(&dir, "yh.npy", case, "Y_h.npy");

    // Layout 1, reverse, clip.
    let case = "onnx_reverse_layout1_lbr0";
    let (m, x, h0) = (
        golden(case, "model.onnx"),
        golden(case, "X.npy"),
        golden(case, "initial_h.npy"),
    );
    let run = model_run(
        &dir,
        &[
            "--model",
            &m,
            "--x",
            &x,
            "--initial-h",
            &h0,
            "--device",
            "cpu",
        ],
    );
    run.assert_success(case);
    assert!(run.stderr.contains("clip 2.5"), "{}", run.stderr);
    assert_matches_golden(&dir, "y.npy", case, "Y.npy");
    assert_matches_golden(&dir, "yh.npy", case, "Y_h.npy");

    // Refusals are one line, exit 1.
    for (case, needle) in [
        ("onnx_two_gru_nodes", "has 2 GRU nodes"),
        ("onnx_unsupported_activation", "'HardSigmoid'"),
    ] {
        let m = golden(case, "model.onnx");
        let run = model_run(&dir, &["--model", &m, "--x", &x, "--device", "cpu"]);
        let line = run.one_error(1, case, &[]);
        assert!(line.contains(needle), "{case}: {line}");
    }
}

#[test]
fn inspect_describes_each_format() {
    let dir = TempDir::new("inspect");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "torch_2layer_bidir_batchfirst_h0",
            "model.safetensors",
            &[
                "PyTorch nn.GRU state_dict",
                "prefix 'gru.'",
                "layers:      2",
                "bidirectional (D = 2)",
                "input_size:  5",
                "hidden_size: 7",
                "parameters:  1554",
                "linear_before_reset=1",
                "h_n [4, B, 7]",
            ],
        ),
        (
            "keras_reset_after_false",
            "weights.npz",
            &[
                "Keras GRU weights (npz)",
                "reset_after: False (from the bias shape)",
                "reset-before",
                "dense head:  none",
                "input_size:  4",
                "hidden_size: 6",
            ],
        ),
        (
            "onnx_reverse_layout1_lbr0",
            "model.onnx",
            &[
                "ONNX model, one GRU node",
                "opset 14",
                "reverse (D = 1)",
                "layout:      1 (X [B, T, I])",
                "clip:        2.5",
                "layout=1",
                "initial_h 'initial_h'",
                "sequence_lens none",
                "Y [B, T, 1, 4]",
            ],
        ),
    ];
    for (case, file, needles) in cases {
        let path = golden(case, file);
        let run = gru_in(dir.path(), &["inspect", &path], &[]);
        run.assert_success(case);
        for n in *needles {
            assert!(
                run.stdout.contains(n),
                "{case}: {n:?} not in\n{}",
                run.stdout
            );
        }
    }
    let path = golden("torch_3layer_forward", "model.onnx");
    let run = gru_in(dir.path(), &["inspect", &path], &[]);
    let line = run.one_error(1, "inspect of a 3-GRU graph", &[]);
    assert!(line.contains("has 3 GRU nodes"), "{line}");
    let run = gru_in(dir.path(), &["inspect"], &[]);
    run.one_error(2, "inspect without a file", &[]);
}

// ---------------------------------------------------------------------------------------------
// Weight arrays with every ONNX option

#[test]
fn raw_arrays_bidirectional_layout1_lengths_clip_match_the_reference() {
    use gru_wgpu::{Direction, GruModel, Layout};
    let (t, b, i, h) = (5, 3, 2, 4);
    let mut rng = Rng::new(77);
    let d0 = random_weights(&mut rng, Convention::ResetBefore, i, h, 3.0, true);
    let d1 = random_weights(&mut rng, Convention::ResetBefore, i, h, 3.0, true);
    let model = GruModel::new(
        Direction::Bidirectional,
        vec![vec![d0.clone(), d1.clone()]],
        Some(1.5),
    )
    .unwrap();
    let x = rng.vec(b * t * i, 1.0); // [B, T, I]
    let h0 = rng.vec(b * 2 * h, 1.0); // [B, D, H]
    let lens = [5i64, 2, 0];
    let input = GruInput::new(&x, t, b)
        .with_layout(Layout::BatchMajor)
        .with_initial_h(&h0)
        .with_sequence_lens(&lens);
    let expected = cpu::forward_model(&model, &input).unwrap();

    let dir = TempDir::new("raw-bidir");
    let cat = |a: &[f32], c: &[f32]| [a, c].concat();
    npy::write_f32(&dir.join("x.npy"), &[b, t, i], &x).unwrap();
    npy::write_f32(&dir.join("w.npy"), &[2, 3 * h, i], &cat(d0.w(), d1.w())).unwrap();
    npy::write_f32(&dir.join("r.npy"), &[2, 3 * h, h], &cat(d0.r(), d1.r())).unwrap();
    npy::write_f32(&dir.join("b.npy"), &[2, 6 * h], &cat(d0.b(), d1.b())).unwrap();
    npy::write_f32(&dir.join("h0.npy"), &[b, 2, h], &h0).unwrap();
    // Lengths stored as float64, as some conformance vectors store them.
    let data: Vec<u8> = lens
        .iter()
        .flat_map(|&l| (l as f64).to_le_bytes())
        .collect();
    std::fs::write(dir.join("lens.npy"), raw_npy("<f8", false, "(3,)", &data)).unwrap();

    for device in ["cpu", gpu_or_skip()] {
        let run = gru_in(
            dir.path(),
            &run_args(&[
                "--b",
                "b.npy",
                "--initial-h",
                "h0.npy",
                "--sequence-lens",
                "lens.npy",
                "--direction",
                "bidirectional",
                "--layout",
                "1",
                "--clip",
                "1.5",
                "--device",
                device,
            ]),
            &[],
        );
        run.assert_success(&format!("raw bidirectional on {device}"));
        let y = npy::read_f32(&dir.join("y.npy")).unwrap();
        let y_h = npy::read_f32(&dir.join("yh.npy")).unwrap();
        assert_eq!(y.shape, vec![b, t, 2, h], "Y is [B, T, D, H] for layout 1");
        assert_eq!(y_h.shape, vec![b, 2, h], "Y_h is [B, D, H] for layout 1");
        if device == "cpu" {
            assert_eq!(y.data, expected.y, "same code path: bit-identical");
            assert_eq!(y_h.data, expected.y_h);
        } else {
            assert_close("Y on the GPU", &y.data, &expected.y);
            assert_close("Y_h on the GPU", &y_h.data, &expected.y_h);
        }
    }

    // Lengths that are not whole numbers, or out of range, are one error line.
    let data: Vec<u8> = [5.0f64, 2.5, 0.0]
        .iter()
        .flat_map(|l| l.to_le_bytes())
        .collect();
    std::fs::write(dir.join("bad.npy"), raw_npy("<f8", false, "(3,)", &data)).unwrap();
    npy::write_f32(&dir.join("long.npy"), &[3], &[6.0, 1.0, 1.0]).unwrap();
    for (file, needle) in [
        ("bad.npy", "holds 2.5 at index 1; expected whole numbers"),
        ("long.npy", "holds 6 at index 0; expected lengths in 0..=5"),
    ] {
        let run = gru_in(
            dir.path(),
            &run_args(&[
                "--direction",
                "bidirectional",
                "--layout",
                "1",
                "--sequence-lens",
                file,
                "--device",
                "cpu",
            ]),
            &[],
        );
        let line = run.one_error(1, file, &[]);
        assert!(line.contains(needle), "{file}: {line}");
    }
}

#[test]
fn model_flag_usage_errors_exit_2_with_one_line() {
    let dir = TempDir::new("model-usage");
    let onnx = golden("onnx_forward_no_bias", "model.onnx");
    let keras = golden("keras_reset_after_true", "weights.npz");
    let torch = golden("torch_no_bias", "model.safetensors");
    let out = ["--y", "y.npy", "--y-h", "yh.npy"];
    let with_out = |args: &[&str]| {
        let mut v = vec!["run"];
        v.extend_from_slice(args);
        v.extend(out);
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            with_out(&["--model", &onnx, "--x", "x.npy", "--w", "w.npy"]),
            "--w cannot be combined with --model",
        ),
        (
            with_out(&["--model", &onnx, "--x", "x.npy", "--linear-before-reset"]),
            "--linear-before-reset cannot be combined with --model",
        ),
        (
            with_out(&[
                "--x",
                "x.npy",
                "--w",
                "w.npy",
                "--r",
                "r.npy",
                "--batch-first",
            ]),
            "--batch-first applies to a model file",
        ),
        (
            with_out(&["--model", &onnx, "--x", "x.npy", "--batch-first"]),
            "--batch-first does not apply to",
        ),
        (
            with_out(&[
                "--model",
                &torch,
                "--x",
                "x.npy",
                "--keras-reset-after",
                "true",
            ]),
            "--keras-reset-after does not apply to",
        ),
        (
            with_out(&[
                "--model",
                &keras,
                "--x",
                "x.npy",
                "--sequence-lens",
                "l.npy",
            ]),
            "--sequence-lens does not apply to",
        ),
        (
            with_out(&["--model", &onnx, "--x", "x.npy", "--initial-h", "h.npy"]),
            "has no initial_h input",
        ),
        (
            with_out(&[
                "--model",
                &keras,
                "--x",
                "x.npy",
                "--keras-reset-after",
                "yes",
            ]),
            "invalid --keras-reset-after",
        ),
        (
            with_out(&[
                "--x",
                "x.npy",
                "--w",
                "w.npy",
                "--r",
                "r.npy",
                "--direction",
                "up",
            ]),
            "invalid --direction",
        ),
        (
            with_out(&[
                "--x", "x.npy", "--w", "w.npy", "--r", "r.npy", "--layout", "2",
            ]),
            "invalid --layout",
        ),
        (
            with_out(&[
                "--x", "x.npy", "--w", "w.npy", "--r", "r.npy", "--clip", "-1",
            ]),
            "invalid --clip",
        ),
        (
            vec!["run".into(), "--model".into(), onnx.clone()],
            "missing: --x, --y, --y-h",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = gru_in(dir.path(), &args, &[]);
        let line = run.one_error(2, &format!("{args:?}"), &[]);
        assert!(
            line.contains(needle),
            "{args:?}: {needle:?} not in {line:?}"
        );
    }
}

#[test]
fn keras_file_without_bias_asks_for_reset_after() {
    let dir = TempDir::new("keras-nobias");
    let (i, h) = (2usize, 3usize);
    let tensors: [(&str, Vec<usize>); 2] = [
        ("kernel", vec![i, 3 * h]),
        ("recurrent_kernel", vec![h, 3 * h]),
    ];
    let mut header = String::from("{");
    let mut data = Vec::new();
    for (k, (name, shape)) in tensors.iter().enumerate() {
        let n: usize = shape.iter().product();
        if k > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{},{}]}}",
            data.len(),
            data.len() + 4 * n
        ));
        data.extend((0..n).flat_map(|v| (v as f32 * 0.01).to_le_bytes()));
    }
    header.push('}');
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&data);
    std::fs::write(dir.join("k.safetensors"), file).unwrap();
    npy::write_f32(&dir.join("x.npy"), &[1, 2, i], &[0.5; 4]).unwrap();

    let run = model_run(
        &dir,
        &[
            "--model",
            "k.safetensors",
            "--x",
            "x.npy",
            "--device",
            "cpu",
        ],
    );
    let line = run.one_error(1, "no bias, no --keras-reset-after", &[]);
    assert!(line.contains("k.safetensors"), "{line}");
    assert!(line.contains("--keras-reset-after"), "{line}");
    let run = model_run(
        &dir,
        &[
            "--model",
            "k.safetensors",
            "--x",
            "x.npy",
            "--keras-reset-after",
            "true",
            "--device",
            "cpu",
        ],
    );
    run.assert_success("no bias, --keras-reset-after true");
    assert_eq!(
        npy::read_f32(&dir.join("y.npy")).unwrap().shape,
        vec![1, 2, h]
    );
    assert_eq!(
        npy::read_f32(&dir.join("yh.npy")).unwrap().shape,
        vec![1, h]
    );
    let run = gru_in(
        dir.path(),
        &["inspect", "k.safetensors", "--keras-reset-after", "false"],
        &[],
    );
    run.assert_success("inspect with --keras-reset-after");
    assert!(
        run.stdout.contains("given; the file has no bias"),
        "{}",
        run.stdout
    );
}
