import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Rng } from '@diffmix/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanClassName } from '../adapters/common.js';
import { decodeImage, decodeRecord } from '../image/index.js';
import { TOY_MAX_CLASSES, toyClasses } from './classes.js';
import { generateToyDataset, type ToyClassesFile, toyImageRng, writeToyDataset } from './generate.js';
import { renderToyImage } from './render.js';

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'diffmix-toy-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('toyClasses', () => {
  it('names classes "<colour>-<pattern> <shape>", pattern fastest, shape slowest', () => {
    const c = toyClasses(TOY_MAX_CLASSES);
    expect(c).toHaveLength(192);
    expect(c[0]).toMatchObject({ id: 0, name: 'red-plain circle', rawName: '000.red-plain_circle' });
    expect(c[1]?.name).toBe('red-striped circle');
    expect(c[5]?.name).toBe('green-striped circle');
    expect(c[32]?.name).toBe('red-plain square');
    expect(c[191]?.name).toBe('white-checkered star');
    expect(new Set(c.map((x) => x.name)).size).toBe(192);
    // Folder names sort in id order and clean back to the class name (ImageFolder adapter).
    const raw = c.map((x) => x.rawName);
    expect([...raw].sort()).toEqual(raw);
    for (const x of c) expect(cleanClassName(x.rawName)).toBe(x.name);
  });

  it('rejects impossible counts', () => {
    expect(() => toyClasses(0)).toThrow(/numClasses/);
    expect(() => toyClasses(193)).toThrow(/numClasses/);
  });
});

describe('renderToyImage', () => {
  const classes = toyClasses(192);

  it('is deterministic and differs between seeds', () => {
    const a = renderToyImage(classes[3]!, toyImageRng(1, 'train', 3, 0));
    const b = renderToyImage(classes[3]!, toyImageRng(1, 'train', 3, 0));
    const c = renderToyImage(classes[3]!, toyImageRng(2, 'train', 3, 0));
    expect(sha256(a.data)).toBe(sha256(b.data));
    expect(sha256(a.data)).not.toBe(sha256(c.data));
    expect([a.width, a.height, a.data.length]).toEqual([64, 64, 64 * 64 * 3]);
  });

  it('classes differ in the details only: same nuisance draws, different class → pixels differ on the object', () => {
    // Same Rng state, classes that differ in one attribute each.
    const base = classes[0]!; // red-plain circle
    const variants = [classes[1]!, classes[4]!, classes[32]!]; // red-striped circle, green-plain circle, red-plain square
    const ref = renderToyImage(base, Rng.fromSeed(11));
    for (const v of variants) {
      const img = renderToyImage(v, Rng.fromSeed(11));
      let changed = 0;
      for (let i = 0; i < img.data.length; i += 3) {
        if (img.data[i] !== ref.data[i] || img.data[i + 1] !== ref.data[i + 1] || img.data[i + 2] !== ref.data[i + 2]) changed++;
      }
      // Something changes, but far from the whole image (background, position, pose are shared).
      expect(changed, v.name).toBeGreaterThan(8);
      expect(changed, v.name).toBeLessThan(0.5 * 64 * 64);
    }
  });

  it('the patch colour is present: the class colour is the most frequent saturated hue on the object', () => {
    // Count pixels close to each patch colour over many images of the green and blue classes.
    const near = (img: { data: Uint8Array }, rgb: readonly number[]) => {
      let n = 0;
      for (let i = 0; i < img.data.length; i += 3) {
        const d =
          Math.abs((img.data[i] as number) - (rgb[0] as number)) +
          Math.abs((img.data[i + 1] as number) - (rgb[1] as number)) +
          Math.abs((img.data[i + 2] as number) - (rgb[2] as number));
        if (d < 60) n++;
      }
      return n;
    };
    const green = [40, 170, 60];
    const blue = [40, 90, 225];
    let ok = 0;
    for (let i = 0; i < 20; i++) {
      const g = renderToyImage(classes[4]!, toyImageRng(0, 'train', 4, i));
      const b = renderToyImage(classes[8]!, toyImageRng(0, 'train', 8, i));
      if (near(g, green) > near(g, blue) && near(b, blue) > near(b, green)) ok++;
    }
    expect(ok).toBeGreaterThanOrEqual(18);
  });

  it('nuisance varies a lot within a class (a real task, not a lookup)', () => {
    const imgs = Array.from({ length: 8 }, (_, i) => renderToyImage(classes[0]!, toyImageRng(0, 'train', 0, i)));
    const mean = (img: { data: Uint8Array }) => img.data.reduce((a, v) => a + v, 0) / img.data.length;
    const means = imgs.map(mean);
    expect(Math.max(...means) - Math.min(...means)).toBeGreaterThan(20);
  });
});

describe('generateToyDataset / writeToyDataset', () => {
  const opts = { numClasses: 6, imagesPerClass: 3, testPerClass: 2, seed: 42 };

  it('builds an in-memory Dataset of PNG bytes, deterministic from the seed', async () => {
    const a = await generateToyDataset(opts);
    expect(a.name).toBe('toy');
    expect(a.metaclass).toBe('object');
    expect(a.classes.map((c) => c.name)).toEqual([
      'red-plain circle',
      'red-striped circle',
      'red-dotted circle',
      'red-checkered circle',
      'green-plain circle',
      'green-striped circle',
    ]);
    expect(a.train).toHaveLength(18);
    expect(a.test).toHaveLength(12);
    expect(a.train[0]).toMatchObject({ id: 'train/000.red-plain_circle/0000.png', label: 0 });
    expect(a.test[11]).toMatchObject({ id: 'test/005.green-striped_circle/0001.png', label: 5 });
    const img = await decodeRecord(a.train[4]!);
    expect([img.width, img.height]).toEqual([64, 64]);

    const b = await generateToyDataset({ ...opts, concurrency: 1 });
    const hashes = (d: typeof a) => [...d.train, ...d.test].map((r) => sha256(r.bytes as Uint8Array));
    expect(hashes(b)).toEqual(hashes(a));
    const c = await generateToyDataset({ ...opts, seed: 43 });
    const hc = hashes(c);
    expect(hashes(a).filter((h, i) => h === hc[i])).toHaveLength(0);
    // All images distinct.
    expect(new Set(hashes(a)).size).toBe(30);
  });

  it('an image depends only on (seed, split, class, index), not on how many are generated', async () => {
    const small = await generateToyDataset({ ...opts, numClasses: 2, imagesPerClass: 1, testPerClass: 0 });
    const big = await generateToyDataset(opts);
    expect(sha256(small.train[1]!.bytes as Uint8Array)).toBe(sha256(big.train[3]!.bytes as Uint8Array));
  });

  it('honours size', async () => {
    const d = await generateToyDataset({ numClasses: 1, imagesPerClass: 1, testPerClass: 0, seed: 0, size: 32 });
    const img = await decodeImage(d.train[0]!.bytes as Uint8Array);
    expect([img.width, img.height]).toEqual([32, 32]);
  });

  it('writes an ImageFolder tree + classes.json with the same bytes as in memory', async () => {
    const root = path.join(dir, 'toy');
    const d = await writeToyDataset(root, opts);
    expect((await readdir(path.join(root, 'train'))).sort()).toEqual(d.classes.map((c) => c.rawName));
    expect((await readdir(path.join(root, 'test', '002.red-dotted_circle'))).sort()).toEqual(['0000.png', '0001.png']);
    const meta = JSON.parse(await readFile(path.join(root, 'classes.json'), 'utf8')) as ToyClassesFile;
    expect(meta).toMatchObject({ name: 'toy', metaclass: 'object', seed: '42', size: 64, imagesPerClass: 3, testPerClass: 2 });
    expect(meta.classes.map((c) => c.name)).toEqual(d.classes.map((c) => c.name));
    const mem = await generateToyDataset(opts);
    for (const [i, r] of d.train.entries()) {
      expect(r.path).toBe(path.join(root, ...r.id.split('/')));
      expect(sha256(await readFile(r.path as string))).toBe(sha256(mem.train[i]!.bytes as Uint8Array));
    }
  });

  it('validates counts', async () => {
    await expect(generateToyDataset({ ...opts, imagesPerClass: -1 })).rejects.toThrow(/imagesPerClass/);
  });
});
