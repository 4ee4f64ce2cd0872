/**
 * Cross-attention maps of img2img jobs: run the pipeline through an {@link AttentionCapture},
 * aggregate per token (see aggregate.ts for the exact averaging), and draw a PNG grid with one row
 * per job: source | output | one heat-map overlay per token.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '@diffmix/core';
import { type RgbImage, blankImage, decodeImage, encodePng, makeContactSheet, resize, transformImage } from '@diffmix/datasets';
import { type LoadStableDiffusionOptions, type SchedulerName, StableDiffusion } from '../model/stable-diffusion.js';
import type { SessionConfig } from '../model/providers.js';
import { type GenerationOptions, type StepTrace, img2img } from '../pipeline/generate.js';
import type { LoraSpec, TextualInversionSpec } from '../weights/index.js';
import {
  AttentionAccumulator,
  type LayerAttention,
  type ResolutionChoice,
  averageLayers,
  normalizeMap,
  tokenPlane,
  upsampleBilinear,
} from './aggregate.js';
import { AttentionCapture } from './capture.js';
import { type ColormapName, blendImages, heatmapImage } from './colormap.js';
import { type SelectedToken, type TokenSelector, selectTokens } from './tokens.js';

/** One img2img job whose attention is mapped. */
export interface AttentionJob {
  image: RgbImage;
  /** E.g. `a photo of a <class_1> bird` (Diff-Mix's target-class prompt). */
  prompt: string;
  strength: number;
  negativePrompt?: string;
  /** Noise seed (default 0). */
  seed?: number;
  /** Row label in results (e.g. the image's file name). */
  label?: string;
}

export interface AttentionMapOptions {
  /** Denoising steps of the full schedule (default 25); img2img runs int(steps · strength). */
  steps?: number;
  /** Default 7.5; maps use the conditional half of the CFG batch. */
  guidanceScale?: number;
  /** Model-side image size (default: the model's native size). */
  size?: number;
  /** Tokens to map (see tokens.ts); default every prompt token and the end-of-text token. */
  tokens?: readonly TokenSelector[];
  /** Which layers to average (default `auto`, see {@link ResolutionChoice}). */
  resolution?: ResolutionChoice;
  /** Jobs of one strength run as one batch of at most this many (default 4); batching never changes an image. */
  batchSize?: number;
  onStep?: (info: StepTrace & { jobs: number[] }) => void;
  signal?: AbortSignal;
}

/** One token's map for one job. */
export interface TokenAttentionMap extends SelectedToken {
  /** Mean attention probability over the grid (the token's share of the attention; all 77 sum to 1). */
  share: number;
  /** Aggregated attention on the layer grid (height × width, row-major), raw probabilities. */
  grid: Float32Array;
}

export interface AttentionMapResult {
  job: AttentionJob;
  /** The img2img output at the source's size. */
  output: RgbImage;
  /** Denoising steps that ran (UNet calls averaged). */
  steps: number;
  /** Grid of the averaged layers. */
  height: number;
  width: number;
  /** Layers averaged for the token maps. */
  modules: string[];
  /** Every captured layer (mean over heads and steps), for other aggregations. */
  layers: LayerAttention[];
  tokens: TokenAttentionMap[];
  /** Text selectors not found in this job's prompt. */
  missingTokens: string[];
}

function checkJob(job: AttentionJob, i: number): void {
  if (!(job.strength > 0 && job.strength <= 1))
    throw new InvalidArgumentError(`jobs[${i}].strength`, `must be in (0, 1], got ${job.strength}`);
  if (typeof job.prompt !== 'string') throw new InvalidArgumentError(`jobs[${i}].prompt`, 'must be a string');
}

/**
 * Runs the jobs through the capture's pipeline (img2img, grouped by strength) and returns each job's
 * output and token maps, in the jobs' order.
 */
export async function computeAttentionMaps(
  capture: AttentionCapture,
  jobs: readonly AttentionJob[],
  options: AttentionMapOptions = {},
): Promise<AttentionMapResult[]> {
  if (jobs.length === 0) throw new InvalidArgumentError('jobs', 'at least one job is needed');
  jobs.forEach(checkJob);
  const model = capture.model;
  const guidance = options.guidanceScale ?? 7.5;
  const size = options.size ?? model.defaultSize;
  const latentSize = size / model.vaeScaleFactor;
  const batchSize = options.batchSize ?? 4;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new InvalidArgumentError('batchSize', `must be a positive integer, got ${batchSize}`);

  // Group by strength (img2img batches share timesteps), keep the order inside a group.
  const groups = new Map<number, number[]>();
  jobs.forEach((job, i) => {
    const g = groups.get(job.strength);
    if (g) g.push(i);
    else groups.set(job.strength, [i]);
  });
  const results: AttentionMapResult[] = new Array(jobs.length);
  for (const [strength, members] of groups) {
    for (let c = 0; c < members.length; c += batchSize) {
      const idx = members.slice(c, c + batchSize);
      const batch = idx.map((i) => jobs[i] as AttentionJob);
      const acc = new AttentionAccumulator(batch.length, guidance > 1);
      const gen: GenerationOptions = {
        ...(options.steps !== undefined ? { steps: options.steps } : {}),
        guidanceScale: guidance,
        size,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onStep ? { onStep: (s: StepTrace) => options.onStep?.({ ...s, jobs: idx }) } : {}),
      };
      const out = await capture.record(
        (call) => acc.add(call.layers, call.batch),
        () =>
          img2img(
            model,
            batch.map((j) => ({
              image: j.image,
              prompt: j.prompt,
              seed: j.seed ?? 0,
              ...(j.negativePrompt !== undefined ? { negativePrompt: j.negativePrompt } : {}),
            })),
            strength,
            gen,
          ),
      );
      const ids = model.tokenize(batch.map((j) => j.prompt));
      batch.forEach((job, n) => {
        const layers = acc.layers(n, latentSize, latentSize);
        const agg = averageLayers(layers, options.resolution ?? 'auto', latentSize);
        const { tokens, missing } = selectTokens(
          {
            ids: ids[n] as number[],
            bos: model.tokenizer.bosTokenId,
            eos: model.tokenizer.eosTokenId,
            idsOf: (text) => {
              const row = model.tokenize([text])[0] as number[];
              const eos = model.tokenizer.eosTokenId;
              const end = row.indexOf(eos ?? -1, 1);
              return row.slice(row[0] === model.tokenizer.bosTokenId ? 1 : 0, end < 0 ? row.length : end);
            },
            text: (id) => model.tokenizer.decode([id]),
          },
          options.tokens,
        );
        const maps = tokens.map((t) => {
          const grid = tokenPlane(agg, t.positions);
          let sum = 0;
          for (const v of grid) sum += v;
          return { ...t, share: sum / grid.length, grid };
        });
        results[idx[n] as number] = {
          job,
          output: out.images[n] as RgbImage,
          steps: acc.steps,
          height: agg.height,
          width: agg.width,
          modules: agg.modules,
          layers,
          tokens: maps,
          missingTokens: missing,
        };
      });
    }
  }
  return results;
}

export interface AttentionSheetOptions {
  /** Width of every cell in pixels (default 128; heights follow each source's aspect ratio). */
  cellSize?: number;
  /** Default `jet`. */
  colormap?: ColormapName;
  /** Heat-map opacity over the image (default 0.5; 1 = the heat map alone). */
  alpha?: number;
  /** Per-token display scaling (default `max`, as prompt-to-prompt; see normalizeMap). */
  normalize?: 'max' | 'minmax';
  /** Which image the heat maps are drawn over (default the output, whose denoising produced them). */
  overlayOn?: 'output' | 'source';
  /** Pixels between cells (default 2). */
  gap?: number;
}

/** A token's heat map at some size: bilinear from the layer grid, normalised to [0, 1]. */
export function tokenHeatmap(
  result: AttentionMapResult,
  token: TokenAttentionMap,
  width: number,
  height: number,
  normalize: 'max' | 'minmax' = 'max',
): Float32Array {
  return normalizeMap(upsampleBilinear(token.grid, result.height, result.width, height, width), normalize);
}

/**
 * The grid: one row per result — source | output | token overlays (rows with fewer tokens end in
 * blank cells). Returns the image and the column labels of each row.
 */
export async function renderAttentionSheet(
  results: readonly AttentionMapResult[],
  options: AttentionSheetOptions = {},
): Promise<{ image: RgbImage; columns: string[][] }> {
  if (results.length === 0) throw new InvalidArgumentError('results', 'nothing to draw');
  const cell = options.cellSize ?? 128;
  if (!Number.isInteger(cell) || cell < 8) throw new InvalidArgumentError('cellSize', `must be an integer ≥ 8, got ${cell}`);
  const alpha = options.alpha ?? 0.5;
  const colormapName = options.colormap ?? 'jet';
  const columns = 2 + Math.max(...results.map((r) => r.tokens.length));
  const cells: RgbImage[] = [];
  const labels: string[][] = [];
  for (const r of results) {
    const w = cell;
    const h = Math.max(1, Math.round((cell * r.job.image.height) / r.job.image.width));
    const fit = (img: RgbImage) => (img.width === w && img.height === h ? img : transformImage(img, [resize(w, h)]));
    const source = await fit(r.job.image);
    const output = await fit(r.output);
    const under = options.overlayOn === 'source' ? source : output;
    const row: RgbImage[] = [source, output];
    for (const t of r.tokens) {
      const heat = heatmapImage(tokenHeatmap(r, t, w, h, options.normalize ?? 'max'), w, h, colormapName);
      row.push(alpha >= 1 ? heat : blendImages(under, heat, alpha));
    }
    while (row.length < columns) {
      const blank = blankImage(w, h);
      blank.data.fill(255);
      row.push(blank);
    }
    cells.push(...row);
    labels.push(['source', `output (strength ${r.job.strength})`, ...r.tokens.map((t) => t.label)]);
  }
  const image = makeContactSheet(cells, { columns, gap: options.gap ?? 2 });
  return { image, columns: labels };
}

/** Options of {@link renderAttentionMaps} (what `diffmix attention` passes). */
export interface RenderAttentionMapsOptions extends AttentionMapOptions, AttentionSheetOptions, SessionConfig {
  /** Stable Diffusion ONNX folder (diffusers/optimum layout). */
  modelDir: string;
  lora?: LoraSpec[];
  allowUnmatchedLoraKeys?: boolean;
  textualInversion?: TextualInversionSpec[];
  scheduler?: SchedulerName;
  /**
   * Jobs as the product images × prompts × strengths (each a value or a list): one image, a target
   * prompt per class, a sweep of strengths… Ignored when `jobs` is given.
   */
  image?: string | RgbImage | readonly (string | RgbImage)[];
  prompt?: string | readonly string[];
  strength?: number | readonly number[];
  negativePrompt?: string;
  /** Noise seed of every job (default 0: rows differing only in strength share their noise). */
  seed?: number;
  /** Explicit jobs (images as paths or decoded). */
  jobs?: readonly (Omit<AttentionJob, 'image'> & { image: string | RgbImage })[];
  /** Restrict the captured attn2 layers by module path (e.g. `/^up_blocks/`). Default: all. */
  layers?: RegExp;
  /** Output PNG path. */
  out: string;
  /** Quantise the PNG to a ≤ 256-colour palette (much smaller, slightly lossy; for documentation). */
  palette?: boolean;
  /** Summary JSON path (default: `out` with `.json`; false: none). */
  json?: string | false;
}

export interface RenderAttentionMapsResult {
  /** The PNG written. */
  out: string;
  /** The JSON written, if any. */
  json: string | undefined;
  width: number;
  height: number;
  /** The captured layers: module path, grid and heads (from the first job). */
  layers: { module: string; height: number; width: number; heads: number }[];
  rows: {
    image: string;
    prompt: string;
    strength: number;
    seed: number;
    steps: number;
    resolution: { height: number; width: number };
    modules: string[];
    /** Column labels after source and output, with each token's positions and attention share. */
    tokens: { label: string; positions: number[]; share: number }[];
    missingTokens: string[];
  }[];
}

function asList<T>(v: T | readonly T[] | undefined): T[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? [...(v as readonly T[])] : [v as T];
}

/**
 * Loads the model (with LoRA / textual inversion), opens the attention capture, runs every job and
 * writes the PNG grid (+ a JSON summary with the token maps on the layer grid). For `diffmix attention`.
 */
export async function renderAttentionMaps(options: RenderAttentionMapsOptions): Promise<RenderAttentionMapsResult> {
  if (!options.out) throw new InvalidArgumentError('out', 'an output PNG path is required');
  type JobInput = Omit<AttentionJob, 'image'> & { image: string | RgbImage };
  let inputs: JobInput[];
  if (options.jobs?.length) {
    inputs = [...options.jobs];
  } else {
    const images = asList(options.image);
    const prompts = asList(options.prompt);
    const strengths = asList(options.strength);
    if (images.length === 0 || prompts.length === 0 || strengths.length === 0) {
      throw new InvalidArgumentError('jobs', 'give jobs, or image, prompt and strength');
    }
    inputs = [];
    for (const image of images)
      for (const prompt of prompts)
        for (const strength of strengths)
          inputs.push({
            image,
            prompt,
            strength,
            ...(options.negativePrompt !== undefined ? { negativePrompt: options.negativePrompt } : {}),
            ...(options.seed !== undefined ? { seed: options.seed } : {}),
          });
  }
  const decoded = new Map<string, RgbImage>();
  const jobs: AttentionJob[] = [];
  for (const [i, j] of inputs.entries()) {
    let image: RgbImage;
    let label = j.label;
    if (typeof j.image === 'string') {
      const file = j.image;
      image = decoded.get(file) ?? (await decodeImage(file));
      decoded.set(file, image);
      label ??= path.basename(file);
    } else {
      image = j.image;
      label ??= `image ${i}`;
    }
    jobs.push({ ...j, image, label, seed: j.seed ?? options.seed ?? 0 });
  }

  const session: SessionConfig = {
    ...(options.device ? { device: options.device } : {}),
    ...(options.intraOpNumThreads !== undefined ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
    ...(options.interOpNumThreads !== undefined ? { interOpNumThreads: options.interOpNumThreads } : {}),
    ...(options.graphOptimizationLevel ? { graphOptimizationLevel: options.graphOptimizationLevel } : {}),
    ...(options.freeDimensionOverrides ? { freeDimensionOverrides: options.freeDimensionOverrides } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  };
  const load: LoadStableDiffusionOptions = {
    ...session,
    ...(options.scheduler ? { scheduler: options.scheduler } : {}),
    ...(options.lora ? { lora: options.lora } : {}),
    ...(options.allowUnmatchedLoraKeys !== undefined ? { allowUnmatchedLoraKeys: options.allowUnmatchedLoraKeys } : {}),
    ...(options.textualInversion ? { textualInversion: options.textualInversion } : {}),
  };
  const model = await StableDiffusion.load(options.modelDir, load);
  let capture: AttentionCapture | undefined;
  try {
    capture = await AttentionCapture.open(model, {
      ...session,
      ...(options.lora ? { lora: options.lora } : {}),
      ...(options.allowUnmatchedLoraKeys !== undefined ? { allowUnmatchedLoraKeys: options.allowUnmatchedLoraKeys } : {}),
      ...(options.layers ? { match: options.layers } : {}),
    });
    const results = await computeAttentionMaps(capture, jobs, options);
    const sheet = await renderAttentionSheet(results, options);
    const out = path.resolve(options.out);
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(
      out,
      await encodePng(sheet.image.data, sheet.image.width, sheet.image.height, { palette: options.palette ?? false }),
    );
    const first = results[0] as AttentionMapResult;
    const summary: RenderAttentionMapsResult = {
      out,
      json: undefined,
      width: sheet.image.width,
      height: sheet.image.height,
      layers: first.layers.map((l) => ({ module: l.module, height: l.height, width: l.width, heads: l.heads })),
      rows: results.map((r) => ({
        image: r.job.label ?? '',
        prompt: r.job.prompt,
        strength: r.job.strength,
        seed: r.job.seed ?? 0,
        steps: r.steps,
        resolution: { height: r.height, width: r.width },
        modules: r.modules,
        tokens: r.tokens.map((t) => ({ label: t.label, positions: t.positions, share: t.share })),
        missingTokens: r.missingTokens,
      })),
    };
    if (options.json !== false) {
      const json = path.resolve(options.json ?? out.replace(/\.png$/i, '') + '.json');
      const withGrids = {
        ...summary,
        json,
        columns: ['source', 'output', '…tokens'],
        rows: summary.rows.map((row, i) => ({
          ...row,
          tokens: row.tokens.map((t, k) => ({
            ...t,
            // the aggregated map on the layer grid, row-major (raw mean probabilities)
            grid: Array.from((results[i] as AttentionMapResult).tokens[k]?.grid ?? [], (v) => Number(v.toPrecision(6))),
          })),
        })),
      };
      await mkdir(path.dirname(json), { recursive: true });
      await writeFile(json, `${JSON.stringify(withGrids, null, 2)}\n`);
      summary.json = json;
    }
    return summary;
  } finally {
    await capture?.release();
    await model.release();
  }
}
