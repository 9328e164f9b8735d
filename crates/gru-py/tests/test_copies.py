"""The package adds no copy of X or Y beyond the upload and the readback.

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


@pytest.mark.parametrize("device", ["gpu", "cpu"])
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
