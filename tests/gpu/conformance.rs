//! The conformance vectors committed in `tests/data/conformance` (ONNX's GRU node tests and
//! onnxruntime's CPU GRU; `tests/data/conformance/README.md` says where each comes from), every
//! one of them run on the CPU reference and on the GPU, each checked at onnxruntime's f32 tolerance
//! ([`Tolerance::F32`], `|a − e| ≤ 1e-5 + 1e-4·|e|`).
//!
//! Every vector is one JSON file
//! `{"name", "attributes", "inputs": {NAME: {"shape", "data"}}, "outputs": {...}}` with flat
//! row-major data, in ONNX's shapes, which the library takes as they are with
//! [`OutputStyle::Onnx`] (one layer, `D` directions):
//!
//! | ONNX | layout 0 | layout 1 |
//! |---|---|---|
//! | `X` | `[T, B, I]` | `[B, T, I]` |
//! | `W`, `R`, `B` | `[D, 3H, I]`, `[D, 3H, H]`, `[D, 6H]` | the same |
//! | `initial_h`, `Y_h` | `[D, B, H]` | `[B, D, H]` |
//! | `Y` | `[T, D, B, H]` | `[B, T, D, H]` |
//!
//! Attributes `hidden_size` (checked against the shapes), `linear_before_reset`, `direction`,
//! `layout` and `clip` are honoured; any other attribute, input or output fails the test
//! loudly. `sequence_lens` is stored as floats in some files: each value must be an exact
//! integer.
//!
//! [`every_file_is_covered`] keeps this file honest: the files run here must be exactly the
//! directory's contents (besides its `README.md`).
//!
//! `test_gru_seq_length` is an ONNX backend test whose name refers to the generator's
//! sequence length (`T = 2`); it has **no** `sequence_lens` input.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::{each_gpu_config, gpu, rounded_reference, unravel};
use gru_wgpu::{
    cpu, Convention, Direction, Dtype, GruInput, GruModel, GruOutput, GruWeights, Layout,
    OutputStyle, Tolerance,
};
use serde_json::Value;

/// The files that run here, relative to the conformance directory: all of them.
const COVERED: &[&str] = &[
    "onnx/test_gru_batchwise.json",
    "onnx/test_gru_bidirectional.json",
    "onnx/test_gru_defaults.json",
    "onnx/test_gru_reverse.json",
    "onnx/test_gru_seq_length.json",
    "onnx/test_gru_with_initial_bias.json",
    "onnxruntime/ort_bidirectional_lbr1.json",
    "onnxruntime/ort_clip_lbr1.json",
    "onnxruntime/ort_forward_lbr0.json",
    "onnxruntime/ort_forward_lbr1.json",
    "onnxruntime/ort_forward_lbr1_initial_h.json",
    "onnxruntime/ort_forward_no_bias.json",
    "onnxruntime/ort_hidden_33_lbr1.json",
    "onnxruntime/ort_reverse_lbr0.json",
    "onnxruntime/ort_reverse_lbr1_initial_h.json",
    "onnxruntime/ort_saturating_inputs_lbr0.json",
    "onnxruntime/ort_seq_lens_all_zero.json",
    "onnxruntime/ort_seq_lens_bidirectional_lbr1.json",
    "onnxruntime/ort_seq_lens_mixed_lbr0.json",
    "onnxruntime/ort_seq_lens_zero_in_middle_lbr1.json",
];

/// The conformance directory inside the repository; its absence is a failure, never a skip.
fn conformance_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance");
    assert!(
        dir.is_dir(),
        "conformance vectors not found at {} (the repository holds them: onnx/*.json and \
         onnxruntime/*.json); the conformance tests cannot run without them",
        dir.display()
    );
    dir
}

/// One tensor of a vector.
#[derive(Debug)]
struct Tensor {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Tensor {
    fn f32(&self) -> Vec<f32> {
        self.data.iter().map(|&v| v as f32).collect()
    }
}

/// One parsed vector file.
#[derive(Debug)]
struct Vector {
    file: String,
    name: String,
    attributes: serde_json::Map<String, Value>,
    inputs: BTreeMap<String, Tensor>,
    outputs: BTreeMap<String, Tensor>,
}

fn parse_tensors(file: &str, what: &str, v: &Value) -> BTreeMap<String, Tensor> {
    let map = v
        .as_object()
        .unwrap_or_else(|| panic!("{file}: \"{what}\" is not an object"));
    map.iter()
        .map(|(name, t)| {
            let keys: BTreeSet<&str> = t
                .as_object()
                .unwrap_or_else(|| panic!("{file}: {what}.{name} is not an object"))
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["shape", "data"]),
                "{file}: {what}.{name} must have exactly the keys shape and data"
            );
            let shape: Vec<usize> = t["shape"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: {what}.{name}.shape is not an array"))
                .iter()
                .map(|d| {
                    d.as_u64()
                        .unwrap_or_else(|| panic!("{file}: {what}.{name}.shape has {d}"))
                        as usize
                })
                .collect();
            let data: Vec<f64> = t["data"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: {what}.{name}.data is not an array"))
                .iter()
                .map(|d| {
                    d.as_f64()
                        .unwrap_or_else(|| panic!("{file}: {what}.{name}.data has {d}"))
                })
                .collect();
            assert_eq!(
                shape.iter().product::<usize>(),
                data.len(),
                "{file}: {what}.{name} has shape {shape:?} but {} values",
                data.len()
            );
            (name.clone(), Tensor { shape, data })
        })
        .collect()
}

fn load(relative: &str) -> Vector {
    let path = conformance_dir().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let root: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
    let obj = root
        .as_object()
        .unwrap_or_else(|| panic!("{relative}: the top level is not an object"));
    for key in obj.keys() {
        assert!(
            ["name", "opset", "source", "attributes", "inputs", "outputs"].contains(&key.as_str()),
            "{relative}: unknown top-level key {key:?}; this test does not know what it means"
        );
    }
    let name = obj["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{relative}: \"name\" is not a string"))
        .to_string();
    let stem = Path::new(relative).file_stem().unwrap().to_str().unwrap();
    assert_eq!(name, stem, "{relative}: name does not match the file name");
    Vector {
        file: relative.to_string(),
        name,
        attributes: obj["attributes"]
            .as_object()
            .unwrap_or_else(|| panic!("{relative}: \"attributes\" is not an object"))
            .clone(),
        inputs: parse_tensors(relative, "inputs", &obj["inputs"]),
        outputs: parse_tensors(relative, "outputs", &obj["outputs"]),
    }
}

/// Checks that every attribute, input and output is one this test honours.
fn check_known(v: &Vector) {
    for (key, value) in &v.attributes {
        assert!(
            [
                "hidden_size",
                "linear_before_reset",
                "direction",
                "layout",
                "clip"
            ]
            .contains(&key.as_str()),
            "{}: attribute {key} = {value} cannot be honoured by this test",
            v.name
        );
    }
    for name in v.inputs.keys() {
        assert!(
            ["X", "W", "R", "B", "sequence_lens", "initial_h"].contains(&name.as_str()),
            "{}: unknown input {name}",
            v.name
        );
    }
    for name in v.outputs.keys() {
        assert!(
            ["Y", "Y_h"].contains(&name.as_str()),
            "{}: unknown output {name}",
            v.name
        );
    }
}

/// The model and input of a vector, with every shape checked.
struct Problem {
    model: GruModel,
    x: Vec<f32>,
    initial_h: Option<Vec<f32>>,
    lens: Option<Vec<i64>>,
    layout: Layout,
    t: usize,
    b: usize,
}

fn expect_shape(v: &Vector, what: &str, tensor: &Tensor, expected: &[usize]) {
    assert_eq!(
        tensor.shape, expected,
        "{}: {what} has shape {:?}, expected {expected:?}",
        v.name, tensor.shape
    );
}

fn problem(v: &Vector) -> Problem {
    check_known(v);
    let attr_i64 = |key: &str, default: i64| match v.attributes.get(key) {
        None => default,
        Some(value) => value
            .as_i64()
            .unwrap_or_else(|| panic!("{}: {key} = {value} is not an integer", v.name)),
    };
    let direction = match v.attributes.get("direction") {
        None => Direction::Forward,
        Some(value) => Direction::from_onnx_name(value.as_str().unwrap_or("?"))
            .unwrap_or_else(|e| panic!("{}: {e}", v.name)),
    };
    let layout = match attr_i64("layout", 0) {
        0 => Layout::SequenceMajor,
        1 => Layout::BatchMajor,
        other => panic!("{}: layout = {other}", v.name),
    };
    let clip = v.attributes.get("clip").map(|c| {
        c.as_f64()
            .unwrap_or_else(|| panic!("{}: clip = {c} is not a number", v.name)) as f32
    });
    let convention = Convention::from_linear_before_reset(attr_i64("linear_before_reset", 0))
        .unwrap_or_else(|e| panic!("{}: {e}", v.name));
    let d = direction.num_directions();
    let x = &v.inputs["X"];
    assert_eq!(x.shape.len(), 3, "{}: X must have rank 3", v.name);
    let (t, b, i) = match layout {
        Layout::SequenceMajor => (x.shape[0], x.shape[1], x.shape[2]),
        Layout::BatchMajor => (x.shape[1], x.shape[0], x.shape[2]),
    };
    let h = attr_i64("hidden_size", -1);
    assert!(h > 0, "{}: hidden_size missing", v.name);
    let h = h as usize;
    expect_shape(v, "W", &v.inputs["W"], &[d, 3 * h, i]);
    expect_shape(v, "R", &v.inputs["R"], &[d, 3 * h, h]);
    let state_shape = match layout {
        Layout::SequenceMajor => [d, b, h],
        Layout::BatchMajor => [b, d, h],
    };
    let initial_h = v.inputs.get("initial_h").map(|h0| {
        expect_shape(v, "initial_h", h0, &state_shape);
        h0.f32()
    });
    let lens = v.inputs.get("sequence_lens").map(|lens| {
        expect_shape(v, "sequence_lens", lens, &[b]);
        lens.data
            .iter()
            .map(|&l| {
                assert_eq!(
                    l.fract(),
                    0.0,
                    "{}: sequence length {l} is not an integer",
                    v.name
                );
                l as i64
            })
            .collect()
    });
    assert!(
        !v.outputs.is_empty(),
        "{}: a vector without outputs checks nothing",
        v.name
    );
    if let Some(y) = v.outputs.get("Y") {
        let shape = match layout {
            Layout::SequenceMajor => [t, d, b, h],
            Layout::BatchMajor => [b, t, d, h],
        };
        expect_shape(v, "Y", y, &shape);
    }
    if let Some(y_h) = v.outputs.get("Y_h") {
        expect_shape(v, "Y_h", y_h, &state_shape);
    }
    let (w, r) = (v.inputs["W"].f32(), v.inputs["R"].f32());
    let bias = v.inputs.get("B").map(|bias| {
        expect_shape(v, "B", bias, &[d, 6 * h]);
        bias.f32()
    });
    let per_direction = (0..d)
        .map(|k| {
            GruWeights::new(
                convention,
                i,
                h,
                w[k * 3 * h * i..][..3 * h * i].to_vec(),
                r[k * 3 * h * h..][..3 * h * h].to_vec(),
                bias.as_ref().map(|bb| bb[k * 6 * h..][..6 * h].to_vec()),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", v.name))
        })
        .collect();
    let model = GruModel::new(direction, vec![per_direction], clip)
        .unwrap_or_else(|e| panic!("{}: {e}", v.name));
    Problem {
        model,
        x: x.f32(),
        initial_h,
        lens,
        layout,
        t,
        b,
    }
}

/// Compares every output the vector has; returns a report of the failures (empty: all passed).
fn check(v: &Vector, path: &str, got: &GruOutput) -> String {
    let mut failures = String::new();
    for (name, expected) in &v.outputs {
        let data = match name.as_str() {
            "Y" => &got.y,
            "Y_h" => &got.y_h,
            _ => unreachable!("checked in check_known"),
        };
        let c = Tolerance::F32.compare(data, &expected.f32());
        if !c.passed() {
            let at = c
                .worst
                .map(|(i, _, _)| {
                    format!(
                        " (worst index {:?} of {:?})",
                        unravel(i, &expected.shape),
                        expected.shape
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                failures,
                "{} [{}] {path}: {name}{:?}: {c}{at}",
                v.name, v.file, expected.shape
            );
        }
    }
    failures
}

/// Runs one vector on the CPU reference and on the GPU, checking both.
///
/// The GPU runs every storage type and every kernel variant ([`common::each_gpu_config`]).
/// In f32 it must match the vector's outputs. In f16 it must match the f64 reference run on
/// what f16 stores (inputs and weights rounded, values beyond ±65504 saturated: the rule of
/// [`gru_wgpu::Dtype::F16`]) within onnxruntime's f16 tolerance, and it may hold a NaN only
/// where the vector's outputs do (a finite input never turns into NaN through f16 storage;
/// `ort_saturating_inputs_lbr0`, with |x| ≈ 1e20, is the case that did).
fn run(relative: &str) {
    let v = load(relative);
    let p = problem(&v);
    let mut input = GruInput::new(&p.x, p.t, p.b)
        .with_layout(p.layout)
        .with_style(OutputStyle::Onnx);
    if let Some(h0) = &p.initial_h {
        input = input.with_initial_h(h0);
    }
    if let Some(lens) = &p.lens {
        input = input.with_sequence_lens(lens);
    }
    let mut failures = String::new();

    let reference = cpu::forward_model(&p.model, &input)
        .unwrap_or_else(|e| panic!("{}: cpu::forward_model failed: {e}", v.name));
    failures += &check(&v, "CPU reference", &reference);

    if let Some(ctx) = gpu() {
        // The reference for f16 storage: the same problem on f16-rounded data.
        let f16_reference = rounded_reference(&p.model, &input, Dtype::F16);
        each_gpu_config(ctx, &p.model, |dtype, variant, model| {
            let what = format!("GPU {dtype:?} {variant} ({})", ctx.describe());
            let got = model
                .forward(&input)
                .unwrap_or_else(|e| panic!("{}: {what} forward failed: {e}", v.name));
            match dtype {
                Dtype::F32 => failures += &check(&v, &what, &got),
                Dtype::F16 => {
                    for (name, g, e) in [
                        ("Y", &got.y, &f16_reference.y),
                        ("Y_h", &got.y_h, &f16_reference.y_h),
                    ] {
                        let c = Tolerance::F16.compare(g, e);
                        if !c.passed() {
                            let _ = writeln!(
                                failures,
                                "{} {what}: {name} vs the f16-rounded reference: {c}",
                                v.name
                            );
                        }
                        if let Some(expected) = v.outputs.get(name) {
                            let nan_where_none = g
                                .iter()
                                .zip(&expected.data)
                                .position(|(g, e)| g.is_nan() && !e.is_nan());
                            if let Some(i) = nan_where_none {
                                let _ = writeln!(
                                    failures,
                                    "{} {what}: {name} is NaN at {:?} of {:?}, where the vector \
                                     has {}",
                                    v.name,
                                    unravel(i, &expected.shape),
                                    expected.shape,
                                    expected.data[i]
                                );
                            }
                        }
                    }
                }
            }
        });
    }

    assert!(
        failures.is_empty(),
        "{relative} [T={}, B={}, I={}, H={}, {:?}, {:?}, {:?}, clip {:?}]:\n{failures}",
        p.t,
        p.b,
        p.model.input_size(),
        p.model.hidden_size(),
        p.model.convention(),
        p.model.direction(),
        p.layout,
        p.model.clip()
    );
}

#[test]
fn onnx_test_gru_defaults() {
    run("onnx/test_gru_defaults.json");
}

#[test]
fn onnx_test_gru_with_initial_bias() {
    run("onnx/test_gru_with_initial_bias.json");
}

#[test]
fn onnx_test_gru_seq_length() {
    let v = load("onnx/test_gru_seq_length.json");
    assert!(
        !v.inputs.contains_key("sequence_lens"),
        "test_gru_seq_length now has a sequence_lens input; review whether it still runs here"
    );
    run("onnx/test_gru_seq_length.json");
}

#[test]
fn ort_forward_lbr0() {
    run("onnxruntime/ort_forward_lbr0.json");
}

#[test]
fn ort_forward_lbr1() {
    run("onnxruntime/ort_forward_lbr1.json");
}

#[test]
fn ort_forward_no_bias() {
    run("onnxruntime/ort_forward_no_bias.json");
}

#[test]
fn ort_forward_lbr1_initial_h() {
    run("onnxruntime/ort_forward_lbr1_initial_h.json");
}

#[test]
fn ort_saturating_inputs_lbr0() {
    run("onnxruntime/ort_saturating_inputs_lbr0.json");
}

#[test]
fn ort_hidden_33_lbr1() {
    run("onnxruntime/ort_hidden_33_lbr1.json");
}

#[test]
fn onnx_test_gru_batchwise() {
    run("onnx/test_gru_batchwise.json");
}

#[test]
fn onnx_test_gru_bidirectional() {
    run("onnx/test_gru_bidirectional.json");
}

#[test]
fn onnx_test_gru_reverse() {
    run("onnx/test_gru_reverse.json");
}

#[test]
fn ort_bidirectional_lbr1() {
    run("onnxruntime/ort_bidirectional_lbr1.json");
}

#[test]
fn ort_clip_lbr1() {
    run("onnxruntime/ort_clip_lbr1.json");
}

#[test]
fn ort_reverse_lbr0() {
    run("onnxruntime/ort_reverse_lbr0.json");
}

#[test]
fn ort_reverse_lbr1_initial_h() {
    run("onnxruntime/ort_reverse_lbr1_initial_h.json");
}

#[test]
fn ort_seq_lens_all_zero() {
    run("onnxruntime/ort_seq_lens_all_zero.json");
}

#[test]
fn ort_seq_lens_bidirectional_lbr1() {
    run("onnxruntime/ort_seq_lens_bidirectional_lbr1.json");
}

#[test]
fn ort_seq_lens_mixed_lbr0() {
    run("onnxruntime/ort_seq_lens_mixed_lbr0.json");
}

#[test]
fn ort_seq_lens_zero_in_middle_lbr1() {
    run("onnxruntime/ort_seq_lens_zero_in_middle_lbr1.json");
}

/// Every `.json` file below `dir`, as `/`-separated paths relative to `dir`; anything else in
/// the directory fails too, so a vector in a new format cannot hide.
fn list_files(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        if path.is_dir() {
            list_files(&path, &relative, out);
        } else {
            out.insert(relative);
        }
    }
}

#[test]
fn every_file_is_covered() {
    let mut on_disk = BTreeSet::new();
    list_files(&conformance_dir(), "", &mut on_disk);
    assert!(
        on_disk.remove("README.md"),
        "tests/data/conformance/README.md (where the vectors come from) is missing"
    );
    let covered: BTreeSet<String> = COVERED.iter().map(|s| s.to_string()).collect();
    assert_eq!(covered.len(), COVERED.len(), "COVERED lists a file twice");
    let unknown: Vec<_> = on_disk.difference(&covered).collect();
    let gone: Vec<_> = covered.difference(&on_disk).collect();
    assert!(
        unknown.is_empty() && gone.is_empty(),
        "the conformance directory and this test disagree.\n  files nobody runs (add a \
         test): {unknown:?}\n  listed files that do not exist: {gone:?}"
    );
    for file in COVERED {
        check_known(&load(file));
    }
}
