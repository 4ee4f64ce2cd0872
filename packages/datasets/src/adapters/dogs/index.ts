/**
 * Stanford Dogs (Khosla et al., 2011): 120 breeds, 12,000 train / 8,580 test images, official split,
 * in the layout of `images.tar` + `lists.tar`:
 *
 * ```
 * root/
 *   Images/n02085620-Chihuahua/n02085620_5927.jpg …
 *   train_list.mat   `file_list`: 12000×1 cell of char ('n02085620-Chihuahua/n02085620_5927.jpg'),
 *                    `annotation_list`: same without '.jpg', `labels`: 12000×1 double, 1-based
 *   test_list.mat    the same for the 8,580 test images
 * ```
 *
 * The lists are also looked for in `lists/`, the images in `images/Images/` (Kaggle copy) and
 * `images/`; the image folder is the first of those that holds the first listed file.
 *
 * Class names come from the folders: label k's images all live in one folder, `n02085782-Japanese_spaniel`,
 * whose name without the WordNet id, underscores as spaces, is the class name (`Japanese spaniel`).
 * These are exactly the 120 names the official Diff-Mix code lists (dataset/instance/dog.py), and
 * label k is the k-th folder in sorted order. The Diff-Mix classifier uses these official lists
 * unchanged (its 50/50 re-split is only in the text-to-image fine-tuning dataset).
 */
import path from 'node:path';
import { type ClassInfo, type Dataset, DatasetFormatError, type FileRecord } from '@diffmix/core';
import { matToIntegers, matToStrings, matVariable } from '../../mat/convert.js';
import {
  assertListedFilesExist,
  findFirst,
  type ListedFile,
  notFoundAnywhere,
  recordId,
  resolveListed,
} from '../../mat/dataset-index.js';
import { readMatFile } from '../../mat/read.js';
import { assertNoEmptyClass, cleanClassName, requireDirectory } from '../common.js';

export interface DogsOptions {
  /** Check that every listed image exists (default true; one folder listing per breed folder). */
  checkFiles?: boolean;
}

const LIST_DIRS = ['', 'lists'];
const IMAGE_DIRS = ['Images', 'images/Images', 'images'];

/** `n02085782-Japanese_spaniel` → `Japanese spaniel`. */
export function dogClassName(folder: string): string {
  return cleanClassName(folder.replace(/^n\d+-/, ''));
}

interface List {
  file: string;
  files: string[];
  labels: number[];
}

async function readList(root: string, name: string): Promise<List> {
  const candidates = LIST_DIRS.map((d) => (d ? `${d}/${name}` : name));
  const file = await findFirst(root, candidates, 'file');
  if (file === undefined) throw notFoundAnywhere(root, `Stanford Dogs list ${name}`, candidates);
  const mat = await readMatFile(file, `Stanford Dogs list ${name}`);
  const files = matToStrings(matVariable(mat, 'file_list'), { file, name: 'file_list' });
  const labels = matToIntegers(matVariable(mat, 'labels'), { file, name: 'labels' });
  if (files.length !== labels.length) {
    throw new DatasetFormatError(file, `file_list has ${files.length} entries but labels has ${labels.length}`);
  }
  if (files.length === 0) throw new DatasetFormatError(file, 'file_list is empty');
  return { file, files, labels };
}

/** The folder part of a listed file, 'n02085620-Chihuahua/x.jpg' → 'n02085620-Chihuahua'. */
function folderOf(entry: string): string {
  const parts = entry.split(/[\\/]/);
  return parts.length > 1 ? parts.slice(0, -1).join('/') : '';
}

/** Loads Stanford Dogs from its root folder. Metaclass 'dog'. */
export async function loadDogs(root: string, options: DogsOptions = {}): Promise<Dataset> {
  await requireDirectory(root, 'Stanford Dogs folder');
  const [trainList, testList] = await Promise.all([readList(root, 'train_list.mat'), readList(root, 'test_list.mat')]);

  // Classes from the training list: label k ↔ the one folder its images are in.
  const folders: string[] = [];
  const firstEntry: number[] = [];
  const n = trainList.labels.length;
  trainList.labels.forEach((label, i) => {
    // Every class needs a training image, so a label above the number of training images is
    // certainly wrong (and must not size the class table).
    if (label < 1 || label > n) {
      throw new DatasetFormatError(
        trainList.file,
        `labels(${i + 1}) = ${label} is outside 1..${n} (there are ${n} training images)`,
      );
    }
    const folder = folderOf(trainList.files[i] as string);
    const known = folders[label - 1];
    if (known === undefined) {
      folders[label - 1] = folder;
      firstEntry[label - 1] = i;
    } else if (known !== folder) {
      throw new DatasetFormatError(
        trainList.file,
        `file_list(${i + 1}) = ${JSON.stringify(trainList.files[i])} has label ${label}, whose images are in ${JSON.stringify(known)} (file_list(${(firstEntry[label - 1] as number) + 1}))`,
      );
    }
  });
  const classCount = folders.length;
  // A label that never occurs leaves a hole: that class has no training images.
  const classes: ClassInfo[] = Array.from({ length: classCount }, (_, id) => {
    const folder = folders[id];
    if (folder === undefined) return { id, name: `class ${id + 1}` };
    const name = dogClassName(folder);
    if (name === '')
      throw new DatasetFormatError(trainList.file, `file_list(${(firstEntry[id] as number) + 1}) is not inside a breed folder`);
    return name === folder ? { id, name } : { id, name, rawName: folder };
  });
  const byFolder = new Map<string, number>();
  folders.forEach((f, id) => {
    const other = byFolder.get(f);
    if (other !== undefined)
      throw new DatasetFormatError(trainList.file, `labels ${other + 1} and ${id + 1} both use the folder ${JSON.stringify(f)}`);
    byFolder.set(f, id);
  });
  assertNoEmptyClass(
    trainList.file,
    classes.map((c) => c.rawName ?? c.name),
    trainList.labels.map((l) => l - 1),
  );

  const imagesDir = await locateImages(root, trainList.files[0] as string);
  const listed: ListedFile[] = [];
  const records = (list: List): FileRecord[] =>
    list.files.map((rel, i) => {
      const label = list.labels[i] as number;
      if (label < 1 || label > classCount) {
        throw new DatasetFormatError(
          list.file,
          `labels(${i + 1}) = ${label} is outside 1..${classCount} (the labels of ${trainList.file})`,
        );
      }
      const folder = folderOf(rel);
      if (folder !== folders[label - 1]) {
        throw new DatasetFormatError(
          list.file,
          `file_list(${i + 1}) = ${JSON.stringify(rel)} has label ${label}, whose images are in ${JSON.stringify(folders[label - 1])}`,
        );
      }
      const where = { file: list.file, name: `file_list(${i + 1})` };
      const file = resolveListed(imagesDir, rel, where, `file_list(${i + 1})`);
      listed.push({ path: file, listedAs: () => `file_list(${i + 1}) in ${list.file}` });
      return { id: recordId(root, file), label: label - 1, path: file };
    });
  const train = records(trainList);
  const test = records(testList);
  if (options.checkFiles ?? true) await assertListedFilesExist(listed);
  return { name: 'dog', metaclass: 'dog', classes, train, test, root };
}

/** The image folder: the first candidate holding the first listed file, else the first that exists. */
async function locateImages(root: string, firstFile: string): Promise<string> {
  for (const dir of IMAGE_DIRS) {
    if (await findFirst(root, [path.join(dir, firstFile)], 'file')) return path.join(root, dir);
  }
  const existing = await findFirst(root, IMAGE_DIRS, 'directory');
  if (existing === undefined)
    throw notFoundAnywhere(
      root,
      'Stanford Dogs images folder',
      IMAGE_DIRS.map((d) => `${d}/`),
    );
  return existing;
}
