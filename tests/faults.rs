//! Device faults by injection (lavapipe overcommits memory and never reports running out):
//! an out-of-memory or validation error at every GPU operation of a model's and a session's
//! life — building, allocating a shape's buffers, a forward, a session's creation, opening a
//! stream (writing its state), a feed, reading state — comes back as a typed error naming the operation, never a panic, and
//! the next calls work and give the right numbers.

mod common;

use common::{assert_close, gpu, random_weights, Rng};
use gru_wgpu::gpu::{ContextOptions, Fault, Feed, GpuContext, GpuGru, GruSession};
use gru_wgpu::{cpu, Convention, Direction, GruError, GruInput, GruModel, Tolerance};

/// Everything a program does with a model and a session; the first error is returned with
/// the step it happened at.
fn life(ctx: &GpuContext, model: &GruModel, x: &[f32]) -> Result<Vec<f32>, (usize, GruError)> {
    let (t, b) = (6, 3);
    let mut g = GpuGru::from_model(ctx, model).map_err(|e| (0, e))?;
    let mut out = g.forward(&GruInput::new(x, t, b)).map_err(|e| (1, e))?.y;
    // Another shape: new buffers.
    out.extend(
        g.forward(&GruInput::new(&x[..2 * b * 3], 2, b))
            .map_err(|e| (2, e))?
            .y,
    );
    let mut session = GruSession::new(g, 4).map_err(|e| (3, e))?;
    let s = session.open().map_err(|e| (4, e))?;
    out.extend(
        session
            .feed(&Feed::new(&[s], &x[..2 * 3], 2))
            .map_err(|e| (5, e))?,
    );
    out.extend(session.read_state(s).map_err(|e| (6, e))?);
    Ok(out)
}

#[test]
fn injected_faults_are_typed_errors_and_later_calls_recover() {
    let Some(shared) = gpu() else { return };
    // A context of its own: injected faults must not reach the other tests' operations.
    let ctx = GpuContext::with_options(&ContextOptions {
        adapter_name: Some(shared.adapter_info().name.clone()),
        ..ContextOptions::from_env()
    })
    .expect("context");
    let mut rng = Rng::new(40);
    let w = random_weights(&mut rng, Convention::ResetBefore, 3, 10, 1.0, true);
    let model = GruModel::new(Direction::Forward, vec![vec![w.clone()]], None).expect("model");
    let x = rng.vec(6 * 3 * 3, 1.0);
    let clean = life(&ctx, &model, &x).expect("no fault");
    let expected = cpu::forward(&w, &GruInput::new(&x, 6, 3)).expect("cpu");
    assert_close(
        "fault-free life",
        &clean[..6 * 3 * 10],
        &expected.y,
        Tolerance::F32,
    );

    let mut failed_at = Vec::new();
    for fault in [Fault::OutOfMemory, Fault::Validation] {
        for skip in 0.. {
            ctx.inject_fault(skip, fault);
            match life(&ctx, &model, &x) {
                Ok(out) => {
                    // Past the last operation: the fault is still armed; disarm it.
                    ctx.clear_fault();
                    assert_eq!(out, clean, "a life without a fault differs");
                    break;
                }
                Err((step, GruError::Gpu { operation, message })) => {
                    let wanted = match fault {
                        Fault::OutOfMemory => "Out of Memory",
                        Fault::Validation => "Validation",
                    };
                    assert!(message.contains(wanted), "{operation}: {message}");
                    assert!(!operation.is_empty());
                    failed_at.push((fault, skip, step, operation));
                }
                Err((step, other)) => panic!("{fault:?} skip {skip} step {step}: {other:?}"),
            }
            // The next life, without a fault, is whole and right.
            assert_eq!(life(&ctx, &model, &x).expect("recovered"), clean);
            assert!(skip < 100, "the fault never stops firing");
        }
    }
    // Every step of the life met a fault at least once.
    for step in [0, 1, 2, 3, 5, 6] {
        assert!(
            failed_at.iter().any(|f| f.2 == step),
            "no fault reached step {step}: {failed_at:?}"
        );
    }
    eprintln!("faults injected: {}", failed_at.len());
}
