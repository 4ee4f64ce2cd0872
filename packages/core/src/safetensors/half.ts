/**
 * IEEE 754 half precision (float16) and bfloat16 ⇄ float32 conversion.
 *
 * Node 20 has no `Float16Array`, so half-precision data is carried as the raw bit patterns in a
 * `Uint16Array` and converted with these helpers. float32 → float16 / bfloat16 rounds to nearest,
 * ties to even (what NumPy, PyTorch and ONNX Runtime do); NaN stays NaN, overflow becomes ±Infinity.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

let halfTable: Float32Array | undefined;

/** 65 536-entry lookup table: float16 bits → float32 value. Built on first use (256 KiB). */
function table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = halfBitsToNumber(h);
  halfTable = t;
  return t;
}

/** float16 bit pattern → number (exact). */
export function halfBitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** number → float16 bit pattern (round to nearest even, via float32 first as the frameworks do). */
export function numberToHalfBits(value: number): number {
  scratchF32[0] = value;
  const x = scratchU32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the 24-bit significand down, rounding to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const halfway = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > halfway || (rem === halfway && (r & 1) === 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to Infinity).
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r++;
  return sign | r;
}

/** bfloat16 bit pattern → number (exact). */
export function bfloat16BitsToNumber(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0] as number;
}

/** number → bfloat16 bit pattern (round to nearest even; NaN stays a quiet NaN). */
export function numberToBfloat16Bits(value: number): number {
  scratchF32[0] = value;
  const x = scratchU32[0] as number;
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) & 0x8000) | 0x7fc0;
  const bias = 0x7fff + ((x >>> 16) & 1);
  return ((x + bias) >>> 16) & 0xffff;
}

/** float16 bits → float32 values. */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const t = table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i] as number] as number;
  return out;
}

/** float32 values → float16 bits (round to nearest even). */
export function float32ToFloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = numberToHalfBits(values[i] as number);
  return out;
}

/** bfloat16 bits → float32 values. */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u[i] = (bits[i] as number) << 16;
  return out;
}

/** float32 values → bfloat16 bits (round to nearest even). */
export function float32ToBfloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = numberToBfloat16Bits(values[i] as number);
  return out;
}
