// ONNX model builders shared by the ONNX importer's unit tests (src/io/onnx/tests.rs) and
// gru-cli's bad-input tests (crates/gru-cli/tests/cli/bad_input.rs), spliced into each with
// `include!`: the includer brings the prost message types (`TensorProto`, `ModelProto`, …,
// `AttributeType`, `DataType`) and the sizes `I` and `H` into scope. Not a module of its own,
// so that one file serves the library's unit tests and another crate's tests alike.

#[allow(dead_code)]
fn onnx_tensor(name: &str, dims: &[usize], seed: f32) -> TensorProto {
    let n: usize = dims.iter().product();
    let data: Vec<u8> = (0..n)
        .flat_map(|k| ((k as f32 * 0.37 + seed).sin() * 0.5).to_le_bytes())
        .collect();
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: data,
        ..Default::default()
    }
}

#[allow(dead_code)]
fn value_info(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto::default()),
        ..Default::default()
    }
}

#[allow(dead_code)]
fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int.into(),
        i: v,
        ..Default::default()
    }
}

#[allow(dead_code)]
fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float.into(),
        f: v,
        ..Default::default()
    }
}

#[allow(dead_code)]
fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String.into(),
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

#[allow(dead_code)]
fn attr_strs(name: &str, v: &[&str]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Strings.into(),
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

/// A one-GRU model with `d` directions, bias, and the given attributes.
#[allow(dead_code)]
fn onnx_model(d: usize, attributes: Vec<AttributeProto>) -> ModelProto {
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
        }],
        graph: Some(GraphProto {
            node: vec![node],
            initializer: vec![
                onnx_tensor("W", &[d, 3 * H, I], 1.0),
                onnx_tensor("R", &[d, 3 * H, H], 2.0),
                onnx_tensor("B", &[d, 6 * H], 3.0),
            ],
            input: vec![value_info("X"), value_info("h0")],
            output: vec![value_info("Y"), value_info("Y_h")],
            ..Default::default()
        }),
        ..Default::default()
    }
}
