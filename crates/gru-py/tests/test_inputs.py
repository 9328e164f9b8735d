"""Bad inputs raise the documented exceptions with the library's one-line message, and no
call changes the caller's arrays (float32 read in place, float64 and float16 converted)."""
import numpy as np
import pytest

import gru_wgpu
from conftest import assert_close


def model_on(device, **kw):
    return gru_wgpu.GRU(3, 4, num_layers=2, device=device, seed=5, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_inputs_are_untouched_and_converted(device, dtype):
    m = model_on(device)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 2, 3)).astype(dtype)
    h0 = rng.uniform(-1, 1, (2, 2, 4)).astype(dtype)
    lengths = np.array([5, 3], dtype=np.int32)
    copies = [a.copy() for a in (x, h0, lengths)]
    y, h_n = m(x, h0=h0, lengths=lengths)
    for a, c in zip((x, h0, lengths), copies):
        assert a.dtype == c.dtype and np.array_equal(a, c), "a call changed the caller's array"
    assert y.dtype == np.float32 and y.shape == (5, 2, 4) and h_n.shape == (2, 2, 4)
    ref, ref_h = model_on("cpu")(x.astype(np.float32), h0.astype(np.float32), lengths)
    assert_close(y, ref, f"y from {np.dtype(dtype).name} on {device}")
    assert_close(h_n, ref_h, f"h_n from {np.dtype(dtype).name} on {device}")
    assert np.all(y[3:, 1] == 0), "y must be zero past an entry's length"


def test_unbatched_and_batch_first(device):
    m = model_on(device)
    x = np.random.default_rng(2).standard_normal((6, 3)).astype(np.float32)
    y, h_n = m(x)
    assert y.shape == (6, 4) and h_n.shape == (2, 4)
    y3, h3 = m(x[:, None, :])
    assert_close(y, y3[:, 0], "unbatched y against B = 1")
    m.batch_first = True
    yb, hb = m(x[None])
    assert yb.shape == (1, 6, 4)
    assert_close(yb[0], y, "batch_first y against unbatched")
    assert_close(hb[:, 0], h_n, "batch_first h_n against unbatched")
    # A non-contiguous view is read correctly (converted once).
    xs = np.random.default_rng(4).standard_normal((6, 3, 3)).astype(np.float32)
    view = xs[:, ::2, :]
    assert_close(model_on(device)(view)[0], model_on(device)(view.copy())[0], "strided x")


@pytest.mark.parametrize("call,needle", [
    (lambda m: m(np.zeros((5, 2, 4), np.float32)), r"x: expected \[T, B, I=3\]"),
    (lambda m: m(np.zeros((5, 2, 3), np.int64)), "float32"),
    (lambda m: m(np.zeros((2, 5, 2, 3), np.float32)), "x: expected"),
    (lambda m: m(np.zeros((5, 2, 3), np.float32), h0=np.zeros((1, 2, 4), np.float32)),
     r"h0: expected \[L·D=2, B=2, H=4\]"),
    (lambda m: m(np.zeros((5, 2, 3), np.float32), lengths=[5]), r"lengths: expected \[B=2\]"),
    (lambda m: m(np.zeros((5, 2, 3), np.float32), lengths=[5, 6]), "length"),
    (lambda m: m(np.zeros((5, 2, 3), np.float32), lengths=[5, -1]), "length"),
    (lambda m: m(np.zeros((5, 2, 3), np.float32), lengths=[5.5, 1]), "whole numbers"),
    (lambda m: m(np.zeros((0, 2, 3), np.float32)), "T"),
    (lambda m: m("not an array"), "float32|array"),
    (lambda m: m.predict(np.zeros((5, 2, 3), np.float32)), "no head"),
    (lambda m: m.save("model.bin"), "format"),
    (lambda m: m.session(0), "streams"),
])
def test_bad_calls_raise_value_error(device, call, needle):
    with pytest.raises(ValueError, match=needle):
        call(model_on(device))


@pytest.mark.parametrize("kwargs,needle", [
    (dict(device="tpu"), "device"),
    (dict(dtype="int8"), "dtype"),
    (dict(init="xavier"), "init"),
])
def test_bad_constructor_arguments(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        gru_wgpu.GRU(3, 4, **kwargs)
    with pytest.raises(ValueError, match="hidden|size|H"):
        gru_wgpu.GRU(3, 0, device="cpu")


def test_files_that_are_not_models(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        gru_wgpu.GRU.load(tmp_path / "missing.safetensors", device="cpu")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage that is no protobuf model \xff\xff")
    with pytest.raises(ValueError):
        gru_wgpu.GRU.load(junk, device="cpu")
    arr = tmp_path / "x.npy"
    np.save(arr, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="npy"):
        gru_wgpu.GRU.load(arr, device="cpu")


def test_state_dict_errors():
    m = model_on("cpu")
    sd = m.state_dict()
    with pytest.raises(ValueError, match="expected a GRU of"):
        gru_wgpu.GRU(3, 5, num_layers=2, device="cpu").load_state_dict(sd)
    bad = dict(sd)
    bad["weight_hh_l0"] = np.zeros((12, 3), np.float32)
    with pytest.raises(ValueError, match="weight_hh_l0"):
        m.load_state_dict(bad)
    with pytest.raises(ValueError, match="mapping"):
        m.load_state_dict([1, 2, 3])
    with pytest.raises(ValueError, match="reset-after|reset_after|nn.GRU"):
        gru_wgpu.GRU(3, 4, reset_after=False, device="cpu").state_dict()
    # A failed load leaves the model as it was.
    x = np.ones((2, 1, 3), np.float32)
    before = m(x)[0]
    assert_close(m(x)[0], before, "model after a refused load_state_dict")


def test_device_gpu_without_adapter_is_runtime_error_or_works():
    # On a machine with an adapter this builds a GPU model; without one it must raise
    # RuntimeError naming the fallback (never a silent CPU model).
    if gru_wgpu.adapters():
        assert gru_wgpu.GRU(3, 4, device="gpu").device == "gpu"
    else:
        with pytest.raises(RuntimeError, match="device=\"cpu\""):
            gru_wgpu.GRU(3, 4, device="gpu")
