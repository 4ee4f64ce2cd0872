/**
 * Pure-JS pixel operations on decoded `RgbImage`s: exact crops (with zero padding), mirror,
 * normalisation to float CHW tensors and back, contact sheets. They never resample, so their
 * results are exact; the sharp pipeline (`transforms.ts`) must agree with them pixel for pixel.
 */
import { InvalidArgumentError } from '@diffmix/core';
import type { Region, RgbImage } from './types.js';

/** ImageNet channel means (R, G, B) on the [0, 1] scale, as torchvision's classifiers expect. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet channel standard deviations (R, G, B) on the [0, 1] scale. */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

export interface Normalization {
  mean: readonly [number, number, number] | readonly number[];
  std: readonly [number, number, number] | readonly number[];
}

/** `x / 255` then `(x - mean) / std` with ImageNet statistics (classifier input). */
export const IMAGENET_NORMALIZATION: Normalization = { mean: IMAGENET_MEAN, std: IMAGENET_STD };
/** Maps [0, 255] to [-1, 1] (`x / 127.5 - 1`): the Stable Diffusion VAE's input range. */
export const VAE_NORMALIZATION: Normalization = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

/** Checks that `img` is a well-formed `RgbImage`; throws `InvalidArgumentError` otherwise. */
export function assertRgbImage(img: RgbImage, argument = 'image'): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width < 1 || img.height < 1) {
    throw new InvalidArgumentError(argument, `width and height must be positive integers, got ${img.width}×${img.height}`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new InvalidArgumentError(
      argument,
      `expected ${img.width * img.height * 3} bytes (${img.width}×${img.height}×3), got ${img.data.length}`,
    );
  }
}

/** An all-zero (black) image. */
export function blankImage(width: number, height: number): RgbImage {
  return { data: new Uint8Array(width * height * 3), width, height, channels: 3 };
}

/**
 * Copies `region` out of `img`. Parts of the region outside the image are zero (black), so a region
 * with negative offsets or larger than the image pads, like torchvision's `pad` + `crop`.
 */
export function cropImage(img: RgbImage, region: Region): RgbImage {
  assertRgbImage(img);
  const { left, top, width, height } = region;
  if (![left, top, width, height].every(Number.isInteger) || width < 1 || height < 1) {
    throw new InvalidArgumentError('region', `must be integers with positive size, got ${JSON.stringify(region)}`);
  }
  const out = blankImage(width, height);
  const x0 = Math.max(0, left);
  const x1 = Math.min(img.width, left + width);
  if (x1 <= x0) return out;
  for (let y = Math.max(0, top); y < Math.min(img.height, top + height); y++) {
    const src = (y * img.width + x0) * 3;
    const dst = ((y - top) * width + (x0 - left)) * 3;
    out.data.set(img.data.subarray(src, src + (x1 - x0) * 3), dst);
  }
  return out;
}

/** Mirrors left↔right. */
export function flipHorizontal(img: RgbImage): RgbImage {
  assertRgbImage(img);
  const { width, height, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) {
      const s = row + x * 3;
      const d = row + (width - 1 - x) * 3;
      out[d] = data[s] as number;
      out[d + 1] = data[s + 1] as number;
      out[d + 2] = data[s + 2] as number;
    }
  }
  return { data: out, width, height, channels: 3 };
}

function checkNormalization(norm: Normalization): void {
  if (norm.mean.length !== 3 || norm.std.length !== 3) {
    throw new InvalidArgumentError('normalization', 'mean and std must have 3 entries (R, G, B)');
  }
  for (const s of norm.std) if (!(s > 0)) throw new InvalidArgumentError('normalization.std', `must be > 0, got ${s}`);
}

/**
 * HWC uint8 → CHW float32 tensor data: `out[c * H * W + y * W + x] = (px / 255 - mean[c]) / std[c]`.
 * Default normalisation: ImageNet. Pass `VAE_NORMALIZATION` for [-1, 1]. `out` (length 3·H·W) is
 * reused when given (batch buffers: pass a `subarray` of the batch).
 */
export function toFloatCHW(img: RgbImage, norm: Normalization = IMAGENET_NORMALIZATION, out?: Float32Array): Float32Array {
  assertRgbImage(img);
  checkNormalization(norm);
  const plane = img.width * img.height;
  const dst = out ?? new Float32Array(3 * plane);
  if (dst.length !== 3 * plane) throw new InvalidArgumentError('out', `expected length ${3 * plane}, got ${dst.length}`);
  const src = img.data;
  for (let c = 0; c < 3; c++) {
    // (v / 255 - m) / s  ==  v * a + b
    const a = 1 / (255 * (norm.std[c] as number));
    const b = -(norm.mean[c] as number) / (norm.std[c] as number);
    const base = c * plane;
    for (let i = 0; i < plane; i++) dst[base + i] = (src[i * 3 + c] as number) * a + b;
  }
  return dst;
}

/**
 * Inverse of `toFloatCHW`: CHW float data → 8-bit image, `round(clamp((v * std + mean) * 255))`
 * (e.g. VAE decoder output with `VAE_NORMALIZATION`).
 */
export function fromFloatCHW(
  data: Float32Array | Float64Array,
  width: number,
  height: number,
  norm: Normalization = IMAGENET_NORMALIZATION,
): RgbImage {
  checkNormalization(norm);
  const plane = width * height;
  if (data.length !== 3 * plane)
    throw new InvalidArgumentError('data', `expected length ${3 * plane} (3×${height}×${width}), got ${data.length}`);
  const out = blankImage(width, height);
  for (let c = 0; c < 3; c++) {
    const s = (norm.std[c] as number) * 255;
    const m = (norm.mean[c] as number) * 255;
    const base = c * plane;
    for (let i = 0; i < plane; i++) {
      const v = Math.round((data[base + i] as number) * s + m);
      out.data[i * 3 + c] = v < 0 ? 0 : Math.min(v, 255);
    }
  }
  return out;
}

export interface ContactSheetOptions {
  /** Images per row (default: ceil(sqrt(n))). */
  columns?: number;
  /** Pixels between cells and around the border (default 2). */
  gap?: number;
  /** Gap colour (default white). */
  background?: readonly [number, number, number];
}

/**
 * Tiles images into a grid, row by row; each cell is as large as the largest image, images sit at
 * the cell's top-left. For README samples and demo reports.
 */
export function makeContactSheet(images: readonly RgbImage[], options: ContactSheetOptions = {}): RgbImage {
  if (images.length === 0) throw new InvalidArgumentError('images', 'need at least one image');
  const columns = options.columns ?? Math.ceil(Math.sqrt(images.length));
  const gap = options.gap ?? 2;
  const [br, bg, bb] = options.background ?? [255, 255, 255];
  if (!Number.isInteger(columns) || columns < 1)
    throw new InvalidArgumentError('columns', `must be a positive integer, got ${columns}`);
  const rows = Math.ceil(images.length / columns);
  let cw = 0;
  let ch = 0;
  for (const img of images) {
    assertRgbImage(img);
    cw = Math.max(cw, img.width);
    ch = Math.max(ch, img.height);
  }
  const width = columns * cw + (columns + 1) * gap;
  const height = rows * ch + (rows + 1) * gap;
  const sheet = blankImage(width, height);
  for (let i = 0; i < sheet.data.length; i += 3) {
    sheet.data[i] = br;
    sheet.data[i + 1] = bg;
    sheet.data[i + 2] = bb;
  }
  images.forEach((img, k) => {
    const x0 = gap + (k % columns) * (cw + gap);
    const y0 = gap + Math.floor(k / columns) * (ch + gap);
    for (let y = 0; y < img.height; y++) {
      const src = y * img.width * 3;
      sheet.data.set(img.data.subarray(src, src + img.width * 3), ((y0 + y) * width + x0) * 3);
    }
  });
  return sheet;
}
