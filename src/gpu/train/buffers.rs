//! Conversions between the user's tensors (any layout and output style, see
//! [`crate::input`]) and the sequence-major tensors training keeps on the device: rows
//! `t·B + b`, directions side by side (`[T, B, D, H]`), states `[L, D, B, H]`.

use crate::input::Dims;

/// Which way [`permute`] copies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    /// From the user's layout to the device's.
    ToDevice,
    /// From the device's layout to the user's.
    FromDevice,
}

/// Copies `width`-float runs between a tensor in the user's layout (`len` floats) and one in
/// the device's, at the `(user, device)` offsets of `pairs`; what no pair covers stays zero.
fn permute(
    src: &[f32],
    len: usize,
    width: usize,
    way: Way,
    pairs: impl Iterator<Item = (usize, usize)>,
) -> Vec<f32> {
    let mut out = vec![0.0; len];
    for (user, device) in pairs {
        let (from, to) = match way {
            Way::ToDevice => (user, device),
            Way::FromDevice => (device, user),
        };
        out[to..to + width].copy_from_slice(&src[from..from + width]);
    }
    out
}

/// `(user, device)` offsets of the rows of a `[T, B, k]` tensor (X, dX).
fn row_pairs(dims: &Dims, k: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let batch = dims.batch;
    (0..dims.seq_len)
        .flat_map(move |t| (0..batch).map(move |b| (dims.row(t, b) * k, (t * batch + b) * k)))
}

/// `(user, device)` offsets of the `H`-float runs of `Y` (and `dY`): `[T, B, D, H]` on the
/// device.
fn y_pairs(dims: &Dims) -> impl Iterator<Item = (usize, usize)> + '_ {
    let (batch, nd, h) = (dims.batch, dims.num_directions, dims.hidden_size);
    let [yt, yd, yb] = dims.y_strides();
    (0..dims.seq_len).flat_map(move |t| {
        (0..batch).flat_map(move |b| {
            (0..nd).map(move |d| (t * yt + d * yd + b * yb, ((t * batch + b) * nd + d) * h))
        })
    })
}

/// `(user, device)` offsets of the `H`-float runs of a state tensor (`initial_h`, `Y_h`,
/// `dY_h`): `[L·D, B, H]` on the device; entries where `skip(b)` are left out.
fn state_pairs<'a>(
    dims: &'a Dims,
    skip: impl Fn(usize) -> bool + Copy + 'a,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    let (batch, h) = (dims.batch, dims.hidden_size);
    let [st_ld, st_b] = dims.state_strides();
    (0..dims.num_layers * dims.num_directions).flat_map(move |i| {
        (0..batch)
            .filter(move |&b| !skip(b))
            .map(move |b| (i * st_ld + b * st_b, (i * batch + b) * h))
    })
}

/// `X` (or `dX`) of width `k` in `dims`' layout → rows `t·B + b`.
pub(super) fn to_internal_rows(x: &[f32], dims: &Dims, k: usize) -> Vec<f32> {
    let len = dims.seq_len * dims.batch * k;
    permute(x, len, k, Way::ToDevice, row_pairs(dims, k))
}

/// The inverse of [`to_internal_rows`].
pub(super) fn rows_from_internal(x: &[f32], dims: &Dims, k: usize) -> Vec<f32> {
    let len = dims.seq_len * dims.batch * k;
    permute(x, len, k, Way::FromDevice, row_pairs(dims, k))
}

/// `Y` (or `dY`) in `dims`' layout and output style → `[T, B, D, H]`.
pub(super) fn y_to_internal(y: &[f32], dims: &Dims) -> Vec<f32> {
    permute(
        y,
        dims.y_len(),
        dims.hidden_size,
        Way::ToDevice,
        y_pairs(dims),
    )
}

/// `[T, B, D, H]` → `Y` in `dims`' layout and output style.
pub(super) fn from_internal_y(y: &[f32], dims: &Dims) -> Vec<f32> {
    permute(
        y,
        dims.y_len(),
        dims.hidden_size,
        Way::FromDevice,
        y_pairs(dims),
    )
}

/// A state tensor (`initial_h`, `dY_h`) in `dims`' state layout → `[L, D, B, H]`.
pub(super) fn to_internal_state(state: &[f32], dims: &Dims) -> Vec<f32> {
    let pairs = state_pairs(dims, |_| false);
    permute(
        state,
        dims.state_len(),
        dims.hidden_size,
        Way::ToDevice,
        pairs,
    )
}

/// `[L, D, B, H]` → a state tensor in `dims`' state layout; with `lens`, entries of length 0
/// get zeros (their `Y_h` is a constant zero).
pub(super) fn from_internal_state(state: &[f32], dims: &Dims, lens: Option<&[u32]>) -> Vec<f32> {
    let pairs = state_pairs(dims, |b| lens.is_some_and(|l| l[b] == 0));
    permute(
        state,
        dims.state_len(),
        dims.hidden_size,
        Way::FromDevice,
        pairs,
    )
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
