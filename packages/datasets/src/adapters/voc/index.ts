/**
 * Pascal VOC 2012 as a 20-class, one-label-per-image classification set, built the way DA-Fusion
 * (`semantic_aug/datasets/pascal.py`) and Diff-Mix (`dataset/instance/pascal.py`) build it:
 *
 * - train = `ImageSets/Segmentation/train.txt` (1,464 images), test = `.../val.txt` (1,449);
 *   images `JPEGImages/<id>.jpg`.
 * - Label ('largest-instance' rule, the default): take `SegmentationObject/<id>.png` as instance
 *   indices; over its distinct values in ascending order (numpy `np.unique`) zero the pixel counts
 *   of the first and the last value (meant as background 0 and void 255); pick the value with the
 *   largest remaining count (first one on ties, numpy `argmax`); the label is the
 *   `SegmentationClass/<id>.png` index at that value's first pixel in row-major order, minus 1.
 *   As in Python, an index of 0 there gives -1, which wraps to the last class ('television'); a
 *   value above 20 is an error (Python raises IndexError).
 * - Alternatively 'majority-class': the most frequent class index 1..20 in `SegmentationClass`
 *   (lowest index on ties); needs no `SegmentationObject` folder.
 *
 * Class names are DA-Fusion's (`airplane`, …, `television`); the VOC spelling (`aeroplane`,
 * `tvmonitor`, …) is kept in `rawName` where it differs. Records keep the image-set file order
 * (DA-Fusion groups them by class and shuffles within a class; the set is the same).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type ClassInfo,
  type Dataset,
  DatasetFormatError,
  type FileRecord,
  InvalidArgumentError,
  NotFoundError,
  resolveInside,
} from '@diffmix/core';
import { readTextFile, requireDirectory } from '../common.js';
import { decodeIndexMask, type IndexMask } from './mask.js';

export { decodeIndexMask, type IndexMask, vocColormap } from './mask.js';

/** DA-Fusion's class names, in VOC index order 1..20. */
export const VOC_CLASS_NAMES: readonly string[] = [
  'airplane',
  'bicycle',
  'bird',
  'boat',
  'bottle',
  'bus',
  'car',
  'cat',
  'chair',
  'cow',
  'dining table',
  'dog',
  'horse',
  'motorcycle',
  'person',
  'potted plant',
  'sheep',
  'sofa',
  'train',
  'television',
];

/** The VOC devkit's own spelling, same order. */
export const VOC_RAW_CLASS_NAMES: readonly string[] = [
  'aeroplane',
  'bicycle',
  'bird',
  'boat',
  'bottle',
  'bus',
  'car',
  'cat',
  'chair',
  'cow',
  'diningtable',
  'dog',
  'horse',
  'motorbike',
  'person',
  'pottedplant',
  'sheep',
  'sofa',
  'train',
  'tvmonitor',
];

export type VocLabelRule = 'largest-instance' | 'majority-class';

export interface VocOptions {
  /** How an image gets its one label; default 'largest-instance' (DA-Fusion / Diff-Mix). */
  labelRule?: VocLabelRule;
  /** Image set files under `ImageSets/Segmentation/`; default 'train' and 'val'. */
  trainSet?: string;
  testSet?: string;
  /** Masks decoded at once; default 8. */
  concurrency?: number;
}

/** DA-Fusion's rule (see the module comment); returns a class id 0..19. */
export function largestInstanceLabel(classMask: IndexMask, objectMask: IndexMask, file: string): number {
  if (classMask.width !== objectMask.width || classMask.height !== objectMask.height) {
    throw new DatasetFormatError(
      file,
      `SegmentationClass is ${classMask.width}x${classMask.height} but SegmentationObject is ${objectMask.width}x${objectMask.height}`,
    );
  }
  const counts = new Float64Array(256);
  const first = new Int32Array(256).fill(-1);
  const inst = objectMask.data;
  for (let i = 0; i < inst.length; i++) {
    const v = inst[i] as number;
    if (counts[v] === 0) first[v] = i;
    counts[v] = (counts[v] as number) + 1;
  }
  const unique: number[] = [];
  for (let v = 0; v < 256; v++) if ((counts[v] as number) > 0) unique.push(v);
  const masked = unique.map((v) => counts[v] as number);
  masked[0] = 0;
  masked[masked.length - 1] = 0;
  let best = 0;
  for (let k = 1; k < masked.length; k++) if ((masked[k] as number) > (masked[best] as number)) best = k;
  const value = classMask.data[first[unique[best] as number] as number] as number;
  const index = value - 1;
  if (index >= VOC_CLASS_NAMES.length) {
    throw new DatasetFormatError(file, `the largest instance's pixel has class index ${value}, not a class 1..20`);
  }
  return index < 0 ? index + VOC_CLASS_NAMES.length : index;
}

/** Most frequent class index 1..20 (lowest on ties); returns a class id 0..19. */
export function majorityClassLabel(classMask: IndexMask, file: string): number {
  const counts = new Float64Array(256);
  for (const v of classMask.data) counts[v] = (counts[v] as number) + 1;
  let best = -1;
  for (let v = 1; v <= VOC_CLASS_NAMES.length; v++)
    if ((counts[v] as number) > 0 && (best < 0 || (counts[v] as number) > (counts[best] as number))) best = v;
  if (best < 0) throw new DatasetFormatError(file, 'no object pixels (class indices 1..20)');
  return best - 1;
}

async function readMask(file: string): Promise<IndexMask> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(file, 'segmentation mask');
    throw cause;
  }
  return decodeIndexMask(bytes, file);
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function findRoot(root: string): Promise<string> {
  for (const candidate of [root, path.join(root, 'VOC2012'), path.join(root, 'VOCdevkit', 'VOC2012')]) {
    const ok = await requireDirectory(path.join(candidate, 'ImageSets', 'Segmentation')).then(
      () => true,
      () => false,
    );
    if (ok) return candidate;
  }
  return root;
}

/** Loads Pascal VOC 2012 as DA-Fusion's 20-class classification set. Metaclass 'object'. */
export async function loadVoc(root: string, options: VocOptions = {}): Promise<Dataset> {
  const rule = options.labelRule ?? 'largest-instance';
  if (rule !== 'largest-instance' && rule !== 'majority-class') {
    throw new InvalidArgumentError(
      'options.labelRule',
      `must be 'largest-instance' or 'majority-class', got ${JSON.stringify(rule)}`,
    );
  }
  const concurrency = options.concurrency ?? 8;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1)
    throw new InvalidArgumentError('options.concurrency', `must be a positive integer, got ${concurrency}`);
  await requireDirectory(root, 'Pascal VOC folder');
  const vocRoot = await findRoot(root);
  const setsDir = path.join(vocRoot, 'ImageSets', 'Segmentation');
  const imagesDir = path.join(vocRoot, 'JPEGImages');
  const classDir = path.join(vocRoot, 'SegmentationClass');
  const objectDir = path.join(vocRoot, 'SegmentationObject');
  await requireDirectory(setsDir, 'ImageSets/Segmentation folder');
  await requireDirectory(imagesDir, 'JPEGImages folder');
  await requireDirectory(classDir, 'SegmentationClass folder');
  if (rule === 'largest-instance') await requireDirectory(objectDir, 'SegmentationObject folder');

  const classes: ClassInfo[] = VOC_CLASS_NAMES.map((name, id) => {
    const raw = VOC_RAW_CLASS_NAMES[id] as string;
    return raw === name ? { id, name } : { id, name, rawName: raw };
  });

  const seen = new Map<string, string>();
  const readSplit = async (setName: string): Promise<FileRecord[]> => {
    const setFile = resolveInside(setsDir, `${setName}.txt`);
    const text = await readTextFile(setFile, `VOC image set ${setName}.txt`);
    const ids: Array<{ id: string; where: string }> = [];
    text.split(/\r?\n/).forEach((lineText, i) => {
      const id = lineText.trim();
      if (id === '') return;
      const where = `${setFile}:${i + 1}`;
      if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new DatasetFormatError(where, `bad image id ${JSON.stringify(id)}`);
      const prev = seen.get(id);
      if (prev !== undefined) throw new DatasetFormatError(where, `image ${id} already listed at ${prev}`);
      seen.set(id, where);
      ids.push({ id, where });
    });
    if (ids.length === 0) throw new DatasetFormatError(setFile, 'no images listed');
    return mapLimit(ids, concurrency, async ({ id }) => {
      const classFile = path.join(classDir, `${id}.png`);
      const classMask = await readMask(classFile);
      const label =
        rule === 'largest-instance'
          ? largestInstanceLabel(classMask, await readMask(path.join(objectDir, `${id}.png`)), classFile)
          : majorityClassLabel(classMask, classFile);
      const imagePath = path.join(imagesDir, `${id}.jpg`);
      return { id: path.relative(root, imagePath).split(path.sep).join('/'), label, path: imagePath };
    });
  };
  const train = await readSplit(options.trainSet ?? 'train');
  const test = await readSplit(options.testSet ?? 'val');
  return { name: 'voc', metaclass: 'object', classes, train, test, root };
}
