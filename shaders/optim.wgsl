// optim.wgsl: the optimizer step on the device (src/gpu/optim.rs): gradient clipping and the
// update of each parameter tensor in place, with the optimizer's state in device buffers. The
// rules are those of src/optim.rs (the f64 reference), in f32: PyTorch's SGD, Adam, AdamW and
// Keras 3's RMSprop. One dispatch per tensor and entry point; every sum runs in a fixed order
// (no atomics), so a step is bitwise reproducible.
//
// Clipping by global norm takes two passes before the updates: `sum_squares` writes, per
// workgroup, the sum of squares of a contiguous block of one tensor's gradients (its lanes
// strided over the block, then a fixed tree) to aux[partial_base + workgroup]; `norm_scale`
// (one workgroup) adds every tensor's partials in order, and writes the norm and the factor
// min(1, max_norm / (norm + 1e-6)) (PyTorch's clip_grad_norm_) to aux[scale_at], aux[scale_at
// + 1], which `update` reads: no readback. With FLAG_GUARD the two passes run whether or not
// the step clips, and `norm_scale` also writes aux[scale_at + 2]: 1 where the norm is not
// finite, and then `update` changes nothing (neither parameters nor state).

struct OptimParams {
    n: u32,             // elements of this tensor
    kind: u32,          // KIND_*
    flags: u32,         // FLAG_*
    partial_base: u32,  // sum_squares: this tensor's first partial in aux
    lr: f32,
    a: f32,             // SGD: momentum; RMSprop: rho; Adam(W): beta1
    b: f32,             // SGD: dampening; RMSprop: epsilon; Adam(W): beta2
    c: f32,             // SGD: weight decay; RMSprop: momentum; Adam(W): eps
    d: f32,             // Adam(W): weight decay
    step_size: f32,     // Adam(W): lr / (1 − β₁ᵗ)
    bc2_sqrt: f32,      // Adam(W): √(1 − β₂ᵗ)
    clip: f32,          // the clip value or the maximum norm
    partials: u32,      // norm_scale: partials in aux
    scale_at: u32,      // where norm_scale writes the norm and the factor
    _pad0: u32,
    _pad1: u32,
}

const KIND_SGD: u32 = 0u;
const KIND_RMSPROP: u32 = 1u;
const KIND_ADAM: u32 = 2u;
const KIND_ADAMW: u32 = 3u;

const FLAG_NESTEROV: u32 = 1u;
const FLAG_CENTERED: u32 = 2u;
const FLAG_MOMENTUM: u32 = 4u;     // SGD μ ≠ 0, RMSprop μ > 0
const FLAG_FIRST: u32 = 8u;        // the first step (SGD's momentum buffer starts as g)
const FLAG_CLIP_VALUE: u32 = 16u;
const FLAG_CLIP_NORM: u32 = 32u;
const FLAG_GUARD: u32 = 64u;       // skip the update when the gradients' norm is not finite

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;   // [kinds of state, n]
@group(0) @binding(3) var<storage, read_write> aux: array<f32>;
// Read-only storage, not a uniform: lavapipe would specialise the shader for the values of
// small uniforms that steer control flow (params.rs, step_entry).
@group(0) @binding(4) var<storage, read> op: OptimParams;

const WG: u32 = 256u;

var<workgroup> partial: array<f32, 256>;

fn has(flag: u32) -> bool {
    return (op.flags & flag) != 0u;
}

// Adds the lanes' `partial` values in a fixed tree; the total ends in partial[0].
fn tree_sum(lid: u32) {
    for (var width = WG / 2u; width > 0u; width /= 2u) {
        workgroupBarrier();
        if (lid < width) {
            partial[lid] += partial[lid + width];
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn sum_squares(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let block = (op.n + groups.x - 1u) / groups.x;
    let start = wid.x * block;
    let end = min(op.n, start + block);
    var s = 0.0;
    for (var i = start + lid; i < end; i += WG) {
        let g = grads[i];
        s += g * g;
    }
    partial[lid] = s;
    tree_sum(lid);
    if (lid == 0u) {
        aux[op.partial_base + wid.x] = partial[0];
    }
}

@compute @workgroup_size(256)
fn norm_scale(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < op.partials; i += WG) {
        s += aux[i];
    }
    partial[lid] = s;
    tree_sum(lid);
    if (lid == 0u) {
        let norm = sqrt(partial[0]);
        aux[op.scale_at] = norm;
        aux[op.scale_at + 1u] = min(1.0, op.clip / (norm + 1e-6));
        // The guard's verdict, from the norm's bits: a NaN or infinite gradient anywhere
        // (the trainer's head makes one where a loss was not finite) skips every update.
        let finite = (bitcast<u32>(norm) & 0x7f800000u) != 0x7f800000u;
        aux[op.scale_at + 2u] = select(1.0, 0.0, finite);
    }
}

// PyTorch's Adam element update on gradient g (after any L2 term); state m at i, v at n + i.
fn adam(p: f32, g: f32, i: u32) -> f32 {
    let m = state[i] + (1.0 - op.a) * (g - state[i]);
    let v = op.b * state[op.n + i] + (1.0 - op.b) * g * g;
    state[i] = m;
    state[op.n + i] = v;
    return p - op.step_size * m / (sqrt(v) / op.bc2_sqrt + op.c);
}

@compute @workgroup_size(256)
fn update(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    if (has(FLAG_GUARD) && aux[op.scale_at + 2u] != 0.0) {
        return;
    }
    for (var i = gid.x; i < op.n; i += groups.x * WG) {
        var g = grads[i];
        if (has(FLAG_CLIP_NORM)) {
            g *= aux[op.scale_at + 1u];
        }
        if (has(FLAG_CLIP_VALUE)) {
            g = clamp(g, -op.clip, op.clip);
        }
        let p = params[i];
        var next = p;
        switch op.kind {
            case KIND_SGD: {
                var d = g + op.c * p;
                if (has(FLAG_MOMENTUM)) {
                    var buf = d;
                    if (!has(FLAG_FIRST)) {
                        buf = op.a * state[i] + (1.0 - op.b) * d;
                    }
                    state[i] = buf;
                    d = select(buf, d + op.a * buf, has(FLAG_NESTEROV));
                }
                next = p - op.lr * d;
            }
            case KIND_RMSPROP: {
                let v = op.a * state[i] + (1.0 - op.a) * g * g;
                state[i] = v;
                var denominator = v + op.b;
                if (has(FLAG_CENTERED)) {
                    let at = select(1u, 2u, has(FLAG_MOMENTUM)) * op.n + i;
                    let avg = op.a * state[at] + (1.0 - op.a) * g;
                    state[at] = avg;
                    denominator = v - avg * avg + op.b;
                }
                let increment = op.lr * g / sqrt(denominator);
                if (has(FLAG_MOMENTUM)) {
                    let m = op.c * state[op.n + i] + increment;
                    state[op.n + i] = m;
                    next = p - m;
                } else {
                    next = p - increment;
                }
            }
            case KIND_ADAM: {
                next = adam(p, g + op.d * p, i);
            }
            case KIND_ADAMW: {
                next = adam(p * (1.0 - op.lr * op.d), g, i);
            }
            default: {}
        }
        params[i] = next;
    }
}
