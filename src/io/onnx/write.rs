//! Writing a one-layer GRU as an ONNX model: one `GRU` node (opset 14, layout 0) with `W`,
//! `R` and `B` as initializers, `X` the graph's input, `Y` and `Y_h` its outputs (float
//! tensors, `T` and `B` named dimensions): what the importer reads ([`super::parse`]), so
//! that a model round-trips exactly, and a model `onnx.checker` accepts and onnxruntime runs.

use prost::Message;

use super::proto::attribute_proto::AttributeType;
use super::proto::tensor_proto::DataType;
use super::proto::tensor_shape_proto::{dimension, Dimension};
use super::proto::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
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

/// A float tensor's value info, its dimensions named (`"T"`) or fixed.
fn value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Named(n) => dimension::Value::DimParam((*n).into()),
                Dim::Fixed(v) => dimension::Value::DimValue(*v as i64),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A dimension of a graph input or output.
enum Dim {
    Named(&'static str),
    Fixed(usize),
}

/// The bytes of an ONNX model holding `model` (one layer; any direction, convention and
/// clip) as one GRU node. Errors: more than one layer.
pub fn encode(model: &GruModel) -> Result<Vec<u8>> {
    let arrays = onnx_arrays(model)?;
    let (d, h, i) = (
        model.num_directions(),
        model.hidden_size(),
        model.input_size(),
    );
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
            // X [T, B, I], Y [T, D, B, H], Y_h [D, B, H] (layout 0), T and B named.
            input: vec![value_info(
                "X",
                &[Dim::Named("T"), Dim::Named("B"), Dim::Fixed(i)],
            )],
            output: vec![
                value_info(
                    "Y",
                    &[
                        Dim::Named("T"),
                        Dim::Fixed(d),
                        Dim::Named("B"),
                        Dim::Fixed(h),
                    ],
                ),
                value_info("Y_h", &[Dim::Fixed(d), Dim::Named("B"), Dim::Fixed(h)]),
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(m.encode_to_vec())
}
