//! Device faults by injection (lavapipe overcommits memory and never reports running out):
//! an out-of-memory and a validation error at every GPU operation of a model's and a
//! session's life — building, allocating a shape's buffers, a forward, a session's creation,
//! opening a stream (writing its state), a feed, reading state — comes back as a
//! `GruError::Gpu` naming that operation and saying which kind of error it was, never a
//! panic; the outputs the life gave before the fault are right, and the next life, without a
//! fault, is whole and every output of it matches the f64 reference.

use crate::common;

use common::{assert_close, gpu, own_device, random_weights, Rng};
use gru_wgpu::gpu::{ContextOptions, Fault, Feed, GpuContext, GpuGru, GruSession};
use gru_wgpu::{cpu, Convention, Direction, GruError, GruInput, GruModel, GruWeights, Tolerance};

/// Sizes of the life: X[T, B, I] for the first forward, hidden size H; the second forward
/// runs the first `T2` steps (another shape: new buffers); the stream is fed `C` steps.
const T: usize = 6;
const B: usize = 3;
const I: usize = 3;
const H: usize = 10;
const T2: usize = 2;
const C: usize = 2;

/// The steps of a life, in order (the index is the step number used below).
const STEPS: [&str; 7] = [
    "GpuGru::from_model",
    "forward X[T=6, B=3]",
    "forward X[T=2, B=3] (a new shape)",
    "GruSession::new",
    "GruSession::open",
    "GruSession::feed (C=2)",
    "GruSession::read_state",
];

/// Every GPU operation (error scope) of a life, in the order it runs: the step of the life it
/// belongs to and the operation its `GruError::Gpu` names. A fault injected with
/// `skip = k` must fail operation `k` of this list, and one with `skip = OPERATIONS.len()`
/// must not fire at all.
const OPERATIONS: [(usize, &str); 11] = [
    (0, "uploading weights and building pipelines"),
    (1, "allocating buffers for a forward"),
    (1, "forward"),
    (2, "allocating buffers for a forward"),
    (2, "forward"),
    (3, "creating a streaming session"),
    (4, "setting a stream's state"),
    (5, "allocating buffers for a forward"),
    (5, "allocating buffers for a streaming feed"),
    (5, "streaming feed"),
    (6, "reading a stream's state"),
];

/// What a life gave: `(name, values)` per output, in order.
type Outputs = Vec<(&'static str, Vec<f32>)>;

/// A life that stopped at a step: the outputs it gave before, the step and the error.
struct Stopped {
    outputs: Outputs,
    step: usize,
    error: GruError,
}

/// Everything a program does with a model and a session; the first error is returned with
/// the step it happened at and the outputs given before it.
fn life(ctx: &GpuContext, model: &GruModel, x: &[f32]) -> Result<Outputs, Stopped> {
    let mut outputs = Outputs::new();
    let mut step = 0;
    let result = (|| {
        let mut g = GpuGru::from_model(ctx, model)?;
        step = 1;
        let out = g.forward(&GruInput::new(x, T, B))?;
        outputs.push(("forward 1 Y", out.y));
        outputs.push(("forward 1 Y_h", out.y_h));
        step = 2;
        let out = g.forward(&GruInput::new(&x[..T2 * B * I], T2, B))?;
        outputs.push(("forward 2 Y", out.y));
        outputs.push(("forward 2 Y_h", out.y_h));
        step = 3;
        let mut session = GruSession::new(g, 4)?;
        step = 4;
        let s = session.open()?;
        step = 5;
        let y = session.feed(&Feed::new(&[s], &x[..C * I], C))?;
        outputs.push(("feed Y", y));
        step = 6;
        let state = session.read_state(s)?;
        outputs.push(("read_state", state));
        Ok(())
    })();
    match result {
        Ok(()) => Ok(outputs),
        Err(error) => Err(Stopped {
            outputs,
            step,
            error,
        }),
    }
}

/// Every output of a whole life by the f64 reference.
fn reference(w: &GruWeights, x: &[f32]) -> Outputs {
    let first = cpu::forward(w, &GruInput::new(x, T, B)).expect("cpu forward 1");
    let second = cpu::forward(w, &GruInput::new(&x[..T2 * B * I], T2, B)).expect("cpu forward 2");
    // The stream, from a zero state, fed x[C, I]: Y[k=1, C, H] and its final state [L=1, H].
    let stream = cpu::forward(w, &GruInput::new(&x[..C * I], C, 1)).expect("cpu stream");
    vec![
        ("forward 1 Y", first.y),
        ("forward 1 Y_h", first.y_h),
        ("forward 2 Y", second.y),
        ("forward 2 Y_h", second.y_h),
        ("feed Y", stream.y),
        ("read_state", stream.y_h),
    ]
}

/// Checks `got` against the start of `expected`, output by output (names, lengths and every
/// element within onnxruntime's f32 tolerance); `whole` asks for every output of a life.
fn check(what: &str, got: &Outputs, expected: &Outputs, whole: bool) {
    if whole {
        assert_eq!(
            got.len(),
            expected.len(),
            "{what}: a whole life gives {} outputs, got {:?}",
            expected.len(),
            got.iter().map(|o| o.0).collect::<Vec<_>>()
        );
    }
    assert!(got.len() <= expected.len(), "{what}: too many outputs");
    for ((name, g), (want, e)) in got.iter().zip(expected) {
        assert_eq!(name, want, "{what}: outputs out of order");
        assert_close(
            &format!("{what}: {name} (seed 40, X[T={T}, B={B}, I={I}], H={H})"),
            g,
            e,
            Tolerance::F32,
        );
    }
}

#[test]
fn injected_faults_are_typed_errors_and_later_calls_recover() {
    let Some(shared) = gpu() else { return };
    // A context of its own: injected faults must not reach the other tests' operations.
    let ctx = own_device(shared, ContextOptions::from_env(), "context");
    let mut rng = Rng::new(40);
    let w = random_weights(&mut rng, Convention::ResetBefore, I, H, 1.0, true);
    let model = GruModel::new(Direction::Forward, vec![vec![w.clone()]], None).expect("model");
    let x = rng.vec(T * B * I, 1.0);
    let expected = reference(&w, &x);
    let clean = life(&ctx, &model, &x).unwrap_or_else(|s| {
        panic!(
            "the fault-free life stopped at {}: {}",
            STEPS[s.step], s.error
        )
    });
    check("fault-free life", &clean, &expected, true);

    // Every step of the life has at least one GPU operation.
    for (step, name) in STEPS.iter().enumerate() {
        assert!(
            OPERATIONS.iter().any(|op| op.0 == step),
            "step {step} ({name}) has no operation in OPERATIONS"
        );
    }

    let mut fired = 0;
    for fault in [Fault::OutOfMemory, Fault::Validation] {
        let (kind, not_kind) = match fault {
            Fault::OutOfMemory => ("Out of Memory", "Validation"),
            Fault::Validation => ("Validation", "Out of Memory"),
        };
        let mut failed_at = Vec::new();
        // One more than the operations: that fault must not fire.
        for skip in 0..=OPERATIONS.len() {
            let what = format!("{fault:?} at operation {skip}");
            ctx.inject_fault(skip, fault);
            match life(&ctx, &model, &x) {
                Ok(out) => {
                    // Past the last operation: the fault is still armed; disarm it.
                    ctx.clear_fault();
                    check(&format!("{what}, which never fired"), &out, &expected, true);
                    assert_eq!(
                        skip,
                        OPERATIONS.len(),
                        "{what}: the life ended without the fault firing; its operations were \
                         {failed_at:?}"
                    );
                }
                Err(Stopped {
                    outputs,
                    step,
                    error,
                }) => {
                    let GruError::Gpu {
                        operation, message, ..
                    } = &error
                    else {
                        panic!("{what}: stopped at {} with {error:?}", STEPS[step]);
                    };
                    assert!(
                        message.contains(kind) && !message.contains(not_kind),
                        "{what} ({}): the error does not say {kind}: {error}",
                        STEPS[step]
                    );
                    failed_at.push((step, operation.clone()));
                    let want = OPERATIONS.get(skip).unwrap_or_else(|| {
                        panic!(
                            "{what}: the life has more operations than OPERATIONS: {} ({}) \
                             failed",
                            operation, STEPS[step]
                        )
                    });
                    assert_eq!(
                        (step, operation.as_str()),
                        *want,
                        "{what}: stopped at {} naming {operation:?}, expected {} naming {:?}",
                        STEPS[step],
                        STEPS[want.0],
                        want.1
                    );
                    // What came before the fault was right.
                    check(&format!("{what}, before it"), &outputs, &expected, false);
                }
            }
            // The next life, without a fault, is whole and right.
            let next = life(&ctx, &model, &x).unwrap_or_else(|s| {
                panic!(
                    "{what}: the next life stopped at {}: {}",
                    STEPS[s.step], s.error
                )
            });
            check(&format!("the life after {what}"), &next, &expected, true);
        }
        // Every operation met the fault, in the order of the life.
        let wanted: Vec<(usize, String)> = OPERATIONS
            .iter()
            .map(|&(s, o)| (s, o.to_string()))
            .collect();
        assert_eq!(failed_at, wanted, "{fault:?}: operations that failed");
        fired += failed_at.len();
    }
    // The README's count: 11 operations, each with an out-of-memory and a validation fault.
    assert_eq!(fired, 22, "faults that fired");
}
