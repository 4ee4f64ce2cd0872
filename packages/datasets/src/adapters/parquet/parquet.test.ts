import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DatasetFormatError, NotFoundError } from '@diffmix/core';
import { parquetWriteBuffer } from 'hyparquet-writer';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadParquet } from './index.js';

let tmp: string;
let counter = 0;
const colours = ['#ff0000', '#00ff00', '#0000ff', '#123456', '#abcdef', '#777777', '#000000'];
let jpegs: Uint8Array[];

interface Row {
  image: Uint8Array | null;
  path?: string | null;
  label: number | string;
  text?: string;
}

/** HF-style metadata: {"info": {"features": {...}}} as `datasets` writes it. */
function hfMetadata(names: string[], labelColumn = 'label'): string {
  return JSON.stringify({
    info: {
      features: {
        image: { _type: 'Image' },
        [labelColumn]: { names, _type: 'ClassLabel' },
        text: { dtype: 'string', _type: 'Value' },
      },
    },
  });
}

/**
 * Writes a parquet file like `datasets` does: image struct<bytes: binary, path: string>, label
 * int64, optional text; `plainImage` writes a bare binary image column instead.
 */
async function writeParquet(
  file: string,
  rows: Row[],
  opts: {
    names?: string[];
    plainImage?: boolean;
    stringLabels?: boolean;
    gzip?: boolean;
    rowGroupSize?: number;
    labelColumn?: string;
  } = {},
) {
  const labelColumn = opts.labelColumn ?? 'label';
  const hasText = rows.some((r) => r.text !== undefined);
  const columnData = [
    {
      name: 'image',
      data: opts.plainImage ? rows.map((r) => r.image) : rows.map((r) => ({ bytes: r.image, path: r.path ?? null })),
    },
    { name: labelColumn, data: rows.map((r) => (opts.stringLabels ? String(r.label) : BigInt(r.label))) },
    ...(hasText ? [{ name: 'text', data: rows.map((r) => r.text ?? null) }] : []),
  ];
  const schema = [
    { name: 'schema', num_children: columnData.length },
    ...(opts.plainImage
      ? [{ name: 'image', type: 'BYTE_ARRAY' as const, repetition_type: 'OPTIONAL' as const }]
      : [
          { name: 'image', repetition_type: 'OPTIONAL' as const, num_children: 2 },
          { name: 'bytes', type: 'BYTE_ARRAY' as const, repetition_type: 'OPTIONAL' as const },
          { name: 'path', type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'OPTIONAL' as const },
        ]),
    opts.stringLabels
      ? { name: labelColumn, type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'OPTIONAL' as const }
      : { name: labelColumn, type: 'INT64' as const, repetition_type: 'OPTIONAL' as const },
    ...(hasText
      ? [{ name: 'text', type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'OPTIONAL' as const }]
      : []),
  ];
  const buffer = parquetWriteBuffer({
    columnData,
    schema,
    ...(opts.names ? { kvMetadata: [{ key: 'huggingface', value: hfMetadata(opts.names, labelColumn) }] } : {}),
    ...(opts.gzip
      ? { codec: 'GZIP' as const, compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gzipSync(input)) } }
      : {}),
    rowGroupSize: opts.rowGroupSize ?? 1000,
  });
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, new Uint8Array(buffer));
}

const NAMES = ['001.Black_footed_Albatross', '002.Laysan_Albatross', 'F/A-18'];

function rows(labels: number[], first = 0, withText = true): Row[] {
  return labels.map((label, i) => ({
    image: jpegs[(first + i) % jpegs.length] as Uint8Array,
    path: `img${first + i}.jpg`,
    label,
    ...(withText ? { text: `caption ${first + i}` } : {}),
  }));
}

async function hubLayout(): Promise<string> {
  const root = path.join(tmp, `hub-${counter++}`);
  await writeParquet(path.join(root, 'data', 'train-00000-of-00002.parquet'), rows([0, 1, 2], 0), {
    names: NAMES,
    rowGroupSize: 2,
  });
  await writeParquet(path.join(root, 'data', 'train-00001-of-00002.parquet'), rows([2, 0], 3), { names: NAMES, gzip: true });
  await writeParquet(path.join(root, 'data', 'test-00000-of-00001.parquet'), rows([1, 0], 5), { names: NAMES });
  return root;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'diffmix-parquet-'));
  jpegs = await Promise.all(
    colours.map(
      async (background) =>
        new Uint8Array(
          await sharp({ create: { width: 8, height: 8, channels: 3, background } })
            .jpeg()
            .toBuffer(),
        ),
    ),
  );
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loadParquet', () => {
  it('reads the Hub layout: data/train-*-of-*.parquet shards, struct image column, ClassLabel names, captions', async () => {
    const root = await hubLayout();
    const ds = await loadParquet(root, { metaclass: 'bird' });
    expect(ds.name).toBe(path.basename(root));
    expect(ds.metaclass).toBe('bird');
    expect(ds.classes).toEqual([
      { id: 0, name: 'Black footed Albatross', rawName: '001.Black_footed_Albatross' },
      { id: 1, name: 'Laysan Albatross', rawName: '002.Laysan_Albatross' },
      { id: 2, name: 'F/A-18' },
    ]);
    expect(ds.train.map((r) => [r.id, r.label, r.caption])).toEqual([
      ['data/train-00000-of-00002.parquet#0', 0, 'caption 0'],
      ['data/train-00000-of-00002.parquet#1', 1, 'caption 1'],
      ['data/train-00000-of-00002.parquet#2', 2, 'caption 2'],
      ['data/train-00001-of-00002.parquet#0', 2, 'caption 3'],
      ['data/train-00001-of-00002.parquet#1', 0, 'caption 4'],
    ]);
    expect(ds.test.map((r) => [r.id, r.label])).toEqual([
      ['data/test-00000-of-00001.parquet#0', 1],
      ['data/test-00000-of-00001.parquet#1', 0],
    ]);
    ds.train.forEach((r, i) => {
      expect(r.path).toBeUndefined();
      expect(Buffer.from(r.bytes as Uint8Array).equals(Buffer.from(jpegs[i] as Uint8Array))).toBe(true);
    });
    const meta = await sharp(ds.test[0]?.bytes).metadata();
    expect([meta.format, meta.width]).toEqual(['jpeg', 8]);
  });

  it('reads a single file as the train split, and explicit train/test lists', async () => {
    const root = await hubLayout();
    const one = await loadParquet(path.join(root, 'data', 'test-00000-of-00001.parquet'));
    expect(one.name).toBe('test-00000-of-00001');
    expect(one.train.map((r) => r.id)).toEqual(['test-00000-of-00001.parquet#0', 'test-00000-of-00001.parquet#1']);
    expect(one.test).toEqual([]);
    const explicit = await loadParquet(root, {
      train: ['data/train-00001-of-00002.parquet'],
      test: 'data/test-00000-of-00001.parquet',
    });
    expect(explicit.train).toHaveLength(2);
    expect(explicit.test).toHaveLength(2);
  });

  it('finds train.parquet / test.parquet and <split>/ folders', async () => {
    const root = path.join(tmp, `flat-${counter++}`);
    await writeParquet(path.join(root, 'train.parquet'), rows([0, 1]), { names: NAMES });
    await writeParquet(path.join(root, 'trainval.parquet'), rows([0, 1, 2]), { names: NAMES }); // not a train shard
    await writeParquet(path.join(root, 'validation', '0000.parquet'), rows([2]), { names: NAMES });
    const ds = await loadParquet(root, { testSplit: 'validation' });
    expect(ds.train.map((r) => r.id)).toEqual(['train.parquet#0', 'train.parquet#1']);
    expect(ds.test.map((r) => r.id)).toEqual(['validation/0000.parquet#0']);
  });

  it('supports a plain binary image column and names given as an option, without a caption column', async () => {
    const root = path.join(tmp, `plain-${counter++}`);
    await writeParquet(path.join(root, 'train-00000-of-00001.parquet'), rows([1, 0, 1], 0, false), { plainImage: true });
    const ds = await loadParquet(root, { classNames: ['cat', 'dog'] });
    expect(ds.classes.map((c) => c.name)).toEqual(['cat', 'dog']);
    expect(ds.train.map((r) => [r.label, r.caption])).toEqual([
      [1, undefined],
      [0, undefined],
      [1, undefined],
    ]);
    expect(Buffer.from(ds.train[1]?.bytes as Uint8Array).equals(Buffer.from(jpegs[1] as Uint8Array))).toBe(true);
    await expect(loadParquet(root)).rejects.toThrow(/no class names/);
  });

  it('maps string labels to sorted class names, and honours column options', async () => {
    const root = path.join(tmp, `strings-${counter++}`);
    const r = rows([0, 0, 0]).map((row, i) => ({ ...row, label: ['zebra', 'ant', 'zebra'][i] as string }));
    await writeParquet(path.join(root, 'train.parquet'), r, { stringLabels: true, labelColumn: 'species' });
    const ds = await loadParquet(root, { labelColumn: 'species', captionColumn: null });
    expect(ds.classes.map((c) => c.name)).toEqual(['ant', 'zebra']);
    expect(ds.train.map((x) => [x.label, x.caption])).toEqual([
      [1, undefined],
      [0, undefined],
      [1, undefined],
    ]);
    await expect(loadParquet(root, { labelColumn: 'species', classNames: ['ant'] })).rejects.toThrow(
      /label "zebra" is not a known class name/,
    );
  });

  it('rejects a label out of range, naming file and row', async () => {
    const root = path.join(tmp, `range-${counter++}`);
    await writeParquet(path.join(root, 'train.parquet'), rows([0, 1, 3]), { names: NAMES, rowGroupSize: 2 });
    const err = (await loadParquet(root).catch((e: unknown) => e)) as DatasetFormatError;
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect(err.file).toBe(`${path.join(root, 'train.parquet')}:row 2`);
    expect(err.message).toContain('label 3 out of range 0..2');
    const root2 = path.join(tmp, `range-${counter++}`);
    await writeParquet(path.join(root2, 'train.parquet'), rows([0, -1]), { names: NAMES });
    await expect(loadParquet(root2)).rejects.toThrow(/-1: unlabelled row/);
  });

  it('rejects missing columns, path-only images, a missing shard, conflicting names and non-parquet files', async () => {
    const root = await hubLayout();
    await expect(loadParquet(root, { imageColumn: 'img' })).rejects.toThrow(/no column "img" \(columns: image, label, text\)/);
    await expect(loadParquet(root, { captionColumn: 'description' })).rejects.toThrow(/no caption column "description"/);

    const pathOnly = path.join(tmp, `pathonly-${counter++}`);
    await writeParquet(path.join(pathOnly, 'train.parquet'), [{ image: null, path: '/home/someone/cache/a.jpg', label: 0 }], {
      names: NAMES,
    });
    await expect(loadParquet(pathOnly)).rejects.toThrow(/holds only a path/);

    const gap = path.join(tmp, `gap-${counter++}`);
    await writeParquet(path.join(gap, 'data', 'train-00000-of-00003.parquet'), rows([0]), { names: NAMES });
    await writeParquet(path.join(gap, 'data', 'train-00002-of-00003.parquet'), rows([0]), { names: NAMES });
    await expect(loadParquet(gap)).rejects.toThrow(/shard 1 of 3 is missing/);

    const conflict = path.join(tmp, `conflict-${counter++}`);
    await writeParquet(path.join(conflict, 'train.parquet'), rows([0]), { names: NAMES });
    await writeParquet(path.join(conflict, 'test.parquet'), rows([0]), { names: ['x', 'y', 'z'] });
    await expect(loadParquet(conflict)).rejects.toThrow(/ClassLabel names differ/);

    const junk = path.join(tmp, `junk-${counter++}`);
    await mkdir(junk, { recursive: true });
    await writeFile(path.join(junk, 'train.parquet'), 'not parquet at all');
    await expect(loadParquet(junk)).rejects.toBeInstanceOf(DatasetFormatError);

    await expect(loadParquet(path.join(tmp, 'absent'))).rejects.toBeInstanceOf(NotFoundError);
    const empty = path.join(tmp, `empty-${counter++}`);
    await mkdir(empty, { recursive: true });
    await expect(loadParquet(empty)).rejects.toBeInstanceOf(NotFoundError);
    await expect(loadParquet(root, { train: 'data/nope.parquet' })).rejects.toBeInstanceOf(NotFoundError);
  });
});
