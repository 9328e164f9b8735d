//! Device limits as free functions of `(&wgpu::Limits, dims, dtype)`: what fits one storage
//! binding, whether a forward fits the device, and how a forward too large for it splits
//! into pieces. No device is needed, so they are unit-tested with hand-built limits.

use crate::dtype::Dtype;
use crate::error::{GruError, Result};
use crate::gpu::kernels::STEP_NB;
use crate::input::Dims;
use crate::model::Direction;

/// The largest storage binding the kernels may use: the device's limit, and never more than
/// u32 indices can address.
pub(super) fn binding_limit(limits: &wgpu::Limits) -> u64 {
    limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
        .min(u32::MAX as u64)
}

/// A [`GruError::DeviceLimit`] on `max_storage_buffer_binding_size` when a binding of
/// `bytes` exceeds [`binding_limit`].
pub(super) fn check_binding(limits: &wgpu::Limits, what: String, bytes: u64) -> Result<()> {
    let available = binding_limit(limits);
    if bytes > available {
        return Err(GruError::DeviceLimit {
            what,
            limit: "max_storage_buffer_binding_size",
            needed: bytes,
            available,
        });
    }
    Ok(())
}

/// A [`GruError::DeviceLimit`] when `needed` exceeds `available`.
pub(super) fn check_limit(
    what: impl Into<String>,
    limit: &'static str,
    needed: u64,
    available: u64,
) -> Result<()> {
    if needed > available {
        return Err(GruError::DeviceLimit {
            what: what.into(),
            limit,
            needed,
            available,
        });
    }
    Ok(())
}

/// Checks that buffers for `dims` in `dtype`, and `dispatches` step-parameter slots of
/// `uniform_stride` bytes, fit `limits`.
/// All sizes are computed in checked u64 arithmetic before anything is allocated.
pub(super) fn check_forward(
    limits: &wgpu::Limits,
    dims: &Dims,
    dtype: Dtype,
    dispatches: usize,
    uniform_stride: u32,
) -> Result<()> {
    let (t, b, i, h) = (dims.seq_len, dims.batch, dims.input_size, dims.hidden_size);
    let (n_dir, n_layers) = (dims.num_directions, dims.num_layers);
    let bytes = |what: &str, factors: &[usize]| -> Result<u64> {
        factors
            .iter()
            .try_fold(dtype.size() as u64, |acc, &f| acc.checked_mul(f as u64))
            .ok_or_else(|| GruError::invalid(what, "a buffer size that fits in u64 bytes", "more"))
    };
    let y = bytes("Y", &[t, b, n_dir, h])?;
    let state = bytes("initial_h / Y_h", &[n_layers, n_dir, b, h])?;
    for (what, size) in [
        (
            format!("input X {:?}", dims.x_shape()),
            bytes("X", &[t, b, i])?,
        ),
        (
            format!(
                "input projection [T·B = {t}·{b}, D·3H = {}·{}]",
                n_dir,
                3 * h
            ),
            bytes("XP", &[t, b, n_dir, 3, h])?,
        ),
        (format!("output Y {:?}", dims.y_shape()), y),
        (format!("initial_h / Y_h {:?}", dims.state_shape()), state),
        (
            format!("gates [D={n_dir}, 2, B={b}, H={h}]"),
            bytes("gates", &[n_dir, 2, b, h])?,
        ),
    ] {
        check_binding(limits, what, size)?;
    }
    check_limit(
        "readback of Y and Y_h",
        "max_buffer_size",
        y.saturating_add(state),
        limits.max_buffer_size,
    )?;
    // Dynamic offsets are u32: every step-parameter slot must start below 4 GiB.
    check_limit(
        format!("step parameters for T={t} ({dispatches} dispatches)"),
        "max_buffer_size (and u32 dynamic offsets)",
        (dispatches as u64).saturating_mul(uniform_stride as u64),
        limits.max_buffer_size.min(u32::MAX as u64),
    )?;
    check_limit(
        format!("batch size {b}"),
        "max_compute_workgroups_per_dimension",
        (b as u64).div_ceil(STEP_NB as u64),
        limits.max_compute_workgroups_per_dimension as u64,
    )?;
    Ok(())
}

/// The largest `(T_c, B_c)` pieces a forward over `dims` runs in, `(T, B)` when the
/// whole problem fits the device: every buffer within one storage binding, and at most
/// `max_compute_workgroups_per_dimension` workgroups along the batch. Batches split into
/// independent pieces for any direction; a sequence too long for one binding even at one
/// entry splits over time, which only a forward-only network can (its state runs forward
/// from piece to piece).
pub(super) fn split_sizes(
    limits: &wgpu::Limits,
    dims: &Dims,
    dtype: Dtype,
    direction: Direction,
) -> Result<(usize, usize)> {
    let available = binding_limit(limits);
    let es = dtype.size() as u64;
    let (t, b) = (dims.seq_len as u64, dims.batch as u64);
    let (i, h, n_dir) = (
        dims.input_size as u64,
        dims.hidden_size as u64,
        dims.num_directions as u64,
    );
    // Bytes per (step, entry) of the largest T·B-sized buffer (X, XP, Y), and per entry
    // of the state buffers (and the f32 gates scratch).
    let row = es * i.max(3 * h * n_dir).max(n_dir * h);
    let entry = (es * dims.num_layers as u64 * n_dir * h).max(4 * 2 * n_dir * h);
    let max_batch = (STEP_NB as u64)
        .saturating_mul(limits.max_compute_workgroups_per_dimension as u64)
        .min(available / entry.max(1));
    let whole = t.saturating_mul(row);
    let fits = |tc: u64, bc: u64| {
        tc.saturating_mul(bc).saturating_mul(row) <= available && bc <= max_batch
    };
    if fits(t, b) {
        return Ok((dims.seq_len, dims.batch));
    }
    let bc = (available / whole.max(1)).min(max_batch).min(b);
    if bc >= 1 {
        return Ok((dims.seq_len, bc as usize));
    }
    if direction != Direction::Forward {
        return Err(GruError::DeviceLimit {
            what: format!(
                "one entry of T = {} steps ({} direction: the sequence cannot be split \
                 over time)",
                dims.seq_len,
                direction.onnx_name()
            ),
            limit: "max_storage_buffer_binding_size",
            needed: whole,
            available,
        });
    }
    // Over time: pieces of T_c steps of B_c entries, B_c ≥ 4 where possible so a step
    // still fills a workgroup.
    let bc = b.min(max_batch).min(STEP_NB as u64).max(1);
    let tc = available / row.saturating_mul(bc).max(1);
    if tc == 0 || max_batch == 0 {
        return Err(GruError::DeviceLimit {
            what: format!("one step of one entry ([I, D·3H] rows of {row} bytes)"),
            limit: "max_storage_buffer_binding_size",
            needed: row.max(entry),
            available,
        });
    }
    Ok((tc.min(t) as usize, bc as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Layout, OutputStyle};

    /// Limits with the given binding and buffer sizes and workgroups per dimension; the rest
    /// wgpu's defaults.
    fn limits(binding: u64, buffer: u64, groups: u32) -> wgpu::Limits {
        wgpu::Limits {
            max_storage_buffer_binding_size: binding,
            max_buffer_size: buffer,
            max_compute_workgroups_per_dimension: groups,
            ..wgpu::Limits::default()
        }
    }

    fn dims(t: usize, b: usize, i: usize, h: usize, l: usize, d: usize) -> Dims {
        Dims {
            seq_len: t,
            batch: b,
            input_size: i,
            hidden_size: h,
            num_layers: l,
            num_directions: d,
            layout: Layout::SequenceMajor,
            style: OutputStyle::Onnx,
        }
    }

    fn limit_name(err: GruError) -> &'static str {
        match err {
            GruError::DeviceLimit { limit, .. } => limit,
            other => panic!("expected a DeviceLimit error, got {other:?}"),
        }
    }

    #[test]
    fn binding_limit_is_the_smallest_of_binding_buffer_and_u32() {
        assert_eq!(binding_limit(&limits(1000, 2000, 10)), 1000);
        assert_eq!(binding_limit(&limits(3000, 2000, 10)), 2000);
        assert_eq!(
            binding_limit(&limits(1 << 40, 1 << 40, 10)),
            u32::MAX as u64
        );
    }

    #[test]
    fn check_binding_reports_needed_and_available() {
        let l = limits(1000, 2000, 10);
        assert!(check_binding(&l, "X".into(), 1000).is_ok());
        match check_binding(&l, "X".into(), 1001) {
            Err(GruError::DeviceLimit {
                what,
                limit,
                needed,
                available,
            }) => {
                assert_eq!(what, "X");
                assert_eq!(limit, "max_storage_buffer_binding_size");
                assert_eq!((needed, available), (1001, 1000));
            }
            other => panic!("expected a DeviceLimit error, got {other:?}"),
        }
    }

    #[test]
    fn check_forward_accepts_a_fitting_forward() {
        let d = dims(8, 4, 16, 32, 2, 2);
        let l = wgpu::Limits::default();
        assert!(check_forward(&l, &d, Dtype::F32, 8, 256).is_ok());
        assert!(check_forward(&l, &d, Dtype::F16, 8, 256).is_ok());
    }

    #[test]
    fn check_forward_rejects_each_limit() {
        // XP of T=100, B=10, D=1, 3H=96 f32: 384 000 bytes; one binding of 100 000.
        let d = dims(100, 10, 8, 32, 1, 1);
        let err = check_forward(&limits(100_000, 1 << 30, 65535), &d, Dtype::F32, 1, 256);
        assert_eq!(
            limit_name(err.unwrap_err()),
            "max_storage_buffer_binding_size"
        );
        // In f16 the same forward needs half the bytes.
        let small = dims(10, 10, 8, 32, 1, 1);
        assert!(check_forward(&limits(20_000, 1 << 30, 65535), &small, Dtype::F16, 1, 256).is_ok());
        assert!(
            check_forward(&limits(20_000, 1 << 30, 65535), &small, Dtype::F32, 1, 256).is_err()
        );
        // Step parameters: 1000 slots of 256 bytes exceed a 200 000-byte buffer.
        let tiny = dims(2, 1, 2, 2, 1, 1);
        let err = check_forward(&limits(1000, 200_000, 65535), &tiny, Dtype::F32, 1000, 256);
        assert_eq!(
            limit_name(err.unwrap_err()),
            "max_buffer_size (and u32 dynamic offsets)"
        );
        // Batch: ⌈9/4⌉ = 3 workgroups, 2 allowed.
        let wide = dims(2, 9, 2, 2, 1, 1);
        let err = check_forward(&limits(1 << 20, 1 << 20, 2), &wide, Dtype::F32, 1, 256);
        assert_eq!(
            limit_name(err.unwrap_err()),
            "max_compute_workgroups_per_dimension"
        );
    }

    #[test]
    fn check_forward_reports_overflow_as_invalid_input() {
        let huge = dims(usize::MAX, usize::MAX, 1, 1, 1, 1);
        let err = check_forward(&wgpu::Limits::default(), &huge, Dtype::F32, 1, 256);
        assert!(
            matches!(err, Err(GruError::InvalidArgument { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn split_sizes_keeps_a_fitting_forward_whole() {
        let d = dims(50, 7, 16, 32, 2, 2);
        let l = wgpu::Limits::default();
        for dir in [Direction::Forward, Direction::Bidirectional] {
            assert_eq!(split_sizes(&l, &d, Dtype::F32, dir).unwrap(), (50, 7));
        }
    }

    #[test]
    fn split_sizes_splits_the_batch_first() {
        // Row of one (step, entry): 4 · max(I=8, 3H·D=96, D·H=32) = 384 bytes; T·row = 38 400.
        let d = dims(100, 10, 8, 32, 1, 1);
        let l = limits(100_000, 1 << 30, 65535);
        for dir in [Direction::Forward, Direction::Reverse] {
            let (tc, bc) = split_sizes(&l, &d, Dtype::F32, dir).unwrap();
            assert_eq!((tc, bc), (100, 2));
            assert!((tc * bc * 384) as u64 <= binding_limit(&l));
        }
        // f16 halves the row: five entries fit.
        assert_eq!(
            split_sizes(&l, &d, Dtype::F16, Direction::Forward).unwrap(),
            (100, 5)
        );
    }

    #[test]
    fn split_sizes_caps_the_batch_by_workgroups() {
        // Two workgroups of four entries along the batch: pieces of at most 8 entries.
        let d = dims(4, 20, 8, 32, 1, 1);
        let l = limits(1 << 20, 1 << 20, 2);
        assert_eq!(
            split_sizes(&l, &d, Dtype::F32, Direction::Forward).unwrap(),
            (4, 8)
        );
    }

    #[test]
    fn split_sizes_splits_over_time_only_forward() {
        // One entry of T=1000 needs 384 000 bytes; 100 000 fit 260 steps of one entry, or
        // 65 steps of four.
        let d = dims(1000, 10, 8, 32, 1, 1);
        let l = limits(100_000, 1 << 30, 65535);
        let (tc, bc) = split_sizes(&l, &d, Dtype::F32, Direction::Forward).unwrap();
        assert_eq!((tc, bc), (65, 4));
        let one = dims(1000, 1, 8, 32, 1, 1);
        assert_eq!(
            split_sizes(&l, &one, Dtype::F32, Direction::Forward).unwrap(),
            (260, 1)
        );
        for dir in [Direction::Reverse, Direction::Bidirectional] {
            let err = split_sizes(&l, &d, Dtype::F32, dir).unwrap_err();
            assert_eq!(limit_name(err), "max_storage_buffer_binding_size");
        }
    }

    #[test]
    fn split_sizes_rejects_a_step_too_large_for_one_binding() {
        // One row of 384 bytes does not fit a 300-byte binding.
        let d = dims(10, 1, 8, 32, 1, 1);
        let err = split_sizes(
            &limits(300, 1 << 20, 65535),
            &d,
            Dtype::F32,
            Direction::Forward,
        )
        .unwrap_err();
        match err {
            GruError::DeviceLimit {
                needed, available, ..
            } => {
                assert_eq!((needed, available), (384, 300));
            }
            other => panic!("expected a DeviceLimit error, got {other:?}"),
        }
    }
}
