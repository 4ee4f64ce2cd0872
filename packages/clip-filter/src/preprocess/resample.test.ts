import type { RgbImage } from '@diffmix/datasets';
import { describe, expect, it } from 'vitest';
import { axisWeights, resampleRgb } from './resample.js';

function image(width: number, height: number, f: (x: number, y: number, c: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = f(x, y, c);
  return { data, width, height, channels: 3 };
}

const noise = (seed: number) => (x: number, y: number, c: number) =>
  (Math.imul(x * 7919 + y * 104729 + c * 31 + seed, 2654435761) >>> 24) & 255;

describe('axisWeights', () => {
  it('normalises each output pixel to 1 (in fixed point) for up- and downscaling', () => {
    for (const [inSize, outSize] of [
      [64, 224],
      [300, 224],
      [537, 224],
      [1000, 224],
      [7, 3],
    ] as const) {
      for (const rounding of ['torchvision', 'pil'] as const) {
        const w = axisWeights(inSize, outSize, 'bicubic', rounding);
        for (let i = 0; i < outSize; i++) {
          let sum = 0;
          for (let j = 0; j < (w.size[i] as number); j++) sum += w.weights[i * w.ksize + j] as number;
          // Rounding each weight can move the sum by a few units of the last bit.
          expect(Math.abs(sum - 2 ** w.precision)).toBeLessThanOrEqual(w.ksize);
        }
      }
    }
  });

  it('uses 22 bits for Pillow and the largest int16-safe precision for torchvision', () => {
    expect(axisWeights(64, 224, 'bicubic', 'pil').precision).toBe(22);
    const tv = axisWeights(64, 224, 'bicubic', 'torchvision');
    let max = 0;
    for (const v of tv.weights) max = Math.max(max, v);
    expect(max).toBeLessThan(2 ** 15);
    expect(max * 2).toBeGreaterThanOrEqual(2 ** 15 - 1); // one more bit would overflow int16
  });

  it('widens the support when downscaling (antialiasing) but not when upscaling', () => {
    expect(axisWeights(100, 200, 'bicubic', 'pil').ksize).toBe(5); // support 2 → 2·2 + 1
    expect(axisWeights(400, 100, 'bicubic', 'pil').ksize).toBe(17); // support 8
    expect(axisWeights(400, 100, 'bilinear', 'pil').ksize).toBe(9); // support 4
  });

  it('rejects bad sizes', () => {
    expect(() => axisWeights(0, 5, 'bicubic', 'pil')).toThrow(/positive integers/);
  });
});

describe('resampleRgb', () => {
  it('keeps a constant image constant', () => {
    const img = image(37, 23, () => 200);
    for (const rounding of ['torchvision', 'pil'] as const) {
      const out = resampleRgb(img, 80, 11, { rounding });
      expect(out.width).toBe(80);
      expect(out.height).toBe(11);
      expect(new Set(out.data)).toEqual(new Set([200]));
    }
  });

  it('leaves an axis whose size does not change untouched', () => {
    const img = image(30, 20, noise(1));
    const out = resampleRgb(img, 45, 20);
    // Only the horizontal pass ran: a vertical 1-pixel-tall slice equals the horizontal resize of that row.
    const row = resampleRgb({ data: img.data.slice(5 * 30 * 3, 6 * 30 * 3), width: 30, height: 1, channels: 3 }, 45, 1);
    expect(out.data.subarray(5 * 45 * 3, 6 * 45 * 3)).toEqual(row.data);
  });

  it('a region gives exactly the same pixels as cropping the full resize, with zero fill outside', () => {
    const img = image(53, 41, noise(2));
    const full = resampleRgb(img, 97, 70, { rounding: 'torchvision' });
    const region = { left: 11, top: 9, width: 40, height: 30 };
    const part = resampleRgb(img, 97, 70, { rounding: 'torchvision', region });
    for (let y = 0; y < region.height; y++) {
      const a = full.data.subarray(
        ((y + region.top) * 97 + region.left) * 3,
        ((y + region.top) * 97 + region.left + region.width) * 3,
      );
      expect(part.data.subarray(y * region.width * 3, (y + 1) * region.width * 3)).toEqual(a);
    }
    const padded = resampleRgb(img, 20, 20, { region: { left: -2, top: 0, width: 24, height: 20 } });
    expect(Array.from(padded.data.subarray(0, 6))).toEqual([0, 0, 0, 0, 0, 0]);
    const direct = resampleRgb(img, 20, 20);
    expect(padded.data.subarray(2 * 3, 22 * 3)).toEqual(direct.data.subarray(0, 20 * 3));
  });

  it('torchvision and Pillow rounding differ by at most a level', () => {
    const img = image(64, 48, noise(3));
    const a = resampleRgb(img, 224, 168, { rounding: 'torchvision' });
    const b = resampleRgb(img, 224, 168, { rounding: 'pil' });
    let max = 0;
    for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs((a.data[i] as number) - (b.data[i] as number)));
    expect(max).toBeLessThanOrEqual(2);
  });

  it('rejects malformed input', () => {
    expect(() => resampleRgb({ data: new Uint8Array(5), width: 2, height: 2, channels: 3 }, 4, 4)).toThrow(/expected 12 bytes/);
    expect(() =>
      resampleRgb(
        image(4, 4, () => 0),
        4,
        4,
        { region: { left: 0, top: 0, width: 0, height: 1 } },
      ),
    ).toThrow(/region/);
  });
});
