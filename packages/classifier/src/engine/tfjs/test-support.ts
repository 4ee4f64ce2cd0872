/**
 * Test support for the tfjs engine: the golden fixtures. `DIFFMIX_GOLDEN_DIR` (a folder shaped like
 * `shared/golden`) when set, else the copies that `@diffmix/ort-train` keeps in its
 * `fixtures/golden` (see its PROVENANCE.md; not copied a second time into this package).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseNpy, parseSafetensors } from '@diffmix/core';
import { buildSpecSafetensors, type WeightsSpec } from '@diffmix/ort-train';
import type { ModelState } from '../types.js';

export function goldenDir(): string {
  return process.env.DIFFMIX_GOLDEN_DIR ?? fileURLToPath(new URL('../../../../ort-train/fixtures/golden', import.meta.url));
}

export function goldenF32(...parts: string[]): Float32Array {
  const p = join(goldenDir(), ...parts);
  return parseNpy(readFileSync(p), p).data as Float32Array;
}

export function goldenJson<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(join(goldenDir(), ...parts), 'utf8')) as T;
}

/** torchvision ResNet weights rebuilt from `resnet/weights_spec.json` (sha256-checked), as a state. */
export function goldenResnetState(arch: 'resnet18' | 'resnet50'): ModelState {
  const spec = goldenJson<WeightsSpec>('resnet', 'weights_spec.json');
  const file = parseSafetensors(buildSpecSafetensors(spec, arch), `${arch}.safetensors`);
  const out: ModelState = new Map();
  // num_batches_tracked is int64 and not part of the engine state.
  for (const k of file.keys()) if (!k.endsWith('num_batches_tracked')) out.set(k, file.float32(k, { copy: true }));
  return out;
}

export { maxAbs, maxAbsDiff } from '@diffmix/tooling/testing';
