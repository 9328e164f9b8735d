"""The package adds no copy of X or Y beyond the upload and the readback, and never changes
the caller's arrays.

NumPy reports its data buffers to tracemalloc, so a copy (or conversion) of X made by the
Python layer shows up in the traced peak of the call; the outputs are the library's own
result vectors handed to NumPy (allocated by Rust, not traced). A float32 C-contiguous X must
therefore leave a traced peak far below X's size, while a float64 X (converted once, as
documented) must show at least the float32 copy — which proves the measurement sees copies.
"""
import tracemalloc

import numpy as np
import pytest

import gru_wgpu
from conftest import rng


def test_no_copy_of_x_or_y(device):
    t, b, i, h = 64, 8, 64, 16
    model = gru_wgpu.GRU(i, h, device=device)
    x = np.random.default_rng(3).standard_normal((t, b, i)).astype(np.float32)
    model(x)  # warm-up: pipelines, scratch buffers
    tracemalloc.start()
    try:
        y, h_n = model(x)
        _, peak32 = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        model(x.astype(np.float64))
        _, peak64 = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert y.shape == (t, b, h) and h_n.shape == (1, b, h)
    # The float64 array itself was allocated inside the traced region as well (2·x.nbytes),
    # and its float32 conversion (x.nbytes) on top.
    assert peak64 >= x.nbytes, (
        f"device={device}: a float64 X should be converted (traced peak {peak64} bytes, "
        f"X float32 {x.nbytes} bytes): the measurement does not see copies")
    assert peak32 < x.nbytes // 4, (
        f"device={device}: float32 X [{t}, {b}, {i}] ({x.nbytes} bytes) made the call allocate "
        f"{peak32} traced bytes: the Python layer copied X (tolerance: < X/4)")
    # Y is handed over, not copied: NumPy views a buffer it does not own the allocation of
    # through its base (the 1-D array made from the library's vector).
    assert y.base is not None and y.base.nbytes == y.nbytes


def _calls(device, dtype):
    """(name, call, arrays it is given) for every entry point that takes arrays, the failing
    calls included; every array is `dtype` (float32 is read in place, float64 converted)."""
    g = rng(21)
    f = lambda *shape: g.standard_normal(shape).astype(dtype)  # noqa: E731
    m = gru_wgpu.GRU(3, 4, num_layers=2, device=device, seed=1)
    x, h0, lengths = f(5, 2, 3), f(2, 2, 4), np.array([5, 2], np.int64)
    bad_h0 = f(1, 2, 4)
    sd = {k: v.astype(dtype) for k, v in m.state_dict().items()}
    tx, ty, tl = f(6, 5, 3), np.array([0, 1, 1, 0, 1, 0], np.int64), np.array([5, 4, 3, 5, 1, 5])
    bad_y = ty + 2
    trained, _ = gru_wgpu.train(tx.astype(np.float32), ty, hidden_size=4, epochs=0,
                                device=device)
    session = m.session(4)
    state, frames, bad_frames = f(2, 4), f(2, 3, 3), f(2, 3, 2)
    a, b = session.open(), session.open()
    return [
        ("model(x)", lambda: m(x), [x]),
        ("model(x, h0, lengths)", lambda: m(x, h0, lengths), [x, h0, lengths]),
        ("model.forward(x, h0)", lambda: m.forward(x, h0), [x, h0]),
        ("model(x, bad h0)", lambda: m(x, bad_h0), [x, bad_h0]),
        ("model(x, lengths out of range)", lambda: m(x, lengths=lengths + 1), [x, lengths]),
        ("predict(x, lengths)", lambda: trained.predict(tx, lengths=tl), [tx, tl]),
        ("load_state_dict(sd)", lambda: m.load_state_dict(sd), list(sd.values())),
        ("session.open(state)", lambda: session.open(state), [state]),
        ("session.set_state", lambda: session.set_state(a, state), [state]),
        ("session.feed", lambda: session.feed([a, b], frames), [frames]),
        ("session.feed(lengths)", lambda: session.feed([a, b], frames, lengths=[3, 1]), [frames]),
        ("session.feed(bad frames)", lambda: session.feed([a, b], bad_frames), [bad_frames]),
        ("session.feed(bad lengths)", lambda: session.feed([a, b], frames, lengths=[4, 1]),
         [frames]),
        ("train", lambda: gru_wgpu.train(tx, ty, lengths=tl, hidden_size=3, epochs=1,
                                         batch_size=4, device=device,
                                         validation_data=(tx, ty, tl)), [tx, ty, tl]),
        ("train(bad labels)", lambda: gru_wgpu.train(tx, bad_y, hidden_size=3, device=device),
         [tx, bad_y]),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_callers_arrays_are_unchanged(device, dtype):
    """No call, succeeding or refused, writes to (or reshapes, or retypes) an array given."""
    for name, call, arrays in _calls(device, dtype):
        copies = [a.copy() for a in arrays]
        flags = [(a.dtype, a.shape, a.strides, a.flags.writeable) for a in arrays]
        try:
            call()
        except ValueError:
            assert "bad" in name or "out of range" in name, f"{name} raised"
        else:
            assert "bad" not in name and "out of range" not in name, f"{name} did not raise"
        for k, (arr, copy, flag) in enumerate(zip(arrays, copies, flags)):
            assert (arr.dtype, arr.shape, arr.strides, arr.flags.writeable) == flag, \
                f"{name} on {device}, {np.dtype(dtype).name}: argument {k} changed its layout"
            assert np.array_equal(arr, copy), (
                f"{name} on {device}, {np.dtype(dtype).name}: argument {k} was written to "
                f"(first change at {np.argwhere(arr != copy)[0].tolist()})")
