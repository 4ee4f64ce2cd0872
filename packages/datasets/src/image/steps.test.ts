import { Rng } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { decodeImage, encodePng, planSteps, transformImage } from './decode.js';
import { cropImage, flipHorizontal } from './pixels.js';
import {
  centerCrop,
  centerCropRegion,
  classifierEvalSteps,
  classifierTrainSteps,
  crop,
  horizontalFlip,
  type ImageStep,
  pad,
  randomCrop,
  randomCropRegion,
  randomHorizontalFlip,
  randomResizedCrop,
  randomResizedCropRegion,
  resize,
  resizeShorter,
  roundHalfEven,
  shorterSideSize,
} from './steps.js';
import type { RgbImage } from './types.js';

/** Pixel k has colour (k, 100 + k, 200 - k): easy to read in failures. */
function tiny(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let k = 0; k < width * height; k++) data.set([k + 1, 100 + k, 200 - k], k * 3);
  return { data, width, height, channels: 3 };
}

/** The red channel as rows (0 = padding). */
function reds(img: RgbImage): number[][] {
  const rows: number[][] = [];
  for (let y = 0; y < img.height; y++) {
    const row: number[] = [];
    for (let x = 0; x < img.width; x++) row.push(img.data[(y * img.width + x) * 3] as number);
    rows.push(row);
  }
  return rows;
}

describe('crop / flip / pad: exact pixels', () => {
  // 4×3 image, red channel:
  //  1  2  3  4
  //  5  6  7  8
  //  9 10 11 12
  const img = tiny(4, 3);

  it('crop', async () => {
    expect(reds(await transformImage(img, [crop({ left: 1, top: 1, width: 2, height: 2 })]))).toEqual([
      [6, 7],
      [10, 11],
    ]);
  });

  it('flip', async () => {
    expect(reds(await transformImage(img, [horizontalFlip()]))).toEqual([
      [4, 3, 2, 1],
      [8, 7, 6, 5],
      [12, 11, 10, 9],
    ]);
    const out = await transformImage(img, [horizontalFlip()]);
    expect([...out.data.subarray(0, 3)]).toEqual([4, 103, 197]);
  });

  it('pad with zeros, then crop across the border', async () => {
    expect(reds(await transformImage(img, [pad(1)]))).toEqual([
      [0, 0, 0, 0, 0, 0],
      [0, 1, 2, 3, 4, 0],
      [0, 5, 6, 7, 8, 0],
      [0, 9, 10, 11, 12, 0],
      [0, 0, 0, 0, 0, 0],
    ]);
    expect(reds(await transformImage(img, [pad([2, 0]), crop({ left: 0, top: 1, width: 3, height: 2 })]))).toEqual([
      [0, 0, 5],
      [0, 0, 9],
    ]);
    // Padded area is black in every channel.
    const out = await transformImage(img, [pad(1)]);
    expect([...out.data.subarray(0, 3)]).toEqual([0, 0, 0]);
  });

  it('crop then flip, flip then crop', async () => {
    expect(reds(await transformImage(img, [crop({ left: 0, top: 0, width: 3, height: 2 }), horizontalFlip()]))).toEqual([
      [3, 2, 1],
      [7, 6, 5],
    ]);
    expect(reds(await transformImage(img, [horizontalFlip(), crop({ left: 0, top: 0, width: 3, height: 2 })]))).toEqual([
      [4, 3, 2],
      [8, 7, 6],
    ]);
    expect(
      reds(await transformImage(img, [pad([1, 0, 0, 0]), horizontalFlip(), crop({ left: 0, top: 2, width: 5, height: 1 })])),
    ).toEqual([[12, 11, 10, 9, 0]]);
  });

  it('a window entirely in the padding is black', async () => {
    const out = await transformImage(img, [pad(3), crop({ left: 0, top: 0, width: 2, height: 2 })]);
    expect(reds(out)).toEqual([
      [0, 0],
      [0, 0],
    ]);
  });

  it('randomCrop(size, padding) = zero pad + window at rng offsets', async () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 40; seed++) {
      const region = randomCropRegion(4, 3, 3, Rng.fromSeed(seed), { padding: 1 });
      // Padded image 6×5: top ∈ [0, 2], left ∈ [0, 3], in unpadded coordinates minus 1.
      expect(region.top).toBeGreaterThanOrEqual(-1);
      expect(region.top).toBeLessThanOrEqual(1);
      expect(region.left).toBeGreaterThanOrEqual(-1);
      expect(region.left).toBeLessThanOrEqual(2);
      seen.add(`${region.left},${region.top}`);
      const out = await transformImage(img, [randomCrop(3, { padding: 1 })], Rng.fromSeed(seed));
      expect(out).toEqual(cropImage(img, region));
    }
    expect(seen.size).toBe(12);
    // Draw order documented: top first, then left.
    const r = Rng.fromSeed(7);
    const top = r.int(3);
    const left = r.int(4);
    expect(randomCropRegion(4, 3, 3, Rng.fromSeed(7), { padding: 1 })).toEqual({
      left: left - 1,
      top: top - 1,
      width: 3,
      height: 3,
    });
  });

  it('randomCrop pads if needed like torchvision (both sides by the shortfall)', () => {
    // 4×3 image, crop 5×5 with pad_if_needed: width padded by 1 on each side (6), height by 2 (7).
    for (let seed = 0; seed < 20; seed++) {
      const r = randomCropRegion(4, 3, 5, Rng.fromSeed(seed), { padIfNeeded: true });
      expect(r.left).toBeGreaterThanOrEqual(-1);
      expect(r.left + r.width).toBeLessThanOrEqual(5);
      expect(r.top).toBeGreaterThanOrEqual(-2);
      expect(r.top + r.height).toBeLessThanOrEqual(5);
    }
    expect(() => randomCropRegion(4, 3, 5, Rng.fromSeed(0))).toThrow(/larger than/);
  });

  it('randomHorizontalFlip flips when uniform() < p', async () => {
    for (let seed = 0; seed < 10; seed++) {
      const flips = Rng.fromSeed(seed).uniform() < 0.5;
      const out = await transformImage(img, [randomHorizontalFlip(0.5)], Rng.fromSeed(seed));
      expect(out).toEqual(flips ? flipHorizontal(img) : img);
    }
    expect(await transformImage(img, [randomHorizontalFlip(0)], Rng.fromSeed(1))).toEqual(img);
    expect(await transformImage(img, [randomHorizontalFlip(1)], Rng.fromSeed(1))).toEqual(flipHorizontal(img));
  });

  it('random chains of crops, pads and flips equal the pure-JS reference', async () => {
    const src = tiny(9, 7);
    const rng = Rng.fromSeed(123);
    for (let trial = 0; trial < 60; trial++) {
      const steps: ImageStep[] = [];
      let ref = src;
      const n = 1 + rng.int(5);
      for (let k = 0; k < n; k++) {
        const kind = rng.int(3);
        if (kind === 0) {
          const w = 1 + rng.int(ref.width + 2);
          const h = 1 + rng.int(ref.height + 2);
          const region = { left: rng.int(ref.width + 2) - 2, top: rng.int(ref.height + 2) - 2, width: w, height: h };
          steps.push(crop(region));
          ref = cropImage(ref, region);
        } else if (kind === 1) {
          steps.push(horizontalFlip());
          ref = flipHorizontal(ref);
        } else {
          const p = [rng.int(3), rng.int(3), rng.int(3), rng.int(3)] as const;
          steps.push(pad(p));
          ref = cropImage(ref, { left: -p[0], top: -p[1], width: ref.width + p[0] + p[2], height: ref.height + p[1] + p[3] });
        }
      }
      const out = await transformImage(src, steps);
      expect(out, steps.map((s) => s.name).join(' → ')).toEqual(ref);
      // The same chain folded into decoding.
      const png = await encodePng(src.data, src.width, src.height);
      expect(await decodeImage(png, { steps })).toEqual(ref);
      expect(planSteps(src.width, src.height, steps, undefined).passes).toBe(1);
    }
  });
});

describe('resize steps', () => {
  it("shorter-side size follows torchvision's Resize(int)", () => {
    expect(shorterSideSize(500, 375, 256)).toEqual({ width: 341, height: 256 });
    expect(shorterSideSize(375, 500, 256)).toEqual({ width: 256, height: 341 });
    expect(shorterSideSize(300, 300, 224)).toEqual({ width: 224, height: 224 });
  });

  it('resize + crop folded into one pass equals resize, then crop', async () => {
    const src = tiny(40, 30);
    const fused = await transformImage(src, [resizeShorter(20), centerCrop(16)]);
    const resized = await transformImage(src, [resizeShorter(20)]);
    expect([resized.width, resized.height]).toEqual([26, 20]);
    expect(fused).toEqual(cropImage(resized, centerCropRegion(26, 20, 16)));
    expect(planSteps(40, 30, [resizeShorter(20), centerCrop(16)], undefined).passes).toBe(1);
  });

  it('crop + resize + flip folded into one pass equals the steps one by one', async () => {
    const src = tiny(40, 30);
    const region = { left: 3, top: 5, width: 20, height: 17 };
    const fused = await transformImage(src, [crop(region), resize(12, 12), horizontalFlip()]);
    const oneByOne = flipHorizontal(await transformImage(cropImage(src, region), [resize(12, 12)]));
    expect(fused).toEqual(oneByOne);
  });

  it('a resize after padding needs a second pass and equals the steps one by one', async () => {
    const src = tiny(12, 10);
    const steps = [pad(2), resize(8, 8)];
    expect(planSteps(12, 10, steps, undefined).passes).toBe(2);
    const fused = await transformImage(src, steps);
    const oneByOne = await transformImage(cropImage(src, { left: -2, top: -2, width: 16, height: 14 }), [resize(8, 8)]);
    expect(fused).toEqual(oneByOne);
  });

  it('classifier train and eval chains are single-pass', () => {
    expect(planSteps(500, 375, classifierTrainSteps(224), Rng.fromSeed(0)).passes).toBe(1);
    expect(planSteps(500, 375, classifierEvalSteps(224), undefined).passes).toBe(1);
    const plan = planSteps(500, 375, classifierEvalSteps(224), undefined);
    expect([plan.width, plan.height]).toEqual([224, 224]);
    expect(plan.stages[0]?.resize).toEqual({ width: 341, height: 256 });
    expect(plan.stages[0]?.post).toEqual({ left: 58, top: 16, width: 224, height: 224 });
  });

  it('random steps without an Rng are refused', async () => {
    await expect(transformImage(tiny(4, 4), [randomCrop(2)])).rejects.toThrow(/pass an Rng/);
  });
});

describe('centerCrop', () => {
  it('uses round-half-even offsets like torchvision', () => {
    expect(centerCropRegion(5, 4, 3)).toEqual({ left: 1, top: 0, width: 3, height: 3 });
    expect(centerCropRegion(8, 8, 3)).toEqual({ left: 2, top: 2, width: 3, height: 3 });
    expect(roundHalfEven(2.5)).toBe(2);
    expect(roundHalfEven(3.5)).toBe(4);
    expect(roundHalfEven(-0.5) === 0).toBe(true);
  });

  it('pads when the image is smaller', async () => {
    const img = tiny(2, 2);
    expect(centerCropRegion(2, 2, 5)).toEqual({ left: -1, top: -1, width: 5, height: 5 });
    expect(reds(await transformImage(img, [centerCrop(5)]))).toEqual([
      [0, 0, 0, 0, 0],
      [0, 1, 2, 0, 0],
      [0, 3, 4, 0, 0],
      [0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0],
    ]);
  });
});

describe('RandomResizedCrop', () => {
  it('stays inside the image', () => {
    for (const [w, h] of [
      [500, 375],
      [224, 224],
      [64, 300],
      [37, 23],
    ] as const) {
      for (let seed = 0; seed < 300; seed++) {
        const r = randomResizedCropRegion(w, h, Rng.fromSeed(seed));
        expect(r.left).toBeGreaterThanOrEqual(0);
        expect(r.top).toBeGreaterThanOrEqual(0);
        expect(r.width).toBeGreaterThanOrEqual(1);
        expect(r.height).toBeGreaterThanOrEqual(1);
        expect(r.left + r.width).toBeLessThanOrEqual(w);
        expect(r.top + r.height).toBeLessThanOrEqual(h);
        const area = (r.width * r.height) / (w * h);
        expect(area).toBeLessThanOrEqual(1);
      }
    }
  });

  it('is deterministic per seed and varies across seeds', () => {
    const a = randomResizedCropRegion(500, 375, Rng.fromSeed(42));
    expect(randomResizedCropRegion(500, 375, Rng.fromSeed(42))).toEqual(a);
    const all = new Set(Array.from({ length: 20 }, (_, s) => JSON.stringify(randomResizedCropRegion(500, 375, Rng.fromSeed(s)))));
    expect(all.size).toBe(20);
  });

  it('falls back to the centred crop with clamped ratio after 10 misses', () => {
    // 100×10 cannot hold ≥ 90 % of its area at a ratio within [3/4, 4/3]: every attempt misses.
    expect(randomResizedCropRegion(100, 10, Rng.fromSeed(0), { scale: [0.9, 1] })).toEqual({
      left: 43,
      top: 0,
      width: 13,
      height: 10,
    });
    expect(randomResizedCropRegion(10, 100, Rng.fromSeed(0), { scale: [0.9, 1] })).toEqual({
      left: 0,
      top: 43,
      width: 10,
      height: 13,
    });
    // A square image with scale [1, 1]: the whole image succeeds on some attempt or falls back to it.
    expect(randomResizedCropRegion(50, 50, Rng.fromSeed(3), { scale: [1, 1], ratio: [1, 1] })).toEqual({
      left: 0,
      top: 0,
      width: 50,
      height: 50,
    });
  });

  it('decodes to the requested size, one pass, deterministic per seed', async () => {
    const src = tiny(60, 45);
    const png = await encodePng(src.data, 60, 45);
    const a = await decodeImage(png, { steps: [randomResizedCrop(24), randomHorizontalFlip()], rng: Rng.fromSeed(5) });
    const b = await decodeImage(png, { steps: [randomResizedCrop(24), randomHorizontalFlip()], rng: Rng.fromSeed(5) });
    expect([a.width, a.height]).toEqual([24, 24]);
    expect(a).toEqual(b);
    // Equals the window cropped by hand then resized.
    const rng = Rng.fromSeed(5);
    const region = randomResizedCropRegion(60, 45, rng);
    const flip = rng.uniform() < 0.5;
    let ref = await transformImage(cropImage(src, region), [resize(24, 24)]);
    if (flip) ref = flipHorizontal(ref);
    expect(a).toEqual(ref);
  });
});
