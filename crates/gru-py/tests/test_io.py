"""Saving and loading (PyTorch, Keras, ONNX files; state dicts), float16 storage, adapters()
and the model's description."""
import numpy as np
import pytest

import gru_wgpu
from conftest import (GOLDEN, assert_close, case_json, load_npy, need, need_f16,
                      read_safetensors, rng)


def sample(t=6, b=3, i=4, seed=0):
    return rng(seed).standard_normal((t, b, i)).astype(np.float32)


@pytest.mark.parametrize("fmt,ext,layers,bidir", [
    ("pytorch", "safetensors", 2, True),
    ("keras", "npz", 1, False),
    ("onnx", "onnx", 1, True),
])
def test_save_and_load_round_trip(tmp_path, device, fmt, ext, layers, bidir):
    model = gru_wgpu.GRU(4, 5, num_layers=layers, bidirectional=bidir, device=device, seed=2)
    x = sample()
    y, h_n = model(x)
    path = tmp_path / f"model.{ext}"
    model.save(path)
    back = gru_wgpu.GRU.load(path, device=device, batch_first=False)
    y2, h2 = back(x)
    assert_close(y2, y, f"{fmt} round trip y, {device}")
    assert_close(h2, h_n, f"{fmt} round trip h_n, {device}")
    model.save(tmp_path / "explicit.bin", format=fmt)
    assert (tmp_path / "explicit.bin").stat().st_size == path.stat().st_size


@pytest.mark.parametrize("layers,bidir,bias", [(1, False, True), (2, True, True),
                                               (2, False, False)])
def test_pytorch_file_holds_the_state_dict(tmp_path, layers, bidir, bias):
    """save(format="pytorch") writes state_dict() (names, shapes, values), so that
    nn.GRU(..., bias=bias).load_state_dict(safetensors.torch.load_file(path)) takes it; a
    model without biases keeps bias=False through the file."""
    model = gru_wgpu.GRU(4, 5, num_layers=layers, bidirectional=bidir, bias=bias,
                         device="cpu", seed=6)
    path = tmp_path / "m.safetensors"
    model.save(path)
    stored, sd = read_safetensors(path), model.state_dict()
    assert sorted(stored) == sorted(sd), (
        f"bias={bias}: the file holds {sorted(stored)}, state_dict() {sorted(sd)}")
    for name in sd:
        assert np.array_equal(stored[name], sd[name]), f"{name} differs from state_dict()"
    back = gru_wgpu.GRU.load(path, device="cpu")
    assert back.bias == bias, f"saved with bias={bias}, loaded back with bias={back.bias}"


def test_head_is_saved_with_the_model(tmp_path):
    x = rng(1).standard_normal((16, 5, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)
    model, _ = gru_wgpu.train(x, y, hidden_size=3, epochs=1, batch_size=8, device="cpu")
    for name in ("m.safetensors", "m.npz"):
        model.save(tmp_path / name)
        back = gru_wgpu.GRU.load(tmp_path / name, device="cpu", head="sigmoid",
                                 batch_first=True)
        assert_close(back.predict(x), model.predict(x), f"head through {name}")
    with pytest.raises(ValueError, match="layer"):
        gru_wgpu.GRU(2, 3, num_layers=2, device="cpu").save(tmp_path / "two.onnx")


def test_state_dict_round_trip_and_names(device):
    model = gru_wgpu.GRU(4, 5, num_layers=2, bidirectional=True, device=device, seed=3)
    sd = model.state_dict()
    assert sorted(sd) == sorted(f"{kind}_{m}_l{k}{sfx}" for kind, m in
                                [("weight", "ih"), ("weight", "hh"), ("bias", "ih"),
                                 ("bias", "hh")]
                                for k in range(2) for sfx in ("", "_reverse"))
    assert sd["weight_ih_l0"].shape == (15, 4) and sd["weight_ih_l1"].shape == (15, 10)
    other = gru_wgpu.GRU(4, 5, num_layers=2, bidirectional=True, device=device, seed=4)
    x = sample()
    assert not np.allclose(other(x)[0], model(x)[0])
    other.load_state_dict(sd)
    assert_close(other(x)[0], model(x)[0], f"after load_state_dict, {device}")
    no_bias = gru_wgpu.GRU(4, 5, bias=False, device=device)
    assert sorted(no_bias.state_dict()) == ["weight_hh_l0", "weight_ih_l0"]
    assert all(np.all(d["B"] == 0) for layer in no_bias.to_numpy_weights() for d in layer)


def test_to_numpy_weights_layout():
    model = gru_wgpu.GRU(4, 5, num_layers=2, bidirectional=True, device="cpu", seed=3)
    w = model.to_numpy_weights()
    assert len(w) == 2 and all(len(layer) == 2 for layer in w)
    assert w[0][0]["W"].shape == (15, 4) and w[1][1]["W"].shape == (15, 10)
    assert w[0][0]["R"].shape == (15, 5) and w[0][0]["B"].shape == (30,)
    # ONNX order z, r, h is PyTorch's r, z, n with the first two blocks swapped.
    sd = model.state_dict()
    assert np.array_equal(w[0][0]["W"][:5], sd["weight_ih_l0"][5:10])
    assert np.array_equal(w[0][0]["W"][10:], sd["weight_ih_l0"][10:])


# float16 storage keeps an 11-bit significand: each stored weight and activation is off by up
# to 2^-11 ≈ 4.9e-4 relative, and a step's gate sums add a few such errors that the next steps
# carry on (damped: the gates are contractions). Over these few steps the error stays within a
# few of those steps, which the Rust suite's f16 tolerance (atol = rtol = 5e-3, ten times one
# rounding) allows; f32's 1e-5 + 1e-4·|e| would flag the rounding itself.
F16 = dict(atol=5e-3, rtol=5e-3)


def test_float16_storage(request):
    need_f16(request.node.nodeid)
    x = sample(t=8, b=2, i=4)
    ref = gru_wgpu.GRU(4, 6, num_layers=2, device="cpu", seed=5)
    half = gru_wgpu.GRU(4, 6, num_layers=2, device="gpu", dtype="float16", seed=5)
    assert half.dtype == "float16" and "float16" in repr(half)
    y16, h16 = half(x)
    y32, h32 = ref(x)
    assert y16.dtype == np.float32, "outputs are float32 whatever the storage"
    assert_close(y16, y32, "float16 storage against the f32 reference", **F16)
    assert_close(h16, h32, "float16 storage h_n against the f32 reference", **F16)
    # The session of a float16 model stores its states in float16 too.
    session = half.session(2)
    a = session.open()
    ys = session.feed([a], np.ascontiguousarray(x[:, :1].transpose(1, 0, 2)))
    assert_close(ys[0], y32[:, 0], "float16 session against the f32 reference", **F16)


@pytest.mark.parametrize("case", ["torch_2layer_bidir_batchfirst_h0", "torch_packed_lengths"])
def test_float16_golden(case, request):
    need_f16(request.node.nodeid)
    meta = case_json(case)
    model = gru_wgpu.GRU.load(GOLDEN / case / "model.safetensors", device="gpu",
                              dtype="float16", batch_first=meta["batch_first"])
    h0 = load_npy(case, "h0.npy") if case.endswith("h0") else None
    lengths = load_npy(case, "lengths.npy") if "lengths" in case else None
    y, h_n = model(load_npy(case, "x.npy"), h0=h0, lengths=lengths)
    assert_close(y, load_npy(case, "y.npy"), f"{case} y in float16", seed=meta["seed"], **F16)
    assert_close(h_n, load_npy(case, "h_n.npy"), f"{case} h_n in float16", seed=meta["seed"],
                 **F16)


def test_float16_on_the_cpu_path_rounds_the_weights():
    """device="cpu", dtype="float16" runs the reference on f16-rounded weights: the same
    network as the GPU's float16 one, not the f32 one."""
    x = sample(t=4, b=2, i=4)
    half = gru_wgpu.GRU(4, 6, device="cpu", dtype="float16", seed=5)
    assert half.dtype == "float16"
    assert_close(half(x)[0], gru_wgpu.GRU(4, 6, device="cpu", seed=5)(x)[0],
                 "f16-rounded weights against f32 ones", **F16)


ADAPTER_KEYS = {"name", "backend", "device_type", "driver", "driver_info", "vendor", "device",
                "features", "limits"}
LIMIT_KEYS = {"max_storage_buffer_binding_size", "max_buffer_size",
              "max_compute_workgroups_per_dimension", "max_compute_invocations_per_workgroup",
              "max_compute_workgroup_storage_size", "min_uniform_buffer_offset_alignment"}


def test_adapters(request):
    need("gpu", request.node.nodeid)  # an empty list fails where GPU tests are required
    adapters = gru_wgpu.adapters()
    assert isinstance(adapters, list) and adapters
    for a in adapters:
        assert isinstance(a, dict) and set(a) == ADAPTER_KEYS, sorted(a)
        for key in ("name", "backend", "device_type", "driver", "driver_info"):
            assert isinstance(a[key], str), (key, a[key])
        assert a["name"] and a["backend"] in {"Vulkan", "Metal", "Dx12", "Gl", "BrowserWebGpu"}
        assert isinstance(a["vendor"], int) and isinstance(a["device"], int)
        assert a["features"].keys() == {"SHADER_F16", "TIMESTAMP_QUERY", "SUBGROUP"}
        assert all(isinstance(v, bool) for v in a["features"].values())
        assert a["limits"].keys() == LIMIT_KEYS, sorted(a["limits"])
        assert all(isinstance(v, int) and v > 0 for v in a["limits"].values()), a["limits"]


def test_description(device):
    m = gru_wgpu.GRU(4, 5, num_layers=2, device=device)
    assert repr(m).startswith("GRU(4, 5, num_layers=2") and m.device == device
    assert f"device='{device}'" in repr(m)
    assert m.adapter.startswith(device) and m.dtype == "float32" and m.head is None
    assert (m.input_size, m.hidden_size, m.num_layers, m.bidirectional, m.bias,
            m.reset_after, m.batch_first) == (4, 5, 2, False, True, True, False)
    assert gru_wgpu.__version__
