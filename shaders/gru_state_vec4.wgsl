// gru_state_vec4.wgsl: the recurrent kernels' state bindings (h0, y and scratch) as arrays of
// vec4s, with the accessors of gru_state.wgsl: scalars by component, and elements 4q .. 4q+3
// in one load. Used for the direct step kernel when H is a multiple of 4, so that every row of
// the state starts at a multiple of 4 (on lavapipe every storage load is a bounds-checked
// access of its own: one vec4 load costs about what one scalar load does). The host allocates
// these buffers in whole vec4s.

@group(0) @binding(2) var<storage, read> h0: array<S4>;
@group(0) @binding(3) var<storage, read_write> y: array<S4>;
@group(0) @binding(4) var<storage, read_write> scratch: array<vec4<f32>>;

fn h0_at(i: u32) -> f32 {
    return f32(h0[i >> 2u][i & 3u]);
}

fn y_at(i: u32) -> f32 {
    return f32(y[i >> 2u][i & 3u]);
}

fn set_y(i: u32, v: f32) {
    y[i >> 2u][i & 3u] = to_s(v);
}

fn scratch_at(i: u32) -> f32 {
    return scratch[i >> 2u][i & 3u];
}

fn set_scratch(i: u32, v: f32) {
    scratch[i >> 2u][i & 3u] = v;
}

fn h0_4(q: u32) -> vec4<f32> {
    return vec4<f32>(h0[q]);
}

fn y_4(q: u32) -> vec4<f32> {
    return vec4<f32>(y[q]);
}

fn scratch_4(q: u32) -> vec4<f32> {
    return scratch[q];
}
