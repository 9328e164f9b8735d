//! The storage type of weights and activations on the GPU.

use std::borrow::Cow;

use half::f16;

/// How the GPU path stores weights and activations (`X`, the input projection, every
/// layer's output and state). Accumulation and gate math are always `f32`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// 32-bit floats: PyTorch-exact within onnxruntime's f32 tolerance.
    #[default]
    F32,
    /// IEEE half precision storage (needs the adapter's `SHADER_F16`): half the memory and
    /// bandwidth; f16 tolerance (`2.5e-3 + 1e-3·|e|` for T ≤ 100, see BENCHMARKS.md for
    /// longer sequences).
    ///
    /// That tolerance holds for weights and inputs of the usual size (PyTorch's and Keras's
    /// initialisations, up to about twice them). The input projection is stored with f16's
    /// 11 significant bits, so its absolute error grows with its size: measured on 60 random
    /// problems per scale of tests/gpu/properties/generated.rs's kind, against the f64 reference on the
    /// same f16-rounded data, the worst error is 0.26 of the tolerance with weights at 2× the usual scale, about
    /// 1.2× the tolerance at 3–4×, 1.8× at 6× and 6× at 8×, on every kernel variant alike.
    ///
    /// **Values beyond f16's range saturate.** A finite value of `X`, `initial_h` or a weight
    /// whose magnitude exceeds [`F16_MAX`] (65504) is stored as `±65504`, never as `±inf`;
    /// so is every intermediate the kernels store (the input projection, the state). `±inf`
    /// stays `±inf` and NaN stays NaN. A finite input therefore never turns into NaN through
    /// the storage type (an overflow to `inf` would make `inf − inf` in the input
    /// projection); inputs of that size saturate the gates as they do in f32, but values past
    /// 65504 are no longer told apart: use [`Dtype::F32`] to keep them.
    /// [`Dtype::saturated`] counts the values an array loses this way.
    F16,
}

/// The largest finite f16 value: what [`Dtype::F16`] stores for a finite value beyond it.
pub const F16_MAX: f32 = 65504.0;

/// `v` as f16 under [`Dtype::F16`]'s rule: finite values beyond ±65504 saturate to ±65504,
/// ±inf and NaN stay as they are, everything else rounds to nearest.
fn to_f16(v: f32) -> f16 {
    if v.is_finite() {
        f16::from_f32(v.clamp(-F16_MAX, F16_MAX))
    } else {
        f16::from_f32(v)
    }
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 => 2,
        }
    }

    /// The name used on the command line and in reports: `f32` or `f16`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
        }
    }

    /// Parses `f32` or `f16`.
    pub fn parse(s: &str) -> Option<Dtype> {
        match s {
            "f32" => Some(Dtype::F32),
            "f16" => Some(Dtype::F16),
            _ => None,
        }
    }

    /// Bytes of `n` elements, rounded up to a multiple of 4 (wgpu's copy alignment).
    pub(crate) fn bytes(self, n: usize) -> u64 {
        (self.size() as u64 * n as u64).next_multiple_of(4)
    }

    /// `values` in this storage type, as bytes padded to a multiple of 4 (no copy for f32).
    pub(crate) fn encode(self, values: &[f32]) -> Cow<'_, [u8]> {
        match self {
            Dtype::F32 => Cow::Borrowed(bytemuck::cast_slice(values)),
            Dtype::F16 => {
                let mut halves: Vec<f16> = values.iter().map(|&v| to_f16(v)).collect();
                if halves.len() % 2 == 1 {
                    halves.push(f16::ZERO);
                }
                Cow::Owned(bytemuck::cast_slice(&halves).to_vec())
            }
        }
    }

    /// The first `n` elements of `bytes` (this storage type) as `f32`.
    pub(crate) fn decode(self, bytes: &[u8], n: usize) -> Vec<f32> {
        match self {
            Dtype::F32 => bytemuck::pod_collect_to_vec(&bytes[..4 * n]),
            Dtype::F16 => {
                let halves: Vec<f16> = bytemuck::pod_collect_to_vec(&bytes[..2 * n]);
                halves.into_iter().map(f16::to_f32).collect()
            }
        }
    }

    /// `v` rounded to this storage type and back (what the GPU stores for `v`): in f16,
    /// finite values beyond ±65504 saturate (see [`Dtype::F16`]).
    pub fn round(self, v: f32) -> f32 {
        match self {
            Dtype::F32 => v,
            Dtype::F16 => to_f16(v).to_f32(),
        }
    }

    /// How many of `values` this storage type saturates: finite values beyond ±65504 in
    /// f16 (stored as ±65504), none in f32.
    pub fn saturated(self, values: &[f32]) -> usize {
        match self {
            Dtype::F32 => 0,
            Dtype::F16 => values
                .iter()
                .filter(|v| v.is_finite() && v.abs() > F16_MAX)
                .count(),
        }
    }
}
