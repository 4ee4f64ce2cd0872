/**
 * The score arithmetic of `CLIPModel.forward` on embeddings: L2-normalise, cosine similarities
 * times the logit scale, softmax over the captions. Computed in float64 from the float32 embeddings
 * (the reference runs in float32; the difference is ~1e-7 on the scores).
 */
import { InvalidArgumentError } from '@diffmix/core';
import type { Embeddings } from '../model/clip-model.js';

/** Row-wise L2 normalisation (`x / ‖x‖`, a zero row stays zero), in float64. */
export function l2NormalizeRows(e: Embeddings): { data: Float64Array; rows: number; dim: number } {
  const out = new Float64Array(e.rows * e.dim);
  for (let r = 0; r < e.rows; r++) {
    let ss = 0;
    for (let j = 0; j < e.dim; j++) {
      const v = e.data[r * e.dim + j] as number;
      ss += v * v;
    }
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let j = 0; j < e.dim; j++) out[r * e.dim + j] = (e.data[r * e.dim + j] as number) * inv;
  }
  return { data: out, rows: e.rows, dim: e.dim };
}

/** `logits_per_image = scale · normalize(images) · normalize(texts)ᵀ`, [images, texts]. */
export function similarityLogits(images: Embeddings, texts: Embeddings, logitScale: number): Float64Array {
  if (images.dim !== texts.dim) {
    throw new InvalidArgumentError('embeddings', `image embeddings have ${images.dim} dims but text embeddings ${texts.dim}`);
  }
  const v = l2NormalizeRows(images);
  const t = l2NormalizeRows(texts);
  const d = images.dim;
  const out = new Float64Array(images.rows * texts.rows);
  for (let i = 0; i < images.rows; i++) {
    for (let k = 0; k < texts.rows; k++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (v.data[i * d + j] as number) * (t.data[k * d + j] as number);
      out[i * texts.rows + k] = logitScale * s;
    }
  }
  return out;
}

/** Softmax of each row of a [rows, cols] matrix (max-subtracted). */
export function softmaxRows(logits: ArrayLike<number>, cols: number): Float64Array {
  if (!Number.isInteger(cols) || cols < 1 || logits.length % cols !== 0) {
    throw new InvalidArgumentError('cols', `${logits.length} values do not form rows of ${cols}`);
  }
  const out = new Float64Array(logits.length);
  for (let r = 0; r < logits.length / cols; r++) {
    let max = -Infinity;
    for (let k = 0; k < cols; k++) max = Math.max(max, logits[r * cols + k] as number);
    let sum = 0;
    for (let k = 0; k < cols; k++) {
      const e = Math.exp((logits[r * cols + k] as number) - max);
      out[r * cols + k] = e;
      sum += e;
    }
    for (let k = 0; k < cols; k++) out[r * cols + k] = (out[r * cols + k] as number) / sum;
  }
  return out;
}

/** Per image: the positive caption's probability `softmax(logits)[0]` and the logits themselves. */
export function scoresFromLogits(logits: ArrayLike<number>, cols: number): Array<{ score: number; logits: number[] }> {
  const probs = softmaxRows(logits, cols);
  const out: Array<{ score: number; logits: number[] }> = [];
  for (let r = 0; r < logits.length / cols; r++) {
    out.push({
      score: probs[r * cols] as number,
      logits: Array.from({ length: cols }, (_, k) => logits[r * cols + k] as number),
    });
  }
  return out;
}

/**
 * NumPy's default `np.percentile(values, q)` (linear interpolation between the two nearest ranks):
 * the official Diff-Mix filter drops `score < np.percentile(scores, 10)`.
 */
export function percentileLinear(values: readonly number[], q: number): number {
  if (values.length === 0) throw new InvalidArgumentError('values', 'need at least one value');
  if (!(q >= 0 && q <= 100)) throw new InvalidArgumentError('q', `must be in [0, 100], got ${q}`);
  const s = [...values].sort((a, b) => a - b);
  const pos = (q / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  const frac = pos - lo;
  const a = s[lo] as number;
  const b = s[hi] as number;
  // numpy's _lerp: a + (b - a)·t, evaluated from the nearer end for t ≥ 0.5.
  return frac >= 0.5 ? b - (b - a) * (1 - frac) : a + (b - a) * frac;
}
