//! ONNX models whose graph is one `GRU` node.
//!
//! The file is decoded with [`onnx-protobuf`](https://docs.rs/onnx-protobuf): ONNX's own
//! schema (its `onnx.proto3`, ONNX v1.16, IR version 10) compiled to Rust with the maintained
//! [`protobuf`](https://docs.rs/protobuf) crate, used unmodified as a dependency: no schema is
//! kept in this crate and no `protoc` runs at build time. Decoding keeps rust-protobuf's
//! default recursion limit (messages nested at most 100 deep), is bounded by the file's length
//! (a message whose length runs past the end is an error), and is preceded by a scan that
//! refuses protobuf groups nested over 100 deep, so a truncated, corrupted or hostile file is
//! an error, never a panic or a stack overflow.
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
//! | `linear_before_reset` | 0 → [`Convention::ResetBefore`], 1 → [`Convention::ResetAfter`] |
//! | `layout` | 0 → [`Layout::SequenceMajor`], 1 → [`Layout::BatchMajor`] |
//! | `clip` | a positive threshold, applied as ONNX specifies |
//! | `activations` | only the defaults `Sigmoid`, `Tanh` for each direction (any case); anything else is refused naming it |
//! | `activation_alpha`, `activation_beta` | accepted and unused with the default activations (Sigmoid and Tanh take no parameter, as in onnxruntime); with other activations the activation is refused first |
//! | anything else | refused by name |
//!
//! Tensors stored in external files, sparse initializers for `W`/`R`/`B`, and initializers
//! for `X`, `sequence_lens` or `initial_h` (constants instead of inputs) are refused by name.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::{DataLocation, DataType};
use onnx_protobuf::{AttributeProto, ModelProto, NodeProto, TensorProto};
use protobuf::{CodedInputStream, Enum, Message};

use super::{bracket_shape, import_error, read_file};
use crate::error::Result;
use crate::input::Layout;
use crate::model::{Direction, GruModel};
use crate::weights::{Convention, GruWeights};

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
    if groups_too_deep(bytes) {
        return Err(invalid(format!(
            "protobuf groups nested more than {MAX_GROUP_DEPTH} deep"
        )));
    }
    let model = decode(bytes).map_err(|e| invalid(e.to_string()))?;
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

/// Decodes a whole file as a `ModelProto`, with rust-protobuf's default recursion limit.
fn decode(bytes: &[u8]) -> protobuf::Result<ModelProto> {
    let mut is = CodedInputStream::from_bytes(bytes);
    // Read from a slice, rust-protobuf sets no outer limit, so a nested message cut short at
    // one of its field boundaries would just end with the file, without an error. Bounded by
    // the file's length, every message whose length runs past the end is an error.
    let outer = is.push_limit(bytes.len() as u64)?;
    let model = ModelProto::parse_from(&mut is)?;
    is.check_eof()?;
    is.pop_limit(outer);
    Ok(model)
}

/// The deepest nesting of protobuf groups accepted: protobuf's default recursion limit (C++,
/// and rust-protobuf from 3.7.2 on, count groups against it).
const MAX_GROUP_DEPTH: u32 = 100;

/// How deep rust-protobuf descends into nested messages: past its default recursion limit of
/// 100 it stops with an error, so deeper payloads are never decoded and need no scan.
const MAX_MESSAGE_DEPTH: usize = 100;

/// Whether `bytes` hold protobuf groups nested more than [`MAX_GROUP_DEPTH`] deep anywhere
/// the decoder would skip through them.
///
/// onnx-protobuf's generated code requires protobuf 3.4.0 exactly, whose decoder skips an
/// unknown group by recursing once per nesting level with no limit (RUSTSEC-2024-0437): a few
/// kilobytes of nested start-group tags overflow the stack and abort the process instead of
/// returning an error. ONNX's schema has no groups, so this scan refuses such files first.
///
/// The scan follows the decoder without its schema and without recursion: outside a group,
/// each length-delimited field is scanned as a message (it may be one; a string or bytes field
/// that does not parse as one is passed over where it stops parsing), down to
/// [`MAX_MESSAGE_DEPTH`]; inside a group it is skipped, as the decoder skips it. Every byte is
/// read once, and the only allocation is one small frame per nested message.
fn groups_too_deep(bytes: &[u8]) -> bool {
    /// A varint that ends before `end`; `None` if it does not (the decoder fails there too).
    fn varint(bytes: &[u8], pos: &mut usize, end: usize) -> Option<u64> {
        let mut v = 0u64;
        for k in 0..10 {
            let b = *bytes[..end].get(*pos)?;
            *pos += 1;
            v |= u64::from(b & 0x7f) << (7 * k);
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    // One frame per message being scanned: (where its payload ends, groups open in it).
    let mut stack: Vec<(usize, u32)> = vec![(bytes.len(), 0)];
    let mut pos = 0;
    while let Some(&(end, groups)) = stack.last() {
        let top = stack.len() - 1;
        // The tag of the next field: field number ≥ 1, wire type 0 to 5.
        let tag = varint(bytes, &mut pos, end).filter(|&t| t >> 3 != 0 && t & 7 < 6);
        let ok = match tag.map(|t| t & 7) {
            // Varint.
            Some(0) => varint(bytes, &mut pos, end).is_some(),
            // 64-bit, 32-bit.
            Some(wire @ (1 | 5)) => {
                let n = if wire == 1 { 8 } else { 4 };
                pos = pos.saturating_add(n);
                pos <= end
            }
            // Length-delimited.
            Some(2) => match varint(bytes, &mut pos, end)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= end - pos)
            {
                Some(n) if groups == 0 && stack.len() <= MAX_MESSAGE_DEPTH => {
                    stack.push((pos + n, 0));
                    true
                }
                Some(n) => {
                    pos += n;
                    true
                }
                None => false,
            },
            // Start group.
            Some(3) => {
                if groups >= MAX_GROUP_DEPTH {
                    return true;
                }
                stack[top].1 += 1;
                true
            }
            // End group, only inside one.
            Some(_) if groups > 0 => {
                stack[top].1 -= 1;
                true
            }
            // No tag left (the end), a malformed one, or a stray end group: this payload is
            // done; its parent goes on after it.
            _ => false,
        };
        if !ok {
            pos = end;
            stack.truncate(top);
        }
        // A child payload scanned to its end returns to its parent.
        while let Some(&(end, _)) = stack.last() {
            if pos < end {
                break;
            }
            stack.pop();
        }
    }
    false
}

/// The GRU attributes, validated.
struct Attributes {
    hidden_size: Option<i64>,
    direction: Direction,
    convention: Convention,
    layout: Layout,
    clip: Option<f32>,
    shown: Vec<(String, String)>,
}

const KNOWN_ATTRIBUTES: &str = "hidden_size, direction, linear_before_reset, layout, clip, \
                                activations, activation_alpha, activation_beta";

impl Attributes {
    fn read(node: &NodeProto, path: &str) -> Result<Self> {
        let err = |m: String| import_error(path, m);
        let mut seen = HashSet::new();
        let mut a = Attributes {
            hidden_size: None,
            direction: Direction::Forward,
            convention: Convention::ResetBefore,
            layout: Layout::SequenceMajor,
            clip: None,
            shown: Vec::new(),
        };
        let mut activations: Option<Vec<String>> = None;
        let mut alpha_beta = Vec::new();
        for attr in &node.attribute {
            let name = attr.name.as_str();
            if !seen.insert(name) {
                return Err(err(format!("GRU attribute '{name}' is given twice")));
            }
            if !attr.ref_attr_name.is_empty() {
                return Err(err(format!(
                    "GRU attribute '{name}' refers to a function attribute ('{}'); only literal \
                     values are supported",
                    attr.ref_attr_name
                )));
            }
            let shown = match name {
                "hidden_size" => {
                    let v = int(attr, path)?;
                    if v < 1 {
                        return Err(err(format!(
                            "attribute hidden_size is {v}, expected at least 1"
                        )));
                    }
                    a.hidden_size = Some(v);
                    v.to_string()
                }
                "direction" => {
                    let v = string(attr, path)?;
                    a.direction = Direction::from_onnx_name(&v).map_err(|_| {
                        err(format!(
                            "attribute direction is {v:?}, expected \"forward\", \"reverse\" or \
                             \"bidirectional\""
                        ))
                    })?;
                    format!("{v:?}")
                }
                "linear_before_reset" => {
                    let v = int(attr, path)?;
                    a.convention = Convention::from_linear_before_reset(v).map_err(|_| {
                        err(format!(
                            "attribute linear_before_reset is {v}, expected 0 or 1"
                        ))
                    })?;
                    v.to_string()
                }
                "layout" => {
                    let v = int(attr, path)?;
                    a.layout = match v {
                        0 => Layout::SequenceMajor,
                        1 => Layout::BatchMajor,
                        _ => {
                            return Err(err(format!(
                                "attribute layout is {v}, expected 0 ([T, B, I]) or 1 ([B, T, I])"
                            )))
                        }
                    };
                    v.to_string()
                }
                "clip" => {
                    let v = float(attr, path)?;
                    if !(v.is_finite() && v > 0.0) {
                        return Err(err(format!(
                            "attribute clip is {v}, expected a positive threshold"
                        )));
                    }
                    a.clip = Some(v);
                    v.to_string()
                }
                "activations" => {
                    let v = strings(attr, path)?;
                    let shown = format!("[{}]", v.join(", "));
                    activations = Some(v);
                    shown
                }
                "activation_alpha" | "activation_beta" => {
                    let v = floats(attr, path)?;
                    alpha_beta.push(name);
                    format!("{v:?}")
                }
                other => {
                    return Err(err(format!(
                    "unsupported GRU attribute '{other}'; this importer honours {KNOWN_ATTRIBUTES}"
                )))
                }
            };
            a.shown.push((name.to_string(), shown));
        }

        if let Some(acts) = &activations {
            let d = a.direction.num_directions();
            for (k, act) in acts.iter().enumerate() {
                let (expected, role) = if k % 2 == 0 {
                    ("Sigmoid", "f, the gate activation")
                } else {
                    ("Tanh", "g, the candidate activation")
                };
                if !act.eq_ignore_ascii_case(expected) {
                    return Err(err(format!(
                        "unsupported activation '{act}' (activations[{k}], {role} of direction \
                         {}); only the defaults Sigmoid (f) and Tanh (g) are supported",
                        k / 2
                    )));
                }
            }
            // ONNX asks for 4 entries when bidirectional; 2 are accepted too, since both
            // directions then use the defaults either way.
            if acts.len() != 2 * d && acts.len() != 2 {
                return Err(err(format!(
                    "attribute activations has {} entries, expected {} (f and g for each of the \
                     {d} direction(s))",
                    acts.len(),
                    2 * d
                )));
            }
        }
        // Sigmoid and Tanh take no alpha or beta: with the defaults they are unused.
        let _ = alpha_beta;
        Ok(a)
    }
}

/// The attribute's declared type; `None` when unset (`UNDEFINED`) or unknown to the schema.
fn attr_type(attr: &AttributeProto) -> Option<AttributeType> {
    match attr.type_.enum_value() {
        Ok(AttributeType::UNDEFINED) | Err(_) => None,
        Ok(t) => Some(t),
    }
}

fn check_type(
    attr: &AttributeProto,
    expected: AttributeType,
    present: bool,
    path: &str,
) -> Result<()> {
    let ok = match attr_type(attr) {
        Some(t) => t == expected,
        None => present,
    };
    if ok {
        return Ok(());
    }
    // The generated enums' variants carry the schema's names (`INT`, `FLOATS`, ...).
    let got = match attr.type_.enum_value() {
        Ok(AttributeType::UNDEFINED) => "no value of that type".to_string(),
        Ok(t) => format!("{t:?}"),
        Err(t) => format!("type {t}"),
    };
    Err(import_error(
        path,
        format!(
            "GRU attribute '{}' has {got}, expected {expected:?}",
            attr.name
        ),
    ))
}

// `present` only matters for an attribute without a type (IR version 1 files). The proto3
// schema keeps no presence for scalars, so a value is taken as present when it is not the
// field's default.

fn int(attr: &AttributeProto, path: &str) -> Result<i64> {
    check_type(attr, AttributeType::INT, attr.i != 0, path)?;
    Ok(attr.i)
}

fn float(attr: &AttributeProto, path: &str) -> Result<f32> {
    check_type(attr, AttributeType::FLOAT, attr.f != 0.0, path)?;
    Ok(attr.f)
}

fn string(attr: &AttributeProto, path: &str) -> Result<String> {
    check_type(attr, AttributeType::STRING, !attr.s.is_empty(), path)?;
    utf8(&attr.s, &attr.name, path)
}

fn strings(attr: &AttributeProto, path: &str) -> Result<Vec<String>> {
    check_type(attr, AttributeType::STRINGS, !attr.strings.is_empty(), path)?;
    attr.strings
        .iter()
        .map(|s| utf8(s, &attr.name, path))
        .collect()
}

fn floats(attr: &AttributeProto, path: &str) -> Result<Vec<f32>> {
    check_type(attr, AttributeType::FLOATS, !attr.floats.is_empty(), path)?;
    Ok(attr.floats.clone())
}

fn utf8(bytes: &[u8], name: &str, path: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        import_error(
            path,
            format!("GRU attribute '{name}' holds a string that is not UTF-8"),
        )
    })
}

/// An initializer as `(shape, f32 data)`; `role` is its GRU input (`W`, `R`, `B`).
fn tensor_f32(
    t: &TensorProto,
    role: &str,
    name: &str,
    path: &str,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let err = |m: String| import_error(path, format!("{role} ('{name}') {m}"));
    if t.data_location.enum_value() == Ok(DataLocation::EXTERNAL) || !t.external_data.is_empty() {
        return Err(err(
            "is stored in an external data file; only tensors stored inside the .onnx file \
             are supported (onnx.load(...) then onnx.save(model, path, \
             save_as_external_data=False))"
                .into(),
        ));
    }
    if t.segment.is_some() {
        return Err(err(
            "is a segment of a larger tensor; expected a whole tensor".into(),
        ));
    }
    let mut shape = Vec::with_capacity(t.dims.len());
    for &dim in &t.dims {
        let Ok(dim) = usize::try_from(dim) else {
            return Err(err(format!(
                "has a negative dimension {dim} in dims {:?}",
                t.dims
            )));
        };
        shape.push(dim);
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            err(format!(
                "has dims {:?} whose element count overflows",
                t.dims
            ))
        })?;
    // proto3 keeps no presence for `raw_data`: an empty one counts as absent (for a tensor
    // with elements, the typed fields are then read, and are empty too if nothing is stored).
    let raw = Some(t.raw_data.as_slice()).filter(|r| !r.is_empty());
    let dtype = t.data_type;
    let (data, stored): (Option<Vec<f32>>, usize) = match DataType::from_i32(dtype) {
        Some(DataType::FLOAT) => match raw {
            Some(raw) => (
                decode_raw(raw, 4, count, |c| {
                    f32::from_le_bytes([c[0], c[1], c[2], c[3]])
                }),
                raw.len() / 4,
            ),
            None => (Some(t.float_data.clone()), t.float_data.len()),
        },
        Some(DataType::DOUBLE) => match raw {
            Some(raw) => (
                decode_raw(raw, 8, count, |c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                }),
                raw.len() / 8,
            ),
            None => (
                Some(t.double_data.iter().map(|&v| v as f32).collect()),
                t.double_data.len(),
            ),
        },
        Some(kind @ (DataType::FLOAT16 | DataType::BFLOAT16)) => {
            let from_bits = move |bits: u16| match kind {
                DataType::FLOAT16 => half::f16::from_bits(bits).to_f32(),
                _ => half::bf16::from_bits(bits).to_f32(),
            };
            match raw {
                Some(raw) => (
                    decode_raw(raw, 2, count, |c| {
                        from_bits(u16::from_le_bytes([c[0], c[1]]))
                    }),
                    raw.len() / 2,
                ),
                None => (
                    Some(t.int32_data.iter().map(|&v| from_bits(v as u16)).collect()),
                    t.int32_data.len(),
                ),
            }
        }
        other => {
            let got = other
                .map(|d| format!("{d:?}"))
                .unwrap_or_else(|| format!("data type {dtype}"));
            return Err(err(format!(
                "has element type {got}; expected FLOAT (DOUBLE, FLOAT16 and BFLOAT16 are \
                 converted)"
            )));
        }
    };
    match data {
        Some(data) if data.len() == count => Ok((shape, data)),
        _ => Err(err(format!(
            "has dims {} = {count} elements but holds {stored}{}",
            bracket_shape(&shape),
            if raw.is_some_and(|r| r.len() % element_size(dtype) != 0) {
                " and a partial element (raw_data's length is not a multiple of the element size)"
            } else {
                ""
            }
        ))),
    }
}

fn element_size(dtype: i32) -> usize {
    match DataType::from_i32(dtype) {
        Some(DataType::DOUBLE) => 8,
        Some(DataType::FLOAT16 | DataType::BFLOAT16) => 2,
        _ => 4,
    }
}

/// Little-endian elements of `size` bytes; `None` unless there are exactly `count`.
fn decode_raw(raw: &[u8], size: usize, count: usize, f: impl Fn(&[u8]) -> f32) -> Option<Vec<f32>> {
    if raw.len() != count.checked_mul(size)? {
        return None;
    }
    Some(raw.chunks_exact(size).map(f).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::{GraphProto, OperatorSetIdProto, TypeProto, ValueInfoProto};

    const I: usize = 2;
    const H: usize = 3;

    fn tensor(name: &str, dims: &[usize], seed: f32) -> TensorProto {
        let n: usize = dims.iter().product();
        let data: Vec<u8> = (0..n)
            .flat_map(|k| ((k as f32 * 0.37 + seed).sin() * 0.5).to_le_bytes())
            .collect();
        TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::FLOAT as i32,
            raw_data: data,
            ..Default::default()
        }
    }

    fn value_info(name: &str) -> ValueInfoProto {
        ValueInfoProto {
            name: name.into(),
            type_: Some(TypeProto::default()).into(),
            ..Default::default()
        }
    }

    fn attr_int(name: &str, v: i64) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            type_: AttributeType::INT.into(),
            i: v,
            ..Default::default()
        }
    }

    fn attr_float(name: &str, v: f32) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            type_: AttributeType::FLOAT.into(),
            f: v,
            ..Default::default()
        }
    }

    fn attr_str(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            type_: AttributeType::STRING.into(),
            s: v.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn attr_strs(name: &str, v: &[&str]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            type_: AttributeType::STRINGS.into(),
            strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }

    /// A one-GRU model with `d` directions, bias, and the given attributes.
    fn model(d: usize, attributes: Vec<AttributeProto>) -> ModelProto {
        let node = NodeProto {
            name: "gru".into(),
            op_type: "GRU".into(),
            input: ["X", "W", "R", "B", "", "h0"].map(String::from).to_vec(),
            output: vec!["Y".into(), "Y_h".into()],
            attribute: attributes,
            ..Default::default()
        };
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 14,
                ..Default::default()
            }],
            graph: Some(GraphProto {
                node: vec![node],
                initializer: vec![
                    tensor("W", &[d, 3 * H, I], 1.0),
                    tensor("R", &[d, 3 * H, H], 2.0),
                    tensor("B", &[d, 6 * H], 3.0),
                ],
                input: vec![value_info("X"), value_info("h0")],
                output: vec![value_info("Y"), value_info("Y_h")],
                ..Default::default()
            })
            .into(),
            ..Default::default()
        }
    }

    fn parse_model(m: &ModelProto) -> Result<OnnxGru> {
        parse(&m.write_to_bytes().unwrap(), "test.onnx")
    }

    fn error_of(m: &ModelProto) -> String {
        match parse_model(m) {
            Ok(g) => panic!("expected an error, got {g:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_attribute_is_honoured() {
        let g = parse_model(&model(
            2,
            vec![
                attr_int("hidden_size", H as i64),
                attr_str("direction", "bidirectional"),
                attr_int("linear_before_reset", 1),
                attr_int("layout", 1),
                attr_float("clip", 2.5),
                attr_strs("activations", &["Sigmoid", "Tanh", "sigmoid", "TANH"]),
                AttributeProto {
                    name: "activation_alpha".into(),
                    type_: AttributeType::FLOATS.into(),
                    floats: vec![1.0],
                    ..Default::default()
                },
            ],
        ))
        .unwrap();
        assert_eq!(g.model.direction(), Direction::Bidirectional);
        assert_eq!(g.model.convention(), Convention::ResetAfter);
        assert_eq!(g.model.clip(), Some(2.5));
        assert_eq!(g.layout, Layout::BatchMajor);
        assert_eq!((g.model.input_size(), g.model.hidden_size()), (I, H));
        assert_eq!(g.initial_h.as_deref(), Some("h0"));
        assert_eq!(g.sequence_lens, None);
        assert_eq!(g.attributes.len(), 7);
        // Direction 1's weights are the second half of W.
        let w = tensor("W", &[2, 3 * H, I], 1.0);
        let raw = w.raw_data;
        let second = f32::from_le_bytes(raw[4 * 3 * H * I..][..4].try_into().unwrap());
        assert_eq!(g.model.layer(0)[1].w()[0], second);
    }

    #[test]
    fn defaults_are_forward_reset_before_layout_0() {
        let g = parse_model(&model(1, vec![])).unwrap();
        assert_eq!(g.model.direction(), Direction::Forward);
        assert_eq!(g.model.convention(), Convention::ResetBefore);
        assert_eq!(g.layout, Layout::SequenceMajor);
        assert_eq!(g.model.clip(), None);
        assert_eq!(g.opset, Some(14));
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let cases: Vec<(ModelProto, &[&str])> = vec![
            (
                model(1, vec![attr_int("hidden_size", 4)]),
                &["hidden_size is 4", "hidden_size 3"],
            ),
            (
                model(1, vec![attr_str("direction", "bidirectional")]),
                &["num_directions 1", "bidirectional", "needs 2"],
            ),
            (
                model(1, vec![attr_str("direction", "sideways")]),
                &["direction is \"sideways\""],
            ),
            (
                model(1, vec![attr_int("linear_before_reset", 2)]),
                &["linear_before_reset is 2"],
            ),
            (model(1, vec![attr_int("layout", 2)]), &["layout is 2"]),
            (model(1, vec![attr_float("clip", 0.0)]), &["clip is 0"]),
            (model(1, vec![attr_float("clip", -1.0)]), &["clip is -1"]),
            (
                model(1, vec![attr_strs("activations", &["Sigmoid", "Relu"])]),
                &["'Relu'", "activations[1]"],
            ),
            (
                model(1, vec![attr_strs("activations", &["Sigmoid"])]),
                &["activations has 1 entries, expected 2"],
            ),
            (
                model(1, vec![attr_int("output_sequence", 1)]),
                &["unsupported GRU attribute 'output_sequence'"],
            ),
            (
                model(1, vec![attr_float("hidden_size", 3.0)]),
                &["'hidden_size' has FLOAT, expected INT"],
            ),
            (
                model(1, vec![attr_int("layout", 0), attr_int("layout", 1)]),
                &["'layout' is given twice"],
            ),
        ];
        for (m, needles) in cases {
            let e = error_of(&m);
            assert!(e.starts_with("test.onnx: "), "{e}");
            for n in needles {
                assert!(e.contains(n), "{n:?} not in {e:?}");
            }
        }
    }

    #[test]
    fn refusals_of_inputs_and_tensors() {
        let mut m = model(1, vec![]);
        m.graph.as_mut().unwrap().initializer[0].data_location = DataLocation::EXTERNAL.into();
        assert!(error_of(&m).contains("W ('W') is stored in an external data file"));

        let mut m = model(1, vec![]);
        m.graph.as_mut().unwrap().initializer[1].data_type = DataType::INT64 as i32;
        assert!(error_of(&m).contains("R ('R') has element type INT64"));

        let mut m = model(1, vec![]);
        let raw = &mut m.graph.as_mut().unwrap().initializer[2].raw_data;
        raw.truncate(raw.len() - 2);
        let e = error_of(&m);
        assert!(
            e.contains("B ('B') has dims [1, 18] = 18 elements but holds 17"),
            "{e}"
        );

        let mut m = model(1, vec![]);
        m.graph.as_mut().unwrap().initializer[1].dims = vec![1, 9, 2];
        m.graph.as_mut().unwrap().initializer[1].raw_data = vec![0; 4 * 18];
        let e = error_of(&m);
        assert!(e.contains("R ('R') has shape [1, 9, 2]"), "{e}");

        let mut m = model(1, vec![]);
        m.graph.as_mut().unwrap().initializer[0].dims = vec![1, 8, 2];
        m.graph.as_mut().unwrap().initializer[0].raw_data = vec![0; 4 * 16];
        let e = error_of(&m);
        assert!(e.contains("W ('W') has shape [1, 8, 2], expected [num_directions, 3*hidden_size, input_size] = [1, 9, input_size]"), "{e}");

        // W fed at run time, initial_h a constant.
        let mut m = model(1, vec![]);
        let g = m.graph.as_mut().unwrap();
        let w = g.initializer.remove(0);
        g.input.push(value_info(&w.name));
        assert!(error_of(&m).contains("W ('W') is a graph input"));

        let mut m = model(1, vec![]);
        let g = m.graph.as_mut().unwrap();
        g.input.retain(|v| v.name != "h0");
        g.initializer.push(tensor("h0", &[1, 1, H], 0.0));
        assert!(error_of(&m).contains("initial_h ('h0') is a constant initializer"));

        let mut m = model(1, vec![]);
        m.graph.as_mut().unwrap().node[0].input[1] = "nowhere".into();
        assert!(error_of(&m).contains("W ('nowhere') is neither"));

        // Float16 and double initializers are converted.
        let mut m = model(1, vec![]);
        let g = m.graph.as_mut().unwrap();
        g.initializer[2] = TensorProto {
            name: "B".into(),
            dims: vec![1, 6 * H as i64],
            data_type: DataType::FLOAT16 as i32,
            int32_data: vec![half::f16::from_f32(0.25).to_bits() as i32; 6 * H],
            ..Default::default()
        };
        g.initializer[1] = TensorProto {
            name: "R".into(),
            dims: vec![1, 3 * H as i64, H as i64],
            data_type: DataType::DOUBLE as i32,
            double_data: vec![0.5; 3 * H * H],
            ..Default::default()
        };
        let got = parse_model(&m).unwrap();
        assert!(got.model.layer(0)[0].b().iter().all(|&v| v == 0.25));
        assert!(got.model.layer(0)[0].r().iter().all(|&v| v == 0.5));
    }

    #[test]
    fn graphs_that_are_not_one_gru_are_refused() {
        let mut m = model(1, vec![]);
        m.graph.as_mut().unwrap().node.push(NodeProto {
            op_type: "Squeeze".into(),
            ..Default::default()
        });
        let e = error_of(&m);
        assert!(e.contains("1 other node(s) (Squeeze)"), "{e}");

        let mut m = model(1, vec![]);
        m.graph.as_mut().unwrap().node.clear();
        assert!(error_of(&m).contains("0 GRU nodes (the graph has no node at all)"));

        let e = parse(b"\x08", "t.onnx").unwrap_err().to_string();
        assert!(e.contains("not a valid ONNX model"), "{e}");
        let e = parse(b"", "t.onnx").unwrap_err().to_string();
        assert!(e.contains("empty file"), "{e}");
        let e = parse(&ModelProto::default().write_to_bytes().unwrap(), "t.onnx")
            .unwrap_err()
            .to_string();
        // An empty message decodes to an empty model.
        assert!(e.contains("empty file") || e.contains("no graph"), "{e}");
    }

    /// A protobuf varint.
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// `payload` as length-delimited field `field`.
    fn len_field(field: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(field << 3 | 2, &mut out);
        varint(payload.len() as u64, &mut out);
        out.extend_from_slice(payload);
        out
    }

    /// Unknown field 99 as `depth` groups nested in one another, closed or not.
    fn nested_groups(depth: usize, closed: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..depth {
            varint(99 << 3 | 3, &mut out);
        }
        if closed {
            for _ in 0..depth {
                varint(99 << 3 | 4, &mut out);
            }
        }
        out
    }

    /// The bytes of [`model`]`(d, ..)` with `extra` appended to its graph's, the graph last.
    fn with_graph_extra(d: usize, attributes: Vec<AttributeProto>, extra: &[u8]) -> Vec<u8> {
        let mut m = model(d, attributes);
        let mut graph = m.graph.take().unwrap().write_to_bytes().unwrap();
        graph.extend_from_slice(extra);
        [m.write_to_bytes().unwrap(), len_field(7, &graph)].concat()
    }

    #[test]
    fn deeply_nested_groups_are_an_error_not_a_stack_overflow() {
        let too_deep = |e: &str| e.contains("groups nested more than 100 deep");
        // In the model itself, in its graph, and in a node's attribute (where a string field
        // could hide them too), far deeper than any stack allows.
        let groups = nested_groups(1 << 20, false);
        let in_attribute = len_field(1, &len_field(5, &groups)); // node.attribute
        let in_name = len_field(1, &len_field(5, &len_field(1, &groups))); // attribute.name
        let cases = [
            [model(1, vec![]).write_to_bytes().unwrap(), groups.clone()].concat(),
            with_graph_extra(1, vec![], &groups),
            with_graph_extra(1, vec![], &in_attribute),
            with_graph_extra(1, vec![], &in_name),
        ];
        for bytes in &cases {
            let e = parse(bytes, "t.onnx").unwrap_err().to_string();
            assert!(e.contains("not a valid ONNX model") && too_deep(&e), "{e}");
        }
        // Up to the limit, closed, they are an unknown field that the decoder skips.
        let closed = with_graph_extra(1, vec![], &nested_groups(100, true));
        parse(&closed, "t.onnx").unwrap();
        let over = with_graph_extra(1, vec![], &nested_groups(101, true));
        assert!(too_deep(&parse(&over, "t.onnx").unwrap_err().to_string()));
        // Inside a group, length-delimited fields are skipped, as the decoder skips them.
        let mut skipped = nested_groups(1, false);
        skipped.extend(len_field(1, &nested_groups(1000, false)));
        varint(99 << 3 | 4, &mut skipped);
        parse(&with_graph_extra(1, vec![], &skipped), "t.onnx").unwrap();
    }

    #[test]
    fn deeply_nested_messages_are_an_error() {
        // graph -> node -> attribute -> graph -> ..., past the recursion limit of 100.
        let mut bytes = Vec::new();
        for level in 0..300 {
            bytes = len_field([6, 5, 1][level % 3], &bytes);
        }
        let bytes = len_field(7, &bytes); // ModelProto.graph
        let e = parse(&bytes, "t.onnx").unwrap_err().to_string();
        assert!(e.contains("not a valid ONNX model"), "{e}");
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_or_a_model() {
        let attributes = || vec![attr_str("direction", "bidirectional")];
        // The graph last, so that every cut leaves a message cut short.
        let bytes = with_graph_extra(2, attributes(), &[]);
        parse(&bytes, "t.onnx").unwrap();
        for cut in 1..bytes.len() {
            let e = parse(&bytes[..cut], "t.onnx").unwrap_err().to_string();
            assert!(e.starts_with("t.onnx: "), "cut {cut}: {e}");
        }
        for k in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[k] ^= flip;
                // Decoded or refused, never a panic.
                let _ = parse(&b, "t.onnx");
            }
        }
    }
}
