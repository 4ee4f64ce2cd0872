/**
 * The CutMix and Mixup baselines of the paper, on already normalised float CHW images and dense
 * label vectors.
 *
 * - CutMix (dataset level, per sample, as the official `CutMix` dataset wrapper): with probability
 *   `prob` draw λ ~ Beta(β, β) (β = 1), a partner sample uniformly from the whole training set, and a
 *   box from the official `rand_bbox` (`@diffmix/longtail`'s `cutmixBox`); the box of the partner is
 *   pasted in and the label becomes `λ'·y + (1 − λ')·y_partner` with λ' = 1 − box area / image area
 *   (the area actually pasted, not the drawn λ).
 * - Mixup (batch level): with probability `prob` per batch, λ ~ Beta(α, α) (α = 1) and a random
 *   permutation π of the batch: x ← λ·x + (1 − λ)·x[π], y ← λ·y + (1 − λ)·y[π].
 */
import { InvalidArgumentError, type Rng } from '@diffmix/core';
import { type CutMix, cutmixBox } from '@diffmix/longtail';

export interface CutMixConfig {
  /** Probability that a sample is mixed (official: 0.1). */
  prob: number;
  /** Beta(β, β) parameter (official: 1). */
  beta?: number;
}

export interface MixupConfig {
  /** Probability that a batch is mixed (official: 0.3). */
  prob: number;
  /** Beta(α, α) parameter (official: 1). */
  alpha?: number;
}

export function checkProb(name: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new InvalidArgumentError(name, `must be in [0, 1], got ${p}`);
}

export interface CutMixDraw extends CutMix {
  /** Index of the partner sample in the training set. */
  partner: number;
}

/**
 * CutMix decision for one sample (draws from `rng`: one uniform; if mixing, λ, the partner index,
 * then the box centre). `null` when the sample is left alone.
 */
export function drawCutMix(rng: Rng, config: CutMixConfig, numSamples: number, height: number, width: number): CutMixDraw | null {
  checkProb('cutmix.prob', config.prob);
  const beta = config.beta ?? 1;
  if (!(beta > 0)) throw new InvalidArgumentError('cutmix.beta', `must be > 0, got ${beta}`);
  if (!(rng.uniform() < config.prob)) return null;
  const lam = rng.beta(beta, beta);
  const partner = rng.int(numSamples);
  return { ...cutmixBox(rng, height, width, lam), partner };
}

/** Pastes the box of `partner` into `image` (both `[3, H, W]` float CHW), in place. */
export function pasteBox(image: Float32Array, partner: Float32Array, height: number, width: number, draw: CutMix): void {
  const { y1, y2, x1, x2 } = draw.box;
  const plane = height * width;
  for (let c = 0; c < 3; c++) {
    for (let y = y1; y < y2; y++) {
      const o = c * plane + y * width;
      image.set(partner.subarray(o + x1, o + x2), o + x1);
    }
  }
}

/** `λ·a + (1 − λ)·b` into a new vector. */
export function mixLabels(a: Float32Array, b: Float32Array, lam: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = lam * (a[i] as number) + (1 - lam) * (b[i] as number);
  return out;
}

export interface MixupDraw {
  lambda: number;
  permutation: number[];
}

/** Mixup decision for one batch of `n` (draws: one uniform; if mixing, λ then the permutation). */
export function drawMixup(rng: Rng, config: MixupConfig, n: number): MixupDraw | null {
  checkProb('mixup.prob', config.prob);
  const alpha = config.alpha ?? 1;
  if (!(alpha > 0)) throw new InvalidArgumentError('mixup.alpha', `must be > 0, got ${alpha}`);
  if (!(rng.uniform() < config.prob)) return null;
  const lambda = rng.beta(alpha, alpha);
  const permutation = Array.from({ length: n }, (_, i) => i);
  rng.shuffleInPlace(permutation);
  return { lambda, permutation };
}

/**
 * Applies a Mixup draw to a batch: `images` `[n, …]` (per-image length `imageLen`) and `targets`
 * `[n, C]`, returning new arrays (the originals are read for every permuted partner).
 */
export function applyMixup(
  images: Float32Array,
  targets: Float32Array,
  n: number,
  draw: MixupDraw,
): { images: Float32Array; targets: Float32Array } {
  const imageLen = images.length / n;
  const c = targets.length / n;
  const lam = draw.lambda;
  const xi = new Float32Array(images.length);
  const yi = new Float32Array(targets.length);
  for (let i = 0; i < n; i++) {
    const j = draw.permutation[i] as number;
    for (let k = 0; k < imageLen; k++) {
      xi[i * imageLen + k] = lam * (images[i * imageLen + k] as number) + (1 - lam) * (images[j * imageLen + k] as number);
    }
    for (let k = 0; k < c; k++) yi[i * c + k] = lam * (targets[i * c + k] as number) + (1 - lam) * (targets[j * c + k] as number);
  }
  return { images: xi, targets: yi };
}
