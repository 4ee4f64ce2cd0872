import { InvalidArgumentError, Rng } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import {
  CMO_DEFAULTS,
  DRW_DEFAULTS,
  classBalancedWeights,
  cmoActive,
  cmoClassWeights,
  cmoSampleWeights,
  cmoSampler,
  cutmixBox,
  drawCmoCutMix,
  drwWeights,
} from './baselines.js';
import { chiSquare, chiSquareQuantile } from './test-support.js';

/** An Rng stand-in whose int() returns fixed values (box centres). */
function fixedCentres(...values: number[]): Rng {
  let i = 0;
  return { int: () => values[i++] } as unknown as Rng;
}

describe('CMO', () => {
  it('is active in 0-based epochs 4 … 196 of 200 (start_data_aug 3 < epoch < 200 − 3)', () => {
    const active = Array.from({ length: 200 }, (_, e) => e).filter((e) => cmoActive(e));
    expect(active[0]).toBe(4);
    expect(active[active.length - 1]).toBe(196);
    expect(active).toHaveLength(193);
    expect(cmoActive(3)).toBe(false);
    expect(cmoActive(197)).toBe(false);
    expect(cmoActive(10, { epochs: 20, endDataAug: 10 })).toBe(false);
    expect(CMO_DEFAULTS).toMatchObject({ probability: 0.5, beta: 1, weightedAlpha: 1 });
  });

  it('class weights 1/n_k normalised to sum N: counts 1, 2, 4 → 12/7, 6/7, 3/7', () => {
    const w = cmoClassWeights([1, 2, 4]);
    [12 / 7, 6 / 7, 3 / 7].forEach((e, i) => {
      expect(w[i]).toBeCloseTo(e, 15);
    });
    const w2 = cmoClassWeights([1, 4], 0.5); // 1, 1/2 → ×2/1.5
    expect(w2[0]).toBeCloseTo(4 / 3, 15);
    expect(w2[1]).toBeCloseTo(2 / 3, 15);
    expect(() => cmoClassWeights([3, 0])).toThrow(InvalidArgumentError);
  });

  it('sample weights are the class weight of each label; the sampler balances classes', () => {
    const counts = [1, 2, 4];
    const labels = [0, 1, 1, 2, 2, 2, 2];
    const sw = Array.from(cmoSampleWeights(labels, counts));
    [12 / 7, 6 / 7, 6 / 7, 3 / 7, 3 / 7, 3 / 7, 3 / 7].forEach((e, i) => {
      expect(sw[i]).toBeCloseTo(e, 15);
    });
    const s = cmoSampler(labels, counts);
    const rng = Rng.fromSeed(21);
    const n = 90_000;
    const perClass = [0, 0, 0];
    const perSample = new Array(7).fill(0);
    for (const i of s.drawMany(rng, n)) {
      perClass[labels[i]!]!++;
      perSample[i]++;
    }
    expect(chiSquare(perClass, [n / 3, n / 3, n / 3])).toBeLessThan(23); // χ²₂ at p = 1e-5
    expect(chiSquare(perSample, [n / 3, n / 6, n / 6, n / 12, n / 12, n / 12, n / 12])).toBeLessThan(chiSquareQuantile(6));
    expect(() => cmoSampleWeights([3], counts)).toThrow(/outside 0..2/);
  });

  it('cutmix box and area λ, hand-computed (224 × 224)', () => {
    // λ = 0.75 → r = 0.5, cut 112, half 56, centre (100, 100) → [44, 156)² → area 12544 → λ = 0.75
    expect(cutmixBox(fixedCentres(100, 100), 224, 224, 0.75)).toEqual({
      box: { y1: 44, x1: 44, y2: 156, x2: 156 },
      lambdaDrawn: 0.75,
      lambda: 0.75,
    });
    // clipped at the border: centre (10, 220) → rows [0, 66), cols [164, 224) → 66·60 = 3960
    const c = cutmixBox(fixedCentres(10, 220), 224, 224, 0.75);
    expect(c.box).toEqual({ y1: 0, x1: 164, y2: 66, x2: 224 });
    expect(c.lambda).toBeCloseTo(1 - 3960 / 50176, 15);
    // odd cut: λ = 0.5 → r = 0.7071, cut ⌊158.39⌋ = 158, half 79; centre (112, 112) → [33, 191)
    const d = cutmixBox(fixedCentres(112, 112), 224, 224, 0.5);
    expect(d.box).toEqual({ y1: 33, x1: 33, y2: 191, x2: 191 });
    expect(d.lambda).toBeCloseTo(1 - (158 * 158) / 50176, 15);
    // non-square: H 100, W 50, λ = 0.64 → r 0.6 → cut 60 × 30, halves 30, 15; centre (50, 25)
    expect(cutmixBox(fixedCentres(50, 25), 100, 50, 0.64).box).toEqual({ y1: 20, x1: 10, y2: 80, x2: 40 });
    // λ = 1: empty box, λ stays 1
    expect(cutmixBox(fixedCentres(5, 5), 224, 224, 1).lambda).toBe(1);
    expect(() => cutmixBox(fixedCentres(0, 0), 0, 224, 0.5)).toThrow(InvalidArgumentError);
  });

  it('drawCmoCutMix: never outside the active epochs, half the batches inside, λ ~ Beta(1, 1)', () => {
    const rng = Rng.fromSeed(22);
    for (const epoch of [0, 3, 197, 199]) expect(drawCmoCutMix(rng, { epoch, height: 224, width: 224 })).toBeNull();
    const n = 20_000;
    let mixed = 0;
    let lamSum = 0;
    for (let i = 0; i < n; i++) {
      const m = drawCmoCutMix(rng, { epoch: 4 + (i % 193), height: 224, width: 224 });
      if (m) {
        mixed++;
        lamSum += m.lambdaDrawn;
        expect(m.lambda).toBeGreaterThanOrEqual(m.lambdaDrawn - 1e-12); // clipping / halving only shrink the box
      }
    }
    expect(Math.abs(mixed / n - 0.5)).toBeLessThan(5 * Math.sqrt(0.25 / n));
    expect(Math.abs(lamSum / mixed - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / mixed));
    const a = Rng.fromSeed(9);
    const b = Rng.fromSeed(9);
    expect(drawCmoCutMix(a, { epoch: 50, height: 32, width: 32, config: { probability: 1 } })).toEqual(
      drawCmoCutMix(b, { epoch: 50, height: 32, width: 32, config: { probability: 1 } }),
    );
  });
});

describe('DRW', () => {
  it('class-balanced weights, hand-computed with β = 0.5: counts 1, 2, 3 → 63/47, 42/47, 36/47', () => {
    // (1−β)/(1−β^n) = 1, 2/3, 4/7; sum 47/21; × 3 / sum
    const w = classBalancedWeights([1, 2, 3], 0.5);
    [63 / 47, 42 / 47, 36 / 47].forEach((e, i) => {
      expect(w[i]).toBeCloseTo(e, 14);
    });
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(3, 14);
  });

  it('β = 0.9999, counts 29, 10, 3, 1 (numpy: LDAM-DRW expression)', () => {
    const w = classBalancedWeights([29, 10, 3, 1], 0.9999);
    const numpy = [0.0940937484294586, 0.27261283649060675, 0.9083914808599577, 2.724901934219977];
    numpy.forEach((e, i) => {
      expect(w[i]).toBeCloseTo(e, 12);
    });
  });

  it('switches on at epoch 160 (idx = epoch // 160): ones before, β = 0.9999 from it', () => {
    const counts = [29, 10, 3, 1];
    expect(drwWeights(counts, 0)).toEqual([1, 1, 1, 1]);
    expect(drwWeights(counts, 159)).toEqual([1, 1, 1, 1]);
    expect(drwWeights(counts, 160)).toEqual(classBalancedWeights(counts, DRW_DEFAULTS.beta));
    expect(drwWeights(counts, 199)).toEqual(classBalancedWeights(counts, 0.9999));
    expect(drwWeights(counts, 5, { startEpoch: 5, beta: 0.5 })).toEqual(classBalancedWeights(counts, 0.5));
    expect(() => drwWeights([1, 0], 170)).toThrow(InvalidArgumentError);
    expect(() => classBalancedWeights([1], 1)).toThrow(InvalidArgumentError);
  });
});
