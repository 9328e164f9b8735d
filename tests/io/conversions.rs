//! Conversions from PyTorch and Keras, checked against each framework's own formula written out
//! here in its own layout and gate order, in `f64`.
//!
//! For every seeded shape, the framework's weights are drawn at random, the framework's GRU is
//! computed directly (no ONNX reordering, no transposes: the formula as the framework's source
//! states it), and the weights are then converted with [`GruWeights::from_pytorch`] /
//! [`GruWeights::from_keras`] and run through [`cpu::forward`] and the GPU ([`GpuGru`]). Both
//! must match the direct computation within [`Tolerance::F32`]. A conversion that left a gate
//! block in the wrong place, a matrix untransposed or a bias in the wrong half fails, because
//! the random weights make every such mistake change the result.
//!
//! - **PyTorch** `nn.GRU` (`batch_first=False`, one layer, one direction): gate order r, z, n;
//!   `weight_ih[3H, I]`, `weight_hh[3H, H]`, `bias_ih[3H]`, `bias_hh[3H]` (none with
//!   `bias=False`); input `[T, B, I]`, `h_0[1, B, H]`; output `[T, B, H]`, `h_n[1, B, H]`.
//! - **Keras** `GRU` (Keras 3 / tf.keras 2: `activation="tanh"`,
//!   `recurrent_activation="sigmoid"`; standalone Keras 2.0–2.2 defaulted to `hard_sigmoid`,
//!   which no conversion can honour): gate order z, r, h; `kernel (I, 3H)`,
//!   `recurrent_kernel (H, 3H)`, `bias (2, 3H)` with `reset_after=True`, `(3H,)` with
//!   `reset_after=False`, none with `use_bias=False`; input `(B, T, I)` (batch-major);
//!   output with `return_sequences=True` `(B, T, H)`, state `(B, H)`.

use crate::common;

use common::{gpu, Rng};
use gru_wgpu::gpu::GpuGru;
use gru_wgpu::{cpu, Convention, GruError, GruInput, GruOutput, GruWeights, Tolerance};

/// One seeded problem size.
#[derive(Clone, Copy, Debug)]
struct Shape {
    seed: u64,
    i: usize,
    h: usize,
    t: usize,
    b: usize,
    /// Multiplies the usual `1/√H` weight range and the `[-1, 1)` input range.
    scale: f32,
    initial_h: bool,
}

const SHAPES: &[Shape] = &[
    Shape {
        seed: 101,
        i: 1,
        h: 1,
        t: 1,
        b: 1,
        scale: 1.0,
        initial_h: false,
    },
    Shape {
        seed: 102,
        i: 3,
        h: 4,
        t: 5,
        b: 2,
        scale: 1.0,
        initial_h: false,
    },
    Shape {
        seed: 103,
        i: 5,
        h: 3,
        t: 4,
        b: 3,
        scale: 1.0,
        initial_h: true,
    },
    Shape {
        seed: 104,
        i: 2,
        h: 7,
        t: 6,
        b: 1,
        scale: 3.0,
        initial_h: true,
    },
];

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// Runs `input` on the CPU reference and on the GPU.
fn run_library(weights: &GruWeights, input: &GruInput<'_>) -> Vec<(String, GruOutput)> {
    let mut out = vec![(
        "CPU reference".to_string(),
        cpu::forward(weights, input).expect("cpu forward"),
    )];
    if let Some(ctx) = gpu() {
        let mut model = GpuGru::new(ctx, weights).expect("gpu model");
        model.set_poison(Some(f32::NAN));
        out.push((
            format!("GPU ({})", ctx.describe()),
            model.forward(input).expect("gpu forward"),
        ));
    }
    out
}

/// Checks `Y[T, B, H]` and `Y_h[B, H]` of every path against the direct computation.
fn check(
    context: &str,
    weights: &GruWeights,
    input: &GruInput<'_>,
    expected_y: &[f64],
    expected_h: &[f64],
) {
    let ey: Vec<f32> = expected_y.iter().map(|&v| v as f32).collect();
    let eh: Vec<f32> = expected_h.iter().map(|&v| v as f32).collect();
    let mut failures = Vec::new();
    for (path, got) in run_library(weights, input) {
        for (name, g, e) in [("Y", &got.y, &ey), ("Y_h", &got.y_h, &eh)] {
            let c = Tolerance::F32.compare(g, e);
            if !c.passed() {
                failures.push(format!("{path}: {name}: {c}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{context}:\n  {}",
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// PyTorch

/// An `nn.GRU` layer's parameters, in PyTorch's layout and gate order (r, z, n).
struct Torch {
    input_size: usize,
    hidden_size: usize,
    weight_ih: Vec<f32>,
    weight_hh: Vec<f32>,
    bias_ih: Option<Vec<f32>>,
    bias_hh: Option<Vec<f32>>,
}

impl Torch {
    fn random(rng: &mut Rng, s: &Shape, bias: bool) -> Self {
        let k = s.scale / (s.h as f32).sqrt();
        Torch {
            input_size: s.i,
            hidden_size: s.h,
            weight_ih: rng.vec(3 * s.h * s.i, k),
            weight_hh: rng.vec(3 * s.h * s.h, k),
            bias_ih: bias.then(|| rng.vec(3 * s.h, k)),
            bias_hh: bias.then(|| rng.vec(3 * s.h, k)),
        }
    }

    /// PyTorch's documented `nn.GRU` formula, one layer, one direction:
    ///
    /// ```text
    /// r  = σ(W_ir x + b_ir + W_hr h + b_hr)
    /// z  = σ(W_iz x + b_iz + W_hz h + b_hz)
    /// n  = tanh(W_in x + b_in + r ∗ (W_hn h + b_hn))
    /// h' = (1 − z) ∗ n + z ∗ h
    /// ```
    ///
    /// `x[T, B, I]`, `h0[1, B, H]` (zeros when `None`) → `(output[T, B, H], h_n[1, B, H])`.
    fn forward(
        &self,
        x: &[f32],
        t_len: usize,
        batch: usize,
        h0: Option<&[f32]>,
    ) -> (Vec<f64>, Vec<f64>) {
        let (ni, nh) = (self.input_size, self.hidden_size);
        // Row `row` of a [3H, cols] matrix times v.
        let mv = |m: &[f32], row: usize, v: &[f64]| -> f64 {
            v.iter()
                .enumerate()
                .map(|(k, &vk)| m[row * v.len() + k] as f64 * vk)
                .sum()
        };
        let bias = |b: &Option<Vec<f32>>, row: usize| b.as_ref().map_or(0.0, |b| b[row] as f64);
        // PyTorch's gate blocks: rows 0..H are r, H..2H z, 2H..3H n.
        let (r_, z_, n_) = (0, nh, 2 * nh);

        let mut h: Vec<f64> = match h0 {
            Some(h0) => h0.iter().map(|&v| v as f64).collect(),
            None => vec![0.0; batch * nh],
        };
        let mut output = Vec::with_capacity(t_len * batch * nh);
        for t in 0..t_len {
            let mut next = vec![0.0; batch * nh];
            for b in 0..batch {
                let xv: Vec<f64> = x[(t * batch + b) * ni..][..ni]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let hv = &h[b * nh..][..nh];
                for j in 0..nh {
                    let gi = |gate: usize| {
                        mv(&self.weight_ih, gate + j, &xv) + bias(&self.bias_ih, gate + j)
                    };
                    let gh = |gate: usize| {
                        mv(&self.weight_hh, gate + j, hv) + bias(&self.bias_hh, gate + j)
                    };
                    let r = sigmoid(gi(r_) + gh(r_));
                    let z = sigmoid(gi(z_) + gh(z_));
                    let n = (gi(n_) + r * gh(n_)).tanh();
                    next[b * nh + j] = (1.0 - z) * n + z * hv[j];
                }
            }
            output.extend_from_slice(&next);
            h = next;
        }
        (output, h)
    }

    fn convert(&self) -> GruWeights {
        GruWeights::from_pytorch(
            self.input_size,
            self.hidden_size,
            &self.weight_ih,
            &self.weight_hh,
            self.bias_ih.as_deref(),
            self.bias_hh.as_deref(),
        )
        .expect("from_pytorch")
    }
}

fn pytorch_case(s: &Shape, bias: bool) {
    let mut rng = Rng::new(s.seed);
    let torch = Torch::random(&mut rng, s, bias);
    let x = rng.vec(s.t * s.b * s.i, s.scale);
    let h0 = rng.vec(s.b * s.h, 1.0);
    let h0 = s.initial_h.then_some(&h0[..]);
    let (expected_y, expected_h) = torch.forward(&x, s.t, s.b, h0);

    let weights = torch.convert();
    assert_eq!(weights.convention(), Convention::ResetAfter);
    // PyTorch's [T, B, I] and [1, B, H] are the library's layout as they are.
    let mut input = GruInput::new(&x, s.t, s.b);
    if let Some(h0) = h0 {
        input = input.with_initial_h(h0);
    }
    check(
        &format!("PyTorch nn.GRU(bias={bias}) {s:?}"),
        &weights,
        &input,
        &expected_y,
        &expected_h,
    );
}

#[test]
fn pytorch_with_bias() {
    for s in SHAPES {
        pytorch_case(s, true);
    }
}

#[test]
fn pytorch_without_bias() {
    for s in SHAPES {
        pytorch_case(s, false);
    }
}

// ---------------------------------------------------------------------------------------------
// Keras

/// A Keras `GRU` layer's weights, in Keras's layout and gate order (z, r, h).
struct Keras {
    input_size: usize,
    units: usize,
    /// `(I, 3H)`.
    kernel: Vec<f32>,
    /// `(H, 3H)`.
    recurrent_kernel: Vec<f32>,
    /// `(2, 3H)` with `reset_after`, `(3H,)` without; `None` with `use_bias=False`.
    bias: Option<Vec<f32>>,
    reset_after: bool,
}

impl Keras {
    fn random(rng: &mut Rng, s: &Shape, use_bias: bool, reset_after: bool) -> Self {
        let k = s.scale / (s.h as f32).sqrt();
        let bias_len = if reset_after { 2 * 3 * s.h } else { 3 * s.h };
        Keras {
            input_size: s.i,
            units: s.h,
            kernel: rng.vec(s.i * 3 * s.h, k),
            recurrent_kernel: rng.vec(s.h * 3 * s.h, k),
            bias: use_bias.then(|| rng.vec(bias_len, k)),
            reset_after,
        }
    }

    /// Keras's `GRUCell.call`, written out:
    ///
    /// ```text
    /// input_bias, recurrent_bias = (bias, None)      if not reset_after
    ///                              (bias[0], bias[1]) if reset_after
    /// matrix_x = x · kernel + input_bias;  x_z, x_r, x_h = split(matrix_x, 3)
    /// reset_after:     matrix_inner = h · recurrent_kernel + recurrent_bias
    /// not reset_after: matrix_inner = h · recurrent_kernel[:, :2H]
    /// recurrent_z, recurrent_r, recurrent_h = matrix_inner[:, :H], [:, H:2H], [:, 2H:]
    /// z = σ(x_z + recurrent_z);  r = σ(x_r + recurrent_r)
    /// reset_after:     recurrent_h = r ∗ recurrent_h
    /// not reset_after: recurrent_h = (r ∗ h) · recurrent_kernel[:, 2H:]
    /// hh = tanh(x_h + recurrent_h)
    /// h' = z ∗ h + (1 − z) ∗ hh
    /// ```
    ///
    /// `x (B, T, I)`, `h0 (B, H)` (zeros when `None`) → `(sequences (B, T, H), state (B, H))`.
    fn forward(
        &self,
        x: &[f32],
        batch: usize,
        t_len: usize,
        h0: Option<&[f32]>,
    ) -> (Vec<f64>, Vec<f64>) {
        let (ni, nh) = (self.input_size, self.units);
        let h3 = 3 * nh;
        // v (1, rows) · m (rows, 3H), columns cols.
        let vm = |v: &[f64], m: &[f32], cols: std::ops::Range<usize>| -> Vec<f64> {
            cols.map(|c| {
                v.iter()
                    .enumerate()
                    .map(|(k, &vk)| vk * m[k * h3 + c] as f64)
                    .sum()
            })
            .collect()
        };
        let (input_bias, recurrent_bias): (Vec<f64>, Option<Vec<f64>>) = match &self.bias {
            None => (vec![0.0; h3], None),
            Some(b) if !self.reset_after => (b.iter().map(|&v| v as f64).collect(), None),
            Some(b) => (
                b[..h3].iter().map(|&v| v as f64).collect(),
                Some(b[h3..].iter().map(|&v| v as f64).collect()),
            ),
        };

        let mut sequences = vec![0.0; batch * t_len * nh];
        let mut state = Vec::with_capacity(batch * nh);
        for b in 0..batch {
            let mut h: Vec<f64> = match h0 {
                Some(h0) => h0[b * nh..][..nh].iter().map(|&v| v as f64).collect(),
                None => vec![0.0; nh],
            };
            for t in 0..t_len {
                let xv: Vec<f64> = x[(b * t_len + t) * ni..][..ni]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let matrix_x: Vec<f64> = vm(&xv, &self.kernel, 0..h3)
                    .iter()
                    .zip(&input_bias)
                    .map(|(a, c)| a + c)
                    .collect();
                let (x_z, x_r, x_h) = (&matrix_x[..nh], &matrix_x[nh..2 * nh], &matrix_x[2 * nh..]);
                let matrix_inner: Vec<f64> = if self.reset_after {
                    let mut m = vm(&h, &self.recurrent_kernel, 0..h3);
                    if let Some(rb) = &recurrent_bias {
                        m.iter_mut().zip(rb).for_each(|(a, c)| *a += c);
                    }
                    m
                } else {
                    vm(&h, &self.recurrent_kernel, 0..2 * nh)
                };
                let z: Vec<f64> = (0..nh).map(|j| sigmoid(x_z[j] + matrix_inner[j])).collect();
                let r: Vec<f64> = (0..nh)
                    .map(|j| sigmoid(x_r[j] + matrix_inner[nh + j]))
                    .collect();
                let recurrent_h: Vec<f64> = if self.reset_after {
                    (0..nh).map(|j| r[j] * matrix_inner[2 * nh + j]).collect()
                } else {
                    let rh: Vec<f64> = (0..nh).map(|j| r[j] * h[j]).collect();
                    vm(&rh, &self.recurrent_kernel, 2 * nh..h3)
                };
                let next: Vec<f64> = (0..nh)
                    .map(|j| {
                        let hh = (x_h[j] + recurrent_h[j]).tanh();
                        z[j] * h[j] + (1.0 - z[j]) * hh
                    })
                    .collect();
                sequences[(b * t_len + t) * nh..][..nh].copy_from_slice(&next);
                h = next;
            }
            state.extend_from_slice(&h);
        }
        (sequences, state)
    }

    fn convert(&self) -> GruWeights {
        GruWeights::from_keras(
            self.input_size,
            self.units,
            &self.kernel,
            &self.recurrent_kernel,
            self.bias.as_deref(),
            self.reset_after,
        )
        .expect("from_keras")
    }
}

/// `[A, B, C]` → `[B, A, C]` for a row-major array.
fn swap_first_two<T: Copy>(a: &[T], d0: usize, d1: usize, d2: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len());
    for j in 0..d1 {
        for i in 0..d0 {
            out.extend_from_slice(&a[(i * d1 + j) * d2..][..d2]);
        }
    }
    out
}

fn keras_case(s: &Shape, use_bias: bool, reset_after: bool) {
    let mut rng = Rng::new(s.seed);
    let keras = Keras::random(&mut rng, s, use_bias, reset_after);
    // Keras's input is batch-major (B, T, I).
    let x_bti = rng.vec(s.b * s.t * s.i, s.scale);
    let h0 = rng.vec(s.b * s.h, 1.0);
    let h0 = s.initial_h.then_some(&h0[..]);
    let (sequences, state) = keras.forward(&x_bti, s.b, s.t, h0);

    let weights = keras.convert();
    let convention = if reset_after {
        Convention::ResetAfter
    } else {
        Convention::ResetBefore
    };
    assert_eq!(weights.convention(), convention);
    // The library is sequence-major: X[T, B, I] in, Y[T, B, H] out.
    let x = swap_first_two(&x_bti, s.b, s.t, s.i);
    let expected_y = swap_first_two(&sequences, s.b, s.t, s.h);
    let mut input = GruInput::new(&x, s.t, s.b);
    if let Some(h0) = h0 {
        input = input.with_initial_h(h0);
    }
    check(
        &format!("Keras GRU(use_bias={use_bias}, reset_after={reset_after}) {s:?}"),
        &weights,
        &input,
        &expected_y,
        &state,
    );
}

#[test]
fn keras_reset_after_true() {
    for s in SHAPES {
        keras_case(s, true, true);
    }
}

#[test]
fn keras_reset_after_false() {
    for s in SHAPES {
        keras_case(s, true, false);
    }
}

#[test]
fn keras_without_bias() {
    for s in SHAPES {
        keras_case(s, false, true);
        keras_case(s, false, false);
    }
}

/// A bias of the other `reset_after`'s shape is a shape error naming the expected shape.
#[test]
fn keras_bias_shape_must_match_reset_after() {
    let (i, h) = (2, 4);
    let kernel = vec![0.0f32; i * 3 * h];
    let recurrent_kernel = vec![0.0f32; h * 3 * h];
    let cases = [
        // reset_after=True wants (2, 3H) but gets (3H,).
        (
            true,
            3 * h,
            [
                "(2, 3H=12)",
                "reset_after=True",
                "24 elements",
                "got 12 elements",
            ],
        ),
        // reset_after=False wants (3H,) but gets (2, 3H).
        (
            false,
            2 * 3 * h,
            [
                "(3H=12,)",
                "reset_after=False",
                "12 elements",
                "got 24 elements",
            ],
        ),
    ];
    for (reset_after, len, needles) in cases {
        let bias = vec![0.0f32; len];
        let err =
            GruWeights::from_keras(i, h, &kernel, &recurrent_kernel, Some(&bias), reset_after)
                .expect_err("a bias of the wrong shape must be refused");
        assert!(
            matches!(&err, GruError::Shape { what, .. } if what == "bias"),
            "reset_after={reset_after}: expected a shape error about bias, got {err:?}"
        );
        let message = err.to_string();
        for needle in needles {
            assert!(
                message.contains(needle),
                "reset_after={reset_after}: message {message:?} does not contain {needle:?}"
            );
        }
    }
}
