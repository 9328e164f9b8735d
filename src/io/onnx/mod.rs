//! ONNX models whose graph is one `GRU` node.
//!
//! The file is decoded with [`prost`](https://docs.rs/prost) into ONNX's own messages
//! ([`proto`]: its `onnx.proto3`, ONNX v1.16, IR version 10, compiled once by prost-build and
//! committed with the schema; no `protoc` or build script runs at build time). prost's decoder
//! is bounded by the file's length (a message whose length runs past the end is an error) and
//! by its recursion limit of 100, which counts nested messages and skipped unknown groups
//! alike, so a truncated, corrupted or hostile file is an error, never a panic or a stack
//! overflow.
//!
//! # What is accepted
//! - Exactly one node, of type `GRU` (domain `""` or `ai.onnx`). A graph with no GRU node,
//!   with several (PyTorch's export of a multi-layer `nn.GRU` has one per layer, glued by
//!   `Squeeze`, `Shape`, … nodes), or with any other node besides its GRU is refused with the
//!   counts and op types: only the GRU itself would run here, so anything else in the graph
//!   would be silently dropped.
//! - Node inputs `X` (a graph input), `W`, `R` and optional `B` (initializers, stored inline
//!   as `FLOAT`; `DOUBLE`, `FLOAT16` and `BFLOAT16` are converted), optional `sequence_lens`
//!   and `initial_h` (graph inputs; which of them the graph declares is reported in
//!   [`OnnxGru::sequence_lens`] and [`OnnxGru::initial_h`]).
//! - Every GRU attribute is honoured or refused by name:
//!
//! | attribute | handling |
//! |---|---|
//! | `hidden_size` | checked against `R[D, 3H, H]` (and `W`, `B`); optional |
//! | `direction` | `forward`, `reverse`, `bidirectional`; checked against the `D` of `W`, `R`, `B` |
//! | `linear_before_reset` | 0 → [`Convention::ResetBefore`](crate::weights::Convention::ResetBefore), 1 → [`Convention::ResetAfter`](crate::weights::Convention::ResetAfter) |
//! | `layout` | 0 → [`Layout::SequenceMajor`], 1 → [`Layout::BatchMajor`] |
//! | `clip` | a positive threshold, applied as ONNX specifies |
//! | `activations` | only the defaults `Sigmoid`, `Tanh` for each direction (any case); anything else is refused naming it |
//! | `activation_alpha`, `activation_beta` | accepted and unused with the default activations (Sigmoid and Tanh take no parameter, as in onnxruntime); with other activations the activation is refused first |
//! | anything else | refused by name |
//!
//! Tensors stored in external files, sparse initializers for `W`/`R`/`B`, and initializers
//! for `X`, `sequence_lens` or `initial_h` (constants instead of inputs) are refused by name.

mod attributes;
pub mod proto;
mod tensor;
#[cfg(test)]
mod tests;
mod write;

pub use write::encode;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use prost::Message;

use self::attributes::Attributes;
use self::proto::{ModelProto, NodeProto, TensorProto};
use self::tensor::tensor_f32;
use super::{bracket_shape, import_error, read_file};
use crate::error::Result;
use crate::input::Layout;
use crate::model::GruModel;
use crate::weights::GruWeights;

/// A GRU read from an ONNX model.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxGru {
    /// The network (one layer, the node's direction, convention and clip).
    pub model: GruModel,
    /// The `layout` attribute: `X[T, B, I]` (0) or `X[B, T, I]` (1), and `Y`, `Y_h` to match.
    pub layout: Layout,
    /// The node's name (may be empty).
    pub node_name: String,
    /// The graph input the node reads as `X`.
    pub x: String,
    /// The graph input the node reads as `sequence_lens`, when it has one.
    pub sequence_lens: Option<String>,
    /// The graph input the node reads as `initial_h`, when it has one.
    pub initial_h: Option<String>,
    /// The node's output names `Y` and `Y_h` (`None` when omitted).
    pub outputs: [Option<String>; 2],
    /// The attributes set in the file, in the file's order, each as `(name, value)` written
    /// as ONNX prints them (`"bidirectional"`, `[Sigmoid, Tanh]`, `2.5`).
    pub attributes: Vec<(String, String)>,
    /// The model's `ir_version`.
    pub ir_version: i64,
    /// The version of the default (`ai.onnx`) operator set, when the model imports it.
    pub opset: Option<i64>,
    /// `producer_name producer_version`, e.g. `pytorch 2.15.0` (may be empty).
    pub producer: String,
}

/// Reads a `.onnx` file (see the module docs).
pub fn load(path: &Path) -> Result<OnnxGru> {
    let (bytes, name) = read_file(path)?;
    parse(&bytes, &name)
}

/// [`load`] from the bytes of a file; `path` is used in errors.
pub fn parse(bytes: &[u8], path: &str) -> Result<OnnxGru> {
    let err = |m: String| import_error(path, m);
    if bytes.is_empty() {
        return Err(err("empty file; expected an ONNX model".into()));
    }
    let invalid = |why: String| {
        err(format!(
            "not a valid ONNX model: protobuf decoding failed ({why}); the file may be truncated \
             or not an ONNX file"
        ))
    };
    let model = ModelProto::decode(bytes).map_err(|e| invalid(e.to_string()))?;
    let Some(graph) = model.graph.as_ref() else {
        return Err(err(
            "the ONNX model has no graph (is this an ONNX file?)".into()
        ));
    };

    let is_gru = |n: &NodeProto| n.op_type == "GRU" && matches!(n.domain.as_str(), "" | "ai.onnx");
    let grus: Vec<&NodeProto> = graph.node.iter().filter(|n| is_gru(n)).collect();
    let op_types = |nodes: &mut dyn Iterator<Item = &NodeProto>| {
        let mut ops: Vec<&str> = nodes.map(|n| n.op_type.as_str()).collect();
        ops.sort_unstable();
        ops.dedup();
        ops.join(", ")
    };
    let others = graph.node.len() - grus.len();
    if grus.len() != 1 {
        let names: Vec<String> = grus.iter().map(|n| format!("'{}'", n.name)).collect();
        let detail = match (grus.len(), others) {
            (0, 0) => " (the graph has no node at all)".to_string(),
            (0, _) => format!(
                " (its {others} node(s) are {})",
                op_types(&mut graph.node.iter())
            ),
            (_, 0) => format!(" ({})", names.join(", ")),
            (_, _) => format!(
                " ({}), besides {others} other node(s) ({})",
                names.join(", "),
                op_types(&mut graph.node.iter().filter(|n| !is_gru(n)))
            ),
        };
        return Err(err(format!(
            "the graph has {} GRU nodes{detail}; only graphs with exactly one GRU node are \
             supported (a multi-layer GRU exported as one node per layer can be imported from \
             its PyTorch state_dict instead)",
            grus.len()
        )));
    }
    let node = grus[0];
    if others > 0 {
        return Err(err(format!(
            "besides its GRU node '{}', the graph has {others} other node(s) ({}); only a graph \
             whose one node is the GRU is supported, since nothing else would be run",
            node.name,
            op_types(&mut graph.node.iter().filter(|n| !is_gru(n)))
        )));
    }

    let initializers: HashMap<&str, &TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let sparse: HashSet<&str> = graph
        .sparse_initializer
        .iter()
        .filter_map(|s| s.values.as_ref().map(|v| v.name.as_str()))
        .collect();
    let graph_inputs: HashSet<&str> = graph
        .input
        .iter()
        .map(|v| v.name.as_str())
        .filter(|n| !initializers.contains_key(n))
        .collect();

    // Node inputs: X, W, R, B, sequence_lens, initial_h ("" = omitted).
    const ROLES: [&str; 6] = ["X", "W", "R", "B", "sequence_lens", "initial_h"];
    if node.input.len() > ROLES.len() {
        return Err(err(format!(
            "GRU node '{}' has {} inputs, expected at most 6 (X, W, R, B, sequence_lens, \
             initial_h)",
            node.name,
            node.input.len()
        )));
    }
    let input = |k: usize| {
        node.input
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    };
    let as_graph_input = |k: usize| -> Result<Option<String>> {
        let Some(name) = input(k) else {
            return Ok(None);
        };
        let role = ROLES[k];
        if initializers.contains_key(name) {
            return Err(err(format!(
                "GRU input {role} ('{name}') is a constant initializer; this importer supports \
                 {role} only as a graph input, fed at run time"
            )));
        }
        if !graph_inputs.contains(name) {
            return Err(err(format!(
                "GRU input {role} ('{name}') is neither a graph input nor an initializer"
            )));
        }
        Ok(Some(name.to_string()))
    };
    let as_initializer = |k: usize| -> Result<Option<(String, &TensorProto)>> {
        let Some(name) = input(k) else {
            return Ok(None);
        };
        let role = ROLES[k];
        match initializers.get(name) {
            Some(t) => Ok(Some((name.to_string(), *t))),
            None if sparse.contains(name) => Err(err(format!(
                "GRU input {role} ('{name}') is a sparse initializer; expected a dense \
                 initializer"
            ))),
            None if graph_inputs.contains(name) => Err(err(format!(
                "GRU input {role} ('{name}') is a graph input; this importer needs {role} as an \
                 initializer stored in the model"
            ))),
            None => Err(err(format!(
                "GRU input {role} ('{name}') is neither an initializer nor a graph input"
            ))),
        }
    };
    let Some(x) = as_graph_input(0)? else {
        return Err(err(format!("GRU node '{}' has no input X", node.name)));
    };
    let Some((w_name, w_proto)) = as_initializer(1)? else {
        return Err(err(format!("GRU node '{}' has no input W", node.name)));
    };
    let Some((r_name, r_proto)) = as_initializer(2)? else {
        return Err(err(format!("GRU node '{}' has no input R", node.name)));
    };
    let b_init = as_initializer(3)?;
    let sequence_lens = as_graph_input(4)?;
    let initial_h = as_graph_input(5)?;

    let attrs = Attributes::read(node, path)?;

    // Shapes: W[D, 3H, I], R[D, 3H, H], B[D, 6H].
    let (w_shape, w) = tensor_f32(w_proto, "W", &w_name, path)?;
    let (r_shape, r) = tensor_f32(r_proto, "R", &r_name, path)?;
    let d = attrs.direction.num_directions();
    let (rd, h3, hidden) = match *r_shape.as_slice() {
        [rd, h3, h] if h > 0 && h.checked_mul(3) == Some(h3) => (rd, h3, h),
        _ => {
            return Err(err(format!(
                "R ('{r_name}') has shape {}, expected [num_directions, 3*hidden_size, \
                 hidden_size] with hidden_size ≥ 1",
                bracket_shape(&r_shape)
            )))
        }
    };
    if rd != d {
        return Err(err(format!(
            "R ('{r_name}') has num_directions {rd}, but direction={:?} needs {d}",
            attrs.direction.onnx_name()
        )));
    }
    if let Some(hs) = attrs.hidden_size {
        if hs != hidden as i64 {
            return Err(err(format!(
                "attribute hidden_size is {hs}, but R ('{r_name}') of shape {} has hidden_size \
                 {hidden}",
                bracket_shape(&r_shape)
            )));
        }
    }
    let input_size = match *w_shape.as_slice() {
        [wd, wh3, i] if wd == d && wh3 == h3 && i > 0 => i,
        _ => {
            return Err(err(format!(
                "W ('{w_name}') has shape {}, expected [num_directions, 3*hidden_size, \
                 input_size] = [{d}, {h3}, input_size] with input_size ≥ 1 (num_directions from \
                 direction={:?}, hidden_size {hidden} from R)",
                bracket_shape(&w_shape),
                attrs.direction.onnx_name()
            )))
        }
    };
    let b = match &b_init {
        Some((b_name, b_proto)) => {
            let (b_shape, b) = tensor_f32(b_proto, "B", b_name, path)?;
            if b_shape != [d, 2 * h3] {
                return Err(err(format!(
                    "B ('{b_name}') has shape {}, expected [num_directions, 6*hidden_size] = \
                     [{d}, {}]",
                    bracket_shape(&b_shape),
                    2 * h3
                )));
            }
            Some(b)
        }
        None => None,
    };

    let (wn, rn, bn) = (h3 * input_size, h3 * hidden, 2 * h3);
    let mut layer = Vec::with_capacity(d);
    for dir in 0..d {
        let weights = GruWeights::new(
            attrs.convention,
            input_size,
            hidden,
            w[dir * wn..(dir + 1) * wn].to_vec(),
            r[dir * rn..(dir + 1) * rn].to_vec(),
            b.as_ref().map(|b| b[dir * bn..(dir + 1) * bn].to_vec()),
        )
        .map_err(|e| err(e.to_string()))?;
        layer.push(weights);
    }
    let model_out =
        GruModel::new(attrs.direction, vec![layer], attrs.clip).map_err(|e| err(e.to_string()))?;

    if node.output.len() > 2 {
        return Err(err(format!(
            "GRU node '{}' has {} outputs, expected at most 2 (Y, Y_h)",
            node.name,
            node.output.len()
        )));
    }
    let output = |k: usize| node.output.get(k).filter(|s| !s.is_empty()).cloned();
    let opset = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_str(), "" | "ai.onnx"))
        .map(|o| o.version);
    let producer = format!("{} {}", model.producer_name, model.producer_version)
        .trim()
        .to_string();
    Ok(OnnxGru {
        model: model_out,
        layout: attrs.layout,
        node_name: node.name.clone(),
        x,
        sequence_lens,
        initial_h,
        outputs: [output(0), output(1)],
        attributes: attrs.shown,
        ir_version: model.ir_version,
        opset,
        producer,
    })
}
