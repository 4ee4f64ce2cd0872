/**
 * Test helpers (not exported from the package): where the golden fixtures are, and how to read them.
 *
 * Parity suites read `DIFFMIX_GOLDEN_DIR` when set (a folder laid out like `shared/golden`:
 * `tiny-clip/`, `clip_filter/`), else the copies in `fixtures/golden/`. Cases are discovered by
 * listing / from `clip_filter/reference.json`, never hard-coded.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type NpyArray, parseNpy } from '@diffmix/core';

const here = path.dirname(fileURLToPath(import.meta.url));

export const GOLDEN_DIR = process.env.DIFFMIX_GOLDEN_DIR
  ? path.resolve(process.env.DIFFMIX_GOLDEN_DIR)
  : path.resolve(here, '../../fixtures/golden');
export const TINY_CLIP = path.join(GOLDEN_DIR, 'tiny-clip');
export const CLIP_FILTER = path.join(GOLDEN_DIR, 'clip_filter');

export function npy(file: string): NpyArray {
  return parseNpy(readFileSync(path.join(CLIP_FILTER, file)), file);
}

export function hasNpy(file: string): boolean {
  return existsSync(path.join(CLIP_FILTER, file));
}

/** Rows of a 2-D integer array as number[][]. */
export function intRows(a: NpyArray): number[][] {
  const [n = 0, len = 0] = a.shape;
  return Array.from({ length: n }, (_, i) =>
    Array.from(a.data.subarray(i * len, (i + 1) * len) as ArrayLike<number | bigint>, Number),
  );
}

export interface GoldenReference {
  captions: [string, string];
  primary: string;
  /** Image files relative to clip_filter/, in the row order of pixel_values.npy. */
  images: string[];
}

/** `clip_filter/reference.json`, or (without it) the images listed by name order. */
export function reference(): GoldenReference {
  const file = path.join(CLIP_FILTER, 'reference.json');
  if (existsSync(file)) {
    const r = JSON.parse(readFileSync(file, 'utf8')) as {
      captions: [string, string];
      primary_backend?: string;
      images: Array<{ file: string }>;
    };
    return { captions: r.captions, primary: r.primary_backend ?? 'torchvision', images: r.images.map((i) => i.file) };
  }
  const images = readdirSync(path.join(CLIP_FILTER, 'images'))
    .filter((f) => f.endsWith('.png'))
    .sort((a, b) => Number(/\d+/.exec(a)?.[0] ?? 0) - Number(/\d+/.exec(b)?.[0] ?? 0))
    .map((f) => `images/${f}`);
  return { captions: ['a photo with a bird on it', 'a photo without a bird on it'], primary: 'torchvision', images };
}

/** The backends with stored crops (`crops/crop_<backend>_<i>.png`). */
export function cropBackends(): string[] {
  const dir = path.join(CLIP_FILTER, 'crops');
  if (!existsSync(dir)) return [];
  const set = new Set<string>();
  for (const f of readdirSync(dir)) {
    const m = /^crop_(.+)_(\d+)\.png$/.exec(f);
    if (m) set.add(m[1] as string);
  }
  return [...set].sort();
}

/** The crop of image `file` (e.g. `images/img_3.png`) for a backend. */
export function cropFile(backend: string, imageFile: string): string {
  const index = /(\d+)\.png$/.exec(imageFile)?.[1] ?? '0';
  return path.join(CLIP_FILTER, 'crops', `crop_${backend}_${index}.png`);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

export async function tempDir(prefix = 'diffmix-clip-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
