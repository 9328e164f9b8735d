//! Training losses, their gradients and the accuracy metric (issue 15), as Keras defines them,
//! in `f64` on the host: the reference the GPU's loss kernels are checked against, checked
//! itself against PyTorch and Keras in float64 (tests/io/loss.rs, `scripts/golden_loss.py`).
//!
//! The head is a [`dense`] layer `z = W·x + b` (`W [out, in]`, PyTorch's order) on the GRU's
//! features, then one of:
//!
//! - [`Loss::BinaryCrossentropy`] (one output, sigmoid; labels 0 or 1): per entry
//!   `max(z, 0) − z·y + log(1 + e^−|z|)`, which is `−y log σ(z) − (1 − y) log(1 − σ(z))`
//!   **computed from the logit**, as Keras's TensorFlow backend does for a sigmoid output
//!   (stable for any `z`); Keras's torch backend instead clips `σ(z)` to `[1e-7, 1 − 1e-7]`,
//!   which differs only where `σ(z)` is within 1e-7 of 0 or 1. `∂/∂z = σ(z) − y`. Accuracy:
//!   `σ(z) > 0.5` equals the label (Keras's `binary_accuracy`).
//! - [`Loss::SparseCategoricalCrossentropy`] (`out` classes, softmax; labels are class
//!   indices): `logsumexp(z) − z_y`, `∂/∂z = softmax(z) − onehot(y)`. Accuracy: the arg-max
//!   (the first, on ties) equals the label.
//! - [`Loss::MeanSquaredError`] (any outputs, identity; targets of the outputs' shape):
//!   `mean_k (z_k − t_k)²` per entry, `∂/∂z_k = 2 (z_k − t_k) / out`; no accuracy.
//!
//! The loss of a batch is the mean over its entries (Keras's `sum_over_batch_size`), so the
//! gradients carry a `1/n`. For a per-step head (sequence to sequence) the entries are the
//! valid (entry, step) pairs.

use crate::error::{GruError, Result};

/// A loss on the head's outputs (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// One logit per entry, sigmoid, binary cross-entropy from the logit; labels 0 or 1.
    BinaryCrossentropy,
    /// One logit per class, softmax, cross-entropy with integer labels.
    SparseCategoricalCrossentropy,
    /// Identity outputs, mean squared error against targets.
    MeanSquaredError,
}

/// The loss of a batch and its accuracy counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossValue {
    /// The mean loss over the batch's entries.
    pub loss: f64,
    /// Entries predicted right (0 for [`Loss::MeanSquaredError`]).
    pub correct: usize,
    /// Entries in the batch.
    pub count: usize,
}

impl LossValue {
    /// `correct / count` (0 for an empty batch).
    pub fn accuracy(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.correct as f64 / self.count as f64
        }
    }
}

/// `z [n, out] = x [n, in] · Wᵀ + b` for `weight [out, in]`, `bias [out]`.
pub fn dense(weight: &[f64], bias: &[f64], x: &[f64], inputs: usize) -> Vec<f64> {
    let out = bias.len();
    let n = x.len() / inputs.max(1);
    let mut z = vec![0.0; n * out];
    for e in 0..n {
        for o in 0..out {
            let row = &weight[o * inputs..(o + 1) * inputs];
            z[e * out + o] = bias[o]
                + row
                    .iter()
                    .zip(&x[e * inputs..(e + 1) * inputs])
                    .map(|(w, v)| w * v)
                    .sum::<f64>();
        }
    }
    z
}

/// The gradients of a [`dense`] layer given `dz [n, out]`: `(dW [out, in], db [out],
/// dx [n, in])`.
pub fn dense_backward(
    weight: &[f64],
    x: &[f64],
    dz: &[f64],
    inputs: usize,
    out: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = dz.len() / out.max(1);
    let mut dw = vec![0.0; out * inputs];
    let mut db = vec![0.0; out];
    let mut dx = vec![0.0; n * inputs];
    for e in 0..n {
        for o in 0..out {
            let g = dz[e * out + o];
            db[o] += g;
            for k in 0..inputs {
                dw[o * inputs + k] += g * x[e * inputs + k];
                dx[e * inputs + k] += g * weight[o * inputs + k];
            }
        }
    }
    (dw, db, dx)
}

/// The loss of logits `z [n, out]` against `targets` (labels `[n]` for the classification
/// losses, `[n, out]` for mean squared error), with its accuracy counts, and `∂loss/∂z`.
///
/// Errors (typed, nothing computed): a binary cross-entropy head with `out ≠ 1`, targets of
/// the wrong length, a binary label other than 0 or 1, a class index that is not a whole
/// number in `0..out`. A NaN logit propagates into the loss and its gradient.
pub fn loss_and_grad(
    loss: Loss,
    z: &[f64],
    out: usize,
    targets: &[f64],
) -> Result<(LossValue, Vec<f64>)> {
    if out == 0 || !z.len().is_multiple_of(out) {
        return Err(GruError::invalid(
            "logits",
            format!("[n, {out}] values"),
            z.len(),
        ));
    }
    let n = z.len() / out;
    check_targets(loss, n, out, targets)?;
    let scale = 1.0 / n.max(1) as f64;
    let mut total = 0.0;
    let mut correct = 0;
    let mut grad = vec![0.0; z.len()];
    for e in 0..n {
        let ze = &z[e * out..(e + 1) * out];
        let ge = &mut grad[e * out..(e + 1) * out];
        match loss {
            Loss::BinaryCrossentropy => {
                let (x, y) = (ze[0], targets[e]);
                total += x.max(0.0) - x * y + (-x.abs()).exp().ln_1p();
                let p = sigmoid(x);
                ge[0] = (p - y) * scale;
                correct += ((p > 0.5) as u8 as f64 == y) as usize;
            }
            Loss::SparseCategoricalCrossentropy => {
                let y = targets[e] as usize;
                let top = ze.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = ze.iter().map(|v| (v - top).exp()).sum();
                let lse = top + sum.ln();
                total += lse - ze[y];
                for (k, g) in ge.iter_mut().enumerate() {
                    let p = (ze[k] - lse).exp();
                    *g = (p - if k == y { 1.0 } else { 0.0 }) * scale;
                }
                let argmax = ze
                    .iter()
                    .enumerate()
                    .fold(0, |best, (k, &v)| if v > ze[best] { k } else { best });
                correct += (argmax == y) as usize;
            }
            Loss::MeanSquaredError => {
                let te = &targets[e * out..(e + 1) * out];
                let mut s = 0.0;
                for k in 0..out {
                    let d = ze[k] - te[k];
                    s += d * d;
                    ge[k] = 2.0 * d / out as f64 * scale;
                }
                total += s / out as f64;
            }
        }
    }
    Ok((
        LossValue {
            loss: total * scale,
            correct,
            count: n,
        },
        grad,
    ))
}

/// Checks `targets` for `n` entries of a head with `out` outputs under `loss` (as
/// [`loss_and_grad`] takes them): their number, a binary cross-entropy head's single output
/// and 0/1 labels, class indices that are whole numbers in `0..out`. Typed errors naming the
/// first bad label.
pub fn check_targets(loss: Loss, n: usize, out: usize, targets: &[f64]) -> Result<()> {
    let want = match loss {
        Loss::MeanSquaredError => n * out,
        _ => n,
    };
    if targets.len() != want {
        return Err(GruError::invalid(
            "labels",
            format!("{want} values for {n} entries"),
            targets.len(),
        ));
    }
    match loss {
        Loss::BinaryCrossentropy if out != 1 => {
            return Err(GruError::invalid(
                "binary cross-entropy head",
                "one output",
                format!("{out} outputs"),
            ))
        }
        Loss::BinaryCrossentropy => {
            if let Some((i, y)) = targets
                .iter()
                .enumerate()
                .find(|(_, &y)| y != 0.0 && y != 1.0)
            {
                return Err(GruError::invalid(
                    format!("label {i}"),
                    "0 or 1 (binary cross-entropy)",
                    y,
                ));
            }
        }
        Loss::SparseCategoricalCrossentropy => {
            if let Some((i, y)) = targets
                .iter()
                .enumerate()
                .find(|(_, &y)| !(y >= 0.0 && y < out as f64 && y.fract() == 0.0))
            {
                return Err(GruError::invalid(
                    format!("label {i}"),
                    format!("a class index in 0..{out}"),
                    y,
                ));
            }
        }
        Loss::MeanSquaredError => {}
    }
    Ok(())
}

/// The head's outputs from its logits `z [n, out]` under `loss`'s activation: sigmoid for
/// binary cross-entropy, softmax (per entry) for categorical cross-entropy, identity for mean
/// squared error.
pub fn activate(loss: Loss, z: &[f64], out: usize) -> Vec<f64> {
    let mut p = z.to_vec();
    for pe in p.chunks_mut(out.max(1)) {
        match loss {
            Loss::BinaryCrossentropy => {
                for v in pe.iter_mut() {
                    *v = sigmoid(*v);
                }
            }
            Loss::SparseCategoricalCrossentropy => {
                let top = pe.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = pe.iter().map(|v| (v - top).exp()).sum();
                for v in pe.iter_mut() {
                    *v = (*v - top).exp() / sum;
                }
            }
            Loss::MeanSquaredError => {}
        }
    }
    p
}

/// The logistic sigmoid, stable for large `|x|`.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of the loss against its gradient, for each loss.
    #[test]
    fn gradients_match_finite_differences() {
        let z = [0.3, -1.2, 2.5, 0.7, -0.4, 1.1];
        for (loss, out, targets) in [
            (
                Loss::BinaryCrossentropy,
                1,
                vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0],
            ),
            (Loss::SparseCategoricalCrossentropy, 3, vec![2.0, 0.0]),
            (
                Loss::MeanSquaredError,
                2,
                vec![0.1, 0.2, -0.3, 0.4, 0.5, -0.6],
            ),
        ] {
            let (_, grad) = loss_and_grad(loss, &z, out, &targets).unwrap();
            for k in 0..z.len() {
                let h = 1e-6;
                let f = |d: f64| {
                    let mut zz = z.to_vec();
                    zz[k] += d;
                    loss_and_grad(loss, &zz, out, &targets).unwrap().0.loss
                };
                let fd = (f(h) - f(-h)) / (2.0 * h);
                assert!(
                    (fd - grad[k]).abs() < 1e-8,
                    "{loss:?} [{k}]: {fd} vs {}",
                    grad[k]
                );
            }
        }
    }

    #[test]
    fn binary_cross_entropy_is_stable_and_counts_accuracy() {
        let (v, g) =
            loss_and_grad(Loss::BinaryCrossentropy, &[800.0, -800.0], 1, &[0.0, 0.0]).unwrap();
        assert!((v.loss - 400.0).abs() < 1e-9, "{}", v.loss);
        assert_eq!((v.correct, v.count), (1, 2));
        assert!((g[0] - 0.5).abs() < 1e-12 && g[1].abs() < 1e-300);
        let (nan, _) = loss_and_grad(Loss::BinaryCrossentropy, &[f64::NAN], 1, &[1.0]).unwrap();
        assert!(nan.loss.is_nan());
    }

    #[test]
    fn bad_labels_are_typed_errors() {
        for (loss, out, z, t) in [
            (Loss::BinaryCrossentropy, 1, vec![0.0], vec![0.5]),
            (Loss::BinaryCrossentropy, 2, vec![0.0, 1.0], vec![1.0]),
            (
                Loss::SparseCategoricalCrossentropy,
                3,
                vec![0.0; 3],
                vec![3.0],
            ),
            (
                Loss::SparseCategoricalCrossentropy,
                3,
                vec![0.0; 3],
                vec![1.5],
            ),
            (Loss::MeanSquaredError, 2, vec![0.0; 4], vec![1.0]),
        ] {
            assert!(
                matches!(
                    loss_and_grad(loss, &z, out, &t),
                    Err(GruError::InvalidArgument { .. })
                ),
                "{loss:?} {t:?}"
            );
        }
    }

    #[test]
    fn dense_backward_matches_finite_differences() {
        let (inputs, out) = (3, 2);
        let w = [0.1, -0.2, 0.3, 0.4, 0.5, -0.6];
        let b = [0.05, -0.05];
        let x = [1.0, 2.0, -1.0, 0.5, -0.5, 0.25];
        let t = [1.0, 0.0, -1.0, 2.0];
        let loss_of = |w: &[f64], b: &[f64], x: &[f64]| {
            let z = dense(w, b, x, inputs);
            loss_and_grad(Loss::MeanSquaredError, &z, out, &t).unwrap()
        };
        let (_, dz) = loss_of(&w, &b, &x);
        let (dw, db, dx) = dense_backward(&w, &x, &dz, inputs, out);
        let h = 1e-6;
        for (name, base, grad) in [("W", &w[..], &dw), ("b", &b[..], &db), ("x", &x[..], &dx)] {
            for k in 0..base.len() {
                let f = |d: f64| {
                    let mut v = base.to_vec();
                    v[k] += d;
                    match name {
                        "W" => loss_of(&v, &b, &x).0.loss,
                        "b" => loss_of(&w, &v, &x).0.loss,
                        _ => loss_of(&w, &b, &v).0.loss,
                    }
                };
                let fd = (f(h) - f(-h)) / (2.0 * h);
                assert!(
                    (fd - grad[k]).abs() < 1e-8,
                    "{name}[{k}]: {fd} vs {}",
                    grad[k]
                );
            }
        }
    }
}
