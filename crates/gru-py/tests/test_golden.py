"""Every inference golden case of tests/data/golden (PyTorch, Keras, onnxruntime outputs)
through gru_wgpu.GRU.load and a call, on the GPU and on the CPU reference path, within
onnxruntime's f32 tolerance; the weights the importers read equal the files' own; the ONNX
files the importer must refuse raise ValueError."""
import numpy as np
import pytest

import gru_wgpu
from conftest import GOLDEN, assert_close, case_files, case_json, load_npy, read_safetensors

TORCH = ["torch_2layer_bidir_batchfirst_h0", "torch_3layer_forward", "torch_packed_lengths",
         "torch_no_bias"]
KERAS = ["keras_reset_after_true", "keras_reset_after_false"]
CONTAINERS = ["weights.npz", "weights.safetensors"]
ONNX = ["onnx_bidir_seqlens_lbr1", "onnx_reverse_layout1_lbr0", "onnx_forward_no_bias"]


@pytest.mark.parametrize("case", TORCH)
def test_torch_cases(case, device):
    meta = case_json(case)
    seed = meta["seed"]
    model = gru_wgpu.GRU.load(GOLDEN / case / "model.safetensors", device=device,
                              batch_first=meta["batch_first"])
    assert model.device == device
    assert (model.num_layers, model.bidirectional, model.bias, model.reset_after) == \
        (meta["num_layers"], meta["bidirectional"], meta["bias"], True)
    files = case_files(case)
    h0 = load_npy(case, "h0.npy") if "h0.npy" in files else None
    lengths = load_npy(case, "lengths.npy") if "lengths.npy" in files else None
    y, h_n = model(load_npy(case, "x.npy"), h0=h0, lengths=lengths)
    assert_close(y, load_npy(case, "y.npy"), f"{case} y on {device}", seed=seed)
    assert_close(h_n, load_npy(case, "h_n.npy"), f"{case} h_n on {device}", seed=seed)


@pytest.mark.parametrize("case", TORCH)
def test_torch_state_dict_is_the_files(case):
    """state_dict() gives back the file's tensors exactly (its `gru.` prefix dropped)."""
    stored = {k.split(".")[-1]: v for k, v in
              read_safetensors(GOLDEN / case / "model.safetensors").items()}
    sd = gru_wgpu.GRU.load(GOLDEN / case / "model.safetensors", device="cpu").state_dict()
    assert sorted(sd) == sorted(stored), f"{case}: state_dict names"
    for name, value in stored.items():
        assert sd[name].dtype == np.float32 and np.array_equal(sd[name], value), \
            f"{case}: state_dict()[{name!r}] differs from the file's tensor"


@pytest.mark.parametrize("case", KERAS)
@pytest.mark.parametrize("container", CONTAINERS)
def test_keras_cases(case, container, device):
    meta = case_json(case)
    model = gru_wgpu.GRU.load(GOLDEN / case / container, device=device)
    assert model.batch_first, "Keras files load batch_first"
    assert model.reset_after == meta["convention"]["reset_after"]
    y, h_n = model(load_npy(case, "x.npy"))
    assert h_n.shape == (1,) + load_npy(case, "h.npy").shape
    assert_close(y, load_npy(case, "y.npy"), f"{case}/{container} y on {device}",
                 seed=meta["seed"])
    assert_close(h_n[0], load_npy(case, "h.npy"), f"{case}/{container} final h on {device}",
                 seed=meta["seed"])


@pytest.mark.parametrize("case", KERAS)
def test_keras_weights_convert_exactly(case):
    """ONNX layout from Keras: W = kernel.T, R = recurrent_kernel.T, B = the bias rows
    (reset_after) or the bias and zeros (reset_after=False), gate order z, r, h both."""
    w = np.load(GOLDEN / case / "weights.npz")
    (d,), = gru_wgpu.GRU.load(GOLDEN / case / "weights.npz", device="cpu").to_numpy_weights()
    bias = w["bias"]
    b = bias.reshape(-1) if bias.ndim == 2 else np.concatenate([bias, np.zeros_like(bias)])
    for name, got, want in [("W", d["W"], w["kernel"].T), ("R", d["R"], w["recurrent_kernel"].T),
                            ("B", d["B"], b)]:
        assert np.array_equal(got, want), f"{case}: {name} is not the file's weights"


@pytest.mark.parametrize("container", CONTAINERS)
def test_keras_article_classifier(container, device):
    case = "keras_classifier_seed_article"
    seed = case_json(case)["seed"]
    model = gru_wgpu.GRU.load(GOLDEN / case / container, device=device, head="sigmoid")
    x = load_npy(case, "x.npy")
    assert model.head["kind"] == "sigmoid" and model.head["weight"].shape == (1, 100)
    p = model.predict(x)
    assert p.shape == (4, 1)
    assert_close(p, load_npy(case, "predictions.npy"), f"{case} predictions on {device}",
                 seed=seed)
    _, h_n = model(x)
    assert_close(h_n[0], load_npy(case, "gru_state.npy"), f"{case} GRU state on {device}",
                 seed=seed)


def onnx_expected(case, layout):
    """ONNX's Y [T, D, B, H] ([B, T, D, H] with layout 1) and Y_h [D, B, H] ([B, D, H]) in
    the PyTorch-style shapes a call returns: y [T, B, D·H] ([B, T, D·H]), h_n [D, B, H]."""
    y, y_h = load_npy(case, "Y.npy"), load_npy(case, "Y_h.npy")
    if layout == 0:
        t, d, b, h = y.shape
        return y.transpose(0, 2, 1, 3).reshape(t, b, d * h), y_h
    b, t, d, h = y.shape
    return y.reshape(b, t, d * h), y_h.transpose(1, 0, 2)


@pytest.mark.parametrize("case", ONNX)
def test_onnx_cases(case, device):
    meta = case_json(case)
    layout = meta["layout"]
    # The file's layout=1 is read as batch_first=True (GRU.load defaults to False for ONNX).
    model = gru_wgpu.GRU.load(GOLDEN / case / "model.onnx", device=device,
                              batch_first=layout == 1)
    assert model.reset_after == (meta["convention"]["linear_before_reset"] == 1)
    assert model.bidirectional == (meta["direction"] == "bidirectional")
    files = case_files(case)
    h0 = load_npy(case, "initial_h.npy") if "initial_h.npy" in files else None
    if h0 is not None and layout == 1:
        h0 = h0.transpose(1, 0, 2)  # ONNX layout 1 keeps the state batch-first: [B, D, H]
    lens = load_npy(case, "sequence_lens.npy") if "sequence_lens.npy" in files else None
    y, h_n = model(load_npy(case, "X.npy"), h0=h0, lengths=lens)
    want_y, want_h = onnx_expected(case, layout)
    assert_close(y, want_y, f"{case} Y on {device}", seed=meta["seed"])
    assert_close(h_n, want_h, f"{case} Y_h on {device}", seed=meta["seed"])


@pytest.mark.parametrize("case", ONNX)
def test_onnx_weights_are_the_initializers(case):
    """to_numpy_weights() is ONNX's own layout: the node's W, R, B initializers exactly."""
    meta = case_json(case)
    layers = gru_wgpu.GRU.load(GOLDEN / case / "model.onnx", device="cpu").to_numpy_weights()
    assert len(layers) == 1 and len(layers[0]) == meta["num_directions"]
    files = case_files(case)
    for k, d in enumerate(layers[0]):
        # A reverse-only node's one direction is ONNX's direction 0.
        assert np.array_equal(d["W"], load_npy(case, "W.npy")[k]), f"{case}: W[{k}]"
        assert np.array_equal(d["R"], load_npy(case, "R.npy")[k]), f"{case}: R[{k}]"
        b = load_npy(case, "B.npy")[k] if "B.npy" in files else np.zeros(d["B"].shape, np.float32)
        assert np.array_equal(d["B"], b), f"{case}: B[{k}]"


@pytest.mark.parametrize("path,needle", [
    ("onnx_unsupported_activation/model.onnx", "HardSigmoid"),
    ("onnx_two_gru_nodes/model.onnx", "GRU"),
    # PyTorch's own export: 3 GRU nodes glued by 37 other nodes (golden README).
    ("torch_3layer_forward/model.onnx", "GRU"),
])
def test_onnx_refusals(path, needle, device):
    with pytest.raises(ValueError, match=needle):
        gru_wgpu.GRU.load(GOLDEN / path, device=device)
