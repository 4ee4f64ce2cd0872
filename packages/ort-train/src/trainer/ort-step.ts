/**
 * A {@link StepFunction} over an ONNX Runtime session whose graph outputs the loss and the gradients
 * (e.g. a graph from the autodiff, or a hand-written one): parameters (and buffers) are fed as graph
 * inputs each step, the loss / gradients / updated buffers are read back.
 */
import { InvalidArgumentError } from '@diffmix/core';
import type { StepFunction } from './trainer.js';

/** The part of `onnxruntime-node` / `-web` used here. */
export interface OrtTensorCtor {
  new (type: 'float32', data: Float32Array, dims: readonly number[]): unknown;
}
export interface OrtSessionLike {
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown }>>;
}

export interface OrtStepOptions<B> {
  session: OrtSessionLike;
  /** `ort.Tensor` */
  Tensor: OrtTensorCtor;
  /** Shapes of the parameters (and buffers) fed as inputs named by their keys. */
  shapes: ReadonlyMap<string, readonly number[]>;
  /** The batch's own feeds (images, targets…). */
  feeds: (batch: B) => Record<string, unknown>;
  /** Output holding the scalar loss. */
  loss: string;
  /** Parameter → output holding its gradient. */
  grads: ReadonlyMap<string, string>;
  /** Buffer → output holding its updated value (buffers are fed as inputs by their keys). */
  buffers?: ReadonlyMap<string, string>;
}

export function ortStepFunction<B>(options: OrtStepOptions<B>): StepFunction<B> {
  const { session, Tensor, shapes } = options;
  const tensor = (name: string, data: Float32Array) => {
    const shape = shapes.get(name);
    if (!shape) throw new InvalidArgumentError('shapes', `no shape for ${JSON.stringify(name)}`);
    return new Tensor('float32', data, shape);
  };
  return async (params, batch, context) => {
    const feeds: Record<string, unknown> = { ...options.feeds(batch) };
    for (const [k, v] of params) if (shapes.has(k)) feeds[k] = tensor(k, v);
    for (const k of options.buffers?.keys() ?? []) {
      const v = context.buffers.get(k);
      if (!v) throw new InvalidArgumentError('buffers', `no buffer ${JSON.stringify(k)}`);
      feeds[k] = tensor(k, v);
    }
    const out = await session.run(feeds);
    const read = (name: string): Float32Array => {
      const t = out[name];
      if (!t) throw new InvalidArgumentError('outputs', `the session has no output ${JSON.stringify(name)}`);
      // Copy: ORT may reuse output buffers.
      return Float32Array.from(t.data as Float32Array);
    };
    const grads = new Map<string, Float32Array>();
    for (const [p, o] of options.grads) grads.set(p, read(o));
    const buffers = new Map<string, Float32Array>();
    for (const [b, o] of options.buffers ?? []) buffers.set(b, read(o));
    return { loss: (read(options.loss)[0] ?? Number.NaN) as number, grads, buffers };
  };
}
