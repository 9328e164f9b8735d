//! What a forward of each kind of model takes and returns, in plain Rust (no JavaScript
//! types), so that it is unit-tested natively.

use gru_wgpu::{Dims, GruError, GruInput, Layout, OutputStyle, Result};

/// Where a model came from; decides the shapes its forward uses by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A PyTorch `nn.GRU` state_dict: `X[T, B, I]` (or `[B, T, I]`), `Y[T, B, D·H]`,
    /// `h_n[L·D, B, H]`.
    PyTorch,
    /// Keras GRU weights: `x[B, T, I]`, `y[B, T, H]` (return_sequences), state `[B, H]`.
    Keras,
    /// An ONNX GRU node: its `layout`, `Y[T, D, B, H]`, `Y_h[D, B, H]`.
    Onnx(Layout),
    /// A seeded model built in the page: ONNX's shapes, sequence-major.
    Seeded,
}

impl Origin {
    /// `"pytorch"`, `"keras"`, `"onnx"` or `"seeded"`.
    pub fn format(self) -> &'static str {
        match self {
            Origin::PyTorch => "pytorch",
            Origin::Keras => "keras",
            Origin::Onnx(_) => "onnx",
            Origin::Seeded => "seeded",
        }
    }

    /// The layout a forward uses unless told otherwise.
    pub fn default_layout(self) -> Layout {
        match self {
            Origin::PyTorch | Origin::Seeded => Layout::SequenceMajor,
            Origin::Keras => Layout::BatchMajor,
            Origin::Onnx(layout) => layout,
        }
    }

    /// `"onnx"`, `"pytorch"` or `"keras"`: the framework whose output shapes are produced.
    pub fn style_name(self) -> &'static str {
        match self {
            Origin::PyTorch => "pytorch",
            Origin::Keras => "keras",
            Origin::Onnx(_) | Origin::Seeded => "onnx",
        }
    }

    fn style(self) -> OutputStyle {
        match self {
            Origin::PyTorch | Origin::Keras => OutputStyle::PyTorch,
            Origin::Onnx(_) | Origin::Seeded => OutputStyle::Onnx,
        }
    }
}

/// `"sequence"` or `"batch"`.
pub fn layout_name(layout: Layout) -> &'static str {
    match layout {
        Layout::SequenceMajor => "sequence",
        Layout::BatchMajor => "batch",
    }
}

/// Parses `"sequence"` / `"batch"`.
pub fn parse_layout(s: &str) -> Result<Layout> {
    match s {
        "sequence" => Ok(Layout::SequenceMajor),
        "batch" => Ok(Layout::BatchMajor),
        other => Err(GruError::invalid(
            "layout",
            "\"sequence\" (X[T, B, I]) or \"batch\" (X[B, T, I])",
            format!("{other:?}"),
        )),
    }
}

/// One forward's arguments, owned (a promise outlives the JavaScript call).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ForwardArgs {
    /// `X`, in `layout`'s order.
    pub x: Vec<f32>,
    /// `T`.
    pub seq_len: usize,
    /// `B`.
    pub batch: usize,
    /// The initial state, in the output state's shape.
    pub h0: Option<Vec<f32>>,
    /// Per-entry lengths `[B]`.
    pub lengths: Option<Vec<i64>>,
    /// `None`: the model's default.
    pub layout: Option<Layout>,
}

impl ForwardArgs {
    /// The library's input for a model of `origin`. Errors: lengths for a Keras model
    /// (Keras masks steps instead).
    pub fn input(&self, origin: Origin) -> Result<GruInput<'_>> {
        if origin == Origin::Keras && self.lengths.is_some() {
            return Err(GruError::invalid(
                "lengths",
                "none for a Keras model (Keras masks steps instead of packing sequences)",
                "lengths",
            ));
        }
        let mut input = GruInput::new(&self.x, self.seq_len, self.batch)
            .with_layout(self.layout.unwrap_or(origin.default_layout()))
            .with_style(origin.style());
        if let Some(h0) = &self.h0 {
            input = input.with_initial_h(h0);
        }
        if let Some(lengths) = &self.lengths {
            input = input.with_sequence_lens(lengths);
        }
        Ok(input)
    }
}

/// The shapes of `Y` and of the final state, as the framework of `origin` writes them.
pub fn output_shapes(origin: Origin, dims: &Dims) -> (Vec<usize>, Vec<usize>) {
    match origin {
        // Keras: one layer, one direction; the state is [B, H] (the library's [1, B, H]).
        Origin::Keras => (dims.y_shape(), vec![dims.batch, dims.hidden_size]),
        _ => (dims.y_shape(), dims.state_shape()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gru_wgpu::init::{self, Init};
    use gru_wgpu::{cpu, Convention, Direction};

    fn run(origin: Origin, args: &ForwardArgs, dirs: Direction, layers: usize) -> Dims {
        let model =
            init::gru_model(Init::PyTorch, Convention::ResetAfter, dirs, layers, 3, 4, 1).unwrap();
        let input = args.input(origin).unwrap();
        let out = cpu::forward_model(&model, &input).unwrap();
        let (y, h) = output_shapes(origin, &out.dims);
        assert_eq!(
            y.iter().product::<usize>(),
            out.y.len(),
            "{origin:?} Y {y:?}"
        );
        assert_eq!(
            h.iter().product::<usize>(),
            out.y_h.len(),
            "{origin:?} state {h:?}"
        );
        out.dims
    }

    fn args(t: usize, b: usize, layout: Option<Layout>) -> ForwardArgs {
        ForwardArgs {
            x: vec![0.5; t * b * 3],
            seq_len: t,
            batch: b,
            layout,
            ..ForwardArgs::default()
        }
    }

    #[test]
    fn each_origin_has_its_frameworks_shapes() {
        let d = run(
            Origin::PyTorch,
            &args(5, 2, None),
            Direction::Bidirectional,
            2,
        );
        assert_eq!(
            output_shapes(Origin::PyTorch, &d),
            (vec![5, 2, 8], vec![4, 2, 4])
        );
        let d = run(
            Origin::PyTorch,
            &args(5, 2, Some(Layout::BatchMajor)),
            Direction::Forward,
            1,
        );
        assert_eq!(
            output_shapes(Origin::PyTorch, &d),
            (vec![2, 5, 4], vec![1, 2, 4])
        );
        let d = run(Origin::Keras, &args(5, 2, None), Direction::Forward, 1);
        assert_eq!(
            output_shapes(Origin::Keras, &d),
            (vec![2, 5, 4], vec![2, 4])
        );
        let d = run(
            Origin::Onnx(Layout::BatchMajor),
            &args(5, 2, None),
            Direction::Bidirectional,
            1,
        );
        assert_eq!(
            output_shapes(Origin::Onnx(Layout::BatchMajor), &d),
            (vec![2, 5, 2, 4], vec![2, 2, 4])
        );
        let d = run(Origin::Seeded, &args(5, 2, None), Direction::Forward, 3);
        assert_eq!(
            output_shapes(Origin::Seeded, &d),
            (vec![5, 1, 2, 4], vec![3, 2, 4])
        );
    }

    #[test]
    fn keras_refuses_lengths_and_layouts_parse() {
        let mut a = args(2, 1, None);
        a.lengths = Some(vec![1]);
        let e = a.input(Origin::Keras).unwrap_err().to_string();
        assert!(e.contains("Keras masks steps"), "{e}");
        assert!(a.input(Origin::PyTorch).is_ok());
        assert_eq!(parse_layout("batch").unwrap(), Layout::BatchMajor);
        let e = parse_layout("time").unwrap_err().to_string();
        assert!(e.contains("\"time\""), "{e}");
    }
}
