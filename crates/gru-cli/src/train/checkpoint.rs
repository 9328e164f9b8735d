//! `gru train --checkpoint-every N` and `--resume`: a checkpoint is a `.safetensors` file
//! holding everything training needs to go on exactly where it stopped: the parameters
//! (`param.K`, float64, in [`TrainerState`]'s order), the optimizer's state (`optimizer.K`,
//! float64), and in its metadata the network's shape, the epochs done, the optimizer's step
//! count, the steps skipped and the metrics history (for `--plot`). It is written through a
//! temporary file renamed into place, so an interrupted run leaves the last checkpoint whole.
//! The batches of epoch `e` depend only on `(--seed, e)`, so a resumed run sees the batches an
//! uninterrupted one would have.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use gru_wgpu::train::{model_from_parameters, TrainerState};
use gru_wgpu::{Convention, Direction, GruModel};

use super::plot::EpochRecord;
use crate::{write, CliResult, Failure};

/// The metadata key naming the format.
const FORMAT: &str = "gru-train-checkpoint";

/// What a checkpoint holds.
pub(super) struct Checkpoint {
    pub(super) state: TrainerState,
    /// The network: its shape is saved (convention, direction, sizes, clip), its weights are
    /// the state's parameters.
    pub(super) model: GruModel,
    /// Epochs done.
    pub(super) epochs: u64,
    pub(super) global_step: u64,
    pub(super) skipped: u64,
    pub(super) history: Vec<EpochRecord>,
}

fn convention_name(c: Convention) -> &'static str {
    match c {
        Convention::ResetAfter => "reset-after",
        Convention::ResetBefore => "reset-before",
    }
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Forward => "forward",
        Direction::Reverse => "reverse",
        Direction::Bidirectional => "bidirectional",
    }
}

/// Writes `c` to `path` (atomically).
pub(super) fn save(path: &Path, c: &Checkpoint) -> CliResult {
    let failed = |e: &dyn std::fmt::Display| {
        Failure::Runtime(format!("--checkpoint {}: encoding: {e}", path.display()))
    };
    let m = &c.model;
    let mut meta = HashMap::new();
    meta.insert(FORMAT.to_string(), "1".to_string());
    meta.insert("convention".into(), convention_name(m.convention()).into());
    meta.insert("direction".into(), direction_name(m.direction()).into());
    meta.insert("layers".into(), m.num_layers().to_string());
    meta.insert("input_size".into(), m.input_size().to_string());
    meta.insert("hidden_size".into(), m.hidden_size().to_string());
    if let Some(clip) = m.clip() {
        meta.insert("clip".into(), clip.to_string());
    }
    meta.insert("epochs".into(), c.epochs.to_string());
    meta.insert("steps".into(), c.state.steps.to_string());
    meta.insert("global_step".into(), c.global_step.to_string());
    meta.insert("skipped".into(), c.skipped.to_string());
    let history: Vec<[Option<f64>; 4]> = c
        .history
        .iter()
        .map(|r| {
            [
                Some(r.loss),
                Some(r.accuracy),
                r.val.map(|v| v.0),
                r.val.map(|v| v.1),
            ]
        })
        .collect();
    meta.insert(
        "history".into(),
        serde_json::to_string(&history).map_err(|e| failed(&e))?,
    );
    let bytes: Vec<(String, Vec<u8>, usize)> = c
        .state
        .params
        .iter()
        .enumerate()
        .map(|(k, p)| (format!("param.{k}"), p))
        .chain(
            c.state
                .optimizer
                .iter()
                .enumerate()
                .map(|(k, s)| (format!("optimizer.{k}"), s)),
        )
        .map(|(name, v)| {
            let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            (name, data, v.len())
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, data, n)| {
            TensorView::new(Dtype::F64, vec![*n], data)
                .map(|v| (name.as_str(), v))
                .map_err(|e| failed(&e))
        })
        .collect::<CliResult<Vec<_>>>()?;
    // safetensors takes its own map type (hashbrown's without std): collected into it.
    let encoded =
        safetensors::serialize(views, Some(meta.into_iter().collect())).map_err(|e| failed(&e))?;
    write::write_files(&[(path, encoded)])
}

/// Reads a checkpoint written by [`save`].
pub(super) fn load(path: &Path) -> CliResult<Checkpoint> {
    let bad = |why: String| {
        Failure::Runtime(format!(
            "--resume: {} is not a gru train checkpoint: {why}",
            path.display()
        ))
    };
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::Runtime(format!(
            "--resume: cannot read the checkpoint {} ({e}); without one, train without \
             --resume",
            path.display()
        ))
    })?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let meta = header
        .metadata()
        .clone()
        .ok_or_else(|| bad("no metadata".into()))?;
    if meta.get(FORMAT).map(String::as_str) != Some("1") {
        return Err(bad(format!("no '{FORMAT}' entry")));
    }
    let text = |key: &str| {
        meta.get(key)
            .cloned()
            .ok_or_else(|| bad(format!("no '{key}' entry")))
    };
    let number = |key: &str| -> CliResult<u64> {
        text(key)?
            .parse()
            .map_err(|_| bad(format!("'{key}' is not a number")))
    };
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let read = |prefix: &str| -> CliResult<Vec<Vec<f64>>> {
        let mut out = Vec::new();
        while let Ok(view) = tensors.tensor(&format!("{prefix}.{}", out.len())) {
            if view.dtype() != Dtype::F64 {
                return Err(bad(format!("{prefix}.{} is not F64", out.len())));
            }
            out.push(
                view.data()
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            );
        }
        Ok(out)
    };
    let params = read("param")?;
    let optimizer = read("optimizer")?;
    let convention = match text("convention")?.as_str() {
        "reset-after" => Convention::ResetAfter,
        "reset-before" => Convention::ResetBefore,
        other => return Err(bad(format!("convention '{other}'"))),
    };
    let direction = match text("direction")?.as_str() {
        "forward" => Direction::Forward,
        "reverse" => Direction::Reverse,
        "bidirectional" => Direction::Bidirectional,
        other => return Err(bad(format!("direction '{other}'"))),
    };
    let (layers, i, h) = (
        number("layers")? as usize,
        number("input_size")? as usize,
        number("hidden_size")? as usize,
    );
    let clip = match meta.get("clip") {
        Some(c) => Some(c.parse::<f32>().map_err(|_| bad("clip".into()))?),
        None => None,
    };
    let nd = direction.num_directions();
    if params.len() != 3 * layers * nd + 2 {
        return Err(bad(format!(
            "{} parameter tensors for {layers} layer(s) of {nd} direction(s)",
            params.len()
        )));
    }
    let f32s: Vec<Vec<f32>> = params
        .iter()
        .map(|v| v.iter().map(|&x| x as f32).collect())
        .collect();
    let model = model_from_parameters(convention, direction, clip, i, h, &f32s)
        .map_err(|e| bad(e.to_string()))?;
    let history: Vec<[Option<f64>; 4]> =
        serde_json::from_str(&text("history")?).map_err(|e| bad(format!("history: {e}")))?;
    let history = history
        .into_iter()
        .map(|[l, a, vl, va]| EpochRecord {
            loss: l.unwrap_or(f64::NAN),
            accuracy: a.unwrap_or(f64::NAN),
            val: vl.zip(va),
        })
        .collect();
    Ok(Checkpoint {
        state: TrainerState {
            params,
            optimizer,
            steps: number("steps")?,
        },
        model,
        epochs: number("epochs")?,
        global_step: number("global_step")?,
        skipped: number("skipped")?,
        history,
    })
}
