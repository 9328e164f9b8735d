//! Training past the device's limits: on a device whose storage bindings are lowered to
//! 8 KiB and whose dispatches to 3 workgroups per dimension, the training forward and the
//! backward run the batch in chunks of entries (the weight gradients accumulating over the
//! chunks), each step kernel's workgroups take several hidden units, and the GEMMs walk
//! their tiles: the gradients still equal the f64 reference. One entry beyond a binding splits
//! over time in a forward-only network and is a typed error otherwise.

use super::random::{check_case_on, random_case};
use crate::common::{gpu, own_device};
use gru_wgpu::gpu::{ContextOptions, GpuGru};
use gru_wgpu::{Direction, GruError};

fn small_device() -> Option<gru_wgpu::gpu::GpuContext> {
    let ctx = gpu()?;
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: 8 * 1024,
        max_buffer_size: 1 << 20,
        max_compute_workgroups_per_dimension: 3,
        ..wgpu::Limits::default()
    };
    Some(own_device(
        ctx,
        ContextOptions {
            limits: Some(limits),
            ..ContextOptions::default()
        },
        "device with lowered limits",
    ))
}

#[test]
fn the_batch_runs_in_chunks_past_a_binding() {
    let Some(small) = small_device() else { return };
    let mut chunked = 0;
    let mut failures = Vec::new();
    for seed in 100..124 {
        let mut case = random_case(seed);
        case.b = 5 + (seed as usize % 7);
        // Every layer's and direction's weight gradients fit one 8 KiB binding.
        case.h = case.h.min(12);
        case.lens = case.lens.map(|_| {
            (0..case.b)
                .map(|k| [case.t, 0, 1, case.t / 2 + 1][k % 4] as i64)
                .collect()
        });
        let (chunks, report) = check_case_on(&small, &case, seed % 2 == 1);
        chunked += (chunks > 1) as usize;
        failures.extend(report);
    }
    assert!(failures.is_empty(), "{}", failures.join(""));
    assert!(chunked >= 12, "only {chunked} of 24 cases ran in chunks");
}

/// A sequence whose one entry passes a binding splits over time when the network is
/// forward-only, as the inference forward does: pieces of a few steps, the state carried
/// forward and its gradient back from piece to piece, the weight gradients accumulating; the
/// gradients still equal the f64 reference (lengths ending in earlier pieces, 0, dY_h or
/// not, stacked layers).
#[test]
fn a_sequence_beyond_a_binding_splits_over_time() {
    let Some(small) = small_device() else { return };
    let mut failures = Vec::new();
    for seed in 200..212 {
        let mut case = random_case(seed);
        case.direction = Direction::Forward;
        case.t = 40 + (seed as usize % 5) * 13;
        case.h = case.h.clamp(4, 12);
        case.i = case.i.min(12);
        case.b = 1 + (seed as usize % 6);
        case.lens = (seed % 3 != 0).then(|| {
            (0..case.b)
                .map(|k| [case.t, 0, 3, case.t / 2 + 1, 9, case.t - 1][k % 6] as i64)
                .collect()
        });
        let (pieces, report) = check_case_on(&small, &case, seed % 2 == 0);
        assert!(
            pieces > case.b.div_ceil(4),
            "{case:?}: ran in {pieces} pieces: the sequence was not split over time"
        );
        failures.extend(report);
    }
    assert!(failures.is_empty(), "{}", failures.join(""));
}

/// A network with a reverse direction cannot split a sequence over time: one entry beyond a
/// binding is a typed error that says so.
#[test]
fn a_reverse_sequence_beyond_a_binding_is_a_typed_error() {
    let Some(small) = small_device() else { return };
    for direction in [Direction::Reverse, Direction::Bidirectional] {
        let mut case = random_case(3);
        case.t = 200;
        case.h = 16;
        case.b = 1;
        case.lens = None;
        case.direction = direction;
        let data = case.data();
        let mut model = GpuGru::from_model(&small, &data.model).expect("model");
        match model.forward_train(&case.input(&data)) {
            Err(GruError::DeviceLimit {
                what,
                limit,
                needed,
                ..
            }) => {
                assert_eq!(limit, "max_storage_buffer_binding_size");
                assert!(needed > 8 * 1024, "{what}: needed {needed}");
                assert!(what.contains("cannot be split over time"), "{what}");
            }
            other => panic!("{direction:?}: expected a DeviceLimit error, got {other:?}"),
        }
    }
}
