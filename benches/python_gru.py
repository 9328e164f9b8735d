#!/usr/bin/env python3
"""The Python package's cost: per-call overhead and throughput beside torch.nn.GRU.

    pip install ./crates/gru-py && cargo build --release -p gru-bench
    python benches/python_gru.py [--calls 2000] [--hidden 64,256] [--batch 1,16,64]
        [--seq-len 100] [--repeats 5] [--json FILE]

1. Overhead: a tiny GRU (I = H = 8, B = 1, T = 1) called from Python (`model(x)`, which
   converts nothing: x is a contiguous float32 array) against the same forward called from
   Rust (target/release/gru-bench --call-overhead: GpuGru::forward and the CPU reference with
   the arguments the package passes), medians and minima of --calls calls each. The
   difference is what the Python layer adds per call: argument parsing, the NumPy views,
   releasing and retaking the GIL, wrapping the outputs.
2. Throughput: `model(x)` for X[T, B, I] on the default adapter (device="gpu") and on the CPU
   reference path (device="cpu"), beside torch.nn.GRU on this machine's CPU under
   torch.inference_mode (when torch is installed), µs per step, median of --repeats after
   one warm-up. The outputs of both are compared (max abs difference).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import gru_wgpu


def ints(text):
    return [int(v) for v in text.split(",")]


def timed(fn, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times), min(times)


def rust_call(bench, calls):
    """gru-bench --call-overhead: the same tiny forward called from Rust (GPU and CPU path)."""
    out = subprocess.run([bench, "--call-overhead", "--repeats", str(calls), "--warmup", "20"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--hidden", type=ints, default=[64, 256])
    p.add_argument("--batch", type=ints, default=[1, 16, 64])
    p.add_argument("--seq-len", type=ints, default=[100])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--bench", default="target/release/gru-bench")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    rows = []

    gpu = gru_wgpu.GRU(8, 8, device="gpu")
    print(f"adapter: {gpu.adapter}")
    x = np.random.default_rng(0).standard_normal((1, 1, 8)).astype(np.float32)
    for _ in range(20):
        gpu(x)
    py_med, py_min = timed(lambda: gpu(x), a.calls)
    cpu = gru_wgpu.GRU(8, 8, device="cpu")
    cpu_med, cpu_min = timed(lambda: cpu(x), a.calls)
    row = {"kind": "overhead", "I": 8, "H": 8, "B": 1, "T": 1,
           "python_gpu_us_median": round(py_med, 2), "python_gpu_us_min": round(py_min, 2),
           "python_cpu_path_us_median": round(cpu_med, 2),
           "python_cpu_path_us_min": round(cpu_min, 2)}
    if os.path.exists(a.bench):
        rs = rust_call(a.bench, a.calls)
        row.update({k: round(v, 2) if isinstance(v, float) else v for k, v in rs.items()})
        print(f"tiny GRU (I=H=8, B=1, T=1), {a.calls} calls each, µs per call (median / min):")
        print(f"  GPU: Python {py_med:.1f} / {py_min:.1f}, Rust {rs['rust_gpu_us_median']:.1f} / "
              f"{rs['rust_gpu_us_min']:.1f}: the Python layer adds "
              f"{py_med - rs['rust_gpu_us_median']:+.1f} / {py_min - rs['rust_gpu_us_min']:+.1f}")
        print(f"  CPU path: Python {cpu_med:.1f} / {cpu_min:.1f}, Rust "
              f"{rs['rust_cpu_path_us_median']:.1f} / {rs['rust_cpu_path_us_min']:.1f}: the "
              f"Python layer adds {cpu_med - rs['rust_cpu_path_us_median']:+.1f} / "
              f"{cpu_min - rs['rust_cpu_path_us_min']:+.1f}")
    else:
        print(f"{a.bench} is missing (cargo build --release -p gru-bench): Python side only: "
              f"{py_med:.1f} µs median, {py_min:.1f} min; CPU path {cpu_med:.1f} µs",
              file=sys.stderr)
    rows.append(row)

    try:
        import torch
        torch.manual_seed(0)
        have_torch = True
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    except ImportError:
        have_torch = False
        print("torch is not installed: throughput without the torch column", file=sys.stderr)
    print(f"{'I':>5} {'H':>5} {'B':>4} {'T':>5}  {'gpu µs/step':>12} {'cpu-path µs/step':>17} "
          f"{'torch µs/step':>14} {'gpu/torch':>10} {'max |gpu−torch|':>16}")
    for h in a.hidden:
        for b in a.batch:
            for t in a.seq_len:
                x = np.random.default_rng(1).standard_normal((t, b, h)).astype(np.float32)
                if have_torch:
                    module = torch.nn.GRU(h, h)
                    model = gru_wgpu.GRU.from_torch(module, device="gpu")
                    cpu_model = gru_wgpu.GRU.from_torch(module, device="cpu")
                else:
                    model = gru_wgpu.GRU(h, h, device="gpu")
                    cpu_model = gru_wgpu.GRU(h, h, device="cpu")
                model(x)
                g_med, _ = timed(lambda: model(x), a.repeats)
                cpu_model(x)
                c_med, _ = timed(lambda: cpu_model(x), max(1, a.repeats // 2))
                r = {"kind": "throughput", "I": h, "H": h, "B": b, "T": t,
                     "gpu_us_per_step": round(g_med / t, 2),
                     "cpu_path_us_per_step": round(c_med / t, 2)}
                line = f"{h:>5} {h:>5} {b:>4} {t:>5}  {g_med / t:>12.1f} {c_med / t:>17.1f}"
                if have_torch:
                    xt = torch.from_numpy(x)
                    with torch.inference_mode():
                        module(xt)
                        t_med, _ = timed(lambda: module(xt), a.repeats)
                        ref = module(xt)[0].numpy()
                    err = float(np.abs(model(x)[0] - ref).max())
                    r.update({"torch_us_per_step": round(t_med / t, 2), "max_abs_diff": err})
                    line += f" {t_med / t:>14.1f} {g_med / t_med:>9.2f}× {err:>16.2e}"
                print(line)
                rows.append(r)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
