#!/usr/bin/env bash
# Side-by-side run of gru-bench (Vulkan) and PyTorch nn.GRU (cuDNN) on a lent NVIDIA machine.
#
# Needs only: prebuilt binaries in target/release, or in $BIN (stripped copies carried from the
# build machine: `strip -o target/devbin/gru-bench target/release/gru-bench`, likewise gru), and PyTorch
# with CUDA on the GPU machine. A machine without its own Vulkan loader (libvulkan.so.1) also
# needs the Vulkan/EGL loader .deb packages in .gl/ (a person copies the project's shared gl
# folder there); they are unpacked only when no loader is installed. Writes everything under $OUT (default ./gpu-compare-out):
# gru-bench-split.{json,txt} and compare-split.txt (the step kernels at small batch, with their
# step structure, against cuDNN), gru-bench.json, torch.json, compare.txt (the ratio table), gru-bench-f16.{json,txt} (f16 against f32),
# gru-bench-backward.{json,txt} and torch-backward.json (training: forward, training forward,
# backward per step and their ratio, against nn.GRU autograd),
# gru-bench-train{,-article}.json, gru-bench-train.txt and torch-train{,-article}.json (the
# training step: GRU -> Dense -> BCE -> RMSprop, against nn.GRU + RMSprop),
# streaming.{json,txt} and torch-streaming.json (a session of 1…1024 streams against nn.GRU),
# the logs, and nvidia-smi / vulkan adapter facts.
# Budget: the whole script finishes in under 10 minutes (each step has its own timeout; they
# add up to 645 s with `gru info`; on a GPU every step finishes well inside its own).
#
#   bash benches/gpu_compare.sh            # default grid
#   QUICK=1 bash benches/gpu_compare.sh    # a 1-minute smoke run
#   TORCH_DEVICE=cpu QUICK=1 bash benches/gpu_compare.sh   # dry run without CUDA (lavapipe)
#
# gru-bench writes its JSON row by row, so a step cut short by its timeout keeps every row it
# finished; each step's exit status is at the end of its log.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-compare-out}"
mkdir -p "$OUT"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
TORCH_DEVICE="${TORCH_DEVICE:-cuda}"

if [ -d .gl ] && ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi

# Lent NVIDIA machines keep their Vulkan/EGL driver manifests here; the loader may not look.
NV=/usr/local/nvidia/share
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$NV/vulkan/icd.d/nvidia_icd.json" ]; then
    export VK_DRIVER_FILES="$NV/vulkan/icd.d/nvidia_icd.json"
fi
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f "$NV/glvnd/egl_vendor.d/10_nvidia.json" ]; then
    export __EGL_VENDOR_LIBRARY_FILENAMES="$NV/glvnd/egl_vendor.d/10_nvidia.json"
fi

BIN="${BIN:-target/release}"
BENCH="$BIN/gru-bench"
[ -x "$BENCH" ] || { echo "gpu_compare.sh: $BENCH is missing: cargo build --release first" >&2; exit 1; }

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; } > "$OUT/nvidia-smi.txt"
timeout 20 "$BIN/gru" info > "$OUT/adapters.txt" 2>&1

if [ "${QUICK:-0}" = 1 ]; then
    GRID=(--hidden 256,512 --batch 1,64 --seq-len 100)
else
    GRID=(--hidden 128,256,512,1024 --batch 1,4,16,64 --seq-len 100,1000)
fi

# The small-batch step kernels side by side (issue 13): staged, direct, split (subgroups) and
# split-workgroup on the step-fused path, I=H=256/512/1024, B = 1 and 16, T = 1000, both
# conventions; each row carries its step structure (dispatches, workgroups, lanes, loop trips).
WGPU_BACKEND=vulkan timeout 70 "$BENCH" --hidden 256,512,1024 --batch 1,16 --seq-len 1000 \
    --convention both --path step --step-kernel all --repeats 5 --warmup 2 --no-cpu \
    --json "$OUT/gru-bench-split.json" > "$OUT/gru-bench-split.txt" 2> "$OUT/gru-bench-split.log"
echo "gru-bench split exit $?" >> "$OUT/gru-bench-split.log"

# gru-bench: every path, both conventions, no CPU reference (too slow for this grid).
WGPU_BACKEND=vulkan timeout 190 "$BENCH" "${GRID[@]}" --convention both --path all --step-kernel all \
    --repeats 5 --warmup 2 --no-cpu --json "$OUT/gru-bench.json" \
    > "$OUT/gru-bench.txt" 2> "$OUT/gru-bench.log"
echo "gru-bench exit $?" >> "$OUT/gru-bench.log"

# PyTorch nn.GRU on cuDNN, same grid (reset-after only: PyTorch has no other convention).
timeout 60 python3 benches/torch_gru.py --device "$TORCH_DEVICE" "${GRID[@]}" --repeats 5 --warmup 2 \
    --json "$OUT/torch.json" > "$OUT/torch.log" 2>&1
echo "torch_gru exit $?" >> "$OUT/torch.log"

"$BENCH" --compare "$OUT/gru-bench.json" "$OUT/torch.json" > "$OUT/compare.txt" 2>&1
"$BENCH" --compare "$OUT/gru-bench-split.json" "$OUT/torch.json" > "$OUT/compare-split.txt" 2>&1

# f16 storage against f32 on a smaller grid (the f16/f32 speed ratio).
WGPU_BACKEND=vulkan timeout 50 "$BENCH" --hidden 256,1024 --batch 1,64 --seq-len 1000 \
    --dtype both --repeats 5 --warmup 2 --no-cpu --json "$OUT/gru-bench-f16.json" \
    > "$OUT/gru-bench-f16.txt" 2> "$OUT/gru-bench-f16.log"
echo "gru-bench f16 exit $?" >> "$OUT/gru-bench-f16.log"

# Training (issue 14): inference forward, training forward and backward per step, gru-bench
# against nn.GRU's autograd on cuDNN, I = H = 256 and 1024, B = 1 and 32, T = 100 (the
# DeepBench-like H = 1024, N = 32 is where cuDNN's own backward/forward is 1.5).
WGPU_BACKEND=vulkan timeout 45 "$BENCH" --backward --hidden 256,1024 --batch 1,32 --seq-len 100 \
    --repeats 5 --warmup 2 --no-cpu --json "$OUT/gru-bench-backward.json" \
    > "$OUT/gru-bench-backward.txt" 2> "$OUT/gru-bench-backward.log"
echo "gru-bench backward exit $?" >> "$OUT/gru-bench-backward.log"
timeout 25 python3 benches/torch_gru.py --backward --device "$TORCH_DEVICE" --hidden 256,1024 \
    --batch 1,32 --seq-len 100 --repeats 5 --warmup 2 --json "$OUT/torch-backward.json" \
    > "$OUT/torch-backward.log" 2>&1
echo "torch_gru backward exit $?" >> "$OUT/torch-backward.log"

# The training step (issue 15): the article's compile (GRU -> Dense(1, sigmoid), binary
# cross-entropy, RMSprop), one GpuTrainer::step per timing, against nn.GRU + nn.Linear with
# RMSprop on cuDNN; the article's model (I = 1, H = 100, B = 128) and I = H = 128…1024.
WGPU_BACKEND=vulkan timeout 40 "$BENCH" --train --no-cpu --hidden 128,256,512,1024 --batch 16,64,256 \
    --seq-len 100 --repeats 5 --warmup 2 --json "$OUT/gru-bench-train.json" \
    > "$OUT/gru-bench-train.txt" 2> "$OUT/gru-bench-train.log"
WGPU_BACKEND=vulkan timeout 10 "$BENCH" --train --no-cpu --input 1 --hidden 100 --batch 128 \
    --seq-len 100 --repeats 5 --warmup 2 --json "$OUT/gru-bench-train-article.json" \
    >> "$OUT/gru-bench-train.txt" 2>> "$OUT/gru-bench-train.log"
echo "gru-bench train exit $?" >> "$OUT/gru-bench-train.log"
timeout 30 python3 benches/torch_gru.py --train --device "$TORCH_DEVICE" --hidden 128,256,512,1024 \
    --batch 16,64,256 --seq-len 100 --repeats 5 --warmup 2 --json "$OUT/torch-train.json" \
    > "$OUT/torch-train.log" 2>&1
timeout 15 python3 benches/torch_gru.py --train --device "$TORCH_DEVICE" --input 1 --hidden 100 \
    --batch 128 --seq-len 100 --repeats 5 --warmup 2 --json "$OUT/torch-train-article.json" \
    >> "$OUT/torch-train.log" 2>&1
echo "torch_gru train exit $?" >> "$OUT/torch-train.log"

# Streaming: an RNNoise-sized model (3 × GRU(384), I = 128) serving 1…1024 streams one frame
# per call, gru-bench's session against nn.GRU with its state kept on the device.
WGPU_BACKEND=vulkan timeout 50 "$BENCH" --streaming --dtype both --frames 50 --warmup 5 \
    --json "$OUT/streaming.json" > "$OUT/streaming.txt" 2> "$OUT/streaming.log"
echo "gru-bench streaming exit $?" >> "$OUT/streaming.log"
timeout 40 python3 benches/torch_gru.py --streaming --device "$TORCH_DEVICE" --frames 50 --warmup 5 \
    --json "$OUT/torch-streaming.json" > "$OUT/torch-streaming.log" 2>&1
echo "torch_gru streaming exit $?" >> "$OUT/torch-streaming.log"

cat "$OUT/nvidia-smi.txt" "$OUT/gru-bench-split.txt" "$OUT/compare-split.txt" \
    "$OUT/gru-bench.txt" "$OUT/compare.txt" "$OUT/gru-bench-f16.txt" \
    "$OUT/gru-bench-backward.txt" "$OUT/torch-backward.log" \
    "$OUT/gru-bench-train.txt" "$OUT/torch-train.log" \
    "$OUT/streaming.txt" "$OUT/torch-streaming.log"
