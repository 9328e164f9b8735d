//! The importers (`gru_wgpu::io`) against the golden files of PyTorch, Keras and onnxruntime
//! in tests/data/golden: every case runs on the CPU reference and on the GPU (every kernel
//! variant, f32 and f16) and must match the framework's own outputs within onnxruntime's
//! tolerance of the storage type (f32, or f16). Then the refusals the
//! golden folder ships, and corrupted files built here: each must be a typed error that names
//! the file and the tensor, never a panic.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};

use gru_wgpu::io::{self, keras, onnx, pytorch, Format, ImportOptions, Imported};
use gru_wgpu::{
    cpu, npy, Convention, Direction, Dtype, GruError, GruInput, GruModel, Layout, OutputStyle,
    Tolerance,
};

fn golden(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden")
        .join(case)
}

fn read(case: &str, file: &str) -> npy::NpyArray {
    npy::read_f32(&golden(case).join(file)).unwrap()
}

/// One golden forward pass: the imported model, its inputs and the expected outputs.
struct Golden {
    case: String,
    model: GruModel,
    x: npy::NpyArray,
    initial_h: Option<Vec<f32>>,
    lens: Option<Vec<i64>>,
    layout: Layout,
    style: OutputStyle,
    y: npy::NpyArray,
    y_h: npy::NpyArray,
}

impl Golden {
    fn input(&self) -> GruInput<'_> {
        let s = &self.x.shape;
        let (t, b) = match self.layout {
            Layout::SequenceMajor => (s[0], s[1]),
            Layout::BatchMajor => (s[1], s[0]),
        };
        let mut input = GruInput::new(&self.x.data, t, b)
            .with_layout(self.layout)
            .with_style(self.style);
        if let Some(h0) = &self.initial_h {
            input = input.with_initial_h(h0);
        }
        if let Some(l) = &self.lens {
            input = input.with_sequence_lens(l);
        }
        input
    }

    /// Runs on the CPU reference and (unless skipped explicitly) the GPU in every storage
    /// type and kernel variant ([`common::each_gpu_config`]); checks every output against
    /// the golden file at the dtype's tolerance (f16: onnxruntime's f16 rule, the frameworks
    /// having computed in f32), and f16 also against the f64 reference on f16-rounded data.
    fn check(&self) {
        let input = self.input();
        let out = cpu::forward_model(&self.model, &input)
            .unwrap_or_else(|e| panic!("{}: CPU forward: {e}", self.case));
        self.compare("CPU", &out, Tolerance::F32);
        if let Some(ctx) = common::gpu() {
            let f16_reference = common::rounded_reference(&self.model, &input, Dtype::F16);
            common::each_gpu_config(ctx, &self.model, |dtype, variant, gpu| {
                let out = gpu
                    .forward(&input)
                    .unwrap_or_else(|e| panic!("{}: GPU {dtype:?} {variant}: {e}", self.case));
                let device = format!("GPU {dtype:?} {variant}");
                self.compare(&device, &out, common::tolerance(dtype));
                if dtype == Dtype::F16 {
                    for (what, got, expected) in [
                        ("Y", &out.y, &f16_reference.y),
                        ("Y_h", &out.y_h, &f16_reference.y_h),
                    ] {
                        let c = Tolerance::F16.compare(got, expected);
                        assert!(
                            c.passed(),
                            "{} ({device}): {what} vs the f16-rounded reference: {c}",
                            self.case
                        );
                    }
                }
            });
        }
    }

    fn compare(&self, device: &str, out: &gru_wgpu::GruOutput, tolerance: Tolerance) {
        for (what, got, got_shape, expected) in [
            ("Y", &out.y, out.dims.y_shape(), &self.y),
            ("Y_h", &out.y_h, out.dims.state_shape(), &self.y_h),
        ] {
            // Keras's state is [B, H], ours [1, B, H]: the same elements.
            let same_shape = got_shape == expected.shape
                || (got_shape.first() == Some(&1) && got_shape[1..] == expected.shape[..]);
            assert!(
                same_shape,
                "{} ({device}): {what} has shape {got_shape:?}, the golden file {:?}",
                self.case, expected.shape
            );
            let c = tolerance.compare(got, &expected.data);
            assert!(
                c.passed(),
                "{} ({device}): {what} {:?}: {c}",
                self.case,
                expected.shape
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PyTorch

fn torch_case(
    case: &str,
    h0: bool,
    lens: bool,
    batch_first: bool,
) -> (pytorch::PyTorchGru, Golden) {
    let imported = pytorch::load(&golden(case).join("model.safetensors"))
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    let g = Golden {
        case: case.to_string(),
        model: imported.model.clone(),
        x: read(case, "x.npy"),
        initial_h: h0.then(|| read(case, "h0.npy").data),
        lens: lens.then(|| npy::read_i64(&golden(case).join("lengths.npy")).unwrap().1),
        layout: if batch_first {
            Layout::BatchMajor
        } else {
            Layout::SequenceMajor
        },
        style: OutputStyle::PyTorch,
        y: read(case, "y.npy"),
        y_h: read(case, "h_n.npy"),
    };
    (imported, g)
}

#[test]
fn torch_2layer_bidir_batchfirst_h0() {
    let (m, g) = torch_case("torch_2layer_bidir_batchfirst_h0", true, false, true);
    assert_eq!(m.prefix, "gru.");
    assert!(m.bias && m.ignored.is_empty());
    assert_eq!(m.model.num_layers(), 2);
    assert_eq!(m.model.direction(), Direction::Bidirectional);
    assert_eq!((m.model.input_size(), m.model.hidden_size()), (5, 7));
    assert_eq!(m.model.convention(), Convention::ResetAfter);
    g.check();
}

#[test]
fn torch_3layer_forward() {
    let (m, g) = torch_case("torch_3layer_forward", false, false, false);
    assert_eq!(m.prefix, "");
    assert_eq!(m.model.num_layers(), 3);
    assert_eq!(m.model.direction(), Direction::Forward);
    g.check();
}

#[test]
fn torch_3layer_forward_onnx_export_is_refused() {
    let path = golden("torch_3layer_forward").join("model.onnx");
    let e = onnx::load(&path).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, GruError::Import { .. }), "{msg}");
    assert!(msg.contains("model.onnx"), "{msg}");
    assert!(msg.contains("has 3 GRU nodes"), "{msg}");
    assert!(msg.contains("exactly one GRU node"), "{msg}");
    assert!(msg.contains("Squeeze"), "{msg}");
}

#[test]
fn torch_packed_lengths() {
    let (m, g) = torch_case("torch_packed_lengths", false, true, false);
    assert_eq!(m.model.num_layers(), 2);
    assert_eq!(m.model.direction(), Direction::Bidirectional);
    g.check();
}

#[test]
fn torch_no_bias() {
    let (m, g) = torch_case("torch_no_bias", false, false, false);
    assert!(!m.bias);
    assert!(m.model.layer(0)[0].b().iter().all(|&b| b == 0.0));
    g.check();
}

// ---------------------------------------------------------------------------------------------
// Keras

fn keras_case(case: &str, file: &str, reset_after: Option<bool>) -> (keras::KerasGru, Golden) {
    let imported = keras::load(&golden(case).join(file), reset_after)
        .unwrap_or_else(|e| panic!("{case}/{file}: {e}"));
    let g = Golden {
        case: format!("{case}/{file}"),
        model: imported.model.clone(),
        x: read(case, "x.npy"),
        initial_h: None,
        lens: None,
        layout: Layout::BatchMajor,
        style: OutputStyle::PyTorch,
        y: read(case, "y.npy"),
        y_h: read(case, "h.npy"),
    };
    (imported, g)
}

#[test]
fn keras_reset_after_true_and_false_from_npz_and_safetensors() {
    for (case, reset_after) in [
        ("keras_reset_after_true", true),
        ("keras_reset_after_false", false),
    ] {
        for file in ["weights.npz", "weights.safetensors"] {
            for given in [None, Some(reset_after)] {
                let (m, g) = keras_case(case, file, given);
                assert_eq!(m.reset_after, reset_after, "{case}/{file}");
                assert_eq!(m.reset_after_source, keras::ResetAfterSource::BiasShape);
                assert_eq!(
                    m.container,
                    if file.ends_with("npz") {
                        "npz"
                    } else {
                        "safetensors"
                    }
                );
                assert!(m.bias && m.dense.is_none());
                assert_eq!((m.model.input_size(), m.model.hidden_size()), (4, 6));
                let expected = if reset_after {
                    Convention::ResetAfter
                } else {
                    Convention::ResetBefore
                };
                assert_eq!(m.model.convention(), expected);
                g.check();
            }
        }
    }
}

#[test]
fn keras_bias_that_disagrees_with_reset_after_is_an_error_naming_both() {
    for (case, wrong, needles) in [
        (
            "keras_reset_after_true",
            false,
            [
                "reset_after=False was given",
                "(2, 18)",
                "reset_after=True's",
            ],
        ),
        (
            "keras_reset_after_false",
            true,
            ["reset_after=True was given", "(18,)", "reset_after=False's"],
        ),
    ] {
        for file in ["weights.npz", "weights.safetensors"] {
            let e = keras::load(&golden(case).join(file), Some(wrong)).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, GruError::Import { .. }), "{msg}");
            assert!(msg.contains(file), "{msg}");
            for n in needles {
                assert!(msg.contains(n), "{case}/{file}: {n:?} not in {msg:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ONNX

fn onnx_case(case: &str, h0: bool, lens: bool) -> (onnx::OnnxGru, Golden) {
    let imported =
        onnx::load(&golden(case).join("model.onnx")).unwrap_or_else(|e| panic!("{case}: {e}"));
    let g = Golden {
        case: case.to_string(),
        model: imported.model.clone(),
        x: read(case, "X.npy"),
        initial_h: h0.then(|| read(case, "initial_h.npy").data),
        lens: lens.then(|| {
            npy::read_i64(&golden(case).join("sequence_lens.npy"))
                .unwrap()
                .1
        }),
        layout: imported.layout,
        style: OutputStyle::Onnx,
        y: read(case, "Y.npy"),
        y_h: read(case, "Y_h.npy"),
    };
    (imported, g)
}

/// The weights inside the .onnx are the ones saved beside it as .npy.
fn assert_onnx_weights_match_npy(case: &str, m: &onnx::OnnxGru, bias: bool) {
    let d = m.model.num_directions();
    let w = read(case, "W.npy").data;
    let r = read(case, "R.npy").data;
    let (wn, rn) = (w.len() / d, r.len() / d);
    for (k, weights) in m.model.layer(0).iter().enumerate() {
        assert_eq!(weights.w(), &w[k * wn..(k + 1) * wn], "{case} W[{k}]");
        assert_eq!(weights.r(), &r[k * rn..(k + 1) * rn], "{case} R[{k}]");
        if bias {
            let b = read(case, "B.npy").data;
            let bn = b.len() / d;
            assert_eq!(weights.b(), &b[k * bn..(k + 1) * bn], "{case} B[{k}]");
        }
    }
}

#[test]
fn onnx_bidir_seqlens_lbr1() {
    let case = "onnx_bidir_seqlens_lbr1";
    let (m, g) = onnx_case(case, true, true);
    assert_eq!(m.model.direction(), Direction::Bidirectional);
    assert_eq!(m.model.convention(), Convention::ResetAfter);
    assert_eq!(m.layout, Layout::SequenceMajor);
    assert_eq!(m.sequence_lens.as_deref(), Some("sequence_lens"));
    assert_eq!(m.initial_h.as_deref(), Some("initial_h"));
    assert_eq!(m.x, "X");
    assert_eq!((m.ir_version, m.opset), (8, Some(14)));
    assert_onnx_weights_match_npy(case, &m, true);
    g.check();
}

#[test]
fn onnx_reverse_layout1_lbr0() {
    let case = "onnx_reverse_layout1_lbr0";
    let (m, g) = onnx_case(case, true, false);
    assert_eq!(m.model.direction(), Direction::Reverse);
    assert_eq!(m.model.convention(), Convention::ResetBefore);
    assert_eq!(m.layout, Layout::BatchMajor);
    assert_eq!(m.model.clip(), Some(2.5));
    assert_eq!(m.sequence_lens, None);
    assert!(m.initial_h.is_some());
    assert_onnx_weights_match_npy(case, &m, true);
    g.check();
}

#[test]
fn onnx_forward_no_bias() {
    let case = "onnx_forward_no_bias";
    let (m, g) = onnx_case(case, false, false);
    assert_eq!(m.model.direction(), Direction::Forward);
    assert_eq!(m.model.convention(), Convention::ResetBefore);
    assert_eq!(
        (m.sequence_lens.as_ref(), m.initial_h.as_ref()),
        (None, None)
    );
    assert_eq!(
        m.attributes,
        vec![("hidden_size".to_string(), "4".to_string())]
    );
    assert_onnx_weights_match_npy(case, &m, false);
    g.check();
}

#[test]
fn onnx_unsupported_activation_is_refused_by_name() {
    let path = golden("onnx_unsupported_activation").join("model.onnx");
    let e = onnx::load(&path).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, GruError::Import { .. }), "{msg}");
    assert!(msg.contains("model.onnx"), "{msg}");
    assert!(msg.contains("'HardSigmoid'"), "{msg}");
    assert!(msg.contains("Sigmoid (f) and Tanh (g)"), "{msg}");
}

#[test]
fn onnx_two_gru_nodes_is_refused_with_the_count() {
    let path = golden("onnx_two_gru_nodes").join("model.onnx");
    let msg = onnx::load(&path).unwrap_err().to_string();
    assert!(msg.contains("has 2 GRU nodes"), "{msg}");
    assert!(msg.contains("'gru1'") && msg.contains("'gru2'"), "{msg}");
    assert!(
        msg.contains("only graphs with exactly one GRU node"),
        "{msg}"
    );
}

#[test]
fn truncated_onnx_is_an_error() {
    let bytes = std::fs::read(golden("onnx_bidir_seqlens_lbr1").join("model.onnx")).unwrap();
    for cut in [1, 10, bytes.len() / 3, bytes.len() / 2, bytes.len() - 7] {
        let e = onnx::parse(&bytes[..cut], "cut.onnx").unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, GruError::Import { .. }), "cut {cut}: {msg}");
        assert!(msg.starts_with("cut.onnx: "), "{msg}");
    }
    // And io::load does not mistake it for anything else.
    let e = io::load_bytes(
        &bytes[..bytes.len() / 2],
        "cut.onnx",
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a valid ONNX model"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Format detection

#[test]
fn load_detects_every_golden_format() {
    let cases = [
        (
            "torch_2layer_bidir_batchfirst_h0/model.safetensors",
            Format::PyTorch,
        ),
        ("torch_no_bias/model.safetensors", Format::PyTorch),
        ("keras_reset_after_true/weights.npz", Format::Keras),
        ("keras_reset_after_false/weights.safetensors", Format::Keras),
        ("onnx_forward_no_bias/model.onnx", Format::Onnx),
    ];
    for (file, format) in cases {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/golden")
            .join(file);
        let m = io::load(&path, &ImportOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.format(), format, "{file}");
        assert!(m.model().parameter_count() > 0);
        match (&m, format) {
            (Imported::PyTorch(_), Format::PyTorch)
            | (Imported::Keras(_), Format::Keras)
            | (Imported::Onnx(_), Format::Onnx) => {}
            _ => panic!("{file}: wrong variant"),
        }
    }
    let e = io::load(Path::new("no/such/file.onnx"), &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, GruError::Io { .. }), "{e}");
    assert!(e.to_string().contains("no/such/file.onnx"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Corrupted PyTorch files, built here

/// `(name, dtype, shape, little-endian bytes)`.
type StTensor = (String, String, Vec<usize>, Vec<u8>);

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A safetensors file, laid out as safetensors' own writer does.
fn safetensors_file(tensors: &[StTensor]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut data = Vec::new();
    for (k, (name, dtype, shape, bytes)) in tensors.iter().enumerate() {
        if k > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{},{}]}}",
            data.len(),
            data.len() + bytes.len()
        ));
        data.extend_from_slice(bytes);
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

/// The tensors of a golden safetensors file, in offset order.
fn golden_tensors(case: &str, file: &str) -> Vec<StTensor> {
    let bytes = std::fs::read(golden(case).join(file)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(usize, StTensor)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let start = view.data().as_ptr() as usize - bytes.as_ptr() as usize;
            (
                start,
                (
                    name,
                    view.dtype().to_string(),
                    view.shape().to_vec(),
                    view.data().to_vec(),
                ),
            )
        })
        .collect();
    v.sort_by_key(|(s, _)| *s);
    v.into_iter().map(|(_, t)| t).collect()
}

fn torch_bidir() -> Vec<StTensor> {
    golden_tensors("torch_2layer_bidir_batchfirst_h0", "model.safetensors")
}

fn without(mut t: Vec<StTensor>, name: &str) -> Vec<StTensor> {
    let n = t.len();
    t.retain(|x| x.0 != name);
    assert_eq!(t.len(), n - 1, "{name} was in the file");
    t
}

fn with(mut t: Vec<StTensor>, name: &str, shape: &[usize]) -> Vec<StTensor> {
    t.retain(|x| x.0 != name);
    let n: usize = shape.iter().product();
    t.push((
        name.to_string(),
        "F32".to_string(),
        shape.to_vec(),
        f32_bytes(&vec![0.25; n]),
    ));
    t
}

fn renamed(t: Vec<StTensor>, from: &str, to: &str) -> Vec<StTensor> {
    t.into_iter()
        .map(|(n, d, s, b)| (n.replacen(from, to, 1), d, s, b))
        .collect()
}

fn torch_error(tensors: &[StTensor], prefix: Option<&str>) -> String {
    let bytes = safetensors_file(tensors);
    match pytorch::parse(&bytes, "bad.safetensors", prefix) {
        Ok(m) => panic!("expected an error, got a model with prefix {:?}", m.prefix),
        Err(e) => {
            assert!(matches!(e, GruError::Import { .. }), "{e}");
            let msg = e.to_string();
            assert!(msg.starts_with("bad.safetensors: "), "{msg}");
            msg
        }
    }
}

#[test]
fn rebuilt_safetensors_matches_the_golden_model() {
    // The writer above is faithful: the untouched tensors give the same model.
    let bytes = safetensors_file(&torch_bidir());
    let m = pytorch::parse(&bytes, "rebuilt.safetensors", None).unwrap();
    let reference =
        pytorch::load(&golden("torch_2layer_bidir_batchfirst_h0").join("model.safetensors"))
            .unwrap();
    assert_eq!(m, reference);
}

#[test]
fn corrupted_pytorch_files_are_typed_errors() {
    // (what, the file's tensors, the prefix asked for, what the error must say)
    type Case<'a> = (&'a str, Vec<StTensor>, Option<&'a str>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "misshapen weight_hh",
            with(torch_bidir(), "gru.weight_hh_l1", &[21, 6]),
            None,
            vec!["'gru.weight_hh_l1' has shape [21, 6], expected [3H, H] = [21, 7]"],
        ),
        (
            "misshapen layer-1 weight_ih",
            with(torch_bidir(), "gru.weight_ih_l1_reverse", &[21, 7]),
            None,
            vec![
                "'gru.weight_ih_l1_reverse' has shape [21, 7]",
                "[3H, D·H] = [21, 14]",
            ],
        ),
        (
            "misshapen bias",
            with(torch_bidir(), "gru.bias_ih_l0", &[20]),
            None,
            vec!["'gru.bias_ih_l0' has shape [20], expected [3H] = [21]"],
        ),
        (
            "LSTM-sized weight_hh_l0",
            with(torch_bidir(), "gru.weight_hh_l0", &[28, 7]),
            None,
            vec!["'gru.weight_hh_l0' has shape [28, 7]", "nn.LSTM"],
        ),
        (
            "missing weight",
            without(torch_bidir(), "gru.weight_hh_l1_reverse"),
            None,
            vec![
                "missing tensor 'gru.weight_hh_l1_reverse'",
                "both directions",
            ],
        ),
        (
            "missing layer",
            without(
                without(torch_bidir(), "gru.weight_ih_l0"),
                "gru.weight_ih_l0_reverse",
            ),
            None,
            vec!["missing tensor 'gru.weight_ih_l0'"],
        ),
        (
            "one bias missing",
            without(torch_bidir(), "gru.bias_hh_l0"),
            None,
            vec![
                "missing tensor 'gru.bias_hh_l0'",
                "all present (bias=True) or all absent",
            ],
        ),
        (
            "extra GRU-looking tensor",
            with(torch_bidir(), "gru.weight_hr_l0", &[7, 7]),
            None,
            vec![
                "unexpected tensor 'gru.weight_hr_l0'",
                "under the GRU's prefix 'gru.'",
            ],
        ),
        (
            "extra tensor under the prefix",
            with(torch_bidir(), "gru.sub.weight", &[2]),
            None,
            vec!["unexpected tensor 'gru.sub.weight'"],
        ),
        (
            "two prefixes",
            renamed(
                renamed(torch_bidir(), "gru.weight_ih_l0", "enc.weight_ih_l0"),
                "gru.weight_hh_l0",
                "enc.weight_hh_l0",
            ),
            None,
            vec!["2 different prefixes", "'enc.'", "'gru.'"],
        ),
        (
            "a prefix that is not there",
            torch_bidir(),
            Some("decoder."),
            vec!["no nn.GRU parameters under the prefix 'decoder.'", "'gru.'"],
        ),
        (
            "no GRU at all",
            vec![("fc.weight".into(), "F32".into(), vec![1], f32_bytes(&[1.0]))],
            None,
            vec!["no nn.GRU parameters", "'fc.weight'"],
        ),
        (
            "integer dtype",
            {
                let mut t = torch_bidir();
                let k = t.iter().position(|x| x.0 == "gru.bias_hh_l1").unwrap();
                t[k].1 = "I32".into();
                t
            },
            None,
            vec!["'gru.bias_hh_l1' has dtype I32", "expected F32"],
        ),
    ];
    for (name, tensors, prefix, needles) in cases {
        let msg = torch_error(&tensors, prefix);
        for n in needles {
            assert!(msg.contains(n), "{name}: {n:?} not in {msg:?}");
        }
    }
}

#[test]
fn unprefixed_gru_with_another_tensor_is_an_error() {
    let mut t = golden_tensors("torch_no_bias", "model.safetensors");
    t.push((
        "fc.weight".into(),
        "F32".into(),
        vec![2],
        f32_bytes(&[1.0, 2.0]),
    ));
    let msg = torch_error(&t, None);
    assert!(msg.contains("unexpected tensor 'fc.weight'"), "{msg}");
    assert!(msg.contains("own state_dict"), "{msg}");
    // Mixed with a prefixed copy: two prefixes, '' and 'gru.'.
    let mut t = golden_tensors("torch_no_bias", "model.safetensors");
    t.extend(renamed(
        golden_tensors("torch_no_bias", "model.safetensors"),
        "",
        "gru.",
    ));
    let msg = torch_error(&t, None);
    assert!(msg.contains("('', 'gru.')"), "{msg}");
}

#[test]
fn tensors_outside_the_prefix_are_ignored_and_a_prefix_can_be_chosen() {
    let mut t = torch_bidir();
    t.push(("fc.weight".into(), "I64".into(), vec![1], vec![0; 8]));
    let bytes = safetensors_file(&t);
    let m = pytorch::parse(&bytes, "whole_model.safetensors", None).unwrap();
    assert_eq!(m.ignored, vec!["fc.weight".to_string()]);
    assert_eq!(m.prefix, "gru.");

    // Two GRUs: pick one.
    let mut t = torch_bidir();
    t.extend(renamed(
        golden_tensors("torch_no_bias", "model.safetensors"),
        "",
        "dec.",
    ));
    let bytes = safetensors_file(&t);
    let dec = pytorch::parse(&bytes, "two.safetensors", Some("dec.")).unwrap();
    assert_eq!(dec.model.hidden_size(), 4);
    assert!(!dec.bias);
    assert_eq!(dec.ignored.len(), 16);
    let enc = pytorch::parse(&bytes, "two.safetensors", Some("gru.")).unwrap();
    assert_eq!(enc.model.hidden_size(), 7);
    let options = ImportOptions {
        pytorch_prefix: Some("dec.".into()),
        ..Default::default()
    };
    let m = io::load_bytes(&bytes, "two.safetensors", &options).unwrap();
    assert_eq!(m.model(), &dec.model);
}

#[test]
fn float64_float16_and_bfloat16_weights_are_converted() {
    let reference = pytorch::parse(&safetensors_file(&torch_bidir()), "a", None).unwrap();
    let widened: Vec<StTensor> = torch_bidir()
        .into_iter()
        .map(|(n, _, s, b)| {
            let v: Vec<u8> = b
                .chunks_exact(4)
                .flat_map(|c| (f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).to_le_bytes())
                .collect();
            (n, "F64".to_string(), s, v)
        })
        .collect();
    let m = pytorch::parse(&safetensors_file(&widened), "f64.safetensors", None).unwrap();
    assert_eq!(
        m.model, reference.model,
        "F64 → f32 is exact for f32 values"
    );

    for (dtype, to_bits, from_bits) in [
        (
            "F16",
            (|v: f32| half::f16::from_f32(v).to_bits()) as fn(f32) -> u16,
            (|b: u16| half::f16::from_bits(b).to_f32()) as fn(u16) -> f32,
        ),
        (
            "BF16",
            |v: f32| half::bf16::from_f32(v).to_bits(),
            |b: u16| half::bf16::from_bits(b).to_f32(),
        ),
    ] {
        let narrowed: Vec<StTensor> = torch_bidir()
            .into_iter()
            .map(|(n, _, s, b)| {
                let v: Vec<u8> = b
                    .chunks_exact(4)
                    .flat_map(|c| {
                        to_bits(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes()
                    })
                    .collect();
                (n, dtype.to_string(), s, v)
            })
            .collect();
        let m = pytorch::parse(&safetensors_file(&narrowed), "half.safetensors", None).unwrap();
        let expected: Vec<f32> = reference.model.layer(1)[1]
            .r()
            .iter()
            .map(|&v| from_bits(to_bits(v)))
            .collect();
        assert_eq!(m.model.layer(1)[1].r(), expected.as_slice(), "{dtype}");
    }
}

#[test]
fn truncated_safetensors_is_an_error() {
    let bytes = std::fs::read(golden("torch_3layer_forward").join("model.safetensors")).unwrap();
    for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        let e = pytorch::parse(&bytes[..cut], "cut.safetensors", None).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, GruError::Import { .. }), "cut {cut}: {msg}");
        assert!(msg.starts_with("cut.safetensors: "), "{msg}");
        // Through detection too: never a panic, always the file's name.
        let e = io::load_bytes(&bytes[..cut], "cut.safetensors", &ImportOptions::default())
            .unwrap_err();
        assert!(e.to_string().starts_with("cut.safetensors: "), "{e}");
    }
    let mut long = bytes.clone();
    long.extend_from_slice(b"tail");
    let msg = pytorch::parse(&long, "long.safetensors", None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("not a valid safetensors file"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Corrupted Keras files, built here

fn keras_tensors(case: &str) -> Vec<StTensor> {
    golden_tensors(case, "weights.safetensors")
}

/// An .npz of the same tensors (stored or deflated).
fn npz_file(tensors: &[StTensor], deflate: bool) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, dtype, shape, bytes) in tensors {
        assert_eq!(dtype, "F32");
        let data: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        zip.start_file(format!("{name}.npy"), options).unwrap();
        zip.write_all(&npy::encode_f32(shape, &data).unwrap())
            .unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn keras_error(bytes: &[u8], name: &str, reset_after: Option<bool>) -> String {
    match keras::parse(bytes, name, reset_after) {
        Ok(_) => panic!("{name}: expected an error"),
        Err(e) => {
            assert!(matches!(e, GruError::Import { .. }), "{e}");
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("{name}: ")), "{msg}");
            msg
        }
    }
}

#[test]
fn keras_npz_written_here_deflated_or_stored_loads_the_same() {
    let reference =
        keras::load(&golden("keras_reset_after_true").join("weights.npz"), None).unwrap();
    for deflate in [false, true] {
        let bytes = npz_file(&keras_tensors("keras_reset_after_true"), deflate);
        let m = keras::parse(&bytes, "w.npz", None).unwrap();
        assert_eq!(m.model, reference.model, "deflate {deflate}");
    }
}

#[test]
fn keras_without_bias_needs_reset_after() {
    let t = without(keras_tensors("keras_reset_after_false"), "bias");
    for bytes in [safetensors_file(&t), npz_file(&t, false)] {
        let msg = keras_error(&bytes, "nobias", None);
        assert!(msg.contains("no 'bias' tensor"), "{msg}");
        assert!(msg.contains("--keras-reset-after"), "{msg}");
        for reset_after in [false, true] {
            let m = keras::parse(&bytes, "nobias", Some(reset_after)).unwrap();
            assert_eq!(m.reset_after, reset_after);
            assert_eq!(m.reset_after_source, keras::ResetAfterSource::Given);
            assert!(!m.bias);
            assert!(m.model.layer(0)[0].b().iter().all(|&b| b == 0.0));
        }
    }
}

#[test]
fn keras_dense_head_is_read() {
    let mut t = keras_tensors("keras_reset_after_true");
    t.push((
        "dense_kernel".into(),
        "F32".into(),
        vec![6, 2],
        f32_bytes(&[0.5; 12]),
    ));
    t.push((
        "dense_bias".into(),
        "F32".into(),
        vec![2],
        f32_bytes(&[1.0, -1.0]),
    ));
    let m = keras::parse(&safetensors_file(&t), "head.safetensors", None).unwrap();
    let dense = m.dense.unwrap();
    assert_eq!((dense.in_features, dense.out_features), (6, 2));
    assert_eq!(dense.bias, vec![1.0, -1.0]);
    assert_eq!(dense.kernel.len(), 12);

    // Without dense_bias: zeros.
    let t2 = without(t.clone(), "dense_bias");
    let m = keras::parse(&npz_file(&t2, true), "head.npz", None).unwrap();
    assert_eq!(m.dense.unwrap().bias, vec![0.0, 0.0]);

    // A dense kernel that does not read H units.
    let bad = with(t.clone(), "dense_kernel", &[5, 2]);
    let msg = keras_error(&safetensors_file(&bad), "h.safetensors", None);
    assert!(
        msg.contains("'dense_kernel' has shape (5, 2), expected (H, out) = (6, out)"),
        "{msg}"
    );
    let bad = with(t.clone(), "dense_bias", &[3]);
    let msg = keras_error(&safetensors_file(&bad), "h.safetensors", None);
    assert!(
        msg.contains("'dense_bias' has shape (3,), expected (2,)"),
        "{msg}"
    );
    let bad = without(t, "dense_kernel");
    let msg = keras_error(&safetensors_file(&bad), "h.safetensors", None);
    assert!(msg.contains("missing tensor 'dense_kernel'"), "{msg}");
}

#[test]
fn corrupted_keras_files_are_typed_errors() {
    let base = || keras_tensors("keras_reset_after_true");
    let cases: Vec<(&str, Vec<StTensor>, Vec<&str>)> = vec![
        (
            "misshapen kernel",
            with(base(), "kernel", &[4, 17]),
            vec!["'kernel' has shape (4, 17), expected (I, 3H) = (I, 18)"],
        ),
        (
            "misshapen recurrent_kernel",
            with(base(), "recurrent_kernel", &[6, 6]),
            vec!["'recurrent_kernel' has shape (6, 6), expected (H, 3H)"],
        ),
        (
            "misshapen bias",
            with(base(), "bias", &[3, 18]),
            vec![
                "'bias' has shape (3, 18)",
                "(18,) for reset_after=False or (2, 18)",
            ],
        ),
        (
            "missing kernel",
            without(base(), "kernel"),
            vec!["missing tensor 'kernel'"],
        ),
        (
            "extra tensor",
            with(base(), "gru/gru_cell/kernel", &[4, 18]),
            vec!["unexpected tensor 'gru/gru_cell/kernel'"],
        ),
        (
            "a PyTorch tensor",
            with(base(), "weight_ih_l0", &[18, 4]),
            vec!["unexpected tensor 'weight_ih_l0'", "PyTorch state_dict"],
        ),
    ];
    for (name, tensors, needles) in cases {
        for (file, bytes) in [
            ("bad.safetensors", safetensors_file(&tensors)),
            ("bad.npz", npz_file(&tensors, false)),
        ] {
            let msg = keras_error(&bytes, file, None);
            for n in &needles {
                assert!(msg.contains(n), "{name} ({file}): {n:?} not in {msg:?}");
            }
        }
    }
}

#[test]
fn corrupted_npz_archives_are_typed_errors() {
    let good = std::fs::read(golden("keras_reset_after_false").join("weights.npz")).unwrap();
    for cut in [4, 30, good.len() / 2, good.len() - 10] {
        let msg = keras_error(&good[..cut], "cut.npz", None);
        assert!(!msg.is_empty());
    }
    // A member that is not .npy.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("readme.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"hello").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let msg = keras_error(&bytes, "odd.npz", Some(true));
    assert!(
        msg.contains("member 'readme.txt' is not a .npy file"),
        "{msg}"
    );
    // A member whose .npy is garbage.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for name in ["kernel.npy", "recurrent_kernel.npy"] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"not numpy").unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    let msg = keras_error(&bytes, "junk.npz", Some(true));
    assert!(msg.contains("recurrent_kernel"), "{msg}");
}

#[test]
fn files_mistaken_for_models_are_named() {
    let npy_bytes = npy::encode_f32(&[2], &[1.0, 2.0]).unwrap();
    let mut torch_pickle = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    torch_pickle
        .start_file("archive/data.pkl", zip::write::SimpleFileOptions::default())
        .unwrap();
    torch_pickle.write_all(b"\x80\x02").unwrap();
    let torch_pickle = torch_pickle.finish().unwrap().into_inner();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("x.npy", npy_bytes, "a single .npy array, not a model file"),
        (
            "w.weights.h5",
            b"\x89HDF\r\n\x1a\n\0\0\0\0".to_vec(),
            "HDF5 file (Keras .h5 / .weights.h5)",
        ),
        ("m.pt", torch_pickle, "torch.save pickle archive"),
        (
            "junk.onnx",
            b"\xff\xff\xff\xff".to_vec(),
            "not a valid ONNX model",
        ),
    ];
    for (name, bytes, needle) in cases {
        let e = io::load_bytes(&bytes, name, &ImportOptions::default()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, GruError::Import { .. }), "{msg}");
        assert!(msg.starts_with(&format!("{name}: ")), "{msg}");
        assert!(msg.contains(needle), "{name}: {needle:?} not in {msg:?}");
    }
}

/// Shapes whose element count is 0 but whose other dimension is near 2⁶³: the importers
/// must answer with a typed error, not overflow while computing 3H (found in review).
#[test]
fn huge_dimensions_next_to_zero_are_typed_errors() {
    let huge = 9_000_000_000_000_000_000usize;
    let torch = vec![
        (
            "weight_ih_l0".to_string(),
            "F32".to_string(),
            vec![0, 3],
            vec![],
        ),
        (
            "weight_hh_l0".to_string(),
            "F32".to_string(),
            vec![0, huge],
            vec![],
        ),
    ];
    let e = torch_error(&torch, None);
    assert!(e.contains("weight_hh_l0"), "{e}");
    let layer_index = vec![(
        format!("weight_ih_l{}", usize::MAX),
        "F32".to_string(),
        vec![3, 1],
        f32_bytes(&[0.0; 3]),
    )];
    let e = torch_error(&layer_index, None);
    assert!(!e.is_empty(), "{e}");
    let keras = vec![
        ("kernel".to_string(), "F32".to_string(), vec![1, 0], vec![]),
        (
            "recurrent_kernel".to_string(),
            "F32".to_string(),
            vec![huge, 0],
            vec![],
        ),
    ];
    let e = keras_error(&safetensors_file(&keras), "huge.safetensors", Some(false));
    assert!(e.contains("recurrent_kernel"), "{e}");
}
