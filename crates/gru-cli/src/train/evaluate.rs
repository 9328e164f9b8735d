//! `gru evaluate` and `gru predict`: a model file with a dense head, its forward on X.

use gru_wgpu::data::Dataset;
use gru_wgpu::io::{self as gio, ImportOptions};
use gru_wgpu::loss::Loss;
use gru_wgpu::npy;
use gru_wgpu::optim::{Clip, Optimizer};

use super::data::{load_data, read_numbers, sequence_shape};
use super::engine::{self, evaluate_all, in_batches, Engine, Start};
use super::{imported_head, EvaluateFlags, HeadArg, ModelDataFlags, PredictFlags};
use crate::{write, CliResult, Failure};

/// The model file's network and head as a trainer (for its forward), and the loss its head
/// takes (`--head`, else sigmoid for one output and softmax for more).
fn load_model(f: &ModelDataFlags) -> CliResult<(Engine, HeadArg, usize, String)> {
    let options = ImportOptions {
        keras_reset_after: f.keras_reset_after,
        pytorch_prefix: f.prefix.clone(),
    };
    let imported = gio::load(&f.model, &options)?;
    let head = imported_head(&imported);
    let Some((weight, bias)) = head else {
        return Err(Failure::Runtime(format!(
            "--model {}: the file has no dense head (Keras: dense_kernel and dense_bias; \
             PyTorch: head.weight and head.bias beside a prefixed GRU, as 'gru train --out' \
             writes them); an ONNX GRU node has none",
            f.model.display()
        )));
    };
    let out = bias.len();
    let head = f.head.unwrap_or(if out == 1 {
        HeadArg::Sigmoid
    } else {
        HeadArg::Softmax
    });
    let loss = head.loss();
    let start = Start {
        model: imported.model().clone(),
        weight,
        bias,
    };
    // The optimizer is never stepped: evaluation and prediction run the forward only.
    let per_step = head.per_step();
    let (engine, place) = engine::new_engine(
        f.device,
        &start,
        loss,
        per_step,
        Optimizer::sgd(1e-3),
        Clip::None,
    )?;
    Ok((engine, head, out, place))
}

/// Runs `gru evaluate`.
pub(crate) fn evaluate(f: EvaluateFlags) -> CliResult {
    let (mut engine, head, out, place) = load_model(&f.common)?;
    let loss = head.loss();
    let (data, _) = load_data(
        &f.common.x,
        &f.labels,
        f.common.lens.as_deref(),
        loss,
        head.per_step(),
        out,
        ["--x", "--labels", "--lens"],
    )?;
    let v = evaluate_all(&mut engine, &data.data, f.common.batch_size as usize)?;
    let mut line = format!("loss: {:.4}", v.loss);
    if loss != Loss::MeanSquaredError {
        line.push_str(&format!(" - accuracy: {:.4}", v.accuracy()));
    }
    let what = if head.per_step() {
        "counted steps"
    } else {
        "sequences"
    };
    println!("{line} ({} {what}, on {place})", v.count);
    Ok(())
}

/// Runs `gru predict`.
pub(crate) fn predict(f: PredictFlags) -> CliResult {
    let (mut engine, head, out, _) = load_model(&f.common)?;
    let (xs, xv) = read_numbers(&f.common.x, "--x")?;
    let shape = sequence_shape(&xs, "--x", &f.common.x)?;
    // Placeholder targets (prediction reads none): one row per entry, or per step.
    let rows = if head.per_step() { shape[1] } else { 1 };
    let width = rows
        * if head.loss() == Loss::MeanSquaredError {
            out
        } else {
            1
        };
    let zeros = vec![0.0; shape[0] * width];
    let lens = match &f.common.lens {
        Some(p) => Some(
            read_numbers(p, "--lens")?
                .1
                .iter()
                .map(|&v| v as i64)
                .collect(),
        ),
        None => None,
    };
    let x32: Vec<f32> = xv.iter().map(|&v| v as f32).collect();
    let data = Dataset::new(x32, shape, zeros, width, lens)?;
    let parts = in_batches(&data, f.common.batch_size as usize, |_, input| {
        engine.predict(input)
    })?;
    let values: Vec<f32> = parts.concat();
    let out_shape = if head.per_step() {
        vec![shape[0], shape[1], out]
    } else {
        vec![shape[0], out]
    };
    let bytes = npy::encode_f32(&out_shape, &values)?;
    write::write_files(&[(f.out.as_path(), bytes)])?;
    Ok(())
}
