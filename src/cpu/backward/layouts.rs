//! Gradients in the layouts of the frameworks the importers read: PyTorch's `nn.GRU`
//! parameters (gate order r, z, n) and Keras's `GRU` weights (transposed, gate order z, r, h),
//! the inverse of [`GruWeights::from_pytorch`] and [`GruWeights::from_keras`], so that a
//! gradient lands on the parameter it belongs to in the model it came from.
//!
//! [`GruWeights::from_pytorch`]: crate::GruWeights::from_pytorch
//! [`GruWeights::from_keras`]: crate::GruWeights::from_keras

use super::{GruGradients, LayerGradients};
use crate::weights::{transpose, zrh_to_rzn};

/// One `nn.GRU` layer's gradients, named as its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct PyTorchLayerGradients {
    /// `∂L/∂weight_ih`, `[3H, K]`, gate order r, z, n.
    pub weight_ih: Vec<f64>,
    /// `∂L/∂weight_hh`, `[3H, H]`, gate order r, z, n.
    pub weight_hh: Vec<f64>,
    /// `∂L/∂bias_ih`, `[3H]`, gate order r, z, n.
    pub bias_ih: Vec<f64>,
    /// `∂L/∂bias_hh`, `[3H]`, gate order r, z, n.
    pub bias_hh: Vec<f64>,
}

/// One Keras `GRU` layer's gradients, shaped as its weights.
#[derive(Clone, Debug, PartialEq)]
pub struct KerasLayerGradients {
    /// `∂L/∂kernel`, `(K, 3H)`, gate order z, r, h.
    pub kernel: Vec<f64>,
    /// `∂L/∂recurrent_kernel`, `(H, 3H)`, gate order z, r, h.
    pub recurrent_kernel: Vec<f64>,
    /// `∂L/∂bias`: `(2, 3H)` with `reset_after=True` (input bias, then recurrent bias),
    /// `(3H,)` with `reset_after=False` (Keras has no recurrent bias there, so the gradient of
    /// the model's recurrent bias, which Keras fixes at zero, is not a Keras weight's).
    pub bias: Vec<f64>,
}

impl LayerGradients {
    /// `H`, from `∂L/∂B [6H]`.
    fn hidden_size(&self) -> usize {
        self.db.len() / 6
    }

    /// The gradients of the `nn.GRU` parameters this layer was imported from
    /// ([`GruWeights::from_pytorch`](crate::GruWeights::from_pytorch)).
    pub fn to_pytorch(&self) -> PyTorchLayerGradients {
        let h3 = 3 * self.hidden_size();
        PyTorchLayerGradients {
            weight_ih: zrh_to_rzn(&self.dw),
            weight_hh: zrh_to_rzn(&self.dr),
            bias_ih: zrh_to_rzn(&self.db[..h3]),
            bias_hh: zrh_to_rzn(&self.db[h3..]),
        }
    }

    /// The gradients of the Keras `GRU` weights this layer was imported from
    /// ([`GruWeights::from_keras`](crate::GruWeights::from_keras)).
    pub fn to_keras(&self, reset_after: bool) -> KerasLayerGradients {
        let h = self.hidden_size();
        let k = self.dw.len() / (3 * h).max(1);
        let bias = if reset_after {
            self.db.clone()
        } else {
            self.db[..3 * h].to_vec()
        };
        KerasLayerGradients {
            kernel: transpose(&self.dw, 3 * h, k),
            recurrent_kernel: transpose(&self.dr, 3 * h, h),
            bias,
        }
    }
}

impl GruGradients {
    /// Every weight gradient under its `nn.GRU` `state_dict` name (`weight_ih_l0`,
    /// `bias_hh_l1_reverse`, …) in PyTorch's layout, with the shape of the parameter.
    pub fn to_pytorch_named(&self) -> Vec<(String, Vec<usize>, Vec<f64>)> {
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            for (d, g) in layer.iter().enumerate() {
                let suffix = if d == 1 { "_reverse" } else { "" };
                let h3 = 3 * g.hidden_size();
                let p = g.to_pytorch();
                let k = p.weight_ih.len() / h3.max(1);
                let h = h3 / 3;
                out.push((format!("weight_ih_l{l}{suffix}"), vec![h3, k], p.weight_ih));
                out.push((format!("weight_hh_l{l}{suffix}"), vec![h3, h], p.weight_hh));
                out.push((format!("bias_ih_l{l}{suffix}"), vec![h3], p.bias_ih));
                out.push((format!("bias_hh_l{l}{suffix}"), vec![h3], p.bias_hh));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeded::SplitMix64;
    use crate::GruWeights;

    /// The weights of `w` as if they were gradients (same layout).
    fn as_gradients(w: &GruWeights) -> LayerGradients {
        let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect();
        LayerGradients {
            dw: f(w.w()),
            dr: f(w.r()),
            db: f(w.b()),
        }
    }

    fn f64s(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&x| x as f64).collect()
    }

    /// PyTorch tensors imported by `from_pytorch` come back unchanged from `to_pytorch`:
    /// each gradient lands on the parameter (and gate) it belongs to.
    #[test]
    fn pytorch_layout_inverts_the_import() {
        let mut rng = SplitMix64::new(7);
        let (i, h) = (5, 3);
        let (wi, wh) = (rng.vec(3 * h * i, 1.0), rng.vec(3 * h * h, 1.0));
        let (bi, bh) = (rng.vec(3 * h, 1.0), rng.vec(3 * h, 1.0));
        let w = GruWeights::from_pytorch(i, h, &wi, &wh, Some(&bi), Some(&bh)).expect("import");
        let p = as_gradients(&w).to_pytorch();
        assert_eq!(p.weight_ih, f64s(&wi));
        assert_eq!(p.weight_hh, f64s(&wh));
        assert_eq!(p.bias_ih, f64s(&bi));
        assert_eq!(p.bias_hh, f64s(&bh));
        let grads = GruGradients {
            layers: vec![vec![as_gradients(&w), as_gradients(&w)]],
            dx: Vec::new(),
            dh0: Vec::new(),
        };
        let named = grads.to_pytorch_named();
        let names: Vec<&str> = named.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "weight_ih_l0",
                "weight_hh_l0",
                "bias_ih_l0",
                "bias_hh_l0",
                "weight_ih_l0_reverse",
                "weight_hh_l0_reverse",
                "bias_ih_l0_reverse",
                "bias_hh_l0_reverse"
            ]
        );
        assert_eq!(named[0].1, vec![3 * h, i]);
        assert_eq!(named[5].1, vec![3 * h, h]);
        assert_eq!(named[4].2, f64s(&wi));
    }

    /// Keras weights imported by `from_keras` come back unchanged from `to_keras`, with both
    /// bias shapes.
    #[test]
    fn keras_layout_inverts_the_import() {
        let mut rng = SplitMix64::new(8);
        let (i, h) = (4, 3);
        let kernel = rng.vec(i * 3 * h, 1.0);
        let recurrent = rng.vec(h * 3 * h, 1.0);
        for reset_after in [true, false] {
            let bias = rng.vec(if reset_after { 6 * h } else { 3 * h }, 1.0);
            let w = GruWeights::from_keras(i, h, &kernel, &recurrent, Some(&bias), reset_after)
                .expect("import");
            let k = as_gradients(&w).to_keras(reset_after);
            assert_eq!(k.kernel, f64s(&kernel), "reset_after={reset_after}");
            assert_eq!(k.recurrent_kernel, f64s(&recurrent));
            assert_eq!(k.bias, f64s(&bias));
        }
    }
}
