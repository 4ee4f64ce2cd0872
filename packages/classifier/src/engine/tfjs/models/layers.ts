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

/** Per-channel a·x + b through the FusedBatchNorm kernel (mean 0, variance 0, epsilon 1: divides by exactly 1). */
function affine(x: tf.Tensor4D, a: tf.Tensor1D | undefined, b: tf.Tensor1D | undefined, zeros: tf.Tensor1D): tf.Tensor4D {
  return tf.batchNorm4d(x, zeros, zeros, b, a, 1);
}

/** Σ over N·H·W of an NHWC tensor, as ones[1, M] · X[M, C] (a matMul; tfjs's reductions transpose first). */
function channelSum(x: tf.Tensor): tf.Tensor1D {
  const c = x.shape[x.rank - 1] as number;
  const m = x.size / c;
  return tf.reshape(tf.matMul(tf.ones([1, m]), tf.reshape(x, [m, c]) as tf.Tensor2D), [c]);
}

/**
 * torch BatchNorm2d on NHWC: batch statistics in train mode (biased variance to normalise, the
 * unbiased one recorded for the running statistics), running ones in eval.
 *
 * Written with the FusedBatchNorm kernel and matMul-based channel sums and a hand-written gradient
 * (tf.customGrad) rather than broadcasting sub / mul / mean ops: on tfjs-backend-cpu a broadcast
 * binary op walks every element through index arithmetic and a reduction over N, H, W transposes
 * first; those took about half of a ResNet-18 step. The gradient is the standard one:
 * dx = w·rs/M · (M·dy − Σdy − x̂·Σ(dy·x̂)), dw = Σ(dy·x̂), db = Σdy, with rs = 1/√(var + eps).
 */
export function batchNorm(ctx: ForwardContext, x: tf.Tensor4D, key: string): tf.Tensor4D {
  const eps = ctx.bnEps ?? 1e-5;
  const w = param(ctx, `${key}.weight`) as tf.Tensor1D;
  const b = param(ctx, `${key}.bias`) as tf.Tensor1D;
  if (!ctx.train) {
    const rm = param(ctx, `${key}.running_mean`) as tf.Tensor1D;
    const rv = param(ctx, `${key}.running_var`) as tf.Tensor1D;
    return tf.batchNorm4d(x, rm, rv, b, w, eps);
  }
  const stats = ctx.stats;
  const forward = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor, save: tf.GradSaveFunc) => {
    const x4 = xi as tf.Tensor4D;
    const c = x4.shape[3];
    const m = x4.size / c;
    const zeros = tf.zeros([c]) as tf.Tensor1D;
    const mean = tf.div(channelSum(x4), m) as tf.Tensor1D;
    const d = affine(x4, undefined, tf.neg(mean) as tf.Tensor1D, zeros);
    const variance = tf.div(channelSum(tf.square(d)), m) as tf.Tensor1D;
    const rs = tf.rsqrt(tf.add(variance, eps)) as tf.Tensor1D;
    const xhat = affine(d, rs, undefined, zeros);
    if (stats) {
      // Not on the loss path: these only feed the running-statistics update (kept past the tidy).
      stats.set(key, {
        mean: tf.keep(tf.clone(mean)),
        varUnbiased: tf.keep(tf.mul(variance, m / Math.max(m - 1, 1))) as tf.Tensor1D,
      });
    }
    save([xhat, wi, rs]);
    const value = affine(xhat, wi as tf.Tensor1D, bi as tf.Tensor1D, zeros);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [xh, ws, r] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
      const z = tf.zeros([c]) as tf.Tensor1D;
      const sdy = channelSum(dy);
      const sdyx = channelSum(tf.mul(dy, xh));
      const k1 = tf.mul(ws, r) as tf.Tensor1D;
      const k2 = tf.div(tf.mul(tf.neg(k1), sdyx), m) as tf.Tensor1D;
      const k3 = tf.div(tf.mul(tf.neg(k1), sdy), m) as tf.Tensor1D;
      const dx = tf.add(affine(dy as tf.Tensor4D, k1, k3, z), affine(xh, k2, undefined, z));
      return [dx, sdyx, sdy];
    };
    return { value, gradFunc };
  };
  const op = tf.customGrad(forward as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x, w, b) as tf.Tensor4D;
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
