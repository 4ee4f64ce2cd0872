/**
 * What a session expects, read from the session itself rather than assumed from one exporter:
 * input names, element types and (symbolic) shapes. Exporters differ — `timestep` int64 or float,
 * `[B]` or a scalar; `input_ids` int32 or int64; VAE encoder output `latent_sample` or
 * `latent_parameters` — and the model adapters branch on what is found here.
 */
import { ort } from './providers.js';

export interface TensorSpec {
  name: string;
  type: string;
  /** Dimensions; strings are symbolic (`batch`), -1 unknown. */
  shape: Array<number | string>;
}

export interface SessionIO {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

type Meta = { name: string; isTensor: boolean; type?: string; shape?: Array<number | string> };

export function describeSession(session: ort.InferenceSession): SessionIO {
  const read = (names: readonly string[], meta: readonly Meta[] | undefined): TensorSpec[] =>
    names.map((name, i) => {
      const m = meta?.find((x) => x.name === name) ?? meta?.[i];
      return { name, type: m?.type ?? 'unknown', shape: m?.shape ?? [] };
    });
  const s = session as unknown as { inputMetadata?: Meta[]; outputMetadata?: Meta[] };
  return { inputs: read(session.inputNames, s.inputMetadata), outputs: read(session.outputNames, s.outputMetadata) };
}

/** A tensor of `type` (float32, float16 handled by callers, int32, int64) from float/int data. */
export function makeTensor(type: string, data: ArrayLike<number>, dims: number[]): ort.Tensor {
  switch (type) {
    case 'float32':
      return new ort.Tensor('float32', data instanceof Float32Array ? data : Float32Array.from(data), dims);
    case 'int32':
      return new ort.Tensor('int32', data instanceof Int32Array ? data : Int32Array.from(data), dims);
    case 'int64':
      return new ort.Tensor('int64', BigInt64Array.from(Array.from(data, (v) => BigInt(Math.round(v)))), dims);
    case 'float16': {
      const out = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = floatToHalf(data[i] as number);
      return new ort.Tensor('float16', out, dims);
    }
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(data), dims);
    default:
      throw new Error(`unsupported input element type ${type}`);
  }
}

/** The float32 data of an output tensor (float16 outputs are widened). */
export function tensorToFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') {
    const src = t.data as Uint16Array;
    const out = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i] as number);
    return out;
  }
  return Float32Array.from(t.data as ArrayLike<number>);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE float32 → float16 bits, round to nearest even (for fp16 models with fp16 inputs). */
function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  e = half >>> 10;
  return sign | half;
}
