//! The bad-input checklist (issue 6, "Reliability"): one test per row, each through the
//! library API and through the `gru` command line.
//!
//! Through the API every bad input must be a typed [`GruError`] whose message says what was
//! expected and what came; through the CLI it must be exactly one `gru: ` line on stderr
//! (besides the Vulkan loader's XDG_RUNTIME_DIR notice), a non-zero exit status, no output
//! file, and never a panic. Inputs that are not errors (B = 0, NaN and Inf, float64,
//! big-endian files) must give the right numbers, on the CPU reference and on the GPU.
//!
//! Rows also covered elsewhere (crates/gru-cli/tests/cli/run.rs, tests/io/npy.rs,
//! tests/io/import.rs, tests/gpu/properties/cases.rs, the unit tests of src/io/onnx) are
//! repeated here briefly so that the checklist can be read, and run, in one place.

use crate::common;

use std::path::Path;

use common::cli::TempDir;
use common::raw_npy;
use common::{random_weights, variants, Rng};
use gru_wgpu::gpu::GpuGru;
use gru_wgpu::io::onnx::proto::attribute_proto::AttributeType;
use gru_wgpu::io::onnx::proto::tensor_proto::{DataLocation, DataType};
use gru_wgpu::io::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TypeProto, ValueInfoProto,
};
use gru_wgpu::io::{self, keras, onnx, pytorch, ImportOptions};
use gru_wgpu::{
    cpu, npy, Convention, Direction, GruError, GruInput, GruModel, GruOutput, GruWeights, Layout,
    OutputStyle, Tolerance,
};
use prost::Message;

const T: usize = 3;
const B: usize = 2;
const I: usize = 3;
const H: usize = 4;

// ---------------------------------------------------------------------------------------------
// Helpers: the API

/// The error of a call that must fail; its message is checked to contain every needle.
fn api_err<V: std::fmt::Debug>(
    context: &str,
    r: gru_wgpu::Result<V>,
    needles: &[&str],
) -> GruError {
    let e = match r {
        Ok(v) => panic!("{context}: expected an error, got {v:?}"),
        Err(e) => e,
    };
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "{context}: one line expected: {msg:?}");
    for n in needles {
        assert!(msg.contains(n), "{context}: {n:?} not in {msg:?}");
    }
    e
}

fn weights(seed: u64, convention: Convention) -> GruWeights {
    random_weights(&mut Rng::new(seed), convention, I, H, 1.0, true)
}

/// A GPU model of `model` in every kernel variant (`common::variants`: path × step kernel ×
/// GEMM): `(label, model)`; empty when the GPU is skipped explicitly (GRU_REQUIRE_GPU=0).
fn gpu_variants(model: &GruModel) -> Vec<(String, GpuGru)> {
    let Some(ctx) = common::gpu() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for variant in variants(model.hidden_size()) {
        let mut m = GpuGru::from_model(ctx, model).expect("gpu model");
        m.set_poison(Some(f32::NAN));
        variant.apply(&mut m);
        out.push((format!("GPU {variant}"), m));
    }
    out
}

/// One GPU model of `model` (the automatic kernels), or `None` when the GPU is skipped.
fn gpu_model(model: &GruModel) -> Option<GpuGru> {
    common::gpu().map(|ctx| GpuGru::from_model(ctx, model).expect("gpu model"))
}

/// Bit-exact equality, NaN included.
fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

// ---------------------------------------------------------------------------------------------
// Helpers: the CLI (as in run.rs)

/// `gru args…` in `dir`.
fn gru_in(dir: &Path, args: &[&str]) -> common::cli::Run {
    common::cli::run_in(env!("CARGO_BIN_EXE_gru"), dir, args, &[])
}

/// The devices a CLI run that must succeed is tried on: the CPU, and the GPU unless skipped.
fn cli_devices() -> Vec<&'static str> {
    let mut d = vec!["cpu"];
    if common::gpu().is_some() {
        d.push("gpu");
    }
    d
}

/// A small problem written as ONNX-shaped `.npy` files: x, w, r, b, h0 and lens.
struct Problem {
    weights: GruWeights,
    x: Vec<f32>,
    h0: Vec<f32>,
    lens: Vec<i64>,
}

impl Problem {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let weights = random_weights(&mut rng, Convention::ResetBefore, I, H, 1.0, true);
        let x = rng.vec(T * B * I, 1.0);
        let h0 = rng.vec(B * H, 1.0);
        Problem {
            weights,
            x,
            h0,
            lens: vec![T as i64, 1],
        }
    }

    fn write(&self, dir: &TempDir) {
        let w = &self.weights;
        dir.write_f32("x.npy", &[T, B, I], &self.x);
        dir.write_f32("w.npy", &[1, 3 * H, I], w.w());
        dir.write_f32("r.npy", &[1, 3 * H, H], w.r());
        dir.write_f32("b.npy", &[1, 6 * H], w.b());
        dir.write_f32("h0.npy", &[1, B, H], &self.h0);
        let lens: Vec<u8> = self.lens.iter().flat_map(|v| v.to_le_bytes()).collect();
        dir.write(
            "lens.npy",
            &raw_npy("<i8", false, &format!("({B},)"), &lens),
        );
    }

    /// The CPU reference of the files `write` makes, with every optional input.
    fn expected(&self) -> GruOutput {
        let input = GruInput::new(&self.x, T, B)
            .with_initial_h(&self.h0)
            .with_sequence_lens(&self.lens);
        cpu::forward(&self.weights, &input).unwrap()
    }
}

/// `gru run` on the files of [`Problem::write`] with every optional input, plus `extra`.
fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        "--x",
        "x.npy",
        "--w",
        "w.npy",
        "--r",
        "r.npy",
        "--b",
        "b.npy",
        "--initial-h",
        "h0.npy",
        "--sequence-lens",
        "lens.npy",
        "--y",
        "y.npy",
        "--y-h",
        "yh.npy",
    ];
    v.extend_from_slice(extra);
    v
}

/// Writes a problem into a fresh directory, lets `setup` spoil it, runs `gru run` (on the
/// CPU) and checks the one error line; no output may be written.
fn cli_case(name: &str, setup: impl FnOnce(&TempDir), extra: &[&str], needles: &[&str]) {
    let dir = TempDir::new(&name.replace([' ', '/'], "-"));
    Problem::new(1).write(&dir);
    setup(&dir);
    let mut extra = extra.to_vec();
    extra.extend(["--device", "cpu"]);
    let run = gru_in(dir.path(), &run_args(&extra));
    run.one_error(1, name, needles);
    assert!(!dir.join("y.npy").exists(), "{name}: no Y on error");
    assert!(!dir.join("yh.npy").exists(), "{name}: no Y_h on error");
}

/// `gru run --model FILE` (and `gru inspect FILE`) on a model file written from `bytes`;
/// both must fail with one line containing every needle.
fn cli_model_case(name: &str, file: &str, bytes: &[u8], needles: &[&str]) {
    let dir = TempDir::new(&name.replace([' ', '/'], "-"));
    dir.write(file, bytes);
    dir.write_f32("x.npy", &[T, B, I], &[0.5; T * B * I]);
    let run = gru_in(
        dir.path(),
        &[
            "run", "--model", file, "--x", "x.npy", "--device", "cpu", "--y", "y.npy", "--y-h",
            "yh.npy",
        ],
    );
    let mut with_file = needles.to_vec();
    with_file.push(file);
    run.one_error(1, &format!("{name} (run)"), &with_file);
    assert!(!dir.join("y.npy").exists(), "{name}: no Y on error");
    let run = gru_in(dir.path(), &["inspect", file]);
    run.one_error(1, &format!("{name} (inspect)"), &with_file);
}

fn shape_tuple(shape: &[usize]) -> String {
    npy::format_shape(shape)
}

// ---------------------------------------------------------------------------------------------
// Helpers: model files

/// `(name, dtype, shape, data offsets)` of one safetensors header entry.
type StEntry = (String, String, Vec<usize>, [usize; 2]);

/// A safetensors file from explicit header entries and data (which may lie).
fn safetensors_raw(entries: &[StEntry], data: &[u8]) -> Vec<u8> {
    let parts: Vec<String> = entries
        .iter()
        .map(|(name, dtype, shape, [s, e])| {
            format!(
                "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{s},{e}]}}"
            )
        })
        .collect();
    let mut header = format!("{{{}}}", parts.join(","));
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// An honest single-layer PyTorch `nn.GRU` state_dict (I, H as above): its entries and data.
fn torch_entries() -> (Vec<StEntry>, Vec<u8>) {
    let mut entries = Vec::new();
    let mut data = Vec::new();
    for (name, shape) in [
        ("weight_ih_l0", vec![3 * H, I]),
        ("weight_hh_l0", vec![3 * H, H]),
        ("bias_ih_l0", vec![3 * H]),
        ("bias_hh_l0", vec![3 * H]),
    ] {
        let n: usize = shape.iter().product();
        let start = data.len();
        data.extend((0..n).flat_map(|k| ((k as f32 * 0.1).sin() * 0.3).to_le_bytes()));
        entries.push((
            name.to_string(),
            "F32".to_string(),
            shape,
            [start, data.len()],
        ));
    }
    (entries, data)
}

/// The same for a Keras GRU (reset_after=True).
fn keras_entries() -> (Vec<StEntry>, Vec<u8>) {
    let mut entries = Vec::new();
    let mut data = Vec::new();
    for (name, shape) in [
        ("kernel", vec![I, 3 * H]),
        ("recurrent_kernel", vec![H, 3 * H]),
        ("bias", vec![2, 3 * H]),
    ] {
        let n: usize = shape.iter().product();
        let start = data.len();
        data.extend((0..n).flat_map(|k| ((k as f32 * 0.2).cos() * 0.3).to_le_bytes()));
        entries.push((
            name.to_string(),
            "F32".to_string(),
            shape,
            [start, data.len()],
        ));
    }
    (entries, data)
}

include!("../../../../tests/common/onnx_builders.rs");

fn onnx_bytes(m: &ModelProto) -> Vec<u8> {
    m.encode_to_vec()
}

/// An import that must fail: a [`GruError::Import`] naming the file and every needle.
fn import_err<V: std::fmt::Debug>(
    context: &str,
    file: &str,
    r: gru_wgpu::Result<V>,
    needles: &[&str],
) -> String {
    let e = api_err(context, r, needles);
    assert!(matches!(e, GruError::Import { .. }), "{context}: {e:?}");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("{file}: ")), "{context}: {msg}");
    msg
}

// =============================================================================================
// Rows: shapes

#[test]
fn x_of_wrong_rank_or_size() {
    // API: X is flat; its length must be T·B·I in the input's layout.
    let w = weights(1, Convention::ResetBefore);
    let model = GruModel::single(w.clone());
    let x = vec![0.5f32; T * B * I - 1];
    let e = api_err(
        "CPU, X one short",
        cpu::forward(&w, &GruInput::new(&x, T, B)),
        &["X: expected [3, 2, 3] = 18 elements, got 17 elements"],
    );
    assert!(matches!(e, GruError::Shape { .. }), "{e:?}");
    let x_long = vec![0.5f32; T * B * I + I];
    api_err(
        "CPU, batch-major X one row long",
        cpu::forward(
            &w,
            &GruInput::new(&x_long, T, B).with_layout(Layout::BatchMajor),
        ),
        &["X: expected [2, 3, 3] = 18 elements, got 21 elements"],
    );
    if let Some(mut g) = gpu_model(&model) {
        let e = api_err(
            "GPU, X one short",
            g.forward(&GruInput::new(&x, T, B)),
            &["X: expected [3, 2, 3] = 18 elements, got 17 elements"],
        );
        assert!(matches!(e, GruError::Shape { .. }), "{e:?}");
    }

    // CLI: X must be 3-D, with I as the weights say.
    for (name, shape, needles) in [
        (
            "2-D X",
            vec![T * B, I],
            vec!["X (x.npy) of shape (6, 3) has 2 dimensions, expected 3"],
        ),
        (
            "4-D X",
            vec![T, B, 1, I],
            vec!["has 4 dimensions, expected 3: [seq_length, batch_size, input_size]"],
        ),
        (
            "X with 5 features",
            vec![T, B, 5],
            vec!["W (w.npy) has shape (1, 12, 3), expected (1, 12, 5)"],
        ),
    ] {
        let n: usize = shape.iter().product();
        cli_case(
            name,
            |d| d.write_f32("x.npy", &shape, &vec![0.5; n]),
            &[],
            &needles,
        );
    }
    // With a model file, X is checked against the model's input size.
    let dir = TempDir::new("x-model");
    dir.write("m.onnx", &onnx_bytes(&onnx_model(1, vec![])));
    dir.write_f32("x.npy", &[T, B, 5], &[0.5; T * B * 5]);
    let run = gru_in(
        dir.path(),
        &[
            "run", "--model", "m.onnx", "--x", "x.npy", "--device", "cpu", "--y", "y.npy", "--y-h",
            "yh.npy",
        ],
    );
    run.one_error(
        1,
        "X against an ONNX model",
        &[
            "X (x.npy) of shape (3, 2, 5) has input_size 5",
            "reads 3 features",
        ],
    );
}

#[test]
fn w_of_wrong_rank_or_size() {
    let w = weights(2, Convention::ResetBefore);
    let e = api_err(
        "W one short",
        GruWeights::new(
            Convention::ResetBefore,
            I,
            H,
            w.w()[1..].to_vec(),
            w.r().to_vec(),
            None,
        ),
        &["W: expected [3H=12, I=3] = 36 elements, got 35 elements"],
    );
    assert!(matches!(e, GruError::Shape { .. }), "{e:?}");
    api_err(
        "PyTorch weight_ih one long",
        GruWeights::from_pytorch(I, H, &[0.0; 3 * H * I + 1], w.r(), None, None),
        &["weight_ih: expected [3H=12, I=3] = 36 elements, got 37 elements"],
    );
    api_err(
        "Keras kernel transposed sizes",
        GruWeights::from_keras(I + 1, H, &[0.0; 3 * H * I], &[0.0; 3 * H * H], None, true),
        &["kernel: expected (I=4, 3H=12) = 48 elements, got 36 elements"],
    );

    cli_case(
        "2-D W",
        |d| d.write_f32("w.npy", &[3 * H, I], &[0.0; 3 * H * I]),
        &[],
        &["W (w.npy) has shape (12, 3), expected (1, 12, 3) = [num_directions, 3*hidden_size, input_size]"],
    );
    cli_case(
        "W with 13 rows",
        |d| d.write_f32("w.npy", &[1, 13, I], &[0.0; 13 * I]),
        &[],
        &[
            "W (w.npy) has shape (1, 13, 3), expected (1, 12, 3)",
            "hidden_size 4 from R (r.npy)",
        ],
    );
}

#[test]
fn r_of_wrong_rank_or_size() {
    let w = weights(3, Convention::ResetAfter);
    api_err(
        "R one short",
        GruWeights::new(
            Convention::ResetAfter,
            I,
            H,
            w.w().to_vec(),
            w.r()[1..].to_vec(),
            None,
        ),
        &["R: expected [3H=12, H=4] = 48 elements, got 47 elements"],
    );
    api_err(
        "PyTorch weight_hh",
        GruWeights::from_pytorch(I, H, w.w(), &[0.0; 3 * H * H + 2], None, None),
        &["weight_hh: expected [3H=12, H=4] = 48 elements, got 50 elements"],
    );
    api_err(
        "Keras recurrent_kernel",
        GruWeights::from_keras(I, H, &[0.0; 3 * H * I], &[0.0; 3 * H * H - 3], None, true),
        &["recurrent_kernel: expected (H=4, 3H=12) = 48 elements, got 45 elements"],
    );

    cli_case(
        "2-D R",
        |d| d.write_f32("r.npy", &[3 * H, H], &[0.0; 3 * H * H]),
        &[],
        &["R (r.npy) of shape (12, 4) has 2 dimensions, expected 3"],
    );
    cli_case(
        "R not [D, 3H, H]",
        |d| d.write_f32("r.npy", &[1, 3 * H, H + 1], &vec![0.0; 3 * H * (H + 1)]),
        &[],
        &["R (r.npy) of shape (1, 12, 5) is not [num_directions, 3*hidden_size, hidden_size]"],
    );
}

#[test]
fn b_of_wrong_rank_or_size() {
    let w = weights(4, Convention::ResetBefore);
    api_err(
        "B of 3H (a Keras reset_after=False bias passed as ONNX's)",
        GruWeights::new(
            Convention::ResetBefore,
            I,
            H,
            w.w().to_vec(),
            w.r().to_vec(),
            Some(vec![0.0; 3 * H]),
        ),
        &["B: expected [6H=24] = 24 elements, got 12 elements"],
    );
    api_err(
        "PyTorch bias_hh",
        GruWeights::from_pytorch(I, H, w.w(), w.r(), Some(&[0.0; 3 * H]), Some(&[0.0; 6 * H])),
        &["bias_hh: expected [3H=12] = 12 elements, got 24 elements"],
    );
    api_err(
        "Keras (2, 3H) bias with reset_after=False",
        GruWeights::from_keras(
            I,
            H,
            &[0.0; 3 * H * I],
            &[0.0; 3 * H * H],
            Some(&[0.0; 6 * H]),
            false,
        ),
        &["bias: expected (3H=12,) for reset_after=False = 12 elements, got 24 elements"],
    );

    cli_case(
        "1-D B",
        |d| d.write_f32("b.npy", &[6 * H], &[0.0; 6 * H]),
        &[],
        &["B (b.npy) has shape (24,), expected (1, 24) = [num_directions, 6*hidden_size]"],
    );
    cli_case(
        "B of 5H",
        |d| d.write_f32("b.npy", &[1, 5 * H], &[0.0; 5 * H]),
        &[],
        &["B (b.npy) has shape (1, 20), expected (1, 24)"],
    );
}

#[test]
fn initial_h_of_wrong_rank_or_size() {
    let w = weights(5, Convention::ResetBefore);
    let x = vec![0.5f32; T * B * I];
    let h0 = vec![0.0f32; B * H - 1];
    let e = api_err(
        "CPU initial_h one short",
        cpu::forward(&w, &GruInput::new(&x, T, B).with_initial_h(&h0)),
        &["initial_h: expected [1, 2, 4] = 8 elements, got 7 elements"],
    );
    assert!(matches!(e, GruError::Shape { .. }), "{e:?}");
    // A bidirectional model needs both directions' states: [D=2, B, H], or [B, D, H] for the
    // batch-major ONNX style.
    let bi = GruModel::new(
        Direction::Bidirectional,
        vec![vec![w.clone(), weights(6, Convention::ResetBefore)]],
        None,
    )
    .unwrap();
    let one_direction = vec![0.0f32; B * H];
    let input = GruInput::new(&x, T, B)
        .with_layout(Layout::BatchMajor)
        .with_initial_h(&one_direction);
    let needle = "initial_h: expected [2, 2, 4] = 16 elements, got 8 elements";
    api_err(
        "CPU bidirectional, one state",
        cpu::forward_model(&bi, &input),
        &[needle],
    );
    if let Some(mut g) = gpu_model(&bi) {
        api_err("GPU bidirectional, one state", g.forward(&input), &[needle]);
    }

    cli_case(
        "2-D initial_h",
        |d| d.write_f32("h0.npy", &[B, H], &[0.0; B * H]),
        &[],
        &["initial_h (h0.npy) has shape (2, 4), expected (1, 2, 4) = [num_directions, batch_size, hidden_size]"],
    );
    cli_case(
        "initial_h with H+1 units",
        |d| d.write_f32("h0.npy", &[1, B, H + 1], &[0.0; B * (H + 1)]),
        &[],
        &["initial_h (h0.npy) has shape (1, 2, 5), expected (1, 2, 4)"],
    );
}

#[test]
fn sequence_lens_of_wrong_rank_or_size() {
    let w = weights(7, Convention::ResetAfter);
    let x = vec![0.5f32; T * B * I];
    let lens = [1i64, 2, 3];
    let needle = "sequence_lens: expected [B=2] = 2 elements, got 3 elements";
    let e = api_err(
        "CPU, three lengths",
        cpu::forward(&w, &GruInput::new(&x, T, B).with_sequence_lens(&lens)),
        &[needle],
    );
    assert!(matches!(e, GruError::Shape { .. }), "{e:?}");
    if let Some(mut g) = gpu_model(&GruModel::single(w)) {
        api_err(
            "GPU, three lengths",
            g.forward(&GruInput::new(&x, T, B).with_sequence_lens(&lens)),
            &[needle],
        );
    }

    let ints = |v: &[i64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    cli_case(
        "2-D sequence_lens",
        |d| d.write("lens.npy", &raw_npy("<i8", false, "(2, 1)", &ints(&[1, 2]))),
        &[],
        &["sequence_lens (lens.npy) has shape (2, 1), expected (2,) = [batch_size]"],
    );
    cli_case(
        "three sequence_lens",
        |d| {
            d.write(
                "lens.npy",
                &raw_npy("<i8", false, "(3,)", &ints(&[1, 2, 3])),
            )
        },
        &[],
        &["sequence_lens (lens.npy) has shape (3,), expected (2,)"],
    );
}

#[test]
fn hidden_size_zero() {
    for (what, r) in [
        (
            "new",
            GruWeights::new(Convention::ResetBefore, I, 0, vec![], vec![], None),
        ),
        (
            "from_pytorch",
            GruWeights::from_pytorch(I, 0, &[], &[], None, None),
        ),
        (
            "from_keras",
            GruWeights::from_keras(I, 0, &[], &[], None, true),
        ),
    ] {
        let e = api_err(
            what,
            r,
            &["invalid hidden_size: expected at least 1, got 0"],
        );
        assert!(matches!(e, GruError::InvalidArgument { .. }), "{e:?}");
    }

    // CLI: R [1, 0, 0] (W then [1, 0, I]).
    cli_case(
        "hidden_size 0",
        |d| {
            d.write_f32("r.npy", &[1, 0, 0], &[]);
            d.write_f32("w.npy", &[1, 0, I], &[]);
        },
        &[],
        &[
            "R (r.npy) of shape (1, 0, 0)",
            "hidden_size at least 1 (hidden_size 0)",
        ],
    );
    // Model files: ONNX's attribute and R, PyTorch's weight_hh, Keras's recurrent_kernel.
    let m = onnx_model(1, vec![attr_int("hidden_size", 0)]);
    cli_model_case(
        "ONNX hidden_size 0",
        "h0.onnx",
        &onnx_bytes(&m),
        &["attribute hidden_size is 0, expected at least 1"],
    );
    let mut m = onnx_model(1, vec![]);
    let g = m.graph.as_mut().unwrap();
    g.initializer[1] = onnx_tensor("R", &[1, 0, 0], 0.0);
    g.initializer[0] = onnx_tensor("W", &[1, 0, I], 0.0);
    g.initializer[2] = onnx_tensor("B", &[1, 0], 0.0);
    cli_model_case(
        "ONNX R [1, 0, 0]",
        "r0.onnx",
        &onnx_bytes(&m),
        &["R ('R') has shape [1, 0, 0], expected [num_directions, 3*hidden_size, hidden_size] with hidden_size ≥ 1"],
    );
    let st = safetensors_raw(
        &[
            ("weight_ih_l0".into(), "F32".into(), vec![0, I], [0, 0]),
            ("weight_hh_l0".into(), "F32".into(), vec![0, 0], [0, 0]),
        ],
        &[],
    );
    import_err(
        "PyTorch weight_hh [0, 0]",
        "t.safetensors",
        pytorch::parse(&st, "t.safetensors", None),
        &["'weight_hh_l0' has shape [0, 0]"],
    );
    cli_model_case(
        "PyTorch weight_hh [0, 0]",
        "t.safetensors",
        &st,
        &["'weight_hh_l0' has shape [0, 0]"],
    );
    let st = safetensors_raw(
        &[
            ("kernel".into(), "F32".into(), vec![I, 0], [0, 0]),
            ("recurrent_kernel".into(), "F32".into(), vec![0, 0], [0, 0]),
            ("bias".into(), "F32".into(), vec![2, 0], [0, 0]),
        ],
        &[],
    );
    cli_model_case(
        "Keras recurrent_kernel (0, 0)",
        "k.safetensors",
        &st,
        &["'recurrent_kernel' has shape (0, 0)"],
    );
}

#[test]
fn zero_steps_is_an_error() {
    // T = 0 is refused, as PyTorch and ONNX Runtime refuse it.
    let w = weights(8, Convention::ResetBefore);
    let needle = "invalid sequence length T: expected at least 1";
    for layout in [Layout::SequenceMajor, Layout::BatchMajor] {
        let input = GruInput::new(&[], 0, B).with_layout(layout);
        let e = api_err("CPU T = 0", cpu::forward(&w, &input), &[needle, "got 0"]);
        assert!(matches!(e, GruError::InvalidArgument { .. }), "{e:?}");
        if let Some(mut g) = gpu_model(&GruModel::single(w.clone())) {
            api_err("GPU T = 0", g.forward(&input), &[needle]);
        }
    }
    // T = 0 and B = 0 together: still T = 0.
    api_err(
        "CPU T = B = 0",
        cpu::forward(&w, &GruInput::new(&[], 0, 0)),
        &[needle],
    );

    cli_case(
        "X with 0 steps",
        |d| d.write_f32("x.npy", &[0, B, I], &[]),
        &[],
        &["X (x.npy) of shape (0, 2, 3) has seq_length 0; expected at least 1 step"],
    );
    cli_case(
        "batch-major X with 0 steps",
        |d| {
            d.write_f32("x.npy", &[B, 0, I], &[]);
            d.write_f32("h0.npy", &[B, 1, H], &[0.0; B * H]);
        },
        &["--layout", "1"],
        &["X (x.npy) of shape (2, 0, 3) has seq_length 0"],
    );
}

#[test]
fn zero_batch_gives_empty_outputs() {
    // B = 0 gives empty outputs of the right shapes, as PyTorch does.
    let mut rng = Rng::new(9);
    let layer = |rng: &mut Rng| {
        vec![
            random_weights(rng, Convention::ResetAfter, I, H, 1.0, true),
            random_weights(rng, Convention::ResetAfter, I, H, 1.0, true),
        ]
    };
    let model = GruModel::new(Direction::Bidirectional, vec![layer(&mut rng)], None).unwrap();
    for (layout, style, y_shape) in [
        (Layout::SequenceMajor, OutputStyle::Onnx, vec![T, 2, 0, H]),
        (Layout::BatchMajor, OutputStyle::Onnx, vec![0, T, 2, H]),
        (
            Layout::SequenceMajor,
            OutputStyle::PyTorch,
            vec![T, 0, 2 * H],
        ),
    ] {
        let input = GruInput::new(&[], T, 0)
            .with_layout(layout)
            .with_style(style)
            .with_initial_h(&[])
            .with_sequence_lens(&[]);
        let mut outs = vec![(
            "CPU".to_string(),
            cpu::forward_model(&model, &input).unwrap(),
        )];
        if let Some(mut g) = gpu_model(&model) {
            outs.push(("GPU".to_string(), g.forward(&input).expect("GPU B = 0")));
        }
        for (label, out) in outs {
            assert!(out.y.is_empty() && out.y_h.is_empty(), "{label}");
            assert_eq!(out.dims.y_shape(), y_shape, "{label} {layout:?} {style:?}");
            assert_eq!(out.dims.batch, 0);
        }
    }
    // An X of the wrong length is still an error at B = 0.
    api_err(
        "B = 0 with data",
        cpu::forward_model(&model, &GruInput::new(&[1.0], T, 0)),
        &["X: expected [3, 0, 3] = 0 elements, got 1 elements"],
    );

    // CLI: empty .npy files in, empty .npy files of the right shapes out.
    for device in cli_devices() {
        let dir = TempDir::new(&format!("b0-{device}"));
        Problem::new(10).write(&dir);
        dir.write_f32("x.npy", &[T, 0, I], &[]);
        dir.write_f32("h0.npy", &[1, 0, H], &[]);
        dir.write("lens.npy", &raw_npy("<i8", false, "(0,)", &[]));
        let run = gru_in(dir.path(), &run_args(&["--device", device]));
        run.assert_success(&format!("B = 0 on {device}"));
        let y = npy::read_f32(&dir.join("y.npy")).unwrap();
        let y_h = npy::read_f32(&dir.join("yh.npy")).unwrap();
        assert_eq!((y.shape, y.data.len()), (vec![T, 1, 0, H], 0), "{device}");
        assert_eq!((y_h.shape, y_h.data.len()), (vec![1, 0, H], 0), "{device}");
    }
}

#[test]
fn lengths_below_zero_or_above_t() {
    let w = weights(11, Convention::ResetBefore);
    let model = GruModel::single(w.clone());
    let x = vec![0.5f32; T * B * I];
    for (lens, needle) in [
        (
            [-1i64, 2],
            "invalid sequence_lens[0]: expected a length in 0..=3 (T), got -1",
        ),
        (
            [2, 4],
            "invalid sequence_lens[1]: expected a length in 0..=3 (T), got 4",
        ),
        ([i64::MIN, 0], "got -9223372036854775808"),
        ([0, i64::MAX], "got 9223372036854775807"),
    ] {
        let input = GruInput::new(&x, T, B).with_sequence_lens(&lens);
        let e = api_err("CPU", cpu::forward(&w, &input), &[needle]);
        assert!(matches!(e, GruError::InvalidArgument { .. }), "{e:?}");
        if let Some(mut g) = gpu_model(&model) {
            api_err("GPU", g.forward(&input), &[needle]);
        }
    }

    let ints = |v: &[i64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    cli_case(
        "negative length",
        |d| d.write("lens.npy", &raw_npy("<i8", false, "(2,)", &ints(&[-1, 2]))),
        &[],
        &["sequence_lens (lens.npy) holds -1 at index 0; expected lengths in 0..=3"],
    );
    cli_case(
        "length above T",
        |d| d.write("lens.npy", &raw_npy("<i8", false, "(2,)", &ints(&[3, 4]))),
        &[],
        &["sequence_lens (lens.npy) holds 4 at index 1; expected lengths in 0..=3"],
    );
    cli_case(
        "uint32 length above T",
        |d| {
            let data: Vec<u8> = [u32::MAX, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
            d.write("lens.npy", &raw_npy("<u4", false, "(2,)", &data))
        },
        &[],
        &["holds 4294967295 at index 0"],
    );
    cli_case(
        "negative float length",
        |d| d.write_f32("lens.npy", &[2], &[-2.0, 1.0]),
        &[],
        &["holds -2 at index 0; expected lengths in 0..=3"],
    );
}

#[test]
fn direction_and_weights_disagree() {
    let (a, b) = (
        weights(12, Convention::ResetBefore),
        weights(13, Convention::ResetBefore),
    );
    api_err(
        "bidirectional with one set",
        GruModel::new(Direction::Bidirectional, vec![vec![a.clone()]], None),
        &["invalid layer 0: expected 2 direction(s) for Bidirectional, got 1 set(s) of weights"],
    );
    api_err(
        "reverse with two sets",
        GruModel::new(Direction::Reverse, vec![vec![a.clone(), b.clone()]], None),
        &["expected 1 direction(s) for Reverse, got 2 set(s)"],
    );
    // Layer 1 of a bidirectional stack reads D·H = 8 features, not I = 3.
    api_err(
        "layer 1 reading I instead of D·H",
        GruModel::new(
            Direction::Bidirectional,
            vec![vec![a.clone(), b.clone()], vec![a.clone(), b.clone()]],
            None,
        ),
        &["invalid input size of layer 1 direction 0: expected D·H = 8 (the previous layer's output), got 3"],
    );
    api_err(
        "mixed conventions",
        GruModel::new(
            Direction::Bidirectional,
            vec![vec![a.clone(), weights(14, Convention::ResetAfter)]],
            None,
        ),
        &["convention of layer 0 direction 1: expected ResetBefore (as layer 0), got ResetAfter"],
    );

    // CLI: --direction against the arrays' D.
    cli_case(
        "bidirectional with one direction's arrays",
        |_| {},
        &["--direction", "bidirectional"],
        &["R (r.npy) of shape (1, 12, 4) has num_directions 1, but --direction bidirectional needs 2"],
    );
    cli_case(
        "reverse with two directions' R",
        |d| d.write_f32("r.npy", &[2, 3 * H, H], &vec![0.0; 2 * 3 * H * H]),
        &["--direction", "reverse"],
        &[
            "has num_directions 2, but --direction reverse needs 1",
            "pass --direction bidirectional",
        ],
    );
    cli_case(
        "bidirectional R, one direction's W",
        |d| d.write_f32("r.npy", &[2, 3 * H, H], &vec![0.0; 2 * 3 * H * H]),
        &["--direction", "bidirectional"],
        &["W (w.npy) has shape (1, 12, 3), expected (2, 12, 3)"],
    );
    // Model files: an ONNX direction attribute against W/R, a PyTorch file with _reverse
    // tensors in one layer only.
    let m = onnx_model(2, vec![attr_str("direction", "reverse")]);
    import_err(
        "ONNX reverse with D = 2",
        "d.onnx",
        onnx::parse(&onnx_bytes(&m), "d.onnx"),
        &["R ('R') has num_directions 2, but direction=\"reverse\" needs 1"],
    );
    cli_model_case(
        "ONNX reverse with D = 2",
        "d.onnx",
        &onnx_bytes(&m),
        &["needs 1"],
    );
    let (mut entries, mut data) = torch_entries();
    let end = data.len();
    data.extend_from_within(..end);
    entries.extend(
        entries
            .clone()
            .into_iter()
            .map(|(n, d, s, [a, b])| (format!("{n}_reverse"), d, s, [a + end, b + end])),
    );
    // Layer 1 with the forward direction only.
    let mut l1 = vec![
        ("weight_ih_l1", vec![3 * H, 2 * H]),
        ("weight_hh_l1", vec![3 * H, H]),
        ("bias_ih_l1", vec![3 * H]),
        ("bias_hh_l1", vec![3 * H]),
    ];
    for (name, shape) in l1.drain(..) {
        let n: usize = shape.iter().product();
        let start = data.len();
        data.extend(std::iter::repeat_n(0u8, 4 * n));
        entries.push((name.into(), "F32".into(), shape, [start, data.len()]));
    }
    let st = safetensors_raw(&entries, &data);
    let needle = "missing tensor 'weight_ih_l1_reverse': a bidirectional GRU";
    import_err(
        "PyTorch, layer 1 forward only",
        "p.safetensors",
        pytorch::parse(&st, "p.safetensors", None),
        &[needle],
    );
    cli_model_case(
        "PyTorch, layer 1 forward only",
        "p.safetensors",
        &st,
        &[needle],
    );
}

#[test]
fn onnx_unknown_or_unsupported_attributes() {
    let cases: Vec<(&str, Vec<AttributeProto>, Vec<&str>)> = vec![
        (
            "unknown attribute",
            vec![attr_int("output_sequence", 1)],
            vec!["unsupported GRU attribute 'output_sequence'; this importer honours hidden_size, direction"],
        ),
        (
            "unsupported activation",
            vec![attr_strs("activations", &["Relu", "Tanh"])],
            vec!["unsupported activation 'Relu' (activations[0], f, the gate activation of direction 0)"],
        ),
        (
            "unsupported candidate activation",
            vec![attr_strs("activations", &["Sigmoid", "HardSigmoid"])],
            vec!["unsupported activation 'HardSigmoid' (activations[1]", "only the defaults Sigmoid (f) and Tanh (g)"],
        ),
        (
            "linear_before_reset 2",
            vec![attr_int("linear_before_reset", 2)],
            vec!["attribute linear_before_reset is 2, expected 0 or 1"],
        ),
        (
            "layout 2",
            vec![attr_int("layout", 2)],
            vec!["attribute layout is 2, expected 0 ([T, B, I]) or 1 ([B, T, I])"],
        ),
        (
            "direction as an INT",
            vec![attr_int("direction", 1)],
            vec!["GRU attribute 'direction' has INT, expected STRING"],
        ),
        (
            "unknown direction",
            vec![attr_str("direction", "sideways")],
            vec!["attribute direction is \"sideways\", expected \"forward\", \"reverse\" or \"bidirectional\""],
        ),
        (
            "attribute from a function",
            vec![AttributeProto {
                name: "clip".into(),
                ref_attr_name: "outer_clip".into(),
                r#type: AttributeType::Float.into(),
                ..Default::default()
            }],
            vec!["GRU attribute 'clip' refers to a function attribute ('outer_clip')"],
        ),
    ];
    for (name, attributes, needles) in cases {
        let bytes = onnx_bytes(&onnx_model(1, attributes));
        import_err(name, "a.onnx", onnx::parse(&bytes, "a.onnx"), &needles);
        import_err(
            name,
            "a.onnx",
            io::load_bytes(&bytes, "a.onnx", &ImportOptions::default()),
            &needles,
        );
        cli_model_case(name, "a.onnx", &bytes, &needles);
    }
}

// =============================================================================================
// Rows: .npy files

#[test]
fn integer_npy_dtypes() {
    // Float inputs refuse integers, naming the dtype and how to convert.
    for (descr, size, name) in [
        ("<i8", 8, "int64"),
        ("<i4", 4, "int32"),
        ("|u1", 1, "uint8"),
        ("|b1", 1, "bool"),
    ] {
        let bytes = raw_npy(descr, false, "(2,)", &vec![0; 2 * size]);
        let e = api_err(
            descr,
            npy::parse_f32(&bytes, "i.npy"),
            &[&format!("i.npy: expected float32 or float64, got '{descr}' ({name}); convert with a.astype(np.float32)")],
        );
        assert!(matches!(e, GruError::Npy { .. }), "{e:?}");
    }
    // Lengths take int32, int64, uint32; narrower integers are refused naming the fix.
    let (shape, v) = npy::parse_i64(
        &raw_npy("<i4", false, "(2,)", &[3, 0, 0, 0, 1, 0, 0, 0]),
        "l.npy",
    )
    .unwrap();
    assert_eq!((shape, v), (vec![2], vec![3, 1]));
    api_err(
        "int16 lengths",
        npy::parse_i64(&raw_npy("<i2", false, "(2,)", &[0; 4]), "l.npy"),
        &["l.npy: expected int32 or int64, got '<i2' (int16); convert with a.astype(np.int64)"],
    );

    // CLI: integer X, W and initial_h are refused; int32 lengths are read.
    for (file, shape, needle) in [
        (
            "x.npy",
            vec![T, B, I],
            "x.npy: expected float32 or float64, got '<i4' (int32)",
        ),
        (
            "w.npy",
            vec![1, 3 * H, I],
            "w.npy: expected float32 or float64, got '<i4' (int32)",
        ),
        (
            "h0.npy",
            vec![1, B, H],
            "h0.npy: expected float32 or float64, got '<i4' (int32)",
        ),
    ] {
        let n: usize = shape.iter().product();
        cli_case(
            &format!("int32 {file}"),
            |d| {
                d.write(
                    file,
                    &raw_npy("<i4", false, &shape_tuple(&shape), &vec![0; 4 * n]),
                )
            },
            &[],
            &[needle, "a.astype(np.float32)"],
        );
    }
    cli_case(
        "int16 lengths",
        |d| d.write("lens.npy", &raw_npy("<i2", false, "(2,)", &[3, 0, 1, 0])),
        &[],
        &["lens.npy: expected int32 or int64, got '<i2' (int16); convert with a.astype(np.int64)"],
    );
    let dir = TempDir::new("int32-lens");
    let p = Problem::new(15);
    p.write(&dir);
    let lens: Vec<u8> = p
        .lens
        .iter()
        .flat_map(|&v| (v as i32).to_le_bytes())
        .collect();
    dir.write("lens.npy", &raw_npy("<i4", false, "(2,)", &lens));
    let run = gru_in(dir.path(), &run_args(&["--device", "cpu"]));
    run.assert_success("int32 lengths");
    assert_eq!(
        npy::read_f32(&dir.join("y.npy")).unwrap().data,
        p.expected().y
    );
}

/// Every input file of a [`Problem`] rewritten by `encode(values) -> (descr, bytes)`; the
/// run must give the float32 files' outputs, bit for bit on the CPU.
fn cli_converted_inputs(name: &str, descr: &str, encode: fn(&[f32]) -> Vec<u8>) {
    let p = Problem::new(16);
    let expected = p.expected();
    for device in cli_devices() {
        let dir = TempDir::new(&format!("{name}-{device}"));
        p.write(&dir);
        let w = &p.weights;
        for (file, shape, data) in [
            ("x.npy", vec![T, B, I], p.x.as_slice()),
            ("w.npy", vec![1, 3 * H, I], w.w()),
            ("r.npy", vec![1, 3 * H, H], w.r()),
            ("b.npy", vec![1, 6 * H], w.b()),
            ("h0.npy", vec![1, B, H], p.h0.as_slice()),
        ] {
            dir.write(
                file,
                &raw_npy(descr, false, &shape_tuple(&shape), &encode(data)),
            );
        }
        let run = gru_in(dir.path(), &run_args(&["--device", device]));
        run.assert_success(&format!("{name} on {device}"));
        let y = npy::read_f32(&dir.join("y.npy")).unwrap().data;
        let y_h = npy::read_f32(&dir.join("yh.npy")).unwrap().data;
        if device == "cpu" {
            assert!(
                same_bits(&y, &expected.y),
                "{name}: Y differs from the float32 run"
            );
            assert!(same_bits(&y_h, &expected.y_h), "{name}: Y_h differs");
        } else {
            common::assert_close(
                &format!("{name}: Y on the GPU"),
                &y,
                &expected.y,
                Tolerance::F32,
            );
            common::assert_close(
                &format!("{name}: Y_h on the GPU"),
                &y_h,
                &expected.y_h,
                Tolerance::F32,
            );
        }
    }
}

#[test]
fn float64_npy_is_converted() {
    // Each value rounds to the nearest float32 (exact for float32 values); NaN and ±inf stay.
    let values = [
        0.1f64,
        -1.0 / 3.0,
        1e-40,
        f64::NAN,
        f64::NEG_INFINITY,
        16777217.0,
    ];
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let a = npy::parse_f32(&raw_npy("<f8", false, "(6,)", &data), "f.npy").unwrap();
    let expected: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    assert!(
        same_bits(&a.data, &expected),
        "{:?} vs {expected:?}",
        a.data
    );
    assert_eq!(a.data[5], 16777216.0, "ties round to even");

    cli_converted_inputs("float64", "<f8", |v| {
        v.iter().flat_map(|&x| f64::from(x).to_le_bytes()).collect()
    });
}

#[test]
fn big_endian_npy_is_converted() {
    let values = [1.5f32, -0.0, f32::MIN_POSITIVE, f32::MAX];
    let be: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let a = npy::parse_f32(&raw_npy(">f4", false, "(4,)", &be), "b.npy").unwrap();
    assert!(same_bits(&a.data, &values));
    let be8: Vec<u8> = values
        .iter()
        .flat_map(|&v| f64::from(v).to_be_bytes())
        .collect();
    let a = npy::parse_f32(&raw_npy(">f8", false, "(4,)", &be8), "b.npy").unwrap();
    assert!(same_bits(&a.data, &values));
    // A byte order is required for multi-byte types.
    api_err(
        "no byte order",
        npy::parse_f32(&raw_npy("|f4", false, "(1,)", &[0; 4]), "b.npy"),
        &["dtype '|f4' has no byte order"],
    );

    cli_converted_inputs("big-endian float32", ">f4", |v| {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    });
    cli_converted_inputs("big-endian float64", ">f8", |v| {
        v.iter().flat_map(|&x| f64::from(x).to_be_bytes()).collect()
    });
    // Big-endian lengths.
    let dir = TempDir::new("be-lens");
    let p = Problem::new(17);
    p.write(&dir);
    let lens: Vec<u8> = p.lens.iter().flat_map(|v| v.to_be_bytes()).collect();
    dir.write("lens.npy", &raw_npy(">i8", false, "(2,)", &lens));
    gru_in(dir.path(), &run_args(&["--device", "cpu"])).assert_success("big-endian lengths");
    assert_eq!(
        npy::read_f32(&dir.join("y.npy")).unwrap().data,
        p.expected().y
    );
}

#[test]
fn fortran_order_npy_is_refused_with_how_to_convert() {
    let needle = "is stored in Fortran (column-major) order; save a C-ordered copy with np.save(path, np.ascontiguousarray(a))";
    api_err(
        "Fortran (2, 3)",
        npy::parse_f32(&raw_npy("<f4", true, "(2, 3)", &[0; 24]), "f.npy"),
        &["f.npy: array of shape (2, 3)", needle],
    );
    // With at most one dimension above 1 the bytes are the same in both orders: read.
    let a = npy::parse_f32(&raw_npy("<f4", true, "(1, 3, 1)", &[0; 12]), "f.npy").unwrap();
    assert_eq!(a.shape, vec![1, 3, 1]);

    for (file, shape) in [
        ("x.npy", vec![T, B, I]),
        ("h0.npy", vec![1, B, H]),
        ("r.npy", vec![1, 3 * H, H]),
    ] {
        let n: usize = shape.iter().product();
        cli_case(
            &format!("Fortran {file}"),
            |d| {
                d.write(
                    file,
                    &raw_npy("<f4", true, &shape_tuple(&shape), &vec![0; 4 * n]),
                )
            },
            &[],
            &[file, needle],
        );
    }
    // A Fortran-ordered B of shape (1, 6H) is the same bytes, and is read.
    let dir = TempDir::new("fortran-b");
    let p = Problem::new(18);
    p.write(&dir);
    let b: Vec<u8> = p.weights.b().iter().flat_map(|v| v.to_le_bytes()).collect();
    dir.write(
        "b.npy",
        &raw_npy("<f4", true, &format!("(1, {})", 6 * H), &b),
    );
    gru_in(dir.path(), &run_args(&["--device", "cpu"])).assert_success("Fortran (1, 6H) B");
    assert_eq!(
        npy::read_f32(&dir.join("y.npy")).unwrap().data,
        p.expected().y
    );
}

// =============================================================================================
// Rows: truncated and corrupted files

#[test]
fn truncated_files() {
    // .npy: every cut is an error naming the file, never a panic.
    let full = npy::encode_f32(&[T, B, I], &[0.25; T * B * I]).unwrap();
    for cut in 0..full.len() {
        let e = api_err(
            &format!("npy cut {cut}"),
            npy::parse_f32(&full[..cut], "x.npy"),
            &["x.npy: "],
        );
        assert!(matches!(e, GruError::Npy { .. }), "{e:?}");
    }
    api_err(
        "npy missing 5 bytes",
        npy::parse_f32(&full[..full.len() - 5], "x.npy"),
        &["truncated: header says shape (3, 2, 3) of '<f4' = 72 bytes of data, but the file has only 67 after the header"],
    );
    for (file, cut, needle) in [
        ("x.npy", full.len() - 5, "truncated"),
        ("x.npy", 9, "truncated"),
        ("h0.npy", 0, "empty file"),
    ] {
        cli_case(
            &format!("{file} cut at {cut}"),
            |d| {
                let bytes = std::fs::read(d.join(file)).unwrap();
                d.write(file, &bytes[..cut.min(bytes.len())]);
            },
            &[],
            &[file, needle],
        );
    }

    // Model files: every cut of a safetensors, .npz and ONNX file is an Import error.
    let (entries, data) = torch_entries();
    let st = safetensors_raw(&entries, &data);
    // Without opset_import the graph is the last field written, so that every cut leaves a
    // message cut short (a cut between top-level fields could otherwise be a valid model).
    let mut m = onnx_model(1, vec![]);
    m.opset_import.clear();
    let onnx_file = onnx_bytes(&m);
    let npz = {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let (k, kd) = keras_entries();
        for (name, _, shape, [s, e]) in &k {
            let v: Vec<f32> = kd[*s..*e]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            zip.start_file(
                format!("{name}.npy"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            zip.write_all(&npy::encode_f32(shape, &v).unwrap()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    };
    for (file, bytes) in [
        ("m.safetensors", &st),
        ("m.onnx", &onnx_file),
        ("m.npz", &npz),
    ] {
        io::load_bytes(bytes, file, &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{file} whole: {e}"));
        for cut in 0..bytes.len() {
            let r = io::load_bytes(&bytes[..cut], file, &ImportOptions::default());
            let e = api_err(&format!("{file} cut at {cut}"), r, &[&format!("{file}: ")]);
            assert!(
                matches!(e, GruError::Import { .. }),
                "{file} cut at {cut}: {e:?}"
            );
        }
    }
    // The data cut short says how much was expected and how much came.
    let short = &st[..st.len() - 4];
    import_err(
        "safetensors missing 4 bytes",
        "m.safetensors",
        pytorch::parse(short, "m.safetensors", None),
        &[
            "truncated",
            &format!("only {} bytes of tensor data", data.len() - 4),
        ],
    );
    cli_model_case(
        "truncated safetensors",
        "m.safetensors",
        short,
        &["truncated"],
    );
    cli_model_case(
        "truncated ONNX",
        "m.onnx",
        &onnx_file[..onnx_file.len() / 2],
        &["not a valid ONNX model"],
    );
    cli_model_case(
        "truncated npz",
        "m.npz",
        &npz[..npz.len() - 30],
        &["not a valid .npz (zip) archive"],
    );
}

#[test]
fn nan_and_inf_in_weights_are_allowed_and_propagated() {
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        let mut rng = Rng::new(19);
        let base = random_weights(&mut rng, convention, I, H, 1.0, true);
        let x = rng.vec(T * B * I, 1.0);
        let h0 = rng.vec(B * H, 1.0);
        // W_z[0, 0] = NaN: unit 0 of every entry is NaN from step 0 on, and through R every
        // unit from step 1 on. +inf in W_r[1, 1] and -inf in a bias are allowed too.
        let mut w = base.w().to_vec();
        w[0] = f32::NAN;
        w[(H + 1) * I + 1] = f32::INFINITY;
        let mut b = base.b().to_vec();
        b[2 * H + 2] = f32::NEG_INFINITY;
        let weights = GruWeights::new(convention, I, H, w, base.r().to_vec(), Some(b))
            .expect("NaN and Inf weights are allowed");
        let model = GruModel::single(weights.clone());
        let input = GruInput::new(&x, T, B).with_initial_h(&h0);
        let expected = cpu::forward(&weights, &input).unwrap();
        for t in 0..T {
            for bb in 0..B {
                let row = &expected.y[(t * B + bb) * H..][..H];
                assert!(
                    row[0].is_nan(),
                    "{convention:?}: Y[{t}, {bb}, 0] = {}",
                    row[0]
                );
                if t > 0 {
                    assert!(
                        row.iter().all(|v| v.is_nan()),
                        "{convention:?}: Y[{t}, {bb}] = {row:?}"
                    );
                }
            }
        }
        for (label, mut g) in gpu_variants(&model) {
            let got = g.forward(&input).expect("GPU forward");
            let what = format!(
                "{label} {convention:?} seed=19 [T={T}, B={B}, I={I}, H={H}] NaN/Inf weights"
            );
            common::assert_close(&format!("Y of {what}"), &got.y, &expected.y, Tolerance::F32);
            common::assert_close(
                &format!("Y_h of {what}"),
                &got.y_h,
                &expected.y_h,
                Tolerance::F32,
            );
        }
    }

    // CLI: a NaN weight runs and gives NaN.
    let dir = TempDir::new("nan-weight");
    let p = Problem::new(20);
    p.write(&dir);
    let mut w = p.weights.w().to_vec();
    w[0] = f32::NAN;
    dir.write_f32("w.npy", &[1, 3 * H, I], &w);
    for device in cli_devices() {
        gru_in(dir.path(), &run_args(&["--device", device]))
            .assert_success(&format!("NaN weight on {device}"));
        let y = npy::read_f32(&dir.join("y.npy")).unwrap().data;
        assert!(y[0].is_nan(), "{device}: Y[0, 0, 0] = {}", y[0]);
    }
}

#[test]
fn nan_and_inf_in_inputs_propagate_never_masked() {
    let (t, b, h) = (5, 3, 6);
    let (t_nan, b_nan) = (2, 1);
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        for (direction, clip) in [
            (Direction::Forward, None),
            (Direction::Reverse, Some(0.5)),
            (Direction::Bidirectional, Some(3.0)),
        ] {
            let mut rng = Rng::new(21);
            let d = direction.num_directions();
            let layer: Vec<GruWeights> = (0..d)
                .map(|_| random_weights(&mut rng, convention, I, h, 1.0, true))
                .collect();
            let model = GruModel::new(direction, vec![layer], clip).unwrap();
            let mut x = rng.vec(t * b * I, 1.0);
            x[(t_nan * b + b_nan) * I] = f32::NAN;
            // Inf in entry 2: saturates the gates, a number, not NaN (unless 0·inf occurs).
            x[(b + 2) * I + 1] = f32::INFINITY;
            x[(3 * b + 2) * I + 2] = f32::NEG_INFINITY;
            // initial_h NaN in entry 0 of direction 0, whose length is 0: not read, zeros out.
            let mut h0 = rng.vec(d * b * h, 1.0);
            h0[0] = f32::NAN;
            let lens = [0i64, t as i64, 4];
            let input = GruInput::new(&x, t, b)
                .with_initial_h(&h0)
                .with_sequence_lens(&lens);
            let expected = cpu::forward_model(&model, &input).unwrap();
            let what = format!(
                "{convention:?} {direction:?} clip {clip:?} seed=21 [T={t}, B={b}, I={I}, H={h}]"
            );
            // Y[t, dir, b, j]: entry 1 is NaN from the NaN step on (forward) or up to it
            // (reverse), and nowhere else.
            for tt in 0..t {
                for dir in 0..d {
                    for bb in 0..b {
                        let row = &expected.y[((tt * d + dir) * b + bb) * h..][..h];
                        let reverse = direction.is_reverse(dir);
                        let nan = bb == b_nan && if reverse { tt <= t_nan } else { tt >= t_nan };
                        for (j, v) in row.iter().enumerate() {
                            assert_eq!(v.is_nan(), nan, "{what}: Y[{tt}, {dir}, {bb}, {j}] = {v}");
                        }
                        if bb == 0 {
                            assert!(row.iter().all(|&v| v == 0.0), "{what}: entry of length 0");
                        }
                    }
                }
            }
            for (label, mut g) in gpu_variants(&model) {
                let got = g.forward(&input).expect("GPU forward");
                common::assert_close(
                    &format!("Y of {label} {what}"),
                    &got.y,
                    &expected.y,
                    Tolerance::F32,
                );
                common::assert_close(
                    &format!("Y_h of {label} {what}"),
                    &got.y_h,
                    &expected.y_h,
                    Tolerance::F32,
                );
            }
        }
    }

    // CLI: NaN in X comes out as NaN in that entry only, on every device.
    let dir = TempDir::new("nan-x");
    let p = Problem::new(22);
    p.write(&dir);
    let mut x = p.x.clone();
    x[(B + 1) * I] = f32::NAN; // step 1, entry 1 (whose length is 1: never read)
    x[I] = f32::NAN; // step 0, entry 1: read
    dir.write_f32("x.npy", &[T, B, I], &x);
    for device in cli_devices() {
        gru_in(dir.path(), &run_args(&["--device", device]))
            .assert_success(&format!("NaN X on {device}"));
        let y = npy::read_f32(&dir.join("y.npy")).unwrap().data;
        let y_h = npy::read_f32(&dir.join("yh.npy")).unwrap().data;
        // Entry 0 is unaffected; entry 1 is NaN at step 0, zeros past its length.
        assert!(
            y.iter()
                .enumerate()
                .all(|(k, v)| (k / H) % B == 1 || v.is_finite()),
            "{device}: {y:?}"
        );
        assert!(y[H..2 * H].iter().all(|v| v.is_nan()), "{device}: {y:?}");
        assert!(
            y[(B + 1) * H..(B + 2) * H].iter().all(|&v| v == 0.0),
            "{device}: {y:?}"
        );
        assert!(
            y_h[H..].iter().all(|v| v.is_nan()) && y_h[..H].iter().all(|v| v.is_finite()),
            "{device}: {y_h:?}"
        );
    }
}

// =============================================================================================
// Rows: model files that lie

#[test]
fn safetensors_truncated() {
    let (entries, data) = torch_entries();
    let whole = safetensors_raw(&entries, &data);
    pytorch::parse(&whole, "t.safetensors", None).expect("the honest file loads");
    let header_len = whole.len() - data.len() - 8;
    let says = format!("says {header_len} bytes of JSON header");
    let only = format!("only {} bytes of tensor data", data.len() - 1);
    let cases: [(&str, &[u8], Vec<&str>); 3] = [
        (
            "header length only",
            &whole[..8],
            vec![
                "truncated: the header length field says",
                "only 0 bytes after it",
            ],
        ),
        (
            "header cut",
            &whole[..20],
            vec![&says, "only 12 bytes after it"],
        ),
        (
            "data cut",
            &whole[..whole.len() - 1],
            vec!["truncated", &only],
        ),
    ];
    for (what, bytes, needles) in cases {
        import_err(
            what,
            "t.safetensors",
            pytorch::parse(bytes, "t.safetensors", None),
            &needles,
        );
        cli_model_case(
            &format!("safetensors {what}"),
            "t.safetensors",
            bytes,
            &needles,
        );
    }
    // Keras files too.
    let (k, kd) = keras_entries();
    let cut = safetensors_raw(&k, &kd[..kd.len() - 8]);
    import_err(
        "Keras data cut",
        "k.safetensors",
        keras::parse(&cut, "k.safetensors", None),
        &["truncated"],
    );
}

#[test]
fn safetensors_overlapping_offsets() {
    // weight_hh_l0 starts 8 bytes before weight_ih_l0 ends.
    let (mut entries, data) = torch_entries();
    let [s1, e1] = entries[1].3;
    entries[1].3 = [s1 - 8, e1 - 8];
    let bytes = safetensors_raw(&entries, &data);
    let needles = ["'weight_hh_l0'", "overlap", "'weight_ih_l0'"];
    import_err(
        "overlap",
        "o.safetensors",
        pytorch::parse(&bytes, "o.safetensors", None),
        &needles,
    );
    import_err(
        "overlap, detected",
        "o.safetensors",
        io::load_bytes(&bytes, "o.safetensors", &ImportOptions::default()),
        &needles,
    );
    cli_model_case("overlapping offsets", "o.safetensors", &bytes, &needles);
    // Two tensors on exactly the same bytes.
    let (mut entries, data) = torch_entries();
    entries[3].3 = entries[2].3;
    let bytes = safetensors_raw(&entries, &data);
    import_err(
        "same bytes",
        "o.safetensors",
        pytorch::parse(&bytes, "o.safetensors", None),
        &["'bias_hh_l0'", "overlap", "'bias_ih_l0'"],
    );
}

#[test]
fn safetensors_out_of_range_offsets() {
    let (mut entries, data) = torch_entries();
    let last = entries.len() - 1;
    let [s, e] = entries[last].3;
    entries[last].3 = [s + 64, e + 64];
    let bytes = safetensors_raw(&entries, &data);
    let offsets = format!(
        "data_offsets [{}, {}], past the end of the data",
        s + 64,
        e + 64
    );
    let only = format!("only {} bytes of tensor data", data.len());
    let needles = ["'bias_hh_l0'", &offsets, &only];
    import_err(
        "past the end",
        "r.safetensors",
        pytorch::parse(&bytes, "r.safetensors", None),
        &needles,
    );
    cli_model_case("offsets past the end", "r.safetensors", &bytes, &needles);
    // Offsets that end before they start, and offsets near u64::MAX.
    let (mut entries, data) = torch_entries();
    entries[0].3 = [entries[0].3[1], 0];
    import_err(
        "end before start",
        "r.safetensors",
        pytorch::parse(&safetensors_raw(&entries, &data), "r.safetensors", None),
        &["'weight_ih_l0'"],
    );
    let (mut entries, data) = torch_entries();
    entries[3].3 = [usize::MAX - 3, usize::MAX];
    import_err(
        "offsets near usize::MAX",
        "r.safetensors",
        pytorch::parse(&safetensors_raw(&entries, &data), "r.safetensors", None),
        &["'bias_hh_l0'"],
    );
}

#[test]
fn safetensors_lying_about_shapes() {
    // weight_hh_l0 says [12, 5] (240 bytes) over 192 bytes of data.
    let (mut entries, data) = torch_entries();
    entries[1].2 = vec![3 * H, H + 1];
    let bytes = safetensors_raw(&entries, &data);
    let needles = ["'weight_hh_l0'", "[12, 5]", "F32", "240 bytes", "192"];
    import_err(
        "shape larger than data",
        "s.safetensors",
        pytorch::parse(&bytes, "s.safetensors", None),
        &needles,
    );
    cli_model_case(
        "shape larger than its data",
        "s.safetensors",
        &bytes,
        &needles,
    );
    // A dtype that lies: F64 over F32 data.
    let (mut entries, data) = torch_entries();
    entries[2].1 = "F64".into();
    import_err(
        "F64 over F32 data",
        "s.safetensors",
        pytorch::parse(&safetensors_raw(&entries, &data), "s.safetensors", None),
        &["'bias_ih_l0'", "F64", "96 bytes", "48"],
    );
    // A consistent header whose shapes disagree with each other is refused by the importer.
    let (mut k, mut kd) = keras_entries();
    k[1].2 = vec![H + 1, 3 * H];
    let extra = 3 * H * 4;
    let end = k[1].3[1];
    kd.splice(end..end, std::iter::repeat_n(0u8, extra));
    k[1].3[1] += extra;
    k[2].3 = [k[2].3[0] + extra, k[2].3[1] + extra];
    let bytes = safetensors_raw(&k, &kd);
    import_err(
        "Keras recurrent_kernel (5, 12)",
        "k.safetensors",
        keras::parse(&bytes, "k.safetensors", None),
        &["'recurrent_kernel' has shape (5, 12), expected (H, 3H)"],
    );
}

#[test]
fn onnx_truncated_or_lying_about_shapes() {
    let whole = onnx_bytes(&onnx_model(1, vec![]));
    onnx::parse(&whole, "o.onnx").expect("the honest model loads");
    for (cut, needle) in [
        (1, "not a valid ONNX model: protobuf decoding failed"),
        (2, "the ONNX model has no graph"), // ir_version alone is a valid message
        (whole.len() / 3, "not a valid ONNX model"),
        (whole.len() - 1, "the file may be truncated"),
    ] {
        import_err(
            &format!("cut at {cut}"),
            "o.onnx",
            onnx::parse(&whole[..cut], "o.onnx"),
            &[needle],
        );
    }
    // R's dims say [1, 12, 4] = 48 elements, its raw_data holds 47 and a half.
    let mut m = onnx_model(1, vec![]);
    let r = &mut m.graph.as_mut().unwrap().initializer[1];
    r.raw_data.truncate(r.raw_data.len() - 2);
    let needles = [
        "R ('R') has dims [1, 12, 4] = 48 elements but holds 47",
        "raw_data's length is not a multiple of the element size",
    ];
    import_err(
        "R short",
        "o.onnx",
        onnx::parse(&onnx_bytes(&m), "o.onnx"),
        &needles,
    );
    cli_model_case(
        "ONNX R shorter than its dims",
        "o.onnx",
        &onnx_bytes(&m),
        &needles,
    );
    // W's typed data longer than its dims.
    let mut m = onnx_model(1, vec![]);
    let w = &mut m.graph.as_mut().unwrap().initializer[0];
    w.raw_data.clear();
    w.float_data = vec![0.5; 3 * H * I + 1];
    import_err(
        "W long",
        "o.onnx",
        onnx::parse(&onnx_bytes(&m), "o.onnx"),
        &["W ('W') has dims [1, 12, 3] = 36 elements but holds 37"],
    );
    // A negative dimension, and the hidden_size attribute against R.
    let mut m = onnx_model(1, vec![]);
    m.graph.as_mut().unwrap().initializer[2].dims = vec![1, -24];
    import_err(
        "negative dim",
        "o.onnx",
        onnx::parse(&onnx_bytes(&m), "o.onnx"),
        &["B ('B') has a negative dimension -24"],
    );
    let m = onnx_model(1, vec![attr_int("hidden_size", 5)]);
    let needle = "attribute hidden_size is 5, but R ('R') of shape [1, 12, 4] has hidden_size 4";
    import_err(
        "hidden_size 5",
        "o.onnx",
        onnx::parse(&onnx_bytes(&m), "o.onnx"),
        &[needle],
    );
    cli_model_case(
        "ONNX hidden_size against R",
        "o.onnx",
        &onnx_bytes(&m),
        &[needle],
    );
    // Data said to live in another file, at an offset: refused, never followed.
    let mut m = onnx_model(1, vec![]);
    let w = &mut m.graph.as_mut().unwrap().initializer[0];
    w.raw_data.clear();
    w.data_location = DataLocation::External as i32;
    w.external_data = vec![
        StringStringEntryProto {
            key: "location".into(),
            value: "../../etc/passwd".into(),
        },
        StringStringEntryProto {
            key: "offset".into(),
            value: "18446744073709551615".into(),
        },
    ];
    let needle = "W ('W') is stored in an external data file";
    import_err(
        "external data",
        "o.onnx",
        onnx::parse(&onnx_bytes(&m), "o.onnx"),
        &[needle],
    );
    cli_model_case("ONNX external data", "o.onnx", &onnx_bytes(&m), &[needle]);
}

#[test]
fn sizes_whose_byte_counts_overflow() {
    // API: element counts that overflow usize are typed errors, before any allocation.
    let huge = usize::MAX / 2;
    api_err(
        "W of [3H, usize::MAX/2]",
        GruWeights::new(Convention::ResetBefore, huge, 2, vec![], vec![], None),
        &["invalid W: expected a size whose element count fits in usize"],
    );
    api_err(
        "3·H overflowing",
        GruWeights::new(Convention::ResetBefore, 1, huge, vec![], vec![], None),
        &["invalid 3·hidden_size: expected a size whose element count fits in usize"],
    );
    let w = weights(23, Convention::ResetBefore);
    api_err(
        "T·B overflowing",
        cpu::forward(&w, &GruInput::new(&[], usize::MAX, 2)),
        &["invalid T·B: expected a size whose element count fits in usize"],
    );
    api_err(
        "T·B·I overflowing",
        cpu::forward(&w, &GruInput::new(&[], 1 << 41, 1 << 22)),
        &["invalid X: expected a size whose element count fits in usize"],
    );
    if let Some(mut g) = gpu_model(&GruModel::single(w.clone())) {
        api_err(
            "GPU T·B overflowing",
            g.forward(&GruInput::new(&[], usize::MAX, 2)),
            &["T·B"],
        );
    }

    // GPU: a problem too large for the device's buffers is split over batch and time; what
    // cannot be split (one entry of a reverse network) is a DeviceLimit error before anything
    // runs, with a byte count past 4 GiB that must not wrap in u32, and the model still works
    // afterwards. One entry of T = 350 000 steps at H = 1024: the input projection alone is
    // 350 000 · 3 · 1024 · 4 bytes ≈ 4.3 GB (X is only 1.4 MB).
    if let Some(ctx) = common::gpu() {
        let (t, h) = (350_000usize, 1024usize);
        let needed = (t * 3 * h * 4) as u64;
        assert!(needed > u64::from(u32::MAX));
        let w = random_weights(&mut Rng::new(24), Convention::ResetAfter, 1, h, 1.0, false);
        let model = GruModel::new(Direction::Reverse, vec![vec![w]], None).unwrap();
        if needed <= ctx.limits().max_storage_buffer_binding_size {
            // No Vulkan device binds 4 GiB (maxStorageBufferRange is a u32); never run it.
            common::announce_skip(&format!(
                "the 4 GiB refusal: this device binds {needed} bytes"
            ));
        } else {
            let mut g = GpuGru::from_model(ctx, &model).expect("H = 1024 model");
            let x = vec![0.5f32; t];
            let e = api_err(
                "one reverse entry past 4 GiB",
                g.forward(&GruInput::new(&x, t, 1)),
                &[
                    "one entry of T = 350000 steps (reverse direction",
                    "needs 4300800000",
                ],
            );
            assert!(matches!(e, GruError::DeviceLimit { .. }), "{e:?}");
            let input = GruInput::new(&x[..3], 3, 1);
            let small = g
                .forward(&input)
                .expect("a small forward after the refusal");
            let expected = cpu::forward_model(&model, &input).unwrap();
            common::assert_close("after the refusal", &small.y, &expected.y, Tolerance::F32);
        }
    }

    // .npy headers whose byte counts overflow usize, or u32 (2³⁰ + 1 float32 = 2³² + 4 bytes).
    api_err(
        "npy overflowing usize",
        npy::parse_f32(
            &raw_npy("<f8", false, &format!("({}, 4)", 1usize << 62), &[]),
            "o.npy",
        ),
        &["needs more bytes than this machine can address; the header is corrupt"],
    );
    let u32_wrap = format!("({},)", (1usize << 30) + 1);
    api_err(
        "npy overflowing u32",
        npy::parse_f32(&raw_npy("<f4", false, &u32_wrap, &[0; 4]), "o.npy"),
        &["= 4294967300 bytes of data, but the file has only 4"],
    );
    cli_case(
        "X header overflowing usize",
        |d| {
            d.write(
                "x.npy",
                &raw_npy("<f4", false, &format!("({}, 4, 4)", 1usize << 61), &[]),
            )
        },
        &[],
        &["x.npy", "the header is corrupt"],
    );
    cli_case(
        "W header overflowing u32",
        |d| d.write("w.npy", &raw_npy("<f4", false, &u32_wrap, &[0; 4])),
        &[],
        &["w.npy", "4294967300 bytes"],
    );

    // safetensors and ONNX shapes whose counts overflow.
    let (mut entries, data) = torch_entries();
    entries[0].2 = vec![1 << 62, 8];
    let bytes = safetensors_raw(&entries, &data);
    let needles = ["'weight_ih_l0'", "overflow"];
    import_err(
        "safetensors shape overflow",
        "v.safetensors",
        pytorch::parse(&bytes, "v.safetensors", None),
        &needles,
    );
    cli_model_case(
        "safetensors shape overflow",
        "v.safetensors",
        &bytes,
        &needles,
    );
    let mut m = onnx_model(1, vec![]);
    m.graph.as_mut().unwrap().initializer[0].dims = vec![1 << 40, 1 << 40, 4];
    let needle = "W ('W') has dims [1099511627776, 1099511627776, 4] whose element count overflows";
    import_err(
        "ONNX dims overflow",
        "v.onnx",
        onnx::parse(&onnx_bytes(&m), "v.onnx"),
        &[needle],
    );
    cli_model_case("ONNX dims overflow", "v.onnx", &onnx_bytes(&m), &[needle]);
    let mut m = onnx_model(1, vec![]);
    m.graph.as_mut().unwrap().initializer[1].dims = vec![1 << 30, 3, 4];
    import_err(
        "ONNX dims past u32 bytes",
        "v.onnx",
        onnx::parse(&onnx_bytes(&m), "v.onnx"),
        &["R ('R') has dims [1073741824, 3, 4] = 12884901888 elements but holds 48"],
    );
}

#[test]
fn inputs_are_not_modified() {
    // API: the caller's arrays are borrowed; after CPU and GPU forwards, failed or not, they
    // hold the same bits (NaN included).
    let mut rng = Rng::new(25);
    let w = random_weights(&mut rng, Convention::ResetAfter, I, H, 1.0, true);
    let weights_before = w.clone();
    let mut x = rng.vec(T * B * I, 1.0);
    x[1] = f32::NAN;
    let h0 = rng.vec(B * H, 1.0);
    let lens = [2i64, 3];
    let (x0, h00, lens0) = (x.clone(), h0.clone(), lens);
    let input = GruInput::new(&x, T, B)
        .with_initial_h(&h0)
        .with_sequence_lens(&lens);
    cpu::forward(&w, &input).unwrap();
    let _ = cpu::forward(&w, &GruInput::new(&x[..5], T, B));
    if let Some(mut g) = gpu_model(&GruModel::single(w.clone())) {
        g.forward(&input).unwrap();
        let _ = g.forward(&GruInput::new(&x, T, B).with_initial_h(&h0[..3]));
    }
    assert!(same_bits(&x, &x0) && same_bits(&h0, &h00) && lens == lens0);
    assert_eq!(w, weights_before);

    // CLI: the input files are byte-for-byte the same after a run, after a failed run, and
    // after a run asked to write over one of them (refused).
    let dir = TempDir::new("unmodified");
    Problem::new(26).write(&dir);
    let files = ["x.npy", "w.npy", "r.npy", "b.npy", "h0.npy", "lens.npy"];
    let snapshot = || -> Vec<Vec<u8>> {
        files
            .iter()
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .collect()
    };
    let before = snapshot();
    gru_in(dir.path(), &run_args(&["--device", "cpu"])).assert_success("a plain run");
    assert_eq!(snapshot(), before, "a run modified an input file");
    // An output path that names an input (however spelled) is refused before anything runs.
    for (flag, file) in [
        ("--y", "x.npy"),
        ("--y-h", "h0.npy"),
        ("--y", "./w.npy"),
        ("--y-h", "lens.npy"),
    ] {
        let mut args: Vec<&str> = run_args(&["--device", "cpu"]);
        let k = args.iter().position(|a| *a == flag).unwrap();
        args[k + 1] = file;
        let run = gru_in(dir.path(), &args);
        run.one_error(2, &format!("{flag} {file}"), &[flag, "input"]);
        assert_eq!(snapshot(), before, "{flag} {file} modified an input file");
    }
    // A failed run leaves an earlier output untouched.
    std::fs::write(dir.join("y.npy"), b"earlier output").unwrap();
    std::fs::write(dir.join("yh.npy"), b"earlier state").unwrap();
    let run = gru_in(
        dir.path(),
        &run_args(&["--device", "cpu", "--direction", "reverse", "--layout", "1"]),
    );
    run.one_error(1, "bad shapes", &[]);
    assert_eq!(std::fs::read(dir.join("y.npy")).unwrap(), b"earlier output");
    assert_eq!(std::fs::read(dir.join("yh.npy")).unwrap(), b"earlier state");
    // An output that cannot be written leaves the other one unwritten too (and no temporary
    // file behind).
    let mut args = run_args(&["--device", "cpu"]);
    let k = args.iter().position(|a| *a == "--y-h").unwrap();
    args[k + 1] = "missing/yh.npy";
    gru_in(dir.path(), &args).one_error(1, "--y-h in a missing directory", &["missing/yh.npy"]);
    assert_eq!(std::fs::read(dir.join("y.npy")).unwrap(), b"earlier output");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["b.npy", "h0.npy", "lens.npy", "r.npy", "w.npy", "x.npy", "y.npy", "yh.npy"]
    );
}
