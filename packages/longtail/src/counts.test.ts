import { InvalidArgumentError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { TABLE_10, longTailCounts, longTailTotal } from './counts.js';

describe('longTailCounts — official formula reproduces the supplementary Table 10', () => {
  const cases = (['cub', 'flowers'] as const).flatMap((ds) =>
    TABLE_10.imbalanceFactors.map((rho, i) => ({ ds, rho, total: TABLE_10[ds].totals[i] as number })),
  );
  it.each(cases)('$ds, ρ = $rho → $total training images', ({ ds, rho, total }) => {
    const { numClasses, trainImages } = TABLE_10[ds];
    const counts = longTailCounts({ numClasses, totalImages: trainImages, imbalanceFactor: rho, formula: 'official' });
    expect(counts).toHaveLength(numClasses);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(total);
    expect(longTailTotal({ numClasses, totalImages: trainImages, imbalanceFactor: rho })).toBe(total); // official is the default
    for (let k = 1; k < counts.length; k++) expect(counts[k]).toBeLessThanOrEqual(counts[k - 1] as number);
  });

  it('the middle column is ρ = 20, not the printed 50', () => {
    expect(TABLE_10.printedImbalanceFactors[1]).toBe(50);
    expect(longTailTotal({ numClasses: 200, totalImages: 5994, imbalanceFactor: 50 })).toBe(1427);
    expect(longTailTotal({ numClasses: 102, totalImages: 4070, imbalanceFactor: 50 })).toBe(976);
  });

  it('head and tail of CUB-LT ρ = 100 (n̄ = 29.97): 29, 29, 28 … 1', () => {
    const c = longTailCounts({ numClasses: 200, totalImages: 5994, imbalanceFactor: 100 });
    expect(c.slice(0, 3)).toEqual([29, 29, 28]);
    expect(c.slice(-3)).toEqual([1, 1, 1]);
    // Flowers: n̄ = 4070/102 = 39.90…
    expect(longTailCounts({ numClasses: 102, totalImages: 4070, imbalanceFactor: 10 }).slice(0, 3)).toEqual([39, 38, 38]);
  });

  it('the paper formula (N−1) gives other totals (computed with Python: 1249/1800/2249, 857/1248/1549)', () => {
    const tot = (N: number, T: number, rho: number) =>
      longTailTotal({ numClasses: N, totalImages: T, imbalanceFactor: rho, formula: 'paper' });
    expect([100, 20, 10].map((r) => tot(200, 5994, r))).toEqual([1249, 1800, 2249]);
    expect([100, 20, 10].map((r) => tot(102, 4070, r))).toEqual([857, 1248, 1549]);
  });
});

describe('longTailCounts — hand-computed small cases', () => {
  it('paper, N = 3, n̄ = 100, ρ = 100: 100·0.01^{k/2} = 100, 10, 1', () => {
    expect(longTailCounts({ numClasses: 3, totalImages: 300, imbalanceFactor: 100, formula: 'paper' })).toEqual([100, 10, 1]);
  });
  it('official, N = 3, n̄ = 100, ρ = 100: exponent k/1 → 100, 1, max(0.01, 1) = 1', () => {
    expect(longTailCounts({ numClasses: 3, totalImages: 300, imbalanceFactor: 100, formula: 'official' })).toEqual([100, 1, 1]);
  });
  it('paper, N = 5, n̄ = 16, ρ = 16: 16, 8, 4, 2, 1', () => {
    expect(longTailCounts({ numClasses: 5, totalImages: 80, imbalanceFactor: 16, formula: 'paper' })).toEqual([16, 8, 4, 2, 1]);
  });
  it('official, N = 5, n̄ = 16, ρ = 16: 16·16^{−k/3} = 16, 6.35, 2.52, 1, 0.40 → 16, 6, 2, 1, 1', () => {
    expect(longTailCounts({ numClasses: 5, totalImages: 80, imbalanceFactor: 16, formula: 'official' })).toEqual([
      16, 6, 2, 1, 1,
    ]);
  });
  it('paper truncates: N = 4, n̄ = 10.5 (42 images), ρ = 8: 10.5·8^{−k/3} = 10.5, 5.25, 2.625, 1.3125 → 10, 5, 2, 1', () => {
    expect(longTailCounts({ numClasses: 4, totalImages: 42, imbalanceFactor: 8, formula: 'paper' })).toEqual([10, 5, 2, 1]);
  });
  it('ρ = 1 keeps ⌊n̄⌋ everywhere', () => {
    expect(longTailCounts({ numClasses: 4, totalImages: 42, imbalanceFactor: 1, formula: 'paper' })).toEqual([10, 10, 10, 10]);
  });
  it('rejects bad arguments, with a hint for the code-style 1/ρ', () => {
    const base = { numClasses: 10, totalImages: 100, imbalanceFactor: 10 };
    expect(() => longTailCounts({ ...base, imbalanceFactor: 0.01 })).toThrow(/pass ρ = 100/);
    expect(() => longTailCounts({ ...base, imbalanceFactor: 0.01 })).toThrow(InvalidArgumentError);
    expect(() => longTailCounts({ ...base, numClasses: 2 })).toThrow(/N−2/);
    expect(longTailCounts({ ...base, numClasses: 2, formula: 'paper' })).toEqual([50, 5]);
    expect(() => longTailCounts({ ...base, totalImages: 0 })).toThrow(InvalidArgumentError);
    expect(() => longTailCounts({ ...base, formula: 'eq4' as never })).toThrow(InvalidArgumentError);
    expect(() => longTailCounts({ ...base, imbalanceFactor: Number.NaN })).toThrow(InvalidArgumentError);
  });
});
