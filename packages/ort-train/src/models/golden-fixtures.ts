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

/** max |a − b| */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
}
