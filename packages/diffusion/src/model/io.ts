/**
 * What a session expects, read from the session itself rather than assumed from one exporter:
 * input names, element types and (symbolic) shapes. Exporters differ — `timestep` int64 or float,
 * `[B]` or a scalar; `input_ids` int32 or int64; VAE encoder output `latent_sample` or
 * `latent_parameters` — and the model adapters branch on what is found here.
 */
import { float16ToFloat32, float32ToFloat16 } from '@diffmix/core';
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
    case 'float16':
      return new ort.Tensor('float16', float32ToFloat16(data), dims);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(data), dims);
    default:
      throw new Error(`unsupported input element type ${type}`);
  }
}

/** The float32 data of an output tensor (float16 outputs are widened). */
export function tensorToFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return float16ToFloat32(t.data as Uint16Array);
  return Float32Array.from(t.data as ArrayLike<number>);
}
