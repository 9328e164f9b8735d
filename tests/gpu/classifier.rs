//! The seed article's §5 classifier — `Sequential([Input((100, 1)), GRU(100),
//! Dense(1, activation='sigmoid')])` — run from its exported Keras weights
//! (tests/data/golden/keras_classifier_seed_article, made by scripts/golden_keras.py with
//! Keras 3.15) on the CPU reference and on the GPU, against Keras's own `model.predict` and
//! the GRU's last state. On the GPU, in every storage type and every kernel variant
//! (`common::each_gpu_config`), the GRU's whole output (every element of `Y` and `Y_h`, whose
//! last layer's state feeds the head) and the predictions are checked against the f64
//! reference on the same (dtype-rounded) weights and inputs, and in f32 against Keras too.
//! Keras is batch-major: `X[B=4, T=100, I=1]`.

use crate::common;

use std::path::{Path, PathBuf};

use common::{
    assert_close, configs, dtypes, each_gpu_config, gpu, kernel_paths, round_model, round_vec,
    tolerance,
};
use gru_wgpu::head::{final_features, Classifier, Dense, HeadActivation};
use gru_wgpu::{cpu, io, npy, Dtype, GruInput, GruOutput, Layout, OutputStyle, Tolerance};

fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden/keras_classifier_seed_article")
}

fn read(name: &str) -> npy::NpyArray {
    npy::read_f32(&case_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn classifier(weights_file: &str) -> Classifier {
    let keras = io::keras::load(&case_dir().join(weights_file), Some(true))
        .unwrap_or_else(|e| panic!("{weights_file}: {e}"));
    let dense = keras
        .dense
        .unwrap_or_else(|| panic!("{weights_file}: no dense head in the file"));
    let head = Dense::from_keras(
        dense.in_features,
        dense.out_features,
        &dense.kernel,
        Some(&dense.bias),
        HeadActivation::Sigmoid,
    )
    .expect("dense head");
    Classifier::new(keras.model, head).expect("classifier")
}

#[test]
fn seed_article_classifier_matches_keras() {
    let x = read("x.npy");
    assert_eq!(x.shape, vec![4, 100, 1], "x.npy");
    let predictions = read("predictions.npy");
    assert_eq!(predictions.shape, vec![4, 1], "predictions.npy");
    let state = read("gru_state.npy");
    assert_eq!(state.shape, vec![4, 100], "gru_state.npy");
    let input = GruInput::new(&x.data, 100, 4)
        .with_layout(Layout::BatchMajor)
        .with_style(OutputStyle::PyTorch);

    for file in ["weights.npz", "weights.safetensors"] {
        let model = classifier(file);
        assert_eq!(model.gru().hidden_size(), 100);
        assert_eq!(model.gru().input_size(), 1);

        let out = cpu::forward_model(model.gru(), &input).expect("cpu forward");
        assert_close(
            &format!("{file}: CPU GRU last state vs Keras"),
            &final_features(&out).expect("features"),
            &state.data,
            Tolerance::F32,
        );
        let got = model.predict_cpu(&input).expect("cpu predict");
        assert_close(
            &format!("{file}: CPU predictions vs Keras"),
            &got,
            &predictions.data,
            Tolerance::F32,
        );

        let Some(ctx) = gpu() else { continue };
        // The GRU's whole output (every element of Y and the final state Y_h that feeds the
        // head) and the predictions, on every dtype × kernel path × step kernel × GEMM. The
        // reference runs on what the device stores: weights and inputs rounded to the dtype
        // (a no-op in f32); f32 against onnxruntime's f32 rule, f16 against its f16 rule.
        let references: Vec<(Dtype, GruOutput)> = dtypes(ctx)
            .into_iter()
            .map(|dtype| {
                let rx = round_vec(&x.data, dtype);
                let rounded = GruInput::new(&rx, 100, 4)
                    .with_layout(Layout::BatchMajor)
                    .with_style(OutputStyle::PyTorch);
                let out = cpu::forward_model(&round_model(model.gru(), dtype), &rounded)
                    .expect("cpu forward on the rounded model");
                (dtype, out)
            })
            .collect();
        let mut checked = Vec::new();
        each_gpu_config(ctx, model.gru(), |dtype, variant, gpu| {
            let what = format!(
                "{file}: GPU {dtype:?} {variant} (Keras seed 13, X[B=4, T=100, I=1], H=100)"
            );
            let expected = &references
                .iter()
                .find(|r| r.0 == dtype)
                .expect("a reference per dtype")
                .1;
            let got = gpu
                .forward(&input)
                .unwrap_or_else(|e| panic!("{what}: forward: {e}"));
            let tol = tolerance(dtype);
            assert_close(&format!("{what}: Y"), &got.y, &expected.y, tol);
            assert_close(&format!("{what}: Y_h"), &got.y_h, &expected.y_h, tol);
            let features = final_features(&got).expect("features");
            let want = final_features(expected).expect("reference features");
            assert_close(&format!("{what}: head input"), &features, &want, tol);
            let predicted = model.head().apply(&features).expect("head");
            let reference = model.head().apply(&want).expect("head on the reference");
            assert_close(
                &format!("{what}: predictions vs the reference"),
                &predicted,
                &reference,
                tol,
            );
            if dtype == Dtype::F32 {
                // In f32 the reference is Keras's own numbers too.
                assert_close(
                    &format!("{what}: last state vs Keras"),
                    &features,
                    &state.data,
                    Tolerance::F32,
                );
                assert_close(
                    &format!("{what}: predictions vs Keras"),
                    &predicted,
                    &predictions.data,
                    Tolerance::F32,
                );
            }
            checked.push((dtype, variant));
        });
        assert_eq!(
            checked.len(),
            configs(ctx, 100).len(),
            "{file}: configurations run: {checked:?}"
        );

        // The classifier API itself (GRU on the GPU, head on the host), on each kernel path.
        let mut on_gpu = model.to_gpu(ctx).expect("gpu classifier");
        for path in kernel_paths(100) {
            on_gpu.set_kernel_path(Some(path)).expect("path");
            let got = on_gpu.predict(&input).expect("gpu predict");
            assert_close(
                &format!("{file}: GpuClassifier {path:?} predictions vs Keras"),
                &got,
                &predictions.data,
                Tolerance::F32,
            );
        }
    }
}

#[test]
fn head_width_must_match_the_gru() {
    let model = classifier("weights.npz");
    let wrong = Dense::new(7, 1, vec![0.0; 7], None, HeadActivation::Sigmoid).expect("dense");
    let err = Classifier::new(model.gru().clone(), wrong)
        .unwrap_err()
        .to_string();
    assert!(err.contains("100") && err.contains('7'), "{err}");
}
