#!/usr/bin/env bash
# Runs on the GPU machine (no Node there): unpacks what pack.sh prepared, then runs each bundled bench
# with the given device and PyTorch's reference on the same card, collecting results under $OUT.
#   bash tooling/device/run.sh webgpu ort-train/bench/run.mjs "classifier/bench/tfjs.mjs --backend webgpu"
# Each argument after the device is a bundled script (relative to .device/bench) with its own flags;
# DIFFMIX_DEVICE is set to the device for every one.
set -uo pipefail
device=${1:-webgpu}; shift || true
root=$(cd "$(dirname "$0")/../.." && pwd)
dev="$root/.device"
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
for f in "$dev"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
# The NVIDIA Vulkan ICD. On these headless machines the image's ICD (library libGLX_nvidia.so.0) fails
# (vkCreateInstance → VK_ERROR_INCOMPATIBLE_DRIVER); pointing the ICD at libEGL_nvidia.so.0 works (found
# on an H100, 2026-11-26). Override with VK_DRIVER_FILES.
if [ -z "${VK_DRIVER_FILES:-}" ]; then
  egl=$(ldconfig -p | awk '/libEGL_nvidia.so.0/ {print $NF; exit}')
  printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.3.0"}}' "${egl:-libEGL_nvidia.so.0}" > /tmp/nvidia_egl_icd.json
  export VK_DRIVER_FILES=/tmp/nvidia_egl_icd.json
fi
echo "vulkan ICD: $VK_DRIVER_FILES"; cat "$VK_DRIVER_FILES"; echo
xz -dc "$dev/node.xz" > /tmp/node && chmod +x /tmp/node
mkdir -p "$dev/bench/node_modules" && tar xJf "$dev/modules.tar.xz" -C "$dev/bench/node_modules"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
for b in "$@"; do
  name=$(echo "${b%% *}" | tr '/' '_')
  echo "== $b ($device)"
  # Benches that compare with PyTorch themselves (lora-finetune/bench/sd15-unet.mjs) find its script here.
  (cd "$dev/bench" && DIFFMIX_TORCH_SCRIPT="$root/tooling/device/torch_sd_unet.py" DIFFMIX_DEVICE=$device timeout "${BENCH_TIMEOUT:-240}" /tmp/node $b) > "$OUT/$name.log" 2>&1
  echo "rc=$?"; tail -n 25 "$OUT/$name.log"
done
find "$dev/bench" -path '*bench-results/*.json' -exec cp {} "$OUT/" \;
if [ -z "${SKIP_TORCH:-}" ] && [ -f "$root/tooling/device/torch_reference.py" ]; then
  echo "== PyTorch reference"
  timeout "${TORCH_TIMEOUT:-180}" python3 "$root/tooling/device/torch_reference.py" > "$OUT/torch.json" 2> "$OUT/torch.log"; echo "rc=$?"
  cat "$OUT/torch.json"; tail -n 5 "$OUT/torch.log"
fi
