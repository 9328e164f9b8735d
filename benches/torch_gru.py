#!/usr/bin/env python3
"""PyTorch nn.GRU on the same grid as gru-bench, writing the same JSON fields.

    python benches/torch_gru.py [--device cpu|cuda] [--quick] [--hidden 128,256]
        [--batch 1,16] [--seq-len 100] [--input I] [--repeats N] [--warmup N]
        [--threads N] [--json FILE]
    python benches/torch_gru.py --backward [--device cpu|cuda] [--hidden …] [--batch …]
        [--seq-len …] [--repeats N] [--warmup N] [--json FILE]
    python benches/torch_gru.py --train [--device cpu|cuda] [--hidden 128,256,512] [--batch 16,64]
        [--seq-len 100] [--input I] [--epoch-size N] [--repeats N] [--warmup N] [--json FILE]
    python benches/torch_gru.py --streaming [--device cpu|cuda] [--streams 1,16,256,1024]
        [--layers 3] [--hidden 384] [--input 128] [--frames N] [--warmup N] [--json FILE]

Each row times one forward of nn.GRU(I, H) (PyTorch's convention is reset-after) over
X[T, B, I], synchronising the device inside the timed region, median over --repeats after
--warmup. On CUDA this is cuDNN. Compare with: gru-bench --compare ours.json torch.json

--backward is the PyTorch side of gru-bench --backward (the same JSON field names): per shape
the inference forward (inference_mode), the training forward (autograd recording, which is
where cuDNN keeps its reserve space) and the backward of sum(Y * dY) (gradients of X, h0 and
every weight), each synchronised, µs per step, and backward / inference forward.

--train is the PyTorch side of gru-bench --train (the same JSON field names): the article's
compile, nn.GRU(I, H) -> nn.Linear(H, 1) with BCEWithLogitsLoss and RMSprop (Keras's defaults:
lr 1e-3, alpha 0.9, eps 1e-7), one whole training step (zero_grad, forward, loss, backward,
optimizer step, the loss's value read back) per timing, milliseconds per step and seconds per
epoch of --epoch-size sequences.

--streaming is the PyTorch side of gru-bench --streaming: an L-layer nn.GRU serving N
streams one frame at a time, the state kept on the device between calls (h passed back in),
each call's outputs copied to the host; it reports the round-trip latency per frame.
"""
import argparse
import json
import statistics
import sys
import time


def ints(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}")
    if any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true", help="the grid of gru-bench --quick")
    p.add_argument("--hidden", type=ints, default=[128, 256, 512, 1024])
    p.add_argument("--batch", type=ints, default=[1, 4, 16, 64])
    p.add_argument("--seq-len", type=ints, default=[100])
    p.add_argument("--input", type=int, default=None, help="input size (default: = hidden)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--json", default=None)
    p.add_argument("--streaming", action="store_true")
    p.add_argument("--backward", action="store_true")
    p.add_argument("--train", action="store_true")
    p.add_argument("--epoch-size", type=int, default=10000)
    p.add_argument("--streams", type=ints, default=[1, 16, 256, 1024])
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--frames", type=int, default=20)
    a = p.parse_args()
    if a.quick:
        a.hidden, a.batch, a.seq_len, a.repeats = [64, 256], [1, 16], [50], 3
    elif a.train:
        if a.hidden == [128, 256, 512, 1024]:
            a.hidden = [128, 256, 512]
        if a.batch == [1, 4, 16, 64]:
            a.batch = [16, 64]

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_gru.py: --device cuda but torch.cuda.is_available() is False")
    name = torch.cuda.get_device_name(0) if a.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"torch {torch.__version__} on {name}", file=sys.stderr)

    def sync():
        if a.device == "cuda":
            torch.cuda.synchronize()

    rows = []
    torch.manual_seed(0)
    if a.streaming:
        h = a.hidden[0] if a.hidden != [128, 256, 512, 1024] else 384
        i = a.input or 128
        gru = torch.nn.GRU(i, h, num_layers=a.layers).to(device).eval()
        for n in a.streams:
            state = torch.zeros(a.layers, n, h, device=device)
            times = []
            with torch.inference_mode():
                for f in range(a.warmup + max(1, a.frames)):
                    x = torch.randn(1, n, i)
                    start = time.perf_counter()
                    y, state = gru(x.to(device), state)
                    y.cpu()
                    if f >= a.warmup:
                        times.append((time.perf_counter() - start) * 1e6)
            times.sort()
            rows.append({
                "mode": "streaming",
                "convention": "ResetAfter",
                "dtype": "f32",
                "layers": a.layers,
                "input_size": i,
                "hidden_size": h,
                "streams": n,
                "frames": len(times),
                "latency_us_median": round(statistics.median(times), 3),
                "latency_us_min": round(times[0], 3),
                "latency_us_max": round(times[-1], 3),
                "path": "torch-cudnn" if a.device == "cuda" else "torch-cpu",
                "device": name,
            })
            print(f"streaming N={n}: {statistics.median(times):.1f} µs/frame", file=sys.stderr)
        emit(rows, a.json)
        return
    if a.train:
        for h in a.hidden:
            i = a.input or h
            for b in a.batch:
                for t in a.seq_len:
                    torch.manual_seed(0)
                    gru = torch.nn.GRU(i, h, batch_first=True).to(device)
                    head = torch.nn.Linear(h, 1).to(device)
                    params = list(gru.parameters()) + list(head.parameters())
                    opt = torch.optim.RMSprop(params, lr=1e-3, alpha=0.9, eps=1e-7)
                    loss_fn = torch.nn.BCEWithLogitsLoss()
                    x = torch.rand(b, t, i, device=device) * 2 - 1
                    y = (torch.arange(b, device=device) % 2).float().unsqueeze(1)

                    def step():
                        opt.zero_grad(set_to_none=True)
                        _, h_n = gru(x)
                        loss = loss_fn(head(h_n[-1]), y)
                        loss.backward()
                        opt.step()
                        return loss.item()

                    for _ in range(a.warmup):
                        step()
                    sync()
                    times = []
                    for _ in range(max(1, a.repeats)):
                        start = time.perf_counter()
                        step()
                        sync()
                        times.append((time.perf_counter() - start) * 1e3)
                    ms = statistics.median(times)
                    steps = -(-a.epoch_size // b)
                    rows.append({
                        "convention": "ResetAfter",
                        "i": i,
                        "h": h,
                        "b": b,
                        "t": t,
                        "adapter": name,
                        "path": "torch-cudnn" if a.device == "cuda" else "torch-cpu",
                        "step_ms": round(ms, 3),
                        "epoch_size": a.epoch_size,
                        "epoch_s": round(ms * steps / 1e3, 3),
                        "steps_per_s": round(1e3 / ms, 3),
                    })
                    print(f"I={i} H={h} B={b} T={t}: {ms:.2f} ms/step, {ms * steps / 1e3:.2f} s/epoch "
                          f"of {a.epoch_size}", file=sys.stderr)
        emit(rows, a.json)
        return
    if a.backward:
        for h in a.hidden:
            i = a.input or h
            gru = torch.nn.GRU(i, h).to(device)
            for b in a.batch:
                for t in a.seq_len:
                    x = torch.randn(t, b, i, device=device, requires_grad=True)
                    dy = torch.randn(t, b, h, device=device)

                    def timed(f):
                        for _ in range(a.warmup):
                            f()
                        sync()
                        out = []
                        for _ in range(max(1, a.repeats)):
                            start = time.perf_counter()
                            f()
                            sync()
                            out.append((time.perf_counter() - start) * 1e6 / t)
                        return statistics.median(out)

                    def inference():
                        with torch.inference_mode():
                            gru(x.detach())

                    fwd = timed(inference)
                    train = timed(lambda: gru(x))
                    saved = []

                    def backward():
                        y, _ = saved[-1]
                        y.backward(dy)

                    times = []
                    for r in range(a.warmup + max(1, a.repeats)):
                        saved.append(gru(x))
                        sync()
                        start = time.perf_counter()
                        backward()
                        sync()
                        if r >= a.warmup:
                            times.append((time.perf_counter() - start) * 1e6 / t)
                        saved.clear()
                        gru.zero_grad(set_to_none=True)
                        x.grad = None
                    bwd = statistics.median(times)
                    rows.append({
                        "convention": "ResetAfter",
                        "i": i,
                        "h": h,
                        "b": b,
                        "t": t,
                        "adapter": name,
                        "path": "torch-cudnn" if a.device == "cuda" else "torch-cpu",
                        "forward_us_per_step": round(fwd, 3),
                        "train_forward_us_per_step": round(train, 3),
                        "backward_us_per_step": round(bwd, 3),
                        "backward_over_forward": round(bwd / fwd, 3),
                    })
                    print(f"I={i} H={h} B={b} T={t}: forward {fwd:.1f}, training forward {train:.1f}, "
                          f"backward {bwd:.1f} µs/step, backward/forward {bwd / fwd:.2f}", file=sys.stderr)
        emit(rows, a.json)
        return
    for h in a.hidden:
        i = a.input or h
        gru = torch.nn.GRU(i, h).to(device).eval()
        for b in a.batch:
            for t in a.seq_len:
                x = torch.randn(t, b, i, device=device)
                with torch.inference_mode():
                    for _ in range(a.warmup):
                        gru(x)
                    sync()
                    times = []
                    for _ in range(max(1, a.repeats)):
                        start = time.perf_counter()
                        gru(x)
                        sync()
                        times.append(time.perf_counter() - start)
                per_step = sorted(v * 1e6 / t for v in times)
                median = statistics.median(per_step)
                rows.append({
                    "convention": "ResetAfter",
                    "input_size": i,
                    "hidden_size": h,
                    "batch": b,
                    "seq_len": t,
                    "path": "torch-cudnn" if a.device == "cuda" else "torch-cpu",
                    "us_per_step_median": round(median, 3),
                    "us_per_step_min": round(per_step[0], 3),
                    "us_per_step_max": round(per_step[-1], 3),
                    "us_per_sequence_median": round(median * t, 3),
                    "gflops": round(2 * 3 * h * (i + h) * b / (median * 1e3), 3),
                    "max_abs_err": None,
                    "device": name,
                })
                print(f"I={i} H={h} B={b} T={t}: {median:.1f} µs/step", file=sys.stderr)
    emit(rows, a.json)


def emit(rows, path):
    """Writes the rows as JSON to `path`, or to stdout."""
    text = json.dumps(rows, indent=1)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
