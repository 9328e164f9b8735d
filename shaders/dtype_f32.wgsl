// dtype_f32.wgsl: the storage type S of weights and activations is f32 (src/shaders.rs puts
// this file, or dtype_f16.wgsl, first in every kernel). Arithmetic is always f32: kernels load
// with f32(…) and store with to_s(…).
alias S = f32;
alias S4 = vec4<f32>;

// v in storage type S (f32: unchanged).
fn to_s(v: f32) -> S {
    return v;
}

// v as stored (rounded to S) and read back.
fn stored(v: f32) -> f32 {
    return v;
}
