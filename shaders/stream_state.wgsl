// stream_state.wgsl: moves the hidden state of the streams a session feeds between the
// session's resident state and the packed initial_h / Y_h buffers of one forward
// (src/gpu/session.rs).
//
//   state[capacity, L·H + pad]  every slot's state, each stream's L·H values contiguous,
//                          slots `slot_stride` elements apart (L·H rounded up to even, so
//                          that every slot starts 4-byte aligned in f16 too)
//   packed[L, B, H]        the forward's initial_h (gather) or Y_h (scatter), B ≥ k
//   slots[k]               the slot of each fed stream, in feed order
//
// Element e of the k·L·H moved is (l, i, j) = (e / (k·H), (e / H) mod k, e mod H). The
// invocations stride over e, so any k·L·H runs in ≤ 65535 workgroups.

struct MoveParams {
    streams: u32,   // k
    layers: u32,    // L
    hidden: u32,    // H
    batch: u32,     // B, the forward's batch (≥ k)
    slot_stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> state: array<S>;
@group(0) @binding(1) var<storage, read_write> packed: array<S>;
@group(0) @binding(2) var<storage, read> slots: array<u32>;
// Read-only storage, not uniform: lavapipe recompiles a shader for every value of a small
// uniform that steers control flow (gru_layer.wgsl).
@group(0) @binding(3) var<storage, read> mp: MoveParams;

const MOVE_WG: u32 = 64u;

// (state index, packed index) of element e.
fn element(e: u32) -> vec2<u32> {
    let per_layer = mp.streams * mp.hidden;
    let l = e / per_layer;
    let rest = e - l * per_layer;
    let i = rest / mp.hidden;
    let j = rest - i * mp.hidden;
    let s = slots[i] * mp.slot_stride + l * mp.hidden + j;
    let p = (l * mp.batch + i) * mp.hidden + j;
    return vec2<u32>(s, p);
}

@compute @workgroup_size(MOVE_WG)
fn gather_state(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) groups: vec3<u32>) {
    let total = mp.streams * mp.layers * mp.hidden;
    let stride = groups.x * MOVE_WG;
    for (var e = gid.x; e < total; e += stride) {
        let at = element(e);
        packed[at.y] = state[at.x];
    }
}

@compute @workgroup_size(MOVE_WG)
fn scatter_state(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) groups: vec3<u32>) {
    let total = mp.streams * mp.layers * mp.hidden;
    let stride = groups.x * MOVE_WG;
    for (var e = gid.x; e < total; e += stride) {
        let at = element(e);
        state[at.x] = packed[at.y];
    }
}
