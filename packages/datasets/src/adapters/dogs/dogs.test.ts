import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatasetFormatError, NotFoundError } from '@diffmix/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matCell, matChar, matDouble, writeMat } from '../../mat/index.js';
import { dogClassName, loadDogs } from './index.js';

let tmp: string;
let jpeg: Buffer;
let counter = 0;

const FOLDERS = ['n02085620-Chihuahua', 'n02085782-Japanese_spaniel', 'n02085936-Maltese_dog'];
// [1-based label, file under Images/]
const TRAIN: Array<[number, string]> = [
  [1, 'n02085620-Chihuahua/n02085620_5927.jpg'],
  [1, 'n02085620-Chihuahua/n02085620_4441.jpg'],
  [2, 'n02085782-Japanese_spaniel/n02085782_2874.jpg'],
  [2, 'n02085782-Japanese_spaniel/n02085782_17.jpg'],
  [3, 'n02085936-Maltese_dog/n02085936_10073.jpg'],
  [3, 'n02085936-Maltese_dog/n02085936_233.jpg'],
];
const TEST: Array<[number, string]> = [
  [1, 'n02085620-Chihuahua/n02085620_2650.jpg'],
  [2, 'n02085782-Japanese_spaniel/n02085782_1059.jpg'],
  [3, 'n02085936-Maltese_dog/n02085936_4245.jpg'],
];

/** A list file as lists.tar has it: N×1 cells `file_list` and `annotation_list`, N×1 double `labels`. */
function listMat(rows: Array<[number, string]>): Uint8Array {
  const n = rows.length;
  return writeMat({
    file_list: matCell(
      rows.map(([, f]) => matChar(f)),
      [n, 1],
    ),
    annotation_list: matCell(
      rows.map(([, f]) => matChar(f.replace(/\.jpg$/, ''))),
      [n, 1],
    ),
    labels: matDouble(
      rows.map(([l]) => l),
      [n, 1],
    ),
  });
}

interface Layout {
  listDir?: string;
  imagesDir?: string;
  train?: Array<[number, string]>;
  test?: Array<[number, string]>;
  omit?: Array<'train' | 'test'>;
  skipImages?: string[];
}

async function makeDogs(l: Layout = {}): Promise<string> {
  const root = path.join(tmp, `dogs-${counter++}`);
  const listDir = path.join(root, l.listDir ?? '');
  await mkdir(listDir, { recursive: true });
  if (!l.omit?.includes('train')) await writeFile(path.join(listDir, 'train_list.mat'), listMat(l.train ?? TRAIN));
  if (!l.omit?.includes('test')) await writeFile(path.join(listDir, 'test_list.mat'), listMat(l.test ?? TEST));
  const images = path.join(root, l.imagesDir ?? 'Images');
  for (const folder of FOLDERS) await mkdir(path.join(images, folder), { recursive: true });
  for (const [, f] of [...(l.train ?? TRAIN), ...(l.test ?? TEST)]) {
    if (!l.skipImages?.includes(f)) await writeFile(path.join(images, f), jpeg);
  }
  return root;
}

async function rejection<T extends Error>(p: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  const err = await p.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(type);
  return err as T;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'diffmix-dogs-'));
  jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } })
    .jpeg()
    .toBuffer();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loadDogs', () => {
  it('reads the official lists, naming classes after their folders', async () => {
    const root = await makeDogs();
    const ds = await loadDogs(root);
    expect(ds.name).toBe('dog');
    expect(ds.metaclass).toBe('dog');
    expect(ds.root).toBe(root);
    expect(ds.classes).toEqual([
      { id: 0, name: 'Chihuahua', rawName: 'n02085620-Chihuahua' },
      { id: 1, name: 'Japanese spaniel', rawName: 'n02085782-Japanese_spaniel' },
      { id: 2, name: 'Maltese dog', rawName: 'n02085936-Maltese_dog' },
    ]);
    expect(ds.train.map((r) => [r.id, r.label])).toEqual(TRAIN.map(([l, f]) => [`Images/${f}`, l - 1]));
    expect(ds.test.map((r) => [r.id, r.label])).toEqual(TEST.map(([l, f]) => [`Images/${f}`, l - 1]));
    expect(ds.test[0]?.path).toBe(path.join(root, 'Images', 'n02085620-Chihuahua', 'n02085620_2650.jpg'));
  });

  it('finds lists in lists/ and images in images/Images/ (Kaggle copy)', async () => {
    const root = await makeDogs({ listDir: 'lists', imagesDir: 'images/Images' });
    const ds = await loadDogs(root);
    expect(ds.train[0]?.id).toBe('images/Images/n02085620-Chihuahua/n02085620_5927.jpg');
    expect(ds.test).toHaveLength(3);
  });

  it('cleans folder names the way the Diff-Mix class list spells them', () => {
    expect(dogClassName('n02085620-Chihuahua')).toBe('Chihuahua');
    expect(dogClassName('n02085782-Japanese_spaniel')).toBe('Japanese spaniel');
    expect(dogClassName('n02086240-Shih-Tzu')).toBe('Shih-Tzu');
    expect(dogClassName('n02089078-black-and-tan_coonhound')).toBe('black-and-tan coonhound');
  });
});

describe('loadDogs, bad input', () => {
  it('reports a missing list file, saying where it looked', async () => {
    const root = await makeDogs({ omit: ['test'] });
    const e = await rejection(loadDogs(root), NotFoundError);
    expect(e.message).toBe(`${root}: Stanford Dogs list test_list.mat (looked for test_list.mat, lists/test_list.mat) not found`);
    await expect(loadDogs(path.join(tmp, 'nowhere'))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('reports labels out of range with the file and the position', async () => {
    const root = await makeDogs({ test: [TEST[0] as [number, string], [4, 'n02085782-Japanese_spaniel/n02085782_1059.jpg']] });
    const e = await rejection(loadDogs(root), DatasetFormatError);
    expect(e.file).toBe(path.join(root, 'test_list.mat'));
    expect(e.message).toBe(
      `${path.join(root, 'test_list.mat')}: labels(2) = 4 is outside 1..3 (the labels of ${path.join(root, 'train_list.mat')})`,
    );
    const zero = await makeDogs({ train: [[0, TRAIN[0]?.[1] as string], ...TRAIN.slice(1)] });
    expect((await rejection(loadDogs(zero), DatasetFormatError)).message).toBe(
      `${path.join(zero, 'train_list.mat')}: labels(1) = 0 is outside 1..6 (there are 6 training images)`,
    );
  });

  it('reports a file whose folder does not match its label', async () => {
    const root = await makeDogs({ train: [...TRAIN.slice(0, 5), [1, 'n02085936-Maltese_dog/n02085936_233.jpg']] });
    const e = await rejection(loadDogs(root), DatasetFormatError);
    expect(e.message).toBe(
      `${path.join(root, 'train_list.mat')}: file_list(6) = "n02085936-Maltese_dog/n02085936_233.jpg" has label 1, whose images are in "n02085620-Chihuahua" (file_list(1))`,
    );
    const test = await makeDogs({ test: [[2, 'n02085620-Chihuahua/n02085620_2650.jpg']] });
    expect((await rejection(loadDogs(test), DatasetFormatError)).message).toContain(
      'test_list.mat: file_list(1) = "n02085620-Chihuahua/n02085620_2650.jpg" has label 2, whose images are in "n02085782-Japanese_spaniel"',
    );
  });

  it('reports an empty class', async () => {
    // Label 2 never occurs in the training list.
    const root = await makeDogs({ train: TRAIN.filter(([l]) => l !== 2), test: [TEST[0] as [number, string]] });
    const e = await rejection(loadDogs(root), DatasetFormatError);
    expect(e.message).toBe(`${path.join(root, 'train_list.mat')}: class(es) with no images: class 2`);
  });

  it('reports a missing image file, naming it and where it is listed', async () => {
    const root = await makeDogs({ skipImages: ['n02085782-Japanese_spaniel/n02085782_17.jpg'] });
    const e = await rejection(loadDogs(root), NotFoundError);
    expect(e.file).toBe(path.join(root, 'Images', 'n02085782-Japanese_spaniel', 'n02085782_17.jpg'));
    expect(e.message).toContain(`image listed as file_list(4) in ${path.join(root, 'train_list.mat')}`);
    await expect(loadDogs(root, { checkFiles: false })).resolves.toBeDefined();
  });

  it('reports lists whose variables disagree or are missing', async () => {
    const root = await makeDogs();
    await writeFile(
      path.join(root, 'test_list.mat'),
      writeMat({ file_list: matCell([matChar('n02085620-Chihuahua/a.jpg')], [1, 1]), labels: matDouble([1, 2], [2, 1]) }),
    );
    expect((await rejection(loadDogs(root), DatasetFormatError)).message).toBe(
      `${path.join(root, 'test_list.mat')}: file_list has 1 entries but labels has 2`,
    );
    await writeFile(path.join(root, 'test_list.mat'), writeMat({ labels: matDouble([1]) }));
    expect((await rejection(loadDogs(root), DatasetFormatError)).message).toContain(
      'no variable "file_list" (the file has "labels")',
    );
  });
});
