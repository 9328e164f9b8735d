//! What every model target does with a model that was read without error.

use gru_wgpu::{cpu, GruInput, GruModel};

/// Runs a model that was accepted on a tiny input (T = 2, B = 1) through the CPU reference
/// path, when it is small enough to stay fast: a model the importers accept must run, and its
/// outputs must have the shapes its sizes promise.
pub fn exercise(model: &GruModel) {
    let (i, h) = (model.input_size(), model.hidden_size());
    assert!(i > 0 && h > 0, "accepted a model with I = {i}, H = {h}");
    if model.parameter_count() > 100_000 {
        return;
    }
    let (t, b) = (2, 1);
    let x = vec![0.5f32; t * b * i];
    let out = cpu::forward_model(model, &GruInput::new(&x, t, b))
        .unwrap_or_else(|e| panic!("an accepted model fails on the CPU path: {e}"));
    let d = model.num_directions();
    assert_eq!(out.y.len(), t * b * d * h, "Y length");
    assert_eq!(out.y_h.len(), model.num_layers() * d * b * h, "Y_h length");
}
