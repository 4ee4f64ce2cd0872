import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { DatasetFormatError, InvalidArgumentError, NotFoundError } from '@diffmix/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeIndexMask, largestInstanceLabel, loadVoc, VOC_CLASS_NAMES, vocColormap } from './index.js';

// ---- a minimal palette-PNG writer (what the VOC devkit files are: 8-bit, PLTE = VOC colormap) ----

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** Encodes `indices` (one byte per pixel) as a palette PNG; row filters cycle through 0..4 to exercise the decoder. */
function palettePng(
  width: number,
  height: number,
  indices: Uint8Array,
  opts: { bitDepth?: 1 | 2 | 4 | 8; palette?: Uint8Array } = {},
): Buffer {
  const bitDepth = opts.bitDepth ?? 8;
  const palette = opts.palette ?? vocColormap();
  const stride = Math.ceil((width * bitDepth) / 8);
  const packed = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const bit = x * bitDepth;
      const at = y * stride + (bit >> 3);
      packed[at] = (packed[at] as number) | ((indices[y * width + x] as number) << (8 - bitDepth - (bit & 7)));
    }
  const bpp = Math.max(1, bitDepth >> 3);
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const filter = y % 5;
    raw[y * (stride + 1)] = filter;
    for (let x = 0; x < stride; x++) {
      const v = packed[y * stride + x] as number;
      const a = x >= bpp ? (packed[y * stride + x - bpp] as number) : 0;
      const b = y > 0 ? (packed[(y - 1) * stride + x] as number) : 0;
      const c = x >= bpp && y > 0 ? (packed[(y - 1) * stride + x - bpp] as number) : 0;
      const pa = Math.abs(b - c);
      const pb = Math.abs(a - c);
      const pc = Math.abs(a + b - 2 * c);
      const paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      const p = [0, a, b, (a + b) >> 1, paeth][filter] as number;
      raw[y * (stride + 1) + 1 + x] = (v - p) & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = 3; // palette
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('PLTE', palette.subarray(0, 3 * 2 ** bitDepth)),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** A W×H mask from rows of characters: '.' = 0, '#' = 255, digits = value, letters a..k = 10..20. */
function grid(rows: string[]): { width: number; height: number; data: Uint8Array } {
  const height = rows.length;
  const width = (rows[0] as string).length;
  const data = new Uint8Array(width * height);
  rows.forEach((r, y) => {
    for (let x = 0; x < width; x++) {
      const ch = r[x] as string;
      data[y * width + x] = ch === '.' ? 0 : ch === '#' ? 255 : /\d/.test(ch) ? Number(ch) : ch.charCodeAt(0) - 87;
    }
  });
  return { width, height, data };
}

// ---- fixtures ----

let tmp: string;
let jpeg: Buffer;
let counter = 0;

interface Sample {
  id: string;
  cls: string[];
  obj: string[];
}

// person = 15, dog = 12, cat = 8, car = 7, bird = 3
const SAMPLES: Record<string, Sample> = {
  // a small person (instance 1) and a big dog (instance 2), void borders: dog
  dogBig: {
    id: '2007_000032',
    cls: ['......', '.ff#..', '.ff#..', '#cccc#', 'cccccc', 'cccccc'],
    obj: ['......', '.11#..', '.11#..', '#2222#', '222222', '222222'],
  },
  // two instances with equal pixel counts: the first (lower instance number) wins: cat
  tie: {
    id: '2007_000033',
    cls: ['.888777', '.888777', '#######'],
    obj: ['.111222', '.111222', '#######'],
  },
  // no void pixels: np.unique → [0, 1, 2]; the *last* (instance 2, the big car) gets zeroed, so bird wins
  noVoid: {
    id: '2007_000039',
    cls: ['3.7777', '..7777', '..7777'],
    obj: ['1.2222', '..2222', '..2222'],
  },
  // only background and void: argmax falls on value 0, class index 0 - 1 = -1 → 'television' (Python wrap-around)
  nothing: {
    id: '2007_000042',
    cls: ['..##', '..##'],
    obj: ['..##', '..##'],
  },
  // many instances of one class, labelled by the largest one; the class mask decides the label: person
  crowd: {
    id: '2008_000001',
    cls: ['ff.ff.ff', 'ff.ff.ff', '........'],
    obj: ['11.22.33', '11.23.33', '........'],
  },
};

async function makeVoc(
  opts: { train?: string[]; val?: string[]; skip?: string[]; nest?: boolean; bitDepth?: 4 | 8 } = {},
): Promise<{ root: string; voc: string }> {
  const root = path.join(tmp, `voc-${counter++}`);
  const voc = opts.nest ? path.join(root, 'VOCdevkit', 'VOC2012') : root;
  for (const d of ['ImageSets/Segmentation', 'JPEGImages', 'SegmentationClass', 'SegmentationObject'])
    await mkdir(path.join(voc, d), { recursive: true });
  const train = opts.train ?? ['dogBig', 'tie', 'noVoid'];
  const val = opts.val ?? ['nothing', 'crowd'];
  await writeFile(path.join(voc, 'ImageSets/Segmentation/train.txt'), train.map((k) => `${SAMPLES[k]?.id ?? k}\n`).join(''));
  await writeFile(path.join(voc, 'ImageSets/Segmentation/val.txt'), val.map((k) => `${SAMPLES[k]?.id ?? k}\n`).join(''));
  for (const s of Object.values(SAMPLES)) {
    await writeFile(path.join(voc, 'JPEGImages', `${s.id}.jpg`), jpeg);
    const c = grid(s.cls);
    const o = grid(s.obj);
    if (!opts.skip?.includes(`cls:${s.id}`))
      await writeFile(path.join(voc, 'SegmentationClass', `${s.id}.png`), palettePng(c.width, c.height, c.data));
    if (!opts.skip?.includes(`obj:${s.id}`))
      await writeFile(path.join(voc, 'SegmentationObject', `${s.id}.png`), palettePng(o.width, o.height, o.data));
  }
  return { root, voc };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'diffmix-voc-'));
  jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } })
    .jpeg()
    .toBuffer();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const nameOf = (label: number) => VOC_CLASS_NAMES[label];

describe('decodeIndexMask', () => {
  it('reads raw palette indices of an 8-bit palette PNG (all five row filters)', async () => {
    const data = new Uint8Array(7 * 11).map((_, i) => [0, 1, 5, 20, 255, 3][i % 6] as number);
    const mask = await decodeIndexMask(palettePng(7, 11, data), 'a.png');
    expect([mask.width, mask.height]).toEqual([7, 11]);
    expect(Array.from(mask.data)).toEqual(Array.from(data));
  });

  it('reads 4-bit palette PNGs', async () => {
    const data = new Uint8Array(5 * 6).map((_, i) => i % 16);
    const mask = await decodeIndexMask(palettePng(5, 6, data, { bitDepth: 4 }), 'b.png');
    expect(Array.from(mask.data)).toEqual(Array.from(data));
  });

  it('maps a non-VOC palette order back through the colours', async () => {
    // palette entry 0 = VOC colour of 12 (dog), entry 1 = VOC colour of 0 (background)
    const cmap = vocColormap();
    const palette = new Uint8Array(256 * 3);
    palette.set(cmap.subarray(12 * 3, 13 * 3), 0);
    palette.set(cmap.subarray(0, 3), 3);
    const mask = await decodeIndexMask(palettePng(2, 1, new Uint8Array([0, 1]), { palette }), 'c.png');
    expect(Array.from(mask.data)).toEqual([12, 0]);
  });

  it('decodes RGB masks (and sharp-quantised palette masks) through the VOC colormap', async () => {
    const cmap = vocColormap();
    const values = [0, 15, 12, 255, 15, 0];
    const rgb = Buffer.alloc(values.length * 3);
    values.forEach((v, i) => {
      rgb.set(cmap.subarray(v * 3, v * 3 + 3), i * 3);
    });
    const png = await sharp(rgb, { raw: { width: 3, height: 2, channels: 3 } })
      .png()
      .toBuffer();
    expect(Array.from((await decodeIndexMask(new Uint8Array(png), 'rgb.png')).data)).toEqual(values);
    const quantised = await sharp(rgb, { raw: { width: 3, height: 2, channels: 3 } })
      .png({ palette: true, dither: 0 })
      .toBuffer();
    expect(Array.from((await decodeIndexMask(new Uint8Array(quantised), 'q.png')).data)).toEqual(values);
  });

  it('rejects colours outside the VOC colormap and non-PNG bytes', async () => {
    const png = await sharp(Buffer.from([1, 2, 3]), { raw: { width: 1, height: 1, channels: 3 } })
      .png()
      .toBuffer();
    await expect(decodeIndexMask(new Uint8Array(png), 'odd.png')).rejects.toThrow(
      /odd\.png: colour rgb\(1, 2, 3\) is not in the VOC colormap/,
    );
    await expect(decodeIndexMask(new Uint8Array([1, 2, 3]), 'x.png')).rejects.toBeInstanceOf(DatasetFormatError);
  });

  it('vocColormap matches the devkit', () => {
    const cmap = vocColormap();
    const at = (i: number) => Array.from(cmap.subarray(i * 3, i * 3 + 3));
    expect(at(0)).toEqual([0, 0, 0]);
    expect(at(1)).toEqual([128, 0, 0]);
    expect(at(15)).toEqual([192, 128, 128]);
    expect(at(20)).toEqual([0, 64, 128]);
    expect(at(255)).toEqual([224, 224, 192]);
  });
});

describe('largestInstanceLabel', () => {
  it('rejects masks of different sizes and class indices above 20', () => {
    const a = grid(['11']);
    expect(() => largestInstanceLabel(grid(['1']), a, 'm.png')).toThrow(DatasetFormatError);
    expect(() =>
      largestInstanceLabel({ width: 3, height: 1, data: new Uint8Array([0, 21, 255]) }, grid(['.1#']), 'm.png'),
    ).toThrow(/class index 21/);
  });
});

describe('loadVoc', () => {
  it("labels each image by DA-Fusion's largest-instance rule", async () => {
    const { root } = await makeVoc();
    const ds = await loadVoc(root);
    expect(ds.name).toBe('voc');
    expect(ds.metaclass).toBe('object');
    expect(ds.classes).toHaveLength(20);
    expect(ds.classes[0]).toEqual({ id: 0, name: 'airplane', rawName: 'aeroplane' });
    expect(ds.classes[19]).toEqual({ id: 19, name: 'television', rawName: 'tvmonitor' });
    expect(ds.classes[2]).toEqual({ id: 2, name: 'bird' });
    expect(ds.train.map((r) => [r.id, nameOf(r.label)])).toEqual([
      ['JPEGImages/2007_000032.jpg', 'dog'],
      ['JPEGImages/2007_000033.jpg', 'cat'],
      ['JPEGImages/2007_000039.jpg', 'bird'],
    ]);
    expect(ds.test.map((r) => [r.id, nameOf(r.label)])).toEqual([
      ['JPEGImages/2007_000042.jpg', 'television'],
      ['JPEGImages/2008_000001.jpg', 'person'],
    ]);
    expect(ds.train[0]?.path).toBe(path.join(root, 'JPEGImages', '2007_000032.jpg'));
  });

  it('majority-class rule uses only SegmentationClass', async () => {
    const { root, voc } = await makeVoc({ val: ['crowd'] });
    await rm(path.join(voc, 'SegmentationObject'), { recursive: true });
    const ds = await loadVoc(root, { labelRule: 'majority-class' });
    // tie: cat and car have 6 px each, the lower class index (car = 7) wins;
    // noVoid: car (12 px) beats bird (1 px) here, unlike the largest-instance rule
    expect(ds.train.map((r) => nameOf(r.label))).toEqual(['dog', 'car', 'car']);
    await expect(loadVoc(root)).rejects.toBeInstanceOf(NotFoundError);
    const empty = await makeVoc({ train: ['nothing'] });
    await expect(loadVoc(empty.root, { labelRule: 'majority-class' })).rejects.toThrow(/no object pixels/);
  });

  it('finds VOCdevkit/VOC2012 under root; ids stay relative to root', async () => {
    const { root } = await makeVoc({ nest: true });
    const ds = await loadVoc(root);
    expect(ds.train[0]?.id).toBe('VOCdevkit/VOC2012/JPEGImages/2007_000032.jpg');
  });

  it('names missing image sets and masks', async () => {
    const { root, voc } = await makeVoc({ skip: ['obj:2007_000039'] });
    const err = (await loadVoc(root).catch((e: unknown) => e)) as NotFoundError;
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.file).toBe(path.join(voc, 'SegmentationObject', '2007_000039.png'));
    await rm(path.join(voc, 'ImageSets/Segmentation/val.txt'));
    await expect(loadVoc(root, { labelRule: 'majority-class' })).rejects.toThrow(/val\.txt: VOC image set val\.txt not found/);
    await expect(loadVoc(path.join(tmp, 'none'))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('rejects duplicate and malformed ids, naming file and line', async () => {
    let { root } = await makeVoc({ train: ['dogBig', 'tie'], val: ['crowd', 'tie'] });
    let err = (await loadVoc(root).catch((e: unknown) => e)) as DatasetFormatError;
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect(err.file).toMatch(/val\.txt:2$/);
    expect(err.message).toMatch(/already listed at .*train\.txt:2/);
    ({ root } = await makeVoc({ train: ['../../etc/passwd'] }));
    err = (await loadVoc(root).catch((e: unknown) => e)) as DatasetFormatError;
    expect(err.file).toMatch(/train\.txt:1$/);
    await expect(loadVoc(root, { labelRule: 'nope' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe.skipIf(!process.env.DIFFMIX_VOC_ROOT)('loadVoc on the real VOC2012 (DIFFMIX_VOC_ROOT)', () => {
  it('has 1,464 train and 1,449 val images', async () => {
    const ds = await loadVoc(process.env.DIFFMIX_VOC_ROOT as string);
    expect(ds.train).toHaveLength(1464);
    expect(ds.test).toHaveLength(1449);
  });
});
