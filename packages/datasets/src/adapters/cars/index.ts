/**
 * Stanford Cars (Krause et al., 2013): 196 classes, 8,144 train / 8,041 test images, official split.
 *
 * Two distributions exist and both are read:
 *
 * 1. The devkit layout (`cars_train.tgz`, `cars_test.tgz`, `car_devkit.tgz`, and the test labels
 *    released later as `cars_test_annos_withlabels.mat`):
 *    ```
 *    root/
 *      devkit/cars_meta.mat             `class_names`: 1×196 cell of char
 *      devkit/cars_train_annos.mat      `annotations`: 1×8144 struct (bbox_x1, bbox_y1, bbox_x2, bbox_y2, class, fname)
 *      cars_test_annos_withlabels.mat   `annotations`: 1×8041 struct, same fields
 *      cars_train/00001.jpg …
 *      cars_test/00001.jpg …
 *    ```
 *    Each file is also looked for where the common re-packagings put it: the devkit files directly
 *    in root or in `car_devkit/devkit/`, the test labels in `devkit/` (torchvision's instructions)
 *    or `car_devkit/devkit/`, the images one folder deeper (`cars_train/cars_train/`, as the Kaggle
 *    copy unpacks). The devkit's own `cars_test_annos.mat` has no `class` field and cannot be used.
 * 2. The all-in-one layout (`car_ims.tgz` + `cars_annos.mat`): `annotations` with fields
 *    relative_im_path (`car_ims/000001.jpg`), bbox_*, class and test (1 = test image), and
 *    `class_names`. Used when no devkit class list is found and `cars_annos.mat` exists.
 *
 * Classes keep the dataset's names, except that `/` becomes a space ("Ram C/V Cargo Van Minivan
 * 2012" → "Ram C V Cargo Van Minivan 2012"), as the Diff-Mix code does; the raw name stays in
 * `rawName`. The Diff-Mix paper trains on the official split.
 */
import path from 'node:path';
import { type ClassInfo, type Dataset, DatasetFormatError, type FileRecord } from '@diffmix/core';
import { type MatWhere, matToNumber, matToRecords, matToString, matToStrings, matVariable } from '../../mat/convert.js';
import {
  assertListedFilesExist,
  findFirst,
  type ListedFile,
  notFoundAnywhere,
  recordId,
  resolveListed,
} from '../../mat/dataset-index.js';
import { readMatFile } from '../../mat/read.js';
import type { MatFile, MatValue } from '../../mat/types.js';
import { assertNoEmptyClass, requireDirectory } from '../common.js';

export interface CarsOptions {
  /** Check that every listed image exists (default true; one folder listing per image folder). */
  checkFiles?: boolean;
}

const META = ['devkit/cars_meta.mat', 'car_devkit/devkit/cars_meta.mat', 'cars_meta.mat'];
const TRAIN_ANNOS = ['devkit/cars_train_annos.mat', 'car_devkit/devkit/cars_train_annos.mat', 'cars_train_annos.mat'];
const TEST_ANNOS = [
  'cars_test_annos_withlabels.mat',
  'devkit/cars_test_annos_withlabels.mat',
  'car_devkit/devkit/cars_test_annos_withlabels.mat',
];
const UNLABELLED_TEST = ['devkit/cars_test_annos.mat', 'car_devkit/devkit/cars_test_annos.mat', 'cars_test_annos.mat'];
const TRAIN_DIRS = ['cars_train/cars_train', 'cars_train'];
const TEST_DIRS = ['cars_test/cars_test', 'cars_test'];
const ALL_IN_ONE = 'cars_annos.mat';

function carClasses(mat: MatFile): ClassInfo[] {
  const raw = matToStrings(matVariable(mat, 'class_names'), { file: mat.file, name: 'class_names' });
  if (raw.length === 0) throw new DatasetFormatError(mat.file, 'class_names is empty');
  return raw.map((r, id) => {
    const name = r.replace(/\//g, ' ').replace(/\s+/g, ' ').trim();
    if (name === '') throw new DatasetFormatError(mat.file, `class_names{${id + 1}} is empty`);
    return name === r ? { id, name } : { id, name, rawName: r };
  });
}

interface Entry {
  record: FileRecord;
  listed: ListedFile;
  isTest: boolean;
}

/**
 * Reads an `annotations` struct array; `imageDir` and `pathField` say where the images are, and
 * `testField` (all-in-one layout) which of them are test images.
 */
function readAnnotations(
  root: string,
  mat: MatFile,
  classCount: number,
  classFile: string,
  layout: { imageDir: string; pathField: string; testField?: string },
): Entry[] {
  const required = ['class', layout.pathField, ...(layout.testField ? [layout.testField] : [])];
  const records = matToRecords(matVariable(mat, 'annotations'), required, { file: mat.file, name: 'annotations' });
  return records.map((rec, k) => {
    const at = (field: string): MatWhere => ({ file: mat.file, name: `annotations(${k + 1}).${field}` });
    const cls = matToNumber(rec.class as MatValue, at('class'));
    if (!Number.isInteger(cls) || cls < 1 || cls > classCount) {
      throw new DatasetFormatError(
        mat.file,
        `annotations(${k + 1}).class = ${cls} is outside 1..${classCount} (the classes of ${classFile})`,
      );
    }
    const rel = matToString(rec[layout.pathField] as MatValue, at(layout.pathField));
    const file = resolveListed(layout.imageDir, rel, at(layout.pathField), `annotations(${k + 1}).${layout.pathField}`);
    let isTest = false;
    if (layout.testField) {
      const t = matToNumber(rec[layout.testField] as MatValue, at(layout.testField));
      if (t !== 0 && t !== 1)
        throw new DatasetFormatError(mat.file, `annotations(${k + 1}).${layout.testField} = ${t} must be 0 or 1`);
      isTest = t === 1;
    }
    return {
      record: { id: recordId(root, file), label: cls - 1, path: file },
      listed: { path: file, listedAs: () => `annotations(${k + 1}) in ${mat.file}` },
      isTest,
    };
  });
}

async function requireImageDir(root: string, candidates: string[], what: string): Promise<string> {
  const dir = await findFirst(root, candidates, 'directory');
  if (dir === undefined)
    throw notFoundAnywhere(
      root,
      what,
      candidates.map((c) => `${c}/`),
    );
  return dir;
}

/** Loads Stanford Cars from its root folder (devkit or all-in-one layout). Metaclass 'car'. */
export async function loadCars(root: string, options: CarsOptions = {}): Promise<Dataset> {
  await requireDirectory(root, 'Stanford Cars folder');
  const metaFile = await findFirst(root, META, 'file');
  const allInOne = metaFile === undefined ? await findFirst(root, [ALL_IN_ONE], 'file') : undefined;

  let classes: ClassInfo[];
  let entries: Entry[];
  let trainFile: string;
  if (metaFile !== undefined) {
    const trainAnnos = await findFirst(root, TRAIN_ANNOS, 'file');
    if (trainAnnos === undefined) throw notFoundAnywhere(root, 'Stanford Cars train annotations', TRAIN_ANNOS);
    const testAnnos = await findFirst(root, TEST_ANNOS, 'file');
    if (testAnnos === undefined) {
      const unlabelled = await findFirst(root, UNLABELLED_TEST, 'file');
      const hint = unlabelled
        ? `${path.relative(root, unlabelled)} has no class labels; download cars_test_annos_withlabels.mat into the dataset folder`
        : 'download cars_test_annos_withlabels.mat into the dataset folder';
      throw notFoundAnywhere(root, 'Stanford Cars test annotations with labels', TEST_ANNOS, hint);
    }
    const [meta, trainMat, testMat] = await Promise.all([
      readMatFile(metaFile, 'Stanford Cars class list'),
      readMatFile(trainAnnos, 'Stanford Cars train annotations'),
      readMatFile(testAnnos, 'Stanford Cars test annotations'),
    ]);
    const trainDir = await requireImageDir(root, TRAIN_DIRS, 'Stanford Cars train images folder');
    const testDir = await requireImageDir(root, TEST_DIRS, 'Stanford Cars test images folder');
    classes = carClasses(meta);
    entries = [
      ...readAnnotations(root, trainMat, classes.length, metaFile, { imageDir: trainDir, pathField: 'fname' }),
      ...readAnnotations(root, testMat, classes.length, metaFile, { imageDir: testDir, pathField: 'fname' }).map((e) => ({
        ...e,
        isTest: true,
      })),
    ];
    trainFile = trainAnnos;
  } else if (allInOne !== undefined) {
    const mat = await readMatFile(allInOne, 'Stanford Cars annotations');
    classes = carClasses(mat);
    entries = readAnnotations(root, mat, classes.length, allInOne, {
      imageDir: root,
      pathField: 'relative_im_path',
      testField: 'test',
    });
    trainFile = allInOne;
  } else {
    throw notFoundAnywhere(root, 'Stanford Cars class list', META, `or ${ALL_IN_ONE} with car_ims/`);
  }

  const train = entries.filter((e) => !e.isTest).map((e) => e.record);
  const test = entries.filter((e) => e.isTest).map((e) => e.record);
  assertNoEmptyClass(
    trainFile,
    classes.map((c) => c.name),
    train.map((r) => r.label),
  );
  if (options.checkFiles ?? true) await assertListedFilesExist(entries.map((e) => e.listed));
  return { name: 'car', metaclass: 'car', classes, train, test, root };
}
