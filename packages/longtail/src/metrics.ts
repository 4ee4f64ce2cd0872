/**
 * Long-tail accuracy: overall, per class, and averaged over many- / medium- / few-shot classes.
 *
 * Groups by a class's number of *training* images n (supplementary §7.4; official
 * `THRESHOLD_MAPPING = {"flower": (30, 10), "cub": (20, 5)}` in downstream_tasks/train_hub_imb.py):
 *   many: n > many      medium: few ≤ n ≤ many      few: n < few
 * CUB-LT: many 20, few 5 (>20 / 5–20 / <5); Flower-LT: many 30, few 10 (>30 / 10–30 / <10).
 *
 * Like the official `validate`, a group's accuracy is the mean of its classes' accuracies (each class
 * weighs the same), and the overall accuracy is top-1 over all test samples. Classes without test
 * samples have accuracy NaN and are left out of the means (the official confusion-matrix code would
 * misalign its rows in that case); a group with no evaluable class has accuracy NaN.
 */
import { InvalidArgumentError } from '@diffmix/core';

export interface ShotThresholds {
  /** Classes with more than this many training images are "many-shot". */
  many: number;
  /** Classes with fewer than this many are "few-shot"; [few, many] is "medium-shot". */
  few: number;
}

export const CUB_LT_THRESHOLDS: Readonly<ShotThresholds> = Object.freeze({ many: 20, few: 5 });
export const FLOWERS_LT_THRESHOLDS: Readonly<ShotThresholds> = Object.freeze({ many: 30, few: 10 });

export type ShotGroup = 'many' | 'medium' | 'few';

function checkThresholds(t: ShotThresholds): void {
  if (!Number.isFinite(t.many) || !Number.isFinite(t.few) || t.few > t.many) {
    throw new InvalidArgumentError('thresholds', `need finite few ≤ many, got few ${t.few}, many ${t.many}`);
  }
}

/** The group of a class with `trainCount` training images. */
export function shotGroup(trainCount: number, thresholds: ShotThresholds): ShotGroup {
  checkThresholds(thresholds);
  if (trainCount > thresholds.many) return 'many';
  if (trainCount < thresholds.few) return 'few';
  return 'medium';
}

export interface GroupAccuracy {
  /** Mean per-class accuracy over the group's classes that have test samples (NaN if none). */
  accuracy: number;
  /** Class ids in the group (by training count). */
  classes: number[];
  /** Test samples of those classes. */
  samples: number;
}

export interface LongTailAccuracy {
  /** Top-1 accuracy over all test samples. */
  overall: number;
  /** Mean of the per-class accuracies (classes with test samples). */
  meanClassAccuracy: number;
  /** Accuracy per class id (NaN for a class without test samples). */
  perClass: number[];
  /** Test samples per class id. */
  perClassSamples: number[];
  many: GroupAccuracy;
  medium: GroupAccuracy;
  few: GroupAccuracy;
}

export interface LongTailAccuracyInput {
  /** Predicted class per test sample. */
  predictions: ArrayLike<number>;
  /** True class per test sample. */
  labels: ArrayLike<number>;
  /** Training images per class id (its length is the number of classes). */
  trainCounts: ArrayLike<number>;
  /** Group thresholds, e.g. `CUB_LT_THRESHOLDS`. */
  thresholds: ShotThresholds;
}

/** Accuracies in [0, 1] (multiply by 100 for the paper's tables). */
export function longTailAccuracy(input: LongTailAccuracyInput): LongTailAccuracy {
  const { predictions, labels, trainCounts, thresholds } = input;
  checkThresholds(thresholds);
  const numClasses = trainCounts.length;
  if (numClasses === 0) throw new InvalidArgumentError('trainCounts', 'must not be empty');
  if (predictions.length !== labels.length) {
    throw new InvalidArgumentError('predictions', `has ${predictions.length} entries but labels has ${labels.length}`);
  }
  if (labels.length === 0) throw new InvalidArgumentError('labels', 'must not be empty');
  const inRange = (v: number) => Number.isInteger(v) && v >= 0 && v < numClasses;
  const hits = new Array<number>(numClasses).fill(0);
  const totals = new Array<number>(numClasses).fill(0);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    const p = predictions[i] as number;
    if (!inRange(y)) throw new InvalidArgumentError('labels', `entry ${i} is ${y}, outside 0..${numClasses - 1}`);
    if (!inRange(p)) throw new InvalidArgumentError('predictions', `entry ${i} is ${p}, outside 0..${numClasses - 1}`);
    totals[y] = (totals[y] as number) + 1;
    if (p === y) {
      hits[y] = (hits[y] as number) + 1;
      correct++;
    }
  }
  const perClass = totals.map((t, k) => (t === 0 ? Number.NaN : (hits[k] as number) / t));
  const mean = (ks: number[]) => {
    const vals = ks.map((k) => perClass[k] as number).filter((v) => !Number.isNaN(v));
    return vals.length === 0 ? Number.NaN : vals.reduce((a, b) => a + b, 0) / vals.length;
  };
  const groups: Record<ShotGroup, number[]> = { many: [], medium: [], few: [] };
  for (let k = 0; k < numClasses; k++) {
    const n = trainCounts[k] as number;
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('trainCounts', `entry ${k} must be ≥ 0, got ${n}`);
    groups[shotGroup(n, thresholds)].push(k);
  }
  const group = (g: ShotGroup): GroupAccuracy => ({
    accuracy: mean(groups[g]),
    classes: groups[g],
    samples: groups[g].reduce((a, k) => a + (totals[k] as number), 0),
  });
  return {
    overall: correct / labels.length,
    meanClassAccuracy: mean(perClass.map((_, k) => k)),
    perClass,
    perClassSamples: totals,
    many: group('many'),
    medium: group('medium'),
    few: group('few'),
  };
}
