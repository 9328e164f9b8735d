//! The losses' f64 reference (`gru_wgpu::loss`: a Dense head, binary cross-entropy from the
//! logit, sparse categorical cross-entropy, mean squared error, accuracy) against float64
//! PyTorch autograd (loss, dW, db, dx) and Keras 3 (loss and accuracy, which Keras computes
//! partly in float32), from tests/data/golden/loss_* (scripts/golden_loss.py).

use crate::golden_files::load;
use gru_wgpu::loss::{dense, dense_backward, loss_and_grad, Loss};

fn close(case: &str, what: &str, got: &[f64], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{case}: {what}: length");
    let scale = want.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    let tol = 1e-14 + rtol * scale;
    for (k, (g, e)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - e).abs() <= tol,
            "{case}: {what}[{k}] got {g} expected {e} (tolerance {tol:e})"
        );
    }
}

fn check(case: &str, loss: Loss) {
    let t = load(case, "loss.safetensors");
    let get = |name: &str| t.get(name).unwrap_or_else(|| panic!("{case}: no {name}"));
    let (x_shape, x) = get("x");
    let (w_shape, w) = get("weight");
    let (_, b) = get("bias");
    let (_, targets) = get("targets");
    let (inputs, out) = (x_shape[1], w_shape[0]);
    let z = dense(w, b, x, inputs);
    let (value, dz) = loss_and_grad(loss, &z, out, targets).expect("loss");
    let (dw, db, dx) = dense_backward(w, x, &dz, inputs, out);
    close(
        case,
        "PyTorch loss",
        &[value.loss],
        &get("torch_loss").1,
        1e-12,
    );
    close(case, "dW", &dw, &get("dW").1, 1e-12);
    close(case, "db", &db, &get("db").1, 1e-12);
    close(case, "dx", &dx, &get("dx").1, 1e-12);
    // Keras reduces in float32 (its accuracy is a float32 mean): 1e-6 relative.
    close(
        case,
        "Keras loss",
        &[value.loss],
        &get("keras_loss").1,
        1e-6,
    );
    if let Some((_, acc)) = t.get("keras_accuracy") {
        close(case, "Keras accuracy", &[value.accuracy()], acc, 1e-6);
        assert!(
            value.correct > 0,
            "{case}: some entry right, to check the metric"
        );
    }
}

#[test]
fn binary_crossentropy_matches_torch_and_keras() {
    check("loss_binary_crossentropy", Loss::BinaryCrossentropy);
}

#[test]
fn sparse_categorical_crossentropy_matches_torch_and_keras() {
    check(
        "loss_sparse_categorical_crossentropy",
        Loss::SparseCategoricalCrossentropy,
    );
}

#[test]
fn mean_squared_error_matches_torch_and_keras() {
    check("loss_mean_squared_error", Loss::MeanSquaredError);
}
