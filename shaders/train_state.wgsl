// train_state.wgsl: the training step kernels' bindings 2 to 4 (hs, reserve, outs; what they
// hold: gru_train.wgsl) as arrays of scalars, with the accessors gru_train.wgsl uses for them.
// train_state_vec4.wgsl declares the same bindings as arrays of vec4s with the same accessors
// (the bind group layout is the same; only the module's view of the buffers differs): the
// CPU-adapter shape's module when H is a multiple of 4, whose loops then read four elements of
// a row per load (VEC4_VIEW).

@group(0) @binding(2) var<storage, read_write> hs: array<f32>;
@group(0) @binding(3) var<storage, read_write> reserve: array<f32>;
@group(0) @binding(4) var<storage, read_write> outs: array<f32>;

// Whether the *_4 accessors are single vec4 loads (they are four scalar loads here).
const VEC4_VIEW: bool = false;

fn hs_at(i: u32) -> f32 {
    return hs[i];
}

fn set_hs(i: u32, v: f32) {
    hs[i] = v;
}

fn reserve_at(i: u32) -> f32 {
    return reserve[i];
}

fn set_reserve(i: u32, v: f32) {
    reserve[i] = v;
}

fn outs_at(i: u32) -> f32 {
    return outs[i];
}

fn set_outs(i: u32, v: f32) {
    outs[i] = v;
}

// Elements 4q .. 4q+3.
fn hs_4(q: u32) -> vec4<f32> {
    return vec4<f32>(hs[4u * q], hs[4u * q + 1u], hs[4u * q + 2u], hs[4u * q + 3u]);
}

fn reserve_4(q: u32) -> vec4<f32> {
    return vec4<f32>(reserve[4u * q], reserve[4u * q + 1u], reserve[4u * q + 2u],
                     reserve[4u * q + 3u]);
}

fn outs_4(q: u32) -> vec4<f32> {
    return vec4<f32>(outs[4u * q], outs[4u * q + 1u], outs[4u * q + 2u], outs[4u * q + 3u]);
}
