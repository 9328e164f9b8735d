//! The `gru` binary end to end: runs on the CPU and the GPU against `cpu::forward`, usage
//! errors, malformed files, and `gru info`. Every failure must be exactly one line on stderr
//! (besides the Vulkan loader's XDG_RUNTIME_DIR notice) and never a panic.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{random_weights, Rng};
use gru_wgpu::{cpu, npy, Convention, GruInput, GruOutput, GruWeights, Tolerance};

const T: usize = 3;
const B: usize = 2;
const I: usize = 3;
const H: usize = 4;

/// A fresh working directory under Cargo's per-target temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a run of the binary gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stderr lines, without the Vulkan loader's XDG_RUNTIME_DIR notice.
    fn lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
            .collect()
    }

    /// Asserts a failure with `code` and exactly one `gru: ` line on stderr; returns it.
    fn one_error(&self, code: i32, context: &str) -> String {
        assert!(
            !self.stderr.contains("panicked"),
            "{context}: panicked: {}",
            self.stderr
        );
        assert_eq!(
            self.code,
            Some(code),
            "{context}: exit status; stderr: {}",
            self.stderr
        );
        let lines = self.lines();
        assert_eq!(
            lines.len(),
            1,
            "{context}: expected one line on stderr, got {lines:?}"
        );
        assert!(lines[0].starts_with("gru: "), "{context}: {}", lines[0]);
        lines[0].to_string()
    }

    fn assert_success(&self, context: &str) {
        assert!(
            !self.stderr.contains("panicked"),
            "{context}: {}",
            self.stderr
        );
        assert_eq!(self.code, Some(0), "{context}: stderr: {}", self.stderr);
    }
}

fn gru_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gru"));
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("spawn gru");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

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
    let line = run.one_error(1, "--device gpu without adapter");
    assert!(line.contains("no GPU adapter"), "{line}");
    assert!(line.contains("--device cpu"), "{line}");
    assert!(!dir.join("y.npy").exists());
}

// ---------------------------------------------------------------------------------------------
// Malformed inputs

/// A `.npy` file laid out as `np.save` does, with any dtype and order.
fn raw_npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let pad = 64 - (10 + dict.len() + 1) % 64;
    let header = format!("{dict}{}\n", " ".repeat(pad));
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

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
        let line = run.one_error(1, name);
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
        (&["info", "extra"], "takes no arguments"),
    ];
    for (args, needle) in cases {
        let run = gru_in(dir.path(), args, &[]);
        let line = run.one_error(2, &format!("{args:?}"));
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
