import { InvalidArgumentError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { CUB_LT_THRESHOLDS, FLOWERS_LT_THRESHOLDS, longTailAccuracy, shotGroup } from './metrics.js';

describe('shotGroup boundaries (inclusive medium range)', () => {
  it.each([
    [21, 'many'],
    [20, 'medium'],
    [5, 'medium'],
    [4, 'few'],
    [0, 'few'],
  ] as const)('CUB-LT: %i training images → %s', (n, g) => {
    expect(shotGroup(n, CUB_LT_THRESHOLDS)).toBe(g);
  });
  it.each([
    [31, 'many'],
    [30, 'medium'],
    [10, 'medium'],
    [9, 'few'],
  ] as const)('Flower-LT: %i training images → %s', (n, g) => {
    expect(shotGroup(n, FLOWERS_LT_THRESHOLDS)).toBe(g);
  });
  it('thresholds are configurable and checked', () => {
    expect(shotGroup(100, { many: 100, few: 20 })).toBe('medium');
    expect(() => shotGroup(3, { many: 5, few: 10 })).toThrow(InvalidArgumentError);
  });
});

describe('longTailAccuracy', () => {
  // 5 classes; train counts put 0, 1 in many, 2, 3 in medium, 4 in few (CUB thresholds)
  const trainCounts = [29, 21, 20, 5, 4];
  //            class: 0 0 0 0 | 1 1 | 2 2 2 | 3 | 4 4
  const labels = [0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 4];
  const predictions = [0, 0, 0, 1, 1, 0, 2, 0, 0, 3, 0, 1];

  it('per class, overall, and group means of class accuracies', () => {
    const r = longTailAccuracy({ predictions, labels, trainCounts, thresholds: CUB_LT_THRESHOLDS });
    expect(r.perClass).toEqual([3 / 4, 1 / 2, 1 / 3, 1, 0]);
    expect(r.perClassSamples).toEqual([4, 2, 3, 1, 2]);
    expect(r.overall).toBeCloseTo(6 / 12, 15);
    expect(r.meanClassAccuracy).toBeCloseTo((3 / 4 + 1 / 2 + 1 / 3 + 1 + 0) / 5, 15);
    expect(r.many).toEqual({ accuracy: (3 / 4 + 1 / 2) / 2, classes: [0, 1], samples: 6 });
    expect(r.medium.classes).toEqual([2, 3]);
    expect(r.medium.accuracy).toBeCloseTo((1 / 3 + 1) / 2, 15);
    expect(r.few).toEqual({ accuracy: 0, classes: [4], samples: 2 });
  });

  it('Flowers thresholds regroup the same counts', () => {
    const r = longTailAccuracy({ predictions, labels, trainCounts, thresholds: FLOWERS_LT_THRESHOLDS });
    expect([r.many.classes, r.medium.classes, r.few.classes]).toEqual([[], [0, 1, 2], [3, 4]]);
    expect(r.many.accuracy).toBeNaN();
  });

  it('classes without test samples are NaN and left out of the means', () => {
    const r = longTailAccuracy({ predictions: [0, 1], labels: [0, 0], trainCounts: [30, 2], thresholds: CUB_LT_THRESHOLDS });
    expect(r.perClass[1]).toBeNaN();
    expect(r.few.accuracy).toBeNaN();
    expect(r.meanClassAccuracy).toBe(0.5);
    expect(r.many.accuracy).toBe(0.5);
  });

  it('accepts typed arrays and rejects inconsistent input', () => {
    const r = longTailAccuracy({
      predictions: Int32Array.from(predictions),
      labels: Uint8Array.from(labels),
      trainCounts: Float64Array.from(trainCounts),
      thresholds: CUB_LT_THRESHOLDS,
    });
    expect(r.overall).toBe(0.5);
    const t = CUB_LT_THRESHOLDS;
    expect(() => longTailAccuracy({ predictions: [0], labels: [0, 1], trainCounts, thresholds: t })).toThrow(/2/);
    expect(() => longTailAccuracy({ predictions: [0], labels: [7], trainCounts, thresholds: t })).toThrow(/labels: entry 0 is 7/);
    expect(() => longTailAccuracy({ predictions: [-1], labels: [0], trainCounts, thresholds: t })).toThrow(/predictions/);
    expect(() => longTailAccuracy({ predictions: [], labels: [], trainCounts, thresholds: t })).toThrow(InvalidArgumentError);
  });
});
