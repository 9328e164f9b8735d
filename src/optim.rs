//! Optimizers and gradient clipping for training (issue 15), as the frameworks define them,
//! with an `f64` reference implementation on the host ([`OptimizerState::step`]): the oracle
//! the GPU's optimizer kernels are checked against, itself checked against `torch.optim` and
//! `keras.optimizers` in float64 (tests/io/optim.rs, golden files of
//! `scripts/golden_optim.py`).
//!
//! Every rule updates each parameter tensor `p` with its gradient `g` elementwise; `t` is the
//! step count (1 at the first step):
//!
//! - [`Optimizer::Sgd`], PyTorch's `torch.optim.SGD`: `g ← g + wd·p`; with momentum
//!   `b ← g` at the first step, else `b ← μ·b + (1 − dampening)·g`, then `g ← g + μ·b`
//!   (Nesterov) or `g ← b`; `p ← p − lr·g`.
//! - [`Optimizer::RmsProp`], Keras 3's `keras.optimizers.RMSprop` (defaults lr 1e-3, ρ 0.9,
//!   ε 1e-7, momentum 0): `v ← ρ·v + (1 − ρ)·g²`; centered: `a ← ρ·a + (1 − ρ)·g` and
//!   `d = v − a² + ε`, else `d = v + ε` (ε **inside** the square root, unlike PyTorch's
//!   RMSprop); `Δ = lr·g / √d`; with momentum `m ← μ·m + Δ`, `p ← p − m`, else `p ← p − Δ`.
//! - [`Optimizer::Adam`], PyTorch's `torch.optim.Adam` (lr 1e-3, β (0.9, 0.999), ε 1e-8,
//!   weight decay 0, added to the gradient as L2): `g ← g + wd·p`, `m ← m + (1 − β₁)(g − m)`,
//!   `v ← β₂·v + (1 − β₂)·g²`, `p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)`.
//! - [`Optimizer::AdamW`], PyTorch's `torch.optim.AdamW` (weight decay 1e-2, decoupled):
//!   `p ← p·(1 − lr·wd)`, then Adam's update without the L2 term.
//!
//! Clipping ([`Clip`]) runs before the update, over all of a step's gradients:
//! [`Clip::Norm`] as PyTorch's `torch.nn.utils.clip_grad_norm_` (total norm `n = √Σg²` over
//! every tensor; every gradient scaled by `min(1, max_norm / (n + 1e-6))`), [`Clip::Value`] as
//! `clip_grad_value_` (each element clamped to `[−v, v]`).

use crate::error::{GruError, Result};

/// An update rule and its hyperparameters (module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// PyTorch's SGD.
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum factor μ (0: plain SGD).
        momentum: f64,
        /// Dampening of the momentum's new term.
        dampening: f64,
        /// Nesterov momentum (needs μ > 0 and no dampening, as PyTorch).
        nesterov: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
    /// Keras 3's RMSprop.
    RmsProp {
        /// Learning rate.
        lr: f64,
        /// Discounting factor ρ of the mean square.
        rho: f64,
        /// ε, added inside the square root.
        epsilon: f64,
        /// Momentum μ (0: none).
        momentum: f64,
        /// Normalise by the variance estimate (the mean square minus the squared mean).
        centered: bool,
    },
    /// PyTorch's Adam.
    Adam {
        /// Learning rate.
        lr: f64,
        /// β₁.
        beta1: f64,
        /// β₂.
        beta2: f64,
        /// ε, added after the square root.
        eps: f64,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
    /// PyTorch's AdamW.
    AdamW {
        /// Learning rate.
        lr: f64,
        /// β₁.
        beta1: f64,
        /// β₂.
        beta2: f64,
        /// ε, added after the square root.
        eps: f64,
        /// Decoupled weight decay.
        weight_decay: f64,
    },
}

impl Optimizer {
    /// PyTorch's SGD defaults at learning rate `lr` (no momentum, dampening or decay).
    pub fn sgd(lr: f64) -> Self {
        Optimizer::Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }

    /// Keras 3's RMSprop defaults: lr 1e-3, ρ 0.9, ε 1e-7, no momentum, not centered (what
    /// `optimizer='rmsprop'` compiles to).
    pub fn rmsprop_keras() -> Self {
        Optimizer::RmsProp {
            lr: 1e-3,
            rho: 0.9,
            epsilon: 1e-7,
            momentum: 0.0,
            centered: false,
        }
    }

    /// PyTorch's Adam defaults: lr 1e-3, β (0.9, 0.999), ε 1e-8, no weight decay.
    pub fn adam() -> Self {
        Optimizer::Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// PyTorch's AdamW defaults: Adam's, with decoupled weight decay 1e-2.
    pub fn adamw() -> Self {
        Optimizer::AdamW {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            Optimizer::Sgd { lr, .. }
            | Optimizer::RmsProp { lr, .. }
            | Optimizer::Adam { lr, .. }
            | Optimizer::AdamW { lr, .. } => lr,
        }
    }

    /// State tensors the rule keeps per parameter tensor (each of the parameter's size).
    pub fn state_tensors(&self) -> usize {
        match *self {
            Optimizer::Sgd { momentum, .. } => (momentum != 0.0) as usize,
            Optimizer::RmsProp {
                momentum, centered, ..
            } => 1 + (momentum > 0.0) as usize + centered as usize,
            Optimizer::Adam { .. } | Optimizer::AdamW { .. } => 2,
        }
    }

    /// Checks the hyperparameters as the frameworks do: a typed error naming the first that
    /// is out of its range.
    pub fn validate(&self) -> Result<()> {
        let check = |name: &str, v: f64, ok: bool, expected: &str| {
            if ok && v.is_finite() {
                Ok(())
            } else {
                Err(GruError::invalid(name, expected, v))
            }
        };
        check(
            "learning rate",
            self.lr(),
            self.lr() >= 0.0,
            "a finite value ≥ 0",
        )?;
        match *self {
            Optimizer::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
                ..
            } => {
                check("momentum", momentum, momentum >= 0.0, "a finite value ≥ 0")?;
                check("dampening", dampening, true, "a finite value")?;
                check("weight decay", weight_decay, weight_decay >= 0.0, "≥ 0")?;
                if nesterov && (momentum <= 0.0 || dampening != 0.0) {
                    return Err(GruError::invalid(
                        "nesterov",
                        "momentum > 0 and dampening 0 (as torch.optim.SGD)",
                        format!("momentum {momentum}, dampening {dampening}"),
                    ));
                }
            }
            Optimizer::RmsProp {
                rho,
                epsilon,
                momentum,
                ..
            } => {
                check("rho", rho, (0.0..=1.0).contains(&rho), "in [0, 1]")?;
                check("epsilon", epsilon, epsilon > 0.0, "> 0")?;
                check("momentum", momentum, momentum >= 0.0, "≥ 0")?;
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            }
            | Optimizer::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => {
                check("beta1", beta1, (0.0..1.0).contains(&beta1), "in [0, 1)")?;
                check("beta2", beta2, (0.0..1.0).contains(&beta2), "in [0, 1)")?;
                check("eps", eps, eps >= 0.0, "≥ 0")?;
                check("weight decay", weight_decay, weight_decay >= 0.0, "≥ 0")?;
            }
        }
        Ok(())
    }
}

/// Gradient clipping before the update (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Clip {
    /// No clipping.
    #[default]
    None,
    /// By the global norm over every gradient tensor, PyTorch's `clip_grad_norm_(max_norm)`.
    Norm(f64),
    /// Each element to `[−v, v]`, PyTorch's `clip_grad_value_(v)`.
    Value(f64),
}

impl Clip {
    /// A typed error unless the threshold is finite and > 0.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Clip::None => Ok(()),
            Clip::Norm(v) | Clip::Value(v) if v.is_finite() && v > 0.0 => Ok(()),
            Clip::Norm(v) => Err(GruError::invalid("clip norm", "a finite value > 0", v)),
            Clip::Value(v) => Err(GruError::invalid("clip value", "a finite value > 0", v)),
        }
    }
}

/// The `f64` reference of an optimizer over a fixed list of parameter tensors: the rule, the
/// clipping, the step count and each tensor's state.
#[derive(Clone, Debug)]
pub struct OptimizerState {
    optimizer: Optimizer,
    clip: Clip,
    step: u64,
    sizes: Vec<usize>,
    /// Per parameter tensor, [`Optimizer::state_tensors`] vectors of its size (zero at first).
    state: Vec<Vec<Vec<f64>>>,
}

/// Errors unless `given` holds one `[kinds · n]` state per tensor of `sizes`.
pub(crate) fn check_state_sizes(
    sizes: &[usize],
    kinds: usize,
    given: impl ExactSizeIterator<Item = usize>,
) -> Result<()> {
    let given: Vec<usize> = given.collect();
    let want: Vec<usize> = sizes.iter().map(|&n| kinds * n).collect();
    if given != want {
        return Err(GruError::invalid(
            "optimizer state",
            format!("tensors of {want:?} values"),
            format!("{given:?}"),
        ));
    }
    Ok(())
}

impl OptimizerState {
    /// A fresh state for parameter tensors of `sizes` elements (validated hyperparameters).
    pub fn new(optimizer: Optimizer, clip: Clip, sizes: &[usize]) -> Result<Self> {
        optimizer.validate()?;
        clip.validate()?;
        let n = optimizer.state_tensors();
        Ok(OptimizerState {
            optimizer,
            clip,
            step: 0,
            sizes: sizes.to_vec(),
            state: sizes.iter().map(|&s| vec![vec![0.0; s]; n]).collect(),
        })
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The state per parameter tensor, its [`Optimizer::state_tensors`] vectors one after
    /// the other (`[kinds · n]`): what a checkpoint keeps.
    pub fn state(&self) -> Vec<Vec<f64>> {
        self.state.iter().map(|kinds| kinds.concat()).collect()
    }

    /// Restores a [`OptimizerState::state`] and the step count. Errors (nothing changed):
    /// tensors or sizes that do not match.
    pub fn restore(&mut self, state: &[Vec<f64>], steps: u64) -> Result<()> {
        let kinds = self.optimizer.state_tensors();
        check_state_sizes(&self.sizes, kinds, state.iter().map(Vec::len))?;
        for (mine, given) in self.state.iter_mut().zip(state) {
            let n = given.len() / kinds.max(1);
            for (k, v) in mine.iter_mut().enumerate() {
                v.copy_from_slice(&given[k * n..(k + 1) * n]);
            }
        }
        self.step = steps;
        Ok(())
    }

    /// One optimizer step: clips `grads` (as [`Clip`] says), then updates `params` in place.
    /// Returns the gradients' total norm before clipping (`√Σg²`, what `clip_grad_norm_`
    /// returns). `params` and `grads` must have the tensors and sizes of [`OptimizerState::new`]
    /// (a typed error otherwise, nothing changed); `grads` is not modified. A non-finite
    /// gradient propagates into the parameters, as in the frameworks.
    pub fn step(&mut self, params: &mut [Vec<f64>], grads: &[Vec<f64>]) -> Result<f64> {
        if params.len() != self.sizes.len() || grads.len() != self.sizes.len() {
            return Err(GruError::invalid(
                "parameter tensors",
                format!("{} tensors", self.sizes.len()),
                format!("{} parameters and {} gradients", params.len(), grads.len()),
            ));
        }
        for (i, ((p, g), &n)) in params.iter().zip(grads).zip(&self.sizes).enumerate() {
            if p.len() != n || g.len() != n {
                return Err(GruError::invalid(
                    format!("parameter tensor {i}"),
                    format!("{n} values"),
                    format!("{} parameters and {} gradients", p.len(), g.len()),
                ));
            }
        }
        let norm = grads
            .iter()
            .flat_map(|g| g.iter())
            .map(|x| x * x)
            .sum::<f64>()
            .sqrt();
        let scale = match self.clip {
            Clip::Norm(max) => (max / (norm + 1e-6)).min(1.0),
            _ => 1.0,
        };
        self.step += 1;
        let t = self.step as f64;
        let opt = self.optimizer;
        for ((p, g), state) in params.iter_mut().zip(grads).zip(&mut self.state) {
            for (j, x) in p.iter_mut().enumerate() {
                let mut gj = g[j] * scale;
                if let Clip::Value(v) = self.clip {
                    gj = gj.clamp(-v, v);
                }
                let mut s = [0.0f64; 3];
                for (k, st) in state.iter().enumerate() {
                    s[k] = st[j];
                }
                *x = update(&opt, *x, gj, &mut s, t);
                for (k, st) in state.iter_mut().enumerate() {
                    st[j] = s[k];
                }
            }
        }
        Ok(norm)
    }
}

/// One element's update: parameter `p`, (clipped) gradient `g`, its state `s` (in the order
/// of [`Optimizer::state_tensors`]), step `t ≥ 1`; returns the new parameter.
fn update(opt: &Optimizer, p: f64, g: f64, s: &mut [f64; 3], t: f64) -> f64 {
    match *opt {
        Optimizer::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
        } => {
            let mut d = g + weight_decay * p;
            if momentum != 0.0 {
                s[0] = if t == 1.0 {
                    d
                } else {
                    momentum * s[0] + (1.0 - dampening) * d
                };
                d = if nesterov { d + momentum * s[0] } else { s[0] };
            }
            p - lr * d
        }
        Optimizer::RmsProp {
            lr,
            rho,
            epsilon,
            momentum,
            centered,
        } => {
            s[0] = rho * s[0] + (1.0 - rho) * g * g;
            let denominator = if centered {
                let a = 2 - (momentum <= 0.0) as usize;
                s[a] = rho * s[a] + (1.0 - rho) * g;
                s[0] - s[a] * s[a] + epsilon
            } else {
                s[0] + epsilon
            };
            let increment = lr * g / denominator.sqrt();
            if momentum > 0.0 {
                s[1] = momentum * s[1] + increment;
                p - s[1]
            } else {
                p - increment
            }
        }
        Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } => adam(p, g + weight_decay * p, s, t, lr, beta1, beta2, eps),
        Optimizer::AdamW {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } => adam(
            p * (1.0 - lr * weight_decay),
            g,
            s,
            t,
            lr,
            beta1,
            beta2,
            eps,
        ),
    }
}

/// PyTorch's Adam element update (`_single_tensor_adam`, no amsgrad).
#[allow(clippy::too_many_arguments)]
fn adam(p: f64, g: f64, s: &mut [f64; 3], t: f64, lr: f64, b1: f64, b2: f64, eps: f64) -> f64 {
    s[0] += (1.0 - b1) * (g - s[0]);
    s[1] = b2 * s[1] + (1.0 - b2) * g * g;
    let step_size = lr / (1.0 - b1.powf(t));
    let denom = s[1].sqrt() / (1.0 - b2.powf(t)).sqrt() + eps;
    p - step_size * s[0] / denom
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_slots_match_the_rules() {
        assert_eq!(Optimizer::sgd(0.1).state_tensors(), 0);
        assert_eq!(Optimizer::rmsprop_keras().state_tensors(), 1);
        let centered_momentum = Optimizer::RmsProp {
            lr: 1e-3,
            rho: 0.9,
            epsilon: 1e-7,
            momentum: 0.5,
            centered: true,
        };
        assert_eq!(centered_momentum.state_tensors(), 3);
        assert_eq!(Optimizer::adam().state_tensors(), 2);
    }

    /// RMSprop's first step by hand: v = 0.1·g², Δ = lr·g / √(v + ε).
    #[test]
    fn rmsprop_first_step_by_hand() {
        let mut st = OptimizerState::new(Optimizer::rmsprop_keras(), Clip::None, &[2]).unwrap();
        let mut p = vec![vec![1.0, -2.0]];
        st.step(&mut p, &[vec![0.5, -4.0]]).unwrap();
        for (got, (p0, g)) in p[0].iter().zip([(1.0, 0.5), (-2.0, -4.0)]) {
            let want = p0 - 1e-3 * g / (0.1f64 * g * g + 1e-7).sqrt();
            assert!((got - want).abs() < 1e-15, "got {got}, want {want}");
        }
    }

    #[test]
    fn bad_hyperparameters_and_sizes_are_typed_errors() {
        let nesterov = Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: true,
            weight_decay: 0.0,
        };
        assert!(OptimizerState::new(nesterov, Clip::None, &[1]).is_err());
        assert!(OptimizerState::new(Optimizer::sgd(f64::NAN), Clip::None, &[1]).is_err());
        assert!(OptimizerState::new(Optimizer::adam(), Clip::Norm(0.0), &[1]).is_err());
        let mut st = OptimizerState::new(Optimizer::adam(), Clip::None, &[2]).unwrap();
        let mut p = vec![vec![1.0, 2.0]];
        assert!(st.step(&mut p, &[vec![1.0]]).is_err());
        assert_eq!(p, vec![vec![1.0, 2.0]], "nothing changed");
        assert_eq!(st.steps(), 0);
    }
}
