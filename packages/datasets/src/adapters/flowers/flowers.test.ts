import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatasetFormatError, InvalidArgumentError, NotFoundError } from '@diffmix/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MatValue, matDouble, writeMat } from '../../mat/index.js';
import { FLOWERS102_CLASS_NAMES, loadFlowers } from './index.js';

let tmp: string;
let jpeg: Buffer;
let counter = 0;

const NAMES = ['pink primrose', 'hard-leaved pocket orchid', 'canterbury bells'];
// 1-based class of image_00001 … image_00010: class 1 has 4 images, classes 2 and 3 have 3.
const LABELS = [1, 1, 2, 3, 2, 1, 3, 2, 3, 1];
const SETID = { trnid: [1, 3, 4], valid: [2, 5, 7], tstid: [6, 8, 9, 10] };

/**
 * The number of images per class of the real dataset, class 1 to 102, counted from the real
 * imagelabels.mat (8,189 images; 40 to 258 per class).
 */
const REAL_CLASS_SIZES = [
  40, 60, 40, 56, 65, 45, 40, 85, 46, 45, 87, 87, 49, 48, 49, 41, 85, 82, 49, 56, 40, 59, 91, 42, 41, 41, 40, 66, 78, 85, 52, 45,
  46, 40, 43, 75, 108, 56, 41, 67, 127, 59, 130, 93, 40, 196, 67, 71, 49, 92, 258, 85, 93, 61, 71, 109, 67, 114, 67, 109, 50, 55,
  54, 52, 102, 61, 42, 54, 54, 62, 78, 96, 194, 171, 120, 107, 251, 137, 41, 105, 166, 112, 131, 86, 63, 58, 63, 154, 184, 82, 76,
  66, 46, 162, 128, 91, 66, 82, 63, 49, 58, 48,
];

interface Fixture {
  labels?: MatValue;
  setid?: Record<string, MatValue> | null;
  imageCount?: number;
  skipImages?: number[];
}

/** A flowers102 folder with imagelabels.mat, setid.mat (compressed, as MATLAB saves them) and jpg/. */
async function makeFlowers(f: Fixture = {}): Promise<string> {
  const root = path.join(tmp, `flowers-${counter++}`);
  await mkdir(path.join(root, 'jpg'), { recursive: true });
  await writeFile(path.join(root, 'imagelabels.mat'), writeMat({ labels: f.labels ?? matDouble(LABELS) }));
  if (f.setid !== null) {
    const setid = f.setid ?? Object.fromEntries(Object.entries(SETID).map(([k, v]) => [k, matDouble(v)]));
    await writeFile(path.join(root, 'setid.mat'), writeMat(setid));
  }
  const count = f.imageCount ?? LABELS.length;
  for (let i = 1; i <= count; i++) {
    if (f.skipImages?.includes(i)) continue;
    await writeFile(path.join(root, 'jpg', `image_${String(i).padStart(5, '0')}.jpg`), jpeg);
  }
  return root;
}

async function rejection<T extends Error>(p: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  const err = await p.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(type);
  return err as T;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'diffmix-flowers-'));
  jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } })
    .jpeg()
    .toBuffer();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loadFlowers, Diff-Mix split (default)', () => {
  it('splits every class 50/50, ⌊n/2⌋ to train, with file records', async () => {
    const root = await makeFlowers();
    const ds = await loadFlowers(root, { classNames: NAMES });
    expect(ds.name).toBe('flower');
    expect(ds.metaclass).toBe('flower');
    expect(ds.root).toBe(root);
    expect(ds.classes).toEqual(NAMES.map((name, id) => ({ id, name })));
    const count = (records: typeof ds.train, label: number) => records.filter((r) => r.label === label).length;
    expect([0, 1, 2].map((c) => count(ds.train, c))).toEqual([2, 1, 1]);
    expect([0, 1, 2].map((c) => count(ds.test, c))).toEqual([2, 2, 2]);
    // Together the two halves are every image exactly once, each with its label.
    const all = [...ds.train, ...ds.test];
    expect(all.map((r) => r.id).sort()).toEqual(LABELS.map((_, i) => `jpg/image_${String(i + 1).padStart(5, '0')}.jpg`));
    for (const r of all) {
      const n = Number(r.id.slice(10, 15));
      expect(r.label).toBe((LABELS[n - 1] as number) - 1);
      expect(r.path).toBe(path.join(root, r.id));
    }
    // Records come class by class.
    expect(ds.train.map((r) => r.label)).toEqual([0, 0, 1, 2]);
  });

  it('is reproducible for a seed and changes with it', async () => {
    const root = await makeFlowers();
    const ids = async (seed: number) => (await loadFlowers(root, { classNames: NAMES, seed })).train.map((r) => r.id);
    expect(await ids(0)).toEqual(await ids(0));
    const seeds = await Promise.all([1, 2, 3, 4, 5].map(ids));
    expect(seeds.some((s) => JSON.stringify(s) !== JSON.stringify(seeds[0]))).toBe(true);
  });

  it('gives 4,070 train / 4,119 test with the real class sizes and the built-in names', async () => {
    const labels = REAL_CLASS_SIZES.flatMap((n, c) => new Array<number>(n).fill(c + 1));
    expect(labels).toHaveLength(8189);
    const root = await makeFlowers({ labels: matDouble(labels), imageCount: 0 });
    const ds = await loadFlowers(root, { checkFiles: false });
    expect(ds.train).toHaveLength(4070);
    expect(ds.test).toHaveLength(4119);
    expect(ds.classes).toHaveLength(102);
    expect(ds.classes[0]).toEqual({ id: 0, name: 'pink primrose' });
    expect(ds.classes[87]).toEqual({ id: 87, name: 'cyclamen' });
    expect(ds.classes[101]).toEqual({ id: 101, name: 'blackberry lily' });
    expect(FLOWERS102_CLASS_NAMES).toHaveLength(102);
    expect(new Set(FLOWERS102_CLASS_NAMES).size).toBe(102);
  });

  it('does not need setid.mat', async () => {
    const root = await makeFlowers({ setid: null });
    await expect(loadFlowers(root, { classNames: NAMES })).resolves.toMatchObject({ name: 'flower' });
  });
});

describe('loadFlowers, official split (setid.mat)', () => {
  it('uses trnid + valid as train and tstid as test by default', async () => {
    const root = await makeFlowers();
    const ds = await loadFlowers(root, { classNames: NAMES, split: 'official' });
    const num = (r: { id: string }) => Number(r.id.slice(10, 15));
    expect(ds.train.map(num)).toEqual([1, 3, 4, 2, 5, 7]);
    expect(ds.test.map(num)).toEqual([6, 8, 9, 10]);
    expect(ds.train.map((r) => r.label)).toEqual([0, 1, 2, 0, 1, 2]);
  });

  it('leaves valid out with includeVal: false', async () => {
    const root = await makeFlowers();
    const ds = await loadFlowers(root, { classNames: NAMES, split: 'official', includeVal: false });
    expect(ds.train.map((r) => r.id)).toEqual(['jpg/image_00001.jpg', 'jpg/image_00003.jpg', 'jpg/image_00004.jpg']);
    expect(ds.test).toHaveLength(4);
  });

  it('does not require the images it leaves out', async () => {
    const root = await makeFlowers({ skipImages: [2, 5, 7] });
    await expect(loadFlowers(root, { classNames: NAMES, split: 'official', includeVal: false })).resolves.toBeDefined();
    await expect(loadFlowers(root, { classNames: NAMES, split: 'official' })).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('loadFlowers, bad input', () => {
  it('reports a missing index file, naming it', async () => {
    const root = await makeFlowers();
    await unlink(path.join(root, 'imagelabels.mat'));
    const e = await rejection(loadFlowers(root, { classNames: NAMES }), NotFoundError);
    expect(e.file).toBe(path.join(root, 'imagelabels.mat'));
    const noSetid = await makeFlowers({ setid: null });
    const e2 = await rejection(loadFlowers(noSetid, { classNames: NAMES, split: 'official' }), NotFoundError);
    expect(e2.file).toBe(path.join(noSetid, 'setid.mat'));
    await expect(loadFlowers(path.join(tmp, 'nowhere'))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('reports a label out of range with the file and the position', async () => {
    const root = await makeFlowers({ labels: matDouble([1, 2, 3, 4, 1, 2, 3, 1, 2, 3]) });
    const e = await rejection(loadFlowers(root, { classNames: NAMES }), DatasetFormatError);
    expect(e.file).toBe(path.join(root, 'imagelabels.mat'));
    expect(e.message).toBe(`${path.join(root, 'imagelabels.mat')}: labels(4) = 4 is outside 1..3 (3 classes)`);
    const zero = await makeFlowers({ labels: matDouble([1, 2, 3, 0, 1, 2, 3, 1, 2, 3]) });
    expect((await rejection(loadFlowers(zero, { classNames: NAMES }), DatasetFormatError)).message).toContain(
      'labels(4) = 0 is outside 1..3',
    );
    const fraction = await makeFlowers({ labels: matDouble([1, 2, 3, 1.5, 1, 2, 3, 1, 2, 3]) });
    expect((await rejection(loadFlowers(fraction, { classNames: NAMES }), DatasetFormatError)).message).toContain(
      'labels(4) = 1.5 is not an integer',
    );
  });

  it('reports a setid index out of range or listed twice', async () => {
    const setid = { trnid: matDouble([1, 3, 4]), valid: matDouble([2, 5, 7]), tstid: matDouble([6, 11]) };
    const root = await makeFlowers({ setid });
    const e = await rejection(loadFlowers(root, { classNames: NAMES, split: 'official' }), DatasetFormatError);
    expect(e.message).toBe(`${path.join(root, 'setid.mat')}: tstid(2) = 11 is outside 1..10 (10 images in imagelabels.mat)`);
    const twice = await makeFlowers({
      setid: { trnid: matDouble([1, 3, 4]), valid: matDouble([2, 5, 7]), tstid: matDouble([6, 3]) },
    });
    expect((await rejection(loadFlowers(twice, { classNames: NAMES, split: 'official' }), DatasetFormatError)).message).toContain(
      'tstid(2) = 3: image 3 is already listed as trnid(2)',
    );
    const missingVar = await makeFlowers({ setid: { trnid: matDouble([1]), tstid: matDouble([2]) } });
    expect(
      (await rejection(loadFlowers(missingVar, { classNames: NAMES, split: 'official' }), DatasetFormatError)).message,
    ).toContain('no variable "valid" (the file has "trnid", "tstid")');
  });

  it('reports an empty class', async () => {
    const root = await makeFlowers({ labels: matDouble([1, 1, 2, 2, 2, 1, 1, 2, 2, 1]) });
    const e = await rejection(loadFlowers(root, { classNames: NAMES }), DatasetFormatError);
    expect(e.message).toBe(`${path.join(root, 'imagelabels.mat')}: class(es) with no images: canterbury bells`);
    const single = await makeFlowers({ labels: matDouble([1, 1, 2, 3, 2, 1, 2, 2, 2, 1]) });
    expect((await rejection(loadFlowers(single, { classNames: NAMES }), DatasetFormatError)).message).toContain(
      'class(es) with fewer than 2 images cannot be split 50/50: canterbury bells',
    );
    // trnid alone misses class 3 (image 4 moved to valid): with includeVal false train has no class 3.
    const noTrain = await makeFlowers({
      setid: { trnid: matDouble([1, 3]), valid: matDouble([2, 4, 5, 7]), tstid: matDouble([6, 8, 9, 10]) },
    });
    const e2 = await rejection(
      loadFlowers(noTrain, { classNames: NAMES, split: 'official', includeVal: false }),
      DatasetFormatError,
    );
    expect(e2.message).toBe(`${path.join(noTrain, 'setid.mat')}: class(es) with no images: canterbury bells`);
  });

  it('reports a missing image file, naming it and where it is listed', async () => {
    const root = await makeFlowers({ skipImages: [3, 9] });
    const e = await rejection(loadFlowers(root, { classNames: NAMES }), NotFoundError);
    expect(e.file).toBe(path.join(root, 'jpg', 'image_00003.jpg'));
    expect(e.message).toBe(
      `${path.join(root, 'jpg', 'image_00003.jpg')}: image listed as labels(3) in ${path.join(root, 'imagelabels.mat')} (and 1 other listed image) not found`,
    );
    await expect(loadFlowers(root, { classNames: NAMES, checkFiles: false })).resolves.toBeDefined();
  });

  it('reports a corrupt or v7.3 label file and bad options', async () => {
    const root = await makeFlowers();
    await writeFile(path.join(root, 'imagelabels.mat'), await readFile(path.join(root, 'setid.mat')));
    expect((await rejection(loadFlowers(root, { classNames: NAMES }), DatasetFormatError)).message).toContain(
      'no variable "labels" (the file has "trnid", "valid", "tstid")',
    );
    const header = Buffer.alloc(600, 0x20);
    header.write('MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .');
    header.writeUInt16LE(0x0200, 124);
    header.write('IM', 126);
    await writeFile(path.join(root, 'imagelabels.mat'), header);
    expect((await rejection(loadFlowers(root, { classNames: NAMES }), DatasetFormatError)).message).toBe(
      `${path.join(root, 'imagelabels.mat')}: MAT v7.3 (HDF5) is not supported; re-save with -v7`,
    );
    await expect(loadFlowers(root, { split: 'random' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(loadFlowers(root, { classNames: ['a', ' '] })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('reports a missing jpg folder', async () => {
    const root = await makeFlowers();
    await rm(path.join(root, 'jpg'), { recursive: true });
    const e = await rejection(loadFlowers(root, { classNames: NAMES }), NotFoundError);
    expect(e.file).toBe(path.join(root, 'jpg'));
  });
});
