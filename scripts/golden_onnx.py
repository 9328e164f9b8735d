#!/usr/bin/env python3
"""Golden files for ONNX GRU models built with onnx.helper; expected outputs from
onnxruntime's CPU provider.

Run from anywhere: `python scripts/golden_onnx.py`. Writes tests/data/golden/onnx_*/.
Models use opset 14 (the first with `layout`) and IR version 8; W, R, B are initializers
(raw float32 data), X / sequence_lens / initial_h are graph inputs. Every expected output is
also checked against the independent NumPy reference in golden_common.py.

onnxruntime's CPU GRU refuses layout = 1 ("Batchwise recurrent operations (layout == 1) are
not supported"), so the layout-1 case's expected outputs come from onnxruntime running the
same node with layout = 0 on the transposed X / initial_h, transposed back (and from the
NumPy reference, which reads the layout-1 tensors directly).
"""

from __future__ import annotations

import os
import sys

sys.dont_write_bytecode = True  # no scripts/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from golden_common import CaseWriter, assert_close, onnx_gru, versions

SCRIPT = "scripts/golden_onnx.py"
OPSET = 14
IR_VERSION = 8


def make_model(nodes, inputs, outputs, initializers, name):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="gru-wgpu scripts/golden_onnx.py",
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def run_ort(model, feeds, quiet=False):
    so = ort.SessionOptions()
    if quiet:
        so.log_severity_level = 4  # an expected refusal: no error line on the console
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def weights(rng, D, H, I, scale, bias=True):
    W = rng.uniform(-scale, scale, (D, 3 * H, I)).astype(np.float32)
    R = rng.uniform(-scale, scale, (D, 3 * H, H)).astype(np.float32)
    B = rng.uniform(-scale, scale, (D, 6 * H)).astype(np.float32) if bias else None
    return W, R, B


def to_onnx_y(y_tbdh, T, B, D, H):
    """Reference Y [T, B, D*H] -> ONNX layout-0 Y [T, D, B, H]."""
    return y_tbdh.reshape(T, B, D, H).transpose(0, 2, 1, 3)


def base_meta(**kw):
    m = {
        "framework": "onnx",
        "generator": SCRIPT,
        "versions": versions(onnx, ort),
        "opset": OPSET,
        "ir_version": IR_VERSION,
        "num_layers": 1,
    }
    m.update(kw)
    return m


def save_model(cw: CaseWriter, model, role):
    path = cw.other("model.onnx", role)
    onnx.save_model(model, path)


def save_weights(cw: CaseWriter, W, R, B):
    cw.f32("W.npy", W, "initializer W [D, 3H, I] (z, r, h), also inside model.onnx")
    cw.f32("R.npy", R, "initializer R [D, 3H, H] (z, r, h), also inside model.onnx")
    if B is not None:
        cw.f32("B.npy", B, "initializer B [D, 6H] = [Wb_z, Wb_r, Wb_h, Rb_z, Rb_r, Rb_h], also inside model.onnx")


# ---------------------------------------------------------------------------------------


def case_bidir_seqlens_lbr1():
    name, seed = "onnx_bidir_seqlens_lbr1", 21
    T, B, I, H, D = 6, 3, 3, 5, 2
    lens = [6, 2, 4]
    rng = np.random.default_rng(seed)
    W, R, Bb = weights(rng, D, H, I, 0.5)
    X = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = rng.uniform(-1, 1, (D, B, H)).astype(np.float32)
    node = helper.make_node(
        "GRU",
        ["X", "W", "R", "B", "sequence_lens", "initial_h"],
        ["Y", "Y_h"],
        hidden_size=H,
        direction="bidirectional",
        linear_before_reset=1,
    )
    model = make_model(
        [node],
        [
            vi("X", TensorProto.FLOAT, [T, B, I]),
            vi("sequence_lens", TensorProto.INT32, [B]),
            vi("initial_h", TensorProto.FLOAT, [D, B, H]),
        ],
        [vi("Y", TensorProto.FLOAT, [T, D, B, H]), vi("Y_h", TensorProto.FLOAT, [D, B, H])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"), numpy_helper.from_array(Bb, "B")],
        name,
    )
    Y, Y_h = run_ort(model, {"X": X, "sequence_lens": np.array(lens, np.int32), "initial_h": h0})
    ry, rh, _ = onnx_gru(X, [[(W[d], R[d], Bb[d]) for d in range(D)]], h0=h0, lens=lens, lbr=True, direction="bidirectional")
    assert_close(f"{name} Y", Y, to_onnx_y(ry, T, B, D, H))
    assert_close(f"{name} Y_h", Y_h, rh)
    for b, n in enumerate(lens):
        assert not Y[n:, :, b].any(), "Y must be zero past a length"

    cw = CaseWriter(
        name,
        base_meta(
            seed=seed,
            convention={"linear_before_reset": 1, "reset_after": True},
            direction="bidirectional",
            bidirectional=True,
            num_directions=D,
            layout=0,
            clip=None,
            activations="default (Sigmoid, Tanh)",
            input_size=I,
            hidden_size=H,
            seq_len=T,
            batch=B,
            sequence_lens=lens,
            graph_inputs={
                "X": "float [T, B, I]",
                "sequence_lens": "int32 [B] (saved as int64 in sequence_lens.npy: cast to int32 to feed it)",
                "initial_h": "float [D, B, H]",
            },
            initializers=["W", "R", "B"],
            weight_init="W, R, B uniform(-0.5, 0.5), then X ~ N(0, 1), then initial_h uniform(-1, 1), from np.random.default_rng(seed)",
        ),
    )
    save_model(cw, model, "single GRU node; inputs X, W, R, B, sequence_lens, initial_h")
    save_weights(cw, W, R, Bb)
    cw.f32("X.npy", X, "graph input X [T, B, I]")
    cw.i64("sequence_lens.npy", lens, "graph input sequence_lens [B] (int32 in the graph)")
    cw.f32("initial_h.npy", h0, "graph input initial_h [D, B, H]")
    cw.f32("Y.npy", Y, "output Y [T, D, B, H]: zero past each length")
    cw.f32("Y_h.npy", Y_h, "output Y_h [D, B, H]: state after each entry's last valid step (reverse: after step 0)")
    cw.finish(expected_from="onnxruntime CPUExecutionProvider")


def case_reverse_layout1_lbr0():
    name, seed = "onnx_reverse_layout1_lbr0", 22
    T, B, I, H, D = 5, 2, 3, 4, 1
    clip = 2.5
    scale = 1.5  # wide weights so that clip bites
    rng = np.random.default_rng(seed)
    W, R, Bb = weights(rng, D, H, I, scale)
    X = rng.standard_normal((B, T, I)).astype(np.float32)  # layout 1
    h0 = rng.uniform(-1, 1, (B, D, H)).astype(np.float32)  # layout 1

    def node(layout):
        return helper.make_node(
            "GRU",
            ["X", "W", "R", "B", "", "initial_h"],
            ["Y", "Y_h"],
            hidden_size=H,
            direction="reverse",
            linear_before_reset=0,
            clip=clip,
            layout=layout,
        )

    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"), numpy_helper.from_array(Bb, "B")]
    model = make_model(
        [node(1)],
        [vi("X", TensorProto.FLOAT, [B, T, I]), vi("initial_h", TensorProto.FLOAT, [B, D, H])],
        [vi("Y", TensorProto.FLOAT, [B, T, D, H]), vi("Y_h", TensorProto.FLOAT, [B, D, H])],
        inits,
        name,
    )
    # onnxruntime refuses layout=1 (checked here, so a future version that accepts it is noticed).
    try:
        run_ort(model, {"X": X, "initial_h": h0}, quiet=True)
        ort_layout1 = "accepted"
    except Exception as e:  # noqa: BLE001
        assert "layout" in str(e), e
        ort_layout1 = "refused: " + str(e).split("was false.")[-1].strip().split(".")[0]
    twin = make_model(
        [node(0)],
        [vi("X", TensorProto.FLOAT, [T, B, I]), vi("initial_h", TensorProto.FLOAT, [D, B, H])],
        [vi("Y", TensorProto.FLOAT, [T, D, B, H]), vi("Y_h", TensorProto.FLOAT, [D, B, H])],
        inits,
        name + "_layout0_twin",
    )
    Y0, Yh0 = run_ort(twin, {"X": X.transpose(1, 0, 2).copy(), "initial_h": h0.transpose(1, 0, 2).copy()})
    Y = Y0.transpose(2, 0, 1, 3)  # [T, D, B, H] -> [B, T, D, H]
    Y_h = Yh0.transpose(1, 0, 2)  # [D, B, H] -> [B, D, H]

    ry, rh, clipped = onnx_gru(
        X.transpose(1, 0, 2), [[(W[0], R[0], Bb[0])]], h0=h0.transpose(1, 0, 2), lbr=False, direction="reverse", clip=clip
    )
    assert_close(f"{name} Y", Y, to_onnx_y(ry, T, B, D, H).transpose(2, 0, 1, 3))
    assert_close(f"{name} Y_h", Y_h, rh.transpose(1, 0, 2))
    total = 3 * H * T * B
    assert clipped >= total // 10, f"clip bites too rarely: {clipped}/{total}"
    # Without clip the numbers must differ noticeably, or the case would not test clip.
    ny, _, _ = onnx_gru(X.transpose(1, 0, 2), [[(W[0], R[0], Bb[0])]], h0=h0.transpose(1, 0, 2), lbr=False, direction="reverse")
    noclip_diff = float(np.abs(to_onnx_y(ny, T, B, D, H).transpose(2, 0, 1, 3) - Y).max())
    assert noclip_diff > 1e-2, noclip_diff

    cw = CaseWriter(
        name,
        base_meta(
            seed=seed,
            convention={"linear_before_reset": 0, "reset_after": False},
            direction="reverse",
            bidirectional=False,
            num_directions=D,
            layout=1,
            clip=clip,
            activations="default (Sigmoid, Tanh)",
            input_size=I,
            hidden_size=H,
            seq_len=T,
            batch=B,
            graph_inputs={"X": "float [B, T, I] (layout 1)", "initial_h": "float [B, D, H] (layout 1)"},
            initializers=["W", "R", "B"],
            node_inputs="X, W, R, B, '' (no sequence_lens), initial_h",
            weight_init=f"W, R, B uniform(-{scale}, {scale}), then X ~ N(0, 1), then initial_h uniform(-1, 1), from np.random.default_rng(seed)",
            clip_effect=(
                f"{clipped} of {total} gate pre-activations exceed |{clip}|; without clip Y would "
                f"differ by up to {noclip_diff:.3g}"
            ),
            onnxruntime_layout1=ort_layout1,
            expected_from=(
                "onnxruntime CPUExecutionProvider on the same node with layout=0 (X and initial_h "
                "transposed in, Y and Y_h transposed out), since onnxruntime refuses layout=1; "
                "confirmed by the NumPy reference"
            ),
        ),
    )
    save_model(cw, model, "single GRU node, layout=1; inputs X, W, R, B, '', initial_h")
    save_weights(cw, W, R, Bb)
    cw.f32("X.npy", X, "graph input X [B, T, I] (layout 1)")
    cw.f32("initial_h.npy", h0, "graph input initial_h [B, D, H] (layout 1)")
    cw.f32("Y.npy", Y, "output Y [B, T, D, H] (layout 1)")
    cw.f32("Y_h.npy", Y_h, "output Y_h [B, D, H] (layout 1): the state after step 0 (reverse)")
    cw.finish()


def case_forward_no_bias():
    name, seed = "onnx_forward_no_bias", 23
    T, B, I, H, D = 4, 2, 3, 4, 1
    rng = np.random.default_rng(seed)
    W, R, _ = weights(rng, D, H, I, 0.5, bias=False)
    X = rng.standard_normal((T, B, I)).astype(np.float32)
    node = helper.make_node("GRU", ["X", "W", "R"], ["Y", "Y_h"], hidden_size=H)
    model = make_model(
        [node],
        [vi("X", TensorProto.FLOAT, [T, B, I])],
        [vi("Y", TensorProto.FLOAT, [T, D, B, H]), vi("Y_h", TensorProto.FLOAT, [D, B, H])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")],
        name,
    )
    Y, Y_h = run_ort(model, {"X": X})
    ry, rh, _ = onnx_gru(X, [[(W[0], R[0], None)]], lbr=False)
    assert_close(f"{name} Y", Y, to_onnx_y(ry, T, B, D, H))
    assert_close(f"{name} Y_h", Y_h, rh)
    from onnx.reference import ReferenceEvaluator

    eY, eYh = ReferenceEvaluator(model).run(None, {"X": X})
    assert_close(f"{name} Y (onnx.reference)", Y, eY)
    assert_close(f"{name} Y_h (onnx.reference)", Y_h, eYh)

    cw = CaseWriter(
        name,
        base_meta(
            seed=seed,
            convention={"linear_before_reset": 0, "reset_after": False},
            direction="forward",
            bidirectional=False,
            num_directions=D,
            layout=0,
            clip=None,
            activations="default (Sigmoid, Tanh)",
            attributes_set=["hidden_size"],
            input_size=I,
            hidden_size=H,
            seq_len=T,
            batch=B,
            graph_inputs={"X": "float [T, B, I]"},
            initializers=["W", "R"],
            node_inputs="X, W, R only (no B: zero biases)",
            weight_init="W, R uniform(-0.5, 0.5), then X ~ N(0, 1), from np.random.default_rng(seed)",
            expected_from="onnxruntime CPUExecutionProvider; also matches onnx.reference.ReferenceEvaluator",
        ),
    )
    save_model(cw, model, "single GRU node with only X, W, R; every attribute but hidden_size at its default")
    save_weights(cw, W, R, None)
    cw.f32("X.npy", X, "graph input X [T, B, I]")
    cw.f32("Y.npy", Y, "output Y [T, D, B, H]")
    cw.f32("Y_h.npy", Y_h, "output Y_h [D, B, H]")
    cw.finish()


def case_unsupported_activation():
    name, seed = "onnx_unsupported_activation", 24
    T, B, I, H = 3, 1, 2, 3
    rng = np.random.default_rng(seed)
    W, R, Bb = weights(rng, 1, H, I, 0.5)
    node = helper.make_node(
        "GRU",
        ["X", "W", "R", "B"],
        ["Y", "Y_h"],
        hidden_size=H,
        activations=["HardSigmoid", "Tanh"],
    )
    model = make_model(
        [node],
        [vi("X", TensorProto.FLOAT, [T, B, I])],
        [vi("Y", TensorProto.FLOAT, [T, 1, B, H]), vi("Y_h", TensorProto.FLOAT, [1, B, H])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"), numpy_helper.from_array(Bb, "B")],
        name,
    )
    # Valid ONNX that onnxruntime runs (so a refusal is the importer's choice, not a broken file).
    run_ort(model, {"X": np.zeros((T, B, I), np.float32)})
    cw = CaseWriter(
        name,
        base_meta(
            seed=seed,
            purpose="refusal test: the importer must refuse activations other than Sigmoid/Tanh and name the offending one (HardSigmoid)",
            activations=["HardSigmoid", "Tanh"],
            activation_alpha_beta="not set (HardSigmoid defaults alpha 0.2, beta 0.5)",
            direction="forward",
            input_size=I,
            hidden_size=H,
            seq_len=T,
            batch=B,
            graph_inputs={"X": "float [T, B, I]"},
            initializers=["W", "R", "B"],
            note="model only; onnx.checker accepts it and onnxruntime runs it",
        ),
    )
    save_model(cw, model, "single GRU node with activations=['HardSigmoid', 'Tanh']")
    cw.finish()


def case_two_gru_nodes():
    name, seed = "onnx_two_gru_nodes", 25
    T, B, I, H = 3, 1, 2, 3
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    for k in (1, 2):
        W, R, Bb = weights(rng, 1, H, I, 0.5)
        inits += [
            numpy_helper.from_array(W, f"W{k}"),
            numpy_helper.from_array(R, f"R{k}"),
            numpy_helper.from_array(Bb, f"B{k}"),
        ]
        nodes.append(
            helper.make_node("GRU", ["X", f"W{k}", f"R{k}", f"B{k}"], [f"Y{k}", f"Y_h{k}"], hidden_size=H, name=f"gru{k}")
        )
    outs = []
    for k in (1, 2):
        outs += [vi(f"Y{k}", TensorProto.FLOAT, [T, 1, B, H]), vi(f"Y_h{k}", TensorProto.FLOAT, [1, B, H])]
    model = make_model(nodes, [vi("X", TensorProto.FLOAT, [T, B, I])], outs, inits, name)
    run_ort(model, {"X": np.zeros((T, B, I), np.float32)})
    cw = CaseWriter(
        name,
        base_meta(
            seed=seed,
            purpose="refusal test: the importer must refuse a graph with more than one GRU node",
            structure=(
                "two GRU nodes (gru1, gru2) side by side, both reading graph input X, each with "
                "its own W{k}, R{k}, B{k} initializers and outputs Y{k}, Y_h{k}; no other node"
            ),
            input_size=I,
            hidden_size=H,
            seq_len=T,
            batch=B,
            note="model only; onnx.checker accepts it and onnxruntime runs it",
        ),
    )
    save_model(cw, model, "two parallel GRU nodes")
    cw.finish()


if __name__ == "__main__":
    case_bidir_seqlens_lbr1()
    case_reverse_layout1_lbr0()
    case_forward_no_bias()
    case_unsupported_activation()
    case_two_gru_nodes()
