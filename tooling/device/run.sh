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
# The NVIDIA Vulkan ICD: the usual path on these machines, else whatever the image has.
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] || icd=$(find / \( -path /proc -o -path /sys \) -prune -o -name 'nvidia_icd*.json' -print 2>/dev/null | head -1)
export VK_DRIVER_FILES=$icd
echo "vulkan ICD: ${icd:-none found}"; [ -n "$icd" ] && cat "$icd"
lib=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['ICD']['library_path'])" "$icd" 2>/dev/null)
[ -n "$lib" ] && { ldconfig -p | grep -F "$(basename "$lib")" || echo "ICD library $lib not found by ldconfig"; }
xz -dc "$dev/node.xz" > /tmp/node && chmod +x /tmp/node
mkdir -p "$dev/bench/node_modules" && tar xJf "$dev/modules.tar.xz" -C "$dev/bench/node_modules"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
for b in "$@"; do
  name=$(echo "${b%% *}" | tr '/' '_')
  echo "== $b ($device)"
  (cd "$dev/bench" && DIFFMIX_DEVICE=$device timeout "${BENCH_TIMEOUT:-240}" /tmp/node $b) > "$OUT/$name.log" 2>&1
  echo "rc=$?"; tail -n 25 "$OUT/$name.log"
done
find "$dev/bench" -path '*bench-results/*.json' -exec cp {} "$OUT/" \;
if [ -f "$root/tooling/device/torch_reference.py" ]; then
  echo "== PyTorch reference"
  timeout "${TORCH_TIMEOUT:-180}" python3 "$root/tooling/device/torch_reference.py" > "$OUT/torch.json" 2> "$OUT/torch.log"; echo "rc=$?"
  cat "$OUT/torch.json"; tail -n 5 "$OUT/torch.log"
fi
