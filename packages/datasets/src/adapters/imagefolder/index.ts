/**
 * ImageFolder: `root/<class>/<image>` (torchvision's `datasets.ImageFolder` layout).
 *
 * Matches torchvision where it matters for labels: classes are the sub-folders sorted by code point
 * (Python's `sorted()`), images are the files whose lower-cased name ends with one of
 * `IMG_EXTENSIONS`, found recursively under each class folder (symlinked folders followed) and
 * ordered like `sorted(os.walk(class_dir))` then `sorted(fnames)`. Deliberate differences: hidden
 * entries (names starting with `.`, e.g. `.ipynb_checkpoints`, macOS `._x.jpg`) are skipped unless
 * `includeHidden`, and the test split uses the train split's class ids (torchvision indexes each
 * folder on its own, so a class missing from test would shift every later id).
 */
import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  type ClassInfo,
  type Dataset,
  DatasetFormatError,
  type FileRecord,
  InvalidArgumentError,
  type Metaclass,
  NotFoundError,
  resolveInside,
  UnsafePathError,
} from '@diffmix/core';
import { cleanClassName, requireDirectory } from '../common.js';

/** torchvision.datasets.folder.IMG_EXTENSIONS (compared against the lower-cased file name). */
export const IMG_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'];

export interface ImageFolderOptions {
  /**
   * Train folder (resolved against `root`). Without `train` and `test`, `root/train` (+ `root/test`,
   * else `root/val`) is used when `root/train` is a folder, otherwise `root` itself is the train
   * split and the test split is empty.
   */
  train?: string;
  /** Test folder (resolved against `root`); optional. */
  test?: string;
  /** Dataset name; default the base name of `root`. */
  name?: string;
  /** Default 'object'. */
  metaclass?: Metaclass;
  /** Class folder names to use, in this order (their ids); other folders are ignored. Default: every sub-folder, sorted. */
  classes?: readonly string[];
  /** Allowed extensions, lower case with the dot. Default `IMG_EXTENSIONS`. */
  extensions?: readonly string[];
  /** Also read names starting with `.` (torchvision does). Default false. */
  includeHidden?: boolean;
}

/**
 * Orders strings by Unicode code point, as Python's `sorted()` does. (JavaScript's default sort
 * compares UTF-16 code units, which differs when a character above U+FFFF meets one in U+E000–U+FFFF.)
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.codePointAt(i) as number;
    const cb = b.codePointAt(i) as number;
    if (ca !== cb) return ca < cb ? -1 : 1;
    if (ca > 0xffff) i++;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

async function isDirectory(p: string): Promise<boolean> {
  const s = await stat(p).catch(() => undefined);
  return s?.isDirectory() ?? false;
}

/** An entry's kind, following symlinks (torchvision's os.walk(followlinks=True) and os.scandir().is_dir()). */
async function kindOf(dir: string, entry: Dirent): Promise<'dir' | 'file' | 'other'> {
  if (entry.isDirectory()) return 'dir';
  if (entry.isFile()) return 'file';
  if (entry.isSymbolicLink()) {
    const s = await stat(path.join(dir, entry.name)).catch(() => undefined);
    if (s?.isDirectory()) return 'dir';
    if (s?.isFile()) return 'file';
  }
  return 'other';
}

function isHidden(name: string): boolean {
  return name.startsWith('.');
}

/** Class folders of a split root, sorted by code point. */
async function listClassFolders(splitRoot: string, includeHidden: boolean): Promise<string[]> {
  const entries = await readdir(splitRoot, { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    if (!includeHidden && isHidden(e.name)) continue;
    if ((await kindOf(splitRoot, e)) === 'dir') out.push(e.name);
  }
  return out.sort(compareCodePoints);
}

/**
 * Image files under `classDir`, recursively, as absolute paths in torchvision's order:
 * folders by their path (relative, '/'-separated), files by name within a folder.
 */
async function listImages(classDir: string, extensions: readonly string[], includeHidden: boolean): Promise<string[]> {
  const groups: Array<{ rel: string; files: string[] }> = [];
  const seen = new Set<string>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    const real = await realpath(dir);
    if (seen.has(real)) return; // a symlink cycle
    seen.add(real);
    const entries = await readdir(dir, { withFileTypes: true });
    const files: string[] = [];
    for (const e of entries) {
      if (!includeHidden && isHidden(e.name)) continue;
      const kind = await kindOf(dir, e);
      if (kind === 'dir') await walk(path.join(dir, e.name), rel === '' ? e.name : `${rel}/${e.name}`);
      else if (kind === 'file') {
        const lower = e.name.toLowerCase();
        if (extensions.some((ext) => lower.endsWith(ext))) files.push(e.name);
      }
    }
    groups.push({ rel, files: files.sort(compareCodePoints) });
  };
  await walk(classDir, '');
  groups.sort((a, b) => compareCodePoints(a.rel, b.rel));
  return groups.flatMap((g) =>
    g.files.map((f) => (g.rel === '' ? path.join(classDir, f) : path.join(classDir, ...g.rel.split('/'), f))),
  );
}

/** A class folder name given by the caller: one existing path component inside `splitRoot`. */
function classFolderPath(splitRoot: string, name: string): string {
  if (name === '' || name.includes('/') || name.includes('\\') || name.includes('\u0000')) {
    throw new UnsafePathError(name, 'a class folder name must be a single path component');
  }
  return resolveInside(splitRoot, name);
}

function recordId(root: string, splitRoot: string, splitName: string, file: string): string {
  const rel = path.relative(root, file);
  if (rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)) return rel.split(path.sep).join('/');
  return `${splitName}/${path.relative(splitRoot, file).split(path.sep).join('/')}`;
}

async function detectSplits(root: string, options: ImageFolderOptions): Promise<{ train: string; test?: string }> {
  if (options.train !== undefined || options.test !== undefined) {
    if (options.train === undefined) throw new InvalidArgumentError('options.train', 'required when options.test is given');
    const train = path.resolve(root, options.train);
    await requireDirectory(train, 'train folder');
    if (options.test === undefined) return { train };
    const test = path.resolve(root, options.test);
    await requireDirectory(test, 'test folder');
    return { train, test };
  }
  if (await isDirectory(path.join(root, 'train'))) {
    const train = path.join(root, 'train');
    for (const name of ['test', 'val']) {
      if (await isDirectory(path.join(root, name))) return { train, test: path.join(root, name) };
    }
    return { train };
  }
  return { train: root };
}

/** Reads an ImageFolder tree (see the module comment for the exact rules). */
export async function loadImageFolder(root: string, options: ImageFolderOptions = {}): Promise<Dataset> {
  await requireDirectory(root, 'ImageFolder root');
  const includeHidden = options.includeHidden ?? false;
  const extensions = (options.extensions ?? IMG_EXTENSIONS).map((e) => e.toLowerCase());
  if (extensions.length === 0) throw new InvalidArgumentError('options.extensions', 'must not be empty');
  const splits = await detectSplits(root, options);

  let classFolders: string[];
  if (options.classes) {
    classFolders = [...options.classes];
    const dup = classFolders.find((c, i) => classFolders.indexOf(c) !== i);
    if (dup !== undefined) throw new InvalidArgumentError('options.classes', `lists ${JSON.stringify(dup)} twice`);
    if (classFolders.length === 0) throw new InvalidArgumentError('options.classes', 'must not be empty');
    for (const c of classFolders) {
      const dir = classFolderPath(splits.train, c);
      if (!(await isDirectory(dir))) throw new NotFoundError(dir, `class folder for ${JSON.stringify(c)}`);
    }
  } else {
    classFolders = await listClassFolders(splits.train, includeHidden);
    if (classFolders.length === 0)
      throw new DatasetFormatError(splits.train, 'no class folders found (expected <root>/<class>/<image>)');
  }
  const classes: ClassInfo[] = classFolders.map((raw, id) => {
    const name = cleanClassName(raw);
    return name === raw ? { id, name } : { id, name, rawName: raw };
  });
  const idOf = new Map(classFolders.map((c, i) => [c, i]));

  const readSplit = async (splitRoot: string, splitName: string, folders: string[]): Promise<FileRecord[]> => {
    const records: FileRecord[] = [];
    for (const folder of folders) {
      const dir = classFolderPath(splitRoot, folder);
      const files = await listImages(dir, extensions, includeHidden);
      if (files.length === 0) {
        throw new DatasetFormatError(dir, `class folder has no images with extensions ${extensions.join(', ')}`);
      }
      const label = idOf.get(folder) as number;
      for (const f of files) records.push({ id: recordId(root, splitRoot, splitName, f), label, path: f });
    }
    return records;
  };

  const train = await readSplit(splits.train, 'train', classFolders);
  let test: FileRecord[] = [];
  if (splits.test !== undefined) {
    const testRoot = splits.test;
    let folders = await listClassFolders(testRoot, includeHidden);
    if (options.classes) {
      folders = classFolders.filter((c) => folders.includes(c));
    } else {
      const unknown = folders.find((f) => !idOf.has(f));
      if (unknown !== undefined) {
        throw new DatasetFormatError(
          path.join(testRoot, unknown),
          `class folder has no counterpart in the train folder ${splits.train}`,
        );
      }
    }
    test = await readSplit(testRoot, 'test', folders);
  }

  return {
    name: options.name ?? path.basename(path.resolve(root)),
    metaclass: options.metaclass ?? 'object',
    classes,
    train,
    test,
    root,
  };
}
