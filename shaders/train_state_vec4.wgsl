// train_state_vec4.wgsl: the training step kernels' bindings 2 to 4 (hs, reserve, outs) as
// arrays of vec4s, with train_state.wgsl's accessors: scalars by component, elements
// 4q .. 4q+3 in one load. The CPU-adapter shape's module when H is a multiple of 4: every row
// the loops read (of hs, of the reserve's u, of G_h) then starts at a multiple of 4, and on
// lavapipe, where every storage load is a bounds-checked access of its own, one vec4 load
// costs about what one scalar load does. The host sizes these buffers in whole vec4s (every
// size is a multiple of H).

@group(0) @binding(2) var<storage, read_write> hs: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> reserve: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> outs: array<vec4<f32>>;

// Whether the *_4 accessors are single vec4 loads.
const VEC4_VIEW: bool = true;

fn hs_at(i: u32) -> f32 {
    return hs[i >> 2u][i & 3u];
}

fn set_hs(i: u32, v: f32) {
    hs[i >> 2u][i & 3u] = v;
}

fn reserve_at(i: u32) -> f32 {
    return reserve[i >> 2u][i & 3u];
}

fn set_reserve(i: u32, v: f32) {
    reserve[i >> 2u][i & 3u] = v;
}

fn outs_at(i: u32) -> f32 {
    return outs[i >> 2u][i & 3u];
}

fn set_outs(i: u32, v: f32) {
    outs[i >> 2u][i & 3u] = v;
}

fn hs_4(q: u32) -> vec4<f32> {
    return hs[q];
}

fn reserve_4(q: u32) -> vec4<f32> {
    return reserve[q];
}

fn outs_4(q: u32) -> vec4<f32> {
    return outs[q];
}
