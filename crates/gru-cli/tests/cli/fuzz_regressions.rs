//! Inputs found by the fuzz targets of `fuzz/` (see fuzz/README.md), kept as regression tests,
//! and a replay of every seed of the fuzz corpus through the same entry points, so that plain
//! `cargo test` (stable, no libFuzzer) covers them.
//!
//! `tests/data/fuzz/<target>/` holds the inputs that once crashed, hung or exhausted memory;
//! each must now give a typed error. `fuzz/corpus/<target>/` holds the seeds: valid files and
//! edge cases, which must never panic.

use crate::common;

use std::path::{Path, PathBuf};

use gru_cli::{self as cli, MemoryFiles};
use gru_wgpu::io::{self, keras, onnx, pytorch, ImportOptions};
use gru_wgpu::{cpu, npy, GruError, GruInput, GruModel};

fn root() -> PathBuf {
    common::repo_root()
}

/// The files of a directory, sorted (none when it does not exist).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// As fuzz/fuzz_targets/common.rs: an accepted model runs on a tiny input.
fn exercise(model: &GruModel) {
    if model.parameter_count() > 100_000 {
        return;
    }
    let x = vec![0.5f32; 2 * model.input_size()];
    let out = cpu::forward_model(model, &GruInput::new(&x, 2, 1)).expect("accepted model runs");
    assert_eq!(
        out.y.len(),
        2 * model.num_directions() * model.hidden_size()
    );
}

/// The `npy` target; `Ok` when `parse_f32` accepts the bytes.
fn npy_target(data: &[u8]) -> Result<(), GruError> {
    let _ = npy::parse_i64(data, "fuzz.npy");
    let a = npy::parse_f32(data, "fuzz.npy")?;
    let again = npy::parse_f32(&npy::encode_f32(&a.shape, &a.data)?, "roundtrip.npy")?;
    assert_eq!(a.shape, again.shape);
    Ok(())
}

/// The `safetensors` and `npz` targets; `Ok` when `io::load_bytes` accepts the bytes.
fn model_target(data: &[u8], name: &str) -> Result<(), GruError> {
    if let Ok(m) = pytorch::parse(data, name, Some("gru.")) {
        exercise(&m.model);
    }
    for reset_after in [Some(false), Some(true)] {
        if let Ok(m) = keras::parse(data, name, reset_after) {
            exercise(&m.model);
        }
    }
    let m = io::load_bytes(data, name, &ImportOptions::default())?;
    exercise(m.model());
    Ok(())
}

/// The `onnx` target.
fn onnx_target(data: &[u8]) -> Result<(), GruError> {
    let m = onnx::parse(data, "fuzz.onnx")?;
    exercise(&m.model);
    Ok(())
}

/// The `cli` target; `Ok` when the command line would run (or compute gradients, or inspect)
/// without error.
fn cli_target(data: &[u8]) -> Result<(), String> {
    let (args, files) = MemoryFiles::from_fuzz_input(data);
    let Some((command, rest)) = args.split_first() else {
        return Err("no arguments".into());
    };
    let failure = |f: cli::Failure| f.message().to_string();
    match command.to_str() {
        Some("run") => {
            let Some(run) = cli::parse_run(rest.to_vec()).map_err(failure)? else {
                return Ok(());
            };
            let problem = cli::load_problem(&run, &files).map_err(failure)?;
            if problem.dims().seq_len * problem.dims().batch <= 10_000 {
                cpu::forward_model(problem.model(), &problem.input()).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Some("grad") => {
            let Some(grad) = cli::parse_grad(rest.to_vec()).map_err(failure)? else {
                return Ok(());
            };
            let loaded = cli::load_grad_problem(&grad, &files).map_err(failure)?;
            let problem = loaded.problem();
            if problem.dims().seq_len * problem.dims().batch <= 10_000 {
                cpu::backward_model(
                    problem.model(),
                    &problem.input(),
                    loaded.dy(),
                    loaded.dy_h(),
                )
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Some("inspect") => {
            let Some(inspect) = cli::parse_inspect(rest.to_vec()).map_err(failure)? else {
                return Ok(());
            };
            cli::inspect_report(&inspect, &files)
                .map(|_| ())
                .map_err(failure)
        }
        _ => Err("not run, grad or inspect".into()),
    }
}

/// Runs every file of `fuzz/corpus/<target>` and `tests/data/fuzz/<target>` through `check`
/// (which must not panic); returns how many files there were.
fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let mut n = 0;
    for dir in [
        root().join("fuzz").join("corpus").join(target),
        root().join("tests").join("data").join("fuzz").join(target),
    ] {
        for path in files_in(&dir) {
            eprintln!("{}", path.display());
            check(&read(&path));
            n += 1;
        }
    }
    n
}

#[test]
fn seeds_and_regressions_never_panic() {
    assert!(
        replay("npy", |d| {
            let _ = npy_target(d);
        }) >= 5
    );
    assert!(
        replay("safetensors", |d| {
            let _ = model_target(d, "fuzz.safetensors");
        }) >= 5
    );
    assert!(
        replay("npz", |d| {
            let _ = model_target(d, "fuzz.npz");
        }) >= 3
    );
    assert!(
        replay("onnx", |d| {
            let _ = onnx_target(d);
        }) >= 3
    );
    assert!(
        replay("cli", |d| {
            let _ = cli_target(d);
        }) >= 5
    );
}

/// The `npy` target's first finding (2026-12-04, after the switch to py_literal): a header
/// of ten nested `{` that py_literal's backtracking parser took over 10 s to refuse. It is now
/// refused before parsing, by the nesting limit.
#[test]
fn deeply_nested_npy_header_is_refused_before_parsing() {
    let path = root().join("tests/data/fuzz/npy/timeout-nested-braces");
    let err = gru_wgpu::npy::parse_f32(&read(&path), "timeout.npy").unwrap_err();
    assert!(err.to_string().contains("nested deeper than 4"), "{err}");
}

/// The valid seeds are accepted: the targets reach the importers' and the CLI's deep paths.
#[test]
fn valid_seeds_are_accepted() {
    let corpus = root().join("fuzz").join("corpus");
    for name in ["f4_2x3.npy", "f8_big.npy", "v3_f4.npy", "golden_x_f4.npy"] {
        npy_target(&read(&corpus.join("npy").join(name))).expect(name);
    }
    for name in [
        "torch_prefix_bidir_f16.safetensors",
        "torch_f64_bf16.safetensors",
        "keras_dense.safetensors",
        "torch_3layer.safetensors",
    ] {
        model_target(&read(&corpus.join("safetensors").join(name)), name).expect(name);
    }
    for name in ["keras_true.npz", "keras_dense_deflated.npz"] {
        model_target(&read(&corpus.join("npz").join(name)), name).expect(name);
    }
    for name in [
        "onnx_bidir_seqlens_lbr1.onnx",
        "onnx_reverse_layout1_lbr0.onnx",
    ] {
        onnx_target(&read(&corpus.join("onnx").join(name))).expect(name);
    }
    for name in [
        "torch_model",
        "onnx_model_lens_h0",
        "keras_npz",
        "arrays_reverse_layout1",
        "arrays_bidir_lbr",
        "inspect_onnx",
        "inspect_torch_prefix",
        "grad_torch_packed",
        "grad_keras",
    ] {
        cli_target(&read(&corpus.join("cli").join(name))).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let usage = cli_target(&read(&corpus.join("cli").join("usage_error")));
    assert!(usage.is_err_and(|e| e.contains("--w cannot be combined with --model")));
}
