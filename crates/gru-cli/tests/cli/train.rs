//! `gru train`, `gru evaluate` and `gru predict` end to end: the article's flow on the digits
//! stand-in against Keras (scripts/digits_keras.py, tests/data/digits/keras_reference.json);
//! the models `--out` writes reading back through `--from` and `--model`; validation data and
//! the metrics log; and the bad inputs (one line, exit status, nothing written).

use crate::common;

use std::path::Path;

use common::cli::{Run, TempDir};
use gru_wgpu::io::export::{encode_npz, keras_weights, HeadTensors};
use gru_wgpu::{init, Convention, Direction};

/// Runs `gru args…` in `dir`.
fn gru_in(dir: &Path, args: &[&str]) -> Run {
    common::cli::run_in(env!("CARGO_BIN_EXE_gru"), dir, args, &[])
}

/// `tests/data/digits/FILE`.
fn digits(file: &str) -> String {
    common::repo_root()
        .join("tests/data/digits")
        .join(file)
        .display()
        .to_string()
}

fn data(member: &str) -> String {
    format!("{}:{member}", digits("digits.npz"))
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The article's model, compile and fit (GRU(100) → Dense(1, sigmoid), RMSprop, binary
/// cross-entropy, 10 epochs of batches of 128) from the same initial weights and batch order
/// as Keras: every epoch's training loss within 1 % of Keras's, and the test accuracy within
/// 2 points of it.
#[test]
fn the_article_flow_matches_keras() {
    let dir = TempDir::new("article");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(digits("keras_reference.json")).unwrap())
            .unwrap();
    let out = dir.join("trained.npz");
    let log = dir.join("metrics.jsonl");
    let run = gru_in(
        dir.path(),
        &[
            "train",
            "--x",
            &data("x_train"),
            "--labels",
            &data("y_train"),
            "--from",
            &digits("init_seed0.npz"),
            "--no-shuffle",
            "--epochs",
            "10",
            "--batch-size",
            "128",
            "--out",
            out.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
        ],
    );
    run.assert_success("gru train");
    assert!(run.stderr.contains("Epoch 10/10"), "{}", run.stderr);
    let lines = json_lines(&log);
    assert_eq!(lines.len(), 10, "one line per epoch");
    for (epoch, (line, want)) in lines
        .iter()
        .zip(reference["train_loss"].as_array().unwrap())
        .enumerate()
    {
        let (got, want) = (line["loss"].as_f64().unwrap(), want.as_f64().unwrap());
        assert!(
            (got - want).abs() <= 0.01 * want,
            "epoch {}: loss {got}, Keras {want}",
            epoch + 1
        );
        assert_eq!(line["steps"], 11, "1347 entries in batches of 128");
    }
    let eval = gru_in(
        dir.path(),
        &[
            "evaluate",
            "--model",
            out.to_str().unwrap(),
            "--x",
            &data("x_test"),
            "--labels",
            &data("y_test"),
        ],
    );
    eval.assert_success("gru evaluate");
    let accuracy: f64 = eval
        .stdout
        .split("accuracy: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {:?}", eval.stdout));
    let keras = reference["test_accuracy"].as_f64().unwrap();
    assert!(
        (accuracy - keras).abs() <= 0.02,
        "test accuracy {accuracy}, Keras {keras}"
    );
}

/// Each `--out` format reads back: `gru evaluate` gives the same loss from the PyTorch and
/// the Keras file, `--from` fine-tunes from them, and `gru predict` writes the head's
/// probabilities.
#[test]
fn trained_models_read_back() {
    let dir = TempDir::new("formats");
    let common_args = |out: &str| {
        vec![
            "train".to_string(),
            "--x".into(),
            data("x_train"),
            "--labels".into(),
            data("y_train"),
            "--hidden".into(),
            "12".into(),
            "--epochs".into(),
            "2".into(),
            "--batch-size".into(),
            "256".into(),
            "--optimizer".into(),
            "adam".into(),
            "--seed".into(),
            "3".into(),
            "--quiet".into(),
            "--out".into(),
            out.into(),
        ]
    };
    let mut losses = Vec::new();
    for out in ["m.safetensors", "m.npz"] {
        let args = common_args(out);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        gru_in(dir.path(), &args).assert_success(out);
        let eval = gru_in(
            dir.path(),
            &[
                "evaluate",
                "--model",
                out,
                "--x",
                &data("x_test"),
                "--labels",
                &data("y_test"),
            ],
        );
        eval.assert_success(out);
        losses.push(
            eval.stdout
                .split(" (")
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(losses[0], losses[1], "the same training, two containers");
    // The ONNX file holds the GRU only.
    let args = common_args("m.onnx");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = gru_in(dir.path(), &args);
    run.assert_success("onnx");
    assert!(run.stderr.contains("GRU node only"), "{}", run.stderr);
    // Fine-tuning from each file that has a head.
    for from in ["m.safetensors", "m.npz"] {
        let run = gru_in(
            dir.path(),
            &[
                "train",
                "--x",
                &data("x_train"),
                "--labels",
                &data("y_train"),
                "--from",
                from,
                "--epochs",
                "1",
                "--batch-size",
                "512",
                "--out",
                "tuned.npz",
            ],
        );
        run.assert_success(from);
        assert!(run.stderr.contains("with its head"), "{}", run.stderr);
    }
    let run = gru_in(
        dir.path(),
        &[
            "predict",
            "--model",
            "m.npz",
            "--x",
            &data("x_test"),
            "--out",
            "p.npy",
        ],
    );
    run.assert_success("predict");
    let p = gru_wgpu::npy::read_f32(&dir.join("p.npy")).expect("predictions");
    assert_eq!(p.shape, [450, 1]);
    assert!(p.data.iter().all(|&v| v > 0.0 && v < 1.0), "probabilities");
}

/// Ten classes with softmax, validation from a split, the per-step log and the plot.
#[test]
fn softmax_validation_and_step_log() {
    let dir = TempDir::new("softmax");
    let log = dir.join("log.jsonl");
    let run = gru_in(
        dir.path(),
        &[
            "train",
            "--x",
            &data("x_train"),
            "--labels",
            &data("d_train"),
            "--head",
            "softmax",
            "--hidden",
            "16",
            "--epochs",
            "2",
            "--batch-size",
            "256",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--validation-split",
            "0.2",
            "--log",
            log.to_str().unwrap(),
            "--log-steps",
            "--plot",
            "curves.svg",
            "--out",
            "m.safetensors",
        ],
    );
    run.assert_success("softmax");
    // Two panels (loss, accuracy), each with a training and a validation curve.
    let svg = std::fs::read_to_string(dir.join("curves.svg")).expect("--plot");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    for word in ["loss", "accuracy", "train", "validation"] {
        assert!(svg.contains(word), "{word} not in the plot");
    }
    assert!(svg.matches("<polyline").count() >= 4, "curves");
    assert!(run.stderr.contains("val_accuracy"), "{}", run.stderr);
    let lines = json_lines(&log);
    // 1077 training entries (Keras's split: ⌊1347 · 0.8⌋, the last 270 validate) in 5
    // batches of 256.
    let steps = lines.iter().filter(|l| l.get("step").is_some()).count();
    let epochs: Vec<_> = lines
        .iter()
        .filter(|l| l.get("val_loss").is_some())
        .collect();
    assert_eq!((steps, epochs.len()), (10, 2), "{lines:?}");
    assert_eq!(epochs[1]["entries"], 1077);
    let run = gru_in(
        dir.path(),
        &[
            "evaluate",
            "--model",
            "m.safetensors",
            "--x",
            &data("x_test"),
            "--labels",
            &data("d_test"),
        ],
    );
    run.assert_success("evaluate softmax");
    assert!(run.stdout.contains("accuracy"), "{}", run.stdout);
}

/// Bad inputs: one line, the right exit status, and no `--out` written.
#[test]
fn bad_training_inputs_are_one_line_errors() {
    let dir = TempDir::new("bad");
    dir.write_f32("x.npy", &[4, 3, 2], &[0.5; 24]);
    dir.write_f32("y.npy", &[4], &[0.0, 1.0, 1.0, 0.0]);
    dir.write_f32("y2.npy", &[4], &[0.0, 2.0, 1.0, 0.0]);
    dir.write_f32("y_shape.npy", &[3], &[0.0, 1.0, 1.0]);
    let mut nan = vec![0.5f32; 24];
    nan[7] = f32::NAN;
    dir.write_f32("nan.npy", &[4, 3, 2], &nan);
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--hidden", "3", "--epochs", "1", "--quiet"];
        args.extend_from_slice(extra);
        gru_in(dir.path(), &args)
    };
    // Each case's flags (split at spaces), exit status and the words its one line must hold.
    let cases: [(&str, i32, &[&str]); 7] = [
        (
            "--x x.npy --labels y_shape.npy --out m.npz",
            1,
            &["--labels", "shape (3,)", "expected [N] = [4]"],
        ),
        (
            "--x x.npy --labels y2.npy --out m.npz",
            1,
            &["label 1", "0 or 1"],
        ),
        (
            "--x x.npy --labels y2.npy --head softmax --classes 2 --out m.npz",
            1,
            &["label 1", "class index in 0..2"],
        ),
        (
            "--x nan.npy --labels y.npy --out m.npz",
            1,
            &["--x", "nan.npy"],
        ),
        (
            "--x x.npy --labels y.npy --out no/such/dir/m.npz",
            1,
            &["--out", "cannot write there"],
        ),
        ("--x x.npy --labels y.npy --out m.txt", 2, &["extension"]),
        (
            "--x x.npy --labels y.npy --bidirectional --out m.npz",
            1,
            &["Keras weights", "one forward layer"],
        ),
    ];
    for (flags, code, needles) in cases {
        let extra: Vec<&str> = flags.split(' ').collect();
        let run = train(&extra);
        run.one_error(code, flags, needles);
        assert!(!dir.join("m.npz").exists(), "{flags} wrote --out");
    }
}

/// A loss that overflows (a head of 3e38 weights) stops training with the step named and
/// writes nothing; with --skip-non-finite those steps are skipped and counted.
#[test]
fn a_non_finite_loss_stops_or_is_skipped() {
    let dir = TempDir::new("nonfinite");
    let model = init::gru_model(
        init::Init::Keras,
        Convention::ResetAfter,
        Direction::Forward,
        1,
        8,
        4,
        1,
    )
    .expect("model");
    let w = [3e38f32; 4];
    let head = HeadTensors {
        weight: &w,
        bias: &[0.0],
    };
    let bytes = encode_npz(&keras_weights(&model, Some(head)).unwrap()).unwrap();
    dir.write("huge.npz", &bytes);
    let args = |skip: bool| {
        let mut a = vec![
            "train",
            "--x",
            "X",
            "--labels",
            "Y",
            "--from",
            "huge.npz",
            "--epochs",
            "1",
            "--batch-size",
            "512",
            "--quiet",
            "--out",
            "m.npz",
        ];
        if skip {
            a.push("--skip-non-finite");
        }
        a
    };
    let (x, y) = (data("x_train"), data("y_train"));
    let with_data = |skip: bool| -> Vec<String> {
        args(skip)
            .into_iter()
            .map(|s| match s {
                "X" => x.clone(),
                "Y" => y.clone(),
                s => s.to_string(),
            })
            .collect()
    };
    let stop = with_data(false);
    let stop: Vec<&str> = stop.iter().map(String::as_str).collect();
    gru_in(dir.path(), &stop).one_error(
        1,
        "non-finite",
        &["step 1", "loss is not finite", "nothing was written"],
    );
    assert!(!dir.join("m.npz").exists());
    let skip = with_data(true);
    let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
    let run = gru_in(dir.path(), &skip);
    run.assert_success("skip");
    assert!(run.stderr.contains("skipped 3 step(s)"), "{}", run.stderr);
}

/// The flags of a small digits run writing `out` (H = 16, batches of 128).
fn small_run(out: &str, epochs: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "train",
        "--x",
        &data("x_train"),
        "--labels",
        &data("y_train"),
        "--epochs",
        epochs,
        "--batch-size",
        "128",
        "--quiet",
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run_strings(dir: &Path, args: &[String]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    gru_in(dir, &args)
}

/// Two epochs with a checkpoint after each, then `--resume` to four, write the same model,
/// byte for byte, as four epochs in one run, on the GPU and on the CPU reference path; and
/// `--resume` without a checkpoint is one error line.
#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let dir = TempDir::new("resume");
    for device in ["auto", "cpu"] {
        let dev = ["--device", device, "--hidden", "16"];
        run_strings(dir.path(), &small_run("whole.npz", "4", &dev)).assert_success("whole");
        let mut first = dev.to_vec();
        first.extend(["--checkpoint-every", "1"]);
        run_strings(dir.path(), &small_run("parts.npz", "2", &first)).assert_success("first");
        assert!(dir.join("parts.checkpoint.safetensors").exists());
        let resume = ["--device", device, "--resume", "--checkpoint-every", "1"];
        let run = run_strings(dir.path(), &small_run("parts.npz", "4", &resume));
        run.assert_success("resume");
        let (a, b) = (
            std::fs::read(dir.join("whole.npz")).unwrap(),
            std::fs::read(dir.join("parts.npz")).unwrap(),
        );
        assert!(a == b, "{device}: the resumed run wrote another model");
        std::fs::remove_file(dir.join("parts.checkpoint.safetensors")).unwrap();
    }
    run_strings(dir.path(), &small_run("none.npz", "2", &["--resume"])).one_error(
        1,
        "resume without a checkpoint",
        &["--resume", "none.checkpoint.safetensors"],
    );
    // A file that is not a checkpoint (garbage, a model file) is one line, nothing written.
    dir.write("junk.checkpoint.safetensors", b"not a checkpoint at all");
    std::fs::copy(
        dir.join("whole.npz"),
        dir.join("model.checkpoint.safetensors"),
    )
    .unwrap();
    for out in ["junk.npz", "model.npz"] {
        run_strings(dir.path(), &small_run(out, "2", &["--resume"])).one_error(
            1,
            out,
            &["--resume", "is not a gru train checkpoint"],
        );
        assert!(!dir.join(out).exists());
    }
}

/// A run killed while it trains leaves its last checkpoint whole: it resumes from it.
#[test]
fn an_interrupted_run_keeps_its_last_checkpoint() {
    let dir = TempDir::new("interrupt");
    let args = small_run(
        "m.npz",
        "100000",
        &["--hidden", "16", "--checkpoint-every", "1"],
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gru"))
        .args(&args)
        .current_dir(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn gru train");
    let ckpt = dir.join("m.checkpoint.safetensors");
    let started = std::time::Instant::now();
    // Wait for a few checkpoints to have been written (each one replaces the last).
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 3 && started.elapsed().as_secs() < 120 {
        if let Ok(meta) = std::fs::metadata(&ckpt) {
            seen.insert(meta.modified().ok());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(seen.len() >= 3, "no checkpoints within 120 s");
    assert!(
        !dir.join("m.npz").exists(),
        "the model is written only at the end"
    );
    // The checkpoint is whole: it resumes, for one epoch more than it holds.
    let bytes = std::fs::read(&ckpt).expect("checkpoint");
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).expect("whole checkpoint");
    let epochs: u64 = header.metadata().as_ref().expect("metadata")["epochs"]
        .parse()
        .expect("epochs");
    let next = (epochs + 1).to_string();
    let resume = small_run("m.npz", &next, &["--resume"]);
    run_strings(dir.path(), &resume).assert_success("resume after a kill");
    assert!(dir.join("m.npz").exists());
}

/// `--head sequence`: a per-step Dense with mean squared error learns to echo each step's
/// input (targets [N, T, 1], lengths given): the loss falls; evaluate and predict take the
/// per-step head too (predictions [N, T, out]).
#[test]
fn a_per_step_head_learns_a_sequence_task() {
    let dir = TempDir::new("sequence");
    let (n, t) = (64usize, 6usize);
    let x = gru_wgpu::seeded::uniform(3, n * t, 1.0);
    let lens: Vec<f32> = (0..n).map(|e| (1 + e % t) as f32).collect();
    dir.write_f32("x.npy", &[n, t], &x);
    dir.write_f32("y.npy", &[n, t, 1], &x);
    dir.write_f32("lens.npy", &[n], &lens);
    let log = dir.join("log.jsonl");
    let run = gru_in(
        dir.path(),
        &[
            "train",
            "--x",
            "x.npy",
            "--labels",
            "y.npy",
            "--lens",
            "lens.npy",
            "--head",
            "sequence",
            "--hidden",
            "8",
            "--epochs",
            "30",
            "--batch-size",
            "16",
            "--optimizer",
            "adam",
            "--lr",
            "0.02",
            "--quiet",
            "--log",
            log.to_str().unwrap(),
            "--out",
            "echo.safetensors",
        ],
    );
    run.assert_success("per-step training");
    let lines = json_lines(&log);
    let loss = |k: usize| lines[k]["loss"].as_f64().unwrap();
    assert!(
        loss(29) < 0.25 * loss(0),
        "loss {} -> {}",
        loss(0),
        loss(29)
    );
    // Every epoch counts the steps within the lengths: Σ (1 + e mod 6) over 64 entries = 220.
    assert_eq!(lines[0]["entries"], 220);
    let eval = gru_in(
        dir.path(),
        &[
            "evaluate",
            "--model",
            "echo.safetensors",
            "--x",
            "x.npy",
            "--labels",
            "y.npy",
            "--lens",
            "lens.npy",
            "--head",
            "sequence",
        ],
    );
    eval.assert_success("evaluate");
    assert!(eval.stdout.contains("220 counted steps"), "{}", eval.stdout);
    let pred = gru_in(
        dir.path(),
        &[
            "predict",
            "--model",
            "echo.safetensors",
            "--x",
            "x.npy",
            "--head",
            "sequence",
            "--out",
            "p.npy",
        ],
    );
    pred.assert_success("predict");
    let p = gru_wgpu::npy::read_f32(&dir.join("p.npy")).expect("predictions");
    assert_eq!(p.shape, [n, t, 1]);
}
