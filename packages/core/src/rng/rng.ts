/**
 * A counter-based, splittable seeded RNG.
 *
 * Algorithm (stable across releases; changing it changes every generated image, so it is versioned):
 * - State = a 64-bit key (k0, k1), a 64-bit stream id (s0, s1) and a 64-bit block position n.
 * - Block n is `philox4x32_10(counter = [lo32(n), hi32(n), s0, s1], key = [k0, k1])`: 4 uint32 words.
 *   Draws consume the words of block 0, then block 1, … in order.
 * - `Rng.fromSeed(seed)`: an integer seed 0 ≤ seed < 2^53 gives key = [lo32(seed), hi32(seed)],
 *   stream 0; a string or bigint seed is hashed (SHA-256, first 16 bytes → key and stream).
 * - `split(label)` derives an independent child: SHA-256 over "diffmix-rng-v1", the parent's key and
 *   stream and the label, first 16 bytes → the child's key and stream, position 0. The child does not
 *   depend on how much the parent has drawn, so a job's stream depends only on its seed (and label
 *   path), never on how many jobs ran before it or on which worker ran it.
 * - `uniform()`: 53-bit double in [0, 1) from two words: `((a >>> 5)·2^26 + (b >>> 6)) / 2^53`.
 * - `int(n)`: unbiased by rejection (32-bit words for n ≤ 2^32, 53-bit doubles beyond).
 * - `normal()`: Box–Muller on two uniforms, u1 mapped to (0, 1]; each pair of normals uses exactly one
 *   Philox block; the second normal of a pair is kept for the next call. `fillNormal` writes pairs.
 * - `gamma(k)`: Marsaglia–Tsang (k < 1 boosted by U^(1/k)); `beta(a, b)` = X/(X+Y) from two gammas.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors/index.js';
import { philox4x32 } from './philox.js';

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

export interface RngState {
  /** Algorithm tag; only 'philox4x32-10/v1' exists. */
  algorithm: 'philox4x32-10/v1';
  key: [number, number];
  stream: [number, number];
  /** Index of the next 32-bit word to hand out. */
  position: number;
  /** A cached second normal from the last Box–Muller pair, if any. */
  spareNormal: number | null;
}

function wordsFromDigest(parts: Array<string | number>): [number, number, number, number] {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(typeof p === 'number' ? `n:${p}` : `s:${p.length}:${p}`);
    h.update('\u0000');
  }
  const d = h.digest();
  return [d.readUInt32LE(0), d.readUInt32LE(4), d.readUInt32LE(8), d.readUInt32LE(12)];
}

export class Rng {
  private readonly k0: number;
  private readonly k1: number;
  private readonly s0: number;
  private readonly s1: number;
  private readonly block = new Uint32Array(4);
  private blockIndex = -1;
  private position = 0;
  private spareNormal: number | null = null;

  private constructor(key: [number, number], stream: [number, number]) {
    this.k0 = key[0] >>> 0;
    this.k1 = key[1] >>> 0;
    this.s0 = stream[0] >>> 0;
    this.s1 = stream[1] >>> 0;
  }

  /** An RNG from a seed: an integer in [0, 2^53), a bigint or a string. */
  static fromSeed(seed: number | bigint | string): Rng {
    if (typeof seed === 'number') {
      if (!Number.isSafeInteger(seed) || seed < 0) {
        throw new InvalidArgumentError('seed', `must be an integer in [0, 2^53), got ${seed}`);
      }
      return new Rng([seed % TWO_POW_32, Math.floor(seed / TWO_POW_32)], [0, 0]);
    }
    if (typeof seed !== 'string' && typeof seed !== 'bigint') {
      throw new InvalidArgumentError('seed', `must be a number, bigint or string, got ${typeof seed}`);
    }
    const [a, b, c, d] = wordsFromDigest(['diffmix-seed-v1', typeof seed === 'bigint' ? `bigint:${seed}` : seed]);
    return new Rng([a, b], [c, d]);
  }

  /** Restores a generator saved with `state()` (for resumable training). */
  static fromState(state: RngState): Rng {
    if (state.algorithm !== 'philox4x32-10/v1') {
      throw new InvalidArgumentError('state.algorithm', `unknown RNG algorithm ${JSON.stringify(state.algorithm)}`);
    }
    const r = new Rng(state.key, state.stream);
    r.position = state.position;
    r.spareNormal = state.spareNormal;
    return r;
  }

  state(): RngState {
    return {
      algorithm: 'philox4x32-10/v1',
      key: [this.k0, this.k1],
      stream: [this.s0, this.s1],
      position: this.position,
      spareNormal: this.spareNormal,
    };
  }

  /** An independent child generator named by `label` (a path segment such as "noise" or a job index). */
  split(label: string | number): Rng {
    const [a, b, c, d] = wordsFromDigest(['diffmix-rng-v1', this.k0, this.k1, this.s0, this.s1, label]);
    return new Rng([a, b], [c, d]);
  }

  /** Next uint32. */
  nextUint32(): number {
    const bi = Math.floor(this.position / 4);
    if (bi !== this.blockIndex) {
      philox4x32(bi % TWO_POW_32, Math.floor(bi / TWO_POW_32), this.s0, this.s1, this.k0, this.k1, this.block);
      this.blockIndex = bi;
    }
    const w = this.block[this.position % 4] as number;
    this.position++;
    return w;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / TWO_POW_53;
  }

  /** Uniform double in [low, high). */
  uniformRange(low: number, high: number): number {
    return low + (high - low) * this.uniform();
  }

  /** Unbiased integer in [0, n), n a positive safe integer. */
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('n', `must be a positive integer, got ${n}`);
    if (n <= TWO_POW_32) {
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return x % n;
      }
    }
    const limit = TWO_POW_53 - (TWO_POW_53 % n);
    for (;;) {
      const x = this.uniform() * TWO_POW_53;
      if (x < limit) return x % n;
    }
  }

  /** Integer in [low, high] inclusive. */
  intRange(low: number, high: number): number {
    if (high < low) throw new InvalidArgumentError('high', `must be ≥ low (${low}), got ${high}`);
    return low + this.int(high - low + 1);
  }

  bernoulli(p: number): boolean {
    if (!(p >= 0 && p <= 1)) throw new InvalidArgumentError('p', `must be in [0, 1], got ${p}`);
    return this.uniform() < p;
  }

  /** A uniformly chosen element. */
  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new InvalidArgumentError('items', 'cannot choose from an empty list');
    return items[this.int(items.length)] as T;
  }

  /** An index drawn with probability proportional to `weights[i]` (non-negative, not all zero). */
  weightedIndex(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) {
      if (!(w >= 0) || !Number.isFinite(w)) throw new InvalidArgumentError('weights', `must be finite and ≥ 0, got ${w}`);
      total += w;
    }
    if (!(total > 0)) throw new InvalidArgumentError('weights', 'must not all be zero');
    const u = this.uniform() * total;
    let acc = 0;
    for (let i = 0; i < weights.length; i++) {
      acc += weights[i] as number;
      if (u < acc) return i;
    }
    // Floating-point round-off can leave u == total: return the last index with positive weight.
    for (let i = weights.length - 1; i >= 0; i--) if ((weights[i] as number) > 0) return i;
    return weights.length - 1;
  }

  /** A shuffled copy (Fisher–Yates, from the last position down). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    this.shuffleInPlace(out);
    return out;
  }

  shuffleInPlace<T>(items: T[]): void {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i] as T;
      items[i] = items[j] as T;
      items[j] = t;
    }
  }

  /** `k` distinct elements in random order (partial Fisher–Yates over a copy). */
  sample<T>(items: readonly T[], k: number): T[] {
    if (!Number.isInteger(k) || k < 0 || k > items.length) {
      throw new InvalidArgumentError('k', `must be an integer in [0, ${items.length}], got ${k}`);
    }
    const pool = items.slice();
    for (let i = 0; i < k; i++) {
      const j = i + this.int(pool.length - i);
      const t = pool[i] as T;
      pool[i] = pool[j] as T;
      pool[j] = t;
    }
    return pool.slice(0, k);
  }

  private normalPair(): [number, number] {
    // Align to a block boundary so that pair k of a fresh generator is exactly block k.
    const rem = this.position % 4;
    if (rem !== 0) this.position += 4 - rem;
    const u1 = 1 - this.uniform(); // (0, 1]: log is finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    return [r * Math.cos(theta), r * Math.sin(theta)];
  }

  /** Standard normal N(0, 1). */
  normal(): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return z;
    }
    const [z0, z1] = this.normalPair();
    this.spareNormal = z1;
    return z0;
  }

  /** Fills `out` with N(mean, std²) samples and returns it (for latent noise). */
  fillNormal<T extends Float32Array | Float64Array>(out: T, mean = 0, std = 1): T {
    let i = 0;
    if (this.spareNormal !== null && out.length > 0) {
      out[i++] = mean + std * this.spareNormal;
      this.spareNormal = null;
    }
    for (; i + 1 < out.length; i += 2) {
      const [z0, z1] = this.normalPair();
      out[i] = mean + std * z0;
      out[i + 1] = mean + std * z1;
    }
    if (i < out.length) out[i] = mean + std * this.normal();
    return out;
  }

  /** Gamma(shape k, scale 1) by Marsaglia–Tsang. */
  gamma(shape: number): number {
    if (!(shape > 0) || !Number.isFinite(shape)) throw new InvalidArgumentError('shape', `must be > 0, got ${shape}`);
    if (shape < 1) {
      const u = 1 - this.uniform();
      return this.gamma(shape + 1) * u ** (1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - this.uniform();
      if (u < 1 - 0.0331 * x ** 4) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Beta(a, b). */
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    const y = this.gamma(b);
    return x / (x + y);
  }
}
