/**
 * Float32 / float64 arithmetic that reproduces what diffusers computes with torch float32 tensors and
 * NumPy float64 arrays, one rounding at a time.
 *
 * Convention used throughout the schedulers: every torch float32 operation (`a * b`, `a / b`, `sqrt`,
 * `log`, `exp`…) is evaluated in float64 and rounded once with `Math.fround`. For `+ − × ÷ sqrt` of float32
 * operands this equals the IEEE float32 result exactly (53 ≥ 2·24 + 2); `log`/`exp` are correctly rounded in
 * most cases, torch's vectorised versions are within 1 ulp, so those can differ by 1 ulp.
 */

const f = Math.fround;

/** Rounds a float64 to float32 (torch `.to(torch.float32)`, `np.float32(x)`). */
export const toF32 = f;

const bits = new DataView(new ArrayBuffer(4));

/** The float32 neighbour of a finite float32 `x` towards `direction` (+1 up, −1 down). */
function nextF32(x: number, direction: 1 | -1): number {
  if (x === 0) return direction * 2 ** -149;
  bits.setFloat32(0, x);
  const u = bits.getUint32(0);
  bits.setUint32(0, x > 0 === direction > 0 ? u + 1 : u - 1);
  return bits.getFloat32(0);
}

/**
 * `a·b + c` rounded ONCE to float32 (a fused multiply-add on float32 operands), exact for every float32 input:
 * the product of two float32 values is exact in float64, and the sum is corrected with TwoSum when it is a
 * float32 tie. torch's CPU `linspace` kernel computes `start + step·i` this way (verified bit for bit against
 * diffusers' `betas`).
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b; // exact for float32 a, b
  const s = p + c;
  const r = f(s);
  if (r === s || !Number.isFinite(s)) return r;
  const bb = s - p;
  const err = p - (s - bb) + (c - bb); // s + err is the exact sum
  if (err === 0) return r;
  const other = nextF32(r, s > r ? 1 : -1);
  if ((r + other) / 2 !== s) return r; // not a tie: float64 rounding could not move it across a float32 boundary
  return (other - s) * err > 0 ? other : r;
}

/**
 * `torch.linspace(start, end, steps, dtype=torch.float32)` on the CPU: start, end and
 * `step = (end − start)/(steps − 1)` in float32, then `start + step·i` for the first half and
 * `end − step·(steps − 1 − i)` for the second, each a single float32 rounding.
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 0) return out;
  const s = f(start);
  const e = f(end);
  if (steps === 1) {
    out[0] = s;
    return out;
  }
  const step = f((e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < half ? fmaF32(step, i, s) : fmaF32(-step, steps - 1 - i, e);
  return out;
}

/**
 * `torch.cumprod(x, dim=0)` for float32 on the CPU: the running product is accumulated in float64
 * (ATen's CPU accumulate type for float) and each output is rounded to float32.
 */
export function torchCumprodF32(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  let acc = 1;
  for (let i = 0; i < x.length; i++) {
    acc *= x[i]!;
    out[i] = acc;
  }
  return out;
}

/** NumPy's `np.round` / `np.rint`: round half to even. */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const r = Math.round(x); // half up
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `np.linspace(start, stop, num)` in float64 (`i·step + start`, the last value set to `stop`). */
export function numpyLinspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  if (num === 0) return out;
  const div = num - 1;
  const delta = stop - start;
  const step = div > 0 ? delta / div : Number.NaN;
  for (let i = 0; i < num; i++) {
    out[i] = div > 0 && step === 0 ? (i / div) * delta + start : div > 0 ? i * step + start : i * delta + start;
  }
  if (num > 1) out[num - 1] = stop;
  return out;
}

/**
 * `np.arange(start, stop, step)` in float64: length `ceil((stop − start)/step)`, values `start + i·delta` with
 * `delta = (start + step) − start` (NumPy's fill rule). Reproduces NumPy's extra element when the quotient
 * lands just above an integer.
 */
export function numpyArange(start: number, stop: number, step: number): Float64Array {
  const length = Math.max(0, Math.ceil((stop - start) / step));
  const out = new Float64Array(length);
  if (length === 0) return out;
  out[0] = start;
  if (length === 1) return out;
  const second = start + step;
  out[1] = second;
  const delta = second - start;
  for (let i = 2; i < length; i++) out[i] = start + i * delta;
  return out;
}

/**
 * `torch.quantile(x, q)` (linear interpolation) in float32 as ATen computes it: ranks = q·(n − 1) in float32,
 * then `lerp(below, above, rank − floor(rank))`.
 */
export function torchQuantileF32(sortedAscending: Float32Array, q: number): number {
  const n = sortedAscending.length;
  const rank = f(f(q) * (n - 1));
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const w = f(rank - lo);
  const a = sortedAscending[lo]!;
  const b = sortedAscending[hi]!;
  return w < 0.5 ? f(a + f(w * f(b - a))) : f(b - f(f(b - a) * f(1 - w)));
}
