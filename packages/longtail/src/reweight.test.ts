import { InvalidArgumentError, Rng } from '@diffmix/core';
import type { SyntheticRecord } from '@diffmix/datasets';
import { describe, expect, it } from 'vitest';
import { SYNTHETIC_PROBABILITY, SyntheticReplacement, WeightedSyntheticSampler, inverseCountProbabilities } from './reweight.js';
import { chiSquare, chiSquareQuantile } from './test-support.js';

interface Syn {
  id: string;
  sourceClass: number;
  targetClass: number;
}

/** `perTarget[k]` synthetic samples with target k (sources arbitrary). */
function synthetic(perTarget: readonly number[]): Syn[] {
  const out: Syn[] = [];
  perTarget.forEach((n, k) => {
    for (let i = 0; i < n; i++) out.push({ id: `syn/${k}/${i}`, sourceClass: (k + i) % perTarget.length, targetClass: k });
  });
  return out;
}

describe('inverse-count class probabilities', () => {
  it('are ∝ 1/(n_k + 1): counts 0, 1, 3 → 1, 1/2, 1/4 over 7/4', () => {
    const p = inverseCountProbabilities([0, 1, 3]);
    [4 / 7, 2 / 7, 1 / 7].forEach((e, i) => {
      expect(p[i]).toBeCloseTo(e, 15);
    });
  });
  it('skip classes without synthetic samples and renormalise', () => {
    const s = new WeightedSyntheticSampler({ trainCounts: [0, 1, 3, 9], synthetic: synthetic([2, 0, 5, 1]) });
    expect(s.classesWithoutSynthetic).toEqual([1]);
    // 1, –, 1/4, 1/10 over 1.35
    const e = [1 / 1.35, 0, 0.25 / 1.35, 0.1 / 1.35];
    e.forEach((x, i) => {
      expect(s.classProbabilities[i]).toBeCloseTo(x, 15);
    });
    expect(s.sampleProbability(0)).toBeCloseTo(e[0]! / 2, 15);
    expect(s.sampleProbability(1)).toBe(0);
  });
  it('presets: 0.5 (supplementary) and 0.3 (paper-era code)', () => {
    expect(SYNTHETIC_PROBABILITY).toEqual({ paper: 0.5, officialCode: 0.3 });
  });
});

describe('WeightedSyntheticSampler draws', () => {
  // a CUB-LT-like head-to-tail spread of real counts
  const trainCounts = [29, 20, 14, 9, 6, 4, 3, 2, 1, 1];
  const perTarget = [5, 3, 0, 8, 2, 6, 1, 4, 7, 3];
  const sampler = new WeightedSyntheticSampler({ trainCounts, synthetic: synthetic(perTarget) });

  it('hit each target class with the expected frequency (chi-square, p = 1e-5)', () => {
    const rng = Rng.fromSeed(11);
    const n = 200_000;
    const counts = new Array(10).fill(0);
    for (let i = 0; i < n; i++) counts[sampler.draw(rng).targetClass]++;
    expect(counts[2]).toBe(0);
    const expected = sampler.classProbabilities.map((p) => p * n);
    expect(chiSquare(counts, expected)).toBeLessThan(chiSquareQuantile(8)); // 9 classes with mass → 8 dof
    // 5-sigma on the tail class vs the head class
    for (const k of [0, 8]) {
      const p = sampler.classProbabilities[k]!;
      expect(Math.abs(counts[k] / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
    }
  });

  it('are uniform among the samples of one target class', () => {
    const rng = Rng.fromSeed(12);
    const hits = new Map<string, number>();
    let n = 0;
    for (let i = 0; i < 300_000; i++) {
      const s = sampler.draw(rng);
      if (s.targetClass === 3) {
        hits.set(s.id, (hits.get(s.id) ?? 0) + 1);
        n++;
      }
    }
    const observed = Array.from({ length: 8 }, (_, i) => hits.get(`syn/3/${i}`) ?? 0);
    expect(chiSquare(observed, new Array(8).fill(n / 8))).toBeLessThan(chiSquareQuantile(7));
  });

  it("'uniform' weighting draws every synthetic sample alike (official code without --use_weighted_syn)", () => {
    const u = new WeightedSyntheticSampler({ trainCounts, synthetic: synthetic(perTarget), weighting: 'uniform' });
    expect(u.classProbabilities[0]).toBeCloseTo(5 / 39, 15);
    const rng = Rng.fromSeed(13);
    const counts = new Array(10).fill(0);
    const n = 100_000;
    for (let i = 0; i < n; i++) counts[u.draw(rng).targetClass]++;
    expect(
      chiSquare(
        counts,
        perTarget.map((m) => (m / 39) * n),
      ),
    ).toBeLessThan(chiSquareQuantile(8));
  });

  it('is deterministic for a seed', () => {
    const a = Rng.fromSeed(5);
    const b = Rng.fromSeed(5);
    expect(Array.from({ length: 50 }, () => sampler.draw(a).id)).toEqual(Array.from({ length: 50 }, () => sampler.draw(b).id));
  });

  it('rejects bad input', () => {
    expect(() => new WeightedSyntheticSampler({ trainCounts: [1, 2], synthetic: [] })).toThrow(InvalidArgumentError);
    expect(() => new WeightedSyntheticSampler({ trainCounts: [1, 2], synthetic: synthetic([0, 0, 1]) })).toThrow(
      /syn\/2\/0.*outside 0..1/,
    );
    expect(() => new WeightedSyntheticSampler({ trainCounts: [1, -2], synthetic: synthetic([1, 1]) })).toThrow(/entry 1/);
  });
});

describe('SyntheticReplacement', () => {
  const sampler = new WeightedSyntheticSampler({ trainCounts: [10, 5, 1], synthetic: synthetic([2, 2, 2]) });

  it('replaces with probability p (5 sigma) and visits every real index once per epoch', () => {
    for (const p of [SYNTHETIC_PROBABILITY.paper, SYNTHETIC_PROBABILITY.officialCode]) {
      const plan = new SyntheticReplacement({ sampler, numReal: 5000, probability: p, seed: 1 });
      let synth = 0;
      let total = 0;
      for (let e = 0; e < 4; e++) {
        const picks = plan.epoch(e);
        expect(picks.map((x) => x.index).sort((a, b) => a - b)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
        for (const x of picks) if (x.source === 'synthetic') synth++;
        total += picks.length;
      }
      expect(Math.abs(synth / total - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / total));
    }
  });

  it('is deterministic and random-access: a pick depends only on (seed, epoch, step)', () => {
    const a = new SyntheticReplacement({ sampler, numReal: 100, seed: 'x' });
    const b = new SyntheticReplacement({ sampler, numReal: 100, seed: 'x' });
    const ea = a.epoch(7);
    expect(b.epoch(7)).toEqual(ea);
    expect(b.pick(7, 42, ea[42]!.index)).toEqual(ea[42]);
    expect(a.order(0)).not.toEqual(a.order(1));
    expect(new SyntheticReplacement({ sampler, numReal: 100, seed: 'y' }).epoch(7)).not.toEqual(ea);
  });

  it('defaults to p = 0.5; p = 0 never replaces, p = 1 always does', () => {
    expect(new SyntheticReplacement({ sampler, numReal: 10, seed: 0 }).probability).toBe(0.5);
    expect(
      new SyntheticReplacement({ sampler, numReal: 50, seed: 0, probability: 0 }).epoch(0).every((x) => x.source === 'real'),
    ).toBe(true);
    expect(
      new SyntheticReplacement({ sampler, numReal: 50, seed: 0, probability: 1 }).epoch(0).every((x) => x.source === 'synthetic'),
    ).toBe(true);
    expect(() => new SyntheticReplacement({ sampler, numReal: 10, seed: 0, probability: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => new SyntheticReplacement({ sampler, numReal: 0, seed: 0 })).toThrow(InvalidArgumentError);
  });
});

describe('works with @diffmix/datasets SyntheticRecord', () => {
  it('samples SyntheticRecords by targetClass', () => {
    const recs: SyntheticRecord[] = [0, 1, 1].map((t, i) => ({
      id: `job-${i}`,
      path: `/syn/data/a/${t}-${i}.png`,
      label: [
        [0, 0.3],
        [t, 0.7],
      ],
      sourceClass: 0,
      targetClass: t,
      strength: 0.7,
    }));
    const s = new WeightedSyntheticSampler({ trainCounts: [9, 0], synthetic: recs });
    expect(s.classProbabilities).toEqual([0.1 / 1.1, 1 / 1.1]);
    const picked: SyntheticRecord = s.draw(Rng.fromSeed(0));
    expect(recs).toContain(picked);
  });
});
