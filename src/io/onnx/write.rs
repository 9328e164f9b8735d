//! Writing a one-layer GRU as an ONNX model: one `GRU` node (opset 14, layout 0) with `W`,
//! `R` and `B` as initializers, `X` the graph's input, `Y` and `Y_h` its outputs: what the
//! importer reads ([`super::parse`]), so that a model round-trips exactly.

use prost::Message;

use super::proto::attribute_proto::AttributeType;
use super::proto::tensor_proto::DataType;
use super::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TypeProto,
    ValueInfoProto,
};
use crate::error::Result;
use crate::io::export::onnx_arrays;
use crate::model::{Direction, GruModel};
use crate::weights::Convention;

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int.into(),
        i,
        ..Default::default()
    }
}

fn value_info(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto::default()),
        ..Default::default()
    }
}

/// The bytes of an ONNX model holding `model` (one layer; any direction, convention and
/// clip) as one GRU node. Errors: more than one layer.
pub fn encode(model: &GruModel) -> Result<Vec<u8>> {
    let arrays = onnx_arrays(model)?;
    let direction = match model.direction() {
        Direction::Forward => "forward",
        Direction::Reverse => "reverse",
        Direction::Bidirectional => "bidirectional",
    };
    let mut attribute = vec![
        attr_int("hidden_size", model.hidden_size() as i64),
        attr_int(
            "linear_before_reset",
            (model.convention() == Convention::ResetAfter) as i64,
        ),
        AttributeProto {
            name: "direction".into(),
            r#type: AttributeType::String.into(),
            s: direction.as_bytes().to_vec(),
            ..Default::default()
        },
    ];
    if let Some(c) = model.clip() {
        attribute.push(AttributeProto {
            name: "clip".into(),
            r#type: AttributeType::Float.into(),
            f: c,
            ..Default::default()
        });
    }
    let initializer = arrays
        .iter()
        .map(|(name, dims, values)| TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        })
        .collect();
    let node = NodeProto {
        name: "gru".into(),
        op_type: "GRU".into(),
        input: ["X", "W", "R", "B"].map(String::from).to_vec(),
        output: vec!["Y".into(), "Y_h".into()],
        attribute,
        ..Default::default()
    };
    let m = ModelProto {
        ir_version: 8,
        producer_name: "gru-wgpu".into(),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 14,
        }],
        graph: Some(GraphProto {
            name: "gru".into(),
            node: vec![node],
            initializer,
            input: vec![value_info("X")],
            output: vec![value_info("Y"), value_info("Y_h")],
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(m.encode_to_vec())
}
