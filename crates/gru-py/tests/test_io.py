"""Saving and loading (PyTorch, Keras, ONNX files; state dicts), float16 storage, adapters()
and the model's description."""
import numpy as np
import pytest

import gru_wgpu
from conftest import assert_close, need


def sample(t=6, b=3, i=4, seed=0):
    return np.random.default_rng(seed).standard_normal((t, b, i)).astype(np.float32)


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


def test_head_is_saved_with_the_model(tmp_path):
    x = np.random.default_rng(1).standard_normal((16, 5, 2)).astype(np.float32)
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


def test_float16_storage():
    need("gpu")
    x = sample(t=8, b=2, i=4)
    ref = gru_wgpu.GRU(4, 6, device="cpu", seed=5)
    half = gru_wgpu.GRU(4, 6, device="gpu", dtype="float16", seed=5)
    assert half.dtype == "float16"
    # f16 stores weights and activations with an 11-bit significand (relative step 2^-11 ≈
    # 4.9e-4); over 8 steps the error stays within a few of those steps, as the Rust suite's
    # f16 tolerance (atol = rtol = 5e-3) allows.
    y16, _ = half(x)
    y32, _ = ref(x)
    assert_close(y16, y32, "float16 storage against the f32 reference", atol=5e-3, rtol=5e-3)
    assert "float16" in repr(half)


def test_adapters_and_description():
    adapters = gru_wgpu.adapters()
    assert isinstance(adapters, list)
    for a in adapters:
        assert {"name", "backend", "device_type", "driver", "driver_info", "vendor", "device",
                "features", "limits"} <= set(a)
        assert set(a["features"]) == {"SHADER_F16", "TIMESTAMP_QUERY", "SUBGROUP"}
        assert a["limits"]["max_storage_buffer_binding_size"] > 0
    m = gru_wgpu.GRU(4, 5, num_layers=2, device="cpu")
    assert repr(m).startswith("GRU(4, 5, num_layers=2") and m.device == "cpu"
    assert "reference" in m.adapter and m.dtype == "float32" and m.head is None
    assert gru_wgpu.__version__
