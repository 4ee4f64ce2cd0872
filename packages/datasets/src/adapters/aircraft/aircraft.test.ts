import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatasetFormatError, InvalidArgumentError, NotFoundError } from '@diffmix/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanAircraftName, loadAircraft } from './index.js';

let tmp: string;
let jpeg: Buffer;
let counter = 0;

const VARIANTS = ['707-320', 'F/A-18', 'Cessna 172'];
const FAMILIES = ['Boeing 707', 'F/A-18', 'Cessna 172'];
// image id → variant index; the split each image belongs to
const IMAGES: Array<[string, number, 'train' | 'val' | 'test']> = [
  ['1025794', 0, 'train'],
  ['1340192', 0, 'val'],
  ['0056978', 0, 'test'],
  ['0062781', 1, 'train'],
  ['0175203', 1, 'val'],
  ['1138091', 1, 'test'],
  ['0822183', 2, 'train'],
  ['2222222', 2, 'train'],
  ['1907062', 2, 'test'],
];

type Override = Partial<Record<string, string | null>>;

/** `fgvc-aircraft-2013b/data/…` in the official formats; `override` maps a data/ file name to its text (null = absent). */
async function makeAircraft(override: Override = {}): Promise<string> {
  const root = path.join(tmp, `fgvc-${counter++}`, 'fgvc-aircraft-2013b');
  const data = path.join(root, 'data');
  await mkdir(path.join(data, 'images'), { recursive: true });
  const files: Record<string, string> = {
    'variants.txt': VARIANTS.join('\n') + '\n',
    'families.txt': FAMILIES.join('\n') + '\n',
  };
  for (const level of ['variant', 'family'] as const) {
    const names = level === 'variant' ? VARIANTS : FAMILIES;
    const line = ([id, c]: [string, number, string]) => `${id} ${names[c]}\n`;
    files[`images_${level}_train.txt`] = IMAGES.filter((i) => i[2] === 'train')
      .map(line)
      .join('');
    files[`images_${level}_val.txt`] = IMAGES.filter((i) => i[2] === 'val')
      .map(line)
      .join('');
    files[`images_${level}_trainval.txt`] = IMAGES.filter((i) => i[2] !== 'test')
      .map(line)
      .join('');
    files[`images_${level}_test.txt`] = IMAGES.filter((i) => i[2] === 'test')
      .map(line)
      .join('');
  }
  for (const [name, text] of Object.entries({ ...files, ...override })) {
    if (text !== null && text !== undefined) await writeFile(path.join(data, name), text);
  }
  for (const [id] of IMAGES) await writeFile(path.join(data, 'images', `${id}.jpg`), jpeg);
  return root;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'diffmix-aircraft-'));
  jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } })
    .jpeg()
    .toBuffer();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loadAircraft', () => {
  it('reads variants with the train split by default', async () => {
    const root = await makeAircraft();
    const ds = await loadAircraft(root);
    expect(ds.name).toBe('aircraft');
    expect(ds.metaclass).toBe('aircraft');
    expect(ds.classes).toEqual([
      { id: 0, name: '707-320' },
      { id: 1, name: 'F A-18', rawName: 'F/A-18' },
      { id: 2, name: 'Cessna 172' },
    ]);
    expect(ds.train.map((r) => [r.id, r.label])).toEqual([
      ['data/images/1025794.jpg', 0],
      ['data/images/0062781.jpg', 1],
      ['data/images/0822183.jpg', 2],
      ['data/images/2222222.jpg', 2],
    ]);
    expect(ds.test.map((r) => r.id)).toEqual(['data/images/0056978.jpg', 'data/images/1138091.jpg', 'data/images/1907062.jpg']);
    expect(ds.train[0]?.path).toBe(path.join(root, 'data', 'images', '1025794.jpg'));
  });

  it('trainSplit trainval, testSplit val, family level', async () => {
    const root = await makeAircraft();
    expect((await loadAircraft(root, { trainSplit: 'trainval' })).train).toHaveLength(6);
    expect((await loadAircraft(root, { testSplit: 'val' })).test.map((r) => r.id)).toEqual([
      'data/images/1340192.jpg',
      'data/images/0175203.jpg',
    ]);
    const fam = await loadAircraft(root, { level: 'family' });
    expect(fam.classes.map((c) => c.name)).toEqual(['Boeing 707', 'F A-18', 'Cessna 172']);
    expect(fam.train.map((r) => r.label)).toEqual([0, 1, 2, 2]);
    await expect(loadAircraft(root, { trainSplit: 'trainval', testSplit: 'val' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(loadAircraft(root, { level: 'model' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('accepts the data/ folder or the folder holding fgvc-aircraft-2013b as root; ids stay relative to root', async () => {
    const root = await makeAircraft();
    expect((await loadAircraft(path.join(root, 'data'))).train[0]?.id).toBe('images/1025794.jpg');
    expect((await loadAircraft(path.dirname(root))).train[0]?.id).toBe('fgvc-aircraft-2013b/data/images/1025794.jpg');
  });

  it('names a missing split or class file', async () => {
    let root = await makeAircraft({ 'images_variant_train.txt': null });
    let err = await loadAircraft(root).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).file).toBe(path.join(root, 'data', 'images_variant_train.txt'));
    root = await makeAircraft({ 'families.txt': null });
    err = await loadAircraft(root, { level: 'family' }).catch((e: unknown) => e);
    expect((err as NotFoundError).file).toBe(path.join(root, 'data', 'families.txt'));
    await expect(loadAircraft(path.join(tmp, 'missing'))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('rejects an unknown class name, naming file and line', async () => {
    const root = await makeAircraft({ 'images_variant_test.txt': '0056978 707-320\n1138091 F-16A/B\n' });
    const err = (await loadAircraft(root).catch((e: unknown) => e)) as DatasetFormatError;
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect(err.file).toBe(`${path.join(root, 'data', 'images_variant_test.txt')}:2`);
    expect(err.message).toContain('"F-16A/B" is not in variants.txt');
  });

  it('rejects an image listed twice (within or across splits) and bad ids', async () => {
    let root = await makeAircraft({ 'images_variant_test.txt': '1025794 707-320\n' });
    let err = (await loadAircraft(root).catch((e: unknown) => e)) as DatasetFormatError;
    expect(err.file).toMatch(/images_variant_test\.txt:1$/);
    expect(err.message).toMatch(/already listed at .*images_variant_train\.txt:1/);
    root = await makeAircraft({ 'images_variant_test.txt': '../../x 707-320\n' });
    err = (await loadAircraft(root).catch((e: unknown) => e)) as DatasetFormatError;
    expect(err.message).toMatch(/bad image id/);
    root = await makeAircraft({ 'images_variant_test.txt': '1234567\n' });
    err = (await loadAircraft(root).catch((e: unknown) => e)) as DatasetFormatError;
    expect(err.message).toMatch(/expected at least 2 fields/);
  });

  it('rejects a class with no training image and duplicate class names', async () => {
    let root = await makeAircraft({ 'images_variant_train.txt': '1025794 707-320\n0062781 F/A-18\n' });
    await expect(loadAircraft(root)).rejects.toThrow(/class\(es\) with no images: Cessna 172/);
    root = await makeAircraft({ 'variants.txt': '707-320\nF/A-18\n707-320\n' });
    await expect(loadAircraft(root)).rejects.toThrow(/variants\.txt:3: class "707-320" listed twice/);
  });

  it('cleanAircraftName', () => {
    expect(cleanAircraftName('F/A-18')).toBe('F A-18');
    expect(cleanAircraftName('DHC-8-100')).toBe('DHC-8-100');
    expect(cleanAircraftName('Falcon 2000')).toBe('Falcon 2000');
  });
});

describe.skipIf(!process.env.DIFFMIX_AIRCRAFT_ROOT)(
  'loadAircraft on the real fgvc-aircraft-2013b (DIFFMIX_AIRCRAFT_ROOT)',
  () => {
    it('has 100 variants, 3,334 train, 6,667 trainval and 3,333 test images', async () => {
      const root = process.env.DIFFMIX_AIRCRAFT_ROOT as string;
      const ds = await loadAircraft(root);
      expect(ds.classes).toHaveLength(100);
      expect(ds.train).toHaveLength(3334);
      expect(ds.test).toHaveLength(3333);
      expect((await loadAircraft(root, { trainSplit: 'trainval' })).train).toHaveLength(6667);
      expect((await loadAircraft(root, { level: 'family' })).classes).toHaveLength(70);
      expect((await loadAircraft(root, { level: 'manufacturer' })).classes).toHaveLength(30);
    });
  },
);
