/**
 * Building blocks on tfjs-core ops. Activations are NHWC (what tfjs's conv kernels want). Conv
 * weights are held in tfjs's HWIO layout `[kh, kw, in, out]` inside the engine (see `layout.ts`:
 * converted from / to torchvision's `[out, in, kh, kw]` only at the state boundary — transposing
 * them in every forward and every gradient cost ~20 % of a ResNet-18 step on the cpu backend);
 * linear weights stay `[out, in]` (matMul with transposeB).
 */
import * as tf from '@tensorflow/tfjs-core';

export type Params = ReadonlyMap<string, tf.Tensor>;

/** Train-mode BatchNorm statistics recorded during a forward, per BatchNorm key. */
export interface BatchStats {
  mean: tf.Tensor1D;
  /** Unbiased batch variance (what torch folds into running_var). */
  varUnbiased: tf.Tensor1D;
}

export interface ForwardContext {
  params: Params;
  train: boolean;
  /** Filled in train mode; its tensors are `tf.keep`-ed so they survive the surrounding tidy. */
  stats?: Map<string, BatchStats>;
  /** BatchNorm momentum (torch default 0.1) and epsilon (1e-5). */
  bnMomentum?: number;
  bnEps?: number;
}

export function param(ctx: ForwardContext, key: string): tf.Tensor {
  const t = ctx.params.get(key);
  if (!t) throw new Error(`internal: no tensor ${key}`);
  return t;
}

/** torch Conv2d (no bias, square kernel, symmetric zero padding) on NHWC input, HWIO weight. */
export function conv2d(ctx: ForwardContext, x: tf.Tensor4D, key: string, stride: number, pad: number): tf.Tensor4D {
  return tf.conv2d(x, param(ctx, `${key}.weight`) as tf.Tensor4D, stride, pad);
}

/** torch BatchNorm2d on NHWC: batch statistics in train mode (biased var to normalise), running ones in eval. */
export function batchNorm(ctx: ForwardContext, x: tf.Tensor4D, key: string): tf.Tensor4D {
  const eps = ctx.bnEps ?? 1e-5;
  const w = param(ctx, `${key}.weight`);
  const b = param(ctx, `${key}.bias`);
  if (!ctx.train) {
    const rm = param(ctx, `${key}.running_mean`);
    const rv = param(ctx, `${key}.running_var`);
    return tf.add(tf.mul(tf.div(tf.sub(x, rm), tf.sqrt(tf.add(rv, eps))), w), b) as tf.Tensor4D;
  }
  const mean = tf.mean(x, [0, 1, 2]);
  const d = tf.sub(x, mean);
  const variance = tf.mean(tf.square(d), [0, 1, 2]);
  if (ctx.stats) {
    const [n, h, wd] = x.shape;
    const count = n * h * wd;
    // Not on the loss path: no gradient flows through these, they only feed the running-stat update.
    ctx.stats.set(key, {
      mean: tf.keep(tf.clone(mean)) as tf.Tensor1D,
      varUnbiased: tf.keep(tf.mul(variance, count / Math.max(count - 1, 1))) as tf.Tensor1D,
    });
  }
  return tf.add(tf.mul(tf.div(d, tf.sqrt(tf.add(variance, eps))), w), b) as tf.Tensor4D;
}

export function relu<T extends tf.Tensor>(x: T): T {
  return tf.relu(x);
}

/** torch MaxPool2d with symmetric padding (padded cells never win, as torch's −∞ padding). */
export function maxPool(x: tf.Tensor4D, k: number, stride: number, pad: number): tf.Tensor4D {
  return tf.maxPool(x, k, stride, pad);
}

/** torch Linear: x · Wᵀ + b with W `[out, in]`. */
export function linear(ctx: ForwardContext, x: tf.Tensor, key: string): tf.Tensor {
  const w = param(ctx, `${key}.weight`);
  const b = param(ctx, `${key}.bias`);
  const shape = x.shape;
  const x2 = shape.length === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, shape[shape.length - 1] as number]);
  const y = tf.add(tf.matMul(x2 as tf.Tensor2D, w as tf.Tensor2D, false, true), b);
  return shape.length === 2 ? y : tf.reshape(y, [...shape.slice(0, -1), w.shape[0] as number]);
}

/** torch LayerNorm over the last axis (biased variance). */
export function layerNorm(ctx: ForwardContext, x: tf.Tensor, key: string, eps: number): tf.Tensor {
  const axis = x.rank - 1;
  const mean = tf.mean(x, axis, true);
  const d = tf.sub(x, mean);
  const variance = tf.mean(tf.square(d), axis, true);
  return tf.add(tf.mul(tf.div(d, tf.sqrt(tf.add(variance, eps))), param(ctx, `${key}.weight`)), param(ctx, `${key}.bias`));
}

/** Exact GELU (torch nn.GELU default): 0.5 · x · (1 + erf(x / √2)). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}
