//! The inputs and outputs of a forward pass, validated once for every path.
//!
//! # Shapes
//! With `T` steps, batch `B`, `I` input features, `L` layers, `D` directions and `H` units:
//!
//! | tensor | [`Layout::SequenceMajor`] | [`Layout::BatchMajor`] |
//! |---|---|---|
//! | `X` | `[T, B, I]` | `[B, T, I]` |
//! | `Y`, [`OutputStyle::Onnx`] | `[T, D, B, H]` | `[B, T, D, H]` |
//! | `Y`, [`OutputStyle::PyTorch`] | `[T, B, D·H]` | `[B, T, D·H]` |
//! | `initial_h`, `Y_h`, ONNX style | `[L·D, B, H]` | `[B, L·D, H]` |
//! | `initial_h`, `Y_h`, PyTorch style | `[L·D, B, H]` | `[L·D, B, H]` |
//!
//! (ONNX layout 0 / 1 are the sequence- / batch-major rows of the ONNX style with `L = 1`;
//! PyTorch's `batch_first` is the batch-major PyTorch style.) State index `l·D + d` is layer
//! `l`, direction `d` (0 forward, 1 reverse). With `L = D = 1` and the defaults, `Y` is
//! simply `[T, B, H]` and `Y_h` `[B, H]`.

use crate::error::{GruError, Result};
use crate::model::ModelView;
use crate::weights::{mul_sizes, GruWeights};

/// The order of the time and batch axes of `X` and `Y` (ONNX's `layout` attribute).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// `X[T, B, I]`: ONNX `layout = 0`, PyTorch's default.
    #[default]
    SequenceMajor,
    /// `X[B, T, I]`: ONNX `layout = 1`, PyTorch `batch_first=True`, Keras.
    BatchMajor,
}

/// Which framework's output shapes to produce (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OutputStyle {
    /// `Y` has a direction axis of its own; `Y_h` follows the layout.
    #[default]
    Onnx,
    /// `Y` concatenates the directions (`D·H` wide); `h_n` is always `[L·D, B, H]`.
    PyTorch,
}

/// One forward pass's input (see the module docs for every shape).
#[derive(Clone, Copy, Debug)]
pub struct GruInput<'a> {
    /// `X`, `[T, B, I]` or `[B, T, I]` by `layout`, row-major.
    pub x: &'a [f32],
    /// `T`, the number of timesteps (at least 1).
    pub seq_len: usize,
    /// `B`, the number of independent sequences (0 gives empty outputs).
    pub batch: usize,
    /// The initial state of every layer and direction, or `None` for zeros.
    pub initial_h: Option<&'a [f32]>,
    /// Per-entry sequence lengths `[B]`, each in `0..=T` (onnxruntime's semantics: `Y` is zero
    /// past an entry's length, `Y_h` is its last valid state, a reverse direction starts at
    /// `length − 1`, a zero length gives zeros in `Y` and `Y_h`). `None`: all `T`.
    pub sequence_lens: Option<&'a [i64]>,
    /// Axis order of `X` and `Y`.
    pub layout: Layout,
    /// Output shapes.
    pub style: OutputStyle,
}

impl<'a> GruInput<'a> {
    /// A sequence-major input `X[T, B, I]` with a zero initial state and full lengths.
    pub fn new(x: &'a [f32], seq_len: usize, batch: usize) -> Self {
        GruInput {
            x,
            seq_len,
            batch,
            initial_h: None,
            sequence_lens: None,
            layout: Layout::SequenceMajor,
            style: OutputStyle::Onnx,
        }
    }

    /// The same input with an initial state (`[L·D, B, H]`, or `[B, L·D, H]` for the
    /// batch-major ONNX style).
    pub fn with_initial_h(mut self, initial_h: &'a [f32]) -> Self {
        self.initial_h = Some(initial_h);
        self
    }

    /// The same input with per-entry lengths `[B]`.
    pub fn with_sequence_lens(mut self, lens: &'a [i64]) -> Self {
        self.sequence_lens = Some(lens);
        self
    }

    /// The same input with another axis order.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// The same input with another output style.
    pub fn with_style(mut self, style: OutputStyle) -> Self {
        self.style = style;
        self
    }

    /// Checks every length against single-layer weights; returns the validated sizes.
    pub fn validate(&self, weights: &GruWeights) -> Result<Dims> {
        self.validate_view(&ModelView::single(weights))
    }

    pub(crate) fn validate_view(&self, model: &ModelView<'_>) -> Result<Dims> {
        let first = model.first();
        self.validate_for(
            first.input_size(),
            first.hidden_size(),
            model.layers.len(),
            model.num_directions(),
        )
    }

    /// Checks every length and length value against a network of `num_layers` layers of
    /// `num_directions` directions, `input_size` inputs and `hidden_size` units; returns the
    /// validated sizes.
    pub(crate) fn validate_for(
        &self,
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
        num_directions: usize,
    ) -> Result<Dims> {
        let dims = Dims {
            seq_len: self.seq_len,
            batch: self.batch,
            input_size,
            hidden_size,
            num_layers,
            num_directions,
            layout: self.layout,
            style: self.style,
        };
        self.validate_dims(&dims)?;
        Ok(dims)
    }

    /// Checks every length and length value against `dims`.
    fn validate_dims(&self, dims: &Dims) -> Result<()> {
        let (t, b, i, h) = (dims.seq_len, dims.batch, dims.input_size, dims.hidden_size);
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
                format!("{} = {x_len} elements", shape_string(&dims.x_shape())),
                format!("{} elements", self.x.len()),
            ));
        }
        let state_len = mul_sizes("initial_h", dims.num_layers * dims.num_directions, b * h)?;
        if let Some(h0) = self.initial_h {
            if h0.len() != state_len {
                return Err(GruError::shape(
                    "initial_h",
                    format!(
                        "{} = {state_len} elements",
                        shape_string(&dims.state_shape())
                    ),
                    format!("{} elements", h0.len()),
                ));
            }
        }
        if let Some(lens) = self.sequence_lens {
            if lens.len() != b {
                return Err(GruError::shape(
                    "sequence_lens",
                    format!("[B={b}] = {b} elements"),
                    format!("{} elements", lens.len()),
                ));
            }
            if let Some((k, &bad)) = lens
                .iter()
                .enumerate()
                .find(|(_, &l)| l < 0 || l as u64 > t as u64)
            {
                return Err(GruError::invalid(
                    format!("sequence_lens[{k}]"),
                    format!("a length in 0..={t} (T)"),
                    bad,
                ));
            }
        }
        mul_sizes("Y", rows, dims.num_directions * h)?;
        Ok(())
    }

    /// Sequence length of batch entry `b` (validated input).
    pub(crate) fn length(&self, b: usize) -> usize {
        match self.sequence_lens {
            Some(l) => l[b] as usize,
            None => self.seq_len,
        }
    }
}

fn shape_string(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// Validated sizes of one forward pass, and the index arithmetic of its tensors.
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
    /// `L`.
    pub num_layers: usize,
    /// `D`.
    pub num_directions: usize,
    /// Axis order of `X` and `Y`.
    pub layout: Layout,
    /// Output shapes.
    pub style: OutputStyle,
}

impl Dims {
    /// Row of `X` (and of every layer's output) that holds step `t` of entry `b`.
    pub fn row(&self, t: usize, b: usize) -> usize {
        match self.layout {
            Layout::SequenceMajor => t * self.batch + b,
            Layout::BatchMajor => b * self.seq_len + t,
        }
    }

    /// Shape of `X`.
    pub fn x_shape(&self) -> Vec<usize> {
        let (t, b, i) = (self.seq_len, self.batch, self.input_size);
        match self.layout {
            Layout::SequenceMajor => vec![t, b, i],
            Layout::BatchMajor => vec![b, t, i],
        }
    }

    /// `(T, B, D, H)`.
    fn tbdh(&self) -> (usize, usize, usize, usize) {
        (
            self.seq_len,
            self.batch,
            self.num_directions,
            self.hidden_size,
        )
    }

    /// Shape of `Y`.
    pub fn y_shape(&self) -> Vec<usize> {
        let (t, b, d, h) = self.tbdh();
        match (self.style, self.layout) {
            (OutputStyle::Onnx, Layout::SequenceMajor) => vec![t, d, b, h],
            (OutputStyle::Onnx, Layout::BatchMajor) => vec![b, t, d, h],
            (OutputStyle::PyTorch, Layout::SequenceMajor) => vec![t, b, d * h],
            (OutputStyle::PyTorch, Layout::BatchMajor) => vec![b, t, d * h],
        }
    }

    /// Shape of `initial_h` and `Y_h`.
    pub fn state_shape(&self) -> Vec<usize> {
        let (ld, b, h) = (
            self.num_layers * self.num_directions,
            self.batch,
            self.hidden_size,
        );
        match (self.style, self.layout) {
            (OutputStyle::Onnx, Layout::BatchMajor) => vec![b, ld, h],
            _ => vec![ld, b, h],
        }
    }

    /// Strides of `Y` over (t, d, b); unit `j` has stride 1.
    pub fn y_strides(&self) -> [usize; 3] {
        let (t, b, d, h) = self.tbdh();
        match (self.style, self.layout) {
            (OutputStyle::Onnx, Layout::SequenceMajor) => [d * b * h, b * h, h],
            (OutputStyle::PyTorch, Layout::SequenceMajor) => [b * d * h, h, d * h],
            (_, Layout::BatchMajor) => [d * h, h, t * d * h],
        }
    }

    /// Strides of `initial_h` / `Y_h` over (l·D + d, b); unit `j` has stride 1.
    pub fn state_strides(&self) -> [usize; 2] {
        let (ld, b, h) = (
            self.num_layers * self.num_directions,
            self.batch,
            self.hidden_size,
        );
        match (self.style, self.layout) {
            (OutputStyle::Onnx, Layout::BatchMajor) => [h, ld * h],
            _ => [b * h, h],
        }
    }

    /// Number of elements of `Y`.
    pub fn y_len(&self) -> usize {
        self.seq_len * self.batch * self.num_directions * self.hidden_size
    }

    /// Number of elements of `Y_h`.
    pub fn state_len(&self) -> usize {
        self.num_layers * self.num_directions * self.batch * self.hidden_size
    }
}

/// The outputs of a forward pass (shapes in the module docs; [`Dims::y_shape`] and
/// [`Dims::state_shape`] give them).
#[derive(Clone, Debug, PartialEq)]
pub struct GruOutput {
    /// `Y`: the last layer's state at every step (zero past an entry's length).
    pub y: Vec<f32>,
    /// `Y_h`: every layer's and direction's state after its last valid step.
    pub y_h: Vec<f32>,
    /// The sizes the outputs were computed for.
    pub dims: Dims,
}
