/**
 * CLIP image preprocessing as Hugging Face's `CLIPProcessor` does it: resize (shortest edge, or an
 * exact size), center crop, rescale, normalise — to float32 CHW `pixel_values`.
 *
 * Decoding is sharp's (`@diffmix/datasets` `decodeImage`: any format → 8-bit sRGB RGB, alpha over
 * white as transformers' `convert_to_rgb`, EXIF orientation applied). The resize is chosen by
 * `resampler`:
 *
 * - `'torchvision'` (default): bit-exact with transformers 5's `CLIPImageProcessor`
 *   (torchvision's antialiased uint8 resize), see `resample.ts`;
 * - `'pil'`: bit-exact with Pillow's resize (transformers 4's processor, `CLIPImageProcessorPil`),
 *   with that backend's float64 rescale;
 * - `'sharp'`: libvips' cubic resize in the decoding pass (`@diffmix/datasets` steps). Faster on
 *   large inputs, but not Pillow's pixel grid: measured on the golden images, mean |Δ| 0.8–4.8 and
 *   max 6–133 levels vs torchvision (upscales shift by half an output pixel in libvips 8.18; a 1.12×
 *   downscale of hard-edged blocks differs at every edge), i.e. |Δ score| up to ~1e-3 on the tiny
 *   model. See the README.
 */
import {
  cropImage,
  decodeImage,
  type DecodeOptions,
  type ImageSource,
  type ImageStep,
  type Region,
  type RgbImage,
  transformImage,
} from '@diffmix/datasets';
import { InvalidArgumentError } from '@diffmix/core';
import { CLIP_DEFAULT_PREPROCESSOR, type ClipPreprocessorConfig } from './config.js';
import { resampleRgb } from './resample.js';

export type ClipResampler = 'torchvision' | 'pil' | 'sharp';
export const CLIP_RESAMPLERS: readonly ClipResampler[] = ['torchvision', 'pil', 'sharp'];

export interface ClipImageProcessorOptions {
  /** Which resize (and normalisation arithmetic) to reproduce; default 'torchvision'. */
  resampler?: ClipResampler;
  /** Options for decoding files (alpha, failOn…). */
  decode?: Omit<DecodeOptions, 'steps' | 'rng' | 'name'>;
}

/** The resized size (before cropping) of a `width`×`height` image. */
export function clipResizeSize(width: number, height: number, config: ClipPreprocessorConfig): { width: number; height: number } {
  if (!config.doResize) return { width, height };
  const s = config.size;
  if ('height' in s) return { width: s.width, height: s.height };
  // transformers' get_resize_output_image_size(default_to_square=False): int(size · long / short).
  const e = s.shortestEdge;
  if (width <= height) return { width: e, height: Math.max(1, Math.floor((e * height) / width)) };
  return { width: Math.max(1, Math.floor((e * width) / height)), height: e };
}

/**
 * The window transformers' center crop takes from a `width`×`height` image: `top = int((H − h) / 2)`
 * (floor, not torchvision's round-half-even), and zero padding (`(h − H) // 2` above) when the image
 * is smaller than the crop.
 */
export function clipCropRegion(width: number, height: number, crop: { width: number; height: number }): Region {
  const off = (image: number, window: number) =>
    window > image ? -Math.floor((window - image) / 2) : Math.floor((image - window) / 2);
  return { left: off(width, crop.width), top: off(height, crop.height), width: crop.width, height: crop.height };
}

const f32 = Math.fround;

export class ClipImageProcessor {
  readonly config: ClipPreprocessorConfig;
  readonly resampler: ClipResampler;
  private readonly decodeOptions: Omit<DecodeOptions, 'steps' | 'rng' | 'name'>;
  /** Per channel: y = f32(f32(x − mean) / std) or f32(x · scale) (see `toPixelValues`). */
  private readonly table: Float32Array;

  constructor(config: ClipPreprocessorConfig = CLIP_DEFAULT_PREPROCESSOR, options: ClipImageProcessorOptions = {}) {
    const resampler = options.resampler ?? 'torchvision';
    if (!CLIP_RESAMPLERS.includes(resampler)) {
      throw new InvalidArgumentError(
        'resampler',
        `must be one of ${CLIP_RESAMPLERS.join(', ')}, got ${JSON.stringify(resampler)}`,
      );
    }
    this.config = config;
    this.resampler = resampler;
    this.decodeOptions = options.decode ?? {};
    this.table = ClipImageProcessor.lookupTable(config, resampler === 'pil' ? 'pil' : 'torchvision');
  }

  /**
   * The value of every byte 0–255 in every channel, computed with the processor's float32
   * arithmetic (the result of a pixel depends only on its byte and channel):
   * - torchvision backend (transformers 5): rescale and normalise fused,
   *   `mean' = f32(f32(mean)·f32(1/factor))`, `std'` likewise, `y = f32(f32(x − mean') / std')`;
   *   rescale only: `f32(x · f32(factor))`; normalise only: `f32(f32(x − mean) / std)`;
   * - PIL backend: `r = f32(x · factor)` (float64 product), then `y = f32(f32(r − mean) / std)`.
   */
  static lookupTable(config: ClipPreprocessorConfig, arithmetic: 'torchvision' | 'pil'): Float32Array {
    const table = new Float32Array(3 * 256);
    for (let c = 0; c < 3; c++) {
      const mean = f32(config.imageMean[c] as number);
      const std = f32(config.imageStd[c] as number);
      for (let x = 0; x < 256; x++) {
        let y: number;
        if (arithmetic === 'torchvision') {
          if (config.doRescale && config.doNormalize) {
            const inv = f32(1 / config.rescaleFactor);
            y = f32(f32(x - f32(mean * inv)) / f32(std * inv));
          } else if (config.doNormalize) {
            y = f32(f32(x - mean) / std);
          } else if (config.doRescale) {
            y = f32(x * f32(config.rescaleFactor));
          } else {
            y = x;
          }
        } else {
          const r = config.doRescale ? f32(x * config.rescaleFactor) : x;
          y = config.doNormalize ? f32(f32(r - mean) / std) : r;
        }
        table[c * 256 + x] = y;
      }
    }
    return table;
  }

  /** Height and width of `pixel_values` (the crop size, or the resize target without cropping). */
  get outputSize(): { width: number; height: number } | undefined {
    const c = this.config;
    if (c.doCenterCrop) return { width: c.cropSize.width, height: c.cropSize.height };
    if (c.doResize && 'height' in c.size) return { width: c.size.width, height: c.size.height };
    return undefined; // depends on the image
  }

  /** The geometry of one image: resize target and crop window (in resized coordinates). */
  geometry(width: number, height: number): { resize: { width: number; height: number }; crop: Region } {
    const resize = clipResizeSize(width, height, this.config);
    const crop = this.config.doCenterCrop
      ? clipCropRegion(resize.width, resize.height, this.config.cropSize)
      : { left: 0, top: 0, width: resize.width, height: resize.height };
    return { resize, crop };
  }

  /**
   * A `@diffmix/datasets` step doing this resize and crop with sharp (libvips cubic), for
   * `decodeImage` / `createImageLoader`.
   */
  sharpStep(): ImageStep {
    return {
      name: 'clipResizeCrop',
      random: false,
      apply: (plan) => {
        const g = this.geometry(plan.width, plan.height);
        if (g.resize.width !== plan.width || g.resize.height !== plan.height) plan.resize(g.resize.width, g.resize.height);
        if (g.crop.left !== 0 || g.crop.top !== 0 || g.crop.width !== g.resize.width || g.crop.height !== g.resize.height) {
          plan.crop(g.crop);
        }
      },
    };
  }

  /** Resize + crop of a decoded image, as uint8 (the `crops/crop_*.png` of the golden set). */
  async resizeAndCrop(image: RgbImage): Promise<RgbImage> {
    if (this.resampler === 'sharp') return transformImage(image, [this.sharpStep()]);
    return this.resizeAndCropExact(image);
  }

  /** Synchronous resize + crop with the torchvision / Pillow resampler (not for `'sharp'`). */
  resizeAndCropExact(image: RgbImage): RgbImage {
    const g = this.geometry(image.width, image.height);
    if (g.resize.width === image.width && g.resize.height === image.height) {
      // Both libraries return the image unchanged when the size does not change.
      const c = g.crop;
      if (c.left === 0 && c.top === 0 && c.width === image.width && c.height === image.height) return image;
      return cropImage(image, c);
    }
    return resampleRgb(image, g.resize.width, g.resize.height, {
      filter: this.config.resample,
      rounding: this.resampler === 'pil' ? 'pil' : 'torchvision',
      region: g.crop,
    });
  }

  /** Normalises a resized, cropped uint8 image into CHW float32 (`out` reused when given). */
  toPixelValues(crop: RgbImage, out?: Float32Array): Float32Array {
    const plane = crop.width * crop.height;
    const dst = out ?? new Float32Array(3 * plane);
    if (dst.length !== 3 * plane) throw new InvalidArgumentError('out', `expected length ${3 * plane}, got ${dst.length}`);
    const src = crop.data;
    const t = this.table;
    for (let c = 0; c < 3; c++) {
      const base = c * plane;
      const tb = c * 256;
      for (let i = 0; i < plane; i++) dst[base + i] = t[tb + (src[i * 3 + c] as number)] as number;
    }
    return dst;
  }

  /** Full preprocessing of a decoded image. */
  async preprocess(image: RgbImage, out?: Float32Array): Promise<Float32Array> {
    return this.toPixelValues(await this.resizeAndCrop(image), out);
  }

  /** Decodes a file (or encoded bytes) and preprocesses it; decoding errors name the file. */
  async preprocessSource(source: ImageSource, options: { name?: string; out?: Float32Array } = {}): Promise<Float32Array> {
    const decode: DecodeOptions = { ...this.decodeOptions, ...(options.name !== undefined ? { name: options.name } : {}) };
    if (this.resampler === 'sharp') {
      const crop = await decodeImage(source, { ...decode, steps: [this.sharpStep()] });
      return this.toPixelValues(crop, options.out);
    }
    const image = await decodeImage(source, decode);
    return this.toPixelValues(this.resizeAndCropExact(image), options.out);
  }

  /** Decoding options for files (used by the batch loader). */
  get decode(): Omit<DecodeOptions, 'steps' | 'rng' | 'name'> {
    return this.decodeOptions;
  }
}
