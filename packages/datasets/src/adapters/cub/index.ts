/**
 * CUB-200-2011 (Caltech-UCSD Birds) in the layout of the official `CUB_200_2011.tgz`:
 *
 * ```
 * CUB_200_2011/
 *   images.txt               "<image id> <relative path under images/>"
 *   image_class_labels.txt   "<image id> <class id, 1-based>"
 *   train_test_split.txt     "<image id> <1 = train, 0 = test>"
 *   classes.txt              "<class id> <class folder name>", e.g. "1 001.Black_footed_Albatross"
 *   images/<class folder>/<file>.jpg
 * ```
 *
 * The official split has 5,994 train and 5,794 test images over 200 classes. Every image id must
 * appear exactly once in each of the three per-image files; any mismatch names the file and line.
 */
import path from 'node:path';
import { type ClassInfo, type Dataset, DatasetFormatError, type FileRecord, resolveInside } from '@diffmix/core';
import {
  assertNoEmptyClass,
  cleanClassName,
  type IndexLine,
  parseIndexFile,
  parseIntField,
  readTextFile,
  requireDirectory,
} from '../common.js';

export interface CubOptions {
  /**
   * Folder of per-image description files in the layout of Reed et al.'s `text_c10`
   * (`<dir>/<class folder>/<image name>.txt`, one sentence a line); the file's text becomes the
   * record's `caption` (lines joined with '\n'). Resolved against `root`. A missing file is an error.
   */
  captionsDir?: string;
}

interface ParsedFile<T> {
  file: string;
  byId: Map<string, { line: number; value: T }>;
  order: string[];
}

/** Parses a two-field "<image id> <value>" file, rejecting duplicate ids. */
function parseById<T>(file: string, text: string, shape: 'fields' | 'rest', value: (l: IndexLine) => T): ParsedFile<T> {
  const lines =
    shape === 'fields'
      ? parseIndexFile(file, text, { fields: 2 })
      : parseIndexFile(file, text, { minFields: 2, restJoined: true });
  const byId = new Map<string, { line: number; value: T }>();
  const order: string[] = [];
  for (const l of lines) {
    const id = l.fields[0] as string;
    parseIntField(file, l.line, id, 'image id');
    const prev = byId.get(id);
    if (prev) throw new DatasetFormatError(`${file}:${l.line}`, `duplicate image id ${id} (first on line ${prev.line})`);
    byId.set(id, { line: l.line, value: value(l) });
    order.push(id);
  }
  return { file, byId, order };
}

/** Each id of `reference` must be in `other` and vice versa. */
function assertSameIds(reference: ParsedFile<unknown>, other: ParsedFile<unknown>): void {
  for (const id of reference.order) {
    if (!other.byId.has(id)) {
      const at = reference.byId.get(id)?.line;
      throw new DatasetFormatError(`${reference.file}:${at}`, `image id ${id} is missing from ${other.file}`);
    }
  }
  for (const id of other.order) {
    if (!reference.byId.has(id)) {
      const at = other.byId.get(id)?.line;
      throw new DatasetFormatError(`${other.file}:${at}`, `image id ${id} is not listed in ${reference.file}`);
    }
  }
}

/** Loads CUB-200-2011 from the folder that holds `images.txt`. Metaclass 'bird'. */
export async function loadCub(root: string, options: CubOptions = {}): Promise<Dataset> {
  await requireDirectory(root, 'CUB_200_2011 folder');
  const imagesDir = path.join(root, 'images');
  const f = {
    images: path.join(root, 'images.txt'),
    labels: path.join(root, 'image_class_labels.txt'),
    split: path.join(root, 'train_test_split.txt'),
    classes: path.join(root, 'classes.txt'),
  };
  const [imagesText, labelsText, splitText, classesText] = await Promise.all([
    readTextFile(f.images, 'CUB index file images.txt'),
    readTextFile(f.labels, 'CUB index file image_class_labels.txt'),
    readTextFile(f.split, 'CUB index file train_test_split.txt'),
    readTextFile(f.classes, 'CUB index file classes.txt'),
  ]);
  await requireDirectory(imagesDir, 'CUB images folder');

  // classes.txt: ids must run 1..C in order (they are the labels of image_class_labels.txt).
  const classLines = parseIndexFile(f.classes, classesText, { minFields: 2, restJoined: true });
  if (classLines.length === 0) throw new DatasetFormatError(f.classes, 'no classes listed');
  const classes: ClassInfo[] = classLines.map((l, i) => {
    const id = parseIntField(f.classes, l.line, l.fields[0] as string, 'class id');
    if (id !== i + 1) throw new DatasetFormatError(`${f.classes}:${l.line}`, `expected class id ${i + 1}, found ${id}`);
    const raw = (l.fields[1] as string).trim();
    const name = cleanClassName(raw);
    if (name === '') throw new DatasetFormatError(`${f.classes}:${l.line}`, 'empty class name');
    return name === raw ? { id: i, name } : { id: i, name, rawName: raw };
  });

  const images = parseById(f.images, imagesText, 'rest', (l) => (l.fields[1] as string).trim());
  const labels = parseById(f.labels, labelsText, 'fields', (l) => {
    const v = parseIntField(f.labels, l.line, l.fields[1] as string, 'class id');
    if (v < 1 || v > classes.length) {
      throw new DatasetFormatError(`${f.labels}:${l.line}`, `class id ${v} out of range 1..${classes.length} (classes.txt)`);
    }
    return v - 1;
  });
  const split = parseById(f.split, splitText, 'fields', (l) => {
    const v = l.fields[1] as string;
    if (v !== '0' && v !== '1')
      throw new DatasetFormatError(`${f.split}:${l.line}`, `is_training_image must be 0 or 1, found ${JSON.stringify(v)}`);
    return v === '1';
  });
  if (images.order.length === 0) throw new DatasetFormatError(f.images, 'no images listed');
  assertSameIds(images, labels);
  assertSameIds(images, split);

  const captionsDir = options.captionsDir === undefined ? undefined : path.resolve(root, options.captionsDir);
  if (captionsDir !== undefined) await requireDirectory(captionsDir, 'CUB captions folder');

  const records: Array<{ record: FileRecord; isTrain: boolean; rel: string; id: string }> = images.order.map((id) => {
    const { line, value: rel } = images.byId.get(id) as { line: number; value: string };
    let file: string;
    try {
      file = resolveInside(imagesDir, rel);
    } catch (cause) {
      throw new DatasetFormatError(`${f.images}:${line}`, `image path ${JSON.stringify(rel)} is not inside images/`, { cause });
    }
    const record: FileRecord = {
      id: path.relative(root, file).split(path.sep).join('/'),
      label: labels.byId.get(id)?.value as number,
      path: file,
    };
    return { record, isTrain: split.byId.get(id)?.value === true, rel, id };
  });
  if (captionsDir !== undefined) {
    const dir = captionsDir;
    for (let start = 0; start < records.length; start += 32) {
      await Promise.all(
        records.slice(start, start + 32).map(async ({ record, rel, id }) => {
          const captionFile = resolveInside(dir, rel.replace(/\.[^./]*$/, '') + '.txt');
          const text = await readTextFile(captionFile, `caption file for image ${id}`);
          record.caption = text
            .split(/\r?\n/)
            .map((s) => s.trim())
            .filter((s) => s !== '')
            .join('\n');
        }),
      );
    }
  }
  const train = records.filter((r) => r.isTrain).map((r) => r.record);
  const test = records.filter((r) => !r.isTrain).map((r) => r.record);
  assertNoEmptyClass(
    f.split,
    classes.map((c) => c.rawName ?? c.name),
    train.map((r) => r.label),
  );

  return { name: 'cub', metaclass: 'bird', classes, train, test, root };
}
