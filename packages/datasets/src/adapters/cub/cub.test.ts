import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatasetFormatError, NotFoundError } from '@diffmix/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCub } from './index.js';

let tmp: string;
let jpeg: Buffer;
let counter = 0;

const CLASSES = ['001.Black_footed_Albatross', '002.Laysan_Albatross', '003.Sooty_Albatross'];
// [image id, class id (1-based), is_train, relative path]
const IMAGES: Array<[number, number, 0 | 1, string]> = [
  [1, 1, 0, '001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg'],
  [2, 1, 1, '001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg'],
  [3, 2, 1, '002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg'],
  [4, 2, 0, '002.Laysan_Albatross/Laysan_Albatross_0003_1033.jpg'],
  [5, 3, 1, '003.Sooty_Albatross/Sooty_Albatross_0001_1071.jpg'],
  [6, 3, 1, '003.Sooty_Albatross/Sooty_Albatross_0002_796.jpg'],
];

interface Files {
  images?: string;
  labels?: string;
  split?: string;
  classes?: string;
}

/** A CUB_200_2011 tree in the official line formats; `override` replaces whole index files. */
async function makeCub(override: Files = {}, omit: Array<keyof Files> = []): Promise<string> {
  const root = path.join(tmp, `CUB_200_2011-${counter++}`);
  const files: Required<Files> = {
    images: IMAGES.map(([id, , , rel]) => `${id} ${rel}\n`).join(''),
    labels: IMAGES.map(([id, c]) => `${id} ${c}\n`).join(''),
    split: IMAGES.map(([id, , t]) => `${id} ${t}\n`).join(''),
    classes: CLASSES.map((c, i) => `${i + 1} ${c}\n`).join(''),
    ...override,
  };
  await mkdir(path.join(root, 'images'), { recursive: true });
  const names: Record<keyof Files, string> = {
    images: 'images.txt',
    labels: 'image_class_labels.txt',
    split: 'train_test_split.txt',
    classes: 'classes.txt',
  };
  for (const key of Object.keys(names) as Array<keyof Files>) {
    if (!omit.includes(key)) await writeFile(path.join(root, names[key]), files[key]);
  }
  for (const [, , , rel] of IMAGES) {
    await mkdir(path.join(root, 'images', path.dirname(rel)), { recursive: true });
    await writeFile(path.join(root, 'images', rel), jpeg);
  }
  return root;
}

async function formatError(p: Promise<unknown>): Promise<DatasetFormatError> {
  const err = await p.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DatasetFormatError);
  return err as DatasetFormatError;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'diffmix-cub-'));
  jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } })
    .jpeg()
    .toBuffer();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loadCub', () => {
  it('reads the official index files', async () => {
    const root = await makeCub();
    const ds = await loadCub(root);
    expect(ds.name).toBe('cub');
    expect(ds.metaclass).toBe('bird');
    expect(ds.root).toBe(root);
    expect(ds.classes).toEqual([
      { id: 0, name: 'Black footed Albatross', rawName: '001.Black_footed_Albatross' },
      { id: 1, name: 'Laysan Albatross', rawName: '002.Laysan_Albatross' },
      { id: 2, name: 'Sooty Albatross', rawName: '003.Sooty_Albatross' },
    ]);
    expect(ds.train.map((r) => [r.id, r.label])).toEqual([
      ['images/001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg', 0],
      ['images/002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg', 1],
      ['images/003.Sooty_Albatross/Sooty_Albatross_0001_1071.jpg', 2],
      ['images/003.Sooty_Albatross/Sooty_Albatross_0002_796.jpg', 2],
    ]);
    expect(ds.test.map((r) => [r.id, r.label])).toEqual([
      ['images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg', 0],
      ['images/002.Laysan_Albatross/Laysan_Albatross_0003_1033.jpg', 1],
    ]);
    expect(ds.train[0]?.path).toBe(path.join(root, 'images', '001.Black_footed_Albatross', 'Black_Footed_Albatross_0009_34.jpg'));
  });

  it('accepts CRLF line endings and a missing final newline', async () => {
    const root = await makeCub({
      labels: IMAGES.map(([id, c]) => `${id} ${c}`).join('\r\n'),
    });
    const ds = await loadCub(root);
    expect(ds.train).toHaveLength(4);
  });

  it('reads captions from a text_c10-style folder', async () => {
    const root = await makeCub();
    for (const [, , , rel] of IMAGES) {
      const f = path.join(root, 'text_c10', rel.replace(/\.jpg$/, '.txt'));
      await mkdir(path.dirname(f), { recursive: true });
      await writeFile(f, `a bird called ${path.basename(rel)}\nit has wings\n\n`);
    }
    const ds = await loadCub(root, { captionsDir: 'text_c10' });
    expect(ds.train[0]?.caption).toBe('a bird called Black_Footed_Albatross_0009_34.jpg\nit has wings');
    await rm(path.join(root, 'text_c10', IMAGES[5]?.[3].replace(/\.jpg$/, '.txt') as string));
    await expect(loadCub(root, { captionsDir: 'text_c10' })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('names a missing index file', async () => {
    for (const [key, file] of [
      ['images', 'images.txt'],
      ['labels', 'image_class_labels.txt'],
      ['split', 'train_test_split.txt'],
      ['classes', 'classes.txt'],
    ] as const) {
      const root = await makeCub({}, [key]);
      const err = await loadCub(root).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NotFoundError);
      expect((err as NotFoundError).file).toBe(path.join(root, file));
    }
    await expect(loadCub(path.join(tmp, 'nowhere'))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('rejects a label out of range, naming file and line', async () => {
    const root = await makeCub({ labels: '1 1\n2 1\n3 4\n4 2\n5 3\n6 3\n' });
    const err = await formatError(loadCub(root));
    expect(err.file).toBe(`${path.join(root, 'image_class_labels.txt')}:3`);
    expect(err.message).toMatch(/class id 4 out of range 1\.\.3/);
    const zero = await formatError(loadCub(await makeCub({ labels: '1 0\n2 1\n3 2\n4 2\n5 3\n6 3\n' })));
    expect(zero.message).toMatch(/out of range/);
  });

  it('rejects an id missing from another file, naming where it is listed', async () => {
    const root = await makeCub({ split: '1 0\n2 1\n3 1\n4 0\n5 1\n' });
    const err = await formatError(loadCub(root));
    expect(err.file).toBe(`${path.join(root, 'images.txt')}:6`);
    expect(err.message).toContain('image id 6 is missing from');
    expect(err.message).toContain('train_test_split.txt');
  });

  it('rejects an id that images.txt does not list', async () => {
    const root = await makeCub({ labels: '1 1\n2 1\n3 2\n4 2\n5 3\n6 3\n7 1\n' });
    const err = await formatError(loadCub(root));
    expect(err.file).toBe(`${path.join(root, 'image_class_labels.txt')}:7`);
    expect(err.message).toContain('image id 7 is not listed in');
  });

  it('rejects duplicate ids', async () => {
    const root = await makeCub({ split: '1 0\n2 1\n3 1\n4 0\n5 1\n6 1\n2 0\n' });
    const err = await formatError(loadCub(root));
    expect(err.file).toBe(`${path.join(root, 'train_test_split.txt')}:7`);
    expect(err.message).toMatch(/duplicate image id 2 \(first on line 2\)/);
  });

  it('rejects malformed lines, bad flags, class ids out of order and escaping paths', async () => {
    let err = await formatError(loadCub(await makeCub({ labels: '1 1\n2\n' })));
    expect(err.message).toMatch(/expected 2 fields/);
    err = await formatError(loadCub(await makeCub({ split: '1 0\n2 1\n3 1\n4 2\n5 1\n6 1\n' })));
    expect(err.file).toMatch(/train_test_split\.txt:4$/);
    err = await formatError(loadCub(await makeCub({ classes: '1 001.A\n3 003.C\n2 002.B\n' })));
    expect(err.file).toMatch(/classes\.txt:2$/);
    err = await formatError(loadCub(await makeCub({ labels: 'x 1\n' })));
    expect(err.message).toMatch(/image id is not an integer/);
    const escaping = IMAGES.map(([id, , , rel]) => `${id} ${id === 3 ? '../../etc/passwd' : rel}\n`).join('');
    err = await formatError(loadCub(await makeCub({ images: escaping })));
    expect(err.file).toMatch(/images\.txt:3$/);
  });

  it('rejects a class with no training image', async () => {
    const root = await makeCub({ split: '1 0\n2 0\n3 1\n4 0\n5 1\n6 1\n' });
    const err = await formatError(loadCub(root));
    expect(err.file).toBe(path.join(root, 'train_test_split.txt'));
    expect(err.message).toContain('001.Black_footed_Albatross');
  });
});

describe.skipIf(!process.env.DIFFMIX_CUB_ROOT)('loadCub on the real CUB_200_2011 (DIFFMIX_CUB_ROOT)', () => {
  it('has 200 classes, 5,994 train and 5,794 test images', async () => {
    const ds = await loadCub(process.env.DIFFMIX_CUB_ROOT as string);
    expect(ds.classes).toHaveLength(200);
    expect(ds.classes[0]).toEqual({ id: 0, name: 'Black footed Albatross', rawName: '001.Black_footed_Albatross' });
    expect(ds.train).toHaveLength(5994);
    expect(ds.test).toHaveLength(5794);
  });
});
