//! Training data (issue 15): sequences `X [N, T, I]` (batch-major, as Keras and
//! `pad_sequences` make them), per-sequence targets (`[N]` labels, or `[N, width]` values),
//! optional lengths `[N]`, and their batches, as Keras's `fit` forms them:
//!
//! - [`Dataset::split_validation`] takes the **last** `⌊N·(1 − fraction)⌋ … N` entries for
//!   validation, before any shuffling (Keras's `validation_split`); a split that leaves
//!   either side empty is an error, as in Keras.
//! - [`Dataset::batches`] covers every entry once per epoch in batches of `batch_size`, the
//!   last one smaller when `N` is not a multiple (Keras passes the partial batch as it is);
//!   with shuffling, the order is a Fisher–Yates permutation drawn from `(seed, epoch)`
//!   ([`SplitMix64`]), the same on every machine (not Keras's own generator's).
//!
//! Pre-padded sequences without lengths are ordinary inputs (every step counts, padding
//! included, as Keras without masking).

use crate::error::{GruError, Result};
use crate::seeded::SplitMix64;

/// Sequences with their targets (module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    x: Vec<f32>,
    n: usize,
    t: usize,
    i: usize,
    targets: Vec<f64>,
    width: usize,
    lens: Option<Vec<i64>>,
}

/// One batch: `x [B, T, I]` (batch-major), targets `[B·width]`, lengths `[B]` if the data
/// has them, and which entries of the data set it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `[B, T, I]`.
    pub x: Vec<f32>,
    /// `[B, width]` (`width` 1 for labels).
    pub targets: Vec<f64>,
    /// `[B]`, when the data set has lengths.
    pub lens: Option<Vec<i64>>,
    /// The entries' indices in the data set, in batch order.
    pub entries: Vec<usize>,
}

impl Batch {
    /// Entries in the batch.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Dataset {
    /// A data set of `x` with shape `[n, t, i]`, `targets` (`n · width` values: `width` 1 for
    /// labels) and optional `lens` (`n` values in `0..=t`).
    ///
    /// Errors (typed, naming what was expected and what came): sizes that do not match, a
    /// zero dimension, a non-finite value in `x` or the targets (the first one's index), a
    /// length outside `0..=t`.
    pub fn new(
        x: Vec<f32>,
        [n, t, i]: [usize; 3],
        targets: Vec<f64>,
        width: usize,
        lens: Option<Vec<i64>>,
    ) -> Result<Self> {
        if n == 0 || t == 0 || i == 0 || width == 0 {
            return Err(GruError::invalid(
                "data shape",
                "N, T, I and the target width ≥ 1",
                format!("[{n}, {t}, {i}], width {width}"),
            ));
        }
        let want = n.checked_mul(t).and_then(|v| v.checked_mul(i));
        if want != Some(x.len()) {
            return Err(GruError::invalid(
                "X",
                format!("[N={n}, T={t}, I={i}] values"),
                format!("{} values", x.len()),
            ));
        }
        if targets.len() != n * width {
            return Err(GruError::invalid(
                "targets",
                format!("[N={n}, {width}] = {} values", n * width),
                format!("{} values", targets.len()),
            ));
        }
        if let Some(k) = x.iter().position(|v| !v.is_finite()) {
            return Err(GruError::invalid(
                "X",
                "finite values",
                format!(
                    "{} at entry {}, step {}, feature {}",
                    x[k],
                    k / (t * i),
                    k / i % t,
                    k % i
                ),
            ));
        }
        if let Some(k) = targets.iter().position(|v| !v.is_finite()) {
            return Err(GruError::invalid(
                "targets",
                "finite values",
                format!("{} at index {k}", targets[k]),
            ));
        }
        if let Some(l) = &lens {
            if l.len() != n {
                return Err(GruError::invalid("lengths", format!("{n} values"), l.len()));
            }
            if let Some(k) = l.iter().position(|&v| v < 0 || v as usize > t) {
                return Err(GruError::invalid(
                    format!("length {k}"),
                    format!("a value in 0..={t}"),
                    l[k],
                ));
            }
        }
        Ok(Dataset {
            x,
            n,
            t,
            i,
            targets,
            width,
            lens,
        })
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the data set is empty (never: [`Dataset::new`] needs N ≥ 1).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// `[N, T, I]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.n, self.t, self.i]
    }

    /// Values per target (1 for labels).
    pub fn target_width(&self) -> usize {
        self.width
    }

    /// Entries `range` as a data set of their own.
    fn slice(&self, range: std::ops::Range<usize>) -> Dataset {
        let row = self.t * self.i;
        Dataset {
            x: self.x[range.start * row..range.end * row].to_vec(),
            n: range.len(),
            t: self.t,
            i: self.i,
            targets: self.targets[range.start * self.width..range.end * self.width].to_vec(),
            width: self.width,
            lens: self.lens.as_ref().map(|l| l[range.clone()].to_vec()),
        }
    }

    /// `(training, validation)`: the first `⌊N·(1 − fraction)⌋` entries and the rest, as
    /// Keras's `validation_split`. Errors: `fraction` outside (0, 1), or a split that leaves
    /// a side empty.
    pub fn split_validation(&self, fraction: f64) -> Result<(Dataset, Dataset)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(GruError::invalid(
                "validation split",
                "a fraction in (0, 1)",
                fraction,
            ));
        }
        let split_at = (self.n as f64 * (1.0 - fraction)).floor() as usize;
        if split_at == 0 || split_at == self.n {
            return Err(GruError::invalid(
                "validation split",
                format!(
                    "a fraction that leaves both sides non-empty with {} entries",
                    self.n
                ),
                fraction,
            ));
        }
        Ok((self.slice(0..split_at), self.slice(split_at..self.n)))
    }

    /// The order of epoch `epoch`'s entries: `0..N`, or shuffled from `(seed, epoch)`.
    pub fn epoch_order(&self, epoch: u64, seed: u64, shuffle: bool) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.n).collect();
        if shuffle {
            let mut rng = SplitMix64::new(seed ^ epoch.wrapping_mul(0xA076_1D64_78BD_642F));
            for k in (1..order.len()).rev() {
                order.swap(k, rng.below(k + 1));
            }
        }
        order
    }

    /// Epoch `epoch`'s batches of `batch_size` entries (the last smaller when `N` is not a
    /// multiple), in [`Dataset::epoch_order`]. Errors: `batch_size` 0.
    pub fn batches(
        &self,
        batch_size: usize,
        epoch: u64,
        seed: u64,
        shuffle: bool,
    ) -> Result<Vec<Batch>> {
        if batch_size == 0 {
            return Err(GruError::invalid("batch size", "≥ 1", 0));
        }
        let row = self.t * self.i;
        let order = self.epoch_order(epoch, seed, shuffle);
        Ok(order
            .chunks(batch_size)
            .map(|entries| {
                let mut x = Vec::with_capacity(entries.len() * row);
                let mut targets = Vec::with_capacity(entries.len() * self.width);
                for &e in entries {
                    x.extend_from_slice(&self.x[e * row..(e + 1) * row]);
                    targets.extend_from_slice(&self.targets[e * self.width..(e + 1) * self.width]);
                }
                Batch {
                    x,
                    targets,
                    lens: self
                        .lens
                        .as_ref()
                        .map(|l| entries.iter().map(|&e| l[e]).collect()),
                    entries: entries.to_vec(),
                }
            })
            .collect())
    }
}

/// How targets of `shape` fit a head under `loss` for `n` sequences of `t` steps: returns
/// `(width, out)`, the target values per entry ([`Dataset::new`]'s `width`) and the head's
/// outputs. `out` 0 infers it from the targets: for softmax `max label + 1` (at least 2), for
/// mean squared error the second axis (1 for `[N]`). A per-step head (`per_step`) takes
/// `[N, T]` or `[N, T, out]`; the others `[N]` (or `[N, 1]`) labels, or `[N, out]` values for
/// mean squared error, checked by [`crate::loss::check_targets`] (0/1 labels, class indices in
/// `0..out`). Errors name the expected and the given shape or the first bad label.
pub fn target_layout(
    loss: crate::loss::Loss,
    per_step: bool,
    [n, t]: [usize; 2],
    shape: &[usize],
    targets: &[f64],
    out: usize,
) -> Result<(usize, usize)> {
    use crate::loss::Loss;
    let shape_text = format!("shape {}", crate::npy::format_shape(shape));
    if per_step {
        let out = match *shape {
            [a, b] if a == n && b == t => 1,
            [a, b, o] if a == n && b == t && o > 0 => o,
            _ => {
                return Err(GruError::shape(
                    "targets of a per-step head",
                    format!("[N, T] = [{n}, {t}] or [N, T, out]"),
                    shape_text,
                ))
            }
        };
        return Ok((t * out, out));
    }
    let out = match (loss, out) {
        (Loss::SparseCategoricalCrossentropy, 0) => {
            let top = targets.iter().cloned().fold(0.0f64, f64::max);
            top.max(1.0) as usize + 1
        }
        (Loss::MeanSquaredError, 0) => shape.get(1).copied().unwrap_or(1),
        (_, 0) => 1,
        (_, out) => out,
    };
    let width = if loss == Loss::MeanSquaredError {
        out
    } else {
        1
    };
    if !(shape == [n] && width == 1 || shape == [n, width]) {
        let what = match loss {
            Loss::BinaryCrossentropy => "labels 0 or 1 of a sigmoid head",
            Loss::SparseCategoricalCrossentropy => "class indices of a softmax head",
            Loss::MeanSquaredError => "targets of a linear head",
        };
        let expected = if width == 1 {
            format!("[N] = [{n}] or [{n}, 1]")
        } else {
            format!("[N] = [{n}], or [N, {width}]")
        };
        return Err(GruError::shape(what, expected, shape_text));
    }
    crate::loss::check_targets(loss, n, out, targets)?;
    Ok((width, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, lens: bool) -> Dataset {
        let (t, i) = (3, 2);
        let x: Vec<f32> = (0..n * t * i).map(|v| v as f32).collect();
        let y: Vec<f64> = (0..n).map(|v| (v % 2) as f64).collect();
        let l = lens.then(|| (0..n as i64).map(|v| v % 4).collect());
        Dataset::new(x, [n, t, i], y, 1, l).unwrap()
    }

    #[test]
    fn batches_cover_every_entry_once_with_a_partial_last_batch() {
        let d = data(10, true);
        for shuffle in [false, true] {
            let b = d.batches(4, 3, 7, shuffle).unwrap();
            assert_eq!(b.iter().map(Batch::len).collect::<Vec<_>>(), vec![4, 4, 2]);
            let mut seen: Vec<usize> = b.iter().flat_map(|b| b.entries.clone()).collect();
            if !shuffle {
                assert_eq!(seen, (0..10).collect::<Vec<_>>());
            }
            seen.sort();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
            for batch in &b {
                for (k, &e) in batch.entries.iter().enumerate() {
                    assert_eq!(batch.x[k * 6], (e * 6) as f32, "x rows follow the entries");
                    assert_eq!(batch.targets[k], (e % 2) as f64);
                    assert_eq!(batch.lens.as_ref().unwrap()[k], (e % 4) as i64);
                }
            }
        }
    }

    #[test]
    fn shuffling_is_seeded_per_epoch() {
        let d = data(50, false);
        assert_eq!(d.epoch_order(1, 9, true), d.epoch_order(1, 9, true));
        assert_ne!(d.epoch_order(1, 9, true), d.epoch_order(2, 9, true));
        assert_ne!(d.epoch_order(1, 9, true), d.epoch_order(1, 10, true));
        assert_ne!(d.epoch_order(1, 9, true), (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn validation_split_takes_the_last_entries_as_keras() {
        let d = data(10, false);
        let (train, val) = d.split_validation(0.25).unwrap();
        // ⌊10 · 0.75⌋ = 7.
        assert_eq!((train.len(), val.len()), (7, 3));
        assert_eq!(
            val.batches(8, 0, 0, false).unwrap()[0].entries,
            vec![0, 1, 2]
        );
        assert_eq!(val.x[0], (7 * 6) as f32);
        let (train, val) = d.split_validation(0.01).unwrap();
        assert_eq!((train.len(), val.len()), (9, 1), "⌊10 · 0.99⌋ = 9");
        assert!(
            d.split_validation(0.95).is_err(),
            "⌊10 · 0.05⌋ = 0: no training entry"
        );
        assert!(data(1, false).split_validation(0.5).is_err());
        assert!(d.split_validation(1.0).is_err());
    }

    #[test]
    fn bad_data_is_a_typed_error() {
        let e = |r: Result<Dataset>| matches!(r, Err(GruError::InvalidArgument { .. }));
        assert!(e(Dataset::new(vec![0.0; 5], [1, 2, 3], vec![0.0], 1, None)));
        assert!(e(Dataset::new(
            vec![0.0; 6],
            [1, 2, 3],
            vec![0.0, 1.0],
            1,
            None
        )));
        let mut x = vec![0.0; 6];
        x[4] = f32::NAN;
        assert!(e(Dataset::new(x, [1, 2, 3], vec![0.0], 1, None)));
        assert!(e(Dataset::new(
            vec![0.0; 6],
            [1, 2, 3],
            vec![f64::INFINITY],
            1,
            None
        )));
        assert!(e(Dataset::new(
            vec![0.0; 6],
            [1, 2, 3],
            vec![0.0],
            1,
            Some(vec![3])
        )));
        assert!(e(Dataset::new(vec![], [0, 2, 3], vec![], 1, None)));
        assert!(data(3, false).batches(0, 0, 0, false).is_err());
    }

    #[test]
    fn target_layout_infers_outputs_and_refuses_shapes() {
        use crate::loss::Loss;
        let bce = target_layout(
            Loss::BinaryCrossentropy,
            false,
            [3, 5],
            &[3],
            &[0.0, 1.0, 1.0],
            1,
        );
        assert_eq!(bce.ok(), Some((1, 1)));
        let ce = target_layout(
            Loss::SparseCategoricalCrossentropy,
            false,
            [3, 5],
            &[3],
            &[0.0, 4.0, 2.0],
            0,
        );
        assert_eq!(ce.ok(), Some((1, 5)));
        let mse = target_layout(Loss::MeanSquaredError, false, [2, 5], &[2, 3], &[0.0; 6], 0);
        assert_eq!(mse.ok(), Some((3, 3)));
        let seq = target_layout(
            Loss::MeanSquaredError,
            true,
            [2, 5],
            &[2, 5, 2],
            &[0.0; 20],
            0,
        );
        assert_eq!(seq.ok(), Some((10, 2)));
        let wrong = target_layout(Loss::BinaryCrossentropy, false, [3, 5], &[4], &[0.0; 4], 1);
        let text = wrong.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("[N] = [3]") && text.contains("shape (4,)"),
            "{text}"
        );
        let label = target_layout(
            Loss::BinaryCrossentropy,
            false,
            [2, 5],
            &[2],
            &[0.0, 2.0],
            1,
        );
        assert!(
            label.is_err(),
            "a label 2 of a sigmoid head must be refused"
        );
        let seq_wrong = target_layout(Loss::MeanSquaredError, true, [2, 5], &[2, 4], &[0.0; 8], 0);
        assert!(seq_wrong.is_err());
    }
}
