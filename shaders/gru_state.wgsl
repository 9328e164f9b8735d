// gru_state.wgsl: the recurrent kernels' state bindings (h0, y and scratch; what they hold:
// gru_layer.wgsl) as arrays of scalars, and the accessors every recurrent kernel uses for them.
// gru_state_vec4.wgsl declares the same bindings as arrays of vec4s with the same accessors;
// the bind group layout is the same, only the module's view of the buffers differs. The
// direct step kernel is built with that one when H is a multiple of 4 (gru_step.wgsl, VEC_H).

@group(0) @binding(2) var<storage, read> h0: array<S>;
@group(0) @binding(3) var<storage, read_write> y: array<S>;
@group(0) @binding(4) var<storage, read_write> scratch: array<f32>;

fn h0_at(i: u32) -> f32 {
    return f32(h0[i]);
}

fn y_at(i: u32) -> f32 {
    return f32(y[i]);
}

fn set_y(i: u32, v: f32) {
    y[i] = to_s(v);
}

fn scratch_at(i: u32) -> f32 {
    return scratch[i];
}

fn set_scratch(i: u32, v: f32) {
    scratch[i] = v;
}

// Elements 4q .. 4q+3 (the vec4 view reads them in one load).
fn h0_4(q: u32) -> vec4<f32> {
    let i = 4u * q;
    return vec4<f32>(h0_at(i), h0_at(i + 1u), h0_at(i + 2u), h0_at(i + 3u));
}

fn y_4(q: u32) -> vec4<f32> {
    let i = 4u * q;
    return vec4<f32>(y_at(i), y_at(i + 1u), y_at(i + 2u), y_at(i + 3u));
}

fn scratch_4(q: u32) -> vec4<f32> {
    let i = 4u * q;
    return vec4<f32>(scratch[i], scratch[i + 1u], scratch[i + 2u], scratch[i + 3u]);
}
