//! `gru_wgpu.train(x, y, ...)`: `gru train` from NumPy arrays — the article's compile by
//! default (GRU → Dense(1, sigmoid), binary cross-entropy, RMSprop with Keras's defaults) —
//! returning the trained model (with its head) and the per-epoch metrics.

use std::time::Instant;

use gru_wgpu::data::{self, Dataset};
use gru_wgpu::fit::{evaluate_all, merge, Trainer};
use gru_wgpu::gpu::GpuTrainer;
use gru_wgpu::loss::{Loss, LossValue};
use gru_wgpu::optim::{Clip, Optimizer};
use gru_wgpu::train::ReferenceTrainer;
use gru_wgpu::{init, Convention, Direction, Dtype, GruInput, Layout};
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::model::{parse_init, Gru, Head, HeadKind};
use crate::{as_f32, as_f64, as_i64, context, count, no_gpu, py_err, shape_text, Device};

fn loss_of(kind: HeadKind) -> Loss {
    match kind {
        HeadKind::Sigmoid => Loss::BinaryCrossentropy,
        HeadKind::Softmax => Loss::SparseCategoricalCrossentropy,
        HeadKind::Linear | HeadKind::Sequence => Loss::MeanSquaredError,
    }
}

/// `x [N, T, I]`, targets `y` and optional `lengths [N]` as a data set for `kind` with `out`
/// outputs (0: from the labels). Returns the data set and `out`.
fn dataset(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    lengths: Option<&Bound<'_, PyAny>>,
    kind: HeadKind,
    out: usize,
    names: [&str; 3],
) -> PyResult<(Dataset, usize)> {
    let xa = as_f32(py, x, names[0])?;
    let [n, t, i] = match *xa.shape() {
        [n, t, i] => [n, t, i],
        _ => {
            return Err(PyValueError::new_err(format!(
                "{}: expected [N, T, I] (batch first), got {}",
                names[0],
                shape_text(xa.shape())
            )))
        }
    };
    // Targets in float64 (the trainers' type): labels of any integer or float dtype.
    let (ys, yv) = as_f64(py, y, names[1])?;
    let (width, out) = data::target_layout(
        loss_of(kind),
        kind == HeadKind::Sequence,
        [n, t],
        &ys,
        &yv,
        out,
    )
    .map_err(|e| PyValueError::new_err(format!("{}: {e}", names[1])))?;
    let lens = match lengths {
        Some(o) if !o.is_none() => Some(as_i64(py, o, names[2])?),
        _ => None,
    };
    let xv = xa.readonly().as_slice()?.to_vec();
    let data = Dataset::new(xv, [n, t, i], yv, width, lens).map_err(py_err)?;
    Ok((data, out))
}

/// The optimizer `name` with the overrides given (as `gru train`'s flags).
fn optimizer(
    name: &str,
    lr: Option<f64>,
    momentum: Option<f64>,
    centered: bool,
    nesterov: bool,
    weight_decay: Option<f64>,
) -> PyResult<Optimizer> {
    let refuse = |what: &str| {
        Err(PyValueError::new_err(format!(
            "{what} does not apply to optimizer={name:?}"
        )))
    };
    for (v, what) in [
        (lr, "lr"),
        (momentum, "momentum"),
        (weight_decay, "weight_decay"),
    ] {
        if let Some(v) = v {
            if !(v.is_finite() && v >= 0.0) || (what == "lr" && v <= 0.0) {
                return Err(PyValueError::new_err(format!(
                    "{what}: expected a finite value {}, got {v}",
                    if what == "lr" { "> 0" } else { "≥ 0" }
                )));
            }
        }
    }
    let o = name.to_ascii_lowercase();
    if momentum.is_some() && !matches!(o.as_str(), "sgd" | "rmsprop") {
        return refuse("momentum");
    }
    if weight_decay.is_some() && o == "rmsprop" {
        return refuse("weight_decay");
    }
    if nesterov && o != "sgd" {
        return refuse("nesterov");
    }
    if centered && o != "rmsprop" {
        return refuse("centered");
    }
    Ok(match o.as_str() {
        "rmsprop" => {
            let mut r = Optimizer::rmsprop_keras();
            if let Optimizer::RmsProp {
                lr: l,
                momentum: m,
                centered: c,
                ..
            } = &mut r
            {
                *l = lr.unwrap_or(*l);
                *m = momentum.unwrap_or(*m);
                *c = centered;
            }
            r
        }
        "adam" | "adamw" => {
            let mut a = if o == "adam" {
                Optimizer::adam()
            } else {
                Optimizer::adamw()
            };
            if let Optimizer::Adam {
                lr: l,
                weight_decay: w,
                ..
            }
            | Optimizer::AdamW {
                lr: l,
                weight_decay: w,
                ..
            } = &mut a
            {
                *l = lr.unwrap_or(*l);
                *w = weight_decay.unwrap_or(*w);
            }
            a
        }
        "sgd" => Optimizer::Sgd {
            lr: lr.unwrap_or(0.01),
            momentum: momentum.unwrap_or(0.0),
            dampening: 0.0,
            nesterov,
            weight_decay: weight_decay.unwrap_or(0.0),
        },
        _ => {
            return Err(PyValueError::new_err(format!(
                "invalid optimizer: expected \"rmsprop\", \"adam\", \"adamw\" or \"sgd\", got \
                 {name:?}"
            )))
        }
    })
}

/// One epoch's metrics.
struct Epoch {
    train: LossValue,
    val: Option<LossValue>,
    seconds: f64,
    steps: usize,
    skipped: usize,
}

/// Trains a GRU and a dense head on `x [N, T, I]` (batch first, float) and `y`, as `gru train`
/// does, and returns `(model, history)`: the trained `GRU` (with its head, `batch_first=True`)
/// and one dict per epoch (`epoch`, `loss`, `accuracy` for classifiers, `val_loss`,
/// `val_accuracy` with validation data, `seconds`, `steps`, `skipped`).
///
/// - `head`: `"sigmoid"` (`Dense(1)`, binary cross-entropy, labels 0/1 `[N]`), `"softmax"`
///   (`Dense(classes)`, cross-entropy, class indices `[N]`), `"linear"` (`Dense(out)`, mean
///   squared error, targets `[N]` or `[N, out]`), `"sequence"` (`Dense(out)` on every step,
///   mean squared error, targets `[N, T]` or `[N, T, out]` within each length).
/// - The network: `model` (a `GRU` to fine-tune; its head is kept when it fits, unless
///   `new_head`) or a new one of `hidden_size`, `num_layers`, `bidirectional`, `reset_after`
///   drawn with `init` (`"keras"` or `"pytorch"`) from `seed`.
/// - `optimizer`: `"rmsprop"` (Keras's defaults), `"adam"`, `"adamw"` (PyTorch's), `"sgd"`
///   (lr 0.01), with `lr`, `momentum`, `centered`, `nesterov`, `weight_decay` as in
///   `gru train`; `clip_norm` or `clip_value` clip the gradients.
/// - `validation_split` (Keras's: the last fraction) or `validation_data=(x, y[, lengths])`.
/// - `skip_non_finite`: skip a step whose loss or gradients are not finite instead of raising
///   `FloatingPointError`. `device`: `"auto"`, `"gpu"` or `"cpu"`. `verbose`: one line per
///   epoch on stderr. The GIL is released while training.
#[pyfunction]
#[pyo3(signature = (x, y, *, lengths=None, model=None, hidden_size=None, num_layers=1,
    bidirectional=false, reset_after=true, head="sigmoid", classes=None, epochs=10,
    batch_size=32, optimizer="rmsprop", lr=None, momentum=None, centered=false, nesterov=false,
    weight_decay=None, clip_norm=None, clip_value=None, init="keras", seed=0, shuffle=true,
    validation_split=None, validation_data=None, new_head=false, skip_non_finite=false,
    device="auto", verbose=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn train<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    lengths: Option<&Bound<'py, PyAny>>,
    model: Option<PyRef<'py, Gru>>,
    hidden_size: Option<i64>,
    num_layers: i64,
    bidirectional: bool,
    reset_after: bool,
    head: &str,
    classes: Option<i64>,
    epochs: i64,
    batch_size: i64,
    optimizer: &str,
    lr: Option<f64>,
    momentum: Option<f64>,
    centered: bool,
    nesterov: bool,
    weight_decay: Option<f64>,
    clip_norm: Option<f64>,
    clip_value: Option<f64>,
    init: &str,
    seed: u64,
    shuffle: bool,
    validation_split: Option<f64>,
    validation_data: Option<&Bound<'py, PyAny>>,
    new_head: bool,
    skip_non_finite: bool,
    device: &str,
    verbose: bool,
) -> PyResult<(Gru, Bound<'py, PyList>)> {
    let hidden_size = hidden_size.map(|h| count(h, "hidden_size")).transpose()?;
    let num_layers = count(num_layers, "num_layers")?;
    let classes = classes.map(|c| count(c, "classes")).transpose()?;
    let epochs = count(epochs, "epochs")? as u64;
    let batch_size = count(batch_size, "batch_size")?;
    let kind = HeadKind::parse(head)?;
    let loss = loss_of(kind);
    let device = Device::parse(device)?;
    let init = parse_init(init)?;
    let optimizer = self::optimizer(optimizer, lr, momentum, centered, nesterov, weight_decay)?;
    let clip = match (clip_norm, clip_value) {
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err(
                "clip_norm and clip_value: expected at most one, got both",
            ))
        }
        (Some(n), None) if n > 0.0 && n.is_finite() => Clip::Norm(n),
        (None, Some(v)) if v > 0.0 && v.is_finite() => Clip::Value(v),
        (None, None) => Clip::None,
        (n, v) => {
            return Err(PyValueError::new_err(format!(
                "clip: expected a finite value > 0, got {}",
                n.or(v).unwrap_or(f64::NAN)
            )))
        }
    };
    if batch_size == 0 {
        return Err(PyValueError::new_err("batch_size: expected ≥ 1, got 0"));
    }
    if classes.is_some() && kind != HeadKind::Softmax {
        return Err(PyValueError::new_err("classes applies to head=\"softmax\""));
    }
    if classes == Some(0) {
        return Err(PyValueError::new_err("classes: expected ≥ 1, got 0"));
    }
    let out = match kind {
        HeadKind::Sigmoid => 1,
        _ => classes.unwrap_or(0),
    };
    let (mut train_set, out) = dataset(py, x, y, lengths, kind, out, ["x", "y", "lengths"])?;
    let shape = train_set.shape();
    let mut val_set = None;
    match (validation_data, validation_split) {
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err(
                "validation_data and validation_split: expected at most one, got both",
            ))
        }
        (Some(v), None) if !v.is_none() => {
            let parts: Vec<Bound<'py, PyAny>> = v.extract().map_err(|_| {
                PyValueError::new_err("validation_data: expected (x, y) or (x, y, lengths)")
            })?;
            if !(2..=3).contains(&parts.len()) {
                return Err(PyValueError::new_err(format!(
                    "validation_data: expected (x, y) or (x, y, lengths), got {} items",
                    parts.len()
                )));
            }
            let (val, _) = dataset(
                py,
                &parts[0],
                &parts[1],
                parts.get(2),
                kind,
                out,
                [
                    "validation_data x",
                    "validation_data y",
                    "validation_data lengths",
                ],
            )?;
            if val.shape()[1..] != shape[1..] {
                return Err(PyValueError::new_err(format!(
                    "validation_data x: expected [N, T={}, I={}], got {}",
                    shape[1],
                    shape[2],
                    shape_text(&val.shape())
                )));
            }
            val_set = Some(val);
        }
        (_, Some(f)) => {
            let (a, b) = train_set.split_validation(f).map_err(py_err)?;
            train_set = a;
            val_set = Some(b);
        }
        _ => {}
    }

    // The network and head training starts from.
    let (start, start_head, dtype) = match &model {
        Some(m) => {
            if m.model.input_size() != shape[2] {
                return Err(PyValueError::new_err(format!(
                    "model: it reads I={} features, x has I={}",
                    m.model.input_size(),
                    shape[2]
                )));
            }
            let features = m.model.num_directions() * m.model.hidden_size();
            let keep = m
                .head
                .as_ref()
                .filter(|h| !new_head && h.bias.len() == out && h.weight.len() == out * features);
            if m.head.is_some() && keep.is_none() && !new_head {
                return Err(PyValueError::new_err(format!(
                    "model: its head has {} output(s), the targets need {out}; pass \
                     new_head=True to train a new head",
                    m.head.as_ref().map_or(0, |h| h.bias.len())
                )));
            }
            let (w, b) = match keep {
                Some(h) => (h.weight.clone(), h.bias.clone()),
                None => init::dense(init, features, out, seed),
            };
            (m.model.clone(), (w, b), m.dtype)
        }
        None => {
            let Some(h) = hidden_size else {
                return Err(PyValueError::new_err(
                    "train: expected hidden_size (a new network) or model (to fine-tune)",
                ));
            };
            let direction = if bidirectional {
                Direction::Bidirectional
            } else {
                Direction::Forward
            };
            let convention = if reset_after {
                Convention::ResetAfter
            } else {
                Convention::ResetBefore
            };
            let m = init::gru_model(init, convention, direction, num_layers, shape[2], h, seed)
                .map_err(py_err)?;
            let (w, b) = init::dense(init, direction.num_directions() * h, out, seed);
            (m, (w, b), Dtype::F32)
        }
    };
    drop(model);

    // The trainer: the GPU's, else (auto) the reference's with a warning.
    let per_step = kind == HeadKind::Sequence;
    let gpu = || -> Result<Trainer, String> {
        let ctx = context()?;
        let t = GpuTrainer::new(
            &ctx,
            &start,
            &start_head.0,
            &start_head.1,
            loss,
            optimizer,
            clip,
        )
        .map_err(|e| e.to_string())?;
        Ok(Trainer::Gpu(Box::new(if per_step {
            t.per_step_head()
        } else {
            t
        })))
    };
    let cpu = || -> PyResult<Trainer> {
        let t = ReferenceTrainer::new(
            start.clone(),
            &start_head.0,
            &start_head.1,
            loss,
            optimizer,
            clip,
        )
        .map_err(py_err)?;
        Ok(Trainer::Cpu(Box::new(if per_step {
            t.per_step_head()
        } else {
            t
        })))
    };
    let gpu = match device {
        Device::Cpu => Err(String::new()),
        _ => py.detach(gpu),
    };
    let mut trainer = match (device, gpu) {
        (Device::Cpu, _) => cpu()?,
        (_, Ok(t)) => t,
        (_, Err(e)) => {
            no_gpu(py, device, &e, "training")?;
            cpu()?
        }
    };
    let on_gpu = matches!(trainer, Trainer::Gpu(_));

    let t = shape[1];
    let run = py.detach(|| -> Result<Vec<Epoch>, gru_wgpu::GruError> {
        let mut history = Vec::new();
        for epoch in 0..epochs {
            let started = Instant::now();
            let batches = train_set.batches(batch_size, epoch, seed, shuffle)?;
            let mut seen = Vec::with_capacity(batches.len());
            let mut skipped = 0;
            for b in &batches {
                let mut input = GruInput::new(&b.x, t, b.len()).with_layout(Layout::BatchMajor);
                if let Some(l) = &b.lens {
                    input = input.with_sequence_lens(l);
                }
                match trainer.step(&input, &b.targets, skip_non_finite)? {
                    Some(v) => seen.push(v),
                    None => skipped += 1,
                }
            }
            let val = match &val_set {
                Some(v) => Some(evaluate_all(&mut trainer, v, batch_size)?),
                None => None,
            };
            let e = Epoch {
                train: merge(&seen),
                val,
                seconds: started.elapsed().as_secs_f64(),
                steps: batches.len(),
                skipped,
            };
            if verbose {
                let mut line = format!(
                    "Epoch {}/{epochs}: {} steps, {:.2} s, loss {:.4}",
                    epoch + 1,
                    e.steps,
                    e.seconds,
                    e.train.loss
                );
                if loss != Loss::MeanSquaredError {
                    line.push_str(&format!(", accuracy {:.4}", e.train.accuracy()));
                }
                if let Some(v) = &e.val {
                    line.push_str(&format!(", val_loss {:.4}", v.loss));
                    if loss != Loss::MeanSquaredError {
                        line.push_str(&format!(", val_accuracy {:.4}", v.accuracy()));
                    }
                }
                eprintln!("{line}");
            }
            history.push(e);
        }
        Ok(history)
    });
    let history = run.map_err(py_err)?;
    let (trained, w, b) = py.detach(|| trainer.result(&start)).map_err(py_err)?;
    let model = Gru::build(
        py,
        trained,
        if on_gpu { Device::Gpu } else { Device::Cpu },
        dtype,
        true,
        true,
        Some(Head {
            kind,
            weight: w,
            bias: b,
        }),
    )?;
    let list = PyList::empty(py);
    for (k, e) in history.iter().enumerate() {
        let d = PyDict::new(py);
        d.set_item("epoch", k + 1)?;
        d.set_item("loss", e.train.loss)?;
        if loss != Loss::MeanSquaredError {
            d.set_item("accuracy", e.train.accuracy())?;
        }
        if let Some(v) = &e.val {
            d.set_item("val_loss", v.loss)?;
            if loss != Loss::MeanSquaredError {
                d.set_item("val_accuracy", v.accuracy())?;
            }
        }
        d.set_item("seconds", e.seconds)?;
        d.set_item("steps", e.steps)?;
        d.set_item("skipped", e.skipped)?;
        list.append(d)?;
    }
    Ok((model, list))
}
