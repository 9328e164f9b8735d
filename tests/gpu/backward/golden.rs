//! Golden gradients of float64 autograd (scripts/golden_grads.py, tests/data/golden/grads_*):
//! PyTorch's nn.GRU (packed sequences in a two-layer bidirectional stack with h0 and dY_h;
//! batch_first) and Keras 3's GRU (reset_after False and True, with an initial state), each
//! model imported by gru-wgpu's importers and differentiated by the CPU reference and on the
//! GPU, compared in the framework's own layout and names. Tolerance per tensor:
//! `max|g − e| ≤ 1e-5 + 1e-4·max|e|`.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::random::{compare_grad, TRAIN_VARIANTS};
use crate::common::gpu;
use gru_wgpu::cpu::GruGradients;
use gru_wgpu::gpu::GpuGru;
use gru_wgpu::io::{keras, pytorch};
use gru_wgpu::{cpu, npy, GruInput, GruModel, Layout, OutputStyle};

fn dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden")
        .join(case)
}

fn f32s(case: &str, file: &str) -> Vec<f32> {
    npy::read_f32(&dir(case).join(file))
        .unwrap_or_else(|e| panic!("{case}/{file}: {e}"))
        .data
}

fn f64s_of(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// The float64 tensors of a safetensors file.
fn safetensors_f64(case: &str, file: &str) -> Vec<(String, Vec<usize>, Vec<f64>)> {
    let bytes = std::fs::read(dir(case).join(file)).expect("grads file");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(
                view.dtype(),
                safetensors::Dtype::F64,
                "{case}/{file}: {name}"
            );
            (name, view.shape().to_vec(), f64s_of(view.data()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Member `name` of an npz of `<f8` arrays (the header is parsed by gru-wgpu's reader, which
/// rounds to f32: far below the tolerance).
fn npz_member(case: &str, name: &str) -> Vec<f64> {
    let file = std::fs::File::open(dir(case).join("grads.npz")).expect("grads.npz");
    let mut zip = zip::ZipArchive::new(file).expect("zip");
    let mut member = zip.by_name(&format!("{name}.npy")).expect("member");
    let mut bytes = Vec::new();
    member.read_to_end(&mut bytes).expect("read member");
    npy::parse_f32(&bytes, name)
        .unwrap_or_else(|e| panic!("{case}/grads.npz/{name}: {e}"))
        .data
        .iter()
        .map(|&v| v as f64)
        .collect()
}

/// The gradients of `model` on the CPU reference and on the GPU.
fn both(
    model: &GruModel,
    input: &GruInput<'_>,
    dy: &[f32],
    dyh: Option<&[f32]>,
) -> Vec<(&'static str, GruGradients)> {
    let mut out = vec![(
        "cpu",
        cpu::backward_model(model, input, dy, dyh).expect("cpu backward"),
    )];
    if let Some(ctx) = gpu() {
        let mut m = GpuGru::from_model(ctx, model).expect("gpu model");
        for v in &TRAIN_VARIANTS {
            if !v.apply(&mut m) {
                continue;
            }
            let variant = v.name;
            let (_, saved) = m.forward_train(input).expect("training forward");
            out.push((variant, m.backward(&saved, dy, dyh).expect("gpu backward")));
        }
    }
    out
}

fn torch_case(case: &str, batch_first: bool, h0: bool, lens: bool, dyh: bool) {
    let imported = pytorch::load(&dir(case).join("model.safetensors")).expect("import");
    let model = imported.model;
    let x = f32s(case, "x.npy");
    let h0 = h0.then(|| f32s(case, "h0.npy"));
    let lens = lens.then(|| {
        npy::read_i64(&dir(case).join("lengths.npy"))
            .expect("lengths")
            .1
    });
    let dy = f32s(case, "dy.npy");
    let dyh = dyh.then(|| f32s(case, "dyh.npy"));
    let b = lens.as_ref().map_or(0, |l| l.len());
    let want = safetensors_f64(case, "grads.safetensors");
    let (t, b) = {
        let per = model.input_size();
        let rows = x.len() / per;
        let named_b = if b > 0 {
            b
        } else {
            want.iter().find(|w| w.0 == "h0").expect("h0").1[1]
        };
        (rows / named_b, named_b)
    };
    let mut input = GruInput::new(&x, t, b)
        .with_style(OutputStyle::PyTorch)
        .with_layout(if batch_first {
            Layout::BatchMajor
        } else {
            Layout::SequenceMajor
        });
    if let Some(h0) = &h0 {
        input = input.with_initial_h(h0);
    }
    if let Some(l) = &lens {
        input = input.with_sequence_lens(l);
    }
    let mut report = String::new();
    for (device, got) in both(&model, &input, &dy, dyh.as_deref()) {
        let mut named = got.to_pytorch_named();
        named.push(("x".into(), vec![], got.dx.clone()));
        named.push(("h0".into(), vec![], got.dh0.clone()));
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<&String> = named.iter().map(|n| &n.0).collect();
        let expected: Vec<&String> = want.iter().map(|w| &w.0).collect();
        assert_eq!(names, expected, "{case} {device}: tensor names");
        for ((name, shape, g), (_, wshape, e)) in named.iter().zip(&want) {
            if !shape.is_empty() {
                assert_eq!(shape, wshape, "{case} {device}: shape of {name}");
            }
            if let Some(r) = compare_grad(&format!("{case} {device} {name}"), g, e) {
                report += &r;
            }
        }
    }
    assert!(report.is_empty(), "{report}");
}

fn keras_case(case: &str, reset_after: bool) {
    let imported = keras::load(&dir(case).join("weights.npz"), Some(reset_after)).expect("import");
    let model = imported.model;
    let x = f32s(case, "x.npy");
    let h0 = f32s(case, "h0.npy");
    let dy = f32s(case, "dy.npy");
    let dyh = f32s(case, "dyh.npy");
    let (h, i) = (model.hidden_size(), model.input_size());
    let b = h0.len() / h;
    let t = x.len() / (b * i);
    let input = GruInput::new(&x, t, b)
        .with_layout(Layout::BatchMajor)
        .with_initial_h(&h0);
    let mut report = String::new();
    for (device, got) in both(&model, &input, &dy, Some(&dyh)) {
        let k = got.layers[0][0].to_keras(reset_after);
        for (name, g) in [
            ("kernel", &k.kernel),
            ("recurrent_kernel", &k.recurrent_kernel),
            ("bias", &k.bias),
            ("x", &got.dx),
            ("h0", &got.dh0),
        ] {
            let e = npz_member(case, name);
            if let Some(r) = compare_grad(&format!("{case} {device} {name}"), g, &e) {
                report += &r;
            }
        }
    }
    assert!(report.is_empty(), "{report}");
}

#[test]
fn torch_packed_bidirectional_stack() {
    torch_case("grads_torch_packed_bidir", false, true, true, true);
}

#[test]
fn torch_batch_first_without_h0() {
    torch_case("grads_torch_batch_first", true, false, false, false);
}

#[test]
fn keras_reset_after_false() {
    keras_case("grads_keras_reset_after_false", false);
}

#[test]
fn keras_reset_after_true() {
    keras_case("grads_keras_reset_after_true", true);
}
