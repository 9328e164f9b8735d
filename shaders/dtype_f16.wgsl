// dtype_f16.wgsl: the storage type S of weights and activations is f16 (needs the device
// feature SHADER_F16). Arithmetic stays f32: kernels load with f32(…), accumulate and apply
// the activations in f32, and store with S(…), rounding to nearest.
enable f16;

alias S = f16;
alias S4 = vec4<f16>;

// v as stored (rounded to S) and read back: kernels that keep a state in workgroup memory
// round it like the state they write, so that every path computes the same thing.
fn stored(v: f32) -> f32 {
    return f32(S(v));
}
