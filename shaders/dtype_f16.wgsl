// dtype_f16.wgsl: the storage type S of weights and activations is f16 (needs the device
// feature SHADER_F16). Arithmetic stays f32: kernels load with f32(…), accumulate and apply
// the activations in f32, and store with to_s(…), rounding to nearest.
enable f16;

alias S = f16;
alias S4 = vec4<f16>;

// v in storage type S, by Dtype::F16's rule (src/dtype.rs): a finite value beyond ±65504
// saturates to ±65504 instead of overflowing to ±inf (an inf in the input projection would
// meet −inf and make NaN out of finite inputs); ±inf and NaN stay as they are. Finiteness is
// read from the bits, which no fast-math rewrite can fold away.
fn to_s(v: f32) -> S {
    let finite = (bitcast<u32>(v) & 0x7fffffffu) < 0x7f800000u;
    return select(S(v), S(clamp(v, -65504.0, 65504.0)), finite);
}

// v as stored (rounded to S) and read back: kernels that keep a state in workgroup memory
// round it like the state they write, so that every path computes the same thing.
fn stored(v: f32) -> f32 {
    return f32(to_s(v));
}
