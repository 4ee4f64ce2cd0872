/**
 * Aggregating cross-attention probabilities into per-token maps (pure arithmetic, no ONNX).
 *
 * One attn2 layer gives, per UNet call, P[b, h, q, k] (or the same memory as [b·h, q, k]): for
 * batch row b, head h and image position q (a cell of the layer's h×w grid, row-major), the softmax
 * over the K = 77 text tokens. The maps follow prompt-to-prompt's `aggregate_attention`:
 *
 *   1. rows: with classifier-free guidance the UNet batch is [unconditional ; conditional]; only the
 *      conditional half (rows B … 2B−1, the prompt's own tokens) is kept;
 *   2. heads: mean over the heads of a layer;
 *   3. steps: mean over every denoising step that ran (img2img runs int(N·strength) of N);
 *   4. layers: mean over the layers whose grid has the chosen resolution (each layer weighs the same;
 *      prompt-to-prompt weighs by head count, identical when every layer has the same heads, as in
 *      SD 1.x);
 *   5. token t: the plane M[·, t] of h×w values, upsampled bilinearly (half-pixel centres, edges
 *      clamped) to the image size and, for display only, normalised to [0, 1].
 *
 * Steps 2–4 are means of probability distributions, so every aggregated position still sums to 1
 * over the 77 tokens.
 */
import { InvalidArgumentError } from '@diffmix/core';

/** One layer's probabilities from one UNet call. */
export interface AttentionTensor {
  data: Float32Array;
  dims: readonly number[];
}

/** A layer's map for one job: mean over heads and steps, [Q, K] row-major. */
export interface LayerAttention {
  module: string;
  /** Grid of query positions (height · width = queries). */
  height: number;
  width: number;
  queries: number;
  keys: number;
  heads: number;
  /** UNet calls (denoising steps) averaged. */
  steps: number;
  map: Float32Array;
}

/** Reads [B, H, Q, K] (or [B·H, Q, K]) dims for a UNet batch of `batch` rows. */
export function attentionLayout(dims: readonly number[], batch: number): { heads: number; queries: number; keys: number } {
  if (dims.length < 3) throw new InvalidArgumentError('dims', `attention probabilities need rank ≥ 3, got [${dims.join(', ')}]`);
  const keys = dims[dims.length - 1] as number;
  const queries = dims[dims.length - 2] as number;
  const lead = dims.slice(0, -2).reduce((a, b) => a * b, 1);
  if (lead % batch !== 0) {
    throw new InvalidArgumentError('dims', `attention [${dims.join(', ')}] does not split into ${batch} batch rows`);
  }
  return { heads: lead / batch, queries, keys };
}

/**
 * Adds Σ_h P[rows[i], h, ·, ·] into `into[i]` (float64, length Q·K) for each selected batch row.
 * Batch-major layouts only: [B, H, Q, K] and diffusers' head_to_batch_dim [B·H, Q, K] (index b·H + h).
 */
export function accumulateHeadSums(
  t: AttentionTensor,
  batch: number,
  rows: readonly number[],
  into: readonly Float64Array[],
): number {
  const { heads, queries, keys } = attentionLayout(t.dims, batch);
  const plane = queries * keys;
  if (t.data.length !== batch * heads * plane) {
    throw new InvalidArgumentError(
      'data',
      `attention has ${t.data.length} values, dims [${t.dims.join(', ')}] need ${batch * heads * plane}`,
    );
  }
  rows.forEach((row, i) => {
    const acc = into[i] as Float64Array;
    if (acc.length !== plane)
      throw new InvalidArgumentError('into', `accumulator ${i} has ${acc.length} values, the layer needs ${plane}`);
    const data = t.data;
    const base = row * heads * plane;
    for (let j = 0; j < plane; j++) {
      let s = 0;
      for (let h = 0, at = base + j; h < heads; h++, at += plane) s += data[at] as number;
      acc[j] = (acc[j] as number) + s;
    }
  });
  return heads;
}

/** The h×w grid of a layer with `queries` positions in a latent of latentHeight×latentWidth (strided convs: ceil). */
export function layerGrid(queries: number, latentHeight: number, latentWidth: number): { height: number; width: number } {
  for (let f = 1; f <= Math.max(latentHeight, latentWidth); f *= 2) {
    const height = Math.ceil(latentHeight / f);
    const width = Math.ceil(latentWidth / f);
    if (height * width === queries) return { height, width };
  }
  const side = Math.round(Math.sqrt(queries));
  if (side * side === queries) return { height: side, width: side };
  throw new InvalidArgumentError(
    'queries',
    `${queries} query positions fit no downsampling of a ${latentWidth}×${latentHeight} latent`,
  );
}

/**
 * Collects the conditional rows of every call, per layer, summed over heads; {@link layers} returns
 * the means. `guided`: the batch is [unconditional ; conditional] (2·jobs rows); else jobs rows.
 */
export class AttentionAccumulator {
  private readonly sums = new Map<
    string,
    { sums: Float64Array[]; heads: number; queries: number; keys: number; calls: number }
  >();
  readonly order: string[] = [];

  constructor(
    readonly jobs: number,
    readonly guided: boolean,
  ) {
    if (!Number.isInteger(jobs) || jobs < 1) throw new InvalidArgumentError('jobs', `must be a positive integer, got ${jobs}`);
  }

  /** Conditional batch rows for a UNet batch of `batch` rows. */
  rows(batch: number): number[] {
    const expected = this.guided ? 2 * this.jobs : this.jobs;
    if (batch !== expected) {
      throw new InvalidArgumentError(
        'batch',
        `UNet batch of ${batch} rows, expected ${expected} (${this.jobs} jobs, ${this.guided ? 'with' : 'without'} guidance)`,
      );
    }
    const offset = this.guided ? this.jobs : 0;
    return Array.from({ length: this.jobs }, (_, n) => offset + n);
  }

  /** One UNet call: the probabilities of each layer (by module name). */
  add(layers: Iterable<readonly [string, AttentionTensor]>, batch: number): void {
    const rows = this.rows(batch);
    for (const [module, t] of layers) {
      const layout = attentionLayout(t.dims, batch);
      let entry = this.sums.get(module);
      if (!entry) {
        entry = {
          sums: rows.map(() => new Float64Array(layout.queries * layout.keys)),
          heads: layout.heads,
          queries: layout.queries,
          keys: layout.keys,
          calls: 0,
        };
        this.sums.set(module, entry);
        this.order.push(module);
      } else if (entry.heads !== layout.heads || entry.queries !== layout.queries || entry.keys !== layout.keys) {
        throw new InvalidArgumentError('layers', `layer ${module} changed shape between calls`);
      }
      accumulateHeadSums(t, batch, rows, entry.sums);
      entry.calls++;
    }
  }

  /** UNet calls seen per layer (0 when nothing was captured). */
  get steps(): number {
    const first = this.order[0];
    return first === undefined ? 0 : (this.sums.get(first)?.calls ?? 0);
  }

  /** Every layer's mean over heads and calls for job `job`, in capture order. */
  layers(job: number, latentHeight: number, latentWidth: number): LayerAttention[] {
    if (!Number.isInteger(job) || job < 0 || job >= this.jobs)
      throw new InvalidArgumentError('job', `must be in [0, ${this.jobs}), got ${job}`);
    return this.order.map((module) => {
      const e = this.sums.get(module) as { sums: Float64Array[]; heads: number; queries: number; keys: number; calls: number };
      const scale = 1 / (e.heads * e.calls);
      const src = e.sums[job] as Float64Array;
      const map = new Float32Array(src.length);
      for (let j = 0; j < src.length; j++) map[j] = (src[j] as number) * scale;
      return {
        module,
        ...layerGrid(e.queries, latentHeight, latentWidth),
        queries: e.queries,
        keys: e.keys,
        heads: e.heads,
        steps: e.calls,
        map,
      };
    });
  }
}

/** The distinct grids of some layers, largest first, with the layers on each. */
export function layerResolutions(layers: readonly LayerAttention[]): { height: number; width: number; modules: string[] }[] {
  const byGrid = new Map<string, { height: number; width: number; modules: string[] }>();
  for (const l of layers) {
    const key = `${l.height}x${l.width}`;
    const e = byGrid.get(key);
    if (e) e.modules.push(l.module);
    else byGrid.set(key, { height: l.height, width: l.width, modules: [l.module] });
  }
  return [...byGrid.values()].sort((a, b) => b.height * b.width - a.height * a.width);
}

/**
 * Which resolution to average: a number is the grid height; `auto` is latent height / 4 when a
 * layer has it (16×16 for SD at 512 px, prompt-to-prompt's choice), else the grid with the most
 * layers (the larger on a tie); `all` averages every layer after upsampling to the largest grid.
 */
export type ResolutionChoice = number | 'auto' | 'all';

export interface AggregatedAttention {
  height: number;
  width: number;
  keys: number;
  /** Layers averaged. */
  modules: string[];
  /** Mean attention [height·width, keys], each position a distribution over the keys. */
  map: Float32Array;
}

/** Mean over layers at one resolution (see {@link ResolutionChoice}). */
export function averageLayers(
  layers: readonly LayerAttention[],
  choice: ResolutionChoice,
  latentHeight: number,
): AggregatedAttention {
  if (layers.length === 0) throw new InvalidArgumentError('layers', 'no attention layers were captured');
  const grids = layerResolutions(layers);
  let chosen: LayerAttention[];
  let height: number;
  let width: number;
  if (choice === 'all') {
    chosen = [...layers];
    height = (grids[0] as { height: number }).height;
    width = (grids[0] as { width: number }).width;
  } else {
    let grid: { height: number; width: number; modules: string[] } | undefined;
    if (choice === 'auto') {
      grid = grids.find((g) => g.height === Math.ceil(latentHeight / 4));
      if (!grid)
        grid = [...grids].sort((a, b) => b.modules.length - a.modules.length || b.height * b.width - a.height * a.width)[0];
    } else {
      grid = grids.find((g) => g.height === choice);
      if (!grid) {
        throw new InvalidArgumentError(
          'resolution',
          `no captured layer has a ${choice}-high grid (have ${grids.map((g) => `${g.height}×${g.width}`).join(', ')})`,
        );
      }
    }
    const g = grid as { height: number; width: number; modules: string[] };
    chosen = layers.filter((l) => l.height === g.height && l.width === g.width);
    height = g.height;
    width = g.width;
  }
  const keys = (chosen[0] as LayerAttention).keys;
  const q = height * width;
  const acc = new Float64Array(q * keys);
  for (const l of chosen) {
    if (l.keys !== keys) throw new InvalidArgumentError('layers', `layers disagree on the number of keys (${l.keys} vs ${keys})`);
    const m = l.height === height && l.width === width ? l.map : resizeKeyedMap(l.map, l.height, l.width, keys, height, width);
    for (let j = 0; j < acc.length; j++) acc[j] = (acc[j] as number) + (m[j] as number);
  }
  const map = new Float32Array(acc.length);
  for (let j = 0; j < acc.length; j++) map[j] = (acc[j] as number) / chosen.length;
  return { height, width, keys, modules: chosen.map((l) => l.module), map };
}

/** Upsamples a [h·w, K] map to [H·W, K] plane by plane (bilinear weights sum to 1: distributions stay distributions). */
function resizeKeyedMap(map: Float32Array, h: number, w: number, keys: number, H: number, W: number): Float32Array {
  const out = new Float32Array(H * W * keys);
  const plane = new Float32Array(h * w);
  for (let k = 0; k < keys; k++) {
    for (let j = 0; j < h * w; j++) plane[j] = map[j * keys + k] as number;
    const up = upsampleBilinear(plane, h, w, H, W);
    for (let j = 0; j < H * W; j++) out[j * keys + k] = up[j] as number;
  }
  return out;
}

/** The h×w plane of the summed attention to some token positions (a word split into several BPE pieces sums them). */
export function tokenPlane(agg: AggregatedAttention, positions: readonly number[]): Float32Array {
  const q = agg.height * agg.width;
  const out = new Float32Array(q);
  for (const p of positions) {
    if (!Number.isInteger(p) || p < 0 || p >= agg.keys)
      throw new InvalidArgumentError('positions', `token position ${p} is outside [0, ${agg.keys})`);
  }
  for (let j = 0; j < q; j++) {
    let s = 0;
    for (const p of positions) s += agg.map[j * agg.keys + p] as number;
    out[j] = s;
  }
  return out;
}

/**
 * Bilinear resize of an h×w plane to H×W with half-pixel centres (torch `interpolate(mode='bilinear',
 * align_corners=False)`): source coordinate (y + 0.5)·h/H − 0.5, clamped to the edge pixels.
 */
export function upsampleBilinear(src: ArrayLike<number>, h: number, w: number, H: number, W: number): Float32Array {
  if (src.length !== h * w) throw new InvalidArgumentError('src', `has ${src.length} values, ${h}×${w} needs ${h * w}`);
  const out = new Float32Array(H * W);
  const xs = new Int32Array(W);
  const xs1 = new Int32Array(W);
  const wx = new Float64Array(W);
  for (let x = 0; x < W; x++) {
    const sx = Math.min(Math.max(((x + 0.5) * w) / W - 0.5, 0), w - 1);
    const x0 = Math.floor(sx);
    xs[x] = x0;
    xs1[x] = Math.min(x0 + 1, w - 1);
    wx[x] = sx - x0;
  }
  for (let y = 0; y < H; y++) {
    const sy = Math.min(Math.max(((y + 0.5) * h) / H - 0.5, 0), h - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, h - 1);
    const wy = sy - y0;
    for (let x = 0; x < W; x++) {
      const x0 = xs[x] as number;
      const x1 = xs1[x] as number;
      const a = wx[x] as number;
      const top = (src[y0 * w + x0] as number) * (1 - a) + (src[y0 * w + x1] as number) * a;
      const bottom = (src[y1 * w + x0] as number) * (1 - a) + (src[y1 * w + x1] as number) * a;
      out[y * W + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}

/**
 * For display: `max` divides by the maximum (prompt-to-prompt's `255 · a / a.max()`, zero stays
 * zero); `minmax` stretches [min, max] to [0, 1]. A constant map becomes all zeros under `minmax`
 * and all ones under `max` (unless it is zero).
 */
export function normalizeMap(map: ArrayLike<number>, mode: 'max' | 'minmax' = 'max'): Float32Array {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < map.length; i++) {
    const v = map[i] as number;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const out = new Float32Array(map.length);
  const base = mode === 'minmax' ? lo : 0;
  const range = hi - base;
  if (!(range > 0)) return out.fill(mode === 'max' && hi > 0 ? 1 : 0);
  for (let i = 0; i < map.length; i++) out[i] = Math.min(1, Math.max(0, ((map[i] as number) - base) / range));
  return out;
}
