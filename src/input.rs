//! The inputs and outputs of a forward pass, validated once for every path.

use crate::error::{GruError, Result};
use crate::weights::{mul_sizes, GruWeights};

/// One forward pass's input: `X[T, B, I]` (sequence-major, ONNX layout 0) and an optional
/// initial state `initial_h[B, H]` (zero when absent).
#[derive(Clone, Copy, Debug)]
pub struct GruInput<'a> {
    /// `X[T, B, I]`, row-major: element `(t, b, i)` is at `(t·B + b)·I + i`.
    pub x: &'a [f32],
    /// `T`, the number of timesteps (at least 1).
    pub seq_len: usize,
    /// `B`, the number of independent sequences (0 gives empty outputs).
    pub batch: usize,
    /// `initial_h[B, H]`, or `None` for zeros.
    pub initial_h: Option<&'a [f32]>,
}

impl<'a> GruInput<'a> {
    /// An input `X[T, B, I]` with a zero initial state.
    pub fn new(x: &'a [f32], seq_len: usize, batch: usize) -> Self {
        GruInput {
            x,
            seq_len,
            batch,
            initial_h: None,
        }
    }

    /// The same input with `initial_h[B, H]`.
    pub fn with_initial_h(mut self, initial_h: &'a [f32]) -> Self {
        self.initial_h = Some(initial_h);
        self
    }

    /// Checks every length against the weights; returns the validated sizes.
    pub fn validate(&self, weights: &GruWeights) -> Result<Dims> {
        self.validate_sizes(weights.input_size(), weights.hidden_size())
    }

    /// Checks every length against a model with `input_size` I and `hidden_size` H.
    pub fn validate_sizes(&self, input_size: usize, hidden_size: usize) -> Result<Dims> {
        let (t, b) = (self.seq_len, self.batch);
        let (i, h) = (input_size, hidden_size);
        if t == 0 {
            return Err(GruError::invalid(
                "sequence length T",
                "at least 1 (PyTorch and ONNX refuse empty sequences)",
                0,
            ));
        }
        let rows = mul_sizes("T·B", t, b)?;
        let x_len = mul_sizes("X", rows, i)?;
        if self.x.len() != x_len {
            return Err(GruError::shape(
                "X",
                format!("[T={t}, B={b}, I={i}] = {x_len} elements"),
                format!("{} elements", self.x.len()),
            ));
        }
        let h_len = mul_sizes("initial_h", b, h)?;
        if let Some(h0) = self.initial_h {
            if h0.len() != h_len {
                return Err(GruError::shape(
                    "initial_h",
                    format!("[B={b}, H={h}] = {h_len} elements"),
                    format!("{} elements", h0.len()),
                ));
            }
        }
        mul_sizes("Y", rows, h)?;
        Ok(Dims {
            seq_len: t,
            batch: b,
            input_size: i,
            hidden_size: h,
        })
    }
}

/// Validated sizes of one forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dims {
    /// `T`.
    pub seq_len: usize,
    /// `B`.
    pub batch: usize,
    /// `I`.
    pub input_size: usize,
    /// `H`.
    pub hidden_size: usize,
}

/// The outputs of a forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct GruOutput {
    /// `Y[T, B, H]`: every step's hidden state; element `(t, b, j)` at `(t·B + b)·H + j`.
    pub y: Vec<f32>,
    /// `Y_h[B, H]`: the state after the last step.
    pub y_h: Vec<f32>,
    /// The sizes the outputs were computed for.
    pub dims: Dims,
}
