/**
 * Synthetic re-weighting for long-tailed training (Diff-Mix supplementary §7.4; official
 * `weighted_prob` / `__getitem__` of the `*ImbalanceDataset` classes).
 *
 * Each real training index is replaced, with probability p, by a synthetic sample drawn in two steps:
 * 1. a *target* class k with probability ∝ 1/(n_k + 1), n_k = the real training images of class k
 *    (so tail classes get most of the synthetic data);
 * 2. a synthetic sample whose target class is k, uniformly.
 * The official code picks k over all classes and then calls `random.choice` on the samples with that
 * target, which raises when a class has none. Here classes without synthetic samples are skipped and
 * the remaining probabilities renormalised (they are listed in `classesWithoutSynthetic`).
 *
 * p: 0.5 in the supplementary ("replace real samples with synthetic data with a 50% probability") and,
 * in effect, in the refactored official code (its `--syndata_p` argument is passed as an unknown
 * keyword and ignored, leaving the dataset class's default 0.5); 0.3 in the paper-era code
 * (`--synthetic_probability` default of downstream_tasks/imb_cls/opts.py).
 */
import { InvalidArgumentError, Rng } from '@diffmix/core';
import { WeightedSampler } from './weighted.js';

/** Replacement probability presets. */
export const SYNTHETIC_PROBABILITY = {
  /** Supplementary §7.4, and what the refactored official code ends up using. */
  paper: 0.5,
  /** The paper-era official code's default (`--synthetic_probability 0.3`). */
  officialCode: 0.3,
} as const;

/**
 * How the synthetic sample is chosen:
 * - `'inverse-count'`: target class ∝ 1/(n_k + 1), then uniform within it (`--use_weighted_syn`, the paper);
 * - `'uniform'`: uniform over all synthetic samples (the official code without `--use_weighted_syn`).
 */
export type SyntheticWeighting = 'inverse-count' | 'uniform';

export interface WeightedSyntheticSamplerOptions<T extends { targetClass: number }> {
  /** n_k: real training images per class, indexed by class id (its length is the number of classes). */
  trainCounts: readonly number[];
  /** The synthetic samples, e.g. `SyntheticRecord`s from `readSyntheticSet`. */
  synthetic: readonly T[];
  /** Default `'inverse-count'`. */
  weighting?: SyntheticWeighting;
}

/**
 * 1/(n_k + 1) normalised over the classes with `hasSynthetic[k]` (others get 0), or over all classes
 * when `hasSynthetic` is omitted.
 */
export function inverseCountProbabilities(trainCounts: readonly number[], hasSynthetic?: readonly boolean[]): number[] {
  if (trainCounts.length === 0) throw new InvalidArgumentError('trainCounts', 'must not be empty');
  const w = trainCounts.map((n, k) => {
    if (!Number.isSafeInteger(n) || n < 0)
      throw new InvalidArgumentError('trainCounts', `entry ${k} must be an integer ≥ 0, got ${n}`);
    return hasSynthetic && !hasSynthetic[k] ? 0 : 1 / (n + 1);
  });
  const total = w.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new InvalidArgumentError('synthetic', 'no class has a synthetic sample');
  return w.map((x) => x / total);
}

export class WeightedSyntheticSampler<T extends { targetClass: number }> {
  readonly weighting: SyntheticWeighting;
  /** Probability of drawing each target class (0 for classes without synthetic samples). */
  readonly classProbabilities: number[];
  /** Classes that have no synthetic sample and were skipped. */
  readonly classesWithoutSynthetic: number[];
  /** Synthetic samples grouped by target class (index = class id). */
  readonly byTarget: T[][];
  private readonly synthetic: readonly T[];
  private readonly classSampler: WeightedSampler;

  constructor(options: WeightedSyntheticSamplerOptions<T>) {
    const { trainCounts, synthetic } = options;
    this.weighting = options.weighting ?? 'inverse-count';
    if (this.weighting !== 'inverse-count' && this.weighting !== 'uniform') {
      throw new InvalidArgumentError('weighting', `must be 'inverse-count' or 'uniform', got ${JSON.stringify(this.weighting)}`);
    }
    const numClasses = trainCounts.length;
    if (numClasses === 0) throw new InvalidArgumentError('trainCounts', 'must not be empty');
    if (synthetic.length === 0) throw new InvalidArgumentError('synthetic', 'must hold at least one synthetic sample');
    this.byTarget = Array.from({ length: numClasses }, () => [] as T[]);
    synthetic.forEach((s, i) => {
      const bucket = Number.isInteger(s.targetClass) ? this.byTarget[s.targetClass] : undefined;
      if (!bucket) {
        const id = (s as { id?: unknown }).id;
        throw new InvalidArgumentError(
          'synthetic',
          `sample ${i}${typeof id === 'string' ? ` (${JSON.stringify(id)})` : ''} has target class ${s.targetClass}, outside 0..${numClasses - 1}`,
        );
      }
      bucket.push(s);
    });
    this.synthetic = synthetic;
    const has = this.byTarget.map((b) => b.length > 0);
    this.classesWithoutSynthetic = has.flatMap((h, k) => (h ? [] : [k]));
    if (this.weighting === 'inverse-count') {
      this.classProbabilities = inverseCountProbabilities(trainCounts, has);
    } else {
      for (const [k, n] of trainCounts.entries()) {
        if (!Number.isSafeInteger(n) || n < 0)
          throw new InvalidArgumentError('trainCounts', `entry ${k} must be an integer ≥ 0, got ${n}`);
      }
      this.classProbabilities = this.byTarget.map((b) => b.length / synthetic.length);
    }
    this.classSampler = new WeightedSampler(this.classProbabilities, 'classProbabilities');
  }

  /** Probability that `draw` returns a given sample of target class k (0 if k has none). */
  sampleProbability(targetClass: number): number {
    const n = this.byTarget[targetClass]?.length ?? 0;
    return n === 0 ? 0 : (this.classProbabilities[targetClass] as number) / n;
  }

  /** A target class (one `rng.uniform()`). */
  drawClass(rng: Rng): number {
    return this.classSampler.draw(rng);
  }

  /** A synthetic sample: a target class, then uniformly among its samples. */
  draw(rng: Rng): T {
    if (this.weighting === 'uniform') return this.synthetic[rng.int(this.synthetic.length)] as T;
    const bucket = this.byTarget[this.drawClass(rng)] as T[];
    return bucket[rng.int(bucket.length)] as T;
  }
}

export type TrainingPick<T> = { source: 'real'; index: number } | { source: 'synthetic'; index: number; sample: T };

export interface SyntheticReplacementOptions<T extends { targetClass: number }> {
  sampler: WeightedSyntheticSampler<T>;
  /** Number of real training images (one step per real image per epoch). */
  numReal: number;
  /** p; default `SYNTHETIC_PROBABILITY.paper` (0.5). */
  probability?: number;
  seed: number | string;
}

/**
 * The epoch plan of long-tailed training with synthetic replacement: every epoch visits the real
 * indices in a seeded random order (the official DataLoader's `shuffle=True`) and replaces each with
 * probability p by `sampler.draw`. Deterministic and random-access: the order of epoch e comes from
 * `Rng.fromSeed(seed).split('order').split(e)`, the pick at (e, step) from
 * `….split('replace').split(e).split(step)`, so a resumed or sharded run sees the same picks.
 */
export class SyntheticReplacement<T extends { targetClass: number }> {
  readonly probability: number;
  readonly numReal: number;
  private readonly sampler: WeightedSyntheticSampler<T>;
  private readonly orderRoot: Rng;
  private readonly replaceRoot: Rng;
  private epochRng: { epoch: number; rng: Rng } | undefined;

  constructor(options: SyntheticReplacementOptions<T>) {
    this.probability = options.probability ?? SYNTHETIC_PROBABILITY.paper;
    if (!(this.probability >= 0 && this.probability <= 1)) {
      throw new InvalidArgumentError('probability', `must be in [0, 1], got ${options.probability}`);
    }
    if (!Number.isSafeInteger(options.numReal) || options.numReal < 1) {
      throw new InvalidArgumentError('numReal', `must be a positive integer, got ${options.numReal}`);
    }
    this.numReal = options.numReal;
    this.sampler = options.sampler;
    const root = Rng.fromSeed(options.seed);
    this.orderRoot = root.split('order');
    this.replaceRoot = root.split('replace');
  }

  /** The real-index order of an epoch (a permutation of 0 … numReal−1). */
  order(epoch: number): number[] {
    checkIndex(epoch, 'epoch');
    const out = Array.from({ length: this.numReal }, (_, i) => i);
    this.orderRoot.split(epoch).shuffleInPlace(out);
    return out;
  }

  /** Keep real index `realIndex` at (epoch, step), or replace it by a synthetic sample. */
  pick(epoch: number, step: number, realIndex: number): TrainingPick<T> {
    checkIndex(epoch, 'epoch');
    checkIndex(step, 'step');
    if (this.epochRng?.epoch !== epoch) this.epochRng = { epoch, rng: this.replaceRoot.split(epoch) };
    const rng = this.epochRng.rng.split(step);
    if (rng.uniform() < this.probability) return { source: 'synthetic', index: realIndex, sample: this.sampler.draw(rng) };
    return { source: 'real', index: realIndex };
  }

  /** All picks of an epoch, in visiting order. */
  epoch(epoch: number): TrainingPick<T>[] {
    return this.order(epoch).map((realIndex, step) => this.pick(epoch, step, realIndex));
  }
}

function checkIndex(v: number, name: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(name, `must be a non-negative integer, got ${v}`);
}
