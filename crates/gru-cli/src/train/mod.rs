//! `gru train`, `gru evaluate` and `gru predict`: a GRU classifier (or regressor) with a dense
//! head on its final state, trained on the GPU ([`GpuTrainer`], one submit per step) or on
//! the CPU reference path ([`ReferenceTrainer`], f64), from `.npy` arrays (or `.npz` members,
//! `FILE.npz:NAME`), with Keras's `fit` semantics: batches of a shuffled epoch (seeded), a
//! partial last batch, `validation_split` as Keras takes it (the last entries), the loss and
//! accuracy as Keras reports them (means over the entries seen).
//!
//! What `--out` writes depends on its extension: `.safetensors` a PyTorch `state_dict`
//! (`gru.weight_ih_l0`, … and `head.weight`, `head.bias`), `.npz` Keras weights (`kernel`,
//! `recurrent_kernel`, `bias`, `dense_kernel`, `dense_bias`), `.onnx` an ONNX GRU node (the
//! GRU only: the head is not part of a GRU node). Each reads back through `--from` and
//! `gru evaluate --model` (the importers).

mod checkpoint;
mod data;
mod engine;
mod evaluate;
mod output;
mod plot;
mod progress;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use gru_wgpu::init::{self, Init};
use gru_wgpu::io::{self as gio, ImportOptions, Imported};
use gru_wgpu::loss::{Loss, LossValue};
use gru_wgpu::npy::format_shape;
use gru_wgpu::optim::{Clip, Optimizer};
use gru_wgpu::{Convention, Direction, GruError, GruInput, Layout};

use crate::args::DeviceChoice;
use crate::{write, CliResult, Failure};
use data::load_data;
use engine::{evaluate_all, merge, Start};
pub(crate) use evaluate::{evaluate, predict};
use output::{check_writable, encode_model, out_format, OutFormat};
use plot::{curves_svg, EpochRecord};
use progress::{metrics_json, metrics_text, Progress};

/// The head: on the GRU's final state, or (`sequence`) on every step's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum HeadArg {
    /// `Dense(1) → sigmoid`, binary cross-entropy, labels 0 or 1.
    Sigmoid,
    /// `Dense(classes) → softmax`, cross-entropy over integer labels.
    Softmax,
    /// `Dense(out)`, mean squared error against targets `[N]` or `[N, out]`.
    Linear,
    /// `Dense(out)` on every step's output, mean squared error against targets `[N, T]` or
    /// `[N, T, out]` over the steps within each length (sequence to sequence).
    Sequence,
}

impl HeadArg {
    fn loss(self) -> Loss {
        match self {
            HeadArg::Sigmoid => Loss::BinaryCrossentropy,
            HeadArg::Softmax => Loss::SparseCategoricalCrossentropy,
            HeadArg::Linear | HeadArg::Sequence => Loss::MeanSquaredError,
        }
    }

    /// Whether the head runs on every step.
    fn per_step(self) -> bool {
        self == HeadArg::Sequence
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OptimizerArg {
    Rmsprop,
    Adam,
    Adamw,
    Sgd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum InitArg {
    Keras,
    Pytorch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ConventionArg {
    ResetAfter,
    ResetBefore,
}

/// `gru train`'s flags as given.
#[derive(Args, Debug)]
pub(crate) struct TrainFlags {
    #[arg(long)]
    x: PathBuf,
    #[arg(long)]
    labels: PathBuf,
    #[arg(long)]
    lens: Option<PathBuf>,
    #[arg(long, alias = "val_x", requires = "val_labels")]
    val_x: Option<PathBuf>,
    #[arg(long, alias = "val_labels", requires = "val_x")]
    val_labels: Option<PathBuf>,
    #[arg(long, alias = "val_lens", requires = "val_x")]
    val_lens: Option<PathBuf>,
    #[arg(long, alias = "validation_split", conflicts_with = "val_x", value_parser = fraction)]
    validation_split: Option<f64>,
    #[arg(long, required_unless_present_any = ["from", "resume"], conflicts_with = "from")]
    hidden: Option<usize>,
    #[arg(long, conflicts_with = "from", value_parser = clap::value_parser!(u64).range(1..))]
    layers: Option<u64>,
    #[arg(long, conflicts_with = "from")]
    bidirectional: bool,
    #[arg(long, value_enum, conflicts_with = "from")]
    convention: Option<ConventionArg>,
    #[arg(long, value_enum, default_value = "sigmoid")]
    head: HeadArg,
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    classes: Option<u64>,
    #[arg(long, default_value_t = 10)]
    epochs: u64,
    #[arg(long, alias = "batch_size", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    #[arg(long, value_enum, default_value = "rmsprop")]
    optimizer: OptimizerArg,
    #[arg(long, value_parser = positive)]
    lr: Option<f64>,
    #[arg(long, value_parser = non_negative)]
    momentum: Option<f64>,
    #[arg(long)]
    nesterov: bool,
    #[arg(long)]
    centered: bool,
    #[arg(long, alias = "weight_decay", value_parser = non_negative)]
    weight_decay: Option<f64>,
    #[arg(long, alias = "clip_norm", value_parser = positive, conflicts_with = "clip_value")]
    clip_norm: Option<f64>,
    #[arg(long, alias = "clip_value", value_parser = positive)]
    clip_value: Option<f64>,
    #[arg(long, value_enum, default_value = "keras")]
    init: InitArg,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, alias = "no_shuffle")]
    no_shuffle: bool,
    #[arg(long, conflicts_with = "resume")]
    from: Option<PathBuf>,
    #[arg(long, alias = "checkpoint_every", value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: Option<u64>,
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long)]
    resume: bool,
    #[arg(long, alias = "new_head", requires = "from")]
    new_head: bool,
    #[arg(long, alias = "keras_reset_after", requires = "from", value_parser = crate::args::boolean)]
    keras_reset_after: Option<bool>,
    #[arg(long, requires = "from")]
    prefix: Option<String>,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    log: Option<PathBuf>,
    #[arg(long, alias = "log_steps", requires = "log")]
    log_steps: bool,
    #[arg(long)]
    plot: Option<PathBuf>,
    #[arg(long, alias = "skip_non_finite")]
    skip_non_finite: bool,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
    #[arg(long)]
    quiet: bool,
}

/// `gru evaluate`'s and `gru predict`'s flags as given.
#[derive(Args, Debug)]
pub(crate) struct ModelDataFlags {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    x: PathBuf,
    #[arg(long)]
    lens: Option<PathBuf>,
    #[arg(long, value_enum)]
    head: Option<HeadArg>,
    #[arg(long, alias = "batch_size", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    #[arg(long, alias = "keras_reset_after", value_parser = crate::args::boolean)]
    keras_reset_after: Option<bool>,
    #[arg(long)]
    prefix: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

/// `gru evaluate`'s flags as given.
#[derive(Args, Debug)]
pub(crate) struct EvaluateFlags {
    #[command(flatten)]
    common: ModelDataFlags,
    #[arg(long)]
    labels: PathBuf,
}

/// `gru predict`'s flags as given.
#[derive(Args, Debug)]
pub(crate) struct PredictFlags {
    #[command(flatten)]
    common: ModelDataFlags,
    #[arg(long)]
    out: PathBuf,
}

fn positive(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err("expected a positive number".into()),
    }
}

fn non_negative(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err("expected a number ≥ 0".into()),
    }
}

fn fraction(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x > 0.0 && x < 1.0 => Ok(x),
        _ => Err("expected a fraction between 0 and 1".into()),
    }
}

/// The optimizer the flags describe.
fn optimizer(f: &TrainFlags) -> CliResult<Optimizer> {
    let given = |v: Option<f64>, flag: &str, ok: bool| -> CliResult {
        match (v, ok) {
            (Some(_), false) => Err(Failure::Usage(format!(
                "{flag} does not apply to --optimizer {:?}",
                f.optimizer
            ))),
            _ => Ok(()),
        }
    };
    let o = f.optimizer;
    given(
        f.momentum,
        "--momentum",
        matches!(o, OptimizerArg::Sgd | OptimizerArg::Rmsprop),
    )?;
    given(f.weight_decay, "--weight-decay", o != OptimizerArg::Rmsprop)?;
    if f.nesterov && o != OptimizerArg::Sgd {
        return Err(Failure::Usage(
            "--nesterov applies to --optimizer sgd".into(),
        ));
    }
    Ok(match o {
        OptimizerArg::Rmsprop => {
            let mut r = Optimizer::rmsprop_keras();
            if let Optimizer::RmsProp {
                lr,
                momentum,
                centered,
                ..
            } = &mut r
            {
                *lr = f.lr.unwrap_or(*lr);
                *momentum = f.momentum.unwrap_or(*momentum);
                *centered = f.centered;
            }
            r
        }
        OptimizerArg::Adam | OptimizerArg::Adamw => {
            let mut a = if o == OptimizerArg::Adam {
                Optimizer::adam()
            } else {
                Optimizer::adamw()
            };
            if let Optimizer::Adam {
                lr, weight_decay, ..
            }
            | Optimizer::AdamW {
                lr, weight_decay, ..
            } = &mut a
            {
                *lr = f.lr.unwrap_or(*lr);
                *weight_decay = f.weight_decay.unwrap_or(*weight_decay);
            }
            a
        }
        OptimizerArg::Sgd => Optimizer::Sgd {
            lr: f.lr.unwrap_or(0.01),
            momentum: f.momentum.unwrap_or(0.0),
            dampening: 0.0,
            nesterov: f.nesterov,
            weight_decay: f.weight_decay.unwrap_or(0.0),
        },
    })
}

/// A model file's dense head as `(weight [out, D·H], bias [out])`: Keras's `dense_kernel`
/// (transposed) and `dense_bias`, or PyTorch's `head.weight` and `head.bias`.
pub(super) fn imported_head(imported: &Imported) -> Option<(Vec<f32>, Vec<f32>)> {
    match imported {
        Imported::Keras(k) => k.dense.as_ref().map(|d| (d.weight(), d.bias.clone())),
        Imported::PyTorch(p) => p.head.as_ref().map(|h| (h.weight.clone(), h.bias.clone())),
        Imported::Onnx(_) => None,
    }
}

/// The network and head training starts from: `--from`'s (its head unless `--new-head` or
/// it has none), or a fresh one drawn with `--init` from `--seed`.
fn start(f: &TrainFlags, input_size: usize, out: usize) -> CliResult<(Start, String)> {
    let init = match f.init {
        InitArg::Keras => Init::Keras,
        InitArg::Pytorch => Init::PyTorch,
    };
    let Some(from) = &f.from else {
        let direction = if f.bidirectional {
            Direction::Bidirectional
        } else {
            Direction::Forward
        };
        let convention = match f.convention {
            None | Some(ConventionArg::ResetAfter) => Convention::ResetAfter,
            Some(ConventionArg::ResetBefore) => Convention::ResetBefore,
        };
        let hidden = f.hidden.unwrap_or(0);
        let layers = f.layers.unwrap_or(1) as usize;
        let model = init::gru_model(
            init, convention, direction, layers, input_size, hidden, f.seed,
        )?;
        let (weight, bias) = init::dense(init, direction.num_directions() * hidden, out, f.seed);
        let what =
            format!(
            "a new GRU ({layers} layer(s), H = {hidden}, {}, {convention:?}, {:?} initialisation)",
            if f.bidirectional { "bidirectional" } else { "forward" },
            f.init
        );
        return Ok((
            Start {
                model,
                weight,
                bias,
            },
            what,
        ));
    };
    let options = ImportOptions {
        keras_reset_after: f.keras_reset_after,
        pytorch_prefix: f.prefix.clone(),
    };
    let imported = gio::load(from, &options)?;
    let model = imported.model().clone();
    if model.input_size() != input_size {
        return Err(Failure::Runtime(format!(
            "--from {}: the model reads I = {} features, but --x has {input_size}",
            from.display(),
            model.input_size()
        )));
    }
    let features = model.num_directions() * model.hidden_size();
    let head = imported_head(&imported);
    let (weight, bias, said) = match head {
        Some((w, b)) if !f.new_head => {
            if b.len() != out || w.len() != out * features {
                return Err(Failure::Runtime(format!(
                    "--from {}: its head has {} output(s), the labels need {out}; pass \
                     --new-head to train a new head",
                    from.display(),
                    b.len()
                )));
            }
            (w, b, "its head")
        }
        _ => {
            let (w, b) = init::dense(init, features, out, f.seed);
            (w, b, "a new head")
        }
    };
    let what = format!(
        "{} ({}, {} layer(s), H = {}, {:?}) with {said}",
        from.display(),
        imported.format().name(),
        model.num_layers(),
        model.hidden_size(),
        model.convention()
    );
    Ok((
        Start {
            model,
            weight,
            bias,
        },
        what,
    ))
}

/// Runs `gru train`.
pub(crate) fn train(f: TrainFlags) -> CliResult {
    let loss = f.head.loss();
    let format = out_format(&f.out)?;
    let optimizer = optimizer(&f)?;
    let clip = match (f.clip_norm, f.clip_value) {
        (Some(n), _) => Clip::Norm(n),
        (None, Some(v)) => Clip::Value(v),
        (None, None) => Clip::None,
    };
    if f.head != HeadArg::Softmax && f.classes.is_some() {
        return Err(Failure::Usage("--classes applies to --head softmax".into()));
    }
    let out = match f.head {
        HeadArg::Sigmoid => 1,
        _ => f.classes.unwrap_or(0) as usize,
    };
    let (train, out) = load_data(
        &f.x,
        &f.labels,
        f.lens.as_deref(),
        loss,
        f.head.per_step(),
        out,
        ["--x", "--labels", "--lens"],
    )?;
    let shape = train.shape;
    let (mut train_set, mut val_set) = (train.data, None);
    if let (Some(vx), Some(vy)) = (&f.val_x, &f.val_labels) {
        let (val, _) = load_data(
            vx,
            vy,
            f.val_lens.as_deref(),
            loss,
            f.head.per_step(),
            out,
            ["--val-x", "--val-labels", "--val-lens"],
        )?;
        if val.shape[1..] != shape[1..] {
            return Err(Failure::Runtime(format!(
                "--val-x has shape {}, expected [N, T, I] with T = {} and I = {} as --x",
                format_shape(&val.shape),
                shape[1],
                shape[2]
            )));
        }
        val_set = Some(val.data);
    } else if let Some(fr) = f.validation_split {
        let (a, b) = train_set.split_validation(fr)?;
        train_set = a;
        val_set = Some(b);
    }
    let checkpoint_path = f
        .checkpoint
        .clone()
        .unwrap_or_else(|| f.out.with_extension("checkpoint.safetensors"));
    let resumed = if f.resume {
        Some(checkpoint::load(&checkpoint_path)?)
    } else {
        None
    };
    let (begin, what) = match &resumed {
        None => start(&f, shape[2], out)?,
        Some(c) => {
            let m = &c.model;
            let n = c.state.params.len();
            let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            let fits = m.input_size() == shape[2]
                && c.state.params[n - 1].len() == out
                && f.hidden.is_none_or(|h| h == m.hidden_size());
            if !fits {
                return Err(Failure::Runtime(format!(
                    "--resume: the checkpoint {} holds a GRU of I = {}, H = {} with {}                      output(s); the data (and --hidden) ask for I = {}{} with {out}",
                    checkpoint_path.display(),
                    m.input_size(),
                    m.hidden_size(),
                    c.state.params[n - 1].len(),
                    shape[2],
                    f.hidden.map(|h| format!(", H = {h}")).unwrap_or_default()
                )));
            }
            let what = format!(
                "resuming {} after epoch {} (step {})",
                checkpoint_path.display(),
                c.epochs,
                c.state.steps
            );
            (
                Start {
                    model: m.clone(),
                    weight: f32s(&c.state.params[n - 2]),
                    bias: f32s(&c.state.params[n - 1]),
                },
                what,
            )
        }
    };
    // Everything that can refuse the output is checked before the first step.
    encode_model(format, &begin.model, &begin.weight, &begin.bias)?;
    check_writable(&f.out, "--out")?;
    if f.checkpoint_every.is_some() {
        check_writable(&checkpoint_path, "--checkpoint")?;
    }
    let mut log = match &f.log {
        // A resumed run adds to the log of the run it continues.
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(f.resume)
                .truncate(!f.resume)
                .open(p)
                .map_err(|source| {
                    Failure::from(GruError::Io {
                        path: p.display().to_string(),
                        source,
                    })
                })?,
        ),
        None => None,
    };
    let (mut engine, place) =
        engine::new_engine(f.device, &begin, loss, f.head.per_step(), optimizer, clip)?;
    let (mut history, mut global_step, mut skipped, first_epoch) = match &resumed {
        Some(c) => {
            engine.restore(&c.state)?;
            (c.history.clone(), c.global_step, c.skipped, c.epochs)
        }
        None => (Vec::new(), 0, 0, 0),
    };
    let batch = f.batch_size as usize;
    let steps_per_epoch = train_set.len().div_ceil(batch);
    if !f.quiet {
        eprintln!(
            "gru train: {what}, on {place}; {} sequences of T = {}, I = {}{}, batches of {batch} \
             ({steps_per_epoch} steps per epoch), {optimizer:?}",
            train_set.len(),
            shape[1],
            shape[2],
            val_set
                .as_ref()
                .map(|v| format!(", {} for validation", v.len()))
                .unwrap_or_default(),
        );
    }
    let mut write_log = |value: serde_json::Value| -> CliResult {
        if let Some(file) = log.as_mut() {
            writeln!(file, "{value}").map_err(|source| {
                Failure::from(GruError::Io {
                    path: f
                        .log
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    source,
                })
            })?;
        }
        Ok(())
    };
    let t = shape[1];
    if let Some(p) = &f.plot {
        check_writable(p, "--plot")?;
    }

    for epoch in first_epoch..f.epochs {
        if !f.quiet {
            eprintln!("Epoch {}/{}", epoch + 1, f.epochs);
        }
        let batches = train_set.batches(batch, epoch, f.seed, !f.no_shuffle)?;
        let mut progress = Progress::new(batches.len(), f.quiet);
        let mut seen: Vec<LossValue> = Vec::with_capacity(batches.len());
        for (k, b) in batches.iter().enumerate() {
            global_step += 1;
            let mut input = GruInput::new(&b.x, t, b.len()).with_layout(Layout::BatchMajor);
            if let Some(l) = &b.lens {
                input = input.with_sequence_lens(l);
            }
            let value = engine
                .step(&input, &b.targets, f.skip_non_finite)
                .map_err(|e| {
                    Failure::Runtime(format!(
                        "epoch {}, batch {}/{} (step {global_step}): {e}; nothing was written \
                         to --out{}",
                        epoch + 1,
                        k + 1,
                        batches.len(),
                        if matches!(e, GruError::NonFinite { .. }) {
                            " (--skip-non-finite skips such steps instead)"
                        } else {
                            ""
                        }
                    ))
                })?;
            let Some(value) = value else {
                skipped += 1;
                continue;
            };
            seen.push(value);
            let so_far = merge(&seen);
            progress.update(k + 1, &metrics_text(&so_far, loss, ""));
            if f.log_steps {
                let mut line = metrics_json(&value, loss);
                line["epoch"] = (epoch + 1).into();
                line["step"] = global_step.into();
                write_log(line)?;
            }
        }
        let epoch_value = merge(&seen);
        let mut text = metrics_text(&epoch_value, loss, "");
        let mut line = metrics_json(&epoch_value, loss);
        line["epoch"] = (epoch + 1).into();
        line["seconds"] = serde_json::json!(progress.start.elapsed().as_secs_f64());
        line["steps"] = batches.len().into();
        let mut record = EpochRecord {
            loss: epoch_value.loss,
            accuracy: epoch_value.accuracy(),
            val: None,
        };
        if let Some(val) = &val_set {
            let v = evaluate_all(&mut engine, val, batch)?;
            record.val = Some((v.loss, v.accuracy()));
            text.push_str(&metrics_text(&v, loss, "val_"));
            line["val_loss"] = metrics_json(&v, loss)["loss"].clone();
            if loss != Loss::MeanSquaredError {
                line["val_accuracy"] = metrics_json(&v, loss)["accuracy"].clone();
            }
        }
        progress.finish(&text);
        write_log(line)?;
        history.push(record);
        if f.checkpoint_every.is_some_and(|n| (epoch + 1) % n == 0) {
            // The checkpoint's metadata takes the network's shape from the start's; its
            // weights are the state's parameters.
            checkpoint::save(
                &checkpoint_path,
                &checkpoint::Checkpoint {
                    state: engine.state()?,
                    model: begin.model.clone(),
                    epochs: epoch + 1,
                    global_step,
                    skipped,
                    history: history.clone(),
                },
            )?;
        }
    }
    if skipped > 0 {
        eprintln!("gru train: skipped {skipped} step(s) whose loss or gradients were not finite");
    }
    let (model, w, b) = engine.result(&begin.model)?;
    let bytes = encode_model(format, &model, &w, &b)?;
    let mut outputs = vec![(f.out.as_path(), bytes)];
    if let Some(p) = &f.plot {
        outputs.push((p.as_path(), curves_svg(&history, loss)?.into_bytes()));
    }
    write::write_files(&outputs)?;
    if format == OutFormat::Onnx {
        // A warning, printed even with --quiet: the head is not in the file.
        eprintln!(
            "gru train: wrote {} (the GRU node only: an ONNX GRU node holds no head)",
            f.out.display()
        );
    } else if !f.quiet {
        eprintln!("gru train: wrote {}", f.out.display());
    }
    Ok(())
}
