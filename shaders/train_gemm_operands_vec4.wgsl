// train_gemm_operands_vec4.wgsl: train_gemm.wgsl's A and B bindings as arrays of vec4s, with
// train_gemm_operands.wgsl's accessors: scalars by component, elements 4q .. 4q+3 in one load
// (on lavapipe every storage load is a bounds-checked access of its own, and one vec4 load
// costs about what one scalar load does). The host sizes the buffers it binds in whole vec4s.

@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;

// Whether a_4 and b_4 are single vec4 loads.
const VEC4_OPERANDS: bool = true;

fn a_at(i: u32) -> f32 {
    return a[i >> 2u][i & 3u];
}

fn b_at(i: u32) -> f32 {
    return b[i >> 2u][i & 3u];
}

fn a_4(q: u32) -> vec4<f32> {
    return a[q];
}

fn b_4(q: u32) -> vec4<f32> {
    return b[q];
}
