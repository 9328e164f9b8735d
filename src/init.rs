//! Initial weights for training (issue 15), seeded and reproducible on every machine (the
//! generator is [`SplitMix64`]; normal draws by Box–Muller; everything in `f64`, rounded to
//! `f32` at the end), with the distributions of the two frameworks' defaults:
//!
//! - [`Init::Keras`] — `keras.layers.GRU`: `kernel (I, 3H)` `glorot_uniform` over the whole
//!   matrix (`U(±√(6 / (I + 3H)))`), `recurrent_kernel (H, 3H)` `orthogonal` over the whole
//!   matrix (a `3H × H` standard normal matrix's QR, Q's columns signed by R's diagonal, as
//!   Keras's `Orthogonal`: the `H` rows of the recurrent kernel are orthonormal), zero bias;
//!   `keras.layers.Dense`: `glorot_uniform` kernel (`U(±√(6 / (in + out)))`), zero bias.
//! - [`Init::PyTorch`] — `nn.GRU`: every weight and bias `U(±1/√H)`; `nn.Linear`: weight and
//!   bias `U(±1/√in)`.
//!
//! Weights are returned in the crate's layout (ONNX's: `W [3H, I]`, `R [3H, H]`,
//! `B [6H] = [Wb, Rb]`, gate order z, r, h); a Keras kernel is `Wᵀ`, so `W` rows are the
//! kernel's columns. Each layer and direction draws from its own stream (`seed`, layer,
//! direction), so a model's first layer does not change when layers are added.

use crate::error::{GruError, Result};
use crate::model::{Direction, GruModel};
use crate::seeded::SplitMix64;
use crate::weights::{Convention, GruWeights};

/// Which framework's default initialisation to draw from (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Keras's GRU and Dense defaults: glorot_uniform, orthogonal, zeros.
    Keras,
    /// PyTorch's nn.GRU and nn.Linear defaults: `U(±1/√fan)` everywhere.
    PyTorch,
}

/// A standard normal draw (Box–Muller on two uniforms in (0, 1]).
fn normal(rng: &mut SplitMix64) -> f64 {
    let unit = |rng: &mut SplitMix64| ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let (u1, u2) = (unit(rng), unit(rng));
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` values `U(−limit, limit)` in `f64`.
fn uniform(rng: &mut SplitMix64, n: usize, limit: f64) -> Vec<f64> {
    (0..n)
        .map(|_| ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * limit)
        .collect()
}

/// An `m × n` (`m ≥ n`) matrix with orthonormal columns, row-major: the Q of a standard
/// normal matrix's Householder QR, each column multiplied by the sign of R's diagonal entry
/// (so Q is unique and distributed uniformly, as Keras's `Orthogonal` and `torch.nn.init
/// .orthogonal_`).
pub fn orthogonal(rng: &mut SplitMix64, m: usize, n: usize) -> Vec<f64> {
    debug_assert!(m >= n);
    let mut a: Vec<f64> = (0..m * n).map(|_| normal(rng)).collect();
    // Reflections H_k = I − β_k v_k v_kᵀ (v_k over rows k..m) and R's diagonal α_k.
    let mut reflections: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n);
    let mut diagonal = vec![0.0; n];
    for k in 0..n {
        let x: Vec<f64> = (k..m).map(|i| a[i * n + k]).collect();
        let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        let alpha = if x[0] > 0.0 { -norm } else { norm };
        let mut v = x;
        v[0] -= alpha;
        let vtv: f64 = v.iter().map(|t| t * t).sum();
        let beta = if vtv == 0.0 { 0.0 } else { 2.0 / vtv };
        for j in k..n {
            let dot: f64 = v
                .iter()
                .enumerate()
                .map(|(r, vr)| vr * a[(k + r) * n + j])
                .sum();
            for (r, vr) in v.iter().enumerate() {
                a[(k + r) * n + j] -= beta * dot * vr;
            }
        }
        diagonal[k] = a[k * n + k];
        reflections.push((v, beta));
    }
    // Q = H_0 H_1 … H_{n−1} applied to the first n columns of the identity.
    let mut q = vec![0.0; m * n];
    for j in 0..n {
        q[j * n + j] = 1.0;
    }
    for (k, (v, beta)) in reflections.iter().enumerate().rev() {
        for j in 0..n {
            let dot: f64 = v
                .iter()
                .enumerate()
                .map(|(r, vr)| vr * q[(k + r) * n + j])
                .sum();
            for (r, vr) in v.iter().enumerate() {
                q[(k + r) * n + j] -= beta * dot * vr;
            }
        }
    }
    // Q·diag(sign(R's diagonal)): then QR = A with R's diagonal positive.
    for i in 0..m {
        for (j, d) in diagonal.iter().enumerate() {
            if *d < 0.0 {
                q[i * n + j] = -q[i * n + j];
            }
        }
    }
    q
}

fn f32s(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}

/// The stream of layer `layer`, direction `d` of a model drawn from `seed`.
fn stream(seed: u64, layer: u64, d: u64) -> SplitMix64 {
    let mut mix = SplitMix64::new(seed ^ 0x1D17_5EED);
    let base = mix.next_u64();
    SplitMix64::new(base ^ (layer << 32) ^ (d << 16) ^ 0x9E37)
}

/// One layer and direction's weights (`W [3H, I]`, `R [3H, H]`, `B [6H]`), drawn with `init`
/// from `rng`.
pub fn gru_weights(
    init: Init,
    convention: Convention,
    input_size: usize,
    hidden_size: usize,
    rng: &mut SplitMix64,
) -> Result<GruWeights> {
    let (i, h) = (input_size, hidden_size);
    if i == 0 || h == 0 {
        return Err(GruError::invalid(
            "GRU sizes",
            "input and hidden size ≥ 1",
            format!("I = {i}, H = {h}"),
        ));
    }
    let h3 = 3 * h;
    let (w, r, b) = match init {
        Init::Keras => {
            // kernel (I, 3H) glorot_uniform; W = kernelᵀ: the same iid values, drawn in the
            // kernel's order and transposed.
            let limit = (6.0 / (i + h3) as f64).sqrt();
            let kernel = uniform(rng, i * h3, limit);
            let w: Vec<f64> = (0..h3 * i).map(|x| kernel[(x % i) * h3 + x / i]).collect();
            // recurrent_kernel (H, 3H) = Qᵀ for Q (3H × H) orthonormal columns; R = Q.
            let r = orthogonal(rng, h3, h);
            (w, r, vec![0.0; 6 * h])
        }
        Init::PyTorch => {
            let limit = 1.0 / (h as f64).sqrt();
            (
                uniform(rng, h3 * i, limit),
                uniform(rng, h3 * h, limit),
                uniform(rng, 6 * h, limit),
            )
        }
    };
    GruWeights::new(convention, i, h, f32s(w), f32s(r), Some(f32s(b)))
}

/// A GRU stack of `layers` layers in `direction` (layer 0 reads `input_size` features, the
/// others `D·H`), every layer and direction drawn with `init` from its own stream of `seed`.
pub fn gru_model(
    init: Init,
    convention: Convention,
    direction: Direction,
    layers: usize,
    input_size: usize,
    hidden_size: usize,
    seed: u64,
) -> Result<GruModel> {
    if layers == 0 {
        return Err(GruError::invalid("layers", "≥ 1", 0));
    }
    let nd = direction.num_directions();
    let stack = (0..layers)
        .map(|l| {
            let k = if l == 0 { input_size } else { nd * hidden_size };
            (0..nd)
                .map(|d| {
                    gru_weights(
                        init,
                        convention,
                        k,
                        hidden_size,
                        &mut stream(seed, l as u64, d as u64),
                    )
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    GruModel::new(direction, stack, None)
}

/// A dense layer's `weight [out, in]` (PyTorch's `nn.Linear` order) and `bias [out]`,
/// drawn with `init` from `seed`: Keras's glorot_uniform kernel and zero bias, or PyTorch's
/// `U(±1/√in)` for both.
pub fn dense(
    init: Init,
    in_features: usize,
    out_features: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let mut rng = stream(seed, 0xFFFF_FFFF, 7);
    let (n_in, n_out) = (in_features, out_features);
    match init {
        Init::Keras => {
            let limit = (6.0 / (n_in + n_out).max(1) as f64).sqrt();
            // kernel (in, out), drawn in its order; weight = kernelᵀ.
            let kernel = uniform(&mut rng, n_in * n_out, limit);
            let weight = (0..n_out * n_in)
                .map(|x| kernel[(x % n_in.max(1)) * n_out + x / n_in.max(1)])
                .collect();
            (f32s(weight), vec![0.0; n_out])
        }
        Init::PyTorch => {
            let limit = 1.0 / (n_in.max(1) as f64).sqrt();
            let weight = uniform(&mut rng, n_out * n_in, limit);
            let bias = uniform(&mut rng, n_out, limit);
            (f32s(weight), f32s(bias))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `max |QᵀQ − I|` of an `m × n` row-major matrix.
    fn off_identity(q: &[f64], m: usize, n: usize) -> f64 {
        let mut worst = 0.0f64;
        for a in 0..n {
            for b in 0..n {
                let dot: f64 = (0..m).map(|i| q[i * n + a] * q[i * n + b]).sum();
                worst = worst.max((dot - if a == b { 1.0 } else { 0.0 }).abs());
            }
        }
        worst
    }

    #[test]
    fn orthogonal_columns_are_orthonormal() {
        for (m, n) in [(3, 1), (6, 2), (15, 5), (192, 64), (7, 7)] {
            let q = orthogonal(&mut SplitMix64::new(m as u64), m, n);
            let e = off_identity(&q, m, n);
            assert!(e < 1e-12, "{m}×{n}: max |QᵀQ − I| = {e}");
        }
    }

    #[test]
    fn normal_draws_have_unit_variance() {
        let mut rng = SplitMix64::new(5);
        let v: Vec<f64> = (0..200_000).map(|_| normal(&mut rng)).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "mean {mean}, var {var}"
        );
    }

    #[test]
    fn keras_defaults() {
        let (i, h) = (7, 20);
        let w = gru_weights(
            Init::Keras,
            Convention::ResetAfter,
            i,
            h,
            &mut SplitMix64::new(1),
        )
        .unwrap();
        let limit = (6.0 / (i + 3 * h) as f64).sqrt() as f32;
        assert!(
            w.w().iter().all(|x| x.abs() <= limit),
            "glorot bound {limit}"
        );
        let top = w.w().iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(
            top > 0.9 * limit,
            "the draws reach the bound: {top} of {limit}"
        );
        let r: Vec<f64> = w.r().iter().map(|&x| x as f64).collect();
        let e = off_identity(&r, 3 * h, h);
        assert!(e < 1e-6, "R's columns (the recurrent kernel's rows): {e}");
        assert!(w.b().iter().all(|&x| x == 0.0), "zero bias");
    }

    #[test]
    fn pytorch_defaults() {
        let (i, h) = (5, 16);
        let w = gru_weights(
            Init::PyTorch,
            Convention::ResetAfter,
            i,
            h,
            &mut SplitMix64::new(2),
        )
        .unwrap();
        let limit = 1.0 / (h as f32).sqrt();
        for (name, v) in [("W", w.w()), ("R", w.r()), ("B", w.b())] {
            assert!(v.iter().all(|x| x.abs() <= limit), "{name} within ±1/√H");
            let var = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / v.len() as f64;
            let want = (limit as f64).powi(2) / 3.0;
            assert!(
                (var / want - 1.0).abs() < 0.35,
                "{name}: variance {var}, U's {want}"
            );
        }
        let (weight, bias) = dense(Init::PyTorch, 40, 3, 9);
        assert_eq!((weight.len(), bias.len()), (120, 3));
        let l = 1.0 / 40f32.sqrt();
        assert!(weight.iter().chain(&bias).all(|x| x.abs() <= l));
        let (kernel, zero) = dense(Init::Keras, 40, 3, 9);
        let l = (6.0f32 / 43.0).sqrt();
        assert!(kernel.iter().all(|x| x.abs() <= l) && zero.iter().all(|&b| b == 0.0));
    }

    #[test]
    fn seeded_and_stable_per_layer() {
        let model = |layers, seed| {
            gru_model(
                Init::Keras,
                Convention::ResetAfter,
                Direction::Bidirectional,
                layers,
                3,
                8,
                seed,
            )
            .unwrap()
        };
        let a = model(1, 42);
        let b = model(2, 42);
        let c = model(1, 43);
        assert_eq!(
            a.layers()[0],
            b.layers()[0],
            "layer 0 is the same with more layers"
        );
        assert_eq!(a.layers()[0], model(1, 42).layers()[0], "reproducible");
        assert_ne!(
            a.layers()[0][0].w(),
            c.layers()[0][0].w(),
            "another seed differs"
        );
        assert_ne!(
            a.layers()[0][0].r(),
            a.layers()[0][1].r(),
            "directions draw their own"
        );
        assert!(gru_model(
            Init::PyTorch,
            Convention::ResetBefore,
            Direction::Forward,
            0,
            3,
            8,
            1
        )
        .is_err());
    }
}
