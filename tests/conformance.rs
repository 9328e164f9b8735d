//! The shared conformance vectors (`../shared/conformance`, see `REFERENCES.md` §3), run on the
//! CPU reference and on the GPU, each checked at onnxruntime's f32 tolerance
//! ([`Tolerance::F32`], `|a − e| ≤ 1e-5 + 1e-4·|e|`).
//!
//! Every vector is one JSON file
//! `{"name", "attributes", "inputs": {NAME: {"shape", "data"}}, "outputs": {...}}` with flat
//! row-major data. The ONNX shapes map onto the library's (one layer, `D = 1`, layout 0):
//!
//! | ONNX                     | library                          |
//! |--------------------------|----------------------------------|
//! | `X[T, B, I]`             | `GruInput::x`                    |
//! | `W[1, 3H, I]`            | `W[3H, I]`                       |
//! | `R[1, 3H, H]`            | `R[3H, H]`                       |
//! | `B[1, 6H]`               | `B[6H]` (absent: zeros)          |
//! | `initial_h[1, B, H]`     | `initial_h[B, H]` (absent: zeros)|
//! | `Y[T, 1, B, H]`          | `Y[T, B, H]` (same flat order)   |
//! | `Y_h[1, B, H]`           | `Y_h[B, H]`                      |
//!
//! Attributes: `hidden_size` (checked against the shapes), `linear_before_reset` (through
//! [`Convention::from_linear_before_reset`]), `direction = "forward"` and `layout = 0` are
//! honoured. `direction = "reverse" | "bidirectional"`, `layout = 1`, `clip`, and a
//! `sequence_lens` with any length other than `T` name a feature the library does not have yet;
//! anything else (an unknown attribute, input or output) fails the test loudly.
//!
//! [`every_file_is_covered_or_listed`] keeps this file honest: the files run here plus the
//! files listed in [`NEEDS_LATER_FEATURE`] must be exactly the directory's contents, and each
//! listed file must need exactly the features it is listed with.
//!
//! `test_gru_seq_length` is an ONNX backend test whose name refers to the generator's
//! sequence length (`T = 2`); it has **no** `sequence_lens` input, so it runs here in full.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::gpu;
use gru_wgpu::gpu::GpuGru;
use gru_wgpu::{cpu, Convention, GruInput, GruOutput, GruWeights, Tolerance};
use serde_json::Value;

/// The files that run here, relative to the conformance directory.
const COVERED: &[&str] = &[
    "onnx/test_gru_defaults.json",
    "onnx/test_gru_with_initial_bias.json",
    "onnx/test_gru_seq_length.json",
    "onnxruntime/ort_forward_lbr0.json",
    "onnxruntime/ort_forward_lbr1.json",
    "onnxruntime/ort_forward_no_bias.json",
    "onnxruntime/ort_forward_lbr1_initial_h.json",
    "onnxruntime/ort_saturating_inputs_lbr0.json",
    "onnxruntime/ort_hidden_33_lbr1.json",
];

/// The files that wait for a feature the library does not have yet, with every such feature
/// each one needs.
const NEEDS_LATER_FEATURE: &[(&str, &[&str])] = &[
    ("onnx/test_gru_batchwise.json", &["layout=1"]),
    ("onnx/test_gru_bidirectional.json", &["bidirectional"]),
    ("onnx/test_gru_reverse.json", &["reverse"]),
    (
        "onnxruntime/ort_bidirectional_lbr1.json",
        &["bidirectional"],
    ),
    ("onnxruntime/ort_clip_lbr1.json", &["clip"]),
    ("onnxruntime/ort_reverse_lbr0.json", &["reverse"]),
    ("onnxruntime/ort_reverse_lbr1_initial_h.json", &["reverse"]),
    ("onnxruntime/ort_seq_lens_all_zero.json", &["sequence_lens"]),
    (
        "onnxruntime/ort_seq_lens_bidirectional_lbr1.json",
        &["bidirectional", "sequence_lens"],
    ),
    (
        "onnxruntime/ort_seq_lens_mixed_lbr0.json",
        &["sequence_lens"],
    ),
    (
        "onnxruntime/ort_seq_lens_zero_in_middle_lbr1.json",
        &["sequence_lens"],
    ),
];

/// The conformance directory; its absence is a failure, never a skip.
fn conformance_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance");
    assert!(
        dir.is_dir(),
        "conformance vectors not found at {} (expected the shared directory next to the \
         crate, holding onnx/*.json and onnxruntime/*.json); the conformance tests cannot run \
         without them",
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

/// The features a vector needs that the library does not have yet (`reverse`,
/// `bidirectional`, `layout=1`, `clip`, `sequence_lens`). Panics on anything this test does not
/// know, so nothing is silently dropped.
fn missing_features(v: &Vector) -> Vec<&'static str> {
    let mut missing = Vec::new();
    for (key, value) in &v.attributes {
        match key.as_str() {
            "hidden_size" | "linear_before_reset" => {}
            "direction" => match value.as_str() {
                Some("forward") => {}
                Some("reverse") => missing.push("reverse"),
                Some("bidirectional") => missing.push("bidirectional"),
                _ => panic!("{}: unknown direction {value}", v.name),
            },
            "layout" => match value.as_i64() {
                Some(0) => {}
                Some(1) => missing.push("layout=1"),
                _ => panic!("{}: unknown layout {value}", v.name),
            },
            "clip" => missing.push("clip"),
            other => panic!(
                "{}: attribute {other} = {value} cannot be honoured by this test (the library \
                 supports hidden_size, linear_before_reset, direction=forward, layout=0)",
                v.name
            ),
        }
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
    if let Some(lens) = v.inputs.get("sequence_lens") {
        // Every length equal to T is the same as no sequence_lens at all.
        let t = v.inputs["X"].shape[0] as f64;
        if lens.data.iter().any(|&l| l != t) {
            missing.push("sequence_lens");
        }
    }
    missing
}

/// The weights and input of a vector the library can run, with every shape checked.
struct Problem {
    weights: GruWeights,
    x: Vec<f32>,
    initial_h: Option<Vec<f32>>,
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
    let missing = missing_features(v);
    assert!(
        missing.is_empty(),
        "{}: needs {missing:?}, which the library does not support yet",
        v.name
    );
    let x = &v.inputs["X"];
    assert_eq!(x.shape.len(), 3, "{}: X must be [T, B, I]", v.name);
    let (t, b, i) = (x.shape[0], x.shape[1], x.shape[2]);
    let h = v.attributes["hidden_size"]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: hidden_size missing or not an integer", v.name))
        as usize;
    let lbr = match v.attributes.get("linear_before_reset") {
        None => 0,
        Some(value) => value
            .as_i64()
            .unwrap_or_else(|| panic!("{}: linear_before_reset = {value}", v.name)),
    };
    let convention =
        Convention::from_linear_before_reset(lbr).unwrap_or_else(|e| panic!("{}: {e}", v.name));
    expect_shape(v, "W", &v.inputs["W"], &[1, 3 * h, i]);
    expect_shape(v, "R", &v.inputs["R"], &[1, 3 * h, h]);
    let bias = v.inputs.get("B").map(|bias| {
        expect_shape(v, "B", bias, &[1, 6 * h]);
        bias.f32()
    });
    let initial_h = v.inputs.get("initial_h").map(|h0| {
        expect_shape(v, "initial_h", h0, &[1, b, h]);
        h0.f32()
    });
    if let Some(lens) = v.inputs.get("sequence_lens") {
        expect_shape(v, "sequence_lens", lens, &[b]);
    }
    assert!(
        !v.outputs.is_empty(),
        "{}: a vector without outputs checks nothing",
        v.name
    );
    if let Some(y) = v.outputs.get("Y") {
        expect_shape(v, "Y", y, &[t, 1, b, h]);
    }
    if let Some(y_h) = v.outputs.get("Y_h") {
        expect_shape(v, "Y_h", y_h, &[1, b, h]);
    }
    let weights = GruWeights::new(
        convention,
        i,
        h,
        v.inputs["W"].f32(),
        v.inputs["R"].f32(),
        bias,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", v.name));
    Problem {
        weights,
        x: x.f32(),
        initial_h,
        t,
        b,
    }
}

/// `[i0, i1, …]` of a flat row-major index.
fn unravel(mut index: usize, shape: &[usize]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    for (k, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            out[k] = index % d;
            index /= d;
        }
    }
    out
}

/// Compares every output the vector has; returns a report of the failures (empty: all passed).
fn check(v: &Vector, path: &str, got: &GruOutput) -> String {
    let mut failures = String::new();
    for (name, expected) in &v.outputs {
        let data = match name.as_str() {
            "Y" => &got.y,
            "Y_h" => &got.y_h,
            _ => unreachable!("checked in missing_features"),
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
fn run(relative: &str) {
    let v = load(relative);
    let p = problem(&v);
    let mut input = GruInput::new(&p.x, p.t, p.b);
    if let Some(h0) = &p.initial_h {
        input = input.with_initial_h(h0);
    }
    let mut failures = String::new();

    let reference = cpu::forward(&p.weights, &input)
        .unwrap_or_else(|e| panic!("{}: cpu::forward failed: {e}", v.name));
    failures += &check(&v, "CPU reference", &reference);

    if let Some(ctx) = gpu() {
        let mut model = GpuGru::new(ctx, &p.weights)
            .unwrap_or_else(|e| panic!("{}: GpuGru::new failed: {e}", v.name));
        model.set_poison(Some(f32::NAN));
        let got = model
            .forward(&input)
            .unwrap_or_else(|e| panic!("{}: GPU forward failed: {e}", v.name));
        failures += &check(&v, &format!("GPU ({})", ctx.describe()), &got);
    }

    assert!(
        failures.is_empty(),
        "{relative} [T={}, B={}, I={}, H={}, {:?}]:\n{failures}",
        p.t,
        p.b,
        p.weights.input_size(),
        p.weights.hidden_size(),
        p.weights.convention()
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
fn every_file_is_covered_or_listed() {
    let mut on_disk = BTreeSet::new();
    list_files(&conformance_dir(), "", &mut on_disk);

    let covered: BTreeSet<String> = COVERED.iter().map(|s| s.to_string()).collect();
    let later: BTreeSet<String> = NEEDS_LATER_FEATURE
        .iter()
        .map(|(f, _)| f.to_string())
        .collect();
    assert_eq!(covered.len(), COVERED.len(), "COVERED lists a file twice");
    assert_eq!(
        later.len(),
        NEEDS_LATER_FEATURE.len(),
        "NEEDS_LATER_FEATURE lists a file twice"
    );
    let both: Vec<_> = covered.intersection(&later).collect();
    assert!(
        both.is_empty(),
        "listed as covered and as needing a feature: {both:?}"
    );

    let known: BTreeSet<String> = covered.union(&later).cloned().collect();
    let unknown: Vec<_> = on_disk.difference(&known).collect();
    let gone: Vec<_> = known.difference(&on_disk).collect();
    assert!(
        unknown.is_empty() && gone.is_empty(),
        "the conformance directory and this test disagree.\n  files nobody runs or lists \
         (add a test, or list them in NEEDS_LATER_FEATURE with the feature): {unknown:?}\n  \
         listed files that do not exist: {gone:?}"
    );

    // The reasons must be true: covered files need nothing, listed ones exactly their features.
    for file in COVERED {
        let v = load(file);
        assert_eq!(missing_features(&v), Vec::<&str>::new(), "{file}");
    }
    for (file, features) in NEEDS_LATER_FEATURE {
        let v = load(file);
        let mut missing = missing_features(&v);
        missing.sort_unstable();
        let mut listed = features.to_vec();
        listed.sort_unstable();
        assert_eq!(missing, listed, "{file}: listed as needing {features:?}");
    }
}
