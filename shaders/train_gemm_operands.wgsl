// train_gemm_operands.wgsl: the A and B bindings of train_gemm.wgsl as arrays of scalars, with
// the accessors the GEMMs use. train_gemm_operands_vec4.wgsl declares them as arrays of vec4s
// with the same accessors (the bind group layout is the same): the module whose direct GEMM
// reads four consecutive elements per load wherever an operand's strides allow
// (VEC4_OPERANDS). The host then sizes every buffer it binds there in whole vec4s.

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;

// Whether a_4 and b_4 are single vec4 loads (they are four scalar loads here).
const VEC4_OPERANDS: bool = false;

fn a_at(i: u32) -> f32 {
    return a[i];
}

fn b_at(i: u32) -> f32 {
    return b[i];
}

// Elements 4q .. 4q+3.
fn a_4(q: u32) -> vec4<f32> {
    return vec4<f32>(a[4u * q], a[4u * q + 1u], a[4u * q + 2u], a[4u * q + 3u]);
}

fn b_4(q: u32) -> vec4<f32> {
    return vec4<f32>(b[4u * q], b[4u * q + 1u], b[4u * q + 2u], b[4u * q + 3u]);
}
