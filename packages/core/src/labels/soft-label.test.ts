import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors/index.js';
import { annotate, canonicalSoftLabel, densify, labelMass, mixSoftLabels, oneHot, smoothLabel } from './soft-label.js';

describe('annotate (Diff-Mix soft label)', () => {
  it('s = 0.7, γ = 0.5, c = 1 → [1 − √0.7, √0.7]', () => {
    const y = annotate({ strength: 0.7, gamma: 0.5, sourceClass: 3, targetClass: 1 });
    // hand-computed: √0.7 = 0.8366600265340756
    expect(y).toEqual([
      [1, 0.8366600265340756],
      [3, 1 - 0.8366600265340756],
    ]);
  });

  it('s = 0.5, γ = 0.8, c = 0.9 scales both terms by c', () => {
    const y = annotate({ strength: 0.5, gamma: 0.8, scaler: 0.9, sourceClass: 0, targetClass: 2 });
    const t = 0.9 * 0.5 ** 0.8; // 0.5^0.8 = 0.5743491774985174
    expect(y[0]![0]).toBe(0);
    expect(y[0]![1]).toBeCloseTo(0.9 * (1 - 0.5743491774985174), 15);
    expect(y[1]![1]).toBeCloseTo(t, 15);
    expect(labelMass(y)).toBeCloseTo(0.9, 15);
  });

  it('source = target merges into [[src, c]]; s = 0 keeps the source, s = 1 the target', () => {
    expect(annotate({ strength: 0.9, gamma: 0.8, scaler: 0.9, sourceClass: 4, targetClass: 4 })).toEqual([[4, 0.9]]);
    expect(annotate({ strength: 0, gamma: 0.5, sourceClass: 1, targetClass: 2 })).toEqual([[1, 1]]);
    expect(annotate({ strength: 1, gamma: 0.5, sourceClass: 1, targetClass: 2 })).toEqual([[2, 1]]);
  });

  it('rejects out-of-range strength, gamma, scaler and class ids', () => {
    const base = { strength: 0.5, gamma: 0.5, sourceClass: 0, targetClass: 1 };
    expect(() => annotate({ ...base, strength: 1.2 })).toThrow(InvalidArgumentError);
    expect(() => annotate({ ...base, strength: Number.NaN })).toThrow(InvalidArgumentError);
    expect(() => annotate({ ...base, gamma: 0 })).toThrow(InvalidArgumentError);
    expect(() => annotate({ ...base, scaler: 0 })).toThrow(InvalidArgumentError);
    expect(() => annotate({ ...base, targetClass: -1 })).toThrow(InvalidArgumentError);
  });
});

describe('sparse label helpers', () => {
  it('densify places weights and rejects out-of-range ids', () => {
    expect(Array.from(densify([[2, 0.25], [0, 0.75]], 4))).toEqual([0.75, 0, 0.25, 0]);
    expect(() => densify([[4, 1]], 4)).toThrow(/out of range for 4 classes/);
  });

  it('canonicalSoftLabel merges duplicates, drops zeros, sorts', () => {
    expect(canonicalSoftLabel([[3, 0.25], [1, 0.5], [3, 0.25], [2, 0]])).toEqual([[1, 0.5], [3, 0.5]]);
  });

  it('mixSoftLabels is lam·a + (1 − lam)·b', () => {
    expect(mixSoftLabels(oneHot(0), oneHot(1), 0.75)).toEqual([[0, 0.75], [1, 0.25]]);
    expect(mixSoftLabels(oneHot(2), oneHot(2), 0.3)).toEqual([[2, 1]]);
  });
});

describe('smoothLabel', () => {
  it("official: ε/(C−1) + (1−ε)·y (C = 5, ε = 0.1)", () => {
    const got = smoothLabel(densify(oneHot(1), 5), 0.1);
    // 0.1/4 = 0.025; true class 0.025 + 0.9 = 0.925 (float32)
    expect(Array.from(got)).toEqual([0.025, 0.925, 0.025, 0.025, 0.025].map(Math.fround));
  });

  it('official on a Diff-Mix label keeps the soft mass (no renormalisation)', () => {
    const y = densify(annotate({ strength: 0.5, gamma: 1, scaler: 0.9, sourceClass: 0, targetClass: 1 }), 3);
    const got = smoothLabel(y, 0.1);
    expect(got[0]).toBeCloseTo(0.05 + 0.9 * 0.45, 6);
    expect(got[1]).toBeCloseTo(0.05 + 0.9 * 0.45, 6);
    expect(got[2]).toBeCloseTo(0.05, 6);
  });

  it('torch mode: ε/C + (1−ε)·y, sums to 1 for one-hot', () => {
    const got = smoothLabel(densify(oneHot(0), 4), 0.1, 'torch');
    expect(got[0]).toBeCloseTo(0.925, 6);
    expect(got[3]).toBeCloseTo(0.025, 6);
    expect(got.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });
});
