"""Streaming sessions give the one-shot result after any chunking; their state calls and
errors; eight threads feeding eight sessions give the serial results."""
import threading

import numpy as np
import pytest

import gru_wgpu
from conftest import assert_close

I, H, L, T = 3, 5, 2, 12


def setup(device, streams=4, seed=7):
    model = gru_wgpu.GRU(I, H, num_layers=L, device=device, seed=seed)
    x = np.random.default_rng(seed).standard_normal((T, streams, I)).astype(np.float32)
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


def test_one_step_frames_lengths_and_state_calls(device):
    model, x = setup(device, streams=2)
    session = model.session(streams=2)
    a = session.open()
    h = np.random.default_rng(1).uniform(-1, 1, (L, H)).astype(np.float32)
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
    inputs = [np.random.default_rng(100 + k).standard_normal((T, 3, I)).astype(np.float32)
              for k in range(8)]
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
    xs = [np.random.default_rng(k).standard_normal((T, 2, I)).astype(np.float32)
          for k in range(8)]
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
