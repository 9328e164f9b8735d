//! Writing models (`gru_wgpu::io::export`, `io::onnx::encode`): every file the exporters write
//! reads back through the importers as the same network, bit for bit, with its head; what a
//! framework cannot express is a typed error.

use gru_wgpu::init::{self, Init};
use gru_wgpu::io::export::{
    encode_npz, encode_safetensors, keras_weights, pytorch_state_dict, HeadTensors,
};
use gru_wgpu::io::{keras, onnx, pytorch};
use gru_wgpu::{Convention, Direction, GruError, GruModel, GruWeights};

fn model(convention: Convention, direction: Direction, layers: usize, seed: u64) -> GruModel {
    // PyTorch's initialisation draws every bias, so no tensor is all zeros.
    init::gru_model(Init::PyTorch, convention, direction, layers, 3, 5, seed).expect("model")
}

#[test]
fn pytorch_state_dicts_round_trip() {
    for (direction, layers) in [(Direction::Forward, 1), (Direction::Bidirectional, 2)] {
        let m = model(Convention::ResetAfter, direction, layers, 3);
        let f = direction.num_directions() * 5;
        let (w, b) = init::dense(Init::PyTorch, f, 2, 4);
        let head = HeadTensors {
            weight: &w,
            bias: &b,
        };
        let tensors = pytorch_state_dict(&m, "gru.", Some(head)).expect("export");
        let bytes = encode_safetensors(&tensors).expect("encode");
        let back = pytorch::parse(&bytes, "model.safetensors", None).expect("import");
        assert_eq!(back.model, m, "{direction:?}, {layers} layers");
        assert_eq!(back.prefix, "gru.");
        assert_eq!(back.ignored, ["head.bias", "head.weight"]);
        let read = back.head.expect("the head read back");
        assert_eq!(
            (read.weight.as_slice(), read.bias.as_slice()),
            (&w[..], &b[..])
        );
        // The head as written, PyTorch's nn.Linear order.
        let named: Vec<&str> = tensors.iter().map(|t| t.0.as_str()).collect();
        assert!(named.contains(&"gru.weight_hh_l0"), "{named:?}");
        let weight = tensors.iter().find(|t| t.0 == "head.weight").expect("head");
        assert_eq!(
            (weight.1.as_slice(), weight.2.as_slice()),
            (&[2, f][..], &w[..])
        );
    }
}

#[test]
fn keras_weights_round_trip() {
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        let m = model(convention, Direction::Forward, 1, 7);
        let (w, b) = init::dense(Init::Keras, 5, 1, 8);
        let head = HeadTensors {
            weight: &w,
            bias: &b,
        };
        let tensors = keras_weights(&m, Some(head)).expect("export");
        let bytes = encode_npz(&tensors).expect("encode");
        let back = keras::parse(&bytes, "model.npz", None).expect("import");
        assert_eq!(back.reset_after, convention == Convention::ResetAfter);
        let (got, want) = (&back.model.layers()[0][0], &m.layers()[0][0]);
        assert_eq!((got.w(), got.r()), (want.w(), want.r()), "{convention:?}");
        let h3 = 15;
        match convention {
            Convention::ResetAfter => assert_eq!(got.b(), want.b()),
            // Keras's one bias is the sum the network adds (Wb + Rb), the recurrent part 0.
            Convention::ResetBefore => {
                let sum: Vec<f32> = (0..h3).map(|j| want.b()[j] + want.b()[h3 + j]).collect();
                assert_eq!(&got.b()[..h3], &sum[..]);
                assert!(got.b()[h3..].iter().all(|&v| v == 0.0));
            }
        }
        let dense = back.dense.expect("dense head");
        assert_eq!((dense.in_features, dense.out_features), (5, 1));
        assert_eq!(dense.kernel, w, "(5, 1) kernel = weightᵀ of [1, 5]");
        assert_eq!(dense.bias, b);
    }
}

#[test]
fn onnx_models_round_trip() {
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        for direction in [
            Direction::Forward,
            Direction::Reverse,
            Direction::Bidirectional,
        ] {
            let m = model(convention, direction, 1, 9);
            let bytes = onnx::encode(&m).expect("encode");
            let back = onnx::parse(&bytes, "model.onnx").expect("import");
            assert_eq!(back.model, m, "{convention:?} {direction:?}");
        }
    }
    // With a clip.
    let m = model(Convention::ResetAfter, Direction::Forward, 1, 10);
    let layers: Vec<Vec<GruWeights>> = m.layers().to_vec();
    let clipped = GruModel::new(Direction::Forward, layers, Some(2.5)).expect("model");
    let back = onnx::parse(&onnx::encode(&clipped).expect("encode"), "m.onnx").expect("import");
    assert_eq!(back.model, clipped);
}

#[test]
fn what_a_framework_cannot_hold_is_a_typed_error() {
    let invalid = |r: Result<(), GruError>, needle: &str| match r {
        Err(e @ GruError::InvalidArgument { .. }) => {
            assert!(e.to_string().contains(needle), "{e} (wanted {needle:?})")
        }
        other => panic!("expected an error naming {needle:?}, got {other:?}"),
    };
    let rb = model(Convention::ResetBefore, Direction::Forward, 1, 1);
    invalid(
        pytorch_state_dict(&rb, "", None).map(drop),
        "reset-after convention",
    );
    let reverse = model(Convention::ResetAfter, Direction::Reverse, 1, 1);
    invalid(
        pytorch_state_dict(&reverse, "", None).map(drop),
        "forward or bidirectional",
    );
    let bi = model(Convention::ResetAfter, Direction::Bidirectional, 1, 1);
    invalid(keras_weights(&bi, None).map(drop), "one forward layer");
    let deep = model(Convention::ResetAfter, Direction::Forward, 2, 1);
    invalid(onnx::encode(&deep).map(drop), "one layer");
}
