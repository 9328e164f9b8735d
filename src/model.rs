//! A whole GRU network: stacked layers, one or two directions, and ONNX's `clip`.

use crate::error::{GruError, Result};
use crate::weights::{Convention, GruWeights};

/// Which way(s) each layer reads the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `t = 0, 1, …, T−1`.
    Forward,
    /// `t = L−1, …, 0` for a sequence of length `L`.
    Reverse,
    /// Both; direction 0 is forward, direction 1 reverse, and each layer's output is the two
    /// concatenated (`D·H` wide).
    Bidirectional,
}

impl Direction {
    /// `D`: 1, or 2 for [`Direction::Bidirectional`].
    pub fn num_directions(self) -> usize {
        match self {
            Direction::Bidirectional => 2,
            _ => 1,
        }
    }

    /// Whether direction index `d` (0 or 1) runs backwards in time.
    pub fn is_reverse(self, d: usize) -> bool {
        match self {
            Direction::Forward => false,
            Direction::Reverse => true,
            Direction::Bidirectional => d == 1,
        }
    }

    /// ONNX's attribute value: `forward`, `reverse` or `bidirectional`.
    pub fn onnx_name(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
            Direction::Bidirectional => "bidirectional",
        }
    }

    /// Parses ONNX's attribute value.
    pub fn from_onnx_name(name: &str) -> Result<Self> {
        match name {
            "forward" => Ok(Direction::Forward),
            "reverse" => Ok(Direction::Reverse),
            "bidirectional" => Ok(Direction::Bidirectional),
            other => Err(GruError::invalid(
                "direction",
                "forward, reverse or bidirectional",
                format!("{other:?}"),
            )),
        }
    }
}

/// A GRU network: `L ≥ 1` layers of `D` directions each, all with the same hidden size `H`
/// and gate convention. Layer 0 reads `I` input features; layer `k > 0` reads the previous
/// layer's output, `D·H` wide (direction 0's `H` units, then direction 1's).
///
/// Each direction's weights are a [`GruWeights`] in ONNX layout (gate order z, r, h).
#[derive(Clone, Debug, PartialEq)]
pub struct GruModel {
    direction: Direction,
    layers: Vec<Vec<GruWeights>>,
    clip: Option<f32>,
}

impl GruModel {
    /// Builds a network from `layers[k][d]`.
    ///
    /// Errors when there is no layer, a layer does not have `D` directions, conventions or
    /// hidden sizes differ, a layer's input size is not `I` (layer 0) or `D·H` (later
    /// layers), or `clip` is not a positive number.
    pub fn new(
        direction: Direction,
        layers: Vec<Vec<GruWeights>>,
        clip: Option<f32>,
    ) -> Result<Self> {
        let d = direction.num_directions();
        let first = layers
            .first()
            .and_then(|l| l.first())
            .ok_or_else(|| GruError::invalid("layers", "at least one layer", "none"))?;
        let (convention, h, i) = (first.convention(), first.hidden_size(), first.input_size());
        for (k, layer) in layers.iter().enumerate() {
            if layer.len() != d {
                return Err(GruError::invalid(
                    format!("layer {k}"),
                    format!("{d} direction(s) for {direction:?}"),
                    format!("{} set(s) of weights", layer.len()),
                ));
            }
            for (dir, w) in layer.iter().enumerate() {
                let expected_input = if k == 0 { i } else { d * h };
                if w.convention() != convention {
                    return Err(GruError::invalid(
                        format!("convention of layer {k} direction {dir}"),
                        format!("{convention:?} (as layer 0)"),
                        format!("{:?}", w.convention()),
                    ));
                }
                if w.hidden_size() != h {
                    return Err(GruError::invalid(
                        format!("hidden size of layer {k} direction {dir}"),
                        format!("{h} (as layer 0)"),
                        w.hidden_size(),
                    ));
                }
                if w.input_size() != expected_input {
                    return Err(GruError::invalid(
                        format!("input size of layer {k} direction {dir}"),
                        if k == 0 {
                            format!("{i} (as layer 0 direction 0)")
                        } else {
                            format!("D·H = {expected_input} (the previous layer's output)")
                        },
                        w.input_size(),
                    ));
                }
            }
        }
        if let Some(c) = clip {
            if c.is_nan() || c <= 0.0 {
                return Err(GruError::invalid("clip", "a positive threshold", c));
            }
        }
        Ok(GruModel {
            direction,
            layers,
            clip,
        })
    }

    /// This network as a GPU model of storage type `dtype` holds it
    /// ([`GruWeights::rounded_to`] for every layer and direction).
    pub fn rounded_to(&self, dtype: crate::Dtype) -> GruModel {
        GruModel {
            layers: self
                .layers
                .iter()
                .map(|l| l.iter().map(|w| w.rounded_to(dtype)).collect())
                .collect(),
            ..*self
        }
    }

    /// One forward layer.
    pub fn single(weights: GruWeights) -> Self {
        GruModel {
            direction: Direction::Forward,
            layers: vec![vec![weights]],
            clip: None,
        }
    }

    /// The directions.
    pub fn direction(&self) -> Direction {
        self.direction
    }
    /// `D`.
    pub fn num_directions(&self) -> usize {
        self.direction.num_directions()
    }
    /// `L`.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }
    /// The weights of layer `k`, one per direction.
    pub fn layer(&self, k: usize) -> &[GruWeights] {
        &self.layers[k]
    }
    /// All layers.
    pub fn layers(&self) -> &[Vec<GruWeights>] {
        &self.layers
    }
    /// ONNX's cell clip: gate pre-activations are clamped to `[−clip, clip]`.
    pub fn clip(&self) -> Option<f32> {
        self.clip
    }
    /// The gate convention (the same in every layer).
    pub fn convention(&self) -> Convention {
        self.layers[0][0].convention()
    }
    /// `I`, the input features of layer 0.
    pub fn input_size(&self) -> usize {
        self.layers[0][0].input_size()
    }
    /// `H`.
    pub fn hidden_size(&self) -> usize {
        self.layers[0][0].hidden_size()
    }
    /// Number of parameters (weights and biases, including ONNX's separate recurrent bias).
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|w| w.w().len() + w.r().len() + w.b().len())
            .sum()
    }

    pub(crate) fn view(&self) -> ModelView<'_> {
        ModelView {
            direction: self.direction,
            layers: self.layers.iter().map(|l| l.iter().collect()).collect(),
            clip: self.clip,
        }
    }
}

impl From<GruWeights> for GruModel {
    fn from(weights: GruWeights) -> Self {
        GruModel::single(weights)
    }
}

/// Borrowed form of a network, shared by [`GruModel`] and a lone [`GruWeights`].
pub(crate) struct ModelView<'a> {
    pub direction: Direction,
    pub layers: Vec<Vec<&'a GruWeights>>,
    pub clip: Option<f32>,
}

impl<'a> ModelView<'a> {
    pub fn single(weights: &'a GruWeights) -> Self {
        ModelView {
            direction: Direction::Forward,
            layers: vec![vec![weights]],
            clip: None,
        }
    }
    pub fn first(&self) -> &'a GruWeights {
        self.layers[0][0]
    }
    pub fn num_directions(&self) -> usize {
        self.direction.num_directions()
    }
}
