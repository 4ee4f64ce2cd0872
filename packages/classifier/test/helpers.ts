import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dataset } from '@diffmix/core';
import { generateToyDataset } from '@diffmix/datasets';

export const tempDir = (tag: string) => mkdtemp(join(tmpdir(), `diffmix-classifier-${tag}-`));

const cache = new Map<string, Promise<Dataset>>();
/** A small toy dataset (cached per parameters within a test file). */
export function toy(numClasses: number, imagesPerClass: number, testPerClass: number, size = 40, seed = 1): Promise<Dataset> {
  const key = [numClasses, imagesPerClass, testPerClass, size, seed].join('/');
  let d = cache.get(key);
  if (!d) {
    d = generateToyDataset({ numClasses, imagesPerClass, testPerClass, size, seed });
    cache.set(key, d);
  }
  return d;
}
