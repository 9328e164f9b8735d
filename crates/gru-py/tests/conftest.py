"""Shared helpers and hooks of the gru_wgpu pytest suite.

GPU tests never pass by skipping. As in the Rust suite (tests/README.md), `GRU_REQUIRE_GPU`
unset or `1` (CI) makes a test that asks for the GPU fail when `gru_wgpu.adapters()` is empty,
and a model built with `device="gpu"` that raises fails its test; only `GRU_REQUIRE_GPU=0`
lets a machine without an adapter skip them, each skip announced on stderr as
`SKIPPED in <test>: <why>`. The float16 tests likewise fail on an adapter without SHADER_F16
unless `GRU_ALLOW_NO_F16=1`. The one other allowed skip is test_torch.py when torch is not
installed (said on stderr at the start of the run). Any other skip fails the run (see
`pytest_sessionfinish`), and so does a run that collects no tests.

Shapes are tiny: CI's GPU is lavapipe, a CPU.
"""
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import gru_wgpu

GOLDEN = Path(__file__).resolve().parents[3] / "tests" / "data" / "golden"
# onnxruntime's f32 tolerance, the project's parity rule: |a − e| ≤ ATOL + RTOL·|e|.
ATOL, RTOL = 1e-5, 1e-4

# The seed of the random data of the running test (set by `rng`), named by assert_close.
_SEED = [None]


def rng(seed):
    """`np.random.default_rng(seed)`, remembering the seed for assert_close's message."""
    _SEED[0] = seed
    return np.random.default_rng(seed)


@pytest.fixture(autouse=True)
def _forget_seed():
    _SEED[0] = None
    yield


def assert_close(got, expected, what, atol=ATOL, rtol=RTOL, seed=None):
    """Fails naming the seed, the shape, the worst index, got, expected and the tolerance.

    `|got − expected| ≤ atol + rtol·|expected|` element-wise; NaN must meet NaN. `seed`
    defaults to the last one given to `rng` in this test.
    """
    seed = _SEED[0] if seed is None else seed
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, (
        f"{what} (seed {seed}): shape {got.shape}, expected {expected.shape}")
    if got.size == 0:
        return
    excess = np.abs(got - expected) - (atol + rtol * np.abs(expected))
    excess = np.where(np.isnan(got) != np.isnan(expected), np.inf, np.nan_to_num(excess))
    worst = np.unravel_index(int(np.argmax(excess)), got.shape)
    assert excess[worst] <= 0, (
        f"{what} (seed {seed}, shape {got.shape}): worst index {tuple(int(v) for v in worst)}: "
        f"got {got[worst]!r}, expected {expected[worst]!r}, |diff| "
        f"{abs(got[worst] - expected[worst]):.3g} > tolerance {atol} + {rtol}·|e| = "
        f"{atol + rtol * abs(expected[worst]):.3g}")


def announce_skip(name, why):
    """One `SKIPPED in <test>: <why>` line on stderr, past pytest's capture."""
    capman = _CONFIG[0].pluginmanager.getplugin("capturemanager") if _CONFIG[0] else None
    if capman is None:
        sys.__stderr__.write(f"SKIPPED in {name}: {why}\n")
        return
    with capman.global_and_fixture_disabled():
        sys.stderr.write(f"SKIPPED in {name}: {why}\n")
        sys.stderr.flush()


def gpu_required():
    """GPU tests are required unless GRU_REQUIRE_GPU=0 (the Rust suite's rule)."""
    return os.environ.get("GRU_REQUIRE_GPU", "1") != "0"


def gpu_available():
    return len(gru_wgpu.adapters()) > 0


def need(device, name="?"):
    """Fails a GPU test on a machine without an adapter (skips it, announced, only with
    GRU_REQUIRE_GPU=0)."""
    if device == "gpu" and not gpu_available():
        message = ("gru_wgpu.adapters() is empty: no GPU adapter (install mesa-vulkan-drivers "
                   "for lavapipe)")
        if gpu_required():
            pytest.fail(f"{message}; GPU tests are required (set GRU_REQUIRE_GPU=0 to skip)")
        announce_skip(name, f"{message}; GRU_REQUIRE_GPU=0")
        pytest.skip(f"{message}; GRU_REQUIRE_GPU=0")


def need_f16(name="?"):
    """The GPU, with SHADER_F16 (fails without it unless GRU_ALLOW_NO_F16=1)."""
    need("gpu", name)
    if any(a["features"]["SHADER_F16"] for a in gru_wgpu.adapters()):
        return
    message = "no adapter has SHADER_F16, so the float16 tests cannot run"
    if os.environ.get("GRU_ALLOW_NO_F16") == "1":
        allowed_by = "GRU_ALLOW_NO_F16=1"
    elif not gpu_required():
        allowed_by = "GRU_REQUIRE_GPU=0"
    else:
        pytest.fail(f"{message}; set GRU_ALLOW_NO_F16=1 to skip them on this adapter")
    announce_skip(name, f"{message}; {allowed_by}")
    pytest.skip(f"{message}; {allowed_by}")


@pytest.fixture(params=["gpu", "cpu"])
def device(request):
    """Each test that takes it runs on the GPU and on the CPU reference path."""
    need(request.param, request.node.nodeid)
    return request.param


def load_npy(case, name):
    return np.load(GOLDEN / case / name)


def case_json(case):
    return json.loads((GOLDEN / case / "case.json").read_text())


def case_files(case):
    return {p.name for p in (GOLDEN / case).iterdir()}


_ST_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


def read_safetensors(path):
    """A .safetensors file as {name: array}, read without the safetensors package (8-byte
    little-endian header length, a JSON header, then the raw tensors)."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        raw = data[8 + n + start:8 + n + end]
        out[name] = np.frombuffer(raw, dtype=_ST_DTYPES[meta["dtype"]]).reshape(meta["shape"])
    return out


# ---- hooks -------------------------------------------------------------------------------

TORCH_SKIP = "torch is not installed"
_ALLOWED_SKIPS = (TORCH_SKIP, "GRU_REQUIRE_GPU=0", "GRU_ALLOW_NO_F16=1")
_SKIPS = []
_CONFIG = [None]


def pytest_configure(config):
    """Says on stderr (past pytest's capture) when the PyTorch comparisons cannot run."""
    _CONFIG[0] = config
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.__stderr__.write(f"gru_wgpu tests: {TORCH_SKIP}; the PyTorch comparisons "
                             "(test_torch.py) are skipped\n")


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(
            report.longrepr)
        _SKIPS.append((report.nodeid, reason))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """A run that collects no tests fails (pytest's exit 5, kept even if a plugin zeroed it),
    and so does any skip other than the allowed ones (torch missing, or the GPU / float16
    skips that GRU_REQUIRE_GPU=0 / GRU_ALLOW_NO_F16=1 ask for)."""
    if session.testscollected == 0:
        sys.__stderr__.write("gru_wgpu tests: no tests were collected; that is a failure\n")
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
        return
    stray = [(n, r) for n, r in _SKIPS if not any(a in r for a in _ALLOWED_SKIPS)]
    if stray:
        for n, r in stray:
            sys.__stderr__.write(f"gru_wgpu tests: a skip that is not allowed: {n}: {r}\n")
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
