/**
 * The long-tail baselines of the Diff-Mix supplementary, as the official code (built on CMO's
 * `cifar_train.py`, itself from LDAM-DRW) runs them. All epochs are 0-based, as in the code's
 * `for epoch in range(args.start_epoch, args.epochs)`.
 *
 * - **CE**: plain cross-entropy on the long-tailed set, nothing re-weighted; it needs nothing from
 *   this package beyond the subset and the schedule (`LONG_TAIL_TRAINING_PRESET`, `lrAt`).
 * - **CMO** (Park et al., CVPR 2022): a second loader draws images with a minority-weighted sampler
 *   (per-sample weight ∝ 1/n_k^α, α = 1; `WeightedRandomSampler(replacement=True)`), and with
 *   probability 0.5 per batch a CutMix box (λ ~ Beta(1, 1)) from that minority batch is pasted into
 *   the regular batch; loss = λ·CE(out, y) + (1−λ)·CE(out, y_pasted) with λ recomputed from the box
 *   area. Active while `start_data_aug < epoch < epochs − end_data_aug` (3 < epoch < 197: epochs
 *   4 … 196 of 0 … 199).
 * - **DRW** (Cao et al., NeurIPS 2019): from epoch 160 the CE loss gets class-balanced weights
 *   w_k = (1−β)/(1−β^{n_k}), β = 0.9999, normalised so Σ_k w_k = N (`per_cls_weights /
 *   np.sum(per_cls_weights) * len(cls_num_list)`); before that β = 0, i.e. every weight is 1.
 */
import { InvalidArgumentError, type Rng } from '@diffmix/core';
import { WeightedSampler } from './weighted.js';

function checkCounts(counts: readonly number[]): void {
  if (counts.length === 0) throw new InvalidArgumentError('trainCounts', 'must not be empty');
  counts.forEach((n, k) => {
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError('trainCounts', `entry ${k} must be an integer ≥ 1, got ${n}`);
    }
  });
}

// ---------------------------------------------------------------------------------------------- CMO

export interface CmoConfig {
  /** Total epochs (200). */
  epochs: number;
  /** `--start_data_aug` (3): CutMix needs epoch > this. */
  startDataAug: number;
  /** `--end_data_aug` (3): CutMix needs epoch < epochs − this. */
  endDataAug: number;
  /** `--mixup_prob` (0.5): chance that a batch (in an active epoch) is mixed. */
  probability: number;
  /** `--beta` (1): λ ~ Beta(beta, beta). */
  beta: number;
  /** `--weighted_alpha` (1): sampler weight 1/n_k^α. */
  weightedAlpha: number;
}

export const CMO_DEFAULTS: Readonly<CmoConfig> = Object.freeze({
  epochs: 200,
  startDataAug: 3,
  endDataAug: 3,
  probability: 0.5,
  beta: 1,
  weightedAlpha: 1,
});

/** Whether CMO's CutMix can happen in 0-based `epoch` (default config: epochs 4 … 196). */
export function cmoActive(epoch: number, config: Partial<CmoConfig> = {}): boolean {
  const c = { ...CMO_DEFAULTS, ...config };
  return c.startDataAug < epoch && epoch < c.epochs - c.endDataAug;
}

/**
 * CMO's class weights 1/n_k^α normalised to sum to N (`cls_weight / np.sum(cls_weight) *
 * len(cls_num_list)`). Every n_k must be ≥ 1.
 */
export function cmoClassWeights(trainCounts: readonly number[], alpha = CMO_DEFAULTS.weightedAlpha): number[] {
  checkCounts(trainCounts);
  const raw = trainCounts.map((n) => 1 / n ** alpha);
  const sum = raw.reduce((a, b) => a + b, 0);
  return raw.map((w) => (w / sum) * trainCounts.length);
}

/** Per-sample weights of CMO's minority sampler: the class weight of each sample's label. */
export function cmoSampleWeights(
  labels: ArrayLike<number>,
  trainCounts: readonly number[],
  alpha = CMO_DEFAULTS.weightedAlpha,
): Float64Array {
  const cw = cmoClassWeights(trainCounts, alpha);
  const out = new Float64Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const w = cw[labels[i] as number];
    if (w === undefined) throw new InvalidArgumentError('labels', `entry ${i} is ${labels[i]}, outside 0..${cw.length - 1}`);
    out[i] = w;
  }
  return out;
}

/**
 * CMO's minority sampler over the training samples (with replacement): `draw(rng)` gives a sample
 * index, `drawMany(rng, labels.length)` one epoch of the weighted loader. With α = 1 every class is
 * drawn with the same total probability 1/N.
 */
export function cmoSampler(
  labels: ArrayLike<number>,
  trainCounts: readonly number[],
  alpha = CMO_DEFAULTS.weightedAlpha,
): WeightedSampler {
  return new WeightedSampler(cmoSampleWeights(labels, trainCounts, alpha), 'sample weights');
}

/** A CutMix box: rows [y1, y2) and columns [x1, x2) of the image are replaced. */
export interface CutMixBox {
  y1: number;
  x1: number;
  y2: number;
  x2: number;
}

export interface CutMix {
  box: CutMixBox;
  /** λ as drawn from Beta(β, β). */
  lambdaDrawn: number;
  /** Weight of the original (background) image's label: 1 − box area / image area. */
  lambda: number;
}

/**
 * The official `rand_bbox` for an image of `height` × `width` and a drawn λ, followed by the area
 * correction. With r = √(1−λ): cut_h = ⌊H·r⌋, cut_w = ⌊W·r⌋, a centre (cy, cx) uniform over pixels
 * (row drawn first, as `np.random.randint(W)` on `size[2]`, the height of an NCHW batch), and the box
 * [clip(c − ⌊cut/2⌋), clip(c + ⌊cut/2⌋)) in each direction. Returns λ = 1 − area/(H·W).
 */
export function cutmixBox(rng: Rng, height: number, width: number, lambdaDrawn: number): CutMix {
  for (const [name, v] of [
    ['height', height],
    ['width', width],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new InvalidArgumentError(name, `must be a positive integer, got ${v}`);
  }
  if (!(lambdaDrawn >= 0 && lambdaDrawn <= 1)) throw new InvalidArgumentError('lambda', `must be in [0, 1], got ${lambdaDrawn}`);
  const r = Math.sqrt(1 - lambdaDrawn);
  const cutH = Math.trunc(height * r);
  const cutW = Math.trunc(width * r);
  const cy = rng.int(height);
  const cx = rng.int(width);
  const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  const box = {
    y1: clip(cy - Math.floor(cutH / 2), height),
    x1: clip(cx - Math.floor(cutW / 2), width),
    y2: clip(cy + Math.floor(cutH / 2), height),
    x2: clip(cx + Math.floor(cutW / 2), width),
  };
  const lambda = 1 - ((box.y2 - box.y1) * (box.x2 - box.x1)) / (height * width);
  return { box, lambdaDrawn, lambda };
}

/**
 * CMO's per-batch decision: `null` (no mixing) outside the active epochs or when the coin says no;
 * otherwise λ ~ Beta(β, β) and a box. Draws, in order: one uniform (the coin, drawn only in active
 * epochs), then the Beta variate, then the box centre. The same box applies to the whole batch.
 */
export function drawCmoCutMix(
  rng: Rng,
  args: { epoch: number; height: number; width: number; config?: Partial<CmoConfig> },
): CutMix | null {
  const c = { ...CMO_DEFAULTS, ...args.config };
  if (!cmoActive(args.epoch, c)) return null;
  if (!(rng.uniform() < c.probability)) return null;
  const lam = rng.beta(c.beta, c.beta);
  return cutmixBox(rng, args.height, args.width, lam);
}

// ---------------------------------------------------------------------------------------------- DRW

export interface DrwConfig {
  /** β of the effective number (0.9999). */
  beta: number;
  /** First 0-based epoch with re-weighting (160: `idx = epoch // 160`). */
  startEpoch: number;
}

export const DRW_DEFAULTS: Readonly<DrwConfig> = Object.freeze({ beta: 0.9999, startEpoch: 160 });

/**
 * Class-balanced weights (Cui et al., CVPR 2019): w_k = (1−β)/(1−β^{n_k}), normalised to Σ w = N.
 * β = 0 gives all ones. Every n_k must be ≥ 1 (n_k = 0 would divide by zero).
 */
export function classBalancedWeights(trainCounts: readonly number[], beta: number): number[] {
  checkCounts(trainCounts);
  if (!(beta >= 0 && beta < 1)) throw new InvalidArgumentError('beta', `must be in [0, 1), got ${beta}`);
  const raw = trainCounts.map((n) => (1 - beta) / (1 - beta ** n));
  const sum = raw.reduce((a, b) => a + b, 0);
  return raw.map((w) => (w / sum) * trainCounts.length);
}

/** DRW's per-class loss weights for 0-based `epoch`: all 1 before `startEpoch`, class-balanced from it. */
export function drwWeights(trainCounts: readonly number[], epoch: number, config: Partial<DrwConfig> = {}): number[] {
  const c = { ...DRW_DEFAULTS, ...config };
  if (!Number.isSafeInteger(epoch) || epoch < 0)
    throw new InvalidArgumentError('epoch', `must be a non-negative integer, got ${epoch}`);
  return classBalancedWeights(trainCounts, epoch < c.startEpoch ? 0 : c.beta);
}
