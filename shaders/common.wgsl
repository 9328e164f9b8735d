// common.wgsl: numerics shared by every kernel. The host prepends this file to each kernel
// file (src/gpu/shaders.rs is the one place that does it), so it holds only functions.
//
// Stable activations (REFERENCES.md §4): with e = exp(-|x|) nothing overflows, so every finite
// input, up to ±3.4e38, gives a finite output. NaN is detected from its bits, which no
// fast-math rewrite can fold away, and returned unchanged, so NaN in gives NaN out on every
// driver.

fn is_nan_bits(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// σ(x) = x ≥ 0 ? 1/(1+e) : e/(1+e),  e = exp(-|x|)
fn sigmoid_stable(x: f32) -> f32 {
    let e = exp(-abs(x));
    let s = select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
    return select(s, x, is_nan_bits(x));
}

// tanh(x) = sign(x)·(1 − e²)/(1 + e²),  e² = exp(-2|x|)
fn tanh_stable(x: f32) -> f32 {
    let e2 = exp(-2.0 * abs(x));
    let t = (1.0 - e2) / (1.0 + e2);
    let s = select(-t, t, x >= 0.0);
    return select(s, x, is_nan_bits(x));
}

// ONNX's clip: x clamped to [−c, c] when `on`, NaN-preserving (a NaN compares false and
// passes through). Each recurrent kernel's clip(x) calls it with its layer parameters.
fn onnx_clip(x: f32, on: bool, c: f32) -> f32 {
    if (on) {
        if (x > c) {
            return c;
        }
        if (x < -c) {
            return -c;
        }
    }
    return x;
}
