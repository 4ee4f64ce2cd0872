import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ValidationError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/golden.js';
import { CLIP_DEFAULT_PREPROCESSOR, OPENAI_CLIP_MEAN, parsePreprocessorConfig, readPreprocessorConfig } from './config.js';
import { ClipImageProcessor, clipCropRegion, clipResizeSize } from './processor.js';

describe('parsePreprocessorConfig', () => {
  it('reads the fields of a transformers CLIPImageProcessor config', () => {
    const c = parsePreprocessorConfig({
      crop_size: { height: 256, width: 240 },
      do_center_crop: false,
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.25, 0.25, 0.25],
      resample: 2,
      rescale_factor: 0.5,
      size: { shortest_edge: 300 },
      do_normalize: false,
    });
    expect(c).toMatchObject({
      cropSize: { height: 256, width: 240 },
      doCenterCrop: false,
      resample: 'bilinear',
      rescaleFactor: 0.5,
      size: { shortestEdge: 300 },
      doNormalize: false,
      doRescale: true,
    });
  });

  it('accepts the old forms (size and crop_size as numbers) and fills defaults', () => {
    const c = parsePreprocessorConfig({ size: 224, crop_size: 224 });
    expect(c.size).toEqual({ shortestEdge: 224 });
    expect(c.cropSize).toEqual({ height: 224, width: 224 });
    expect(c.imageMean).toEqual(OPENAI_CLIP_MEAN);
    expect(parsePreprocessorConfig({})).toEqual(CLIP_DEFAULT_PREPROCESSOR);
    expect(parsePreprocessorConfig({ size: { height: 10, width: 20 } }).size).toEqual({ height: 10, width: 20 });
  });

  it('lists every problem, naming the file', () => {
    let err: unknown;
    try {
      parsePreprocessorConfig({ resample: 1, image_std: [1, 0, 1], do_resize: 'yes', size: { shortest_edge: -3 } }, 'pp.json');
    } catch (e) {
      err = e;
    }
    expect(ValidationError.isInstance(err)).toBe(true);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^pp\.json: /);
    expect(msg).toMatch(/resample: 1 \(lanczos\) is not supported/);
    expect(msg).toMatch(/image_std: every entry must be > 0/);
    expect(msg).toMatch(/do_resize: expected true or false/);
    expect(msg).toMatch(/size.shortest_edge: expected a positive integer/);
  });

  it('readPreprocessorConfig names missing and malformed files', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await expect(readPreprocessorConfig(path.join(dir, 'nope.json'))).rejects.toThrow(
        /nope\.json: preprocessor config not found/,
      );
      await writeFile(path.join(dir, 'bad.json'), '{');
      await expect(readPreprocessorConfig(path.join(dir, 'bad.json'))).rejects.toThrow(/bad\.json: .*not valid JSON/);
    } finally {
      await cleanup();
    }
  });
});

describe('CLIPProcessor geometry', () => {
  it('resizes the shortest edge and floors the long side', () => {
    expect(clipResizeSize(300, 200, CLIP_DEFAULT_PREPROCESSOR)).toEqual({ width: 336, height: 224 });
    expect(clipResizeSize(120, 50, CLIP_DEFAULT_PREPROCESSOR)).toEqual({ width: 537, height: 224 }); // 537.6
    expect(clipResizeSize(50, 120, CLIP_DEFAULT_PREPROCESSOR)).toEqual({ width: 224, height: 537 });
  });

  it('center-crops at floor((W − w) / 2) (transformers), not round-half-even (torchvision)', () => {
    expect(clipCropRegion(335, 224, { width: 224, height: 224 })).toEqual({ left: 55, top: 0, width: 224, height: 224 });
    // Smaller than the crop: pad (crop − size) // 2 before.
    expect(clipCropRegion(200, 224, { width: 224, height: 224 })).toEqual({ left: -12, top: 0, width: 224, height: 224 });
    expect(clipCropRegion(201, 224, { width: 224, height: 224 })).toEqual({ left: -11, top: 0, width: 224, height: 224 });
  });

  it('normalises with the backend arithmetic of each processor', () => {
    const tv = ClipImageProcessor.lookupTable(CLIP_DEFAULT_PREPROCESSOR, 'torchvision');
    const pil = ClipImageProcessor.lookupTable(CLIP_DEFAULT_PREPROCESSOR, 'pil');
    const f = Math.fround;
    // torchvision: (x − 255·mean) / (255·std) in float32.
    expect(tv[200]).toBe(f(f(200 - f(f(0.48145466) * 255)) / f(f(0.26862954) * 255)));
    // PIL: float32(x / 255 in float64), then (y − mean) / std in float32.
    expect(pil[200]).toBe(f(f(f(200 * (1 / 255)) - f(0.48145466)) / f(0.26862954)));
    let differ = 0;
    for (let i = 0; i < tv.length; i++) if (tv[i] !== pil[i]) differ++;
    expect(differ).toBeGreaterThan(0); // they round differently somewhere
    const rescaleOnly = ClipImageProcessor.lookupTable({ ...CLIP_DEFAULT_PREPROCESSOR, doNormalize: false }, 'torchvision');
    expect(rescaleOnly[255]).toBe(f(255 * f(1 / 255)));
    const none = ClipImageProcessor.lookupTable(
      { ...CLIP_DEFAULT_PREPROCESSOR, doNormalize: false, doRescale: false },
      'torchvision',
    );
    expect(none[7]).toBe(7);
  });

  it('honours do_resize / do_center_crop and a fixed size', async () => {
    const img = { data: new Uint8Array(10 * 6 * 3).fill(9), width: 10, height: 6, channels: 3 as const };
    const noCrop = new ClipImageProcessor({ ...CLIP_DEFAULT_PREPROCESSOR, doCenterCrop: false, size: { shortestEdge: 12 } });
    expect(noCrop.outputSize).toBeUndefined();
    const c1 = await noCrop.resizeAndCrop(img);
    expect([c1.width, c1.height]).toEqual([20, 12]);
    const noResize = new ClipImageProcessor({ ...CLIP_DEFAULT_PREPROCESSOR, doResize: false, cropSize: { height: 4, width: 4 } });
    const c2 = await noResize.resizeAndCrop(img);
    expect([c2.width, c2.height]).toEqual([4, 4]);
    const fixed = new ClipImageProcessor({ ...CLIP_DEFAULT_PREPROCESSOR, doCenterCrop: false, size: { height: 5, width: 7 } });
    expect(fixed.outputSize).toEqual({ width: 7, height: 5 });
    expect((await fixed.preprocess(img)).length).toBe(3 * 5 * 7);
    expect(() => new ClipImageProcessor(CLIP_DEFAULT_PREPROCESSOR, { resampler: 'lanczos' as never })).toThrow(/resampler/);
  });
});
