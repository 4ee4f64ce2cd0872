import { InvalidArgumentError, Rng } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { WeightedSampler } from './weighted.js';

describe('WeightedSampler', () => {
  it('picks the same index as Rng.weightedIndex for the same generator state', () => {
    const w = [0.5, 0, 3, 1e-3, 2, 0];
    const s = new WeightedSampler(w);
    const a = Rng.fromSeed(31);
    const b = Rng.fromSeed(31);
    for (let i = 0; i < 5000; i++) expect(s.draw(a)).toBe(b.weightedIndex(w));
  });
  it('never draws zero weights; probabilities are weight / total', () => {
    const s = new WeightedSampler([0, 1, 0, 3, 0]);
    const rng = Rng.fromSeed(32);
    const seen = new Set(s.drawMany(rng, 10_000));
    expect([...seen].sort()).toEqual([1, 3]);
    expect(s.probability(3)).toBe(0.75);
    expect(s.probability(7)).toBe(0);
    expect(s.size).toBe(5);
  });
  it('rejects empty, negative, non-finite and all-zero weights', () => {
    expect(() => new WeightedSampler([])).toThrow(InvalidArgumentError);
    expect(() => new WeightedSampler([1, -1])).toThrow(/entry 1/);
    expect(() => new WeightedSampler([1, Number.POSITIVE_INFINITY])).toThrow(InvalidArgumentError);
    expect(() => new WeightedSampler([0, 0])).toThrow(/all be zero/);
    expect(() => new WeightedSampler([1]).drawMany(Rng.fromSeed(0), -1)).toThrow(InvalidArgumentError);
  });
});
