/**
 * Drawing an index with probability proportional to a fixed list of weights, many times.
 *
 * `Rng.weightedIndex` scans the list on every draw; samplers that draw hundreds of thousands of
 * times from the same weights (a CMO epoch, synthetic replacement) keep the cumulative sums and
 * binary-search them instead. The draw consumes one `rng.uniform()` and picks the first index i
 * with u·Σw < w_0 + … + w_i, exactly the rule `Rng.weightedIndex` uses, so both give the same index
 * for the same generator state.
 */
import { InvalidArgumentError, type Rng } from '@diffmix/core';

export class WeightedSampler {
  /** Inclusive prefix sums of the weights. */
  private readonly cumulative: Float64Array;
  /** Σ weights. */
  readonly total: number;
  private readonly lastPositive: number;

  /** @param weights non-negative, finite, not all zero. `name` names the argument in errors. */
  constructor(weights: ArrayLike<number>, name = 'weights') {
    if (weights.length === 0) throw new InvalidArgumentError(name, 'must not be empty');
    this.cumulative = new Float64Array(weights.length);
    let acc = 0;
    let lastPositive = -1;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i] as number;
      if (!(w >= 0) || !Number.isFinite(w)) {
        throw new InvalidArgumentError(name, `entry ${i} must be finite and ≥ 0, got ${w}`);
      }
      acc += w;
      if (w > 0) lastPositive = i;
      this.cumulative[i] = acc;
    }
    if (!(acc > 0)) throw new InvalidArgumentError(name, 'must not all be zero');
    this.total = acc;
    this.lastPositive = lastPositive;
  }

  get size(): number {
    return this.cumulative.length;
  }

  /** Probability of index i (weight / total). */
  probability(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.cumulative.length) return 0;
    const prev = i === 0 ? 0 : (this.cumulative[i - 1] as number);
    return ((this.cumulative[i] as number) - prev) / this.total;
  }

  /** One index; consumes one `rng.uniform()`. */
  draw(rng: Rng): number {
    const u = rng.uniform() * this.total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    if (!(u < (this.cumulative[hi] as number))) return this.lastPositive; // round-off: u == total
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (u < (this.cumulative[mid] as number)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** `n` independent draws (with replacement), as `torch.utils.data.WeightedRandomSampler(replacement=True)`. */
  drawMany(rng: Rng, n: number): number[] {
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('n', `must be a non-negative integer, got ${n}`);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.draw(rng);
    return out;
  }
}
