/**
 * FGVC-Aircraft (`fgvc-aircraft-2013b`), read as torchvision's `FGVCAircraft` does:
 *
 * ```
 * fgvc-aircraft-2013b/data/
 *   variants.txt | families.txt | manufacturers.txt        one class name a line (the class order)
 *   images_<level>_{train,val,trainval,test}.txt            "<image id> <class name, may hold spaces>"
 *   images/<image id>.jpg
 * ```
 *
 * The paper setting trains on `train` (3,334 images) and tests on `test` (3,333); `trainval` has
 * 6,667. Class names: `/` becomes a space, as the official Diff-Mix code does (`F/A-18` → `F A-18`);
 * the file's spelling stays in `rawName`.
 */
import path from 'node:path';
import {
  type ClassInfo,
  type Dataset,
  DatasetFormatError,
  type FileRecord,
  InvalidArgumentError,
  resolveInside,
} from '@diffmix/core';
import { assertNoEmptyClass, cleanClassName, parseIndexFile, readTextFile, requireDirectory } from '../common.js';

export type AircraftLevel = 'variant' | 'family' | 'manufacturer';

export interface AircraftOptions {
  /** Split used as the training set. Default 'train' (3,334 images, the paper's setting). */
  trainSplit?: 'train' | 'trainval';
  /** Split used as the test set. Default 'test'. */
  testSplit?: 'val' | 'test';
  /** Annotation level: 100 variants (default), 70 families or 30 manufacturers. */
  level?: AircraftLevel;
}

const CLASS_FILES: Record<AircraftLevel, string> = {
  variant: 'variants.txt',
  family: 'families.txt',
  manufacturer: 'manufacturers.txt',
};

async function exists(p: string): Promise<boolean> {
  return requireDirectory(p).then(
    () => true,
    () => false,
  );
}

/** `root` may be `fgvc-aircraft-2013b`, its `data/` folder, or the folder that holds `fgvc-aircraft-2013b`. */
async function findDataDir(root: string): Promise<string> {
  for (const candidate of [path.join(root, 'data'), path.join(root, 'fgvc-aircraft-2013b', 'data')]) {
    if (await exists(path.join(candidate, 'images'))) return candidate;
  }
  if (await exists(path.join(root, 'images'))) return root;
  return path.join(root, 'data'); // reported as missing below
}

/** Aircraft class name for prompts: '/' → ' ', underscores and runs of spaces collapsed. */
export function cleanAircraftName(raw: string): string {
  return cleanClassName(raw.replace(/\//g, ' '));
}

/** Loads FGVC-Aircraft. Metaclass 'aircraft'; record ids are `data/images/<id>.jpg`. */
export async function loadAircraft(root: string, options: AircraftOptions = {}): Promise<Dataset> {
  const level = options.level ?? 'variant';
  if (!(level in CLASS_FILES))
    throw new InvalidArgumentError('options.level', `must be variant, family or manufacturer, got ${JSON.stringify(level)}`);
  const trainSplit = options.trainSplit ?? 'train';
  if (trainSplit !== 'train' && trainSplit !== 'trainval') {
    throw new InvalidArgumentError('options.trainSplit', `must be 'train' or 'trainval', got ${JSON.stringify(trainSplit)}`);
  }
  const testSplit = options.testSplit ?? 'test';
  if (testSplit !== 'test' && testSplit !== 'val') {
    throw new InvalidArgumentError('options.testSplit', `must be 'test' or 'val', got ${JSON.stringify(testSplit)}`);
  }
  if (trainSplit === 'trainval' && testSplit === 'val') {
    throw new InvalidArgumentError('options.testSplit', "'val' is part of trainSplit 'trainval'");
  }
  await requireDirectory(root, 'FGVC-Aircraft folder');
  const dataDir = await findDataDir(root);
  await requireDirectory(dataDir, 'FGVC-Aircraft data folder');
  const imagesDir = path.join(dataDir, 'images');
  await requireDirectory(imagesDir, 'FGVC-Aircraft images folder');

  const classFile = path.join(dataDir, CLASS_FILES[level]);
  const classText = await readTextFile(classFile, `FGVC-Aircraft class list ${CLASS_FILES[level]}`);
  const rawNames: string[] = [];
  const idOf = new Map<string, number>();
  classText.split(/\r?\n/).forEach((lineText, i) => {
    const raw = lineText.trim();
    if (raw === '') return;
    if (idOf.has(raw)) throw new DatasetFormatError(`${classFile}:${i + 1}`, `class ${JSON.stringify(raw)} listed twice`);
    idOf.set(raw, rawNames.length);
    rawNames.push(raw);
  });
  if (rawNames.length === 0) throw new DatasetFormatError(classFile, 'no classes listed');
  const classes: ClassInfo[] = rawNames.map((raw, id) => {
    const name = cleanAircraftName(raw);
    return name === raw ? { id, name } : { id, name, rawName: raw };
  });

  const seen = new Map<string, string>(); // image id → "file:line", across both splits
  const readSplit = async (split: string): Promise<FileRecord[]> => {
    const file = path.join(dataDir, `images_${level}_${split}.txt`);
    const text = await readTextFile(file, `FGVC-Aircraft split file images_${level}_${split}.txt`);
    const records: FileRecord[] = [];
    for (const l of parseIndexFile(file, text, { minFields: 2, restJoined: true })) {
      const imageId = l.fields[0] as string;
      const className = (l.fields[1] as string).trim();
      const where = `${file}:${l.line}`;
      if (!/^[A-Za-z0-9_-]+$/.test(imageId)) throw new DatasetFormatError(where, `bad image id ${JSON.stringify(imageId)}`);
      const label = idOf.get(className);
      if (label === undefined)
        throw new DatasetFormatError(where, `class ${JSON.stringify(className)} is not in ${CLASS_FILES[level]}`);
      const prev = seen.get(imageId);
      if (prev !== undefined) throw new DatasetFormatError(where, `image ${imageId} already listed at ${prev}`);
      seen.set(imageId, where);
      const imagePath = resolveInside(imagesDir, `${imageId}.jpg`);
      records.push({ id: path.relative(root, imagePath).split(path.sep).join('/'), label, path: imagePath });
    }
    if (records.length === 0) throw new DatasetFormatError(file, 'no images listed');
    return records;
  };
  const train = await readSplit(trainSplit);
  const test = await readSplit(testSplit);
  assertNoEmptyClass(
    path.join(dataDir, `images_${level}_${trainSplit}.txt`),
    rawNames,
    train.map((r) => r.label),
  );

  return { name: 'aircraft', metaclass: 'aircraft', classes, train, test, root };
}
