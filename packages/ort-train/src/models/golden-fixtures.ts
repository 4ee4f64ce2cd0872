/**
 * Test support: the golden fixture folder. `DIFFMIX_GOLDEN_DIR` (a folder shaped like
 * `shared/golden`) when set, else the copies in this package's `fixtures/golden` (see its PROVENANCE.md).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type NpyArray, parseNpy } from '@diffmix/core';

export function goldenDir(): string {
  return process.env.DIFFMIX_GOLDEN_DIR ?? fileURLToPath(new URL('../../fixtures/golden', import.meta.url));
}

export function goldenPath(...parts: string[]): string {
  return join(goldenDir(), ...parts);
}

export function readGoldenNpy(...parts: string[]): NpyArray {
  const p = goldenPath(...parts);
  return parseNpy(readFileSync(p), p);
}

export function readGoldenF32(...parts: string[]): Float32Array {
  return readGoldenNpy(...parts).data as Float32Array;
}

export function readGoldenJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(readFileSync(goldenPath(...parts), 'utf8')) as T;
}

export { maxAbs, maxAbsDiff } from '@diffmix/tooling/testing';
