/** Locating and reading the golden parity fixtures (DIFFMIX_GOLDEN_DIR or the copies in fixtures/golden). */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type NpyArray, parseNpy } from '@diffmix/core';

export const GOLDEN_DIR = process.env.DIFFMIX_GOLDEN_DIR
  ? path.resolve(process.env.DIFFMIX_GOLDEN_DIR)
  : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/golden');

export function goldenPath(...parts: string[]): string {
  return path.join(GOLDEN_DIR, ...parts);
}

export function readNpy(...parts: string[]): NpyArray {
  const file = goldenPath(...parts);
  return parseNpy(readFileSync(file), file);
}

export function readJson<T = Record<string, unknown>>(...parts: string[]): T {
  return JSON.parse(readFileSync(goldenPath(...parts), 'utf8')) as T;
}

/** Sub-folders of a golden folder (e.g. every `img2img/<case>`), sorted; [] if absent. */
export function listCases(...parts: string[]): string[] {
  const dir = goldenPath(...parts);
  try {
    return readdirSync(dir)
      .filter((d) => statSync(path.join(dir, d)).isDirectory())
      .sort();
  } catch {
    return [];
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}
