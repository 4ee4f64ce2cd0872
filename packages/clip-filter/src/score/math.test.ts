import { describe, expect, it } from 'vitest';
import { METACLASS_CAPTIONS, OFFICIAL_FILTER_CAPTIONS, resolveCaptions } from './captions.js';
import { l2NormalizeRows, percentileLinear, scoresFromLogits, similarityLogits, softmaxRows } from './math.js';

describe('score maths', () => {
  it('normalises rows, leaves zero rows at zero', () => {
    const n = l2NormalizeRows({ data: Float32Array.of(3, 4, 0, 0), rows: 2, dim: 2 });
    expect(Array.from(n.data)).toEqual([expect.closeTo(0.6, 15), expect.closeTo(0.8, 15), 0, 0]);
  });

  it('logits = scale · cos; softmax of two captions is σ of the scaled difference', () => {
    const img = { data: Float32Array.of(1, 0, 1, 1), rows: 2, dim: 2 };
    const txt = { data: Float32Array.of(1, 0, 0, 1), rows: 2, dim: 2 };
    const logits = similarityLogits(img, txt, 10);
    expect(Array.from(logits)).toEqual(
      [10, 0, 10 * Math.SQRT1_2, 10 * Math.SQRT1_2].map((v, i) => (i >= 2 ? expect.closeTo(v, 12) : v)),
    );
    const [a, b] = scoresFromLogits(logits, 2);
    expect(a?.score).toBeCloseTo(1 / (1 + Math.exp(-10)), 15);
    expect(b?.score).toBeCloseTo(0.5, 15);
    expect(a?.logits).toEqual([10, 0]);
    expect(() => similarityLogits(img, { data: new Float32Array(3), rows: 1, dim: 3 }, 1)).toThrow(
      /2 dims but text embeddings 3/,
    );
  });

  it('softmax is stable for large logits', () => {
    expect(Array.from(softmaxRows([1000, 1000], 2))).toEqual([0.5, 0.5]);
    expect(() => softmaxRows([1, 2, 3], 2)).toThrow(/rows of 2/);
  });

  it("percentileLinear is numpy's default np.percentile", () => {
    // np.percentile([1, 2, 3, 4], [0, 10, 50, 90, 100]) → [1, 1.3, 2.5, 3.7, 4]
    const v = [4, 1, 3, 2];
    expect(percentileLinear(v, 0)).toBe(1);
    expect(percentileLinear(v, 10)).toBeCloseTo(1.3, 15);
    expect(percentileLinear(v, 50)).toBe(2.5);
    expect(percentileLinear(v, 90)).toBeCloseTo(3.7, 15);
    expect(percentileLinear(v, 100)).toBe(4);
    expect(percentileLinear([0.7], 10)).toBe(0.7);
    expect(() => percentileLinear([], 10)).toThrow(/at least one/);
    expect(() => percentileLinear([1], 101)).toThrow(/\[0, 100\]/);
  });
});

describe('captions', () => {
  it('has the paper captions per metaclass, with the right article', () => {
    expect(METACLASS_CAPTIONS.bird).toEqual(['a photo with a bird on it', 'a photo without a bird on it']);
    expect(METACLASS_CAPTIONS.aircraft).toEqual(['a photo with an aircraft on it', 'a photo without an aircraft on it']);
    expect(resolveCaptions({ metaclass: 'dog' })).toEqual(METACLASS_CAPTIONS.dog);
    expect(OFFICIAL_FILTER_CAPTIONS.aircraft?.[0]).toBe('a photo with an aricraft on it. ');
  });

  it('captions override the metaclass; unknown metaclasses need captions', () => {
    expect(resolveCaptions({ metaclass: 'bird', captions: ['x', 'y'] })).toEqual(['x', 'y']);
    expect(() => resolveCaptions({ metaclass: 'tree' })).toThrow(/no captions known for metaclass "tree"/);
    expect(() => resolveCaptions({ captions: ['x', ' '] })).toThrow(/two non-empty strings/);
  });
});
