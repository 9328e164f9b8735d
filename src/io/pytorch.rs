//! PyTorch `nn.GRU` `state_dict`s saved as `.safetensors`
//! (`safetensors.torch.save_file(model.state_dict(), path)`).
//!
//! # What is read
//! - Names `weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}`, each with a
//!   `_reverse` twin for a bidirectional GRU, optionally all under one common prefix such as
//!   `gru.` (a GRU that is the attribute `gru` of a larger module). The prefix is detected;
//!   GRU names under two different prefixes are an error naming both, unless the caller picks
//!   one.
//! - Layers `L` (layers `0..L` must all be there), directions (`_reverse` present or not),
//!   `H` (from `weight_hh_l0 [3H, H]`) and `I` (from `weight_ih_l0 [3H, I]`) are inferred;
//!   layer `k > 0` must read `D·H` features, every `weight_hh` must be `[3H, H]` and every
//!   bias `[3H]`.
//! - Biases are all present (`bias=True`) or all absent (`bias=False`).
//! - Dtypes: see [`crate::io`] (`F32`; `F64`, `F16`, `BF16` converted).
//!
//! # Other tensors
//! - Under a non-empty prefix `p`, tensors outside `p` belong to the rest of the model (a
//!   classifier head, an embedding, …): they are skipped and listed in
//!   [`PyTorchGru::ignored`]. Every tensor under `p` must be a GRU parameter: `nn.GRU` has no
//!   other parameters or buffers, so anything else there (`gru.weight_hr_l0`,
//!   `gru.weight_ih_l0_reverse2`) means the file is not what it seems, and is an error.
//! - With unprefixed names the file is the `state_dict` of an `nn.GRU` itself, which holds
//!   nothing else: any other tensor is an error naming it.
//!
//! PyTorch's gate order r, z, n is converted to z, r, h by
//! [`GruWeights::from_pytorch`]; the convention is [`Convention::ResetAfter`].
//!
//! [`Convention::ResetAfter`]: crate::Convention::ResetAfter

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::tensors::{Archive, Tensor};
use super::{bracket_shape, import_error, last_segment, list_names, read_file};
use crate::error::Result;
use crate::model::{Direction, GruModel};
use crate::weights::GruWeights;

/// An `nn.GRU` read from a `state_dict`.
#[derive(Clone, Debug, PartialEq)]
pub struct PyTorchGru {
    /// The network (convention `ResetAfter`, gate order z, r, h).
    pub model: GruModel,
    /// The common prefix of the GRU's names (`""` for an `nn.GRU`'s own `state_dict`).
    pub prefix: String,
    /// Whether the GRU has biases (`bias=True`).
    pub bias: bool,
    /// Tensors of the file outside the prefix, which were skipped (sorted).
    pub ignored: Vec<String>,
    /// A dense head on the GRU's final state, when the file has one as `gru train --out`
    /// writes it: `head.weight [out, D·H]` and `head.bias [out]` beside a prefixed GRU (an
    /// `nn.Linear` attribute `head`); both must be there with those shapes, else they stay
    /// in [`PyTorchGru::ignored`] only.
    pub head: Option<PyTorchHead>,
}

/// `nn.Linear` weights of a head: `weight [out, in]`, `bias [out]`.
#[derive(Clone, Debug, PartialEq)]
pub struct PyTorchHead {
    /// `[out, in]`, row-major.
    pub weight: Vec<f32>,
    /// `[out]`.
    pub bias: Vec<f32>,
}

/// The four parameter kinds of an `nn.GRU` layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    WeightIh,
    WeightHh,
    BiasIh,
    BiasHh,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::WeightIh, Kind::WeightHh, Kind::BiasIh, Kind::BiasHh];

    fn stem(self) -> &'static str {
        match self {
            Kind::WeightIh => "weight_ih",
            Kind::WeightHh => "weight_hh",
            Kind::BiasIh => "bias_ih",
            Kind::BiasHh => "bias_hh",
        }
    }
}

/// `weight_ih_l3_reverse` → (WeightIh, 3, true); `None` for anything else.
pub(crate) fn parse_param_name(segment: &str) -> Option<(Kind, usize, bool)> {
    for kind in Kind::ALL {
        let Some(rest) = segment
            .strip_prefix(kind.stem())
            .and_then(|r| r.strip_prefix("_l"))
        else {
            continue;
        };
        let (digits, reverse) = match rest.strip_suffix("_reverse") {
            Some(d) => (d, true),
            None => (rest, false),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let layer: usize = digits.parse().ok()?;
        // Canonical spelling only (`l1`, not `l01`).
        if layer.to_string() != digits {
            return None;
        }
        return Some((kind, layer, reverse));
    }
    None
}

fn param_name(prefix: &str, kind: Kind, layer: usize, reverse: bool) -> String {
    format!(
        "{prefix}{}_l{layer}{}",
        kind.stem(),
        if reverse { "_reverse" } else { "" }
    )
}

/// The prefix of a GRU parameter name: everything up to and including its last `.`.
fn prefix_of(name: &str) -> &str {
    &name[..name.len() - last_segment(name).len()]
}

/// Reads an `nn.GRU` `state_dict` from a `.safetensors` file, detecting the prefix.
pub fn load(path: &Path) -> Result<PyTorchGru> {
    let (bytes, name) = read_file(path)?;
    parse(&bytes, &name, None)
}

/// Reads the GRU whose names start with `prefix` (e.g. `"encoder.gru."`, or `""` for
/// unprefixed names) from a `.safetensors` file that may hold several.
pub fn load_with_prefix(path: &Path, prefix: &str) -> Result<PyTorchGru> {
    let (bytes, name) = read_file(path)?;
    parse(&bytes, &name, Some(prefix))
}

/// Reads an `nn.GRU` `state_dict` from the bytes of a `.safetensors` file; `path` is used in
/// errors, `prefix` picks one GRU (`None`: detect the only one).
pub fn parse(bytes: &[u8], path: &str, prefix: Option<&str>) -> Result<PyTorchGru> {
    let mut archive = Archive::safetensors(bytes, path)?;
    let names = archive.names();

    // The prefixes under which GRU parameters appear.
    let prefixes: BTreeSet<&str> = names
        .iter()
        .filter(|n| parse_param_name(last_segment(n)).is_some())
        .map(|n| prefix_of(n))
        .collect();
    let shown = |set: &BTreeSet<&str>| {
        set.iter()
            .map(|p| format!("'{p}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let prefix: String = match prefix {
        Some(p) => {
            if !prefixes.contains(p) {
                return Err(import_error(
                    path,
                    format!(
                        "no nn.GRU parameters under the prefix '{p}' (expected {}); GRU \
                         parameters were found under {}",
                        param_name(p, Kind::WeightIh, 0, false),
                        if prefixes.is_empty() {
                            "no prefix".to_string()
                        } else {
                            format!("the prefix(es) {}", shown(&prefixes))
                        }
                    ),
                ));
            }
            p.to_string()
        }
        None => match prefixes.len() {
            0 => {
                return Err(import_error(
                    path,
                    format!(
                        "no nn.GRU parameters: expected names such as weight_ih_l0, \
                         weight_hh_l0, bias_ih_l0, bias_hh_l0 (optionally under a prefix such \
                         as 'gru.'), got {}",
                        list_names(&names)
                    ),
                ))
            }
            1 => prefixes
                .iter()
                .next()
                .copied()
                .unwrap_or_default()
                .to_string(),
            n => {
                return Err(import_error(
                    path,
                    format!(
                        "GRU parameters under {n} different prefixes ({}); expected one nn.GRU \
                         under one common prefix: pick one (CLI: --prefix)",
                        shown(&prefixes)
                    ),
                ))
            }
        },
    };

    // Sort every tensor: a parameter of this GRU, skipped, or an error.
    let mut params: BTreeMap<(usize, bool, Kind), String> = BTreeMap::new();
    let mut ignored = Vec::new();
    for name in &names {
        let Some(rest) = name.strip_prefix(prefix.as_str()) else {
            ignored.push(name.clone());
            continue;
        };
        match parse_param_name(rest) {
            Some((kind, layer, reverse)) if !rest.contains('.') => {
                params.insert((layer, reverse, kind), name.clone());
            }
            _ => {
                let why = if prefix.is_empty() {
                    "with unprefixed names the file must be an nn.GRU's own state_dict, which \
                     holds only weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} (and \
                     their _reverse twins); save the GRU's state_dict alone, or keep the whole \
                     model's names so that the GRU's prefix separates them"
                        .to_string()
                } else {
                    format!(
                        "every tensor under the GRU's prefix '{prefix}' must be one of its \
                         parameters: weight_ih_l{{k}}, weight_hh_l{{k}}, bias_ih_l{{k}}, \
                         bias_hh_l{{k}} (and their _reverse twins)"
                    )
                };
                return Err(import_error(
                    path,
                    format!("unexpected tensor '{name}': {why}"),
                ));
            }
        }
    }

    // Layers, directions and biases.
    let num_layers = params
        .keys()
        .map(|&(l, _, _)| l)
        .max()
        .unwrap_or(0)
        .checked_add(1)
        .ok_or_else(|| import_error(path, "a layer index does not fit in usize".to_string()))?;
    let bidirectional = params.keys().any(|&(_, r, _)| r);
    let direction = if bidirectional {
        Direction::Bidirectional
    } else {
        Direction::Forward
    };
    let dirs: &[bool] = if bidirectional {
        &[false, true]
    } else {
        &[false]
    };
    let bias_seen = params
        .iter()
        .find(|((_, _, k), _)| matches!(k, Kind::BiasIh | Kind::BiasHh))
        .map(|(_, n)| n.clone());
    for layer in 0..num_layers {
        for &reverse in dirs {
            for kind in Kind::ALL {
                if params.contains_key(&(layer, reverse, kind)) {
                    continue;
                }
                let why = match (kind, &bias_seen) {
                    (Kind::BiasIh | Kind::BiasHh, None) => continue, // bias=False
                    (Kind::BiasIh | Kind::BiasHh, Some(seen)) => format!(
                        "biases are all present (bias=True) or all absent (bias=False), and \
                         '{seen}' is present"
                    ),
                    _ if reverse => "a bidirectional GRU (some _reverse tensor is present) has \
                                     both directions in every layer"
                        .to_string(),
                    _ => format!(
                        "the GRU has {num_layers} layer(s) (the deepest tensor is of layer {}), \
                         and every layer needs weight_ih and weight_hh",
                        num_layers - 1
                    ),
                };
                return Err(import_error(
                    path,
                    format!(
                        "missing tensor '{}': {why}",
                        param_name(&prefix, kind, layer, reverse)
                    ),
                ));
            }
        }
    }
    let has_bias = bias_seen.is_some();

    // H from weight_hh_l0 [3H, H], I from weight_ih_l0 [3H, I].
    let mut take = |layer: usize, reverse: bool, kind: Kind| -> Result<(String, Tensor)> {
        let name = param_name(&prefix, kind, layer, reverse);
        let tensor = archive.load(&name, path)?;
        Ok((name, tensor))
    };
    let (hh_name, hh0) = take(0, false, Kind::WeightHh)?;
    let hidden = match *hh0.shape.as_slice() {
        [rows, h] if h > 0 && h.checked_mul(3) == Some(rows) => h,
        [rows, h] if h > 0 => {
            let hint = if h.checked_mul(4) == Some(rows) {
                " (4H rows: is this an nn.LSTM?)"
            } else if rows == h {
                " (H rows: is this an nn.RNN?)"
            } else {
                ""
            };
            return Err(import_error(
                path,
                format!(
                    "tensor '{hh_name}' has shape {}, expected [3H, H] = [{}, {h}] (an nn.GRU \
                     stacks its three gates' rows){hint}",
                    bracket_shape(&hh0.shape),
                    h.checked_mul(3)
                        .map_or_else(|| "3H".to_string(), |v| v.to_string())
                ),
            ));
        }
        _ => {
            return Err(import_error(
                path,
                format!(
                    "tensor '{hh_name}' has shape {}, expected [3H, H] with H ≥ 1",
                    bracket_shape(&hh0.shape)
                ),
            ))
        }
    };
    let h3 = 3 * hidden;
    let (ih_name, ih0) = take(0, false, Kind::WeightIh)?;
    let input_size = match *ih0.shape.as_slice() {
        [rows, i] if rows == h3 && i > 0 => i,
        _ => {
            return Err(import_error(
                path,
                format!(
                    "tensor '{ih_name}' has shape {}, expected [3H, I] = [{h3}, I] with I ≥ 1 \
                     (H = {hidden} from '{hh_name}')",
                    bracket_shape(&ih0.shape)
                ),
            ))
        }
    };

    let d = dirs.len();
    let mut layers = Vec::with_capacity(num_layers);
    for layer in 0..num_layers {
        let mut per_dir = Vec::with_capacity(d);
        for &reverse in dirs {
            let (ih_name, ih) = take(layer, reverse, Kind::WeightIh)?;
            let (hh_name_k, hh) = take(layer, reverse, Kind::WeightHh)?;
            let in_size = if layer == 0 { input_size } else { d * hidden };
            if ih.shape != [h3, in_size] {
                let why = if layer == 0 {
                    format!(
                        "[3H, I] = [{h3}, {in_size}] (I from '{}')",
                        param_name(&prefix, Kind::WeightIh, 0, false)
                    )
                } else {
                    format!(
                        "[3H, D·H] = [{h3}, {in_size}] (layer {layer} reads the previous layer's \
                         {d} direction(s) × H)"
                    )
                };
                return Err(import_error(
                    path,
                    format!(
                        "tensor '{ih_name}' has shape {}, expected {why}, with H = {hidden} from \
                         '{hh_name}'",
                        bracket_shape(&ih.shape)
                    ),
                ));
            }
            if hh.shape != [h3, hidden] {
                return Err(import_error(
                    path,
                    format!(
                        "tensor '{hh_name_k}' has shape {}, expected [3H, H] = [{h3}, {hidden}] \
                         (H from '{hh_name}')",
                        bracket_shape(&hh.shape)
                    ),
                ));
            }
            let mut biases = Vec::with_capacity(2);
            if has_bias {
                for kind in [Kind::BiasIh, Kind::BiasHh] {
                    let (b_name, b) = take(layer, reverse, kind)?;
                    if b.shape != [h3] {
                        return Err(import_error(
                            path,
                            format!(
                                "tensor '{b_name}' has shape {}, expected [3H] = [{h3}] (H = \
                                 {hidden} from '{hh_name}')",
                                bracket_shape(&b.shape)
                            ),
                        ));
                    }
                    biases.push(b.data);
                }
            }
            let weights = GruWeights::from_pytorch(
                in_size,
                hidden,
                &ih.data,
                &hh.data,
                biases.first().map(Vec::as_slice),
                biases.get(1).map(Vec::as_slice),
            )
            .map_err(|e| import_error(path, format!("layer {layer}: {e}")))?;
            per_dir.push(weights);
        }
        layers.push(per_dir);
    }
    let model =
        GruModel::new(direction, layers, None).map_err(|e| import_error(path, e.to_string()))?;
    let features = model.num_directions() * model.hidden_size();
    let mut head = None;
    let has = |n: &str| ignored.iter().any(|i| i == n);
    if !prefix.is_empty() && has("head.weight") && has("head.bias") {
        let w = archive.load("head.weight", path)?;
        let b = archive.load("head.bias", path)?;
        if w.shape.len() == 2 && w.shape[1] == features && b.shape == [w.shape[0]] {
            head = Some(PyTorchHead {
                weight: w.data,
                bias: b.data,
            });
        }
    }
    Ok(PyTorchGru {
        model,
        prefix,
        bias: has_bias,
        ignored,
        head,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names() {
        assert_eq!(
            parse_param_name("weight_ih_l0"),
            Some((Kind::WeightIh, 0, false))
        );
        assert_eq!(
            parse_param_name("bias_hh_l12_reverse"),
            Some((Kind::BiasHh, 12, true))
        );
        for bad in [
            "weight_ih_l",
            "weight_ih_l01",
            "weight_ih_lx",
            "weight_hr_l0",
            "weight_ih_l0_reverse2",
            "weight_ih_l0_",
            "kernel",
            "weight_ih_l99999999999999999999999",
        ] {
            assert_eq!(parse_param_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix_of("gru.weight_ih_l0"), "gru.");
        assert_eq!(prefix_of("a.b.weight_ih_l0"), "a.b.");
        assert_eq!(prefix_of("weight_ih_l0"), "");
    }
}
