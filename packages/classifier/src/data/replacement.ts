/**
 * Synthetic replacement (Diff-Mix §3.3, official `__getitem__` of the synthetic-augmented datasets):
 * each real training index is, with probability p, replaced by a synthetic sample whose soft label
 * (`y[src] += c·(1 − s^γ)`, `y[tgt] += c·s^γ`, read from the set's manifest or meta.csv by
 * `readSyntheticSet`) is used instead of the real one-hot label.
 *
 * Which synthetic sample: uniformly over the whole set (the official conventional / few-shot setting),
 * or `inverse-count` — a target class k with probability ∝ 1/(n_k + 1) over the real per-class counts,
 * then uniformly among its samples (the long-tail setting; `@diffmix/longtail`'s sampler).
 */
import { densify, InvalidArgumentError, type Rng } from '@diffmix/core';
import type { SyntheticRecord } from '@diffmix/datasets';
import { type SyntheticWeighting, WeightedSyntheticSampler } from '@diffmix/longtail';

export interface ReplacementConfig {
  /** Replacement probability p (0.1 conventional, 0.3 few-shot, 0.5 long-tail in the paper). */
  probability: number;
  /** `uniform` (default) or `inverse-count` (long-tail re-weighting). */
  weighting?: SyntheticWeighting;
}

export interface SyntheticReplacerOptions extends ReplacementConfig {
  synthetic: readonly SyntheticRecord[];
  numClasses: number;
  /** Real training images per class (for `inverse-count`). */
  trainCounts: readonly number[];
}

export class SyntheticReplacer {
  readonly probability: number;
  readonly weighting: SyntheticWeighting;
  private readonly sampler: WeightedSyntheticSampler<SyntheticRecord>;
  private readonly numClasses: number;

  constructor(options: SyntheticReplacerOptions) {
    const p = options.probability;
    if (!(p >= 0 && p <= 1)) throw new InvalidArgumentError('synthetic.probability', `must be in [0, 1], got ${p}`);
    if (options.synthetic.length === 0) throw new InvalidArgumentError('synthetic', 'the synthetic set has no records');
    if (options.trainCounts.length !== options.numClasses) {
      throw new InvalidArgumentError(
        'trainCounts',
        `has ${options.trainCounts.length} entries for ${options.numClasses} classes`,
      );
    }
    for (const r of options.synthetic) {
      for (const [c] of r.label) {
        if (!(c >= 0 && c < options.numClasses)) {
          throw new InvalidArgumentError(
            'synthetic',
            `record ${JSON.stringify(r.id)} has a label on class ${c}, outside 0..${options.numClasses - 1}`,
          );
        }
      }
    }
    this.probability = p;
    this.weighting = options.weighting ?? 'uniform';
    this.numClasses = options.numClasses;
    this.sampler = new WeightedSyntheticSampler({
      trainCounts: options.trainCounts,
      synthetic: options.synthetic,
      weighting: this.weighting,
    });
  }

  /** One uniform (replace or not), then the sampler's draws when replacing. */
  pick(rng: Rng): SyntheticRecord | null {
    if (!(rng.uniform() < this.probability)) return null;
    return this.sampler.draw(rng);
  }

  /** The dense (unsmoothed) soft label of a synthetic record. */
  label(record: SyntheticRecord): Float32Array {
    return densify(record.label, this.numClasses);
  }
}
