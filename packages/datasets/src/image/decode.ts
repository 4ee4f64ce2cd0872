/**
 * Decoding with sharp (libvips): any input (grey, CMYK, palette, alpha, 16-bit, EXIF-rotated,
 * multi-page) becomes 8-bit sRGB RGB, HWC, with an optional chain of geometry steps run in the same
 * libvips pass.
 */
import { readFile } from 'node:fs/promises';
import {
  type DatasetRecord,
  describeRecord,
  ImageDecodeError,
  InvalidArgumentError,
  NotFoundError,
  type Rng,
} from '@diffmix/core';
import sharp, { type KernelEnum, type PngOptions, type Sharp, type SharpOptions } from 'sharp';
import { blankImage } from './pixels.js';
import { GeometryPlan, type PlanStage } from './plan.js';
import type { ImageStep } from './steps.js';
import type { RgbImage } from './types.js';

/**
 * The resampling kernel of every resize in diffmix: libvips `cubic`, the Catmull-Rom cubic
 * (Keys a = -0.5; B = 0, C = 0.5), i.e. the same filter as Pillow's `BICUBIC`.
 *
 * What sharp 0.35.5 (libvips 8.18.7) does with it:
 * - downscaling: `reducev` then `reduceh`, separable convolutions whose support is widened by the
 *   scale factor (antialiased, as Pillow), with a reducing gap of 2: a factor ≥ 4 is first
 *   box-averaged by ⌊factor / 2⌋ and the cubic does the remaining ≥ 2×; 8-bit images use fixed-point
 *   coefficients on quantised sub-pixel positions; borders extend by copying edge pixels; pixel
 *   centres are aligned (`x = (X + 0.5)·s − 0.5`), as in Pillow;
 * - upscaling: an affine transform with libvips' 4×4 Catmull-Rom interpolator. libvips 8.18 offsets
 *   the input by 0.5 px instead of 0.5·(1 − 1/scale), shifting the result by half an OUTPUT pixel
 *   relative to Pillow (fixed upstream in libvips 8.19, commit 4a24c7c "better centre sampling on
 *   resize upscale"; sharp 0.35 still bundles 8.18).
 *
 * Measured against Pillow 9.4 `resize(..., BICUBIC)` (8-bit RGB, |Δ| in levels of 255;
 * `bench/resampler-vs-pillow.mjs`, results in bench-results/resampler-vs-pillow.json):
 * - downscale ≤ 4× (512→224, 512→256, a 720×477 photo → 224): mean 0.21, max 1–3;
 * - downscale ≥ 4× (1024→224; the box pre-shrink): mean 0.55, max 4;
 * - upscale (64→224, 224→512; the half-pixel shift): mean 1.6–1.7, max 33–50 at sharp edges.
 * torch's `F.interpolate(mode='bicubic')` (a = -0.75, no antialiasing) is a different filter: mean
 * 2.5 (toy images) to 7.7 (photo) from ours at 512→224, mostly its aliasing. torchvision's
 * `Resize(..., BICUBIC)` on tensors with `antialias=True` (default since 0.17) uses a = -0.5 with
 * widened support, i.e. Pillow's filter; on PIL images it calls Pillow.
 */
export const RESIZE_KERNEL = 'cubic' as const satisfies keyof KernelEnum;

/** When to give up on damaged pixel data: sharp's `failOn`. */
export type FailOn = 'none' | 'truncated' | 'error' | 'warning';

export interface DecodeOptions {
  /** Name used in errors for in-memory bytes (a record id); file sources are named by their path. */
  name?: string;
  /** Geometry steps (resize, crops, flip…) run in the decoding pass. */
  steps?: readonly ImageStep[];
  /** Random source of the random steps (required when a step is random). */
  rng?: Rng;
  /**
   * Alpha handling: 'white' (default) or 'black' composite the image over that colour;
   * 'drop' discards the alpha channel and keeps the stored colours (what PIL's `convert('RGB')` does).
   */
  alpha?: 'white' | 'black' | 'drop';
  /**
   * sharp's `failOn` (default 'truncated'): 'truncated' rejects truncated JPEG/PNG data but accepts
   * files libjpeg only warns about (extraneous bytes before a marker, common in scraped datasets);
   * 'warning' rejects those too; 'none' decodes whatever it can (a truncated JPEG comes out grey
   * at the bottom).
   */
  failOn?: FailOn;
  /**
   * Let libjpeg/libwebp downscale in the DCT domain when it can (default false: libvips then still
   * shrinks on load by at most factor/2, leaving at least a 2× reduction to the kernel).
   */
  fastShrinkOnLoad?: boolean;
  /** Maximum input pixels (sharp's `limitInputPixels`; default sharp's 268 Mpx). */
  limitInputPixels?: number;
}

/** A source decoded with `decodeImage`: a file path or encoded bytes. */
export type ImageSource = string | Uint8Array;

function sourceName(source: ImageSource, options: DecodeOptions): string {
  return typeof source === 'string' ? source : (options.name ?? '<in-memory image>');
}

async function readSource(source: ImageSource): Promise<Uint8Array> {
  if (typeof source !== 'string') return source;
  try {
    return await readFile(source);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(source, 'image file');
    throw new ImageDecodeError(source, `cannot read file: ${(cause as Error).message}`, { cause });
  }
}

function reason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.trim().split('\n').filter(Boolean).join('; ');
}

function inputOptions(options: DecodeOptions): SharpOptions {
  const o: SharpOptions = { failOn: options.failOn ?? 'truncated', autoOrient: true, pages: 1, page: 0 };
  if (options.limitInputPixels !== undefined) o.limitInputPixels = options.limitInputPixels;
  return o;
}

/** Flattening / alpha removal and conversion to 8-bit sRGB, shared by every pass. */
function toRgb8(pipeline: Sharp, options: DecodeOptions): Sharp {
  const alpha = options.alpha ?? 'white';
  if (alpha === 'drop') pipeline.removeAlpha();
  else pipeline.flatten({ background: alpha === 'white' ? { r: 255, g: 255, b: 255 } : { r: 0, g: 0, b: 0 } });
  return pipeline.toColourspace('srgb').raw({ depth: 'uchar' });
}

/** Adds a stage's operations to a sharp pipeline, in the order sharp runs them. */
function applyStage(pipeline: Sharp, stage: PlanStage, options: DecodeOptions): Sharp {
  if (stage.pre) pipeline.extract(stage.pre);
  if (stage.resize) {
    pipeline.resize({
      width: stage.resize.width,
      height: stage.resize.height,
      fit: 'fill',
      kernel: RESIZE_KERNEL,
      fastShrinkOnLoad: options.fastShrinkOnLoad ?? false,
    });
  }
  if (stage.flop) pipeline.flop();
  if (stage.post) pipeline.extract(stage.post);
  if (stage.pad) pipeline.extend({ ...stage.pad, background: { r: 0, g: 0, b: 0, alpha: 1 } });
  return pipeline;
}

/** Output size of one planned pass: the last crop (or resize, or input), plus the zero padding. */
export function stageOutputSize(stage: PlanStage): { width: number; height: number } {
  const base = stage.post ?? stage.resize ?? stage.pre ?? { width: stage.inWidth, height: stage.inHeight };
  const pad = stage.pad ?? { left: 0, right: 0, top: 0, bottom: 0 };
  return { width: base.width + pad.left + pad.right, height: base.height + pad.top + pad.bottom };
}

/**
 * Runs a pass. `expected` is the size the plan computed: sharp's `info` reports the size *before*
 * `extend` when a pass crops and then pads (seen with sharp 0.35 whenever a RandomCrop window reaches
 * into the padding), while the pixels are the padded ones — so the plan's size is used, and the
 * buffer length is checked against it.
 */
async function runPass(pipeline: Sharp, expected?: { width: number; height: number }): Promise<RgbImage> {
  const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
  const width = expected?.width ?? info.width;
  const height = expected?.height ?? info.height;
  if (data.byteLength !== width * height * 3) {
    throw new Error(
      `libvips returned ${data.byteLength} bytes for a ${width}×${height} RGB image (info says ${info.width}×${info.height})`,
    );
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height, channels: 3 };
}

/** Builds the plan of `steps` on an image of the given (oriented) size. */
export function planSteps(width: number, height: number, steps: readonly ImageStep[], rng: Rng | undefined): GeometryPlan {
  const plan = new GeometryPlan(width, height);
  for (const step of steps) {
    if (step.random && !rng) throw new InvalidArgumentError('rng', `step ${step.name} is random: pass an Rng`);
    step.apply(plan, rng);
  }
  return plan;
}

/** Runs stages 1… of a plan on the raw output of the previous pass. */
async function runRemainingStages(first: RgbImage, plan: GeometryPlan, from: number, options: DecodeOptions): Promise<RgbImage> {
  let img = first;
  for (let i = from; i < plan.stages.length; i++) {
    const p = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
    img = await runPass(
      applyStage(p, plan.stages[i] as PlanStage, options).raw({ depth: 'uchar' }),
      stageOutputSize(plan.stages[i] as PlanStage),
    );
  }
  return img;
}

/**
 * Decodes an image file or encoded bytes to 8-bit sRGB RGB (HWC), applying `options.steps`.
 *
 * - Colour: embedded ICC profiles are honoured, CMYK goes through libvips' CMYK profile, grey
 *   becomes R = G = B, 16-bit samples become 8-bit (libvips' cast: `v >> 8`), palette images expand.
 * - Alpha: composited over white (`alpha: 'white'`, default), over black, or dropped.
 * - EXIF orientation is applied before any step (coordinates of steps are those of the upright image).
 * - Multi-page files (TIFF, GIF, WebP animations): the first page.
 * - A file that cannot be decoded (corrupt, truncated, not an image) throws `ImageDecodeError`
 *   naming the file (or `options.name` for bytes) with libvips' reason; a missing file throws
 *   `NotFoundError`.
 */
export async function decodeImage(source: ImageSource, options: DecodeOptions = {}): Promise<RgbImage> {
  const name = sourceName(source, options);
  const bytes = await readSource(source);
  const steps = options.steps ?? [];
  try {
    const input = inputOptions(options);
    if (steps.length === 0) return await runPass(toRgb8(sharp(bytes, input), options));
    const meta = await sharp(bytes, input).metadata();
    // With `pages: 1` the size is that of the first page; `autoOrient` is the upright size.
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    const plan = planSteps(width, height, steps, options.rng);
    if (plan.blank) {
      // Still decode, so that a damaged file is reported whatever the steps.
      await runPass(toRgb8(sharp(bytes, input), options));
      return blankImage(plan.width, plan.height);
    }
    const first = await runPass(
      toRgb8(applyStage(sharp(bytes, input), plan.stages[0] as PlanStage, options), options),
      stageOutputSize(plan.stages[0] as PlanStage),
    );
    return await runRemainingStages(first, plan, 1, options);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw new ImageDecodeError(name, reason(err), { cause: err });
  }
}

/** Decodes a dataset record (file or in-memory bytes); errors name the path, or the id for bytes. */
export function decodeRecord(record: DatasetRecord, options: Omit<DecodeOptions, 'name'> = {}): Promise<RgbImage> {
  if (record.path !== undefined) return decodeImage(record.path, options);
  return decodeImage(record.bytes, { ...options, name: describeRecord(record) });
}

/**
 * Applies geometry steps to an already decoded image (same planning, same kernel, raw input).
 * An empty step list returns the image itself.
 */
export async function transformImage(img: RgbImage, steps: readonly ImageStep[], rng?: Rng): Promise<RgbImage> {
  if (steps.length === 0) return img;
  const plan = planSteps(img.width, img.height, steps, rng);
  if (plan.blank) return blankImage(plan.width, plan.height);
  return runRemainingStages(img, plan, 0, {});
}

export interface EncodePngOptions {
  /** zlib level 0–9 (default 6). */
  compressionLevel?: number;
  /** Quantise to a ≤ 256-colour palette (lossy, much smaller; for documentation samples). */
  palette?: boolean;
  /** Channels in `data`: 1 (grey), 3 (RGB, default) or 4 (RGBA). */
  channels?: 1 | 3 | 4;
}

/**
 * Encodes 8-bit pixels (HWC) as PNG. Deterministic: the same pixels and options give the same bytes
 * (no metadata, no timestamps; fixed filter choice).
 */
export async function encodePng(
  data: Uint8Array,
  width: number,
  height: number,
  options: EncodePngOptions = {},
): Promise<Uint8Array> {
  const channels = options.channels ?? 3;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new InvalidArgumentError('size', `width and height must be positive integers, got ${width}×${height}`);
  }
  if (data.length !== width * height * channels) {
    throw new InvalidArgumentError(
      'data',
      `expected ${width * height * channels} bytes (${width}×${height}×${channels}), got ${data.length}`,
    );
  }
  const png: PngOptions = { compressionLevel: options.compressionLevel ?? 6, adaptiveFiltering: false };
  if (options.palette) Object.assign(png, { palette: true, quality: 100, effort: 10, dither: 0 });
  const buf = await sharp(data, { raw: { width, height, channels } }).png(png).toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
