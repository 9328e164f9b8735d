//! The GRU node's attributes, each honoured or refused by name.

use std::collections::HashSet;

use super::proto::attribute_proto::AttributeType;
use super::proto::{AttributeProto, NodeProto};
use crate::error::Result;
use crate::input::Layout;
use crate::io::import_error;
use crate::model::Direction;
use crate::weights::Convention;

/// The GRU attributes, validated.
pub(super) struct Attributes {
    pub(super) hidden_size: Option<i64>,
    pub(super) direction: Direction,
    pub(super) convention: Convention,
    pub(super) layout: Layout,
    pub(super) clip: Option<f32>,
    pub(super) shown: Vec<(String, String)>,
}

const KNOWN_ATTRIBUTES: &str = "hidden_size, direction, linear_before_reset, layout, clip, \
                                activations, activation_alpha, activation_beta";

impl Attributes {
    pub(super) fn read(node: &NodeProto, path: &str) -> Result<Self> {
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
    match AttributeType::try_from(attr.r#type) {
        Ok(AttributeType::Undefined) | Err(_) => None,
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
    // Named as the schema names them (`INT`, `FLOATS`, ...).
    let got = match AttributeType::try_from(attr.r#type) {
        Ok(AttributeType::Undefined) => "no value of that type".to_string(),
        Ok(t) => t.as_str_name().to_string(),
        Err(_) => format!("type {}", attr.r#type),
    };
    Err(import_error(
        path,
        format!(
            "GRU attribute '{}' has {got}, expected {}",
            attr.name,
            expected.as_str_name()
        ),
    ))
}

// `present` only matters for an attribute without a type (IR version 1 files). The proto3
// schema keeps no presence for scalars, so a value is taken as present when it is not the
// field's default.

fn int(attr: &AttributeProto, path: &str) -> Result<i64> {
    check_type(attr, AttributeType::Int, attr.i != 0, path)?;
    Ok(attr.i)
}

fn float(attr: &AttributeProto, path: &str) -> Result<f32> {
    check_type(attr, AttributeType::Float, attr.f != 0.0, path)?;
    Ok(attr.f)
}

fn string(attr: &AttributeProto, path: &str) -> Result<String> {
    check_type(attr, AttributeType::String, !attr.s.is_empty(), path)?;
    utf8(&attr.s, &attr.name, path)
}

fn strings(attr: &AttributeProto, path: &str) -> Result<Vec<String>> {
    check_type(attr, AttributeType::Strings, !attr.strings.is_empty(), path)?;
    attr.strings
        .iter()
        .map(|s| utf8(s, &attr.name, path))
        .collect()
}

fn floats(attr: &AttributeProto, path: &str) -> Result<Vec<f32>> {
    check_type(attr, AttributeType::Floats, !attr.floats.is_empty(), path)?;
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
