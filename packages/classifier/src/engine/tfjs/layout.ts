/**
 * Conv weights (every rank-4 tensor of these models) live in tfjs's HWIO layout `[kh, kw, in, out]`
 * inside the engine and in torchvision's OIHW `[out, in, kh, kw]` in every state that goes in or out
 * (`init` weights, `getState`, `setState`, optimiser slots alike — the optimisers are elementwise, so
 * their slots simply follow the parameter's layout). Plain loops: a one-off copy per boundary call.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { StateTensor } from '../types.js';

/** OIHW (torchvision) → a tfjs tensor in the engine's layout. */
export function toEngineTensor(t: StateTensor): tf.Tensor {
  if (t.shape.length !== 4) return tf.tensor(Float32Array.from(t.data), t.shape, 'float32');
  const [o, i, h, w] = t.shape as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  const src = t.data;
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((y * w + x) * i + b) * o + a] = src[((a * i + b) * h + y) * w + x] as number;
  return tf.tensor4d(out, [h, w, i, o]);
}

/** A tensor in the engine's layout → torchvision layout (a fresh array). */
export async function fromEngineTensor(t: tf.Tensor): Promise<StateTensor> {
  const src = (await t.data()) as Float32Array;
  if (t.rank !== 4) return { shape: [...t.shape], data: Float32Array.from(src) };
  const [h, w, i, o] = t.shape as [number, number, number, number];
  const out = new Float32Array(src.length);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((a * i + b) * h + y) * w + x] = src[((y * w + x) * i + b) * o + a] as number;
  return { shape: [o, i, h, w], data: out };
}
