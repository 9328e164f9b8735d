"""Shared helpers of the gru_wgpu pytest suite.

GPU tests never pass by skipping: with GRU_REQUIRE_GPU=1 (CI) a test that asks for the GPU
fails when there is no adapter. Without it, such a test is skipped with a line on stderr that
says why. Shapes are tiny: CI's GPU is lavapipe, a CPU.
"""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import gru_wgpu

GOLDEN = Path(__file__).resolve().parents[3] / "tests" / "data" / "golden"
# onnxruntime's f32 tolerance, the project's parity rule: |a − e| ≤ ATOL + RTOL·|e|.
ATOL, RTOL = 1e-5, 1e-4


def assert_close(got, expected, what, atol=ATOL, rtol=RTOL, seed=None):
    """Fails naming the seed, the shape, the worst index, got, expected and the tolerance."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    if got.size == 0:
        return
    excess = np.abs(got - expected) - (atol + rtol * np.abs(expected))
    excess = np.where(np.isnan(got) != np.isnan(expected), np.inf, np.nan_to_num(excess))
    worst = np.unravel_index(int(np.argmax(excess)), got.shape)
    assert excess[worst] <= 0, (
        f"{what} (seed {seed}, shape {got.shape}): worst index {tuple(int(v) for v in worst)}: "
        f"got {got[worst]!r}, expected {expected[worst]!r}, tolerance "
        f"{atol} + {rtol}·|e| = {atol + rtol * abs(expected[worst]):.3g}")


def pytest_configure(config):
    """Says on stderr (past pytest's capture) when the PyTorch comparisons cannot run."""
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.__stderr__.write("gru_wgpu tests: torch is not installed; the PyTorch comparisons "
                             "(test_torch.py) are skipped\n")


def gpu_available():
    return len(gru_wgpu.adapters()) > 0


def need(device):
    """Skips (or, with GRU_REQUIRE_GPU=1, fails) a GPU test on a machine without an adapter."""
    if device == "gpu" and not gpu_available():
        message = "no GPU adapter (install mesa-vulkan-drivers for lavapipe)"
        if os.environ.get("GRU_REQUIRE_GPU") == "1":
            pytest.fail(f"GRU_REQUIRE_GPU=1: {message}")
        print(f"SKIPPED: {message}", file=sys.stderr)
        pytest.skip(message)


@pytest.fixture(params=["gpu", "cpu"])
def device(request):
    """Each test that takes it runs on the GPU and on the CPU reference path."""
    need(request.param)
    return request.param


def load_npy(case, name):
    return np.load(GOLDEN / case / name)
