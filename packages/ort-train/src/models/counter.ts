/**
 * The counter-based generator of the golden fixtures (`resnet/weights_spec.json`, README §5): a
 * stateless hash of (seed, index) → uniform float, so multi-megabyte weight files are rebuilt
 * bit-exactly from a few numbers instead of being shipped.
 */

/** lowbias32 integer hash (uint32 → uint32). */
export function hash32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** u_i = (hash32(i ^ hash32(seed)) >>> 8) / 2^24 for i = 0 … n−1 (float64, exact). */
export function counterUniform(seed: number, n: number): Float64Array {
  const out = new Float64Array(n);
  const s = hash32(seed);
  for (let i = 0; i < n; i++) out[i] = (hash32((i ^ s) >>> 0) >>> 8) / 16777216;
  return out;
}

/** float32(lo + (hi − lo)·u_i): evaluated in float64, rounded once to float32. */
export function counterFill(seed: number, n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  const s = hash32(seed);
  for (let i = 0; i < n; i++) {
    const u = (hash32((i ^ s) >>> 0) >>> 8) / 16777216;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}

/** One tensor of a `weights_spec.json` architecture entry. */
export interface CounterTensorSpec {
  name: string;
  shape: number[];
  dtype: 'F32' | 'I64';
  fill: 'counter_uniform' | 'constant';
  seed?: number;
  lo?: number;
  hi?: number;
  value?: number;
  sha256_le_bytes?: string;
}

/** A generated tensor: float32 data, or an int64 scalar / array. */
export interface GeneratedTensor {
  name: string;
  shape: number[];
  data: Float32Array | BigInt64Array;
}

/** Builds every tensor of a spec (state_dict order). */
export function generateFromSpec(tensors: readonly CounterTensorSpec[]): GeneratedTensor[] {
  return tensors.map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.dtype === 'I64') {
      return { name: t.name, shape: [...t.shape], data: new BigInt64Array(n).fill(BigInt(t.value ?? 0)) };
    }
    if (t.fill === 'constant') return { name: t.name, shape: [...t.shape], data: new Float32Array(n).fill(t.value ?? 0) };
    if (t.seed === undefined || t.lo === undefined || t.hi === undefined) {
      throw new Error(`weights spec tensor ${t.name}: counter_uniform needs seed, lo and hi`);
    }
    return { name: t.name, shape: [...t.shape], data: counterFill(t.seed, n, t.lo, t.hi) };
  });
}
