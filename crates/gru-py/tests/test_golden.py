"""Every inference golden case of tests/data/golden (PyTorch, Keras, onnxruntime outputs)
through gru_wgpu.GRU.load and a call, on the GPU and on the CPU reference path, within the
f32 tolerance; the two ONNX files the importer must refuse raise ValueError."""
import json

import numpy as np
import pytest

import gru_wgpu
from conftest import GOLDEN, assert_close, load_npy


def case_json(case):
    return json.loads((GOLDEN / case / "case.json").read_text())


TORCH = ["torch_2layer_bidir_batchfirst_h0", "torch_3layer_forward", "torch_packed_lengths",
         "torch_no_bias"]


@pytest.mark.parametrize("case", TORCH)
def test_torch_cases(case, device):
    meta = case_json(case)
    model = gru_wgpu.GRU.load(GOLDEN / case / "model.safetensors", device=device,
                              batch_first=meta["batch_first"])
    assert model.device == device
    files = {p.name for p in (GOLDEN / case).iterdir()}
    h0 = load_npy(case, "h0.npy") if "h0.npy" in files else None
    lengths = load_npy(case, "lengths.npy") if "lengths.npy" in files else None
    y, h_n = model(load_npy(case, "x.npy"), h0=h0, lengths=lengths)
    assert_close(y, load_npy(case, "y.npy"), f"{case} y on {device}", seed=meta["seed"])
    assert_close(h_n, load_npy(case, "h_n.npy"), f"{case} h_n on {device}", seed=meta["seed"])
    assert model.bias == (case != "torch_no_bias")


@pytest.mark.parametrize("case", ["keras_reset_after_true", "keras_reset_after_false"])
@pytest.mark.parametrize("container", ["weights.npz", "weights.safetensors"])
def test_keras_cases(case, container, device):
    meta = case_json(case)
    model = gru_wgpu.GRU.load(GOLDEN / case / container, device=device)
    assert model.batch_first and model.reset_after == meta["convention"]["reset_after"]
    y, h_n = model(load_npy(case, "x.npy"))
    assert_close(y, load_npy(case, "y.npy"), f"{case}/{container} y", seed=meta["seed"])
    assert_close(h_n[0], load_npy(case, "h.npy"), f"{case}/{container} h", seed=meta["seed"])


@pytest.mark.parametrize("container", ["weights.npz", "weights.safetensors"])
def test_keras_article_classifier(container, device):
    case = "keras_classifier_seed_article"
    model = gru_wgpu.GRU.load(GOLDEN / case / container, device=device, head="sigmoid")
    x = load_npy(case, "x.npy")
    assert model.head["kind"] == "sigmoid" and model.head["weight"].shape == (1, 100)
    assert_close(model.predict(x), load_npy(case, "predictions.npy"), f"{case} predictions")
    _, h_n = model(x)
    assert_close(h_n[0], load_npy(case, "gru_state.npy"), f"{case} GRU state")


def onnx_expected(case, layout):
    """ONNX's Y and Y_h in the PyTorch-style shapes a call returns."""
    y, y_h = load_npy(case, "Y.npy"), load_npy(case, "Y_h.npy")
    if layout == 0:
        t, d, b, h = y.shape
        return y.transpose(0, 2, 1, 3).reshape(t, b, d * h), y_h
    b, t, d, h = y.shape
    return y.reshape(b, t, d * h), y_h.transpose(1, 0, 2)


@pytest.mark.parametrize("case", ["onnx_bidir_seqlens_lbr1", "onnx_reverse_layout1_lbr0",
                                  "onnx_forward_no_bias"])
def test_onnx_cases(case, device):
    meta = case_json(case)
    layout = meta.get("layout", 0)
    model = gru_wgpu.GRU.load(GOLDEN / case / "model.onnx", device=device,
                              batch_first=layout == 1)
    files = {p.name for p in (GOLDEN / case).iterdir()}
    h0 = load_npy(case, "initial_h.npy") if "initial_h.npy" in files else None
    if h0 is not None and layout == 1:
        h0 = h0.transpose(1, 0, 2)  # ONNX layout 1 keeps the state batch-first: [B, D, H]
    lens = load_npy(case, "sequence_lens.npy") if "sequence_lens.npy" in files else None
    y, h_n = model(load_npy(case, "X.npy"), h0=h0, lengths=lens)
    want_y, want_h = onnx_expected(case, layout)
    assert_close(y, want_y, f"{case} Y on {device}", seed=meta["seed"])
    assert_close(h_n, want_h, f"{case} Y_h on {device}", seed=meta["seed"])
    assert model.reset_after == (meta["convention"]["linear_before_reset"] == 1)


@pytest.mark.parametrize("case,needle", [("onnx_unsupported_activation", "HardSigmoid"),
                                         ("onnx_two_gru_nodes", "GRU")])
def test_onnx_refusals(case, needle):
    with pytest.raises(ValueError, match=needle):
        gru_wgpu.GRU.load(GOLDEN / case / "model.onnx", device="cpu")
