//! Streaming sessions: chunked feeds equal one forward, many streams fed in any subsets and
//! orders each match their own reference, state save/restore, typed errors for bad feeds,
//! and sessions fed from several threads equal serial runs.
//!
//! Reference: the f64 CPU forward of each stream's whole sequence, tolerance
//! `1e-5 + 1e-4·|e|` (onnxruntime's f32 rule).

use crate::common;

use common::{gpu, random_weights, variants, Rng};
use gru_wgpu::gpu::{Feed, GpuGru, GruSession, Outputs, StreamId};
use gru_wgpu::{cpu, Convention, Direction, GruError, GruInput, GruModel, Tolerance};

fn model(rng: &mut Rng, convention: Convention, layers: usize, i: usize, h: usize) -> GruModel {
    let layers = (0..layers)
        .map(|k| {
            let input = if k == 0 { i } else { h };
            vec![random_weights(rng, convention, input, h, 2.0, true)]
        })
        .collect();
    GruModel::new(Direction::Forward, layers, None).expect("valid model")
}

/// The CPU reference of one stream: `x [T, I]` from `h0 [L, H]` → (`Y [T, H]`, state
/// `[L, H]`).
fn reference(model: &GruModel, x: &[f32], t: usize, h0: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let out = cpu::forward_model(model, &GruInput::new(x, t, 1).with_initial_h(h0)).expect("cpu");
    (out.y, out.y_h)
}

fn check(context: &str, got: &[f32], expected: &[f32]) {
    let c = Tolerance::F32.compare(got, expected);
    assert!(c.passed(), "{context}: {c}");
}

#[test]
fn chunked_feeds_equal_one_forward() {
    let Some(ctx) = gpu() else { return };
    for (seed, convention, layers, i, h) in [
        (1u64, Convention::ResetAfter, 1, 3, 5),
        (2, Convention::ResetBefore, 2, 7, 16),
        (3, Convention::ResetAfter, 3, 4, 33),
        (4, Convention::ResetBefore, 3, 9, 70),
    ] {
        let mut rng = Rng::new(seed);
        let m = model(&mut rng, convention, layers, i, h);
        let t = 13;
        let x = rng.vec(t * i, 1.5);
        let zero = vec![0.0; layers * h];
        let (ey, eh) = reference(&m, &x, t, &zero);
        for path in variants(h) {
            let mut g = GpuGru::from_model(ctx, &m).expect("gpu model");
            path.apply(&mut g);
            g.set_poison(Some(f32::NAN));
            // The one-shot GPU forward agrees with the reference too.
            let whole = g.forward(&GruInput::new(&x, t, 1)).expect("forward");
            check(&format!("seed {seed} one-shot Y"), &whole.y, &ey);
            let mut session = GruSession::new(g, 2).expect("session");
            let s = session.open().expect("open");
            let mut y = Vec::new();
            let mut at = 0;
            for c in [1, 4, 3, 5] {
                let out = session
                    .feed(&Feed::new(&[s], &x[at * i..(at + c) * i], c))
                    .expect("feed");
                assert_eq!(out.len(), c * h);
                y.extend(out);
                at += c;
            }
            let ctxt = format!("seed {seed} {convention:?} L={layers} I={i} H={h} {path}");
            check(&format!("{ctxt}: Y over chunks 1+4+3+5"), &y, &ey);
            check(
                &format!("{ctxt}: state"),
                &session.read_state(s).expect("state"),
                &eh,
            );
        }
    }
}

/// One stream's history in the interleaved test.
struct Track {
    id: StreamId,
    x: Vec<f32>,
    h0: Vec<f32>,
    used: usize,
    y: Vec<f32>,
}

#[test]
fn many_streams_fed_in_subsets_match_their_references() {
    let Some(ctx) = gpu() else { return };
    let (layers, i, h) = (2, 6, 24);
    for convention in [Convention::ResetAfter, Convention::ResetBefore] {
        let mut rng = Rng::new(77 + convention as u64);
        let m = model(&mut rng, convention, layers, i, h);
        let mut g = GpuGru::from_model(ctx, &m).expect("gpu model");
        g.set_poison(Some(f32::NAN));
        let mut session = GruSession::new(g, 7).expect("session");
        let total = 24;
        let mut tracks: Vec<Track> = Vec::new();
        let new_track = |session: &mut GruSession, rng: &mut Rng, with_state: bool| {
            let h0 = if with_state {
                rng.vec(layers * h, 0.8)
            } else {
                vec![0.0; layers * h]
            };
            let id = if with_state {
                session.open_with_state(&h0).expect("open with state")
            } else {
                session.open().expect("open")
            };
            Track {
                id,
                x: rng.vec(total * i, 1.5),
                h0,
                used: 0,
                y: Vec::new(),
            }
        };
        for k in 0..5 {
            tracks.push(new_track(&mut session, &mut rng, k % 2 == 1));
        }
        let mut closed = Vec::new();
        for round in 0..14 {
            if round == 6 {
                // Close one stream, open another (it reuses the slot); the old id is refused.
                let gone = tracks.remove(1);
                session.close(gone.id).expect("close");
                let err = session
                    .feed(&Feed::new(&[gone.id], &vec![0.0; i], 1))
                    .expect_err("closed stream");
                assert!(matches!(err, GruError::InvalidArgument { .. }), "{err}");
                closed.push(gone);
                tracks.push(new_track(&mut session, &mut rng, true));
            }
            // A random subset in a random order, a random chunk, random per-stream lengths.
            let c = 1 + rng.below(4);
            let mut order: Vec<usize> = (0..tracks.len())
                .filter(|&k| tracks[k].used + c <= total && rng.below(3) > 0)
                .collect();
            for a in (1..order.len()).rev() {
                order.swap(a, rng.below(a + 1));
            }
            if order.is_empty() {
                continue;
            }
            let lengths: Vec<usize> = order.iter().map(|_| 1 + rng.below(c)).collect();
            let use_lengths = rng.below(2) == 0;
            let mut x = Vec::new();
            for (n, &k) in order.iter().enumerate() {
                let t = &tracks[k];
                let len = if use_lengths { lengths[n] } else { c };
                x.extend_from_slice(&t.x[t.used * i..(t.used + len) * i]);
                // Rows past a stream's length are never read: NaN proves it.
                x.extend(std::iter::repeat_n(f32::NAN, (c - len) * i));
            }
            let ids: Vec<StreamId> = order.iter().map(|&k| tracks[k].id).collect();
            let mut feed = Feed::new(&ids, &x, c);
            if use_lengths {
                feed = feed.with_lengths(&lengths);
            }
            let out = session.feed(&feed).expect("feed");
            assert_eq!(out.len(), order.len() * c * h);
            for (n, &k) in order.iter().enumerate() {
                let len = if use_lengths { lengths[n] } else { c };
                let rows = &out[n * c * h..(n + 1) * c * h];
                assert!(
                    rows[len * h..].iter().all(|&v| v == 0.0),
                    "round {round}: output rows past stream {k}'s length {len} are not zero"
                );
                tracks[k].y.extend_from_slice(&rows[..len * h]);
                tracks[k].used += len;
            }
        }
        for (k, t) in tracks.iter().chain(closed.iter()).enumerate() {
            assert!(t.used > 0, "stream {k} was never fed; change the seed");
            let (ey, eh) = reference(&m, &t.x[..t.used * i], t.used, &t.h0);
            let ctxt = format!("{convention:?} stream {k} ({} steps)", t.used);
            check(&format!("{ctxt}: Y"), &t.y, &ey);
            if session.read_state(t.id).is_ok() {
                check(
                    &format!("{ctxt}: state"),
                    &session.read_state(t.id).expect("state"),
                    &eh,
                );
            }
        }
        assert_eq!(session.open_streams(), 5);
    }
}

#[test]
fn last_outputs_state_save_and_restore() {
    let Some(ctx) = gpu() else { return };
    let (layers, i, h) = (3, 5, 40);
    let mut rng = Rng::new(5);
    let m = model(&mut rng, Convention::ResetAfter, layers, i, h);
    let mut session = GruSession::new(GpuGru::from_model(ctx, &m).expect("gpu"), 4).expect("s");
    let a = session.open().expect("open");
    let b = session.open().expect("open");
    let x = rng.vec(2 * 6 * i, 1.0);
    // Outputs::Nothing does not wait, but later calls see its effect.
    session
        .feed(&Feed::new(&[a, b], &x, 6).with_outputs(Outputs::Nothing))
        .expect("feed");
    let saved = session.read_state(a).expect("state a");
    let (_, eh) = reference(&m, &x[..6 * i], 6, &vec![0.0; layers * h]);
    check("state after an Outputs::Nothing feed", &saved, &eh);

    let more = rng.vec(3 * i, 1.0);
    let all = session.feed(&Feed::new(&[a], &more, 3)).expect("feed all");
    let after = session.read_state(a).expect("state");
    // Restore and feed the same chunk: the same outputs, bit for bit; Last is All's last row.
    session.set_state(a, &saved).expect("restore");
    let last = session
        .feed(&Feed::new(&[a], &more, 3).with_outputs(Outputs::Last))
        .expect("feed last");
    assert_eq!(
        last,
        all[2 * h..],
        "Outputs::Last is the last row of Outputs::All"
    );
    assert_eq!(session.read_state(a).expect("state"), after);
    // The same state opened in another slot continues identically.
    let c = session.open_with_state(&saved).expect("open with state");
    let again = session.feed(&Feed::new(&[c], &more, 3)).expect("feed");
    assert_eq!(again, all);
    // b was not fed since: its state is still its state after the first feed.
    let (_, eh_b) = reference(&m, &x[6 * i..], 6, &vec![0.0; layers * h]);
    check(
        "untouched stream b",
        &session.read_state(b).expect("b"),
        &eh_b,
    );
    // Reset gives zero state.
    session.reset(b).expect("reset");
    assert!(session.read_state(b).expect("b").iter().all(|&v| v == 0.0));
}

#[test]
fn bad_sessions_and_feeds_are_typed_errors_and_change_nothing() {
    let Some(ctx) = gpu() else { return };
    let (i, h) = (3, 8);
    let mut rng = Rng::new(9);
    let bi = GruModel::new(
        Direction::Bidirectional,
        vec![vec![
            random_weights(&mut rng, Convention::ResetAfter, i, h, 1.0, true),
            random_weights(&mut rng, Convention::ResetAfter, i, h, 1.0, true),
        ]],
        None,
    )
    .expect("model");
    let err = GruSession::new(GpuGru::from_model(ctx, &bi).expect("gpu"), 2).expect_err("bidi");
    assert!(err.to_string().contains("forward"), "{err}");
    let m = model(&mut rng, Convention::ResetBefore, 1, i, h);
    let err = GruSession::new(GpuGru::from_model(ctx, &m).expect("gpu"), 0).expect_err("cap 0");
    assert!(matches!(err, GruError::InvalidArgument { .. }), "{err}");

    let mut session = GruSession::new(GpuGru::from_model(ctx, &m).expect("gpu"), 2).expect("s");
    let a = session.open().expect("open");
    let b = session.open().expect("open");
    let err = session.open().expect_err("full");
    assert!(err.to_string().contains("capacity 2"), "{err}");
    let state = rng.vec(h, 1.0);
    session.set_state(a, &state).expect("set");
    let x = rng.vec(2 * 2 * i, 1.0);
    let x_before = x.clone();
    let (ab, aa) = ([a, b], [a, a]);
    let bad: Vec<(&str, Feed<'_>)> = vec![
        ("x too short", Feed::new(&ab, &x[1..], 2)),
        ("zero steps", Feed::new(&ab, &x[..0], 0)),
        ("repeated stream", Feed::new(&aa, &x, 2)),
        ("lengths count", Feed::new(&ab, &x, 2).with_lengths(&[1])),
        ("length 0", Feed::new(&ab, &x, 2).with_lengths(&[0, 2])),
        ("length > C", Feed::new(&ab, &x, 2).with_lengths(&[3, 2])),
    ];
    for (what, feed) in bad {
        let err = session.feed(&feed).expect_err(what);
        let text = err.to_string();
        assert!(
            text.contains("expected") && text.contains("got"),
            "{what}: {text}"
        );
    }
    assert_eq!(x, x_before, "the caller's input was modified");
    assert_eq!(
        session.read_state(a).expect("a"),
        state,
        "a failed feed moved a stream"
    );
    let err = session.set_state(a, &state[1..]).expect_err("short state");
    assert!(matches!(err, GruError::Shape { .. }), "{err}");
    session.close(b).expect("close");
    assert!(session.close(b).is_err(), "closing twice");
    assert!(session.read_state(b).is_err(), "reading a closed stream");
    // Feeding no stream does nothing.
    assert!(session
        .feed(&Feed::new(&[], &[], 3))
        .expect("empty")
        .is_empty());
}

/// The work of one thread: its own model and session, `rounds` feeds.
fn thread_work(ctx: &gru_wgpu::gpu::GpuContext, seed: u64, rounds: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let convention = [Convention::ResetAfter, Convention::ResetBefore][seed as usize % 2];
    let (i, h) = (4, 16 + seed as usize);
    let m = model(&mut rng, convention, 2, i, h);
    let mut gpu = GpuGru::from_model(ctx, &m).expect("gpu");
    // Also a plain forward on the same model, between feeds.
    let xf = rng.vec(3 * 2 * i, 1.0);
    let mut out = gpu.forward(&GruInput::new(&xf, 3, 2)).expect("forward").y;
    let mut session = GruSession::new(gpu, 3).expect("session");
    let ids = [session.open().expect("open"), session.open().expect("open")];
    for r in 0..rounds {
        let c = 1 + r % 3;
        let x = rng.vec(2 * c * i, 1.0);
        out.extend(session.feed(&Feed::new(&ids, &x, c)).expect("feed"));
    }
    out
}

#[test]
fn sessions_fed_from_eight_threads_equal_serial_runs() {
    let Some(ctx) = gpu() else { return };
    let rounds = 30;
    let serial: Vec<Vec<f32>> = (0..8).map(|s| thread_work(ctx, s, rounds)).collect();
    let parallel: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|s| scope.spawn(move || thread_work(ctx, s, rounds)))
            .collect();
        handles
            .into_iter()
            .map(|t| t.join().expect("thread panicked"))
            .collect()
    });
    for (s, (a, b)) in serial.iter().zip(&parallel).enumerate() {
        assert_eq!(a.len(), b.len());
        let worst = a
            .iter()
            .zip(b)
            .position(|(x, y)| x.to_bits() != y.to_bits());
        assert!(
            worst.is_none(),
            "thread {s}: parallel run differs from serial at {worst:?}"
        );
    }
}
