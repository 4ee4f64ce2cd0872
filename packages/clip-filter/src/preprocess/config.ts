/**
 * `preprocessor_config.json` of a Hugging Face CLIP model (`CLIPImageProcessor` /
 * `CLIPFeatureExtractor`), read into a checked, camel-cased config.
 */
import { readFile } from 'node:fs/promises';
import { NotFoundError, ValidationError } from '@diffmix/core';
import type { ResampleFilter } from './resample.js';

/** OpenAI CLIP's channel statistics (transformers' `OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD`). */
export const OPENAI_CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

export type ResizeTarget = { shortestEdge: number } | { height: number; width: number };

export interface ClipPreprocessorConfig {
  doResize: boolean;
  /** `{ shortestEdge }`: shorter side to this, longer side `floor(edge · long / short)`; or an exact size. */
  size: ResizeTarget;
  /** PIL resample code 3 (bicubic, CLIP's) or 2 (bilinear). */
  resample: ResampleFilter;
  doCenterCrop: boolean;
  cropSize: { height: number; width: number };
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: readonly [number, number, number];
  imageStd: readonly [number, number, number];
  /** Decoding always yields RGB (alpha composited over white, as transformers' `convert_to_rgb`); kept for reference. */
  doConvertRgb: boolean;
}

/** What `CLIPImageProcessor()` does with no config: openai/clip-vit-base-patch32's settings. */
export const CLIP_DEFAULT_PREPROCESSOR: ClipPreprocessorConfig = {
  doResize: true,
  size: { shortestEdge: 224 },
  resample: 'bicubic',
  doCenterCrop: true,
  cropSize: { height: 224, width: 224 },
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: OPENAI_CLIP_MEAN,
  imageStd: OPENAI_CLIP_STD,
  doConvertRgb: true,
};

const RESAMPLE_CODES: Record<number, ResampleFilter | undefined> = { 2: 'bilinear', 3: 'bicubic' };
const RESAMPLE_NAMES = ['nearest', 'lanczos', 'bilinear', 'bicubic', 'box', 'hamming'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses the JSON object of a `preprocessor_config.json`; missing keys take CLIP's defaults. */
export function parsePreprocessorConfig(value: unknown, source = 'preprocessor_config.json'): ClipPreprocessorConfig {
  if (!isRecord(value)) throw new ValidationError({ source, issues: ['expected a JSON object'] });
  const issues: string[] = [];
  const bool = (key: string, fallback: boolean): boolean => {
    const v = value[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') {
      issues.push(`${key}: expected true or false, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  };
  const positiveInt = (key: string, v: unknown): number | undefined => {
    if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
    issues.push(`${key}: expected a positive integer, got ${JSON.stringify(v)}`);
    return undefined;
  };
  const triple = (key: string, fallback: readonly [number, number, number]): readonly [number, number, number] => {
    const v = value[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'number' && Number.isFinite(v)) return [v, v, v];
    if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      return [v[0], v[1], v[2]] as [number, number, number];
    }
    issues.push(`${key}: expected a number or 3 numbers (R, G, B), got ${JSON.stringify(v)}`);
    return fallback;
  };

  // size: {shortest_edge} | {height, width} | a number (old configs: the shortest edge).
  let size: ResizeTarget = CLIP_DEFAULT_PREPROCESSOR.size;
  const rawSize = value.size;
  if (typeof rawSize === 'number') {
    const e = positiveInt('size', rawSize);
    if (e) size = { shortestEdge: e };
  } else if (isRecord(rawSize)) {
    if (rawSize.shortest_edge !== undefined) {
      const e = positiveInt('size.shortest_edge', rawSize.shortest_edge);
      if (e) size = { shortestEdge: e };
      if (rawSize.longest_edge !== undefined && rawSize.longest_edge !== null) {
        issues.push('size.longest_edge: not supported (CLIP processors resize by the shortest edge only)');
      }
    } else if (rawSize.height !== undefined || rawSize.width !== undefined) {
      const h = positiveInt('size.height', rawSize.height);
      const w = positiveInt('size.width', rawSize.width);
      if (h && w) size = { height: h, width: w };
    } else {
      issues.push(`size: expected {"shortest_edge": n} or {"height": h, "width": w}, got ${JSON.stringify(rawSize)}`);
    }
  } else if (rawSize !== undefined && rawSize !== null) {
    issues.push(`size: expected an object or a number, got ${JSON.stringify(rawSize)}`);
  }

  let cropSize = CLIP_DEFAULT_PREPROCESSOR.cropSize;
  const rawCrop = value.crop_size;
  if (typeof rawCrop === 'number') {
    const c = positiveInt('crop_size', rawCrop);
    if (c) cropSize = { height: c, width: c };
  } else if (isRecord(rawCrop)) {
    const h = positiveInt('crop_size.height', rawCrop.height);
    const w = positiveInt('crop_size.width', rawCrop.width);
    if (h && w) cropSize = { height: h, width: w };
  } else if (rawCrop !== undefined && rawCrop !== null) {
    issues.push(`crop_size: expected an object or a number, got ${JSON.stringify(rawCrop)}`);
  }

  let resample: ResampleFilter = 'bicubic';
  const rawResample = value.resample;
  if (rawResample !== undefined && rawResample !== null) {
    const f = typeof rawResample === 'number' ? RESAMPLE_CODES[rawResample] : undefined;
    if (f) resample = f;
    else {
      const name = typeof rawResample === 'number' ? RESAMPLE_NAMES[rawResample] : undefined;
      issues.push(
        `resample: ${JSON.stringify(rawResample)}${name ? ` (${name})` : ''} is not supported; use 3 (bicubic, what CLIP uses) or 2 (bilinear)`,
      );
    }
  }

  let rescaleFactor = CLIP_DEFAULT_PREPROCESSOR.rescaleFactor;
  const rawRescale = value.rescale_factor;
  if (rawRescale !== undefined && rawRescale !== null) {
    if (typeof rawRescale === 'number' && Number.isFinite(rawRescale) && rawRescale > 0) rescaleFactor = rawRescale;
    else issues.push(`rescale_factor: expected a positive number, got ${JSON.stringify(rawRescale)}`);
  }
  const imageStd = triple('image_std', OPENAI_CLIP_STD);
  if (imageStd.some((s) => !(s > 0))) issues.push(`image_std: every entry must be > 0, got ${JSON.stringify(imageStd)}`);

  const config: ClipPreprocessorConfig = {
    doResize: bool('do_resize', true),
    size,
    resample,
    doCenterCrop: bool('do_center_crop', true),
    cropSize,
    doRescale: bool('do_rescale', true),
    rescaleFactor,
    doNormalize: bool('do_normalize', true),
    imageMean: triple('image_mean', OPENAI_CLIP_MEAN),
    imageStd,
    doConvertRgb: bool('do_convert_rgb', true),
  };
  if (issues.length) throw new ValidationError({ source, issues });
  return config;
}

/** Reads and parses a `preprocessor_config.json`. */
export async function readPreprocessorConfig(file: string): Promise<ClipPreprocessorConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(file, 'preprocessor config');
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ValidationError({ source: file, issues: [`not valid JSON (${(cause as Error).message})`], cause });
  }
  return parsePreprocessorConfig(json, file);
}
