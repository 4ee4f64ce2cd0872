import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatasetFormatError, NotFoundError, UnsafePathError } from '@diffmix/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareCodePoints, IMG_EXTENSIONS, loadImageFolder } from './index.js';

let tmp: string;
let jpeg: Buffer;

async function put(file: string, data: Buffer | string = jpeg): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, data);
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'diffmix-imagefolder-'));
  jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } })
    .jpeg()
    .toBuffer();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loadImageFolder', () => {
  it('reads root/<class>/<image> with sorted classes, torchvision extensions and recursive files', async () => {
    const root = path.join(tmp, 'flat');
    await put(path.join(root, 'b_cls', 'z.jpg'));
    await put(path.join(root, 'b_cls', 'a.PNG'));
    await put(path.join(root, 'b_cls', 'notes.txt'), 'not an image');
    await put(path.join(root, 'b_cls', 'sub', 'deep.webp'));
    await put(path.join(root, 'b_cls', '.hidden.jpg'));
    await put(path.join(root, 'a_cls', 'x.jpeg'));
    await put(path.join(root, '001.Black_footed_Albatross', 'p.tif'));
    await put(path.join(root, 'Zebra', 'q.bmp'));
    await put(path.join(root, '.ipynb_checkpoints', 'r.jpg'));
    await writeFile(path.join(root, 'README.jpg'), jpeg); // a file at class level is not a class

    const ds = await loadImageFolder(root, { name: 'flat' });
    expect(ds.name).toBe('flat');
    expect(ds.metaclass).toBe('object');
    // Code-point order: digits < upper case < lower case.
    expect(ds.classes).toEqual([
      { id: 0, name: 'Black footed Albatross', rawName: '001.Black_footed_Albatross' },
      { id: 1, name: 'Zebra' },
      { id: 2, name: 'a cls', rawName: 'a_cls' },
      { id: 3, name: 'b cls', rawName: 'b_cls' },
    ]);
    expect(ds.train.map((r) => [r.id, r.label])).toEqual([
      ['001.Black_footed_Albatross/p.tif', 0],
      ['Zebra/q.bmp', 1],
      ['a_cls/x.jpeg', 2],
      ['b_cls/a.PNG', 3],
      ['b_cls/z.jpg', 3],
      ['b_cls/sub/deep.webp', 3],
    ]);
    expect(ds.train[0]?.path).toBe(path.join(root, '001.Black_footed_Albatross', 'p.tif'));
    expect(ds.test).toEqual([]);
    expect(ds.root).toBe(root);
  });

  it('includeHidden reads dot-folders and dot-files as torchvision does', async () => {
    const ds = await loadImageFolder(path.join(tmp, 'flat'), { includeHidden: true });
    expect(ds.classes.map((c) => c.rawName ?? c.name)).toEqual([
      '.ipynb_checkpoints',
      '001.Black_footed_Albatross',
      'Zebra',
      'a_cls',
      'b_cls',
    ]);
    expect(ds.train.map((r) => r.id)).toContain('b_cls/.hidden.jpg');
  });

  it('auto-detects root/train + root/test and labels test with the train class ids', async () => {
    const root = path.join(tmp, 'split');
    for (const c of ['cat', 'dog', 'emu']) await put(path.join(root, 'train', c, `${c}1.jpg`));
    await put(path.join(root, 'test', 'emu', 'e.jpg'));
    await put(path.join(root, 'test', 'cat', 'c.jpg'));
    const ds = await loadImageFolder(root, { metaclass: 'animal' });
    expect(ds.metaclass).toBe('animal');
    expect(ds.classes.map((c) => c.name)).toEqual(['cat', 'dog', 'emu']);
    expect(ds.train.map((r) => r.id)).toEqual(['train/cat/cat1.jpg', 'train/dog/dog1.jpg', 'train/emu/emu1.jpg']);
    // 'dog' is missing from test: 'emu' keeps id 2 (torchvision would give it 1).
    expect(ds.test.map((r) => [r.id, r.label])).toEqual([
      ['test/cat/c.jpg', 0],
      ['test/emu/e.jpg', 2],
    ]);
  });

  it('falls back to root/val when there is no root/test', async () => {
    const root = path.join(tmp, 'val');
    await put(path.join(root, 'train', 'a', '1.jpg'));
    await put(path.join(root, 'val', 'a', '2.jpg'));
    const ds = await loadImageFolder(root);
    expect(ds.test.map((r) => r.id)).toEqual(['val/a/2.jpg']);
  });

  it('takes explicit train/test folders, inside or outside root', async () => {
    const outside = path.join(tmp, 'elsewhere-test');
    await put(path.join(outside, 'cat', 'o.jpg'));
    const ds = await loadImageFolder(path.join(tmp, 'split'), { train: 'train', test: outside });
    expect(ds.train).toHaveLength(3);
    expect(ds.test.map((r) => [r.id, r.label])).toEqual([['test/cat/o.jpg', 0]]);
    expect(ds.test[0]?.path).toBe(path.join(outside, 'cat', 'o.jpg'));
  });

  it('honours a class list (order = ids) and refuses names that would escape', async () => {
    const root = path.join(tmp, 'split');
    const ds = await loadImageFolder(root, { classes: ['emu', 'cat'] });
    expect(ds.classes.map((c) => c.name)).toEqual(['emu', 'cat']);
    expect(ds.train.map((r) => [r.id, r.label])).toEqual([
      ['train/emu/emu1.jpg', 0],
      ['train/cat/cat1.jpg', 1],
    ]);
    expect(ds.test.map((r) => [r.id, r.label])).toEqual([
      ['test/emu/e.jpg', 0],
      ['test/cat/c.jpg', 1],
    ]);
    await expect(loadImageFolder(root, { classes: ['../../etc'] })).rejects.toBeInstanceOf(UnsafePathError);
    await expect(loadImageFolder(root, { classes: ['..'] })).rejects.toBeInstanceOf(UnsafePathError);
    await expect(loadImageFolder(root, { classes: ['cat/../dog'] })).rejects.toBeInstanceOf(UnsafePathError);
    await expect(loadImageFolder(root, { classes: ['/etc'] })).rejects.toBeInstanceOf(UnsafePathError);
    await expect(loadImageFolder(root, { classes: ['lion'] })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('rejects an empty class folder, naming it', async () => {
    const root = path.join(tmp, 'empty');
    await put(path.join(root, 'full', '1.jpg'));
    await put(path.join(root, 'hollow', 'readme.txt'), 'no images here');
    const err = await loadImageFolder(root).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as DatasetFormatError).file).toBe(path.join(root, 'hollow'));
  });

  it('rejects a test class that train does not have', async () => {
    const root = path.join(tmp, 'extra');
    await put(path.join(root, 'train', 'a', '1.jpg'));
    await put(path.join(root, 'test', 'b', '1.jpg'));
    await expect(loadImageFolder(root)).rejects.toThrow(/no counterpart in the train folder/);
  });

  it('reports a missing root and a root without class folders', async () => {
    await expect(loadImageFolder(path.join(tmp, 'nope'))).rejects.toBeInstanceOf(NotFoundError);
    const root = path.join(tmp, 'noclasses');
    await put(path.join(root, 'loose.jpg'));
    await expect(loadImageFolder(root)).rejects.toBeInstanceOf(DatasetFormatError);
  });

  it('follows symlinked class folders', async () => {
    const root = path.join(tmp, 'links');
    await put(path.join(tmp, 'link-target', 'img.jpg'));
    await put(path.join(root, 'real', 'r.jpg'));
    await mkdir(root, { recursive: true });
    await symlink(path.join(tmp, 'link-target'), path.join(root, 'linked'), 'dir');
    const ds = await loadImageFolder(root);
    expect(ds.train.map((r) => r.id)).toEqual(['linked/img.jpg', 'real/r.jpg']);
  });
});

describe('compareCodePoints', () => {
  it('orders by code point like Python sorted(), not by UTF-16 unit', () => {
    const names = ['\u{1F600}', '\uFFFD', 'b', 'B', 'a', 'ab', ''];
    expect(names.slice().sort(compareCodePoints)).toEqual(['', 'B', 'a', 'ab', 'b', '\uFFFD', '\u{1F600}']);
    // The default sort would put the astral character first (surrogate 0xD83D < 0xFFFD).
    expect(['\uFFFD', '\u{1F600}'].sort()).toEqual(['\u{1F600}', '\uFFFD']);
  });
  it('IMG_EXTENSIONS is torchvision’s list', () => {
    expect(IMG_EXTENSIONS).toEqual(['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp']);
  });
});
