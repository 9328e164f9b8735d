//! Conversions between the user's tensors (any layout and output style, see
//! [`crate::input`]) and the sequence-major tensors training keeps on the device: rows
//! `t·B + b`, directions side by side (`[T, B, D, H]`), states `[L, D, B, H]`.

use crate::input::Dims;

/// `X` (or `dX`) of width `k` in `dims`' layout → rows `t·B + b`.
pub(super) fn to_internal_rows(x: &[f32], dims: &Dims, k: usize) -> Vec<f32> {
    let (t_len, batch) = (dims.seq_len, dims.batch);
    let mut out = vec![0.0; t_len * batch * k];
    for t in 0..t_len {
        for b in 0..batch {
            let src = dims.row(t, b) * k;
            out[(t * batch + b) * k..][..k].copy_from_slice(&x[src..src + k]);
        }
    }
    out
}

/// The inverse of [`to_internal_rows`].
pub(super) fn rows_from_internal(x: &[f32], dims: &Dims, k: usize) -> Vec<f32> {
    let (t_len, batch) = (dims.seq_len, dims.batch);
    let mut out = vec![0.0; t_len * batch * k];
    for t in 0..t_len {
        for b in 0..batch {
            let dst = dims.row(t, b) * k;
            out[dst..dst + k].copy_from_slice(&x[(t * batch + b) * k..][..k]);
        }
    }
    out
}

/// `Y` (or `dY`) in `dims`' layout and output style → `[T, B, D, H]`.
pub(super) fn y_to_internal(y: &[f32], dims: &Dims) -> Vec<f32> {
    let (t_len, batch, nd, h) = (
        dims.seq_len,
        dims.batch,
        dims.num_directions,
        dims.hidden_size,
    );
    let [yt, yd, yb] = dims.y_strides();
    let mut out = vec![0.0; t_len * batch * nd * h];
    for t in 0..t_len {
        for b in 0..batch {
            for d in 0..nd {
                let src = t * yt + d * yd + b * yb;
                out[((t * batch + b) * nd + d) * h..][..h].copy_from_slice(&y[src..src + h]);
            }
        }
    }
    out
}

/// `[T, B, D, H]` → `Y` in `dims`' layout and output style.
pub(super) fn from_internal_y(y: &[f32], dims: &Dims) -> Vec<f32> {
    let (t_len, batch, nd, h) = (
        dims.seq_len,
        dims.batch,
        dims.num_directions,
        dims.hidden_size,
    );
    let [yt, yd, yb] = dims.y_strides();
    let mut out = vec![0.0; dims.y_len()];
    for t in 0..t_len {
        for b in 0..batch {
            for d in 0..nd {
                let dst = t * yt + d * yd + b * yb;
                out[dst..dst + h].copy_from_slice(&y[((t * batch + b) * nd + d) * h..][..h]);
            }
        }
    }
    out
}

/// A state tensor (`initial_h`, `dY_h`) in `dims`' state layout → `[L, D, B, H]`.
pub(super) fn to_internal_state(state: &[f32], dims: &Dims) -> Vec<f32> {
    let (ld, batch, h) = (
        dims.num_layers * dims.num_directions,
        dims.batch,
        dims.hidden_size,
    );
    let [st_ld, st_b] = dims.state_strides();
    let mut out = vec![0.0; ld * batch * h];
    for i in 0..ld {
        for b in 0..batch {
            let src = i * st_ld + b * st_b;
            out[(i * batch + b) * h..][..h].copy_from_slice(&state[src..src + h]);
        }
    }
    out
}

/// `[L, D, B, H]` → a state tensor in `dims`' state layout; with `lens`, entries of length 0
/// get zeros (their `Y_h` is a constant zero).
pub(super) fn from_internal_state(state: &[f32], dims: &Dims, lens: Option<&[u32]>) -> Vec<f32> {
    let (ld, batch, h) = (
        dims.num_layers * dims.num_directions,
        dims.batch,
        dims.hidden_size,
    );
    let [st_ld, st_b] = dims.state_strides();
    let mut out = vec![0.0; dims.state_len()];
    for i in 0..ld {
        for b in 0..batch {
            if lens.is_some_and(|l| l[b] == 0) {
                continue;
            }
            let dst = i * st_ld + b * st_b;
            out[dst..dst + h].copy_from_slice(&state[(i * batch + b) * h..][..h]);
        }
    }
    out
}

/// Entries `b0 .. b0 + n` of a `[outer, batch, inner]` tensor, as `[outer, n, inner]`.
pub(super) fn take_entries(
    v: &[f32],
    outer: usize,
    batch: usize,
    inner: usize,
    b0: usize,
    n: usize,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(outer * n * inner);
    for o in 0..outer {
        out.extend_from_slice(&v[(o * batch + b0) * inner..][..n * inner]);
    }
    out
}

/// Writes `src` (`[outer, n, inner]`) into entries `b0 .. b0 + n` of `dst`
/// (`[outer, batch, inner]`): the inverse of [`take_entries`].
pub(super) fn put_entries(
    dst: &mut [f32],
    src: &[f32],
    outer: usize,
    batch: usize,
    inner: usize,
    b0: usize,
    n: usize,
) {
    for o in 0..outer {
        dst[(o * batch + b0) * inner..][..n * inner]
            .copy_from_slice(&src[o * n * inner..][..n * inner]);
    }
}
