"""Streaming sessions give the one-shot model(x, h0) result (outputs per stream, final state =
h_n) after any chunking — fixed ones and seeded random schedules of chunks of 1, 3 or the
rest, with per-stream lengths — on the GPU and the CPU path; open(state=...), set_state,
reset, close and slot reuse; errors for closed, unknown, negative and repeated ids; eight
threads feeding eight sessions, calling one model, or feeding one shared session give the
serial results."""
import subprocess
import sys
import threading

import numpy as np
import pytest

import gru_wgpu
from conftest import assert_close, rng

I, H, L, T = 3, 5, 2, 12


def setup(device, streams=4, seed=7):
    model = gru_wgpu.GRU(I, H, num_layers=L, device=device, seed=seed)
    x = rng(seed).standard_normal((T, streams, I)).astype(np.float32)
    return model, x


@pytest.mark.parametrize("chunks", [[1] * T, [3, 3, 3, 3], [5, 1, 6], [T]])
def test_chunked_feeding_matches_one_shot(device, chunks):
    model, x = setup(device)
    y_ref, h_ref = model(x)  # [T, B, H], [L, B, H]
    session = model.session(streams=8)
    ids = [session.open() for _ in range(x.shape[1])]
    frames = x.transpose(1, 0, 2)  # [k, T, I]
    outs, t = [], 0
    for c in chunks:
        outs.append(session.feed(ids, np.ascontiguousarray(frames[:, t:t + c])))
        t += c
    y = np.concatenate(outs, axis=1)  # [k, T, H]
    assert_close(y, y_ref.transpose(1, 0, 2), f"session y, chunks {chunks}, {device}")
    for k, sid in enumerate(ids):
        assert_close(session.state(sid), h_ref[:, k], f"stream {k} state, chunks {chunks}")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_schedules_match_one_shot(device, seed):
    """Streams opened from zeros or from a state, fed in a random order: each feed takes a
    random subset of the streams with frames left and a chunk C of 1, 3 or the rest, each
    stream using min(C, what it has left) of it (lengths); the padding past a stream's
    length is garbage that must be ignored. Every stream's outputs and final state equal the
    one-shot model(x, h0)."""
    streams = 5
    model, x = setup(device, streams=streams, seed=seed)
    g = rng(seed)
    h0 = g.uniform(-1, 1, (L, streams, H)).astype(np.float32)
    opened_with_state = g.random(streams) < 0.5
    h0[:, ~opened_with_state] = 0
    y_ref, h_ref = model(x, h0)
    session = model.session(streams=streams + 2)
    ids = [session.open(state=h0[:, k]) if opened_with_state[k] else session.open()
           for k in range(streams)]
    frames = x.transpose(1, 0, 2)  # [k, T, I]
    done = np.zeros(streams, int)
    outs = [[] for _ in range(streams)]
    schedule = []
    while (done < T).any():
        left = np.flatnonzero(done < T)
        pick = g.choice(left, size=g.integers(1, len(left) + 1), replace=False)
        rest = int(max(T - done[k] for k in pick))
        c = int(g.choice([1, 3, rest]))
        lens = [min(c, T - done[k]) for k in pick]
        chunk = g.standard_normal((len(pick), c, I)).astype(np.float32)  # garbage padding
        for r, k in enumerate(pick):
            chunk[r, :lens[r]] = frames[k, done[k]:done[k] + lens[r]]
        y = session.feed([ids[k] for k in pick], chunk, lengths=lens)
        assert y.shape == (len(pick), c, H)
        for r, k in enumerate(pick):
            assert np.all(y[r, lens[r]:] == 0), "outputs past a stream's length must be zero"
            outs[k].append(y[r, :lens[r]])
            done[k] += lens[r]
        schedule.append((pick.tolist(), c))
    for k in range(streams):
        what = f"stream {k} on {device}, schedule {schedule}"
        assert_close(np.concatenate(outs[k]), y_ref[:, k], f"y of {what}")
        assert_close(session.state(ids[k]), h_ref[:, k], f"final state of {what}")


def test_close_and_reuse_starts_from_zeros(device):
    model, x = setup(device, streams=2)
    session = model.session(streams=2)
    a, b = session.open(), session.open()
    session.feed([a, b], np.ascontiguousarray(x[:4].transpose(1, 0, 2)))
    session.close(a)
    assert session.open_streams == 1
    c = session.open()  # a's slot, a new id, a zero state
    assert c not in (a, b) and session.open_streams == 2
    assert np.all(session.state(c) == 0), "a reopened slot must start from zeros"
    y = session.feed([c], np.ascontiguousarray(x[:, :1].transpose(1, 0, 2)))
    y_ref, h_ref = model(x[:, :1])
    assert_close(y[0], y_ref[:, 0], f"a reused slot's outputs on {device}")
    assert_close(session.state(c), h_ref[:, 0], f"a reused slot's state on {device}")
    with pytest.raises(ValueError, match="closed or unknown"):
        session.close(a)  # twice
    for call in (lambda: session.reset(a), lambda: session.set_state(a, np.zeros((L, H))),
                 lambda: session.state(12345)):
        with pytest.raises(ValueError, match="closed or unknown"):
            call()


def test_negative_ids_are_value_errors(device):
    """A negative id is an unknown stream: every method raises ValueError naming it, as for
    any other unknown id (the module's error rule: ValueError for values)."""
    model, _ = setup(device, streams=1)
    session = model.session(streams=2)
    session.open()
    calls = {
        "state(-1)": lambda: session.state(-1),
        "close(-1)": lambda: session.close(-1),
        "reset(-1)": lambda: session.reset(-1),
        "set_state(-1, zeros)": lambda: session.set_state(-1, np.zeros((L, H), np.float32)),
        "feed([-1], frames)": lambda: session.feed([-1], np.zeros((1, I), np.float32)),
    }
    wrong = []
    for name, call in calls.items():
        try:
            call()
            wrong.append(f"{name}: no error")
        except ValueError as e:
            if "stream -1:" not in str(e):
                wrong.append(f"{name}: ValueError not naming stream -1: {e}")
        except Exception as e:  # noqa: BLE001 — the wrong kind is the finding
            wrong.append(f"{name}: {type(e).__name__}: {e}")
    assert not wrong, f"device={device}: expected ValueError('stream -1: ...'), got:\n" + \
        "\n".join(wrong)


def test_one_step_frames_lengths_and_state_calls(device):
    model, x = setup(device, streams=2)
    session = model.session(streams=2)
    a = session.open()
    h = rng(1).uniform(-1, 1, (L, H)).astype(np.float32)
    b = session.open(state=h)
    assert session.open_streams == 2 and session.capacity == 2
    with pytest.raises(ValueError, match="free slot|slot|open"):
        session.open()
    y = session.feed([a, b], x[0])  # [k, I]: one step
    assert y.shape == (2, H)
    y_ref, h_ref = model(x[:1], h0=np.stack([np.zeros((L, H), np.float32), h], axis=1))
    assert_close(y, y_ref[0], "one-step feed")
    assert_close(session.state(b), h_ref[:, 1], "state after one step")
    # lengths: stream b runs 1 of 3 steps; its outputs past that are zero.
    before = session.state(b)
    y = session.feed([a, b], np.ascontiguousarray(x[1:4].transpose(1, 0, 2)), lengths=[3, 1])
    assert np.all(y[1, 1:] == 0)
    one, h1 = model(x[1:2, 1:2], h0=before[:, None, :])
    assert_close(session.state(b), h1[:, 0], "state after a 1-of-3 feed")
    session.set_state(a, h)
    assert_close(session.state(a), h, "set_state")
    session.reset(a)
    assert np.all(session.state(a) == 0)
    session.close(a)
    with pytest.raises(ValueError, match="closed or unknown"):
        session.state(a)
    with pytest.raises(ValueError, match="closed or unknown"):
        session.feed([a], x[0, :1])
    c = session.open()  # the slot is reused, the id is new
    assert c not in (a, b)


def test_bad_feeds_change_nothing(device):
    model, x = setup(device, streams=2)
    session = model.session(streams=4)
    a, b = session.open(), session.open()
    session.feed([a, b], x[0])
    before = [session.state(a), session.state(b)]
    frames = x[:2].transpose(1, 0, 2).copy()
    kept = frames.copy()
    for call, needle in [
        (lambda: session.feed([a, a], frames), "twice"),
        (lambda: session.feed([a, b], frames[:, :, :2]), "frames: expected"),
        (lambda: session.feed([a], frames), "frames: expected"),
        (lambda: session.feed([a, b], frames, lengths=[2, 3]), "lengths"),
        (lambda: session.feed([a, b], frames, lengths=[0, 1]), "lengths"),
        (lambda: session.feed([a, 99], frames), "closed or unknown"),
        (lambda: session.feed([a, b], frames.astype(np.int32)), "float32"),
        (lambda: session.set_state(a, np.zeros((L, H + 1), np.float32)), "state: expected"),
    ]:
        with pytest.raises(ValueError, match=needle):
            call()
    assert np.array_equal(frames, kept)
    assert_close(session.state(a), before[0], "state a after refused feeds")
    assert_close(session.state(b), before[1], "state b after refused feeds")
    with pytest.raises(ValueError, match="forward"):
        gru_wgpu.GRU(I, H, bidirectional=True, device=device).session(2)


def run_session(model, x, chunks):
    session = model.session(streams=x.shape[1])
    ids = [session.open() for _ in range(x.shape[1])]
    frames = x.transpose(1, 0, 2)
    outs, t = [], 0
    for c in chunks:
        outs.append(session.feed(ids, np.ascontiguousarray(frames[:, t:t + c])))
        t += c
    return np.concatenate(outs, axis=1), [session.state(s) for s in ids]


def test_eight_threads_feeding_eight_sessions(device):
    model, _ = setup(device)
    g = rng(100)
    inputs = [g.standard_normal((T, 3, I)).astype(np.float32) for k in range(8)]
    chunks = [2, 4, 1, 5]
    serial = [run_session(model, x, chunks) for x in inputs]
    results = [None] * 8
    errors = []
    start = threading.Barrier(8)

    def work(k):
        try:
            start.wait()
            results[k] = run_session(model, inputs[k], chunks)
        except Exception as e:  # reported below with the thread's index
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(not t.is_alive() for t in threads), "a feeding thread hung"
    for k in range(8):
        assert np.array_equal(results[k][0], serial[k][0]), f"thread {k}: y differs from serial"
        for s, (g, e) in enumerate(zip(results[k][1], serial[k][1])):
            assert np.array_equal(g, e), f"thread {k}, stream {s}: state differs from serial"


def test_threads_calling_one_model(device):
    model, _ = setup(device)
    g = rng(200)
    xs = [g.standard_normal((T, 2, I)).astype(np.float32) for k in range(8)]
    serial = [model(x) for x in xs]
    out = [None] * 8
    threads = [threading.Thread(target=lambda k=k: out.__setitem__(k, model(xs[k])))
               for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for k in range(8):
        assert np.array_equal(out[k][0], serial[k][0]) and np.array_equal(out[k][1], serial[k][1])


# Run in a child process: a deadlock there freezes the interpreter (a thread blocked in
# native code while holding the GIL), which no in-process timeout can report.
ONE_SESSION_CHILD = r"""
import faulthandler, sys, threading
import numpy as np
import gru_wgpu

faulthandler.dump_traceback_later(WATCHDOG, exit=True)  # a hang: stacks on stderr, exit 1
device = sys.argv[1]
# Long enough feeds (the work done with the GIL released) that calls overlap on any machine.
I, H, L, T = 3, 64, 2, 48
model = gru_wgpu.GRU(I, H, num_layers=L, device=device, seed=7)
g = np.random.default_rng(300)
inputs = [g.standard_normal((T, 1, I)).astype(np.float32) for _ in range(8)]
chunkings = [[4 * c for c in cs] for cs in
             [[1] * 12, [3] * 4, [12], [5, 1, 6], [2] * 6, [4, 4, 4], [6, 6], [1, 11]]]
serial = [model(x) for x in inputs]
session = model.session(streams=8)
ids = [session.open() for _ in range(8)]
results, errors = [None] * 8, []
start = threading.Barrier(8)

def work(k):
    try:
        start.wait()
        frames, outs, t = inputs[k].transpose(1, 0, 2), [], 0
        for c in chunkings[k]:
            outs.append(session.feed([ids[k]], np.ascontiguousarray(frames[:, t:t + c])))
            t += c
        results[k] = (np.concatenate(outs, axis=1)[0], session.state(ids[k]))
    except Exception as e:
        errors.append((k, repr(e)))

threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit(f"errors: {errors}")
for k in range(8):
    for what, got, want in [("y", results[k][0], serial[k][0][:, 0]),
                            ("state", results[k][1], serial[k][1][:, 0])]:
        bad = np.abs(got - want) > 1e-5 + 1e-4 * np.abs(want)
        if bad.any():
            w = tuple(np.argwhere(bad)[0])
            sys.exit(f"thread {k} {what}, chunks {chunkings[k]} (seed 300, shape {got.shape}): "
                     f"worst index {w}: got {got[w]}, expected {want[w]}, "
                     f"tolerance 1e-5 + 1e-4·|e|")
print("ok")
"""


def test_eight_threads_feeding_one_session(device):
    """One session serves one call at a time ("others wait", says Session's docstring): 8
    threads, each feeding its own stream of one shared session in its own chunks, give each
    stream the serial (one-shot) result, and nothing hangs."""
    watchdog = 15
    script = ONE_SESSION_CHILD.replace("WATCHDOG", str(watchdog))
    try:
        run = subprocess.run([sys.executable, "-c", script, device], capture_output=True,
                             text=True, timeout=3 * watchdog)
    except subprocess.TimeoutExpired:
        pytest.fail(f"device={device}: 8 threads feeding one session hung past {3 * watchdog} s")
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), (
        f"device={device}: 8 threads feeding one shared session "
        + (f"hung (no progress in {watchdog} s: a deadlock; the threads' stacks follow)"
           if "Timeout" in run.stderr else "failed")
        + f": exit {run.returncode}\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
