// train_head.wgsl: the dense head of the one-submit training step (src/gpu/train/trainer/),
// its loss, the loss's gradient, and the refresh of the weights' kernel layouts after the
// optimizer's update. The rules are those of src/loss.rs (the f64 reference), in f32.
//
// `head_forward` (one invocation per entry of one chunk of the batch): gathers the entry's
// features, the last layer's final state of each direction side by side, from the state
// sequence `hs` [D, steps+1, n, H] into work[e·F ..] (F = D·H; e the entry's index in the
// whole batch); the logits z = W·x + b (head [W (out, F) | b (out)], PyTorch's order); the
// loss, its gradient ∂loss/∂z scaled by 1/B (the batch mean) into work[DZ + e·out ..], the
// entry's loss and whether it was predicted right into work[METRICS + 2e ..]; and dY_h = Wᵀ·∂z
// into the last layer's rows of the backward's carry [L, D, n, H].
//
// `head_grad` (one invocation per head parameter): dW[o, k] = Σ_e ∂z[e, o]·x[e, k] and
// db[o] = Σ_e ∂z[e, o], entries in order (no atomics: bitwise reproducible). A non-finite loss
// of any entry makes the bias gradients NaN, so that the optimizer's guard,
// which looks at the gradients' norm, skips the step.
//
// `transpose` (one invocation per element): dst[dst_off + c·dst_stride + r] =
// src[src_off + r·cols + c] over a [rows, cols] block: W [3H, K] → Wᵀ, R [3H, H] → Rᵀ.

struct HeadParams {
    n: u32,          // head_forward: entries of this chunk
    first: u32,      // head_forward: the chunk's first entry in the batch
    features: u32,   // F = D·H
    outputs: u32,    // out
    hidden: u32,     // H
    steps: u32,      // head_forward: steps of the chunk's last piece
    carry_base: u32, // head_forward: (L−1)·D·n·H
    loss: u32,       // LOSS_*
    scale: f32,      // 1 / B
    total: u32,      // B: entries of the whole batch
    rows: u32,       // transpose
    cols: u32,       // transpose
    src_off: u32,    // transpose
    dst_off: u32,    // transpose
    dst_stride: u32, // transpose
    lens_at: u32,    // head_forward: where the entries' lengths (as f32) follow the targets
    seq_len: u32,    // rows per entry: T for the per-step head, 1 for the final state
    t0: u32,         // head_steps: the piece's first step
    _pad0: u32,
    _pad1: u32,
}

const LOSS_BCE: u32 = 0u;
const LOSS_SCE: u32 = 1u;
const LOSS_MSE: u32 = 2u;

@group(0) @binding(0) var<storage, read> src_a: array<f32>;    // hs | src
@group(0) @binding(1) var<storage, read> head: array<f32>;     // [W (out, F) | b (out)]
// [B] labels | [B, out] targets, then at lens_at the entries' lengths [B].
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>; // carry | head gradient | dst
// [R, F] features, then [R, out] logits turned gradients, then [R, 2] loss and correct, for
// R = B rows (final state) or B·T (per step: row e·T + s).
@group(0) @binding(4) var<storage, read_write> work: array<f32>;
// Read-only storage with a dynamic offset, as the other kernels' parameters (params.rs).
@group(0) @binding(5) var<storage, read> hp: HeadParams;

const WG: u32 = 64u;

// The flat index of an invocation of a dispatch of (x, y) workgroups of WG lanes.
fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * WG;
}

// Rows of the work buffer: B (final state) or B·T (per step).
fn rows() -> u32 {
    return hp.total * hp.seq_len;
}

fn dz_base() -> u32 {
    return rows() * hp.features;
}

fn metrics_base() -> u32 {
    return rows() * (hp.features + hp.outputs);
}

// Whether x is finite, from its bits (no fast-math rewrite can fold it away).
fn is_finite_bits(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// log(1 + x) for x in [0, 1], accurate where x is tiny (WGSL has no log1p).
fn log1p_small(x: f32) -> f32 {
    if (x < 1e-4) {
        return x * (1.0 - 0.5 * x);
    }
    return log(1.0 + x);
}

// The head on one row of features: gathers them from src_a[src_base + d·src_d + u] into
// work[row·F ..] (zeros unless `valid`), the logits, the loss and its gradient (zero unless
// the row `counts`) scaled by hp.scale into work[DZ + row·out ..], the row's loss and hit into
// work[METRICS + 2·row ..], and the features' gradient Wᵀ·∂z (zero unless `valid`) into
// dst[dst_base + d·dst_d + u]. A final state of length 0 counts (the head sees zeros, as
// ONNX's Y_h) but is not `valid` (no gradient flows back); a step past an entry's length is
// neither.
// `first_target` is the row's first target (labels: one, mean squared error: `out`).
fn head_row(
    row: u32,
    first_target: u32,
    valid: bool,
    counts: bool,
    src_base: u32,
    src_d: u32,
    dst_base: u32,
    dst_d: u32,
) {
    let f = hp.features;
    let h = hp.hidden;
    let out = hp.outputs;
    let nd = f / h;
    for (var d = 0u; d < nd; d++) {
        for (var u = 0u; u < h; u++) {
            work[row * f + d * h + u] = select(0.0, src_a[src_base + d * src_d + u], valid);
        }
    }
    let dz = dz_base() + row * out;
    for (var o = 0u; o < out; o++) {
        var z = head[out * f + o];
        for (var k = 0u; k < f; k++) {
            z += head[o * f + k] * work[row * f + k];
        }
        work[dz + o] = z;
    }
    var loss = 0.0;
    var correct = 0.0;
    switch hp.loss {
        case LOSS_BCE: {
            let z = work[dz];
            let y = targets[first_target];
            loss = max(z, 0.0) - z * y + log1p_small(exp(-abs(z)));
            let p = sigmoid_stable(z);
            work[dz] = (p - y) * hp.scale;
            correct = select(0.0, 1.0, select(0.0, 1.0, p > 0.5) == y);
        }
        case LOSS_SCE: {
            let y = u32(targets[first_target]);
            var top = work[dz];
            var best = 0u;
            for (var o = 1u; o < out; o++) {
                if (work[dz + o] > top) {
                    top = work[dz + o];
                    best = o;
                }
            }
            var sum = 0.0;
            for (var o = 0u; o < out; o++) {
                sum += exp(work[dz + o] - top);
            }
            let lse = top + log(sum);
            loss = lse - work[dz + y];
            for (var o = 0u; o < out; o++) {
                let p = exp(work[dz + o] - lse);
                work[dz + o] = (p - select(0.0, 1.0, o == y)) * hp.scale;
            }
            correct = select(0.0, 1.0, best == y);
        }
        default: {
            // Mean squared error over the outputs.
            for (var o = 0u; o < out; o++) {
                let diff = work[dz + o] - targets[first_target + o];
                loss += diff * diff;
                work[dz + o] = 2.0 * diff / f32(out) * hp.scale;
            }
            loss /= f32(out);
        }
    }
    if (!counts) {
        loss = 0.0;
        correct = 0.0;
        for (var o = 0u; o < out; o++) {
            work[dz + o] = 0.0;
        }
    }
    work[metrics_base() + 2u * row] = loss;
    work[metrics_base() + 2u * row + 1u] = correct;
    for (var d = 0u; d < nd; d++) {
        for (var u = 0u; u < h; u++) {
            let k = d * h + u;
            var g = 0.0;
            for (var o = 0u; o < out; o++) {
                g += head[o * f + k] * work[dz + o];
            }
            dst[dst_base + d * dst_d + u] = select(0.0, g, valid);
        }
    }
}

// The width of one row's targets: `out` for mean squared error, else one label.
fn target_width() -> u32 {
    return select(1u, hp.outputs, hp.loss == LOSS_MSE);
}

@compute @workgroup_size(64)
fn head_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x;
    if (b >= hp.n) {
        return;
    }
    let e = hp.first + b;
    let h = hp.hidden;
    // An entry of length 0 has the constant final state 0 (ONNX's Y_h), whatever its
    // initial state: its features are 0 and pass no gradient back.
    let valid = targets[hp.lens_at + e] > 0.0;
    head_row(
        e,
        e * target_width(),
        valid,
        true,
        (hp.steps * hp.n + b) * h,
        (hp.steps + 1u) * hp.n * h,
        hp.carry_base + b * h,
        hp.n * h,
    );
}

// The per-step head on one piece's top-layer output Y [steps, n, D·H] (rows t·n + b): the
// row of entry e = first + b at step s = t0 + t is work row e·T + s; it counts while s is
// within the entry's length; its features' gradient goes to dY [steps, n, D·H] (dst).
@compute @workgroup_size(64)
fn head_steps(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let i = flat_index(gid, groups);
    if (i >= hp.steps * hp.n) {
        return;
    }
    let t = i / hp.n;
    let b = i % hp.n;
    let e = hp.first + b;
    let s = hp.t0 + t;
    let row = e * hp.seq_len + s;
    let valid = f32(s) < targets[hp.lens_at + e];
    let f = hp.features;
    head_row(row, row * target_width(), valid, valid, i * f, hp.hidden, i * f, hp.hidden);
}

@compute @workgroup_size(64)
fn head_grad(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let f = hp.features;
    let out = hp.outputs;
    let i = flat_index(gid, groups);
    if (i >= out * (f + 1u)) {
        return;
    }
    let o = i / (f + 1u);
    let k = i % (f + 1u);
    let dz = dz_base();
    var g = 0.0;
    var bad = false;
    // Every row in order: entries, then (per-step head) their steps; a row that does not
    // count has ∂z = 0.
    for (var e = 0u; e < hp.total; e++) {
        for (var s = 0u; s < hp.seq_len; s++) {
            let row = e * hp.seq_len + s;
            let x = select(1.0, work[row * f + k], k < f);
            g += work[dz + row * out + o] * x;
            bad = bad || !is_finite_bits(work[metrics_base() + 2u * row]);
        }
    }
    if (k < f) {
        dst[o * f + k] = g;
    } else {
        // A NaN made from its bits where a loss was not finite: the optimizer's guard
        // then skips the step.
        dst[out * f + o] = select(g, bitcast<f32>(0x7fc00000u), bad);
    }
}

@compute @workgroup_size(64)
fn transpose(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let i = flat_index(gid, groups);
    if (i >= hp.rows * hp.cols) {
        return;
    }
    let r = i / hp.cols;
    let c = i % hp.cols;
    dst[hp.dst_off + c * hp.dst_stride + r] = src_a[hp.src_off + r * hp.cols + c];
}
