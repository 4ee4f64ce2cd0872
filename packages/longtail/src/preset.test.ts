import { InvalidArgumentError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { LONG_TAIL_SCHEDULE, LONG_TAIL_TRAINING_PRESET, lrAt } from './preset.js';

describe('lrAt — the official adjust_learning_rate (per-epoch warm-up)', () => {
  it.each([
    [0, 0.001],
    [1, 0.002],
    [2, 0.003],
    [3, 0.004],
    [4, 0.005],
    [5, 0.005],
    [100, 0.005],
    [159, 0.005],
    [160, 0.005 * 0.01],
    [179, 0.005 * 0.01],
    [180, 0.005 * 1e-4],
    [199, 0.005 * 1e-4],
  ])('epoch %i → %f', (epoch, lr) => {
    expect(lrAt(epoch)).toBeCloseTo(lr, 15);
    expect(lrAt(epoch, 0.9)).toBe(lrAt(epoch)); // constant within an epoch
  });

  it('per-iteration warm-up ramps linearly and meets the per-epoch values at epoch ends', () => {
    const s = { ...LONG_TAIL_SCHEDULE, warmup: 'per-iteration' as const };
    expect(lrAt(0, 0, s)).toBe(0);
    expect(lrAt(0, 0.5, s)).toBeCloseTo(0.0005, 15);
    expect(lrAt(2, 0.5, s)).toBeCloseTo(0.0025, 15);
    expect(lrAt(4, 0.999999, s)).toBeCloseTo(0.005, 8);
    expect(lrAt(5, 0, s)).toBe(0.005);
    expect(lrAt(170, 0.3, s)).toBeCloseTo(5e-5, 15);
  });

  it('rejects bad arguments', () => {
    expect(() => lrAt(-1)).toThrow(InvalidArgumentError);
    expect(() => lrAt(1.5)).toThrow(InvalidArgumentError);
    expect(() => lrAt(1, 1)).toThrow(InvalidArgumentError);
    expect(() => lrAt(1, 0, { ...LONG_TAIL_SCHEDULE, warmup: 'cosine' as never })).toThrow(InvalidArgumentError);
  });
});

describe('LONG_TAIL_TRAINING_PRESET', () => {
  it('matches the supplementary / official long-tail recipe', () => {
    const p = LONG_TAIL_TRAINING_PRESET;
    expect(p).toMatchObject({
      backbone: 'resnet50',
      resolution: 224,
      optimizer: { kind: 'sgd', lr: 0.005, momentum: 0.9, weightDecay: 2e-4 },
      batchSize: 128,
      epochs: 200,
      syntheticProbability: 0.5,
      syntheticMultiplier: 10,
    });
    expect(p.trainTransform.colorJitter).toEqual({ brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0 });
    expect(p.schedule.warmupEpochs).toBe(5);
    expect(p.schedule.milestones).toEqual([
      { epoch: 160, factor: 0.01 },
      { epoch: 180, factor: 1e-4 },
    ]);
    expect(Object.isFrozen(p)).toBe(true);
  });
});
