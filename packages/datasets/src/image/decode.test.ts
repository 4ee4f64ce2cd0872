import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ImageDecodeError, NotFoundError, Rng } from '@diffmix/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, decodeRecord, encodePng, transformImage } from './decode.js';
import { cropImage, flipHorizontal } from './pixels.js';
import { crop, horizontalFlip, randomCrop, randomCropRegion, resize } from './steps.js';
import type { RgbImage } from './types.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'diffmix-decode-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A W×H RGB image whose bytes are all distinct-ish: (i * 37 + 11) mod 256. */
function patterned(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + 11) % 256;
  return { data, width, height, channels: 3 };
}

async function png(img: RgbImage): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png()
    .toBuffer();
}

/** The upright image an EXIF orientation asks for (reference implementation). */
function orient(img: RgbImage, o: number): RgbImage {
  const { width: W, height: H } = img;
  const swap = o >= 5;
  const w = swap ? H : W;
  const h = swap ? W : H;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [sx, sy] = (
        {
          1: [x, y],
          2: [W - 1 - x, y],
          3: [W - 1 - x, H - 1 - y],
          4: [x, H - 1 - y],
          5: [y, x],
          6: [y, H - 1 - x],
          7: [W - 1 - y, H - 1 - x],
          8: [W - 1 - y, x],
        } as Record<number, [number, number]>
      )[o] as [number, number];
      for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = img.data[(sy * W + sx) * 3 + c] as number;
    }
  }
  return { data: out, width: w, height: h, channels: 3 };
}

describe('decodeImage: colour and layout', () => {
  it('decodes an RGB PNG exactly', async () => {
    const img = patterned(5, 4);
    const out = await decodeImage(await png(img));
    expect(out).toEqual(img);
  });

  it('expands grayscale to R = G = B', async () => {
    const grey = new Uint8Array([0, 50, 100, 150, 200, 255]);
    const buf = await sharp(grey, { raw: { width: 3, height: 2, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    expect((await sharp(buf).metadata()).channels).toBe(1);
    const out = await decodeImage(buf);
    expect(out.channels).toBe(3);
    expect([...out.data]).toEqual([...grey].flatMap((v) => [v, v, v]));
  });

  it('converts CMYK JPEG to sRGB', async () => {
    const w = 16;
    const h = 16;
    const rgb = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) rgb.set(i < (w * h) / 2 ? [200, 60, 40] : [40, 90, 170], i * 3);
    const buf = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
      .toColourspace('cmyk')
      .jpeg({ quality: 95 })
      .toBuffer();
    const meta = await sharp(buf).metadata();
    expect(meta.space).toBe('cmyk');
    expect(meta.channels).toBe(4);
    const out = await decodeImage(buf);
    expect(out.channels).toBe(3);
    expect(out.data.length).toBe(w * h * 3);
    // CMYK round trip through the generic profile is not exact; the colours must still be close.
    const top = out.data.subarray((2 * w + 8) * 3, (2 * w + 8) * 3 + 3);
    const bottom = out.data.subarray((13 * w + 8) * 3, (13 * w + 8) * 3 + 3);
    [200, 60, 40].forEach((v, c) => {
      expect(Math.abs((top[c] as number) - v)).toBeLessThan(30);
    });
    [40, 90, 170].forEach((v, c) => {
      expect(Math.abs((bottom[c] as number) - v)).toBeLessThan(30);
    });
  });

  it('composites alpha over white by default, over black or drops it on request', async () => {
    // Pixels: opaque red, transparent green, half-transparent blue.
    const rgba = new Uint8Array([255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 128]);
    const buf = await sharp(rgba, { raw: { width: 3, height: 1, channels: 4 } })
      .png()
      .toBuffer();
    const white = await decodeImage(buf);
    expect([...white.data.subarray(0, 6)]).toEqual([255, 0, 0, 255, 255, 255]);
    const b = [...white.data.subarray(6, 9)];
    expect(b[0]).toBeGreaterThanOrEqual(126);
    expect(b[0]).toBeLessThanOrEqual(128);
    expect(b[2]).toBe(255);
    const black = await decodeImage(buf, { alpha: 'black' });
    expect([...black.data.subarray(0, 6)]).toEqual([255, 0, 0, 0, 0, 0]);
    expect(black.data[8]).toBeGreaterThanOrEqual(127);
    expect(black.data[8]).toBeLessThanOrEqual(129);
    const dropped = await decodeImage(buf, { alpha: 'drop' });
    expect([...dropped.data]).toEqual([255, 0, 0, 0, 255, 0, 0, 0, 255]);
  });

  it('reduces 16-bit PNG to 8 bits (v >> 8)', async () => {
    const w = 4;
    const h = 2;
    const raw16 = new Uint16Array(w * h * 3);
    for (let i = 0; i < raw16.length; i++) raw16[i] = (i * 2731 + 5) % 65536;
    const buf = await sharp(raw16, { raw: { width: w, height: h, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    const meta = await sharp(buf).metadata();
    expect(meta.depth).toBe('ushort');
    const out = await decodeImage(buf);
    expect([...out.data]).toEqual([...raw16].map((v) => v >> 8));
  });

  it('expands palette PNG', async () => {
    const img = patterned(6, 3);
    for (let i = 0; i < img.data.length; i += 3) img.data.set(i % 2 === 0 ? [10, 200, 30] : [250, 40, 90], i);
    const buf = await sharp(img.data, { raw: { width: 6, height: 3, channels: 3 } })
      .png({ palette: true, dither: 0 })
      .toBuffer();
    expect((await sharp(buf).metadata()).isPalette).toBe(true);
    expect(await decodeImage(buf)).toEqual(img);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('applies EXIF orientation %i', async (o) => {
    const img = patterned(5, 3);
    const buf = await sharp(img.data, { raw: { width: 5, height: 3, channels: 3 } })
      .png()
      .withMetadata({ orientation: o })
      .toBuffer();
    expect((await sharp(buf).metadata()).orientation).toBe(o);
    const upright = orient(img, o);
    expect(await decodeImage(buf)).toEqual(upright);
    // Steps work in upright coordinates, also when they are folded into the decoding pass.
    const region = { left: 1, top: 1, width: 2, height: 2 };
    expect(await decodeImage(buf, { steps: [crop(region)] })).toEqual(cropImage(upright, region));
    expect(await decodeImage(buf, { steps: [crop(region), horizontalFlip()] })).toEqual(
      flipHorizontal(cropImage(upright, region)),
    );
    const viaRaw = await transformImage(upright, [resize(7, 4), crop({ left: 2, top: 1, width: 4, height: 3 })]);
    expect(await decodeImage(buf, { steps: [resize(7, 4), crop({ left: 2, top: 1, width: 4, height: 3 })] })).toEqual(viaRaw);
  });

  it('applies EXIF orientation 6 to a JPEG (withMetadata)', async () => {
    const w = 32;
    const h = 16;
    const rgb = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rgb.set(x < w / 2 ? [220, 30, 30] : [30, 30, 220], (y * w + x) * 3);
    const buf = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const out = await decodeImage(buf);
    expect([out.width, out.height]).toEqual([16, 32]);
    // Rotated 90° clockwise: the left (red) half is now on top.
    expect(out.data[(4 * 16 + 8) * 3]).toBeGreaterThan(180);
    expect(out.data[(28 * 16 + 8) * 3 + 2]).toBeGreaterThan(180);
  });

  it('takes the first page of a multi-page file', async () => {
    const w = 4;
    const h = 3;
    const pages = new Uint8Array(w * h * 3 * 3);
    for (let p = 0; p < 3; p++) pages.fill(40 + 80 * p, p * w * h * 3, (p + 1) * w * h * 3);
    const tiff = await sharp(pages, { raw: { width: w, height: h * 3, channels: 3, pageHeight: h } })
      .tiff()
      .toBuffer();
    expect((await sharp(tiff).metadata()).pages).toBe(3);
    const out = await decodeImage(tiff);
    expect([out.width, out.height]).toEqual([w, h]);
    expect(out.data.every((v) => v === 40)).toBe(true);
    const resized = await decodeImage(tiff, { steps: [resize(2, 2)] });
    expect([resized.width, resized.height]).toEqual([2, 2]);
  });

  it('reads files and records', async () => {
    const img = patterned(3, 2);
    const file = path.join(dir, 'ok.png');
    await writeFile(file, await png(img));
    expect(await decodeImage(file)).toEqual(img);
    expect(await decodeRecord({ id: 'ok.png', label: 0, path: file })).toEqual(img);
    expect(await decodeRecord({ id: 'ok.png', label: 0, bytes: await png(img) })).toEqual(img);
  });
});

describe('decodeImage: damaged input', () => {
  async function jpeg(): Promise<Buffer> {
    const img = patterned(64, 48);
    return sharp(img.data, { raw: { width: 64, height: 48, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer();
  }

  it('rejects a truncated JPEG file, naming it', async () => {
    const full = await jpeg();
    const file = path.join(dir, 'truncated.jpg');
    await writeFile(file, full.subarray(0, Math.floor(full.length * 0.6)));
    const err = await decodeImage(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as ImageDecodeError).file).toBe(file);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(/premature end of JPEG/i);
    // Also when steps are folded in (the header alone is intact).
    await expect(decodeImage(file, { steps: [resize(10, 10)] })).rejects.toBeInstanceOf(ImageDecodeError);
    // A JPEG missing only its last bytes (entropy data cut) is caught too.
    await expect(decodeImage(full.subarray(0, full.length - 10), { name: 'cut-10' })).rejects.toThrow(/cut-10/);
  });

  it("decodes a truncated JPEG with failOn: 'none' (documents why the default is 'truncated')", async () => {
    const full = await jpeg();
    const out = await decodeImage(full.subarray(0, Math.floor(full.length * 0.6)), { failOn: 'none' });
    expect([out.width, out.height]).toEqual([64, 48]);
  });

  it('rejects a truncated PNG', async () => {
    const full = await png(patterned(64, 48));
    const file = path.join(dir, 'truncated.png');
    await writeFile(file, full.subarray(0, Math.floor(full.length * 0.7)));
    const err = await decodeImage(file).catch((e: unknown) => e);
    expect(ImageDecodeError.isInstance(err)).toBe(true);
    expect((err as Error).message).toContain(file);
  });

  it('rejects garbage, naming the record id for in-memory bytes', async () => {
    const bytes = new TextEncoder().encode('this is not an image at all');
    const err = await decodeRecord({ id: 'train/cat/001.jpg', label: 3, bytes }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as ImageDecodeError).file).toContain('train/cat/001.jpg');
    expect((err as Error).message).toMatch(/unsupported image format/);
  });

  it('rejects a corrupt file (bytes flipped in the middle of a PNG)', async () => {
    const buf = Buffer.from(await png(patterned(64, 48)));
    for (let i = 100; i < 140; i++) buf[i] = (buf[i] as number) ^ 0xff;
    const file = path.join(dir, 'corrupt.png');
    await writeFile(file, buf);
    await expect(decodeImage(file)).rejects.toThrow(ImageDecodeError);
  });

  it('a missing file is NotFoundError', async () => {
    await expect(decodeImage(path.join(dir, 'nope.png'))).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('encodePng', () => {
  it('round-trips and is deterministic', async () => {
    const img = patterned(7, 5);
    const a = await encodePng(img.data, 7, 5);
    const b = await encodePng(img.data, 7, 5);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(await decodeImage(a)).toEqual(img);
  });

  it('checks the buffer size', async () => {
    await expect(encodePng(new Uint8Array(10), 2, 2)).rejects.toThrow(/expected 12 bytes/);
  });
});

describe('RandomCrop with padding in the decode pass', () => {
  it('returns the padded window with the right size and pixels, also when the window reaches into the padding', async () => {
    // A gradient, so a misplaced window or wrong stride shows up in the pixels.
    const w = 40;
    const h = 40;
    const src = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) src.set([x * 6, y * 6, (x + y) * 3], (y * w + x) * 3);
    const png = await encodePng(src, w, h);
    // The classifier's chain: Resize(37) then RandomCrop(32, padding 4) — one libvips pass (resize,
    // extract, extend). Reference: the resized image, cropped with zero fill in JavaScript.
    const resized = await decodeImage(png, { steps: [resize(37, 37)] });
    let partlyPadded = 0;
    for (let seed = 0; seed < 60; seed++) {
      const out = await decodeImage(png, { steps: [resize(37, 37), randomCrop(32, { padding: 4 })], rng: Rng.fromSeed(seed) });
      const region = randomCropRegion(37, 37, 32, Rng.fromSeed(seed), { padding: 4 });
      if (region.left < 0 || region.top < 0 || region.left + 32 > 37 || region.top + 32 > 37) partlyPadded++;
      expect([out.width, out.height], `seed ${seed}`).toEqual([32, 32]);
      expect(out.data.length).toBe(32 * 32 * 3);
      expect(Buffer.from(out.data).equals(Buffer.from(cropImage(resized, region).data)), `seed ${seed}`).toBe(true);
    }
    expect(partlyPadded).toBeGreaterThan(10);
  });
});
