/**
 * Per-class image counts of a long-tailed subset (Diff-Mix supplementary, Eq. 4).
 *
 * Classes are ranked k = 0 … N−1 from largest to smallest and class k keeps
 *
 *   paper    (Eq. 4 as printed): n_k = max(⌊n̄ · (1/ρ)^{k/(N−1)}⌋, 1)
 *   official (Diff-Mix code):    n_k = max(int(n̄ · (1/ρ)^{k/(N−2)}), 1)
 *
 * with n̄ = totalImages / numClasses (a float: `len(self.dataset) / self.num_classes` in
 * `gen_imbalanced_data`, dataset/instance/cub.py and flower.py) and ρ the imbalance factor
 * (the code's `imb_factor` is 1/ρ). Eq. 4 yields real numbers and does not say how to make them
 * integers; both formulas here truncate like the code's `int()` (the values are positive, so
 * truncation = floor). Only `official` reproduces the supplementary's Table 10.
 */
import { InvalidArgumentError } from '@diffmix/core';

export type LongTailFormula = 'paper' | 'official';

export interface LongTailCountsOptions {
  /** N, the number of classes (≥ 2 for `paper`, ≥ 3 for `official`, whose exponent divides by N−2). */
  numClasses: number;
  /** Size of the full (balanced) training split; n̄ = totalImages / numClasses. */
  totalImages: number;
  /** ρ = n_max / n_min ≥ 1, e.g. 100, 20, 10 (not the official code's 1/ρ = 0.01). */
  imbalanceFactor: number;
  /** Default `'official'` (reproduces Table 10). */
  formula?: LongTailFormula;
}

function checkCountsOptions(o: LongTailCountsOptions): Required<LongTailCountsOptions> {
  const formula = o.formula ?? 'official';
  if (formula !== 'paper' && formula !== 'official') {
    throw new InvalidArgumentError('formula', `must be 'paper' or 'official', got ${JSON.stringify(formula)}`);
  }
  const minClasses = formula === 'official' ? 3 : 2;
  if (!Number.isSafeInteger(o.numClasses) || o.numClasses < minClasses) {
    throw new InvalidArgumentError(
      'numClasses',
      `must be an integer ≥ ${minClasses} for the ${formula} formula (its exponent divides by N−${formula === 'official' ? 2 : 1}), got ${o.numClasses}`,
    );
  }
  if (!Number.isSafeInteger(o.totalImages) || o.totalImages < 1) {
    throw new InvalidArgumentError('totalImages', `must be a positive integer, got ${o.totalImages}`);
  }
  if (!Number.isFinite(o.imbalanceFactor) || !(o.imbalanceFactor >= 1)) {
    const hint =
      o.imbalanceFactor > 0 && o.imbalanceFactor < 1
        ? ` (pass ρ = ${+(1 / o.imbalanceFactor).toPrecision(6)}, not the official code's imb_factor = 1/ρ)`
        : '';
    throw new InvalidArgumentError('imbalanceFactor', `must be a finite number ≥ 1, got ${o.imbalanceFactor}${hint}`);
  }
  return { ...o, formula };
}

/**
 * n_k for ranks k = 0 … N−1 (index = rank, largest class first). See the module comment.
 *
 * `official` with N classes puts the last rank at exponent (N−1)/(N−2) > 1, so the smallest class
 * gets slightly fewer than n̄/ρ images and the realised max/min exceeds ρ before truncation.
 */
export function longTailCounts(options: LongTailCountsOptions): number[] {
  const { numClasses, totalImages, imbalanceFactor, formula } = checkCountsOptions(options);
  const mean = totalImages / numClasses;
  const f = 1 / imbalanceFactor;
  const denominator = formula === 'official' ? numClasses - 2 : numClasses - 1;
  const out = new Array<number>(numClasses);
  for (let k = 0; k < numClasses; k++) {
    out[k] = Math.max(Math.trunc(mean * f ** (k / denominator)), 1);
  }
  return out;
}

/** Σ n_k: the size of the long-tailed training split. */
export function longTailTotal(options: LongTailCountsOptions): number {
  return longTailCounts(options).reduce((a, b) => a + b, 0);
}

/**
 * The supplementary's Table 10 ("Statistics of long-tail datasets CUB-LT and Flower-LT"), and the ρ
 * that reproduce it with the official formula. The table prints IF = {100, 50, 10}; the middle
 * column's totals come from ρ = 20 (`imb_factor` 0.05): ρ = 50 gives 1,427 (CUB) and 976 (Flowers).
 */
export const TABLE_10 = {
  cub: { numClasses: 200, trainImages: 5994, totals: [1242, 1798, 2238] },
  flowers: { numClasses: 102, trainImages: 4070, totals: [847, 1238, 1532] },
  /** ρ that reproduce the totals with `formula: 'official'`. */
  imbalanceFactors: [100, 20, 10],
  /** The IF the table prints above those columns (the official fine-tuning / sampling scripts accept 1/ρ ∈ {0.1, 0.02, 0.01}, i.e. these). */
  printedImbalanceFactors: [100, 50, 10],
} as const;
