import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatasetFormatError, NotFoundError } from '@diffmix/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MatValue, matCell, matChar, matDouble, matStruct, writeMat } from '../../mat/index.js';
import { loadCars } from './index.js';

let tmp: string;
let jpeg: Buffer;
let counter = 0;

const CLASS_NAMES = ['AM General Hummer SUV 2000', 'Ram C/V Cargo Van Minivan 2012', 'smart fortwo Convertible 2012'];
// [1-based class, file name]
const TRAIN: Array<[number, string]> = [
  [1, '00001.jpg'],
  [2, '00002.jpg'],
  [3, '00003.jpg'],
  [1, '00004.jpg'],
  [3, '00005.jpg'],
];
const TEST: Array<[number, string]> = [
  [2, '00001.jpg'],
  [1, '00002.jpg'],
  [3, '00003.jpg'],
  [3, '00004.jpg'],
];

/** The devkit's `annotations` struct array, fields in the devkit's order. */
function annotations(rows: Array<[number, string]>, withClass = true): MatValue {
  return matStruct(
    rows.map(([cls, fname], i) => ({
      bbox_x1: matDouble([10 + i]),
      bbox_y1: matDouble([20]),
      bbox_x2: matDouble([300 + i]),
      bbox_y2: matDouble([200]),
      ...(withClass ? { class: matDouble([cls]) } : {}),
      fname: matChar(fname),
    })),
  );
}

interface Layout {
  meta?: string | null;
  trainAnnos?: string | null;
  testAnnos?: string | null;
  trainDir?: string;
  testDir?: string;
  train?: Array<[number, string]>;
  test?: Array<[number, string]>;
  classNames?: string[];
  skipImages?: string[];
  extra?: Record<string, Uint8Array>;
}

async function put(root: string, rel: string, bytes: Uint8Array | Buffer): Promise<void> {
  await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
  await writeFile(path.join(root, rel), bytes);
}

/** A Stanford Cars folder in the devkit layout (paths overridable for the alternative layouts). */
async function makeCars(l: Layout = {}): Promise<string> {
  const root = path.join(tmp, `cars-${counter++}`);
  await mkdir(root, { recursive: true });
  const meta = l.meta === undefined ? 'devkit/cars_meta.mat' : l.meta;
  const trainAnnos = l.trainAnnos === undefined ? 'devkit/cars_train_annos.mat' : l.trainAnnos;
  const testAnnos = l.testAnnos === undefined ? 'cars_test_annos_withlabels.mat' : l.testAnnos;
  if (meta) await put(root, meta, writeMat({ class_names: matCell((l.classNames ?? CLASS_NAMES).map((n) => matChar(n))) }));
  if (trainAnnos) await put(root, trainAnnos, writeMat({ annotations: annotations(l.train ?? TRAIN) }));
  if (testAnnos) await put(root, testAnnos, writeMat({ annotations: annotations(l.test ?? TEST) }));
  for (const [dir, rows] of [
    [l.trainDir ?? 'cars_train', l.train ?? TRAIN],
    [l.testDir ?? 'cars_test', l.test ?? TEST],
  ] as const) {
    await mkdir(path.join(root, dir), { recursive: true });
    for (const [, fname] of rows) {
      const rel = `${dir}/${fname}`;
      if (!l.skipImages?.includes(rel)) await put(root, rel, jpeg);
    }
  }
  for (const [rel, bytes] of Object.entries(l.extra ?? {})) await put(root, rel, bytes);
  return root;
}

async function rejection<T extends Error>(p: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  const err = await p.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(type);
  return err as T;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'diffmix-cars-'));
  jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } })
    .jpeg()
    .toBuffer();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loadCars', () => {
  it('reads the devkit layout with the labelled test annotations', async () => {
    const root = await makeCars();
    const ds = await loadCars(root);
    expect(ds.name).toBe('car');
    expect(ds.metaclass).toBe('car');
    expect(ds.root).toBe(root);
    expect(ds.classes).toEqual([
      { id: 0, name: 'AM General Hummer SUV 2000' },
      { id: 1, name: 'Ram C V Cargo Van Minivan 2012', rawName: 'Ram C/V Cargo Van Minivan 2012' },
      { id: 2, name: 'smart fortwo Convertible 2012' },
    ]);
    expect(ds.train.map((r) => [r.id, r.label])).toEqual(TRAIN.map(([c, f]) => [`cars_train/${f}`, c - 1]));
    expect(ds.test.map((r) => [r.id, r.label])).toEqual(TEST.map(([c, f]) => [`cars_test/${f}`, c - 1]));
    expect(ds.train[0]?.path).toBe(path.join(root, 'cars_train', '00001.jpg'));
  });

  it('finds the files in the common alternative layouts', async () => {
    // torchvision's instructions put the test labels in devkit/; the Kaggle copy nests the image folders.
    const a = await makeCars({
      testAnnos: 'devkit/cars_test_annos_withlabels.mat',
      trainDir: 'cars_train/cars_train',
      testDir: 'cars_test/cars_test',
    });
    const da = await loadCars(a);
    expect(da.train[0]?.id).toBe('cars_train/cars_train/00001.jpg');
    expect(da.test).toHaveLength(4);
    // car_devkit.tgz unpacked as is.
    const b = await makeCars({
      meta: 'car_devkit/devkit/cars_meta.mat',
      trainAnnos: 'car_devkit/devkit/cars_train_annos.mat',
      testAnnos: 'car_devkit/devkit/cars_test_annos_withlabels.mat',
    });
    expect((await loadCars(b)).train).toHaveLength(5);
    // Everything flat in the root.
    const c = await makeCars({ meta: 'cars_meta.mat', trainAnnos: 'cars_train_annos.mat' });
    expect((await loadCars(c)).classes).toHaveLength(3);
  });

  it('reads the all-in-one layout (cars_annos.mat + car_ims/)', async () => {
    const root = await makeCars({ meta: null, trainAnnos: null, testAnnos: null, train: [], test: [] });
    const rows: Array<[number, number]> = [
      [1, 0],
      [2, 0],
      [3, 0],
      [2, 1],
    ];
    const annos = matStruct(
      rows.map(([cls, test], i) => ({
        relative_im_path: matChar(`car_ims/00000${i + 1}.jpg`),
        bbox_x1: matDouble([1]),
        bbox_y1: matDouble([1]),
        bbox_x2: matDouble([5]),
        bbox_y2: matDouble([5]),
        class: matDouble([cls]),
        test: matDouble([test]),
      })),
    );
    await put(root, 'cars_annos.mat', writeMat({ annotations: annos, class_names: matCell(CLASS_NAMES.map((n) => matChar(n))) }));
    for (let i = 1; i <= 4; i++) await put(root, `car_ims/00000${i}.jpg`, jpeg);
    const ds = await loadCars(root);
    expect(ds.train.map((r) => [r.id, r.label])).toEqual([
      ['car_ims/000001.jpg', 0],
      ['car_ims/000002.jpg', 1],
      ['car_ims/000003.jpg', 2],
    ]);
    expect(ds.test.map((r) => r.id)).toEqual(['car_ims/000004.jpg']);
  });
});

describe('loadCars, bad input', () => {
  it('says where it looked for a missing index file', async () => {
    const noMeta = await makeCars({ meta: null });
    const e = await rejection(loadCars(noMeta), NotFoundError);
    expect(e.message).toBe(
      `${noMeta}: Stanford Cars class list (looked for devkit/cars_meta.mat, car_devkit/devkit/cars_meta.mat, cars_meta.mat; or cars_annos.mat with car_ims/) not found`,
    );
    const noTrain = await makeCars({ trainAnnos: null });
    expect((await rejection(loadCars(noTrain), NotFoundError)).message).toContain(
      'Stanford Cars train annotations (looked for devkit/cars_train_annos.mat',
    );
  });

  it('explains that the unlabelled devkit test annotations are not enough', async () => {
    const root = await makeCars({
      testAnnos: null,
      extra: { 'devkit/cars_test_annos.mat': writeMat({ annotations: annotations(TEST, false) }) },
    });
    const e = await rejection(loadCars(root), NotFoundError);
    expect(e.message).toContain(
      'Stanford Cars test annotations with labels (looked for cars_test_annos_withlabels.mat, devkit/cars_test_annos_withlabels.mat',
    );
    expect(e.message).toContain(
      `${path.join('devkit', 'cars_test_annos.mat')} has no class labels; download cars_test_annos_withlabels.mat`,
    );
    // The same file renamed to the labelled name still lacks the field: say so.
    const renamed = await makeCars({
      testAnnos: null,
      extra: { 'cars_test_annos_withlabels.mat': writeMat({ annotations: annotations(TEST, false) }) },
    });
    expect((await rejection(loadCars(renamed), DatasetFormatError)).message).toBe(
      `${path.join(renamed, 'cars_test_annos_withlabels.mat')}: annotations: struct has no field "class" (its fields: bbox_x1, bbox_y1, bbox_x2, bbox_y2, fname)`,
    );
  });

  it('reports a class out of range with the file and the annotation', async () => {
    const root = await makeCars({ train: [...TRAIN.slice(0, 4), [4, '00005.jpg']] });
    const e = await rejection(loadCars(root), DatasetFormatError);
    expect(e.file).toBe(path.join(root, 'devkit', 'cars_train_annos.mat'));
    expect(e.message).toBe(
      `${path.join(root, 'devkit', 'cars_train_annos.mat')}: annotations(5).class = 4 is outside 1..3 (the classes of ${path.join(root, 'devkit', 'cars_meta.mat')})`,
    );
    const test = await makeCars({ test: [[0, '00001.jpg']] });
    expect((await rejection(loadCars(test), DatasetFormatError)).message).toContain(
      'cars_test_annos_withlabels.mat: annotations(1).class = 0 is outside 1..3',
    );
  });

  it('reports an empty class', async () => {
    const root = await makeCars({ train: TRAIN.filter(([c]) => c !== 2) });
    const e = await rejection(loadCars(root), DatasetFormatError);
    expect(e.message).toBe(
      `${path.join(root, 'devkit', 'cars_train_annos.mat')}: class(es) with no images: Ram C V Cargo Van Minivan 2012`,
    );
  });

  it('reports a missing image, an escaping path and a missing image folder', async () => {
    const root = await makeCars({ skipImages: ['cars_test/00003.jpg'] });
    const e = await rejection(loadCars(root), NotFoundError);
    expect(e.file).toBe(path.join(root, 'cars_test', '00003.jpg'));
    expect(e.message).toContain(`image listed as annotations(3) in ${path.join(root, 'cars_test_annos_withlabels.mat')}`);
    await expect(loadCars(root, { checkFiles: false })).resolves.toBeDefined();

    const escaping = await makeCars({
      train: [...TRAIN.slice(0, 4), [3, '../secret.jpg']],
      skipImages: ['cars_train/../secret.jpg'],
    });
    expect((await rejection(loadCars(escaping), DatasetFormatError)).message).toContain(
      'annotations(5).fname = "../secret.jpg" is not a path inside',
    );

    const noImages = await makeCars();
    await rm(path.join(noImages, 'cars_test'), { recursive: true });
    expect((await rejection(loadCars(noImages), NotFoundError)).message).toBe(
      `${noImages}: Stanford Cars test images folder (looked for cars_test/cars_test/, cars_test/) not found`,
    );
  });

  it('reports a class list that is not a cell of names', async () => {
    const root = await makeCars({
      meta: null,
      extra: { 'devkit/cars_meta.mat': writeMat({ class_names: matDouble([1, 2, 3]) }) },
    });
    expect((await rejection(loadCars(root), DatasetFormatError)).message).toContain(
      'class_names: expected a cell array of char or a char matrix, found 1×3 double',
    );
  });
});
