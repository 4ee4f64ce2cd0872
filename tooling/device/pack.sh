#!/usr/bin/env bash
# Packs what a GPU-machine run needs into .device/ (ignored by git): the Node binary, onnxruntime-node
# (linux-x64 binaries only), libvulkan, optional extra node_modules, and the bench scripts bundled by
# esbuild into single files (every @diffmix package and pure-JS dependency inlined; native addons
# stay external and come from the packed node_modules). See docs/gpu.md and ../shared/device/README.md.
#
#   tooling/device/pack.sh packages/ort-train/bench/run.mjs packages/classifier/bench/tfjs.mjs ...
#   EXTRA_MODULES="webgpu @tensorflow/tfjs-core @tensorflow/tfjs-backend-webgpu" tooling/device/pack.sh ...
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dev="$root/.device"
mkdir -p "$dev/gl" "$dev/bench"
cd "$root"

[ -f "$dev/node.xz" ] || xz -T2 -c "$(command -v node)" > "$dev/node.xz"
if ! ls "$dev"/gl/libvulkan1_*.deb >/dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update >/dev/null && (cd "$dev/gl" && apt-get $o download libvulkan1)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/onnxruntime-node/bin/napi-v6/linux"
cp -r node_modules/onnxruntime-node/package.json node_modules/onnxruntime-node/dist "$tmp/onnxruntime-node/"
cp -r node_modules/onnxruntime-node/bin/napi-v6/linux/x64 "$tmp/onnxruntime-node/bin/napi-v6/linux/"
cp -r node_modules/onnxruntime-common "$tmp/"
for m in ${EXTRA_MODULES:-}; do
  mkdir -p "$tmp/$(dirname "$m")"
  cp -r "node_modules/$m" "$tmp/$m"
  # Keep linux-x64 binaries only (the webgpu package ships every platform).
  find "$tmp/$m" -type d \( -name 'darwin*' -o -name 'win32*' -o -name '*arm64*' \) -prune -exec rm -rf {} +
done
# A prepared node_modules folder to merge (e.g. the optional tfjs webgpu backend, pruned to the
# files Node loads: see docs/gpu.md).
if [ -n "${EXTRA_NODE_MODULES:-}" ]; then cp -r "$EXTRA_NODE_MODULES"/. "$tmp"/; fi
(cd "$tmp" && tar cf - .) | xz -T2 -6 > "$dev/modules.tar.xz"

externals=(--external:onnxruntime-node --external:onnxruntime-common --external:sharp --external:webgpu '--external:@tensorflow/*')
for entry in "$@"; do
  rel=${entry#packages/}
  node_modules/.bin/esbuild "$entry" --bundle --platform=node --format=esm --target=node20 \
    --outfile="$dev/bench/$rel" "${externals[@]}" \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" --log-level=warning
done
du -sh "$dev"/* | sort -h
