// gru_split_workgroup.wgsl: the entry points of the split step kernel (gru_split.wgsl) with
// the lanes' partial sums added in workgroup memory: a tree of log2(SPLIT_WG) = 6 rounds,
// one barrier each. For devices without subgroup operations (GL, some mobile drivers), and
// wherever the subgroup variant is switched off. The order of the additions is fixed, so a
// forward gives the same bits every time.

// Leaves gate g's total over the lanes in red[g · SPLIT_WG], visible to every lane.
fn split_reduce(acc: Partial, lid: u32, lanes: Lanes) {
    red[lid] = acc.z;
    red[SPLIT_WG + lid] = acc.r;
    red[2u * SPLIT_WG + lid] = acc.h;
    workgroupBarrier();
    for (var half = SPLIT_WG / 2u; half > 0u; half = half / 2u) {
        if (lid < half) {
            red[lid] += red[lid + half];
            red[SPLIT_WG + lid] += red[SPLIT_WG + lid + half];
            red[2u * SPLIT_WG + lid] += red[2u * SPLIT_WG + lid + half];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(SPLIT_WG)
fn step_reset_after(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    split_step(MODE_RESET_AFTER, lid, wid, groups.x, Lanes(0u, 0u, 0u));
}

@compute @workgroup_size(SPLIT_WG)
fn gates_reset_before(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    split_step(MODE_GATES, lid, wid, groups.x, Lanes(0u, 0u, 0u));
}

@compute @workgroup_size(SPLIT_WG)
fn candidate_reset_before(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    split_step(MODE_CANDIDATE, lid, wid, groups.x, Lanes(0u, 0u, 0u));
}
