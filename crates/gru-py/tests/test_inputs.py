"""Bad inputs raise the documented exceptions (ValueError for shapes, dtypes, values, strings
and files that are not models; OSError, FileNotFoundError when missing, for files that cannot
be read), with the library's one-line message; conversions and edge values behave as
documented."""
import numpy as np
import pytest

import gru_wgpu
from conftest import GOLDEN, assert_close, rng

I, H, L = 3, 4, 2
TORCH_FILE = GOLDEN / "torch_no_bias" / "model.safetensors"


def model_on(device, **kw):
    return gru_wgpu.GRU(I, H, num_layers=L, device=device, seed=5, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_inputs_are_converted(device, dtype):
    m = model_on(device)
    g = rng(11)
    x = g.standard_normal((5, 2, I)).astype(dtype)
    h0 = g.uniform(-1, 1, (L, 2, H)).astype(dtype)
    lengths = np.array([5, 3], dtype=np.int32)
    y, h_n = m(x, h0=h0, lengths=lengths)
    assert y.dtype == np.float32 and y.shape == (5, 2, H) and h_n.shape == (L, 2, H)
    ref, ref_h = model_on("cpu")(x.astype(np.float32), h0.astype(np.float32), lengths)
    assert_close(y, ref, f"y from {np.dtype(dtype).name} on {device}")
    assert_close(h_n, ref_h, f"h_n from {np.dtype(dtype).name} on {device}")
    assert np.all(y[3:, 1] == 0), "y must be zero past an entry's length"


def test_other_layouts_and_byte_orders(device):
    m = model_on(device)
    x = rng(4).standard_normal((6, 2, I)).astype(np.float32)
    y, h_n = m(x)
    for what, variant in [("big-endian float32", x.astype(">f4")),
                          ("Fortran order", np.asfortranarray(x)),
                          ("nested lists", x.tolist())]:
        yv, hv = m(variant)
        assert_close(yv, y, f"y from {what} on {device}")
        assert_close(hv, h_n, f"h_n from {what} on {device}")
    wide = rng(5).standard_normal((6, 5, I)).astype(np.float32)
    view = wide[:, ::2, :]  # a strided view is read correctly (converted once)
    assert_close(m(view)[0], m(view.copy())[0], f"strided x on {device}")
    # Whole numbers stored as floats are taken as lengths (lengths saved as float32).
    assert_close(m(x, lengths=np.array([6.0, 2.0], np.float32))[0], m(x, lengths=[6, 2])[0],
                 "lengths given as whole float32 numbers")


def test_unbatched_and_batch_first(device):
    m = model_on(device)
    x = rng(2).standard_normal((6, I)).astype(np.float32)
    h0 = rng(3).uniform(-1, 1, (L, H)).astype(np.float32)
    y, h_n = m(x, h0)
    assert y.shape == (6, H) and h_n.shape == (L, H)
    y3, h3 = m(x[:, None, :], h0[:, None, :])
    assert_close(y, y3[:, 0], "unbatched y against B = 1")
    assert_close(h_n, h3[:, 0], "unbatched h_n against B = 1")
    yl, hl = m(x, h0, lengths=[4])
    assert yl.shape == (6, H) and np.all(yl[4:] == 0)
    assert_close(hl, m(x[:4], h0)[1], "unbatched h_n with lengths=[4]")
    m.batch_first = True
    yb, hb = m(x[None], h0[:, None, :])
    assert yb.shape == (1, 6, H) and hb.shape == (L, 1, H)
    assert_close(yb[0], y, "batch_first y against unbatched")
    assert_close(hb[:, 0], h_n, "batch_first h_n against unbatched")


def test_zero_lengths_and_empty_batches(device):
    """A length of 0 gives zeros in y and h_n (onnxruntime's semantics, documented on the
    library's GruInput::sequence_lens), with or without h0; B = 0 gives empty outputs."""
    m = model_on(device)
    x = rng(8).standard_normal((5, 2, I)).astype(np.float32)
    h0 = rng(9).uniform(-1, 1, (L, 2, H)).astype(np.float32)
    for h in (None, h0):
        y, h_n = m(x, h, lengths=[0, 5])
        assert np.all(y[:, 0] == 0) and np.all(h_n[:, 0] == 0), "length 0: zeros"
        full, full_h = m(x[:, 1:], None if h is None else h[:, 1:])
        assert_close(y[:, 1], full[:, 0], "the full entry beside a length-0 one")
        assert_close(h_n[:, 1], full_h[:, 0], "the full entry's h_n beside a length-0 one")
    y, h_n = m(np.zeros((5, 0, I), np.float32))
    assert y.shape == (5, 0, H) and h_n.shape == (L, 0, H)


X = np.zeros((5, 2, I), np.float32)


@pytest.mark.parametrize("call,needle", [
    (lambda m: m(np.zeros((5, 2, I + 1), np.float32)), r"x: expected \[T, B, I=3\]"),
    (lambda m: m(np.zeros((5, 2, I), np.int64)), "x: expected a float32"),
    (lambda m: m(np.zeros((5, 2, I), np.complex64)), "x: expected a float32"),
    (lambda m: m(np.zeros((5, 2, I), bool)), "x: expected a float32"),
    (lambda m: m(None), "x: expected a float32"),
    (lambda m: m("not an array"), "x: "),
    (lambda m: m([[1.0, 2.0], [1.0]]), "x: not an array"),
    (lambda m: m(np.zeros((2, 5, 2, I), np.float32)), "x: expected"),
    (lambda m: m(np.zeros(I, np.float32)), "x: expected"),
    (lambda m: m(np.zeros((0, 2, I), np.float32)), "T"),
    (lambda m: m(X, h0=np.zeros((1, 2, H), np.float32)), r"h0: expected \[L·D=2, B=2, H=4\]"),
    (lambda m: m(X, h0=np.zeros((L, 3, H), np.float32)), r"h0: expected \[L·D=2, B=2, H=4\]"),
    (lambda m: m(X, h0=np.zeros((L, 2, H), np.int32)), "h0: expected a float32"),
    (lambda m: m(X[:, 0], h0=np.zeros((L, 1, H), np.float32)), r"h0: expected \[L·D=2, H=4\]"),
    (lambda m: m(X, lengths=[5]), r"lengths: expected \[B=2\]"),
    (lambda m: m(X, lengths=[5, 5, 5]), r"lengths: expected \[B=2\]"),
    (lambda m: m(X, lengths=[5, 6]), r"0\.\.=5"),
    (lambda m: m(X, lengths=[5, -1]), r"0\.\.=5"),
    (lambda m: m(X, lengths=np.array([2**63, 1], np.uint64)), r"0\.\.=5"),
    (lambda m: m(X, lengths=[5.5, 1]), "whole numbers"),
    (lambda m: m(X, lengths=[np.nan, 1]), "whole numbers"),
    (lambda m: m(X, lengths=[[5, 5]]), "1-D"),
    (lambda m: m(X, lengths=np.array([True, True])), "lengths: expected integers"),
    (lambda m: m.predict(X), "no head"),
    (lambda m: m.save("model.bin"), "format"),
    (lambda m: m.save("model.npz", format="tflite"), "format"),
    (lambda m: m.session(0), "streams"),
])
def test_bad_calls_raise_value_error(device, call, needle):
    with pytest.raises(ValueError, match=needle):
        call(model_on(device))


@pytest.mark.parametrize("kwargs,needle", [
    (dict(device="tpu"), "invalid device"),
    (dict(device=""), "invalid device"),
    (dict(dtype="int8"), "invalid dtype"),
    (dict(dtype="bfloat16"), "invalid dtype"),
    (dict(init="xavier"), "invalid init"),
    (dict(num_layers=0), "layers"),
])
def test_bad_constructor_arguments(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        gru_wgpu.GRU(I, H, **kwargs)


def test_negative_sizes_are_value_errors():
    for args, kw, needle in [((-3, H), {}, "input_size"), ((I, -1), {}, "hidden_size"),
                             ((I, H), {"num_layers": -2}, "num_layers")]:
        with pytest.raises(ValueError, match=f"{needle}: expected a value ≥ 0, got -"):
            gru_wgpu.GRU(*args, device="cpu", **kw)
    with pytest.raises(ValueError, match="streams: expected a value ≥ 0"):
        gru_wgpu.GRU(I, H, device="cpu").session(-1)
    x = np.zeros((4, 2, I), np.float32)
    for kw, needle in [({"hidden_size": -4}, "hidden_size"), ({"batch_size": -1}, "batch_size"),
                       ({"epochs": -1}, "epochs")]:
        with pytest.raises(ValueError, match=needle):
            gru_wgpu.train(x, np.zeros(4), **{"hidden_size": 3, **kw}, device="cpu")


def test_zero_sizes_are_refused():
    for i, h in [(I, 0), (0, H)]:
        with pytest.raises(ValueError, match="size"):
            gru_wgpu.GRU(i, h, device="cpu")


@pytest.mark.parametrize("kwargs,needle", [
    (dict(device="tpu"), "invalid device"),
    (dict(dtype="double"), "invalid dtype"),
    (dict(head="relu"), "invalid head"),
    (dict(prefix="encoder."), "prefix"),
])
def test_bad_load_arguments(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        gru_wgpu.GRU.load(TORCH_FILE, **{"device": "cpu", **kwargs})


@pytest.mark.parametrize("kwargs,needle", [
    (dict(device="tpu"), "invalid device"),
    (dict(init="xavier"), "invalid init"),
    (dict(head="relu"), "invalid head"),
    (dict(optimizer="lbfgs"), "invalid optimizer"),
])
def test_bad_train_strings(kwargs, needle):
    x = np.zeros((4, 3, I), np.float32)
    with pytest.raises(ValueError, match=needle):
        gru_wgpu.train(x, np.zeros(4), hidden_size=2, **{"device": "cpu", **kwargs})


def test_keras_reset_after_must_agree():
    with pytest.raises(ValueError, match="reset_after"):
        gru_wgpu.GRU.load(GOLDEN / "keras_reset_after_true" / "weights.npz", device="cpu",
                          keras_reset_after=False)


def test_files_that_are_not_models(tmp_path, device):
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        gru_wgpu.GRU.load(tmp_path / "missing.safetensors", device=device)
    with pytest.raises(OSError):
        gru_wgpu.GRU.load(tmp_path, device=device)  # a directory
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage that is no protobuf model \xff\xff")
    with pytest.raises(ValueError):
        gru_wgpu.GRU.load(junk, device=device)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        gru_wgpu.GRU.load(empty, device=device)
    arr = tmp_path / "x.npy"
    np.save(arr, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="npy"):
        gru_wgpu.GRU.load(arr, device=device)
    text = tmp_path / "notes.npz"
    text.write_text("not a zip archive\n")
    with pytest.raises(ValueError):
        gru_wgpu.GRU.load(text, device=device)
    with pytest.raises(FileNotFoundError):
        model_on(device).save(tmp_path / "no" / "such" / "dir" / "m.safetensors")


def test_state_dict_errors(device):
    m = model_on(device)
    sd = m.state_dict()
    with pytest.raises(ValueError, match="expected a GRU of"):
        gru_wgpu.GRU(I, H + 1, num_layers=L, device=device).load_state_dict(sd)
    bad = dict(sd)
    bad["weight_hh_l0"] = np.zeros((3 * H, H - 1), np.float32)
    with pytest.raises(ValueError, match="weight_hh_l0"):
        m.load_state_dict(bad)
    with pytest.raises(ValueError, match="bias_hh_l1"):
        m.load_state_dict({k: v for k, v in sd.items() if k != "bias_hh_l1"})
    with pytest.raises(ValueError, match="foo"):
        m.load_state_dict({**sd, "foo": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="weight_ih_l0"):
        m.load_state_dict({**sd, "weight_ih_l0": sd["weight_ih_l0"].astype(np.int32)})
    with pytest.raises(ValueError, match="mapping"):
        m.load_state_dict([1, 2, 3])
    with pytest.raises(ValueError, match="reset-after|reset_after|nn.GRU"):
        gru_wgpu.GRU(I, H, reset_after=False, device=device).state_dict()
    with pytest.raises(ValueError, match="reset-before"):
        gru_wgpu.GRU(I, H, reset_after=False, device=device).load_state_dict(
            gru_wgpu.GRU(I, H, device="cpu").state_dict())
    # A refused load leaves the model as it was.
    x = rng(1).standard_normal((2, 1, I)).astype(np.float32)
    assert_close(m(x)[0], model_on("cpu")(x)[0], "model after refused load_state_dicts")


def test_device_gpu_raises_runtime_error_without_an_adapter():
    # With an adapter this builds a GPU model; without one it must raise RuntimeError naming
    # the fallback (never a silent CPU model).
    if gru_wgpu.adapters():
        assert gru_wgpu.GRU(I, H, device="gpu").device == "gpu"
        assert gru_wgpu.GRU(I, H, device="wgpu").device == "gpu"  # the documented alias
    else:
        with pytest.raises(RuntimeError, match="device=\"cpu\""):
            gru_wgpu.GRU(I, H, device="gpu")
