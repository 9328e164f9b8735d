#!/usr/bin/env python3
"""Golden files from PyTorch's nn.GRU (reset-after convention, gate order r, z, n).

Run from anywhere: `python scripts/golden_pytorch.py`. Writes tests/data/golden/torch_*/.
Needs torch, numpy, safetensors (and onnx + onnxruntime for the optional ONNX export of
torch_3layer_forward). Every number comes from seeded generators; single-threaded so the
bytes are reproducible. Each output is also checked against the independent NumPy
reference in golden_common.py through the PyTorch -> ONNX weight conversion.
"""

from __future__ import annotations

import io
import os
import sys
import warnings

sys.dont_write_bytecode = True  # no scripts/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import safetensors
import safetensors.torch
import torch

from golden_common import CaseWriter, assert_close, onnx_gru, torch_to_onnx, versions

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

SCRIPT = "scripts/golden_pytorch.py"
WEIGHT_RANGE = 0.5  # weights uniform(-0.5, 0.5): wider than PyTorch's default 1/sqrt(H)


def make_gru(seed: int, **kw) -> torch.nn.GRU:
    torch.manual_seed(seed)
    gru = torch.nn.GRU(**kw)
    with torch.no_grad():
        for p in gru.parameters():
            p.uniform_(-WEIGHT_RANGE, WEIGHT_RANGE)
    gru.eval()
    return gru


def reference(gru: torch.nn.GRU, x_tbi, h0=None, lens=None):
    """Y [T, B, D*H], Y_h [L*D, B, H] from the NumPy reference (x sequence-major)."""
    sd = {k: v.detach().numpy() for k, v in gru.state_dict().items()}
    D = 2 if gru.bidirectional else 1
    layers = [
        [torch_to_onnx(sd, k, d == 1, bias=gru.bias) for d in range(D)] for k in range(gru.num_layers)
    ]
    y, h, _ = onnx_gru(
        x_tbi, layers, h0=h0, lens=lens, lbr=True, direction="bidirectional" if D == 2 else "forward"
    )
    return y, h


def base_meta(gru: torch.nn.GRU, seq_len: int, batch: int, seed: int) -> dict:
    return {
        "framework": "pytorch",
        "generator": SCRIPT,
        "versions": versions(torch, safetensors),
        "seed": seed,
        "convention": {
            "reset_after": True,
            "onnx_linear_before_reset": 1,
            "gate_order": "r, z, n (PyTorch)",
        },
        "num_layers": gru.num_layers,
        "bidirectional": gru.bidirectional,
        "num_directions": 2 if gru.bidirectional else 1,
        "batch_first": gru.batch_first,
        "layout": "batch-major [B, T, I]" if gru.batch_first else "sequence-major [T, B, I]",
        "bias": gru.bias,
        "input_size": gru.input_size,
        "hidden_size": gru.hidden_size,
        "seq_len": seq_len,
        "batch": batch,
        "weight_init": f"every parameter uniform(-{WEIGHT_RANGE}, {WEIGHT_RANGE}) after torch.manual_seed(seed)",
        "input_init": "x ~ N(0, 1) (torch.randn after the weights)",
    }


def save_state_dict(cw: CaseWriter, module: torch.nn.Module, prefix: str):
    sd = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    path = cw.other(
        "model.safetensors",
        "state_dict via safetensors.torch.save_file"
        + (f" (names prefixed '{prefix}')" if prefix else " (unprefixed names)"),
        tensors={k: v.numpy() for k, v in sd.items()},
        prefix=prefix,
    )
    safetensors.torch.save_file(sd, path)


# ---------------------------------------------------------------------------------------


def case_2layer_bidir_batchfirst_h0():
    seed, B, T, I, H, L = 1, 3, 6, 5, 7, 2

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = make_gru(seed, input_size=I, hidden_size=H, num_layers=L, bidirectional=True, batch_first=True)

        def forward(self, x, h0):
            return self.gru(x, h0)

    model = Wrapper().eval()
    x = torch.randn(B, T, I)
    h0 = torch.rand(L * 2, B, H) * 2 - 1  # uniform(-1, 1): a plausible state
    with torch.no_grad():
        y, hn = model(x, h0)
    assert tuple(y.shape) == (B, T, 2 * H) and tuple(hn.shape) == (L * 2, B, H)

    ry, rh = reference(model.gru, x.numpy().transpose(1, 0, 2), h0=h0.numpy())
    assert_close("torch a y", y.numpy(), ry.transpose(1, 0, 2))
    assert_close("torch a h_n", hn.numpy(), rh)

    cw = CaseWriter("torch_2layer_bidir_batchfirst_h0", base_meta(model.gru, T, B, seed))
    save_state_dict(cw, model, "gru.")
    cw.f32("x.npy", x.numpy(), "input X, batch_first [B, T, I]")
    cw.f32("h0.npy", h0.numpy(), "initial state h0 [L*D, B, H], uniform(-1, 1); index l*D + d")
    cw.f32("y.npy", y.numpy(), "output [B, T, D*H] (forward units then reverse units)")
    cw.f32("h_n.npy", hn.numpy(), "final state h_n [L*D, B, H]; index l*D + d")
    cw.finish(h0_init="uniform(-1, 1) (torch.rand * 2 - 1 after x)")


def case_3layer_forward():
    seed, T, B, I, H, L = 2, 8, 2, 4, 6, 3
    gru = make_gru(seed, input_size=I, hidden_size=H, num_layers=L, bias=True)
    x = torch.randn(T, B, I)
    with torch.no_grad():
        y, hn = gru(x)
    ry, rh = reference(gru, x.numpy())
    assert_close("torch b y", y.numpy(), ry)
    assert_close("torch b h_n", hn.numpy(), rh)

    cw = CaseWriter("torch_3layer_forward", base_meta(gru, T, B, seed))
    save_state_dict(cw, gru, "")
    cw.f32("x.npy", x.numpy(), "input X, sequence-major [T, B, I]")
    cw.f32("y.npy", y.numpy(), "output [T, B, H]")
    cw.f32("h_n.npy", hn.numpy(), "final state h_n [L, B, H] (no h0: zeros)")

    extra = {"h0": "none (zeros)"}
    note = export_onnx(cw, gru, x, y, hn)
    extra["onnx_export"] = note
    cw.finish(**extra)


def export_onnx(cw: CaseWriter, gru, x, y, hn) -> dict:
    """Optional: PyTorch's legacy (TorchScript) ONNX exporter, dynamo=False."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover
        return {"skipped": f"onnx/onnxruntime not installed: {e}"}
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                gru,
                (x,),
                buf,
                dynamo=False,
                input_names=["x"],
                output_names=["y", "h_n"],
            )
    except Exception as e:  # pragma: no cover
        return {"skipped": f"torch.onnx.export(dynamo=False) failed: {type(e).__name__}: {e}"}
    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    oy, oh = sess.run(None, {"x": x.numpy()})
    err = max(assert_close("onnx export y", oy, y.numpy()), assert_close("onnx export h_n", oh, hn.numpy()))
    ops = [n.op_type for n in model.graph.node]
    grus = [n for n in model.graph.node if n.op_type == "GRU"]
    attrs = sorted({(a.name, onnx.helper.get_attribute_value(a)) for n in grus for a in n.attribute})
    path = cw.other(
        "model.onnx",
        "the same network exported by torch.onnx.export(dynamo=False); NOT a single-GRU-node graph",
        opset=model.opset_import[0].version,
        ir_version=model.ir_version,
        gru_nodes=len(grus),
        gru_attributes={k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs},
        op_types=sorted(set(ops)),
        node_count=len(ops),
        graph_inputs=[i.name for i in model.graph.input],
        graph_outputs=[o.name for o in model.graph.output],
        onnxruntime_max_abs_diff_vs_torch=float(f"{err:.3g}"),
    )
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return {
        "file": "model.onnx",
        "note": (
            f"{len(grus)} GRU nodes (one per layer, linear_before_reset=1, gates reordered to z,r,h) "
            "glued by Shape/Gather/Unsqueeze/Concat/Expand (zero initial_h) and Squeeze; "
            "onnxruntime reproduces y/h_n. An importer of single-GRU-node graphs must refuse it."
        ),
    }


def case_packed_lengths():
    seed, T, B, I, H, L = 3, 7, 4, 3, 5, 2
    lengths = [7, 3, 5, 1]
    gru = make_gru(seed, input_size=I, hidden_size=H, num_layers=L, bidirectional=True)
    x = torch.randn(T, B, I)
    D = 2
    y = torch.zeros(T, B, D * H)
    hn = torch.zeros(L * D, B, H)
    with torch.no_grad():
        for b, n in enumerate(lengths):
            yb, hb = gru(x[:n, b : b + 1])  # each sequence alone, no packing
            y[:n, b] = yb[:, 0]
            hn[:, b] = hb[:, 0]
        # Cross-check: PackedSequence path.
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
        py, ph = gru(packed)
        py, plens = torch.nn.utils.rnn.pad_packed_sequence(py, total_length=T)
    assert plens.tolist() == lengths
    assert torch.allclose(py, y, atol=1e-6, rtol=0), (py - y).abs().max()
    assert torch.allclose(ph, hn, atol=1e-6, rtol=0), (ph - hn).abs().max()
    packed_diff = max((py - y).abs().max().item(), (ph - hn).abs().max().item())

    ry, rh = reference(gru, x.numpy(), lens=np.array(lengths))
    assert_close("torch c y", y.numpy(), ry)
    assert_close("torch c h_n", hn.numpy(), rh)

    cw = CaseWriter("torch_packed_lengths", base_meta(gru, T, B, seed))
    save_state_dict(cw, gru, "")
    cw.f32("x.npy", x.numpy(), "input X, sequence-major [T, B, I]; steps past a length are real data, not zeros")
    cw.i64("lengths.npy", lengths, "per-entry sequence lengths [B]")
    cw.f32("y.npy", y.numpy(), "output [T, B, D*H], zero past each length")
    cw.f32("h_n.npy", hn.numpy(), "final state h_n [L*D, B, H]: state after each entry's last valid step")
    cw.finish(
        h0="none (zeros)",
        lengths=lengths,
        expected_from=(
            "PyTorch run on each sequence alone (x[:len_b, b:b+1]), assembled; the reverse "
            "direction of entry b starts at step len_b - 1"
        ),
        packed_sequence_check=(
            "pack_padded_sequence(enforce_sorted=False) + pad_packed_sequence agree within "
            f"1e-6 (max abs diff {packed_diff:.3g})"
        ),
    )


def case_no_bias():
    seed, T, B, I, H = 4, 5, 2, 3, 4
    gru = make_gru(seed, input_size=I, hidden_size=H, bias=False)
    x = torch.randn(T, B, I)
    with torch.no_grad():
        y, hn = gru(x)
    ry, rh = reference(gru, x.numpy())
    assert_close("torch d y", y.numpy(), ry)
    assert_close("torch d h_n", hn.numpy(), rh)
    cw = CaseWriter("torch_no_bias", base_meta(gru, T, B, seed))
    save_state_dict(cw, gru, "")
    cw.f32("x.npy", x.numpy(), "input X, sequence-major [T, B, I]")
    cw.f32("y.npy", y.numpy(), "output [T, B, H]")
    cw.f32("h_n.npy", hn.numpy(), "final state h_n [1, B, H]")
    cw.finish(h0="none (zeros)", note="bias=False: the state_dict has no bias_* tensors")


if __name__ == "__main__":
    case_2layer_bidir_batchfirst_h0()
    case_3layer_forward()
    case_packed_lengths()
    case_no_bias()
