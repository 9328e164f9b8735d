#!/usr/bin/env bash
# Side-by-side run of gru-bench (Vulkan) and PyTorch nn.GRU (cuDNN) on a lent NVIDIA machine.
#
# Needs only: prebuilt binaries in target/release (carried from the build machine), the
# Vulkan/EGL loader packages in .gl/ (copied from ../shared/gl), and PyTorch with CUDA on the
# GPU machine. Writes everything under $OUT (default ./gpu-compare-out): gru-bench.json,
# torch.json, compare.txt (the ratio table), the logs, and nvidia-smi / vulkan adapter facts.
# Budget: the whole script finishes in under 8 minutes (each step has its own timeout).
#
#   bash benches/gpu_compare.sh            # default grid
#   QUICK=1 bash benches/gpu_compare.sh    # a 1-minute smoke run
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-compare-out}"
mkdir -p "$OUT"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

if [ -d .gl ] && ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi

BENCH=target/release/gru-bench
[ -x "$BENCH" ] || { echo "gpu_compare.sh: $BENCH is missing: cargo build --release first" >&2; exit 1; }

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; } > "$OUT/nvidia-smi.txt"
timeout 60 target/release/gru info > "$OUT/adapters.txt" 2>&1

if [ "${QUICK:-0}" = 1 ]; then
    GRID=(--hidden 256,512 --batch 1,64 --seq-len 100)
else
    GRID=(--hidden 128,256,512,1024 --batch 1,4,16,64 --seq-len 100,1000)
fi

# gru-bench: every path, both conventions, no CPU reference (too slow for this grid).
WGPU_BACKEND=vulkan timeout 300 "$BENCH" "${GRID[@]}" --convention both --path all \
    --repeats 5 --warmup 2 --no-cpu --json "$OUT/gru-bench.json" \
    > "$OUT/gru-bench.txt" 2> "$OUT/gru-bench.log"
echo "gru-bench exit $?" >> "$OUT/gru-bench.log"

# PyTorch nn.GRU on cuDNN, same grid (reset-after only: PyTorch has no other convention).
timeout 150 python3 benches/torch_gru.py --device cuda "${GRID[@]}" --repeats 5 --warmup 2 \
    --json "$OUT/torch.json" > "$OUT/torch.log" 2>&1
echo "torch_gru exit $?" >> "$OUT/torch.log"

"$BENCH" --compare "$OUT/gru-bench.json" "$OUT/torch.json" > "$OUT/compare.txt" 2>&1
cat "$OUT/nvidia-smi.txt" "$OUT/gru-bench.txt" "$OUT/compare.txt"
