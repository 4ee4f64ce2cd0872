/** Aggregation maths on hand-made arrays. */
import { describe, expect, it } from 'vitest';
import {
  AttentionAccumulator,
  type LayerAttention,
  accumulateHeadSums,
  attentionLayout,
  averageLayers,
  layerGrid,
  normalizeMap,
  tokenPlane,
  upsampleBilinear,
} from './aggregate.js';

/** P[b, h, q, k] = f(b, h, q, k) as a [B, H, Q, K] tensor. */
function tensor(B: number, H: number, Q: number, K: number, f: (b: number, h: number, q: number, k: number) => number) {
  const data = new Float32Array(B * H * Q * K);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let q = 0; q < Q; q++) for (let k = 0; k < K; k++) data[((b * H + h) * Q + q) * K + k] = f(b, h, q, k);
  return { data, dims: [B, H, Q, K] };
}

/** A softmax over k of arbitrary logits, so that rows are distributions. */
function softmaxTensor(B: number, H: number, Q: number, K: number, seed: number) {
  const t = tensor(B, H, Q, K, (b, h, q, k) => Math.sin(seed + 1.7 * b + 2.3 * h + 0.9 * q + 0.31 * k * (k + seed)));
  for (let r = 0; r < B * H * Q; r++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(t.data[r * K + k] as number);
    for (let k = 0; k < K; k++) t.data[r * K + k] = Math.exp(t.data[r * K + k] as number) / s;
  }
  return t;
}

function layer(module: string, height: number, width: number, keys: number, f: (q: number, k: number) => number): LayerAttention {
  const map = new Float32Array(height * width * keys);
  for (let q = 0; q < height * width; q++) for (let k = 0; k < keys; k++) map[q * keys + k] = f(q, k);
  return { module, height, width, queries: height * width, keys, heads: 1, steps: 1, map };
}

describe('layout', () => {
  it('reads [B, H, Q, K] and [B·H, Q, K]', () => {
    expect(attentionLayout([2, 8, 64, 77], 2)).toEqual({ heads: 8, queries: 64, keys: 77 });
    expect(attentionLayout([16, 64, 77], 2)).toEqual({ heads: 8, queries: 64, keys: 77 });
    expect(() => attentionLayout([3, 64, 77], 2)).toThrow(/does not split into 2/);
    expect(() => attentionLayout([64, 77], 1)).toThrow(/rank ≥ 3/);
  });

  it('finds the grid of a layer from the latent size (strided convolutions round up)', () => {
    expect(layerGrid(64, 8, 8)).toEqual({ height: 8, width: 8 });
    expect(layerGrid(16, 8, 8)).toEqual({ height: 4, width: 4 });
    expect(layerGrid(4096, 64, 64)).toEqual({ height: 64, width: 64 });
    expect(layerGrid(256, 64, 64)).toEqual({ height: 16, width: 16 });
    expect(layerGrid(6, 3, 5)).toEqual({ height: 2, width: 3 }); // ceil(3/2) × ceil(5/2)
    expect(layerGrid(12, 6, 8)).toEqual({ height: 3, width: 4 });
    expect(() => layerGrid(7, 8, 8)).toThrow(/fit no downsampling/);
  });
});

describe('accumulating heads and steps', () => {
  it('sums the heads of the selected rows', () => {
    const t = tensor(2, 3, 2, 2, (b, h, q, k) => 100 * b + 10 * h + 2 * q + k);
    const acc = [new Float64Array(4)];
    expect(accumulateHeadSums(t, 2, [1], acc)).toBe(3);
    // Σ_h (100 + 10h + 2q + k) = 300 + 30 + 3(2q + k)
    expect([...(acc[0] as Float64Array)]).toEqual([330, 333, 336, 339]);
    // the [B·H, Q, K] layout is the same memory
    const flat = [new Float64Array(4)];
    accumulateHeadSums({ data: t.data, dims: [6, 2, 2] }, 2, [1], flat);
    expect([...(flat[0] as Float64Array)]).toEqual([330, 333, 336, 339]);
  });

  it('keeps the conditional half of a CFG batch and averages heads, then steps', () => {
    const jobs = 2;
    const acc = new AttentionAccumulator(jobs, true);
    expect(acc.rows(4)).toEqual([2, 3]);
    // rows 0–1 (unconditional) hold 1000s that must not leak into the maps
    const call = (step: number) =>
      tensor(4, 2, 4, 3, (b, h, q, k) => (b < 2 ? 1000 : 10 * step + (b - 2) + h + 0.1 * q + 0.01 * k));
    acc.add([['L', call(0)]], 4);
    acc.add([['L', call(1)]], 4);
    expect(acc.steps).toBe(2);
    const [job1] = acc.layers(1, 2, 2);
    // mean over h ∈ {0,1} and step ∈ {0,1} of 10·step + 1 + h + 0.1q + 0.01k = 5 + 1 + 0.5 + 0.1q + 0.01k
    expect(job1?.heads).toBe(2);
    expect(job1?.steps).toBe(2);
    expect({ h: job1?.height, w: job1?.width }).toEqual({ h: 2, w: 2 });
    const expected = Array.from({ length: 12 }, (_, j) => 6.5 + 0.1 * Math.floor(j / 3) + 0.01 * (j % 3));
    (job1?.map ?? []).forEach((v, j) => {
      expect(v).toBeCloseTo(expected[j] as number, 5);
    });
    expect(() => acc.add([['L', call(2)]], 2)).toThrow(/expected 4/);
  });

  it('without guidance every row is a job', () => {
    const acc = new AttentionAccumulator(3, false);
    expect(acc.rows(3)).toEqual([0, 1, 2]);
    acc.add([['L', tensor(3, 1, 1, 2, (b, _h, _q, k) => b + k)]], 3);
    expect([...(acc.layers(2, 1, 1)[0]?.map ?? [])]).toEqual([2, 3]);
  });

  it('means of softmax rows still sum to 1 over the keys', () => {
    const acc = new AttentionAccumulator(1, true);
    for (let s = 0; s < 3; s++)
      acc.add(
        [
          ['A', softmaxTensor(2, 4, 4, 77, s)],
          ['B', softmaxTensor(2, 2, 1, 77, 10 + s)],
        ],
        2,
      );
    const layers = acc.layers(0, 2, 2);
    expect(layers.map((l) => [l.module, l.height, l.width, l.heads])).toEqual([
      ['A', 2, 2, 4],
      ['B', 1, 1, 2],
    ]);
    const agg = averageLayers(layers, 'all', 2);
    for (const m of [...layers.map((l) => l.map), agg.map]) {
      for (let q = 0; q < m.length / 77; q++) {
        let s = 0;
        for (let k = 0; k < 77; k++) s += m[q * 77 + k] as number;
        expect(Math.abs(s - 1)).toBeLessThan(1e-5);
      }
    }
  });
});

describe('averaging layers of a resolution', () => {
  const a = layer('down', 2, 2, 3, (q, k) => q + k);
  const b = layer('up', 2, 2, 3, (q, k) => 3 * (q + k));
  const c = layer('mid', 1, 1, 3, (_q, k) => 10 * k);

  it('means the layers at the chosen grid', () => {
    const agg = averageLayers([a, c, b], 2, 8);
    expect(agg.modules).toEqual(['down', 'up']);
    expect({ h: agg.height, w: agg.width, k: agg.keys }).toEqual({ h: 2, w: 2, k: 3 });
    expect([...agg.map]).toEqual(Array.from({ length: 12 }, (_, j) => 2 * (Math.floor(j / 3) + (j % 3))));
    expect([...averageLayers([a, c, b], 1, 8).map]).toEqual([0, 10, 20]);
    expect(() => averageLayers([a, c], 4, 8)).toThrow(/no captured layer has a 4-high grid/);
  });

  it('auto: latent/4 when present, else the grid with the most layers', () => {
    expect(averageLayers([a, c, b], 'auto', 8).modules).toEqual(['down', 'up']); // 8/4 = 2
    expect(averageLayers([a, c, b], 'auto', 4).modules).toEqual(['mid']); // 4/4 = 1
    expect(averageLayers([a, c, b], 'auto', 32).modules).toEqual(['down', 'up']); // none at 8: most layers
    expect(averageLayers([a, c], 'auto', 32).modules).toEqual(['down']); // tie: the larger grid
  });

  it('all: upsamples coarser layers to the finest grid first', () => {
    const agg = averageLayers([a, c], 'all', 8);
    expect(agg.modules).toEqual(['down', 'mid']);
    // c is constant in space, so its upsampled planes are the same constants
    expect([...agg.map]).toEqual(Array.from({ length: 12 }, (_, j) => (Math.floor(j / 3) + (j % 3) + 10 * (j % 3)) / 2));
  });

  it('a token plane is the column of its positions, summed for a multi-piece word', () => {
    const agg = averageLayers([a], 2, 8);
    expect([...tokenPlane(agg, [1])]).toEqual([1, 2, 3, 4]);
    expect([...tokenPlane(agg, [0, 2])]).toEqual([2, 4, 6, 8]);
    expect(() => tokenPlane(agg, [3])).toThrow(/outside/);
  });
});

describe('upsampling and display scaling', () => {
  it('bilinear with half-pixel centres and clamped edges (torch align_corners=False)', () => {
    expect([...upsampleBilinear([0, 1], 1, 2, 1, 4)]).toEqual([0, 0.25, 0.75, 1]);
    expect([...upsampleBilinear([0, 1], 2, 1, 4, 1)]).toEqual([0, 0.25, 0.75, 1]);
    const up = upsampleBilinear([0, 1, 2, 3], 2, 2, 4, 4);
    expect([...up.subarray(0, 4)]).toEqual([0, 0.25, 0.75, 1]);
    expect(up[5]).toBeCloseTo(0.25 * 0.75 * 1 + 0.75 * 0.25 * 2 + 0.25 * 0.25 * 3, 6); // (1,1): a=b=0.25
    expect([...upsampleBilinear([1, 2, 3, 4], 2, 2, 2, 2)]).toEqual([1, 2, 3, 4]);
    expect([...upsampleBilinear([5], 1, 1, 3, 2)]).toEqual([5, 5, 5, 5, 5, 5]);
  });

  it('normalises by the maximum or stretches min–max', () => {
    expect([...normalizeMap([0.1, 0.2, 0.4])]).toEqual([0.25, 0.5, 1].map((v) => Math.fround(v)));
    expect([...normalizeMap([0.1, 0.2, 0.3], 'minmax')].map((v) => +v.toFixed(6))).toEqual([0, 0.5, 1]);
    expect([...normalizeMap([0.2, 0.2], 'minmax')]).toEqual([0, 0]);
    expect([...normalizeMap([0.2, 0.2])]).toEqual([1, 1]);
    expect([...normalizeMap([0, 0])]).toEqual([0, 0]);
  });
});
