//! `gru grad` end to end: the gradients it writes against the CPU reference backward
//! (`cpu::backward_model`), on the GPU (the default device) and on the CPU; `--grads` in each
//! model file's own names, shapes and container; and its bad inputs (one line, exit status,
//! no file written).

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use common::cli::{Run, TempDir};
use common::raw_npy;
use common::{random_weights, Rng};
use gru_wgpu::cpu::{self, GruGradients};
use gru_wgpu::io::{self, ImportOptions, Imported};
use gru_wgpu::{npy, Convention, Direction, GruInput, GruModel, Layout, OutputStyle};
use safetensors::SafeTensors;

/// Runs `gru grad args…` in `dir`.
fn grad_in(dir: &Path, args: &[&str]) -> Run {
    let mut v = vec!["grad"];
    v.extend_from_slice(args);
    common::cli::run_in(env!("CARGO_BIN_EXE_gru"), dir, &v, &[])
}

/// `case/file` of the golden data.
fn golden(case: &str, file: &str) -> String {
    common::repo_root()
        .join("tests/data/golden")
        .join(case)
        .join(file)
        .display()
        .to_string()
}

/// The devices a run is checked on: the default (`auto`, which must run on the GPU when the
/// tests have one: common::gpu fails without an adapter unless GRU_REQUIRE_GPU=0) and `cpu`.
/// `(extra flags, the stderr summary's "computed gradients on …")`.
fn devices() -> Vec<(Vec<&'static str>, &'static str)> {
    let mut d = vec![(vec!["--device", "cpu"], "computed gradients on the CPU")];
    if common::gpu().is_some() {
        d.push((vec![], "computed gradients on the GPU"));
    }
    d
}

/// `|got − expected| ≤ 1e-5 + 1e-4·max|expected|` for every element of one tensor, and the
/// same length.
fn assert_grad_close(context: &str, got: &[f32], expected: &[f64]) {
    assert_eq!(got.len(), expected.len(), "{context}: length");
    let scale = expected.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    let tol = 1e-5 + 1e-4 * scale;
    for (k, (&g, &e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (g as f64 - e).abs() <= tol,
            "{context}: index {k}: got {g}, expected {e} (tolerance {tol:e}, max|e| {scale})"
        );
    }
    assert!(
        scale > 0.0,
        "{context}: an all-zero gradient proves nothing"
    );
}

/// Reads `file` in `dir`, checks its shape, and compares it with `expected`.
fn assert_npy(dir: &TempDir, file: &str, shape: &[usize], expected: &[f64], context: &str) {
    let got = npy::read_f32(&dir.join(file)).unwrap();
    assert_eq!(got.shape, shape, "{context}: {file}'s shape");
    assert_grad_close(&format!("{context}: {file}"), &got.data, expected);
}

/// The first layer's directions stacked, as `--dw`, `--dr`, `--db` write them.
fn stacked(g: &GruGradients, part: fn(&cpu::LayerGradients) -> &Vec<f64>) -> Vec<f64> {
    g.layers[0].iter().flat_map(|l| part(l).clone()).collect()
}

/// The tensors of a safetensors file: name → (shape, values as f32).
fn safetensors_of(bytes: &[u8]) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}: float32");
            let data = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (name, (view.shape().to_vec(), data))
        })
        .collect()
}

/// The tensors of an `.npz` archive: name → (shape, values).
fn npz_of(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let file = std::fs::File::open(path).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let mut out = BTreeMap::new();
    for k in 0..zip.len() {
        let mut member = zip.by_index(k).unwrap();
        let name = member.name().strip_suffix(".npy").unwrap().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut member, &mut bytes).unwrap();
        let a = npy::parse_f32(&bytes, &name).unwrap();
        out.insert(name, (a.shape, a.data));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Weight arrays

/// Bidirectional, batch-major (layout 1), with sequence lengths (one of them 0), a bias, an
/// initial state, dY and dY_h: every output against `cpu::backward_model`, for reset-before and
/// `--linear-before-reset`, on the GPU (the default device) and on the CPU.
#[test]
fn array_mode_matches_the_cpu_reference_backward() {
    let (t, b, i, h) = (5, 3, 2, 4);
    for (seed, convention, lbr) in [
        (31, Convention::ResetBefore, None),
        (32, Convention::ResetAfter, Some("--linear-before-reset")),
    ] {
        let mut rng = Rng::new(seed);
        let d0 = random_weights(&mut rng, convention, i, h, 1.5, true);
        let d1 = random_weights(&mut rng, convention, i, h, 1.5, true);
        let model = GruModel::new(
            Direction::Bidirectional,
            vec![vec![d0.clone(), d1.clone()]],
            None,
        )
        .unwrap();
        let x = rng.vec(b * t * i, 1.0); // [B, T, I]
        let h0 = rng.vec(b * 2 * h, 1.0); // [B, D, H]
        let dy = rng.vec(b * t * 2 * h, 1.0); // [B, T, D, H]
        let dy_h = rng.vec(b * 2 * h, 1.0); // [B, D, H]
        let lens = [5i64, 2, 0];
        let input = GruInput::new(&x, t, b)
            .with_layout(Layout::BatchMajor)
            .with_initial_h(&h0)
            .with_sequence_lens(&lens);
        let expected = cpu::backward_model(&model, &input, &dy, Some(&dy_h)).unwrap();

        let dir = TempDir::new(&format!("grad-arrays-{seed}"));
        let cat = |a: &[f32], c: &[f32]| [a, c].concat();
        dir.write_f32("x.npy", &[b, t, i], &x);
        dir.write_f32("w.npy", &[2, 3 * h, i], &cat(d0.w(), d1.w()));
        dir.write_f32("r.npy", &[2, 3 * h, h], &cat(d0.r(), d1.r()));
        dir.write_f32("b.npy", &[2, 6 * h], &cat(d0.b(), d1.b()));
        dir.write_f32("h0.npy", &[b, 2, h], &h0);
        dir.write_f32("dy.npy", &[b, t, 2, h], &dy);
        dir.write_f32("dyh.npy", &[b, 2, h], &dy_h);
        let lens_bytes: Vec<u8> = lens.iter().flat_map(|l| l.to_le_bytes()).collect();
        dir.write("lens.npy", &raw_npy("<i8", false, "(3,)", &lens_bytes));

        for (device, ran_on) in devices() {
            let context = format!("{convention:?} {device:?}");
            let mut args = vec![
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
                "--direction",
                "bidirectional",
                "--layout",
                "1",
                "--dy",
                "dy.npy",
                "--dy-h",
                "dyh.npy",
                "--dx",
                "dx.npy",
                "--dw",
                "dw.npy",
                "--dr",
                "dr.npy",
                "--db",
                "db.npy",
                "--dh0",
                "dh0.npy",
            ];
            args.extend(lbr);
            args.extend(device);
            let run = grad_in(dir.path(), &args);
            run.assert_success(&context);
            assert!(run.stderr.contains(ran_on), "{context}: {}", run.stderr);
            assert!(
                run.stderr
                    .contains(&format!("linear_before_reset={}", lbr.is_some() as u8)),
                "{context}: {}",
                run.stderr
            );
            assert_npy(&dir, "dx.npy", &[b, t, i], &expected.dx, &context);
            assert_npy(&dir, "dh0.npy", &[b, 2, h], &expected.dh0, &context);
            let dw = stacked(&expected, |l| &l.dw);
            assert_npy(&dir, "dw.npy", &[2, 3 * h, i], &dw, &context);
            let dr = stacked(&expected, |l| &l.dr);
            assert_npy(&dir, "dr.npy", &[2, 3 * h, h], &dr, &context);
            let db = stacked(&expected, |l| &l.db);
            assert_npy(&dir, "db.npy", &[2, 6 * h], &db, &context);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Model files: --grads in the file's own names

/// A PyTorch `nn.GRU` state_dict (two layers, bidirectional, batch_first, names under the
/// prefix `gru.`; and one with bias=False): `--grads` holds exactly the state_dict's names and
/// shapes, with the CPU reference's gradients converted by `to_pytorch`; `--dx` and `--dh0`
/// come with it.
#[test]
fn pytorch_model_grads_have_the_state_dict_names_and_shapes() {
    for (case, h0, batch_first) in [
        ("torch_2layer_bidir_batchfirst_h0", true, true),
        ("torch_no_bias", false, false),
    ] {
        let dir = TempDir::new(&format!("grad-{case}"));
        let model_path = golden(case, "model.safetensors");
        let model_bytes = std::fs::read(&model_path).unwrap();
        let state_dict = safetensors_of(&model_bytes);
        let Imported::PyTorch(torch) =
            io::load(Path::new(&model_path), &ImportOptions::default()).unwrap()
        else {
            panic!("{case}: a PyTorch file");
        };
        let x = npy::read_f32(Path::new(&golden(case, "x.npy"))).unwrap();
        let h0_data = h0.then(|| npy::read_f32(Path::new(&golden(case, "h0.npy"))).unwrap());
        let (t, b) = if batch_first {
            (x.shape[1], x.shape[0])
        } else {
            (x.shape[0], x.shape[1])
        };
        let m = &torch.model;
        let (d, hid) = (m.num_directions(), m.hidden_size());
        let mut rng = Rng::new(41);
        let dy = rng.vec(t * b * d * hid, 1.0);
        let dy_h = rng.vec(m.num_layers() * d * b * hid, 1.0);
        let y_shape = if batch_first {
            [b, t, d * hid]
        } else {
            [t, b, d * hid]
        };
        let state_shape = [m.num_layers() * d, b, hid];
        dir.write_f32("dy.npy", &y_shape, &dy);
        dir.write_f32("dyh.npy", &state_shape, &dy_h);
        let mut input = GruInput::new(&x.data, t, b).with_style(OutputStyle::PyTorch);
        if batch_first {
            input = input.with_layout(Layout::BatchMajor);
        }
        if let Some(h0) = &h0_data {
            input = input.with_initial_h(&h0.data);
        }
        let expected = cpu::backward_model(m, &input, &dy, Some(&dy_h)).unwrap();
        let named: BTreeMap<String, Vec<f64>> = expected
            .to_pytorch_named()
            .into_iter()
            .map(|(name, _, data)| (format!("{}{name}", torch.prefix), data))
            .collect();

        for (device, ran_on) in devices() {
            let context = format!("{case} {device:?}");
            let x_path = golden(case, "x.npy");
            let h0_path = golden(case, "h0.npy");
            let mut args = vec![
                "--model",
                &model_path,
                "--x",
                &x_path,
                "--dy",
                "dy.npy",
                "--dy-h",
                "dyh.npy",
                "--grads",
                "grads.safetensors",
                "--dx",
                "dx.npy",
                "--dh0",
                "dh0.npy",
            ];
            if h0 {
                args.extend(["--initial-h", &h0_path]);
            }
            if batch_first {
                args.push("--batch-first");
            }
            args.extend(device);
            let run = grad_in(dir.path(), &args);
            run.assert_success(&context);
            assert!(run.stderr.contains(ran_on), "{context}: {}", run.stderr);

            let grads = safetensors_of(&std::fs::read(dir.join("grads.safetensors")).unwrap());
            let names = |m: &BTreeMap<String, (Vec<usize>, Vec<f32>)>| -> Vec<String> {
                m.keys().cloned().collect()
            };
            assert_eq!(names(&grads), names(&state_dict), "{context}: the names");
            for (name, (shape, data)) in &grads {
                assert_eq!(shape, &state_dict[name].0, "{context}: {name}'s shape");
                assert_grad_close(&format!("{context}: {name}"), data, &named[name]);
            }
            assert_npy(&dir, "dx.npy", &x.shape, &expected.dx, &context);
            assert_npy(&dir, "dh0.npy", &state_shape, &expected.dh0, &context);
        }
    }
}

/// Keras weights (both containers, both bias shapes) and an ONNX model: `--grads` is the
/// model's own container with the names its importer reads (Keras: kernel, recurrent_kernel,
/// bias, read back by the Keras importer; ONNX: W, R, B in the initializers' shapes), holding
/// the CPU reference's gradients.
#[test]
fn keras_and_onnx_model_grads_use_the_files_own_names_and_container() {
    let dir = TempDir::new("grad-keras-onnx");
    for (case, file, grads, flag) in [
        (
            "keras_reset_after_true",
            "weights.safetensors",
            "g.safetensors",
            None,
        ),
        (
            "keras_reset_after_false",
            "weights.npz",
            "g.npz",
            Some("false"),
        ),
    ] {
        let model_path = golden(case, file);
        let x_path = golden(case, "x.npy");
        let options = ImportOptions {
            keras_reset_after: flag.map(|f| f == "true"),
            ..Default::default()
        };
        let Imported::Keras(keras) = io::load(Path::new(&model_path), &options).unwrap() else {
            panic!("{case}: a Keras file");
        };
        let x = npy::read_f32(Path::new(&x_path)).unwrap();
        let (b, t, h) = (x.shape[0], x.shape[1], keras.model.hidden_size());
        let dy = Rng::new(51).vec(b * t * h, 1.0);
        dir.write_f32("dy.npy", &[b, t, h], &dy);
        let input = GruInput::new(&x.data, t, b)
            .with_layout(Layout::BatchMajor)
            .with_style(OutputStyle::PyTorch);
        let expected = cpu::backward_model(&keras.model, &input, &dy, None).unwrap();
        let k = expected.layers[0][0].to_keras(keras.reset_after);

        let mut args = vec![
            "--model",
            &model_path,
            "--x",
            &x_path,
            "--dy",
            "dy.npy",
            "--grads",
            grads,
        ];
        if let Some(f) = flag {
            args.extend(["--keras-reset-after", f]);
        }
        let run = grad_in(dir.path(), &args);
        run.assert_success(case);
        let bytes = std::fs::read(dir.join(grads)).unwrap();
        // The Keras importer reads the gradients' file as Keras weights.
        let read_back = io::keras::parse(&bytes, grads, None).unwrap();
        assert_eq!(read_back.container, keras.container, "{case}: container");
        assert_eq!(read_back.reset_after, keras.reset_after, "{case}");
        let tensors = match keras.container {
            "npz" => npz_of(&dir.join(grads)),
            _ => safetensors_of(&bytes),
        };
        let h3 = 3 * h;
        let bias_shape = if keras.reset_after {
            vec![2, h3]
        } else {
            vec![h3]
        };
        for (name, shape, values) in [
            ("kernel", vec![x.shape[2], h3], &k.kernel),
            ("recurrent_kernel", vec![h, h3], &k.recurrent_kernel),
            ("bias", bias_shape, &k.bias),
        ] {
            assert_eq!(tensors[name].0, shape, "{case}: {name}'s shape");
            assert_grad_close(&format!("{case}: {name}"), &tensors[name].1, values);
        }
        assert_eq!(tensors.len(), 3, "{case}: {:?}", tensors.keys());
    }

    // ONNX: W, R, B as the node's initializers (W.npy, R.npy, B.npy of the case).
    let case = "onnx_bidir_seqlens_lbr1";
    let [m, x, h0, lens] =
        ["model.onnx", "X.npy", "initial_h.npy", "sequence_lens.npy"].map(|f| golden(case, f));
    let Imported::Onnx(onnx) = io::load(Path::new(&m), &ImportOptions::default()).unwrap() else {
        panic!("an ONNX file");
    };
    let xa = npy::read_f32(Path::new(&x)).unwrap();
    let h0a = npy::read_f32(Path::new(&h0)).unwrap();
    let (_, lens_a) = npy::read_i64(Path::new(&lens)).unwrap();
    let (t, b, h) = (xa.shape[0], xa.shape[1], onnx.model.hidden_size());
    let dy = Rng::new(52).vec(t * 2 * b * h, 1.0);
    dir.write_f32("dy.npy", &[t, 2, b, h], &dy);
    let input = GruInput::new(&xa.data, t, b)
        .with_initial_h(&h0a.data)
        .with_sequence_lens(&lens_a);
    let expected = cpu::backward_model(&onnx.model, &input, &dy, None).unwrap();
    let run = grad_in(
        dir.path(),
        &[
            "--model",
            &m,
            "--x",
            &x,
            "--initial-h",
            &h0,
            "--sequence-lens",
            &lens,
            "--dy",
            "dy.npy",
            "--grads",
            "onnx_grads.npz",
        ],
    );
    run.assert_success(case);
    let tensors = npz_of(&dir.join("onnx_grads.npz"));
    assert_eq!(tensors.len(), 3, "{:?}", tensors.keys());
    for (name, part) in [
        ("W", (|l| &l.dw) as fn(&cpu::LayerGradients) -> &Vec<f64>),
        ("R", |l| &l.dr),
        ("B", |l| &l.db),
    ] {
        let initializer = npy::read_f32(Path::new(&golden(case, &format!("{name}.npy")))).unwrap();
        assert_eq!(
            tensors[name].0, initializer.shape,
            "{name}: the initializer's shape"
        );
        assert_grad_close(name, &tensors[name].1, &stacked(&expected, part));
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input

/// Every file in `dir` with its contents.
fn snapshot(dir: &TempDir) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Missing `--dy`, a dY or dY_h of the wrong shape, no output, an output naming an input (or
/// another output), the weight-array outputs with `--model`, `--dtype f16`, and a `--grads`
/// extension of the other container: one `gru: ` line each, exit status 2 for usage errors
/// and 1 for bad data, and no file written or changed.
#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let dir = TempDir::new("grad-bad");
    let (t, b, i, h) = (3, 2, 3, 4);
    let mut rng = Rng::new(61);
    let w = random_weights(&mut rng, Convention::ResetBefore, i, h, 1.0, true);
    dir.write_f32("x.npy", &[t, b, i], &rng.vec(t * b * i, 1.0));
    dir.write_f32("w.npy", &[1, 3 * h, i], w.w());
    dir.write_f32("r.npy", &[1, 3 * h, h], w.r());
    dir.write_f32("dy.npy", &[t, 1, b, h], &rng.vec(t * b * h, 1.0));
    dir.write_f32("dy_pt.npy", &[t, b, h], &rng.vec(t * b * h, 1.0));
    dir.write_f32("dyh.npy", &[1, b, h], &rng.vec(b * h, 1.0));
    dir.write_f32("dyh_bad.npy", &[b, h], &rng.vec(b * h, 1.0));
    let before = snapshot(&dir);
    let torch = golden("torch_no_bias", "model.safetensors");
    let torch_x = golden("torch_no_bias", "x.npy");

    let arrays = ["--x", "x.npy", "--w", "w.npy", "--r", "r.npy"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = arrays.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let cases: Vec<(&str, Vec<&str>, i32, Vec<&str>)> = vec![
        (
            "missing --dy",
            with(&["--dx", "dx.npy"]),
            2,
            vec!["'gru grad' needs", "missing: --dy"],
        ),
        (
            "dY of the wrong shape",
            with(&["--dy", "dy_pt.npy", "--dx", "dx.npy"]),
            1,
            vec![
                "dY (dy_pt.npy) has shape (3, 2, 4)",
                "expected (3, 1, 2, 4) = [seq_length, num_directions, batch_size, hidden_size]",
            ],
        ),
        (
            "dY_h of the wrong shape",
            with(&["--dy", "dy.npy", "--dy-h", "dyh_bad.npy", "--dx", "dx.npy"]),
            1,
            vec![
                "dY_h (dyh_bad.npy) has shape (2, 4)",
                "expected (1, 2, 4) = [num_directions, batch_size, hidden_size]",
            ],
        ),
        (
            "no output",
            with(&["--dy", "dy.npy"]),
            2,
            vec!["writes nothing without an output", "--dx"],
        ),
        (
            "an output naming an input",
            with(&["--dy", "dy.npy", "--dx", "dx.npy", "--dw", "./w.npy"]),
            2,
            vec!["--dw", "names the same file as the input --w"],
        ),
        (
            "an output naming dY",
            with(&["--dy", "dy.npy", "--dy-h", "dyh.npy", "--dh0", "dyh.npy"]),
            2,
            vec!["--dh0", "names the same file as the input --dy-h"],
        ),
        (
            "two outputs naming one file",
            with(&["--dy", "dy.npy", "--dx", "d.npy", "--dr", "d.npy"]),
            2,
            vec!["--dx and --dr name the same file"],
        ),
        (
            "--dtype f16",
            with(&["--dy", "dy.npy", "--dx", "dx.npy", "--dtype", "f16"]),
            2,
            vec!["--dtype f16", "gradients are f32"],
        ),
        (
            "--dw with --model",
            vec![
                "--model", &torch, "--x", &torch_x, "--dy", "dy.npy", "--dw", "dw.npy",
            ],
            2,
            vec!["--dw cannot be combined with --model", "--grads"],
        ),
        (
            "--grads .npz for a PyTorch model",
            vec![
                "--model", &torch, "--x", &torch_x, "--dy", "dy.npy", "--grads", "g.npz",
            ],
            2,
            vec!["--grads", "written as .safetensors"],
        ),
    ];
    for (name, args, code, needles) in cases {
        let run = grad_in(dir.path(), &args);
        run.one_error(code, name, &needles);
        assert_eq!(snapshot(&dir), before, "{name}: no file written or changed");
    }

    // A directory that does not exist for one output: neither output is written.
    let run = grad_in(
        dir.path(),
        &with(&["--dy", "dy.npy", "--dx", "dx.npy", "--dw", "missing/dw.npy"]),
    );
    run.one_error(1, "unwritable output", &["missing/dw.npy"]);
    assert_eq!(snapshot(&dir), before, "unwritable output: nothing written");
}
