//! Comparing results: onnxruntime's tolerance rule and a report of the worst element.

use std::fmt;

/// `|got − expected| ≤ atol + rtol·|expected|`, with NaN required exactly where expected.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute part.
    pub atol: f64,
    /// Relative part.
    pub rtol: f64,
}

impl Tolerance {
    /// onnxruntime's f32 rule (`test/providers/checkers.cc`): `1e-5 + 1e-4·|e|`.
    pub const F32: Tolerance = Tolerance {
        atol: 1e-5,
        rtol: 1e-4,
    };

    /// onnxruntime's f16 rule: `2.5e-3 + 1e-3·|e|`, for f16 storage ([`crate::Dtype::F16`])
    /// against the f64 reference on the same (f16-rounded) weights and inputs, T ≤ 100, with
    /// weights of the usual size (up to about twice PyTorch's initialisation; larger ones
    /// exceed it, see [`crate::Dtype::F16`]).
    pub const F16: Tolerance = Tolerance {
        atol: 2.5e-3,
        rtol: 1e-3,
    };

    /// The rule for outputs stored in `dtype` ([`Tolerance::F32`] or [`Tolerance::F16`]),
    /// against the f64 reference on the same weights and inputs rounded to `dtype`
    /// ([`crate::GruModel::rounded_to`], [`crate::Dtype::round`]).
    pub fn for_dtype(dtype: crate::Dtype) -> Tolerance {
        match dtype {
            crate::Dtype::F32 => Tolerance::F32,
            crate::Dtype::F16 => Tolerance::F16,
        }
    }

    /// Whether one pair is within tolerance (NaN matches only NaN; ±inf only itself).
    pub fn accepts(&self, got: f32, expected: f32) -> bool {
        if expected.is_nan() || got.is_nan() {
            return expected.is_nan() && got.is_nan();
        }
        if expected.is_infinite() || got.is_infinite() {
            return got == expected;
        }
        let (g, e) = (got as f64, expected as f64);
        (g - e).abs() <= self.atol + self.rtol * e.abs()
    }

    /// Compares two equally long slices element by element.
    pub fn compare(&self, got: &[f32], expected: &[f32]) -> Comparison {
        let mut c = Comparison {
            len_got: got.len(),
            len_expected: expected.len(),
            failures: 0,
            max_abs_err: 0.0,
            worst: None,
            tolerance: *self,
        };
        // Rank: failing elements before passing ones, then by how far past the bound.
        let mut worst_key = (false, f64::NEG_INFINITY);
        for (index, (&g, &e)) in got.iter().zip(expected).enumerate() {
            let ok = self.accepts(g, e);
            let err = if ok && (g.is_nan() || g.is_infinite()) {
                0.0 // NaN where NaN was expected, or the same infinity
            } else {
                let d = ((g as f64) - (e as f64)).abs();
                if d.is_nan() {
                    f64::INFINITY
                } else {
                    d
                }
            };
            if !ok {
                c.failures += 1;
            }
            c.max_abs_err = c.max_abs_err.max(err);
            let key = (!ok, err - (self.atol + self.rtol * (e as f64).abs()));
            if c.worst.is_none() || key > worst_key {
                worst_key = key;
                c.worst = Some((index, g, e));
            }
        }
        c
    }
}

/// The result of [`Tolerance::compare`].
#[derive(Clone, Debug)]
pub struct Comparison {
    /// Length of the result.
    pub len_got: usize,
    /// Length of the reference.
    pub len_expected: usize,
    /// How many elements break the tolerance.
    pub failures: usize,
    /// Largest `|got − expected|` (infinite when a NaN or ±inf does not match).
    pub max_abs_err: f64,
    /// `(index, got, expected)` of the element closest to, or furthest past, its bound.
    pub worst: Option<(usize, f32, f32)>,
    /// The rule that was applied.
    pub tolerance: Tolerance,
}

impl Comparison {
    /// Whether the lengths match and every element is within tolerance.
    pub fn passed(&self) -> bool {
        self.len_got == self.len_expected && self.failures == 0
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len_got != self.len_expected {
            return write!(
                f,
                "length mismatch: got {} elements, expected {}",
                self.len_got, self.len_expected
            );
        }
        write!(
            f,
            "{} of {} elements outside |a−e| ≤ {:e} + {:e}·|e|; max |a−e| = {:.3e}",
            self.failures, self.len_got, self.tolerance.atol, self.tolerance.rtol, self.max_abs_err
        )?;
        if let Some((i, g, e)) = self.worst {
            write!(f, "; worst at index {i}: got {g:e}, expected {e:e}")?;
        }
        Ok(())
    }
}
