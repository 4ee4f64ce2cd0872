#!/usr/bin/env bash
# The device tool copies the working tree plus carried paths and refuses more than 64 MiB. The tracked
# tree is ~48 MB, most of it test fixtures and the demo's toy model, which bundled benches never read.
# `slim.sh out` moves them to $ASIDE (default /tmp/diffmix-aside) before a device call; `slim.sh in`
# puts them back. `git status` shows them deleted while they are out: do not commit then.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
aside=${ASIDE:-/tmp/diffmix-aside}
paths=(packages/clip-filter/fixtures packages/diffusion/fixtures packages/ort-train/fixtures packages/classifier/fixtures packages/cli/assets)
case "${1:-}" in
  out)
    for p in "${paths[@]}"; do
      [ -e "$root/$p" ] || continue
      mkdir -p "$aside/$(dirname "$p")"
      mv "$root/$p" "$aside/$p"
    done ;;
  in)
    for p in "${paths[@]}"; do
      [ -e "$aside/$p" ] || continue
      [ -e "$root/$p" ] && { echo "both $root/$p and $aside/$p exist: resolve by hand" >&2; exit 1; }
      mv "$aside/$p" "$root/$p"
    done ;;
  *) echo "usage: $0 out|in" >&2; exit 2 ;;
esac
git -C "$root" ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1
