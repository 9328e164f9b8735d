//! Unit tests of the ONNX importer: attributes, refusals, hostile protobuf.

use super::proto::attribute_proto::AttributeType;
use super::proto::tensor_proto::{DataLocation, DataType};
use super::proto::{AttributeProto, GraphProto, OperatorSetIdProto, TypeProto, ValueInfoProto};
use super::*;
use crate::model::Direction;
use crate::weights::Convention;

const I: usize = 2;
const H: usize = 3;

include!("../../../tests/common/onnx_builders.rs");

fn parse_model(m: &ModelProto) -> Result<OnnxGru> {
    parse(&m.encode_to_vec(), "test.onnx")
}

fn error_of(m: &ModelProto) -> String {
    match parse_model(m) {
        Ok(g) => panic!("expected an error, got {g:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_attribute_is_honoured() {
    let g = parse_model(&onnx_model(
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
                r#type: AttributeType::Floats.into(),
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
    let w = onnx_tensor("W", &[2, 3 * H, I], 1.0);
    let raw = w.raw_data;
    let second = f32::from_le_bytes(raw[4 * 3 * H * I..][..4].try_into().unwrap());
    assert_eq!(g.model.layer(0)[1].w()[0], second);
}

#[test]
fn defaults_are_forward_reset_before_layout_0() {
    let g = parse_model(&onnx_model(1, vec![])).unwrap();
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
            onnx_model(1, vec![attr_int("hidden_size", 4)]),
            &["hidden_size is 4", "hidden_size 3"],
        ),
        (
            onnx_model(1, vec![attr_str("direction", "bidirectional")]),
            &["num_directions 1", "bidirectional", "needs 2"],
        ),
        (
            onnx_model(1, vec![attr_str("direction", "sideways")]),
            &["direction is \"sideways\""],
        ),
        (
            onnx_model(1, vec![attr_int("linear_before_reset", 2)]),
            &["linear_before_reset is 2"],
        ),
        (onnx_model(1, vec![attr_int("layout", 2)]), &["layout is 2"]),
        (onnx_model(1, vec![attr_float("clip", 0.0)]), &["clip is 0"]),
        (
            onnx_model(1, vec![attr_float("clip", -1.0)]),
            &["clip is -1"],
        ),
        (
            onnx_model(1, vec![attr_strs("activations", &["Sigmoid", "Relu"])]),
            &["'Relu'", "activations[1]"],
        ),
        (
            onnx_model(1, vec![attr_strs("activations", &["Sigmoid"])]),
            &["activations has 1 entries, expected 2"],
        ),
        (
            onnx_model(1, vec![attr_int("output_sequence", 1)]),
            &["unsupported GRU attribute 'output_sequence'"],
        ),
        (
            onnx_model(1, vec![attr_float("hidden_size", 3.0)]),
            &["'hidden_size' has FLOAT, expected INT"],
        ),
        (
            onnx_model(1, vec![attr_int("layout", 0), attr_int("layout", 1)]),
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
    let mut m = onnx_model(1, vec![]);
    m.graph.as_mut().unwrap().initializer[0].data_location = DataLocation::External as i32;
    assert!(error_of(&m).contains("W ('W') is stored in an external data file"));

    let mut m = onnx_model(1, vec![]);
    m.graph.as_mut().unwrap().initializer[1].data_type = DataType::Int64 as i32;
    assert!(error_of(&m).contains("R ('R') has element type INT64"));

    let mut m = onnx_model(1, vec![]);
    let raw = &mut m.graph.as_mut().unwrap().initializer[2].raw_data;
    raw.truncate(raw.len() - 2);
    let e = error_of(&m);
    assert!(
        e.contains("B ('B') has dims [1, 18] = 18 elements but holds 17"),
        "{e}"
    );

    let mut m = onnx_model(1, vec![]);
    m.graph.as_mut().unwrap().initializer[1].dims = vec![1, 9, 2];
    m.graph.as_mut().unwrap().initializer[1].raw_data = vec![0; 4 * 18];
    let e = error_of(&m);
    assert!(e.contains("R ('R') has shape [1, 9, 2]"), "{e}");

    let mut m = onnx_model(1, vec![]);
    m.graph.as_mut().unwrap().initializer[0].dims = vec![1, 8, 2];
    m.graph.as_mut().unwrap().initializer[0].raw_data = vec![0; 4 * 16];
    let e = error_of(&m);
    assert!(e.contains("W ('W') has shape [1, 8, 2], expected [num_directions, 3*hidden_size, input_size] = [1, 9, input_size]"), "{e}");

    // W fed at run time, initial_h a constant.
    let mut m = onnx_model(1, vec![]);
    let g = m.graph.as_mut().unwrap();
    let w = g.initializer.remove(0);
    g.input.push(value_info(&w.name));
    assert!(error_of(&m).contains("W ('W') is a graph input"));

    let mut m = onnx_model(1, vec![]);
    let g = m.graph.as_mut().unwrap();
    g.input.retain(|v| v.name != "h0");
    g.initializer.push(onnx_tensor("h0", &[1, 1, H], 0.0));
    assert!(error_of(&m).contains("initial_h ('h0') is a constant initializer"));

    let mut m = onnx_model(1, vec![]);
    m.graph.as_mut().unwrap().node[0].input[1] = "nowhere".into();
    assert!(error_of(&m).contains("W ('nowhere') is neither"));

    // Float16 and double initializers are converted.
    let mut m = onnx_model(1, vec![]);
    let g = m.graph.as_mut().unwrap();
    g.initializer[2] = TensorProto {
        name: "B".into(),
        dims: vec![1, 6 * H as i64],
        data_type: DataType::Float16 as i32,
        int32_data: vec![half::f16::from_f32(0.25).to_bits() as i32; 6 * H],
        ..Default::default()
    };
    g.initializer[1] = TensorProto {
        name: "R".into(),
        dims: vec![1, 3 * H as i64, H as i64],
        data_type: DataType::Double as i32,
        double_data: vec![0.5; 3 * H * H],
        ..Default::default()
    };
    let got = parse_model(&m).unwrap();
    assert!(got.model.layer(0)[0].b().iter().all(|&v| v == 0.25));
    assert!(got.model.layer(0)[0].r().iter().all(|&v| v == 0.5));
}

#[test]
fn graphs_that_are_not_one_gru_are_refused() {
    let mut m = onnx_model(1, vec![]);
    m.graph.as_mut().unwrap().node.push(NodeProto {
        op_type: "Squeeze".into(),
        ..Default::default()
    });
    let e = error_of(&m);
    assert!(e.contains("1 other node(s) (Squeeze)"), "{e}");

    let mut m = onnx_model(1, vec![]);
    m.graph.as_mut().unwrap().node.clear();
    assert!(error_of(&m).contains("0 GRU nodes (the graph has no node at all)"));

    let e = parse(b"\x08", "t.onnx").unwrap_err().to_string();
    assert!(e.contains("not a valid ONNX model"), "{e}");
    let e = parse(b"", "t.onnx").unwrap_err().to_string();
    assert!(e.contains("empty file"), "{e}");
    let e = parse(&ModelProto::default().encode_to_vec(), "t.onnx")
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
    let mut m = onnx_model(d, attributes);
    let mut graph = m.graph.take().unwrap().encode_to_vec();
    graph.extend_from_slice(extra);
    [m.encode_to_vec(), len_field(7, &graph)].concat()
}

#[test]
fn deeply_nested_groups_are_an_error_not_a_stack_overflow() {
    // prost counts skipped groups against its recursion limit (100), with the messages they
    // are nested in.
    let too_deep = |e: &str| e.contains("recursion limit reached");
    // In the model itself, in its graph, and in a node's attribute, far deeper than any stack
    // allows.
    let groups = nested_groups(1 << 20, false);
    let in_attribute = len_field(1, &len_field(5, &groups)); // node.attribute
    let cases = [
        [onnx_model(1, vec![]).encode_to_vec(), groups.clone()].concat(),
        with_graph_extra(1, vec![], &groups),
        with_graph_extra(1, vec![], &in_attribute),
    ];
    for bytes in &cases {
        let e = parse(bytes, "t.onnx").unwrap_err().to_string();
        assert!(e.contains("not a valid ONNX model") && too_deep(&e), "{e}");
    }
    // In a string field (attribute.name) they are not UTF-8.
    let in_name = len_field(1, &len_field(5, &len_field(1, &groups)));
    let e = parse(&with_graph_extra(1, vec![], &in_name), "t.onnx")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a valid ONNX model"), "{e}");
    // Up to the limit, closed, they are an unknown field that the decoder skips: in the graph
    // (one level down), 99 groups make 100 levels.
    let closed = with_graph_extra(1, vec![], &nested_groups(99, true));
    parse(&closed, "t.onnx").unwrap();
    let over = with_graph_extra(1, vec![], &nested_groups(100, true));
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
