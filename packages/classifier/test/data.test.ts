/**
 * Data-side maths: synthetic replacement rate and weighting (binomial bounds), soft labels and label
 * smoothing, CutMix / Mixup label areas, transforms, evaluation metrics, the lr schedule.
 */
import { type DatasetRecord, InvalidArgumentError, Rng } from '@diffmix/core';
import type { SyntheticRecord } from '@diffmix/datasets';
import { cosineWithWarmup } from '@diffmix/ort-train';
import { describe, expect, it } from 'vitest';
import {
  applyMixup,
  ConfusionMatrix,
  drawCutMix,
  drawMixup,
  evalMetrics,
  mixLabels,
  pasteBox,
  resolveTransform,
  SyntheticReplacer,
  TrainPlan,
  trainAugment,
} from '../src/index.js';

const C = 4;
const real: DatasetRecord[] = Array.from({ length: 400 }, (_, i) => ({ id: `r${i}`, path: `/x/r${i}.png`, label: i % C }));
const synthetic: SyntheticRecord[] = Array.from({ length: 40 }, (_, i) => ({
  id: `s${i}`,
  path: `/x/s${i}.png`,
  sourceClass: i % C,
  targetClass: (i + 1) % C,
  strength: 0.7,
  label: [
    [i % C, 0.3],
    [(i + 1) % C, 0.6],
  ],
}));
const transform = resolveTransform({ size: 32 });

/** |k − n·p| ≤ 5σ, σ = √(n·p·(1 − p)): a false failure has probability < 6e-7. */
function withinBinomial(k: number, n: number, p: number): boolean {
  return Math.abs(k - n * p) <= 5 * Math.sqrt(n * p * (1 - p));
}

describe('synthetic replacement', () => {
  it('replaces each index with probability p (5σ binomial bound over 10 epochs × 400 positions)', () => {
    for (const p of [0.1, 0.3, 0.5]) {
      const replacer = new SyntheticReplacer({ synthetic, probability: p, numClasses: C, trainCounts: [100, 100, 100, 100] });
      const plan = new TrainPlan({ train: real, numClasses: C, seed: 7, batchSize: 16, transform, replacement: replacer });
      let k = 0;
      let n = 0;
      for (let e = 0; e < 10; e++) {
        for (const s of plan.plan(e)) {
          n++;
          if (s.source === 'synthetic') k++;
        }
      }
      expect(n).toBe(4000);
      expect(withinBinomial(k, n, p), `p=${p}: ${k}/${n}`).toBe(true);
    }
  });

  it('uses the synthetic soft label (unsmoothed) and the real one-hot otherwise', () => {
    const replacer = new SyntheticReplacer({ synthetic, probability: 0.5, numClasses: C, trainCounts: [100, 100, 100, 100] });
    const plan = new TrainPlan({ train: real, numClasses: C, seed: 1, batchSize: 16, transform, replacement: replacer });
    for (const s of plan.plan(0).slice(0, 50)) {
      if (s.source === 'real') {
        expect(Array.from(s.label)).toEqual(Array.from({ length: C }, (_, c) => (c === s.record.label ? 1 : 0)));
      } else {
        const rec = synthetic.find((r) => r.path === s.record.path) as SyntheticRecord;
        const dense = new Array(C).fill(0);
        for (const [c, w] of rec.label) dense[c] += w;
        expect(Array.from(s.label)).toEqual(dense.map(Math.fround));
      }
    }
  });

  it('inverse-count weighting draws target class k with probability ∝ 1/(n_k + 1)', () => {
    const counts = [60, 20, 5, 0];
    const replacer = new SyntheticReplacer({
      synthetic,
      probability: 1,
      weighting: 'inverse-count',
      numClasses: C,
      trainCounts: counts,
    });
    const w = counts.map((n) => 1 / (n + 1));
    const total = w.reduce((a, b) => a + b, 0);
    const hits = new Array(C).fill(0);
    const N = 6000;
    const root = Rng.fromSeed(3);
    for (let i = 0; i < N; i++) hits[(replacer.pick(root.split(i)) as SyntheticRecord).targetClass]++;
    for (let c = 0; c < C; c++) expect(withinBinomial(hits[c], N, (w[c] as number) / total), `class ${c}: ${hits[c]}`).toBe(true);
  });

  it('rejects bad replacement settings', () => {
    expect(() => new SyntheticReplacer({ synthetic, probability: 1.5, numClasses: C, trainCounts: [1, 1, 1, 1] })).toThrow(
      InvalidArgumentError,
    );
    expect(() => new SyntheticReplacer({ synthetic: [], probability: 0.1, numClasses: C, trainCounts: [1, 1, 1, 1] })).toThrow(
      /no records/,
    );
    expect(() => new SyntheticReplacer({ synthetic, probability: 0.1, numClasses: 2, trainCounts: [1, 1] })).toThrow(
      /outside 0\.\.1/,
    );
  });
});

describe('CutMix', () => {
  it('mixes the label by the pasted area, not the drawn λ', () => {
    const H = 24;
    const W = 24;
    const root = Rng.fromSeed(11);
    let differs = 0;
    for (let i = 0; i < 200; i++) {
      const d = drawCutMix(root.split(i), { prob: 1 }, 50, H, W);
      expect(d).not.toBeNull();
      if (!d) continue;
      expect(d.partner).toBeGreaterThanOrEqual(0);
      expect(d.partner).toBeLessThan(50);
      const img = new Float32Array(3 * H * W);
      pasteBox(img, new Float32Array(3 * H * W).fill(1), H, W, d);
      const pasted = img.reduce((a, b) => a + b, 0) / (3 * H * W);
      expect(Math.abs(pasted - (1 - d.lambda))).toBeLessThan(1e-9);
      const label = mixLabels(Float32Array.from([1, 0]), Float32Array.from([0, 1]), d.lambda);
      expect(label[1]).toBeCloseTo(pasted, 6);
      if (Math.abs(d.lambda - d.lambdaDrawn) > 1e-3) differs++;
    }
    // Clipping at the border makes the pasted area differ from 1 − λ_drawn in many draws.
    expect(differs).toBeGreaterThan(20);
  });

  it('mixes with probability prob (5σ bound)', () => {
    const root = Rng.fromSeed(12);
    let k = 0;
    for (let i = 0; i < 2000; i++) if (drawCutMix(root.split(i), { prob: 0.1 }, 10, 8, 8)) k++;
    expect(withinBinomial(k, 2000, 0.1)).toBe(true);
  });

  it('plans a partner for mixed samples', () => {
    const plan = new TrainPlan({ train: real, numClasses: C, seed: 2, batchSize: 16, transform, cutmix: { prob: 1 } });
    const s = plan.plan(0, 0).slice(0, 10);
    expect(s.every((x) => x.cutmix !== null)).toBe(true);
  });
});

describe('Mixup', () => {
  it('mixes images and labels with the same λ and permutation', () => {
    const d = drawMixup(Rng.fromSeed(5), { prob: 1 }, 4);
    expect(d).not.toBeNull();
    if (!d) return;
    const images = Float32Array.from({ length: 4 * 6 }, (_, i) => Math.floor(i / 6));
    const targets = new Float32Array(4 * 4);
    for (let i = 0; i < 4; i++) targets[i * 4 + i] = 1;
    const out = applyMixup(images, targets, 4, d);
    for (let i = 0; i < 4; i++) {
      const j = d.permutation[i] as number;
      expect(out.images[i * 6]).toBeCloseTo(d.lambda * i + (1 - d.lambda) * j, 6);
      const row = Array.from(out.targets.subarray(i * 4, i * 4 + 4));
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      if (i !== j) {
        expect(row[i]).toBeCloseTo(d.lambda, 6);
        expect(row[j]).toBeCloseTo(1 - d.lambda, 6);
      }
    }
    expect([...d.permutation].sort()).toEqual([0, 1, 2, 3]);
  });

  it('mixes a batch with probability prob (5σ bound) and rejects bad settings', () => {
    const root = Rng.fromSeed(6);
    let k = 0;
    for (let i = 0; i < 2000; i++) if (drawMixup(root.split(i), { prob: 0.3 }, 8)) k++;
    expect(withinBinomial(k, 2000, 0.3)).toBe(true);
    expect(() => drawMixup(root, { prob: 2 }, 8)).toThrow(InvalidArgumentError);
    expect(() => drawMixup(root, { prob: 0.5, alpha: 0 }, 8)).toThrow(InvalidArgumentError);
  });
});

describe('transforms', () => {
  it('uses the official resize per resolution mode and scales the padding for small sizes', () => {
    expect(resolveTransform({ size: 448 })).toMatchObject({ resize: 512, padding: 8 });
    expect(resolveTransform({ size: 384 })).toMatchObject({ resize: 440, padding: 8 });
    expect(resolveTransform({ size: 224 })).toMatchObject({ resize: 256, padding: 8 });
    expect(resolveTransform({ size: 32 })).toMatchObject({ resize: 37, padding: 1 });
    expect(() => resolveTransform({ size: 32, resize: 16 })).toThrow(InvalidArgumentError);
  });

  it('random crop with zero padding then flip: output size, padding zeros, determinism', () => {
    const t = resolveTransform({ size: 8, resize: 8, padding: 4, flip: 0 });
    const img = { data: new Uint8Array(8 * 8 * 3).fill(200), width: 8, height: 8, channels: 3 as const };
    let sawPadding = false;
    for (let i = 0; i < 20; i++) {
      const a = trainAugment(img, t, Rng.fromSeed(i));
      const b = trainAugment(img, t, Rng.fromSeed(i));
      expect(a.width).toBe(8);
      expect(a.height).toBe(8);
      expect(a.data).toEqual(b.data);
      if (a.data.includes(0)) sawPadding = true;
    }
    expect(sawPadding).toBe(true);
  });
});

describe('evaluation metrics', () => {
  it('top-1, per-class accuracy and confusion matrix on hand-made logits', () => {
    // 5 samples, 3 classes; predictions (argmax): 0, 1, 1, 2, 0; labels 0, 1, 2, 2, 1.
    const logits = Float32Array.from([5, 1, 0, 0, 3, 1, 0, 2, 1, 0, 0, 9, 4, 4, 1]);
    const m = evalMetrics(logits, [0, 1, 2, 2, 1], 3);
    expect(m.top1).toBeCloseTo(3 / 5, 12);
    expect(m.perClass).toEqual([1, 0.5, 0.5]);
    expect(m.confusion).toEqual([
      [1, 0, 0],
      [1, 1, 0],
      [0, 1, 1],
    ]);
    expect(m.meanPerClass).toBeCloseTo(2 / 3, 12);
    const cm = new ConfusionMatrix(3);
    cm.add([0], [0]);
    expect(cm.metrics().perClass).toEqual([1, null, null]);
    expect(() => cm.add([3], [0])).toThrow(/outside 0\.\.2/);
  });
});

describe('learning-rate schedule', () => {
  it('10 % linear warmup then cosine to 0, per iteration (transformers get_cosine_schedule_with_warmup)', () => {
    const s = cosineWithWarmup({ totalSteps: 100 });
    expect(s(0)).toBe(0);
    expect(s(5)).toBeCloseTo(0.5, 12);
    expect(s(10)).toBeCloseTo(1, 12);
    expect(s(55)).toBeCloseTo(0.5, 12);
    expect(s(32.5)).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI * 0.25)), 12);
    expect(s(100)).toBeCloseTo(0, 12);
  });
});
