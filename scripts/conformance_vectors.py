#!/usr/bin/env python3
"""Conformance vectors for tests/gpu/conformance.rs: tests/data/conformance/{onnx,onnxruntime}/*.json.

Run from anywhere, with the packages of scripts/requirements-golden.txt (onnx, onnxruntime,
numpy). Three subcommands:

- `onnx [--out DIR] [--check] [--node-dir DIR]`: rebuilds DIR/onnx/test_gru_*.json from ONNX's
  GRU backend node tests. By default the cases come from the installed onnx package's own
  generators (onnx.backend.test.case.node.collect_testcases("GRU"): the export_* functions of
  onnx/backend/test/case/node/gru.py, each run after np.random.seed(0)). onnx 1.23.2's wheel
  and sdist hold no generated node-test folders (onnx/backend/test/data/node); its backend test
  loader builds the node tests from these generators in the same way. `--node-dir` reads such
  folders instead (NAME/model.onnx and NAME/test_data_set_0/input_*.pb, output_*.pb, with
  onnx.numpy_helper), e.g. from an older onnx source tree. `--check` writes nothing: it
  compares with the files in DIR and exits 1 if any byte differs (or a file is missing or
  extra), saying how.
- `ort-check [--dir DIR] [--write]`: rebuilds the single-GRU-node model (opset 14) of every
  DIR/onnxruntime/*.json from its attributes and inputs, runs it on onnxruntime's
  CPUExecutionProvider (single-threaded) and compares with the stored outputs bit for bit.
  Exits 1 if any output differs; `--write` rewrites the outputs that differ instead.
- `ort-new NAME --hidden H --seq T --batch B --input I [...]`: a new case from seeded inputs
  (np.random.default_rng(seed): W, R, B uniform(-scale, scale), then X ~ N(0, 1), then
  initial_h uniform(-1, 1)), run through onnxruntime, written to DIR/onnxruntime/NAME.json.
  A new file must also be listed in COVERED in tests/gpu/conformance.rs.

File format (json.dumps(indent=1), no trailing newline): {"name", "opset" (onnx) or
"source" (onnxruntime), "attributes", "inputs": {NAME: {"shape", "data"}}, "outputs": {...}};
data flat row-major, each value the float64 text of a float32 (sequence_lens too, as exact
integers). Every output is also checked against the independent float64 NumPy reference in
golden_common.py at onnxruntime's f32 tolerance (|a - e| <= 1e-5 + 1e-4*|e|).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings

sys.dont_write_bytecode = True  # no scripts/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from golden_common import ROOT, onnx_gru

CONFORMANCE = os.path.join(ROOT, "tests", "data", "conformance")
ORT_OPSET = 14
IR_VERSION = 8
GRU_INPUTS = ["X", "W", "R", "B", "sequence_lens", "initial_h"]
GRU_OUTPUTS = ["Y", "Y_h"]
ATTR_TYPES = {"hidden_size": int, "linear_before_reset": int, "layout": int, "direction": str, "clip": float}


# ---------------------------------------------------------------------------------------
# The JSON format
# ---------------------------------------------------------------------------------------


def dumps(obj: dict) -> str:
    """The committed files' exact formatting: one-space indent, no trailing newline."""
    return json.dumps(obj, indent=1)


def write_json(path: str, obj: dict):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(dumps(obj))
    print(f"wrote {display(path)}")


def display(path: str) -> str:
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith("..") else rel


def tensor_json(arr) -> dict:
    """{"shape", "data"}: each value the float64 text of a float32."""
    a = np.asarray(arr)
    if a.dtype.kind in "iu":
        a = a.astype(np.float64)
        assert np.all(a == a.astype(np.float32)), "integer not exact in float32"
    a = a.astype(np.float32)
    return {"shape": [int(d) for d in a.shape], "data": [float(v) for v in a.reshape(-1)]}


def tensor_array(t: dict, dtype=np.float32) -> np.ndarray:
    data = np.asarray(t["data"], np.float64)
    assert data.size == int(np.prod(t["shape"], dtype=np.int64)), "shape and data disagree"
    out = data.astype(dtype)
    assert np.array_equal(out.astype(np.float64), data), f"values not exact as {np.dtype(dtype).name}"
    return out.reshape(t["shape"])


def load_vector(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def attributes_of(node) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def inputs_for_ort(vec: dict) -> dict:
    """NAME -> array as onnxruntime takes it (sequence_lens int32, the rest float32)."""
    return {
        k: tensor_array(t, np.int32 if k == "sequence_lens" else np.float32) for k, t in vec["inputs"].items()
    }


# ---------------------------------------------------------------------------------------
# The float64 reference, in ONNX shapes
# ---------------------------------------------------------------------------------------


def reference(attrs: dict, inputs: dict) -> dict:
    """Y [T, D, B, H] and Y_h [D, B, H] (layout 1: [B, T, D, H], [B, D, H]) from the
    NumPy reference in golden_common.py."""
    layout = int(attrs.get("layout", 0))
    direction = attrs.get("direction", "forward")
    X = np.asarray(inputs["X"], np.float64)
    h0 = inputs.get("initial_h")
    if layout == 1:
        X = X.transpose(1, 0, 2)
        h0 = None if h0 is None else np.asarray(h0).transpose(1, 0, 2)
    W, R, B = inputs["W"], inputs["R"], inputs.get("B")
    D, H = W.shape[0], R.shape[2]
    T, Bt = X.shape[0], X.shape[1]
    layer = [(W[d], R[d], None if B is None else B[d]) for d in range(D)]
    lens = inputs.get("sequence_lens")
    with np.errstate(over="ignore"):  # exp(-x) of a saturating input overflows to inf: sigmoid 0
        y, yh, _ = onnx_gru(
            X, [layer], h0=h0, lens=lens, lbr=bool(attrs.get("linear_before_reset", 0)),
            direction=direction, clip=attrs.get("clip"),
        )
    Y = y.reshape(T, Bt, D, H).transpose(0, 2, 1, 3)
    if layout == 1:
        return {"Y": Y.transpose(2, 0, 1, 3), "Y_h": yh.transpose(1, 0, 2)}
    return {"Y": Y, "Y_h": yh}


def reference_error(attrs: dict, inputs: dict, outputs: dict) -> tuple[float, bool]:
    """Largest |a - e| against the reference, and whether every value is within
    onnxruntime's f32 tolerance 1e-5 + 1e-4*|e|."""
    ref = reference(attrs, inputs)
    worst, ok = 0.0, True
    for name, got in outputs.items():
        want = ref[name]
        got = np.asarray(got, np.float64)
        assert got.shape == want.shape, f"{name}: shape {got.shape} != reference {want.shape}"
        err = np.abs(got - want)
        if err.size:
            worst = max(worst, float(err.max()))
            ok = ok and bool(np.all(err <= 1e-5 + 1e-4 * np.abs(want)))
    return worst, ok


# ---------------------------------------------------------------------------------------
# onnx: ONNX's GRU backend node tests
# ---------------------------------------------------------------------------------------


def node_cases_from_generators():
    """(name, model, inputs, outputs) of onnx's GRU node tests, from its generators."""
    from onnx.backend.test.case.node import collect_testcases

    # collect_testcases imports every op's generator module, and those run (their expect()
    # calls for other ops are dropped); some of them warn about overflows on purpose.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = collect_testcases("GRU")
    for case in cases:
        if not case.name.startswith("test_gru_") or case.name.endswith("_expanded"):
            continue
        assert len(case.data_sets) == 1, case.name
        ins, outs = case.data_sets[0]
        norm = lambda v: numpy_helper.to_array(v) if isinstance(v, TensorProto) else np.asarray(v)  # noqa: E731
        yield case.name, case.model, [norm(v) for v in ins], [norm(v) for v in outs]


def node_cases_from_dir(node_dir: str):
    """(name, model, inputs, outputs) from generated folders NAME/model.onnx,
    NAME/test_data_set_0/{input,output}_K.pb."""

    def read_pbs(folder, prefix):
        files = [f for f in os.listdir(folder) if re.fullmatch(prefix + r"_[0-9]+\.pb", f)]
        out = []
        for f in sorted(files, key=lambda f: int(f[len(prefix) + 1 : -3])):
            t = TensorProto()
            with open(os.path.join(folder, f), "rb") as fh:
                t.ParseFromString(fh.read())
            out.append(numpy_helper.to_array(t))
        return out

    for name in sorted(os.listdir(node_dir)):
        if not name.startswith("test_gru_") or name.endswith("_expanded"):
            continue
        case = os.path.join(node_dir, name)
        model = onnx.load(os.path.join(case, "model.onnx"))
        data = os.path.join(case, "test_data_set_0")
        yield name, model, read_pbs(data, "input"), read_pbs(data, "output")


def node_vector(name, model, inputs, outputs) -> dict:
    assert len(model.graph.node) == 1 and model.graph.node[0].op_type == "GRU", name
    node = model.graph.node[0]
    opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    assert len(opsets) == 1, f"{name}: opset imports {model.opset_import}"
    in_names = [n for n in node.input if n]
    out_names = [n for n in node.output if n]
    assert len(in_names) == len(inputs) and len(out_names) == len(outputs), name
    return {
        "name": name,
        "opset": int(opsets[0]),
        "attributes": attributes_of(node),
        "inputs": {k: tensor_json(v) for k, v in zip(in_names, inputs)},
        "outputs": {k: tensor_json(v) for k, v in zip(out_names, outputs)},
    }


def describe_difference(new: dict, old: dict) -> list[str]:
    """How two vectors differ, key by key (max |diff| per tensor)."""
    lines = []
    for key in ("name", "opset", "source", "attributes"):
        if new.get(key) != old.get(key):
            lines.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    if list(new) != list(old):
        lines.append(f"top-level keys: {list(old)} -> {list(new)}")
    for part in ("inputs", "outputs"):
        a, b = new.get(part, {}), old.get(part, {})
        if list(a) != list(b):
            lines.append(f"{part}: {list(b)} -> {list(a)}")
        for k in a.keys() & b.keys():
            if a[k]["shape"] != b[k]["shape"]:
                lines.append(f"{part}.{k}: shape {b[k]['shape']} -> {a[k]['shape']}")
            elif a[k]["data"] != b[k]["data"]:
                d = np.abs(np.asarray(a[k]["data"]) - np.asarray(b[k]["data"]))
                lines.append(f"{part}.{k}: {int(np.count_nonzero(d))} values differ, max |diff| {d.max():.3g}")
    return lines or ["formatting only (same values)"]


def cmd_onnx(args) -> int:
    if args.node_dir:
        source, cases = f"node-test folders in {args.node_dir}", node_cases_from_dir(args.node_dir)
    else:
        source, cases = f"onnx {onnx.__version__}'s generators", node_cases_from_generators()
    print(f"source: {source}")
    failed, written = False, []
    for name, model, inputs, outputs in cases:
        vec = node_vector(name, model, inputs, outputs)
        ins = {k: tensor_array(t) for k, t in vec["inputs"].items()}
        outs = {k: tensor_array(t) for k, t in vec["outputs"].items()}
        err, ok = reference_error(vec["attributes"], ins, outs)
        print(f"{name}: opset {vec['opset']}, attributes {vec['attributes']}, "
              f"max |diff| from the float64 reference {err:.3g}{'' if ok else ' (OUTSIDE TOLERANCE)'}")
        failed |= not ok
        path = os.path.join(args.out, "onnx", f"{name}.json")
        written.append(os.path.basename(path))
        if args.check:
            if not os.path.exists(path):
                print(f"  {display(path)}: missing")
                failed = True
                continue
            with open(path, encoding="utf-8") as f:
                old = f.read()
            if old == dumps(vec):
                print(f"  {display(path)}: identical")
            else:
                failed = True
                for line in describe_difference(vec, json.loads(old)):
                    print(f"  {display(path)} differs: {line}")
        else:
            write_json(path, vec)
    folder = os.path.join(args.out, "onnx")
    extra = sorted(set(os.listdir(folder)) - set(written)) if os.path.isdir(folder) else []
    if extra:
        print(f"in {display(folder)} but not produced by {source}: {extra}")
        failed = failed or args.check
    if not written:
        print("no test_gru_* case found")
        return 1
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------
# onnxruntime
# ---------------------------------------------------------------------------------------


def output_shapes(attrs: dict, inputs: dict) -> dict:
    D, H = inputs["W"].shape[0], inputs["R"].shape[2]
    if int(attrs.get("layout", 0)) == 1:
        Bt, T = inputs["X"].shape[:2]
        return {"Y": [Bt, T, D, H], "Y_h": [Bt, D, H]}
    T, Bt = inputs["X"].shape[:2]
    return {"Y": [T, D, Bt, H], "Y_h": [D, Bt, H]}


def gru_model(attrs: dict, inputs: dict, out_names: list[str], name: str):
    """A single GRU node, every present input a graph input, opset 14."""
    node_inputs = [n if n in inputs else "" for n in GRU_INPUTS]
    while node_inputs and not node_inputs[-1]:
        node_inputs.pop()
    node_outputs = [n if n in out_names else "" for n in GRU_OUTPUTS]
    while node_outputs and not node_outputs[-1]:
        node_outputs.pop()
    typed = {}
    for k, v in attrs.items():
        assert k in ATTR_TYPES, f"{name}: attribute {k} not known to this script"
        typed[k] = ATTR_TYPES[k](v)
    node = helper.make_node("GRU", node_inputs, node_outputs, **typed)

    def vi(n, a):
        dt = TensorProto.INT32 if n == "sequence_lens" else TensorProto.FLOAT
        return helper.make_tensor_value_info(n, dt, list(a.shape))

    graph = helper.make_graph(
        [node],
        name,
        [vi(n, inputs[n]) for n in GRU_INPUTS if n in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, output_shapes(typed, inputs)[n]) for n in out_names],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ORT_OPSET)],
        ir_version=IR_VERSION,
        producer_name="gru-wgpu scripts/conformance_vectors.py",
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def run_ort(model, feeds: dict, out_names: list[str]) -> dict:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return dict(zip(out_names, sess.run(out_names, feeds)))


def ort_source() -> str:
    return f"onnxruntime {ort.__version__} CPUExecutionProvider, GRU opset {ORT_OPSET}"


def cmd_ort_check(args) -> int:
    folder = os.path.join(args.dir, "onnxruntime")
    files = sorted(f for f in os.listdir(folder) if f.endswith(".json"))
    print(f"{ort_source()}: {len(files)} files in {display(folder)}")
    failed, rewritten = False, []
    for f in files:
        path = os.path.join(folder, f)
        vec = load_vector(path)
        if "source" in vec and vec["source"] != ort_source():
            print(f"{f}: note: made by {vec['source']!r}")
        attrs = vec["attributes"]
        if int(attrs.get("layout", 0)) != 0:
            print(f"{f}: layout = {attrs['layout']}: onnxruntime's CPU GRU refuses it; skipped")
            failed = True
            continue
        feeds = inputs_for_ort(vec)
        out_names = list(vec["outputs"])
        got = run_ort(gru_model(attrs, feeds, out_names, vec["name"]), feeds, out_names)
        parts, differs = [], False
        for k in out_names:
            t = vec["outputs"][k]
            g = np.asarray(got[k], np.float32).astype(np.float64)
            if list(g.shape) != t["shape"] or g.size != len(t["data"]):
                parts.append(f"{k} shape {list(g.shape)} != stored {t['shape']}")
                differs = True
                continue
            # Bit for bit: the stored float64 text must be exactly onnxruntime's float32 value
            # (a stored value that is not a float32 at all differs too), sign of zero included.
            want = np.asarray(t["data"], np.float64).reshape(g.shape)
            n = int(np.count_nonzero((g != want) | (np.signbit(g) != np.signbit(want))))
            d = float(np.abs(g - want).max()) if g.size else 0.0
            parts.append(f"{k} max |diff| {d:.3g}" + (f" ({n} of {g.size} values not bit-identical)" if n else ""))
            differs |= n > 0
        ref_in = {k: v.astype(np.float64) for k, v in feeds.items()}
        err, ok = reference_error(attrs, ref_in, got)
        parts.append(f"reference max |diff| {err:.3g}" + ("" if ok else " OUTSIDE TOLERANCE"))
        print(f"{f}: " + "; ".join(parts))
        failed |= not ok
        if differs:
            if args.write:
                vec["outputs"] = {k: tensor_json(got[k]) for k in out_names}
                write_json(path, vec)
                rewritten.append(f)
            else:
                failed = True
    if failed:
        print("DIFFERENCES (see above)")
    elif rewritten:
        print(f"rewrote the outputs of {len(rewritten)} file(s): {rewritten}")
    else:
        print("all outputs bit-identical")
    return 1 if failed else 0


def cmd_ort_new(args) -> int:
    name = args.name
    if not re.fullmatch(r"[a-z0-9_]+", name):
        sys.exit(f"name {name!r}: use lower-case letters, digits and _ (it becomes the file name)")
    path = os.path.join(args.out, "onnxruntime", f"{name}.json")
    if os.path.exists(path) and not args.force:
        sys.exit(f"{display(path)} exists (--force to replace it)")
    H, T, Bt, I = args.hidden, args.seq, args.batch, args.input
    if min(H, T, Bt, I) < 1:
        sys.exit("--hidden, --seq, --batch and --input must be at least 1")
    D = 2 if args.direction == "bidirectional" else 1
    rng = np.random.default_rng(args.seed)
    s = args.scale
    inputs = {
        "W": rng.uniform(-s, s, (D, 3 * H, I)).astype(np.float32),
        "R": rng.uniform(-s, s, (D, 3 * H, H)).astype(np.float32),
    }
    if not args.no_bias:
        inputs["B"] = rng.uniform(-s, s, (D, 6 * H)).astype(np.float32)
    inputs["X"] = rng.standard_normal((T, Bt, I)).astype(np.float32)
    if args.sequence_lens is not None:
        lens = [int(v) for v in args.sequence_lens.split(",")]
        if len(lens) != Bt or not all(0 <= v <= T for v in lens):
            sys.exit(f"--sequence-lens needs {Bt} values in 0..={T}")
        inputs["sequence_lens"] = np.array(lens, np.int32)
    if args.initial_h:
        inputs["initial_h"] = rng.uniform(-1, 1, (D, Bt, H)).astype(np.float32)
    inputs = {k: inputs[k] for k in GRU_INPUTS if k in inputs}  # ONNX's input order
    attrs = {"hidden_size": H, "linear_before_reset": args.linear_before_reset, "direction": args.direction}
    if args.clip is not None:
        attrs["clip"] = float(np.float32(args.clip))
    out_names = list(GRU_OUTPUTS)
    got = run_ort(gru_model(attrs, inputs, out_names, name), inputs, out_names)
    err, ok = reference_error(attrs, {k: v.astype(np.float64) for k, v in inputs.items()}, got)
    print(f"{name}: max |diff| from the float64 reference {err:.3g}")
    if not ok:
        sys.exit(f"{name}: onnxruntime and the reference disagree beyond the f32 tolerance; not written")
    vec = {
        "name": name,
        "source": ort_source(),
        "attributes": attrs,
        "inputs": {k: tensor_json(v) for k, v in inputs.items()},
        "outputs": {k: tensor_json(got[k]) for k in out_names},
    }
    write_json(path, vec)
    print(f"now list \"onnxruntime/{name}.json\" in COVERED in tests/gpu/conformance.rs, with a test that runs it")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    o = sub.add_parser("onnx", help="rebuild onnx/test_gru_*.json from ONNX's GRU node tests")
    o.add_argument("--out", default=CONFORMANCE, help="conformance folder (default: %(default)s)")
    o.add_argument("--check", action="store_true", help="compare with the files in --out, write nothing")
    o.add_argument("--node-dir", help="read generated node-test folders from here instead of the generators")

    c = sub.add_parser("ort-check", help="rerun onnxruntime/*.json and compare bit for bit")
    c.add_argument("--dir", default=CONFORMANCE, help="conformance folder (default: %(default)s)")
    c.add_argument("--write", action="store_true", help="rewrite the outputs that differ")

    n = sub.add_parser("ort-new", help="a new onnxruntime case from seeded inputs")
    n.add_argument("name")
    n.add_argument("--hidden", type=int, required=True)
    n.add_argument("--seq", type=int, required=True)
    n.add_argument("--batch", type=int, required=True)
    n.add_argument("--input", type=int, required=True)
    n.add_argument("--direction", choices=["forward", "reverse", "bidirectional"], default="forward")
    n.add_argument("--linear-before-reset", type=int, choices=[0, 1], default=0)
    n.add_argument("--clip", type=float)
    n.add_argument("--initial-h", action="store_true")
    n.add_argument("--sequence-lens", help="comma-separated, one per batch entry, e.g. 3,0,2")
    n.add_argument("--no-bias", action="store_true")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--scale", type=float, default=0.5, help="W, R, B ~ uniform(-scale, scale)")
    n.add_argument("--out", default=CONFORMANCE, help="conformance folder (default: %(default)s)")
    n.add_argument("--force", action="store_true", help="replace an existing file")

    args = p.parse_args()
    return {"onnx": cmd_onnx, "ort-check": cmd_ort_check, "ort-new": cmd_ort_new}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
