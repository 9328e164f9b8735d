//! A small classifier head on a GRU: `GRU stack → Linear → sigmoid | softmax | identity`,
//! the shape of the seed article's §5 Keras model (`GRU(100)` → `Dense(1, sigmoid)`).
//!
//! The head reads the **final state** of the last layer (Keras `return_sequences=False`,
//! PyTorch `h_n[-D:]`): for each batch entry the `D·H` values of its last layer's directions
//! side by side (direction 0 first), i.e. its last valid step when sequence lengths are given.
//! The head itself is a few hundred multiply-adds per entry, computed on the host in `f64`.

use crate::error::{GruError, Result};
use crate::gpu::{GpuContext, GpuGru};
use crate::input::{GruInput, GruOutput};
use crate::model::GruModel;
use crate::{cpu, weights::mul_sizes};

/// What follows the linear layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadActivation {
    /// Raw scores (logits).
    Identity,
    /// Element-wise logistic sigmoid (binary classifiers, Keras `activation='sigmoid'`).
    Sigmoid,
    /// Softmax over the outputs of each entry (numerically stable: the maximum is subtracted).
    Softmax,
}

/// A fully connected layer `y = act(W·x + b)` with `W[out, in]` (PyTorch `nn.Linear` order).
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    weight: Vec<f32>,
    bias: Vec<f32>,
    in_features: usize,
    out_features: usize,
    activation: HeadActivation,
}

impl Dense {
    /// `weight[out, in]` (row-major, PyTorch's `nn.Linear.weight`), `bias[out]` or `None`.
    pub fn new(
        in_features: usize,
        out_features: usize,
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        activation: HeadActivation,
    ) -> Result<Self> {
        if in_features == 0 || out_features == 0 {
            return Err(GruError::invalid(
                "dense layer size",
                "at least 1 input and 1 output",
                format!("{in_features} → {out_features}"),
            ));
        }
        let n = mul_sizes("dense weight", out_features, in_features)?;
        if weight.len() != n {
            return Err(GruError::shape(
                "dense weight",
                format!("[out={out_features}, in={in_features}] = {n} elements"),
                format!("{} elements", weight.len()),
            ));
        }
        let bias = bias.unwrap_or_else(|| vec![0.0; out_features]);
        if bias.len() != out_features {
            return Err(GruError::shape(
                "dense bias",
                format!("[out={out_features}]"),
                format!("{} elements", bias.len()),
            ));
        }
        Ok(Dense {
            weight,
            bias,
            in_features,
            out_features,
            activation,
        })
    }

    /// Keras's `Dense`: `kernel (in, out)` (transposed relative to [`Dense::new`]),
    /// `bias (out,)`.
    pub fn from_keras(
        in_features: usize,
        out_features: usize,
        kernel: &[f32],
        bias: Option<&[f32]>,
        activation: HeadActivation,
    ) -> Result<Self> {
        let n = mul_sizes("dense kernel", out_features, in_features)?;
        if kernel.len() != n {
            return Err(GruError::shape(
                "dense kernel",
                format!("(in={in_features}, out={out_features}) = {n} elements"),
                format!("{} elements", kernel.len()),
            ));
        }
        let weight = crate::weights::transpose(kernel, in_features, out_features);
        Dense::new(
            in_features,
            out_features,
            weight,
            bias.map(<[f32]>::to_vec),
            activation,
        )
    }

    /// Inputs per entry.
    pub fn in_features(&self) -> usize {
        self.in_features
    }
    /// Outputs per entry.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// Applies the layer to `x[B, in]`; returns `[B, out]`.
    pub fn apply(&self, x: &[f32]) -> Result<Vec<f32>> {
        if !x.len().is_multiple_of(self.in_features) {
            return Err(GruError::shape(
                "dense input",
                format!("[B, in={}]", self.in_features),
                format!("{} elements", x.len()),
            ));
        }
        let mut out = Vec::with_capacity(x.len() / self.in_features * self.out_features);
        for row in x.chunks_exact(self.in_features) {
            let scores: Vec<f64> = (0..self.out_features)
                .map(|o| {
                    let w = &self.weight[o * self.in_features..][..self.in_features];
                    self.bias[o] as f64
                        + w.iter()
                            .zip(row)
                            .map(|(&a, &b)| a as f64 * b as f64)
                            .sum::<f64>()
                })
                .collect();
            match self.activation {
                HeadActivation::Identity => out.extend(scores.iter().map(|&s| s as f32)),
                HeadActivation::Sigmoid => {
                    out.extend(scores.iter().map(|&s| cpu::sigmoid(s) as f32))
                }
                HeadActivation::Softmax => {
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|&s| (s - max).exp()).collect();
                    let sum: f64 = e.iter().sum();
                    out.extend(e.iter().map(|&v| (v / sum) as f32));
                }
            }
        }
        Ok(out)
    }
}

/// The final state of the last layer of every entry, `[B, D·H]`, from a forward's `Y_h`.
///
/// Errors when `output` is inconsistent (a hand-built [`GruOutput`] whose `y_h` does not
/// have `dims.state_len()` elements, or no layer).
pub fn final_features(output: &GruOutput) -> Result<Vec<f32>> {
    let dims = &output.dims;
    let (b, d, h) = (dims.batch, dims.num_directions, dims.hidden_size);
    if dims.num_layers == 0 || output.y_h.len() != dims.state_len() {
        return Err(GruError::shape(
            "Y_h",
            format!("{:?} = {} elements", dims.state_shape(), dims.state_len()),
            format!("{} elements", output.y_h.len()),
        ));
    }
    let [st_ld, st_b] = dims.state_strides();
    let last = (dims.num_layers - 1) * d;
    let mut features = Vec::with_capacity(b * d * h);
    for bb in 0..b {
        for dd in 0..d {
            features.extend_from_slice(&output.y_h[(last + dd) * st_ld + bb * st_b..][..h]);
        }
    }
    Ok(features)
}

/// A GRU network followed by a [`Dense`] head.
#[derive(Clone, Debug, PartialEq)]
pub struct Classifier {
    gru: GruModel,
    head: Dense,
}

impl Classifier {
    /// Errors when the head's input width is not the GRU's `D·H`.
    pub fn new(gru: GruModel, head: Dense) -> Result<Self> {
        let width = gru.num_directions() * gru.hidden_size();
        if head.in_features() != width {
            return Err(GruError::invalid(
                "dense head input size",
                format!("D·H = {width} (the GRU's final state)"),
                head.in_features(),
            ));
        }
        Ok(Classifier { gru, head })
    }

    /// The GRU.
    pub fn gru(&self) -> &GruModel {
        &self.gru
    }
    /// The head.
    pub fn head(&self) -> &Dense {
        &self.head
    }

    /// Predictions `[B, out]` on the CPU reference path.
    pub fn predict_cpu(&self, input: &GruInput<'_>) -> Result<Vec<f32>> {
        let out = cpu::forward_model(&self.gru, input)?;
        self.head.apply(&final_features(&out)?)
    }

    /// Uploads the GRU to a GPU; the result predicts on the device. Blocks (native
    /// targets); [`Classifier::to_gpu_async`] awaits.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_gpu(&self, ctx: &GpuContext) -> Result<GpuClassifier> {
        pollster::block_on(self.to_gpu_async(ctx))
    }

    /// The async form of [`Classifier::to_gpu`].
    pub async fn to_gpu_async(&self, ctx: &GpuContext) -> Result<GpuClassifier> {
        let options = crate::gpu::ModelOptions::default();
        Ok(GpuClassifier {
            gru: GpuGru::from_model_async(ctx, &self.gru, &options).await?,
            head: self.head.clone(),
        })
    }
}

/// A [`Classifier`] whose GRU lives on the GPU.
#[derive(Debug)]
pub struct GpuClassifier {
    gru: GpuGru,
    head: Dense,
}

impl GpuClassifier {
    /// Chooses the GRU's kernel path (see [`GpuGru::set_kernel_path`]).
    pub fn set_kernel_path(&mut self, path: Option<crate::gpu::KernelPath>) -> Result<()> {
        self.gru.set_kernel_path(path)
    }

    /// Predictions `[B, out]`: the GRU on the GPU, the head on the host. Blocks (native
    /// targets); [`GpuClassifier::predict_async`] awaits.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn predict(&mut self, input: &GruInput<'_>) -> Result<Vec<f32>> {
        let out = self.gru.forward(input)?;
        self.head.apply(&final_features(&out)?)
    }

    /// The async form of [`GpuClassifier::predict`].
    pub async fn predict_async(&mut self, input: &GruInput<'_>) -> Result<Vec<f32>> {
        let out = self.gru.forward_async(input).await?;
        self.head.apply(&final_features(&out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_sigmoid_and_softmax() {
        let d = Dense::new(
            2,
            2,
            vec![1.0, 0.0, 0.0, 2.0],
            Some(vec![0.5, -1.0]),
            HeadActivation::Identity,
        )
        .unwrap();
        assert_eq!(d.apply(&[1.0, 3.0]).unwrap(), vec![1.5, 5.0]);
        let s = Dense::new(
            2,
            2,
            vec![1.0, 0.0, 0.0, 2.0],
            None,
            HeadActivation::Softmax,
        )
        .unwrap();
        let p = s.apply(&[1000.0, 1000.0]).unwrap();
        assert!(
            (p[0] - 0.0).abs() < 1e-6 && (p[1] - 1.0).abs() < 1e-6,
            "{p:?}"
        );
        let k =
            Dense::from_keras(2, 1, &[1.0, 2.0], Some(&[0.0]), HeadActivation::Sigmoid).unwrap();
        let v = k.apply(&[0.0, 0.0]).unwrap();
        assert_eq!(v, vec![0.5]);
        assert!(d.apply(&[1.0, 2.0, 3.0]).is_err());
    }
}
