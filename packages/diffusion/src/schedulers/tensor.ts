/**
 * Elementwise float32 kernels shared by the schedulers. Latents are flat `Float32Array`s (any shape, C order);
 * scalar coefficients are float32 values (0-dim torch tensors in diffusers).
 */
import { InvalidArgumentError } from '@diffmix/core';
import { toF32 as f, torchQuantileF32 } from './float32.js';

/** Throws unless every array has `length` elements. */
export function checkSameLength(length: number, arrays: Readonly<Record<string, Float32Array | undefined>>): void {
  for (const [name, a] of Object.entries(arrays)) {
    if (a === undefined) continue;
    if (!(a instanceof Float32Array)) throw new InvalidArgumentError(name, 'must be a Float32Array');
    if (a.length !== length)
      throw new InvalidArgumentError(name, `has ${a.length} values, expected ${length} (the sample's size)`);
  }
}

/**
 * `c₀·v₀ + c₁·v₁ + …` evaluated left to right in float32, each product and each sum rounded — what torch does for
 * `(c0 * v0) - (c1 * v1) + …` with 0-dim float32 coefficients (a subtraction is the sum with a negated coefficient,
 * which IEEE arithmetic makes identical).
 */
export function combineF32(terms: ReadonlyArray<readonly [number, Float32Array]>): Float32Array {
  const [first, ...rest] = terms;
  if (first === undefined) throw new InvalidArgumentError('terms', 'empty linear combination');
  const n = first[1].length;
  const out = new Float32Array(n);
  const c0 = first[0];
  const v0 = first[1];
  for (let i = 0; i < n; i++) out[i] = c0 * v0[i]!; // one product, rounded on store
  for (const [c, v] of rest) {
    for (let i = 0; i < n; i++) out[i] = out[i]! + f(c * v[i]!);
  }
  return out;
}

/** `c · (a − b)` elementwise in float32 (e.g. diffusers' `(1.0 / r0) * (m0 - m1)`). */
export function scaledDifferenceF32(c: number, a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = c * f(a[i]! - b[i]!);
  return out;
}

/** `(x − c·y) / d` elementwise in float32 (the epsilon → x₀ conversion). */
export function subScaledDivF32(x: Float32Array, c: number, y: Float32Array, d: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f(x[i]! - f(c * y[i]!)) / d;
  return out;
}

/**
 * Dynamic thresholding (Imagen; diffusers' `_threshold_sample`) per batch item: s = quantile(|x|, ratio)
 * clamped to [1, maxValue], then `clamp(x, −s, s) / s`, in float32.
 */
export function thresholdSampleF32(x: Float32Array, ratio: number, maxValue: number, batchSize = 1): Float32Array {
  if (!Number.isInteger(batchSize) || batchSize < 1 || x.length % batchSize !== 0) {
    throw new InvalidArgumentError('batchSize', `${batchSize} does not divide the sample size ${x.length}`);
  }
  const per = x.length / batchSize;
  const out = new Float32Array(x.length);
  for (let b = 0; b < batchSize; b++) {
    const row = x.subarray(b * per, (b + 1) * per);
    const sorted = Float32Array.from(row, Math.abs).sort();
    const q = torchQuantileF32(sorted, ratio);
    const s = f(Math.min(Math.max(q, 1), maxValue));
    for (let i = 0; i < per; i++) out[b * per + i] = Math.min(Math.max(row[i]!, -s), s) / s;
  }
  return out;
}
