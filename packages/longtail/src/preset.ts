/**
 * The long-tail training recipe of the Diff-Mix supplementary / official `train_hub_imb.py`
 * (CMO's CIFAR-LT script adapted to ImageNet-pretrained ResNet-50), as data, plus its learning-rate
 * schedule. The training loop that consumes it belongs to `@diffmix/classifier`.
 */
import { InvalidArgumentError } from '@diffmix/core';
import { SYNTHETIC_PROBABILITY, type SyntheticWeighting } from './reweight.js';

export interface LrMilestone {
  /** First 0-based epoch at which `factor` applies. */
  epoch: number;
  /** Multiplier of the base learning rate (not cumulative). */
  factor: number;
}

export interface LrSchedule {
  baseLr: number;
  warmupEpochs: number;
  /**
   * `'per-epoch'` (the official `adjust_learning_rate`, called once at the start of each epoch):
   * epoch e < W trains at baseLr·(e+1)/W. `'per-iteration'`: a linear ramp baseLr·(e + f)/W over the
   * first W epochs, f the fraction of the epoch done; it passes through the per-epoch value at the end
   * of each warm-up epoch.
   */
  warmup: 'per-epoch' | 'per-iteration';
  /** Step decays, each relative to baseLr; the last one reached wins. */
  milestones: readonly LrMilestone[];
}

export interface NormalizeConfig {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

export interface LongTailTrainingPreset {
  backbone: 'resnet50';
  /** torchvision `resnet50(pretrained=True)` (ImageNet-1k), new `fc` for the N classes. */
  pretrained: 'imagenet1k';
  resolution: number;
  trainTransform: {
    randomResizedCrop: { size: number; scale: readonly [number, number]; ratio: readonly [number, number] };
    horizontalFlipProbability: number;
    colorJitter: { brightness: number; contrast: number; saturation: number; hue: number };
    normalize: NormalizeConfig;
  };
  testTransform: { resizeShorterSide: number; centerCrop: number; normalize: NormalizeConfig };
  optimizer: { kind: 'sgd'; lr: number; momentum: number; weightDecay: number; nesterov: boolean };
  batchSize: number;
  /** The DataLoader keeps the last, incomplete batch (`drop_last` left False). */
  dropLast: boolean;
  epochs: number;
  schedule: LrSchedule;
  /** Cross-entropy over (soft) probability targets; DRW adds class weights (`drwWeights`). */
  loss: 'cross-entropy';
  /** p of synthetic replacement (`SYNTHETIC_PROBABILITY`). */
  syntheticProbability: number;
  syntheticWeighting: SyntheticWeighting;
  /** Synthetic set size = multiplier × the long-tailed training set. */
  syntheticMultiplier: number;
  /** The official script evaluates on the test set after every epoch and reports the best top-1. */
  evaluateEveryEpochs: number;
}

const IMAGENET: NormalizeConfig = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

export const LONG_TAIL_SCHEDULE: Readonly<LrSchedule> = Object.freeze({
  baseLr: 0.005,
  warmupEpochs: 5,
  warmup: 'per-epoch',
  milestones: Object.freeze([
    { epoch: 160, factor: 0.01 },
    { epoch: 180, factor: 1e-4 },
  ]),
});

export const LONG_TAIL_TRAINING_PRESET: Readonly<LongTailTrainingPreset> = Object.freeze({
  backbone: 'resnet50',
  pretrained: 'imagenet1k',
  resolution: 224,
  trainTransform: {
    randomResizedCrop: { size: 224, scale: [0.08, 1], ratio: [3 / 4, 4 / 3] },
    horizontalFlipProbability: 0.5,
    colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0 },
    normalize: IMAGENET,
  },
  testTransform: { resizeShorterSide: 256, centerCrop: 224, normalize: IMAGENET },
  optimizer: { kind: 'sgd', lr: 0.005, momentum: 0.9, weightDecay: 2e-4, nesterov: false },
  batchSize: 128,
  dropLast: false,
  epochs: 200,
  schedule: LONG_TAIL_SCHEDULE,
  loss: 'cross-entropy',
  syntheticProbability: SYNTHETIC_PROBABILITY.paper,
  syntheticWeighting: 'inverse-count',
  syntheticMultiplier: 10,
  evaluateEveryEpochs: 1,
} satisfies LongTailTrainingPreset);

/**
 * The learning rate for 0-based `epoch`, `iterFraction` ∈ [0, 1) of the way through it (only the
 * `'per-iteration'` warm-up uses it). With the default schedule (the official `adjust_learning_rate`):
 * epochs 0–4 → 0.2, 0.4, 0.6, 0.8, 1.0 × 0.005; 5–159 → 0.005; 160–179 → 5e-5; 180+ → 5e-7.
 */
export function lrAt(epoch: number, iterFraction = 0, schedule: LrSchedule = LONG_TAIL_SCHEDULE): number {
  if (!Number.isSafeInteger(epoch) || epoch < 0)
    throw new InvalidArgumentError('epoch', `must be a non-negative integer, got ${epoch}`);
  if (!(iterFraction >= 0 && iterFraction < 1))
    throw new InvalidArgumentError('iterFraction', `must be in [0, 1), got ${iterFraction}`);
  const { baseLr, warmupEpochs: w } = schedule;
  if (!(baseLr > 0) || !Number.isFinite(baseLr)) throw new InvalidArgumentError('schedule.baseLr', `must be > 0, got ${baseLr}`);
  if (!Number.isFinite(w) || w < 0) throw new InvalidArgumentError('schedule.warmupEpochs', `must be ≥ 0, got ${w}`);
  let warm = 1;
  if (schedule.warmup === 'per-epoch') {
    if (epoch + 1 <= w) warm = (epoch + 1) / w;
  } else if (schedule.warmup === 'per-iteration') {
    const t = epoch + iterFraction;
    if (t < w) warm = t / w;
  } else {
    throw new InvalidArgumentError(
      'schedule.warmup',
      `must be 'per-epoch' or 'per-iteration', got ${JSON.stringify(schedule.warmup)}`,
    );
  }
  let factor = 1;
  let reached = -1;
  for (const m of schedule.milestones) {
    if (epoch >= m.epoch && m.epoch > reached) {
      factor = m.factor;
      reached = m.epoch;
    }
  }
  return baseLr * warm * factor;
}
