import { describe, expect, it } from 'vitest';
import {
  cropImage,
  flipHorizontal,
  fromFloatCHW,
  IMAGENET_MEAN,
  IMAGENET_NORMALIZATION,
  IMAGENET_STD,
  makeContactSheet,
  toFloatCHW,
  VAE_NORMALIZATION,
} from './pixels.js';
import type { RgbImage } from './types.js';

function image(width: number, height: number, pixels: number[][]): RgbImage {
  return { data: new Uint8Array(pixels.flat()), width, height, channels: 3 };
}

describe('toFloatCHW', () => {
  // 2×1 image: (255, 0, 128), (10, 20, 30).
  const img = image(2, 1, [
    [255, 0, 128],
    [10, 20, 30],
  ]);

  it('normalises with ImageNet statistics into CHW order', () => {
    const t = toFloatCHW(img);
    expect(t.length).toBe(6);
    const expected = [
      (1 - 0.485) / 0.229,
      (10 / 255 - 0.485) / 0.229,
      (0 - 0.456) / 0.224,
      (20 / 255 - 0.456) / 0.224,
      (128 / 255 - 0.406) / 0.225,
      (30 / 255 - 0.406) / 0.225,
    ];
    expected.forEach((v, i) => {
      expect(t[i]).toBeCloseTo(v, 5);
    });
    expect(IMAGENET_MEAN).toEqual([0.485, 0.456, 0.406]);
    expect(IMAGENET_STD).toEqual([0.229, 0.224, 0.225]);
  });

  it('maps [0, 255] to [-1, 1] for the VAE', () => {
    const t = toFloatCHW(
      image(3, 1, [
        [0, 255, 0],
        [255, 0, 255],
        [51, 102, 204],
      ]),
      VAE_NORMALIZATION,
    );
    const r = [-1, 1, 51 / 127.5 - 1];
    const g = [1, -1, 102 / 127.5 - 1];
    const b = [-1, 1, 204 / 127.5 - 1];
    [...r, ...g, ...b].forEach((v, i) => {
      expect(t[i]).toBeCloseTo(v, 6);
    });
  });

  it('writes into a given buffer and checks its length', () => {
    const batch = new Float32Array(12);
    toFloatCHW(img, IMAGENET_NORMALIZATION, batch.subarray(6));
    expect(batch[6]).toBeCloseTo((1 - 0.485) / 0.229, 5);
    expect(batch[0]).toBe(0);
    expect(() => toFloatCHW(img, IMAGENET_NORMALIZATION, new Float32Array(5))).toThrow(/length/);
  });

  it('round-trips through fromFloatCHW exactly', () => {
    const data = new Uint8Array(4 * 3 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 53) % 256;
    const src: RgbImage = { data, width: 4, height: 3, channels: 3 };
    for (const norm of [IMAGENET_NORMALIZATION, VAE_NORMALIZATION]) {
      expect(fromFloatCHW(toFloatCHW(src, norm), 4, 3, norm)).toEqual(src);
    }
    // Out-of-range values clamp.
    const clamped = fromFloatCHW(new Float32Array([-3, 3, 0]), 1, 1, VAE_NORMALIZATION);
    expect([...clamped.data]).toEqual([0, 255, 128]);
  });
});

describe('pure crops, flips and sheets', () => {
  const img = image(2, 2, [
    [1, 1, 1],
    [2, 2, 2],
    [3, 3, 3],
    [4, 4, 4],
  ]);

  it('cropImage pads outside with zeros', () => {
    expect([...cropImage(img, { left: -1, top: 0, width: 2, height: 3 }).data]).toEqual([
      0, 0, 0, 1, 1, 1, 0, 0, 0, 3, 3, 3, 0, 0, 0, 0, 0, 0,
    ]);
  });

  it('flipHorizontal mirrors rows', () => {
    expect([...flipHorizontal(img).data]).toEqual([2, 2, 2, 1, 1, 1, 4, 4, 4, 3, 3, 3]);
  });

  it('makeContactSheet tiles with gaps', () => {
    const sheet = makeContactSheet([img, img, img], { columns: 2, gap: 1, background: [9, 9, 9] });
    expect([sheet.width, sheet.height]).toEqual([2 * 2 + 3, 2 * 2 + 3]);
    const at = (x: number, y: number) => sheet.data[(y * sheet.width + x) * 3];
    expect(at(0, 0)).toBe(9);
    expect(at(1, 1)).toBe(1);
    expect(at(5, 2)).toBe(4);
    expect(at(1, 4)).toBe(1);
    expect(at(4, 4)).toBe(9);
  });
});
